#include "control_client.hpp"

#include "cli.hpp"

#include "der/util/log.hpp"
#include "der/util/time.hpp"
#include "der/util/uuid.hpp"
#include "der/wire_codec.hpp"

#include <fmt/core.h>
#include <zmq.hpp>

#include <algorithm>
#include <cstring>

namespace der::cli {

namespace {
/// Slice of a wait, so that the stop flag is seen within this many ms.
constexpr std::int64_t k_poll_slice_ms = 100;
}  // namespace

std::string new_request_id() { return Uuid::v7().to_string(); }

const std::string& request_id_of(const wire::ControlMessage& message) {
    return std::visit([](const auto& m) -> const std::string& { return m.request_id; }, message);
}

struct ControlClient::Impl {
    std::string endpoint;
    const std::atomic<bool>* stop = nullptr;
    zmq::context_t ctx;
    zmq::socket_t dealer{ctx, zmq::socket_type::dealer};
    zmq::socket_t monitor{ctx, zmq::socket_type::pair};
    bool reached = false;
    bool handshaken = false;
    std::string token;  ///< put in every request that has none

    /// Reads every pending monitor event: [uint16 event, uint32 value][address].
    void drain_monitor() {
        while (true) {
            zmq::message_t event;
            if (!monitor.recv(event, zmq::recv_flags::dontwait)) return;
            zmq::message_t address;
            if (event.more()) (void)monitor.recv(address, zmq::recv_flags::dontwait);
            if (event.size() < 6) continue;
            std::uint16_t id = 0;
            std::memcpy(&id, event.data(), sizeof id);
            if (id == ZMQ_EVENT_CONNECTED) {
                if (!reached) log::debug("control: connected to {}", endpoint);
                reached = true;
            } else if (id == ZMQ_EVENT_HANDSHAKE_SUCCEEDED) {
                handshaken = true;
            } else if (id == ZMQ_EVENT_DISCONNECTED) {
                log::debug("control: disconnected from {}", endpoint);
            }
        }
    }

    /// One multipart message off the DEALER, decoded; nil if it does not.
    std::optional<wire::ControlMessage> read_reply() {
        std::vector<zmq::message_t> frames;
        while (true) {
            zmq::message_t frame;
            if (!dealer.recv(frame, zmq::recv_flags::dontwait)) break;
            const bool more = frame.more();
            frames.push_back(std::move(frame));
            if (!more) break;
        }
        // Tolerate an empty delimiter frame (a REQ-style peer).
        if (frames.size() == 3 && frames[0].size() == 0) frames.erase(frames.begin());
        if (frames.size() != 2) {
            log::debug("control: dropped a reply of {} frames", frames.size());
            return std::nullopt;
        }
        auto decoded = wire::decode_control(frames[0].to_string_view(), frames[1].to_string_view());
        if (!decoded) {
            log::debug("control: dropped a reply that does not decode: {}", decoded.error().message);
            return std::nullopt;
        }
        return std::move(*decoded);
    }
};

ControlClient::ControlClient(const std::string& endpoint, const std::atomic<bool>* stop)
    : m_impl(std::make_unique<Impl>()) {
    static std::atomic<int> counter{0};
    m_impl->endpoint = endpoint;
    m_impl->stop = stop;
    m_impl->dealer.set(zmq::sockopt::linger, 0);
    m_impl->dealer.set(zmq::sockopt::reconnect_ivl_max, 2000);
    m_impl->monitor.set(zmq::sockopt::linger, 0);
    // The monitor is attached before connect() so that no event is missed.
    const std::string monitor_ep = fmt::format("inproc://der-control-monitor-{}", ++counter);
    if (zmq_socket_monitor(m_impl->dealer.handle(), monitor_ep.c_str(),
                           ZMQ_EVENT_CONNECTED | ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_DISCONNECTED) != 0)
        throw ExitError(software, std::string("zmq_socket_monitor: ") + zmq_strerror(zmq_errno()));
    m_impl->monitor.connect(monitor_ep);
    try {
        m_impl->dealer.connect(endpoint);
    } catch (const zmq::error_t& e) {
        throw ExitError(usage, fmt::format("bad control endpoint '{}': {}", endpoint, e.what()));
    }
}

ControlClient::~ControlClient() {
    // Stop the monitor before the sockets close (libzmq asserts otherwise on some versions).
    zmq_socket_monitor(m_impl->dealer.handle(), nullptr, 0);
}

void ControlClient::set_token(std::string token) { m_impl->token = std::move(token); }

void ControlClient::send(const wire::ControlMessage& request) {
    wire::ControlMessage with_token = request;
    if (!m_impl->token.empty()) {
        std::visit(
            [&](auto& m) {
                if constexpr (requires { m.token; }) {
                    if (m.token.empty()) m.token = m_impl->token;
                }
            },
            with_token);
    }
    const auto frame = wire::encode(with_token);
    try {
        // No ZMQ_IMMEDIATE: the DEALER queues the request until it connects.
        if (!m_impl->dealer.send(zmq::buffer(frame.type), zmq::send_flags::sndmore | zmq::send_flags::dontwait) ||
            !m_impl->dealer.send(zmq::buffer(frame.body), zmq::send_flags::dontwait))
            throw ExitError(software, "control: send queue full");
    } catch (const zmq::error_t& e) {
        throw ExitError(software, fmt::format("control: send failed: {}", e.what()));
    }
}

std::optional<wire::ControlMessage> ControlClient::receive(std::int64_t timeout_ms) {
    const std::int64_t end = mono_ms() + std::max<std::int64_t>(timeout_ms, 0);
    while (true) {
        if (m_impl->stop != nullptr && m_impl->stop->load()) return std::nullopt;
        zmq_pollitem_t items[2] = {{m_impl->dealer.handle(), 0, ZMQ_POLLIN, 0},
                                   {m_impl->monitor.handle(), 0, ZMQ_POLLIN, 0}};
        const std::int64_t left = end - mono_ms();
        const long slice = static_cast<long>(std::clamp<std::int64_t>(left, 0, k_poll_slice_ms));
        const int rc = zmq_poll(items, 2, slice);  // -1 with EINTR on a signal: loop, see the flag
        if (rc > 0) {
            if ((items[1].revents & ZMQ_POLLIN) != 0) m_impl->drain_monitor();
            if ((items[0].revents & ZMQ_POLLIN) != 0) {
                if (auto reply = m_impl->read_reply()) return reply;
                continue;
            }
        }
        if (mono_ms() >= end) return std::nullopt;
    }
}

Result<wire::ControlMessage> ControlClient::request(const wire::ControlMessage& req, std::int64_t timeout_ms) {
    const std::string id = request_id_of(req);
    send(req);
    const std::int64_t end = mono_ms() + timeout_ms;
    while (true) {
        const std::int64_t left = end - mono_ms();
        if (left <= 0 || (m_impl->stop != nullptr && m_impl->stop->load()))
            return std::unexpected(no_answer(wire::type_name(req)));
        auto reply = receive(left);
        if (!reply || request_id_of(*reply) != id) continue;
        if (const auto* error = std::get_if<wire::ErrorReply>(&*reply))
            return fail(Errc::refused, fmt::format("{}: {}", error->code, error->message));
        return std::move(*reply);
    }
}

bool ControlClient::reached() const { return m_impl->reached; }

Error ControlClient::no_answer(std::string_view what) const {
    if (!m_impl->reached)
        return Error{Errc::unavailable, fmt::format("hub unreachable at {} (is der-hub running? --control, "
                                                    "DER_CONTROL)",
                                                    m_impl->endpoint)};
    return Error{Errc::timeout, fmt::format("hub at {} did not answer the {} request in time{}", m_impl->endpoint,
                                            what, m_impl->handshaken ? "" : " (connected, no ZMTP handshake)")};
}

const std::string& ControlClient::endpoint() const { return m_impl->endpoint; }

Result<std::vector<Asset>> query_assets(ControlClient& client, const std::vector<std::string>& assets,
                                        const std::vector<std::string>& sites, std::int64_t timeout_ms) {
    wire::QueryRequest query;
    query.request_id = new_request_id();
    query.kind = wire::QueryKind::assets;
    query.assets = assets;
    query.sites = sites;
    auto reply = client.request(query, timeout_ms);
    if (!reply) return std::unexpected(reply.error());
    auto* list = std::get_if<wire::AssetsReply>(&*reply);
    if (list == nullptr)
        return fail(Errc::internal, fmt::format("unexpected '{}' reply to 'assets'", wire::type_name(*reply)));
    return std::move(list->assets);
}

}  // namespace der::cli
