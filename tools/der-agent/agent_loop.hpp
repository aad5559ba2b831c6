#pragma once
/// The der-agent event loop: one thread, one DEALER connected out to the hub
/// and the PAIR end of its socket monitor, polled with timeouts from the
/// AgentCore's next timer. Socket options and their reasons: agent_loop.cpp.

#include "agent.hpp"

#include "der/util/error.hpp"

#include <atomic>
#include <optional>
#include <string>

namespace der::agent {

/// CURVE towards the hub (docs/security.md): all three keys in Z85.
struct CurveClientKeys {
    std::string server_public;  ///< the hub's public key
    std::string public_key;     ///< the agent's, as listed in assets.yaml
    std::string secret_key;
};

/// Runs the agent until `stop` becomes true (a signal handler sets it).
/// Never gives up on the hub: it reconnects and re-registers for ever.
/// Errors: Errc::invalid_argument for an endpoint libzmq refuses; Errc::internal
/// when a socket cannot be set up.
Result<void> run_agent(const AgentSettings& settings, Adapter& adapter, const std::string& hub_endpoint,
                       const std::atomic<bool>& stop, const std::optional<CurveClientKeys>& curve = std::nullopt);

}  // namespace der::agent
