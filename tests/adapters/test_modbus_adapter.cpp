// The modbus adapter in-process against the test server: a plain register
// map, SunSpec model 124, scale factors that change, the revert timer and
// a server that goes away.
#include "harness.hpp"
#include "modbus_test_server.hpp"

#include "der/adapters/modbus_adapter.hpp"
#include "der/adapters/sunspec.hpp"
#include "der/util/log.hpp"

#include <catch2/catch.hpp>

#include <tuple>

using namespace der::adapters;
using namespace der::test;
using namespace std::chrono_literals;

namespace {

const der::BessLimits k_limits{4.0, 3.0, -3.0, 0.0, 0.9, 0.0, 100.0};

der::AdapterConfig plain_config(int port) {
    der::AdapterConfig c;
    c.kind = "modbus";
    c.options = {{"host", "127.0.0.1"},
                 {"port", std::to_string(port)},
                 {"timeout_ms", "300"},
                 {"read_interval_ms", "100"},
                 {"reconnect_min_ms", "100"},
                 {"reconnect_max_ms", "400"},
                 {"revert_s", "30"},
                 {"map.soc_pct.address", "40100"},
                 {"map.soc_pct.scale", "0.1"},
                 {"map.current_mw.address", "40101"},
                 {"map.current_mw.type", "int16"},
                 {"map.current_mw.unit", "kW"},
                 {"map.current_mw.scale_register", "40110"},
                 {"map.setpoint_mw.address", "40200"},
                 {"map.setpoint_mw.type", "int16"},
                 {"map.setpoint_mw.unit", "kW"},
                 {"map.setpoint_mw.scale_register", "40110"},
                 {"map.revert_timeout.address", "40210"},
                 {"map.fault.address", "40120"}};
    return c;
}

der::AdapterConfig sunspec_config(int port) {
    der::AdapterConfig c;
    c.kind = "modbus";
    c.options = {{"host", "127.0.0.1"},       {"port", std::to_string(port)},
                 {"timeout_ms", "300"},       {"read_interval_ms", "100"},
                 {"reconnect_min_ms", "100"}, {"reconnect_max_ms", "400"},
                 {"revert_s", "45"},          {"sunspec", "true"}};
    return c;
}

std::unique_ptr<Adapter> make(const der::AdapterConfig& config) {
    der::log::configure("test", der::log::Level::error, der::log::Format::text);
    auto made = make_adapter(config, k_limits);
    REQUIRE(made);
    return std::move(*made);
}

bool pump_until(Adapter& adapter, const std::function<bool()>& condition,
                std::chrono::milliseconds deadline) {
    return wait_until(
        [&] {
            adapter.poll();
            return condition();
        },
        deadline);
}

bool healthy(const Adapter& a) {
    return a.read().status != der::AssetStatus::fault;
}

}  // namespace

TEST_CASE("modbus adapter reads and writes a plain register map", "[adapters][modbus]") {
    ModbusTestServer server(ModbusLayout::plain);
    auto adapter = make(plain_config(server.port()));
    CHECK(adapter->read().status == der::AssetStatus::fault);  // not connected yet
    REQUIRE(pump_until(
        *adapter, [&] { return healthy(*adapter); }, 3000ms));
    CHECK(adapter->read().soc_pct == Approx(50.0));
    CHECK(adapter->read().soc_mwh == Approx(2.0));

    REQUIRE(adapter->apply_setpoint(1.5).accepted());
    CHECK(server.get(k_plain_setpoint) == 1500);
    CHECK(server.get(k_plain_revert) == 30);  // the revert timer goes with the setpoint
    REQUIRE(pump_until(
        *adapter, [&] { return adapter->read().current_mw == Approx(1.5); }, 3000ms));
    CHECK(adapter->read().status == der::AssetStatus::discharging);

    REQUIRE(adapter->apply_setpoint(-0.25).accepted());
    CHECK(static_cast<std::int16_t>(server.get(k_plain_setpoint)) == -250);

    server.set(k_plain_soc, 733);
    REQUIRE(pump_until(
        *adapter, [&] { return adapter->read().soc_pct == Approx(73.3); }, 3000ms));

    server.set(k_plain_fault, 4);
    REQUIRE(pump_until(
        *adapter, [&] { return !healthy(*adapter); }, 3000ms));
    CHECK_THAT(adapter->read().fault_reason, Catch::Contains("40120 = 4"));
    server.set(k_plain_fault, 0);
    REQUIRE(pump_until(
        *adapter, [&] { return healthy(*adapter); }, 3000ms));
}

TEST_CASE("modbus adapter writes the revert timer in the unit of its register (ms, min)", "[adapters][modbus]") {
    for (const auto& [unit, revert_s, raw] : {std::tuple{"ms", "30", 30'000}, std::tuple{"min", "120", 2}}) {
        INFO(unit);
        ModbusTestServer server(ModbusLayout::plain);
        auto config = plain_config(server.port());
        config.options["revert_s"] = revert_s;
        config.options["map.revert_timeout.unit"] = unit;
        auto adapter = make(config);
        REQUIRE(pump_until(
            *adapter, [&] { return healthy(*adapter); }, 3000ms));
        REQUIRE(adapter->apply_setpoint(1.0).accepted());
        CHECK(server.get(k_plain_revert) == raw);
    }
}

TEST_CASE("modbus adapter re-reads a scale-factor register that changes while running",
          "[adapters][modbus]") {
    ModbusTestServer server(ModbusLayout::plain);
    auto adapter = make(plain_config(server.port()));
    REQUIRE(pump_until(
        *adapter, [&] { return healthy(*adapter); }, 3000ms));
    REQUIRE(adapter->apply_setpoint(1.0).accepted());
    REQUIRE(pump_until(
        *adapter, [&] { return adapter->read().current_mw == Approx(1.0); }, 3000ms));
    server.set(k_plain_sf, static_cast<std::uint16_t>(-1));  // raw 1000 is now 100 kW
    REQUIRE(pump_until(
        *adapter, [&] { return adapter->read().current_mw == Approx(0.1); }, 3000ms));
    REQUIRE(adapter->apply_setpoint(1.2).accepted());
    CHECK(server.get(k_plain_setpoint) == 12000);
    server.set(k_plain_sf, 99);  // not a valid scale factor: a fault, not a crash
    REQUIRE(pump_until(
        *adapter, [&] { return !healthy(*adapter); }, 3000ms));
    CHECK_THAT(adapter->read().fault_reason, Catch::Contains("scale"));
}

TEST_CASE("modbus adapter finds a SunSpec storage and writes model 124 with its revert timer",
          "[adapters][modbus][sunspec]") {
    namespace st = sunspec::storage;
    ModbusTestServer server(ModbusLayout::sunspec);
    auto adapter = make(sunspec_config(server.port()));
    REQUIRE(pump_until(
        *adapter, [&] { return healthy(*adapter); }, 3000ms));
    CHECK(adapter->read().soc_pct == Approx(50.0));

    REQUIRE(adapter->apply_setpoint(1.0).accepted());       // 50 % of WChaMax 2 MW
    CHECK(server.get(storage_reg(st::out_w_rte)) == 5000);  // InOutWRte_SF -2
    CHECK(server.get(storage_reg(st::in_w_rte)) == 0);
    CHECK(server.get(storage_reg(st::stor_ctl_mod)) == st::ctl_discharge);
    CHECK(server.get(storage_reg(st::in_out_w_rte_rvrt_tms)) == 45);
    REQUIRE(pump_until(
        *adapter, [&] { return adapter->read().current_mw == Approx(1.0); }, 3000ms));
    CHECK(adapter->read().setpoint_mw == Approx(1.0));

    REQUIRE(adapter->apply_setpoint(-0.5).accepted());
    CHECK(server.get(storage_reg(st::in_w_rte)) == 2500);
    CHECK(server.get(storage_reg(st::out_w_rte)) == 0);
    CHECK(server.get(storage_reg(st::stor_ctl_mod)) == st::ctl_charge);
    REQUIRE(pump_until(
        *adapter, [&] { return adapter->read().current_mw == Approx(-0.5); }, 3000ms));

    REQUIRE(adapter->apply_setpoint(0.0).accepted());
    CHECK(server.get(storage_reg(st::stor_ctl_mod)) == (st::ctl_charge | st::ctl_discharge));

    const auto beyond = adapter->apply_setpoint(2.5);  // within max_mw 3, beyond WChaMax 2
    CHECK_FALSE(beyond.accepted());
    CHECK_THAT(beyond.reason, Catch::Contains("discharge limit 2"));

    server.set(storage_reg(st::cha_state), 733);
    REQUIRE(pump_until(
        *adapter, [&] { return adapter->read().soc_pct == Approx(73.3); }, 3000ms));
    server.set(storage_reg(st::cha_state_sf), static_cast<std::uint16_t>(-2));
    REQUIRE(pump_until(
        *adapter, [&] { return adapter->read().soc_pct == Approx(7.33); }, 3000ms));
}

TEST_CASE("modbus adapter re-writes the setpoint and revert timer before the timer runs out",
          "[adapters][modbus]") {
    ModbusTestServer server(ModbusLayout::plain);
    auto config = plain_config(server.port());
    config.options["revert_s"] = "3";  // refreshed every second
    auto adapter = make(config);
    REQUIRE(pump_until(
        *adapter, [&] { return healthy(*adapter); }, 3000ms));
    REQUIRE(adapter->apply_setpoint(1.0).accepted());
    const int writes = server.writes_to(k_plain_revert);
    REQUIRE(pump_until(
        *adapter, [&] { return server.writes_to(k_plain_revert) >= writes + 2; }, 4000ms));
    CHECK(server.get(k_plain_revert) == 3);
    CHECK(server.get(k_plain_setpoint) == 1000);
}

TEST_CASE("modbus adapter reports a server that goes away as a fault and reconnects", "[adapters][modbus]") {
    ModbusTestServer server(ModbusLayout::sunspec);
    auto adapter = make(sunspec_config(server.port()));
    REQUIRE(pump_until(
        *adapter, [&] { return healthy(*adapter); }, 3000ms));
    REQUIRE(adapter->apply_setpoint(1.0).accepted());

    server.stop();
    REQUIRE(pump_until(
        *adapter, [&] { return !healthy(*adapter); }, 3000ms));
    CHECK_THAT(adapter->read().fault_reason, Catch::Contains("127.0.0.1"));
    CHECK_FALSE(adapter->apply_setpoint(1.5).accepted());  // unreachable
    CHECK(adapter->apply_setpoint(0.0).accepted());        // the safe state always is

    server.start();
    REQUIRE(pump_until(
        *adapter, [&] { return healthy(*adapter); }, 5000ms));
    // On reconnect the setpoint in force (0 MW) is written again.
    CHECK(server.get(storage_reg(sunspec::storage::stor_ctl_mod)) ==
          (sunspec::storage::ctl_charge | sunspec::storage::ctl_discharge));
    CHECK(adapter->apply_setpoint(0.5).accepted());
}
