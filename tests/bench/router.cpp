/// der_bench_router: the raw ZeroMQ baseline of the ingest and fleet
/// benchmarks. A ROUTER with the hub's socket options that does the least any
/// server of protocol v1 must do: answer `register` with `welcome`, decode
/// each `telemetry` to find its epoch and seq, keep it when it is the next
/// one, and send each peer a cumulative `tack` at most every 50 ms, as
/// der-hub does (with --tack-flush-ms 10, due tacks also go out together
/// every 10 ms, as der-hub's do). It also echoes `ping` as `pong` at once (the
/// raw round trip the dispatch latency is compared with). No fleet state, no
/// history, no stream. Prints its counters as JSON on SIGINT/SIGTERM or after
/// --duration. Benchmarks only (tests/bench).

#include "bench_common.hpp"

#include "der/wire_codec.hpp"

#include <fmt/format.h>
#include <zmq.hpp>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <string>
#include <unordered_map>
#include <vector>

namespace {

using namespace der;
using bench::now_ns;

constexpr const char* k_usage =
    "usage: der_bench_router [--bind EP] [--telemetry-s S] [--duration S] [--tack-flush-ms MS]\n"
    "  --bind EP        endpoint to bind (tcp://127.0.0.1:7410)\n"
    "  --telemetry-s S  telemetry_s in every welcome (4)\n"
    "  --duration S     stop after S seconds (0 = at SIGINT/SIGTERM)\n"
    "  --tack-flush-ms MS  send due tacks together at most every MS ms, as der-hub\n"
    "                   does with 10 (0 = after every read batch)\n";

std::atomic<bool> g_stop{false};

struct Peer {
    Uuid epoch;
    bool have = false;
    std::uint64_t seq = 0;
    bool tack_due = false;
    std::int64_t last_tack = 0;
};

}  // namespace

int main(int argc, char** argv) {
    bench::Flags f(argc, argv, k_usage);
    const auto bind = f.str("bind", "tcp://127.0.0.1:7410");
    const double telemetry_s = f.num("telemetry-s", 4);
    const double duration = f.num("duration", 0);
    const auto tack_flush_ns = static_cast<std::int64_t>(f.num("tack-flush-ms", 0) * 1e6);
    f.done();
    bench::raise_fd_limit();
    std::signal(SIGTERM, [](int) { g_stop = true; });
    std::signal(SIGINT, [](int) { g_stop = true; });

    zmq::context_t ctx(1);
    zmq::socket_t router(ctx, zmq::socket_type::router);
    router.set(zmq::sockopt::router_mandatory, 1);
    router.set(zmq::sockopt::linger, 0);
    router.set(zmq::sockopt::backlog, 65535);  // as der-hub's agent socket
    router.set(zmq::sockopt::tcp_keepalive, 1);
    router.set(zmq::sockopt::tcp_keepalive_idle, 60);
    router.set(zmq::sockopt::tcp_keepalive_intvl, 10);
    router.set(zmq::sockopt::tcp_keepalive_cnt, 3);
    router.set(zmq::sockopt::rcvhwm, 100'000);
    router.set(zmq::sockopt::sndhwm, 100'000);
    router.bind(bind);

    std::unordered_map<std::string, Peer> peers;
    std::vector<std::string> due;
    std::uint64_t telemetry = 0, stored = 0, heartbeats = 0, acks = 0, tacks = 0, registers = 0, bad = 0;
    std::string body;
    const auto send = [&](const std::string& rid, const wire::AgentMessage& m) {
        body.clear();
        wire::encode_body(m, body);
        const auto type = wire::type_name(m);
        try {
            if (!router.send(zmq::buffer(rid), zmq::send_flags::sndmore | zmq::send_flags::dontwait)) return;
            router.send(zmq::buffer(type), zmq::send_flags::sndmore);
            router.send(zmq::buffer(body), zmq::send_flags::none);
        } catch (const zmq::error_t&) {  // EHOSTUNREACH: the peer is gone
        }
    };
    std::int64_t last_flush = 0;
    const auto end = duration > 0 ? now_ns() + static_cast<std::int64_t>(duration * 1e9) : INT64_MAX;
    while (!g_stop && now_ns() < end) {
        zmq::pollitem_t item{router.handle(), 0, ZMQ_POLLIN, 0};
        try {
            zmq::poll(&item, 1, std::chrono::milliseconds(due.empty() ? 100 : 10));
        } catch (const zmq::error_t&) {  // EINTR: a signal, checked above
            continue;
        }
        for (int batch = 0; batch < 10'000; ++batch) {
            zmq::message_t rid, type, b;
            if (!router.recv(rid, zmq::recv_flags::dontwait)) break;
            if (!rid.more()) continue;
            (void)router.recv(type);
            if (!type.more()) continue;
            (void)router.recv(b);
            while (b.more()) (void)router.recv(b);
            if (type.to_string_view() == "ping") {  // round-trip baseline (der_bench_loadgen --ping)
                router.send(rid, zmq::send_flags::sndmore);
                router.send(zmq::str_buffer("pong"), zmq::send_flags::sndmore);
                router.send(b, zmq::send_flags::none);
                continue;
            }
            auto msg = wire::decode_agent(type.to_string_view(), b.to_string_view());
            if (!msg) {
                ++bad;
                continue;
            }
            std::string id = rid.to_string();
            if (auto* t = std::get_if<Telemetry>(&*msg)) {
                ++telemetry;
                Peer& p = peers[id];
                if (!p.have || p.epoch != t->epoch) {
                    p.epoch = t->epoch;
                    p.have = true;
                    p.seq = t->seq;
                    ++stored;
                } else if (t->seq == p.seq + 1) {
                    p.seq = t->seq;
                    ++stored;
                } else if (t->seq > p.seq + 1) {
                    continue;  // gap: dropped, the agent resends
                }
                if (!p.tack_due) {
                    p.tack_due = true;
                    due.push_back(std::move(id));
                }
            } else if (auto* r = std::get_if<wire::Register>(&*msg)) {
                ++registers;
                wire::Welcome w;
                w.asset.id = r->asset_id;
                w.asset.name = "bench";
                w.asset.site_name = "bench";
                w.telemetry_s = telemetry_s;
                peers[id] = Peer{};
                send(id, w);
            } else if (std::holds_alternative<Heartbeat>(*msg)) {
                ++heartbeats;
            } else if (std::holds_alternative<wire::Ack>(*msg)) {
                ++acks;
            }
        }
        const auto now = now_ns();
        if (now - last_flush < tack_flush_ns) continue;
        last_flush = now;
        std::size_t kept = 0;
        for (std::size_t i = 0; i < due.size(); ++i) {
            const std::string& id = due[i];
            auto it = peers.find(id);
            if (it == peers.end()) continue;
            Peer& p = it->second;
            if (now - p.last_tack < 50'000'000) {
                if (kept != i) due[kept] = std::move(due[i]);
                ++kept;
                continue;
            }
            p.tack_due = false;
            p.last_tack = now;
            ++tacks;
            send(id, wire::Tack{p.epoch, p.seq});
        }
        due.resize(kept);
    }
    std::printf(R"({"telemetry":%llu,"stored":%llu,"heartbeats":%llu,"acks":%llu,"tacks":%llu,"registers":%llu,"bad":%llu})" "\n",
                static_cast<unsigned long long>(telemetry), static_cast<unsigned long long>(stored),
                static_cast<unsigned long long>(heartbeats), static_cast<unsigned long long>(acks),
                static_cast<unsigned long long>(tacks), static_cast<unsigned long long>(registers),
                static_cast<unsigned long long>(bad));
    return 0;
}
