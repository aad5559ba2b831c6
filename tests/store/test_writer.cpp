// The writer thread against a real PostgreSQL: batches, resends, commit
// reports, an outage, poisoned records.
#include "fixtures.hpp"

#include "der/store/reader.hpp"
#include "der/store/writer.hpp"

#include <catch2/catch.hpp>

#include <fmt/core.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <limits>
#include <map>
#include <thread>

using namespace der;
using namespace der::test;

namespace {

const Site k_site = make_site("west", {"w1", "w2", "w3"});
constexpr TimestampMs k_t0 = 1'763'882'715'000;  // the partitions below are made for this day

store::WriterOptions options_for(const std::string& conninfo) {
    store::WriterOptions o;
    o.conninfo = conninfo;
    o.backoff_max = std::chrono::milliseconds(1000);  // quick recovery in tests
    return o;
}

/// Every committed report so far, reduced to the max per (asset, epoch).
struct Committed {
    std::map<std::pair<std::string, std::string>, std::uint64_t> max;
    void drain(store::Writer& w) {
        for (const auto& c : w.take_committed()) {
            auto& m = max[{c.asset_id.to_string(), c.epoch.to_string()}];
            CHECK(c.seq >= m);  // never goes backwards
            m = std::max(m, c.seq);
        }
    }
    std::uint64_t of(const Uuid& asset, const Uuid& epoch) const {
        const auto it = max.find({asset.to_string(), epoch.to_string()});
        return it == max.end() ? 0 : it->second;
    }
};

bool settled(const store::Writer& w, std::uint64_t rows) {
    const auto s = w.stats();
    return s.backlog_rows == 0 && s.backlog_events == 0 && s.rows_committed + s.set_aside >= rows;
}

std::string migrated_store(TimestampMs now = k_t0) {
    const std::string conninfo = pg().create_database();
    auto store = store::Store::open(conninfo, now, 2);
    if (!store) throw std::runtime_error(store.error().message);
    return conninfo;
}

}  // namespace

TEST_CASE("the writer stores a telemetry batch and a resent batch stores nothing twice", "[store][writer]") {
    const std::string conninfo = migrated_store();
    store::Writer writer(options_for(conninfo));
    std::atomic<int> commits{0};
    writer.on_commit([&commits] { ++commits; });
    writer.start();
    const Uuid epoch = Uuid::v7(k_t0);
    const Asset& asset = k_site.assets[0];
    std::vector<Telemetry> sent;
    for (std::uint64_t seq = 1; seq <= 1000; ++seq) {
        sent.push_back(make_telemetry(asset.id, k_site.id, epoch, seq, k_t0 + static_cast<TimestampMs>(seq) * 4000));
        REQUIRE(writer.push(sent.back()));
    }
    REQUIRE(wait_until([&] { return settled(writer, 1000); }, 20s));
    CHECK(commits >= 1);

    // The agent missed our tack and resends all of it, plus ten new records.
    for (const auto& t : sent) REQUIRE(writer.push(t));
    for (std::uint64_t seq = 1001; seq <= 1010; ++seq) {
        sent.push_back(make_telemetry(asset.id, k_site.id, epoch, seq, k_t0 + static_cast<TimestampMs>(seq) * 4000));
        REQUIRE(writer.push(sent.back()));
    }
    REQUIRE(wait_until([&] { return settled(writer, 2010); }, 20s));
    const auto stats = writer.stats();
    CHECK(stats.failed_batches == 0);
    CHECK(stats.set_aside == 0);
    CHECK(stats.dropped == 0);
    CHECK(stats.connected);
    CHECK(stats.last_error.empty());

    auto conn = connect(conninfo);
    CHECK(count(conn, "SELECT count(*) FROM telemetry") == 1010);
    CHECK(count(conn, "SELECT count(DISTINCT (asset_id, epoch, seq)) FROM telemetry") == 1010);

    // Every value comes back exactly as it went in.
    store::Reader reader(conninfo);
    std::vector<Telemetry> stored;
    store::TelemetryQuery q{.asset_id = asset.id};
    q.limit = 300;
    for (int pages = 0; pages < 10; ++pages) {
        auto page = reader.telemetry(q);
        REQUIRE(page);
        stored.insert(stored.end(), page->rows.begin(), page->rows.end());
        if (!page->next) break;
        q.after = page->next;
    }
    REQUIRE(stored.size() == sent.size());
    for (std::size_t i = 0; i < sent.size(); ++i) {
        INFO("seq " << sent[i].seq);
        CHECK(stored[i] == sent[i]);
    }
    CHECK(writer.stop() == 0);
}

TEST_CASE("committed reports give the highest committed seq per asset and epoch", "[store][writer]") {
    const std::string conninfo = migrated_store();
    store::Writer writer(options_for(conninfo));
    writer.start();
    const Uuid e1 = Uuid::v7(k_t0), e2 = Uuid::v7(k_t0 + 1);
    Committed committed;
    std::uint64_t pushed = 0;
    for (std::size_t a = 0; a < k_site.assets.size(); ++a) {
        const Uuid& id = k_site.assets[a].id;
        const std::uint64_t n1 = 10 + a * 7, n2 = 3 + a;
        for (std::uint64_t seq = 1; seq <= n1; ++seq, ++pushed)
            REQUIRE(writer.push(make_telemetry(id, k_site.id, e1, seq, k_t0 + static_cast<TimestampMs>(seq))));
        for (std::uint64_t seq = 1; seq <= n2; ++seq, ++pushed)
            REQUIRE(writer.push(make_telemetry(id, k_site.id, e2, seq, k_t0 + 100'000 + static_cast<TimestampMs>(seq))));
    }
    REQUIRE(wait_until([&] { return settled(writer, pushed); }, 20s));
    committed.drain(writer);
    for (std::size_t a = 0; a < k_site.assets.size(); ++a) {
        CHECK(committed.of(k_site.assets[a].id, e1) == 10 + a * 7);
        CHECK(committed.of(k_site.assets[a].id, e2) == 3 + a);
    }
    CHECK(committed.max.size() == 2 * k_site.assets.size());
    CHECK(writer.take_committed().empty());  // each report is taken once
}

TEST_CASE("dispatches sessions and heartbeats are stored with the latest state of each winning", "[store][writer]") {
    const std::string conninfo = migrated_store();
    store::Writer writer(options_for(conninfo));
    writer.start();
    const Uuid asset = k_site.assets[1].id;

    Dispatch d;
    d.dispatch_id = Uuid::v7(k_t0);
    d.asset_id = asset;
    d.mw = 1.5;
    d.duration_s = 900;
    d.reason = "peak\tshaving\nline two \\ back";
    d.requested_by = "ops";
    d.created_at = k_t0;
    d.enter(DispatchState::queued, k_t0);
    REQUIRE(writer.push(d));
    d.enter(DispatchState::sent, k_t0 + 10);
    REQUIRE(writer.push(d));  // likely in the same batch: the last one wins
    REQUIRE(wait_until([&] { return settled(writer, 2); }, 10s));
    d.enter(DispatchState::applied, k_t0 + 25);
    REQUIRE(writer.push(d));

    store::AgentSession s;
    s.session_id = Uuid::v7(k_t0);
    s.asset_id = asset;
    s.instance_id = Uuid::v7(k_t0 - 5);
    s.epoch = Uuid::v7(k_t0 - 5);
    s.agent_version = "0.1.0";
    s.remote_address = "10.0.0.7";
    s.connected_at = k_t0;
    REQUIRE(writer.push(s));
    Heartbeat h{asset, k_t0 + 30'000, 30.5, 3, "0.1.0"};
    REQUIRE(writer.push(h));
    REQUIRE(wait_until([&] { return settled(writer, 5); }, 10s));
    store::AgentSession ended = s;
    ended.agent_version.clear();  // a sparser record never erases what is known
    ended.remote_address.clear();
    ended.disconnected_at = k_t0 + 60'000;
    ended.disconnect_reason = "offline";
    REQUIRE(writer.push(ended));
    REQUIRE(wait_until([&] { return settled(writer, 6); }, 10s));

    store::Reader reader(conninfo);
    auto stored = reader.dispatch(d.dispatch_id);
    REQUIRE(stored);
    REQUIRE(stored->has_value());
    CHECK(**stored == d);
    auto list = reader.dispatches({.asset_id = asset, .state = DispatchState::applied, .limit = 10});
    REQUIRE(list);
    CHECK(list->size() == 1);

    auto sessions = reader.sessions(asset);
    REQUIRE(sessions);
    REQUIRE(sessions->size() == 1);
    store::AgentSession expected = s;
    expected.disconnected_at = ended.disconnected_at;
    expected.disconnect_reason = "offline";
    CHECK(sessions->front() == expected);

    auto beats = reader.heartbeats({.asset_id = asset});
    REQUIRE(beats);
    REQUIRE(beats->rows.size() == 1);
    CHECK(beats->rows[0] == h);
    CHECK(writer.stats().failed_batches == 0);
}

TEST_CASE("a direct COPY that meets a record already committed falls back and stores every record once",
          "[store][writer]") {
    const std::string conninfo = migrated_store();
    const Uuid epoch = Uuid::v7(k_t0);
    const Uuid& id = k_site.assets[1].id;
    std::vector<Telemetry> records;  // made once: a record's dispatch_id is random
    for (std::uint64_t seq = 1; seq <= 30; ++seq)
        records.push_back(make_telemetry(id, k_site.id, epoch, seq, k_t0 + static_cast<TimestampMs>(seq) * 1000));
    auto record = [&](std::uint64_t seq) { return records[seq - 1]; };
    auto o = options_for(conninfo);
    o.linger = std::chrono::milliseconds(200);  // each round below is one batch
    store::Writer writer(o);
    writer.start();
    for (std::uint64_t seq = 1; seq <= 10; ++seq) REQUIRE(writer.push(record(seq)));
    REQUIRE(wait_until([&] { return settled(writer, 10); }, 20s));
    CHECK(writer.stats().telemetry_direct == 10);  // a new epoch: nothing stored of it

    // Seq 13 reaches the table behind this writer's back (an earlier hub
    // whose COMMIT reply was lost, another writer): this writer still
    // believes 11..20 new.
    {
        store::Writer other(options_for(conninfo));
        other.start();
        REQUIRE(other.push(record(13)));
        REQUIRE(wait_until([&] { return settled(other, 1); }, 20s));
        CHECK(other.stop() == 0);
    }
    for (std::uint64_t seq = 11; seq <= 20; ++seq) REQUIRE(writer.push(record(seq)));
    REQUIRE(wait_until([&] { return settled(writer, 20); }, 20s));
    auto stats = writer.stats();
    CHECK(stats.direct_fallbacks == 1);
    CHECK(stats.telemetry_direct == 10);
    CHECK(stats.failed_batches == 0);
    CHECK(stats.set_aside == 0);
    CHECK(stats.last_error.empty());

    // And the next records, new again, go straight in.
    for (std::uint64_t seq = 21; seq <= 30; ++seq) REQUIRE(writer.push(record(seq)));
    REQUIRE(wait_until([&] { return settled(writer, 30); }, 20s));
    stats = writer.stats();
    CHECK(stats.telemetry_direct == 20);
    CHECK(stats.direct_fallbacks == 1);

    auto conn = connect(conninfo);
    CHECK(count(conn, "SELECT count(*) FROM telemetry") == 30);
    CHECK(count(conn, "SELECT count(DISTINCT seq) FROM telemetry") == 30);
    CHECK(count(conn, "SELECT count(*) FROM telemetry WHERE seq = 13") == 1);
    CHECK(count(conn, "SELECT count(*) FROM dead_letters") == 0);
    Committed committed;
    committed.drain(writer);
    CHECK(committed.of(id, epoch) == 30);

    // Every value came back as it went in, whichever path it took.
    store::Reader reader(conninfo);
    auto page = reader.telemetry({.asset_id = id});
    REQUIRE(page);
    REQUIRE(page->rows.size() == 30);
    for (std::uint64_t seq = 1; seq <= 30; ++seq) CHECK(page->rows[seq - 1] == record(seq));
    CHECK(writer.stop() == 0);
}

TEST_CASE("after a restart resent records are staged once and new ones go straight in", "[store][writer]") {
    const std::string conninfo = migrated_store();
    const Uuid e1 = Uuid::v7(k_t0), e2 = Uuid::v7(k_t0 + 1);
    const Uuid& id = k_site.assets[0].id;
    auto record = [&](const Uuid& epoch, std::uint64_t seq) {
        return make_telemetry(id, k_site.id, epoch, seq, k_t0 + static_cast<TimestampMs>(seq) * 1000);
    };
    {
        store::Writer before(options_for(conninfo));
        before.start();
        for (std::uint64_t seq = 1; seq <= 50; ++seq) REQUIRE(before.push(record(e1, seq)));
        REQUIRE(wait_until([&] { return settled(before, 50); }, 20s));
        CHECK(before.stop() == 0);
    }
    auto o = options_for(conninfo);
    o.linger = std::chrono::milliseconds(200);
    store::Writer writer(o);
    writer.start();
    // The agent resends from its oldest unacknowledged record: the writer
    // looks up what is stored of the epoch and stages that asset's records.
    for (std::uint64_t seq = 41; seq <= 60; ++seq) REQUIRE(writer.push(record(e1, seq)));
    REQUIRE(wait_until([&] { return settled(writer, 20); }, 20s));
    CHECK(writer.stats().telemetry_direct == 0);
    for (std::uint64_t seq = 61; seq <= 70; ++seq) REQUIRE(writer.push(record(e1, seq)));
    REQUIRE(wait_until([&] { return settled(writer, 30); }, 20s));
    CHECK(writer.stats().telemetry_direct == 10);
    // A new epoch starts staged, then an old one comes back with a resend:
    // staged again, below what was committed of it.
    for (std::uint64_t seq = 1; seq <= 5; ++seq) REQUIRE(writer.push(record(e2, seq)));
    for (std::uint64_t seq = 65; seq <= 75; ++seq) REQUIRE(writer.push(record(e1, seq)));
    REQUIRE(wait_until([&] { return settled(writer, 46); }, 20s));
    const auto stats = writer.stats();
    CHECK(stats.direct_fallbacks == 0);
    CHECK(stats.failed_batches == 0);
    CHECK(stats.set_aside == 0);

    auto conn = connect(conninfo);
    CHECK(count(conn, "SELECT count(*) FROM telemetry") == 80);
    CHECK(count(conn, "SELECT count(DISTINCT (asset_id, epoch, seq)) FROM telemetry") == 80);
    CHECK(count(conn, fmt::format("SELECT max(seq) FROM telemetry WHERE epoch = '{}'", e1.to_string())) == 75);
    CHECK(writer.stop() == 0);
}

TEST_CASE("a poisoned record is set aside and counted while the rest of its batch and later ones commit",
          "[store][writer]") {
    const std::string conninfo = migrated_store();
    auto o = options_for(conninfo);
    o.linger = std::chrono::milliseconds(200);  // one batch for the first 201 records
    store::Writer writer(o);
    writer.start();
    const Uuid epoch = Uuid::v7(k_t0);
    const Uuid& id = k_site.assets[2].id;
    for (std::uint64_t seq = 1; seq <= 201; ++seq) {
        auto t = make_telemetry(id, k_site.id, epoch, seq, k_t0 + static_cast<TimestampMs>(seq) * 1000);
        if (seq == 101) t.soc_pct = std::numeric_limits<double>::quiet_NaN();  // refused by a CHECK
        REQUIRE(writer.push(t));
    }
    REQUIRE(wait_until([&] { return settled(writer, 201); }, 20s));
    auto stats = writer.stats();
    CHECK(stats.failed_batches == 1);
    CHECK(stats.set_aside == 1);
    CHECK(stats.rows_committed == 200);

    for (std::uint64_t seq = 202; seq <= 300; ++seq)
        REQUIRE(writer.push(make_telemetry(id, k_site.id, epoch, seq, k_t0 + static_cast<TimestampMs>(seq) * 1000)));
    REQUIRE(wait_until([&] { return settled(writer, 300); }, 20s));
    stats = writer.stats();
    CHECK(stats.failed_batches == 1);
    CHECK(stats.rows_committed == 299);

    auto conn = connect(conninfo);
    CHECK(count(conn, "SELECT count(*) FROM telemetry") == 299);
    CHECK(count(conn, "SELECT count(*) FROM telemetry WHERE seq = 101") == 0);
    CHECK(count(conn, "SELECT count(*) FROM dead_letters") == 1);
    CHECK(value(conn, "SELECT kind FROM dead_letters") == "telemetry");
    CHECK_THAT(value(conn, "SELECT error FROM dead_letters"), Catch::Contains("telemetry_finite"));
    CHECK_THAT(value(conn, "SELECT row_text FROM dead_letters"), Catch::Contains("\t101\t") && Catch::Contains("nan"));

    Committed committed;
    committed.drain(writer);
    CHECK(committed.of(id, epoch) == 300);
}

TEST_CASE("PostgreSQL stopped under load grows the backlog and then every record is stored exactly once",
          "[store][writer][outage]") {
    const std::string conninfo = migrated_store(der::now_ms());
    store::Writer writer(options_for(conninfo));
    writer.start();
    const TimestampMs t0 = der::now_ms();
    const Uuid epoch = Uuid::v7(t0);
    std::uint64_t seq = 0;
    std::uint64_t pushed = 0;
    auto push_round = [&] {  // one record per asset, like a telemetry tick of a small fleet
        ++seq;
        for (const auto& a : k_site.assets) {
            REQUIRE(writer.push(make_telemetry(a.id, k_site.id, epoch, seq, t0 + static_cast<TimestampMs>(seq) * 10)));
            ++pushed;
        }
    };
    for (int i = 0; i < 200; ++i) push_round();
    REQUIRE(wait_until([&] { return settled(writer, pushed); }, 20s));

    pg().stop();
    const auto outage_end = std::chrono::steady_clock::now() + 3s;
    while (std::chrono::steady_clock::now() < outage_end) {
        for (int i = 0; i < 20; ++i) push_round();
        std::this_thread::sleep_for(20ms);
    }
    // Records sent before the outage come again (an agent resending): harmless.
    for (std::uint64_t s = 1; s <= 50; ++s)
        for (const auto& a : k_site.assets)
            REQUIRE(writer.push(make_telemetry(a.id, k_site.id, epoch, s, t0 + static_cast<TimestampMs>(s) * 10)));
    const auto during = writer.stats();
    CHECK_FALSE(during.connected);
    CHECK(during.backlog_rows > 1000);
    CHECK_FALSE(during.last_error.empty());
    CHECK(during.dropped == 0);

    pg().start();
    REQUIRE(wait_until([&] { return settled(writer, pushed) && writer.stats().backlog_rows == 0; }, 60s));
    const auto after = writer.stats();
    CHECK(after.connected);
    CHECK(after.reconnects >= 1);
    CHECK(after.failed_batches == 0);
    CHECK(after.dropped == 0);

    auto conn = connect(conninfo);
    CHECK(count(conn, "SELECT count(*) FROM telemetry") == static_cast<long long>(pushed));
    CHECK(count(conn, "SELECT count(DISTINCT (asset_id, epoch, seq)) FROM telemetry") ==
          static_cast<long long>(pushed));
    for (const auto& a : k_site.assets)
        CHECK(count(conn, fmt::format("SELECT max(seq) FROM telemetry WHERE asset_id = '{}'", a.id.to_string())) ==
              static_cast<long long>(seq));
    Committed committed;
    committed.drain(writer);
    for (const auto& a : k_site.assets) CHECK(committed.of(a.id, epoch) == seq);
}

TEST_CASE("push never blocks and over the bound it refuses and counts", "[store][writer]") {
    store::WriterOptions o;
    o.conninfo = fmt::format("host=127.0.0.1 port={} user=der dbname=nowhere connect_timeout=1", 1);
    o.max_backlog_rows = 100;
    o.max_backlog_events = 2;
    store::Writer writer(o);
    writer.start();
    const Uuid epoch = Uuid::v7();
    const auto start = std::chrono::steady_clock::now();
    int accepted = 0;
    for (std::uint64_t seq = 1; seq <= 1000; ++seq)
        if (writer.push(make_telemetry(k_site.assets[0].id, k_site.id, epoch, seq, k_t0))) ++accepted;
    CHECK(std::chrono::steady_clock::now() - start < 1s);
    CHECK(accepted == 100);
    Dispatch d;
    CHECK(writer.push(d));
    CHECK(writer.push(d));
    CHECK_FALSE(writer.push(d));  // events have their own bound
    auto stats = writer.stats();
    CHECK(stats.dropped == 901);
    CHECK(stats.backlog_rows == 100);
    CHECK_FALSE(stats.connected);
    // Stopping with the database away gives up at the deadline and says so.
    CHECK(writer.stop(std::chrono::milliseconds(300)) == 102);
    CHECK(writer.stats().backlog_rows == 0);
}

TEST_CASE("the COPY path commits 100k telemetry records", "[store][writer][throughput]") {
    const std::string conninfo = migrated_store();
    store::Writer writer(options_for(conninfo));
    writer.start();
    constexpr std::uint64_t k_rows = 100'000;
    std::vector<Telemetry> rows;
    rows.reserve(k_rows);
    const Uuid epoch = Uuid::v7(k_t0);
    for (std::uint64_t seq = 1; seq <= k_rows; ++seq) {
        const auto& a = k_site.assets[seq % k_site.assets.size()];
        rows.push_back(make_telemetry(a.id, k_site.id, epoch, seq, k_t0 + static_cast<TimestampMs>(seq) * 100));
    }
    const auto start = std::chrono::steady_clock::now();
    for (const auto& t : rows) REQUIRE(writer.push(t));
    const auto pushed = std::chrono::steady_clock::now();
    REQUIRE(wait_until([&] { return settled(writer, k_rows); }, 120s));
    const auto done = std::chrono::steady_clock::now();
    const double push_s = std::chrono::duration<double>(pushed - start).count();
    const double total_s = std::chrono::duration<double>(done - start).count();
    fmt::print(stderr, "store throughput: {} rows pushed in {:.3f} s ({:.0f}/s), committed in {:.3f} s ({:.0f} rows/s, "
               "{} batches)\n",
               k_rows, push_s, k_rows / push_s, total_s, k_rows / total_s, writer.stats().batches_committed);
    auto conn = connect(conninfo);
    CHECK(count(conn, "SELECT count(*) FROM telemetry") == static_cast<long long>(k_rows));
}
