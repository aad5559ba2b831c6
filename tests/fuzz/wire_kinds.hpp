#pragma once
/// The input layout of fuzz_wire_decode, shared with make_corpus.cpp: byte 0
/// picks an entry of k_wire_kinds (modulo its size + 1), the rest is the body
/// frame. The extra last value means "free-form type frame": the type is the
/// bytes up to the first NUL, the body the bytes after it, and both
/// decode_agent and decode_control see them. A new message type goes here
/// and into make_corpus.cpp, which refuses to run without a seed for it.

#include <array>
#include <cstddef>
#include <string_view>

namespace der::fuzz {

enum class Decoder { agent, control, telemetry, dispatch, agent_event };

struct WireKind {
    Decoder decoder;
    std::string_view type;  ///< the type frame (agent and control only)
};

inline constexpr std::array k_wire_kinds{
    WireKind{Decoder::agent, "register"},         WireKind{Decoder::agent, "welcome"},
    WireKind{Decoder::agent, "reject"},           WireKind{Decoder::agent, "telemetry"},
    WireKind{Decoder::agent, "heartbeat"},        WireKind{Decoder::agent, "tack"},
    WireKind{Decoder::agent, "setpoint"},         WireKind{Decoder::agent, "ack"},
    WireKind{Decoder::agent, "reregister"},       WireKind{Decoder::control, "dispatch"},
    WireKind{Decoder::control, "dispatch.result"}, WireKind{Decoder::control, "history"},
    WireKind{Decoder::control, "history.rows"},   WireKind{Decoder::control, "history.end"},
    WireKind{Decoder::control, "assets"},         WireKind{Decoder::control, "agents"},
    WireKind{Decoder::control, "latest"},         WireKind{Decoder::control, "assets.reply"},
    WireKind{Decoder::control, "agents.reply"},   WireKind{Decoder::control, "latest.reply"},
    WireKind{Decoder::control, "error"},          WireKind{Decoder::control, "cancel"},
    WireKind{Decoder::control, "stop"},           WireKind{Decoder::control, "stop.result"},
    WireKind{Decoder::telemetry, ""},             WireKind{Decoder::dispatch, ""},
    WireKind{Decoder::agent_event, ""},
};

/// Byte 0 of an input that means "free-form type frame".
inline constexpr std::size_t k_free_form_type = k_wire_kinds.size();

}  // namespace der::fuzz
