// der-launch: run one der-agent per asset of an assets.yaml and supervise
// them (prefixed output, restarts with backoff, signal forwarding).

#include "cli.hpp"
#include "flags.hpp"
#include "supervisor.hpp"

#include "der/assets_config.hpp"
#include "der/util/log.hpp"

#include <CLI/CLI.hpp>
#include <fmt/core.h>

#include <malloc.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace {

const std::string k_program = "der-launch";

struct Options {
    der::cli::LogOptions log;
    std::string config;
    std::vector<std::string> only;
    std::string hub = der::cli::k_default_hub;
    std::string agent;
    std::string backoff_max = "30s";
    std::string curve_server_key;  ///< passed to every agent
    std::string curve_key_dir;     ///< DIR/<site>/<asset>.secret per agent
};

void make_app(CLI::App& app, Options& o) {
    app.description(
        "Run one der-agent per asset of ASSETS.yaml and supervise them. ASSETS.yaml is read and checked once, "
        "at start: each agent gets a file of its own asset (der-agent --hub EP --config DIR/SITE/NAME.yaml "
        "--asset SITE/NAME) in a private directory (0700, in $RUNTIME_DIRECTORY, $XDG_RUNTIME_DIR, $TMPDIR or "
        "/tmp) that der-launch removes when it ends. Each line a child writes is prefixed with [site/name] "
        "(stdout to stdout, stderr to stderr); a child that ends is restarted, with the same file, after 1s, 2s, "
        "4s ... up to --backoff-max (back to 1s once it ran 60s); SIGTERM and SIGINT are forwarded to every "
        "child, which get 10s before SIGKILL; SIGHUP does the same (there is no reload: start der-launch again "
        "to apply a changed ASSETS.yaml). Children also get SIGTERM if der-launch itself dies.\n"
        "Exit status: 0 every child ended cleanly after SIGTERM/SIGINT/SIGHUP, 1 some child had to be killed "
        "or ended with an error, 64 usage, 66 ASSETS.yaml missing, 74 the private directory cannot be made, 78 "
        "invalid ASSETS.yaml, unknown --only asset or no der-agent found.");
    app.add_option("ASSETS.yaml", o.config, "The fleet file (der-assets.yaml(5))")->required();
    app.add_option("--only", o.only, "Run only this asset (site/name or UUID); repeatable");
    app.add_option("--hub", o.hub, "The hub's agent endpoint, passed to every agent")
        ->envname("DER_HUB")
        ->capture_default_str()
        ->check(CLI::Validator(
            // Checked here, not by each agent: a malformed one would make every
            // agent exit 64 and be restarted forever.
            [](const std::string& v) -> std::string {
                if (v.starts_with("ipc://") && v.size() > 6) return {};
                const auto colon = v.rfind(':');
                const bool tcp = v.starts_with("tcp://") && colon != std::string::npos && colon > 6 &&
                                 colon + 1 < v.size() &&
                                 v.find_first_not_of("0123456789", colon + 1) == std::string::npos;
                if (tcp && std::stoul(v.substr(colon + 1, 5)) <= 65535 && v.size() - colon - 1 <= 5) return {};
                return "want tcp://HOST:PORT or ipc://PATH, got '" + v + "'";
            },
            "ENDPOINT"));
    app.add_option("--agent,--agent-bin", o.agent,
                   "The der-agent program (default: der-agent beside der-launch, else on PATH)");
    app.add_option("--backoff-max", o.backoff_max, "Longest wait before restarting a child (30, 2m)")
        ->check(der::cli::positive_duration())
        ->capture_default_str();
    app.add_option("--curve-server-key", o.curve_server_key,
                   "The hub's CURVE public key or a file holding it, passed to every agent (with --curve-key-dir)")
        ->envname("DER_CURVE_SERVER_KEY");
    app.add_option("--curve-key-dir", o.curve_key_dir,
                   "Directory of the agents' secret keys: each agent gets --curve-secret-file DIR/SITE/ASSET.secret "
                   "(der-hub keygen --out-dir DIR/SITE --name ASSET)");
    der::cli::add_common_flags(app, o.log, k_program);
}

/// The private directory of the agents' own config files:
/// der-launch.XXXXXX (0700) in $RUNTIME_DIRECTORY (systemd's
/// RuntimeDirectory=), $XDG_RUNTIME_DIR, $TMPDIR or /tmp; removed with
/// everything in it when der-launch ends (not after kill -9).
class RuntimeDir {
public:
    RuntimeDir() {
        std::string base = "/tmp";
        for (const char* name : {"RUNTIME_DIRECTORY", "XDG_RUNTIME_DIR", "TMPDIR"}) {
            const std::string value = der::cli::env_or(name, "");
            // RUNTIME_DIRECTORY may list several directories, separated by ':'.
            if (!value.empty()) {
                base = value.substr(0, value.find(':'));
                break;
            }
        }
        std::string path = base + "/der-launch.XXXXXX";
        if (::mkdtemp(path.data()) == nullptr)
            throw der::cli::ExitError(der::cli::io_err, fmt::format("cannot make a runtime directory in {}: {}", base,
                                                      std::strerror(errno)));
        m_path = std::move(path);
    }
    ~RuntimeDir() {
        std::error_code ec;
        std::filesystem::remove_all(m_path, ec);
        if (ec) der::log::warn("cannot remove {}: {}", m_path, ec.message());
    }
    RuntimeDir(const RuntimeDir&) = delete;
    RuntimeDir& operator=(const RuntimeDir&) = delete;
    [[nodiscard]] const std::string& path() const { return m_path; }

private:
    std::string m_path;
};

bool executable(const std::string& path) {
    std::error_code ec;
    return std::filesystem::is_regular_file(path, ec) && ::access(path.c_str(), X_OK) == 0;
}

std::string search_path(const std::string& name) {
    const std::string path = der::cli::env_or("PATH", "/usr/local/bin:/usr/bin:/bin");
    std::size_t start = 0;
    while (start <= path.size()) {
        const auto colon = path.find(':', start);
        const auto dir = path.substr(start, colon == std::string::npos ? std::string::npos : colon - start);
        const std::string candidate = (dir.empty() ? std::string(".") : dir) + "/" + name;
        if (executable(candidate)) return candidate;
        if (colon == std::string::npos) break;
        start = colon + 1;
    }
    return {};
}

/// --agent as given (a bare name is looked up on PATH), else der-agent beside
/// our own executable, else on PATH. Not found: 78.
std::string find_agent(const std::string& given) {
    using der::cli::ExitError;
    if (!given.empty()) {
        if (given.find('/') != std::string::npos) {
            if (!executable(given)) throw ExitError(der::cli::config, "--agent '" + given + "' is not an executable file");
            return given;
        }
        auto found = search_path(given);
        if (found.empty()) throw ExitError(der::cli::config, "--agent '" + given + "' not found on PATH");
        return found;
    }
    std::error_code ec;
    const auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
    if (!ec) {
        const auto beside = (self.parent_path() / "der-agent").string();
        if (executable(beside)) return beside;
    }
    auto found = search_path("der-agent");
    if (found.empty())
        throw ExitError(der::cli::config, "der-agent not found beside der-launch nor on PATH; give --agent PATH");
    return found;
}

int run(CLI::App& app, const Options& o) {
    using der::cli::ExitError;
    der::cli::apply_log_options(k_program, o.log);
    auto& signals = der::cli::install_signal_handlers(der::cli::HandleHup::yes);  // SIGHUP stops cleanly

    // Read and checked once, here: each agent gets a file of its own asset
    // (to_yaml), never the whole fleet, so N agents do not parse N fleets.
    const auto loaded = der::cli::value_or_exit(der::config::load_file(o.config));
    for (const auto& w : loaded.warnings) der::log::warn("{}", w.to_string());

    std::vector<const der::Asset*> assets;
    if (o.only.empty()) {
        assets = loaded.fleet.all_assets();
    } else {
        for (const auto& name : o.only) {
            const auto* asset = loaded.fleet.find_asset(name);
            if (asset == nullptr) throw ExitError(der::cli::config, fmt::format("--only '{}': no such asset in {}", name, o.config));
            if (std::find(assets.begin(), assets.end(), asset) == assets.end()) assets.push_back(asset);
        }
    }
    if (assets.empty()) throw ExitError(der::cli::config, o.config + ": no assets to run");

    if (o.curve_server_key.empty() != o.curve_key_dir.empty())
        throw ExitError(der::cli::usage, "--curve-server-key and --curve-key-dir go together");
    const std::string agent = find_agent(o.agent);
    const RuntimeDir runtime;
    std::map<std::string_view, std::string_view> timezones;  // by site name
    for (const auto& site : loaded.fleet.sites) timezones.emplace(site.name, site.timezone);
    std::vector<der::launch::ChildSpec> specs;
    for (const auto* asset : assets) {
        der::launch::ChildSpec spec;
        spec.name = asset->qualified_name();
        const std::string own_config = fmt::format("{}/{}/{}.yaml", runtime.path(), asset->site_name, asset->name);
        der::config::Fleet own;
        own.telemetry_s = loaded.fleet.telemetry_s;
        own.heartbeat_s = loaded.fleet.heartbeat_s;
        own.sites.push_back(
            der::Site{asset->site_id, asset->site_name, std::string(timezones[asset->site_name]), {*asset}});
        spec.files.push_back({own_config, der::config::to_yaml(own)});
        spec.argv = {agent, "--hub", o.hub, "--config", own_config, "--asset", spec.name};
        if (!o.curve_key_dir.empty()) {
            const std::string secret = fmt::format("{}/{}/{}.secret", o.curve_key_dir, asset->site_name, asset->name);
            if (::access(secret.c_str(), R_OK) != 0)
                throw ExitError(der::cli::no_input, fmt::format("{}: no secret key for {} (make it with 'der-hub keygen "
                                                                "--out-dir {}/{} --name {}')",
                                                                secret, spec.name, o.curve_key_dir, asset->site_name,
                                                                asset->name));
            spec.argv.insert(spec.argv.end(), {"--curve-server-key", o.curve_server_key, "--curve-secret-file", secret});
        }
        if (app.count("--log-level") > 0) spec.argv.insert(spec.argv.end(), {"--log-level", o.log.level});
        if (app.count("--log-format") > 0) spec.argv.insert(spec.argv.end(), {"--log-format", o.log.format});
        specs.push_back(std::move(spec));
    }
    der::log::info("running {} agents ({}) against {}; their config files are in {}", specs.size(), agent, o.hub,
                   runtime.path());

    // Give back the freed YAML tree before forking 1,000 times: fewer
    // resident pages, less page-table copying per fork.
    ::malloc_trim(0);

    der::launch::SuperviseSettings settings;
    settings.backoff_max_s = der::cli::seconds_of(o.backoff_max);
    settings.backoff_initial_s = std::min(1.0, settings.backoff_max_s);
    return der::launch::supervise(specs, settings, signals);
}

}  // namespace

int main(int argc, char** argv) {
    Options options;
    CLI::App app{"", k_program};
    make_app(app, options);
    return der::cli::run_main(k_program, app, argc, argv, [&] { return run(app, options); });
}
