#pragma once
/// The `sim` adapter: a simulated battery (DESIGN.md, "BESS simulation").

#include "der/adapters/adapter.hpp"
#include "der/sim.hpp"

namespace der::adapters {

class SimAdapter final : public Adapter {
public:
    SimAdapter(const BessLimits& limits, double initial_soc_pct) : m_bess(limits, initial_soc_pct) {}

    [[nodiscard]] std::string_view kind() const override { return "sim"; }
    void step(double dt_s) override { m_bess.step(dt_s); }
    [[nodiscard]] DeviceState read() const override;
    ApplyResult apply_setpoint(double mw) override;
    void set_limits(const BessLimits& limits) override { m_bess.set_limits(limits); }
    void restore(const wire::AgentState& seed) override { m_bess.restore(seed.soc_mwh, seed.current_mw); }

    /// For tests and fault drills: a faulted device refuses non-zero setpoints.
    void inject_fault(std::string reason);
    void clear_fault();

private:
    sim::Bess m_bess;
    std::string m_fault;  ///< empty = healthy
};

}  // namespace der::adapters
