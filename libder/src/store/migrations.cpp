// Schema migrations.
//
// Implementation details (the schema; docs/database.md is the prose form)
// - Instants are `timestamptz`; the wire's Unix milliseconds convert through
//   der_ts(bigint) and der_ms(timestamptz), both exact to the millisecond.
// - telemetry and heartbeats are RANGE-partitioned by ts, one partition per
//   UTC day (`telemetry_YYYYMMDD`, created ahead by partitions.cpp) plus a
//   DEFAULT partition for rows outside them. PostgreSQL wants the partition
//   key in every unique constraint, hence UNIQUE (asset_id, epoch, seq, ts).
// - No foreign keys from the append tables to assets: the writer must never
//   stall or lose a batch on configuration order, and hubs sharded by site
//   share one database. Assets are never deleted (retired_at instead).
// - CHECK constraints refuse non-finite numbers and unknown states: such a
//   row is a bug upstream, and the writer sets it aside (dead_letters)
//   instead of storing garbage or retrying it for ever.
// - Rules: a migration is never edited once released; add a new one.
#include "der/store/migrations.hpp"

#include <fmt/core.h>

#include <array>
#include <string_view>

namespace der::store {

namespace {

struct Migration {
    int version;
    std::string_view name;
    std::string_view sql;
};

constexpr std::string_view k_v1 = R"sql(
CREATE FUNCTION der_ts(ms bigint) RETURNS timestamptz
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN timestamptz '1970-01-01 00:00:00+00' + ms * interval '1 millisecond';
CREATE FUNCTION der_ms(t timestamptz) RETURNS bigint
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN floor(extract(epoch FROM t) * 1000)::bigint;

CREATE TABLE sites (
    site_id    uuid PRIMARY KEY,
    name       text NOT NULL,
    timezone   text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    retired_at timestamptz
);

CREATE TABLE assets (
    asset_id        uuid PRIMARY KEY,
    site_id         uuid NOT NULL REFERENCES sites,
    name            text NOT NULL,
    kind            text NOT NULL,
    capacity_mwh    float8 NOT NULL,
    max_mw          float8 NOT NULL,
    min_mw          float8 NOT NULL,
    ramp_mw_per_s   float8 NOT NULL,
    efficiency      float8 NOT NULL,
    soc_min_pct     float8 NOT NULL,
    soc_max_pct     float8 NOT NULL,
    initial_soc_pct float8 NOT NULL,
    adapter         text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    retired_at      timestamptz
);
CREATE INDEX assets_site ON assets (site_id, name);

CREATE TABLE telemetry (
    asset_id     uuid NOT NULL,
    site_id      uuid NOT NULL,
    epoch        uuid NOT NULL,
    seq          bigint NOT NULL CHECK (seq > 0),
    ts           timestamptz NOT NULL,
    soc_mwh      float8 NOT NULL,
    soc_pct      float8 NOT NULL,
    capacity_mwh float8 NOT NULL,
    current_mw   float8 NOT NULL,
    setpoint_mw  float8 NOT NULL,
    max_mw       float8 NOT NULL,
    min_mw       float8 NOT NULL,
    status       text NOT NULL
        CHECK (status IN ('idle', 'charging', 'discharging', 'soc_limit', 'fault')),
    dispatch_id  uuid,
    CONSTRAINT telemetry_finite CHECK (
        soc_mwh > '-Infinity' AND soc_mwh < 'Infinity' AND
        soc_pct > '-Infinity' AND soc_pct < 'Infinity' AND
        capacity_mwh > '-Infinity' AND capacity_mwh < 'Infinity' AND
        current_mw > '-Infinity' AND current_mw < 'Infinity' AND
        setpoint_mw > '-Infinity' AND setpoint_mw < 'Infinity' AND
        max_mw > '-Infinity' AND max_mw < 'Infinity' AND
        min_mw > '-Infinity' AND min_mw < 'Infinity'),
    CONSTRAINT telemetry_key UNIQUE (asset_id, epoch, seq, ts)
) PARTITION BY RANGE (ts);
CREATE TABLE telemetry_default PARTITION OF telemetry DEFAULT;
CREATE INDEX telemetry_ts_brin ON telemetry USING brin (ts);
CREATE INDEX telemetry_asset_ts ON telemetry (asset_id, ts, seq);

CREATE TABLE heartbeats (
    asset_id      uuid NOT NULL,
    ts            timestamptz NOT NULL,
    uptime_s      float8 NOT NULL CHECK (uptime_s > '-Infinity' AND uptime_s < 'Infinity'),
    buffered      bigint NOT NULL CHECK (buffered >= 0),
    agent_version text NOT NULL DEFAULT '',
    PRIMARY KEY (asset_id, ts)
) PARTITION BY RANGE (ts);
CREATE TABLE heartbeats_default PARTITION OF heartbeats DEFAULT;
CREATE INDEX heartbeats_ts_brin ON heartbeats USING brin (ts);

CREATE TABLE dispatches (
    dispatch_id   uuid PRIMARY KEY,
    asset_id      uuid NOT NULL,
    mw            float8 NOT NULL CHECK (mw > '-Infinity' AND mw < 'Infinity'),
    duration_s    float8 CHECK (duration_s > 0 AND duration_s < 'Infinity'),
    reason        text NOT NULL DEFAULT '',
    requested_by  text NOT NULL DEFAULT '',
    created_at    timestamptz NOT NULL,
    start_at      timestamptz,
    parent_id     uuid,
    state         text NOT NULL CHECK (state IN ('scheduled', 'queued', 'sent', 'applied', 'rejected',
                                                 'failed', 'expired', 'superseded', 'cancelled')),
    error         text NOT NULL DEFAULT '',
    scheduled_at  timestamptz,
    queued_at     timestamptz,
    sent_at       timestamptz,
    applied_at    timestamptz,
    rejected_at   timestamptz,
    failed_at     timestamptz,
    expired_at    timestamptz,
    superseded_at timestamptz,
    cancelled_at  timestamptz,
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX dispatches_asset_created ON dispatches (asset_id, created_at DESC);
CREATE INDEX dispatches_created ON dispatches (created_at DESC);
CREATE INDEX dispatches_open ON dispatches (asset_id)
    WHERE state IN ('scheduled', 'queued', 'sent', 'applied');

CREATE TABLE agent_sessions (
    session_id        uuid PRIMARY KEY,
    asset_id          uuid NOT NULL,
    instance_id       uuid NOT NULL,
    epoch             uuid,
    agent_version     text NOT NULL DEFAULT '',
    remote_address    text NOT NULL DEFAULT '',
    connected_at      timestamptz NOT NULL,
    disconnected_at   timestamptz,
    disconnect_reason text NOT NULL DEFAULT ''
);
CREATE INDEX agent_sessions_asset ON agent_sessions (asset_id, connected_at DESC);

CREATE TABLE dead_letters (
    id           bigserial PRIMARY KEY,
    kind         text NOT NULL,
    set_aside_at timestamptz NOT NULL DEFAULT now(),
    error        text NOT NULL,
    row_text     text NOT NULL
);
)sql";

constexpr std::array k_migrations = {
    Migration{1, "initial schema", k_v1},
};

/// pg_advisory_lock key: "der-migr" as 8 ASCII bytes.
constexpr std::int64_t k_lock_key = 0x6465722d6d696772;

constexpr std::string_view k_create_table = R"sql(
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
))sql";

/// Releases the session advisory lock, whatever path leaves migrate().
class LockGuard {
public:
    explicit LockGuard(Connection& conn) : m_conn(conn) {}
    LockGuard(const LockGuard&) = delete;
    LockGuard& operator=(const LockGuard&) = delete;
    ~LockGuard() {
        if (m_conn.ok()) (void)m_conn.exec(fmt::format("SELECT pg_advisory_unlock({})", k_lock_key));
    }

private:
    Connection& m_conn;
};

}  // namespace

int latest_schema_version() noexcept { return k_migrations.back().version; }

Result<int> schema_version(Connection& conn) {
    auto exists = conn.query_value("SELECT to_regclass('schema_migrations') IS NOT NULL");
    if (!exists) return std::unexpected(exists.error());
    if (*exists != "t") return 0;
    auto v = conn.query_value("SELECT coalesce(max(version), 0) FROM schema_migrations");
    if (!v) return std::unexpected(v.error());
    return std::stoi(*v);
}

Result<MigrationOutcome> migrate(Connection& conn) {
    // A session lock (not a transaction lock): it must span several transactions.
    if (auto r = conn.exec(fmt::format("SELECT pg_advisory_lock({})", k_lock_key)); !r)
        return std::unexpected(r.error());
    LockGuard unlock(conn);
    if (auto r = conn.exec(std::string(k_create_table)); !r) return std::unexpected(r.error());
    auto current = schema_version(conn);
    if (!current) return std::unexpected(current.error());

    MigrationOutcome outcome{*current, *current};
    const int latest = latest_schema_version();
    if (*current > latest)
        return fail(Errc::config,
                    fmt::format("the database schema is version {}, newer than this der-hub knows (version {}); "
                                "upgrade der-hub, or point --db at another database",
                                *current, latest));
    for (const auto& m : k_migrations) {
        if (m.version <= *current) continue;
        auto tx = Transaction::begin(conn);
        if (!tx) return std::unexpected(tx.error());
        if (auto r = conn.exec(std::string(m.sql)); !r)
            return fail(r.error().code == Errc::unavailable ? Errc::unavailable : Errc::internal,
                        fmt::format("schema migration {} ({}) failed: {}", m.version, m.name, r.error().message));
        if (auto r = conn.query("INSERT INTO schema_migrations (version, name) VALUES ($1::integer, $2)",
                                {std::to_string(m.version), std::string(m.name)});
            !r)
            return std::unexpected(r.error());
        if (auto r = tx->commit(); !r) return std::unexpected(r.error());
        outcome.to_version = m.version;
    }
    return outcome;
}

}  // namespace der::store
