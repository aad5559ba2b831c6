// Dispatch end to end: REST -> hub -> agent -> ack, lifecycle, stream, metrics, reload.
#include "harness.hpp"

#include "der/util/time.hpp"
#include "der/wire_codec.hpp"

#include <catch2/catch.hpp>
#include <fmt/core.h>
#include <nlohmann/json.hpp>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include <signal.h>

#include <cstdlib>
#include <thread>

using namespace der::test;
using nlohmann::json;

namespace {

constexpr double k_interval_s = 0.5;

std::vector<TestAsset> fleet() {
    return {{"site-a", "b1", 4.0, 2.0, -2.0, 50.0, 0.5},  // ramps 0.5 MW/s
            {"site-a", "b2", 8.0, 4.0, -3.0, 50.0, 0.0},
            {"site-b", "b3", 2.0, 1.0, -1.0, 50.0, 0.0}};
}

json post_dispatch(int port, const json& body, int expect_status = 202) {
    auto r = http_post(port, "/dispatch", body.dump());
    REQUIRE(r);
    INFO(r->body);
    REQUIRE(r->status == expect_status);
    return json::parse(r->body);
}

std::string state_of(int port, const std::string& id) {
    return get_json(port, "/dispatch/" + id)["state"].get<std::string>();
}

bool wait_state(int port, const std::string& id, const std::string& state, Ms deadline) {
    return wait_until([&] { return state_of(port, id) == state; }, deadline);
}

/// The latest telemetry of an asset, or an empty object before the first record.
json latest(int port, const std::string& asset) {
    auto r = http_get(port, "/telemetry/" + asset);
    if (!r || r->status != 200) return json::object({{"current_mw", nullptr}, {"setpoint_mw", nullptr}});
    return json::parse(r->body);
}

/// A number of the latest telemetry equals `value` (false before the first record).
bool latest_is(int port, const std::string& asset, const std::string& key, double value) {
    const auto t = latest(port, asset);
    return t[key].is_number() && t[key].get<double>() == value;
}

bool online(int port, const std::string& asset) {
    for (auto& a : get_json(port, "/agents"))
        if (a["asset"] == asset && a["online"].get<bool>()) return true;
    return false;
}

/// An in-test agent that registers, then never acknowledges a setpoint.
class SilentAgent {
public:
    SilentAgent(const std::string& endpoint, const der::Uuid& asset_id) : m_socket(m_ctx, zmq::socket_type::dealer) {
        m_socket.set(zmq::sockopt::linger, 0);
        m_socket.connect(endpoint);
        der::wire::Register reg;
        reg.asset_id = asset_id;
        reg.instance_id = der::Uuid::v7();
        reg.epoch = der::Uuid::v7();
        reg.agent_version = "silent-test-agent";
        send(reg);
    }
    void send(const der::wire::AgentMessage& m) {
        const auto f = der::wire::encode(m);
        m_socket.send(zmq::buffer(f.type), zmq::send_flags::sndmore);
        m_socket.send(zmq::buffer(f.body), zmq::send_flags::none);
    }
    /// Receives messages until one of `type` arrives (or the deadline passes).
    std::optional<der::wire::AgentMessage> expect(std::string_view type, Ms deadline) {
        const auto end = std::chrono::steady_clock::now() + deadline;
        while (std::chrono::steady_clock::now() < end) {
            zmq::pollitem_t item{m_socket.handle(), 0, ZMQ_POLLIN, 0};
            zmq::poll(&item, 1, std::chrono::milliseconds(50));
            if ((item.revents & ZMQ_POLLIN) == 0) continue;
            std::vector<zmq::message_t> frames;
            (void)zmq::recv_multipart(m_socket, std::back_inserter(frames));
            if (frames.size() != 2) continue;
            auto m = der::wire::decode_agent(frames[0].to_string_view(), frames[1].to_string_view());
            if (m && der::wire::type_name(*m) == type) return std::move(*m);
        }
        return std::nullopt;
    }

private:
    zmq::context_t m_ctx;
    zmq::socket_t m_socket;
};

}  // namespace

TEST_CASE("a REST dispatch is applied within 2 s and the battery follows its ramp", "[integration][sanitize]") {
    TempDir dir;
    HubUnderTest hub(dir, fleet_yaml(fleet(), k_interval_s));
    auto agent = start_agent(dir, hub.agents_endpoint(), hub.config_path(), "site-a/b1");
    REQUIRE(wait_until([&] { return online(hub.http_port(), "site-a/b1"); }, 10000ms));

    const auto created = post_dispatch(hub.http_port(), {{"asset", "site-a/b1"},
                                                         {"mw", 1.5},
                                                         {"duration_s", 60},
                                                         {"reason", "ramp test"},
                                                         {"requested_by", "ops"}});
    const auto id = created["dispatch_id"].get<std::string>();
    REQUIRE(wait_state(hub.http_port(), id, "applied", 2000ms));
    const auto d = get_json(hub.http_port(), "/dispatch/" + id);
    CHECK(d["reason"] == "ramp test");
    CHECK(d["requested_by"] == "ops");
    CHECK(d["states"].contains("sent"));
    CHECK(d["states"].contains("applied"));

    // current_mw climbs at no more than 0.5 MW/s to 1.5 MW.
    double last = -1;
    std::int64_t last_ts = 0;
    REQUIRE(wait_until(
        [&] {
            const auto t = latest(hub.http_port(), "site-a/b1");
            if (!t["current_mw"].is_number()) return false;
            const double mw = t["current_mw"].get<double>();
            const auto ts = der::parse_rfc3339(t["ts"].get<std::string>()).value();
            if (last >= 0 && ts > last_ts) {
                const double dt = static_cast<double>(ts - last_ts) / 1000.0;
                CHECK(mw - last <= 0.5 * dt + 0.06);  // one 100 ms tick of slack
            }
            if (ts > last_ts) {
                last = mw;
                last_ts = ts;
            }
            return std::abs(mw - 1.5) < 1e-6 && t["setpoint_mw"].get<double>() == 1.5 && t["dispatch_id"] == id;
        },
        8000ms));
    CHECK(agent->stop() == 0);
    CHECK(hub.stop() == 0);
}

TEST_CASE("a 5 s dispatch ends expired at 0 MW", "[integration]") {
    TempDir dir;
    HubUnderTest hub(dir, fleet_yaml(fleet(), k_interval_s));
    auto agent = start_agent(dir, hub.agents_endpoint(), hub.config_path(), "site-a/b2");
    REQUIRE(wait_until([&] { return online(hub.http_port(), "site-a/b2"); }, 10000ms));
    const auto id =
        post_dispatch(hub.http_port(), {{"asset", "site-a/b2"}, {"mw", -2.0}, {"duration_s", 5}})["dispatch_id"]
            .get<std::string>();
    REQUIRE(wait_state(hub.http_port(), id, "applied", 2000ms));
    REQUIRE(wait_until([&] { return latest_is(hub.http_port(), "site-a/b2", "current_mw", -2.0); },
                       3000ms));
    CHECK(latest(hub.http_port(), "site-a/b2")["status"] == "charging");
    REQUIRE(wait_state(hub.http_port(), id, "expired", 7000ms));
    REQUIRE(wait_until(
        [&] {
            const auto t = latest(hub.http_port(), "site-a/b2");
            return t["current_mw"].is_number() && t["current_mw"].get<double>() == 0.0 && t["setpoint_mw"].get<double>() == 0.0 &&
                   t["dispatch_id"].is_null();
        },
        2000ms));
    CHECK(agent->stop() == 0);
    CHECK(hub.stop() == 0);
}

TEST_CASE("with the hub killed during a 20 s dispatch the agent still reverts on time", "[integration]") {
    TempDir dir;
    HubUnderTest hub(dir, fleet_yaml(fleet(), k_interval_s));
    auto agent = start_agent(dir, hub.agents_endpoint(), hub.config_path(), "site-b/b3");
    REQUIRE(wait_until([&] { return online(hub.http_port(), "site-b/b3"); }, 10000ms));
    const auto created = post_dispatch(hub.http_port(), {{"asset", "site-b/b3"}, {"mw", 1.0}, {"duration_s", 20}});
    const auto id = created["dispatch_id"].get<std::string>();
    const auto created_at = der::parse_rfc3339(created["created_at"].get<std::string>()).value();
    REQUIRE(wait_state(hub.http_port(), id, "applied", 2000ms));
    hub.kill9();
    std::this_thread::sleep_for(23s);  // the outage: the dispatch ends while the hub is gone
    hub.start();

    // The records the agent produced while the hub was down tell when it reverted.
    REQUIRE(wait_until(
        [&] {
            const auto rows = telemetry_history(hub.http_port(), "site-b/b3");
            return !rows.empty() &&
                   der::parse_rfc3339(rows.back()["ts"].get<std::string>()).value() > created_at + 22'000;
        },
        10000ms));
    const auto rows = telemetry_history(hub.http_port(), "site-b/b3");
    std::optional<std::int64_t> first_zero;
    bool saw_power = false;
    for (const auto& r : rows) {
        const auto ts = der::parse_rfc3339(r["ts"].get<std::string>()).value();
        if (r["setpoint_mw"].get<double>() == 1.0) {
            saw_power = true;
            CHECK(ts <= created_at + 20'500);  // never past its end
        } else if (saw_power && !first_zero) {
            first_zero = ts;
        }
    }
    REQUIRE(saw_power);
    REQUIRE(first_zero);
    CHECK(*first_zero >= created_at + 19'000);
    CHECK(*first_zero <= created_at + 21'000);
    CHECK(agent->stop() == 0);
}

TEST_CASE("a dispatch for an offline asset is queued, delivered on register, never when stale",
          "[integration]") {
    TempDir dir;
    HubUnderTest hub(dir, fleet_yaml(fleet(), k_interval_s), {"--pending-ttl", "3s"});

    SECTION("delivered when the agent registers") {
        const auto id = post_dispatch(hub.http_port(), {{"asset", "site-a/b2"}, {"mw", 1.0}})["dispatch_id"]
                            .get<std::string>();
        CHECK(state_of(hub.http_port(), id) == "queued");
        auto agent = start_agent(dir, hub.agents_endpoint(), hub.config_path(), "site-a/b2");
        REQUIRE(wait_state(hub.http_port(), id, "applied", 10000ms));
        REQUIRE(wait_until([&] { return latest_is(hub.http_port(), "site-a/b2", "setpoint_mw", 1.0); },
                           3000ms));
        CHECK(agent->stop() == 0);
    }
    SECTION("not delivered once its duration has run out") {
        const auto id = post_dispatch(hub.http_port(), {{"asset", "site-a/b2"}, {"mw", 1.0}, {"duration_s", 1}})
                            ["dispatch_id"]
                                .get<std::string>();
        REQUIRE(wait_state(hub.http_port(), id, "expired", 3000ms));
        auto agent = start_agent(dir, hub.agents_endpoint(), hub.config_path(), "site-a/b2");
        REQUIRE(wait_until([&] { return online(hub.http_port(), "site-a/b2"); }, 10000ms));
        std::this_thread::sleep_for(1500ms);  // give a wrong delivery the time to show
        CHECK(latest_is(hub.http_port(), "site-a/b2", "setpoint_mw", 0.0));
        CHECK(state_of(hub.http_port(), id) == "expired");
        CHECK(agent->stop() == 0);
    }
    SECTION("not delivered after the pending TTL") {
        const auto id = post_dispatch(hub.http_port(), {{"asset", "site-a/b2"}, {"mw", 1.0}})["dispatch_id"]
                            .get<std::string>();
        REQUIRE(wait_state(hub.http_port(), id, "failed", 5000ms));
        CHECK(get_json(hub.http_port(), "/dispatch/" + id)["error"].get<std::string>().find("pending TTL") !=
              std::string::npos);
        auto agent = start_agent(dir, hub.agents_endpoint(), hub.config_path(), "site-a/b2");
        REQUIRE(wait_until([&] { return online(hub.http_port(), "site-a/b2"); }, 10000ms));
        std::this_thread::sleep_for(1500ms);
        CHECK(latest_is(hub.http_port(), "site-a/b2", "setpoint_mw", 0.0));
        CHECK(agent->stop() == 0);
    }
    CHECK(hub.stop() == 0);
}

TEST_CASE("an agent that never acks makes its dispatch fail after the ack timeout", "[integration][sanitize]") {
    TempDir dir;
    HubUnderTest hub(dir, fleet_yaml(fleet(), k_interval_s), {"--ack-timeout", "1s"});
    const auto asset_id = der::Uuid::parse(get_json(hub.http_port(), "/assets/site-a/b2")["id"].get<std::string>());
    REQUIRE(asset_id);
    SilentAgent silent(hub.agents_endpoint(), *asset_id);
    REQUIRE(silent.expect("welcome", 5000ms));
    const auto id =
        post_dispatch(hub.http_port(), {{"asset", "site-a/b2"}, {"mw", 1.0}})["dispatch_id"].get<std::string>();
    auto setpoint = silent.expect("setpoint", 3000ms);
    REQUIRE(setpoint);
    CHECK(std::get<der::Setpoint>(*setpoint).mw == 1.0);
    CHECK(state_of(hub.http_port(), id) == "sent");
    REQUIRE(wait_state(hub.http_port(), id, "failed", 3000ms));
    CHECK(get_json(hub.http_port(), "/dispatch/" + id)["error"].get<std::string>().find("no ack") !=
          std::string::npos);
    CHECK(hub.stop() == 0);
}

TEST_CASE("a second dispatch supersedes the first, limits and bad bodies are refused", "[integration]") {
    TempDir dir;
    HubUnderTest hub(dir, fleet_yaml(fleet(), k_interval_s));
    auto agent = start_agent(dir, hub.agents_endpoint(), hub.config_path(), "site-a/b2");
    REQUIRE(wait_until([&] { return online(hub.http_port(), "site-a/b2"); }, 10000ms));
    const auto first =
        post_dispatch(hub.http_port(), {{"asset", "site-a/b2"}, {"mw", 1.0}})["dispatch_id"].get<std::string>();
    REQUIRE(wait_state(hub.http_port(), first, "applied", 2000ms));
    const auto second =
        post_dispatch(hub.http_port(), {{"asset_id", get_json(hub.http_port(), "/assets/site-a/b2")["id"]},
                                        {"mw", -1.0}})["dispatch_id"]
            .get<std::string>();
    REQUIRE(wait_state(hub.http_port(), second, "applied", 2000ms));
    CHECK(state_of(hub.http_port(), first) == "superseded");
    REQUIRE(wait_until([&] { return latest_is(hub.http_port(), "site-a/b2", "setpoint_mw", -1.0); },
                       3000ms));

    // Refusals: 422 outside the limits (never sent), 404 unknown asset, 400 bad bodies, 413 too large.
    CHECK(post_dispatch(hub.http_port(), {{"asset", "site-a/b2"}, {"mw", 4.5}}, 422)["error"]["code"] ==
          "unprocessable");
    CHECK(post_dispatch(hub.http_port(), {{"asset", "site-a/b2"}, {"mw", -3.5}}, 422)["error"]["code"] ==
          "unprocessable");
    CHECK(post_dispatch(hub.http_port(), {{"asset", "site-a/nope"}, {"mw", 1}}, 404)["error"]["code"] == "not_found");
    CHECK(post_dispatch(hub.http_port(), {{"asset", "site-a/b2"}}, 400)["error"]["message"].get<std::string>().find(
              "mw") != std::string::npos);
    CHECK(post_dispatch(hub.http_port(), {{"asset", "site-a/b2"}, {"mw", 1}, {"duration_s", -5}}, 400)["error"]
                       ["code"] == "bad_request");
    CHECK(post_dispatch(hub.http_port(), {{"asset", "site-a/b2"}, {"mw", 1}, {"speling", 1}}, 400)["error"]["code"] ==
          "bad_request");
    // A key twice is refused, not its last value taken; asset and asset_id may spell one asset two ways.
    auto twice = http_post(hub.http_port(), "/dispatch", R"({"asset":"site-a/b2","mw":1,"mw":2})");
    REQUIRE(twice);
    CHECK(twice->status == 400);
    CHECK(json::parse(twice->body)["error"]["message"] == "duplicate key 'mw'");
    const std::string b2_id = get_json(hub.http_port(), "/assets/site-a/b2")["id"].get<std::string>();
    CHECK(post_dispatch(hub.http_port(), {{"asset", "site-a/b2"}, {"asset_id", b2_id}, {"mw", -1.0}}, 202)["mw"] ==
          -1.0);
    CHECK(post_dispatch(hub.http_port(), {{"asset", "site-a/b1"}, {"asset_id", b2_id}, {"mw", 0.5}}, 400)["error"]
                       ["message"].get<std::string>().find("different assets") != std::string::npos);
    CHECK(get_json(hub.http_port(), "/dispatch/history?asset=site-a/b2&asset_id=" + b2_id)["count"] == 3);
    CHECK(http_get(hub.http_port(), "/dispatch/history?asset=site-a/b1&asset_id=" + b2_id)->status == 400);
    CHECK(http_get(hub.http_port(), "/dispatch/history?cursor=x")->status == 400);
    auto garbage = http_post(hub.http_port(), "/dispatch", "{not json");
    REQUIRE(garbage);
    CHECK(garbage->status == 400);
    CHECK(json::parse(garbage->body)["error"]["code"] == "bad_request");
    auto huge = http_post(hub.http_port(), "/dispatch", std::string(2 << 20, ' '));
    REQUIRE(huge);
    CHECK(huge->status == 413);
    CHECK(json::parse(huge->body)["error"]["code"] == "too_large");
    CHECK(get_json(hub.http_port(), "/dispatch/history?asset=site-a/b2")["count"] == 3);
    CHECK(agent->stop() == 0);
    CHECK(hub.stop() == 0);
}

TEST_CASE("a stream subscriber sees every state change of a dispatch in order", "[integration][sanitize]") {
    TempDir dir;
    HubUnderTest hub(dir, fleet_yaml(fleet(), k_interval_s));
    auto agent = start_agent(dir, hub.agents_endpoint(), hub.config_path(), "site-b/b3");
    REQUIRE(wait_until([&] { return online(hub.http_port(), "site-b/b3"); }, 10000ms));

    zmq::context_t ctx;
    zmq::socket_t sub(ctx, zmq::socket_type::sub);
    sub.set(zmq::sockopt::linger, 0);
    sub.set(zmq::sockopt::subscribe, "welcome");
    sub.set(zmq::sockopt::subscribe, "dispatch/");
    sub.set(zmq::sockopt::subscribe, "telemetry/");
    sub.connect(hub.stream_endpoint());
    const auto recv = [&](Ms deadline) -> std::vector<zmq::message_t> {
        zmq::pollitem_t item{sub.handle(), 0, ZMQ_POLLIN, 0};
        zmq::poll(&item, 1, deadline);
        std::vector<zmq::message_t> frames;
        if ((item.revents & ZMQ_POLLIN) != 0) (void)zmq::recv_multipart(sub, std::back_inserter(frames));
        return frames;
    };
    auto welcome = recv(5000ms);
    REQUIRE(welcome.size() == 1);
    CHECK(welcome[0].to_string() == "welcome");

    const auto id = post_dispatch(hub.http_port(), {{"asset", "site-b/b3"}, {"mw", 0.5}, {"duration_s", 2}})
                        ["dispatch_id"]
                            .get<std::string>();
    std::vector<std::string> states;
    bool saw_telemetry = false;
    const auto end = std::chrono::steady_clock::now() + 8s;
    while (std::chrono::steady_clock::now() < end && (states.empty() || states.back() != "expired")) {
        auto frames = recv(500ms);
        if (frames.size() != 2) continue;
        const auto topic = frames[0].to_string();
        if (topic.rfind("telemetry/", 0) == 0) {
            saw_telemetry = der::wire::decode_telemetry(frames[1].to_string_view()).has_value();
            continue;
        }
        auto d = der::wire::decode_dispatch(frames[1].to_string_view());
        REQUIRE(d);
        CHECK(topic == "dispatch/" + d->asset_id.to_string());
        if (d->dispatch_id.to_string() == id) states.emplace_back(der::to_string(d->state));
    }
    CHECK(states == std::vector<std::string>{"queued", "sent", "applied", "expired"});
    CHECK(saw_telemetry);
    CHECK(agent->stop() == 0);
    CHECK(hub.stop() == 0);
}

TEST_CASE("SIGHUP reloads assets.yaml: an added asset registers without restarting anything", "[integration]") {
    TempDir dir;
    auto assets = fleet();
    HubUnderTest hub(dir, fleet_yaml(assets, k_interval_s));
    auto a1 = start_agent(dir, hub.agents_endpoint(), hub.config_path(), "site-a/b1");
    REQUIRE(wait_until([&] { return online(hub.http_port(), "site-a/b1"); }, 10000ms));

    assets.push_back({"site-b", "b4", 1.0, 0.5, -0.5, 40.0, 0.0});
    assets[0].max_mw = 1.0;  // b1's discharge limit lowered
    dir.write("assets.yaml", fleet_yaml(assets, k_interval_s));
    hub.process().signal(SIGHUP);
    REQUIRE(wait_until([&] { return http_get(hub.http_port(), "/assets/site-b/b4")->status == 200; }, 5000ms));
    auto a4 = start_agent(dir, hub.agents_endpoint(), hub.config_path(), "site-b/b4");
    REQUIRE(wait_until([&] { return online(hub.http_port(), "site-b/b4"); }, 10000ms));
    CHECK(online(hub.http_port(), "site-a/b1"));  // not dropped by the reload
    // The changed limit applies to the next dispatch.
    post_dispatch(hub.http_port(), {{"asset", "site-a/b1"}, {"mw", 1.5}}, 422);
    post_dispatch(hub.http_port(), {{"asset", "site-a/b1"}, {"mw", 1.0}}, 202);
    CHECK(a1->stop() == 0);
    CHECK(a4->stop() == 0);
    CHECK(hub.stop() == 0);
}

TEST_CASE("SIGHUP pushes a changed asset to its online agent and cancels a dispatch it no longer allows",
          "[integration]") {
    TempDir dir;
    auto assets = fleet();
    HubUnderTest hub(dir, fleet_yaml(assets, k_interval_s));
    const int port = hub.http_port();
    auto a1 = start_agent(dir, hub.agents_endpoint(), hub.config_path(), "site-a/b1");
    auto a2 = start_agent(dir, hub.agents_endpoint(), hub.config_path(), "site-a/b2");
    REQUIRE(wait_until([&] { return online(port, "site-a/b1") && online(port, "site-a/b2"); }, 10000ms));
    const auto d1 = post_dispatch(port, {{"asset", "site-a/b1"}, {"mw", 1.5}})["dispatch_id"].get<std::string>();
    const auto d2 = post_dispatch(port, {{"asset", "site-a/b2"}, {"mw", 1.0}})["dispatch_id"].get<std::string>();
    REQUIRE(wait_state(port, d1, "applied", 3000ms));
    REQUIRE(wait_state(port, d2, "applied", 3000ms));

    assets[0].max_mw = 1.0;  // b1: its 1.5 MW no longer allowed
    std::string yaml = fleet_yaml(assets, k_interval_s);
    const std::string b2 = "      - name: b2\n";  // b2: taken out of service
    yaml.replace(yaml.find(b2), b2.size(), b2 + "        available: false\n");
    dir.write("assets.yaml", yaml);
    hub.process().signal(SIGHUP);

    REQUIRE(wait_state(port, d1, "cancelled", 3000ms));
    CHECK(get_json(port, "/dispatch/" + d1)["error"].get<std::string>().find("outside the limits") !=
          std::string::npos);
    REQUIRE(wait_state(port, d2, "cancelled", 3000ms));
    // The agents got the new asset without reconnecting: b1 reports its new
    // limit, both go to 0 MW.
    REQUIRE(wait_until([&] { return get_json(port, "/telemetry/site-a/b1")["max_mw"] == 1.0; }, 5000ms));
    REQUIRE(wait_until(
        [&] {
            return get_json(port, "/telemetry/site-a/b1")["setpoint_mw"] == 0.0 &&
                   get_json(port, "/telemetry/site-a/b2")["setpoint_mw"] == 0.0;
        },
        5000ms));
    CHECK(online(port, "site-a/b1"));
    CHECK(a1->stop() == 0);
    CHECK(a2->stop() == 0);
    CHECK(hub.stop() == 0);
}

TEST_CASE("an agent restarted at once takes its asset back when the old one is due offline, not 10 s later",
          "[integration]") {
    TempDir dir;
    HubUnderTest hub(dir, fleet_yaml(fleet(), k_interval_s));
    const int port = hub.http_port();
    auto first = start_agent(dir, hub.agents_endpoint(), hub.config_path(), "site-a/b2");
    REQUIRE(wait_until([&] { return online(port, "site-a/b2"); }, 10000ms));
    const auto instance = [&] {
        for (auto& a : get_json(port, "/agents"))
            if (a["asset"] == "site-a/b2") return a["instance_id"].get<std::string>();
        return std::string();
    };
    const std::string old_instance = instance();
    CHECK(first->stop() == 0);
    auto second = start_agent(dir, hub.agents_endpoint(), hub.config_path(), "site-a/b2");
    // Held for 3 x 0.5 s after the first one's last message, then the hint brings the register.
    // (Without the hint the next register would come 10 s after the reject.)
    REQUIRE(wait_until([&] { return instance() != old_instance && online(port, "site-a/b2"); }, 6000ms));
    CHECK(second->stop() == 0);
    CHECK(hub.stop() == 0);
}

TEST_CASE("promtool accepts /metrics", "[integration]") {
    TempDir dir;
    HubUnderTest hub(dir, fleet_yaml(fleet(), k_interval_s));
    auto agent = start_agent(dir, hub.agents_endpoint(), hub.config_path(), "site-a/b1");
    REQUIRE(wait_until([&] { return online(hub.http_port(), "site-a/b1"); }, 10000ms));
    const auto id =
        post_dispatch(hub.http_port(), {{"asset", "site-a/b1"}, {"mw", 0.5}})["dispatch_id"].get<std::string>();
    REQUIRE(wait_state(hub.http_port(), id, "applied", 2000ms));
    std::optional<HttpReply> metrics;
    REQUIRE(wait_until(
        [&] {
            metrics = http_get(hub.http_port(), "/metrics");  // the snapshot behind it is at most 100 ms old
            return metrics && metrics->status == 200 &&
                   metrics->body.find("der_hub_dispatch_ack_latency_seconds_count 1") != std::string::npos;
        },
        2000ms));
    CHECK(metrics->body.find("der_hub_agents_online 1") != std::string::npos);
    dir.write("metrics.txt", metrics->body);
    const int rc = std::system(fmt::format("promtool check metrics < '{}' > '{}' 2>&1", dir.file("metrics.txt"),
                                           dir.file("promtool.txt"))
                                   .c_str());
    INFO(read_file(dir.file("promtool.txt")));
    CHECK(rc == 0);
    CHECK(agent->stop() == 0);
    CHECK(hub.stop() == 0);
}
