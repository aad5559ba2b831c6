/// der_bench_loadgen: many simulated agents in one process, speaking wire
/// protocol v1 (docs/protocol.md) over one DEALER socket each: register,
/// telemetry with epoch/seq under a 256-record window and go-back-N,
/// heartbeats, acks to setpoints, reregister. It drives der-hub and the raw
/// ROUTER baseline (der_bench_router) alike, and can also
///   - measure telemetry end to end (send -> seen on the hub's stream XPUB),
///   - run dispatches over the control socket (`dispatch` with `wait`) or
///     REST (POST /dispatch -> `applied` on the stream) and time them,
///   - re-register every agent at once on SIGUSR1 (a reconnect storm after a
///     hub restart) and time the acks that follow.
/// Prints one JSON object on stdout at the end. Benchmarks only (tests/bench).

#include "bench_common.hpp"

#include "agent.hpp"  // der-agent's register retry schedule
#include "der/assets_config.hpp"
#include "der/stream.hpp"
#include "der/wire_codec.hpp"

#include <fmt/format.h>
#include <httplib.h>
#include <zmq.hpp>

#include <array>
#include <atomic>
#include <csignal>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <stdexcept>
#include <vector>

#include <sys/epoll.h>
#include <unistd.h>

namespace {

using namespace der;
using bench::now_ns;

constexpr const char* k_usage =
    "usage: der_bench_loadgen --assets FILE [options]\n"
    "  --hub EP             agent endpoint (tcp://127.0.0.1:7410)\n"
    "  --assets FILE        assets.yaml whose assets the agents play\n"
    "  --first K            first asset index to play (0)\n"
    "  --agents N           number of agents (all assets from --first)\n"
    "  --rate R             telemetry records/s in total; 0 = as fast as the window allows (0)\n"
    "  --window W           records in flight per agent (256)\n"
    "  --warmup S           seconds before measuring (2)\n"
    "  --duration S         seconds measured (10)\n"
    "  --heartbeat S        heartbeat interval (default: the welcome's)\n"
    "  --zmq-heartbeat MS   ZMQ_HEARTBEAT_IVL of every socket, 0 = off (5000, as der-agent)\n"
    "  --zmq-heartbeat-timeout MS  ZMQ_HEARTBEAT_TIMEOUT (3 x --zmq-heartbeat)\n"
    "  --zmq-heartbeat-ttl MS      ZMQ_HEARTBEAT_TTL sent in every ping, 0 = none (as der-agent)\n"
    "  --stream EP          measure end to end latency on the hub's stream XPUB\n"
    "  --control EP         run --dispatches dispatches over the control socket (wait)\n"
    "  --http HOST:PORT     run --dispatches dispatches over REST POST /dispatch (needs --stream)\n"
    "  --dispatches N       number of dispatches (1000)\n"
    "  --ping N             N raw round trips (ping -> pong, der_bench_router) before measuring\n"
    "  --welcome-timeout S  give up when not all agents are welcomed by then (60)\n";

std::atomic<bool> g_storm{false};
std::atomic<bool> g_stop{false};

struct Agent {
    zmq::socket_t sock;
    Telemetry t;  // the record template: seq and ts change
    Uuid instance;
    bool welcomed = false;
    std::uint64_t next_seq = 1;   // next record to make
    std::uint64_t acked = 0;      // highest acknowledged
    std::uint64_t send_from = 1;  // next record to send
    std::int64_t last_progress = 0;
    std::int64_t next_heartbeat = 0;
    std::int64_t last_register = 0;  // last register that went out
    std::int64_t next_register = 0;  // when to try again, not welcomed
    int registers_unanswered = 0;
    std::int64_t welcomed_at = 0;
    bool storm_pending = false;
    std::array<std::int64_t, 1024> sent_ns{};
};

struct Stats {
    std::uint64_t acked_in_window = 0;
    std::uint64_t sent = 0;
    std::uint64_t resent = 0;
    std::uint64_t tacks = 0;
    std::uint64_t welcomes = 0;
    std::uint64_t rejects = 0;
    std::uint64_t reregisters = 0;
    std::uint64_t setpoints = 0;
    std::uint64_t heartbeats = 0;
    std::vector<double> ack_ms;  // oldest record covered by each tack
    std::vector<double> e2e_ms;
    std::vector<double> dispatch_ms;
    std::uint64_t dispatch_not_applied = 0;
    double storm_all_welcomed_ms = -1;
    double storm_max_ack_ms = 0;
};

class LoadGen {
public:
    LoadGen(zmq::context_t& ctx, std::vector<const Asset*> assets, bench::Flags& f) : m_ctx(ctx) {
        m_hub = f.str("hub", "tcp://127.0.0.1:7410");
        m_rate = f.num("rate", 0);
        m_window = static_cast<std::uint64_t>(f.num("window", 256));
        if (m_window < 1 || m_window > 1000) f.fail("--window must be in [1, 1000]");
        m_heartbeat_override = f.num("heartbeat", 0);
        const int zhb = static_cast<int>(f.num("zmq-heartbeat", 5000));
        const int zhb_timeout = static_cast<int>(f.num("zmq-heartbeat-timeout", 3.0 * zhb));
        const int zhb_ttl = static_cast<int>(f.num("zmq-heartbeat-ttl", 0));
        const auto now = now_ns();
        m_agents.reserve(assets.size());
        for (const Asset* a : assets) {
            Agent& ag = m_agents.emplace_back();
            ag.sock = zmq::socket_t(m_ctx, zmq::socket_type::dealer);
            ag.sock.set(zmq::sockopt::linger, 0);
            ag.sock.set(zmq::sockopt::reconnect_ivl, 100);
            ag.sock.set(zmq::sockopt::reconnect_ivl_max, 2000);
            ag.sock.set(zmq::sockopt::sndhwm, 10'000);
            // As der-agent: nothing is queued for a connection that is not up,
            // so a register goes out on a live connection or not at all.
            ag.sock.set(zmq::sockopt::immediate, 1);
            if (zhb > 0) {
                ag.sock.set(zmq::sockopt::heartbeat_ivl, zhb);
                ag.sock.set(zmq::sockopt::heartbeat_timeout, zhb_timeout);
                ag.sock.set(zmq::sockopt::heartbeat_ttl, zhb_ttl);
            }
            ag.sock.connect(m_hub);
            // The same instance id in every run: a later run replaces the
            // sessions of an earlier one at once instead of being refused
            // (`asset_held`) for 3 x telemetry_s.
            ag.instance = Uuid::v5(a->id, "der_bench_loadgen");
            ag.t.asset_id = a->id;
            ag.t.site_id = a->site_id;
            ag.t.epoch = Uuid::v7();
            ag.t.capacity_mwh = a->limits.capacity_mwh;
            ag.t.max_mw = a->limits.max_mw;
            ag.t.min_mw = a->limits.min_mw;
            ag.t.soc_mwh = a->limits.capacity_mwh / 2;
            ag.t.soc_pct = 50.0;
            ag.last_progress = now;
            m_index.emplace(a->id, m_agents.size() - 1);
        }
        m_epoll = ::epoll_create1(EPOLL_CLOEXEC);
        if (m_epoll < 0) throw std::runtime_error("epoll_create1 failed");
        for (std::size_t i = 0; i < m_agents.size(); ++i) watch(m_agents[i].sock, i);
        m_is_touched.assign(m_agents.size(), false);
        for (auto& ag : m_agents) send_register(ag, now);
    }
    ~LoadGen() { ::close(m_epoll); }
    LoadGen(const LoadGen&) = delete;
    LoadGen& operator=(const LoadGen&) = delete;

    std::vector<Agent>& agents() { return m_agents; }
    Stats& stats() { return m_stats; }
    std::size_t welcomed() const { return m_welcomed; }
    double telemetry_s() const { return m_telemetry_s; }
    void set_measuring(bool on) { m_measuring = on; }
    std::size_t index_of(const Uuid& id) const {
        auto it = m_index.find(id);
        return it == m_index.end() ? SIZE_MAX : it->second;
    }

    /// Extra sockets polled with the agents (control DEALER, stream SUB).
    void add_extra(zmq::socket_t& s) {
        m_extra.push_back(&s);
        watch(s, m_agents.size() + m_extra.size() - 1);
    }

    /// One turn: make and send what is due, wait up to `max_wait_ms` for a
    /// socket to become readable, read every readable agent. Returns the
    /// indices of readable extra sockets.
    ///
    /// The wait is epoll over the sockets' ZMQ_FDs, not zmq_poll: zmq_poll
    /// asks every one of the 100+ sockets for ZMQ_EVENTS twice per call (a
    /// poll(2) and a getpid(2) each, ~500 syscalls per dispatch measured),
    /// which inflated the dispatch figure by more than the hub's own work. A
    /// ZMQ_FD only says "look at ZMQ_EVENTS"; it is not raised again for
    /// messages that arrived while a send or recv on the socket processed its
    /// commands, so sockets sent on since the last look (m_touched) and the
    /// extra sockets (main() sends and reads on them) are asked before waiting.
    std::vector<std::size_t> turn(int max_wait_ms) {
        const auto now = now_ns();
        if (g_storm.exchange(false)) start_storm(now);
        produce(now);
        if (now - m_last_housekeeping > 50'000'000) housekeeping(now);
        m_readable.clear();
        for (auto i : m_touched) {
            m_is_touched[i] = false;
            look(i);
        }
        m_touched.clear();
        for (std::size_t i = 0; i < m_extra.size(); ++i) look(m_agents.size() + i);
        int wait = max_wait_ms;
        if (!m_readable.empty()) {
            wait = 0;
        } else if (m_rate > 0) {
            const double due_in_ms = (static_cast<double>(m_made + 1) / m_rate * 1e9 -
                                      static_cast<double>(now - m_rate_start)) / 1e6;
            wait = std::clamp(static_cast<int>(due_in_ms), 0, max_wait_ms);
        } else if (m_room) {
            wait = 0;
        }
        std::array<epoll_event, 256> events;
        const int n = ::epoll_wait(m_epoll, events.data(), static_cast<int>(events.size()), wait);
        for (int k = 0; k < n; ++k) look(static_cast<std::size_t>(events[static_cast<std::size_t>(k)].data.u64));
        // n < 0 is EINTR: SIGUSR1 (storm) or SIGTERM, seen next turn
        std::vector<std::size_t> extra;
        const auto t = now_ns();
        for (auto i : m_readable) {
            m_looked[i] = false;
            if (i < m_agents.size()) read_agent(m_agents[i], t);
            else extra.push_back(i - m_agents.size());
        }
        return extra;
    }

    void start_rate_clock() {
        m_rate_start = now_ns();
        m_made = 0;
    }

private:
    void watch(zmq::socket_t& s, std::size_t index) {
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.u64 = index;
        const int fd = s.get(zmq::sockopt::fd);
        if (::epoll_ctl(m_epoll, EPOLL_CTL_ADD, fd, &ev) != 0) throw std::runtime_error("epoll_ctl failed");
        m_looked.push_back(false);
    }

    /// Socket `i` (agents first, then the extras) readable: noted once in m_readable.
    void look(std::size_t i) {
        if (m_looked[i]) return;
        zmq::socket_t& s = i < m_agents.size() ? m_agents[i].sock : *m_extra[i - m_agents.size()];
        if ((s.get(zmq::sockopt::events) & ZMQ_POLLIN) == 0) return;
        m_looked[i] = true;
        m_readable.push_back(i);
    }

    void touched(const Agent& ag) {
        const auto i = static_cast<std::size_t>(&ag - m_agents.data());
        if (m_is_touched[i]) return;
        m_is_touched[i] = true;
        m_touched.push_back(i);
    }

    bool send_frames(Agent& ag, std::string_view type, const std::string& body) {
        touched(ag);
        if (!ag.sock.send(zmq::buffer(type), zmq::send_flags::sndmore | zmq::send_flags::dontwait)) return false;
        return ag.sock.send(zmq::buffer(body), zmq::send_flags::dontwait).has_value();
    }

    void send_register(Agent& ag, std::int64_t now) {
        wire::Register r;
        r.asset_id = ag.t.asset_id;
        r.agent_version = "bench";
        r.instance_id = ag.instance;
        r.epoch = ag.t.epoch;
        r.last_seq = ag.next_seq - 1;
        m_buf.clear();
        wire::encode_body(wire::AgentMessage{r}, m_buf);
        // der-agent's schedule (agent::register_retry_ms): unanswered, again
        // after ~2, 4, 8, 16, 30 s, spread by the instance; unsent (no
        // connection yet: der-agent waits for its monitor's handshake event,
        // this polls), again after 100 ms.
        if (send_frames(ag, "register", m_buf)) {
            ++ag.registers_unanswered;
            ag.last_register = now;
            ag.next_register =
                now + agent::register_retry_ms(ag.registers_unanswered, UuidHash{}(ag.instance)) * 1'000'000;
        } else {
            ag.next_register = now + agent::AgentCore::k_register_fast_retry_ms * 1'000'000;
        }
    }

    /// Sends records [send_from, next_seq) while the window has room.
    bool pump(Agent& ag, std::int64_t now) {
        if (ag.send_from < ag.next_seq) touched(ag);
        while (ag.send_from < ag.next_seq && ag.send_from - 1 - ag.acked < m_window) {
            ag.t.seq = ag.send_from;
            ag.t.ts = now_ms();
            m_buf.clear();
            wire::encode_body(wire::AgentMessage{ag.t}, m_buf);
            if (!ag.sock.send(zmq::buffer(std::string_view("telemetry")),
                              zmq::send_flags::sndmore | zmq::send_flags::dontwait))
                return false;
            (void)ag.sock.send(zmq::buffer(m_buf), zmq::send_flags::dontwait);
            ag.sent_ns[ag.send_from % ag.sent_ns.size()] = now;
            ++ag.send_from;
            ++m_stats.sent;
        }
        return ag.send_from - 1 - ag.acked < m_window;
    }

    void produce(std::int64_t now) {
        if (m_rate > 0) {
            const auto due = static_cast<std::uint64_t>(static_cast<double>(now - m_rate_start) / 1e9 * m_rate);
            std::size_t skipped = 0;
            while (m_made < due && skipped < m_agents.size()) {
                Agent& ag = m_agents[m_rr++ % m_agents.size()];
                if (!ag.welcomed) {
                    ++skipped;
                    continue;
                }
                skipped = 0;
                ++ag.next_seq;
                ++m_made;
                pump(ag, now);
            }
            if (m_made < due) m_made = due;  // nobody welcomed: do not build a backlog
        } else {
            m_room = false;
            for (auto& ag : m_agents) {
                if (!ag.welcomed) continue;
                const auto in_flight = ag.next_seq - 1 - ag.acked;
                if (in_flight < m_window) ag.next_seq += m_window - in_flight;
                if (pump(ag, now)) m_room = true;
            }
        }
    }

    void housekeeping(std::int64_t now) {
        m_last_housekeeping = now;
        const auto gbn = static_cast<std::int64_t>(2 * m_telemetry_s * 1e9);
        const auto hb = static_cast<std::int64_t>((m_heartbeat_override > 0 ? m_heartbeat_override : m_heartbeat_s) * 1e9);
        for (auto& ag : m_agents) {
            if (!ag.welcomed) {
                if (now >= ag.next_register) send_register(ag, now);
                continue;
            }
            if (ag.send_from - 1 > ag.acked && now - ag.last_progress > gbn) {  // go-back-N
                m_stats.resent += ag.send_from - 1 - ag.acked;
                ag.send_from = ag.acked + 1;
                ag.last_progress = now;
                pump(ag, now);
            }
            if (now >= ag.next_heartbeat) {
                Heartbeat h;
                h.asset_id = ag.t.asset_id;
                h.ts = now_ms();
                h.uptime_s = 1;
                h.buffered = ag.next_seq - 1 - ag.acked;
                h.agent_version = "bench";
                m_buf.clear();
                wire::encode_body(wire::AgentMessage{h}, m_buf);
                send_frames(ag, "heartbeat", m_buf);
                ++m_stats.heartbeats;
                ag.next_heartbeat = now + hb;
            }
        }
    }

    void start_storm(std::int64_t now) {
        m_storm_at = now;
        m_storm_pending = m_agents.size();
        m_storm_measuring = true;
        for (auto& ag : m_agents) {
            if (ag.welcomed) --m_welcomed;
            ag.welcomed = false;
            ag.storm_pending = true;
            ag.registers_unanswered = 0;  // a new connection
            send_register(ag, now);
        }
    }

    void send_ack(Agent& ag, const Uuid& dispatch_id) {
        wire::Ack a;
        a.dispatch_id = dispatch_id;
        a.status = wire::AckStatus::applied;
        a.ts = now_ms();
        m_buf.clear();
        wire::encode_body(wire::AgentMessage{a}, m_buf);
        send_frames(ag, "ack", m_buf);
    }

    void read_agent(Agent& ag, std::int64_t now) {
        for (;;) {
            std::array<zmq::message_t, 2> parts;
            std::size_t n = 0;
            bool more = true;
            while (more) {
                zmq::message_t part;
                if (!ag.sock.recv(part, n == 0 ? zmq::recv_flags::dontwait : zmq::recv_flags::none)) {
                    if (n == 0) return;
                    break;
                }
                more = part.more();
                if (n < parts.size()) parts[n] = std::move(part);
                ++n;
            }
            if (n != 2) continue;
            auto msg = wire::decode_agent(parts[0].to_string_view(), parts[1].to_string_view());
            if (!msg) continue;
            if (auto* tk = std::get_if<wire::Tack>(&*msg)) {
                on_tack(ag, *tk, now);
            } else if (auto* w = std::get_if<wire::Welcome>(&*msg)) {
                on_welcome(ag, *w, now);
            } else if (auto* sp = std::get_if<Setpoint>(&*msg)) {
                ++m_stats.setpoints;
                ag.t.setpoint_mw = sp->mw;
                ag.t.dispatch_id = sp->dispatch_id;
                send_ack(ag, sp->dispatch_id);
            } else if (std::holds_alternative<wire::Reregister>(*msg)) {
                ++m_stats.reregisters;
                // A register already on its way answers it (as der-agent, which
                // registers once per connection): the hub saw a record sent
                // before that register. Otherwise every storm would count each
                // agent's register twice (the 2 s retry covers a lost one).
                if (!ag.welcomed && ag.registers_unanswered > 0 &&
                    now - ag.last_register < agent::AgentCore::k_register_retry_ms * 1'000'000)
                    continue;
                if (ag.welcomed) --m_welcomed;
                ag.welcomed = false;
                send_register(ag, now);
            } else if (std::holds_alternative<wire::Reject>(*msg)) {
                ++m_stats.rejects;
                if (ag.welcomed) --m_welcomed;
                ag.welcomed = false;
                ag.registers_unanswered = 0;
                ag.next_register = now + agent::AgentCore::k_register_after_reject_ms * 1'000'000;
            }
        }
    }

    void on_welcome(Agent& ag, const wire::Welcome& w, std::int64_t now) {
        ++m_stats.welcomes;
        m_telemetry_s = w.telemetry_s;
        m_heartbeat_s = w.heartbeat_s;
        if (!ag.welcomed) ++m_welcomed;
        ag.welcomed = true;
        ag.registers_unanswered = 0;
        ag.welcomed_at = now;
        ag.last_progress = now;
        if (w.ack_seq && *w.ack_seq > ag.acked && *w.ack_seq < ag.next_seq) ag.acked = *w.ack_seq;
        ag.send_from = ag.acked + 1;
        if (ag.next_heartbeat == 0) ag.next_heartbeat = now;
        if (w.dispatch) send_ack(ag, w.dispatch->dispatch_id);
        if (ag.storm_pending && m_storm_pending > 0 && --m_storm_pending == 0)
            m_stats.storm_all_welcomed_ms = static_cast<double>(now - m_storm_at) / 1e6;
        ag.storm_pending = false;
        pump(ag, now);
    }

    void on_tack(Agent& ag, const wire::Tack& tk, std::int64_t now) {
        ++m_stats.tacks;
        if (tk.epoch != ag.t.epoch || tk.seq <= ag.acked || tk.seq >= ag.send_from) return;
        const auto oldest = ag.sent_ns[(ag.acked + 1) % ag.sent_ns.size()];
        const double ms = static_cast<double>(now - oldest) / 1e6;
        if (m_measuring) {
            m_stats.acked_in_window += tk.seq - ag.acked;
            m_stats.ack_ms.push_back(ms);
        }
        if (m_storm_measuring && oldest >= ag.welcomed_at) m_stats.storm_max_ack_ms = std::max(m_stats.storm_max_ack_ms, ms);
        ag.acked = tk.seq;
        ag.last_progress = now;
        pump(ag, now);
    }

    static TimestampMs now_ms() {
        return std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::system_clock::now().time_since_epoch())
            .count();
    }

    zmq::context_t& m_ctx;
    std::string m_hub;
    double m_rate = 0;
    std::uint64_t m_window = 256;
    double m_heartbeat_override = 0;
    double m_telemetry_s = 4.0;
    double m_heartbeat_s = 30.0;
    std::vector<Agent> m_agents;
    std::unordered_map<Uuid, std::size_t> m_index;
    std::vector<zmq::socket_t*> m_extra;
    int m_epoll = -1;
    std::vector<std::size_t> m_touched;   // agents sent on since the last look
    std::vector<bool> m_is_touched;       // in m_touched
    std::vector<std::size_t> m_readable;  // this turn's readable sockets
    std::vector<bool> m_looked;           // in m_readable
    std::string m_buf;
    Stats m_stats;
    std::size_t m_welcomed = 0;
    bool m_measuring = false;
    bool m_room = false;
    std::int64_t m_rate_start = now_ns();
    std::uint64_t m_made = 0;
    std::size_t m_rr = 0;
    std::int64_t m_last_housekeeping = 0;
    std::int64_t m_storm_at = 0;
    std::size_t m_storm_pending = 0;
    bool m_storm_measuring = false;
};

std::string latency_json(const char* name, const std::vector<double>& v) {
    double mx = 0;
    for (double x : v) mx = std::max(mx, x);
    return fmt::format(R"(,"{0}_n":{1},"{0}_p50_ms":{2:.3f},"{0}_p99_ms":{3:.3f},"{0}_max_ms":{4:.3f})", name, v.size(),
                       bench::percentile(v, 50), bench::percentile(v, 99), mx);
}

/// Waits for the stream's welcome frame, so the subscription is in place.
bool wait_stream_welcome(LoadGen& gen, zmq::socket_t& sub, std::size_t sub_index) {
    const auto end = now_ns() + 10'000'000'000LL;
    while (now_ns() < end) {
        for (auto i : gen.turn(20)) {
            if (i != sub_index) continue;
            zmq::message_t m;
            while (sub.recv(m, zmq::recv_flags::dontwait)) {
                if (m.to_string_view() == stream::k_welcome) return true;
            }
        }
    }
    return false;
}

}  // namespace

int main(int argc, char** argv) {
    bench::Flags f(argc, argv, k_usage);
    const auto assets_path = f.str("assets", "");
    if (assets_path.empty()) f.fail("--assets is required");
    const auto first = static_cast<std::size_t>(f.num("first", 0));
    auto count = static_cast<std::size_t>(f.num("agents", 0));
    const double warmup = f.num("warmup", 2);
    const double duration = f.num("duration", 10);
    const auto stream_ep = f.str("stream", "");
    const auto control_ep = f.str("control", "");
    const auto http_ep = f.str("http", "");
    const auto dispatches = static_cast<std::size_t>(f.num("dispatches", 1000));
    const double welcome_timeout = f.num("welcome-timeout", 60);
    const auto pings = static_cast<std::size_t>(f.num("ping", 0));
    if (!http_ep.empty() && stream_ep.empty()) f.fail("--http needs --stream (applied is seen there)");

    auto loaded = config::load_file(assets_path);
    if (!loaded) {
        std::fprintf(stderr, "error: %s\n", loaded.error().message.c_str());
        return 78;
    }
    auto all = loaded->fleet.all_assets();
    if (first >= all.size()) f.fail("--first is past the last asset");
    if (count == 0 || first + count > all.size()) count = all.size() - first;
    std::vector<const Asset*> mine(all.begin() + static_cast<long>(first), all.begin() + static_cast<long>(first + count));

    const long fds = bench::raise_fd_limit();
    zmq::context_t ctx(1);
    ctx.set(zmq::ctxopt::max_sockets, static_cast<int>(count + 64));
    std::signal(SIGUSR1, [](int) { g_storm = true; });
    std::signal(SIGTERM, [](int) { g_stop = true; });
    std::signal(SIGINT, [](int) { g_stop = true; });

    LoadGen gen(ctx, std::move(mine), f);
    zmq::socket_t sub, control;
    std::size_t sub_index = SIZE_MAX, control_index = SIZE_MAX, extras = 0;
    if (!stream_ep.empty()) {
        sub = zmq::socket_t(ctx, zmq::socket_type::sub);
        sub.set(zmq::sockopt::rcvhwm, 1'000'000);
        sub.set(zmq::sockopt::subscribe, "telemetry/");
        sub.set(zmq::sockopt::subscribe, "dispatch/");
        sub.set(zmq::sockopt::subscribe, stream::k_welcome);
        sub.connect(stream_ep);
        gen.add_extra(sub);
        sub_index = extras++;
    }
    if (!control_ep.empty()) {
        control = zmq::socket_t(ctx, zmq::socket_type::dealer);
        control.set(zmq::sockopt::linger, 0);
        control.connect(control_ep);
        gen.add_extra(control);
        control_index = extras++;
    }
    f.done();

    // Every agent welcomed first.
    const auto t0 = now_ns();
    while (gen.welcomed() < gen.agents().size() && !g_stop) {
        gen.turn(10);
        if (now_ns() - t0 > static_cast<std::int64_t>(welcome_timeout * 1e9)) {
            std::fprintf(stderr, "error: only %zu of %zu agents welcomed after %.0f s\n", gen.welcomed(),
                         gen.agents().size(), welcome_timeout);
            return 69;
        }
    }
    const double welcome_all_ms = static_cast<double>(now_ns() - t0) / 1e6;
    if (sub && !wait_stream_welcome(gen, sub, sub_index)) {
        std::fprintf(stderr, "error: no welcome from the stream %s\n", stream_ep.c_str());
        return 69;
    }
    std::vector<double> rtt_ms;
    if (pings > 0) {  // one DEALER, one ping at a time, nothing else running
        zmq::socket_t ping(ctx, zmq::socket_type::dealer);
        ping.set(zmq::sockopt::linger, 0);
        ping.connect(f.str("hub", "tcp://127.0.0.1:7410"));
        for (std::size_t k = 0; k < pings + 100; ++k) {
            const auto start = now_ns();
            ping.send(zmq::str_buffer("ping"), zmq::send_flags::sndmore);
            ping.send(zmq::buffer(std::string(200, 'x')), zmq::send_flags::none);
            zmq::message_t a, b;
            (void)ping.recv(a);
            if (a.more()) (void)ping.recv(b);
            if (k >= 100) rtt_ms.push_back(static_cast<double>(now_ns() - start) / 1e6);  // 100 warm-up
        }
    }
    gen.start_rate_clock();

    auto& st = gen.stats();
    std::unordered_map<Uuid, std::int64_t> applied_at;  // REST: dispatch id -> when `applied` was seen
    auto read_stream = [&](std::int64_t now) {
        zmq::message_t topic, body;
        while (sub.recv(topic, zmq::recv_flags::dontwait)) {
            if (!topic.more()) continue;
            (void)sub.recv(body);
            const auto tv = topic.to_string_view();
            if (tv.starts_with("telemetry/")) {
                auto t = wire::decode_telemetry(body.to_string_view());
                if (!t) continue;
                const auto i = gen.index_of(t->asset_id);
                if (i == SIZE_MAX) continue;
                auto& ag = gen.agents()[i];
                if (t->epoch != ag.t.epoch || t->seq >= ag.send_from || t->seq + 1000 < ag.send_from) continue;
                st.e2e_ms.push_back(static_cast<double>(now - ag.sent_ns[t->seq % ag.sent_ns.size()]) / 1e6);
            } else if (tv.starts_with("dispatch/")) {
                auto d = wire::decode_dispatch(body.to_string_view());
                if (d && d->state == DispatchState::applied) applied_at.emplace(d->dispatch_id, now);
            }
        }
    };
    auto turn = [&](int wait_ms) {
        auto ready = gen.turn(wait_ms);
        const auto now = now_ns();
        for (auto i : ready)
            if (i == sub_index) read_stream(now);
        return ready;
    };

    const auto warm_end = now_ns() + static_cast<std::int64_t>(warmup * 1e9);
    while (now_ns() < warm_end && !g_stop) turn(10);
    st.e2e_ms.clear();
    gen.set_measuring(true);
    const auto m0 = now_ns();

    // Dispatches (one at a time, rotating over the agents), telemetry flowing meanwhile.
    if (!control_ep.empty() || !http_ep.empty()) {
        std::unique_ptr<httplib::Client> http;
        if (!http_ep.empty()) {
            http = std::make_unique<httplib::Client>("http://" + http_ep);
            http->set_tcp_nodelay(true);
            http->set_keep_alive(true);
        }
        for (std::size_t k = 0; k < dispatches && !g_stop; ++k) {
            auto& ag = gen.agents()[k % gen.agents().size()];
            const double mw = (k % 2 == 0 ? 0.5 : -0.5) * std::min(1.0, ag.t.max_mw);
            const auto start = now_ns();
            bool ok = false;
            if (control) {
                wire::DispatchRequest r;
                r.request_id = std::to_string(k);
                r.asset = ag.t.asset_id.to_string();
                r.mw = mw;
                r.wait = true;
                r.requested_by = "bench";
                auto fr = wire::encode(wire::ControlMessage{r});
                control.send(zmq::buffer(fr.type), zmq::send_flags::sndmore);
                control.send(zmq::buffer(fr.body), zmq::send_flags::none);
                bool done = false;
                while (!done && !g_stop && now_ns() - start < 10'000'000'000LL) {
                    for (auto i : turn(5)) {
                        if (i != control_index) continue;
                        zmq::message_t type, body;
                        while (control.recv(type, zmq::recv_flags::dontwait)) {
                            if (!type.more()) continue;
                            (void)control.recv(body);
                            auto m = wire::decode_control(type.to_string_view(), body.to_string_view());
                            if (!m) continue;
                            auto* res = std::get_if<wire::DispatchResult>(&*m);
                            if (res == nullptr || res->request_id != r.request_id || !res->final) continue;
                            ok = res->state == DispatchState::applied;
                            done = true;
                        }
                    }
                }
            } else {
                const auto body = fmt::format(R"({{"asset":"{}","mw":{},"requested_by":"bench"}})",
                                              ag.t.asset_id.to_string(), mw);
                auto res = http->Post("/dispatch", body, "application/json");
                std::optional<Uuid> id;
                if (res && res->status == 202) {
                    const auto pos = res->body.find("\"dispatch_id\":\"");
                    if (pos != std::string::npos) {
                        auto parsed = Uuid::parse(std::string_view(res->body).substr(pos + 15, 36));
                        if (parsed) id = *parsed;
                    }
                }
                while (id && !g_stop && now_ns() - start < 10'000'000'000LL) {
                    if (auto it = applied_at.find(*id); it != applied_at.end()) {
                        ok = true;
                        st.dispatch_ms.push_back(static_cast<double>(it->second - start) / 1e6);
                        applied_at.erase(it);
                        break;
                    }
                    turn(5);
                }
            }
            if (!ok) {
                ++st.dispatch_not_applied;
            } else if (control) {
                st.dispatch_ms.push_back(static_cast<double>(now_ns() - start) / 1e6);
            }
        }
    } else {
        const auto m_end = m0 + static_cast<std::int64_t>(duration * 1e9);
        while (now_ns() < m_end && !g_stop) turn(10);
    }
    gen.set_measuring(false);
    const double seconds = static_cast<double>(now_ns() - m0) / 1e9;

    std::string out = fmt::format(
        R"({{"agents":{},"fd_limit":{},"welcome_all_ms":{:.1f},"seconds":{:.3f},"acked":{},"msgs_per_s":{:.1f},)"
        R"("sent":{},"resent":{},"tacks":{},"welcomes":{},"rejects":{},"reregisters":{},"setpoints":{},)"
        R"("heartbeats":{},"dispatch_not_applied":{},"storm_all_welcomed_ms":{:.1f},"storm_max_ack_ms":{:.1f})",
        gen.agents().size(), fds, welcome_all_ms, seconds, st.acked_in_window,
        static_cast<double>(st.acked_in_window) / seconds, st.sent, st.resent, st.tacks, st.welcomes, st.rejects,
        st.reregisters, st.setpoints, st.heartbeats, st.dispatch_not_applied, st.storm_all_welcomed_ms,
        st.storm_max_ack_ms);
    out += latency_json("ack", st.ack_ms);
    out += latency_json("e2e", st.e2e_ms);
    out += latency_json("dispatch", st.dispatch_ms);
    out += latency_json("rtt", rtt_ms);
    out += "}\n";
    std::fputs(out.c_str(), stdout);
    return 0;
}
