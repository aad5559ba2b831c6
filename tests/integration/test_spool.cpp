// der-agent --spool against der-hub --db (a throwaway PostgreSQL): records
// made while the hub is down survive a kill -9 of the agent and reach the
// database exactly once, under their original epoch and seq.
#include "harness.hpp"

#define wait_until der_pg_wait_until
#include "pg_server.hpp"
#undef wait_until

#include "der/store/pg_connection.hpp"

#include <fmt/core.h>
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <signal.h>

#include <regex>
#include <thread>

using namespace der::test;

namespace {

constexpr double k_interval_s = 0.2;

long long sql_count(const std::string& conninfo, const std::string& sql) {
    auto conn = der::store::Connection::open(conninfo);
    if (!conn) throw std::runtime_error(conn.error().message);
    auto v = conn->query_value(sql);
    if (!v) throw std::runtime_error(v.error().message + " in " + sql);
    return v->empty() ? 0 : std::stoll(*v);
}

}  // namespace

TEST_CASE("with --spool, records unacknowledged at a kill -9 of the agent reach the database exactly once",
          "[integration][db][spool]") {
    const std::string db = pg().create_database();
    TempDir dir;
    HubUnderTest hub(dir, fleet_yaml({{"site-a", "b1"}}, k_interval_s, 1.0), {"--db", db});
    const std::string spool = dir.file("spool");
    const std::vector<std::string> args{"--spool", spool};
    auto agent = start_agent(dir, hub.agents_endpoint(), hub.config_path(), "site-a/b1", args);
    REQUIRE(wait_until([&] { return sql_count(db, "SELECT count(*) FROM telemetry") >= 5; }, 20s));

    // The hub goes away: the agent keeps making records nobody acknowledges.
    hub.kill9();
    std::this_thread::sleep_for(2s);
    agent->signal(SIGKILL);
    REQUIRE(agent->wait_exit(5s).has_value());
    const std::string first_log = agent->log();
    INFO(first_log);

    // Restarted with its spool while the hub is still down.
    agent = start_agent(dir, hub.agents_endpoint(), hub.config_path(), "site-a/b1", args);
    std::smatch m;
    std::string log;
    const std::regex resumed(R"(resuming epoch ([0-9a-f-]+) after seq (\d+); (\d+) unacknowledged)");
    REQUIRE(wait_until(
        [&] {
            log = agent->log();
            return std::regex_search(log, m, resumed);
        },
        10s));
    const std::string epoch = m[1];
    const long long resumed_after = std::stoll(m[2]);
    const long long unacked = std::stoll(m[3]);
    INFO(log);
    CHECK(unacked >= 5);  // ~2 s at 0.2 s, less what was in the database already
    std::this_thread::sleep_for(1s);

    hub.start();
    // Everything the first run made, and more of the second, lands once.
    REQUIRE(wait_until(
        [&] {
            return sql_count(db, fmt::format("SELECT max(seq) FROM telemetry WHERE epoch = '{}'", epoch)) >=
                   resumed_after + 5;
        },
        20s));
    // Each check is one query: rows keep arriving between two.
    CHECK(sql_count(db, "SELECT count(DISTINCT epoch) FROM telemetry") == 1);
    CHECK(sql_count(db, "SELECT count(*) - count(DISTINCT (asset_id, epoch, seq)) FROM telemetry") == 0);
    CHECK(sql_count(db, "SELECT min(seq) FROM telemetry") == 1);
    CHECK(sql_count(db, "SELECT max(seq) - min(seq) + 1 - count(*) FROM telemetry") == 0);
    CHECK(agent->stop() == 0);
}
