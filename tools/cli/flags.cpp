#include "flags.hpp"

#include "cli.hpp"

#include "der/util/time.hpp"

#include <fmt/core.h>

#include <algorithm>
#include <cmath>

namespace der::cli {

CLI::Validator positive_duration() {
    return CLI::Validator(
        [](const std::string& text) -> std::string {
            const auto seconds = parse_duration(text);
            if (!seconds) return seconds.error().message;
            if (!(*seconds > 0.0)) return "must be longer than 0";
            return {};
        },
        "DURATION");
}

CLI::Validator count_at_least(std::uint64_t min) {
    return CLI::Validator(
        [min](const std::string& text) -> std::string {
            const bool digits = !text.empty() && text.size() <= 19 &&
                                std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
            if (!digits) return fmt::format("'{}' is not a whole number", text);
            if (std::stoull(text) < min) return fmt::format("must be at least {}", min);
            return {};
        },
        "");
}

double seconds_of(const std::string& text) { return value_or_exit(parse_duration(text)); }

long long milliseconds_of(const std::string& text) {
    return std::max(1LL, std::llround(seconds_of(text) * 1000.0));
}

}  // namespace der::cli
