// History queries and restore against a real PostgreSQL.
#include "fixtures.hpp"

#include "der/store/reader.hpp"
#include "der/store/writer.hpp"

#include <catch2/catch.hpp>

#include <fmt/core.h>

#include <algorithm>
#include <map>
#include <tuple>
#include <random>

using namespace der;
using namespace der::test;

namespace {

constexpr TimestampMs k_t0 = 1'763'882'715'000;

/// Writes rows through a Writer and waits until they are committed.
template <class Row>
void write_all(const std::string& conninfo, const std::vector<Row>& rows) {
    store::WriterOptions o;
    o.conninfo = conninfo;
    store::Writer writer(o);
    writer.start();
    for (const auto& r : rows) REQUIRE(writer.push(r));
    REQUIRE(wait_until(
        [&] {
            const auto s = writer.stats();
            return s.backlog_rows == 0 && s.backlog_events == 0 && s.rows_committed >= rows.size();
        },
        20s));
    REQUIRE(writer.stats().set_aside == 0);
}

}  // namespace

TEST_CASE("history with every=60 equals aggregates computed from the raw rows", "[store][reader]") {
    const std::string conninfo = pg().create_database();
    REQUIRE(store::Store::open(conninfo, k_t0, 2).has_value());
    const Site site = make_site("east", {"e1", "e2"});
    const Uuid asset = site.assets[0].id;
    std::mt19937 rng(42);
    std::uniform_int_distribution<int> jitter(0, 3999);
    std::uniform_real_distribution<double> noise(-0.5, 0.5);
    std::vector<Telemetry> rows;
    const Uuid epoch = Uuid::v7(k_t0);
    for (std::uint64_t seq = 1; seq <= 900; ++seq) {  // an hour at ~4 s
        auto t = make_telemetry(asset, site.id, epoch, seq, k_t0 + static_cast<TimestampMs>(seq) * 4000 + jitter(rng));
        t.soc_pct += noise(rng);
        t.current_mw += noise(rng);
        rows.push_back(t);
        // The other asset's rows must not leak into the buckets.
        rows.push_back(make_telemetry(site.assets[1].id, site.id, epoch, seq, t.ts));
    }
    write_all(conninfo, rows);

    const TimestampMs since = k_t0 + 600'000, until = k_t0 + 3'000'000;
    struct Agg {
        std::uint64_t n = 0;
        double soc_sum = 0, soc_min = 1e300, soc_max = -1e300, mw_sum = 0, mw_min = 1e300, mw_max = -1e300;
    };
    std::map<TimestampMs, Agg> expected;
    for (const auto& t : rows) {
        if (t.asset_id != asset || t.ts < since || t.ts >= until) continue;
        auto& a = expected[t.ts / 60'000 * 60'000];
        ++a.n;
        a.soc_sum += t.soc_pct;
        a.soc_min = std::min(a.soc_min, t.soc_pct);
        a.soc_max = std::max(a.soc_max, t.soc_pct);
        a.mw_sum += t.current_mw;
        a.mw_min = std::min(a.mw_min, t.current_mw);
        a.mw_max = std::max(a.mw_max, t.current_mw);
    }

    store::Reader reader(conninfo);
    auto buckets = reader.telemetry_buckets({.asset_id = asset, .since = since, .until = until, .every_s = 60});
    REQUIRE(buckets);
    REQUIRE(buckets->size() == expected.size());
    auto it = expected.begin();
    for (const auto& b : *buckets) {
        INFO("bucket " << format_rfc3339(b.ts));
        CHECK(b.asset_id == asset);
        CHECK(b.ts == it->first);
        CHECK(b.count == it->second.n);
        CHECK(b.soc_pct_avg == Approx(it->second.soc_sum / static_cast<double>(it->second.n)).epsilon(1e-12).margin(1e-12));
        CHECK(b.soc_pct_min == it->second.soc_min);
        CHECK(b.soc_pct_max == it->second.soc_max);
        CHECK(b.current_mw_avg == Approx(it->second.mw_sum / static_cast<double>(it->second.n)).epsilon(1e-12).margin(1e-12));
        CHECK(b.current_mw_min == it->second.mw_min);
        CHECK(b.current_mw_max == it->second.mw_max);
        ++it;
    }

    auto bad = reader.telemetry_buckets({.asset_id = asset, .since = since, .until = until, .every_s = 0});
    REQUIRE_FALSE(bad);
    CHECK(bad.error().code == Errc::invalid_argument);
}

TEST_CASE("telemetry history pages from since to until in ts then seq order", "[store][reader]") {
    const std::string conninfo = pg().create_database();
    REQUIRE(store::Store::open(conninfo, k_t0, 2).has_value());
    const Site site = make_site("east", {"e1"});
    const Uuid asset = site.assets[0].id;
    std::vector<Telemetry> rows;
    const Uuid e1 = Uuid::v7(k_t0), e2 = Uuid::v7(k_t0 + 5);
    for (std::uint64_t seq = 1; seq <= 250; ++seq)
        rows.push_back(make_telemetry(asset, site.id, e1, seq, k_t0 + static_cast<TimestampMs>(seq / 2) * 1000));
    for (std::uint64_t seq = 1; seq <= 10; ++seq)  // a new epoch, same instants as the old one
        rows.push_back(make_telemetry(asset, site.id, e2, seq, k_t0 + static_cast<TimestampMs>(seq) * 1000));
    write_all(conninfo, rows);

    const TimestampMs since = k_t0 + 5'000, until = k_t0 + 100'000;
    store::Reader reader(conninfo);
    std::vector<Telemetry> got;
    store::TelemetryQuery q{.asset_id = asset, .since = since, .until = until, .limit = 37};
    for (int pages = 0; pages < 100; ++pages) {
        auto page = reader.telemetry(q);
        REQUIRE(page);
        got.insert(got.end(), page->rows.begin(), page->rows.end());
        if (!page->next) break;
        CHECK(page->rows.size() == 37);
        const auto text = store::format_cursor(*page->next);
        auto parsed = store::parse_cursor(text);
        REQUIRE(parsed);
        q.after = *parsed;
    }
    std::vector<Telemetry> expected;
    for (const auto& t : rows)
        if (t.ts >= since && t.ts < until) expected.push_back(t);
    std::sort(expected.begin(), expected.end(),
              [](const Telemetry& a, const Telemetry& b) { return std::tie(a.ts, a.seq) < std::tie(b.ts, b.seq); });
    REQUIRE(got.size() == expected.size());
    for (std::size_t i = 0; i < got.size(); ++i) {
        CHECK(got[i].ts == expected[i].ts);
        CHECK(got[i].seq == expected[i].seq);
    }
    CHECK_FALSE(store::parse_cursor("12x"));

    auto max1 = reader.max_seq(asset, e1);
    REQUIRE(max1);
    CHECK(*max1 == std::optional<std::uint64_t>(250));
    auto none = reader.max_seq(asset, Uuid::v7());
    REQUIRE(none);
    CHECK_FALSE(none->has_value());
}

TEST_CASE("restore returns the last telemetry with its epoch and the open dispatches", "[store][reader]") {
    const std::string conninfo = pg().create_database();
    auto store = store::Store::open(conninfo, k_t0, 2);
    REQUIRE(store.has_value());
    const Site site = make_site("south", {"s1", "s2", "s3"});
    REQUIRE(store->sync_fleet({{site}}));
    const Uuid a1 = site.assets[0].id, a2 = site.assets[1].id, a3 = site.assets[2].id;
    const Uuid old_epoch = Uuid::v7(k_t0 - 1000), epoch = Uuid::v7(k_t0);

    std::vector<Telemetry> rows;
    for (std::uint64_t seq = 1; seq <= 40; ++seq)
        rows.push_back(make_telemetry(a1, site.id, old_epoch, seq, k_t0 + static_cast<TimestampMs>(seq) * 1000));
    for (std::uint64_t seq = 1; seq <= 7; ++seq)  // a1 restarted without its spool: a new epoch
        rows.push_back(make_telemetry(a1, site.id, epoch, seq, k_t0 + 100'000 + static_cast<TimestampMs>(seq) * 1000));
    for (std::uint64_t seq = 1; seq <= 5; ++seq)
        rows.push_back(make_telemetry(a2, site.id, epoch, seq, k_t0 + static_cast<TimestampMs>(seq) * 1000));
    write_all(conninfo, rows);

    auto dispatch = [&](const Uuid& asset, TimestampMs at, std::initializer_list<DispatchState> states) {
        Dispatch d;
        d.dispatch_id = Uuid::v7(at);
        d.asset_id = asset;
        d.mw = -1.0;
        d.created_at = at;
        for (const auto s : states) d.enter(s, at += 10);
        return d;
    };
    const auto applied = dispatch(a1, k_t0 + 1000, {DispatchState::queued, DispatchState::sent, DispatchState::applied});
    const auto expired = dispatch(a2, k_t0 + 500, {DispatchState::queued, DispatchState::sent, DispatchState::applied,
                                                   DispatchState::expired});
    const auto queued = dispatch(a2, k_t0 + 2000, {DispatchState::queued});
    write_all(conninfo, std::vector<Dispatch>{applied, expired, queued});

    auto restored = store->restore();
    REQUIRE(restored);
    REQUIRE(restored->last_telemetry.size() == 2);  // a3 has none
    std::map<Uuid, Telemetry> last;
    for (const auto& t : restored->last_telemetry) last[t.asset_id] = t;
    CHECK(last[a1] == rows[46]);  // a1's newest record
    CHECK(last[a1].soc_pct == rows[46].soc_pct);
    CHECK(last[a2] == rows[51]);
    std::map<Uuid, store::CommittedSeq> epochs;
    for (const auto& e : restored->last_epochs) epochs[e.asset_id] = e;
    CHECK(epochs[a1] == store::CommittedSeq{a1, epoch, 7});
    CHECK(epochs[a2] == store::CommittedSeq{a2, epoch, 5});
    REQUIRE(restored->open_dispatches.size() == 2);
    CHECK(restored->open_dispatches[0] == applied);
    CHECK(restored->open_dispatches[1] == queued);

    // A retired asset is not restored.
    Site without_a1 = site;
    without_a1.assets.erase(without_a1.assets.begin());
    REQUIRE(store->sync_fleet({{without_a1}}));
    auto again = store->restore();
    REQUIRE(again);
    CHECK(again->last_telemetry.size() == 1);
    (void)a3;
}
