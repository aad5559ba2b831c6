// The database writer thread.
//
// Implementation details
// - One deque of records (variant) under a mutex is both the queue and the
//   backlog: while PostgreSQL is down the thread holds its current batch and
//   the deque grows up to its bounds; push() refuses (and counts) past them.
//   Two bounds: telemetry + heartbeats (`max_backlog_rows`) and the rarer,
//   more valuable dispatches / sessions / fleet syncs (`max_backlog_events`),
//   so a telemetry flood never costs a dispatch its audit row.
// - A batch is up to max_batch_rows records, taken once the first record has
//   waited `linger` (or the batch is full). It is written in one transaction:
//   fleet syncs first, then per kind one COPY into the staging table and one
//   merge (batches.cpp). Dispatches and sessions are reduced to the last
//   record per key first (one statement cannot update a row twice).
// - Telemetry, the bulk, mostly skips the staging table: a record is COPYed
//   straight into `telemetry` when its seq is above the highest stored of
//   its (asset, epoch). The writer knows that seq (`known`, writer thread
//   only) from its own commits, and for an asset or epoch it has not written
//   since start it asks the table once (stored_seqs: one query per batch for
//   all such pairs). Any other record (a resend at or below what is stored,
//   and every later record of that asset in the same batch) takes the
//   staging path, whose ON CONFLICT DO NOTHING stores a duplicate once. When
//   the direct COPY fails all the same (a row committed behind the writer's
//   back, e.g. by an earlier hub still finishing its transaction, or bad
//   data) its savepoint is rolled back and its records take the staging path
//   too: no (asset, epoch, seq) is stored twice and a duplicate never costs a
//   record.
// - Every part runs under a savepoint. A part refused for its data (SQLSTATE
//   class 22/23) is split in halves, recursively, until the refused records
//   are alone; each is written to dead_letters (under its own savepoint; if
//   even that fails it is only logged) and the rest commits. A part that
//   fails for another non-connection reason (a missing table, a permission)
//   is set aside whole, as one dead letter. Counters move only after COMMIT,
//   so a batch retried after a lost connection is never counted twice.
// - A lost connection (Errc::unavailable) keeps the batch: the thread closes
//   the connection, sleeps (backoff_min doubling to backoff_max, woken early
//   by stop()) and reconnects; the merge is idempotent, so a batch whose
//   COMMIT reply was lost is simply written again.
// - Partitions are checked on every (re)connect and then hourly.
#include "der/store/writer.hpp"

#include "batches.hpp"

#include "der/store/partitions.hpp"
#include "der/store/pg_connection.hpp"
#include "der/util/log.hpp"

#include <fmt/core.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <variant>

namespace der::store {

namespace {

using Item = std::variant<Telemetry, Heartbeat, Dispatch, AgentSession, FleetSync>;
using SteadyClock = std::chrono::steady_clock;

bool is_row(const Item& item) {
    return std::holds_alternative<Telemetry>(item) || std::holds_alternative<Heartbeat>(item);
}

struct EpochKey {
    Uuid asset_id;
    Uuid epoch;
    friend bool operator==(const EpochKey&, const EpochKey&) = default;
};
struct EpochKeyHash {
    std::size_t operator()(const EpochKey& k) const noexcept {
        return UuidHash{}(k.asset_id) * 31 + UuidHash{}(k.epoch);
    }
};

/// The COPY lines of one kind in a batch, with where each line ends, so a
/// range of records is a substring.
struct Part {
    explicit Part(const detail::Kind& k) : kind(&k) {}
    const detail::Kind* kind;
    std::string text;
    std::vector<std::size_t> ends;
    std::vector<char> aside;  ///< per line: set aside (not stored)
    bool refused = false;     ///< some part of it failed
    bool fell_back = false;   ///< direct COPY failed; staged instead

    template <class Row>
    void add(const Row& row) {
        detail::append_row(text, row);
        ends.push_back(text.size());
    }
    [[nodiscard]] std::size_t size() const { return ends.size(); }
    [[nodiscard]] std::string_view lines(std::size_t lo, std::size_t hi) const {
        const std::size_t from = lo == 0 ? 0 : ends[lo - 1];
        return std::string_view(text).substr(from, ends[hi - 1] - from);
    }
};

struct SetAside {
    std::string kind;
    std::size_t rows = 0;
    std::string error;
};

}  // namespace

struct Writer::Impl {
    explicit Impl(WriterOptions o) : options(std::move(o)), clock(options.clock ? *options.clock : system_clock) {}

    WriterOptions options;
    SystemClock system_clock;
    const Clock& clock;

    std::mutex mutex;
    std::condition_variable cv;
    std::deque<Item> queue;
    bool stopping = false;
    SteadyClock::time_point stop_at{};
    std::thread thread;
    std::function<void()> committed_callback;

    std::atomic<std::size_t> backlog_rows{0}, backlog_events{0};
    std::atomic<std::uint64_t> rows_committed{0}, batches_committed{0}, dropped{0}, failed_batches{0},
        set_aside{0}, reconnects{0};
    std::atomic<bool> connected{false};
    mutable std::mutex error_mutex;
    std::string last_error;

    std::mutex committed_mutex;
    std::unordered_map<EpochKey, std::uint64_t, EpochKeyHash> committed;
    std::atomic<std::uint64_t> telemetry_direct{0}, direct_fallbacks{0};

    /// Writer thread only: per asset, the epoch of its last committed record
    /// and the highest seq this writer committed of it.
    struct Known {
        Uuid epoch;
        std::uint64_t seq = 0;
        bool staged = false;  ///< while planning a batch: later records staged too
    };
    std::unordered_map<Uuid, Known> known;

    // Writer thread only.
    std::optional<Connection> conn;
    bool ever_connected = false;
    std::int64_t partitions_checked_mono = 0;
    std::uint64_t drops_logged = 0;
    SteadyClock::time_point drops_logged_at{};

    bool enqueue(Item item) {
        const bool row = is_row(item);
        auto& counter = row ? backlog_rows : backlog_events;
        const std::size_t bound = row ? options.max_backlog_rows : options.max_backlog_events;
        std::lock_guard lock(mutex);
        if (stopping || counter.load(std::memory_order_relaxed) >= bound) {
            dropped.fetch_add(1, std::memory_order_relaxed);
            return false;
        }
        const bool wake = queue.empty() || queue.size() + 1 == options.max_batch_rows;
        queue.push_back(std::move(item));
        counter.fetch_add(1, std::memory_order_relaxed);
        if (wake) cv.notify_one();
        return true;
    }

    void set_error(const std::string& message) {
        std::lock_guard lock(error_mutex);
        last_error = message;
    }

    void run();
    bool take_batch(std::vector<Item>& batch);
    bool connect();
    void backoff_sleep(std::chrono::milliseconds& backoff);
    Result<void> write_batch(std::vector<Item>& batch);
    Result<void> write_part(Part& part, std::size_t lo, std::size_t hi, std::vector<SetAside>& aside);
    Result<void> write_direct(Part& part, std::vector<SetAside>& aside);
    void check_partitions(bool force);
    void release(const std::vector<Item>& batch);
    void log_drops();
};

bool Writer::Impl::take_batch(std::vector<Item>& batch) {
    std::unique_lock lock(mutex);
    cv.wait(lock, [&] { return !queue.empty() || stopping; });
    if (queue.empty()) return false;  // stopping, nothing left
    if (!stopping && queue.size() < options.max_batch_rows)
        cv.wait_for(lock, options.linger, [&] { return queue.size() >= options.max_batch_rows || stopping; });
    const std::size_t n = std::min(queue.size(), options.max_batch_rows);
    batch.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
        batch.push_back(std::move(queue.front()));
        queue.pop_front();
    }
    return true;
}

void Writer::Impl::release(const std::vector<Item>& batch) {
    std::size_t rows = 0;
    for (const auto& item : batch) rows += is_row(item) ? 1 : 0;
    backlog_rows.fetch_sub(rows);
    backlog_events.fetch_sub(batch.size() - rows);
}

bool Writer::Impl::connect() {
    if (ever_connected) reconnects.fetch_add(1);
    auto c = Connection::open(options.conninfo);
    if (c) {
        if (auto staged = detail::create_staging(*c); !staged) c = std::unexpected(staged.error());
    }
    if (!c) {
        set_error(c.error().message);
        if (connected.exchange(false) || !ever_connected)
            log::warn("database: writer cannot connect: {} (retrying with backoff)", c.error().message);
        ever_connected = true;  // count every later attempt as a reconnect
        return false;
    }
    conn = std::move(*c);
    if (!connected.exchange(true)) log::info("database: writer connected");
    ever_connected = true;
    check_partitions(true);
    return conn.has_value();
}

void Writer::Impl::check_partitions(bool force) {
    const std::int64_t now = clock.mono_ms();
    if (!force && now - partitions_checked_mono < 3'600'000) return;
    partitions_checked_mono = now;
    auto made = ensure_partitions(*conn, clock.now_ms(), options.partition_days_ahead);
    if (!made) {
        log::warn("database: partition maintenance failed: {}", made.error().message);
        if (made.error().code == Errc::unavailable) {
            conn.reset();
            connected = false;
        }
    } else if (*made > 0) {
        log::info("database: created {} partition(s)", *made);
    }
}

void Writer::Impl::backoff_sleep(std::chrono::milliseconds& backoff) {
    std::unique_lock lock(mutex);
    auto wait = backoff;
    if (stopping) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(stop_at - SteadyClock::now());
        wait = std::clamp(left, std::chrono::milliseconds(0), wait);
    }
    const bool was_stopping = stopping;
    cv.wait_for(lock, wait, [&] { return stopping != was_stopping; });
    backoff = std::min(backoff * 2, options.backoff_max);
}

void Writer::Impl::log_drops() {
    const auto now = SteadyClock::now();
    const auto total = dropped.load();
    if (total == drops_logged || now - drops_logged_at < std::chrono::seconds(10)) return;
    log::warn("database: dropped {} record(s) with the backlog full ({} so far)", total - drops_logged, total);
    drops_logged = total;
    drops_logged_at = now;
}

Result<void> Writer::Impl::write_part(Part& part, std::size_t lo, std::size_t hi, std::vector<SetAside>& aside) {
    if (auto r = conn->exec("SAVEPOINT der_part"); !r) return r;
    auto written = detail::write_lines(*conn, *part.kind, part.lines(lo, hi));
    if (written) return conn->exec("RELEASE SAVEPOINT der_part");
    if (written.error().code == Errc::unavailable) return written;
    if (auto r = conn->exec("ROLLBACK TO SAVEPOINT der_part; RELEASE SAVEPOINT der_part"); !r) return r;
    part.refused = true;
    const bool data = written.error().code == Errc::refused;
    if (data && hi - lo > 1) {
        // Look for the bad records: only their halves are split further.
        const std::size_t mid = lo + (hi - lo) / 2;
        if (auto r = write_part(part, lo, mid, aside); !r) return r;
        return write_part(part, mid, hi, aside);
    }
    std::fill(part.aside.begin() + static_cast<std::ptrdiff_t>(lo), part.aside.begin() + static_cast<std::ptrdiff_t>(hi),
              1);
    aside.push_back({std::string(part.kind->name), hi - lo, written.error().message});
    if (auto r = conn->exec("SAVEPOINT der_dead"); !r) return r;
    auto stored = detail::dead_letter(*conn, part.kind->name, written.error().message, part.lines(lo, hi));
    if (!stored) {
        if (stored.error().code == Errc::unavailable) return stored;
        log::error("database: could not store a set-aside {} record in dead_letters either: {}", part.kind->name,
                   stored.error().message);
        return conn->exec("ROLLBACK TO SAVEPOINT der_dead; RELEASE SAVEPOINT der_dead");
    }
    return conn->exec("RELEASE SAVEPOINT der_dead");
}

Result<void> Writer::Impl::write_direct(Part& part, std::vector<SetAside>& aside) {
    if (auto r = conn->exec("SAVEPOINT der_direct"); !r) return r;
    auto copied = detail::copy_direct(*conn, *part.kind, part.lines(0, part.size()));
    if (copied) return conn->exec("RELEASE SAVEPOINT der_direct");
    if (copied.error().code == Errc::unavailable) return copied;
    if (auto r = conn->exec("ROLLBACK TO SAVEPOINT der_direct; RELEASE SAVEPOINT der_direct"); !r) return r;
    log::debug("database: direct COPY of {} {} record(s) refused, staging them: {}", part.size(), part.kind->name,
               copied.error().message);
    part.fell_back = true;
    return write_part(part, 0, part.size(), aside);
}

Result<void> Writer::Impl::write_batch(std::vector<Item>& batch) {
    Part direct(detail::k_telemetry), staged(detail::k_telemetry), heartbeats(detail::k_heartbeat),
        dispatches(detail::k_dispatch), sessions(detail::k_session);
    struct Row {
        const Telemetry* t;
        const Part* part;
        std::size_t line;
    };
    std::vector<Row> telemetry_rows;  // in batch order
    // What is stored of the epochs this writer has not written since start.
    std::unordered_map<EpochKey, std::uint64_t, EpochKeyHash> stored;
    bool stored_unknown = false;  // the lookup failed: stage those records
    {
        std::vector<std::pair<Uuid, Uuid>> keys;
        for (const auto& item : batch) {
            const auto* t = std::get_if<Telemetry>(&item);
            if (t == nullptr) continue;
            const auto k = known.find(t->asset_id);
            if (k != known.end() && k->second.epoch == t->epoch) continue;
            if (stored.try_emplace(EpochKey{t->asset_id, t->epoch}, 0).second) keys.emplace_back(t->asset_id, t->epoch);
        }
        if (!keys.empty()) {
            auto seqs = detail::stored_seqs(*conn, keys);
            if (!seqs) {
                if (seqs.error().code == Errc::unavailable) return std::unexpected(seqs.error());
                log::warn("database: cannot look up stored telemetry seqs, staging: {}", seqs.error().message);
                stored_unknown = true;
            } else {
                for (std::size_t i = 0; i < keys.size(); ++i)
                    stored[EpochKey{keys[i].first, keys[i].second}] = (*seqs)[i];
            }
        }
    }
    // Forwards, as the hub pushed them: a record goes direct only above what
    // is stored of its asset's epoch (see the file comment).
    std::unordered_map<Uuid, Known> planned;
    for (const auto& item : batch) {
        const auto* t = std::get_if<Telemetry>(&item);
        if (t == nullptr) continue;
        auto at = planned.find(t->asset_id);
        if (at == planned.end()) {
            const auto k = known.find(t->asset_id);
            Known base;
            if (k != known.end() && k->second.epoch == t->epoch) base = k->second;
            else base = Known{t->epoch, stored[EpochKey{t->asset_id, t->epoch}], stored_unknown};
            at = planned.emplace(t->asset_id, base).first;
        }
        Known& plan = at->second;
        const bool new_row = !plan.staged && plan.epoch == t->epoch && t->seq > plan.seq;
        Part& part = new_row ? direct : staged;
        telemetry_rows.push_back({t, &part, part.size()});
        part.add(*t);
        plan = Known{t->epoch, t->seq, !new_row};
    }
    std::vector<const FleetSync*> fleets;
    std::unordered_set<Uuid> seen_dispatch, seen_session;
    // Backwards, so the last record per dispatch / session wins; each part
    // is in reverse order, which no merge depends on.
    for (auto it = batch.rbegin(); it != batch.rend(); ++it) {
        if (std::holds_alternative<Telemetry>(*it)) continue;
        if (const auto* h = std::get_if<Heartbeat>(&*it)) {
            heartbeats.add(*h);
        } else if (const auto* d = std::get_if<Dispatch>(&*it)) {
            if (seen_dispatch.insert(d->dispatch_id).second) dispatches.add(*d);
        } else if (const auto* s = std::get_if<AgentSession>(&*it)) {
            if (seen_session.insert(s->session_id).second) sessions.add(*s);
        } else {
            fleets.insert(fleets.begin(), &std::get<FleetSync>(*it));
        }
    }

    auto tx = Transaction::begin(*conn);
    if (!tx) return std::unexpected(tx.error());
    std::vector<SetAside> aside;
    bool fleet_failed = false;
    for (const FleetSync* fleet : fleets) {
        if (auto r = conn->exec("SAVEPOINT der_fleet"); !r) return r;
        auto synced = detail::sync_fleet(*conn, *fleet);
        if (synced) {
            if (auto r = conn->exec("RELEASE SAVEPOINT der_fleet"); !r) return r;
            log::info("database: fleet synced ({} new assets, {} retired, {} back from retirement)",
                      synced->assets_inserted, synced->assets_retired, synced->assets_returned);
            continue;
        }
        if (synced.error().code == Errc::unavailable) return std::unexpected(synced.error());
        if (auto r = conn->exec("ROLLBACK TO SAVEPOINT der_fleet; RELEASE SAVEPOINT der_fleet"); !r) return r;
        fleet_failed = true;
        aside.push_back({"fleet", 1, synced.error().message});
    }
    for (Part* part : {&direct, &staged, &heartbeats, &dispatches, &sessions}) {
        if (part->size() == 0) continue;
        part->aside.assign(part->size(), 0);
        auto written = part == &direct ? write_direct(*part, aside) : write_part(*part, 0, part->size(), aside);
        if (!written) return written;
    }
    if (auto r = tx->commit(); !r) return r;

    // Committed: now the counters and the report may move.
    std::size_t set_aside_rows = 0;
    for (const auto& a : aside) {
        set_aside_rows += a.rows;
        log::error("database: set aside {} {} record(s) (see table dead_letters): {}", a.rows, a.kind, a.error);
    }
    const bool failed = fleet_failed || direct.refused || staged.refused || heartbeats.refused ||
                        dispatches.refused || sessions.refused;
    if (failed) failed_batches.fetch_add(1);
    set_aside.fetch_add(set_aside_rows);
    rows_committed.fetch_add(batch.size() - set_aside_rows);
    batches_committed.fetch_add(1);
    if (direct.fell_back) direct_fallbacks.fetch_add(1);
    else telemetry_direct.fetch_add(direct.size());
    if (!telemetry_rows.empty()) {
        for (const Row& row : telemetry_rows) {
            if (row.part->aside[row.line] != 0) continue;
            const Telemetry& t = *row.t;
            auto [it, fresh] = known.try_emplace(t.asset_id, Known{t.epoch, t.seq, false});
            if (fresh) continue;
            // Batch order: the asset's latest epoch wins, then its highest seq.
            const std::uint64_t seq = it->second.epoch == t.epoch ? std::max(it->second.seq, t.seq) : t.seq;
            it->second = Known{t.epoch, seq, false};
        }
        std::lock_guard lock(committed_mutex);
        for (const Row& row : telemetry_rows) {
            if (row.part->aside[row.line] != 0) continue;
            const Telemetry& t = *row.t;
            auto& seq = committed[EpochKey{t.asset_id, t.epoch}];
            seq = std::max(seq, t.seq);
        }
    }
    if (!telemetry_rows.empty() && committed_callback) committed_callback();
    return {};
}

void Writer::Impl::run() {
    std::vector<Item> batch;
    auto backoff = options.backoff_min;
    while (true) {
        log_drops();
        if (batch.empty() && !take_batch(batch)) break;
        bool give_up;
        {
            std::lock_guard lock(mutex);
            give_up = stopping && SteadyClock::now() >= stop_at;
        }
        if (give_up) break;
        if (!conn && !connect()) {
            backoff_sleep(backoff);
            continue;
        }
        check_partitions(false);
        if (!conn) continue;
        auto written = write_batch(batch);
        if (written) {
            set_error("");
            release(batch);
            batch.clear();
            backoff = options.backoff_min;
            continue;
        }
        set_error(written.error().message);
        if (written.error().code == Errc::unavailable || !conn->ok()) {
            log::warn("database: batch of {} record(s) not written, will retry: {}", batch.size(),
                      written.error().message);
            conn.reset();
            connected = false;
        } else {
            // Not the data (write_part isolates that) and not the connection:
            // e.g. COMMIT refused. Never retried for ever: set the batch aside.
            log::error("database: batch of {} record(s) dropped: {}", batch.size(), written.error().message);
            failed_batches.fetch_add(1);
            set_aside.fetch_add(batch.size());
            release(batch);
            batch.clear();
        }
        backoff_sleep(backoff);
    }
    // Stopped: whatever is left could not be written in time.
    std::size_t abandoned = batch.size();
    release(batch);
    {
        std::lock_guard lock(mutex);
        abandoned += queue.size();
        for (const auto& item : queue) (is_row(item) ? backlog_rows : backlog_events).fetch_sub(1);
        queue.clear();
    }
    if (abandoned > 0) {
        dropped.fetch_add(abandoned);
        std::lock_guard lock(error_mutex);
        log::error("database: stopped with {} record(s) not written ({})", abandoned,
                   last_error.empty() ? "time ran out" : last_error);
    }
    conn.reset();
    connected = false;
}

// --- Writer ------------------------------------------------------------------------

Writer::Writer(WriterOptions options) : m_impl(std::make_unique<Impl>(std::move(options))) {
    if (m_impl->options.max_batch_rows == 0) m_impl->options.max_batch_rows = 1;
}

Writer::~Writer() {
    if (m_impl->thread.joinable()) stop();
}

void Writer::on_commit(std::function<void()> callback) { m_impl->committed_callback = std::move(callback); }

void Writer::start() {
    if (m_impl->thread.joinable()) throw std::logic_error("Writer::start called twice");
    m_impl->thread = std::thread([impl = m_impl.get()] { impl->run(); });
}

bool Writer::push(const Telemetry& t) { return m_impl->enqueue(t); }
bool Writer::push(const Heartbeat& h) { return m_impl->enqueue(h); }
bool Writer::push(const Dispatch& d) { return m_impl->enqueue(d); }
bool Writer::push(const AgentSession& s) { return m_impl->enqueue(s); }
bool Writer::push(FleetSync fleet) { return m_impl->enqueue(std::move(fleet)); }

std::vector<CommittedSeq> Writer::take_committed() {
    std::unordered_map<EpochKey, std::uint64_t, EpochKeyHash> taken;
    {
        std::lock_guard lock(m_impl->committed_mutex);
        taken.swap(m_impl->committed);
    }
    std::vector<CommittedSeq> out;
    out.reserve(taken.size());
    for (const auto& [key, seq] : taken) out.push_back({key.asset_id, key.epoch, seq});
    return out;
}

WriterStats Writer::stats() const {
    const Impl& i = *m_impl;
    WriterStats s;
    s.backlog_rows = i.backlog_rows.load();
    s.backlog_events = i.backlog_events.load();
    s.max_backlog_rows = i.options.max_backlog_rows;
    s.rows_committed = i.rows_committed.load();
    s.batches_committed = i.batches_committed.load();
    s.dropped = i.dropped.load();
    s.failed_batches = i.failed_batches.load();
    s.set_aside = i.set_aside.load();
    s.reconnects = i.reconnects.load();
    s.telemetry_direct = i.telemetry_direct.load();
    s.direct_fallbacks = i.direct_fallbacks.load();
    s.connected = i.connected.load();
    std::lock_guard lock(i.error_mutex);
    s.last_error = i.last_error;
    return s;
}

std::size_t Writer::stop(std::chrono::milliseconds deadline) {
    const auto before = m_impl->dropped.load();
    {
        std::lock_guard lock(m_impl->mutex);
        if (!m_impl->stopping) {
            m_impl->stopping = true;
            m_impl->stop_at = SteadyClock::now() + deadline;
        }
    }
    m_impl->cv.notify_all();
    if (m_impl->thread.joinable()) m_impl->thread.join();
    return static_cast<std::size_t>(m_impl->dropped.load() - before);
}

}  // namespace der::store
