#pragma once
/// History queries for the hub's REST and control threads.
///
/// A Reader holds one connection, made on first use and made again after it
/// broke (one immediate retry per call); it is for one thread at a time: give
/// each worker thread its own (e.g. `thread_local`), or guard a few with a
/// pool. Ranges are [since, until), both optional; times are Unix ms.

#include "der/model.hpp"
#include "der/store/pg_connection.hpp"
#include "der/store/records.hpp"
#include "der/wire_messages.hpp"

#include <optional>
#include <string>
#include <vector>

namespace der::store {

/// The position of a row in (ts, seq) order; heartbeats use seq 0.
struct Cursor {
    TimestampMs ts = 0;
    std::uint64_t seq = 0;
    friend auto operator<=>(const Cursor&, const Cursor&) = default;
};
/// `<ts_ms>.<seq>`, the same text as the hub's in-memory history.
std::string format_cursor(const Cursor& c);
Result<Cursor> parse_cursor(std::string_view text);  ///< Errc::invalid_argument when malformed

template <class Row>
struct Page {
    std::vector<Row> rows;
    std::optional<Cursor> next = {};  ///< pass as `after` for the next page; nil = last page
};

struct TelemetryQuery {
    Uuid asset_id = {};
    std::optional<TimestampMs> since = {};  ///< inclusive
    std::optional<TimestampMs> until = {};  ///< exclusive
    std::size_t limit = 1000;
    std::optional<Cursor> after = {};  ///< rows strictly after this position
};

struct BucketQuery {
    Uuid asset_id = {};
    std::optional<TimestampMs> since = {};
    std::optional<TimestampMs> until = {};
    double every_s = 60;  ///< bucket width; buckets are aligned on the Unix epoch
    std::size_t limit = 1000;
};

struct DispatchQuery {
    std::optional<Uuid> asset_id = {};
    std::optional<TimestampMs> since = {};  ///< on created_at
    std::optional<TimestampMs> until = {};
    std::optional<DispatchState> state = {};
    std::size_t limit = 1000;
};

struct HeartbeatQuery {
    Uuid asset_id = {};
    std::optional<TimestampMs> since = {};
    std::optional<TimestampMs> until = {};
    std::size_t limit = 1000;
    std::optional<Cursor> after = {};
};

class Reader {
public:
    explicit Reader(std::string conninfo) : m_conninfo(std::move(conninfo)) {}

    /// Rows in (ts, seq) order.
    Result<Page<Telemetry>> telemetry(const TelemetryQuery& q);
    /// `date_bin` buckets in time order, empty buckets left out;
    /// Errc::invalid_argument unless every_s > 0.
    Result<std::vector<wire::TelemetryBucket>> telemetry_buckets(const BucketQuery& q);
    /// Newest first.
    Result<std::vector<Dispatch>> dispatches(const DispatchQuery& q);
    Result<std::optional<Dispatch>> dispatch(const Uuid& dispatch_id);
    /// Rows in ts order.
    Result<Page<Heartbeat>> heartbeats(const HeartbeatQuery& q);
    /// Sessions of an asset, newest first.
    Result<std::vector<AgentSession>> sessions(const Uuid& asset_id, std::size_t limit = 100);
    /// The highest seq stored of (asset, epoch); nil when none.
    Result<std::optional<std::uint64_t>> max_seq(const Uuid& asset_id, const Uuid& epoch);

private:
    Result<Rows> run(const std::string& sql, const Params& params);
    std::string m_conninfo;
    std::optional<Connection> m_conn = {};
};

}  // namespace der::store
