#include "dispatch_book.hpp"
#include "histogram.hpp"

#include <catch2/catch.hpp>

#include <limits>

using namespace der;
using der::hub::check_duration;
using der::hub::check_who;
using der::hub::DispatchBook;
using der::hub::LoopTurnHistogram;
using der::hub::NewDispatch;
using der::hub::Now;

namespace {
const Uuid k_asset = Uuid::v5(k_namespace_dns, "test/asset");
std::vector<DispatchState> states(const std::vector<Dispatch>& changed) {
    std::vector<DispatchState> out;
    for (const auto& d : changed) out.push_back(d.state);
    return out;
}
}  // namespace

TEST_CASE("a dispatch goes queued, sent, applied, expired and each step is timestamped", "[hub][dispatch]") {
    DispatchBook book(900, 5);
    std::vector<Dispatch> changed;
    const auto& d = book.create({k_asset, 1.5, 10.0, "peak", "ops", std::nullopt, std::nullopt}, Now{1'000'000, 0}, changed);
    const Uuid id = d.dispatch_id;
    CHECK(id.version() == 7);
    book.mark_sent(id, Now{1'000'010, 10}, changed);
    CHECK(book.on_ack(k_asset, id, true, "", Now{1'000'030, 30}, changed));
    book.tick(Now{1'009'000, 9'000}, changed);
    CHECK(book.find(id)->state == DispatchState::applied);
    book.tick(Now{1'010'000, 10'000}, changed);
    CHECK(states(changed) == std::vector{DispatchState::queued, DispatchState::sent, DispatchState::applied,
                                         DispatchState::expired});
    const auto* done = book.find(id);
    CHECK(done->state_at[static_cast<std::size_t>(DispatchState::sent)] == 1'000'010);
    CHECK(done->state_at[static_cast<std::size_t>(DispatchState::expired)] == 1'010'000);
    CHECK(book.open_for(k_asset) == nullptr);
    CHECK(book.ack_latency().count == 1);
    CHECK(book.ack_latency().sum == Approx(0.020));
}

TEST_CASE("a late delivery carries only what is left of the duration, and none once it ran out", "[hub][dispatch]") {
    DispatchBook book(900, 5);
    std::vector<Dispatch> changed;
    const Uuid id = book.create({k_asset, 1.0, 60.0, "", "", std::nullopt, std::nullopt}, Now{0, 0}, changed).dispatch_id;
    auto sp = book.setpoint_for(*book.find(id), Now{45'000, 45'000});
    REQUIRE(sp);
    CHECK(sp->remaining_s == Approx(15.0));
    CHECK_FALSE(book.setpoint_for(*book.find(id), Now{60'000, 60'000}));
    book.tick(Now{60'000, 60'000}, changed);
    CHECK(book.find(id)->state == DispatchState::expired);
}

TEST_CASE("no ack within the timeout fails a sent dispatch, a queued one fails after the pending TTL",
          "[hub][dispatch]") {
    DispatchBook book(30, 5);
    std::vector<Dispatch> changed;
    const Uuid sent = book.create({k_asset, 1.0, std::nullopt, "", "", std::nullopt, std::nullopt}, Now{0, 0}, changed).dispatch_id;
    book.mark_sent(sent, Now{0, 0}, changed);
    book.tick(Now{4'999, 4'999}, changed);
    CHECK(book.find(sent)->state == DispatchState::sent);
    book.tick(Now{5'000, 5'000}, changed);
    CHECK(book.find(sent)->state == DispatchState::failed);
    CHECK_FALSE(book.on_ack(k_asset, sent, true, "", Now{6'000, 6'000}, changed));  // too late

    const auto other = Uuid::v5(k_namespace_dns, "test/other");
    const Uuid queued = book.create({other, 1.0, std::nullopt, "", "", std::nullopt, std::nullopt}, Now{0, 0}, changed).dispatch_id;
    book.tick(Now{29'999, 29'999}, changed);
    CHECK(book.find(queued)->state == DispatchState::queued);
    book.tick(Now{30'000, 30'000}, changed);
    CHECK(book.find(queued)->state == DispatchState::failed);
    CHECK(book.count_in(DispatchState::failed) == 2);
}

TEST_CASE("a newer dispatch supersedes the open one, EHOSTUNREACH sends it back to queued", "[hub][dispatch]") {
    DispatchBook book(900, 5);
    std::vector<Dispatch> changed;
    const Uuid first = book.create({k_asset, 1.0, std::nullopt, "", "", std::nullopt, std::nullopt}, Now{0, 0}, changed).dispatch_id;
    book.mark_sent(first, Now{1, 1}, changed);
    book.mark_queued(first, Now{2, 2}, changed);
    CHECK(book.find(first)->state == DispatchState::queued);
    const Uuid second = book.create({k_asset, -1.0, std::nullopt, "", "", std::nullopt, std::nullopt}, Now{3, 3}, changed).dispatch_id;
    CHECK(book.find(first)->state == DispatchState::superseded);
    CHECK(book.open_for(k_asset)->dispatch_id == second);
    CHECK_FALSE(book.on_ack(k_asset, first, true, "", Now{4, 4}, changed));
    // An ack from another asset's agent never counts.
    book.mark_sent(second, Now{5, 5}, changed);
    CHECK_FALSE(book.on_ack(Uuid::v7(), second, true, "", Now{6, 6}, changed));
    CHECK(book.on_ack(k_asset, second, false, "device busy", Now{7, 7}, changed));
    CHECK(book.find(second)->state == DispatchState::rejected);
    CHECK(book.find(second)->error == "device busy");
    const auto history = book.history(k_asset, std::nullopt, std::nullopt, std::nullopt, 10);
    REQUIRE(history.size() == 2);
    CHECK(history[0].dispatch_id == second);  // newest first
}

TEST_CASE("a scheduled dispatch starts at its time, supersedes the open one, and can be cancelled first",
          "[hub][dispatch]") {
    DispatchBook book(900, 5);
    std::vector<Dispatch> changed;
    const Uuid now_one = book.create({k_asset, 1.0, std::nullopt, "", "", std::nullopt, std::nullopt}, Now{0, 0},
                                     changed).dispatch_id;
    const Uuid later = book.create({k_asset, -1.0, 30.0, "evening", "ops", 5'000, std::nullopt}, Now{0, 0}, changed)
                           .dispatch_id;
    const Uuid never = book.create({k_asset, 0.5, std::nullopt, "", "", 8'000, std::nullopt}, Now{0, 0}, changed)
                           .dispatch_id;
    CHECK(book.find(later)->state == DispatchState::scheduled);
    CHECK(book.open_for(k_asset)->dispatch_id == now_one);  // scheduled ones do not supersede yet
    REQUIRE(book.cancel(never, "changed plan", Now{1'000, 1'000}, changed));
    CHECK(book.find(never)->state == DispatchState::cancelled);
    book.tick(Now{4'999, 4'999}, changed);
    CHECK(book.find(later)->state == DispatchState::scheduled);
    book.tick(Now{5'000, 5'000}, changed);
    CHECK(book.find(later)->state == DispatchState::queued);
    CHECK(book.find(now_one)->state == DispatchState::superseded);
    // Its duration counts from its start, not from its creation.
    auto sp = book.setpoint_for(*book.find(later), Now{20'000, 20'000});
    REQUIRE(sp);
    CHECK(sp->remaining_s == Approx(15.0));
    book.tick(Now{9'000, 9'000}, changed);
    CHECK(book.find(never)->state == DispatchState::cancelled);  // never started
    CHECK_FALSE(book.cancel(never, "again", Now{9'001, 9'001}, changed));
}

TEST_CASE("a parent summarises its children and cancelling it cancels them all", "[hub][dispatch]") {
    DispatchBook book(900, 5);
    std::vector<Dispatch> changed;
    const auto site = Uuid::v5(k_namespace_dns, "site");
    const auto a = Uuid::v5(k_namespace_dns, "a"), b = Uuid::v5(k_namespace_dns, "b");
    const Uuid parent =
        book.create_parent({site, 2.0, std::nullopt, "", "", std::nullopt, std::nullopt}, Now{0, 0}, changed)
            .dispatch_id;
    const Uuid ca = book.create({a, 1.2, std::nullopt, "", "", std::nullopt, parent}, Now{0, 0}, changed).dispatch_id;
    const Uuid cb = book.create({b, 0.8, std::nullopt, "", "", std::nullopt, parent}, Now{0, 0}, changed).dispatch_id;
    book.mark_sent(ca, Now{1, 1}, changed);
    book.mark_sent(cb, Now{1, 1}, changed);
    CHECK(book.find(parent)->state == DispatchState::sent);
    book.on_ack(a, ca, true, "", Now{2, 2}, changed);
    CHECK(book.find(parent)->state == DispatchState::sent);  // b still outstanding
    book.on_ack(b, cb, true, "", Now{3, 3}, changed);
    CHECK(book.find(parent)->state == DispatchState::applied);
    auto in_force = book.cancel(parent, "stop", Now{4, 4}, changed);
    REQUIRE(in_force);
    CHECK(in_force->size() == 2);
    CHECK(book.find(ca)->state == DispatchState::cancelled);
    CHECK(book.find(parent)->state == DispatchState::cancelled);
    CHECK(book.count_in(DispatchState::cancelled) == 2);  // parents are not counted
}

TEST_CASE("adopt takes back what was in force before a restart, with its timers on the new clock",
          "[hub][dispatch]") {
    // The previous hub run: wall clock around 1,000,000; the new one starts at wall 1,050,000, mono 0.
    const auto stored = [](double mw, DispatchState state, TimestampMs created, std::optional<TimestampMs> start_at,
                           std::optional<double> duration_s) {
        Dispatch d;
        d.dispatch_id = Uuid::v7(created);
        d.asset_id = k_asset;
        d.mw = mw;
        d.duration_s = duration_s;
        d.created_at = created;
        d.start_at = start_at;
        d.enter(DispatchState::queued, created);
        if (state != DispatchState::queued) d.enter(state, created + 10);
        return d;
    };
    DispatchBook book(900, 5);
    std::vector<Dispatch> changed;
    const Now now{1'050'000, 0};
    const auto older = stored(0.5, DispatchState::applied, 1'000'000, std::nullopt, std::nullopt);
    const auto newer = stored(1.0, DispatchState::sent, 1'010'000, std::nullopt, 100.0);
    auto later = stored(-1.0, DispatchState::queued, 1'020'000, 1'060'000, 30.0);
    later.state = DispatchState::scheduled;
    const auto ended = stored(2.0, DispatchState::expired, 1'000'000, std::nullopt, 1.0);

    CHECK(book.adopt(older, now, false, changed));
    CHECK(book.adopt(newer, now, false, changed));
    CHECK(book.adopt(later, now, false, changed));
    CHECK_FALSE(book.adopt(ended, now, false, changed));  // over: not taken back
    CHECK_FALSE(book.adopt(newer, now, false, changed));  // twice: ignored

    // Two open ones of one asset: the later wins, the older is superseded.
    CHECK(book.find(older.dispatch_id)->state == DispatchState::superseded);
    REQUIRE(states(changed) == std::vector{DispatchState::superseded});
    // Sent becomes queued again (delivered anew in the welcome), without a recorded transition.
    CHECK(book.open_for(k_asset)->dispatch_id == newer.dispatch_id);
    CHECK(book.find(newer.dispatch_id)->state == DispatchState::queued);
    // The duration counts from its creation on the old clock: 40 s of 100 are gone.
    auto sp = book.setpoint_for(*book.find(newer.dispatch_id), now);
    REQUIRE(sp);
    CHECK(sp->remaining_s == Approx(60.0));

    // The scheduled one keeps its start time: still scheduled 1 ms before, started at it.
    changed.clear();
    book.tick(Now{1'059'999, 9'999}, changed);
    CHECK(book.find(later.dispatch_id)->state == DispatchState::scheduled);
    book.tick(Now{1'060'000, 10'000}, changed);
    CHECK(book.find(later.dispatch_id)->state == DispatchState::queued);
    CHECK(book.find(newer.dispatch_id)->state == DispatchState::superseded);
}

TEST_CASE("sending a dispatch again restarts its ack timeout, and the timers of many open dispatches all fire",
          "[hub][dispatch]") {
    DispatchBook book(900, 5);
    std::vector<Dispatch> changed;
    const Uuid id = book.create({k_asset, 1.0, std::nullopt, "", "ops", std::nullopt, std::nullopt}, Now{0, 0}, changed)
                        .dispatch_id;
    book.mark_sent(id, Now{0, 0}, changed);
    book.mark_sent(id, Now{4'000, 4'000}, changed);  // again, in a welcome after a reconnect
    book.tick(Now{6'000, 6'000}, changed);
    CHECK(book.find(id)->state == DispatchState::sent);
    book.tick(Now{9'000, 9'000}, changed);
    CHECK(book.find(id)->state == DispatchState::failed);

    // 50 assets: applied ones without a duration stay, applied ones with one
    // expire at their end, sent ones fail at the ack timeout.
    std::vector<Uuid> forever, timed, unacked;
    for (int i = 0; i < 50; ++i) {
        const Uuid asset = Uuid::v5(k_namespace_dns, "test/asset-" + std::to_string(i));
        const std::optional<double> duration = i % 3 == 1 ? std::optional<double>(20.0) : std::nullopt;
        const Uuid d = book.create({asset, 1.0, duration, "", "ops", std::nullopt, std::nullopt}, Now{10'000, 10'000},
                                   changed)
                           .dispatch_id;
        book.mark_sent(d, Now{10'000, 10'000}, changed);
        if (i % 3 == 2) {
            unacked.push_back(d);
            continue;
        }
        CHECK(book.on_ack(asset, d, true, "", Now{10'001, 10'001}, changed));
        (duration ? timed : forever).push_back(d);
    }
    book.tick(Now{15'000, 15'000}, changed);
    for (const auto& d : unacked) CHECK(book.find(d)->state == DispatchState::failed);
    for (const auto& d : timed) CHECK(book.find(d)->state == DispatchState::applied);
    book.tick(Now{30'000, 30'000}, changed);
    for (const auto& d : timed) CHECK(book.find(d)->state == DispatchState::expired);
    for (const auto& d : forever) CHECK(book.find(d)->state == DispatchState::applied);
}

TEST_CASE("a histogram counts a value in the first bucket whose bound it does not exceed", "[unit]") {
    LoopTurnHistogram h;
    h.observe(0.0);       // first bucket (le 0.0001)
    h.observe(0.0001);    // on a bound: that bucket
    h.observe(0.000101);  // just over: the next one (le 0.00025)
    h.observe(0.3);       // le 1
    h.observe(7.0);       // over the last bound: +Inf
    CHECK(h.count == 5);
    CHECK(h.sum == Approx(7.300201));
    CHECK(h.counts[0] == 2);
    CHECK(h.counts[1] == 1);
    CHECK(h.counts[LoopTurnHistogram::k_buckets - 1] == 1);
    CHECK(h.counts[LoopTurnHistogram::k_buckets] == 1);
    std::uint64_t total = 0;
    for (const auto c : h.counts) total += c;
    CHECK(total == h.count);
}

TEST_CASE("a reject of an applied dispatch (given again in a welcome) is recorded, a re-ack changes nothing",
          "[hub][dispatch]") {
    DispatchBook book(900, 5);
    std::vector<Dispatch> changed;
    const Uuid id =
        book.create({k_asset, 1.8, 300.0, "", "", std::nullopt, std::nullopt}, Now{1'000, 0}, changed).dispatch_id;
    book.mark_sent(id, Now{1'010, 10}, changed);
    REQUIRE(book.on_ack(k_asset, id, true, "", Now{1'020, 20}, changed));
    changed.clear();
    CHECK(book.on_ack(k_asset, id, true, "", Now{2'000, 1'000}, changed));  // the agent re-acking after a welcome
    CHECK(changed.empty());
    CHECK(book.on_ack(k_asset, id, false, "1.8 MW is above max_mw 0.5 MW", Now{3'000, 2'000}, changed));
    CHECK(states(changed) == std::vector{DispatchState::rejected});
    CHECK(book.find(id)->error == "1.8 MW is above max_mw 0.5 MW");
    CHECK(book.open_for(k_asset) == nullptr);
}

TEST_CASE("a dispatch duration outside 0.1 s .. 366 days is refused, naming the bounds", "[hub][dispatch]") {
    CHECK(check_duration(std::nullopt));
    CHECK(check_duration(0.1));
    CHECK(check_duration(366.0 * 86'400.0));
    for (const double bad : {0.0004, 0.0, -1.0, 1e16, std::numeric_limits<double>::infinity(),
                             std::numeric_limits<double>::quiet_NaN()}) {
        INFO(bad);
        const auto r = check_duration(bad);
        REQUIRE_FALSE(r);
        CHECK(r.error().code == Errc::invalid_argument);
        CHECK(r.error().message.find("between 0.1 s and") != std::string::npos);
    }
}

TEST_CASE("an operator's reason and requested_by are bounded", "[hub][dispatch]") {
    CHECK(check_who(std::string(1'000, 'x'), std::string(200, 'y')));
    const auto reason = check_who(std::string(1'001, 'x'), "ann");
    REQUIRE_FALSE(reason);
    CHECK(reason.error().code == Errc::invalid_argument);
    CHECK(reason.error().message == "reason is 1001 bytes; at most 1000");
    const auto who = check_who("", std::string(201, 'y'));
    REQUIRE_FALSE(who);
    CHECK(who.error().message == "requested_by is 201 bytes; at most 200");
}
