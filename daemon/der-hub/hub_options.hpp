#pragma once
/// der-hub's settings and command line (der-hub(8)).

#include "cli.hpp"

#include <optional>
#include <string>
#include <vector>

namespace der::hub {

struct HubOptions {
    std::string config_path;
    std::string agents_ep = cli::k_default_agents_bind;
    std::string control_ep = cli::k_default_control;
    std::string stream_ep = cli::k_default_stream;
    std::string http = cli::k_default_http;  ///< host:port; empty or "off" disables REST
    std::size_t memory_history_rows = 21600;  ///< per asset: 24 h at 4 s
    std::string memory_history_age = "24h";
    std::string pending_ttl = "15m";
    std::string ack_timeout = "5s";
    std::size_t http_threads = 8;
    /// `--db`: PostgreSQL conninfo (URI or key=value; "" = the PG* environment).
    /// nil = no database: history from memory.
    std::optional<std::string> db;
    cli::LogOptions log;
    bool show_config = false;
    /// `--curve-secret-file`: the hub's CURVE secret key (empty = plain text).
    std::string curve_secret_file;
    /// `--api-token-file`: REST writes and every control request need it.
    std::string api_token_file;
    bool api_token_reads = false;  ///< `--api-token-reads`: REST reads need it too
    /// `der-hub keygen`: write a keypair and exit.
    struct Keygen {
        bool requested = false;
        std::string out_dir;
        std::string name = "hub";
        std::string public_file;
        std::string secret_file;
        bool force = false;
    } keygen;
};

/// `der-hub keygen`: writes the keypair the options name, prints the public
/// key on stdout. Returns the exit status (throws ExitError).
int run_keygen(const HubOptions::Keygen& options);

/// Builds der-hub's CLI::App over `options` (tests parse argv without main).
void make_app(CLI::App& app, HubOptions& options);

/// `--show-config`: each effective setting and where it came from.
std::string describe_config(const CLI::App& app, const HubOptions& options, const std::vector<std::string>& argv);

}  // namespace der::hub
