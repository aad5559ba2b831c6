#pragma once
/// Flag helpers the CLIs share beyond cli.hpp: durations as users write them.

#include <CLI/CLI.hpp>

#include <string>

namespace der::cli {

/// A CLI11 check: a duration der::parse_duration reads (`10`, `1.5`, `15m`,
/// `500ms`) that is longer than 0.
CLI::Validator positive_duration();
/// The seconds of a duration already checked by positive_duration().
double seconds_of(const std::string& text);
/// Milliseconds of the same, rounded, at least 1.
long long milliseconds_of(const std::string& text);

}  // namespace der::cli
