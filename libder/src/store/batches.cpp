// Staging tables and COPY lines of each record kind.
//
// Implementation details
// - Staging tables are plain TEMP tables, made once per connection. Not ON
//   COMMIT DELETE ROWS: that truncates every one of them at each commit
//   (~20 ms a commit here, more than the merge of 5,000 rows). Instead a
//   merge is `INSERT ... SELECT ... FROM <stage> ON CONFLICT ...; TRUNCATE
//   <stage>` in one round trip, and a failure rolls its COPY back, so a
//   staging table is empty between parts and between transactions: a batch
//   split into parts (the writer's search for a bad row, under savepoints)
//   never merges a row twice.
// - Instants travel as bigint Unix milliseconds and become timestamptz in
//   the merge (der_ts()), except telemetry's ts: its lines carry it as
//   timestamptz text (`2026-11-23 18:46:54.123+00`) because the same line
//   goes either into the staging table or straight into `telemetry`.
// - telemetry, heartbeats: ON CONFLICT DO NOTHING (a resend is a no-op).
//   Telemetry the writer knows to be new skips the staging table: one COPY
//   into `telemetry` (the writer falls back to the staging path when that
//   COPY fails, e.g. on the unique key).
//   dispatches, agent_sessions: ON CONFLICT DO UPDATE; a state timestamp or
//   a disconnect once recorded is never erased by a later, sparser record.
//   One statement cannot update a row twice: the writer keeps only the last
//   record per key in a batch.
#include "batches.hpp"

#include <fmt/core.h>

namespace der::store::detail {

using namespace copy_text;

const Kind k_telemetry{
    "telemetry", "der_stage_telemetry", "COPY der_stage_telemetry FROM STDIN",
    R"sql(INSERT INTO telemetry (asset_id, site_id, epoch, seq, ts, soc_mwh, soc_pct, capacity_mwh, current_mw,
                       setpoint_mw, max_mw, min_mw, status, dispatch_id)
SELECT asset_id, site_id, epoch, seq, ts, soc_mwh, soc_pct, capacity_mwh, current_mw,
       setpoint_mw, max_mw, min_mw, status, dispatch_id FROM der_stage_telemetry
ON CONFLICT DO NOTHING;
TRUNCATE der_stage_telemetry)sql",
    "COPY telemetry (asset_id, site_id, epoch, seq, ts, soc_mwh, soc_pct, capacity_mwh, current_mw, setpoint_mw, "
    "max_mw, min_mw, status, dispatch_id) FROM STDIN"};

const Kind k_heartbeat{
    "heartbeat", "der_stage_heartbeat", "COPY der_stage_heartbeat FROM STDIN",
    R"sql(INSERT INTO heartbeats (asset_id, ts, uptime_s, buffered, agent_version)
SELECT asset_id, der_ts(ts_ms), uptime_s, buffered, agent_version FROM der_stage_heartbeat
ON CONFLICT DO NOTHING;
TRUNCATE der_stage_heartbeat)sql"};

const Kind k_dispatch{
    "dispatch", "der_stage_dispatch", "COPY der_stage_dispatch FROM STDIN",
    R"sql(INSERT INTO dispatches AS d (dispatch_id, asset_id, mw, duration_s, reason, requested_by, created_at, start_at,
    parent_id, state, error, scheduled_at, queued_at, sent_at, applied_at, rejected_at, failed_at, expired_at,
    superseded_at, cancelled_at)
SELECT dispatch_id, asset_id, mw, duration_s, reason, requested_by, der_ts(created_ms), der_ts(start_ms),
    parent_id, state, error, der_ts(scheduled_ms), der_ts(queued_ms), der_ts(sent_ms), der_ts(applied_ms),
    der_ts(rejected_ms), der_ts(failed_ms), der_ts(expired_ms), der_ts(superseded_ms), der_ts(cancelled_ms)
FROM der_stage_dispatch
ON CONFLICT (dispatch_id) DO UPDATE SET
    state = EXCLUDED.state,
    error = EXCLUDED.error,
    start_at = coalesce(EXCLUDED.start_at, d.start_at),
    scheduled_at = coalesce(EXCLUDED.scheduled_at, d.scheduled_at),
    queued_at = coalesce(EXCLUDED.queued_at, d.queued_at),
    sent_at = coalesce(EXCLUDED.sent_at, d.sent_at),
    applied_at = coalesce(EXCLUDED.applied_at, d.applied_at),
    rejected_at = coalesce(EXCLUDED.rejected_at, d.rejected_at),
    failed_at = coalesce(EXCLUDED.failed_at, d.failed_at),
    expired_at = coalesce(EXCLUDED.expired_at, d.expired_at),
    superseded_at = coalesce(EXCLUDED.superseded_at, d.superseded_at),
    cancelled_at = coalesce(EXCLUDED.cancelled_at, d.cancelled_at),
    updated_at = now();
TRUNCATE der_stage_dispatch)sql"};

const Kind k_session{
    "agent_session", "der_stage_session", "COPY der_stage_session FROM STDIN",
    R"sql(INSERT INTO agent_sessions AS s (session_id, asset_id, instance_id, epoch, agent_version, remote_address,
    connected_at, disconnected_at, disconnect_reason)
SELECT session_id, asset_id, instance_id, epoch, agent_version, remote_address, der_ts(connected_ms),
    der_ts(disconnected_ms), disconnect_reason FROM der_stage_session
ON CONFLICT (session_id) DO UPDATE SET
    epoch = coalesce(EXCLUDED.epoch, s.epoch),
    agent_version = CASE WHEN EXCLUDED.agent_version <> '' THEN EXCLUDED.agent_version ELSE s.agent_version END,
    remote_address = CASE WHEN EXCLUDED.remote_address <> '' THEN EXCLUDED.remote_address ELSE s.remote_address END,
    disconnected_at = coalesce(EXCLUDED.disconnected_at, s.disconnected_at),
    disconnect_reason = CASE WHEN EXCLUDED.disconnect_reason <> '' THEN EXCLUDED.disconnect_reason
                             ELSE s.disconnect_reason END;
TRUNCATE der_stage_session)sql"};

namespace {

constexpr std::string_view k_staging = R"sql(
CREATE TEMP TABLE IF NOT EXISTS der_stage_telemetry (
    asset_id uuid, site_id uuid, epoch uuid, seq bigint, ts timestamptz, soc_mwh float8, soc_pct float8,
    capacity_mwh float8, current_mw float8, setpoint_mw float8, max_mw float8, min_mw float8, status text,
    dispatch_id uuid);
CREATE TEMP TABLE IF NOT EXISTS der_stage_heartbeat (
    asset_id uuid, ts_ms bigint, uptime_s float8, buffered bigint, agent_version text);
CREATE TEMP TABLE IF NOT EXISTS der_stage_dispatch (
    dispatch_id uuid, asset_id uuid, mw float8, duration_s float8, reason text, requested_by text,
    created_ms bigint, start_ms bigint, parent_id uuid, state text, error text, scheduled_ms bigint,
    queued_ms bigint, sent_ms bigint, applied_ms bigint, rejected_ms bigint, failed_ms bigint,
    expired_ms bigint, superseded_ms bigint, cancelled_ms bigint);
CREATE TEMP TABLE IF NOT EXISTS der_stage_session (
    session_id uuid, asset_id uuid, instance_id uuid, epoch uuid, agent_version text, remote_address text,
    connected_ms bigint, disconnected_ms bigint, disconnect_reason text);
CREATE TEMP TABLE IF NOT EXISTS der_stage_site (
    site_id uuid, name text, timezone text);
CREATE TEMP TABLE IF NOT EXISTS der_stage_asset (
    asset_id uuid, site_id uuid, name text, kind text, capacity_mwh float8, max_mw float8, min_mw float8,
    ramp_mw_per_s float8, efficiency float8, soc_min_pct float8, soc_max_pct float8, initial_soc_pct float8,
    adapter text);
)sql";

void ms(std::string& out, TimestampMs value) { field(out, static_cast<std::int64_t>(value)); }

}  // namespace

Result<void> create_staging(Connection& conn) { return conn.exec(std::string(k_staging)); }

void append_row(std::string& out, const Telemetry& t) {
    field(out, t.asset_id), sep(out);
    field(out, t.site_id), sep(out);
    field(out, t.epoch), sep(out);
    field(out, t.seq), sep(out);
    timestamp_ms(out, t.ts), sep(out);
    field(out, t.soc_mwh), sep(out);
    field(out, t.soc_pct), sep(out);
    field(out, t.capacity_mwh), sep(out);
    field(out, t.current_mw), sep(out);
    field(out, t.setpoint_mw), sep(out);
    field(out, t.max_mw), sep(out);
    field(out, t.min_mw), sep(out);
    field(out, to_string(t.status)), sep(out);
    field(out, t.dispatch_id), end_row(out);
}

void append_row(std::string& out, const Heartbeat& h) {
    field(out, h.asset_id), sep(out);
    ms(out, h.ts), sep(out);
    field(out, h.uptime_s), sep(out);
    field(out, h.buffered), sep(out);
    field(out, h.agent_version), end_row(out);
}

void append_row(std::string& out, const Dispatch& d) {
    field(out, d.dispatch_id), sep(out);
    field(out, d.asset_id), sep(out);
    field(out, d.mw), sep(out);
    field(out, d.duration_s), sep(out);
    field(out, std::string_view(d.reason)), sep(out);
    field(out, std::string_view(d.requested_by)), sep(out);
    ms(out, d.created_at), sep(out);
    field(out, d.start_at), sep(out);
    field(out, d.parent_id), sep(out);
    field(out, to_string(d.state)), sep(out);
    field(out, std::string_view(d.error));
    for (const auto& at : d.state_at) {
        sep(out);
        field(out, at);
    }
    end_row(out);
}

void append_row(std::string& out, const AgentSession& s) {
    field(out, s.session_id), sep(out);
    field(out, s.asset_id), sep(out);
    field(out, s.instance_id), sep(out);
    field(out, s.epoch), sep(out);
    field(out, std::string_view(s.agent_version)), sep(out);
    field(out, std::string_view(s.remote_address)), sep(out);
    ms(out, s.connected_at), sep(out);
    field(out, s.disconnected_at), sep(out);
    field(out, std::string_view(s.disconnect_reason)), end_row(out);
}

Result<void> write_lines(Connection& conn, const Kind& kind, std::string_view lines) {
    if (auto r = conn.copy_in(std::string(kind.copy), lines); !r) return r;
    return conn.exec(std::string(kind.merge));
}

Result<void> copy_direct(Connection& conn, const Kind& kind, std::string_view lines) {
    return conn.copy_in(std::string(kind.direct), lines);
}

Result<std::vector<std::uint64_t>> stored_seqs(Connection& conn, const std::vector<std::pair<Uuid, Uuid>>& keys) {
    // One round trip; each max(seq) is a backward scan of the unique key
    // (asset_id, epoch, seq, ts) in every partition.
    std::string assets = "{", epochs = "{";
    for (const auto& [asset, epoch] : keys) {
        if (assets.size() > 1) assets += ',', epochs += ',';
        field(assets, asset);
        field(epochs, epoch);
    }
    assets += '}', epochs += '}';
    auto rows = conn.query(
        "SELECT coalesce((SELECT max(t.seq) FROM telemetry t WHERE t.asset_id = k.a AND t.epoch = k.e), 0) "
        "FROM unnest($1::uuid[], $2::uuid[]) WITH ORDINALITY AS k(a, e, n) ORDER BY k.n",
        {std::move(assets), std::move(epochs)});
    if (!rows) return std::unexpected(rows.error());
    std::vector<std::uint64_t> seqs;
    seqs.reserve(keys.size());
    for (int i = 0; i < rows->size(); ++i) seqs.push_back(static_cast<std::uint64_t>(rows->i64(i, 0)));
    if (seqs.size() != keys.size()) return fail(Errc::internal, "stored_seqs: wrong number of rows");
    return seqs;
}

Result<void> dead_letter(Connection& conn, std::string_view kind, std::string_view error, std::string_view row) {
    std::string text(row);
    if (!text.empty() && text.back() == '\n') text.pop_back();
    auto r = conn.query("INSERT INTO dead_letters (kind, error, row_text) VALUES ($1, $2, $3)",
                        {std::string(kind), std::string(error), std::move(text)});
    if (!r) return std::unexpected(r.error());
    return {};
}

Result<FleetSyncOutcome> sync_fleet(Connection& conn, const FleetSync& fleet) {
    std::string sites, assets;
    for (const auto& site : fleet.sites) {
        field(sites, site.id), sep(sites);
        field(sites, std::string_view(site.name)), sep(sites);
        field(sites, std::string_view(site.timezone)), end_row(sites);
        for (const auto& a : site.assets) {
            field(assets, a.id), sep(assets);
            field(assets, site.id), sep(assets);
            field(assets, std::string_view(a.name)), sep(assets);
            field(assets, std::string_view(a.kind)), sep(assets);
            for (const double v : {a.limits.capacity_mwh, a.limits.max_mw, a.limits.min_mw, a.limits.ramp_mw_per_s,
                                   a.limits.efficiency, a.limits.soc_min_pct, a.limits.soc_max_pct,
                                   a.initial_soc_pct}) {
                field(assets, v);
                sep(assets);
            }
            field(assets, std::string_view(a.adapter.kind)), end_row(assets);
        }
    }
    if (auto r = conn.exec("TRUNCATE der_stage_site, der_stage_asset"); !r) return std::unexpected(r.error());
    if (auto r = conn.copy_in("COPY der_stage_site FROM STDIN", sites); !r) return std::unexpected(r.error());
    if (auto r = conn.copy_in("COPY der_stage_asset FROM STDIN", assets); !r) return std::unexpected(r.error());

    FleetSyncOutcome outcome;
    auto returned = conn.query_value(
        "SELECT count(*) FROM assets a JOIN der_stage_asset s USING (asset_id) WHERE a.retired_at IS NOT NULL");
    if (!returned) return std::unexpected(returned.error());
    outcome.assets_returned = std::stoi(*returned);

    if (auto r = conn.exec(R"sql(
INSERT INTO sites AS s (site_id, name, timezone) SELECT site_id, name, timezone FROM der_stage_site
ON CONFLICT (site_id) DO UPDATE SET name = EXCLUDED.name, timezone = EXCLUDED.timezone, updated_at = now(),
    retired_at = NULL
WHERE (s.name, s.timezone, s.retired_at) IS DISTINCT FROM (EXCLUDED.name, EXCLUDED.timezone, NULL))sql");
        !r)
        return std::unexpected(r.error());
    auto inserted = conn.query(R"sql(
INSERT INTO assets AS a (asset_id, site_id, name, kind, capacity_mwh, max_mw, min_mw, ramp_mw_per_s, efficiency,
    soc_min_pct, soc_max_pct, initial_soc_pct, adapter)
SELECT asset_id, site_id, name, kind, capacity_mwh, max_mw, min_mw, ramp_mw_per_s, efficiency, soc_min_pct,
    soc_max_pct, initial_soc_pct, adapter FROM der_stage_asset
ON CONFLICT (asset_id) DO UPDATE SET site_id = EXCLUDED.site_id, name = EXCLUDED.name, kind = EXCLUDED.kind,
    capacity_mwh = EXCLUDED.capacity_mwh, max_mw = EXCLUDED.max_mw, min_mw = EXCLUDED.min_mw,
    ramp_mw_per_s = EXCLUDED.ramp_mw_per_s, efficiency = EXCLUDED.efficiency, soc_min_pct = EXCLUDED.soc_min_pct,
    soc_max_pct = EXCLUDED.soc_max_pct, initial_soc_pct = EXCLUDED.initial_soc_pct, adapter = EXCLUDED.adapter,
    updated_at = now(), retired_at = NULL
WHERE (a.site_id, a.name, a.kind, a.capacity_mwh, a.max_mw, a.min_mw, a.ramp_mw_per_s, a.efficiency,
       a.soc_min_pct, a.soc_max_pct, a.initial_soc_pct, a.adapter, a.retired_at)
   IS DISTINCT FROM
      (EXCLUDED.site_id, EXCLUDED.name, EXCLUDED.kind, EXCLUDED.capacity_mwh, EXCLUDED.max_mw, EXCLUDED.min_mw,
       EXCLUDED.ramp_mw_per_s, EXCLUDED.efficiency, EXCLUDED.soc_min_pct, EXCLUDED.soc_max_pct,
       EXCLUDED.initial_soc_pct, EXCLUDED.adapter, NULL)
RETURNING (xmax = 0) AS inserted)sql");
    if (!inserted) return std::unexpected(inserted.error());
    for (int i = 0; i < inserted->size(); ++i)
        if (inserted->text(i, 0) == "t") ++outcome.assets_inserted;

    const bool all = fleet.scope == RetireScope::all_assets;
    auto retired = conn.query(fmt::format(
        "UPDATE assets SET retired_at = now(), updated_at = now() WHERE retired_at IS NULL "
        "AND asset_id NOT IN (SELECT asset_id FROM der_stage_asset){} RETURNING asset_id",
        all ? "" : " AND site_id IN (SELECT site_id FROM der_stage_site)"));
    if (!retired) return std::unexpected(retired.error());
    outcome.assets_retired = retired->size();
    if (all) {
        if (auto r = conn.exec("UPDATE sites SET retired_at = now(), updated_at = now() WHERE retired_at IS NULL "
                               "AND site_id NOT IN (SELECT site_id FROM der_stage_site)");
            !r)
            return std::unexpected(r.error());
    }
    return outcome;
}

}  // namespace der::store::detail
