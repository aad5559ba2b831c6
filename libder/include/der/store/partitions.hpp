#pragma once
/// Daily partitions of the time-series tables (telemetry, heartbeats).
///
/// One partition per UTC day, named `<table>_YYYYMMDD`, made ahead of time so
/// that rows rarely land in the DEFAULT partition. A day whose rows already
/// sit in DEFAULT (a clock far off, a long outage) is still made: its rows
/// move out of DEFAULT in the same transaction. Safe against several hubs
/// doing it at once (transaction advisory lock).

#include "der/store/pg_connection.hpp"
#include "der/util/time.hpp"

#include <string>

namespace der::store {

/// Makes the partitions of the UTC days from `now`'s day to `days_ahead`
/// days later, for every partitioned table. Returns how many it created.
Result<int> ensure_partitions(Connection& conn, TimestampMs now, int days_ahead);

/// `telemetry_20261123`: the partition of `table` holding the UTC day of `at`.
std::string partition_name(std::string_view table, TimestampMs at);

}  // namespace der::store
