#pragma once
/// What the event loop publishes for readers on other threads (REST): an
/// immutable snapshot, replaced as a whole, so reads never queue behind
/// ingest and never see a half-updated asset.

#include "dispatch_book.hpp"

#include "der/model.hpp"

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
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

struct AssetView {
    Asset asset;
    std::optional<Telemetry> latest;
    TimestampMs latest_received = 0;  ///< hub's wall clock when `latest` arrived
    std::optional<Heartbeat> heartbeat;
    std::optional<AgentView> agent;
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
    std::vector<Site> sites;
    std::vector<AssetView> assets;  ///< in configuration order
    std::unordered_map<Uuid, std::size_t> by_id;
    std::unordered_map<std::string, std::size_t> by_name;  ///< `site/asset`
    double telemetry_s = 4.0;
    double heartbeat_s = 30.0;
    HubCounters counters;
    std::size_t history_rows = 0;
    std::size_t agents_online = 0;
    std::size_t stream_subscriptions = 0;
    std::array<std::size_t, k_dispatch_state_count> dispatches_in_state{};
    std::array<std::uint64_t, k_dispatch_state_count> dispatch_transitions{};
    LatencyHistogram ack_latency;
    TimestampMs published_at = 0;

    /// By UUID or `site/asset`.
    [[nodiscard]] const AssetView* find(std::string_view id_or_name) const;
};

/// The hand-over point between the loop (writer) and readers.
class SnapshotHolder {
public:
    void publish(std::shared_ptr<const Snapshot> snapshot) {
        const std::lock_guard lock(m_mutex);
        m_current = std::move(snapshot);
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
