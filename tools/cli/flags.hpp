#pragma once
/// Flag helpers the CLIs share beyond cli.hpp: durations as users write them.

#include <CLI/CLI.hpp>

#include <cstdint>
#include <string>

namespace der::cli {

/// A CLI11 check: a duration der::parse_duration reads (`10`, `1.5`, `15m`,
/// `500ms`) that is longer than 0.
CLI::Validator positive_duration();
/// A whole number of at least `min` written in decimal digits only (CLI11 would
/// wrap "-1" into a huge unsigned value, and says "not in range 0.000000 to
/// 1.79e308" for 0 under PositiveNumber).
CLI::Validator count_at_least(std::uint64_t min);
/// The seconds of a duration already checked by positive_duration().
double seconds_of(const std::string& text);
/// Milliseconds of the same, rounded, at least 1.
long long milliseconds_of(const std::string& text);

}  // namespace der::cli
