#include "memory_history.hpp"

#include <fmt/core.h>

#include <algorithm>
#include <charconv>
#include <cmath>

namespace der::hub {

namespace {

struct Position {
    TimestampMs ts = 0;
    std::uint64_t seq = 0;
    friend auto operator<=>(const Position&, const Position&) = default;
};

Position position_of(const Telemetry& t) { return {t.ts, t.seq}; }
Position position_of(const Heartbeat& h) { return {h.ts, 0}; }

/// Cursor text: `<ts_ms>.<seq>`, the position of the last row served.
std::string format_cursor(const Position& p) { return fmt::format("{}.{}", p.ts, p.seq); }

Result<Position> parse_cursor(std::string_view text) {
    const auto dot = text.find('.');
    Position p;
    if (dot == std::string_view::npos) return fail(Errc::invalid_argument, "bad cursor");
    const auto a = std::from_chars(text.data(), text.data() + dot, p.ts);
    const auto b = std::from_chars(text.data() + dot + 1, text.data() + text.size(), p.seq);
    if (a.ec != std::errc{} || a.ptr != text.data() + dot || b.ec != std::errc{} ||
        b.ptr != text.data() + text.size())
        return fail(Errc::invalid_argument, fmt::format("bad cursor '{}'", text));
    return p;
}

template <class Row>
void insert_ordered(std::deque<Row>& rows, const Row& row) {
    if (rows.empty() || !(position_of(row) < position_of(rows.back()))) {
        rows.push_back(row);
        return;
    }
    const auto at = std::upper_bound(rows.begin(), rows.end(), position_of(row),
                                     [](const Position& p, const Row& r) { return p < position_of(r); });
    rows.insert(at, row);
}

template <class Row>
Result<HistoryPage<Row>> query(const std::deque<Row>* rows, const HistoryQuery& q) {
    HistoryPage<Row> page;
    if (rows == nullptr) return page;
    Position from{q.since.value_or(std::numeric_limits<TimestampMs>::min()), 0};
    bool exclusive = false;
    if (!q.cursor.empty()) {
        auto cursor = parse_cursor(q.cursor);
        if (!cursor) return std::unexpected(cursor.error());
        if (*cursor >= from) {
            from = *cursor;
            exclusive = true;
        }
    }
    auto it = std::lower_bound(rows->begin(), rows->end(), from,
                               [](const Row& r, const Position& p) { return position_of(r) < p; });
    if (exclusive && it != rows->end() && position_of(*it) == from) ++it;
    const std::size_t limit = std::max<std::size_t>(q.limit, 1);
    for (; it != rows->end(); ++it) {
        if (q.until && it->ts >= *q.until) break;
        if (page.rows.size() == limit) {
            page.next = format_cursor(position_of(page.rows.back()));
            break;
        }
        page.rows.push_back(*it);
    }
    return page;
}

}  // namespace

MemoryHistory::MemoryHistory(std::size_t max_rows_per_asset, double max_age_s)
    : m_max_rows(std::max<std::size_t>(max_rows_per_asset, 1)),
      m_max_age_ms(static_cast<std::int64_t>(std::llround(max_age_s * 1000.0))) {}

AssetHistory& MemoryHistory::slot(const Uuid& asset) { return m_assets[asset]; }

void MemoryHistory::add(AssetHistory& slot, const Telemetry& t) {
    auto& rows = slot.telemetry;
    insert_ordered(rows, t);
    m_oldest = std::min(m_oldest, t.ts);
    ++m_telemetry_rows;
    if (rows.size() > m_max_rows) {
        rows.pop_front();
        --m_telemetry_rows;
        ++m_evicted;
    }
}

void MemoryHistory::add(AssetHistory& slot, const Heartbeat& h) {
    auto& rows = slot.heartbeats;
    insert_ordered(rows, h);
    m_oldest = std::min(m_oldest, h.ts);
    if (rows.size() > m_max_rows) rows.pop_front();
}

void MemoryHistory::trim(TimestampMs now) {
    const TimestampMs oldest = now - m_max_age_ms;
    if (m_oldest >= oldest) return;
    m_oldest = std::numeric_limits<TimestampMs>::max();
    for (auto& [id, slot] : m_assets) {
        auto& rows = slot.telemetry;
        while (!rows.empty() && rows.front().ts < oldest) {
            rows.pop_front();
            --m_telemetry_rows;
            ++m_evicted;
        }
        auto& beats = slot.heartbeats;
        while (!beats.empty() && beats.front().ts < oldest) beats.pop_front();
        if (!rows.empty()) m_oldest = std::min(m_oldest, rows.front().ts);
        if (!beats.empty()) m_oldest = std::min(m_oldest, beats.front().ts);
    }
}

Result<HistoryPage<Telemetry>> MemoryHistory::telemetry(const Uuid& asset, const HistoryQuery& q) const {
    const auto it = m_assets.find(asset);
    return query<Telemetry>(it == m_assets.end() ? nullptr : &it->second.telemetry, q);
}

Result<HistoryPage<Heartbeat>> MemoryHistory::heartbeats(const Uuid& asset, const HistoryQuery& q) const {
    const auto it = m_assets.find(asset);
    return query<Heartbeat>(it == m_assets.end() ? nullptr : &it->second.heartbeats, q);
}

}  // namespace der::hub
