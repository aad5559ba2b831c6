#include "cli.hpp"

#include "der/util/log.hpp"
#include "der/util/text.hpp"
#include "der/version.hpp"

#include <fmt/core.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <iostream>

namespace der::cli {

namespace {
Signals g_signals;

extern "C" void on_signal(int sig) {
    g_signals.last.store(sig);
    if (sig == SIGHUP)
        g_signals.reload.store(true);
    else
        g_signals.stop.store(true);
}

/// `PROGRAM: error: MESSAGE` on stderr, a line per line of MESSAGE (a config
/// file's errors come several at once); under the journal each line carries
/// the error priority (`<3>`), so `journalctl -p err` shows why a unit did
/// not start.
void print_error(const std::string& program, const std::string& message) {
    const char* prefix = log::stderr_to_journal() ? "<3>" : "";
    std::string out;
    for (const auto line : split_lines(message))
        out += fmt::format("{}{}{}\n", prefix, out.empty() ? program + ": error: " : std::string(), line);
    std::cerr << out;
}
}  // namespace

void add_common_flags(CLI::App& app, LogOptions& log, const std::string& program) {
    app.add_option("--log-level", log.level, "Least severe log level shown: debug|info|warn|error")
        ->check(CLI::IsMember({"debug", "info", "warn", "error"}))
        ->envname("DER_LOG_LEVEL")
        ->capture_default_str();
    app.add_option("--log-format", log.format, "Log line format on stderr: text|json")
        ->check(CLI::IsMember({"text", "json"}))
        ->capture_default_str();
    app.set_version_flag("--version", version_line(program), "Print the version and exit");
}

void apply_log_options(const std::string& program, const LogOptions& options) {
    log::Level level{};
    log::Format format{};
    if (!log::parse_level(options.level, level)) throw ExitError(usage, "bad --log-level '" + options.level + "'");
    if (!log::parse_format(options.format, format))
        throw ExitError(usage, "bad --log-format '" + options.format + "'");
    log::configure(program, level, format);
}

int run_main(const std::string& program, CLI::App& app, int argc, char** argv, const std::function<int()>& body) {
    try {
        try {
            app.parse(argc, argv);
        } catch (const CLI::CallForHelp& e) {
            return app.exit(e);
        } catch (const CLI::CallForAllHelp& e) {
            return app.exit(e);
        } catch (const CLI::CallForVersion& e) {
            return app.exit(e);
        } catch (const CLI::ParseError& e) {
            std::cerr << program << ": error: " << e.what() << "\n"
                      << "Run with --help for more information.\n";
            return usage;
        }
        return body();
    } catch (const ExitError& e) {
        print_error(program, e.what());
        return e.code();
    } catch (const std::exception& e) {
        print_error(program, std::string("internal: ") + e.what());
        return software;
    }
}

Signals& install_signal_handlers(HandleHup hup) {
    struct sigaction sa {};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGTERM, &sa, nullptr);
    if (hup == HandleHup::yes) sigaction(SIGHUP, &sa, nullptr);
    std::signal(SIGPIPE, SIG_IGN);
    return g_signals;
}

std::string env_or(const char* name, const std::string& fallback) {
    const char* value = std::getenv(name);
    return value != nullptr && *value != '\0' ? std::string(value) : fallback;
}

}  // namespace der::cli
