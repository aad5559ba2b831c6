// Operator controls: site dispatch, cancel, stop, scheduled dispatch, maintenance, audit.
#include "harness.hpp"

#include "der/util/time.hpp"

#include <catch2/catch.hpp>
#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <set>
#include <thread>

using namespace der::test;
using nlohmann::json;

namespace {

constexpr double k_interval_s = 0.5;

/// One site, three batteries with different SOC (headroom above soc_min 5 %:
/// b1 3.0 MWh, b2 1.4 MWh, b3 5.2 MWh).
std::vector<TestAsset> site() {
    return {{"plant", "b1", 4.0, 2.0, -2.0, 80.0, 0.0},
            {"plant", "b2", 4.0, 2.0, -2.0, 40.0, 0.0},
            {"plant", "b3", 8.0, 1.0, -1.0, 70.0, 0.0},
            {"other", "x1", 2.0, 1.0, -1.0, 50.0, 0.0}};
}

struct Fleet {
    TempDir dir;
    HubUnderTest hub;
    std::vector<std::unique_ptr<Process>> agents;
    explicit Fleet(std::vector<std::string> hub_args = {})
        : hub(dir, fleet_yaml(site(), k_interval_s), std::move(hub_args)) {
        for (const char* a : {"plant/b1", "plant/b2", "plant/b3", "other/x1"})
            agents.push_back(start_agent(dir, hub.agents_endpoint(), hub.config_path(), a));
        for (const char* a : {"plant/b1", "plant/b2", "plant/b3", "other/x1"}) {
            INFO(a);
            REQUIRE(wait_until([&] { return http_get(hub.http_port(), std::string("/telemetry/") + a)->status == 200; },
                               10000ms));
        }
    }
    int port() const { return hub.http_port(); }
};

json post(int port, const std::string& path, const json& body, int expect) {
    auto r = http_post(port, path, body.dump());
    REQUIRE(r);
    INFO(path << " -> " << r->body);
    REQUIRE(r->status == expect);
    return json::parse(r->body);
}

json del(int port, const std::string& path, const json& body, int expect) {
    auto r = http_delete(port, path, body.dump());
    REQUIRE(r);
    INFO(path << " -> " << r->body);
    REQUIRE(r->status == expect);
    return json::parse(r->body);
}

double setpoint_of(int port, const std::string& asset) {
    return get_json(port, "/telemetry/" + asset)["setpoint_mw"].get<double>();
}

bool all_zero(int port, std::initializer_list<const char*> assets) {
    for (const char* a : assets) {
        const auto t = get_json(port, std::string("/telemetry/") + a);
        if (t["setpoint_mw"].get<double>() != 0.0 || t["current_mw"].get<double>() != 0.0) return false;
    }
    return true;
}

}  // namespace

TEST_CASE("a site target is split by headroom across its batteries and adds up", "[integration][sanitize]") {
    Fleet f;
    const auto parent = post(f.port(), "/sites/plant/dispatch",
                             {{"mw", 3.0}, {"duration_s", 600}, {"reason", "evening peak"}, {"requested_by", "ann"}},
                             202);
    REQUIRE(parent["children"].size() == 3);
    double total = 0;
    std::map<std::string, double> by_asset;
    for (const auto& c : parent["children"]) {
        total += c["mw"].get<double>();
        by_asset[c["asset_id"].get<std::string>()] = c["mw"].get<double>();
        CHECK(c["parent_id"] == parent["dispatch_id"]);
    }
    CHECK(total == Approx(3.0));
    const auto id = [&](const char* a) { return get_json(f.port(), std::string("/assets/") + a)["id"].get<std::string>(); };
    // Headroom 3.0 : 1.4 : 5.2 MWh, b3 capped at its 1 MW; b1 and b2 share the other 2 MW 3.0 : 1.4.
    CHECK(by_asset[id("plant/b3")] == Approx(1.0).margin(0.01));
    CHECK(by_asset[id("plant/b1")] == Approx(2.0 * 3.0 / 4.4).margin(0.01));
    CHECK(by_asset[id("plant/b2")] == Approx(2.0 * 1.4 / 4.4).margin(0.01));
    REQUIRE(wait_until(
        [&] { return get_json(f.port(), "/dispatch/" + parent["dispatch_id"].get<std::string>())["state"] == "applied"; },
        3000ms));
    CHECK(get_json(f.port(), "/telemetry/other/x1")["setpoint_mw"] == 0.0);  // another site is untouched

    // A target the site cannot meet is refused, naming the shortfall.
    const auto refused = post(f.port(), "/sites/plant/dispatch", {{"mw", 6.0}}, 422);
    CHECK(refused["error"]["message"].get<std::string>().find("MW short") != std::string::npos);
    post(f.port(), "/sites/nowhere/dispatch", {{"mw", 1.0}}, 404);
    CHECK(f.hub.stop() == 0);
}

TEST_CASE("a dispatch duration outside 0.1 s .. 366 days is a 400 and leaves the dispatch in force alone",
          "[integration]") {
    Fleet f;
    const auto running = post(f.port(), "/dispatch", {{"asset", "other/x1"}, {"mw", 0.8}, {"duration_s", "10m"}}, 202);
    const std::string path = "/dispatch/" + running["dispatch_id"].get<std::string>();
    REQUIRE(wait_until([&] { return setpoint_of(f.port(), "other/x1") == 0.8; }, 3000ms));
    for (const json& d : {json(0.0004), json(1e16), json("400d")}) {
        INFO(d.dump());
        const auto r = post(f.port(), "/dispatch", {{"asset", "other/x1"}, {"mw", 0.5}, {"duration_s", d}}, 400);
        CHECK(r["error"]["message"].get<std::string>().find("between 0.1 s and") != std::string::npos);
    }
    post(f.port(), "/sites/plant/dispatch", {{"mw", 1.0}, {"duration_s", 1e16}}, 400);
    std::this_thread::sleep_for(1200ms);  // two telemetry intervals
    CHECK(get_json(f.port(), path)["state"] == "applied");
    CHECK(setpoint_of(f.port(), "other/x1") == 0.8);
    CHECK(f.hub.stop() == 0);
}

TEST_CASE("cancel and stop bring every affected battery to 0 MW within 2 s", "[integration]") {
    Fleet f;
    const auto single = post(f.port(), "/dispatch", {{"asset", "other/x1"}, {"mw", 0.8}}, 202);
    const auto parent = post(f.port(), "/sites/plant/dispatch", {{"mw", -2.0}}, 202);
    REQUIRE(wait_until([&] { return setpoint_of(f.port(), "other/x1") == 0.8; }, 3000ms));
    REQUIRE(wait_until([&] { return setpoint_of(f.port(), "plant/b1") < 0; }, 3000ms));

    // Cancel the site dispatch: its children are cancelled and the plant goes to 0 MW.
    const auto cancelled = del(f.port(), "/dispatch/" + parent["dispatch_id"].get<std::string>(),
                               {{"reason", "price changed"}, {"requested_by", "bob"}}, 200);
    CHECK(cancelled["state"] == "cancelled");
    // A site dispatch is shown by its site, in every answer (as GET /dispatch/{id}).
    CHECK(cancelled["site_id"] == parent["site_id"]);
    CHECK_FALSE(cancelled.contains("asset_id"));
    CHECK(cancelled["children"].size() == 3);
    int parents_listed = 0;
    const auto listed = get_json(f.port(), "/dispatch/history");
    INFO(listed.dump());
    for (const auto& row : listed["rows"]) {
        if (row["dispatch_id"] != parent["dispatch_id"]) continue;
        ++parents_listed;
        CHECK(row["site_id"] == parent["site_id"]);
        CHECK_FALSE(row.contains("asset_id"));
    }
    CHECK(parents_listed == 1);
    REQUIRE(wait_until([&] { return all_zero(f.port(), {"plant/b1", "plant/b2", "plant/b3"}); }, 2500ms));
    for (const auto& c : get_json(f.port(), "/dispatch/" + parent["dispatch_id"].get<std::string>())["children"])
        CHECK(c["state"] == "cancelled");
    CHECK(setpoint_of(f.port(), "other/x1") == 0.8);
    CHECK(get_json(f.port(), "/telemetry/plant/b1")["dispatch_id"].is_null());
    del(f.port(), "/dispatch/" + parent["dispatch_id"].get<std::string>(), json::object(), 422);  // already over

    // Stop everything.
    post(f.port(), "/sites/plant/dispatch", {{"mw", 1.0}}, 202);
    REQUIRE(wait_until([&] { return setpoint_of(f.port(), "plant/b1") > 0; }, 3000ms));
    const auto stopped = post(f.port(), "/stop", {{"reason", "alarm"}, {"requested_by", "carol"}}, 200);
    CHECK(stopped["assets"] == 4);
    CHECK(stopped["cancelled"].get<int>() >= 4);
    REQUIRE(wait_until([&] { return all_zero(f.port(), {"plant/b1", "plant/b2", "plant/b3", "other/x1"}); }, 2500ms));
    CHECK(get_json(f.port(), "/dispatch/" + single["dispatch_id"].get<std::string>())["state"] == "cancelled");

    // Who and why are in the audit trail and the dispatch history.
    const auto audit = get_json(f.port(), "/audit")["rows"];
    bool saw_stop = false, saw_cancel = false;
    for (const auto& a : audit) {
        if (a["action"] == "stop" && a["requested_by"] == "carol" && a["reason"] == "alarm") saw_stop = true;
        if (a["action"] == "cancel" && a["requested_by"] == "bob" && a["reason"] == "price changed") saw_cancel = true;
    }
    CHECK(saw_stop);
    CHECK(saw_cancel);
    CHECK(get_json(f.port(), "/dispatch/" + single["dispatch_id"].get<std::string>())["error"].get<std::string>().find(
              "carol") != std::string::npos);
    CHECK(f.hub.stop() == 0);
}

TEST_CASE("a dispatch scheduled 5 s ahead starts on time, one cancelled before never starts", "[integration]") {
    Fleet f;
    const auto at = der::now_ms() + 5000;
    const auto scheduled = post(f.port(), "/dispatch",
                                {{"asset", "plant/b2"}, {"mw", 1.0}, {"start_at", der::format_rfc3339(at)},
                                 {"reason", "planned"}, {"requested_by", "dan"}},
                                202);
    CHECK(scheduled["state"] == "scheduled");
    const auto doomed = post(f.port(), "/dispatch", {{"asset", "plant/b3"}, {"mw", 0.5}, {"start_at", "+4s"}}, 202);
    const auto listed = get_json(f.port(), "/dispatch?state=scheduled");
    CHECK(listed["count"] == 2);
    del(f.port(), "/dispatch/" + doomed["dispatch_id"].get<std::string>(), {{"reason", "not needed"}}, 200);

    REQUIRE(wait_until([&] { return setpoint_of(f.port(), "plant/b2") == 1.0; }, 8000ms));
    const auto started = der::now_ms();
    CHECK(started >= at - 100);
    CHECK(started <= at + 1500);
    const auto d = get_json(f.port(), "/dispatch/" + scheduled["dispatch_id"].get<std::string>());
    CHECK(d["state"] == "applied");
    CHECK(d["requested_by"] == "dan");
    CHECK(d["reason"] == "planned");
    std::this_thread::sleep_for(1000ms);  // give the cancelled one time to show if it wrongly started
    CHECK(setpoint_of(f.port(), "plant/b3") == 0.0);
    CHECK(get_json(f.port(), "/dispatch/" + doomed["dispatch_id"].get<std::string>())["state"] == "cancelled");
    CHECK(f.hub.stop() == 0);
}

TEST_CASE("an asset in maintenance refuses direct dispatch and is skipped by site dispatch", "[integration]") {
    Fleet f;
    post(f.port(), "/dispatch", {{"asset", "plant/b1"}, {"mw", 1.0}}, 202);
    REQUIRE(wait_until([&] { return setpoint_of(f.port(), "plant/b1") == 1.0; }, 3000ms));
    const auto asset = post(f.port(), "/assets/plant/b1/availability",
                            {{"available", false}, {"reason", "inverter swap"}, {"requested_by", "eve"}}, 200);
    CHECK(asset["available"] == false);
    REQUIRE(wait_until([&] { return setpoint_of(f.port(), "plant/b1") == 0.0; }, 2500ms));  // out of service: 0 MW
    post(f.port(), "/dispatch", {{"asset", "plant/b1"}, {"mw", 0.5}}, 422);
    const auto parent = post(f.port(), "/sites/plant/dispatch", {{"mw", 1.5}}, 202);
    CHECK(parent["children"].size() == 2);
    for (const auto& c : parent["children"])
        CHECK(c["asset_id"] != get_json(f.port(), "/assets/plant/b1")["id"]);
    post(f.port(), "/assets/plant/b1/availability", {{"available", true}}, 200);
    post(f.port(), "/dispatch", {{"asset", "plant/b1"}, {"mw", 0.5}}, 202);
    CHECK(f.hub.stop() == 0);
}

TEST_CASE("der-dispatch --site, --at, --cancel and --stop drive the operator controls", "[integration]") {
    Fleet f;
    const std::string control = f.hub.control_endpoint();
    const auto cli = [&](std::vector<std::string> args) {
        args.insert(args.begin(), {DER_DISPATCH_BIN, "--control", control, "--requested-by", "erin"});
        return run_capture(args);
    };

    // A site dispatch, split by the hub; the result line names the site.
    auto site = cli({"--site", "plant", "--reason", "evening peak", "-1.5"});
    INFO(site.out << site.err);
    REQUIRE(site.status == 0);
    const auto site_line = json::parse(site.out);
    CHECK(site_line["site"] == "plant");
    CHECK(site_line["asset"].is_null());
    const auto parent_id = site_line["dispatch_id"].get<std::string>();
    REQUIRE(wait_until([&] { return setpoint_of(f.port(), "plant/b1") < 0; }, 3000ms));
    const auto parent = get_json(f.port(), "/dispatch/" + parent_id);
    CHECK(parent["requested_by"] == "erin");
    CHECK(parent["reason"] == "evening peak");
    double sum = 0;
    for (const auto& c : parent["children"]) sum += c["mw"].get<double>();
    CHECK(std::abs(sum + 1.5) < 1e-6);

    // Cancel it: its children are cancelled and the plant goes to 0 MW.
    auto cancel = cli({"--cancel", parent_id, "--reason", "price changed"});
    INFO(cancel.out << cancel.err);
    CHECK(cancel.status == 0);
    CHECK(json::parse(cancel.out)["state"] == "cancelled");
    CHECK(json::parse(cancel.out)["error"].is_null());  // the stored "cancelled by ..." is no error
    REQUIRE(wait_until([&] { return all_zero(f.port(), {"plant/b1", "plant/b2", "plant/b3"}); }, 2500ms));
    auto again = cli({"--cancel", parent_id});  // already over
    CHECK(again.status == 1);
    CHECK(json::parse(again.out)["latency_ms"].is_number());  // as on success
    CHECK(cli({"--cancel", "not-a-uuid"}).status == 64);
    CHECK(cli({"--site", "nowhere", "1"}).status == 1);                    // unknown site
    CHECK(cli({"--site", "plant", "50"}).status == 1);                     // the plant cannot do 50 MW
    CHECK(cli({"--stop", "--at", "+5s"}).status == 64);                    // a stop is never scheduled

    // --wait with a start beyond --timeout: exit 75, and the line says the
    // dispatch stays active at the hub (a script must not send it again).
    auto held = cli({"other/x1", "0.2", "--at", "+1h", "--wait", "--timeout", "1"});
    INFO(held.out << held.err);
    CHECK(held.status == 75);
    const auto held_line = json::parse(held.out);
    CHECK(held_line["state"] == "scheduled");
    CHECK(held_line["error"].get<std::string>().find("stays active at the hub") != std::string::npos);
    const auto held_id = held_line["dispatch_id"].get<std::string>();
    CHECK(get_json(f.port(), "/dispatch/" + held_id)["state"] == "scheduled");
    CHECK(cli({"--cancel", held_id}).status == 0);

    // A dispatch held by the hub: scheduled now, applied at its time, after the CLI exited.
    auto later = cli({"other/x1", "0.7", "--at", "+3s"});
    INFO(later.out << later.err);
    REQUIRE(later.status == 0);
    const auto later_line = json::parse(later.out);
    CHECK(later_line["state"] == "scheduled");
    CHECK(setpoint_of(f.port(), "other/x1") == 0.0);
    REQUIRE(wait_until([&] { return setpoint_of(f.port(), "other/x1") == 0.7; }, 6000ms));

    // Stop one site: only its assets; then everything.
    post(f.port(), "/sites/plant/dispatch", {{"mw", 1.0}}, 202);
    REQUIRE(wait_until([&] { return setpoint_of(f.port(), "plant/b1") > 0; }, 3000ms));
    auto stop_plant = cli({"--stop", "--site", "plant", "--reason", "alarm"});
    INFO(stop_plant.out << stop_plant.err);
    REQUIRE(stop_plant.status == 0);
    const auto stop_line = json::parse(stop_plant.out);
    CHECK(stop_line["site"] == "plant");
    CHECK(stop_line["assets"] == 3);
    REQUIRE(wait_until([&] { return all_zero(f.port(), {"plant/b1", "plant/b2", "plant/b3"}); }, 2500ms));
    CHECK(setpoint_of(f.port(), "other/x1") == 0.7);
    auto stop_all = cli({"--stop"});
    REQUIRE(stop_all.status == 0);
    CHECK(json::parse(stop_all.out)["assets"] == 4);
    REQUIRE(wait_until([&] { return all_zero(f.port(), {"other/x1"}); }, 2500ms));
    bool audited = false;
    const auto audit = get_json(f.port(), "/audit");
    INFO(audit.dump());
    for (const auto& a : audit["rows"])
        if (a["action"] == "stop" && a["requested_by"] == "erin" && a["reason"] == "alarm") audited = true;
    CHECK(audited);
    CHECK(f.hub.stop() == 0);
}

TEST_CASE("der-dispatch --hub-schedule hands a whole run to the hub at once", "[integration]") {
    Fleet f;
    const std::string run = "{\"site\":\"plant\",\"mw\":1,\"at\":\"+3s\",\"reason\":\"planned\"}\n"
                            "{\"asset\":\"other/x1\",\"mw\":-0.5,\"at\":\"+3s\"}\n";
    const auto started = std::chrono::steady_clock::now();
    auto r = run_capture({DER_DISPATCH_BIN, "--control", f.hub.control_endpoint(), "--hub-schedule"}, run);
    INFO(r.out << r.err);
    REQUIRE(r.status == 0);
    CHECK(std::chrono::steady_clock::now() - started < 2500ms);  // it did not wait for `at`
    const auto lines = lines_of(r.out);
    REQUIRE(lines.size() == 2);
    for (const auto& l : lines) CHECK(json::parse(l)["state"] == "scheduled");
    CHECK(get_json(f.port(), "/dispatch?state=scheduled")["count"] == 5);  // the site's parent, 3 children, x1
    REQUIRE(wait_until([&] { return setpoint_of(f.port(), "other/x1") == -0.5; }, 6000ms));
    REQUIRE(wait_until([&] { return setpoint_of(f.port(), "plant/b1") > 0; }, 3000ms));
    CHECK(f.hub.stop() == 0);
}

TEST_CASE("GET /telemetry?stale=true lists the assets that went quiet", "[integration]") {
    Fleet f;
    const auto names = [&](const std::string& query) {
        std::set<std::string> out;
        for (const auto& t : get_json(f.port(), "/telemetry" + query)) out.insert(t["asset"].get<std::string>());
        return out;
    };
    CHECK(names("?stale=true").empty());
    CHECK(names("?stale=false").size() == 4);
    f.agents[1]->stop();  // plant/b2 goes quiet
    REQUIRE(wait_until([&] { return names("?stale=true") == std::set<std::string>{"plant/b2"}; }, 5000ms));
    const auto quiet = get_json(f.port(), "/telemetry?stale=true")[0];
    CHECK(quiet["age_s"].get<double>() > 3 * k_interval_s);
    CHECK(names("?stale=false") == std::set<std::string>{"plant/b1", "plant/b3", "other/x1"});
    CHECK(names("").size() == 4);
    auto bad = http_get(f.port(), "/telemetry?stale=maybe");
    REQUIRE(bad);
    CHECK(bad->status == 400);
    CHECK(json::parse(bad->body)["error"]["code"] == "bad_request");
}
