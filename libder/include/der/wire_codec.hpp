#pragma once
/// msgpack encoding and decoding of every wire-protocol-v1 message.
///
/// Decoding is strict and total: a truncated body, a field of the wrong type
/// or a missing required field gives an `Error` (code `decode`) whose message
/// names the message type and field; it never throws and never reads out of
/// bounds. Unknown fields are ignored (forward compatibility). msgpack itself
/// stays inside wire_codec.cpp, so including this header is cheap.

#include "der/util/error.hpp"
#include "der/wire_messages.hpp"

#include <string>
#include <string_view>

namespace der::wire {

/// A message ready for the socket: the `type` frame and the msgpack `body` frame.
struct Frame {
    std::string type;
    std::string body;
};

/// The type frame of a message: `register`, `welcome`, `reject`, `telemetry`,
/// `heartbeat`, `tack`, `setpoint`, `ack`, `reregister`; on the control socket
/// `dispatch`, `dispatch.result`, `history`, `history.rows`, `history.end`,
/// `assets`|`agents`|`latest` (by QueryKind) and their replies
/// `assets.reply`, `agents.reply`, `latest.reply`, and `error`.
std::string_view type_name(const AgentMessage& message) noexcept;
std::string_view type_name(const ControlMessage& message) noexcept;

Frame encode(const AgentMessage& message);
Frame encode(const ControlMessage& message);

/// Encode only the body, appending to `out` (hot path: reuse the buffer).
void encode_body(const AgentMessage& message, std::string& out);

Result<AgentMessage> decode_agent(std::string_view type, std::string_view body);
Result<ControlMessage> decode_control(std::string_view type, std::string_view body);

/// The stream (XPUB) bodies: a Telemetry, a Dispatch or an agent event,
/// encoded like the messages above.
struct AgentEvent {
    Uuid asset_id;
    std::string event;  ///< `online`, `offline`, `heartbeat`
    TimestampMs ts = 0;
    std::optional<Heartbeat> heartbeat;
    friend bool operator==(const AgentEvent&, const AgentEvent&) = default;
};
std::string encode_telemetry(const Telemetry& t);
std::string encode_dispatch(const Dispatch& d);
std::string encode_agent_event(const AgentEvent& e);
Result<Telemetry> decode_telemetry(std::string_view body);
Result<Dispatch> decode_dispatch(std::string_view body);
Result<AgentEvent> decode_agent_event(std::string_view body);

namespace detail {
/// decode_agent without its fast path for flat messages (telemetry,
/// heartbeat, tack, ack): the msgpack object-tree decoder alone. Tests and
/// the fuzz target check that both accept the same bodies, equal, and fail
/// with the same error.
Result<AgentMessage> decode_agent_reference(std::string_view type, std::string_view body);
}  // namespace detail

}  // namespace der::wire
