#pragma once
/// The der-agent session logic (DESIGN.md, "Wire protocol v1"), free of
/// sockets: `AgentCore` turns events (connected, disconnected, a decoded
/// message, time passing) into calls on its Adapter and messages handed to a
/// non-blocking send function. The socket loop (agent_loop.hpp) feeds it; the
/// tests feed it by hand with a der::FakeClock.
///
/// Every timer runs on the monotonic clock (Clock::mono_ms); the wall clock
/// (Clock::now_ms) only stamps records. Single-threaded: one loop owns it.

#include "adapter.hpp"
#include "spool.hpp"
#include "telemetry_ring.hpp"

#include "der/model.hpp"
#include "der/util/time.hpp"
#include "der/wire_messages.hpp"

#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace der::agent {

/// What the agent does with its setpoint when it has not heard from its hub
/// for `hub_timeout_s`: keep it (a dispatch still ends with its duration), or
/// go to 0 MW and drop the dispatch.
enum class HubLoss { hold, zero };

struct AgentSettings {
    Asset asset;  ///< id, site, local limits, initial SOC
    double tick_s = 1.0;
    double telemetry_s = 4.0;   ///< until a welcome says otherwise
    double heartbeat_s = 30.0;  ///< until a welcome says otherwise
    std::size_t buffer_records = 10'000;
    HubLoss on_hub_loss = HubLoss::hold;
    double hub_timeout_s = 60.0;
    /// --spool: keep unacknowledged telemetry on disk too (nil = memory only).
    std::optional<SpoolOptions> spool;
};

/// Sends one message without blocking. false = not sent (no connected peer,
/// high-water mark): the caller keeps what it has and tries again later.
using SendFn = std::function<bool(const wire::AgentMessage&)>;

class AgentCore {
public:
    /// Sent, no answer: the first retry after about this long, each further
    /// one after twice the previous, at most k_register_retry_max_ms, every
    /// interval spread ±25 % by the instance (a fleet reconnecting at once
    /// after a hub restart must not echo its registers in lockstep into a hub
    /// still working through the first ones).
    static constexpr std::int64_t k_register_retry_ms = 2'000;
    static constexpr std::int64_t k_register_retry_max_ms = 30'000;
    static constexpr std::int64_t k_register_fast_retry_ms = 100;  ///< send failed
    static constexpr std::int64_t k_register_after_reject_ms = 10'000;
    /// The soonest a reject's retry_after_s hint brings the next register.
    static constexpr std::int64_t k_min_reject_retry_ms = 250;
    static constexpr std::int64_t k_send_retry_ms = 100;  ///< telemetry send blocked
    static constexpr std::int64_t k_state_log_ms = 60'000;
    static constexpr std::int64_t k_bad_frame_log_ms = 60'000;

    /// `adapter` and `clock` must outlive the core.
    AgentCore(AgentSettings settings, Adapter& adapter, const Clock& clock, SendFn send);

    /// Keeps telemetry in `spool` too (must outlive the core); call before
    /// the first event. With `contents` of an earlier run the core carries on
    /// under that run's epoch and seq and resends its unacknowledged records;
    /// without, it writes its own epoch to the spool.
    void attach_spool(Spool& spool, const SpoolContents& contents);

    // --- events ---------------------------------------------------------
    /// The connection to the hub is up (handshake done): register.
    void on_connected(std::string_view endpoint = {});
    /// The connection is gone, and with it the session until the next welcome.
    void on_disconnected(std::string_view endpoint = {});
    void on_message(const wire::AgentMessage& message);
    /// A frame that did not decode: counted, logged at most once a minute.
    void on_bad_frame(std::string_view what);
    /// Runs every timer that is due: device poll and tick, setpoints the
    /// device has answered, telemetry, heartbeat, register retries,
    /// dispatch end, go-back-N, hub loss, state log.
    void run_timers();
    /// The monotonic time at which run_timers next has something to do.
    [[nodiscard]] std::int64_t next_deadline_mono_ms() const;

    // --- observers --------------------------------------------------------
    [[nodiscard]] bool welcomed() const { return m_welcomed; }
    [[nodiscard]] bool connected() const { return m_connected; }
    [[nodiscard]] bool hub_lost() const { return m_hub_lost; }
    [[nodiscard]] bool has_state() const { return m_have_state; }
    [[nodiscard]] const TelemetryRing& ring() const { return m_ring; }
    [[nodiscard]] const Spool* spool() const { return m_spool; }
    [[nodiscard]] std::uint64_t last_seq() const { return m_last_seq; }
    [[nodiscard]] const Uuid& epoch() const { return m_epoch; }
    [[nodiscard]] const Uuid& instance_id() const { return m_instance_id; }
    [[nodiscard]] double telemetry_s() const { return m_telemetry_ms / 1000.0; }
    [[nodiscard]] double heartbeat_s() const { return m_heartbeat_ms / 1000.0; }
    [[nodiscard]] const BessLimits& limits_in_force() const { return m_limits; }
    [[nodiscard]] std::optional<Uuid> dispatch_id() const;
    /// The dispatch sent to the device and not yet answered by it, if any.
    [[nodiscard]] std::optional<Uuid> pending_dispatch_id() const;
    /// Seconds left of the dispatch in force; nil when none or open-ended.
    [[nodiscard]] std::optional<double> dispatch_remaining_s() const;
    [[nodiscard]] std::uint64_t bad_frames() const { return m_bad_frames; }
    /// The register message as it would be sent now.
    [[nodiscard]] wire::Register make_register() const;

    /// One info line with the device, ring and session state.
    void log_state() const;

private:
    struct DispatchInForce {
        Uuid id;
        double mw = 0.0;
        std::optional<std::int64_t> end_mono_ms;  ///< nil = until replaced
    };

    void send_register(std::int64_t now);
    void handle(const wire::Welcome& welcome, std::int64_t now);
    void handle(const wire::Reject& reject, std::int64_t now);
    void handle(const wire::Tack& tack, std::int64_t now);
    void handle(const Setpoint& setpoint, std::int64_t now);
    void handle_reregister(std::int64_t now);

    /// A setpoint the device has not answered yet (Adapter::apply_setpoint
    /// said pending): it is in force, and acknowledged, once it answers.
    struct PendingDispatch {
        Setpoint setpoint;
        std::uint64_t ticket = 0;
        std::int64_t received_mono_ms = 0;  ///< its duration runs from here
    };

    void apply_dispatch(const Setpoint& setpoint, std::int64_t now);
    /// Makes `setpoint` (accepted by the device) the dispatch in force and acks it.
    void commit_dispatch(const Setpoint& setpoint, std::int64_t received_mono_ms);
    /// Takes the device's answers to pending setpoints.
    void settle_pending(std::int64_t now);
    /// Ends the dispatch in force (duration over, hub loss): 0 MW.
    void end_dispatch(std::int64_t now, std::string_view why);
    void send_ack(const Uuid& dispatch_id, wire::AckStatus status, std::string reason);
    [[nodiscard]] bool dispatch_ended_here(const Uuid& id) const;

    /// Integrates the device up to `now` (monotonic dt since the last step).
    void advance_device(std::int64_t now);
    void produce_telemetry(std::int64_t now);
    void send_heartbeat(std::int64_t now);
    /// Sends ring records in seq order while welcomed and the window allows.
    void pump(std::int64_t now);
    /// When the oldest record held is past `hub_seq` + 1 (a full buffer
    /// dropped the ones between), moves the held records to a new epoch and
    /// registers again; true when it did.
    bool move_past_hole(std::uint64_t hub_seq, std::int64_t now);
    /// Logs a spool failure (at most once a minute); the agent goes on in memory.
    void spool_result(const Result<void>& result, std::int64_t now);

    AgentSettings m_settings;
    Adapter& m_adapter;
    const Clock& m_clock;
    SendFn m_send;

    Uuid m_instance_id;
    Uuid m_epoch;
    std::uint64_t m_last_seq = 0;
    TelemetryRing m_ring;
    Spool* m_spool = nullptr;
    std::uint64_t m_spool_errors = 0;
    std::optional<std::int64_t> m_spool_error_logged_ms;
    BessLimits m_limits;  ///< in force: local, or the stricter of local and the hub's
    Uuid m_site_id;

    std::int64_t m_start_mono_ms;
    std::int64_t m_tick_ms;
    std::int64_t m_telemetry_ms;
    std::int64_t m_heartbeat_ms;
    std::int64_t m_hub_timeout_ms;

    bool m_connected = false;
    bool m_welcomed = false;
    bool m_have_state = false;  ///< false until the first welcome
    bool m_rejected = false;
    bool m_hub_lost = false;
    bool m_send_blocked = false;

    std::int64_t m_last_step_mono_ms;
    std::int64_t m_next_tick_ms;
    std::int64_t m_next_telemetry_ms;
    std::int64_t m_next_heartbeat_ms;
    std::int64_t m_next_register_ms;
    int m_registers_unanswered = 0;    ///< sent since the last welcome, connection or reject
    std::int64_t m_last_register_sent_ms = 0;
    std::int64_t m_next_state_log_ms;
    std::int64_t m_last_heard_mono_ms;

    std::optional<DispatchInForce> m_dispatch;
    std::optional<PendingDispatch> m_pending;
    std::deque<Uuid> m_ended_dispatches;  ///< recent ones, never re-applied

    std::uint64_t m_bad_frames = 0;
    std::uint64_t m_bad_frames_unlogged = 0;
    std::optional<std::int64_t> m_bad_frame_logged_ms;
    std::uint64_t m_drops_logged = 0;
    std::optional<std::int64_t> m_drop_logged_ms;
};

/// Delay before register attempt `unanswered` + 1 when `unanswered` (>= 1)
/// registers went out without an answer: k_register_retry_ms doubled per
/// attempt up to k_register_retry_max_ms, times a factor in [0.75, 1.25)
/// that `salt` (the instance) and the attempt fix.
std::int64_t register_retry_ms(int unanswered, std::uint64_t salt);

/// Seconds to whole milliseconds (at least 1), for timers.
std::int64_t to_ms(double seconds);

}  // namespace der::agent
