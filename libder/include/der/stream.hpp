#pragma once
/// The hub's live stream (ZeroMQ XPUB): what publisher and subscribers
/// agree on besides the bodies (wire_codec.hpp). docs/protocol.md, "Stream".

#include <string_view>

namespace der::stream {

/// Topic and one-frame message by which the hub answers a subscription to
/// it once it has taken it: the subscriber's earlier subscriptions are in
/// place (a SUB sends them in order, and at connect in byte order, where
/// this sorts after every other topic).
inline constexpr std::string_view k_welcome = "welcome";

}  // namespace der::stream
