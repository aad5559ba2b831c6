#pragma once
/// The hub's record of every dispatch and its lifecycle (der-hub(8),
/// "DISPATCH LIFECYCLE"). Pure bookkeeping, no sockets and no clock of its
/// own: the event loop passes the time in, so tests drive it directly.
///
///   queued ──send──▶ sent ──ack applied──▶ applied ──duration over──▶ expired
///     │  ▲            │ └──ack rejected──▶ rejected
///     │  └─EHOSTUNREACH┘└──no ack within --ack-timeout──▶ failed
///     └── offline past --pending-ttl ──▶ failed;  duration over ──▶ expired
///   any open state ──a newer dispatch for the asset──▶ superseded
///   scheduled ──start_at reached──▶ queued (superseding the open one)
///   scheduled or open ──cancel / stop──▶ cancelled
///
/// A site dispatch is a parent record (asset_id = the site's ID) with one
/// child per asset (parent_id set); the parent's state summarises its
/// children and is not counted in the per-state metrics.
///
/// Timers run on the monotonic clock; the recorded timestamps are wall clock.
/// The duration counts from creation: a dispatch delivered late carries only
/// what is left of it (`remaining_s`), and one whose time has run out is
/// never sent.

#include "histogram.hpp"

#include "der/model.hpp"

#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <queue>
#include <string>
#include <unordered_map>
#include <vector>

namespace der::hub {

struct NewDispatch {
    Uuid asset_id;
    double mw = 0.0;
    std::optional<double> duration_s;
    std::string reason;
    std::string requested_by;
    std::optional<TimestampMs> start_at;  ///< in the future: `scheduled` until then
    std::optional<Uuid> parent_id;
};

/// Bounds of a dispatch's duration_s: shorter than a tenth of a second ends
/// before it could reach a battery, longer than a leap year is a mistake (and
/// would overflow the millisecond timers). der-hub(8) documents them.
inline constexpr double k_min_duration_s = 0.1;
inline constexpr double k_max_duration_s = 366.0 * 86'400.0;
/// Errc::invalid_argument naming the bounds when `duration_s` is outside
/// them (nil, "until replaced", is fine).
Result<void> check_duration(const std::optional<double>& duration_s);

/// An operator action's `reason` and `requested_by` are kept with the
/// dispatch, in the audit trail and in the log: bounded (bytes).
inline constexpr std::size_t k_max_reason_bytes = 1'000;
inline constexpr std::size_t k_max_requested_by_bytes = 200;
/// Errc::invalid_argument naming the field when one is longer than that.
Result<void> check_who(const std::string& reason, const std::string& requested_by);

struct Now {
    TimestampMs wall = 0;
    std::int64_t mono = 0;
};

class DispatchBook {
public:
    DispatchBook(double pending_ttl_s, double ack_timeout_s, std::size_t max_kept = 100'000);

    /// Creates a dispatch in `queued`; any open dispatch of the asset becomes
    /// `superseded`. Every state change is appended to `changed` (the dispatch as it was then).
    Dispatch& create(const NewDispatch& request, Now now, std::vector<Dispatch>& changed);

    /// After a restart with a database: takes back a dispatch still in force
    /// (scheduled, queued, sent or applied; others are ignored). Its timers
    /// restart on `now`: a scheduled one keeps its start_at, the duration
    /// counts from its start (start_at or created_at). A sent or applied one
    /// becomes queued again, without a recorded transition, so that it is
    /// delivered again (in the welcome) when its agent registers.
    /// `parent`: a site dispatch's parent record. Two open dispatches of one
    /// asset (oldest first): the later wins, the other is superseded (in
    /// `changed`). Returns false when ignored.
    bool adopt(const Dispatch& d, Now now, bool parent, std::vector<Dispatch>& changed);

    /// A site dispatch's parent record (not an asset's dispatch).
    Dispatch& create_parent(const NewDispatch& request, Now now, std::vector<Dispatch>& changed);
    /// Children of a parent record, in creation order.
    [[nodiscard]] std::vector<Uuid> children_of(const Uuid& parent_id) const;

    /// Cancels a scheduled or open dispatch (all children of a parent).
    /// Returns the assets whose dispatch was in force (sent or applied): they
    /// must be told to go to 0 MW. Errc::not_found, or Errc::refused when it
    /// is already over.
    Result<std::vector<Uuid>> cancel(const Uuid& id, const std::string& why, Now now, std::vector<Dispatch>& changed);
    /// Cancels every scheduled and open dispatch of the given assets.
    std::size_t cancel_assets(const std::vector<Uuid>& assets, const std::string& why, Now now,
                              std::vector<Dispatch>& changed);

    [[nodiscard]] const Dispatch* find(const Uuid& id) const;
    /// The open (queued, sent or applied) dispatch of an asset, if any.
    [[nodiscard]] const Dispatch* open_for(const Uuid& asset_id) const;

    /// The setpoint to send for an open dispatch, with what is left of its
    /// duration; nil when its time has run out.
    [[nodiscard]] std::optional<Setpoint> setpoint_for(const Dispatch& d, Now now) const;

    void mark_sent(const Uuid& id, Now now, std::vector<Dispatch>& changed);
    /// A send that failed (peer gone): back to queued.
    void mark_queued(const Uuid& id, Now now, std::vector<Dispatch>& changed);
    /// An ack from the asset's agent. Returns false when it matches no sent
    /// dispatch of that asset (late, duplicate or unknown).
    bool on_ack(const Uuid& asset_id, const Uuid& dispatch_id, bool applied, const std::string& reason, Now now,
                std::vector<Dispatch>& changed);

    /// Timers: ack timeouts, durations that ended, queued past the TTL.
    /// Called every turn of the event loop: costs a heap peek unless a
    /// deadline is due (it never scans the open dispatches).
    void tick(Now now, std::vector<Dispatch>& changed);

    /// Dispatches newest first, optionally of one asset and/or in a state,
    /// created in [since, until).
    [[nodiscard]] std::vector<Dispatch> history(const std::optional<Uuid>& asset_id,
                                                std::optional<TimestampMs> since, std::optional<TimestampMs> until,
                                                std::optional<DispatchState> state, std::size_t limit) const;

    [[nodiscard]] std::size_t count_in(DispatchState state) const;
    [[nodiscard]] const LatencyHistogram& ack_latency() const { return m_latency; }
    [[nodiscard]] std::uint64_t transitions(DispatchState state) const {
        return m_transitions[static_cast<std::size_t>(state)];
    }

private:
    struct Entry {
        Dispatch d;
        std::int64_t created_mono = 0;
        std::int64_t sent_mono = 0;
        std::int64_t start_mono = 0;  ///< when it starts (= created_mono unless scheduled)
        bool counted = false;         ///< included in m_in_state
        bool parent = false;
    };
    Entry& add(const NewDispatch& request, Now now, bool parent);
    void start(Entry& e, Now now, std::vector<Dispatch>& changed);
    void update_parent(const Uuid& parent_id, Now now, std::vector<Dispatch>& changed);
    void enter(Entry& e, DispatchState state, Now now, std::vector<Dispatch>& changed);
    [[nodiscard]] std::optional<std::int64_t> end_mono(const Entry& e) const;
    void forget_oldest();
    /// Notes when an open dispatch's timers must be looked at again (its
    /// end, its ack timeout when sent, its pending TTL when queued).
    void arm(const Entry& e);
    /// The timers of one open dispatch, as of `now`.
    void check_timers(Entry& e, Now now, std::vector<Dispatch>& changed);

    std::int64_t m_pending_ttl_ms;
    std::int64_t m_ack_timeout_ms;
    std::size_t m_max_kept;
    std::unordered_map<Uuid, Entry> m_entries;
    std::deque<Uuid> m_order;                     // creation order, for history and eviction
    std::unordered_map<Uuid, Uuid> m_open;        // asset -> open dispatch
    std::vector<Uuid> m_scheduled;                // not started yet
    struct Deadline {
        std::int64_t mono = 0;
        Uuid id;
        bool operator>(const Deadline& o) const { return mono > o.mono; }
    };
    /// Min-heap of when open dispatches need a look; stale entries (the
    /// dispatch moved on) are dropped when they come up.
    std::priority_queue<Deadline, std::vector<Deadline>, std::greater<>> m_deadlines;
    std::unordered_map<Uuid, std::vector<Uuid>> m_children;  // parent -> children
    std::uint64_t m_transitions[k_dispatch_state_count] = {};
    std::size_t m_in_state[k_dispatch_state_count] = {};
    LatencyHistogram m_latency;
};

}  // namespace der::hub
