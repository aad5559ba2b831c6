#pragma once
/// Agent sessions of the hub (DESIGN.md, "ZeroMQ facts"): keyed by asset and
/// instance, never by ZeroMQ routing id (a reconnecting DEALER arrives with a
/// new one). Pure bookkeeping, no sockets: owned by the event loop thread.
///
/// Exactly-once: telemetry is keyed by (asset, epoch, seq). Per asset the
/// table remembers the epoch it last heard and the highest contiguous `seq`
/// stored of it (`acked`), across sessions, so a reconnecting agent resumes
/// where it left off. Records are taken strictly in order (go-back-N): a
/// `seq` at or below `acked` is a duplicate, one past `acked + 1` a gap the
/// agent will fill by resending.

#include "der/model.hpp"
#include "der/wire_messages.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace der::hub {

struct AssetHistory;  // memory_history.hpp

/// What the hub last heard of an asset (its REST view): kept per asset, never erased.
struct Live {
    std::optional<Telemetry> latest;
    TimestampMs latest_received = 0;
    std::optional<Heartbeat> heartbeat;
};

/// Exactly-once state of an asset, across its sessions.
struct EpochState {
    Uuid epoch;
    std::optional<std::uint64_t> acked;
    std::optional<std::uint64_t> committed;  ///< with a database: in PostgreSQL
};

struct Session {
    Uuid asset_id;
    Uuid instance_id;
    std::string routing_id;
    std::string agent_version;
    Uuid epoch;
    TimestampMs connected_at = 0;
    TimestampMs last_seen_wall = 0;
    std::int64_t last_seen_mono = 0;
    bool online = true;
    std::uint64_t buffered = 0;  ///< from the last heartbeat
    std::int64_t last_tack_mono = -1'000'000;
    bool tack_due = false;
    bool journaled = false;  ///< in SessionTable's change journal (see take_changed)
    /// The asset's slots elsewhere, so that a message costs one lookup (its
    /// routing id): set by on_register (epoch) and by the hub (live,
    /// history); all point into maps that never erase while the session lives.
    EpochState* epoch_state = nullptr;
    Live* live = nullptr;
    AssetHistory* history = nullptr;
};

struct RegisterOutcome {
    bool admitted = false;
    wire::Reject reject;                   ///< when not admitted
    std::optional<std::uint64_t> ack_seq;  ///< when admitted
    bool replaced_other_instance = false;
};

enum class TelemetryOutcome { stored, duplicate, gap, wrong_asset, wrong_epoch };

class SessionTable {
public:
    /// `held_ms`: how long a silent holder still keeps its asset from another instance.
    RegisterOutcome on_register(std::string_view routing_id, const wire::Register& reg, std::int64_t now_mono,
                                TimestampMs now_wall, std::int64_t held_ms);

    /// One hash lookup of the routing id (no string built).
    [[nodiscard]] Session* by_route(std::string_view routing_id);
    [[nodiscard]] Session* by_asset(const Uuid& asset_id);
    [[nodiscard]] const Session* by_asset(const Uuid& asset_id) const;

    /// Marks the session heard from now; returns true when it came back online.
    bool touch(Session& s, std::int64_t now_mono, TimestampMs now_wall);

    /// Decides whether `t` is stored; on `stored`, advances `acked`.
    TelemetryOutcome on_telemetry(Session& s, const Telemetry& t);
    /// What on_telemetry would decide, changing nothing (the hub checks that
    /// the database writer takes a record before counting it stored).
    [[nodiscard]] TelemetryOutcome peek_telemetry(const Session& s, const Telemetry& t) const;

    /// After a restart with a database: what was stored of an asset's last
    /// epoch (`acked` and `committed` both start at `seq`).
    void restore_epoch(const Uuid& asset_id, const Uuid& epoch, std::uint64_t seq);
    /// With a database, tacks and a welcome's ack_seq cover only committed
    /// records: set once at start.
    void set_tack_committed(bool on) { m_tack_committed = on; }
    /// The writer committed (asset, epoch) up to `seq`. Returns the asset's
    /// session when it is on that epoch (its tack is due), else nullptr.
    Session* on_committed(const Uuid& asset_id, const Uuid& epoch, std::uint64_t seq);
    /// The highest committed seq of the session's epoch (nil: none yet).
    [[nodiscard]] std::optional<std::uint64_t> committed(const Session& s) const;
    /// What a tack covers: committed() with a database, else acked().
    [[nodiscard]] std::optional<std::uint64_t> tack_seq(const Session& s) const {
        return m_tack_committed ? committed(s) : acked(s);
    }

    /// The highest contiguous seq stored of the session's epoch (nil: none yet).
    [[nodiscard]] std::optional<std::uint64_t> acked(const Session& s) const;

    /// Sessions silent for longer than `timeout_ms` go offline; returns their assets.
    std::vector<Uuid> sweep_offline(std::int64_t now_mono, std::int64_t timeout_ms);

    /// Forget an asset entirely (removed from the configuration).
    void drop_asset(const Uuid& asset_id);

    [[nodiscard]] const std::unordered_map<Uuid, Session>& all() const { return m_sessions; }
    /// Sessions online; kept as a count, O(1).
    [[nodiscard]] std::size_t online_count() const { return m_online; }

    /// The change journal, for the hub's incremental snapshot: every asset
    /// whose session was created, touched, went offline or ended since the
    /// last take, each once (a session is journaled at most once until taken).
    /// Whoever changes a Session's fields outside this class does so right
    /// after touch() (the hub's heartbeat handler) or calls mark_changed().
    [[nodiscard]] std::vector<Uuid> take_changed();
    void mark_changed(Session& s) {
        if (s.journaled) return;
        s.journaled = true;
        m_changed.push_back(s.asset_id);
    }

private:
    /// Routing ids are short (libzmq makes 5-byte ones): FNV-1a, looked up by string_view.
    struct RouteHash {
        using is_transparent = void;
        std::size_t operator()(std::string_view s) const noexcept {
            std::uint64_t h = 1469598103934665603ULL;
            for (const char c : s) h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ULL;
            return static_cast<std::size_t>(h ^ (h >> 29));
        }
    };
    [[nodiscard]] EpochState& epoch_of(const Session& s);
    /// The session's epoch state without creating one (nullptr: none yet).
    [[nodiscard]] const EpochState* find_epoch(const Session& s) const;
    bool m_tack_committed = false;
    std::unordered_map<Uuid, Session> m_sessions;                                 // by asset
    std::unordered_map<std::string, Session*, RouteHash, std::equal_to<>> m_routes;  // routing id -> into m_sessions
    std::unordered_map<Uuid, EpochState> m_epochs;  // by asset, outlives sessions; never erased under a session
    std::size_t m_online = 0;                       // sessions with `online`
    std::vector<Uuid> m_changed;                    // the change journal
    /// Erases a session (its asset goes into the journal); its route must be erased first.
    void erase(std::unordered_map<Uuid, Session>::iterator it);
};

}  // namespace der::hub
