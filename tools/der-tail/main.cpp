// der-tail: follow der-hub's live stream: telemetry (and, with --events,
// dispatch and agent events) as JSON lines, a table or CSV.

#include "cli.hpp"
#include "token.hpp"
#include "flags.hpp"
#include "output.hpp"
#include "tail.hpp"

#include <CLI/CLI.hpp>

#include <optional>
#include <string>
#include <vector>

namespace {

const std::string k_program = "der-tail";

struct Options {
    der::cli::LogOptions log;
    std::vector<std::string> assets;
    std::vector<std::string> sites;
    bool events = false;
    std::string format = "json";
    std::optional<std::uint64_t> count;
    bool snapshot = false;
    std::string stream = der::cli::k_default_stream;
    std::string control = der::cli::k_default_control;
    std::string timeout = "5";
    std::string token_file;
};

void make_app(CLI::App& app, Options& o) {
    app.description(
        "Follow der-hub's live stream: one telemetry record a line as it arrives (JSON: the record plus \"asset\": "
        "\"site/name\"), flushed per line. Survives hub restarts. Reports \"subscribed\" on stderr once the "
        "subscription is in place. Ends quietly (status 0) when stdout is closed, e.g. `der-tail | head -3`.\n"
        "Exit status: 0 done (-n reached, stdout closed, SIGTERM), 64 usage or unknown --asset/--site, 66 --token-file "
        "unreadable, 69 hub unreachable and 75 no answer (when names must be resolved or with --snapshot), 74 stdout write error, "
        "78 bad token file, 130 interrupted (SIGINT).");
    app.add_option("--asset", o.assets, "Only this asset (UUID or site/name); repeatable");
    app.add_option("--site", o.sites, "Only the assets of this site (UUID or name); repeatable");
    app.add_flag("--events", o.events,
                 "Also dispatch state changes and agent online/offline/heartbeat events; every line then has "
                 "\"type\": telemetry|dispatch|agent");
    app.add_option("--format", o.format, "json (one object a line), table (aligned columns) or csv (header, rows)")
        ->check(CLI::IsMember({"json", "table", "csv"}))
        ->capture_default_str();
    app.add_option("-n,--count", o.count, "Exit after this many lines (headers not counted)")
        ->check(der::cli::count_at_least(0));
    app.add_flag("--snapshot", o.snapshot, "First print the latest record of every matching asset");
    app.add_option("--stream", o.stream, "The hub's stream endpoint")->envname("DER_STREAM")->capture_default_str();
    app.add_option("--control", o.control,
                   "The hub's control endpoint, for asset names, --asset/--site and --snapshot")
        ->envname("DER_CONTROL")
        ->capture_default_str();
    app.add_option("--timeout", o.timeout, "How long to wait for the control socket's answers")
        ->check(der::cli::positive_duration())
        ->capture_default_str();
    der::cli::add_token_flag(app, o.token_file);
    der::cli::add_common_flags(app, o.log, k_program);
}

int run(const Options& o) {
    der::cli::apply_log_options(k_program, o.log);
    auto& signals = der::cli::install_signal_handlers(der::cli::HandleHup::no);
    der::tail::TailSettings settings;
    settings.stream = o.stream;
    settings.control = o.control;
    settings.token = der::cli::token_from_flag(o.token_file);
    settings.assets = o.assets;
    settings.sites = o.sites;
    settings.events = o.events ? der::tail::Events::yes : der::tail::Events::no;
    settings.snapshot = o.snapshot ? der::tail::Snapshot::yes : der::tail::Snapshot::no;
    settings.format = *der::cli::parse_format(o.format);
    settings.count = o.count;
    settings.control_timeout_ms = der::cli::milliseconds_of(o.timeout);
    return der::tail::run_tail(settings, signals.stop, signals.last);
}

}  // namespace

int main(int argc, char** argv) {
    Options options;
    CLI::App app{"", k_program};
    make_app(app, options);
    return der::cli::run_main(k_program, app, argc, argv, [&] { return run(options); });
}
