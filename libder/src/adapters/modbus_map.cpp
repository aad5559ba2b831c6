// Implementation details: register encodings.
//
//   uint16/int16   one register, two's complement for int16
//   uint32/int32   two registers; big word order = high word at the lower
//                  address (SunSpec's acc32/uint32), little = low word first
//   float32        IEEE 754 single, the same two word orders
//   scale factor   int16 n, value = raw * 10^n, n in [-10, 10]; 0x8000 is
//                  SunSpec's "not implemented" and refused like any other
//                  out-of-range value

#include "der/adapters/modbus_map.hpp"

#include <fmt/core.h>

#include <bit>
#include <cmath>
#include <limits>

namespace der::adapters::modbus {

std::optional<RegisterType> parse_register_type(std::string_view text) {
    if (text == "uint16") return RegisterType::uint16;
    if (text == "int16") return RegisterType::int16;
    if (text == "uint32") return RegisterType::uint32;
    if (text == "int32") return RegisterType::int32;
    if (text == "float32") return RegisterType::float32;
    return std::nullopt;
}

std::string_view to_string(RegisterType type) {
    switch (type) {
        case RegisterType::uint16: return "uint16";
        case RegisterType::int16: return "int16";
        case RegisterType::uint32: return "uint32";
        case RegisterType::int32: return "int32";
        case RegisterType::float32: return "float32";
    }
    return "?";
}

int register_count(RegisterType type) {
    return type == RegisterType::uint16 || type == RegisterType::int16 ? 1 : 2;
}

namespace {

std::uint32_t join(std::span<const std::uint16_t> words, WordOrder order) {
    const std::uint32_t hi = order == WordOrder::big ? words[0] : words[1];
    const std::uint32_t lo = order == WordOrder::big ? words[1] : words[0];
    return (hi << 16) | lo;
}

std::vector<std::uint16_t> split(std::uint32_t value, WordOrder order) {
    const auto hi = static_cast<std::uint16_t>(value >> 16);
    const auto lo = static_cast<std::uint16_t>(value & 0xffffu);
    if (order == WordOrder::big) return {hi, lo};
    return {lo, hi};
}

}  // namespace

double decode(std::span<const std::uint16_t> words, RegisterType type, WordOrder order) {
    switch (type) {
        case RegisterType::uint16: return words[0];
        case RegisterType::int16: return static_cast<std::int16_t>(words[0]);
        case RegisterType::uint32: return join(words, order);
        case RegisterType::int32: return static_cast<std::int32_t>(join(words, order));
        case RegisterType::float32: return std::bit_cast<float>(join(words, order));
    }
    return 0.0;
}

Result<std::vector<std::uint16_t>> encode(double value, RegisterType type, WordOrder order) {
    if (!std::isfinite(value)) return fail(Errc::invalid_argument, "value is not finite");
    if (type == RegisterType::float32) {
        if (std::fabs(value) > std::numeric_limits<float>::max())
            return fail(Errc::invalid_argument, fmt::format("{} does not fit a float32", value));
        return split(std::bit_cast<std::uint32_t>(static_cast<float>(value)), order);
    }
    const double rounded = std::round(value);
    auto out_of_range = [&](double lo, double hi) -> Result<std::vector<std::uint16_t>> {
        return fail(Errc::invalid_argument, fmt::format("{} does not fit a {} register ([{}, {}])", rounded,
                                                        to_string(type), lo, hi));
    };
    switch (type) {
        case RegisterType::uint16:
            if (rounded < 0 || rounded > 65535) return out_of_range(0, 65535);
            return std::vector<std::uint16_t>{static_cast<std::uint16_t>(rounded)};
        case RegisterType::int16:
            if (rounded < -32768 || rounded > 32767) return out_of_range(-32768, 32767);
            return std::vector<std::uint16_t>{static_cast<std::uint16_t>(static_cast<std::int16_t>(rounded))};
        case RegisterType::uint32:
            if (rounded < 0 || rounded > 4294967295.0) return out_of_range(0, 4294967295.0);
            return split(static_cast<std::uint32_t>(rounded), order);
        case RegisterType::int32:
            if (rounded < -2147483648.0 || rounded > 2147483647.0)
                return out_of_range(-2147483648.0, 2147483647.0);
            return split(static_cast<std::uint32_t>(static_cast<std::int32_t>(rounded)), order);
        case RegisterType::float32: break;
    }
    return fail(Errc::internal, "unknown register type");
}

Result<int> decode_scale_factor(std::uint16_t word) {
    const auto sf = static_cast<std::int16_t>(word);
    if (sf < -10 || sf > 10)
        return fail(Errc::decode, fmt::format("scale factor {} is outside [-10, 10]", sf));
    return static_cast<int>(sf);
}

double scaled(double raw, double scale, int scale_factor) {
    return raw * scale * std::pow(10.0, scale_factor);
}

double RegisterSpec::to_value(double raw, int scale_factor) const {
    const double value = scaled(raw, scale, scale_factor) * unit_mw;
    return invert ? -value : value;
}

double RegisterSpec::to_raw(double value, int scale_factor) const {
    const double v = invert ? -value : value;
    return v / unit_mw / (scale * std::pow(10.0, scale_factor));
}

}  // namespace der::adapters::modbus
