#include "der/store/reader.hpp"

#include "queries.hpp"

#include <fmt/core.h>

#include <charconv>
#include <cmath>
#include <stdexcept>

namespace der::store {

namespace {

/// A statement under construction: conditions appended with their parameters.
struct Query {
    std::string sql;
    Params params;

    std::string param(std::string value) {
        params.emplace_back(std::move(value));
        return fmt::format("${}", params.size());
    }
    void where_range(const std::optional<TimestampMs>& since, const std::optional<TimestampMs>& until,
                     std::string_view column = "ts") {
        if (since) sql += fmt::format(" AND {} >= der_ts({}::bigint)", column, param(std::to_string(*since)));
        if (until) sql += fmt::format(" AND {} < der_ts({}::bigint)", column, param(std::to_string(*until)));
    }
};

std::size_t clamp_limit(std::size_t limit) { return std::clamp<std::size_t>(limit, 1, 100'000); }

/// Turns a row-reading exception (a bug: the schema and the code disagree)
/// into an Error instead of taking a REST thread down.
template <class F>
auto guarded(F&& f) -> decltype(f()) {
    try {
        return f();
    } catch (const std::exception& e) {
        return fail(Errc::internal, fmt::format("unexpected value from the database: {}", e.what()));
    }
}

}  // namespace

std::string format_cursor(const Cursor& c) { return fmt::format("{}.{}", c.ts, c.seq); }

Result<Cursor> parse_cursor(std::string_view text) {
    const auto dot = text.find('.');
    Cursor c;
    if (dot == std::string_view::npos) return fail(Errc::invalid_argument, fmt::format("bad cursor '{}'", text));
    const auto a = std::from_chars(text.data(), text.data() + dot, c.ts);
    const auto b = std::from_chars(text.data() + dot + 1, text.data() + text.size(), c.seq);
    if (a.ec != std::errc{} || a.ptr != text.data() + dot || b.ec != std::errc{} ||
        b.ptr != text.data() + text.size())
        return fail(Errc::invalid_argument, fmt::format("bad cursor '{}'", text));
    return c;
}

Result<Rows> Reader::run(const std::string& sql, const Params& params) {
    for (int attempt = 0;; ++attempt) {
        if (!m_conn || !m_conn->ok()) {
            m_conn.reset();
            auto c = Connection::open(m_conninfo);
            if (!c) return std::unexpected(c.error());
            m_conn = std::move(*c);
        }
        auto rows = m_conn->query(sql, params);
        if (rows || rows.error().code != Errc::unavailable || attempt > 0) return rows;
        m_conn.reset();  // the server restarted under us: once more on a fresh connection
    }
}

Result<Page<Telemetry>> Reader::telemetry(const TelemetryQuery& q) {
    const std::size_t limit = clamp_limit(q.limit);
    Query query;
    query.sql = fmt::format("SELECT {} FROM telemetry WHERE asset_id = {}::uuid", detail::k_telemetry_columns,
                            query.param(q.asset_id.to_string()));
    query.where_range(q.since, q.until);
    if (q.after)
        query.sql += fmt::format(" AND (ts, seq) > (der_ts({}::bigint), {}::bigint)",
                                 query.param(std::to_string(q.after->ts)), query.param(std::to_string(q.after->seq)));
    query.sql += fmt::format(" ORDER BY ts, seq LIMIT {}", limit + 1);
    auto rows = run(query.sql, query.params);
    if (!rows) return std::unexpected(rows.error());
    return guarded([&]() -> Result<Page<Telemetry>> {
        Page<Telemetry> page;
        const int n = std::min(rows->size(), static_cast<int>(limit));
        page.rows.reserve(static_cast<std::size_t>(n));
        for (int i = 0; i < n; ++i) page.rows.push_back(detail::telemetry_at(*rows, i));
        if (rows->size() > n) page.next = Cursor{page.rows.back().ts, page.rows.back().seq};
        return page;
    });
}

Result<std::vector<wire::TelemetryBucket>> Reader::telemetry_buckets(const BucketQuery& q) {
    if (!std::isfinite(q.every_s) || q.every_s <= 0)
        return fail(Errc::invalid_argument, "every must be a positive number of seconds");
    Query query;
    const std::string every = query.param(fmt::format("{}", q.every_s));
    query.sql = fmt::format(
        "SELECT der_ms(date_bin(make_interval(secs => {}::float8), ts, timestamptz '1970-01-01 00:00:00+00')) AS b, "
        "count(*), avg(soc_pct), min(soc_pct), max(soc_pct), avg(current_mw), min(current_mw), max(current_mw) "
        "FROM telemetry WHERE asset_id = {}::uuid",
        every, query.param(q.asset_id.to_string()));
    query.where_range(q.since, q.until);
    query.sql += fmt::format(" GROUP BY b ORDER BY b LIMIT {}", clamp_limit(q.limit));
    auto rows = run(query.sql, query.params);
    if (!rows) return std::unexpected(rows.error());
    return guarded([&]() -> Result<std::vector<wire::TelemetryBucket>> {
        std::vector<wire::TelemetryBucket> out;
        out.reserve(static_cast<std::size_t>(rows->size()));
        for (int i = 0; i < rows->size(); ++i) {
            wire::TelemetryBucket b;
            b.asset_id = q.asset_id;
            b.ts = rows->i64(i, 0);
            b.count = static_cast<std::uint64_t>(rows->i64(i, 1));
            b.soc_pct_avg = rows->f64(i, 2);
            b.soc_pct_min = rows->f64(i, 3);
            b.soc_pct_max = rows->f64(i, 4);
            b.current_mw_avg = rows->f64(i, 5);
            b.current_mw_min = rows->f64(i, 6);
            b.current_mw_max = rows->f64(i, 7);
            out.push_back(b);
        }
        return out;
    });
}

Result<std::vector<Dispatch>> Reader::dispatches(const DispatchQuery& q) {
    Query query;
    query.sql = fmt::format("SELECT {} FROM dispatches WHERE true", detail::k_dispatch_columns);
    if (q.asset_id) query.sql += fmt::format(" AND asset_id = {}::uuid", query.param(q.asset_id->to_string()));
    if (q.state) query.sql += fmt::format(" AND state = {}", query.param(std::string(to_string(*q.state))));
    query.where_range(q.since, q.until, "created_at");
    query.sql += fmt::format(" ORDER BY created_at DESC, dispatch_id DESC LIMIT {}", clamp_limit(q.limit));
    auto rows = run(query.sql, query.params);
    if (!rows) return std::unexpected(rows.error());
    return guarded([&]() -> Result<std::vector<Dispatch>> {
        std::vector<Dispatch> out;
        for (int i = 0; i < rows->size(); ++i) out.push_back(detail::dispatch_at(*rows, i));
        return out;
    });
}

Result<std::optional<Dispatch>> Reader::dispatch(const Uuid& dispatch_id) {
    auto rows = run(fmt::format("SELECT {} FROM dispatches WHERE dispatch_id = $1::uuid", detail::k_dispatch_columns),
                    {dispatch_id.to_string()});
    if (!rows) return std::unexpected(rows.error());
    return guarded([&]() -> Result<std::optional<Dispatch>> {
        if (rows->empty()) return std::optional<Dispatch>();
        return std::optional<Dispatch>(detail::dispatch_at(*rows, 0));
    });
}

Result<Page<Heartbeat>> Reader::heartbeats(const HeartbeatQuery& q) {
    const std::size_t limit = clamp_limit(q.limit);
    Query query;
    query.sql = fmt::format("SELECT {} FROM heartbeats WHERE asset_id = {}::uuid", detail::k_heartbeat_columns,
                            query.param(q.asset_id.to_string()));
    query.where_range(q.since, q.until);
    if (q.after) query.sql += fmt::format(" AND ts > der_ts({}::bigint)", query.param(std::to_string(q.after->ts)));
    query.sql += fmt::format(" ORDER BY ts LIMIT {}", limit + 1);
    auto rows = run(query.sql, query.params);
    if (!rows) return std::unexpected(rows.error());
    return guarded([&]() -> Result<Page<Heartbeat>> {
        Page<Heartbeat> page;
        const int n = std::min(rows->size(), static_cast<int>(limit));
        for (int i = 0; i < n; ++i) page.rows.push_back(detail::heartbeat_at(*rows, i));
        if (rows->size() > n) page.next = Cursor{page.rows.back().ts, 0};
        return page;
    });
}

Result<std::vector<AgentSession>> Reader::sessions(const Uuid& asset_id, std::size_t limit) {
    auto rows = run(fmt::format("SELECT {} FROM agent_sessions WHERE asset_id = $1::uuid "
                                "ORDER BY connected_at DESC LIMIT {}",
                                detail::k_session_columns, clamp_limit(limit)),
                    {asset_id.to_string()});
    if (!rows) return std::unexpected(rows.error());
    return guarded([&]() -> Result<std::vector<AgentSession>> {
        std::vector<AgentSession> out;
        for (int i = 0; i < rows->size(); ++i) out.push_back(detail::session_at(*rows, i));
        return out;
    });
}

Result<std::optional<std::uint64_t>> Reader::max_seq(const Uuid& asset_id, const Uuid& epoch) {
    auto rows = run("SELECT max(seq) FROM telemetry WHERE asset_id = $1::uuid AND epoch = $2::uuid",
                    {asset_id.to_string(), epoch.to_string()});
    if (!rows) return std::unexpected(rows.error());
    if (rows->empty() || rows->is_null(0, 0)) return std::optional<std::uint64_t>();
    return std::optional<std::uint64_t>(static_cast<std::uint64_t>(rows->i64(0, 0)));
}

}  // namespace der::store
