#pragma once
// Internal to der_store: how each kind of record travels to PostgreSQL.
// Every kind can be COPYed (text format) into its own TEMP staging table,
// then merged into the real table by one INSERT ... SELECT with ON CONFLICT,
// so resends and repeated upserts are harmless and never abort a batch.
// Telemetry, the bulk, can also be COPYed straight into its table (`direct`)
// when the writer knows the rows are new; its lines are the same either way.

#include "der/model.hpp"
#include "der/store/pg_connection.hpp"
#include "der/store/records.hpp"

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace der::store::detail {

struct Kind {
    std::string_view name;   ///< for logs and dead_letters.kind
    std::string_view stage;  ///< its staging table
    std::string_view copy;   ///< COPY <stage> FROM STDIN
    std::string_view merge;  ///< INSERT INTO <table> SELECT ... FROM <stage> ...
    std::string_view direct = {};  ///< COPY <table> FROM STDIN (same lines); empty: always staged
};

extern const Kind k_telemetry;
extern const Kind k_heartbeat;
extern const Kind k_dispatch;
extern const Kind k_session;

/// CREATE TEMP TABLE IF NOT EXISTS for every staging table (per connection).
Result<void> create_staging(Connection& conn);

/// One COPY text line each (with its trailing newline).
void append_row(std::string& out, const Telemetry& t);
void append_row(std::string& out, const Heartbeat& h);
void append_row(std::string& out, const Dispatch& d);
void append_row(std::string& out, const AgentSession& s);

/// COPY `lines` into the kind's staging table and merge it. Leaves the
/// staging table empty on success.
Result<void> write_lines(Connection& conn, const Kind& kind, std::string_view lines);

/// COPY `lines` straight into the kind's table (kind.direct): fails on a
/// row already stored (unique_violation), leaving the caller's savepoint to
/// roll back.
Result<void> copy_direct(Connection& conn, const Kind& kind, std::string_view lines);

/// The highest seq stored of each (asset_id, epoch) pair, in order (0: none).
Result<std::vector<std::uint64_t>> stored_seqs(Connection& conn, const std::vector<std::pair<Uuid, Uuid>>& keys);

/// Stores a record that could not be written, with the reason.
Result<void> dead_letter(Connection& conn, std::string_view kind, std::string_view error, std::string_view row);

/// Upserts sites and assets and retires the absent ones, inside the caller's
/// transaction.
Result<FleetSyncOutcome> sync_fleet(Connection& conn, const FleetSync& fleet);

}  // namespace der::store::detail
