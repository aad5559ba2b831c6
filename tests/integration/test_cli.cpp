// der-dispatch, der-tail, der-history and der-launch against a real der-hub
// and real der-agent processes over loopback.
#include "buckets.hpp"
#include "harness.hpp"

#include "der/assets_config.hpp"
#include "der/util/time.hpp"

#include <catch2/catch.hpp>
#include <fmt/core.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <set>
#include <thread>

using namespace der::test;
using nlohmann::json;

namespace {

constexpr double k_interval_s = 0.5;  // accelerated telemetry for tests

const std::string k_dispatch = DER_DISPATCH_BIN;
const std::string k_tail = DER_TAIL_BIN;
const std::string k_history = DER_HISTORY_BIN;
const std::string k_launch = DER_LAUNCH_BIN;

std::vector<TestAsset> three_assets() {
    return {{"site-a", "b1", 4.0, 2.0, -2.0, 50.0, 0.0},
            {"site-a", "b2", 8.0, 4.0, -3.0, 30.0, 0.0},
            {"site-b", "b3", 2.0, 1.0, -1.0, 70.0, 0.0}};
}

std::optional<json> agent_of(int port, const std::string& asset) {
    auto r = http_get(port, "/agents");
    if (!r || r->status != 200) return std::nullopt;
    for (auto& a : json::parse(r->body))
        if (a["asset"] == asset) return a;
    return std::nullopt;
}

bool online(int port, const std::string& asset) {
    auto a = agent_of(port, asset);
    return a && (*a)["online"].get<bool>();
}

std::vector<json> json_lines(const std::string& text) {
    std::vector<json> out;
    for (const auto& line : lines_of(text)) out.push_back(json::parse(line));
    return out;
}

RunResult dispatch(HubUnderTest& hub, std::vector<std::string> args, const std::string& input = {},
                   Ms deadline = 30000ms) {
    std::vector<std::string> argv = {k_dispatch, "--control", hub.control_endpoint()};
    argv.insert(argv.end(), args.begin(), args.end());
    return run_capture(argv, input, deadline);
}

RunResult history(HubUnderTest& hub, std::vector<std::string> args) {
    std::vector<std::string> argv = {k_history, "--control", hub.control_endpoint()};
    argv.insert(argv.end(), args.begin(), args.end());
    return run_capture(argv, {}, 30000ms);
}

/// The hub, one online agent per asset in `names`.
struct Fleet {
    TempDir dir;
    HubUnderTest hub;
    std::vector<std::unique_ptr<Process>> agents;

    explicit Fleet(const std::vector<std::string>& names) : hub(dir, fleet_yaml(three_assets(), k_interval_s)) {
        for (const auto& name : names) agents.push_back(start_agent(dir, hub.agents_endpoint(), hub.config_path(), name));
        for (const auto& name : names) {
            INFO(name);
            REQUIRE(wait_until([&] { return online(hub.http_port(), name); }, 15000ms));
        }
    }
};

}  // namespace

// --- der-dispatch -------------------------------------------------------------------

TEST_CASE("der-dispatch --wait reports applied, and a refused dispatch exits 1", "[integration][sanitize]") {
    Fleet fleet({"site-a/b1"});
    auto r = dispatch(fleet.hub, {"site-a/b1", "1.5", "--for", "10m", "--wait", "--reason", "test", "--requested-by",
                                  "ci"});
    INFO(r.out << r.err);
    REQUIRE(r.status == 0);
    auto results = json_lines(r.out);
    REQUIRE(results.size() == 1);
    CHECK(results[0]["asset"] == "site-a/b1");
    CHECK(results[0]["state"] == "applied");
    CHECK(results[0]["error"].is_null());
    CHECK(results[0]["latency_ms"].get<double>() >= 0);
    CHECK(!results[0].contains("line"));
    const auto id = results[0]["dispatch_id"].get<std::string>();
    CHECK(get_json(fleet.hub.http_port(), "/dispatch/" + id)["requested_by"] == "ci");

    // Charging is negative: a negative MW is a value, not a flag.
    auto charge = dispatch(fleet.hub, {"site-a/b1", "-1", "--wait"});
    INFO(charge.out << charge.err);
    CHECK(charge.status == 0);
    CHECK(json_lines(charge.out).at(0)["state"] == "applied");

    auto unknown = dispatch(fleet.hub, {"site-a/nope", "1"});
    CHECK(unknown.status == 1);
    CHECK_THAT(json_lines(unknown.out).at(0)["error"].get<std::string>(), Catch::StartsWith("not_found"));
    auto too_much = dispatch(fleet.hub, {"site-a/b1", "99"});
    CHECK(too_much.status == 1);
    CHECK_THAT(json_lines(too_much.out).at(0)["error"].get<std::string>(), Catch::StartsWith("unprocessable"));
    CHECK(dispatch(fleet.hub, {"site-a/b1"}).status == 64);
}

TEST_CASE("a JSON-lines schedule with relative times is sent in order at its times", "[integration]") {
    Fleet fleet({"site-a/b1"});
    const std::string schedule =
        "{\"asset\":\"site-a/b1\",\"mw\":0.5,\"at\":\"+0s\"}\n"
        "{\"asset\":\"site-a/b1\",\"mw\":1.0,\"at\":\"+1s\"}\n"
        "{\"asset\":\"site-a/b1\",\"mw\":1.5,\"at\":\"+2s\",\"duration_s\":600}\n";
    auto r = dispatch(fleet.hub, {"--wait"}, schedule);
    INFO(r.out << r.err);
    REQUIRE(r.status == 0);
    CHECK(r.elapsed >= 2000ms);
    auto results = json_lines(r.out);
    REQUIRE(results.size() == 3);
    std::map<int, std::string> ids;
    for (const auto& res : results) {
        CHECK(res["state"] == "applied");
        ids[res["line"].get<int>()] = res["dispatch_id"].get<std::string>();
    }
    REQUIRE(ids.size() == 3);

    // The hub saw them in input order, about a second apart.
    auto h = history(fleet.hub, {"dispatch", "site-a/b1", "--since", "-5m"});
    INFO(h.err);
    REQUIRE(h.status == 0);
    auto rows = json_lines(h.out);
    REQUIRE(rows.size() == 3);
    std::vector<der::TimestampMs> created;
    for (std::size_t i = 0; i < 3; ++i) {
        CHECK(rows[i]["dispatch_id"] == ids[static_cast<int>(i + 1)]);
        CHECK(rows[i]["mw"].get<double>() == Approx(0.5 * static_cast<double>(i + 1)));
        created.push_back(*der::parse_rfc3339(rows[i]["created_at"].get<std::string>()));
    }
    CHECK(created[1] - created[0] >= 900);
    CHECK(created[2] - created[1] >= 900);
    CHECK(rows[2]["duration_s"] == 600.0);
    // The last one is in force (the first two were superseded).
    CHECK(rows[0]["state"] == "superseded");
    CHECK(rows[2]["state"] == "applied");
}

TEST_CASE("a bad schedule line exits 65 naming its line, before anything is sent", "[integration]") {
    TempDir dir;
    HubUnderTest hub(dir, fleet_yaml(three_assets(), k_interval_s));
    const std::string schedule =
        "asset,mw,at\n"
        "site-a/b1,1,+0s\n"
        "site-a/b1,2,+1s\n"
        "site-a/b1,lots,+2s\n";
    auto r = dispatch(hub, {}, schedule);
    INFO(r.err);
    CHECK(r.status == 65);
    CHECK(r.out.empty());
    CHECK_THAT(r.err, Catch::Contains("line 4: mw:"));

    auto json_bad = dispatch(hub, {}, "{\"asset\":\"site-a/b1\",\"mw\":1}\n{\"asset\":\"site-a/b1\",\"mw\":1,\"at\":\"later\"}\n");
    CHECK(json_bad.status == 65);
    CHECK_THAT(json_bad.err, Catch::Contains("line 2: at:"));

    auto h = history(hub, {"dispatch", "site-a/b1", "--since", "-5m"});
    REQUIRE(h.status == 0);
    CHECK(lines_of(h.out).empty());
}

TEST_CASE("der-dispatch exits 69 when no hub runs and 75 when the hub is stopped, within the timeout",
          "[integration][sanitize]") {
    {
        const int port = free_port();
        auto r = run_capture({k_dispatch, "--control", fmt::format("tcp://127.0.0.1:{}", port), "--timeout", "1",
                              "site-a/b1", "1"});
        INFO(r.err);
        CHECK(r.status == 69);
        CHECK(r.elapsed < 3000ms);
        CHECK_THAT(r.err, Catch::Contains("unreachable"));
    }
    {
        TempDir dir;
        HubUnderTest hub(dir, fleet_yaml(three_assets(), k_interval_s));
        hub.process().signal(SIGSTOP);
        auto r = dispatch(hub, {"--timeout", "1", "site-a/b1", "1"});
        hub.process().signal(SIGCONT);
        INFO(r.err);
        CHECK(r.status == 75);
        CHECK(r.elapsed < 3000ms);
        auto h = run_capture({k_history, "--control", "tcp://127.0.0.1:1", "--timeout", "500ms", "telemetry",
                              "site-a/b1"});
        CHECK(h.status == 69);
    }
}

// --- der-tail -----------------------------------------------------------------------

TEST_CASE("der-tail -n 5 prints five JSON lines with asset_id and the asset's name", "[integration][sanitize]") {
    Fleet fleet({"site-a/b1", "site-b/b3"});
    const std::vector<std::string> base = {k_tail, "--stream", fleet.hub.stream_endpoint(), "--control",
                                           fleet.hub.control_endpoint()};
    auto argv = base;
    argv.insert(argv.end(), {"-n", "5"});
    auto r = run_capture(argv, {}, 20000ms);
    INFO(r.err);
    REQUIRE(r.status == 0);
    const auto lines = lines_of(r.out);
    REQUIRE(lines.size() == 5);
    for (const auto& line : lines) {
        const auto j = json::parse(line);
        CHECK(j["asset_id"].is_string());
        CHECK((j["asset"] == "site-a/b1" || j["asset"] == "site-b/b3"));
    }
    CHECK_THAT(r.err, Catch::Contains("subscribed"));

    // Through jq when it is installed, as operators use it.
    if (run_shell("command -v jq").status == 0) {
        std::string command;
        for (const auto& a : argv) command += shell_quote(a) + " ";
        auto jq = run_shell(command + "| jq -e .asset_id > /dev/null", 20000ms);
        INFO(jq.err);
        CHECK(jq.status == 0);
    }

    // One site only, with a snapshot first, as CSV.
    argv = base;
    argv.insert(argv.end(), {"--site", "site-b", "--snapshot", "--format", "csv", "-n", "3"});
    auto csv = run_capture(argv, {}, 20000ms);
    INFO(csv.err);
    REQUIRE(csv.status == 0);
    const auto rows = lines_of(csv.out);
    REQUIRE(rows.size() == 4);
    CHECK_THAT(rows[0], Catch::StartsWith("ts,asset,status,soc_pct"));
    for (std::size_t i = 1; i < rows.size(); ++i) CHECK_THAT(rows[i], Catch::Contains(",site-b/b3,"));
}

TEST_CASE("der-tail | head -1 exits 0 without an error message", "[integration]") {
    Fleet fleet({"site-a/b1"});
    const std::string command = fmt::format(
        "{{ {} --stream {} --control {}; echo \"tail-status=$?\" >&2; }} | head -1",
        shell_quote(k_tail), shell_quote(fleet.hub.stream_endpoint()), shell_quote(fleet.hub.control_endpoint()));
    auto r = run_shell(command, 20000ms);
    INFO(r.err);
    REQUIRE(!r.timed_out);
    CHECK(r.status == 0);
    CHECK(lines_of(r.out).size() == 1);
    CHECK_THAT(r.err, Catch::Contains("tail-status=0"));
    CHECK_THAT(r.err, !Catch::Contains("error"));
}

TEST_CASE("der-tail --events shows a dispatch's state changes for one asset", "[integration]") {
    Fleet fleet({"site-a/b1", "site-a/b2"});
    Process tail({k_tail, "--stream", fleet.hub.stream_endpoint(), "--control", fleet.hub.control_endpoint(),
                  "--asset", "site-a/b2", "--events"},
                 fleet.dir.file("tail.log"));
    REQUIRE(wait_until([&] { return tail.log().find("subscribed") != std::string::npos; }, 10000ms));
    auto r = dispatch(fleet.hub, {"site-a/b2", "2", "--wait"});
    REQUIRE(r.status == 0);
    REQUIRE(wait_until([&] { return tail.log().find("\"state\":\"applied\"") != std::string::npos; }, 10000ms));
    REQUIRE(wait_until([&] { return tail.log().find("\"type\":\"telemetry\"") != std::string::npos; }, 10000ms));
    CHECK(tail.stop() == 0);
    std::set<std::string> types;
    for (const auto& line : lines_of(tail.log())) {
        if (line.empty() || line.front() != '{') continue;  // log lines
        const auto j = json::parse(line);
        types.insert(j["type"].get<std::string>());
        CHECK(j["asset"] == "site-a/b2");
    }
    CHECK(types.contains("telemetry"));
    CHECK(types.contains("dispatch"));
}

TEST_CASE("a negative der-tail -n or a zero der-history --limit is a usage error, not a wrapped count",
          "[integration]") {
    for (const auto& args : std::vector<std::vector<std::string>>{{k_tail, "-n", "-1"},
                                                                  {k_tail, "-n", "-18446744073709551615"},
                                                                  {k_tail, "-n", "x"},
                                                                  {k_history, "telemetry", "a/b", "--limit", "0"},
                                                                  {k_history, "telemetry", "a/b", "--limit", "-1"}}) {
        auto r = run_capture(args, {}, 10000ms);
        INFO(fmt::format("{}", fmt::join(args, " ")) << ": " << r.err);
        CHECK(r.status == 64);
        CHECK(r.out.empty());
        CHECK(r.err.find("Value") == std::string::npos);  // ours, not CLI11's "Value 0 not in range 0.000000 to 1.79e308"
    }
}

TEST_CASE("a config that does not validate gives one error line per field, each with the journal's priority",
          "[integration]") {
    TempDir dir;
    dir.write("bad.yaml", "sites:\n  - name: x\n    assets:\n      - name: b\n        capacity_mwh: -1\n"
                          "        max_mw: -2\n        min_mw: 1\n");
    const std::string cmd = fmt::format("DER_LOG_PRIORITY_PREFIX=1 {} -c {} 2>&1", shell_quote(DER_HUB_BIN),
                                        shell_quote(dir.file("bad.yaml")));
    auto r = run_shell(cmd);
    INFO(r.out);
    CHECK(r.status == 78);
    const auto lines = lines_of(r.out);
    int errors = 0;
    for (const auto& line : lines) {
        if (line.empty()) continue;
        CHECK(line.rfind("<3>", 0) == 0);
        if (line.find("bad.yaml:") != std::string::npos) ++errors;
    }
    CHECK(errors == 3);
}

TEST_CASE("der-launch refuses a malformed --hub before starting any agent", "[integration]") {
    for (const char* hub : {"bogus", "tcp://host", "tcp://host:99999", "http://h:1"}) {
        auto r = run_capture({k_launch, "--hub", hub, DER_SOURCE_DIR "/examples/assets.yaml"}, {}, 10000ms);
        INFO(hub << ": " << r.err);
        CHECK(r.status == 64);
        CHECK(r.err.find("want tcp://HOST:PORT") != std::string::npos);
    }
}

TEST_CASE("der-tail --events --site shows a site dispatch by its site, its state never going back",
          "[integration]") {
    Fleet fleet({"site-a/b1", "site-a/b2"});
    Process tail({k_tail, "--stream", fleet.hub.stream_endpoint(), "--control", fleet.hub.control_endpoint(),
                  "--site", "site-a", "--events"},
                 fleet.dir.file("tail.log"));
    REQUIRE(wait_until([&] { return tail.log().find("subscribed") != std::string::npos; }, 10000ms));
    auto r = dispatch(fleet.hub, {"--site", "site-a", "1", "--wait"});
    INFO(r.out << r.err);
    REQUIRE(r.status == 0);
    const auto parent_id = json::parse(r.out)["dispatch_id"].get<std::string>();
    // The parent's applied comes after its children's: wait for that line itself.
    const auto parent_applied = [&] {
        for (const auto& line : lines_of(tail.log()))
            if (line.find(parent_id) != std::string::npos && line.find("\"parent_id\":null") != std::string::npos &&
                line.find("\"state\":\"applied\"") != std::string::npos)
                return true;
        return false;
    };
    REQUIRE(wait_until(parent_applied, 10000ms));
    CHECK(tail.stop() == 0);
    std::vector<std::string> parent_states;
    int children = 0;
    for (const auto& line : lines_of(tail.log())) {
        if (line.empty() || line.front() != '{') continue;
        const auto j = json::parse(line);
        if (j["type"] != "dispatch") continue;
        if (j["dispatch_id"] == parent_id) {
            CHECK(j["site"] == "site-a");
            CHECK(j["site_id"].is_string());
            CHECK_FALSE(j.contains("asset_id"));
            parent_states.push_back(j["state"].get<std::string>());
        } else if (j["parent_id"] == parent_id) {
            CHECK(j["asset"].get<std::string>().starts_with("site-a/"));
            ++children;
        }
    }
    CHECK(children > 0);
    CHECK(parent_states == std::vector<std::string>{"queued", "sent", "applied"});
}

// --- der-history --------------------------------------------------------------------

TEST_CASE("der-history returns telemetry rows with contiguous seq, as JSON and CSV", "[integration]") {
    Fleet fleet({"site-a/b1"});
    REQUIRE(wait_until(
        [&] {
            auto h = history(fleet.hub, {"telemetry", "site-a/b1", "--since", "-5m"});
            return h.status == 0 && lines_of(h.out).size() >= 6;
        },
        15000ms));
    auto r = history(fleet.hub, {"telemetry", "site-a/b1", "--since", "-5m", "--until", "now"});
    REQUIRE(r.status == 0);
    const auto rows = json_lines(r.out);
    REQUIRE(rows.size() >= 6);
    std::set<std::string> epochs;
    for (std::size_t i = 0; i < rows.size(); ++i) {
        epochs.insert(rows[i]["epoch"].get<std::string>());
        if (i > 0) CHECK(rows[i]["seq"].get<std::uint64_t>() == rows[i - 1]["seq"].get<std::uint64_t>() + 1);
    }
    CHECK(epochs.size() == 1);

    auto limited = history(fleet.hub, {"telemetry", "site-a/b1", "--since", "-5m", "--limit", "3", "--format", "csv"});
    REQUIRE(limited.status == 0);
    const auto csv = lines_of(limited.out);
    REQUIRE(csv.size() == 4);
    CHECK_THAT(csv[0], Catch::StartsWith("ts,asset_id,site_id,epoch,seq,"));

    auto unknown = history(fleet.hub, {"telemetry", "site-a/nope"});
    CHECK(unknown.status == 1);
    CHECK_THAT(unknown.err, Catch::Contains("not_found"));
}

TEST_CASE("der-history --every values equal an aggregate of the raw rows", "[integration]") {
    Fleet fleet({"site-a/b1"});
    // Discharge for a while so that SOC and power vary inside the window.
    const auto start = der::now_ms();
    std::this_thread::sleep_for(1500ms);
    REQUIRE(dispatch(fleet.hub, {"site-a/b1", "2", "--wait"}).status == 0);
    std::this_thread::sleep_for(3000ms);
    const auto until = der::now_ms();
    const auto since_text = der::format_rfc3339(start);
    const auto until_text = der::format_rfc3339(until);

    auto raw = history(fleet.hub, {"telemetry", "site-a/b1", "--since", since_text, "--until", until_text});
    REQUIRE(raw.status == 0);
    const auto rows = json_lines(raw.out);
    REQUIRE(rows.size() >= 6);

    auto bucketed = history(fleet.hub, {"telemetry", "site-a/b1", "--since", since_text, "--until", until_text,
                                        "--every", "2s"});
    REQUIRE(bucketed.status == 0);
    CHECK(check_buckets_match_raw(rows, json_lines(bucketed.out), 2000));
}

// --- der-launch ---------------------------------------------------------------------

TEST_CASE("der-launch runs one agent per asset, restarts a killed one and leaves none behind",
          "[integration]") {
    TempDir dir;
    HubUnderTest hub(dir, fleet_yaml(three_assets(), k_interval_s));
    const std::vector<std::string> names = {"site-a/b1", "site-a/b2", "site-b/b3"};

    CHECK(run_capture({k_launch, hub.config_path(), "--only", "site-a/nope", "--agent", agent_binary()}).status == 78);

    Process launcher({k_launch, hub.config_path(), "--hub", hub.agents_endpoint(), "--agent", agent_binary(),
                      "--log-level", "debug"},
                     dir.file("launch.log"));
    for (const auto& name : names) {
        INFO(name);
        REQUIRE(wait_until([&] { return online(hub.http_port(), name); }, 15000ms));
    }
    std::vector<pid_t> children = child_pids(launcher.pid());
    REQUIRE(children.size() == 3);
    CHECK_THAT(launcher.log(), Catch::Contains("[site-a/b2] "));

    // kill -9 one child: it comes back as a new process and a new instance.
    const auto before = (*agent_of(hub.http_port(), "site-a/b2"))["instance_id"];
    pid_t victim = -1;
    for (const pid_t pid : children) {
        if (read_file(fmt::format("/proc/{}/cmdline", pid)).find("site-a/b2") != std::string::npos) victim = pid;
    }
    REQUIRE(victim > 0);
    ::kill(victim, SIGKILL);
    REQUIRE(wait_until(
        [&] {
            auto a = agent_of(hub.http_port(), "site-a/b2");
            return a && (*a)["online"].get<bool>() && (*a)["instance_id"] != before;
        },
        20000ms));
    const auto now_children = child_pids(launcher.pid());
    CHECK(now_children.size() == 3);
    for (const pid_t pid : now_children) {
        if (std::find(children.begin(), children.end(), pid) == children.end()) children.push_back(pid);
    }
    CHECK_THAT(launcher.log(), Catch::Contains("restarting in"));

    // SIGTERM: forwarded, every agent ends, der-launch exits 0.
    launcher.signal(SIGTERM);
    const auto status = launcher.wait_exit(15000ms);
    INFO(launcher.log());
    REQUIRE(status);
    CHECK(*status == 0);
    for (const pid_t pid : children) {
        INFO(pid);
        CHECK(!process_alive(pid));
    }
}

TEST_CASE("der-launch gives each agent a file of its own asset only, in a private directory removed on exit",
          "[integration]") {
    TempDir dir;
    HubUnderTest hub(dir, fleet_yaml(three_assets(), k_interval_s));
    const std::vector<std::string> names = {"site-a/b1", "site-a/b2", "site-b/b3"};
    Process launcher({k_launch, hub.config_path(), "--hub", hub.agents_endpoint(), "--agent", agent_binary()},
                     dir.file("launch.log"));
    for (const auto& name : names) {
        INFO(name);
        REQUIRE(wait_until([&] { return online(hub.http_port(), name); }, 15000ms));
    }
    // Each child's --config: a file of that asset alone, in one 0700 directory.
    std::set<std::string> runtime_dirs;
    std::vector<std::string> configs;
    for (const pid_t pid : child_pids(launcher.pid())) {
        std::vector<std::string> argv;
        const std::string cmdline = read_file(fmt::format("/proc/{}/cmdline", pid));
        for (std::size_t at = 0; at < cmdline.size();) {
            const auto end = cmdline.find('\0', at);
            argv.push_back(cmdline.substr(at, end - at));
            at = end == std::string::npos ? cmdline.size() : end + 1;
        }
        const auto config = std::find(argv.begin(), argv.end(), "--config");
        const auto asset = std::find(argv.begin(), argv.end(), "--asset");
        REQUIRE(config + 1 < argv.end());
        REQUIRE(asset + 1 < argv.end());
        INFO(config[1]);
        CHECK(config[1] != hub.config_path());
        const auto loaded = der::config::load_file(config[1]);
        REQUIRE(loaded);
        REQUIRE(loaded->fleet.all_assets().size() == 1);
        CHECK(loaded->fleet.all_assets()[0]->qualified_name() == asset[1]);
        const auto site_dir = std::filesystem::path(config[1]).parent_path();
        runtime_dirs.insert(site_dir.parent_path().string());
        configs.push_back(config[1]);
        CHECK((std::filesystem::status(config[1]).permissions() & std::filesystem::perms::group_all) ==
              std::filesystem::perms::none);
    }
    REQUIRE(configs.size() == names.size());
    REQUIRE(runtime_dirs.size() == 1);
    const std::string runtime = *runtime_dirs.begin();
    CHECK(std::filesystem::status(runtime).permissions() == std::filesystem::perms::owner_all);

    // SIGHUP: no reload, a clean stop like SIGTERM, and the directory goes.
    launcher.signal(SIGHUP);
    const auto status = launcher.wait_exit(15000ms);
    INFO(launcher.log());
    REQUIRE(status);
    CHECK(*status == 0);
    CHECK_THAT(launcher.log(), Catch::Contains("does not reload"));
    CHECK_FALSE(std::filesystem::exists(runtime));
}
