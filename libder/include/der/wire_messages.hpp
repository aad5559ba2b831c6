#pragma once
/// The messages of wire protocol v1 (DESIGN.md, docs/protocol.md), as plain
/// structs. No msgpack here: `wire_codec.hpp` turns them into frames.
///
/// Every message is two ZeroMQ frames, `[type][body]`: `type` a short ASCII
/// string (`type_name()` below), `body` a msgpack map keyed by the field names.

#include "der/model.hpp"

#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace der::wire {

// --- agent <-> hub agent ROUTER ----------------------------------------------

/// The agent's own view of its device state, sent with `register` and, as
/// `seed`, restored by the hub into a fresh agent's `welcome`.
struct AgentState {
    double soc_mwh = 0.0;
    double current_mw = 0.0;
    double setpoint_mw = 0.0;
    std::optional<Uuid> dispatch_id;
    std::optional<double> remaining_s;
    friend bool operator==(const AgentState&, const AgentState&) = default;
};

struct Register {
    Uuid asset_id;
    int proto = k_protocol_version;
    std::string agent_version;
    Uuid instance_id;            ///< made at process start
    Uuid epoch;                  ///< UUIDv7 of this run's telemetry sequence
    std::uint64_t last_seq = 0;  ///< highest seq produced so far (0 = none)
    std::optional<AgentState> state;
    std::optional<BessLimits> limits;  ///< the agent's local limits
    friend bool operator==(const Register&, const Register&) = default;
};

struct Welcome {
    Asset asset;
    std::optional<AgentState> seed;  ///< only when the agent has no state
    double telemetry_s = 4.0;
    double heartbeat_s = 30.0;
    std::optional<std::uint64_t> ack_seq;  ///< nil = hub holds nothing of this epoch
    std::optional<Setpoint> dispatch;      ///< the dispatch in force
    friend bool operator==(const Welcome&, const Welcome&) = default;
};

struct Reject {
    std::string code;  ///< `unknown_asset`, `asset_held`, `bad_protocol`, `unauthorized`
    std::string reason;
    /// When registering again can succeed (`asset_held`: once the holder has
    /// been silent long enough); nil = the agent's own retry interval.
    std::optional<double> retry_after_s;
    friend bool operator==(const Reject&, const Reject&) = default;
};

/// Cumulative: every record of `epoch` up to `seq` is stored.
struct Tack {
    Uuid epoch;
    std::uint64_t seq = 0;
    friend bool operator==(const Tack&, const Tack&) = default;
};

enum class AckStatus { applied, rejected };
std::string_view to_string(AckStatus status) noexcept;

struct Ack {
    Uuid dispatch_id;
    AckStatus status = AckStatus::applied;
    std::string reason;
    TimestampMs ts = 0;
    friend bool operator==(const Ack&, const Ack&) = default;
};

struct Reregister {
    friend bool operator==(const Reregister&, const Reregister&) = default;
};

using AgentMessage =
    std::variant<Register, Welcome, Reject, Telemetry, Heartbeat, Tack, Setpoint, Ack, Reregister>;

// --- clients <-> hub control ROUTER ------------------------------------------
// Every request carries a client-chosen `request_id`, echoed in every reply,
// and `token` when the hub requires one.

struct DispatchRequest {
    std::string request_id;
    std::string token;
    std::string asset;  ///< UUID or `site/asset`; empty when `site` is given
    double mw = 0.0;
    std::optional<double> duration_s;
    bool wait = false;
    std::string reason;
    std::string requested_by;
    std::string site;                     ///< a site dispatch (UUID or name): split across its assets
    std::optional<TimestampMs> start_at;  ///< held by the hub (`scheduled`) until then
    friend bool operator==(const DispatchRequest&, const DispatchRequest&) = default;
};

struct DispatchResult {
    std::string request_id;
    std::optional<Uuid> dispatch_id;
    std::optional<DispatchState> state;  ///< nil when refused before a dispatch existed
    std::string error;
    bool final = false;  ///< no further result follows for this request
    friend bool operator==(const DispatchResult&, const DispatchResult&) = default;
};

/// `cancel`: the dispatch (or site dispatch) goes to `cancelled`, its assets to 0 MW.
/// Answered with a final `dispatch.result`, or `error`.
struct CancelRequest {
    std::string request_id;
    std::string token;
    Uuid dispatch_id;
    std::string reason;
    std::string requested_by;
    friend bool operator==(const CancelRequest&, const CancelRequest&) = default;
};

/// `stop`: every asset (of `site`, or of the hub) to 0 MW at once, every open
/// or scheduled dispatch `cancelled`. Answered with `stop.result`.
struct StopRequest {
    std::string request_id;
    std::string token;
    std::string site;  ///< empty = every asset
    std::string reason;
    std::string requested_by;
    friend bool operator==(const StopRequest&, const StopRequest&) = default;
};

struct StopResult {
    std::string request_id;
    std::uint64_t assets = 0;
    std::uint64_t cancelled = 0;
    friend bool operator==(const StopResult&, const StopResult&) = default;
};

enum class HistoryKind { telemetry, dispatch, heartbeat };
std::string_view to_string(HistoryKind kind) noexcept;

struct HistoryRequest {
    std::string request_id;
    std::string token;
    HistoryKind kind = HistoryKind::telemetry;
    std::string asset;  ///< UUID or `site/asset`; empty = all (dispatch only)
    std::optional<TimestampMs> since;
    std::optional<TimestampMs> until;
    std::optional<double> every_s;  ///< downsampling bucket
    std::optional<std::uint64_t> limit;
    friend bool operator==(const HistoryRequest&, const HistoryRequest&) = default;
};

/// One `every` bucket of telemetry: avg/min/max of SOC and power.
struct TelemetryBucket {
    Uuid asset_id;
    TimestampMs ts = 0;  ///< bucket start
    std::uint64_t count = 0;
    double soc_pct_avg = 0, soc_pct_min = 0, soc_pct_max = 0;
    double current_mw_avg = 0, current_mw_min = 0, current_mw_max = 0;
    friend bool operator==(const TelemetryBucket&, const TelemetryBucket&) = default;
};

struct HistoryRows {
    std::string request_id;
    std::variant<std::vector<Telemetry>, std::vector<Dispatch>, std::vector<Heartbeat>,
                 std::vector<TelemetryBucket>>
        rows;
    friend bool operator==(const HistoryRows&, const HistoryRows&) = default;
};

struct HistoryEnd {
    std::string request_id;
    std::uint64_t count = 0;
    friend bool operator==(const HistoryEnd&, const HistoryEnd&) = default;
};

/// `assets`, `agents` and `latest` requests: optional filters.
enum class QueryKind { assets, agents, latest };
std::string_view to_string(QueryKind kind) noexcept;

struct QueryRequest {
    std::string request_id;
    std::string token;
    QueryKind kind = QueryKind::assets;
    std::vector<std::string> assets;  ///< UUIDs or `site/asset`; empty = all
    std::vector<std::string> sites;   ///< UUIDs or names; empty = all
    friend bool operator==(const QueryRequest&, const QueryRequest&) = default;
};

struct AgentInfo {
    Uuid asset_id;
    Uuid instance_id;
    bool online = false;
    std::string agent_version;
    TimestampMs connected_at = 0;
    TimestampMs last_seen = 0;
    std::uint64_t buffered = 0;
    friend bool operator==(const AgentInfo&, const AgentInfo&) = default;
};

struct AssetsReply {
    std::string request_id;
    std::vector<Asset> assets;
    friend bool operator==(const AssetsReply&, const AssetsReply&) = default;
};

struct AgentsReply {
    std::string request_id;
    std::vector<AgentInfo> agents;
    friend bool operator==(const AgentsReply&, const AgentsReply&) = default;
};

struct LatestReply {
    std::string request_id;
    std::vector<Telemetry> telemetry;
    friend bool operator==(const LatestReply&, const LatestReply&) = default;
};

struct ErrorReply {
    std::string request_id;
    std::string code;  ///< `bad_request`, `not_found`, `unprocessable`, `unauthorized`, `internal`
    std::string message;
    friend bool operator==(const ErrorReply&, const ErrorReply&) = default;
};

using ControlMessage = std::variant<DispatchRequest, DispatchResult, HistoryRequest, HistoryRows,
                                    HistoryEnd, QueryRequest, AssetsReply, AgentsReply, LatestReply,
                                    ErrorReply, CancelRequest, StopRequest, StopResult>;

}  // namespace der::wire
