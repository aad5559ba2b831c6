#pragma once
/// The der-hub event loop (one thread owns all fleet state).

#include "cli.hpp"
#include "hub_options.hpp"

namespace der::hub {

/// Loads the configuration, binds every socket and serves until SIGTERM or
/// SIGINT. Returns the exit status (0 after a clean stop; 78 for a bad
/// configuration; 69 when an endpoint cannot be bound).
int run(const HubOptions& options, cli::Signals& signals);

}  // namespace der::hub
