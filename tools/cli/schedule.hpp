#pragma once
/// A scripted dispatch run as der-dispatch reads it on stdin: JSON lines
/// (`{"asset": "site-a/b1", "mw": 2, "duration_s": 900, "at": "+5m"}`) or
/// CSV with a header line (`asset,mw,duration_s,at`, columns in any order).
/// The format is told by the first non-blank character of the input: `{`
/// means JSON lines. Blank lines and lines starting with `#` are skipped.
///
/// Fields: `asset` (UUID or site/name) or `site` (a site dispatch, split by
/// the hub across the site's assets): exactly one of them; `mw` (number, required,
/// positive = discharge), `duration_s` (seconds; a number, or a duration
/// string such as `15m`; empty/absent = until replaced), `at` (RFC 3339,
/// `now` or relative to the start of the run such as `+5m`; absent = at once),
/// `reason` (optional text).

#include "der/util/error.hpp"
#include "der/util/time.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace der::cli {

struct ScheduledDispatch {
    int line = 0;  ///< 1-based line of the input it came from
    std::string asset;
    double mw = 0.0;
    std::optional<double> duration_s;
    std::optional<TimestampMs> at_ms;  ///< nil = at once
    std::string reason;
    std::string site;  ///< a site dispatch (then `asset` is empty)
    friend bool operator==(const ScheduledDispatch&, const ScheduledDispatch&) = default;
};

/// Parses the whole input; relative times are taken from `now_ms`. The first
/// bad line ends parsing with Errc::decode (exit 65) and a message that
/// starts `line N: `. Lines keep their input order.
Result<std::vector<ScheduledDispatch>> parse_schedule(std::string_view text, TimestampMs now_ms);

/// Splits one CSV record (RFC 4180 quoting, no embedded newlines).
Result<std::vector<std::string>> split_csv_line(std::string_view line);

}  // namespace der::cli
