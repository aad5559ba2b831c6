#include "der/store/partitions.hpp"

#include <fmt/core.h>

#include <array>
#include <chrono>
#include <string_view>

namespace der::store {

namespace {

constexpr std::array<std::string_view, 2> k_partitioned = {"telemetry", "heartbeats"};
constexpr std::int64_t k_day_ms = 86'400'000;
/// pg_advisory_xact_lock key: "der-part".
constexpr std::int64_t k_lock_key = 0x6465722d70617274;

std::int64_t day_of(TimestampMs at) {
    return at >= 0 ? at / k_day_ms : -((-at + k_day_ms - 1) / k_day_ms);
}

std::chrono::year_month_day civil(std::int64_t day) {
    return std::chrono::year_month_day{std::chrono::sys_days{std::chrono::days{day}}};
}

std::string day_literal(std::int64_t day) {
    const auto ymd = civil(day);
    return fmt::format("'{:04}-{:02}-{:02} 00:00:00+00'", static_cast<int>(ymd.year()),
                       static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()));
}

std::string name_of(std::string_view table, std::int64_t day) {
    const auto ymd = civil(day);
    return fmt::format("{}_{:04}{:02}{:02}", table, static_cast<int>(ymd.year()), static_cast<unsigned>(ymd.month()),
                       static_cast<unsigned>(ymd.day()));
}

/// A plain query on pg_class, not to_regclass(): the latter reads the
/// catalog cache, which an advisory lock does not refresh, so it can miss a
/// partition another hub committed while we waited for the lock.
Result<bool> exists(Connection& conn, const std::string& name) {
    auto v = conn.query_value(
        "SELECT EXISTS (SELECT 1 FROM pg_class WHERE relname = $1 AND relnamespace = current_schema()::regnamespace)",
        {name});
    if (!v) return std::unexpected(v.error());
    return *v == "t";
}

/// Makes one partition; false when another hub made it first.
Result<bool> make_partition(Connection& conn, std::string_view table, std::int64_t day) {
    const std::string name = name_of(table, day);
    auto tx = Transaction::begin(conn);
    if (!tx) return std::unexpected(tx.error());
    if (auto r = conn.exec(fmt::format("SELECT pg_advisory_xact_lock({})", k_lock_key)); !r)
        return std::unexpected(r.error());
    auto there = exists(conn, name);
    if (!there) return std::unexpected(there.error());
    if (*there) return false;
    const std::string from = day_literal(day), to = day_literal(day + 1);
    // Built detached, filled with whatever DEFAULT holds of that day, then
    // attached: ATTACH refuses a range whose rows are still in DEFAULT.
    const std::string sql = fmt::format(
        "CREATE TABLE {0} (LIKE {1} INCLUDING DEFAULTS INCLUDING CONSTRAINTS);"
        "WITH moved AS (DELETE FROM {1}_default WHERE ts >= {2} AND ts < {3} RETURNING *) "
        "INSERT INTO {0} SELECT * FROM moved;"
        "ALTER TABLE {1} ATTACH PARTITION {0} FOR VALUES FROM ({2}) TO ({3});",
        name, table, from, to);
    if (auto r = conn.exec(sql); !r)
        return fail(r.error().code, fmt::format("cannot create partition {}: {}", name, r.error().message));
    if (auto r = tx->commit(); !r) return std::unexpected(r.error());
    return true;
}

}  // namespace

std::string partition_name(std::string_view table, TimestampMs at) { return name_of(table, day_of(at)); }

Result<int> ensure_partitions(Connection& conn, TimestampMs now, int days_ahead) {
    int created = 0;
    const std::int64_t today = day_of(now);
    for (const auto table : k_partitioned) {
        for (std::int64_t day = today; day <= today + days_ahead; ++day) {
            auto there = exists(conn, name_of(table, day));
            if (!there) return std::unexpected(there.error());
            if (*there) continue;
            auto made = make_partition(conn, table, day);
            if (!made) return std::unexpected(made.error());
            if (*made) ++created;
        }
    }
    return created;
}

}  // namespace der::store
