#include "der/adapters/adapter.hpp"

#include "der/adapters/exec_adapter.hpp"
#include "der/adapters/sim_adapter.hpp"
#if DER_HAVE_MODBUS
#include "der/adapters/modbus_adapter.hpp"
#endif

#include "adapter_options.hpp"

#include <fmt/format.h>

#include <cmath>

namespace der::adapters {

namespace {
/// Setpoints this close outside a limit are float noise (e.g. a site dispatch
/// split by headroom) and are taken as the limit itself.
constexpr double k_limit_tolerance_mw = 1e-9;
/// |current_mw| below this is idle.
constexpr double k_idle_mw = 1e-6;
}  // namespace

std::string check_setpoint(double mw, const BessLimits& limits) {
    if (!std::isfinite(mw)) return "setpoint is not a finite number";
    if (mw > limits.max_mw + k_limit_tolerance_mw)
        return fmt::format("{} MW is above the discharge limit max_mw {} MW", mw, limits.max_mw);
    if (mw < limits.min_mw - k_limit_tolerance_mw)
        return fmt::format("{} MW is below the charge limit min_mw {} MW", mw, limits.min_mw);
    return {};
}

AssetStatus status_from_power(double current_mw) {
    if (current_mw > k_idle_mw) return AssetStatus::discharging;
    if (current_mw < -k_idle_mw) return AssetStatus::charging;
    return AssetStatus::idle;
}

std::vector<std::string_view> adapter_kinds() {
#if DER_HAVE_MODBUS
    return {"sim", "exec", "modbus"};
#else
    return {"sim", "exec"};
#endif
}

Result<std::unique_ptr<Adapter>> make_adapter(const AdapterConfig& config, const BessLimits& limits,
                                              const AdapterEnv& env) {
    if (config.kind == "sim") {
        OptionReader r("sim", config.options);
        if (auto ok = r.finish(); !ok) return std::unexpected(ok.error());
        return std::make_unique<SimAdapter>(limits, env.initial_soc_pct);
    }
    if (config.kind == "exec") {
        auto options = parse_exec_options(config);
        if (!options) return std::unexpected(options.error());
        return std::make_unique<ExecAdapter>(std::move(*options), limits, env);
    }
#if DER_HAVE_MODBUS
    if (config.kind == "modbus") {
        auto options = parse_modbus_options(config);
        if (!options) return std::unexpected(options.error());
        return std::make_unique<ModbusAdapter>(std::move(*options), limits, env);
    }
#endif
    return fail(Errc::config, fmt::format("adapter.type: '{}' is not available in this build (available: {})",
                                          config.kind, fmt::join(adapter_kinds(), ", ")));
}

}  // namespace der::adapters
