// der-agent: the telemetry ring and its go-back-N window, and the session
// logic (AgentCore) driven by a FakeClock and a fake send function. No sockets.

#include "adapter.hpp"
#include "agent.hpp"
#include "asset_source.hpp"
#include "telemetry_ring.hpp"

#include "der/assets_config.hpp"
#include "der/util/log.hpp"

#include <catch2/catch.hpp>

#include <optional>
#include <set>
#include <variant>
#include <vector>

using der::FakeClock;
using der::Telemetry;
using der::Uuid;
using der::agent::AgentCore;
using der::agent::AgentSettings;
using der::agent::HubLoss;
using der::agent::SimAdapter;
using der::agent::TelemetryRing;
namespace wire = der::wire;

namespace {

Telemetry record(std::uint64_t seq) {
    Telemetry t;
    t.seq = seq;
    return t;
}

/// Sends every record the window allows; returns their seqs.
std::vector<std::uint64_t> send_all(TelemetryRing& ring, std::int64_t now) {
    std::vector<std::uint64_t> sent;
    while (const Telemetry* t = ring.next_to_send()) {
        sent.push_back(t->seq);
        ring.mark_sent(now);
    }
    return sent;
}

std::vector<std::uint64_t> seqs(std::uint64_t first, std::uint64_t last) {
    std::vector<std::uint64_t> out;
    for (std::uint64_t s = first; s <= last; ++s) out.push_back(s);
    return out;
}

}  // namespace

// --- TelemetryRing ----------------------------------------------------------

TEST_CASE("the ring drops the oldest record when full and counts it", "[agent]") {
    TelemetryRing ring(3);
    CHECK(ring.push(record(1)) == 0);
    CHECK(ring.push(record(2)) == 0);
    CHECK(ring.push(record(3)) == 0);
    CHECK(ring.push(record(4)) == 1);
    CHECK(ring.push(record(5)) == 1);
    CHECK(ring.size() == 3);
    CHECK(ring.dropped() == 2);
    CHECK(ring.oldest_seq() == 3u);
    CHECK(ring.newest_seq() == 5u);
}

TEST_CASE("the ring refuses a seq that does not increase", "[agent]") {
    TelemetryRing ring(4);
    ring.push(record(2));
    CHECK_THROWS_AS(ring.push(record(2)), std::invalid_argument);
    CHECK_THROWS_AS(TelemetryRing(0), std::invalid_argument);
}

TEST_CASE("a tack drops every record up to its seq and a stale one changes nothing", "[agent]") {
    TelemetryRing ring(10);
    for (std::uint64_t s = 1; s <= 6; ++s) ring.push(record(s));
    CHECK(send_all(ring, 0) == seqs(1, 6));
    CHECK(ring.acknowledge(4, 100));
    CHECK(ring.size() == 2);
    CHECK(ring.in_flight() == 2);
    CHECK(ring.acked_seq() == 4);
    CHECK_FALSE(ring.acknowledge(3, 200));
    CHECK_FALSE(ring.acknowledge(4, 200));
    CHECK(ring.size() == 2);
    CHECK(ring.acknowledge(6, 300));
    CHECK(ring.empty());
    CHECK(ring.in_flight() == 0);
}

TEST_CASE("at most max_in_flight records are in flight, in seq order", "[agent]") {
    TelemetryRing ring(1000, 256);
    for (std::uint64_t s = 1; s <= 300; ++s) ring.push(record(s));
    CHECK(send_all(ring, 0) == seqs(1, 256));
    CHECK(ring.in_flight() == 256);
    CHECK(ring.next_to_send() == nullptr);
    ring.acknowledge(10, 10);  // frees ten slots
    CHECK(send_all(ring, 10) == seqs(257, 266));
}

TEST_CASE("going back N resends from the last acknowledged seq + 1", "[agent]") {
    TelemetryRing ring(100);
    for (std::uint64_t s = 1; s <= 8; ++s) ring.push(record(s));
    send_all(ring, 0);
    ring.acknowledge(3, 50);
    ring.rewind(60);
    CHECK(ring.in_flight() == 0);
    CHECK(send_all(ring, 60) == seqs(4, 8));
}

TEST_CASE("a welcome with a nil ack_seq resends everything held", "[agent]") {
    TelemetryRing ring(100);
    for (std::uint64_t s = 1; s <= 5; ++s) ring.push(record(s));
    send_all(ring, 0);
    ring.acknowledge(2, 0);
    ring.restart(std::nullopt, 100);
    CHECK(ring.acked_seq() == 0);
    CHECK(send_all(ring, 100) == seqs(3, 5));
}

TEST_CASE("a welcome's ack_seq drops what the new hub holds and resends the rest", "[agent]") {
    TelemetryRing ring(100);
    for (std::uint64_t s = 1; s <= 10; ++s) ring.push(record(s));
    send_all(ring, 0);
    ring.restart(7, 100);
    CHECK(ring.acked_seq() == 7);
    CHECK(send_all(ring, 100) == seqs(8, 10));
}

TEST_CASE("the ring is stalled only after stall_ms in flight without a tack", "[agent]") {
    TelemetryRing ring(100);
    ring.push(record(1));
    CHECK_FALSE(ring.stalled(1'000'000, 8'000));  // nothing in flight
    CHECK_FALSE(ring.stall_deadline_ms(8'000).has_value());
    ring.mark_sent(10'000);  // the stall clock starts with the first send
    CHECK(ring.stall_deadline_ms(8'000) == 18'000);
    CHECK_FALSE(ring.stalled(17'999, 8'000));
    CHECK(ring.stalled(18'000, 8'000));
    ring.push(record(2));
    ring.mark_sent(17'000);  // more sends do not move the clock...
    CHECK(ring.stalled(18'000, 8'000));
    ring.acknowledge(1, 17'500);  // ...a tack does
    CHECK_FALSE(ring.stalled(25'000, 8'000));
    CHECK(ring.stalled(25'500, 8'000));
}

TEST_CASE("a record dropped while in flight shrinks the window", "[agent]") {
    TelemetryRing ring(3);
    for (std::uint64_t s = 1; s <= 3; ++s) ring.push(record(s));
    send_all(ring, 0);
    ring.push(record(4));  // drops 1, which was in flight
    CHECK(ring.in_flight() == 2);
    CHECK(send_all(ring, 0) == seqs(4, 4));
}

// --- AgentCore --------------------------------------------------------------

namespace {

der::BessLimits local_limits() {
    der::BessLimits l;
    l.capacity_mwh = 4.0;
    l.max_mw = 2.0;
    l.min_mw = -2.0;
    l.ramp_mw_per_s = 0.0;
    l.efficiency = 1.0;
    l.soc_min_pct = 0.0;
    l.soc_max_pct = 100.0;
    return l;
}

/// An agent for north/bess-1 on a fake clock, with its sent messages recorded.
struct Harness {
    FakeClock clock;
    AgentSettings settings;
    std::optional<SimAdapter> adapter;
    std::vector<wire::AgentMessage> sent;
    bool online = true;  ///< false: every send fails, as with no hub connection
    std::optional<AgentCore> core;

    explicit Harness(HubLoss loss = HubLoss::hold) {
        der::log::configure("test", der::log::Level::error, der::log::Format::text);
        settings.asset.id = Uuid::v5(der::config::k_id_namespace, "north/bess-1");
        settings.asset.site_id = Uuid::v5(der::config::k_id_namespace, "north");
        settings.asset.name = "bess-1";
        settings.asset.site_name = "north";
        settings.asset.limits = local_limits();
        settings.tick_s = 1.0;
        settings.telemetry_s = 4.0;
        settings.heartbeat_s = 30.0;
        settings.buffer_records = 100;
        settings.on_hub_loss = loss;
        settings.hub_timeout_s = 60.0;
        adapter.emplace(settings.asset.limits, 50.0);
        core.emplace(settings, *adapter, clock, [this](const wire::AgentMessage& m) {
            if (!online) return false;
            sent.push_back(m);
            return true;
        });
    }

    /// Advances the clock in steps of at most the next timer, running timers.
    void run_for_ms(std::int64_t ms) {
        const std::int64_t end = clock.mono_ms() + ms;
        core->run_timers();
        while (clock.mono_ms() < end) {
            const std::int64_t next =
                std::min(std::max(core->next_deadline_mono_ms(), clock.mono_ms() + 1), end);
            clock.advance_ms(next - clock.mono_ms());
            core->run_timers();
        }
    }

    wire::Welcome welcome(std::optional<std::uint64_t> ack_seq = std::nullopt) const {
        wire::Welcome w;
        w.asset = settings.asset;
        w.telemetry_s = 4.0;
        w.heartbeat_s = 30.0;
        w.ack_seq = ack_seq;
        return w;
    }

    template <class T>
    std::vector<T> sent_of() const {
        std::vector<T> out;
        for (const auto& m : sent)
            if (const T* p = std::get_if<T>(&m)) out.push_back(*p);
        return out;
    }

    std::vector<std::uint64_t> sent_seqs() const {
        std::vector<std::uint64_t> out;
        for (const auto& t : sent_of<Telemetry>()) out.push_back(t.seq);
        return out;
    }
};

der::Setpoint setpoint(double mw, std::optional<double> remaining_s) {
    der::Setpoint sp;
    sp.dispatch_id = Uuid::v7();
    sp.mw = mw;
    sp.remaining_s = remaining_s;
    sp.issued_at = 1;
    return sp;
}

}  // namespace

TEST_CASE("a fresh agent registers on connect with no state and its local limits", "[agent]") {
    Harness h;
    h.core->on_connected("tcp://hub");
    const auto regs = h.sent_of<wire::Register>();
    REQUIRE(regs.size() == 1);
    CHECK(regs[0].asset_id == h.settings.asset.id);
    CHECK(regs[0].proto == 1);
    CHECK(regs[0].epoch == h.core->epoch());
    CHECK(regs[0].instance_id == h.core->instance_id());
    CHECK(regs[0].epoch != regs[0].instance_id);
    CHECK(regs[0].last_seq == 0);
    CHECK_FALSE(regs[0].state.has_value());
    CHECK(regs[0].limits == local_limits());
}

TEST_CASE("a lost register is sent again, after about 2 s, 4 s, ..., until a welcome comes", "[agent]") {
    Harness h;
    h.core->on_connected();
    h.run_for_ms(7'600);
    CHECK(h.sent_of<wire::Register>().size() == 3);  // 0, 1.5-2.5 s, then 3-5 s later
    h.core->on_message(h.welcome());
    h.sent.clear();
    h.run_for_ms(10'000);
    CHECK(h.sent_of<wire::Register>().empty());
}

TEST_CASE("a reject makes the agent retry every 10 s and never give up", "[agent]") {
    Harness h;
    h.core->on_connected();
    h.core->on_message(wire::Reject{"asset_held", "held by another live instance", {}});
    h.sent.clear();
    h.run_for_ms(9'900);
    CHECK(h.sent_of<wire::Register>().empty());
    h.run_for_ms(200);
    CHECK(h.sent_of<wire::Register>().size() == 1);
    CHECK_FALSE(h.core->welcomed());
}

TEST_CASE("a reject's retry_after_s brings the next register sooner, never later than 10 s", "[agent]") {
    Harness h;
    h.core->on_connected();
    h.core->on_message(wire::Reject{"asset_held", "held by our previous instance", 1.6});
    h.sent.clear();
    h.run_for_ms(1'500);
    CHECK(h.sent_of<wire::Register>().empty());
    h.run_for_ms(200);
    CHECK(h.sent_of<wire::Register>().size() == 1);
    h.core->on_message(wire::Reject{"asset_held", "held", 3600.0});  // a hint beyond ours: ours
    h.sent.clear();
    h.run_for_ms(10'100);
    CHECK(h.sent_of<wire::Register>().size() == 1);
}

TEST_CASE("telemetry goes into the ring every interval while the hub is away", "[agent]") {
    Harness h;
    h.online = false;
    h.run_for_ms(40'000);
    CHECK(h.core->last_seq() == 10);
    CHECK(h.core->ring().size() == 10);
    CHECK(h.core->ring().oldest_seq() == 1u);
    CHECK(h.sent_seqs().empty());
}

TEST_CASE("after the welcome the buffered records go out in seq order from ack_seq + 1", "[agent]") {
    Harness h;
    h.online = false;
    h.run_for_ms(20'000);  // seq 1..5 buffered
    h.online = true;
    h.core->on_connected();
    h.core->on_message(h.welcome(2));
    // 3..5 resent at once, then the first record of the session (seq 6) at once.
    CHECK(h.sent_seqs() == seqs(3, 6));
    CHECK(h.core->ring().in_flight() == 4);
    h.core->on_message(wire::Tack{h.core->epoch(), 6});
    CHECK(h.core->ring().empty());
    h.run_for_ms(4'000);
    CHECK(h.sent_seqs() == seqs(3, 7));
}

TEST_CASE("records produced while disconnected reach the next hub", "[agent]") {
    Harness h;
    h.core->on_connected();
    h.core->on_message(h.welcome());
    h.run_for_ms(8'000);
    const std::uint64_t acked = h.core->last_seq();
    h.core->on_message(wire::Tack{h.core->epoch(), acked});
    h.core->on_disconnected();
    h.online = false;
    h.run_for_ms(40'000);  // ten records while the hub is down
    h.online = true;
    h.sent.clear();
    h.core->on_connected();
    const auto reg = h.sent_of<wire::Register>();
    REQUIRE(reg.size() == 1);
    CHECK(reg[0].last_seq == acked + 10);
    REQUIRE(reg[0].state.has_value());
    h.core->on_message(h.welcome(std::nullopt));  // a new hub without a database
    CHECK(h.sent_seqs() == seqs(acked + 1, acked + 10));
}

TEST_CASE("a tack for another epoch is ignored", "[agent]") {
    Harness h;
    h.core->on_connected();
    h.core->on_message(h.welcome());
    REQUIRE(h.core->ring().size() == 1);
    h.core->on_message(wire::Tack{Uuid::v7(), 1});
    CHECK(h.core->ring().size() == 1);
}

TEST_CASE("without a tack for 2 x telemetry_s the agent goes back N", "[agent]") {
    Harness h;
    h.core->on_connected();
    h.core->on_message(h.welcome());  // seq 1 out at once
    h.run_for_ms(7'900);              // seq 2 and 3 out, no tack
    CHECK(h.sent_seqs() == seqs(1, 2));
    h.run_for_ms(200);  // 8 s after seq 1: stalled, back to seq 1
    CHECK(h.sent_seqs() == std::vector<std::uint64_t>{1, 2, 3, 1, 2, 3});
}

TEST_CASE("a record that could not be sent stays in the ring and goes out later", "[agent]") {
    Harness h;
    h.core->on_connected();
    h.core->on_message(h.welcome());
    h.core->on_message(wire::Tack{h.core->epoch(), 1});
    h.online = false;  // high-water mark, say
    h.run_for_ms(4'000);
    CHECK(h.core->ring().size() == 1);
    CHECK(h.core->ring().in_flight() == 0);
    h.online = true;
    h.run_for_ms(200);  // the blocked send is retried within 100 ms
    CHECK(h.sent_seqs() == seqs(1, 2));
}

TEST_CASE("heartbeats go out every heartbeat_s while registered, with the ring depth", "[agent]") {
    Harness h;
    h.core->on_connected();
    h.core->on_message(h.welcome());
    h.run_for_ms(61'000);
    const auto hbs = h.sent_of<der::Heartbeat>();
    REQUIRE(hbs.size() == 2);
    CHECK(hbs[1].uptime_s == Approx(60.0));
    CHECK(hbs[1].buffered == h.core->ring().size());
    CHECK_FALSE(hbs[1].agent_version.empty());
}

TEST_CASE("a setpoint is applied and acked at once, not at the next tick", "[agent]") {
    Harness h;
    h.core->on_connected();
    h.core->on_message(h.welcome());
    h.sent.clear();
    const auto sp = setpoint(1.5, 60.0);
    h.core->on_message(sp);
    const auto acks = h.sent_of<wire::Ack>();
    REQUIRE(acks.size() == 1);
    CHECK(acks[0].dispatch_id == sp.dispatch_id);
    CHECK(acks[0].status == wire::AckStatus::applied);
    CHECK(acks[0].ts == h.clock.now_ms());
    CHECK(h.adapter->read().setpoint_mw == 1.5);
    CHECK(h.core->dispatch_id() == sp.dispatch_id);
    h.run_for_ms(4'000);
    const auto t = h.sent_of<Telemetry>().back();
    CHECK(t.dispatch_id == sp.dispatch_id);
    CHECK(t.setpoint_mw == 1.5);
}

TEST_CASE("a setpoint outside the limits is rejected with a reason and changes nothing", "[agent]") {
    Harness h;
    h.core->on_connected();
    h.core->on_message(h.welcome());
    h.sent.clear();
    h.core->on_message(setpoint(5.0, std::nullopt));
    const auto acks = h.sent_of<wire::Ack>();
    REQUIRE(acks.size() == 1);
    CHECK(acks[0].status == wire::AckStatus::rejected);
    CHECK_THAT(acks[0].reason, Catch::Contains("max_mw"));
    CHECK(h.adapter->read().setpoint_mw == 0.0);
    CHECK_FALSE(h.core->dispatch_id().has_value());
}

TEST_CASE("a dispatch reverts to 0 MW when remaining_s runs out, hub or no hub", "[agent]") {
    Harness h;
    h.core->on_connected();
    h.core->on_message(h.welcome());
    h.core->on_message(setpoint(-1.0, 20.0));
    h.core->on_disconnected();  // the hub goes away
    h.online = false;
    h.clock.set_wall_ms(0);  // a wall-clock step changes nothing
    h.run_for_ms(19'999);
    CHECK(h.adapter->read().setpoint_mw == -1.0);
    CHECK(h.core->dispatch_remaining_s() == Approx(0.001));
    h.run_for_ms(1);
    CHECK(h.adapter->read().setpoint_mw == 0.0);
    CHECK_FALSE(h.core->dispatch_id().has_value());
    h.run_for_ms(4'000);
    CHECK(h.adapter->read().current_mw == 0.0);
}

TEST_CASE("a dispatch without remaining_s holds until replaced", "[agent]") {
    Harness h;
    h.core->on_message(h.welcome());
    const auto first = setpoint(1.0, std::nullopt);
    h.core->on_message(first);
    h.run_for_ms(3'600'000);
    CHECK(h.core->dispatch_id() == first.dispatch_id);
    const auto second = setpoint(-0.5, 10.0);
    h.core->on_message(second);
    CHECK(h.core->dispatch_id() == second.dispatch_id);
    CHECK(h.adapter->read().setpoint_mw == -0.5);
}

TEST_CASE("the welcome's dispatch is applied when new and acked again when already in force", "[agent]") {
    Harness h;
    h.core->on_connected();
    auto w = h.welcome();
    const auto sp = setpoint(1.0, 30.0);
    w.dispatch = sp;
    h.core->on_message(w);
    CHECK(h.core->dispatch_id() == sp.dispatch_id);
    CHECK(h.sent_of<wire::Ack>().size() == 1);

    h.core->on_disconnected();
    h.run_for_ms(5'000);
    h.sent.clear();
    h.core->on_connected();
    const auto reg = h.sent_of<wire::Register>();
    REQUIRE(reg.size() == 1);
    REQUIRE(reg[0].state.has_value());
    CHECK(reg[0].state->dispatch_id == sp.dispatch_id);
    CHECK(reg[0].state->remaining_s == Approx(25.0));
    h.core->on_message(w);  // the same dispatch: acked, its timer untouched
    const auto acks = h.sent_of<wire::Ack>();
    REQUIRE(acks.size() == 1);
    CHECK(acks[0].status == wire::AckStatus::applied);
    CHECK(h.core->dispatch_remaining_s() == Approx(25.0));
}

TEST_CASE("a dispatch that already ended here is not applied again", "[agent]") {
    Harness h;
    h.core->on_message(h.welcome());
    const auto sp = setpoint(1.0, 10.0);
    h.core->on_message(sp);
    h.run_for_ms(10'000);
    REQUIRE_FALSE(h.core->dispatch_id().has_value());
    auto w = h.welcome();
    w.dispatch = sp;  // the hub's clock says it still runs
    h.core->on_message(w);
    CHECK_FALSE(h.core->dispatch_id().has_value());
    CHECK(h.adapter->read().setpoint_mw == 0.0);
}

TEST_CASE("hub loss with --on-hub-loss zero goes to 0 MW, hold keeps the setpoint", "[agent]") {
    for (const HubLoss loss : {HubLoss::zero, HubLoss::hold}) {
        Harness h(loss);
        h.core->on_connected();
        h.core->on_message(h.welcome());
        h.core->on_message(setpoint(2.0, std::nullopt));
        h.online = false;  // the hub stops answering, no disconnect seen
        h.run_for_ms(59'000);
        CHECK_FALSE(h.core->hub_lost());
        CHECK(h.adapter->read().setpoint_mw == 2.0);
        h.run_for_ms(1'000);
        CHECK(h.core->hub_lost());
        if (loss == HubLoss::zero) {
            CHECK(h.adapter->read().setpoint_mw == 0.0);
            CHECK_FALSE(h.core->dispatch_id().has_value());
        } else {
            CHECK(h.adapter->read().setpoint_mw == 2.0);
            CHECK(h.core->dispatch_id().has_value());
        }
        CHECK(h.core->last_seq() == 16);  // telemetry kept coming
        h.core->on_message(wire::Reregister{});
        CHECK_FALSE(h.core->hub_lost());
    }
}

TEST_CASE("the stricter of local and welcome limits is enforced", "[agent]") {
    Harness h;
    auto w = h.welcome();
    w.asset.limits.max_mw = 1.0;
    w.asset.limits.min_mw = -3.0;
    h.core->on_message(w);
    CHECK(h.core->limits_in_force().max_mw == 1.0);
    CHECK(h.core->limits_in_force().min_mw == -2.0);
    h.sent.clear();
    h.core->on_message(setpoint(1.5, std::nullopt));
    REQUIRE(h.sent_of<wire::Ack>().size() == 1);
    CHECK(h.sent_of<wire::Ack>()[0].status == wire::AckStatus::rejected);
    CHECK(h.core->make_register().limits == local_limits());  // register keeps the local ones
}

TEST_CASE("a seed restores the state only on a fresh start", "[agent]") {
    Harness h;
    auto w = h.welcome();
    w.seed = wire::AgentState{3.0, 0.0, 0.0, std::nullopt, std::nullopt};
    h.core->on_message(w);
    CHECK(h.adapter->read().soc_mwh == Approx(3.0));
    CHECK(h.core->has_state());
    w.seed = wire::AgentState{1.0, 0.0, 0.0, std::nullopt, std::nullopt};
    h.core->on_message(w);
    CHECK(h.adapter->read().soc_mwh == Approx(3.0));
}

TEST_CASE("a stalled loop loses no energy: the device steps by monotonic time", "[agent]") {
    Harness h;
    h.core->on_message(h.welcome());
    h.core->on_message(setpoint(2.0, std::nullopt));
    h.clock.advance_ms(1'800'000);  // 30 min with no timer run
    h.core->run_timers();
    CHECK(h.adapter->read().soc_mwh == Approx(2.0 - 1.0));  // 4 MWh at 50 %, 1 MWh out
}

TEST_CASE("reregister from the hub sends register again at once", "[agent]") {
    Harness h;
    h.core->on_connected();
    h.core->on_message(h.welcome());
    h.sent.clear();
    h.core->on_message(wire::Reregister{});
    CHECK_FALSE(h.core->welcomed());
    CHECK(h.sent_of<wire::Register>().size() == 1);
}

TEST_CASE("reregister while a register is on its way sends no second one", "[agent]") {
    Harness h;
    h.core->on_connected();
    REQUIRE(h.sent_of<wire::Register>().size() == 1);
    h.clock.advance_ms(300);
    h.core->on_message(wire::Reregister{});  // the hub saw a message sent before the register
    CHECK(h.sent_of<wire::Register>().size() == 1);
    h.core->on_message(h.welcome());
    h.core->on_message(wire::Reregister{});  // welcomed: the hub really lost the session
    CHECK(h.sent_of<wire::Register>().size() == 2);
}

TEST_CASE("an unanswered register is retried with a doubling, spread interval", "[agent]") {
    using der::agent::register_retry_ms;
    for (const std::uint64_t salt : {0ULL, 1ULL, 0xdeadbeefULL, ~0ULL}) {
        std::int64_t base = AgentCore::k_register_retry_ms;
        for (int n = 1; n <= 8; ++n) {
            const std::int64_t ms = register_retry_ms(n, salt);
            CHECK(ms >= base * 3 / 4);
            CHECK(ms < base * 5 / 4);
            base = std::min(base * 2, AgentCore::k_register_retry_max_ms);
        }
    }
    // The spread differs between instances, so a fleet does not retry in lockstep.
    std::set<std::int64_t> first;
    for (std::uint64_t salt = 0; salt < 100; ++salt) first.insert(register_retry_ms(1, salt * 7919));
    CHECK(first.size() > 50);

    Harness h;
    h.core->on_connected();
    REQUIRE(h.sent_of<wire::Register>().size() == 1);
    h.run_for_ms(1'400);
    CHECK(h.sent_of<wire::Register>().size() == 1);  // not before 0.75 x 2 s
    h.run_for_ms(1'200);
    CHECK(h.sent_of<wire::Register>().size() == 2);  // by 1.25 x 2 s
    h.run_for_ms(1'800);  // t = 4.4 s: the second went out by 2.5 s, the third waits >= 3 s
    CHECK(h.sent_of<wire::Register>().size() == 2);
    h.run_for_ms(3'200);  // t = 7.6 s: second by 2.5 s + third's wait < 5 s
    CHECK(h.sent_of<wire::Register>().size() == 3);
    // Over 120 s more: 4 s x 2, 8 s x 2 (6-10, 12-20 s), then 30 s (22.5-37.5 s) each.
    h.run_for_ms(120'000);
    const auto n = h.sent_of<wire::Register>().size();
    CHECK(n >= 3 + 4);
    CHECK(n <= 3 + 6);
    // A welcome resets it; so does a new connection.
    h.core->on_message(h.welcome());
    h.core->on_disconnected();
    h.core->on_connected();
    const auto before = h.sent_of<wire::Register>().size();
    h.run_for_ms(2'600);
    CHECK(h.sent_of<wire::Register>().size() == before + 1);
}

TEST_CASE("an agent --asset site/name without --config gets the IDs the YAML loader derives", "[agent]") {
    const auto source = der::agent::asset_from_flags("north/bess-1", local_limits(), 50.0);
    REQUIRE(source.has_value());
    const auto loaded = der::config::parse(
        "sites:\n  - name: north\n    assets:\n      - name: bess-1\n        capacity_mwh: 4\n"
        "        max_mw: 2\n        min_mw: -2\n",
        "inline.yaml");
    REQUIRE(loaded.has_value());
    const der::Asset* asset = loaded->fleet.find_asset("north/bess-1");
    REQUIRE(asset != nullptr);
    CHECK(source->asset.id == asset->id);
    CHECK(source->asset.site_id == asset->site_id);
}

TEST_CASE("an agent --asset that is neither a UUID nor site/name, and bad limits, are usage errors", "[agent]") {
    CHECK_FALSE(der::agent::asset_from_flags("bess-1", local_limits(), 50.0).has_value());
    CHECK_FALSE(der::agent::asset_from_flags("a/b/c", local_limits(), 50.0).has_value());
    auto limits = local_limits();
    limits.efficiency = 1.5;
    const auto bad = der::agent::asset_from_flags("north/bess-1", limits, 50.0);
    REQUIRE_FALSE(bad.has_value());
    CHECK(bad.error().code == der::Errc::invalid_argument);
    CHECK_THAT(bad.error().message, Catch::Contains("--efficiency"));
}

TEST_CASE("a release from the hub goes to 0 MW with no dispatch in force and no ack", "[agent]") {
    Harness h;
    h.core->on_message(h.welcome());
    h.core->on_message(setpoint(1.0, std::nullopt));
    REQUIRE(h.adapter->read().setpoint_mw == 1.0);
    const auto acks_before = h.sent_of<wire::Ack>().size();
    der::Setpoint release;  // nil dispatch_id
    release.mw = 0.0;
    h.core->on_message(release);
    CHECK(h.adapter->read().setpoint_mw == 0.0);
    CHECK_FALSE(h.core->dispatch_id().has_value());
    CHECK(h.sent_of<wire::Ack>().size() == acks_before);
}

TEST_CASE("a welcome without a dispatch ends the one the agent had: the hub is authoritative", "[agent]") {
    Harness h;
    h.core->on_connected();
    h.core->on_message(h.welcome());
    h.core->on_message(setpoint(-1.0, 600.0));
    h.core->on_disconnected();
    h.core->on_connected();
    h.core->on_message(h.welcome());  // cancelled while we were away
    CHECK(h.adapter->read().setpoint_mw == 0.0);
    CHECK_FALSE(h.core->dispatch_id().has_value());
}
