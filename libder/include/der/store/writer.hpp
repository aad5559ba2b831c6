#pragma once
/// The database writer: a thread that takes rows from the hub's event loop
/// without ever blocking it, and writes them in batches (docs/database.md).
///
/// Threads: push(), take_committed() and stats() may be called from any
/// thread (the event loop, in the hub); everything else of the writer runs on
/// its own thread with its own connection. Construct, set on_commit(), then
/// start(); stop() (or the destructor) flushes within a deadline.
///
/// Guarantees:
/// - push() never blocks on the database: it copies the row into a bounded
///   queue and returns. Over the bound it counts a drop and returns false:
///   the caller must then treat a telemetry record as NOT stored (the agent
///   resends it when its tack does not move).
/// - One transaction per batch. Telemetry the writer knows to be new (above
///   what it committed itself of the asset's epoch) is COPYed straight into
///   `telemetry`; the rest, and a direct COPY that fails, goes through COPY
///   into a staging table and `INSERT ... ON CONFLICT DO NOTHING`: a resent
///   record is never stored twice and never fails a batch.
/// - PostgreSQL unreachable: the batch stays, the queue (the backlog) grows up
///   to its bound, the writer reconnects with exponential backoff
///   (backoff_min doubling to backoff_max) and then writes everything in order.
/// - A batch refused for any other reason (constraint, bad data) is split in
///   halves until the offending rows are isolated; those are set aside into
///   `dead_letters` (counted and logged) and the rest commits. Nothing is
///   retried for ever.
/// - take_committed() reports, per (asset, epoch), the highest seq committed
///   since the last call: the only basis for `tack` when a database is on.

#include "der/model.hpp"
#include "der/store/records.hpp"
#include "der/util/time.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace der::store {

struct WriterOptions {
    std::string conninfo;  ///< as Store::open; the writer opens its own connection
    std::size_t max_backlog_rows = 500'000;    ///< telemetry + heartbeats queued or in flight
    std::size_t max_backlog_events = 100'000;  ///< dispatches, sessions and fleet syncs
    std::size_t max_batch_rows = 5'000;
    std::chrono::milliseconds linger{20};  ///< how long a batch may wait to fill up
    std::chrono::milliseconds backoff_min{100};
    std::chrono::milliseconds backoff_max{5'000};
    int partition_days_ahead = 2;  ///< checked on every (re)connect and hourly
    const Clock* clock = nullptr;  ///< wall clock for partitions; nullptr = the system clock
};

/// A consistent-enough copy of the writer's counters (each is atomic).
struct WriterStats {
    std::size_t backlog_rows = 0;    ///< telemetry + heartbeats queued or in flight
    std::size_t backlog_events = 0;  ///< dispatches, sessions, fleet syncs queued or in flight
    std::size_t max_backlog_rows = 0;
    std::uint64_t rows_committed = 0;  ///< records of every kind in committed batches
    std::uint64_t batches_committed = 0;
    std::uint64_t dropped = 0;         ///< refused by push() over the bound, or abandoned at stop
    std::uint64_t failed_batches = 0;  ///< batches refused for a non-connection reason
    std::uint64_t set_aside = 0;       ///< records isolated from those batches (dead_letters)
    std::uint64_t reconnects = 0;      ///< connection attempts after a failure
    std::uint64_t telemetry_direct = 0;  ///< telemetry records COPYed straight into `telemetry`
    std::uint64_t direct_fallbacks = 0;  ///< direct COPYs refused (e.g. a duplicate) and staged instead
    bool connected = false;
    std::string last_error;  ///< empty when none since the last success
};

class Writer {
public:
    explicit Writer(WriterOptions options);
    ~Writer();  ///< stop(5 s) when still running
    Writer(const Writer&) = delete;
    Writer& operator=(const Writer&) = delete;

    /// Called on the writer thread after each committed batch that carried
    /// telemetry (keep it cheap: e.g. wake the event loop). Set before start().
    void on_commit(std::function<void()> callback);
    /// Starts the thread. It connects in the background: the store must have
    /// been migrated (Store::open) beforehand.
    void start();

    /// Never block. False = over the bound (or stopped): counted as dropped.
    bool push(const Telemetry& t);
    bool push(const Heartbeat& h);
    bool push(const Dispatch& d);  ///< the whole dispatch, after every state change
    bool push(const AgentSession& s);
    bool push(FleetSync fleet);  ///< SIGHUP: upsert sites/assets, retire the absent

    /// Highest committed seq per (asset, epoch) since the previous call.
    std::vector<CommittedSeq> take_committed();

    [[nodiscard]] WriterStats stats() const;

    /// Stops taking rows, writes what is queued for at most `deadline`, and
    /// joins the thread. Returns how many records it had to abandon (also
    /// counted in `dropped` and logged).
    std::size_t stop(std::chrono::milliseconds deadline = std::chrono::seconds(5));

private:
    struct Impl;
    std::unique_ptr<Impl> m_impl;
};

}  // namespace der::store
