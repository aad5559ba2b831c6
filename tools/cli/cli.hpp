#pragma once
/// Plumbing every der program shares: common flags (--log-level,
/// --log-format, --version), endpoint defaults, the process edge that maps
/// errors to sysexits codes, and signal handling for event loops.

#include "der/util/error.hpp"

#include <CLI/CLI.hpp>

#include <atomic>
#include <functional>
#include <stdexcept>
#include <string>

namespace der::cli {

/// Default endpoints (DESIGN.md): everything but the agent endpoint on loopback.
inline constexpr const char* k_default_agents_bind = "tcp://*:7410";
inline constexpr const char* k_default_hub = "tcp://127.0.0.1:7410";
inline constexpr const char* k_default_control = "tcp://127.0.0.1:7411";
inline constexpr const char* k_default_stream = "tcp://127.0.0.1:7412";
inline constexpr const char* k_default_http = "127.0.0.1:7480";

/// Sysexits codes (sysexits.h names).
enum Exit : int {
    ok = 0,
    refused = 1,
    usage = 64,
    data_err = 65,
    no_input = 66,
    unavailable = 69,
    software = 70,
    io_err = 74,
    temp_fail = 75,
    config = 78,
    interrupted = 130,
};

/// An error that ends the program with a given exit status.
class ExitError : public std::runtime_error {
public:
    ExitError(int code, const std::string& message) : std::runtime_error(message), m_code(code) {}
    [[nodiscard]] int code() const noexcept { return m_code; }

private:
    int m_code;
};

/// Throws ExitError for a failed Result (code from der::exit_code), else returns the value.
template <class T>
T value_or_exit(Result<T> result) {
    if (!result) throw ExitError(exit_code(result.error().code), result.error().message);
    if constexpr (!std::is_void_v<T>) return std::move(*result);
}

struct LogOptions {
    std::string level = "info";
    std::string format = "text";
};

/// Adds --log-level, --log-format and --version (prints der::version_line).
void add_common_flags(CLI::App& app, LogOptions& log, const std::string& program);
/// Applies the log options (call after parsing). Throws ExitError(64) on bad values.
void apply_log_options(const std::string& program, const LogOptions& log);

/// Runs `body` as the program: parses argv with `app`, maps CLI11 errors to
/// 64 (help/version to 0), ExitError to its code, anything else to 70, and
/// prints `program: error: message` on stderr.
int run_main(const std::string& program, CLI::App& app, int argc, char** argv, const std::function<int()>& body);

/// SIGINT/SIGTERM (and SIGHUP when asked) set flags an event loop polls;
/// SIGPIPE is ignored so a closed pipe is an EPIPE write error, not death.
struct Signals {
    std::atomic<bool> stop{false};
    std::atomic<bool> reload{false};
    std::atomic<int> last{0};
};
enum class HandleHup { yes, no };
Signals& install_signal_handlers(HandleHup hup);

/// The value of an environment variable, or `fallback`.
std::string env_or(const char* name, const std::string& fallback);

}  // namespace der::cli
