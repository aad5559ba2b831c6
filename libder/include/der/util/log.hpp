#pragma once
/// Logging to stderr, one event a line, text or JSON, with levels journald
/// understands (`<3>`-style prefixes when stderr is the journal).
/// Thread-safe: each line is written with one write(2).

#include <fmt/core.h>

#include <string_view>

namespace der::log {

enum class Level { debug, info, warn, error };
enum class Format { text, json };

/// Set once at start, before threads are spawned.
void configure(std::string_view program, Level level, Format format);
bool parse_level(std::string_view text, Level& out);
bool parse_format(std::string_view text, Format& out);
bool enabled(Level level) noexcept;
/// Whether stderr goes to the journal (or DER_LOG_PRIORITY_PREFIX=1): its
/// lines then need an sd-daemon priority prefix (`<3>`) to keep their level.
bool stderr_to_journal();
void write(Level level, std::string_view message);

template <class... Args>
void debug(fmt::format_string<Args...> f, Args&&... args) {
    if (enabled(Level::debug)) write(Level::debug, fmt::format(f, std::forward<Args>(args)...));
}
template <class... Args>
void info(fmt::format_string<Args...> f, Args&&... args) {
    if (enabled(Level::info)) write(Level::info, fmt::format(f, std::forward<Args>(args)...));
}
template <class... Args>
void warn(fmt::format_string<Args...> f, Args&&... args) {
    if (enabled(Level::warn)) write(Level::warn, fmt::format(f, std::forward<Args>(args)...));
}
template <class... Args>
void error(fmt::format_string<Args...> f, Args&&... args) {
    if (enabled(Level::error)) write(Level::error, fmt::format(f, std::forward<Args>(args)...));
}

}  // namespace der::log
