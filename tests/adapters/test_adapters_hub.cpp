// exec and modbus adapters through the real der-hub and der-agent:
// dispatches reach the device, the device's state reaches REST, and device
// failures show as status `fault` and recover.
#include "harness.hpp"
#include "modbus_test_server.hpp"

#include "der/adapters/sunspec.hpp"

#include <fmt/core.h>
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <signal.h>

#include <regex>

using namespace der::test;
using nlohmann::json;

namespace {

constexpr double k_interval_s = 0.5;

/// One asset site-a/b1 (4 MWh, ±2 MW) with `adapter` (YAML lines, indented 10).
std::string fleet_with_adapter(const std::string& adapter) {
    return fmt::format(
        "telemetry_s: {}\nheartbeat_s: 2\nsites:\n  - name: site-a\n    assets:\n      - name: b1\n"
        "        capacity_mwh: 4\n        max_mw: 2\n        min_mw: -2\n        initial_soc_pct: 50\n"
        "        soc_min_pct: 5\n        soc_max_pct: 95\n        adapter:\n{}",
        k_interval_s, adapter);
}

std::optional<json> telemetry(int port) {
    auto r = http_get(port, "/telemetry/site-a/b1");
    if (!r || r->status != 200) return std::nullopt;
    return json::parse(r->body);
}

bool telemetry_shows(int port, const std::function<bool(const json&)>& test) {
    auto t = telemetry(port);
    return t && test(*t);
}

/// POST /dispatch; returns the dispatch ID.
std::string dispatch(int port, double mw, double duration_s = 120) {
    auto r = http_post(port, "/dispatch",
                       json{{"asset", "site-a/b1"}, {"mw", mw}, {"duration_s", duration_s}}.dump());
    REQUIRE(r);
    INFO(r->body);
    REQUIRE(r->status == 202);
    return json::parse(r->body)["dispatch_id"].get<std::string>();
}

std::string dispatch_state(int port, const std::string& id) {
    auto r = http_get(port, "/dispatch/" + id);
    if (!r || r->status != 200) return {};
    return json::parse(r->body)["state"].get<std::string>();
}

/// The pid of the device child the agent started last (from its log).
pid_t last_child_pid(const std::string& log) {
    static const std::regex started(R"(started device command \(pid (\d+)\))");
    pid_t pid = -1;
    for (auto it = std::sregex_iterator(log.begin(), log.end(), started); it != std::sregex_iterator(); ++it)
        pid = std::stoi((*it)[1]);
    return pid;
}

std::string plain_map_yaml(int port) {
    return fmt::format(
        "          type: modbus\n          host: 127.0.0.1\n          port: {}\n          timeout_ms: 300\n"
        "          read_interval_ms: 100\n          reconnect_min_ms: 200\n          reconnect_max_ms: 1000\n"
        "          revert_s: 30\n          map:\n"
        "            soc_pct: {{address: 40100, type: uint16, scale: 0.1}}\n"
        "            current_mw: {{address: 40101, type: int16, unit: kW, scale_register: 40110}}\n"
        "            setpoint_mw: {{address: 40200, type: int16, unit: kW, scale_register: 40110}}\n"
        "            revert_timeout: {{address: 40210, type: uint16}}\n",
        port);
}

}  // namespace

TEST_CASE("exec adapter round trip: a dispatch reaches the child and its state reaches REST",
          "[integration][adapters]") {
    TempDir dir;
    const std::string command = fmt::format("exec bash {}/examples/exec/bess-sim.sh", DER_SOURCE_DIR);
    HubUnderTest hub(
        dir,
        fleet_with_adapter(fmt::format(
            "          type: exec\n          command: \"{}\"\n          read_interval_ms: 100\n", command)));
    auto agent = start_agent(dir, hub.agents_endpoint(), hub.config_path(), "site-a/b1");
    INFO(agent->log());
    REQUIRE(wait_until(
        [&] { return telemetry_shows(hub.http_port(), [](const json& t) { return t["status"] == "idle"; }); },
        10000ms));
    CHECK(telemetry(hub.http_port()).value()["soc_pct"].get<double>() == Approx(50.0));

    const std::string id = dispatch(hub.http_port(), 1.0);
    REQUIRE(wait_until([&] { return dispatch_state(hub.http_port(), id) == "applied"; }, 5000ms));
    REQUIRE(wait_until(
        [&] {
            return telemetry_shows(hub.http_port(), [](const json& t) {
                return t["current_mw"].get<double>() == 1.0 && t["status"] == "discharging" &&
                       t["setpoint_mw"].get<double>() == 1.0;
            });
        },
        5000ms));
    // The child's stderr is in the agent's log, prefixed with the asset.
    CHECK_THAT(agent->log(),
               Catch::Contains("device site-a/b1") && Catch::Contains("bess-sim: setpoint 1000 kW"));

    CHECK(agent->stop() == 0);
    CHECK(hub.stop() == 0);
}

TEST_CASE("exec adapter: a killed child is a fault in telemetry, then restarted and re-synced",
          "[integration][adapters]") {
    TempDir dir;
    const std::string command = fmt::format("exec bash {}/examples/exec/bess-sim.sh", DER_SOURCE_DIR);
    HubUnderTest hub(dir, fleet_with_adapter("          type: exec\n          read_interval_ms: 100\n"
                                             "          command: placeholder\n"));
    // --exec overrides adapter.command.
    auto agent = start_agent(dir, hub.agents_endpoint(), hub.config_path(), "site-a/b1", {"--exec", command});
    INFO(agent->log());
    REQUIRE(wait_until(
        [&] { return telemetry_shows(hub.http_port(), [](const json& t) { return t["status"] == "idle"; }); },
        10000ms));
    const std::string id = dispatch(hub.http_port(), -0.5);
    REQUIRE(wait_until([&] { return dispatch_state(hub.http_port(), id) == "applied"; }, 5000ms));

    const pid_t child = last_child_pid(agent->log());
    REQUIRE(child > 0);
    REQUIRE(::kill(child, SIGKILL) == 0);
    REQUIRE(wait_until(
        [&] {
            return telemetry_shows(hub.http_port(), [](const json& t) { return t["status"] == "fault"; });
        },
        5000ms));
    // Restarted after 1 s; the dispatch in force is sent to the new child.
    REQUIRE(wait_until(
        [&] {
            return telemetry_shows(hub.http_port(), [](const json& t) {
                return t["status"] == "charging" && t["current_mw"].get<double>() == -0.5;
            });
        },
        10000ms));
    CHECK(last_child_pid(agent->log()) != child);
    CHECK(agent->stop() == 0);
    CHECK(hub.stop() == 0);
}

TEST_CASE("modbus adapter round trip with a register map: setpoint, SOC, scale factor, server loss",
          "[integration][adapters]") {
    ModbusTestServer server(ModbusLayout::plain);
    TempDir dir;
    // The YAML names another port: --modbus overrides host and port.
    HubUnderTest hub(dir, fleet_with_adapter(plain_map_yaml(1)));
    auto agent = start_agent(dir, hub.agents_endpoint(), hub.config_path(), "site-a/b1",
                             {"--modbus", fmt::format("127.0.0.1:{}", server.port())});
    INFO(agent->log());
    REQUIRE(wait_until(
        [&] {
            return telemetry_shows(hub.http_port(), [](const json& t) {
                return t["status"] == "idle" && t["soc_pct"].get<double>() == Approx(50.0);
            });
        },
        10000ms));

    const std::string id = dispatch(hub.http_port(), 1.5);
    REQUIRE(wait_until([&] { return dispatch_state(hub.http_port(), id) == "applied"; }, 5000ms));
    CHECK(server.get(k_plain_setpoint) == 1500);
    CHECK(server.get(k_plain_revert) == 30);
    REQUIRE(wait_until(
        [&] {
            return telemetry_shows(
                hub.http_port(), [](const json& t) { return t["current_mw"].get<double>() == Approx(1.5); });
        },
        5000ms));

    server.set(k_plain_soc, 733);
    REQUIRE(wait_until(
        [&] {
            return telemetry_shows(hub.http_port(),
                                   [](const json& t) { return t["soc_pct"].get<double>() == Approx(73.3); });
        },
        5000ms));

    server.set(k_plain_sf, static_cast<std::uint16_t>(-1));  // raw 1500 now 150 kW
    REQUIRE(wait_until(
        [&] {
            return telemetry_shows(
                hub.http_port(), [](const json& t) { return t["current_mw"].get<double>() == Approx(0.15); });
        },
        5000ms));

    server.stop();
    REQUIRE(wait_until(
        [&] {
            return telemetry_shows(hub.http_port(), [](const json& t) { return t["status"] == "fault"; });
        },
        5000ms));
    server.start();
    REQUIRE(wait_until(
        [&] {
            return telemetry_shows(hub.http_port(), [](const json& t) { return t["status"] != "fault"; });
        },
        10000ms));
    // The setpoint in force was written again on reconnect, with the new scale factor.
    CHECK(server.get(k_plain_setpoint) == 15000);
    CHECK(agent->stop() == 0);
    CHECK(hub.stop() == 0);
}

TEST_CASE("modbus adapter with SunSpec discovery: model 124 setpoint, revert timer and SOC through the hub",
          "[integration][adapters]") {
    namespace st = der::adapters::sunspec::storage;
    ModbusTestServer server(ModbusLayout::sunspec);
    TempDir dir;
    HubUnderTest hub(dir,
                     fleet_with_adapter(fmt::format(
                         "          type: modbus\n          host: 127.0.0.1\n          port: {}\n"
                         "          sunspec: true\n          revert_s: 20\n          read_interval_ms: 100\n",
                         server.port())));
    auto agent = start_agent(dir, hub.agents_endpoint(), hub.config_path(), "site-a/b1");
    INFO(agent->log());
    REQUIRE(wait_until(
        [&] { return telemetry_shows(hub.http_port(), [](const json& t) { return t["status"] == "idle"; }); },
        10000ms));
    CHECK_THAT(agent->log(), Catch::Contains("SunSpec device der-test battery-124"));

    const std::string id = dispatch(hub.http_port(), 1.0);
    REQUIRE(wait_until([&] { return dispatch_state(hub.http_port(), id) == "applied"; }, 5000ms));
    CHECK(server.get(storage_reg(st::out_w_rte)) == 5000);
    CHECK(server.get(storage_reg(st::stor_ctl_mod)) == st::ctl_discharge);
    CHECK(server.get(storage_reg(st::in_out_w_rte_rvrt_tms)) == 20);
    REQUIRE(wait_until(
        [&] {
            return telemetry_shows(
                hub.http_port(), [](const json& t) { return t["current_mw"].get<double>() == Approx(1.0); });
        },
        5000ms));

    server.set(storage_reg(st::cha_state), 812);
    REQUIRE(wait_until(
        [&] {
            return telemetry_shows(hub.http_port(),
                                   [](const json& t) { return t["soc_pct"].get<double>() == Approx(81.2); });
        },
        5000ms));

    // 2 MW is 100 % of WChaMax; every setpoint rewrites the revert timer.
    const int revert_writes = server.writes_to(storage_reg(st::in_out_w_rte_rvrt_tms));
    const std::string full = dispatch(hub.http_port(), 2.0);
    REQUIRE(wait_until([&] { return dispatch_state(hub.http_port(), full) == "applied"; }, 5000ms));
    CHECK(server.get(storage_reg(st::out_w_rte)) == 10000);
    CHECK(server.writes_to(storage_reg(st::in_out_w_rte_rvrt_tms)) > revert_writes);
    CHECK(agent->stop() == 0);
    CHECK(hub.stop() == 0);
}
