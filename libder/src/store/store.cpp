#include "der/store/store.hpp"

#include "batches.hpp"
#include "queries.hpp"

#include "der/store/partitions.hpp"
#include "der/store/reader.hpp"
#include "der/util/log.hpp"

#include <fmt/core.h>

#include <stdexcept>

namespace der::store {

Result<Store> Store::open(const std::string& conninfo, TimestampMs now, int days_ahead) {
    auto conn = Connection::open(conninfo);
    if (!conn) return std::unexpected(conn.error());
    auto migrated = migrate(*conn);
    if (!migrated) return std::unexpected(migrated.error());
    // Without its partitions ahead the store still works (rows land in
    // DEFAULT, and the writer tries again hourly): only a lost server is fatal.
    if (auto made = ensure_partitions(*conn, now, days_ahead); !made) {
        if (made.error().code == Errc::unavailable) return std::unexpected(made.error());
        log::warn("database: {}", made.error().message);
    }
    if (auto staged = detail::create_staging(*conn); !staged) return std::unexpected(staged.error());
    return Store(conninfo, std::move(*conn), *migrated);
}

Result<FleetSyncOutcome> Store::sync_fleet(const FleetSync& fleet) {
    auto tx = Transaction::begin(m_conn);
    if (!tx) return std::unexpected(tx.error());
    auto outcome = detail::sync_fleet(m_conn, fleet);
    if (!outcome) return outcome;
    if (auto r = tx->commit(); !r) return std::unexpected(r.error());
    return outcome;
}

Result<Restored> Store::restore() {
    // Per asset the newest row by (ts, seq): a LATERAL LIMIT 1 walks each
    // partition's (asset_id, ts, seq) index backwards, never the whole table.
    auto last = m_conn.query(fmt::format(
        "SELECT t.* , (SELECT max(seq) FROM telemetry m WHERE m.asset_id = t.asset_id AND m.epoch = t.epoch) "
        "FROM assets a CROSS JOIN LATERAL ("
        "  SELECT {} FROM telemetry WHERE asset_id = a.asset_id ORDER BY ts DESC, seq DESC LIMIT 1) t "
        "WHERE a.retired_at IS NULL ORDER BY a.asset_id",
        detail::k_telemetry_columns));
    if (!last) return std::unexpected(last.error());
    auto open = m_conn.query(fmt::format(
        "SELECT {} FROM dispatches WHERE state IN ('scheduled', 'queued', 'sent', 'applied') "
        "ORDER BY created_at, dispatch_id",
        detail::k_dispatch_columns));
    if (!open) return std::unexpected(open.error());
    try {
        Restored restored;
        for (int i = 0; i < last->size(); ++i) {
            Telemetry t = detail::telemetry_at(*last, i);
            const auto max = static_cast<std::uint64_t>(last->i64(i, 14));
            restored.last_epochs.push_back({t.asset_id, t.epoch, max});
            restored.last_telemetry.push_back(std::move(t));
        }
        for (int i = 0; i < open->size(); ++i) restored.open_dispatches.push_back(detail::dispatch_at(*open, i));
        return restored;
    } catch (const std::exception& e) {
        return fail(Errc::internal, fmt::format("unexpected value from the database: {}", e.what()));
    }
}

Result<std::optional<std::uint64_t>> Store::max_seq(const Uuid& asset_id, const Uuid& epoch) {
    auto rows = m_conn.query("SELECT max(seq) FROM telemetry WHERE asset_id = $1::uuid AND epoch = $2::uuid",
                             {asset_id.to_string(), epoch.to_string()});
    if (!rows) return std::unexpected(rows.error());
    if (rows->empty() || rows->is_null(0, 0)) return std::optional<std::uint64_t>();
    return std::optional<std::uint64_t>(static_cast<std::uint64_t>(rows->i64(0, 0)));
}

}  // namespace der::store
