#pragma once
/// Records the store keeps besides the data model's own (Telemetry,
/// Heartbeat, Dispatch, Site, Asset).

#include "der/model.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace der::store {

/// One agent session as the hub saw it: written when the hub admits a
/// register, and again (same session_id, with disconnected_at) when the
/// session ends. The later record replaces the earlier one.
struct AgentSession {
    Uuid session_id;  ///< made by the hub (Uuid::v7()) when it admits the register
    Uuid asset_id;
    Uuid instance_id;
    std::optional<Uuid> epoch;
    std::string agent_version;
    std::string remote_address;  ///< e.g. ZeroMQ's "Peer-Address" property; may be empty
    TimestampMs connected_at = 0;
    std::optional<TimestampMs> disconnected_at;
    std::string disconnect_reason;  ///< "offline", "replaced", "removed", ...
    friend bool operator==(const AgentSession&, const AgentSession&) = default;
};

/// Which stored assets a fleet sync may retire when they are absent from it.
enum class RetireScope {
    all_assets,    ///< every asset not in the fleet (one hub owns the database)
    listed_sites,  ///< only assets of the fleet's sites (hubs sharded by site share it)
};

/// The configuration to upsert into sites/assets.
struct FleetSync {
    std::vector<Site> sites;
    RetireScope scope = RetireScope::all_assets;
};

struct FleetSyncOutcome {
    int assets_inserted = 0;
    int assets_retired = 0;
    int assets_returned = 0;  ///< retired before, back in the configuration now
};

/// After a committed batch: every telemetry record of (asset_id, epoch) up
/// to `seq` that the batch carried is in the database. Since the hub hands
/// records over in seq order per (asset, epoch), the highest committed seq is
/// the cumulative `tack` to send.
struct CommittedSeq {
    Uuid asset_id;
    Uuid epoch;
    std::uint64_t seq = 0;
    friend bool operator==(const CommittedSeq&, const CommittedSeq&) = default;
};

}  // namespace der::store
