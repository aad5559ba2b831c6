#include "harness.hpp"

#include <fmt/core.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace der::test {

namespace {
/// A port the kernel just gave a socket bound to port 0 (then closed).
int kernel_port() {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) throw std::runtime_error("socket failed");
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        ::close(fd);
        throw std::runtime_error("bind failed");
    }
    socklen_t len = sizeof addr;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    ::close(fd);
    return ntohs(addr.sin_port);
}
}  // namespace

int free_port() {
    // The kernel may hand the same closed port out twice in a row; a hub
    // given it for two endpoints then fails to bind. Never repeat one here.
    static std::mutex mutex;
    static std::set<int> given;
    const std::lock_guard lock(mutex);
    for (int attempt = 0; attempt < 100; ++attempt) {
        const int port = kernel_port();
        if (given.insert(port).second) return port;
    }
    throw std::runtime_error("free_port: no fresh port in 100 attempts");
}

bool wait_until(const std::function<bool()>& condition, Ms deadline) {
    const auto end = std::chrono::steady_clock::now() + deadline;
    while (true) {
        if (condition()) return true;
        if (std::chrono::steady_clock::now() >= end) return false;
        std::this_thread::sleep_for(20ms);
    }
}

TempDir::TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "der-test-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    m_path = pattern;
}

TempDir::~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(m_path, ec);
}

void TempDir::write(const std::string& name, const std::string& content) const {
    std::ofstream out(file(name), std::ios::trunc);
    out << content;
    if (!out) throw std::runtime_error("cannot write " + file(name));
}

std::string read_file(const std::string& path) {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

Process::Process(std::vector<std::string> argv, std::string log_path) : m_log_path(std::move(log_path)) {
    const int log_fd = ::open(m_log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (log_fd < 0) throw std::runtime_error("cannot open " + m_log_path);
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    m_pid = ::fork();
    if (m_pid < 0) throw std::runtime_error("fork failed");
    if (m_pid == 0) {
        ::dup2(log_fd, STDOUT_FILENO);
        ::dup2(log_fd, STDERR_FILENO);
        const int devnull = ::open("/dev/null", O_RDONLY);
        ::dup2(devnull, STDIN_FILENO);
        // Leave the test's process group signals alone; a fresh default mask.
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, nullptr);
        ::execv(args[0], args.data());
        std::fprintf(stderr, "exec %s failed: %s\n", args[0], std::strerror(errno));
        ::_exit(127);
    }
    ::close(log_fd);
}

Process::~Process() {
    if (m_pid > 0 && !m_status) {
        ::kill(m_pid, SIGCONT);
        ::kill(m_pid, SIGKILL);
        int status = 0;
        ::waitpid(m_pid, &status, 0);
    }
}

void Process::signal(int sig) const {
    if (m_pid > 0) ::kill(m_pid, sig);
}

std::optional<int> Process::wait_exit(Ms deadline) {
    if (m_status) return m_status;
    const auto end = std::chrono::steady_clock::now() + deadline;
    while (true) {
        int status = 0;
        const pid_t r = ::waitpid(m_pid, &status, WNOHANG);
        if (r == m_pid) {
            m_status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
            return m_status;
        }
        if (std::chrono::steady_clock::now() >= end) return std::nullopt;
        std::this_thread::sleep_for(10ms);
    }
}

int Process::stop(Ms grace) {
    if (m_status) return *m_status;
    ::kill(m_pid, SIGCONT);
    ::kill(m_pid, SIGTERM);
    if (auto s = wait_exit(grace)) return *s;
    ::kill(m_pid, SIGKILL);
    return wait_exit(5000ms).value_or(-1);
}

bool Process::running() { return !wait_exit(0ms).has_value(); }

std::string hub_binary() { return DER_HUB_BIN; }
std::string agent_binary() { return DER_AGENT_BIN; }

double metric_in(const std::string& body, const std::string& name) {
    std::istringstream in(body);
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind(name + " ", 0) == 0) return std::stod(line.substr(name.size() + 1));
    }
    return -1;
}

std::optional<HttpReply> http_get(int port, const std::string& path) {
    httplib::Client client("127.0.0.1", port);
    client.set_connection_timeout(2, 0);
    client.set_read_timeout(5, 0);
    auto res = client.Get(path.c_str());
    if (!res) return std::nullopt;
    return HttpReply{res->status, res->body};
}

std::optional<HttpReply> http_post(int port, const std::string& path, const std::string& body,
                                   const std::string& content_type) {
    httplib::Client client("127.0.0.1", port);
    client.set_connection_timeout(2, 0);
    client.set_read_timeout(5, 0);
    auto res = client.Post(path.c_str(), body, content_type.c_str());
    if (!res) return std::nullopt;
    return HttpReply{res->status, res->body};
}

std::optional<HttpReply> http_delete(int port, const std::string& path, const std::string& body) {
    httplib::Client client("127.0.0.1", port);
    client.set_connection_timeout(2, 0);
    client.set_read_timeout(5, 0);
    auto res = client.Delete(path.c_str(), body, "application/json");
    if (!res) return std::nullopt;
    return HttpReply{res->status, res->body};
}

nlohmann::json get_json(int port, const std::string& path) {
    auto reply = http_get(port, path);
    if (!reply) throw std::runtime_error("GET " + path + " failed");
    return nlohmann::json::parse(reply->body);
}

std::string fleet_yaml(const std::vector<TestAsset>& assets, double telemetry_s, double heartbeat_s) {
    std::map<std::string, std::vector<const TestAsset*>> by_site;
    std::vector<std::string> order;
    for (const auto& a : assets) {
        if (!by_site.contains(a.site)) order.push_back(a.site);
        by_site[a.site].push_back(&a);
    }
    std::string out = fmt::format("telemetry_s: {}\nheartbeat_s: {}\nsites:\n", telemetry_s, heartbeat_s);
    for (const auto& site : order) {
        out += fmt::format("  - name: {}\n    assets:\n", site);
        for (const auto* a : by_site[site]) {
            out += fmt::format(
                "      - name: {}\n        capacity_mwh: {}\n        max_mw: {}\n        min_mw: {}\n"
                "        initial_soc_pct: {}\n        ramp_mw_per_s: {}\n        soc_min_pct: 5\n"
                "        soc_max_pct: 95\n",
                a->name, a->capacity_mwh, a->max_mw, a->min_mw, a->initial_soc_pct, a->ramp_mw_per_s);
        }
    }
    return out;
}

HubUnderTest::HubUnderTest(const TempDir& dir, const std::string& yaml, std::vector<std::string> extra_args)
    : m_dir(dir),
      m_config(dir.file("assets.yaml")),
      m_extra(std::move(extra_args)),
      m_agents_port(free_port()),
      m_control_port(free_port()),
      m_stream_port(free_port()),
      m_http_port(free_port()) {
    dir.write("assets.yaml", yaml);
    start();
}

HubUnderTest::~HubUnderTest() {
    if (m_process) m_process->stop();
}

void HubUnderTest::start() {
    if (m_process && m_process->running()) throw std::logic_error("hub already running");
    std::vector<std::string> argv = {hub_binary(),
                                     "--config",
                                     m_config,
                                     "--agents",
                                     agents_endpoint(),
                                     "--control",
                                     control_endpoint(),
                                     "--stream",
                                     stream_endpoint(),
                                     "--http",
                                     fmt::format("127.0.0.1:{}", m_http_port),
                                     "--log-level",
                                     "debug"};
    argv.insert(argv.end(), m_extra.begin(), m_extra.end());
    m_process = std::make_unique<Process>(argv, m_dir.file(fmt::format("hub-{}.log", ++m_starts)));
    const bool up = wait_until(
        [&] {
            auto r = http_get(m_http_port, "/health");
            return r && r->status == 200;
        },
        15000ms);
    if (!up) throw std::runtime_error("der-hub did not become healthy; log:\n" + log());
}

void HubUnderTest::kill9() {
    m_process->signal(SIGKILL);
    m_process->wait_exit(5000ms);
}

int HubUnderTest::stop() { return m_process->stop(); }

std::string HubUnderTest::agents_endpoint() const { return fmt::format("tcp://127.0.0.1:{}", m_agents_port); }
std::string HubUnderTest::control_endpoint() const { return fmt::format("tcp://127.0.0.1:{}", m_control_port); }
std::string HubUnderTest::stream_endpoint() const { return fmt::format("tcp://127.0.0.1:{}", m_stream_port); }

std::string HubUnderTest::log() const {
    std::string out;
    for (int i = 1; i <= m_starts; ++i) out += read_file(m_dir.file(fmt::format("hub-{}.log", i)));
    return out;
}

std::unique_ptr<Process> start_agent(const TempDir& dir, const std::string& hub_endpoint, const std::string& config,
                                     const std::string& asset, std::vector<std::string> extra_args) {
    std::vector<std::string> argv = {agent_binary(), "--hub",       hub_endpoint, "--config",
                                     config,         "--asset",     asset,        "--log-level",
                                     "debug",        "--tick",      "100ms"};
    argv.insert(argv.end(), extra_args.begin(), extra_args.end());
    std::string safe = asset;
    for (auto& c : safe)
        if (c == '/') c = '_';
    static std::atomic<int> counter{0};
    return std::make_unique<Process>(argv, dir.file(fmt::format("agent-{}-{}.log", safe, ++counter)));
}

// --- TcpProxy -------------------------------------------------------------------

struct TcpProxy::Impl {
    int target = 0;
    int listen_fd = -1;
    int port = 0;
    int wake[2] = {-1, -1};
    std::atomic<bool> quit{false};
    std::atomic<bool> blocked{false};
    std::atomic<int> cut_requests{0};
    std::thread thread;

    struct Pair {
        int a;
        int b;
    };

    void run() {
        std::vector<Pair> pairs;
        int seen_cuts = 0;
        const auto close_all = [&] {
            for (auto& p : pairs) {
                ::close(p.a);
                ::close(p.b);
            }
            pairs.clear();
        };
        while (!quit.load()) {
            if (cut_requests.load() != seen_cuts) {
                seen_cuts = cut_requests.load();
                close_all();
            }
            std::vector<pollfd> fds;
            fds.push_back({listen_fd, POLLIN, 0});
            fds.push_back({wake[0], POLLIN, 0});
            for (const auto& p : pairs) {
                fds.push_back({p.a, POLLIN, 0});
                fds.push_back({p.b, POLLIN, 0});
            }
            if (::poll(fds.data(), fds.size(), 100) < 0) continue;
            if (fds[1].revents & POLLIN) {
                char buf[64];
                [[maybe_unused]] auto n = ::read(wake[0], buf, sizeof buf);
                continue;  // re-check cut/quit before touching pairs
            }
            const std::size_t polled = pairs.size();  // fds holds entries for these only
            if (fds[0].revents & POLLIN) {
                const int client = ::accept(listen_fd, nullptr, nullptr);
                if (client >= 0) {
                    if (blocked.load()) {
                        ::close(client);
                    } else {
                        const int upstream = ::socket(AF_INET, SOCK_STREAM, 0);
                        sockaddr_in addr{};
                        addr.sin_family = AF_INET;
                        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
                        addr.sin_port = htons(static_cast<std::uint16_t>(target));
                        if (::connect(upstream, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
                            pairs.push_back({client, upstream});
                        } else {
                            ::close(upstream);
                            ::close(client);
                        }
                    }
                }
            }
            std::vector<std::size_t> dead;
            for (std::size_t i = 0; i < polled; ++i) {
                const auto& pa = fds[2 + 2 * i];
                const auto& pb = fds[3 + 2 * i];
                bool ok = true;
                if (pa.revents & (POLLIN | POLLHUP | POLLERR)) ok = forward(pairs[i].a, pairs[i].b) && ok;
                if (pb.revents & (POLLIN | POLLHUP | POLLERR)) ok = forward(pairs[i].b, pairs[i].a) && ok;
                if (!ok) dead.push_back(i);
            }
            for (auto it = dead.rbegin(); it != dead.rend(); ++it) {
                ::close(pairs[*it].a);
                ::close(pairs[*it].b);
                pairs.erase(pairs.begin() + static_cast<std::ptrdiff_t>(*it));
            }
        }
        close_all();
    }

    static bool forward(int from, int to) {
        char buf[65536];
        const ssize_t n = ::read(from, buf, sizeof buf);
        if (n <= 0) return false;
        ssize_t off = 0;
        while (off < n) {
            const ssize_t w = ::write(to, buf + off, static_cast<std::size_t>(n - off));
            if (w <= 0) return false;
            off += w;
        }
        return true;
    }
};

TcpProxy::TcpProxy(int target_port) : m_impl(std::make_unique<Impl>()) {
    m_impl->target = target_port;
    m_impl->listen_fd = ::socket(AF_INET, SOCK_STREAM, 0);
    const int one = 1;
    ::setsockopt(m_impl->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(m_impl->listen_fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::listen(m_impl->listen_fd, 128) != 0)
        throw std::runtime_error("proxy: bind/listen failed");
    socklen_t len = sizeof addr;
    ::getsockname(m_impl->listen_fd, reinterpret_cast<sockaddr*>(&addr), &len);
    m_impl->port = ntohs(addr.sin_port);
    if (::pipe(m_impl->wake) != 0) throw std::runtime_error("pipe failed");
    m_impl->thread = std::thread([this] { m_impl->run(); });
}

TcpProxy::~TcpProxy() {
    m_impl->quit = true;
    [[maybe_unused]] auto n = ::write(m_impl->wake[1], "q", 1);
    m_impl->thread.join();
    ::close(m_impl->listen_fd);
    ::close(m_impl->wake[0]);
    ::close(m_impl->wake[1]);
}

int TcpProxy::port() const { return m_impl->port; }

void TcpProxy::cut(bool block) {
    m_impl->blocked = block;
    ++m_impl->cut_requests;
    [[maybe_unused]] auto n = ::write(m_impl->wake[1], "c", 1);
}

void TcpProxy::restore() { m_impl->blocked = false; }

nlohmann::json telemetry_history(int http_port, const std::string& asset) {
    nlohmann::json rows = nlohmann::json::array();
    std::string path = "/telemetry/" + asset + "/history?limit=100000";
    while (true) {
        auto page = get_json(http_port, path);
        for (auto& r : page["rows"]) rows.push_back(r);
        if (page["next"].is_null()) break;
        path = page["next"].get<std::string>();
    }
    return rows;
}

// --- running programs to completion ------------------------------------------------

RunResult run_capture(const std::vector<std::string>& argv, const std::string& input, Ms deadline) {
    ::signal(SIGPIPE, SIG_IGN);  // a child that closes its stdin early must not kill the test
    int in[2], out[2], err[2];
    if (::pipe2(in, O_CLOEXEC) != 0 || ::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0)
        throw std::runtime_error("pipe2 failed");
    std::vector<std::string> copy = argv;
    std::vector<char*> args;
    for (auto& a : copy) args.push_back(a.data());
    args.push_back(nullptr);
    const auto start = std::chrono::steady_clock::now();
    const pid_t pid = ::fork();
    if (pid < 0) throw std::runtime_error("fork failed");
    if (pid == 0) {
        ::dup2(in[0], STDIN_FILENO);
        ::dup2(out[1], STDOUT_FILENO);
        ::dup2(err[1], STDERR_FILENO);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, nullptr);
        ::signal(SIGPIPE, SIG_DFL);
        ::execv(args[0], args.data());
        std::fprintf(stderr, "exec %s failed: %s\n", args[0], std::strerror(errno));
        ::_exit(127);
    }
    ::close(in[0]);
    ::close(out[1]);
    ::close(err[1]);
    ::fcntl(in[1], F_SETFL, O_NONBLOCK);

    RunResult result;
    std::size_t written = 0;
    int in_fd = in[1];
    if (input.empty()) {
        ::close(in_fd);
        in_fd = -1;
    }
    int out_fd = out[0], err_fd = err[0];
    const auto end = start + deadline;
    bool killed = false;
    while (out_fd >= 0 || err_fd >= 0) {
        std::vector<pollfd> fds;
        if (in_fd >= 0) fds.push_back({in_fd, POLLOUT, 0});
        if (out_fd >= 0) fds.push_back({out_fd, POLLIN, 0});
        if (err_fd >= 0) fds.push_back({err_fd, POLLIN, 0});
        const auto left = std::chrono::duration_cast<Ms>(end - std::chrono::steady_clock::now()).count();
        if (left <= 0 && !killed) {
            ::kill(pid, SIGCONT);
            ::kill(pid, SIGKILL);
            killed = true;
        }
        ::poll(fds.data(), fds.size(), killed ? 100 : static_cast<int>(std::min<long long>(left, 100)));
        for (const auto& p : fds) {
            if (p.revents == 0) continue;
            if (p.fd == in_fd) {
                const ssize_t n = ::write(in_fd, input.data() + written, input.size() - written);
                if (n > 0) written += static_cast<std::size_t>(n);
                if (n < 0 || written == input.size()) {
                    ::close(in_fd);
                    in_fd = -1;
                }
                continue;
            }
            char buf[8192];
            const ssize_t n = ::read(p.fd, buf, sizeof buf);
            auto& target = p.fd == out_fd ? result.out : result.err;
            if (n > 0) {
                target.append(buf, static_cast<std::size_t>(n));
            } else {
                ::close(p.fd);
                (p.fd == out_fd ? out_fd : err_fd) = -1;
            }
        }
        if (killed && std::chrono::steady_clock::now() > end + 2000ms) break;  // a grandchild holds the pipes
    }
    if (in_fd >= 0) ::close(in_fd);
    if (out_fd >= 0) ::close(out_fd);
    if (err_fd >= 0) ::close(err_fd);
    int status = 0;
    ::waitpid(pid, &status, 0);
    result.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    result.timed_out = killed;
    result.elapsed = std::chrono::duration_cast<Ms>(std::chrono::steady_clock::now() - start);
    return result;
}

RunResult run_shell(const std::string& command, Ms deadline) {
    return run_capture({"/bin/sh", "-c", command}, {}, deadline);
}

std::string shell_quote(const std::string& text) {
    std::string out = "'";
    for (const char c : text) {
        if (c == '\'') out += "'\\''";
        else out += c;
    }
    return out + "'";
}

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> out;
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line))
        if (!line.empty()) out.push_back(line);
    return out;
}

std::vector<pid_t> child_pids(pid_t parent) {
    std::vector<pid_t> out;
    for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
        const auto name = entry.path().filename().string();
        if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
        // /proc/PID/stat: "pid (comm) state ppid ..."; comm may hold spaces and parentheses.
        const std::string stat = read_file(entry.path().string() + "/stat");
        const auto close = stat.rfind(')');
        if (close == std::string::npos) continue;
        std::istringstream rest(stat.substr(close + 1));
        char state = 0;
        pid_t ppid = 0;
        rest >> state >> ppid;
        if (ppid == parent && state != 'Z') out.push_back(static_cast<pid_t>(std::stoi(name)));
    }
    return out;
}

bool process_alive(pid_t pid) {
    const std::string stat = read_file(fmt::format("/proc/{}/stat", pid));
    const auto close = stat.rfind(')');
    if (close == std::string::npos) return false;
    return stat.size() > close + 2 && stat[close + 2] != 'Z';
}

}  // namespace der::test
