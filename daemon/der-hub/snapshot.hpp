#pragma once
/// What the event loop publishes for readers on other threads (REST): an
/// immutable snapshot, replaced as a whole, so reads never queue behind
/// ingest and never see a half-updated asset. A snapshot is built
/// incrementally: the configuration part (FleetView) is shared by every
/// snapshot until a reload, and each asset's view is shared until that asset
/// changes (Hub::publish).

#include "dispatch_book.hpp"

#include "der/model.hpp"

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace der::hub {

struct AgentView {
    Uuid instance_id;
    bool online = false;
    std::string agent_version;
    TimestampMs connected_at = 0;
    TimestampMs last_seen = 0;
    std::uint64_t buffered = 0;
};

/// The configuration as readers see it: built at start and on SIGHUP reload,
/// then shared (never copied) by every snapshot until the next reload.
/// Not copyable: `assets` points into its own `sites`.
struct FleetView {
    FleetView(std::vector<Site> sites_in, double telemetry_s_in, double heartbeat_s_in);
    FleetView(const FleetView&) = delete;
    FleetView& operator=(const FleetView&) = delete;

    struct NameHash {
        using is_transparent = void;
        std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
    };
    std::vector<Site> sites;
    std::vector<const Asset*> assets;  ///< into `sites`, in configuration order
    std::unordered_map<Uuid, std::size_t> by_id;                                     ///< index into `assets`
    std::unordered_map<std::string, std::size_t, NameHash, std::equal_to<>> by_name;  ///< `site/asset`
    double telemetry_s = 4.0;
    double heartbeat_s = 30.0;
};

/// `GET /telemetry/{id}`'s body without its two read-time fields: `age_s`
/// and `stale` depend on the clock of the request, so they are spliced in
/// per request between these pieces (bytes identical to dumping the
/// nlohmann::json the handler used to build; see telemetry_json.hpp).
struct TelemetryJson {
    std::string head;    ///< `{` ... `"age_s":`
    std::string middle;  ///< `,` ... `"stale":`
    std::string tail;    ///< ... `}` (no newline)
};

/// One asset's state as of a publish. Immutable once published and shared
/// by the snapshots that follow until the asset changes again (the loop then
/// builds a new one), so a publish costs O(changed assets).
class AssetView {
public:
    /// `asset` lives in the FleetView of every snapshot that holds this view.
    explicit AssetView(const Asset& asset_in) : asset(asset_in) {}
    ~AssetView() { delete m_json.load(std::memory_order_acquire); }
    AssetView(const AssetView&) = delete;
    AssetView& operator=(const AssetView&) = delete;

    const Asset& asset;      ///< as configured (its `available` is the configuration's)
    bool available = true;   ///< the configuration's and not in maintenance
    std::optional<Telemetry> latest;
    TimestampMs latest_received = 0;  ///< hub's wall clock when `latest` arrived
    std::optional<Heartbeat> heartbeat;
    std::optional<AgentView> agent;

    /// `latest` (which must be set) encoded for REST, once per view: the
    /// first reader encodes it, every later one copies the bytes. Any thread.
    [[nodiscard]] const TelemetryJson& telemetry_json() const;

private:
    mutable std::atomic<const TelemetryJson*> m_json{nullptr};  // owned; set once
};

/// Counters of the hub; monotonically increasing unless said otherwise.
struct HubCounters {
    std::uint64_t telemetry_received = 0;
    std::uint64_t telemetry_stored = 0;
    std::uint64_t telemetry_duplicate = 0;
    std::uint64_t telemetry_gap = 0;
    std::uint64_t heartbeats_received = 0;
    std::uint64_t malformed_agents = 0;   ///< frames on the agent socket that did not decode
    std::uint64_t malformed_control = 0;  ///< frames on the control socket that did not decode
    std::uint64_t refused = 0;            ///< well-formed messages refused (wrong asset, no session, ...)
    std::uint64_t registers = 0;
    std::uint64_t rejects = 0;
    std::uint64_t reregisters_sent = 0;
    std::uint64_t tacks_sent = 0;
    std::uint64_t send_failures = 0;
    std::uint64_t zap_denied = 0;            ///< CURVE handshakes refused by the ZAP handler
    std::uint64_t identity_refused = 0;      ///< agent messages whose CURVE identity does not fit
    std::uint64_t unauthorized_control = 0;  ///< control requests without the right token
};

struct Snapshot {
    std::shared_ptr<const FleetView> fleet;
    /// Parallel to fleet->assets; views of unchanged assets are shared with
    /// the previous snapshot.
    std::vector<std::shared_ptr<const AssetView>> assets;
    HubCounters counters;
    std::size_t history_rows = 0;
    std::size_t agents_online = 0;
    std::size_t stream_subscriptions = 0;
    std::array<std::size_t, k_dispatch_state_count> dispatches_in_state{};
    std::array<std::uint64_t, k_dispatch_state_count> dispatch_transitions{};
    LatencyHistogram ack_latency;
    LoopTurnHistogram loop_turns;  ///< the event loop's turns until this snapshot was built
    TimestampMs published_at = 0;
    std::int64_t build_us = 0;  ///< how long the loop took to build this snapshot
    std::size_t views_built = 0;  ///< asset views built for it (the others are shared)

    /// By UUID or `site/asset`.
    [[nodiscard]] const AssetView* find(std::string_view id_or_name) const;
};

/// The hand-over point between the loop (writer) and readers.
class SnapshotHolder {
public:
    void publish(std::shared_ptr<const Snapshot> snapshot) {
        {
            const std::lock_guard lock(m_mutex);
            m_current.swap(snapshot);
        }
        // `snapshot` now holds the previous one: released outside the lock
        // (freeing it drops one reference per asset view).
    }
    [[nodiscard]] std::shared_ptr<const Snapshot> get() const {
        const std::lock_guard lock(m_mutex);
        return m_current;
    }

private:
    mutable std::mutex m_mutex;
    std::shared_ptr<const Snapshot> m_current;
};

/// Liveness of the loop for /health, written by the loop, read by REST.
struct LoopHealth {
    std::atomic<bool> ready{false};
    std::atomic<std::int64_t> last_turn_mono{0};
    std::atomic<std::int64_t> started_mono{0};
};

}  // namespace der::hub
