// der-history: export an asset's telemetry, dispatch or heartbeat history
// from der-hub's control socket, as JSON lines or CSV, streamed chunk by
// chunk (memory stays bounded whatever the range).

#include "cli.hpp"
#include "token.hpp"
#include "control_client.hpp"
#include "flags.hpp"
#include "output.hpp"

#include "der/json_codec.hpp"
#include "der/util/log.hpp"
#include "der/util/time.hpp"
#include "der/wire_codec.hpp"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <optional>
#include <string>

namespace {

const std::string k_program = "der-history";

struct Options {
    der::cli::LogOptions log;
    std::string kind;
    std::string asset;
    std::string since = "-1h";
    std::string until = "now";
    std::string every;
    std::optional<std::uint64_t> limit;
    std::string format = "json";
    std::string control = der::cli::k_default_control;
    std::string timeout = "10";
    std::string token_file;
};

void make_app(CLI::App& app, Options& o) {
    app.description(
        "Print an asset's history from der-hub, oldest first: telemetry, dispatches or heartbeats, as JSON lines "
        "or CSV, each chunk as it arrives. --every gives telemetry per time bucket (count and avg/min/max of "
        "soc_pct and current_mw).\n"
        "Exit status: 0 done, 1 the hub refused the request (unknown asset, bad range), 64 usage, 66 --token-file "
        "unreadable, 69 hub unreachable, 75 no answer within --timeout, 74 stdout write error, 78 bad token file, "
        "130 interrupted.");
    app.add_option("KIND", o.kind, "What: telemetry, dispatch or heartbeat")
        ->required()
        ->check(CLI::IsMember({"telemetry", "dispatch", "heartbeat"}));
    app.add_option("ASSET", o.asset, "The asset: UUID or site/name")->required();
    app.add_option("--since", o.since, "From (inclusive): RFC 3339, 'now' or relative (-1h, -15m, -2d)")
        ->capture_default_str();
    app.add_option("--until", o.until, "Until (exclusive): RFC 3339, 'now' or relative")->capture_default_str();
    app.add_option("--every", o.every, "Telemetry only: one row per bucket of this length (1m, 15m, 1h)")
        ->check(der::cli::positive_duration());
    app.add_option("--limit", o.limit, "At most this many rows")->check(der::cli::count_at_least(1));
    app.add_option("--format", o.format, "Output: json (one object a line) or csv (a header line, then rows)")
        ->check(CLI::IsMember({"json", "csv"}))
        ->capture_default_str();
    app.add_option("--control", o.control, "The hub's control endpoint")
        ->envname("DER_CONTROL")
        ->capture_default_str();
    app.add_option("--timeout", o.timeout, "How long to wait for the first reply, and between chunks")
        ->check(der::cli::positive_duration())
        ->capture_default_str();
    der::cli::add_token_flag(app, o.token_file);
    der::cli::add_common_flags(app, o.log, k_program);
}

std::vector<der::cli::Column> csv_columns(der::wire::HistoryKind kind, bool buckets) {
    using C = der::cli::Column;
    if (buckets)
        return {C{"ts"},          C{"asset_id"},       C{"count"},          C{"soc_pct_avg"}, C{"soc_pct_min"},
                C{"soc_pct_max"}, C{"current_mw_avg"}, C{"current_mw_min"}, C{"current_mw_max"}};
    switch (kind) {
    case der::wire::HistoryKind::telemetry:
        return {C{"ts"},         C{"asset_id"},   C{"site_id"},    C{"epoch"},  C{"seq"},
                C{"soc_mwh"},    C{"soc_pct"},    C{"capacity_mwh"}, C{"current_mw"}, C{"setpoint_mw"},
                C{"max_mw"},     C{"min_mw"},     C{"status"},     C{"dispatch_id"}};
    case der::wire::HistoryKind::dispatch:
        return {C{"created_at"}, C{"dispatch_id"}, C{"asset_id"}, C{"mw"},    C{"duration_s"},
                C{"state"},      C{"reason"},      C{"requested_by"}, C{"start_at"}, C{"parent_id"},
                C{"error"},      C{"states"}};
    case der::wire::HistoryKind::heartbeat:
        return {C{"ts"}, C{"asset_id"}, C{"uptime_s"}, C{"buffered"}, C{"agent_version"}};
    }
    return {};
}

der::TimestampMs parse_when(const std::string& text, const char* flag, der::TimestampMs now) {
    auto when = der::parse_time(text, now);
    if (!when) throw der::cli::ExitError(der::cli::usage, std::string(flag) + ": " + when.error().message);
    return *when;
}

/// Prints the rows of one chunk; false once stdout is closed.
bool print_rows(const der::wire::HistoryRows& chunk, der::cli::RowWriter& out, std::uint64_t& printed) {
    return std::visit(
        [&](const auto& rows) {
            for (const auto& row : rows) {
                if (out.write(nlohmann::json(row)) == der::cli::Written::closed) return false;
                ++printed;
            }
            return true;
        },
        chunk.rows);
}

int run(const Options& o) {
    using der::cli::ExitError;
    der::cli::apply_log_options(k_program, o.log);
    auto& signals = der::cli::install_signal_handlers(der::cli::HandleHup::no);

    const auto now = der::now_ms();
    der::wire::HistoryRequest request;
    request.request_id = der::cli::new_request_id();
    request.kind = o.kind == "telemetry"  ? der::wire::HistoryKind::telemetry
                   : o.kind == "dispatch" ? der::wire::HistoryKind::dispatch
                                          : der::wire::HistoryKind::heartbeat;
    request.asset = o.asset;
    request.since = parse_when(o.since, "--since", now);
    request.until = parse_when(o.until, "--until", now);
    if (*request.since > *request.until) throw ExitError(der::cli::usage, "--since is after --until");
    if (!o.every.empty()) {
        if (request.kind != der::wire::HistoryKind::telemetry)
            throw ExitError(der::cli::usage, "--every applies to telemetry only");
        request.every_s = der::cli::seconds_of(o.every);
    }
    request.limit = o.limit;

    const auto format = o.format == "csv" ? der::cli::Format::csv : der::cli::Format::json;
    der::cli::RowWriter out(der::cli::RowFormatter(format, csv_columns(request.kind, request.every_s.has_value())));
    const std::int64_t timeout_ms = der::cli::milliseconds_of(o.timeout);

    der::cli::ControlClient client(o.control, &signals.stop);
    client.set_token(der::cli::token_from_flag(o.token_file));
    client.send(request);
    std::uint64_t printed = 0;
    while (true) {
        auto reply = client.receive(timeout_ms);  // the deadline restarts with every chunk
        if (signals.stop.load()) return der::cli::interrupted;
        if (!reply) {
            const auto error = client.no_answer("history");
            throw ExitError(der::exit_code(error.code), error.message);
        }
        if (der::cli::request_id_of(*reply) != request.request_id) continue;
        if (const auto* chunk = std::get_if<der::wire::HistoryRows>(&*reply)) {
            if (!print_rows(*chunk, out, printed)) return der::cli::ok;  // stdout closed: quietly done
        } else if (const auto* end = std::get_if<der::wire::HistoryEnd>(&*reply)) {
            if (end->count != printed)
                der::log::warn("the hub counted {} rows, {} arrived", end->count, printed);
            der::log::debug("{} rows", printed);
            return der::cli::ok;
        } else if (const auto* error = std::get_if<der::wire::ErrorReply>(&*reply)) {
            throw ExitError(der::cli::refused, error->code + ": " + error->message);
        } else {
            throw ExitError(der::cli::software,
                            fmt::format("unexpected '{}' reply to history", der::wire::type_name(*reply)));
        }
    }
}

}  // namespace

int main(int argc, char** argv) {
    Options options;
    CLI::App app{"", k_program};
    make_app(app, options);
    return der::cli::run_main(k_program, app, argc, argv, [&] { return run(options); });
}
