#include "queries.hpp"

#include <fmt/core.h>

#include <stdexcept>

namespace der::store::detail {

Uuid uuid_at(const Rows& rows, int row, int col) {
    auto id = Uuid::parse(rows.text(row, col));
    if (!id) throw std::runtime_error(fmt::format("column {} is not a UUID: '{}'", col, rows.text(row, col)));
    return *id;
}

std::optional<Uuid> opt_uuid_at(const Rows& rows, int row, int col) {
    if (rows.is_null(row, col)) return std::nullopt;
    return uuid_at(rows, row, col);
}

Telemetry telemetry_at(const Rows& rows, int r) {
    Telemetry t;
    t.asset_id = uuid_at(rows, r, 0);
    t.site_id = uuid_at(rows, r, 1);
    t.epoch = uuid_at(rows, r, 2);
    t.seq = static_cast<std::uint64_t>(rows.i64(r, 3));
    t.ts = rows.i64(r, 4);
    t.soc_mwh = rows.f64(r, 5);
    t.soc_pct = rows.f64(r, 6);
    t.capacity_mwh = rows.f64(r, 7);
    t.current_mw = rows.f64(r, 8);
    t.setpoint_mw = rows.f64(r, 9);
    t.max_mw = rows.f64(r, 10);
    t.min_mw = rows.f64(r, 11);
    t.status = parse_asset_status(rows.text(r, 12)).value_or(AssetStatus::fault);
    t.dispatch_id = opt_uuid_at(rows, r, 13);
    return t;
}

Dispatch dispatch_at(const Rows& rows, int r) {
    Dispatch d;
    d.dispatch_id = uuid_at(rows, r, 0);
    d.asset_id = uuid_at(rows, r, 1);
    d.mw = rows.f64(r, 2);
    d.duration_s = rows.opt_f64(r, 3);
    d.reason = rows.text(r, 4);
    d.requested_by = rows.text(r, 5);
    d.created_at = rows.i64(r, 6);
    d.start_at = rows.opt_i64(r, 7);
    d.parent_id = opt_uuid_at(rows, r, 8);
    d.state = parse_dispatch_state(rows.text(r, 9)).value_or(DispatchState::failed);
    d.error = rows.text(r, 10);
    for (std::size_t i = 0; i < k_dispatch_state_count; ++i) d.state_at[i] = rows.opt_i64(r, 11 + static_cast<int>(i));
    return d;
}

Heartbeat heartbeat_at(const Rows& rows, int r) {
    Heartbeat h;
    h.asset_id = uuid_at(rows, r, 0);
    h.ts = rows.i64(r, 1);
    h.uptime_s = rows.f64(r, 2);
    h.buffered = static_cast<std::uint64_t>(rows.i64(r, 3));
    h.agent_version = rows.text(r, 4);
    return h;
}

AgentSession session_at(const Rows& rows, int r) {
    AgentSession s;
    s.session_id = uuid_at(rows, r, 0);
    s.asset_id = uuid_at(rows, r, 1);
    s.instance_id = uuid_at(rows, r, 2);
    s.epoch = opt_uuid_at(rows, r, 3);
    s.agent_version = rows.text(r, 4);
    s.remote_address = rows.text(r, 5);
    s.connected_at = rows.i64(r, 6);
    s.disconnected_at = rows.opt_i64(r, 7);
    s.disconnect_reason = rows.text(r, 8);
    return s;
}

}  // namespace der::store::detail
