#include "hub_options.hpp"

#include "curve_keys.hpp"

#include <fmt/core.h>

#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include <unistd.h>

namespace der::hub {

namespace {
/// A conninfo without its password (`password=...` or `user:secret@`).
std::string redact_conninfo(const std::string& text) {
    std::string out = text;
    if (const auto at = out.find('@'), scheme = out.find("://"); scheme != std::string::npos && at != std::string::npos) {
        const auto colon = out.find(':', scheme + 3);
        if (colon != std::string::npos && colon < at) out.replace(colon + 1, at - colon - 1, "***");
    }
    for (std::size_t pos = out.find("password="); pos != std::string::npos; pos = out.find("password=", pos + 1)) {
        const auto start = pos + 9;
        auto end = out.find_first_of(" &", start);
        if (end == std::string::npos) end = out.size();
        out.replace(start, end - start, "***");
    }
    return out.empty() ? std::string("'' (the PG* environment)") : out;
}
}  // namespace

void make_app(CLI::App& app, HubOptions& o) {
    app.description(
        "der-hub: the headend of a der fleet. Accepts der-agent sessions, keeps the latest telemetry and "
        "its history, serves the REST API and the control socket, and publishes the live stream.");
    // Required, except by `keygen` (checked in run()).
    app.add_option("-c,--config", o.config_path, "The fleet's assets.yaml (required)")->envname("DER_CONFIG");
    app.add_option("--agents", o.agents_ep, "ZeroMQ endpoint agents connect to (ROUTER bind)")
        ->envname("DER_AGENTS")
        ->capture_default_str();
    app.add_option("--control", o.control_ep, "ZeroMQ endpoint of the control socket for the CLIs (ROUTER bind)")
        ->envname("DER_CONTROL")
        ->capture_default_str();
    app.add_option("--stream", o.stream_ep, "ZeroMQ endpoint of the live stream (XPUB bind)")
        ->envname("DER_STREAM")
        ->capture_default_str();
    app.add_option("--http", o.http, "REST API listen address HOST:PORT ('off' disables it)")
        ->envname("DER_HTTP")
        ->capture_default_str();
    app.add_option("--memory-history", o.memory_history_rows,
                   "Without a database: telemetry rows kept in memory per asset")
        ->check(CLI::PositiveNumber)
        ->capture_default_str();
    app.add_option("--memory-history-age", o.memory_history_age,
                   "Without a database: age past which in-memory history is dropped (e.g. 24h)")
        ->capture_default_str();
    app.add_option("--pending-ttl", o.pending_ttl, "A queued dispatch older than this is never sent")
        ->capture_default_str();
    app.add_option("--ack-timeout", o.ack_timeout, "A sent dispatch with no ack by then is failed")
        ->capture_default_str();
    app.add_option("--http-threads", o.http_threads, "REST worker threads")
        ->check(CLI::Range(1, 256))
        ->capture_default_str();
    app.add_option("--db", o.db,
                   "PostgreSQL connection (libpq URI or key=value; '' = the PG* environment) for history, the "
                   "audit trail and restore after a restart; without it history is kept in memory")
        ->envname("DER_DB");
    const std::string security = "Security (docs/security.md)";
    app.add_option("--curve-secret-file", o.curve_secret_file,
                   "The hub's CURVE secret key (der-hub keygen): agents must then use CURVE with the keys of "
                   "assets.yaml")
        ->envname("DER_CURVE_SECRET_FILE")
        ->group(security);
    app.add_option("--api-token-file", o.api_token_file,
                   "File holding the API token: REST writes and every control-socket request must carry it")
        ->envname("DER_API_TOKEN_FILE")
        ->group(security);
    app.add_flag("--api-token-reads", o.api_token_reads,
                 "With --api-token-file: REST reads need the token too (GET /health excepted)")
        ->group(security);
    auto* keygen = app.add_subcommand("keygen", "Write a CURVE keypair (Z85) for the hub or an agent, then exit");
    keygen->add_option("--out-dir", o.keygen.out_dir, "Write DIR/NAME.secret (mode 0600) and DIR/NAME.public");
    keygen->add_option("--name", o.keygen.name, "File name stem with --out-dir (e.g. the asset's name)")
        ->capture_default_str();
    keygen->add_option("--public", o.keygen.public_file, "The public key file (mode 0644)");
    keygen->add_option("--secret", o.keygen.secret_file, "The secret key file (mode 0600)");
    keygen->add_flag("--force", o.keygen.force, "Overwrite existing key files");
    keygen->callback([&o] { o.keygen.requested = true; });
    app.add_flag("--show-config", o.show_config, "Print each effective setting and where it came from, then exit");
    cli::add_common_flags(app, o.log, "der-hub");
}

std::string describe_config(const CLI::App& app, const HubOptions& o, const std::vector<std::string>& argv) {
    std::string out;
    const auto row = [&](const std::string& flag, const std::string& value) {
        const auto* opt = app.get_option_no_throw(flag);
        std::string source = "default";
        // Any of the option's names: --config, --config=…, -c, -c… (value attached).
        std::vector<std::string> longs{flag}, shorts;
        if (opt != nullptr) {
            for (const auto& n : opt->get_lnames()) longs.push_back("--" + n);
            for (const auto& n : opt->get_snames()) shorts.push_back("-" + n);
        }
        bool on_command_line = false;
        for (const auto& arg : argv) {
            for (const auto& name : longs)
                if (arg == name || arg.rfind(name + "=", 0) == 0) on_command_line = true;
            for (const auto& name : shorts)
                if (arg.rfind(name, 0) == 0) on_command_line = true;
        }
        if (on_command_line) {
            source = "flag";
        } else if (opt != nullptr && !opt->get_envname().empty() &&
                   std::getenv(opt->get_envname().c_str()) != nullptr) {
            source = "environment " + opt->get_envname();
        }
        out += fmt::format("{:<22} {:<40} ({})\n", flag.substr(2), value, source);
    };
    row("--config", o.config_path);
    row("--agents", o.agents_ep);
    row("--control", o.control_ep);
    row("--stream", o.stream_ep);
    row("--http", o.http);
    row("--memory-history", std::to_string(o.memory_history_rows));
    row("--memory-history-age", o.memory_history_age);
    row("--pending-ttl", o.pending_ttl);
    row("--ack-timeout", o.ack_timeout);
    row("--http-threads", std::to_string(o.http_threads));
    row("--db", o.db ? redact_conninfo(*o.db) : std::string("(none: history in memory)"));
    row("--curve-secret-file", o.curve_secret_file.empty() ? std::string("(none: agents in plain text)")
                                                             : o.curve_secret_file);
    row("--api-token-file", o.api_token_file.empty() ? std::string("(none: no token required)") : o.api_token_file);
    row("--api-token-reads", o.api_token_reads ? "true" : "false");
    row("--log-level", o.log.level);
    row("--log-format", o.log.format);
    return out;
}

int run_keygen(const HubOptions::Keygen& k) {
    std::string public_file = k.public_file;
    std::string secret_file = k.secret_file;
    if (!k.out_dir.empty()) {
        if (!public_file.empty() || !secret_file.empty())
            throw cli::ExitError(cli::usage, "keygen: give --out-dir or --public and --secret, not both");
        if (k.name.empty() || k.name.find('/') != std::string::npos)
            throw cli::ExitError(cli::usage, "keygen: --name must be a plain file name stem");
        public_file = k.out_dir + "/" + k.name + ".public";
        secret_file = k.out_dir + "/" + k.name + ".secret";
    } else if (public_file.empty() || secret_file.empty()) {
        throw cli::ExitError(cli::usage, "keygen: give --out-dir DIR, or both --public FILE and --secret FILE");
    }
    const auto overwrite = k.force ? cli::Overwrite::yes : cli::Overwrite::no;
    if (!k.force) {
        // Refuse before writing anything, so a refusal leaves no half pair behind.
        for (const auto& path : {public_file, secret_file})
            if (::access(path.c_str(), F_OK) == 0)
                throw cli::ExitError(cli::refused, path + " exists; refusing to overwrite it (give --force)");
    }
    const auto pair = cli::value_or_exit(cli::generate_keypair());
    cli::value_or_exit(cli::write_key_file(secret_file, pair.secret_key, 0600, overwrite));
    cli::value_or_exit(cli::write_key_file(public_file, pair.public_key, 0644, overwrite));
    std::cout << pair.public_key << '\n';
    std::cerr << fmt::format("der-hub: wrote {} (secret, mode 0600) and {} (public)\n", secret_file, public_file);
    return cli::ok;
}

}  // namespace der::hub
