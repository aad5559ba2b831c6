#include "adapter.hpp"

#include <fmt/core.h>

#include <cmath>
#include <stdexcept>

namespace der::agent {

namespace {
/// Setpoints this close outside a limit are float noise (e.g. a site dispatch
/// split by headroom) and are taken as the limit itself.
constexpr double k_limit_tolerance_mw = 1e-9;
}  // namespace

DeviceState SimAdapter::read() const {
    DeviceState state;
    state.soc_mwh = m_bess.soc_mwh();
    state.soc_pct = m_bess.soc_pct();
    state.current_mw = m_bess.current_mw();
    state.setpoint_mw = m_bess.setpoint_mw();
    state.status = m_bess.status();
    state.limits = m_bess.limits();
    return state;
}

ApplyResult SimAdapter::apply_setpoint(double mw) {
    if (!std::isfinite(mw)) return ApplyResult::refuse("setpoint is not a finite number");
    const BessLimits& limits = m_bess.limits();
    if (mw > limits.max_mw + k_limit_tolerance_mw)
        return ApplyResult::refuse(
            fmt::format("{} MW is above the discharge limit max_mw {} MW", mw, limits.max_mw));
    if (mw < limits.min_mw - k_limit_tolerance_mw)
        return ApplyResult::refuse(
            fmt::format("{} MW is below the charge limit min_mw {} MW", mw, limits.min_mw));
    if (mw != 0.0 && !m_fault.empty()) return ApplyResult::refuse("device fault: " + m_fault);
    m_bess.set_setpoint(mw);  // clamps the tolerated noise
    return ApplyResult::ok();
}

std::vector<std::string> SimAdapter::faults() const {
    if (m_fault.empty()) return {};
    return {m_fault};
}

void SimAdapter::inject_fault(std::string reason) {
    m_fault = reason.empty() ? std::string("fault") : std::move(reason);
    m_bess.set_fault(true);
    m_bess.set_setpoint(0.0);
}

void SimAdapter::clear_fault() {
    m_fault.clear();
    m_bess.set_fault(false);
}

std::unique_ptr<Adapter> make_adapter(std::string_view kind, const Asset& asset) {
    if (kind == "sim") return std::make_unique<SimAdapter>(asset.limits, asset.initial_soc_pct);
    throw std::invalid_argument(
        fmt::format("adapter '{}' is not available in this build (only 'sim')", kind));
}

}  // namespace der::agent
