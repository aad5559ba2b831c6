// Fuzz target: the msgpack wire decoder (docs/protocol.md), every message type.
//
// Input: byte 0 picks the decoder and type frame (wire_kinds.hpp), the rest is
// the body. Properties, beyond "never crash, never throw":
// - a failure is Errc::decode with a message;
// - decode_agent (with its flat fast path) and the object-tree decoder
//   alone accept the same bodies, to equal values, and fail with the same error;
// - what decodes re-encodes under the same type name, and that encoding
//   decodes again to an equal value (decode(encode(x)) == x) whose encoding
//   is byte-identical (which also covers NaN fields, where == cannot).
#include "fuzz_check.hpp"
#include "wire_kinds.hpp"

#include "der/wire_codec.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace {

using der::fuzz::require;
namespace wire = der::wire;

template <class T>
void require_failure_is_decode(const der::Result<T>& r) {
    require(r.error().code == der::Errc::decode, "a decode failure has code decode", r.error().message);
    require(!r.error().message.empty(), "a decode failure has a message");
}

/// `decode` is decode_agent or decode_control.
template <class Decode>
void check_message(Decode decode, std::string_view type, std::string_view body) {
    const auto x = decode(type, body);
    if (!x) return require_failure_is_decode(x);
    const wire::Frame once = wire::encode(*x);
    require(once.type == type, "a decoded message re-encodes under its own type", once.type);
    const auto y = decode(once.type, once.body);
    if (!y) return require(false, "an encoded message decodes", y.error().message);
    require(wire::encode(*y).body == once.body, "encode(decode(encode(x))) == encode(x)");
    if (*x == *x) require(*y == *x, "decode(encode(x)) == x");  // else a NaN field: the bytes decide
}

/// `decode` is decode_telemetry, decode_dispatch or decode_agent_event.
template <class Decode, class Encode>
void check_stream_body(Decode decode, Encode encode, std::string_view body) {
    const auto x = decode(body);
    if (!x) return require_failure_is_decode(x);
    const std::string once = encode(*x);
    const auto y = decode(once);
    if (!y) return require(false, "an encoded stream body decodes", y.error().message);
    require(encode(*y) == once, "encode(decode(encode(x))) == encode(x)");
    if (*x == *x) require(*y == *x, "decode(encode(x)) == x");
}

void check_agent(std::string_view type, std::string_view body) {
    check_message([](auto t, auto b) { return wire::decode_agent(t, b); }, type, body);
    // The flat fast path (telemetry, heartbeat, tack, ack) against the
    // msgpack object-tree decoder: same acceptance, value and error.
    const auto fast = wire::decode_agent(type, body);
    const auto tree = wire::detail::decode_agent_reference(type, body);
    require(fast.has_value() == tree.has_value(), "the fast path accepts what the tree decoder accepts",
            fast ? std::string("fast accepted") : fast.error().message);
    if (fast) {
        require(wire::encode(*fast).body == wire::encode(*tree).body, "the fast path decodes the tree decoder's value");
    } else {
        require(fast.error().message == tree.error().message, "the fast path fails with the tree decoder's error",
                fast.error().message);
    }
}

void check_control(std::string_view type, std::string_view body) {
    check_message([](auto t, auto b) { return wire::decode_control(t, b); }, type, body);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    std::string_view body(reinterpret_cast<const char*>(data) + 1, size - 1);
    const std::size_t pick = data[0] % (der::fuzz::k_wire_kinds.size() + 1);
    if (pick == der::fuzz::k_free_form_type) {
        const std::size_t nul = body.find('\0');
        const std::string_view type = body.substr(0, nul);
        body = nul == std::string_view::npos ? std::string_view{} : body.substr(nul + 1);
        check_agent(type, body);
        check_control(type, body);
        return 0;
    }
    const auto& kind = der::fuzz::k_wire_kinds[pick];
    switch (kind.decoder) {
        case der::fuzz::Decoder::agent: check_agent(kind.type, body); break;
        case der::fuzz::Decoder::control: check_control(kind.type, body); break;
        case der::fuzz::Decoder::telemetry:
            check_stream_body(wire::decode_telemetry, wire::encode_telemetry, body);
            break;
        case der::fuzz::Decoder::dispatch:
            check_stream_body(wire::decode_dispatch, wire::encode_dispatch, body);
            break;
        case der::fuzz::Decoder::agent_event:
            check_stream_body(wire::decode_agent_event, wire::encode_agent_event, body);
            break;
    }
    return 0;
}
