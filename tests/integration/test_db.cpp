// der-hub --db against a real, throwaway PostgreSQL (tests/store/pg_server.hpp):
// rows of every kind stored, restore after a restart, zero telemetry lost
// across a database outage, retired assets keep their history.
#include "buckets.hpp"
#include "harness.hpp"

// pg_server.hpp declares its own der::test::wait_until (same signature as the
// harness's); this target compiles pg_server.cpp with it renamed.
#define wait_until der_pg_wait_until
#include "pg_server.hpp"
#undef wait_until

#include "der/store/pg_connection.hpp"
#include "der/store/reader.hpp"
#include "der/util/time.hpp"

#include <catch2/catch.hpp>
#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include <signal.h>

#include <cmath>
#include <map>
#include <regex>
#include <thread>

using namespace der::test;
using nlohmann::json;

namespace {

constexpr double k_interval_s = 0.5;

/// One value of an SQL query against `conninfo` ("" when no row).
std::string sql_value(const std::string& conninfo, const std::string& sql) {
    auto conn = der::store::Connection::open(conninfo);
    if (!conn) throw std::runtime_error(conn.error().message);
    auto v = conn->query_value(sql);
    if (!v) throw std::runtime_error(v.error().message + " in " + sql);
    return *v;
}

long long sql_count(const std::string& conninfo, const std::string& sql) {
    const auto text = sql_value(conninfo, sql);
    return text.empty() ? 0 : std::stoll(text);
}

std::string asset_id(int port, const std::string& asset) {
    return get_json(port, "/assets/" + asset)["id"].get<std::string>();
}

json post_dispatch(int port, const json& body) {
    auto r = http_post(port, "/dispatch", body.dump());
    REQUIRE(r);
    INFO(r->body);
    REQUIRE(r->status == 202);
    return json::parse(r->body);
}

std::string state_of(int port, const std::string& id) {
    auto r = http_get(port, "/dispatch/" + id);
    if (!r || r->status != 200) return "";
    return json::parse(r->body)["state"].get<std::string>();
}

/// Every (epoch, seq) of `asset` stored exactly once, contiguous from 1 in
/// each epoch; returns the number of rows.
long long require_exactly_once(const std::string& db, const std::string& asset) {
    INFO("asset " << asset);
    const auto where = fmt::format("asset_id = '{}'", asset);
    // One statement each: the writer may still be committing between two.
    const long long duplicates =
        sql_count(db, "SELECT count(*) - count(DISTINCT (asset_id, epoch, seq)) FROM telemetry WHERE " + where);
    CHECK(duplicates == 0);
    const long long rows = sql_count(db, "SELECT count(*) FROM telemetry WHERE " + where);
    // Per epoch: seq 1..max, each once.
    const long long broken = sql_count(
        db, "SELECT count(*) FROM (SELECT epoch, min(seq) AS lo, max(seq) AS hi, count(*) AS n "
            "FROM telemetry WHERE " +
                where + " GROUP BY epoch) e WHERE lo <> 1 OR hi - lo + 1 <> n");
    CHECK(broken == 0);
    return rows;
}

}  // namespace

TEST_CASE("with --db, rows of every kind are stored and history is read from PostgreSQL", "[integration][db]") {
    const std::string db = pg().create_database();
    TempDir dir;
    HubUnderTest hub(dir, fleet_yaml({{"site-a", "b1"}, {"site-b", "b2"}}, k_interval_s, 1.0), {"--db", db});
    const int port = hub.http_port();
    auto health = get_json(port, "/health");
    CHECK(health["history"] == "postgresql");
    const std::string b1 = asset_id(port, "site-a/b1");

    auto a1 = start_agent(dir, hub.agents_endpoint(), hub.config_path(), "site-a/b1");
    auto a2 = start_agent(dir, hub.agents_endpoint(), hub.config_path(), "site-b/b2");
    REQUIRE(wait_until([&] { return sql_count(db, "SELECT count(DISTINCT asset_id) FROM telemetry") == 2; }, 20s));
    REQUIRE(wait_until([&] { return sql_count(db, "SELECT count(*) FROM heartbeats") >= 2; }, 20s));

    const auto d = post_dispatch(port, {{"asset", "site-a/b1"}, {"mw", 0.5}, {"duration_s", 600}});
    const std::string did = d["dispatch_id"].get<std::string>();
    INFO(hub.log());
    REQUIRE(wait_until(
        [&] {
            return sql_value(db, fmt::format("SELECT state FROM dispatches WHERE dispatch_id = '{}'", did)) ==
                   "applied";
        },
        20s));
    CHECK(sql_count(db, fmt::format("SELECT count(*) FROM dispatches WHERE dispatch_id = '{}' AND queued_at IS NOT "
                                    "NULL AND sent_at IS NOT NULL AND applied_at IS NOT NULL",
                                    did)) == 1);
    CHECK(sql_count(db, "SELECT count(*) FROM agent_sessions WHERE disconnected_at IS NULL") == 2);
    CHECK(sql_count(db, "SELECT count(*) FROM sites") == 2);
    CHECK(sql_count(db, "SELECT count(*) FROM assets WHERE retired_at IS NULL") == 2);

    // REST history comes from the database: every row of b1 is there, with the same cursor text.
    REQUIRE(wait_until([&] { return sql_count(db, "SELECT count(*) FROM telemetry WHERE asset_id = '" + b1 + "'") >= 6; },
                       20s));
    auto page = get_json(port, "/telemetry/site-a/b1/history?limit=3");
    REQUIRE(page["count"] == 3);
    REQUIRE(page["next"].is_string());
    auto next = get_json(port, page["next"].get<std::string>());
    REQUIRE(next["count"].get<int>() >= 1);
    CHECK(next["rows"][0]["seq"].get<std::uint64_t>() == page["rows"][2]["seq"].get<std::uint64_t>() + 1);
    auto hb = get_json(port, "/heartbeat/site-a/b1/history");
    CHECK(hb["count"].get<int>() >= 1);
    auto dispatches = get_json(port, "/dispatch/history?asset=site-a/b1");
    REQUIRE(dispatches["count"] == 1);
    CHECK(dispatches["rows"][0]["dispatch_id"] == did);
    auto bad = http_get(port, "/telemetry/site-a/b1/history?cursor=nonsense");
    REQUIRE(bad);
    CHECK(bad->status == 400);

    auto metrics = http_get(port, "/metrics");
    REQUIRE(metrics);
    CHECK(metrics->body.find("der_hub_db_rows_committed_total") != std::string::npos);
    CHECK(metrics->body.find("der_hub_db_connected 1") != std::string::npos);
    // A new agent's records are known to be new: the writer COPYs them straight in.
    CHECK(metric_in(metrics->body, "der_hub_db_telemetry_direct_total") >= 1.0);
    CHECK(metric_in(metrics->body, "der_hub_db_direct_fallbacks_total") == 0.0);

    // Control `history` (der-history) reads PostgreSQL too, off the loop.
    const auto history = [&](std::vector<std::string> args) {
        std::vector<std::string> argv{DER_HISTORY_BIN, "--control", hub.control_endpoint()};
        argv.insert(argv.end(), args.begin(), args.end());
        return run_capture(argv, {}, 30s);
    };
    const long long stored_b1 = sql_count(db, "SELECT count(*) FROM telemetry WHERE asset_id = '" + b1 + "'");
    auto rows = history({"telemetry", "site-a/b1", "--since", "-1h"});
    INFO(rows.err);
    REQUIRE(rows.status == 0);
    CHECK(static_cast<long long>(lines_of(rows.out).size()) >= stored_b1);
    auto buckets = history({"telemetry", "site-a/b1", "--since", "-1h", "--every", "1s"});
    REQUIRE(buckets.status == 0);
    CHECK(!lines_of(buckets.out).empty());
    auto dispatch_rows = history({"dispatch", "site-a/b1"});
    REQUIRE(dispatch_rows.status == 0);
    CHECK(dispatch_rows.out.find(did) != std::string::npos);

    // Stopping: sessions are closed, the hub exits cleanly.
    a1->stop();
    a2->stop();
    CHECK(hub.stop() == 0);
    CHECK(sql_count(db, "SELECT count(*) FROM agent_sessions WHERE disconnected_at IS NULL") == 0);
}

TEST_CASE("with --db, a restarted hub restores SOC and the dispatch in force and seeds a fresh agent",
          "[integration][db]") {
    const std::string db = pg().create_database();
    TempDir dir;
    HubUnderTest hub(dir, fleet_yaml({{"site-a", "b1", 4.0, 2.0, -2.0, 50.0, 0.0}}, k_interval_s, 1.0),
                     {"--db", db});
    int port = hub.http_port();
    const std::string b1 = asset_id(port, "site-a/b1");
    std::string did;
    {
        auto agent = start_agent(dir, hub.agents_endpoint(), hub.config_path(), "site-a/b1");
        REQUIRE(wait_until(
            [&] {
                auto r = http_get(port, "/telemetry/site-a/b1");
                return r && r->status == 200;
            },
            20s));
        const auto d = post_dispatch(port, {{"asset", "site-a/b1"}, {"mw", 1.5}, {"duration_s", 3600}});
        did = d["dispatch_id"].get<std::string>();
        REQUIRE(wait_until([&] { return state_of(port, did) == "applied"; }, 20s));
        // Discharging at 1.5 MW: let the SOC move away from its initial value.
        REQUIRE(wait_until(
            [&] {
                return sql_count(db, "SELECT count(*) FROM telemetry WHERE asset_id = '" + b1 +
                                         "' AND setpoint_mw = 1.5") >= 4;
            },
            20s));
        agent->stop();
    }
    REQUIRE(hub.stop() == 0);
    const double last_soc = std::stod(sql_value(
        db, "SELECT soc_mwh FROM telemetry WHERE asset_id = '" + b1 + "' ORDER BY ts DESC, seq DESC LIMIT 1"));
    INFO("last stored soc " << last_soc);
    REQUIRE(std::abs(last_soc - 2.0) > 1e-6);  // moved from 50 % of 4 MWh

    hub.start();
    port = hub.http_port();
    INFO(hub.log());
    // The dispatch is back in the hub, waiting for its agent; the latest SOC is the stored one.
    CHECK(state_of(port, did) == "queued");
    const auto latest = get_json(port, "/telemetry/site-a/b1");
    CHECK(std::abs(latest["soc_mwh"].get<double>() - last_soc) < 1e-9);

    auto fresh = start_agent(dir, hub.agents_endpoint(), hub.config_path(), "site-a/b1");
    REQUIRE(wait_until([&] { return fresh->log().find("state restored from the hub") != std::string::npos; }, 20s));
    INFO(fresh->log());
    std::smatch m;
    const std::string log = fresh->log();
    REQUIRE(std::regex_search(log, m, std::regex(R"(state restored from the hub: soc ([0-9.]+) MWh)")));
    CHECK(std::abs(std::stod(m[1].str()) - last_soc) < 0.002);
    // The restored dispatch is delivered again and applied by the fresh agent.
    REQUIRE(wait_until([&] { return state_of(port, did) == "applied"; }, 20s));
    REQUIRE(wait_until(
        [&] {
            auto r = http_get(port, "/telemetry/site-a/b1");
            return r && r->status == 200 && json::parse(r->body)["dispatch_id"] == did &&
                   json::parse(r->body)["epoch"] != latest["epoch"];
        },
        20s));
    // Its first record continues from the stored SOC (within what 1.5 MW moves in a few seconds).
    // (The hub shows a record before its writer commits it: wait for the row.)
    const std::string first_sql =
        fmt::format("SELECT soc_mwh FROM telemetry WHERE asset_id = '{}' AND epoch <> '{}' ORDER BY ts, seq LIMIT 1",
                    b1, latest["epoch"].get<std::string>());
    REQUIRE(wait_until([&] { return !sql_value(db, first_sql).empty(); }, 20s));
    const double first_soc = std::stod(sql_value(db, first_sql));
    CHECK(std::abs(first_soc - last_soc) < 0.05);
    fresh->stop();
}

TEST_CASE("with --db, PostgreSQL stopped under load loses no telemetry", "[integration][db]") {
    const std::string db = pg().create_database();
    TempDir dir;
    std::vector<TestAsset> assets;
    // The issue's scale: 20 agents, PostgreSQL down for 20 s.
    constexpr int k_agents = 20;
    for (int i = 1; i <= k_agents; ++i) assets.push_back({"site-a", fmt::format("b{}", i)});
    HubUnderTest hub(dir, fleet_yaml(assets, k_interval_s, 1.0), {"--db", db});
    const int port = hub.http_port();
    std::vector<std::unique_ptr<Process>> agents;
    std::vector<std::string> ids;
    for (const auto& a : assets) {
        agents.push_back(start_agent(dir, hub.agents_endpoint(), hub.config_path(), "site-a/" + a.name));
        ids.push_back(asset_id(port, "site-a/" + a.name));
    }
    REQUIRE(wait_until([&] { return sql_count(db, "SELECT count(DISTINCT asset_id) FROM telemetry") == k_agents; },
                       30s));

    pg().stop();
    const auto outage_end = std::chrono::steady_clock::now() + 20s;
    // The hub notices: the writer is disconnected and its backlog grows.
    bool saw_backlog = false;
    while (std::chrono::steady_clock::now() < outage_end) {
        auto h = http_get(port, "/health");
        if (h && h->status == 200) {
            const auto j = json::parse(h->body);
            if (!j["db"]["connected"].get<bool>() && j["db"]["backlog_rows"].get<long long>() > 0) saw_backlog = true;
        }
        std::this_thread::sleep_for(200ms);
    }
    CHECK(saw_backlog);
    pg().start();

    INFO(hub.log());
    // The writer reconnects and empties its backlog.
    REQUIRE(wait_until(
        [&] {
            auto h = http_get(port, "/health");
            if (!h) return false;
            const auto j = json::parse(h->body);
            return j["db"]["connected"].get<bool>() && j["db"]["backlog_rows"].get<long long>() == 0;
        },
        60s));
    // Every record the hub took (up to each asset's latest) is committed.
    std::vector<std::uint64_t> latest_seq;
    for (std::size_t i = 0; i < assets.size(); ++i) {
        const auto t = get_json(port, "/telemetry/site-a/" + assets[i].name);
        latest_seq.push_back(t["seq"].get<std::uint64_t>());
    }
    for (auto& a : agents) a->stop();
    for (std::size_t i = 0; i < assets.size(); ++i) {
        const std::string where = fmt::format("asset_id = '{}'", ids[i]);
        REQUIRE(wait_until(
            [&] {
                return sql_count(db, "SELECT coalesce(max(seq), 0) FROM telemetry WHERE " + where) >=
                       static_cast<long long>(latest_seq[i]);
            },
            30s));
        // One epoch per agent run here; 20 s of outage at 2 records/s means well over 40 rows.
        const long long rows = require_exactly_once(db, ids[i]);
        CHECK(rows >= 40);
    }
    auto metrics = http_get(port, "/metrics");
    REQUIRE(metrics);
    CHECK(metrics->body.find("der_hub_db_dropped_total 0") != std::string::npos);
    CHECK(hub.stop() == 0);
}

TEST_CASE("with --db, an asset removed from the YAML is retired and its history stays queryable",
          "[integration][db]") {
    const std::string db = pg().create_database();
    TempDir dir;
    HubUnderTest hub(dir, fleet_yaml({{"site-a", "b1"}, {"site-a", "b2"}}, k_interval_s, 1.0), {"--db", db});
    const int port = hub.http_port();
    const std::string b2 = asset_id(port, "site-a/b2");
    auto agent = start_agent(dir, hub.agents_endpoint(), hub.config_path(), "site-a/b2");
    REQUIRE(wait_until(
        [&] { return sql_count(db, "SELECT count(*) FROM telemetry WHERE asset_id = '" + b2 + "'") >= 3; }, 20s));
    agent->stop();

    // The same fleet without b2 (same generated IDs for b1: fleet_yaml derives them from the names).
    dir.write("assets.yaml.new", fleet_yaml({{"site-a", "b1"}}, k_interval_s, 1.0));
    std::rename(dir.file("assets.yaml.new").c_str(), hub.config_path().c_str());
    hub.process().signal(SIGHUP);
    INFO(hub.log());
    REQUIRE(wait_until(
        [&] {
            return sql_count(db, "SELECT count(*) FROM assets WHERE asset_id = '" + b2 +
                                     "' AND retired_at IS NOT NULL") == 1;
        },
        20s));
    CHECK(sql_count(db, "SELECT count(*) FROM assets WHERE retired_at IS NULL") == 1);
    // Not in the hub's configuration any more (the REST snapshot follows within 100 ms).
    CHECK(wait_until(
        [&] {
            auto gone = http_get(port, "/telemetry/" + b2 + "/history");
            return gone && gone->status == 404;
        },
        5s));

    der::store::Reader reader(db);
    auto id = der::Uuid::parse(b2);
    REQUIRE(id);
    auto page = reader.telemetry({*id, std::nullopt, std::nullopt, 1000, std::nullopt});
    REQUIRE(page);
    CHECK(page->rows.size() >= 3);
    CHECK(hub.stop() == 0);
}

TEST_CASE("with --db, an unreachable database or a newer schema stops the hub at start with a clear error",
          "[integration][db]") {
    TempDir dir;
    dir.write("assets.yaml", fleet_yaml({{"site-a", "b1"}}, k_interval_s));
    const auto run_hub = [&](const std::string& conninfo) {
        return run_capture({hub_binary(), "--config", dir.file("assets.yaml"), "--db", conninfo, "--http", "off",
                            "--agents", fmt::format("tcp://127.0.0.1:{}", free_port()), "--control",
                            fmt::format("tcp://127.0.0.1:{}", free_port()), "--stream",
                            fmt::format("tcp://127.0.0.1:{}", free_port())},
                           {}, 30s);
    };
    const auto unreachable = run_hub(fmt::format("host=127.0.0.1 port={} user=der dbname=none", free_port()));
    INFO(unreachable.err);
    CHECK(unreachable.status == 69);
    CHECK(unreachable.err.find("database") != std::string::npos);

    const std::string db = pg().create_database();
    {
        auto conn = der::store::Connection::open(db);
        REQUIRE(conn);
    }
    // Migrate it once (a hub that starts and is stopped), then pretend a newer der wrote it.
    {
        HubUnderTest hub(dir, fleet_yaml({{"site-a", "b1"}}, k_interval_s), {"--db", db});
        CHECK(hub.stop() == 0);
    }
    sql_value(db, "INSERT INTO schema_migrations (version, name) VALUES (999, 'from the future') RETURNING version");
    const auto newer = run_hub(db);
    INFO(newer.err);
    CHECK(newer.status == 78);
    CHECK(newer.err.find("newer") != std::string::npos);
}

TEST_CASE("with --db, a scheduled dispatch survives a hub restart and starts on time", "[integration][db]") {
    const std::string db = pg().create_database();
    TempDir dir;
    HubUnderTest hub(dir, fleet_yaml({{"site-a", "b1", 4.0, 2.0, -2.0, 50.0, 0.0},
                                      {"site-a", "b2", 4.0, 2.0, -2.0, 50.0, 0.0}},
                                     k_interval_s, 1.0),
                     {"--db", db});
    int port = hub.http_port();
    // Far enough ahead to outlive the restart below.
    const auto start_at = der::now_ms() + 12'000;
    const auto held = post_dispatch(port, {{"asset", "site-a/b1"},
                                           {"mw", 0.6},
                                           {"start_at", der::format_rfc3339(start_at)},
                                           {"reason", "evening peak"},
                                           {"requested_by", "dana"}});
    const auto doomed = post_dispatch(port, {{"asset", "site-a/b2"}, {"mw", 0.4}, {"start_at", "+10s"}});
    REQUIRE(held["state"] == "scheduled");
    const std::string held_id = held["dispatch_id"].get<std::string>();
    const std::string doomed_id = doomed["dispatch_id"].get<std::string>();
    auto cancelled = http_delete(port, "/dispatch/" + doomed_id, R"({"reason":"not needed"})");
    REQUIRE(cancelled);
    REQUIRE(cancelled->status == 200);
    REQUIRE(wait_until([&] {
        return sql_value(db, fmt::format("SELECT state FROM dispatches WHERE dispatch_id = '{}'", held_id)) ==
               "scheduled";
    }, 10s));
    REQUIRE(wait_until([&] {
        return sql_value(db, fmt::format("SELECT state FROM dispatches WHERE dispatch_id = '{}'", doomed_id)) ==
               "cancelled";
    }, 10s));
    REQUIRE(hub.stop() == 0);

    hub.start();
    port = hub.http_port();
    INFO(hub.log());
    REQUIRE(der::now_ms() < start_at - 1000);  // the restart itself did not eat the lead time
    CHECK(state_of(port, held_id) == "scheduled");
    CHECK(state_of(port, doomed_id) == "cancelled");
    const auto listed = get_json(port, "/dispatch?state=scheduled");
    REQUIRE(listed["count"] == 1);
    CHECK(listed["rows"][0]["dispatch_id"] == held_id);
    CHECK(listed["rows"][0]["requested_by"] == "dana");
    CHECK(listed["rows"][0]["reason"] == "evening peak");

    auto b1 = start_agent(dir, hub.agents_endpoint(), hub.config_path(), "site-a/b1");
    auto b2 = start_agent(dir, hub.agents_endpoint(), hub.config_path(), "site-a/b2");
    const auto setpoint = [&](const char* asset) {
        auto r = http_get(port, std::string("/telemetry/") + asset);
        return r && r->status == 200 ? json::parse(r->body)["setpoint_mw"].get<double>() : -99.0;
    };
    REQUIRE(wait_until([&] { return setpoint("site-a/b1") == 0.0 && setpoint("site-a/b2") == 0.0; }, 10s));
    REQUIRE(wait_until([&] { return setpoint("site-a/b1") == 0.6; }, 20s));
    const auto started = der::now_ms();
    CHECK(started >= start_at - 100);
    CHECK(started <= start_at + 2000);
    REQUIRE(wait_until([&] { return state_of(port, held_id) == "applied"; }, 10s));
    CHECK(setpoint("site-a/b2") == 0.0);  // the cancelled one never starts
    b1->stop();
    b2->stop();
    CHECK(hub.stop() == 0);
}

TEST_CASE("with --db, der-history --every 60s equals aggregates of the raw rows", "[integration][db]") {
    const std::string db = pg().create_database();
    TempDir dir;
    HubUnderTest hub(dir, fleet_yaml({{"site-a", "b1"}}, k_interval_s, 1.0), {"--db", db});
    const int port = hub.http_port();
    const std::string b1 = asset_id(port, "site-a/b1");
    const std::string site = get_json(port, "/assets/site-a/b1")["site_id"].get<std::string>();

    // Ten minutes of history an hour ago, one record every 7 s with values that
    // vary inside each minute, stored straight into the hub's database.
    const der::TimestampMs t0 = (der::now_ms() - 3'600'000) / 60'000 * 60'000 + 13'000;
    std::string values;
    for (int i = 0; i < 86; ++i) {
        const double soc = 40.0 + 15.0 * std::sin(i * 0.37) + i * 0.05;
        const double mw = 1.8 * std::cos(i * 0.53);
        values += fmt::format("{}('{}','{}','0190f0c0-0000-7000-8000-000000000001',{},'{}',{},{},4,{},0,2,-2,'idle')",
                              values.empty() ? "" : ",", b1, site, i + 1, der::format_rfc3339(t0 + i * 7'000),
                              soc * 0.04, soc, mw);
    }
    {
        auto conn = der::store::Connection::open(db);
        REQUIRE(conn);
        auto inserted = conn->exec("INSERT INTO telemetry (asset_id, site_id, epoch, seq, ts, soc_mwh, soc_pct, "
                                   "capacity_mwh, current_mw, setpoint_mw, max_mw, min_mw, status) VALUES " +
                                   values);
        INFO((inserted ? "" : inserted.error().message));
        REQUIRE(inserted);
    }
    const auto since = der::format_rfc3339(t0 - 13'000);
    const auto until = der::format_rfc3339(t0 + 86 * 7'000);
    const auto history = [&](std::vector<std::string> args) {
        std::vector<std::string> argv{DER_HISTORY_BIN, "--control", hub.control_endpoint(), "telemetry",
                                      "site-a/b1", "--since", since, "--until", until};
        argv.insert(argv.end(), args.begin(), args.end());
        return run_capture(argv, {}, 30s);
    };
    auto raw = history({});
    INFO(raw.err);
    REQUIRE(raw.status == 0);
    const auto rows = lines_of(raw.out);
    REQUIRE(rows.size() == 86);

    std::vector<json> raw_rows;
    for (const auto& line : rows) raw_rows.push_back(json::parse(line));
    auto bucketed = history({"--every", "60s"});
    REQUIRE(bucketed.status == 0);
    std::vector<json> buckets;
    for (const auto& line : lines_of(bucketed.out)) buckets.push_back(json::parse(line));
    REQUIRE(buckets.size() >= 10);  // ten minutes of rows
    CHECK(check_buckets_match_raw(raw_rows, buckets, 60'000));
    CHECK(hub.stop() == 0);
}
