#pragma once
/// The JSON body of `POST /dispatch` (docs/rest.md), parsed apart from the
/// HTTP server so it can be tested and fuzzed without one.

#include "loop_api.hpp"

#include "der/util/error.hpp"

#include <string_view>

namespace der::hub {

/// Whose body: `POST /dispatch` names its asset; `POST /sites/{site}/dispatch`
/// takes the site from the path and must not name an asset.
enum class DispatchTarget { asset, site };

/// `{"asset": "site/bess-1", "mw": 5, "duration_s": "15m", "start_at": "+5m",
/// "reason": ..., "requested_by": ...}`. `start_at` is RFC 3339 or relative to
/// `now_ms` (default: the system clock).
/// Total: any bytes give a command or Errc::invalid_argument with the message
/// the REST API answers 400 with; it never throws. `requested_by` is left
/// empty when the body has none (the caller may fill it from a header).
Result<DispatchCommand> parse_dispatch_body(std::string_view body, DispatchTarget target = DispatchTarget::asset,
                                            std::optional<TimestampMs> now_ms = std::nullopt);

}  // namespace der::hub
