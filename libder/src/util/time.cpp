#include "der/util/time.hpp"

#include <fmt/core.h>

#include <charconv>
#include <chrono>
#include <cmath>

namespace der {

namespace chr = std::chrono;

TimestampMs SystemClock::now_ms() const { return der::now_ms(); }
std::int64_t SystemClock::mono_ms() const { return der::mono_ms(); }

TimestampMs now_ms() {
    return chr::duration_cast<chr::milliseconds>(chr::system_clock::now().time_since_epoch()).count();
}

std::int64_t mono_ms() {
    return chr::duration_cast<chr::milliseconds>(chr::steady_clock::now().time_since_epoch()).count();
}

std::string format_rfc3339(TimestampMs ms) {
    const auto tp = chr::sys_time<chr::milliseconds>{chr::milliseconds{ms}};
    const auto day = chr::floor<chr::days>(tp);
    const chr::year_month_day ymd{day};
    const chr::hh_mm_ss hms{tp - day};
    return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", static_cast<int>(ymd.year()),
                       static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                       hms.hours().count(), hms.minutes().count(), hms.seconds().count(),
                       hms.subseconds().count());
}

namespace {

/// Reads exactly `n` digits at `pos`.
bool read_digits(std::string_view s, std::size_t& pos, std::size_t n, int& out) {
    if (pos + n > s.size()) return false;
    int value = 0;
    for (std::size_t i = 0; i < n; ++i) {
        const char c = s[pos + i];
        if (c < '0' || c > '9') return false;
        value = value * 10 + (c - '0');
    }
    pos += n;
    out = value;
    return true;
}

bool expect(std::string_view s, std::size_t& pos, char c) {
    if (pos >= s.size() || s[pos] != c) return false;
    ++pos;
    return true;
}

}  // namespace

Result<TimestampMs> parse_rfc3339(std::string_view s) {
    const auto bad = [&](std::string_view why) {
        return fail(Errc::invalid_argument, fmt::format("invalid RFC 3339 time '{}': {}", s, why));
    };
    std::size_t pos = 0;
    int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
    if (!read_digits(s, pos, 4, year) || !expect(s, pos, '-') || !read_digits(s, pos, 2, month) ||
        !expect(s, pos, '-') || !read_digits(s, pos, 2, day))
        return bad("expected YYYY-MM-DD");
    if (pos >= s.size() || (s[pos] != 'T' && s[pos] != 't' && s[pos] != ' '))
        return bad("expected 'T' after the date");
    ++pos;
    if (!read_digits(s, pos, 2, hour) || !expect(s, pos, ':') || !read_digits(s, pos, 2, minute) ||
        !expect(s, pos, ':') || !read_digits(s, pos, 2, second))
        return bad("expected hh:mm:ss");
    int millis = 0;
    if (pos < s.size() && s[pos] == '.') {
        ++pos;
        std::size_t digits = 0;
        while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
            if (digits < 3) millis = millis * 10 + (s[pos] - '0');
            ++digits;
            ++pos;
        }
        if (digits == 0) return bad("empty fraction");
        for (std::size_t i = digits; i < 3; ++i) millis *= 10;
    }
    int offset_min = 0;
    if (pos < s.size() && (s[pos] == 'Z' || s[pos] == 'z')) {
        ++pos;
    } else if (pos < s.size() && (s[pos] == '+' || s[pos] == '-')) {
        const int sign = s[pos] == '+' ? 1 : -1;
        ++pos;
        int oh = 0, om = 0;
        if (!read_digits(s, pos, 2, oh) || !expect(s, pos, ':') || !read_digits(s, pos, 2, om) || oh > 23 ||
            om > 59)
            return bad("bad offset");
        offset_min = sign * (oh * 60 + om);
    } else {
        return bad("missing 'Z' or offset");
    }
    if (pos != s.size()) return bad("trailing characters");
    if (year < 1970) return bad("year before 1970");
    if (hour > 23 || minute > 59 || second > 60) return bad("field out of range");
    const chr::year_month_day ymd{chr::year{year}, chr::month{static_cast<unsigned>(month)},
                                  chr::day{static_cast<unsigned>(day)}};
    if (!ymd.ok()) return bad("no such date");
    if (second == 60) second = 59;  // leap second: clamp, as POSIX time does
    const auto days = chr::sys_days{ymd}.time_since_epoch().count();
    const std::int64_t total_s =
        static_cast<std::int64_t>(days) * 86400 + hour * 3600 + minute * 60 + second - offset_min * 60;
    // An offset can move an instant at either end of the range across it;
    // format_rfc3339 writes neither 1969 nor 10000.
    const std::int64_t ms = total_s * 1000 + millis;
    const std::int64_t year_10000_ms =
        static_cast<std::int64_t>(chr::sys_days{chr::year{10000} / 1 / 1}.time_since_epoch().count()) * 86'400'000;
    if (ms < 0) return bad("before 1970 in UTC");
    if (ms >= year_10000_ms) return bad("after 9999 in UTC");
    return ms;
}

namespace {

/// `1h30m`, `15m`, `900`, `1.5`, `500ms`, `2d` -> seconds. No sign.
Result<double> parse_unsigned_duration(std::string_view s, std::string_view original) {
    const auto bad = [&](std::string_view why) {
        return fail(Errc::invalid_argument, fmt::format("invalid duration '{}': {}", original, why));
    };
    if (s.empty()) return bad("empty");
    double total = 0.0;
    std::size_t pos = 0;
    bool any_unit = false;
    while (pos < s.size()) {
        double value = 0.0;
        const auto [end, ec] = std::from_chars(s.data() + pos, s.data() + s.size(), value);
        if (ec != std::errc{} || end == s.data() + pos) return bad("expected a number");
        if (!std::isfinite(value) || value < 0) return bad("out of range");
        pos = static_cast<std::size_t>(end - s.data());
        std::size_t unit_end = pos;
        while (unit_end < s.size() && ((s[unit_end] >= 'a' && s[unit_end] <= 'z'))) ++unit_end;
        const std::string_view unit = s.substr(pos, unit_end - pos);
        double factor = 0.0;
        if (unit.empty()) {
            if (any_unit || unit_end != s.size()) return bad("a number without unit must stand alone");
            factor = 1.0;
        } else if (unit == "ms") {
            factor = 0.001;
        } else if (unit == "s") {
            factor = 1.0;
        } else if (unit == "m" || unit == "min") {
            factor = 60.0;
        } else if (unit == "h") {
            factor = 3600.0;
        } else if (unit == "d") {
            factor = 86400.0;
        } else {
            return bad(fmt::format("unknown unit '{}' (use ms, s, m, h or d)", unit));
        }
        if (!unit.empty()) any_unit = true;
        total += value * factor;
        pos = unit_end;
    }
    if (!std::isfinite(total) || total > 1e12) return bad("out of range");
    return total;
}

}  // namespace

Result<double> parse_duration(std::string_view text) {
    if (!text.empty() && text.front() == '-')
        return fail(Errc::invalid_argument, fmt::format("invalid duration '{}': must not be negative", text));
    std::string_view s = text;
    if (!s.empty() && s.front() == '+') s.remove_prefix(1);
    return parse_unsigned_duration(s, text);
}

Result<TimestampMs> parse_time(std::string_view text, TimestampMs now) {
    if (text == "now") return now;
    if (!text.empty() && (text.front() == '-' || text.front() == '+')) {
        const int sign = text.front() == '-' ? -1 : 1;
        auto seconds = parse_unsigned_duration(text.substr(1), text);
        if (!seconds) return fail(Errc::invalid_argument, seconds.error().message);
        return now + sign * static_cast<std::int64_t>(std::llround(*seconds * 1000.0));
    }
    auto absolute = parse_rfc3339(text);
    if (!absolute)
        return fail(Errc::invalid_argument,
                    fmt::format("invalid time '{}': expected RFC 3339 (2026-11-23T07:31:55Z), 'now' or "
                                "relative (-1h, -15m, +5m)",
                                text));
    return absolute;
}

std::string format_duration(double seconds) {
    if (!std::isfinite(seconds)) return "inf";
    if (seconds < 1.0 && seconds > 0.0) return fmt::format("{}ms", std::llround(seconds * 1000.0));
    auto s = std::llround(seconds);
    if (s == 0) return "0s";
    std::string out;
    if (s >= 86400) out += fmt::format("{}d", s / 86400), s %= 86400;
    if (s >= 3600) out += fmt::format("{}h", s / 3600), s %= 3600;
    if (s >= 60) out += fmt::format("{}m", s / 60), s %= 60;
    if (s > 0) out += fmt::format("{}s", s);
    return out;
}

}  // namespace der
