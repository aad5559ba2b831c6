#pragma once
/// der-dispatch's run: sends each dispatch at its time over the control
/// socket, matches replies by request_id, and prints one JSON result line per
/// dispatch as it completes. Lines are sent in input order; replies are
/// awaited concurrently, so a slow `--wait` never delays the next line.

#include "schedule.hpp"

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

namespace der::dispatch {

enum class Wait { no, yes };
/// Result lines carry `line` (stdin mode) or not (one dispatch from argv).
enum class LineNumbers { no, yes };

struct RunSettings {
    std::string control;
    Wait wait = Wait::no;
    std::int64_t timeout_ms = 10'000;  ///< per dispatch, from sending to its final reply
    std::string requested_by;
    LineNumbers line_numbers = LineNumbers::no;
    std::string token;  ///< --token-file: sent with every request
};

/// Runs the dispatches; returns the exit status: 0 when every one was
/// accepted (applied, with Wait::yes), 1 when any was refused, rejected,
/// failed or (with Wait::yes) ended otherwise than applied, 69 when the hub
/// was never reached, 75 when it did not answer in time, 130 when `stop` was
/// set. 69 and 75 end the run at once (results printed for what was sent).
int run_dispatches(const std::vector<cli::ScheduledDispatch>& dispatches, const RunSettings& settings,
                   const std::atomic<bool>& stop);

}  // namespace der::dispatch
