#pragma once
/// The JSON body of `POST /dispatch` (docs/rest.md), parsed apart from the
/// HTTP server so it can be tested and fuzzed without one.

#include "loop_api.hpp"

#include "der/util/error.hpp"

#include <string_view>

namespace der::hub {

/// `{"asset": "site/bess-1", "mw": 5, "duration_s": "15m", "reason": ...}`.
/// Total: any bytes give a command or Errc::invalid_argument with the message
/// the REST API answers 400 with; it never throws. `requested_by` is left
/// empty when the body has none (the caller may fill it from a header).
Result<DispatchCommand> parse_dispatch_body(std::string_view body);

}  // namespace der::hub
