#include "der/sim.hpp"

#include <algorithm>
#include <cmath>

namespace der::sim {

namespace {

/// SOC within this many MWh of a bound counts as at the bound, so that
/// rounding in long runs of small steps cannot leave a sliver to deliver.
constexpr double k_soc_epsilon_mwh = 1e-12;
/// |current_mw| below this is idle for the status.
constexpr double k_idle_mw = 1e-9;
constexpr double k_seconds_per_hour = 3600.0;

/// Clamp that never misbehaves on bad input: NaN goes to `lo`, and
/// `lo > hi` (inconsistent limits) yields `lo` instead of undefined behaviour.
double clamp_to(double x, double lo, double hi) {
    if (!(x >= lo)) {
        return lo;
    }
    if (x > hi) {
        return std::max(hi, lo);
    }
    return x;
}

double capacity_of(const BessLimits& limits) {
    const double c = limits.capacity_mwh;
    return std::isfinite(c) && c > 0.0 ? c : 0.0;
}

/// sqrt of the round-trip efficiency, i.e. the one-way efficiency. An
/// efficiency outside (0, 1] (rejected by the config validator) is taken as 1
/// rather than dividing by zero.
double one_way_efficiency(const BessLimits& limits) {
    const double eff = limits.efficiency;
    return eff > 0.0 && eff <= 1.0 ? std::sqrt(eff) : 1.0;
}

}  // namespace

Bess::Bess(const BessLimits& limits, double initial_soc_pct) : m_limits(limits) {
    m_soc_mwh = clamp_to(capacity_of(m_limits) * initial_soc_pct / 100.0, soc_min_mwh(), soc_max_mwh());
}

double Bess::soc_min_mwh() const {
    const double pct = clamp_to(m_limits.soc_min_pct, 0.0, 100.0);
    return capacity_of(m_limits) * pct / 100.0;
}

double Bess::soc_max_mwh() const {
    const double pct = clamp_to(m_limits.soc_max_pct, 0.0, 100.0);
    return std::max(capacity_of(m_limits) * pct / 100.0, soc_min_mwh());
}

double Bess::soc_pct() const {
    const double capacity = capacity_of(m_limits);
    return capacity > 0.0 ? 100.0 * m_soc_mwh / capacity : 0.0;
}

void Bess::set_setpoint(double mw) {
    if (std::isnan(mw)) {
        return;  // keep the last valid command rather than guess one
    }
    m_setpoint_mw = clamp_to(mw, m_limits.min_mw, m_limits.max_mw);
}

void Bess::set_limits(const BessLimits& limits) {
    m_limits = limits;
    m_soc_mwh = clamp_to(m_soc_mwh, soc_min_mwh(), soc_max_mwh());
    m_setpoint_mw = clamp_to(m_setpoint_mw, m_limits.min_mw, m_limits.max_mw);
}

void Bess::restore(double soc_mwh, double current_mw) {
    if (std::isfinite(soc_mwh)) {
        m_soc_mwh = clamp_to(soc_mwh, soc_min_mwh(), soc_max_mwh());
    }
    if (std::isfinite(current_mw)) {
        m_current_mw = clamp_to(current_mw, m_limits.min_mw, m_limits.max_mw);
    }
    m_at_limit = false;
}

void Bess::step(double dt_s) {
    if (!std::isfinite(dt_s) || dt_s <= 0.0) {
        return;
    }
    const double lo = soc_min_mwh();
    const double hi = soc_max_mwh();

    const double ramp = m_limits.ramp_mw_per_s;
    if (ramp > 0.0) {
        const double max_delta = ramp * dt_s;
        m_current_mw += clamp_to(m_setpoint_mw - m_current_mw, -max_delta, max_delta);
    } else {
        m_current_mw = m_setpoint_mw;
    }
    m_current_mw = clamp_to(m_current_mw, m_limits.min_mw, m_limits.max_mw);

    m_at_limit = false;
    if ((m_current_mw > 0.0 && m_soc_mwh <= lo + k_soc_epsilon_mwh) ||
        (m_current_mw < 0.0 && m_soc_mwh >= hi - k_soc_epsilon_mwh)) {
        m_current_mw = 0.0;
        m_at_limit = true;
        return;
    }

    const double hours = dt_s / k_seconds_per_hour;
    const double eta = one_way_efficiency(m_limits);
    if (m_current_mw > 0.0) {
        const double next = m_soc_mwh - m_current_mw * hours / eta;
        if (next <= lo) {
            m_soc_mwh = lo;
            m_current_mw = 0.0;
            m_at_limit = true;
        } else {
            m_soc_mwh = next;
        }
    } else if (m_current_mw < 0.0) {
        const double next = m_soc_mwh - m_current_mw * hours * eta;
        if (next >= hi) {
            m_soc_mwh = hi;
            m_current_mw = 0.0;
            m_at_limit = true;
        } else {
            m_soc_mwh = next;
        }
    }
}

AssetStatus Bess::status() const {
    if (m_fault) {
        return AssetStatus::fault;
    }
    // The limit holds only while the command still pushes into the bound
    // that was hit; a setpoint of 0 or away from it clears it at once.
    if (m_at_limit) {
        const bool at_min = m_soc_mwh <= soc_min_mwh() + k_soc_epsilon_mwh;
        const bool at_max = m_soc_mwh >= soc_max_mwh() - k_soc_epsilon_mwh;
        if ((m_setpoint_mw > 0.0 && at_min) || (m_setpoint_mw < 0.0 && at_max)) {
            return AssetStatus::soc_limit;
        }
    }
    if (m_current_mw > k_idle_mw) {
        return AssetStatus::discharging;
    }
    if (m_current_mw < -k_idle_mw) {
        return AssetStatus::charging;
    }
    return AssetStatus::idle;
}

}  // namespace der::sim
