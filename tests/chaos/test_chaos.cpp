// Chaos tests: one fleet of 100 der-agent processes (sim adapter, 200 ms
// telemetry, every agent with --spool) against one der-hub --db on a
// throwaway PostgreSQL, taken through five faults in a row, each held for
// DER_CHAOS_FAULT_S seconds (15 by default; tests/chaos/run.sh --long: 60):
//
//   (a) kill -9 the hub, restart it       (b) SIGSTOP the hub, SIGCONT
//   (c) cut the agents' network           (d) stop PostgreSQL, start it
//   (e) kill -9 ten agents, restart them with their spools
//
// After each: every agent online within 10 s of the fault's end (REST
// /agents), and in the database every asset has one epoch whose seqs run
// 1..max with no gap and no duplicate, reaching past the fault's end (so
// every record made during the fault is there).
//
// The network cut: the agents run in a network namespace (`ip netns exec`)
// joined to the hub's by a veth pair, and the hub's end of the veth goes
// down for the fault. Without root or iproute2 the stand-in is the harness's
// TcpProxy between all agents and the hub, cutting every connection and
// refusing new ones for the fault (logged as such).
//
// The test cases share the fleet and run in file order (Catch's default),
// one ctest test; each case states its own assertions.
#include "harness.hpp"

#define wait_until der_pg_wait_until
#include "pg_server.hpp"
#undef wait_until

#include "der/store/pg_connection.hpp"
#include "der/util/time.hpp"

#include <fmt/core.h>
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <thread>

using namespace der::test;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

constexpr double k_telemetry_s = 0.2;
constexpr auto k_online_deadline = 10s;

int env_int(const char* name, int fallback) {
    const char* v = std::getenv(name);
    if (v == nullptr || *v == '\0') return fallback;
    return std::atoi(v);
}

std::chrono::seconds fault_length() {
    return std::chrono::seconds(env_int("DER_CHAOS_FAULT_S", 15));
}
int fleet_size() {
    return env_int("DER_CHAOS_AGENTS", 100);
}

std::string find_ip() {
    for (const char* p : {"/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"})
        if (::access(p, X_OK) == 0) return p;
    return {};
}

/// Runs a command, quietly; true on exit 0.
bool run(const std::string& command) {
    return std::system((command + " >/dev/null 2>&1").c_str()) == 0;
}

long long rss_kb(pid_t pid) {
    std::ifstream in(fmt::format("/proc/{}/status", pid));
    std::string line;
    while (std::getline(in, line))
        if (line.rfind("VmRSS:", 0) == 0) return std::atoll(line.c_str() + 6);
    return 0;
}

std::int64_t wall_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

/// The agents' side of the network: a netns + veth when `ip netns` works.
class AgentNetwork {
public:
    AgentNetwork() {
        m_ip = find_ip();
        const std::string tag = std::to_string(::getpid() % 100000);
        m_ns = "der-chaos-" + tag;
        m_host_if = "dch" + tag + "h";
        m_ns_if = "dch" + tag + "a";
        if (m_ip.empty() || ::geteuid() != 0) return;
        const std::string ip = m_ip;
        const bool ok =
            run(ip + " netns add " + m_ns) &&
            run(fmt::format("{} link add {} type veth peer name {}", ip, m_host_if, m_ns_if)) &&
            run(fmt::format("{} link set {} netns {}", ip, m_ns_if, m_ns)) &&
            run(fmt::format("{} addr add {}/24 dev {}", ip, k_host_addr, m_host_if)) &&
            run(fmt::format("{} link set {} up", ip, m_host_if)) &&
            run(fmt::format("{} netns exec {} {} addr add {}/24 dev {}", ip, m_ns, ip, k_ns_addr, m_ns_if)) &&
            run(fmt::format("{} netns exec {} {} link set {} up", ip, m_ns, ip, m_ns_if)) &&
            run(fmt::format("{} netns exec {} {} link set lo up", ip, m_ns, ip));
        if (ok) {
            m_netns = true;
        } else {
            teardown();
        }
    }
    ~AgentNetwork() { teardown(); }
    AgentNetwork(const AgentNetwork&) = delete;
    AgentNetwork& operator=(const AgentNetwork&) = delete;

    [[nodiscard]] bool netns() const { return m_netns; }
    /// argv prefix that runs a program on the agents' side.
    [[nodiscard]] std::vector<std::string> prefix() const {
        if (!m_netns) return {};
        return {m_ip, "netns", "exec", m_ns};
    }
    void link(bool up) const {
        REQUIRE(run(fmt::format("{} link set {} {}", m_ip, m_host_if, up ? "up" : "down")));
    }
    static constexpr const char* k_host_addr = "10.231.0.1";
    static constexpr const char* k_ns_addr = "10.231.0.2";

private:
    void teardown() {
        if (m_ip.empty()) return;
        run(fmt::format("{} link del {}", m_ip, m_host_if));
        run(fmt::format("{} netns del {}", m_ip, m_ns));
    }
    std::string m_ip, m_ns, m_host_if, m_ns_if;
    bool m_netns = false;
};

long long sql_count(const std::string& conninfo, const std::string& sql) {
    auto conn = der::store::Connection::open(conninfo);
    if (!conn) throw std::runtime_error(conn.error().message);
    auto v = conn->query_value(sql);
    if (!v) throw std::runtime_error(v.error().message + " in " + sql);
    return v->empty() ? 0 : std::stoll(*v);
}

/// The one fleet every case runs on.
class Fleet {
public:
    Fleet()
        : m_db(pg().create_database()),
          m_agents_port(free_port()),
          m_control_port(free_port()),
          m_stream_port(free_port()),
          m_http_port(free_port()),
          m_size(fleet_size()) {
        std::vector<TestAsset> assets;
        for (int i = 0; i < m_size; ++i) {
            TestAsset a;
            a.site = fmt::format("site-{:02}", i / 10);
            a.name = fmt::format("b{:03}", i);
            assets.push_back(a);
            m_names.push_back(a.site + "/" + a.name);
        }
        m_dir.write("assets.yaml", fleet_yaml(assets, k_telemetry_s, 2.0));
        if (m_net.netns()) {
            m_agent_hub = fmt::format("tcp://{}:{}", AgentNetwork::k_host_addr, m_agents_port);
            std::cout << "chaos: agents in network namespace (veth " << AgentNetwork::k_host_addr << ")\n";
        } else {
            m_proxy = std::make_unique<TcpProxy>(m_agents_port);
            m_agent_hub = fmt::format("tcp://127.0.0.1:{}", m_proxy->port());
            std::cout << "chaos: no `ip netns` here (needs root and iproute2): the network cut is the "
                         "TcpProxy stand-in\n";
        }
        start_hub();
        for (int i = 0; i < m_size; ++i) m_agents.push_back(start_agent(i));
    }

    void start_hub() {
        m_hub = std::make_unique<Process>(
            std::vector<std::string>{
                hub_binary(), "--config", m_dir.file("assets.yaml"), "--agents",
                fmt::format("tcp://{}:{}", m_net.netns() ? "0.0.0.0" : "127.0.0.1", m_agents_port),
                "--control", fmt::format("tcp://127.0.0.1:{}", m_control_port), "--stream",
                fmt::format("tcp://127.0.0.1:{}", m_stream_port), "--http",
                fmt::format("127.0.0.1:{}", m_http_port), "--db", m_db, "--log-level", "info"},
            m_dir.file(fmt::format("hub-{}.log", ++m_hub_starts)));
        const bool up = wait_until(
            [&] {
                auto r = http_get(m_http_port, "/health");
                return r && r->status == 200;
            },
            20s);
        if (!up) throw std::runtime_error("der-hub did not become healthy");
    }

    std::unique_ptr<Process> start_agent(int i) {
        std::vector<std::string> argv = m_net.prefix();
        for (const std::string& a :
             {agent_binary(), std::string("--hub"), m_agent_hub, std::string("--config"),
              m_dir.file("assets.yaml"), std::string("--asset"), m_names[static_cast<std::size_t>(i)],
              std::string("--tick"), std::string("200ms"), std::string("--spool"), m_dir.file("spool"),
              std::string("--log-level"), std::string("info")})
            argv.push_back(a);
        return std::make_unique<Process>(argv,
                                         m_dir.file(fmt::format("agent-{:03}-{}.log", i, ++m_agent_starts)));
    }

    /// Agents the hub lists online and has heard from since `since_ms`
    /// (a hub just continued from SIGSTOP still shows its old view).
    int online(std::int64_t since_ms = 0) const {
        auto r = http_get(m_http_port, "/agents");
        if (!r || r->status != 200) return -1;
        const std::string since = der::format_rfc3339(since_ms);
        int n = 0;
        for (const auto& a : json::parse(r->body))
            n += a.value("online", false) && a.value("last_seen", std::string()) >= since ? 1 : 0;
        return n;
    }

    /// Waits for every agent online and heard from after `since_ms`; the
    /// seconds it took, or nil past `deadline`.
    std::optional<double> all_online_within(Ms deadline, std::int64_t since_ms = 0) const {
        const auto start = Clock::now();
        if (!wait_until([&] { return online(since_ms) == m_size; }, deadline)) return std::nullopt;
        return std::chrono::duration<double>(Clock::now() - start).count();
    }

    /// Assets with rows stamped after `since_ms` (agent wall clock).
    long long assets_with_rows_after(std::int64_t since_ms) const {
        return sql_count(m_db, fmt::format("SELECT count(*) FROM (SELECT asset_id FROM telemetry GROUP BY "
                                           "asset_id HAVING max(ts) > to_timestamp({} / 1000.0)) s",
                                           since_ms));
    }

    /// The exactly-once assertions, with the case's name in every message.
    void require_exactly_once(const std::string& name, std::int64_t fault_end_ms) const {
        INFO(name);
        // Records made after the fault reach the database: with seqs
        // contiguous per epoch, so did every record made during it.
        const bool caught_up =
            wait_until([&] { return assets_with_rows_after(fault_end_ms + 1000) == m_size; }, 20s);
        CHECK(caught_up);
        const long long rows = sql_count(m_db, "SELECT count(*) FROM telemetry");
        // One query: rows keep arriving between two.
        CHECK(sql_count(m_db, "SELECT count(*) - count(DISTINCT (asset_id, epoch, seq)) FROM telemetry") ==
              0);
        CHECK(sql_count(m_db, "SELECT count(DISTINCT asset_id) FROM telemetry") == m_size);
        // One epoch per asset: every agent, killed or not, kept its epoch.
        CHECK(sql_count(m_db,
                        "SELECT count(*) FROM (SELECT asset_id FROM telemetry GROUP BY asset_id "
                        "HAVING count(DISTINCT epoch) > 1) s") == 0);
        const long long broken = sql_count(
            m_db,
            "SELECT count(*) FROM (SELECT asset_id, epoch, min(seq) AS lo, max(seq) AS hi, count(*) AS n "
            "FROM telemetry GROUP BY asset_id, epoch) e WHERE lo <> 1 OR hi - lo + 1 <> n");
        CHECK(broken == 0);
        std::cout << fmt::format("chaos: {}: {} rows of {} assets checked for duplicates and gaps\n", name,
                                 rows, m_size);
    }

    void report_resources(const std::string& when) const {
        long long agents_kb = 0;
        for (const auto& a : m_agents) agents_kb += rss_kb(a->pid());
        double load = 0.0;
        std::ifstream("/proc/loadavg") >> load;
        std::cout << fmt::format(
            "chaos: {}: hub RSS {} MiB, {} agents RSS {} MiB in all ({} KiB each), load {}\n", when,
            rss_kb(m_hub->pid()) / 1024, m_agents.size(), agents_kb / 1024,
            m_agents.empty() ? 0 : agents_kb / static_cast<long long>(m_agents.size()), load);
    }

    void check_online(const std::string& name, std::int64_t fault_end_ms) const {
        INFO(name);
        const auto took = all_online_within(k_online_deadline, fault_end_ms);
        if (took)
            std::cout << fmt::format("chaos: {}: all {} agents online {:.1f} s after the fault\n", name,
                                     m_size, *took);
        else
            std::cout << fmt::format("chaos: {}: only {} of {} agents online 10 s after the fault\n", name,
                                     online(fault_end_ms), m_size);
        CHECK(took.has_value());
    }

    std::unique_ptr<Process>& hub() { return m_hub; }
    std::vector<std::unique_ptr<Process>>& agents() { return m_agents; }
    const AgentNetwork& network() const { return m_net; }
    TcpProxy* proxy() { return m_proxy.get(); }
    [[nodiscard]] int size() const { return m_size; }
    [[nodiscard]] const std::string& db() const { return m_db; }

private:
    TempDir m_dir;
    AgentNetwork m_net;
    std::string m_db;
    int m_agents_port, m_control_port, m_stream_port, m_http_port;
    int m_size;
    int m_hub_starts = 0;
    int m_agent_starts = 0;
    std::vector<std::string> m_names;
    std::string m_agent_hub;
    std::unique_ptr<TcpProxy> m_proxy;
    std::unique_ptr<Process> m_hub;
    std::vector<std::unique_ptr<Process>> m_agents;
};

Fleet& fleet() {
    static Fleet f;
    return f;
}

/// The fleet is up and storing before the first fault.
void warm_up() {
    static bool done = false;
    if (done) return;
    Fleet& f = fleet();
    REQUIRE(f.all_online_within(60s).has_value());
    REQUIRE(wait_until([&] { return f.assets_with_rows_after(0) == f.size(); }, 30s));
    std::this_thread::sleep_for(2s);
    f.report_resources("warm");
    done = true;
}

}  // namespace

TEST_CASE("chaos: a hub killed with kill -9 and restarted loses nothing", "[chaos]") {
    warm_up();
    Fleet& f = fleet();
    f.hub()->signal(SIGKILL);
    REQUIRE(f.hub()->wait_exit(5s).has_value());
    std::this_thread::sleep_for(fault_length());
    f.start_hub();
    const std::int64_t end = wall_ms();
    f.check_online("(a) hub kill -9", end);
    f.require_exactly_once("(a) hub kill -9", end);
}

TEST_CASE("chaos: a hub stopped with SIGSTOP and continued loses nothing", "[chaos]") {
    warm_up();
    Fleet& f = fleet();
    f.hub()->signal(SIGSTOP);
    std::this_thread::sleep_for(fault_length());
    f.hub()->signal(SIGCONT);
    const std::int64_t end = wall_ms();
    f.check_online("(b) hub SIGSTOP", end);
    f.require_exactly_once("(b) hub SIGSTOP", end);
}

TEST_CASE("chaos: the agents' network cut and restored loses nothing", "[chaos]") {
    warm_up();
    Fleet& f = fleet();
    if (f.network().netns()) {
        f.network().link(false);
        std::this_thread::sleep_for(fault_length());
        f.network().link(true);
    } else {
        f.proxy()->cut(true);
        std::this_thread::sleep_for(fault_length());
        f.proxy()->restore();
    }
    const std::int64_t end = wall_ms();
    f.check_online("(c) network cut", end);
    f.require_exactly_once("(c) network cut", end);
}

TEST_CASE("chaos: PostgreSQL stopped and started again loses nothing", "[chaos]") {
    warm_up();
    Fleet& f = fleet();
    pg().stop();
    std::this_thread::sleep_for(fault_length());
    pg().start();
    const std::int64_t end = wall_ms();
    f.check_online("(d) PostgreSQL stopped", end);
    f.require_exactly_once("(d) PostgreSQL stopped", end);
}

TEST_CASE("chaos: ten agents killed with kill -9 and restarted with their spools lose nothing", "[chaos]") {
    warm_up();
    Fleet& f = fleet();
    const int n = std::min(10, f.size());
    for (int i = 0; i < n; ++i) f.agents()[static_cast<std::size_t>(i)]->signal(SIGKILL);
    for (int i = 0; i < n; ++i) REQUIRE(f.agents()[static_cast<std::size_t>(i)]->wait_exit(5s).has_value());
    std::this_thread::sleep_for(fault_length());
    for (int i = 0; i < n; ++i) f.agents()[static_cast<std::size_t>(i)] = f.start_agent(i);
    const std::int64_t end = wall_ms();
    f.check_online("(e) ten agents kill -9", end);
    f.require_exactly_once("(e) ten agents kill -9", end);
    f.report_resources("end");
}
