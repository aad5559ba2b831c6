// der-hub under systemd's eyes, without systemd: NOTIFY_SOCKET names an
// AF_UNIX datagram socket this test reads (as systemd does for Type=notify),
// WATCHDOG_USEC asks for watchdog pings, and JOURNAL_STREAM names the hub's
// stderr so its log lines carry the journal's priority prefixes.
#include "harness.hpp"

#include <fmt/core.h>
#include <catch2/catch.hpp>

#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <regex>

using namespace der::test;

namespace {

/// Sets environment variables for the processes the test starts; restores on exit.
class EnvGuard {
public:
    void set(const std::string& name, const std::string& value) {
        const char* old = std::getenv(name.c_str());
        m_saved.emplace_back(name, old ? std::optional<std::string>(old) : std::nullopt);
        ::setenv(name.c_str(), value.c_str(), 1);
    }
    ~EnvGuard() {
        for (auto it = m_saved.rbegin(); it != m_saved.rend(); ++it) {
            if (it->second)
                ::setenv(it->first.c_str(), it->second->c_str(), 1);
            else
                ::unsetenv(it->first.c_str());
        }
    }

private:
    std::vector<std::pair<std::string, std::optional<std::string>>> m_saved;
};

/// The notify socket: an AF_UNIX datagram socket bound to a path.
class NotifySocket {
public:
    explicit NotifySocket(const std::string& path) {
        m_fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        REQUIRE(m_fd >= 0);
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        REQUIRE(path.size() < sizeof addr.sun_path);
        std::copy(path.begin(), path.end(), addr.sun_path);
        REQUIRE(::bind(m_fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0);
    }
    ~NotifySocket() { ::close(m_fd); }
    NotifySocket(const NotifySocket&) = delete;
    NotifySocket& operator=(const NotifySocket&) = delete;

    /// The next datagram, nil when none comes within `deadline`.
    std::optional<std::string> receive(Ms deadline) {
        pollfd p{m_fd, POLLIN, 0};
        if (::poll(&p, 1, static_cast<int>(deadline.count())) <= 0) return std::nullopt;
        char buf[4096];
        const ssize_t n = ::recv(m_fd, buf, sizeof buf, 0);
        if (n < 0) return std::nullopt;
        return std::string(buf, static_cast<std::size_t>(n));
    }

private:
    int m_fd = -1;
};

bool has_line(const std::string& message, const std::string& line) {
    for (const auto& l : lines_of(message))
        if (l == line) return true;
    return false;
}

}  // namespace

TEST_CASE("der-hub tells systemd it is ready, pings the watchdog and logs with journal priorities",
          "[systemd]") {
#ifndef DER_HAVE_SYSTEMD
    WARN("der-hub was built without libsystemd: no sd_notify to test");
    return;
#else
    TempDir dir;
    dir.write("assets.yaml", fleet_yaml({{"site-a", "b1"}}, 1.0));
    NotifySocket notify(dir.file("notify"));
    const std::string log_path = dir.file("hub.log");
    dir.write("hub.log", "");
    struct stat st {};
    REQUIRE(::stat(log_path.c_str(), &st) == 0);

    const int http_port = free_port();
    EnvGuard env;
    env.set("NOTIFY_SOCKET", dir.file("notify"));
    env.set("WATCHDOG_USEC", "2000000");
    env.set("JOURNAL_STREAM", fmt::format("{}:{}", st.st_dev, st.st_ino));
    Process hub(
        {hub_binary(), "--config", dir.file("assets.yaml"), "--agents",
         fmt::format("tcp://127.0.0.1:{}", free_port()), "--control",
         fmt::format("tcp://127.0.0.1:{}", free_port()), "--stream",
         fmt::format("tcp://127.0.0.1:{}", free_port()), "--http", fmt::format("127.0.0.1:{}", http_port)},
        log_path);

    // READY=1 first, and only once the REST socket (bound last) answers.
    auto first = notify.receive(15000ms);
    INFO("hub log:\n" << read_file(log_path));
    REQUIRE(first);
    REQUIRE(has_line(*first, "READY=1"));
    const auto health = http_get(http_port, "/health");
    REQUIRE(health);
    CHECK(health->status == 200);

    // WATCHDOG=1 from the event loop, more often than WATCHDOG_USEC (2 s).
    int pings = 0;
    auto last = std::chrono::steady_clock::now();
    while (pings < 3) {
        auto message = notify.receive(3000ms);
        REQUIRE(message);
        if (!has_line(*message, "WATCHDOG=1")) continue;
        const auto now = std::chrono::steady_clock::now();
        CHECK(now - last < 2000ms);
        last = now;
        ++pings;
    }

    // STOPPING=1 on SIGTERM, then a clean exit.
    hub.signal(SIGTERM);
    bool stopping = false;
    while (auto message = notify.receive(5000ms)) {
        if (has_line(*message, "STOPPING=1")) {
            stopping = true;
            break;
        }
    }
    CHECK(stopping);
    CHECK(hub.wait_exit(10000ms) == 0);

    // Every log line starts with a syslog priority (<4> warn, <6> info) and
    // carries no timestamp: journald records both.
    const auto lines = lines_of(read_file(log_path));
    REQUIRE_FALSE(lines.empty());
    const std::regex prefixed(R"(<[0-7]>[^<].*)");
    for (const auto& line : lines) {
        INFO(line);
        CHECK(std::regex_match(line, prefixed));
    }
    const auto has_prefix = [&](const std::string& p) {
        return std::any_of(lines.begin(), lines.end(),
                           [&](const std::string& l) { return l.rfind(p, 0) == 0; });
    };
    CHECK(has_prefix("<4>transport: plain text"));
    CHECK(has_prefix("<6>der-hub "));
#endif
}

TEST_CASE("der-launch under journald keeps its agents' log priorities in front of their names", "[systemd]") {
    TempDir dir;
    HubUnderTest hub(dir, fleet_yaml({{"site-a", "b1"}}, 1.0));
    const std::string log_path = dir.file("launch.log");
    dir.write("launch.log", "");
    struct stat st {};
    REQUIRE(::stat(log_path.c_str(), &st) == 0);
    EnvGuard env;
    env.set("JOURNAL_STREAM", fmt::format("{}:{}", st.st_dev, st.st_ino));
    Process launch(
        {DER_LAUNCH_BIN, "--agent", agent_binary(), "--hub", hub.agents_endpoint(), hub.config_path()},
        log_path);
    // A line of the agent's own (der-launch's are "[site-a/b1] started ...").
    const bool agent_logged = wait_until(
        [&] { return read_file(log_path).find("<6>[site-a/b1] connected to hub") != std::string::npos; },
        10000ms);
    INFO("der-launch log:\n" << read_file(log_path));
    CHECK(agent_logged);
    CHECK(launch.stop() == 0);
    const std::regex prefixed(R"(<[0-7]>[^<].*)");
    for (const auto& line : lines_of(read_file(log_path))) {
        INFO(line);
        CHECK(std::regex_match(line, prefixed));
    }
}
