// der-dispatch: send a dispatch (or a scripted run of them from stdin) to
// der-hub over its control socket and report each result as a JSON line.

#include "cli.hpp"
#include "token.hpp"
#include "dispatch_run.hpp"
#include "flags.hpp"
#include "schedule.hpp"

#include "der/util/log.hpp"
#include "der/util/time.hpp"

#include <CLI/CLI.hpp>

#include <unistd.h>

#include <iostream>
#include <iterator>
#include <optional>
#include <string>

namespace {

const std::string k_program = "der-dispatch";

struct Options {
    der::cli::LogOptions log;
    std::string asset;
    std::optional<double> mw;
    std::string duration;
    bool wait = false;
    std::string timeout = "10";
    std::string reason;
    std::string requested_by;
    std::string control = der::cli::k_default_control;
    std::string token_file;
};

/// The login name for `requested_by`: getlogin(), else $USER, else "unknown".
std::string login_name() {
    if (const char* name = ::getlogin(); name != nullptr && *name != '\0') return name;
    return der::cli::env_or("USER", "unknown");
}

void make_app(CLI::App& app, Options& o) {
    app.description(
        "Send a dispatch to der-hub: ASSET to MW (positive = discharge, negative = charge). Without ASSET and MW, "
        "reads a scripted run from stdin: JSON lines {\"asset\",\"mw\",\"duration_s\",\"at\",\"reason\"} or CSV "
        "with a header line (asset,mw,duration_s,at[,reason]); `at` is RFC 3339 or relative to the start "
        "(+5m), and each line is sent at its time, in input order. Every input line is checked before anything "
        "is sent. Prints one JSON line per dispatch: {\"line\" (stdin only), \"asset\", \"dispatch_id\", "
        "\"state\", \"latency_ms\", \"error\"}.\n"
        "Exit status: 0 all accepted (with --wait: all applied), 1 any refused, rejected or failed (with "
        "--wait: not applied), 64 usage, 65 bad input line, 69 hub unreachable, 75 no answer within "
        "--timeout, 130 interrupted.");
    app.add_option("ASSET", o.asset, "The asset: UUID or site/name");
    app.add_option("MW", o.mw, "Setpoint in MW: positive = discharge, negative = charge (use -- before a "
                               "negative value if it is taken for a flag)");
    app.add_option("--for", o.duration, "How long the setpoint holds (900, 15m, 1h30m); then it reverts to 0 MW. "
                                        "Default: until replaced. In stdin mode, for lines without duration_s")
        ->check(der::cli::positive_duration());
    app.add_flag("--wait", o.wait, "Wait until the agent applied (or rejected) the setpoint, not only until the hub "
                                   "accepted it");
    app.add_option("--timeout", o.timeout, "How long to wait for each dispatch's (final) reply")
        ->check(der::cli::positive_duration())
        ->capture_default_str();
    app.add_option("--reason", o.reason, "Why (stored with the dispatch); in stdin mode, for lines without reason");
    app.add_option("--requested-by", o.requested_by, "Who asks (default: the login name)");
    app.add_option("--control", o.control, "The hub's control endpoint")
        ->envname("DER_CONTROL")
        ->capture_default_str();
    der::cli::add_token_flag(app, o.token_file);
    der::cli::add_common_flags(app, o.log, k_program);
}

std::vector<der::cli::ScheduledDispatch> read_stdin_schedule(const Options& o) {
    using der::cli::ExitError;
    if (::isatty(STDIN_FILENO) == 1)
        throw ExitError(der::cli::usage, "give ASSET and MW, or a dispatch run (JSON lines or CSV) on stdin");
    const std::string text{std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>()};
    if (std::cin.bad()) throw ExitError(der::cli::io_err, "reading stdin failed");
    auto schedule = der::cli::value_or_exit(der::cli::parse_schedule(text, der::now_ms()));
    for (auto& line : schedule) {
        if (!line.duration_s && !o.duration.empty()) line.duration_s = der::cli::seconds_of(o.duration);
        if (line.reason.empty()) line.reason = o.reason;
    }
    return schedule;
}

int run(const Options& o) {
    using der::cli::ExitError;
    der::cli::apply_log_options(k_program, o.log);
    auto& signals = der::cli::install_signal_handlers(der::cli::HandleHup::no);

    der::dispatch::RunSettings settings;
    settings.control = o.control;
    settings.token = der::cli::token_from_flag(o.token_file);
    settings.wait = o.wait ? der::dispatch::Wait::yes : der::dispatch::Wait::no;
    settings.timeout_ms = der::cli::milliseconds_of(o.timeout);
    settings.requested_by = o.requested_by.empty() ? login_name() : o.requested_by;

    std::vector<der::cli::ScheduledDispatch> dispatches;
    if (o.asset.empty()) {
        dispatches = read_stdin_schedule(o);
        settings.line_numbers = der::dispatch::LineNumbers::yes;
        if (dispatches.empty()) {
            der::log::warn("no dispatch on stdin");
            return der::cli::ok;
        }
    } else {
        if (!o.mw) throw ExitError(der::cli::usage, "MW is missing (der-dispatch ASSET MW)");
        der::cli::ScheduledDispatch one;
        one.line = 1;
        one.asset = o.asset;
        one.mw = *o.mw;
        if (!o.duration.empty()) one.duration_s = der::cli::seconds_of(o.duration);
        one.reason = o.reason;
        dispatches.push_back(std::move(one));
    }
    return der::dispatch::run_dispatches(dispatches, settings, signals.stop);
}

}  // namespace

int main(int argc, char** argv) {
    Options options;
    CLI::App app{"", k_program};
    make_app(app, options);
    return der::cli::run_main(k_program, app, argc, argv, [&] { return run(options); });
}
