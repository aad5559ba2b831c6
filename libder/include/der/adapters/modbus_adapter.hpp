#pragma once
/// The `modbus` adapter: a Modbus TCP client (libmodbus) for a battery
/// described by a register map, or found by SunSpec discovery (models 1,
/// 101-103, 124). Options and map format: docs/adapters.md.
///
/// libmodbus calls block; each is bounded by `timeout_ms` (at most 2000,
/// default 500), and poll() makes at most one read cycle each
/// `read_interval_ms`. A failed call is a `fault` status with the reason,
/// the connection is closed and retried with backoff (1 s doubling to
/// 30 s). Every setpoint is written together with the device's revert timer
/// (`revert_s`), and re-written every revert_s / 3 while it is in force, so
/// a dead agent cannot leave power flowing.

#include "der/adapters/adapter.hpp"
#include "der/adapters/modbus_map.hpp"

#include <memory>

namespace der::adapters {

struct ModbusOptions {
    std::string host;
    int port = 502;
    int unit_id = 1;
    std::int64_t timeout_ms = 500;
    std::int64_t read_interval_ms = 1'000;
    std::int64_t reconnect_min_ms = 1'000;
    std::int64_t reconnect_max_ms = 30'000;
    std::int64_t revert_s = 60;  ///< 0 = do not write a revert timer
    bool sunspec = false;
    std::optional<std::uint16_t> sunspec_base;  ///< nil = try 40000, 0, 50000
    modbus::RegisterMap map;
};

/// Errors (Errc::config) name the option: `adapter.map.soc_pct.type: ...`.
Result<ModbusOptions> parse_modbus_options(const AdapterConfig& config);

class ModbusAdapter final : public Adapter {
public:
    /// Connects on the first poll(), not here.
    ModbusAdapter(ModbusOptions options, const BessLimits& limits, const AdapterEnv& env);
    ~ModbusAdapter() override;

    [[nodiscard]] std::string_view kind() const override { return "modbus"; }
    void step(double) override {}
    void poll() override;
    [[nodiscard]] DeviceState read() const override;
    ApplyResult apply_setpoint(double mw) override;
    void set_limits(const BessLimits& limits) override;
    void restore(const wire::AgentState&) override {}
    [[nodiscard]] std::optional<std::int64_t> next_deadline_mono_ms() const override;
    void stop() override;

    [[nodiscard]] bool connected() const;

private:
    struct Impl;
    std::unique_ptr<Impl> m_impl;
};

}  // namespace der::adapters
