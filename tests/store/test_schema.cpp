// Schema, migrations, fleet sync and partitions against a real PostgreSQL.
#include "fixtures.hpp"

#include "der/store/migrations.hpp"
#include "der/store/partitions.hpp"
#include "der/store/reader.hpp"
#include "der/store/store.hpp"

#include <catch2/catch.hpp>

#include <thread>

using namespace der;
using namespace der::test;

TEST_CASE("migrations apply once and a second open changes nothing", "[store][schema]") {
    const std::string conninfo = pg().create_database();
    auto first = store::Store::open(conninfo);
    REQUIRE(first.has_value());
    CHECK(first->migration().from_version == 0);
    CHECK(first->migration().to_version == store::latest_schema_version());

    auto second = store::Store::open(conninfo);
    REQUIRE(second.has_value());
    CHECK_FALSE(second->migration().changed());
    CHECK(second->migration().from_version == store::latest_schema_version());

    auto conn = connect(conninfo);
    CHECK(count(conn, "SELECT count(*) FROM schema_migrations") == store::latest_schema_version());
    for (const char* table : {"sites", "assets", "telemetry", "telemetry_default", "heartbeats", "dispatches",
                              "agent_sessions", "dead_letters", "schema_migrations"})
        CHECK(value(conn, fmt::format("SELECT to_regclass('{}') IS NOT NULL", table)) == "t");
    CHECK(value(conn, "SELECT applied_at <= now() FROM schema_migrations WHERE version = 1") == "t");
}

TEST_CASE("hubs that start together against one empty database migrate it once", "[store][schema]") {
    const std::string conninfo = pg().create_database();
    std::vector<std::optional<Result<store::Store>>> opened(4);
    std::vector<std::thread> threads;
    for (auto& slot : opened) threads.emplace_back([&slot, &conninfo] { slot.emplace(store::Store::open(conninfo)); });
    for (auto& t : threads) t.join();
    int migrated = 0;
    for (const auto& o : opened) {
        REQUIRE(o.has_value());
        INFO((o->has_value() ? std::string() : o->error().message));
        REQUIRE(o->has_value());
        if ((*o)->migration().changed()) ++migrated;
    }
    CHECK(migrated == 1);
    auto conn = connect(conninfo);
    CHECK(count(conn, "SELECT count(*) FROM schema_migrations") == store::latest_schema_version());
}

TEST_CASE("a database schema newer than the build is refused naming both versions", "[store][schema]") {
    const std::string conninfo = fresh_store();
    auto conn = connect(conninfo);
    REQUIRE(conn.exec("INSERT INTO schema_migrations (version, name) VALUES (99, 'from the future')"));
    auto store = store::Store::open(conninfo);
    REQUIRE_FALSE(store.has_value());
    CHECK(store.error().code == Errc::config);
    CHECK_THAT(store.error().message, Catch::Contains("version 99") &&
                                          Catch::Contains(fmt::format("version {}", store::latest_schema_version())));
}

TEST_CASE("an unreachable database is reported as unavailable", "[store][schema]") {
    auto store = store::Store::open(fmt::format("host=127.0.0.1 port={} user=der dbname=x connect_timeout=2", 1));
    REQUIRE_FALSE(store.has_value());
    CHECK(store.error().code == Errc::unavailable);
    CHECK_THAT(store.error().message, Catch::Contains("cannot connect to PostgreSQL"));
}

TEST_CASE("fleet sync upserts sites and assets then retires the absent and brings back the returning",
          "[store][fleet]") {
    const std::string conninfo = pg().create_database();
    auto store = store::Store::open(conninfo);
    REQUIRE(store.has_value());
    const Site full = make_site("north", {"a", "b", "c"});
    const Uuid b = full.assets[1].id;

    auto first = store->sync_fleet({{full}});
    REQUIRE(first.has_value());
    CHECK(first->assets_inserted == 3);
    CHECK(first->assets_retired == 0);

    // The same fleet again: nothing changes, not even updated_at.
    auto conn = connect(conninfo);
    const std::string updated = value(conn, "SELECT max(updated_at) FROM assets");
    auto again = store->sync_fleet({{full}});
    REQUIRE(again);
    CHECK(again->assets_inserted == 0);
    CHECK(value(conn, "SELECT max(updated_at) FROM assets") == updated);

    // b leaves the configuration; its history stays.
    REQUIRE(conn.exec(fmt::format(
        "INSERT INTO telemetry (asset_id, site_id, epoch, seq, ts, soc_mwh, soc_pct, capacity_mwh, current_mw, "
        "setpoint_mw, max_mw, min_mw, status) VALUES ('{}', '{}', '{}', 1, now(), 2, 50, 4, 0, 0, 2, -2, 'idle')",
        b.to_string(), full.id.to_string(), Uuid::v7().to_string())));
    Site without_b = full;
    without_b.assets.erase(without_b.assets.begin() + 1);
    without_b.assets[0].limits.capacity_mwh = 8.0;  // and a changes
    auto removed = store->sync_fleet({{without_b}});
    REQUIRE(removed);
    CHECK(removed->assets_retired == 1);
    CHECK(value(conn, fmt::format("SELECT retired_at IS NOT NULL FROM assets WHERE asset_id = '{}'", b.to_string())) ==
          "t");
    CHECK(count(conn, "SELECT count(*) FROM assets WHERE retired_at IS NULL") == 2);
    CHECK(value(conn, fmt::format("SELECT capacity_mwh FROM assets WHERE asset_id = '{}'",
                                  full.assets[0].id.to_string())) == "8");
    store::Reader reader(conninfo);
    auto history = reader.telemetry({.asset_id = b});
    REQUIRE(history);
    CHECK(history->rows.size() == 1);

    // b comes back.
    auto back = store->sync_fleet({{full}});
    REQUIRE(back);
    CHECK(back->assets_returned == 1);
    CHECK(back->assets_retired == 0);
    CHECK(count(conn, "SELECT count(*) FROM assets WHERE retired_at IS NULL") == 3);
}

TEST_CASE("fleet sync scoped to its sites leaves other hubs' assets alone", "[store][fleet]") {
    const std::string conninfo = pg().create_database();
    auto store = store::Store::open(conninfo);
    REQUIRE(store.has_value());
    REQUIRE(store->sync_fleet({{make_site("north", {"a", "b"}), make_site("south", {"c"})}}));
    auto synced = store->sync_fleet({{make_site("north", {"a"})}, store::RetireScope::listed_sites});
    REQUIRE(synced);
    CHECK(synced->assets_retired == 1);  // north/b, not south/c
    auto conn = connect(conninfo);
    CHECK(value(conn, "SELECT string_agg(name, ',' ORDER BY name) FROM assets WHERE retired_at IS NULL") == "a,c");
}

TEST_CASE("partitions exist ahead of time and rows outside them land in DEFAULT", "[store][partitions]") {
    const std::string conninfo = pg().create_database();
    const TimestampMs now = 1'763'882'715'123;  // 2025-11-23T07:25:15Z
    REQUIRE(store::Store::open(conninfo, now, 2).has_value());
    auto conn = connect(conninfo);
    for (const char* table : {"telemetry", "heartbeats"}) {
        for (int day = 0; day <= 2; ++day) {
            const std::string name = store::partition_name(table, now + day * k_day_ms);
            INFO(name);
            CHECK(value(conn, fmt::format("SELECT count(*) FROM pg_inherits WHERE inhrelid = to_regclass('{}') AND "
                                          "inhparent = '{}'::regclass",
                                          name, table)) == "1");
        }
    }
    CHECK(store::partition_name("telemetry", now) == "telemetry_20251123");
    CHECK(store::partition_name("telemetry", now + 3 * k_day_ms) == "telemetry_20251126");

    const std::string insert =
        "INSERT INTO telemetry (asset_id, site_id, epoch, seq, ts, soc_mwh, soc_pct, capacity_mwh, current_mw, "
        "setpoint_mw, max_mw, min_mw, status) VALUES (gen_random_uuid(), gen_random_uuid(), gen_random_uuid(), "
        "1, der_ts({}), 2, 50, 4, 0, 0, 2, -2, 'idle')";
    REQUIRE(conn.exec(fmt::format(fmt::runtime(insert), now)));
    REQUIRE(conn.exec(fmt::format(fmt::runtime(insert), now - 10 * k_day_ms)));
    REQUIRE(conn.exec(fmt::format(fmt::runtime(insert), now + 30 * k_day_ms)));
    CHECK(value(conn, "SELECT string_agg(tableoid::regclass::text, ',' ORDER BY ts) FROM telemetry") ==
          "telemetry_default,telemetry_20251123,telemetry_default");

    // The day of the old row gets its partition later: the row moves out of DEFAULT.
    auto made = store::ensure_partitions(conn, now - 10 * k_day_ms, 0);
    REQUIRE(made);
    CHECK(*made == 2);  // telemetry and heartbeats
    CHECK(value(conn, "SELECT string_agg(tableoid::regclass::text, ',' ORDER BY ts) FROM telemetry") ==
          "telemetry_20251113,telemetry_20251123,telemetry_default");
    auto again = store::ensure_partitions(conn, now, 2);
    REQUIRE(again);
    CHECK(*again == 0);
}
