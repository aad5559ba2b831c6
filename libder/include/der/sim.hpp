#pragma once
/// The physical model of a battery (DESIGN.md, "BESS simulation"), used by
/// the agent's `sim` adapter. Deterministic: state changes only in `step(dt)`.
///
/// Per step of `dt_s` seconds: `current_mw` moves toward `setpoint_mw` by at
/// most `ramp_mw_per_s * dt_s` (no limit when the ramp is 0) and is clamped
/// to `[min_mw, max_mw]`; then energy flows for the whole step at that power:
/// discharging removes `current_mw * dt/3600 / sqrt(eff)` MWh, charging adds
/// `|current_mw| * dt/3600 * sqrt(eff)` MWh. A step that would cross
/// `soc_min_pct` or `soc_max_pct` delivers only the energy up to the bound,
/// and the power in that direction is cut to 0 with status `soc_limit`
/// until the setpoint turns away from the bound.

#include "der/model.hpp"

namespace der::sim {

class Bess {
public:
    Bess(const BessLimits& limits, double initial_soc_pct);

    /// Clamped to the limits; the device follows at its ramp rate.
    void set_setpoint(double mw);
    void step(double dt_s);

    /// New limits apply from the next step; SOC is kept (clamped to capacity).
    void set_limits(const BessLimits& limits);
    /// Restore state (seed from the hub): clamped to the SOC bounds and limits.
    void restore(double soc_mwh, double current_mw);
    void set_fault(bool fault) { m_fault = fault; }

    [[nodiscard]] const BessLimits& limits() const { return m_limits; }
    [[nodiscard]] double soc_mwh() const { return m_soc_mwh; }
    [[nodiscard]] double soc_pct() const;
    [[nodiscard]] double current_mw() const { return m_current_mw; }
    [[nodiscard]] double setpoint_mw() const { return m_setpoint_mw; }
    [[nodiscard]] AssetStatus status() const;

private:
    [[nodiscard]] double soc_min_mwh() const;
    [[nodiscard]] double soc_max_mwh() const;

    BessLimits m_limits;
    double m_soc_mwh = 0.0;
    double m_current_mw = 0.0;
    double m_setpoint_mw = 0.0;
    bool m_at_limit = false;
    bool m_fault = false;
};

}  // namespace der::sim
