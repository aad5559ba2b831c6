#pragma once
/// der's PostgreSQL store: what the hub does with the database at start.
///
///   auto store = store::Store::open(conninfo);   // connect, migrate, partitions
///   store->sync_fleet({fleet.sites});            // upsert sites/assets, retire the absent
///   auto restored = store->restore();            // last telemetry, epochs, open dispatches
///   store::Writer writer({.conninfo = conninfo}); writer.start();   // then, on the loop
///   store::Reader reader(conninfo);              // one per REST/control thread
///
/// A Store object is for one thread (the hub's start-up and, if it likes,
/// SIGHUP handling); the Writer and each Reader hold their own connections.

#include "der/model.hpp"
#include "der/store/migrations.hpp"
#include "der/store/pg_connection.hpp"
#include "der/store/records.hpp"
#include "der/util/time.hpp"

#include <optional>
#include <string>
#include <vector>

namespace der::store {

/// What a restarted hub needs to carry on where the last one stopped.
struct Restored {
    /// The last stored telemetry (by ts, then seq) of every asset that is not
    /// retired and has any: SOC, current, setpoint and dispatch in force.
    std::vector<Telemetry> last_telemetry;
    /// Per asset: the epoch of that last record and the highest seq stored
    /// of it, to answer `ack_seq` when the same agent run registers again.
    std::vector<CommittedSeq> last_epochs;
    /// Dispatches still open (scheduled, queued, sent or applied), oldest first.
    std::vector<Dispatch> open_dispatches;
};

class Store {
public:
    /// Connects (`conninfo`: URI or key=value; empty = PG* environment),
    /// migrates the schema (Errc::config when the database is newer than this
    /// build) and makes the time partitions from `now`'s day to `days_ahead`
    /// days later (a failure there is only logged: rows then land in the
    /// DEFAULT partition). Errc::unavailable when PostgreSQL cannot be reached.
    static Result<Store> open(const std::string& conninfo, TimestampMs now = der::now_ms(), int days_ahead = 2);

    /// Upserts sites and assets in one transaction; assets absent from the
    /// fleet (within `fleet.scope`) get `retired_at = now()`, returning ones
    /// have it cleared. History is never deleted.
    Result<FleetSyncOutcome> sync_fleet(const FleetSync& fleet);

    Result<Restored> restore();

    /// The highest seq stored of (asset, epoch); nil when none.
    Result<std::optional<std::uint64_t>> max_seq(const Uuid& asset_id, const Uuid& epoch);

    [[nodiscard]] const std::string& conninfo() const { return m_conninfo; }
    [[nodiscard]] const MigrationOutcome& migration() const { return m_migration; }
    [[nodiscard]] Connection& connection() { return m_conn; }

private:
    Store(std::string conninfo, Connection conn, MigrationOutcome migration)
        : m_conninfo(std::move(conninfo)), m_conn(std::move(conn)), m_migration(migration) {}
    std::string m_conninfo;
    Connection m_conn;
    MigrationOutcome m_migration;
};

}  // namespace der::store
