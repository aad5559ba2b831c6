#pragma once
/// How der-agent reaches its device (docs/adapters.md). The agent's loop
/// talks only to this interface; `sim`, `exec` and `modbus` implement it.
///
/// Power sign as in der/model.hpp (positive MW = discharge). Thread
/// ownership: an adapter is owned and called by one thread (the agent loop);
/// no call blocks for long: device I/O is either non-blocking (exec) or
/// bounded by a short timeout (modbus, `timeout_ms`).

#include "der/model.hpp"
#include "der/util/error.hpp"
#include "der/util/time.hpp"
#include "der/wire_messages.hpp"

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace der::adapters {

/// The device as last read. `status == fault` iff `fault_reason` is set.
struct DeviceState {
    double soc_mwh = 0.0;
    double soc_pct = 0.0;
    double current_mw = 0.0;
    double setpoint_mw = 0.0;
    AssetStatus status = AssetStatus::idle;
    std::string fault_reason;  ///< empty unless status is fault
    BessLimits limits;         ///< the limits the device is held to
};

/// The answer to a setpoint: accepted, rejected (with the reason the ack
/// carries), or pending: the device answers later, and `take_settled()`
/// then returns the result under the same ticket.
struct ApplyResult {
    enum class Outcome { accepted, rejected, pending };
    Outcome outcome = Outcome::rejected;
    std::string reason;
    std::uint64_t ticket = 0;  ///< set when pending

    [[nodiscard]] bool accepted() const { return outcome == Outcome::accepted; }
    [[nodiscard]] bool pending() const { return outcome == Outcome::pending; }
    static ApplyResult ok() { return {Outcome::accepted, {}, 0}; }
    static ApplyResult refuse(std::string why) { return {Outcome::rejected, std::move(why), 0}; }
    static ApplyResult later(std::uint64_t ticket) { return {Outcome::pending, {}, ticket}; }
};

class Adapter {
public:
    Adapter() = default;
    Adapter(const Adapter&) = delete;
    Adapter& operator=(const Adapter&) = delete;
    virtual ~Adapter() = default;

    [[nodiscard]] virtual std::string_view kind() const = 0;
    /// Device time: `dt_s` monotonic seconds since the previous call. The
    /// simulation integrates its energy over it; real devices ignore it.
    virtual void step(double dt_s) = 0;
    /// Called on every turn of the agent loop (and whenever one of
    /// `wait_fds()` is readable): device I/O, timeouts, reconnects,
    /// restarts, periodic reads. Never blocks for long.
    virtual void poll() {}
    /// The last known state; never does I/O.
    [[nodiscard]] virtual DeviceState read() const = 0;
    /// Commands `mw`. Rejects, without changing anything, a non-finite
    /// setpoint, one outside the limits in force, or a non-zero one while
    /// the device is faulted. 0 MW is never rejected by the adapter itself.
    virtual ApplyResult apply_setpoint(double mw) = 0;
    /// The result of a setpoint answered `pending`, once known; each ticket
    /// is returned once. A result for a ticket the caller no longer waits
    /// for is simply dropped by the caller.
    virtual std::optional<ApplyResult> take_settled() { return std::nullopt; }
    /// The limits to enforce from now on (the stricter of local and hub's).
    virtual void set_limits(const BessLimits& limits) = 0;
    /// Restore SOC and power from the hub's seed. A real device knows its
    /// own state and ignores this.
    virtual void restore(const wire::AgentState& seed) = 0;
    /// File descriptors the loop also waits on (readable = call poll()).
    [[nodiscard]] virtual std::vector<int> wait_fds() const { return {}; }
    /// When poll() next has a timer due (monotonic ms); nil = none.
    [[nodiscard]] virtual std::optional<std::int64_t> next_deadline_mono_ms() const { return std::nullopt; }
    /// Lets go of the device (child stopped, connection closed); idempotent,
    /// also done by the destructor. May wait briefly (a child's SIGTERM grace).
    virtual void stop() {}
};

/// What an adapter may need besides its options.
struct AdapterEnv {
    const Clock* clock = nullptr;   ///< nil = the system clock; must outlive the adapter
    double initial_soc_pct = 50.0;  ///< sim: SOC at start
    std::string name;               ///< `site/asset`, for log lines
};

/// The adapter `config.kind` (sim, exec, modbus) with `config.options`.
/// Errors: Errc::config naming the adapter kind or the option that is
/// unknown, missing or malformed (`adapter.timeout_ms: must be ...`).
Result<std::unique_ptr<Adapter>> make_adapter(const AdapterConfig& config, const BessLimits& limits,
                                              const AdapterEnv& env = {});

/// The kinds this build provides, in order (modbus only with libmodbus).
std::vector<std::string_view> adapter_kinds();

/// The local checks every adapter makes before it commands `mw`: finite and
/// within `[min_mw, max_mw]` (float noise of 1e-9 MW tolerated). Empty when fine.
std::string check_setpoint(double mw, const BessLimits& limits);

/// The status a reading implies when the device does not report one.
AssetStatus status_from_power(double current_mw);

}  // namespace der::adapters
