#include "memory_history.hpp"
#include "sessions.hpp"

#include <catch2/catch.hpp>

using namespace der;
using der::hub::Session;
using der::hub::SessionTable;
using der::hub::Session;
using der::hub::TelemetryOutcome;

namespace {
const Uuid k_asset = Uuid::v5(k_namespace_dns, "test/asset");

wire::Register make_register(const Uuid& instance, const Uuid& epoch) {
    wire::Register r;
    r.asset_id = k_asset;
    r.instance_id = instance;
    r.epoch = epoch;
    r.agent_version = "test";
    return r;
}

Telemetry record(const Uuid& epoch, std::uint64_t seq) {
    Telemetry t;
    t.asset_id = k_asset;
    t.epoch = epoch;
    t.seq = seq;
    t.ts = 1000 * static_cast<TimestampMs>(seq);
    return t;
}
}  // namespace

TEST_CASE("sessions refuse another instance while the holder is heard from and admit it after", "[hub]") {
    SessionTable table;
    const auto i1 = Uuid::v7(), i2 = Uuid::v7(), epoch = Uuid::v7();
    REQUIRE(table.on_register("route-1", make_register(i1, epoch), 0, 0, 1500).admitted);
    auto refused = table.on_register("route-2", make_register(i2, Uuid::v7()), 1000, 0, 1500);
    CHECK_FALSE(refused.admitted);
    CHECK(refused.reject.code == "asset_held");
    REQUIRE(refused.reject.retry_after_s);
    CHECK(*refused.reject.retry_after_s == Approx(0.6));  // silent 1000 of 1500 ms, + 0.1 s
    auto later = table.on_register("route-2", make_register(i2, Uuid::v7()), 1600, 0, 1500);
    CHECK(later.admitted);
    CHECK(later.replaced_other_instance);
    CHECK(table.by_route("route-1") == nullptr);
    REQUIRE(table.by_route("route-2") != nullptr);
    CHECK(table.by_route("route-2")->instance_id == i2);
}

TEST_CASE("sessions admit the same instance at once on a new routing id and keep its ack", "[hub]") {
    SessionTable table;
    const auto instance = Uuid::v7(), epoch = Uuid::v7();
    REQUIRE(table.on_register("r1", make_register(instance, epoch), 0, 0, 1500).admitted);
    auto* s = table.by_route("r1");
    REQUIRE(s != nullptr);
    for (std::uint64_t seq = 1; seq <= 5; ++seq) REQUIRE(table.on_telemetry(*s, record(epoch, seq)) == TelemetryOutcome::stored);
    auto again = table.on_register("r2", make_register(instance, epoch), 10, 0, 1500);
    REQUIRE(again.admitted);
    REQUIRE(again.ack_seq);
    CHECK(*again.ack_seq == 5);
    CHECK(table.by_route("r1") == nullptr);
    // A new epoch (agent restarted without spool): the hub holds nothing of it.
    auto fresh = table.on_register("r3", make_register(instance, Uuid::v7()), 20, 0, 1500);
    CHECK_FALSE(fresh.ack_seq.has_value());
}

TEST_CASE("telemetry is taken in order exactly once: duplicates and gaps are dropped", "[hub]") {
    SessionTable table;
    const auto epoch = Uuid::v7();
    table.on_register("r", make_register(Uuid::v7(), epoch), 0, 0, 1500);
    auto& s = *table.by_route("r");
    CHECK(table.on_telemetry(s, record(epoch, 7)) == TelemetryOutcome::stored);  // first seen starts the epoch
    CHECK(table.on_telemetry(s, record(epoch, 8)) == TelemetryOutcome::stored);
    CHECK(table.on_telemetry(s, record(epoch, 8)) == TelemetryOutcome::duplicate);
    CHECK(table.on_telemetry(s, record(epoch, 3)) == TelemetryOutcome::duplicate);
    CHECK(table.on_telemetry(s, record(epoch, 10)) == TelemetryOutcome::gap);
    CHECK(table.on_telemetry(s, record(epoch, 9)) == TelemetryOutcome::stored);
    CHECK(table.on_telemetry(s, record(Uuid::v7(), 11)) == TelemetryOutcome::wrong_epoch);
    auto other = record(epoch, 10);
    other.asset_id = Uuid::v7();
    CHECK(table.on_telemetry(s, other) == TelemetryOutcome::wrong_asset);
    CHECK(table.acked(s) == 9);
}

TEST_CASE("sessions go offline after the timeout and come back when heard from", "[hub]") {
    SessionTable table;
    table.on_register("r", make_register(Uuid::v7(), Uuid::v7()), 0, 0, 1500);
    CHECK(table.sweep_offline(1000, 1500).empty());
    CHECK(table.sweep_offline(1600, 1500).size() == 1);
    CHECK(table.online_count() == 0);
    CHECK(table.touch(*table.by_route("r"), 1700, 0));
    CHECK(table.online_count() == 1);
}

TEST_CASE("memory history is bounded in rows and age and pages with a cursor", "[hub]") {
    hub::MemoryHistory history(100, 3600.0);
    const auto epoch = Uuid::v7();
    for (std::uint64_t seq = 1; seq <= 150; ++seq) history.add(record(epoch, seq));
    CHECK(history.telemetry_rows() == 100);

    hub::HistoryQuery q;
    q.limit = 40;
    auto page1 = history.telemetry(k_asset, q);
    REQUIRE(page1);
    REQUIRE(page1->rows.size() == 40);
    CHECK(page1->rows.front().seq == 51);
    REQUIRE_FALSE(page1->next.empty());
    q.cursor = page1->next;
    auto page2 = history.telemetry(k_asset, q);
    REQUIRE(page2);
    CHECK(page2->rows.front().seq == 91);
    q.cursor = page2->next;
    auto page3 = history.telemetry(k_asset, q);
    REQUIRE(page3);
    CHECK(page3->rows.size() == 20);
    CHECK(page3->next.empty());

    hub::HistoryQuery window;
    window.since = 60'000;
    window.until = 70'000;
    CHECK(history.telemetry(k_asset, window)->rows.size() == 10);

    history.trim(120'000 + 3'600'000);  // keeps ts >= 120 s
    CHECK(history.telemetry_rows() == 31);
    q.cursor = "garbage";
    CHECK_FALSE(history.telemetry(k_asset, q));
}

TEST_CASE("memory history's age trim skips the scan only while no row can be that old", "[hub]") {
    hub::MemoryHistory history(1000, 10.0);  // rows live 10 s
    const auto epoch = Uuid::v7();
    for (std::uint64_t seq = 20; seq <= 30; ++seq) history.add(record(epoch, seq));  // ts 20..30 s
    history.trim(25'000);  // cutoff 15 s: nothing that old
    CHECK(history.telemetry_rows() == 11);
    history.trim(32'500);  // cutoff 22.5 s: 20, 21, 22 go
    CHECK(history.telemetry_rows() == 8);
    // A late row older than every row kept: the next trim must still see it.
    history.add(record(epoch, 5));  // ts 5 s, inserted in order at the front
    history.trim(32'600);
    CHECK(history.telemetry_rows() == 8);
    CHECK(history.telemetry(k_asset, {})->rows.front().seq == 23);
    history.trim(100'000);
    CHECK(history.telemetry_rows() == 0);
}

namespace {
std::size_t scan_online(const SessionTable& table) {
    std::size_t n = 0;
    for (const auto& [id, s] : table.all()) n += s.online ? 1 : 0;
    return n;
}
}  // namespace

TEST_CASE("sessions count those online as they register, go quiet, come back and end", "[hub]") {
    SessionTable table;
    const Uuid other = Uuid::v5(k_namespace_dns, "test/other");
    auto reg = make_register(Uuid::v7(), Uuid::v7());
    REQUIRE(table.on_register("route-1", reg, 0, 0, 1500).admitted);
    auto reg2 = reg;
    reg2.asset_id = other;
    reg2.instance_id = Uuid::v7();
    REQUIRE(table.on_register("route-2", reg2, 0, 0, 1500).admitted);
    CHECK(table.online_count() == 2);
    CHECK(table.sweep_offline(1000, 500).size() == 2);
    CHECK(table.online_count() == 0);
    CHECK(table.touch(*table.by_asset(k_asset), 1100, 0));
    CHECK(table.online_count() == 1);
    // the same peer registers for the other asset: its first session ends
    REQUIRE(table.on_register("route-1", reg2, 1200, 0, 0).admitted);
    CHECK(table.online_count() == scan_online(table));
    CHECK(table.online_count() == 1);
    table.drop_asset(other);
    CHECK(table.online_count() == 0);
    CHECK(table.online_count() == scan_online(table));
}

TEST_CASE("sessions journal each changed asset once until the journal is taken", "[hub]") {
    SessionTable table;
    const auto epoch = Uuid::v7();
    REQUIRE(table.on_register("route-1", make_register(Uuid::v7(), epoch), 0, 0, 1500).admitted);
    Session& s = *table.by_asset(k_asset);
    table.touch(s, 10, 10);
    table.touch(s, 20, 20);
    CHECK(table.take_changed() == std::vector<Uuid>{k_asset});
    CHECK(table.take_changed().empty());
    table.touch(s, 30, 30);  // taken, so journaled again
    CHECK(table.take_changed() == std::vector<Uuid>{k_asset});
    CHECK(table.sweep_offline(10'000, 500) == std::vector<Uuid>{k_asset});
    CHECK(table.take_changed() == std::vector<Uuid>{k_asset});
    table.drop_asset(k_asset);  // no session left: still journaled
    CHECK(table.take_changed() == std::vector<Uuid>{k_asset});
}

TEST_CASE("a routing id resolves to its current session through re-registers on the same and other routes", "[hub]") {
    SessionTable table;
    const auto instance = Uuid::v7(), epoch = Uuid::v7();
    REQUIRE(table.on_register("r", make_register(instance, epoch), 0, 0, 1500).admitted);
    REQUIRE(table.on_telemetry(*table.by_route("r"), record(epoch, 1)) == TelemetryOutcome::stored);
    // The same peer registers again (a reconnect storm repeats registers): one session, same epoch state.
    REQUIRE(table.on_register("r", make_register(instance, epoch), 10, 0, 1500).admitted);
    Session* s = table.by_route("r");
    REQUIRE(s != nullptr);
    CHECK(s == table.by_asset(k_asset));
    CHECK(table.on_telemetry(*s, record(epoch, 2)) == TelemetryOutcome::stored);
    CHECK(table.acked(*s) == std::optional<std::uint64_t>(2));
    // The peer now speaks for another asset: the first asset's session is gone.
    wire::Register other = make_register(Uuid::v7(), Uuid::v7());
    other.asset_id = Uuid::v5(k_namespace_dns, "test/other");
    REQUIRE(table.on_register("r", other, 20, 0, 1500).admitted);
    CHECK(table.by_asset(k_asset) == nullptr);
    REQUIRE(table.by_route("r") != nullptr);
    CHECK(table.by_route("r")->asset_id == other.asset_id);
    CHECK(table.all().size() == 1);
    table.drop_asset(other.asset_id);
    CHECK(table.by_route("r") == nullptr);
}
