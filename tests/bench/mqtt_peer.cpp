/// der_bench_mqtt: the Mosquitto peer of the ingest benchmark (issue #9).
/// N MQTT publishers (one connection each, one thread, poll) send the same
/// telemetry body der's agents send, at QoS 1, to a Mosquitto broker; one
/// subscriber reads them all at QoS 1. Counts messages the broker
/// acknowledged (PUBACK) per second, messages delivered to the subscriber
/// per second and, after a drain, messages the subscriber never got (lost).
/// With --rate R the publishers together offer R msg/s (paced, round robin)
/// instead of flooding their windows: a flooded broker starves its single
/// subscriber (it carries ~100 msg/s to it here), so run.sh steps the offered
/// rate up and reports the most the broker carried end to end.
/// Prints one JSON object. Benchmarks only.

#include "bench_common.hpp"

#include "der/wire_codec.hpp"

#include <mosquitto.h>

#include <poll.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <string>
#include <vector>

namespace {

using namespace der;
using bench::now_ns;

struct Client {
    mosquitto* m = nullptr;
    bool connected = false;
    std::uint64_t published = 0;
    std::uint64_t acked = 0;
};

std::atomic<std::uint64_t> g_received{0};  // counted on the subscriber's own thread
bool g_measuring = false;
std::uint64_t g_acked_in_window = 0;

void on_connect(mosquitto*, void* obj, int rc) {
    if (rc == 0) static_cast<Client*>(obj)->connected = true;
}
void on_sub_connect(mosquitto* m, void*, int rc) {
    if (rc == 0) mosquitto_subscribe(m, nullptr, "bench/#", 1);
}
void on_publish(mosquitto*, void* obj, int) {
    ++static_cast<Client*>(obj)->acked;
    if (g_measuring) ++g_acked_in_window;
}
void on_message(mosquitto*, void*, const mosquitto_message*) { ++g_received; }
std::atomic<bool> g_suback{false};
void on_subscribe(mosquitto*, void*, int, int, const int*) { g_suback = true; }

}  // namespace

int main(int argc, char** argv) {
    bench::Flags f(argc, argv,
                   "usage: der_bench_mqtt --port P [--publishers N] [--rate R] [--warmup S] [--duration S] [--window W]\n"
                   "  --port P          the broker's port on 127.0.0.1\n"
                   "  --publishers N    publisher connections (1000)\n"
                   "  --rate R          offered msg/s of all publishers together, paced (0: each fills its window)\n"
                   "  --window W        QoS 1 messages in flight per publisher (20, Mosquitto's default)\n"
                   "  --warmup S        seconds before measuring (2)\n"
                   "  --duration S      seconds measured (10)\n");
    const int port = static_cast<int>(f.num("port", 1883));
    const auto n = static_cast<std::size_t>(f.num("publishers", 1000));
    const auto window = static_cast<std::uint64_t>(f.num("window", 20));
    const double warmup = f.num("warmup", 2);
    const double duration = f.num("duration", 10);
    const double rate = f.num("rate", 0);
    f.done();
    bench::raise_fd_limit();
    mosquitto_lib_init();

    Telemetry t;
    t.asset_id = Uuid::v7();
    t.site_id = Uuid::v7();
    t.epoch = Uuid::v7();
    t.seq = 123456;
    t.ts = 1'700'000'000'000;
    t.capacity_mwh = 4;
    t.max_mw = 2;
    t.min_mw = -2;
    std::string payload;
    wire::encode_body(wire::AgentMessage{t}, payload);

    std::vector<Client> clients(n + 1);  // [n] is the subscriber
    // The subscriber first: its thread's loop uses select(), so its fd must stay below FD_SETSIZE.
    for (std::size_t k = 0; k <= n; ++k) {
        const std::size_t i = k == 0 ? n : k - 1;
        Client& c = clients[i];
        c.m = mosquitto_new(nullptr, true, &c);
        if (c.m == nullptr) {
            std::fprintf(stderr, "error: mosquitto_new failed\n");
            return 71;
        }
        mosquitto_connect_callback_set(c.m, i == n ? on_sub_connect : on_connect);
        mosquitto_publish_callback_set(c.m, on_publish);
        if (i == n) {
            mosquitto_message_callback_set(c.m, on_message);
            mosquitto_subscribe_callback_set(c.m, on_subscribe);
        }
        mosquitto_max_inflight_messages_set(c.m, static_cast<unsigned>(window));
        if (mosquitto_connect(c.m, "127.0.0.1", port, 60) != MOSQ_ERR_SUCCESS) {
            std::fprintf(stderr, "error: cannot connect to the broker on 127.0.0.1:%d\n", port);
            return 69;
        }
    }
    if (mosquitto_loop_start(clients[n].m) != MOSQ_ERR_SUCCESS) {
        std::fprintf(stderr, "error: mosquitto_loop_start failed\n");
        return 71;
    }
    std::vector<pollfd> fds(n);
    std::uint64_t published = 0;
    const auto t0 = now_ns();
    const auto warm_end = t0 + static_cast<std::int64_t>(warmup * 1e9);
    const auto end = warm_end + static_cast<std::int64_t>(duration * 1e9);
    std::int64_t m0 = 0, m1 = 0, last_misc = 0;
    std::uint64_t rx0 = 0, rx1 = 0;
    bool publishing = true;
    double tokens = 0;
    std::int64_t last_refill = 0;
    std::size_t next = 0;
    std::uint64_t published_in_window = 0;
    std::uint64_t received_at_drain = 0;
    std::int64_t drain_quiet_since = 0;
    for (;;) {
        const auto now = now_ns();
        if (!g_measuring && publishing && now >= warm_end && g_suback) {
            g_measuring = true;
            m0 = now;
            rx0 = g_received;
        }
        if (g_measuring && now >= end) {
            g_measuring = false;
            publishing = false;
            m1 = now;
            rx1 = g_received;
            drain_quiet_since = now;
        }
        if (!publishing) {  // drain: until nothing arrived for 2 s
            if (g_received.load() != received_at_drain) {
                received_at_drain = g_received;
                drain_quiet_since = now;
            } else if (now - drain_quiet_since > 2'000'000'000) {
                break;
            }
        }
        if (publishing && g_suback && rate > 0) {
            // Token bucket over all publishers, round robin; a publisher with a
            // full window is skipped (its turn goes to the next).
            if (last_refill == 0) last_refill = now;
            tokens = std::min(tokens + rate * static_cast<double>(now - last_refill) / 1e9, rate / 10 + 1);
            last_refill = now;
            for (std::size_t tried = 0; tokens >= 1 && tried < n; ++tried) {
                Client& c = clients[next];
                const std::size_t i = next;
                next = (next + 1) % n;
                if (!c.connected || c.published - c.acked >= window) continue;
                const auto topic = "bench/" + std::to_string(i);
                if (mosquitto_publish(c.m, nullptr, topic.c_str(), static_cast<int>(payload.size()), payload.data(), 1,
                                      false) != MOSQ_ERR_SUCCESS)
                    continue;
                ++c.published;
                ++published;
                if (g_measuring) ++published_in_window;
                tokens -= 1;
                tried = 0;
            }
        } else if (publishing && g_suback) {
            for (std::size_t i = 0; i < n; ++i) {
                Client& c = clients[i];
                if (!c.connected) continue;
                while (c.published - c.acked < window) {
                    const auto topic = "bench/" + std::to_string(i);
                    if (mosquitto_publish(c.m, nullptr, topic.c_str(), static_cast<int>(payload.size()),
                                          payload.data(), 1, false) != MOSQ_ERR_SUCCESS)
                        break;
                    ++c.published;
                    ++published;
                    if (g_measuring) ++published_in_window;
                }
            }
        }
        for (std::size_t i = 0; i < n; ++i) {
            fds[i].fd = mosquitto_socket(clients[i].m);
            fds[i].events = static_cast<short>(POLLIN | (mosquitto_want_write(clients[i].m) ? POLLOUT : 0));
            fds[i].revents = 0;
        }
        ::poll(fds.data(), n, rate > 0 ? 1 : 10);
        for (std::size_t i = 0; i < n; ++i) {
            if (fds[i].revents & (POLLIN | POLLERR | POLLHUP)) mosquitto_loop_read(clients[i].m, 100);
            if (fds[i].revents & POLLOUT) mosquitto_loop_write(clients[i].m, 100);
        }
        if (now - last_misc > 100'000'000) {
            last_misc = now;
            for (std::size_t i = 0; i < n; ++i) mosquitto_loop_misc(clients[i].m);
        }
        if (now - t0 > static_cast<std::int64_t>((warmup + duration + 60) * 1e9)) break;  // bounded
    }
    const double seconds = m1 > m0 ? static_cast<double>(m1 - m0) / 1e9 : 0;
    const std::uint64_t received = g_received;
    const auto lost = published > received ? published - received : 0;
    std::printf(R"({"publishers":%zu,"offered_per_s":%.1f,"seconds":%.3f,"acked":%llu,"msgs_per_s":%.1f,"published_per_s":%.1f,"delivered_per_s":%.1f,"published":%llu,"received":%llu,"lost":%llu,"lost_pct":%.3f})" "\n",
                n, rate, seconds, static_cast<unsigned long long>(g_acked_in_window),
                seconds > 0 ? static_cast<double>(g_acked_in_window) / seconds : 0.0,
                seconds > 0 ? static_cast<double>(published_in_window) / seconds : 0.0,
                seconds > 0 ? static_cast<double>(rx1 - rx0) / seconds : 0.0,
                static_cast<unsigned long long>(published), static_cast<unsigned long long>(received),
                static_cast<unsigned long long>(lost),
                published > 0 ? 100.0 * static_cast<double>(lost) / static_cast<double>(published) : 0.0);
    mosquitto_disconnect(clients[n].m);
    mosquitto_loop_stop(clients[n].m, false);
    for (auto& c : clients) mosquitto_destroy(c.m);
    mosquitto_lib_cleanup();
    return 0;
}
