// der-hub + der-agent over loopback: sessions, telemetry, resilience.
#include "harness.hpp"

#include "der/util/time.hpp"

#include <catch2/catch.hpp>
#include <fmt/core.h>
#include <nlohmann/json.hpp>
#include <zmq.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <random>
#include <sstream>
#include <set>
#include <thread>

using namespace der::test;
using nlohmann::json;

namespace {

constexpr double k_interval_s = 0.5;  // accelerated telemetry for tests

std::vector<TestAsset> three_assets() {
    return {{"site-a", "b1", 4.0, 2.0, -2.0, 50.0, 0.0},
            {"site-a", "b2", 8.0, 4.0, -3.0, 30.0, 0.0},
            {"site-b", "b3", 2.0, 1.0, -1.0, 70.0, 0.0}};
}

bool has_telemetry(int port, const std::string& asset) {
    auto r = http_get(port, "/telemetry/" + asset);
    return r && r->status == 200;
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

/// Every seq in `rows` (one epoch) is present once and they are contiguous.
void require_contiguous(const json& rows, const std::string& what) {
    INFO(what);
    REQUIRE(!rows.empty());
    std::set<std::uint64_t> seqs;
    std::set<std::string> epochs;
    for (const auto& r : rows) {
        REQUIRE(seqs.insert(r["seq"].get<std::uint64_t>()).second);  // never twice
        epochs.insert(r["epoch"].get<std::string>());
    }
    REQUIRE(epochs.size() == 1);
    REQUIRE(*seqs.rbegin() - *seqs.begin() + 1 == seqs.size());  // no gap
}

double metric(int port, const std::string& name) {
    auto r = http_get(port, "/metrics");
    return r ? metric_in(r->body, name) : -1;
}

}  // namespace

TEST_CASE("telemetry from three agents is visible over REST within one interval", "[integration][sanitize]") {
    TempDir dir;
    HubUnderTest hub(dir, fleet_yaml(three_assets(), k_interval_s));
    auto a1 = start_agent(dir, hub.agents_endpoint(), hub.config_path(), "site-a/b1");
    auto a2 = start_agent(dir, hub.agents_endpoint(), hub.config_path(), "site-a/b2");
    auto a3 = start_agent(dir, hub.agents_endpoint(), hub.config_path(), "site-b/b3");

    // Start-up and registration included, each agent's first record arrives
    // within a few intervals; after that a new one within one interval.
    for (const char* asset : {"site-a/b1", "site-a/b2", "site-b/b3"}) {
        INFO(asset);
        REQUIRE(wait_until([&] { return has_telemetry(hub.http_port(), asset); }, 10000ms));
    }
    const auto first = get_json(hub.http_port(), "/telemetry/site-a/b2");
    CHECK(first["soc_pct"].get<double>() == Approx(30.0).margin(0.5));
    CHECK(first["capacity_mwh"].get<double>() == 8.0);
    CHECK(first["status"] == "idle");
    CHECK(first["stale"] == false);
    const auto seq = first["seq"].get<std::uint64_t>();
    REQUIRE(wait_until(
        [&] { return get_json(hub.http_port(), "/telemetry/site-a/b2")["seq"].get<std::uint64_t>() > seq; },
        std::chrono::milliseconds(static_cast<int>(k_interval_s * 1000) + 400)));

    // By UUID as well as by name; all three in /telemetry and /agents.
    const auto id = first["asset_id"].get<std::string>();
    CHECK(get_json(hub.http_port(), "/telemetry/" + id)["asset"] == "site-a/b2");
    CHECK(get_json(hub.http_port(), "/telemetry").size() == 3);
    REQUIRE(wait_until([&] { return get_json(hub.http_port(), "/agents").size() == 3; }, 5000ms));
    CHECK(get_json(hub.http_port(), "/health")["agents_online"] == 3);

    // The event loop's turn times: a Prometheus histogram whose buckets are
    // cumulative and whose +Inf bucket counts every turn.
    const auto metrics = http_get(hub.http_port(), "/metrics");
    REQUIRE(metrics);
    const double turns = metric_in(metrics->body, "der_hub_loop_turn_seconds_count");
    CHECK(turns > 0);
    CHECK(metric_in(metrics->body, "der_hub_loop_turn_seconds_bucket{le=\"+Inf\"}") == turns);
    const double under_1ms = metric_in(metrics->body, "der_hub_loop_turn_seconds_bucket{le=\"0.001\"}");
    CHECK(under_1ms > 0);
    CHECK(under_1ms <= metric_in(metrics->body, "der_hub_loop_turn_seconds_bucket{le=\"0.1\"}"));
    CHECK(metric_in(metrics->body, "der_hub_loop_turn_seconds_sum") > 0);

    // Unknown assets and routes are JSON 404s.
    auto missing = http_get(hub.http_port(), "/telemetry/site-a/nope");
    REQUIRE(missing);
    CHECK(missing->status == 404);
    CHECK(json::parse(missing->body)["error"]["code"] == "not_found");

    for (auto* a : {a1.get(), a2.get(), a3.get()}) CHECK(a->stop() == 0);
    CHECK(hub.stop() == 0);
}

TEST_CASE("a second instance for a held asset is refused until the first has been silent 3 intervals",
          "[integration]") {
    TempDir dir;
    HubUnderTest hub(dir, fleet_yaml(three_assets(), k_interval_s));
    auto first = start_agent(dir, hub.agents_endpoint(), hub.config_path(), "site-a/b1");
    REQUIRE(wait_until([&] { return online(hub.http_port(), "site-a/b1"); }, 10000ms));
    const auto holder = (*agent_of(hub.http_port(), "site-a/b1"))["instance_id"];

    auto second = start_agent(dir, hub.agents_endpoint(), hub.config_path(), "site-a/b1");
    REQUIRE(wait_until([&] { return second->log().find("asset_held") != std::string::npos; }, 10000ms));
    CHECK((*agent_of(hub.http_port(), "site-a/b1"))["instance_id"] == holder);

    // The holder goes silent (stopped, its connection still open): after
    // 3 intervals the hub lets the second instance take over.
    first->signal(SIGSTOP);
    REQUIRE(wait_until(
        [&] {
            auto a = agent_of(hub.http_port(), "site-a/b1");
            return a && (*a)["instance_id"] != holder && (*a)["online"].get<bool>();
        },
        20000ms));
    first->signal(SIGCONT);
    CHECK(second->stop() == 0);
}

TEST_CASE("the same instance reconnecting after a network drop is admitted at once", "[integration][sanitize]") {
    TempDir dir;
    HubUnderTest hub(dir, fleet_yaml(three_assets(), k_interval_s));
    TcpProxy proxy(hub.agents_port());
    auto agent = start_agent(dir, fmt::format("tcp://127.0.0.1:{}", proxy.port()), hub.config_path(), "site-a/b1");
    REQUIRE(wait_until([&] { return online(hub.http_port(), "site-a/b1"); }, 10000ms));
    const auto instance = (*agent_of(hub.http_port(), "site-a/b1"))["instance_id"];
    const auto connected_at = (*agent_of(hub.http_port(), "site-a/b1"))["connected_at"];

    proxy.cut(false);  // every TCP connection dropped; reconnects allowed at once
    // Re-admitted well within the 3-interval hold a different instance would face.
    REQUIRE(wait_until(
        [&] {
            auto a = agent_of(hub.http_port(), "site-a/b1");
            return a && (*a)["connected_at"] != connected_at;
        },
        5000ms));
    CHECK((*agent_of(hub.http_port(), "site-a/b1"))["instance_id"] == instance);
    CHECK(agent->log().find("asset_held") == std::string::npos);
    const auto seq = get_json(hub.http_port(), "/telemetry/site-a/b1")["seq"].get<std::uint64_t>();
    REQUIRE(wait_until(
        [&] { return get_json(hub.http_port(), "/telemetry/site-a/b1")["seq"].get<std::uint64_t>() > seq + 2; },
        5000ms));
    require_contiguous(telemetry_history(hub.http_port(), "site-a/b1"), "history across the drop");
    CHECK(agent->stop() == 0);
}

TEST_CASE("garbage on the agent endpoint is dropped and counted and the hub keeps serving",
          "[integration][sanitize]") {
    TempDir dir;
    HubUnderTest hub(dir, fleet_yaml(three_assets(), k_interval_s));
    auto agent = start_agent(dir, hub.agents_endpoint(), hub.config_path(), "site-a/b1");
    REQUIRE(wait_until([&] { return has_telemetry(hub.http_port(), "site-a/b1"); }, 10000ms));

    // 10,000 garbage multipart messages over ZeroMQ.
    {
        zmq::context_t ctx;
        zmq::socket_t dealer(ctx, zmq::socket_type::dealer);
        dealer.set(zmq::sockopt::linger, 5000);
        dealer.connect(hub.agents_endpoint());
        std::mt19937 rng(42);
        std::uniform_int_distribution<int> byte(0, 255), len(0, 64), parts(1, 4), kind(0, 3);
        const char* types[] = {"telemetry", "register", "heartbeat", "nonsense"};
        for (int i = 0; i < 10000; ++i) {
            const int n = parts(rng);
            for (int p = 0; p < n; ++p) {
                std::string frame;
                if (p == 0 && kind(rng) != 3) {
                    frame = types[kind(rng)];
                } else {
                    frame.resize(static_cast<std::size_t>(len(rng)));
                    for (auto& c : frame) c = static_cast<char>(byte(rng));
                }
                dealer.send(zmq::buffer(frame), p + 1 < n ? zmq::send_flags::sndmore : zmq::send_flags::none);
            }
        }
    }
    // Raw TCP garbage (not even ZMTP).
    for (int i = 0; i < 20; ++i) {
        const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        addr.sin_port = htons(static_cast<std::uint16_t>(hub.agents_port()));
        if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
            std::string junk = "GET / HTTP/1.1\r\nHost: x\r\n\r\n" + std::string(4096, static_cast<char>(0xff - i));
            [[maybe_unused]] auto w = ::send(fd, junk.data(), junk.size(), MSG_NOSIGNAL);
        }
        ::close(fd);
    }

    REQUIRE(wait_until([&] { return metric(hub.http_port(), "der_hub_malformed_frames_total{endpoint=\"agents\"}") >= 9000; },
                       10000ms));
    CHECK(hub.process().running());
    CHECK(http_get(hub.http_port(), "/health")->status == 200);
    const auto seq = get_json(hub.http_port(), "/telemetry/site-a/b1")["seq"].get<std::uint64_t>();
    REQUIRE(wait_until(
        [&] { return get_json(hub.http_port(), "/telemetry/site-a/b1")["seq"].get<std::uint64_t>() > seq; },
        3000ms));
    CHECK(agent->stop() == 0);
    CHECK(hub.stop() == 0);
}

TEST_CASE("after kill -9 of the hub and 10 s down, agents return and refill everything", "[integration]") {
    TempDir dir;
    HubUnderTest hub(dir, fleet_yaml(three_assets(), k_interval_s));
    const std::vector<std::string> assets = {"site-a/b1", "site-a/b2", "site-b/b3"};
    std::vector<std::unique_ptr<Process>> agents;
    for (const auto& a : assets) agents.push_back(start_agent(dir, hub.agents_endpoint(), hub.config_path(), a));
    for (const auto& a : assets) REQUIRE(wait_until([&] { return has_telemetry(hub.http_port(), a); }, 10000ms));
    std::this_thread::sleep_for(1500ms);  // let some history accumulate (not a wait for a condition)

    std::map<std::string, std::uint64_t> last_before;
    for (const auto& a : assets) {
        const auto rows = telemetry_history(hub.http_port(), a);
        require_contiguous(rows, "before the kill: " + a);
        last_before[a] = rows.back()["seq"].get<std::uint64_t>();
    }
    hub.kill9();
    const auto down_from = der::now_ms();
    std::this_thread::sleep_for(10s);  // the outage itself
    const auto down_until = der::now_ms();
    hub.start();
    const auto restarted = std::chrono::steady_clock::now();

    for (const auto& a : assets) {
        INFO(a);
        REQUIRE(wait_until([&] { return online(hub.http_port(), a); }, 10000ms));
    }
    CHECK(std::chrono::steady_clock::now() - restarted < 10s);

    for (const auto& a : assets) {
        INFO(a);
        // Everything produced while the hub was down arrives: the history of
        // the new hub starts at or before the first record not acknowledged
        // by the old one, and has no gap from there.
        REQUIRE(wait_until(
            [&] {
                const auto rows = telemetry_history(hub.http_port(), a);
                return !rows.empty() && der::parse_rfc3339(rows.back()["ts"].get<std::string>()).value() > down_until;
            },
            10000ms));
        const auto rows = telemetry_history(hub.http_port(), a);
        require_contiguous(rows, "after the restart: " + a);
        CHECK(rows.front()["seq"].get<std::uint64_t>() <= last_before[a] + 1);
        std::size_t during = 0;
        for (const auto& r : rows) {
            const auto ts = der::parse_rfc3339(r["ts"].get<std::string>()).value();
            if (ts > down_from && ts < down_until) ++during;
        }
        CHECK(during >= static_cast<std::size_t>(0.8 * 10.0 / k_interval_s));
    }
    for (auto& a : agents) CHECK(a->stop() == 0);
}

TEST_CASE("a SIGSTOPped hub loses nothing: agents keep ticking and refill after SIGCONT", "[integration]") {
    TempDir dir;
    HubUnderTest hub(dir, fleet_yaml(three_assets(), k_interval_s));
    auto agent = start_agent(dir, hub.agents_endpoint(), hub.config_path(), "site-b/b3");
    REQUIRE(wait_until([&] { return has_telemetry(hub.http_port(), "site-b/b3"); }, 10000ms));

    hub.process().signal(SIGSTOP);
    const auto stopped_from = der::now_ms();
    std::this_thread::sleep_for(15s);  // the fault itself
    const auto stopped_until = der::now_ms();
    hub.process().signal(SIGCONT);

    REQUIRE(wait_until(
        [&] {
            const auto rows = telemetry_history(hub.http_port(), "site-b/b3");
            return !rows.empty() && der::parse_rfc3339(rows.back()["ts"].get<std::string>()).value() > stopped_until;
        },
        15000ms));
    const auto rows = telemetry_history(hub.http_port(), "site-b/b3");
    require_contiguous(rows, "across the stop");
    // The agent's loop never blocked: records were produced on time while
    // the hub was stopped.
    std::vector<std::int64_t> during;
    for (const auto& r : rows) {
        const auto ts = der::parse_rfc3339(r["ts"].get<std::string>()).value();
        if (ts > stopped_from && ts < stopped_until) during.push_back(ts);
    }
    CHECK(during.size() >= static_cast<std::size_t>(0.8 * 15.0 / k_interval_s));
    for (std::size_t i = 1; i < during.size(); ++i) CHECK(during[i] - during[i - 1] < 1500);
    CHECK(agent->stop() == 0);
    CHECK(hub.stop() == 0);
}

TEST_CASE("der-hub: --show-config names where each setting came from, a malformed --http is a usage error",
          "[integration]") {
    TempDir dir;
    dir.write("assets.yaml", fleet_yaml({{"site-a", "b1"}}, 1.0));
    auto shown = run_capture({hub_binary(), "-c", dir.file("assets.yaml"), "--http=off", "--show-config"});
    INFO(shown.out << shown.err);
    REQUIRE(shown.status == 0);
    const auto line_of = [&](const std::string& key) {
        for (const auto& l : lines_of(shown.out))
            if (l.rfind(key + " ", 0) == 0) return l;
        return std::string();
    };
    CHECK_THAT(line_of("config"), Catch::EndsWith("(flag)"));  // given as -c
    CHECK_THAT(line_of("http"), Catch::EndsWith("(flag)"));    // given as --http=off
    CHECK_THAT(line_of("control"), Catch::EndsWith("(default)"));

    const auto endpoint = [] { return fmt::format("tcp://127.0.0.1:{}", free_port()); };
    auto bad = run_capture({hub_binary(), "-c", dir.file("assets.yaml"), "--agents", endpoint(), "--control",
                            endpoint(), "--stream", endpoint(), "--http", "no-port-here"},
                           {}, 10000ms);
    INFO(bad.err);
    CHECK(bad.status == 64);
    CHECK_THAT(bad.err, Catch::Contains("--http"));
}
