#include "pg_server.hpp"

#include "der/store/pg_connection.hpp"

#include <fmt/core.h>
#include <libpq-fe.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace der::test {

namespace {

using namespace std::chrono_literals;

int free_port() {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) throw std::runtime_error("socket() failed");
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        ::close(fd);
        throw std::runtime_error("bind() failed");
    }
    socklen_t len = sizeof addr;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    ::close(fd);
    return ntohs(addr.sin_port);
}

std::string read_all(const std::string& path) {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

/// Who the server runs as: ourselves, or `postgres` when we are root.
struct RunAs {
    bool switch_user = false;
    uid_t uid = 0;
    gid_t gid = 0;
};

RunAs run_as() {
    RunAs r;
    if (::geteuid() != 0) return r;
    const passwd* pw = ::getpwnam("postgres");
    if (pw == nullptr)
        throw std::runtime_error("the store tests run as root, and initdb/postgres refuse root, but there is no "
                                 "'postgres' OS user: install the 'postgresql' package (scripts/install-deps.sh)");
    r.switch_user = true;
    r.uid = pw->pw_uid;
    r.gid = pw->pw_gid;
    return r;
}

/// fork + exec with stdout/stderr appended to `log_path`, as `who`. With
/// `tie`, the child gets SIGTERM when the test process dies.
pid_t spawn(const std::vector<std::string>& argv, const std::string& log_path, const RunAs& who, bool tie) {
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    const pid_t parent = ::getpid();
    const pid_t pid = ::fork();
    if (pid < 0) throw std::runtime_error("fork() failed");
    if (pid > 0) return pid;
    // Child: only async-signal-safe calls from here on.
    const int fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
        ::dup2(fd, 1);
        ::dup2(fd, 2);
        ::close(fd);
    }
    ::setpgid(0, 0);  // a Ctrl-C on the terminal is for the test, not the server
    if (who.switch_user) {
        if (::setgroups(0, nullptr) != 0 || ::setgid(who.gid) != 0 || ::setuid(who.uid) != 0) ::_exit(126);
    }
    // After setuid: a change of credentials clears the death signal.
    if (tie && (::prctl(PR_SET_PDEATHSIG, SIGTERM) != 0 || ::getppid() != parent)) ::_exit(125);
    ::execv(args[0], args.data());
    ::_exit(127);
}

int wait_exit(pid_t pid, std::chrono::milliseconds deadline) {
    const auto end = std::chrono::steady_clock::now() + deadline;
    int status = 0;
    while (true) {
        const pid_t r = ::waitpid(pid, &status, WNOHANG);
        if (r == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        if (r < 0) return -1;
        if (std::chrono::steady_clock::now() >= end) return -2;
        std::this_thread::sleep_for(10ms);
    }
}

}  // namespace

bool wait_until(const std::function<bool()>& condition, std::chrono::milliseconds deadline) {
    const auto end = std::chrono::steady_clock::now() + deadline;
    while (true) {
        if (condition()) return true;
        if (std::chrono::steady_clock::now() >= end) return false;
        std::this_thread::sleep_for(10ms);
    }
}

PgServer::PgServer() {
    const char* env = std::getenv("DER_PG_BINDIR");
    m_bindir = env != nullptr ? env : "/usr/lib/postgresql/15/bin";
    for (const char* tool : {"initdb", "postgres"}) {
        if (::access((m_bindir + "/" + tool).c_str(), X_OK) != 0)
            throw std::runtime_error(fmt::format(
                "PostgreSQL server binaries not found ({}/{} is missing): the store tests need a real PostgreSQL 15 "
                "and never skip. Install it with scripts/install-deps.sh (Debian package 'postgresql'), or set "
                "DER_PG_BINDIR.",
                m_bindir, tool));
    }
    const RunAs who = run_as();
    std::string pattern = (std::filesystem::temp_directory_path() / "der-pg-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    m_dir = pattern;
    m_data = m_dir + "/data";
    if (who.switch_user && ::chown(m_dir.c_str(), who.uid, who.gid) != 0)
        throw std::runtime_error("cannot chown " + m_dir + " to postgres");
    const std::string log_path = m_dir + "/initdb.log";
    const pid_t pid = spawn({m_bindir + "/initdb", "-D", m_data, "-U", "der", "--auth=trust", "-E", "UTF8",
                             "--locale=C", "--no-sync"},
                            log_path, who, true);
    const int status = wait_exit(pid, 120s);
    if (status != 0) {
        const std::string log = read_all(log_path);
        std::filesystem::remove_all(m_dir);
        throw std::runtime_error(fmt::format("initdb failed (status {}):\n{}", status, log));
    }
    start();
}

PgServer::~PgServer() {
    try {
        stop();
    } catch (...) {
    }
    std::error_code ec;
    std::filesystem::remove_all(m_dir, ec);
}

void PgServer::start() {
    if (running()) return;
    if (m_port == 0) m_port = free_port();
    const RunAs who = run_as();
    m_pid = spawn({m_bindir + "/postgres", "-D", m_data, "-h", "127.0.0.1", "-p", std::to_string(m_port), "-k",
                   m_dir, "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off", "-c",
                   "max_connections=50", "-c", "log_min_messages=warning"},
                  m_dir + "/server.log", who, true);
    const std::string ping = conninfo("postgres") + " connect_timeout=2";
    const bool up = wait_until(
        [&] {
            int status = 0;
            if (::waitpid(m_pid, &status, WNOHANG) == m_pid) {
                m_pid = -1;
                throw std::runtime_error("postgres exited at start:\n" + log());
            }
            return PQping(ping.c_str()) == PQPING_OK;
        },
        60s);
    if (!up) throw std::runtime_error("postgres did not accept connections within 60 s:\n" + log());
}

void PgServer::stop() {
    if (!running()) return;
    ::kill(m_pid, SIGINT);  // fast shutdown: abort transactions, disconnect clients
    if (wait_exit(m_pid, 30s) == -2) {
        ::kill(m_pid, SIGKILL);
        wait_exit(m_pid, 10s);
    }
    m_pid = -1;
}

std::string PgServer::conninfo(const std::string& database) const {
    return fmt::format("host=127.0.0.1 port={} user=der dbname={}", m_port, database);
}

std::string PgServer::create_database() {
    const std::string name = fmt::format("der_test_{}", ++m_databases);
    auto conn = store::Connection::open(conninfo("postgres"));
    if (!conn) throw std::runtime_error(conn.error().message);
    if (auto r = conn->exec("CREATE DATABASE " + name); !r) throw std::runtime_error(r.error().message);
    return conninfo(name);
}

std::string PgServer::log() const { return read_all(m_dir + "/server.log"); }

PgServer& pg() {
    static PgServer server;
    return server;
}

}  // namespace der::test
