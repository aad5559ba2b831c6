#pragma once
/// The hub's history when it runs without a database: a bounded ring per
/// asset, capped in rows and in age. Owned by the event loop thread.

#include "der/model.hpp"

#include <cstdint>
#include <deque>
#include <limits>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace der::hub {

struct HistoryQuery {
    std::optional<TimestampMs> since;  ///< inclusive
    std::optional<TimestampMs> until;  ///< exclusive
    std::size_t limit = 1000;
    std::string cursor;  ///< from a previous page's `next`
};

template <class Row>
struct HistoryPage {
    std::vector<Row> rows;
    std::string next;  ///< empty when this is the last page
};

/// One asset's rows. Its address is stable: MemoryHistory never erases one.
struct AssetHistory {
    std::deque<Telemetry> telemetry;
    std::deque<Heartbeat> heartbeats;
};

class MemoryHistory {
public:
    MemoryHistory(std::size_t max_rows_per_asset, double max_age_s);

    /// The asset's rows (made empty on first use), for the hot path's add().
    AssetHistory& slot(const Uuid& asset);
    void add(const Telemetry& t) { add(slot(t.asset_id), t); }
    void add(const Heartbeat& h) { add(slot(h.asset_id), h); }
    /// `rows` is slot(t.asset_id): no lookup.
    void add(AssetHistory& rows, const Telemetry& t);
    void add(AssetHistory& rows, const Heartbeat& h);
    /// Drops rows older than the age cap relative to `now`. O(1) while no row
    /// can be that old (the oldest row is known from the last scan), a scan of
    /// every asset otherwise.
    void trim(TimestampMs now);

    /// Rows in (ts, seq) order. Errc::invalid_argument for a bad cursor.
    Result<HistoryPage<Telemetry>> telemetry(const Uuid& asset, const HistoryQuery& q) const;
    Result<HistoryPage<Heartbeat>> heartbeats(const Uuid& asset, const HistoryQuery& q) const;

    [[nodiscard]] std::size_t telemetry_rows() const { return m_telemetry_rows; }
    [[nodiscard]] std::uint64_t evicted() const { return m_evicted; }

private:
    std::size_t m_max_rows;
    std::int64_t m_max_age_ms;
    std::unordered_map<Uuid, AssetHistory> m_assets;
    std::size_t m_telemetry_rows = 0;
    /// No row is older than this (a lower bound: rows leave by the row cap too).
    TimestampMs m_oldest = std::numeric_limits<TimestampMs>::max();
    std::uint64_t m_evicted = 0;
};

}  // namespace der::hub
