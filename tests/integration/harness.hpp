#pragma once
/// Test harness for integration tests: real der-hub and der-agent processes
/// on free loopback ports, waited on with deadlines (never bare sleeps), and
/// cleaned up by their destructors even when a test fails.

#include <nlohmann/json_fwd.hpp>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <sys/types.h>

namespace der::test {

using namespace std::chrono_literals;
using Ms = std::chrono::milliseconds;

/// A TCP port on 127.0.0.1 that was free a moment ago.
int free_port();

/// Polls `condition` every 20 ms until it holds or `deadline` passes.
bool wait_until(const std::function<bool()>& condition, Ms deadline);

/// A temporary directory, removed with its contents on destruction.
class TempDir {
public:
    TempDir();
    ~TempDir();
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    [[nodiscard]] const std::string& path() const { return m_path; }
    [[nodiscard]] std::string file(const std::string& name) const { return m_path + "/" + name; }
    void write(const std::string& name, const std::string& content) const;

private:
    std::string m_path;
};

std::string read_file(const std::string& path);

/// A child process; stdout and stderr go to `log_path`. Killed (SIGKILL) on
/// destruction if still running.
class Process {
public:
    Process(std::vector<std::string> argv, std::string log_path);
    ~Process();
    Process(const Process&) = delete;
    Process& operator=(const Process&) = delete;

    [[nodiscard]] pid_t pid() const { return m_pid; }
    void signal(int sig) const;
    /// Waits for exit; returns the exit status (128+signal when killed), nil on timeout.
    std::optional<int> wait_exit(Ms deadline);
    /// SIGTERM, then SIGKILL after `grace`; returns the exit status.
    int stop(Ms grace = 5000ms);
    [[nodiscard]] bool running();
    [[nodiscard]] std::string log() const { return read_file(m_log_path); }

private:
    pid_t m_pid = -1;
    std::optional<int> m_status;
    std::string m_log_path;
};

/// Paths of the programs under test (from CMake).
std::string hub_binary();
std::string agent_binary();

/// HTTP GET on 127.0.0.1:port; nil when the request failed.
struct HttpReply {
    int status = 0;
    std::string body;
};
std::optional<HttpReply> http_get(int port, const std::string& path);
std::optional<HttpReply> http_post(int port, const std::string& path, const std::string& body,
                                   const std::string& content_type = "application/json");
std::optional<HttpReply> http_delete(int port, const std::string& path, const std::string& body = "");
/// GET and parse as JSON; throws std::runtime_error when it fails.
nlohmann::json get_json(int port, const std::string& path);
/// The value of one sample (`name` with its labels) in a /metrics body; -1
/// when absent.
double metric_in(const std::string& body, const std::string& name);

/// One asset of a generated fleet file.
struct TestAsset {
    std::string site = "site-a";
    std::string name;
    double capacity_mwh = 4.0;
    double max_mw = 2.0;
    double min_mw = -2.0;
    double initial_soc_pct = 50.0;
    double ramp_mw_per_s = 0.0;
};

/// assets.yaml text for `assets` with the given telemetry interval.
std::string fleet_yaml(const std::vector<TestAsset>& assets, double telemetry_s, double heartbeat_s = 2.0);

/// A der-hub on free ports with a generated assets.yaml.
class HubUnderTest {
public:
    HubUnderTest(const TempDir& dir, const std::string& yaml, std::vector<std::string> extra_args = {});
    ~HubUnderTest();
    /// (Re)starts the hub and waits for /health 200.
    void start();
    /// SIGKILL, no cleanup.
    void kill9();
    int stop();
    [[nodiscard]] Process& process() { return *m_process; }
    [[nodiscard]] std::string agents_endpoint() const;
    [[nodiscard]] std::string control_endpoint() const;
    [[nodiscard]] std::string stream_endpoint() const;
    [[nodiscard]] int agents_port() const { return m_agents_port; }
    [[nodiscard]] int http_port() const { return m_http_port; }
    [[nodiscard]] const std::string& config_path() const { return m_config; }
    [[nodiscard]] std::string log() const;

private:
    const TempDir& m_dir;
    std::string m_config;
    std::vector<std::string> m_extra;
    int m_agents_port, m_control_port, m_stream_port, m_http_port;
    int m_starts = 0;
    std::unique_ptr<Process> m_process;
};

/// A der-agent for one asset of the hub's configuration.
std::unique_ptr<Process> start_agent(const TempDir& dir, const std::string& hub_endpoint,
                                     const std::string& config, const std::string& asset,
                                     std::vector<std::string> extra_args = {});

/// A TCP forwarder 127.0.0.1:listen_port -> 127.0.0.1:target_port that can
/// cut every connection and refuse new ones, to stand in for a network drop.
class TcpProxy {
public:
    explicit TcpProxy(int target_port);
    ~TcpProxy();
    [[nodiscard]] int port() const;
    /// Drops every open connection; with `block`, also refuses new ones until restore().
    void cut(bool block);
    void restore();

private:
    struct Impl;
    std::unique_ptr<Impl> m_impl;
};

/// Telemetry rows of an asset from the hub's history (all pages).
nlohmann::json telemetry_history(int http_port, const std::string& asset);

// --- running programs to completion (der-dispatch, der-history, der-tail -n) ---

/// How a program run by run_capture() ended.
struct RunResult {
    int status = -1;          ///< exit status, 128+signal when killed
    bool timed_out = false;   ///< killed (SIGKILL) at the deadline
    std::string out;          ///< everything it wrote to stdout
    std::string err;          ///< everything it wrote to stderr
    Ms elapsed{0};
};

/// Runs `argv` with `input` on its stdin (then closed) and captures stdout and
/// stderr; SIGKILL at `deadline`.
RunResult run_capture(const std::vector<std::string>& argv, const std::string& input = {}, Ms deadline = 30000ms);
/// The same for a /bin/sh command line (for pipelines such as `der-tail | head -1`).
RunResult run_shell(const std::string& command, Ms deadline = 30000ms);
/// `text` quoted for /bin/sh.
std::string shell_quote(const std::string& text);
/// The lines of `text`, without empty ones.
std::vector<std::string> lines_of(const std::string& text);

/// Live children of `parent` (from /proc; zombies excluded).
std::vector<pid_t> child_pids(pid_t parent);
/// The process exists and is not a zombie.
bool process_alive(pid_t pid);

}  // namespace der::test
