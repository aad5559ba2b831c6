// Implementation details: the agent's sockets (DESIGN.md, "ZeroMQ facts").
//
//   DEALER, connected out to the hub's agent ROUTER. No ZMQ_ROUTING_ID: the
//   ROUTER assigns ids and the hub keys sessions by asset_id + instance_id.
//     ZMQ_IMMEDIATE 1          nothing queues in libzmq while disconnected;
//                              the TelemetryRing is the only buffer
//     ZMQ_HEARTBEAT_IVL 5 s    ZMTP pings, so a dead or frozen hub is noticed
//     ZMQ_HEARTBEAT_TIMEOUT 15 s
//     ZMQ_HEARTBEAT_TTL 0      none: a TTL in every ping makes the hub's libzmq
//                              arm a timer per peer and cancel it on the next
//                              message, a scan of all its timers (O(peers));
//                              the hub reaps dead connections with TCP
//                              keepalive instead (docs/protocol.md)
//     ZMQ_RECONNECT_IVL 100 ms, ZMQ_RECONNECT_IVL_MAX 2 s
//     ZMQ_LINGER 0             a stopping agent never waits on a dead hub
//     ZMQ_MAXMSGSIZE 4 MiB     a broken peer cannot make us allocate without bound
//   Every send is ZMQ_DONTWAIT; a send that fails is simply "not sent".
//   With CURVE keys: ZMQ_CURVE_SERVERKEY/PUBLICKEY/SECRETKEY; a hub that
//   refuses the key shows as HANDSHAKE_FAILED_AUTH (logged, retried).
//
//   PAIR on inproc://der-agent-monitor, the DEALER's socket monitor. Events:
//     HANDSHAKE_SUCCEEDED  the connection can carry messages (with IMMEDIATE,
//                          a send right after the TCP-level CONNECTED event
//                          would still fail): AgentCore::on_connected
//     DISCONNECTED         AgentCore::on_disconnected
//     CONNECTED, HANDSHAKE_FAILED_*: logged only.
//   Each event is two frames: 6 bytes (uint16 event, uint32 value, host
//   order) and the endpoint.
//
// The adapter's file descriptors (Adapter::wait_fds) are polled beside the
// sockets; Adapter::poll runs first thing in every AgentCore::run_timers.
//
// One thread runs everything; zmq::poll's timeout is the AgentCore's next
// timer, capped so a signal is seen within k_max_wait_ms even if EINTR is
// missed.

#include "agent_loop.hpp"

#include "der/util/log.hpp"
#include "der/wire_codec.hpp"

#include <zmq.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstring>
#include <vector>

namespace der::agent {

namespace {

constexpr const char* k_monitor_endpoint = "inproc://der-agent-monitor";
constexpr std::int64_t k_max_wait_ms = 250;
/// Messages taken from one socket per loop turn, so timers always get a turn.
constexpr int k_max_batch = 1000;
constexpr std::int64_t k_max_message_bytes = 4 << 20;

void configure_dealer(zmq::socket_t& dealer) {
    dealer.set(zmq::sockopt::immediate, 1);
    dealer.set(zmq::sockopt::heartbeat_ivl, 5'000);
    dealer.set(zmq::sockopt::heartbeat_timeout, 15'000);
    dealer.set(zmq::sockopt::heartbeat_ttl, 0);
    dealer.set(zmq::sockopt::reconnect_ivl, 100);
    dealer.set(zmq::sockopt::reconnect_ivl_max, 2'000);
    dealer.set(zmq::sockopt::linger, 0);
    dealer.set(zmq::sockopt::maxmsgsize, k_max_message_bytes);
}

/// Sends `[type][body]` without blocking; false when not sent.
bool send_frames(zmq::socket_t& dealer, const wire::AgentMessage& message) {
    const wire::Frame frame = wire::encode(message);
    try {
        if (!dealer.send(zmq::buffer(frame.type), zmq::send_flags::sndmore | zmq::send_flags::dontwait))
            return false;
        // Once the first part is accepted, libzmq takes the rest of the message.
        return dealer.send(zmq::buffer(frame.body), zmq::send_flags::dontwait).has_value();
    } catch (const zmq::error_t& e) {
        log::debug("send of '{}' failed: {}", frame.type, e.what());
        return false;
    }
}

/// Reads every part of one message (up to two kept). False when none is waiting.
bool receive_message(zmq::socket_t& socket, std::array<zmq::message_t, 2>& parts, std::size_t& count) {
    count = 0;
    zmq::message_t part;
    if (!socket.recv(part, zmq::recv_flags::dontwait)) return false;
    for (;;) {
        const bool more = part.more();
        if (count < parts.size()) parts[count] = std::move(part);
        ++count;
        if (!more) return true;
        part = zmq::message_t();
        // The rest of a multipart message is already here: this never waits.
        if (!socket.recv(part, zmq::recv_flags::none)) return true;
    }
}

void drain_monitor(zmq::socket_t& monitor, AgentCore& core) {
    std::array<zmq::message_t, 2> parts;
    std::size_t count = 0;
    for (int i = 0; i < k_max_batch && receive_message(monitor, parts, count); ++i) {
        if (count < 2 || parts[0].size() < 6) continue;
        std::uint16_t event = 0;
        std::uint32_t value = 0;
        std::memcpy(&event, parts[0].data(), sizeof event);
        std::memcpy(&value, static_cast<const char*>(parts[0].data()) + 2, sizeof value);
        const std::string endpoint = parts[1].to_string();
        switch (event) {
            case ZMQ_EVENT_CONNECTED: log::debug("tcp connection to {} up, handshaking", endpoint); break;
            case ZMQ_EVENT_HANDSHAKE_SUCCEEDED: core.on_connected(endpoint); break;
            case ZMQ_EVENT_DISCONNECTED: core.on_disconnected(endpoint); break;
            case ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL:
            case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL:
            case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH:
                log::warn("handshake with {} failed (event {:#x}, value {})", endpoint, event, value);
                break;
            default: break;
        }
    }
}

void drain_dealer(zmq::socket_t& dealer, AgentCore& core) {
    std::array<zmq::message_t, 2> parts;
    std::size_t count = 0;
    for (int i = 0; i < k_max_batch && receive_message(dealer, parts, count); ++i) {
        if (count != 2) {
            core.on_bad_frame(fmt::format("a message of {} frames (want 2)", count));
            continue;
        }
        const auto type = parts[0].to_string_view();
        auto decoded = wire::decode_agent(type, parts[1].to_string_view());
        if (!decoded) {
            core.on_bad_frame(decoded.error().message);
            continue;
        }
        core.on_message(*decoded);
    }
}

}  // namespace

Result<void> run_agent(const AgentSettings& settings, Adapter& adapter, const std::string& hub_endpoint,
                       const std::atomic<bool>& stop, const std::optional<CurveClientKeys>& curve) {
    zmq::context_t context(1);
    zmq::socket_t dealer(context, zmq::socket_type::dealer);
    zmq::socket_t monitor(context, zmq::socket_type::pair);
    try {
        configure_dealer(dealer);
        if (curve) {
            // 41 bytes with the terminator: libzmq reads that as Z85 text.
            const std::pair<int, const std::string*> keys[] = {{ZMQ_CURVE_SERVERKEY, &curve->server_public},
                                                               {ZMQ_CURVE_PUBLICKEY, &curve->public_key},
                                                               {ZMQ_CURVE_SECRETKEY, &curve->secret_key}};
            for (const auto& [option, key] : keys)
                if (zmq_setsockopt(dealer.handle(), option, key->c_str(), key->size() + 1) != 0)
                    return fail(Errc::invalid_argument, fmt::format("CURVE key: {}", zmq_strerror(zmq_errno())));
        }
        // The monitor must be in place before connect, or the first
        // connection's events are lost.
        const int events = ZMQ_EVENT_CONNECTED | ZMQ_EVENT_DISCONNECTED | ZMQ_EVENT_HANDSHAKE_SUCCEEDED |
                           ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                           ZMQ_EVENT_HANDSHAKE_FAILED_AUTH;
        if (zmq_socket_monitor(dealer.handle(), k_monitor_endpoint, events) != 0)
            return fail(Errc::internal, fmt::format("socket monitor: {}", zmq_strerror(zmq_errno())));
        monitor.connect(k_monitor_endpoint);
    } catch (const zmq::error_t& e) {
        return fail(Errc::internal, fmt::format("setting up the hub socket: {}", e.what()));
    }
    try {
        dealer.connect(hub_endpoint);
    } catch (const zmq::error_t& e) {
        return fail(Errc::invalid_argument, fmt::format("--hub '{}': {}", hub_endpoint, e.what()));
    }

    SystemClock clock;
    AgentCore core(settings, adapter, clock,
                   [&dealer](const wire::AgentMessage& message) { return send_frames(dealer, message); });
    std::optional<Spool> spool;
    if (settings.spool) {
        SpoolContents contents;
        auto opened = Spool::open(*settings.spool, settings.asset.id, contents);
        if (!opened) return std::unexpected(opened.error());
        spool.emplace(std::move(*opened));
        core.attach_spool(*spool, contents);
    }
    log::info("agent for {} ({}) started: hub {} ({}), adapter {}, instance {}, epoch {}",
              settings.asset.qualified_name(), settings.asset.id.to_string(), hub_endpoint,
              curve ? "CURVE" : "plain text", adapter.kind(),
              core.instance_id().to_string(), core.epoch().to_string());

    std::vector<zmq::pollitem_t> items;
    while (!stop.load()) {
        core.run_timers();
        // The device's own descriptors (an exec child's pipes) wake the loop too.
        items.assign({{dealer.handle(), 0, ZMQ_POLLIN, 0}, {monitor.handle(), 0, ZMQ_POLLIN, 0}});
        for (const int fd : adapter.wait_fds()) items.push_back({nullptr, fd, ZMQ_POLLIN, 0});
        const std::int64_t wait_ms =
            std::clamp<std::int64_t>(core.next_deadline_mono_ms() - clock.mono_ms(), 0, k_max_wait_ms);
        try {
            zmq::poll(items.data(), items.size(), std::chrono::milliseconds(wait_ms));
        } catch (const zmq::error_t& e) {
            if (e.num() == EINTR) continue;  // a signal: the loop condition decides
            return fail(Errc::internal, fmt::format("poll: {}", e.what()));
        }
        try {
            if ((items[1].revents & ZMQ_POLLIN) != 0) drain_monitor(monitor, core);
            if ((items[0].revents & ZMQ_POLLIN) != 0) drain_dealer(dealer, core);
        } catch (const zmq::error_t& e) {
            if (e.num() == EINTR) continue;
            return fail(Errc::internal, fmt::format("receive: {}", e.what()));
        }
    }

    if (core.ring().empty()) {
        log::info("stopping: every telemetry record acknowledged (last seq {})", core.last_seq());
    } else if (spool) {
        const auto synced = spool->sync();
        log::info("stopping: {} telemetry records unacknowledged (seq {}..{}) are kept in the spool{}",
                  core.ring().size(), *core.ring().oldest_seq(), *core.ring().newest_seq(),
                  synced ? std::string() : "; its last sync failed: " + synced.error().message);
    } else {
        log::info("stopping: {} telemetry records unacknowledged (seq {}..{}) are dropped",
                  core.ring().size(), *core.ring().oldest_seq(), *core.ring().newest_seq());
    }
    zmq_socket_monitor(dealer.handle(), nullptr, 0);
    adapter.stop();
    return {};
}

}  // namespace der::agent
