// Fuzz target: the time and duration parsers of util/time.hpp, all three on
// every input. Properties, beyond "never crash, never throw":
// - parse_rfc3339: an instant at or after 1970 whose format_rfc3339 parses
//   back to the same instant;
// - parse_time: `now` is now, relative times stay within the duration
//   parser's range of now, absolute ones agree with parse_rfc3339;
// - parse_duration: finite, non-negative, at most 1e12 s, and its
//   format_duration parses back to within the rounding format_duration does.
#include "fuzz_check.hpp"

#include "der/util/time.hpp"

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace {

using der::fuzz::require;

constexpr der::TimestampMs k_now_ms = 1'763'882'715'123;
constexpr double k_max_duration_s = 1e12;  // parse_duration's documented ceiling

void check_rfc3339(std::string_view text) {
    const auto t = der::parse_rfc3339(text);
    if (!t) {
        require(t.error().code == der::Errc::invalid_argument, "an RFC 3339 failure is invalid_argument");
        return;
    }
    require(*t >= 0, "an RFC 3339 time is not before 1970");
    const std::string formatted = der::format_rfc3339(*t);
    const auto back = der::parse_rfc3339(formatted);
    require(back.has_value(), "format_rfc3339 output parses", formatted);
    require(*back == *t, "parse_rfc3339(format_rfc3339(t)) == t", formatted);
}

void check_time(std::string_view text) {
    const auto t = der::parse_time(text, k_now_ms);
    if (!t) {
        require(t.error().code == der::Errc::invalid_argument, "a time failure is invalid_argument");
        return;
    }
    if (text == "now") return require(*t == k_now_ms, "'now' is now");
    if (text.starts_with('-') || text.starts_with('+')) {
        const auto distance = static_cast<double>(*t - k_now_ms);
        require(std::abs(distance) <= k_max_duration_s * 1000, "a relative time is within range of now");
        require(text.starts_with('-') ? *t <= k_now_ms : *t >= k_now_ms, "a relative time has its sign");
        return;
    }
    const auto absolute = der::parse_rfc3339(text);
    require(absolute.has_value() && *absolute == *t, "an absolute time is its RFC 3339 value");
}

void check_duration(std::string_view text) {
    const auto d = der::parse_duration(text);
    if (!d) {
        require(d.error().code == der::Errc::invalid_argument, "a duration failure is invalid_argument");
        return;
    }
    require(std::isfinite(*d) && *d >= 0 && *d <= k_max_duration_s, "a duration is finite and in range");
    const std::string formatted = der::format_duration(*d);
    const auto back = der::parse_duration(formatted);
    require(back.has_value(), "format_duration output parses", formatted);
    const double tolerance = *d < 1.0 ? 0.0005 : 0.5;  // format_duration rounds to ms below 1 s, else to s
    require(std::abs(*back - *d) <= tolerance * (1 + 1e-9), "format_duration parses back to about the same",
            formatted);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    check_rfc3339(text);
    check_time(text);
    check_duration(text);
    return 0;
}
