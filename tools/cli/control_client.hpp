#pragma once
/// The client side of the hub's control socket (DESIGN.md, "Clients ⇄ hub
/// control ROUTER"): a DEALER that sends `[type][body]` requests and receives
/// replies, and knows whether the hub was ever reached, so that a program can
/// tell "hub unreachable" (69) from "reached but no answer in time" (75).
///
/// "Reached" means a TCP connection to the endpoint was established (socket
/// monitor, ZMQ_EVENT_CONNECTED): connect() itself succeeds whether or not
/// anything listens. A hub that is stopped (SIGSTOP) or wedged still has its
/// kernel accept the connection, so it counts as reached; a port where nothing
/// listens never does. Single-threaded: one thread owns a ControlClient.

#include "der/util/error.hpp"
#include "der/wire_messages.hpp"

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace der::cli {

/// A fresh request id (UUIDv7 text).
std::string new_request_id();
/// The `request_id` every control message carries.
const std::string& request_id_of(const wire::ControlMessage& message);

class ControlClient {
public:
    /// Connects (asynchronously) to `endpoint`. `stop`, when given, makes
    /// receive() return early once it is set (SIGINT/SIGTERM).
    explicit ControlClient(const std::string& endpoint, const std::atomic<bool>* stop = nullptr);
    ~ControlClient();
    ControlClient(const ControlClient&) = delete;
    ControlClient& operator=(const ControlClient&) = delete;

    /// The API token (`--token-file`) to put in every request that carries none.
    void set_token(std::string token);
    /// Queues a request; never blocks. Throws ExitError(70) if libzmq refuses it.
    void send(const wire::ControlMessage& request);
    /// The next reply that decodes (any request_id), waiting at most
    /// `timeout_ms`; nil on timeout or when the stop flag is set.
    std::optional<wire::ControlMessage> receive(std::int64_t timeout_ms);
    /// Sends `request` and waits up to `timeout_ms` for the first reply with
    /// its request_id. Errors: unavailable / timeout (see no_answer()),
    /// refused for an `error` reply (message `code: message`).
    Result<wire::ControlMessage> request(const wire::ControlMessage& request, std::int64_t timeout_ms);

    /// A TCP connection to the hub was established at some point.
    [[nodiscard]] bool reached() const;
    /// The error for "no reply in time": Errc::unavailable (exit 69) when the
    /// hub was never reached, else Errc::timeout (exit 75).
    [[nodiscard]] Error no_answer(std::string_view what) const;
    [[nodiscard]] const std::string& endpoint() const;

private:
    struct Impl;
    std::unique_ptr<Impl> m_impl;
};

/// The assets matching `assets`/`sites` filters (UUIDs or names; empty = all),
/// through the `assets` request.
Result<std::vector<Asset>> query_assets(ControlClient& client, const std::vector<std::string>& assets,
                                        const std::vector<std::string>& sites, std::int64_t timeout_ms);

}  // namespace der::cli
