#include "dispatch_book.hpp"

#include <catch2/catch.hpp>

using namespace der;
using der::hub::DispatchBook;
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
    const auto& d = book.create({k_asset, 1.5, 10.0, "peak", "ops"}, Now{1'000'000, 0}, changed);
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
    const Uuid id = book.create({k_asset, 1.0, 60.0, "", ""}, Now{0, 0}, changed).dispatch_id;
    auto sp = book.setpoint_for(*book.find(id), Now{45'000, 45'000});
    REQUIRE(sp);
    CHECK(sp->remaining_s == Approx(15.0));
    CHECK_FALSE(book.setpoint_for(*book.find(id), Now{60'000, 60'000}));
    book.tick(Now{60'000, 60'000}, changed);
    CHECK(book.find(id)->state == DispatchState::expired);
}

TEST_CASE("no ack within the timeout fails a sent dispatch; a queued one fails after the pending TTL",
          "[hub][dispatch]") {
    DispatchBook book(30, 5);
    std::vector<Dispatch> changed;
    const Uuid sent = book.create({k_asset, 1.0, std::nullopt, "", ""}, Now{0, 0}, changed).dispatch_id;
    book.mark_sent(sent, Now{0, 0}, changed);
    book.tick(Now{4'999, 4'999}, changed);
    CHECK(book.find(sent)->state == DispatchState::sent);
    book.tick(Now{5'000, 5'000}, changed);
    CHECK(book.find(sent)->state == DispatchState::failed);
    CHECK_FALSE(book.on_ack(k_asset, sent, true, "", Now{6'000, 6'000}, changed));  // too late

    const auto other = Uuid::v5(k_namespace_dns, "test/other");
    const Uuid queued = book.create({other, 1.0, std::nullopt, "", ""}, Now{0, 0}, changed).dispatch_id;
    book.tick(Now{29'999, 29'999}, changed);
    CHECK(book.find(queued)->state == DispatchState::queued);
    book.tick(Now{30'000, 30'000}, changed);
    CHECK(book.find(queued)->state == DispatchState::failed);
    CHECK(book.count_in(DispatchState::failed) == 2);
}

TEST_CASE("a newer dispatch supersedes the open one; EHOSTUNREACH sends it back to queued", "[hub][dispatch]") {
    DispatchBook book(900, 5);
    std::vector<Dispatch> changed;
    const Uuid first = book.create({k_asset, 1.0, std::nullopt, "", ""}, Now{0, 0}, changed).dispatch_id;
    book.mark_sent(first, Now{1, 1}, changed);
    book.mark_queued(first, Now{2, 2}, changed);
    CHECK(book.find(first)->state == DispatchState::queued);
    const Uuid second = book.create({k_asset, -1.0, std::nullopt, "", ""}, Now{3, 3}, changed).dispatch_id;
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
