// der-agent: one battery's edge agent. Parses flags and runs der_agent_core.

#include "agent_loop.hpp"
#include "asset_source.hpp"
#include "cli.hpp"
#include "curve_keys.hpp"

#include "der/util/log.hpp"
#include "der/util/time.hpp"

#include <CLI/CLI.hpp>

#include "der/adapters/adapter.hpp"

#include <fmt/core.h>

#include <malloc.h>

#include <optional>
#include <string>
#include <tuple>
#include <vector>

namespace {

const std::string k_program = "der-agent";

struct Options {
    der::cli::LogOptions log;
    std::string hub = der::cli::k_default_hub;
    std::string asset;
    std::string config;
    std::optional<double> capacity_mwh;
    std::optional<double> max_mw;
    std::optional<double> min_mw;
    double ramp_mw_per_s = 0.0;
    double efficiency = 0.9;
    double soc_min_pct = 0.0;
    double soc_max_pct = 100.0;
    double initial_soc_pct = 50.0;
    std::string adapter;                       ///< empty = the config's, else sim
    std::string exec;                          ///< --exec: adapter.command
    std::string modbus;                        ///< --modbus HOST[:PORT]: adapter.host, adapter.port
    std::vector<std::string> adapter_options;  ///< KEY=VALUE
    std::string tick = "1s";
    std::string telemetry_interval = "4s";
    std::size_t buffer = 10'000;
    std::string on_hub_loss = "hold";
    std::string hub_timeout = "60s";
    std::string spool;  ///< empty = memory only
    std::uint64_t spool_max_bytes = der::agent::SpoolOptions::k_default_max_bytes;
    std::string curve_server_key;   ///< the hub's public key, or a file holding it
    std::string curve_secret_file;  ///< the agent's secret key
};

/// A CLI11 check for durations as der::parse_duration reads them, > 0.
CLI::Validator positive_duration() {
    return CLI::Validator(
        [](const std::string& text) -> std::string {
            const auto seconds = der::parse_duration(text);
            if (!seconds) return seconds.error().message;
            if (!(*seconds > 0.0)) return "must be longer than 0";
            return {};
        },
        "DURATION");
}

double seconds_of(const std::string& text) {
    return der::cli::value_or_exit(der::parse_duration(text));
}

void make_app(CLI::App& app, Options& o) {
    app.description(
        "Edge agent of one battery: connects out to der-hub, registers, sends telemetry and heartbeats, "
        "applies setpoints, and buffers telemetry through hub restarts and network drops.");
    app.add_option("--hub", o.hub, "The hub's agent endpoint")->envname("DER_HUB")->capture_default_str();
    app.add_option("--asset", o.asset, "The asset: UUID or site/name")->required();
    // No CLI::ExistingFile: the loader's error names the file and exits 66.
    auto* config = app.add_option("--config", o.config, "assets.yaml holding the asset and its limits");
    const std::string limits = "Limits (without --config)";
    app.add_option("--capacity-mwh", o.capacity_mwh,
                   "Usable energy when full, MWh (required without --config)")
        ->group(limits)
        ->excludes(config);
    app.add_option("--max-mw", o.max_mw, "Discharge limit, MW >= 0 (required without --config)")
        ->group(limits)
        ->excludes(config);
    app.add_option("--min-mw", o.min_mw, "Charge limit, MW <= 0 (required without --config)")
        ->group(limits)
        ->excludes(config);
    app.add_option("--ramp-mw-per-s", o.ramp_mw_per_s, "Ramp limit, MW/s (0 = none)")
        ->group(limits)
        ->excludes(config)
        ->capture_default_str();
    app.add_option("--efficiency", o.efficiency, "Round-trip efficiency, (0, 1]")
        ->group(limits)
        ->excludes(config)
        ->capture_default_str();
    app.add_option("--soc-min-pct", o.soc_min_pct, "Discharge stops at this SOC, %")
        ->group(limits)
        ->excludes(config)
        ->capture_default_str();
    app.add_option("--soc-max-pct", o.soc_max_pct, "Charge stops at this SOC, %")
        ->group(limits)
        ->excludes(config)
        ->capture_default_str();
    app.add_option("--initial-soc-pct", o.initial_soc_pct, "SOC of the simulated battery at start, %")
        ->group(limits)
        ->excludes(config)
        ->capture_default_str();
    std::vector<std::string> kinds;
    for (const auto kind : der::adapters::adapter_kinds()) kinds.emplace_back(kind);
    const std::string device = "Device (docs/adapters.md)";
    // An empty value (`--exec "$UNSET"`) would otherwise run the simulator in the device's place.
    const CLI::Validator not_empty(
        [](const std::string& v) { return v.empty() ? std::string("must not be empty") : std::string(); }, "");
    app.add_option("--adapter", o.adapter,
                   "How to reach the device: " + CLI::detail::join(kinds, "|") +
                       " (default: the config's adapter.type, else sim)")
        ->group(device)
        ->envname("DER_ADAPTER")
        ->check(CLI::IsMember(kinds));
    app.add_option(
           "--exec", o.exec,
           "exec adapter: the device program, run as /bin/sh -c CMD (overrides adapter.command; implies "
           "--adapter exec)")
        ->group(device)
        ->check(not_empty);
    app.add_option("--modbus", o.modbus,
                   "modbus adapter: the device as HOST[:PORT] (overrides adapter.host/port; implies "
                   "--adapter modbus)")
        ->group(device)
        ->check(not_empty);
    app.add_option("--adapter-option", o.adapter_options,
                   "An adapter option KEY=VALUE, as in assets.yaml's adapter map (dotted keys); repeatable")
        ->group(device)
        ->take_all();
    app.add_option("--tick", o.tick, "Device tick (sim step) interval")
        ->check(positive_duration())
        ->capture_default_str();
    app.add_option("--telemetry-interval", o.telemetry_interval,
                   "Telemetry interval until the hub's welcome sets it (default: the config's, else 4s)")
        ->check(positive_duration());
    app.add_option("--buffer", o.buffer, "Telemetry records kept until the hub acknowledges them")
        ->check(CLI::Range(std::size_t{1}, std::size_t{100'000'000}))
        ->capture_default_str();
    auto* spool = app.add_option("--spool", o.spool,
                                 "Directory for the disk spool of unacknowledged telemetry (survives a "
                                 "restart; default: memory only)");
    app.add_option("--spool-max-bytes", o.spool_max_bytes, "Bound of the spool file, bytes")
        ->check(CLI::Range(der::agent::SpoolOptions::k_min_max_bytes, std::uint64_t{1} << 40))
        ->needs(spool)
        ->capture_default_str();
    app.add_option("--on-hub-loss", o.on_hub_loss,
                   "After --hub-timeout without the hub: hold or zero the setpoint")
        ->check(CLI::IsMember({"hold", "zero"}))
        ->capture_default_str();
    app.add_option("--hub-timeout", o.hub_timeout, "Silence from the hub after which it counts as lost")
        ->check(positive_duration())
        ->capture_default_str();
    const std::string security = "Security (docs/security.md)";
    app.add_option("--curve-server-key", o.curve_server_key,
                   "The hub's CURVE public key (40 Z85 characters) or a file holding it; with --curve-secret-file")
        ->envname("DER_CURVE_SERVER_KEY")
        ->group(security);
    app.add_option("--curve-secret-file", o.curve_secret_file,
                   "This agent's CURVE secret key file (der-hub keygen); its public key goes in assets.yaml")
        ->envname("DER_AGENT_CURVE_SECRET_FILE")
        ->group(security);
    der::cli::add_common_flags(app, o.log, k_program);
}

/// The CURVE keys of --curve-server-key and --curve-secret-file (both or neither).
std::optional<der::agent::CurveClientKeys> curve_keys_of(const Options& o) {
    using der::cli::ExitError;
    if (o.curve_server_key.empty() && o.curve_secret_file.empty()) return std::nullopt;
    if (o.curve_server_key.empty() || o.curve_secret_file.empty())
        throw ExitError(der::cli::usage, "--curve-server-key and --curve-secret-file go together");
    der::agent::CurveClientKeys keys;
    keys.server_public = der::cli::value_or_exit(der::cli::key_or_file(o.curve_server_key));
    keys.secret_key = der::cli::value_or_exit(der::cli::read_key_file(o.curve_secret_file));
    keys.public_key = der::cli::value_or_exit(der::cli::public_key_of(keys.secret_key));
    return keys;
}

/// The adapter to use: the asset's, overridden by --adapter, --exec,
/// --modbus and --adapter-option. Another kind than the config's starts
/// from no options (they belong to the config's kind).
der::AdapterConfig adapter_config_of(const Options& o, const der::AdapterConfig& from_config) {
    using der::cli::ExitError;
    std::string kind = o.adapter;
    for (const auto& [flag, implied, given] : {std::tuple{"--exec", "exec", !o.exec.empty()},
                                               std::tuple{"--modbus", "modbus", !o.modbus.empty()}}) {
        if (!given) continue;
        if (!kind.empty() && kind != implied)
            throw ExitError(der::cli::usage,
                            fmt::format("{} needs --adapter {} (got --adapter {})", flag, implied, kind));
        kind = implied;
    }
    der::AdapterConfig config = from_config;
    if (!kind.empty() && kind != from_config.kind) {
        config.kind = kind;
        config.options.clear();
    }
    if (!o.exec.empty()) config.options["command"] = o.exec;
    if (!o.modbus.empty()) {
        // HOST, HOST:PORT, [V6], [V6]:PORT
        const auto bad = [&] {
            return ExitError(der::cli::usage, "--modbus: want HOST[:PORT], got '" + o.modbus + "'");
        };
        std::string host = o.modbus;
        std::string port;
        if (host.front() == '[') {
            const auto close = host.find(']');
            if (close == std::string::npos) throw bad();
            const std::string rest = host.substr(close + 1);
            host = host.substr(1, close - 1);
            if (!rest.empty()) {
                if (rest.front() != ':') throw bad();
                port = rest.substr(1);
            }
        } else if (const auto colon = host.find(':'); colon != std::string::npos) {
            if (host.find(':', colon + 1) != std::string::npos) throw bad();  // bare IPv6: use [..]
            port = host.substr(colon + 1);
            host.resize(colon);
        }
        if (host.empty() || (port.empty() && o.modbus.back() == ':')) throw bad();
        config.options["host"] = host;
        if (!port.empty()) config.options["port"] = port;
    }
    for (const auto& option : o.adapter_options) {
        const auto eq = option.find('=');
        if (eq == std::string::npos || eq == 0)
            throw ExitError(der::cli::usage, "--adapter-option: want KEY=VALUE, got '" + option + "'");
        config.options[option.substr(0, eq)] = option.substr(eq + 1);
    }
    return config;
}

int run(CLI::App& app, const Options& o) {
    using der::cli::ExitError;
    der::cli::apply_log_options(k_program, o.log);
    auto& signals = der::cli::install_signal_handlers(der::cli::HandleHup::no);
    const auto curve = curve_keys_of(o);
    if (curve) {
        der::log::info("CURVE on: this agent's public key is {}", curve->public_key);
    } else {
        der::log::warn("no CURVE keys: talking to the hub in plain text");
    }

    der::agent::AssetSource source;
    if (!o.config.empty()) {
        source = der::cli::value_or_exit(der::agent::asset_from_config(o.config, o.asset));
    } else {
        if (!o.capacity_mwh || !o.max_mw || !o.min_mw)
            throw ExitError(der::cli::usage,
                            "--capacity-mwh, --max-mw and --min-mw are required without --config");
        der::BessLimits limits;
        limits.capacity_mwh = *o.capacity_mwh;
        limits.max_mw = *o.max_mw;
        limits.min_mw = *o.min_mw;
        limits.ramp_mw_per_s = o.ramp_mw_per_s;
        limits.efficiency = o.efficiency;
        limits.soc_min_pct = o.soc_min_pct;
        limits.soc_max_pct = o.soc_max_pct;
        source = der::cli::value_or_exit(der::agent::asset_from_flags(o.asset, limits, o.initial_soc_pct));
    }
    // asset_from_config kept this asset only; the rest of the fleet and
    // yaml-cpp's node tree are freed, but glibc keeps freed heap pages
    // resident (a 1,000-asset file: ~5 MiB). Give them back before the loop.
    ::malloc_trim(0);

    if (curve && !source.asset.agent_public_key.empty() && source.asset.agent_public_key != curve->public_key)
        throw ExitError(der::cli::config,
                        fmt::format("{}: the public key of --curve-secret-file ({}) is not the asset's "
                                    "agent_public_key in {} ({}); the hub would refuse it",
                                    o.curve_secret_file, curve->public_key, o.config, source.asset.agent_public_key));
    if (!curve && !source.asset.agent_public_key.empty())
        der::log::warn("{} gives this asset an agent_public_key but no --curve-secret-file was given: a CURVE hub "
                       "will not admit this agent",
                       o.config);
    const der::AdapterConfig adapter_config = adapter_config_of(o, source.asset.adapter);
    der::agent::AgentSettings settings;
    settings.asset = source.asset;
    settings.asset.adapter = adapter_config;
    settings.tick_s = seconds_of(o.tick);
    settings.telemetry_s = app.count("--telemetry-interval") > 0 ? seconds_of(o.telemetry_interval)
                                                                 : source.telemetry_s.value_or(4.0);
    settings.heartbeat_s = source.heartbeat_s.value_or(30.0);
    settings.buffer_records = o.buffer;
    settings.on_hub_loss = o.on_hub_loss == "zero" ? der::agent::HubLoss::zero : der::agent::HubLoss::hold;
    settings.hub_timeout_s = seconds_of(o.hub_timeout);
    if (!o.spool.empty()) {
        settings.spool.emplace();
        settings.spool->dir = o.spool;
        settings.spool->max_bytes = o.spool_max_bytes;
    }

    der::adapters::AdapterEnv env;
    env.initial_soc_pct = settings.asset.initial_soc_pct;
    env.name = settings.asset.qualified_name();
    const auto adapter =
        der::cli::value_or_exit(der::adapters::make_adapter(adapter_config, settings.asset.limits, env));
    der::cli::value_or_exit(der::agent::run_agent(settings, *adapter, o.hub, signals.stop, curve));
    return der::cli::ok;
}

}  // namespace

int main(int argc, char** argv) {
    Options options;
    CLI::App app{"", k_program};
    make_app(app, options);
    return der::cli::run_main(k_program, app, argc, argv, [&] { return run(app, options); });
}
