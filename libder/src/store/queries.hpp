#pragma once
// Internal to der_store: the SELECT lists shared by Store and Reader, and
// the functions that turn their rows back into der's model.

#include "der/model.hpp"
#include "der/store/pg_connection.hpp"
#include "der/store/records.hpp"

#include <string_view>

namespace der::store::detail {

/// 14 columns, in Telemetry's field order.
inline constexpr std::string_view k_telemetry_columns =
    "asset_id, site_id, epoch, seq, der_ms(ts), soc_mwh, soc_pct, capacity_mwh, current_mw, setpoint_mw, "
    "max_mw, min_mw, status, dispatch_id";
/// 20 columns: the dispatch, then one timestamp per DispatchState in enum order.
inline constexpr std::string_view k_dispatch_columns =
    "dispatch_id, asset_id, mw, duration_s, reason, requested_by, der_ms(created_at), der_ms(start_at), "
    "parent_id, state, error, der_ms(scheduled_at), der_ms(queued_at), der_ms(sent_at), der_ms(applied_at), "
    "der_ms(rejected_at), der_ms(failed_at), der_ms(expired_at), der_ms(superseded_at), der_ms(cancelled_at)";
inline constexpr std::string_view k_heartbeat_columns = "asset_id, der_ms(ts), uptime_s, buffered, agent_version";
inline constexpr std::string_view k_session_columns =
    "session_id, asset_id, instance_id, epoch, agent_version, remote_address, der_ms(connected_at), "
    "der_ms(disconnected_at), disconnect_reason";

/// Throws std::runtime_error on a value the schema cannot hold (a bug).
Uuid uuid_at(const Rows& rows, int row, int col);
std::optional<Uuid> opt_uuid_at(const Rows& rows, int row, int col);

Telemetry telemetry_at(const Rows& rows, int row);
Dispatch dispatch_at(const Rows& rows, int row);
Heartbeat heartbeat_at(const Rows& rows, int row);
AgentSession session_at(const Rows& rows, int row);

}  // namespace der::store::detail
