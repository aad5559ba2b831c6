#pragma once
/// der-tail's run: subscribes to the hub's stream (XPUB) for the chosen
/// assets and sites, optionally prints a `latest` snapshot first, and prints
/// every telemetry record (and, with events, dispatch and agent events) as it
/// arrives, one line each, flushed per line.

#include "output.hpp"

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace der::tail {

enum class Events { no, yes };
enum class Snapshot { no, yes };

struct TailSettings {
    std::string stream;
    std::string control;
    std::vector<std::string> assets;  ///< UUIDs or site/name; empty = all
    std::vector<std::string> sites;   ///< UUIDs or names; empty = all
    Events events = Events::no;
    Snapshot snapshot = Snapshot::no;
    cli::Format format = cli::Format::json;
    std::optional<std::uint64_t> count;  ///< stop after this many lines
    std::int64_t control_timeout_ms = 5000;
    std::string token;  ///< --token-file: sent with every control request
};

/// Runs until `count` lines, a closed stdout (both 0), or `stop` (130 after
/// SIGINT, 0 after SIGTERM). Throws cli::ExitError for unreachable control
/// (69/75) when names must be resolved, and for unknown --asset/--site (64).
int run_tail(const TailSettings& settings, const std::atomic<bool>& stop, const std::atomic<int>& last_signal);

}  // namespace der::tail
