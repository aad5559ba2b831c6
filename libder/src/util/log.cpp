// Implementation details: one line per event on stderr, written with a single
// write(2) so lines from several threads never interleave.
//   text:    `2026-11-23T07:31:55.123Z der-hub info: message`
//   json:    `{"ts":"…","program":"der-hub","level":"info","msg":"…"}`
// Under journald (JOURNAL_STREAM names our stderr) the text form drops the
// timestamp and program (journald records both) and starts with the sd-daemon
// priority prefix (`<6>` info, `<4>` warn, …) so `journalctl -p` filters work.
// DER_LOG_PRIORITY_PREFIX=1 asks for the same form when stderr is a pipe to
// a program that passes lines on to the journal (der-launch sets it for its
// agents when its own stderr is the journal).
#include "der/util/log.hpp"

#include "der/util/time.hpp"

#include <nlohmann/json.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <string>

namespace der::log {

namespace {

std::string g_program = "der";
std::atomic<int> g_level{static_cast<int>(Level::info)};
Format g_format = Format::text;
bool g_journal = false;

std::string_view level_name(Level level) {
    switch (level) {
    case Level::debug: return "debug";
    case Level::info: return "info";
    case Level::warn: return "warn";
    case Level::error: return "error";
    }
    return "info";
}

int syslog_priority(Level level) {
    switch (level) {
    case Level::debug: return 7;
    case Level::info: return 6;
    case Level::warn: return 4;
    case Level::error: return 3;
    }
    return 6;
}

bool stderr_is_journal() {
    if (const char* asked = std::getenv("DER_LOG_PRIORITY_PREFIX"); asked != nullptr && std::string_view(asked) == "1")
        return true;
    const char* stream = std::getenv("JOURNAL_STREAM");
    if (stream == nullptr) return false;
    struct stat st {};
    if (fstat(STDERR_FILENO, &st) != 0) return false;
    const std::string expected = std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
    return expected == stream;
}

}  // namespace

bool stderr_to_journal() { return stderr_is_journal(); }

void configure(std::string_view program, Level level, Format format) {
    g_program = std::string(program);
    g_level = static_cast<int>(level);
    g_format = format;
    g_journal = stderr_is_journal();
}

bool parse_level(std::string_view text, Level& out) {
    if (text == "debug") out = Level::debug;
    else if (text == "info") out = Level::info;
    else if (text == "warn" || text == "warning") out = Level::warn;
    else if (text == "error") out = Level::error;
    else return false;
    return true;
}

bool parse_format(std::string_view text, Format& out) {
    if (text == "text") out = Format::text;
    else if (text == "json") out = Format::json;
    else return false;
    return true;
}

bool enabled(Level level) noexcept { return static_cast<int>(level) >= g_level.load(std::memory_order_relaxed); }

void write(Level level, std::string_view message) {
    std::string line;
    if (g_format == Format::json) {
        nlohmann::json j;
        j["ts"] = format_rfc3339(now_ms());
        j["program"] = g_program;
        j["level"] = level_name(level);
        j["msg"] = message;
        line = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    } else if (g_journal) {
        line = fmt::format("<{}>{}", syslog_priority(level), message);
    } else {
        line = fmt::format("{} {} {}: {}", format_rfc3339(now_ms()), g_program, level_name(level), message);
    }
    line.push_back('\n');
    const char* p = line.data();
    std::size_t left = line.size();
    while (left > 0) {
        const ssize_t n = ::write(STDERR_FILENO, p, left);
        if (n <= 0) break;  // nowhere to log to: drop, never block or throw
        p += n;
        left -= static_cast<std::size_t>(n);
    }
}

}  // namespace der::log
