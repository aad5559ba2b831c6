#include "supervisor.hpp"

#include "der/util/log.hpp"
#include "der/util/time.hpp"

#include <fmt/core.h>

#include <fcntl.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <list>
#include <optional>

namespace der::launch {

namespace {

/// Longest partial line kept before it is written out anyway.
constexpr std::size_t k_max_line = 64 * 1024;

void write_all(int fd, const std::string& text) {
    std::size_t done = 0;
    while (done < text.size()) {
        const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return;  // our own stdout/stderr gone: keep supervising, drop the output
        done += static_cast<std::size_t>(n);
    }
}

/// Writes `file` (0600), making missing directories (0700). A failure is
/// logged: the child then starts without it and reports the missing file.
void write_child_file(const ChildFile& file) {
    for (auto slash = file.path.find('/', 1); slash != std::string::npos; slash = file.path.find('/', slash + 1)) {
        ::mkdir(file.path.substr(0, slash).c_str(), 0700);  // EEXIST is the normal case
    }
    const int fd = ::open(file.path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        log::error("cannot write {}: {}", file.path, std::strerror(errno));
        return;
    }
    std::size_t done = 0;
    while (done < file.content.size()) {
        const ssize_t n = ::write(fd, file.content.data() + done, file.content.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            log::error("cannot write {}: {}", file.path, std::strerror(errno));
            break;
        }
        done += static_cast<std::size_t>(n);
    }
    ::close(fd);
}

/// systemd's JOURNAL_STREAM names our stderr (as der/util/log checks it).
bool stderr_is_journal() {
    const char* stream = std::getenv("JOURNAL_STREAM");
    struct stat st {};
    if (stream == nullptr || ::fstat(STDERR_FILENO, &st) != 0) return false;
    return fmt::format("{}:{}", st.st_dev, st.st_ino) == stream;
}

/// One pipe from a child's stdout or stderr, read until EOF (it may outlive
/// the process that wrote it by a moment).
struct Stream {
    int fd = -1;
    int to_fd = STDOUT_FILENO;
    std::string prefix;
    std::string buffer;

    /// Reads what is there; false at EOF or error.
    bool pump() {
        char chunk[16384];
        const ssize_t n = ::read(fd, chunk, sizeof chunk);
        if (n < 0 && (errno == EINTR || errno == EAGAIN)) return true;
        if (n <= 0) {
            flush_rest();
            return false;
        }
        buffer.append(chunk, static_cast<std::size_t>(n));
        std::string out;
        take_lines(buffer, [&](std::string_view line) {
            // A journal priority (`<6>`, see der/util/log) stays first.
            if (line.size() >= 3 && line[0] == '<' && line[1] >= '0' && line[1] <= '7' && line[2] == '>') {
                out += line.substr(0, 3);
                line.remove_prefix(3);
            }
            out += prefix;
            out += line;
            out += '\n';
        });
        if (buffer.size() > k_max_line) flush_rest();
        if (!out.empty()) write_all(to_fd, out);
        return true;
    }

    void flush_rest() {
        if (!buffer.empty()) write_all(to_fd, prefix + buffer + "\n");
        buffer.clear();
    }
};

struct Child {
    const ChildSpec* spec = nullptr;
    pid_t pid = -1;
    std::int64_t started_mono_ms = 0;
    std::optional<std::int64_t> restart_at_mono_ms;
    double backoff_s = 1.0;
    bool killed = false;  ///< SIGKILLed at the end of the grace period
    bool clean = true;    ///< how it ended after the stop signal
};

class Supervisor {
public:
    Supervisor(const std::vector<ChildSpec>& specs, const SuperviseSettings& settings, cli::Signals& signals)
        : m_settings(settings), m_signals(signals) {
        for (const auto& spec : specs) {
            Child c;
            c.spec = &spec;
            c.backoff_s = settings.backoff_initial_s;
            m_children.push_back(c);
        }
    }

    int run() {
        // Under journald, the agents log with priority prefixes too, which
        // pump() keeps in front of the [site/name] prefix.
        if (stderr_is_journal()) ::setenv("DER_LOG_PRIORITY_PREFIX", "1", 1);
        for (auto& c : m_children) spawn(c);
        std::optional<std::int64_t> kill_at;
        while (true) {
            if ((m_signals.stop.load() || m_signals.reload.load()) && !kill_at) {
                // No reload: SIGHUP stops like SIGTERM (restart der-launch to apply a changed file).
                if (m_signals.reload.load() && !m_signals.stop.load())
                    log::warn("SIGHUP: der-launch does not reload ASSETS.yaml; stopping (start it again to apply "
                              "changes)");
                const int sig = m_signals.last.load() == SIGINT ? SIGINT : SIGTERM;
                log::info("stopping: forwarding {} to {} agents", sig == SIGINT ? "SIGINT" : "SIGTERM", running());
                for (auto& c : m_children) {
                    c.restart_at_mono_ms.reset();
                    if (c.pid > 0) ::kill(c.pid, sig);
                }
                kill_at = mono_ms() + static_cast<std::int64_t>(m_settings.kill_after_s * 1000.0);
            }
            if (kill_at && mono_ms() >= *kill_at) {
                for (auto& c : m_children) {
                    if (c.pid > 0 && !c.killed) {
                        log::warn("[{}] still running after {}: SIGKILL", c.spec->name,
                                  format_duration(m_settings.kill_after_s));
                        ::kill(c.pid, SIGKILL);
                        c.killed = true;
                    }
                }
            }
            if (kill_at && running() == 0) break;

            pump(poll_timeout_ms(kill_at));
            reap(kill_at.has_value());
            if (!kill_at) restart_due();
        }
        // Whatever the children wrote last (bounded: a grandchild may hold a pipe open).
        const std::int64_t drain_until = mono_ms() + 1000;
        while (!m_streams.empty() && mono_ms() < drain_until) pump(100);
        for (auto& s : m_streams) {
            s.flush_rest();
            ::close(s.fd);
        }
        m_streams.clear();
        const bool clean = std::all_of(m_children.begin(), m_children.end(), [](const Child& c) { return c.clean; });
        return clean ? cli::ok : cli::refused;
    }

private:
    [[nodiscard]] std::size_t running() const {
        return static_cast<std::size_t>(
            std::count_if(m_children.begin(), m_children.end(), [](const Child& c) { return c.pid > 0; }));
    }

    int poll_timeout_ms(const std::optional<std::int64_t>& kill_at) const {
        std::int64_t wait = 100;  // also how soon a signal or a dead child is seen
        const std::int64_t now = mono_ms();
        for (const auto& c : m_children)
            if (c.restart_at_mono_ms) wait = std::min(wait, *c.restart_at_mono_ms - now);
        if (kill_at) wait = std::min(wait, *kill_at - now);
        return static_cast<int>(std::max<std::int64_t>(wait, 0));
    }

    void pump(int timeout_ms) {
        std::vector<pollfd> fds;
        fds.reserve(m_streams.size());
        for (const auto& s : m_streams) fds.push_back({s.fd, POLLIN, 0});
        if (fds.empty()) {
            ::usleep(static_cast<useconds_t>(timeout_ms) * 1000);  // nothing to read; signals interrupt it
            return;
        }
        if (::poll(fds.data(), fds.size(), timeout_ms) <= 0) return;
        auto it = m_streams.begin();
        for (const auto& p : fds) {
            auto current = it++;
            if ((p.revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
            if (!current->pump()) {
                ::close(current->fd);
                m_streams.erase(current);
            }
        }
    }

    void spawn(Child& c) {
        for (const auto& file : c.spec->files) write_child_file(file);
        int out[2], err[2];
        if (::pipe2(out, O_CLOEXEC) != 0) throw cli::ExitError(cli::software, "pipe2 failed");
        if (::pipe2(err, O_CLOEXEC) != 0) {
            ::close(out[0]);
            ::close(out[1]);
            throw cli::ExitError(cli::software, "pipe2 failed");
        }
        std::vector<char*> argv;
        for (const auto& a : c.spec->argv) argv.push_back(const_cast<char*>(a.c_str()));
        argv.push_back(nullptr);
        const pid_t parent = ::getpid();
        const pid_t pid = ::fork();
        if (pid < 0) throw cli::ExitError(cli::software, fmt::format("fork failed: {}", std::strerror(errno)));
        if (pid == 0) {
            // Only async-signal-safe calls from here to exec.
            ::prctl(PR_SET_PDEATHSIG, SIGTERM);
            if (::getppid() != parent) ::_exit(0);  // the supervisor died before prctl took effect
            ::dup2(out[1], STDOUT_FILENO);
            ::dup2(err[1], STDERR_FILENO);
            const int devnull = ::open("/dev/null", O_RDONLY);
            if (devnull >= 0) ::dup2(devnull, STDIN_FILENO);
            ::signal(SIGPIPE, SIG_DFL);  // ignored here; an ignored signal stays ignored across exec
            sigset_t none;
            sigemptyset(&none);
            ::sigprocmask(SIG_SETMASK, &none, nullptr);
            ::execv(argv[0], argv.data());
            const char* what = "der-launch: exec failed\n";
            [[maybe_unused]] auto n = ::write(STDERR_FILENO, what, std::strlen(what));
            ::_exit(127);
        }
        ::close(out[1]);
        ::close(err[1]);
        const std::string prefix = "[" + c.spec->name + "] ";
        m_streams.push_back(Stream{out[0], STDOUT_FILENO, prefix, {}});
        m_streams.push_back(Stream{err[0], STDERR_FILENO, prefix, {}});
        c.pid = pid;
        c.started_mono_ms = mono_ms();
        c.restart_at_mono_ms.reset();
        log::info("[{}] started (pid {})", c.spec->name, pid);
    }

    void reap(bool stopping) {
        while (true) {
            int status = 0;
            const pid_t pid = ::waitpid(-1, &status, WNOHANG);
            if (pid <= 0) return;
            auto it = std::find_if(m_children.begin(), m_children.end(), [&](const Child& c) { return c.pid == pid; });
            if (it == m_children.end()) continue;
            Child& c = *it;
            c.pid = -1;
            const std::string how = WIFEXITED(status) ? fmt::format("exited with status {}", WEXITSTATUS(status))
                                                      : fmt::format("was killed by signal {}", WTERMSIG(status));
            if (stopping) {
                const int forwarded = m_signals.last.load() == SIGINT ? SIGINT : SIGTERM;
                c.clean = !c.killed && ((WIFEXITED(status) && WEXITSTATUS(status) == 0) ||
                                        (WIFSIGNALED(status) && WTERMSIG(status) == forwarded));
                if (c.clean)
                    log::info("[{}] {}", c.spec->name, how);
                else
                    log::warn("[{}] {}", c.spec->name, how);
                continue;
            }
            const double uptime_s = static_cast<double>(mono_ms() - c.started_mono_ms) / 1000.0;
            if (uptime_s >= m_settings.backoff_reset_after_s) c.backoff_s = m_settings.backoff_initial_s;
            log::warn("[{}] {} after {}; restarting in {}", c.spec->name, how, format_duration(uptime_s),
                      format_duration(c.backoff_s));
            c.restart_at_mono_ms = mono_ms() + static_cast<std::int64_t>(c.backoff_s * 1000.0);
            c.backoff_s = std::min(c.backoff_s * 2.0, m_settings.backoff_max_s);
        }
    }

    void restart_due() {
        const std::int64_t now = mono_ms();
        for (auto& c : m_children)
            if (c.pid < 0 && c.restart_at_mono_ms && now >= *c.restart_at_mono_ms) spawn(c);
    }

    const SuperviseSettings& m_settings;
    cli::Signals& m_signals;
    std::vector<Child> m_children;
    std::list<Stream> m_streams;
};

}  // namespace

int supervise(const std::vector<ChildSpec>& specs, const SuperviseSettings& settings, cli::Signals& signals) {
    Supervisor supervisor(specs, settings, signals);
    return supervisor.run();
}

}  // namespace der::launch
