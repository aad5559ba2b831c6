#include "der/adapters/sim_adapter.hpp"

namespace der::adapters {

DeviceState SimAdapter::read() const {
    DeviceState state;
    state.soc_mwh = m_bess.soc_mwh();
    state.soc_pct = m_bess.soc_pct();
    state.current_mw = m_bess.current_mw();
    state.setpoint_mw = m_bess.setpoint_mw();
    state.status = m_bess.status();
    if (state.status == AssetStatus::fault) state.fault_reason = m_fault.empty() ? "fault" : m_fault;
    state.limits = m_bess.limits();
    return state;
}

ApplyResult SimAdapter::apply_setpoint(double mw) {
    if (auto why = check_setpoint(mw, m_bess.limits()); !why.empty())
        return ApplyResult::refuse(std::move(why));
    if (mw != 0.0 && !m_fault.empty()) return ApplyResult::refuse("device fault: " + m_fault);
    m_bess.set_setpoint(mw);  // clamps the tolerated noise
    return ApplyResult::ok();
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

}  // namespace der::adapters
