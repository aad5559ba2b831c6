#pragma once
/// The `exec` adapter: the device is a child process that speaks JSON lines
/// on its stdin/stdout (protocol in docs/adapters.md). Nothing here blocks:
/// the pipes are non-blocking, requests time out, and the loop's poll()
/// drives reads, timeouts and restarts. A crashed, silent or garbage-
/// speaking child is a `fault` and is restarted with backoff (1 s doubling
/// to 30 s). The child's stderr is logged line by line, prefixed.

#include "der/adapters/adapter.hpp"

#include <sys/types.h>

#include <deque>

namespace der::adapters {

struct ExecOptions {
    std::string command;                    ///< run as /bin/sh -c COMMAND
    std::int64_t timeout_ms = 2'000;        ///< per request
    std::int64_t read_interval_ms = 1'000;  ///< one `read` request this often
    std::int64_t restart_min_ms = 1'000;    ///< backoff after the first failure
    std::int64_t restart_max_ms = 30'000;
    std::int64_t stop_grace_ms = 2'000;  ///< SIGTERM to SIGKILL
};

/// `command`, `timeout_ms`, `read_interval_ms`, `restart_min_ms`, `restart_max_ms`.
Result<ExecOptions> parse_exec_options(const AdapterConfig& config);

class ExecAdapter final : public Adapter {
public:
    /// Starts the child at once (a start failure is a fault, retried).
    ExecAdapter(ExecOptions options, const BessLimits& limits, const AdapterEnv& env);
    ~ExecAdapter() override;

    [[nodiscard]] std::string_view kind() const override { return "exec"; }
    void step(double) override {}
    void poll() override;
    [[nodiscard]] DeviceState read() const override;
    ApplyResult apply_setpoint(double mw) override;
    std::optional<ApplyResult> take_settled() override;
    void set_limits(const BessLimits& limits) override { m_limits = limits; }
    void restore(const wire::AgentState&) override {}
    [[nodiscard]] std::vector<int> wait_fds() const override;
    [[nodiscard]] std::optional<std::int64_t> next_deadline_mono_ms() const override;
    void stop() override;

    /// The child's pid, -1 when none runs (for tests).
    [[nodiscard]] pid_t child_pid() const { return m_pid; }
    /// How many times the child has been started.
    [[nodiscard]] int starts() const { return m_starts; }

private:
    enum class Op { read, setpoint };
    struct Request {
        Op op;
        std::uint64_t ticket = 0;  ///< 0 = internal (no one waits for the result)
        double mw = 0.0;
        std::int64_t deadline_ms = 0;
    };

    [[nodiscard]] std::int64_t now() const;
    [[nodiscard]] bool running() const { return m_pid > 0; }
    void start();
    /// Ends the child (SIGTERM now, SIGKILL later, reaped in poll) and
    /// schedules a restart; `why` becomes the fault reason.
    void fail_child(const std::string& why);
    void send(Request request, const std::string& line);
    void flush_out();
    void drain_stdout();
    void drain_stderr();
    void handle_line(const std::string& line);
    void handle_read_reply(const std::string& line);
    void handle_setpoint_reply(const Request& request, const std::string& line);
    void settle(std::uint64_t ticket, ApplyResult result);
    void reap();
    void close_fds();

    ExecOptions m_options;
    BessLimits m_limits;
    const Clock* m_clock;
    std::string m_name;

    pid_t m_pid = -1;
    int m_in_fd = -1;   ///< child's stdin (our end, a socket: MSG_NOSIGNAL)
    int m_out_fd = -1;  ///< child's stdout
    int m_err_fd = -1;  ///< child's stderr
    std::string m_out_buf;
    std::string m_in_buf;
    std::string m_err_buf;
    std::deque<Request> m_requests;  ///< sent, awaiting an answer, in order
    std::deque<ApplyResult> m_settled;
    std::uint64_t m_next_ticket = 1;

    struct Dying {
        pid_t pid;
        std::int64_t kill_at_ms;
        bool killed = false;
    };
    std::vector<Dying> m_dying;

    int m_starts = 0;
    std::int64_t m_started_ms = 0;
    std::int64_t m_backoff_ms;
    std::optional<std::int64_t> m_restart_at_ms;
    std::int64_t m_next_read_ms = 0;
    bool m_stopped = false;

    DeviceState m_state;
    bool m_have_reading = false;
    std::string m_fault;                ///< adapter-side fault (child down, timeout, garbage)
    std::optional<double> m_commanded;  ///< the last setpoint the child accepted (or 0 queued while down)
};

}  // namespace der::adapters
