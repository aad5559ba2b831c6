#pragma once
/// der-dispatch's run: sends each dispatch at its time over the control
/// socket, matches replies by request_id, and prints one JSON result line per
/// dispatch as it completes. Lines are sent in input order; replies are
/// awaited concurrently, so a slow `--wait` never delays the next line.

#include "schedule.hpp"

#include "der/util/uuid.hpp"

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

namespace der::dispatch {

enum class Wait { no, yes };
/// Result lines carry `line` (stdin mode) or not (one dispatch from argv).
enum class LineNumbers { no, yes };
/// Lines with a future `at`: sent then by der-dispatch (Timing::client) or
/// sent at once with `start_at` and held by the hub (Timing::hub).
enum class Timing { client, hub };

struct RunSettings {
    std::string control;
    Wait wait = Wait::no;
    std::int64_t timeout_ms = 10'000;  ///< per dispatch, from sending to its final reply
    std::string requested_by;
    LineNumbers line_numbers = LineNumbers::no;
    Timing timing = Timing::client;
    std::string token;  ///< --token-file: sent with every request
};

/// Runs the dispatches; returns the exit status: 0 when every one was
/// accepted (applied, with Wait::yes), 1 when any was refused, rejected,
/// failed or (with Wait::yes) ended otherwise than applied, 69 when the hub
/// was never reached, 75 when it did not answer in time, 130 when `stop` was
/// set. 69 and 75 end the run at once (results printed for what was sent).
int run_dispatches(const std::vector<cli::ScheduledDispatch>& dispatches, const RunSettings& settings,
                   const std::atomic<bool>& stop);

/// `--cancel ID`: prints {dispatch_id, state, latency_ms, error}; 0 when the
/// dispatch ended `cancelled`, 1 when the hub refused (unknown, already
/// ended), 69/75 as above.
int cancel_dispatch(const Uuid& dispatch_id, const std::string& reason, const RunSettings& settings,
                    const std::atomic<bool>& stop);

/// `--stop [--site S]`: prints {site, assets, cancelled, latency_ms, error}; 0
/// when the hub stopped them, 1 when it refused (unknown site), 69/75.
int stop_assets(const std::string& site, const std::string& reason, const RunSettings& settings,
                const std::atomic<bool>& stop);

}  // namespace der::dispatch
