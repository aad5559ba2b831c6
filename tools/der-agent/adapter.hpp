#pragma once
/// How der-agent reaches its device. The agent's loop talks only to this
/// interface; `SimAdapter` implements it over der::sim::Bess, later issues
/// add `exec` and `modbus`. Power sign as in der/model.hpp (positive MW =
/// discharge). Single-threaded: owned and called by the agent loop only.

#include "der/model.hpp"
#include "der/sim.hpp"
#include "der/wire_messages.hpp"

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace der::agent {

/// The device as last read.
struct DeviceState {
    double soc_mwh = 0.0;
    double soc_pct = 0.0;
    double current_mw = 0.0;
    double setpoint_mw = 0.0;
    AssetStatus status = AssetStatus::idle;
    BessLimits limits;  ///< the limits the device is held to
};

/// The outcome of a setpoint: accepted, or rejected with a reason for the ack.
struct ApplyResult {
    bool accepted = false;
    std::string reason;
    static ApplyResult ok() { return {true, {}}; }
    static ApplyResult refuse(std::string why) { return {false, std::move(why)}; }
};

class Adapter {
public:
    virtual ~Adapter() = default;

    [[nodiscard]] virtual std::string_view kind() const = 0;
    /// Advance or poll the device; `dt_s` is the monotonic time since the
    /// previous call (a simulated device integrates its energy over it).
    virtual void tick(double dt_s) = 0;
    [[nodiscard]] virtual DeviceState read() const = 0;
    /// Commands `mw`. Rejects, without changing anything, a setpoint outside
    /// the limits in force, a non-finite one, or any non-zero one while the
    /// device is faulted. 0 MW is always accepted (it is the safe state).
    virtual ApplyResult apply_setpoint(double mw) = 0;
    /// The limits to enforce from now on (the stricter of local and hub's).
    virtual void set_limits(const BessLimits& limits) = 0;
    /// Restore SOC and current power from the hub's seed. A real device
    /// knows its own state and ignores this.
    virtual void restore(const wire::AgentState& seed) = 0;
    /// Current faults, empty when healthy.
    [[nodiscard]] virtual std::vector<std::string> faults() const = 0;
};

/// A simulated battery (DESIGN.md, "BESS simulation").
class SimAdapter final : public Adapter {
public:
    SimAdapter(const BessLimits& limits, double initial_soc_pct) : m_bess(limits, initial_soc_pct) {}

    [[nodiscard]] std::string_view kind() const override { return "sim"; }
    void tick(double dt_s) override { m_bess.step(dt_s); }
    [[nodiscard]] DeviceState read() const override;
    ApplyResult apply_setpoint(double mw) override;
    void set_limits(const BessLimits& limits) override { m_bess.set_limits(limits); }
    void restore(const wire::AgentState& seed) override { m_bess.restore(seed.soc_mwh, seed.current_mw); }
    [[nodiscard]] std::vector<std::string> faults() const override;

    /// For tests and fault drills: a faulted device refuses non-zero setpoints.
    void inject_fault(std::string reason);
    void clear_fault();

private:
    sim::Bess m_bess;
    std::string m_fault;  ///< empty = healthy
};

/// The adapter named `kind` for `asset`; throws std::invalid_argument for a
/// kind this build does not provide.
std::unique_ptr<Adapter> make_adapter(std::string_view kind, const Asset& asset);

}  // namespace der::agent
