// Implementation details: the exec adapter's process handling and protocol.
//
//   The child runs `/bin/sh -c COMMAND` in its own process group, with
//   PR_SET_PDEATHSIG = SIGTERM (it dies with the agent, even a SIGKILLed
//   one), every signal handler and SIGPIPE restored to the default, and no
//   signal blocked. stdin is one end of an
//   AF_UNIX stream socketpair (our writes use MSG_NOSIGNAL, so a dead child
//   is EPIPE, never a signal); stdout and stderr are pipes. Our ends are
//   O_NONBLOCK and O_CLOEXEC.
//
//   Requests are one JSON object a line; the child answers each in order,
//   one line each:
//     {"op":"read"}               -> {"soc_pct":..,"soc_mwh":..,"current_mw":..,
//                                     "setpoint_mw":..,"status":"..","reason":".."}
//                                    (current_mw and one of soc_pct/soc_mwh required)
//                                 -> {"ok":false,"reason":".."}  the device's own fault
//     {"op":"setpoint","mw":X}    -> {"ok":true} | {"ok":false,"reason":".."}
//   Answers are matched to requests by order. A request unanswered after
//   timeout_ms, a line that is not such an object, a line over 64 KiB, an
//   unsolicited line, or the child's exit all end the child (SIGTERM, then
//   SIGKILL after 2 s, reaped without blocking) and schedule a restart
//   after the backoff (restart_min_ms doubling to restart_max_ms; back to
//   the minimum once a child has run for restart_max_ms with good answers).
//   After a restart the setpoint last accepted is sent again, so device and
//   agent agree.

#include "der/adapters/exec_adapter.hpp"

#include "adapter_options.hpp"

#include "der/util/log.hpp"

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <thread>

namespace der::adapters {

namespace {

constexpr std::size_t k_max_line_bytes = 64 * 1024;
constexpr int k_max_reads_per_poll = 64;
constexpr std::int64_t k_reap_poll_ms = 50;

SystemClock& system_clock() {
    static SystemClock clock;
    return clock;
}

void set_nonblocking(int fd) {
    const int flags = fcntl(fd, F_GETFL, 0);
    if (flags >= 0) fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

std::string exit_text(int status) {
    if (WIFEXITED(status)) return fmt::format("exited with status {}", WEXITSTATUS(status));
    if (WIFSIGNALED(status)) return fmt::format("was killed by signal {}", WTERMSIG(status));
    return fmt::format("ended (wait status {})", status);
}

std::string excerpt(const std::string& line) {
    constexpr std::size_t k_max = 120;
    if (line.size() <= k_max) return line;
    return line.substr(0, k_max) + "...";
}

}  // namespace

Result<ExecOptions> parse_exec_options(const AdapterConfig& config) {
    OptionReader r("exec", config.options);
    ExecOptions o;
    if (auto command = r.string("command"); command && !command->empty())
        o.command = *command;
    else
        r.error("command", "required: the device program (run as /bin/sh -c COMMAND; der-agent --exec)");
    o.timeout_ms = r.integer_or("timeout_ms", 10, 600'000, o.timeout_ms);
    o.read_interval_ms = r.integer_or("read_interval_ms", 10, 3'600'000, o.read_interval_ms);
    o.restart_min_ms = r.integer_or("restart_min_ms", 10, 3'600'000, o.restart_min_ms);
    o.restart_max_ms = r.integer_or("restart_max_ms", 10, 3'600'000, o.restart_max_ms);
    if (o.restart_max_ms < o.restart_min_ms) r.error("restart_max_ms", "must be >= restart_min_ms");
    if (auto ok = r.finish(); !ok) return std::unexpected(ok.error());
    return o;
}

ExecAdapter::ExecAdapter(ExecOptions options, const BessLimits& limits, const AdapterEnv& env)
    : m_options(std::move(options)),
      m_limits(limits),
      m_clock(env.clock != nullptr ? env.clock : &system_clock()),
      m_name(env.name),
      m_backoff_ms(m_options.restart_min_ms) {
    m_state.limits = limits;
    start();
}

ExecAdapter::~ExecAdapter() {
    stop();
}

std::int64_t ExecAdapter::now() const {
    return m_clock->mono_ms();
}

// --- process ----------------------------------------------------------------

void ExecAdapter::start() {
    m_restart_at_ms.reset();
    int in_pair[2] = {-1, -1};
    int out_pipe[2] = {-1, -1};
    int err_pipe[2] = {-1, -1};
    auto close_all = [&] {
        for (int fd : {in_pair[0], in_pair[1], out_pipe[0], out_pipe[1], err_pipe[0], err_pipe[1]})
            if (fd >= 0) ::close(fd);
    };
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, in_pair) != 0 || pipe2(out_pipe, O_CLOEXEC) != 0 ||
        pipe2(err_pipe, O_CLOEXEC) != 0) {
        const std::string why = fmt::format("cannot create pipes: {}", std::strerror(errno));
        close_all();
        fail_child(why);
        return;
    }
    // Everything the child needs is prepared before fork: after it, only
    // async-signal-safe calls (the agent has other threads, e.g. libzmq's).
    const char* command = m_options.command.c_str();
    const pid_t parent = getpid();
    // Signals stay blocked across fork until the child has reset every
    // handler to its default: a SIGTERM that reaches the child before exec
    // must end it, not run the agent's own handler in the copy.
    sigset_t all, previous;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &previous);
    const pid_t pid = fork();
    if (pid != 0) pthread_sigmask(SIG_SETMASK, &previous, nullptr);
    if (pid < 0) {
        const std::string why = fmt::format("cannot fork: {}", std::strerror(errno));
        close_all();
        fail_child(why);
        return;
    }
    if (pid == 0) {
        struct sigaction dfl {};
        dfl.sa_handler = SIG_DFL;
        for (int sig = 1; sig < NSIG; ++sig)
            sigaction(sig, &dfl, nullptr);  // also SIGPIPE, ignored by the agent
        setpgid(0, 0);
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent) _exit(127);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, nullptr);
        dup2(in_pair[1], 0);
        dup2(out_pipe[1], 1);
        dup2(err_pipe[1], 2);
        execl("/bin/sh", "sh", "-c", command, static_cast<char*>(nullptr));
        _exit(127);
    }
    setpgid(pid, pid);  // also here, so the group exists before we may signal it
    ::close(in_pair[1]);
    ::close(out_pipe[1]);
    ::close(err_pipe[1]);
    m_in_fd = in_pair[0];
    m_out_fd = out_pipe[0];
    m_err_fd = err_pipe[0];
    for (int fd : {m_in_fd, m_out_fd, m_err_fd}) set_nonblocking(fd);
    m_pid = pid;
    ++m_starts;
    m_started_ms = now();
    m_have_reading = false;
    m_out_buf.clear();
    m_in_buf.clear();
    m_err_buf.clear();
    log::info("exec adapter{}: started device command (pid {}): {}", m_name.empty() ? "" : " " + m_name, pid,
              m_options.command);
    // Re-sync the setpoint the agent holds, then read.
    if (m_commanded && *m_commanded != 0.0)
        send({Op::setpoint, 0, *m_commanded, now() + m_options.timeout_ms},
             fmt::format(R"({{"op":"setpoint","mw":{}}})", *m_commanded));
    if (running()) {
        send({Op::read, 0, 0.0, now() + m_options.timeout_ms}, R"({"op":"read"})");
        m_next_read_ms = now() + m_options.read_interval_ms;
    }
}

void ExecAdapter::close_fds() {
    for (int* fd : {&m_in_fd, &m_out_fd, &m_err_fd}) {
        if (*fd >= 0) ::close(*fd);
        *fd = -1;
    }
}

void ExecAdapter::fail_child(const std::string& why) {
    drain_stderr();  // what a dying child said last belongs in the log
    const std::int64_t t = now();
    if (m_fault != why || running())
        log::warn("exec adapter{}: device fault: {}; restarting it in {} ms",
                  m_name.empty() ? "" : " " + m_name, why, m_backoff_ms);
    m_fault = why;
    for (const Request& request : m_requests) {
        if (request.op == Op::setpoint && request.ticket != 0)
            settle(request.ticket, ApplyResult::refuse("device fault before it answered: " + why));
    }
    m_requests.clear();
    m_out_buf.clear();
    close_fds();
    if (m_pid > 0) {
        ::kill(-m_pid, SIGTERM);
        ::kill(m_pid, SIGTERM);
        m_dying.push_back({m_pid, t + m_options.stop_grace_ms, false});
        m_pid = -1;
    }
    if (!m_stopped) {
        m_restart_at_ms = t + m_backoff_ms;
        m_backoff_ms = std::min(m_backoff_ms * 2, m_options.restart_max_ms);
    }
}

void ExecAdapter::reap() {
    const std::int64_t t = now();
    for (auto it = m_dying.begin(); it != m_dying.end();) {
        int status = 0;
        const pid_t done = waitpid(it->pid, &status, WNOHANG);
        if (done == it->pid || (done < 0 && errno == ECHILD)) {
            ::kill(-it->pid, SIGKILL);  // anything the shell left behind in its group
            it = m_dying.erase(it);
            continue;
        }
        if (!it->killed && t >= it->kill_at_ms) {
            ::kill(-it->pid, SIGKILL);
            ::kill(it->pid, SIGKILL);
            it->killed = true;
        }
        ++it;
    }
}

void ExecAdapter::stop() {
    if (m_stopped) return;
    m_stopped = true;
    m_restart_at_ms.reset();
    if (running()) {
        drain_stderr();
        if (m_in_fd >= 0) ::shutdown(m_in_fd, SHUT_WR);  // EOF first: a polite child exits on it
        ::kill(-m_pid, SIGTERM);
        ::kill(m_pid, SIGTERM);
        m_dying.push_back({m_pid, now() + m_options.stop_grace_ms, false});
        m_pid = -1;
    }
    for (const Request& request : m_requests)
        if (request.op == Op::setpoint && request.ticket != 0)
            settle(request.ticket, ApplyResult::refuse("the agent is stopping"));
    m_requests.clear();
    close_fds();
    // The agent is stopping: waiting here (at most the grace) is fine. A
    // system clock is used, whatever clock the adapter was given.
    const auto deadline =
        std::chrono::steady_clock::now() + std::chrono::milliseconds(m_options.stop_grace_ms);
    while (!m_dying.empty() && std::chrono::steady_clock::now() < deadline) {
        for (auto it = m_dying.begin(); it != m_dying.end();) {
            int status = 0;
            const pid_t done = waitpid(it->pid, &status, WNOHANG);
            if (done == it->pid || (done < 0 && errno == ECHILD)) {
                ::kill(-it->pid, SIGKILL);
                it = m_dying.erase(it);
            } else {
                ++it;
            }
        }
        if (!m_dying.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    for (const Dying& d : m_dying) {
        ::kill(-d.pid, SIGKILL);
        ::kill(d.pid, SIGKILL);
        int status = 0;
        waitpid(d.pid, &status, 0);
    }
    m_dying.clear();
}

// --- loop -------------------------------------------------------------------

void ExecAdapter::poll() {
    if (m_stopped) return;
    reap();
    if (running()) {
        drain_stderr();
        drain_stdout();
    }
    if (running()) {
        int status = 0;
        if (waitpid(m_pid, &status, WNOHANG) == m_pid) {
            drain_stdout();  // answers written before the exit still count
            if (running()) {
                ::kill(-m_pid, SIGKILL);
                m_pid = -1;  // reaped already
                fail_child("device command " + exit_text(status));
            }
        }
    }
    if (running() && !m_requests.empty() && now() >= m_requests.front().deadline_ms) {
        const Request& late = m_requests.front();
        fail_child(fmt::format("no answer to '{}' within {} ms", late.op == Op::read ? "read" : "setpoint",
                               m_options.timeout_ms));
    }
    if (running()) {
        flush_out();
        if (running() && m_have_reading && now() - m_started_ms >= m_options.restart_max_ms)
            m_backoff_ms = m_options.restart_min_ms;
        const bool read_outstanding = std::any_of(m_requests.begin(), m_requests.end(),
                                                  [](const Request& r) { return r.op == Op::read; });
        if (running() && !read_outstanding && now() >= m_next_read_ms) {
            send({Op::read, 0, 0.0, now() + m_options.timeout_ms}, R"({"op":"read"})");
            m_next_read_ms = now() + m_options.read_interval_ms;
        }
    } else if (m_restart_at_ms && now() >= *m_restart_at_ms) {
        start();
    }
}

std::vector<int> ExecAdapter::wait_fds() const {
    std::vector<int> fds;
    if (m_out_fd >= 0) fds.push_back(m_out_fd);
    if (m_err_fd >= 0) fds.push_back(m_err_fd);
    return fds;
}

std::optional<std::int64_t> ExecAdapter::next_deadline_mono_ms() const {
    std::optional<std::int64_t> next;
    auto take = [&](std::int64_t t) { next = next ? std::min(*next, t) : t; };
    if (!m_requests.empty()) take(m_requests.front().deadline_ms);
    if (running()) take(m_next_read_ms);
    if (m_restart_at_ms) take(*m_restart_at_ms);
    if (!m_dying.empty()) take(now() + k_reap_poll_ms);
    return next;
}

// --- I/O --------------------------------------------------------------------

void ExecAdapter::send(Request request, const std::string& line) {
    m_out_buf += line;
    m_out_buf += '\n';
    m_requests.push_back(request);
    flush_out();
}

void ExecAdapter::flush_out() {
    while (running() && !m_out_buf.empty()) {
        const ssize_t n = ::send(m_in_fd, m_out_buf.data(), m_out_buf.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            m_out_buf.erase(0, static_cast<std::size_t>(n));
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;  // the timeout covers a stuck child
        fail_child(fmt::format("writing to the device command: {}", std::strerror(errno)));
        return;
    }
}

void ExecAdapter::drain_stdout() {
    char buf[4096];
    for (int i = 0; i < k_max_reads_per_poll && running(); ++i) {
        const ssize_t n = ::read(m_out_fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) return;
            fail_child(fmt::format("reading from the device command: {}", std::strerror(errno)));
            return;
        }
        if (n == 0) {
            int status = 0;
            const pid_t pid = m_pid;
            if (waitpid(pid, &status, WNOHANG) == pid) {
                ::kill(-pid, SIGKILL);
                m_pid = -1;
                fail_child("device command " + exit_text(status));
            } else {
                fail_child("device command closed its stdout");
            }
            return;
        }
        m_in_buf.append(buf, static_cast<std::size_t>(n));
        std::size_t start = 0;
        for (std::size_t nl; running() && (nl = m_in_buf.find('\n', start)) != std::string::npos;
             start = nl + 1)
            handle_line(m_in_buf.substr(start, nl - start));
        if (!running()) return;
        m_in_buf.erase(0, start);
        if (m_in_buf.size() > k_max_line_bytes) {
            fail_child(fmt::format("garbage from the device: a line longer than {} bytes", k_max_line_bytes));
            return;
        }
    }
}

void ExecAdapter::drain_stderr() {
    if (m_err_fd < 0) return;
    char buf[4096];
    for (int i = 0; i < k_max_reads_per_poll; ++i) {
        const ssize_t n = ::read(m_err_fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        m_err_buf.append(buf, static_cast<std::size_t>(n));
    }
    std::size_t start = 0;
    for (std::size_t nl; (nl = m_err_buf.find('\n', start)) != std::string::npos; start = nl + 1)
        log::info("device{} [{}]: {}", m_name.empty() ? "" : " " + m_name, m_pid,
                  m_err_buf.substr(start, nl - start));
    m_err_buf.erase(0, start);
    if (m_err_buf.size() > k_max_line_bytes) {
        log::info("device{} [{}]: {}", m_name.empty() ? "" : " " + m_name, m_pid, m_err_buf);
        m_err_buf.clear();
    }
}

void ExecAdapter::handle_line(const std::string& raw) {
    std::string line = raw;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) return;  // blank lines are ignored
    if (m_requests.empty()) {
        fail_child(fmt::format("garbage from the device: unsolicited line '{}'", excerpt(line)));
        return;
    }
    const Request request = m_requests.front();
    m_requests.pop_front();
    if (request.op == Op::read)
        handle_read_reply(line);
    else
        handle_setpoint_reply(request, line);
}

void ExecAdapter::handle_read_reply(const std::string& line) {
    const auto doc = nlohmann::json::parse(line, nullptr, false);
    auto garbage = [&](std::string_view why) {
        fail_child(fmt::format("garbage from the device: {} in answer to 'read': '{}'", why, excerpt(line)));
    };
    if (doc.is_discarded() || !doc.is_object()) return garbage("not a JSON object");
    if (const auto ok = doc.find("ok"); ok != doc.end() && ok->is_boolean() && !ok->get<bool>()) {
        // The device answers but cannot read itself: its fault, no restart.
        const auto reason = doc.value("reason", std::string("no reason given"));
        m_state.status = AssetStatus::fault;
        m_state.fault_reason = "device: " + reason;
        m_have_reading = true;
        m_fault.clear();
        return;
    }
    auto number = [&](const char* key) -> std::optional<double> {
        const auto it = doc.find(key);
        if (it == doc.end() || it->is_null()) return std::nullopt;
        if (!it->is_number()) return std::numeric_limits<double>::quiet_NaN();
        return it->get<double>();
    };
    const auto soc_pct = number("soc_pct");
    const auto soc_mwh = number("soc_mwh");
    const auto current = number("current_mw");
    const auto setpoint = number("setpoint_mw");
    if (!current || !std::isfinite(*current)) return garbage("'current_mw' missing or not a number");
    if (!soc_pct && !soc_mwh) return garbage("neither 'soc_pct' nor 'soc_mwh'");
    if (soc_pct && !(*soc_pct >= 0.0 && *soc_pct <= 100.0)) return garbage("'soc_pct' not in [0, 100]");
    if (soc_mwh && !(*soc_mwh >= 0.0 && std::isfinite(*soc_mwh)))
        return garbage("'soc_mwh' not a number >= 0");
    if (setpoint && !std::isfinite(*setpoint)) return garbage("'setpoint_mw' not a number");
    std::optional<AssetStatus> status;
    if (const auto it = doc.find("status"); it != doc.end() && !it->is_null()) {
        if (!it->is_string()) return garbage("'status' not a string");
        status = parse_asset_status(it->get<std::string>());
        if (!status) return garbage("unknown 'status'");
    }
    DeviceState s;
    const double capacity = m_limits.capacity_mwh;
    s.soc_pct = soc_pct ? *soc_pct : (capacity > 0 ? *soc_mwh / capacity * 100.0 : 0.0);
    s.soc_mwh = soc_mwh ? *soc_mwh : *soc_pct / 100.0 * capacity;
    s.current_mw = *current;
    s.setpoint_mw = setpoint ? *setpoint : m_commanded.value_or(0.0);
    s.status = status ? *status : status_from_power(*current);
    if (s.status == AssetStatus::fault) {
        const auto reason = doc.find("reason");
        s.fault_reason = "device: " + (reason != doc.end() && reason->is_string() ? reason->get<std::string>()
                                                                                  : std::string("fault"));
    }
    m_state = s;
    if (!m_fault.empty())
        log::info("exec adapter{}: device answers again (was: {})", m_name.empty() ? "" : " " + m_name,
                  m_fault);
    m_fault.clear();
    m_have_reading = true;
}

void ExecAdapter::handle_setpoint_reply(const Request& request, const std::string& line) {
    const auto doc = nlohmann::json::parse(line, nullptr, false);
    if (doc.is_discarded() || !doc.is_object() || !doc.contains("ok") || !doc["ok"].is_boolean()) {
        fail_child(
            fmt::format("garbage from the device: no 'ok' in answer to 'setpoint': '{}'", excerpt(line)));
        return;
    }
    if (doc["ok"].get<bool>()) {
        m_commanded = request.mw;
        m_state.setpoint_mw = request.mw;
        settle(request.ticket, ApplyResult::ok());
        return;
    }
    const auto it = doc.find("reason");
    const std::string reason =
        "device: " + (it != doc.end() && it->is_string() ? it->get<std::string>() : std::string("refused"));
    if (request.ticket == 0)
        log::warn("exec adapter{}: the device refused the setpoint {} MW after a restart: {}",
                  m_name.empty() ? "" : " " + m_name, request.mw, reason);
    settle(request.ticket, ApplyResult::refuse(reason));
}

void ExecAdapter::settle(std::uint64_t ticket, ApplyResult result) {
    if (ticket == 0) return;
    result.ticket = ticket;
    m_settled.push_back(std::move(result));
}

// --- interface ----------------------------------------------------------------

DeviceState ExecAdapter::read() const {
    DeviceState s = m_state;
    s.limits = m_limits;
    if (!m_fault.empty()) {
        s.status = AssetStatus::fault;
        s.fault_reason = m_fault;
    } else if (!m_have_reading) {
        s.status = AssetStatus::fault;
        s.fault_reason = "no reading from the device yet";
    }
    return s;
}

ApplyResult ExecAdapter::apply_setpoint(double mw) {
    if (auto why = check_setpoint(mw, m_limits); !why.empty()) return ApplyResult::refuse(std::move(why));
    mw = std::clamp(mw, m_limits.min_mw, m_limits.max_mw);
    if (!running()) {
        if (mw == 0.0) {
            m_commanded = 0.0;  // the child gets nothing else on its restart
            return ApplyResult::ok();
        }
        return ApplyResult::refuse("device fault: " +
                                   (m_fault.empty() ? std::string("not running") : m_fault));
    }
    const std::uint64_t ticket = m_next_ticket++;
    send({Op::setpoint, ticket, mw, now() + m_options.timeout_ms},
         fmt::format(R"({{"op":"setpoint","mw":{}}})", mw));
    return ApplyResult::later(ticket);
}

std::optional<ApplyResult> ExecAdapter::take_settled() {
    if (m_settled.empty()) return std::nullopt;
    ApplyResult r = std::move(m_settled.front());
    m_settled.pop_front();
    return r;
}

}  // namespace der::adapters
