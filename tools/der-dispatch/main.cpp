// der-dispatch: send a dispatch (or a scripted run of them from stdin) to
// der-hub over its control socket and report each result as a JSON line.

#include "cli.hpp"
#include "token.hpp"
#include "dispatch_run.hpp"
#include "flags.hpp"
#include "schedule.hpp"

#include "der/util/log.hpp"
#include "der/util/time.hpp"
#include "der/util/uuid.hpp"

#include <CLI/CLI.hpp>
#include <fmt/core.h>

#include <unistd.h>

#include <cmath>
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
    std::string site;
    std::string at;
    bool hub_schedule = false;
    std::string cancel;
    bool stop = false;
    std::string token_file;
};

/// The login name for `requested_by`: getlogin(), else $USER, else "unknown".
std::string login_name() {
    if (const char* name = ::getlogin(); name != nullptr && *name != '\0') return name;
    return der::cli::env_or("USER", "unknown");
}

void make_app(CLI::App& app, Options& o) {
    app.description(
        "Send a dispatch to der-hub: ASSET to MW (positive = discharge, negative = charge), or with --site SITE "
        "the site to MW, split by the hub across its available assets. Without ASSET and MW, reads a scripted "
        "run from stdin: JSON lines {\"asset\" or \"site\",\"mw\",\"duration_s\",\"at\",\"reason\"} or CSV "
        "with a header line (asset|site,mw,duration_s,at[,reason]); `at` is RFC 3339 or relative to the start "
        "(+5m), and each line is sent at its time, in input order (with --hub-schedule: all at once, held by "
        "the hub until their time). Every input line is checked before anything is sent. Prints one JSON line "
        "per dispatch: {\"line\" (stdin only), \"asset\", \"site\" (site dispatches only), \"dispatch_id\", "
        "\"state\", \"latency_ms\", \"error\"}. --cancel ID cancels a dispatch; --stop brings every asset (of "
        "--site) to 0 MW and cancels every open dispatch.\n"
        "Exit status: 0 all accepted (with --wait: all applied), 1 any refused, rejected or failed (with "
        "--wait: not applied), 64 usage, 65 bad input line, 66 --token-file unreadable, 69 hub unreachable, 75 no "
        "answer within --timeout, 78 bad token file, 130 interrupted.");
    app.add_option("ASSET", o.asset, "The asset: UUID or site/name (with --site: omitted, MW comes first)");
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
    app.add_option("--site", o.site, "Dispatch a whole site (UUID or name): MW split across its available assets "
                                     "by headroom; with --stop, stop only this site");
    app.add_option("--at", o.at, "Start at TIME (RFC 3339, or relative: +5m, +1h30m): the hub holds the dispatch "
                                 "(state scheduled) until then; the command does not need to stay running");
    app.add_flag("--hub-schedule", o.hub_schedule, "In stdin mode, send every line at once with its `at` as a "
                                                   "start time held by the hub, instead of sending it at that time");
    app.add_option("--cancel", o.cancel, "Cancel dispatch ID (UUID): cancelled, its asset(s) back to 0 MW");
    app.add_flag("--stop", o.stop, "Stop: every asset (of --site) to 0 MW at once, every open or scheduled "
                                   "dispatch cancelled");
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

/// The one dispatch of the command line: ASSET MW, or --site SITE MW.
der::cli::ScheduledDispatch command_line_dispatch(const Options& o) {
    using der::cli::ExitError;
    der::cli::ScheduledDispatch one;
    one.line = 1;
    if (!o.site.empty()) {
        // `--site north 2`: the one positional lands in ASSET; it is the MW.
        if (o.mw) throw ExitError(der::cli::usage, "with --site, give only MW (der-dispatch --site SITE MW)");
        if (o.asset.empty()) throw ExitError(der::cli::usage, "MW is missing (der-dispatch --site SITE MW)");
        try {
            std::size_t used = 0;
            one.mw = std::stod(o.asset, &used);
            if (used != o.asset.size() || !std::isfinite(one.mw)) throw std::invalid_argument(o.asset);
        } catch (const std::exception&) {
            throw ExitError(der::cli::usage, fmt::format("MW: '{}' is not a number", o.asset));
        }
        one.site = o.site;
    } else {
        if (!o.mw) throw ExitError(der::cli::usage, "MW is missing (der-dispatch ASSET MW)");
        one.asset = o.asset;
        one.mw = *o.mw;
    }
    if (!o.duration.empty()) one.duration_s = der::cli::seconds_of(o.duration);
    one.reason = o.reason;
    if (!o.at.empty()) {
        auto at = der::parse_time(o.at, der::now_ms());
        if (!at) throw ExitError(der::cli::usage, fmt::format("--at: {}", at.error().message));
        one.at_ms = *at;
    }
    return one;
}

/// Flags that belong to another mode are usage errors, not silently ignored.
void check_modes(const Options& o) {
    using der::cli::ExitError;
    if (!o.cancel.empty() && o.stop) throw ExitError(der::cli::usage, "--cancel and --stop exclude each other");
    const bool action = !o.cancel.empty() || o.stop;
    const char* which = o.stop ? "--stop" : "--cancel";
    if (action && (!o.asset.empty() || o.mw))
        throw ExitError(der::cli::usage, fmt::format("{} takes no ASSET or MW", which));
    if (action && (!o.at.empty() || !o.duration.empty() || o.wait || o.hub_schedule))
        throw ExitError(der::cli::usage, fmt::format("{} takes no --at, --for, --wait or --hub-schedule", which));
    if (!o.cancel.empty() && !o.site.empty()) throw ExitError(der::cli::usage, "--cancel takes no --site");
    const bool stdin_mode = !action && o.asset.empty() && !o.mw;
    if (stdin_mode && !o.site.empty()) throw ExitError(der::cli::usage, "MW is missing (der-dispatch --site SITE MW)");
    if (stdin_mode && !o.at.empty())
        throw ExitError(der::cli::usage, "--at is for one dispatch; in stdin mode use `at` with --hub-schedule");
    if (!stdin_mode && o.hub_schedule) throw ExitError(der::cli::usage, "--hub-schedule is for stdin mode");
}

int run(const Options& o) {
    using der::cli::ExitError;
    der::cli::apply_log_options(k_program, o.log);
    auto& signals = der::cli::install_signal_handlers(der::cli::HandleHup::no);
    check_modes(o);

    der::dispatch::RunSettings settings;
    settings.control = o.control;
    settings.token = der::cli::token_from_flag(o.token_file);
    settings.wait = o.wait ? der::dispatch::Wait::yes : der::dispatch::Wait::no;
    settings.timeout_ms = der::cli::milliseconds_of(o.timeout);
    settings.requested_by = o.requested_by.empty() ? login_name() : o.requested_by;

    if (!o.cancel.empty()) {
        auto id = der::Uuid::parse(o.cancel);
        if (!id) throw ExitError(der::cli::usage, fmt::format("--cancel: '{}' is not a dispatch UUID", o.cancel));
        return der::dispatch::cancel_dispatch(*id, o.reason, settings, signals.stop);
    }
    if (o.stop) return der::dispatch::stop_assets(o.site, o.reason, settings, signals.stop);

    std::vector<der::cli::ScheduledDispatch> dispatches;
    if (o.asset.empty() && !o.mw) {
        dispatches = read_stdin_schedule(o);
        settings.line_numbers = der::dispatch::LineNumbers::yes;
        if (o.hub_schedule) settings.timing = der::dispatch::Timing::hub;
        if (dispatches.empty()) {
            der::log::warn("no dispatch on stdin");
            return der::cli::ok;
        }
    } else {
        dispatches.push_back(command_line_dispatch(o));
        settings.timing = der::dispatch::Timing::hub;  // --at is held by the hub
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
