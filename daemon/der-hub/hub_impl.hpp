#pragma once
// Internal to der-hub: the Hub class, shared by hub.cpp (agents, loop),
// control.cpp (the control socket). One thread owns an instance.

#include "dispatch_book.hpp"
#include "hub_options.hpp"
#include "key_table.hpp"
#include "loop_api.hpp"
#include "mailbox.hpp"
#include "memory_history.hpp"
#include "rest_server.hpp"
#include "sessions.hpp"
#include "snapshot.hpp"

#include "der/assets_config.hpp"
#include "der/store/reader.hpp"
#include "der/store/store.hpp"
#include "der/store/writer.hpp"
#include "der/wire_codec.hpp"

#include <zmq.hpp>

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

namespace der::hub {

inline constexpr std::int64_t k_tack_interval_ms = 50;
/// Due tacks go out together, every k_tack_flush_ms (and k_tack_interval_ms
/// apart per session): one wake-up of libzmq's I/O thread carries a batch of
/// tacks instead of one each (with 10,000 agents at 4 s, 2,500 tacks/s would
/// otherwise each cost an eventfd write and an I/O-thread wake-up).
inline constexpr std::int64_t k_tack_flush_ms = 10;
inline constexpr std::int64_t k_publish_interval_ms = 100;
/// A snapshot costs O(assets changed since the last one) plus a copy of one
/// pointer per asset: the loop spends at most 1/k_publish_cost_share of its
/// time on it (the interval grows to k_publish_cost_share x the last build's
/// duration), never waiting longer than k_publish_interval_max_ms.
inline constexpr std::int64_t k_publish_cost_share = 50;
inline constexpr std::int64_t k_publish_interval_max_ms = 1000;
/// Views built by one publish at most (~2.5 us each); the others follow at the next.
inline constexpr std::size_t k_max_views_per_publish = 1000;
/// The offline sweep (and the memory history's age trim) runs every
/// offline_after / k_sweep_per_offline, between the two bounds: an agent is
/// reported offline at most 1/12 of its timeout late, and a fleet at 4 s is
/// scanned once a second, not four times.
inline constexpr std::int64_t k_sweep_per_offline = 12;
inline constexpr std::int64_t k_sweep_interval_min_ms = 50;
inline constexpr std::int64_t k_sweep_interval_max_ms = 1000;
inline constexpr std::int64_t k_trim_interval_ms = 60'000;  ///< malloc_trim cadence, see release_free_memory
inline constexpr std::int64_t k_log_peer_interval_ms = 60'000;
inline constexpr int k_max_batch = 2048;  // messages drained per socket per turn
/// The agent socket's drain also ends after k_max_drain_ms, and flushes due
/// tacks every k_tack_flush_ms meanwhile (checked every
/// k_drain_check_every messages).
inline constexpr std::int64_t k_max_drain_ms = 20;
inline constexpr int k_drain_check_every = 64;

template <class... Ts>
struct Overloaded : Ts... {
    using Ts::operator()...;
};

inline std::string hex_id(std::string_view routing_id) {
    static constexpr char k[] = "0123456789abcdef";
    std::string out;
    for (unsigned char c : routing_id) {
        out.push_back(k[c >> 4]);
        out.push_back(k[c & 15]);
    }
    return out;
}

inline double seconds_or_exit(const std::string& flag, const std::string& text) {
    auto v = parse_duration(text);
    if (!v) throw cli::ExitError(cli::usage, flag + ": " + v.error().message);
    return *v;
}

class Hub {
public:
    Hub(const HubOptions& options, config::Loaded loaded, cli::Signals& signals)
        : m_options(options),
          m_signals(signals),
          m_history(options.memory_history_rows, seconds_or_exit("--memory-history-age", options.memory_history_age)),
          m_dispatches(seconds_or_exit("--pending-ttl", options.pending_ttl),
                       seconds_or_exit("--ack-timeout", options.ack_timeout)),
          m_ctx(1),
          m_agents(m_ctx, zmq::socket_type::router),
          m_stream(m_ctx, zmq::socket_type::xpub),
          m_control(m_ctx, zmq::socket_type::router),
          m_zap(m_ctx, zmq::socket_type::rep) {
        set_fleet(std::move(loaded.fleet));
    }

    ~Hub() { stop_history_worker(); }
    Hub(const Hub&) = delete;
    Hub& operator=(const Hub&) = delete;

    int run();

private:
    void set_fleet(config::Fleet fleet);
    // Security (docs/security.md): keys, the ZAP handler, tokens.
    void setup_security();
    void bind_zap();
    void drain_zap();
    /// CURVE on: the message's identity against the asset it names; false = refused (counted).
    bool identity_fits(const std::string& route, const zmq::message_t& frame, const std::optional<Uuid>& speaks_for,
                       std::string_view type);
    /// A token configured and `token` not it: answers `unauthorized`, returns false.
    bool token_ok(const std::string& route, const std::string& request_id, const std::string& token);
    void bind_sockets();
    void drain_agents();
    void on_agent_frames(std::vector<zmq::message_t>& frames);
    void on_register(const std::string& route, const wire::Register& reg, const std::string& peer_address);
    void on_telemetry(const std::string& route, const Telemetry& t);
    void on_heartbeat(const std::string& route, const Heartbeat& h);
    void on_ack(const std::string& route, const wire::Ack& ack);
    Result<Dispatch> create_dispatch(const DispatchCommand& command);
    void deliver(const Uuid& dispatch_id);
    void publish_dispatch_changes();
    void publish_stream(const std::string& topic, const std::string& body);
    void drain_stream();

    // control.cpp: the control socket (der-dispatch, der-history, ...)
    void bind_control();
    void drain_control();
    void on_control_frames(std::vector<zmq::message_t>& frames);
    void on_control_dispatch(const std::string& route, const wire::DispatchRequest& request);
    void on_control_history(const std::string& route, const wire::HistoryRequest& request);
    void on_control_query(const std::string& route, const wire::QueryRequest& request);
    void on_control_cancel(const std::string& route, const wire::CancelRequest& request);
    void on_control_stop(const std::string& route, const wire::StopRequest& request);
    bool send_control(const std::string& route, const wire::ControlMessage& message);
    void control_error(const std::string& route, const std::string& request_id, std::string code,
                       std::string message);
    /// Answers `wait`ing dispatch requests whose dispatch reached an outcome.
    void answer_waiters(const Dispatch& d);
    [[nodiscard]] const Asset* resolve_asset(std::string_view id_or_name) const;

    // operator_controls.cpp: site dispatch, cancel, stop, maintenance, audit
    Result<SiteDispatchResult> create_site_dispatch(const SiteDispatchCommand& command);
    Result<Dispatch> cancel_dispatch(const Uuid& id, const std::string& reason, const std::string& by);
    Result<StopResult> stop_assets(const StopCommand& command);
    Result<Asset> set_availability(const std::string& asset, bool available, const std::string& reason,
                                   const std::string& by);
    /// Tells an online agent to go to 0 MW with no dispatch in force.
    void release(const Uuid& asset_id);
    /// Out of service: every scheduled and open dispatch of the asset is
    /// cancelled with `why` and the battery released. Returns how many.
    std::size_t take_out_of_service(const Uuid& asset_id, const std::string& why);
    [[nodiscard]] bool is_available(const Asset& asset) const;
    void record(std::string action, std::string target, std::string reason, std::string by, std::string detail);
    /// Delivers dispatches that became queued this turn (scheduled ones that started).
    void deliver_started();
    [[nodiscard]] Now now() const { return Now{m_clock.now_ms(), m_clock.mono_ms()}; }
    /// The session of `route` with its live and history slots filled in, or
    /// nullptr (and a rate-limited `reregister` sent).
    Session* session_or_reregister(const std::string& route);
    bool send_agent(const std::string& route, const wire::AgentMessage& message);
    void flush_tacks(std::int64_t now);
    void mark_tack_due(Session& s) {
        if (s.tack_due) return;
        s.tack_due = true;
        m_tack_due.push_back(s.asset_id);
    }
    [[nodiscard]] std::string name_of(const Uuid& id) const {
        const auto it = m_assets.find(id);
        return it != m_assets.end() ? it->second->qualified_name() : id.to_string();
    }
    void sweep(std::int64_t now);
    void release_free_memory(std::int64_t now);
    void publish(std::int64_t now);
    /// The view of m_fleet_view->assets[index] as of now.
    [[nodiscard]] std::shared_ptr<const AssetView> build_view(std::size_t index) const;
    /// The asset's view is rebuilt at the next publish. Changes of sessions
    /// and of m_live need no call: SessionTable journals every session it
    /// touches, and m_live changes only right after its session was touched.
    void asset_changed(const Uuid& asset_id) {
        m_changed_assets.push_back(asset_id);
        m_dirty = true;
    }
    /// After a reload: the changed assets' dispatches checked, their online agents told (reregister).
    void push_reloaded(const std::unordered_map<Uuid, Asset>& was, bool intervals_changed);
    void reload();

    // The database (--db): start-up, restore, the writer's commits.
    void open_database();
    void restore(const store::Restored& restored);
    /// Commits reported by the writer: tacks due for them.
    void take_committed();
    /// Agent session records (store::AgentSession) as sessions start and end.
    void session_started(const Session& s, const std::string& peer_address);
    void session_ended(const Uuid& asset_id, const std::string& reason);
    [[nodiscard]] bool db() const { return m_writer != nullptr; }
    /// Control `history` with a database: read on a worker thread (its own
    /// Reader), the replies handed back to the loop to send.
    void start_history_worker();
    void stop_history_worker();
    void history_worker();
    struct HistoryJob {
        std::string route;
        wire::HistoryRequest request;
        std::optional<Uuid> asset_id;
    };
    void malformed(const std::string& route, std::uint64_t& counter, std::string_view why);
    [[nodiscard]] std::int64_t offline_after_ms() const {
        return static_cast<std::int64_t>(std::llround(3.0 * m_fleet.telemetry_s * 1000.0));
    }
    [[nodiscard]] std::int64_t sweep_interval_ms() const {
        return std::clamp(offline_after_ms() / k_sweep_per_offline, k_sweep_interval_min_ms, k_sweep_interval_max_ms);
    }

    HubOptions m_options;
    cli::Signals& m_signals;
    SystemClock m_clock;
    config::Fleet m_fleet;
    std::unordered_map<Uuid, const Asset*> m_assets;          // into m_fleet
    std::unordered_map<std::string, const Asset*> m_by_name;  // `site/asset` -> into m_fleet
    SessionTable m_sessions;
    MemoryHistory m_history;
    DispatchBook m_dispatches;
    std::vector<Dispatch> m_changed;  // dispatch state changes not yet published, in order
    std::unordered_map<Uuid, Live> m_live;  // never erased: sessions point into it
    HubCounters m_counters;
    Mailbox m_mailbox;
    SnapshotHolder m_snapshots;
    // The incremental snapshot (publish()): the configuration part, rebuilt by
    // set_fleet(); the current view of each asset, parallel to
    // m_fleet_view->assets; the publish that last built each view (to build
    // it once per publish); assets changed outside the session journal.
    std::shared_ptr<const FleetView> m_fleet_view;
    std::vector<std::shared_ptr<const AssetView>> m_views;
    std::vector<std::uint64_t> m_view_built_at;
    std::uint64_t m_publishes = 0;
    bool m_all_views_stale = true;
    std::vector<Uuid> m_changed_assets;
    LoopHealth m_health;
    std::unique_ptr<store::Writer> m_writer;  // with --db only; outlives m_rest, whose workers read its stats
    std::unique_ptr<RestServer> m_rest;
    std::mutex m_history_mutex;  // guards m_history_jobs, m_history_stop
    std::condition_variable m_history_cv;
    std::deque<HistoryJob> m_history_jobs;
    bool m_history_stop = false;
    std::thread m_history_thread;
    std::unordered_map<Uuid, store::AgentSession> m_db_sessions;  // asset -> its open session record
    zmq::context_t m_ctx;
    zmq::socket_t m_agents;
    zmq::socket_t m_stream;
    zmq::socket_t m_control;
    zmq::socket_t m_zap;       ///< REP on inproc://zeromq.zap.01, polled by the loop (CURVE only)
    bool m_curve = false;      ///< the agent ROUTER is a CURVE server
    std::string m_curve_secret;
    KeyTable m_keys;
    std::string m_api_token;  ///< empty = none required
    struct Waiter {
        std::string route;
        std::string request_id;
    };
    std::unordered_map<Uuid, std::vector<Waiter>> m_waiters;
    std::unordered_map<Uuid, std::string> m_maintenance;  // asset -> why it is unavailable (runtime)
    std::deque<AuditEntry> m_audit;                       // newest last, bounded  // dispatch -> clients waiting for its outcome
    std::size_t m_subscriptions = 0;
    std::vector<Uuid> m_tack_due;
    std::unordered_map<std::string, std::int64_t> m_peer_log;  // routing id -> last log (mono)
    std::unordered_map<std::string, std::int64_t> m_reregistered;  // routing id -> last reregister (mono)
    std::size_t m_reregister_prune_at = 1024;  // prune entries past their 1 s window beyond this size
    bool m_dirty = true;
    std::int64_t m_last_publish = 0;
    std::int64_t m_publish_interval_ms = k_publish_interval_ms;  // grows with the cost of a publish
    std::int64_t m_last_sweep = 0;
    std::int64_t m_last_tack_flush = 0;
    LoopTurnHistogram m_loop_turns;  ///< /metrics der_hub_loop_turn_seconds
    std::int64_t m_last_trim = 0;
};

}  // namespace der::hub
