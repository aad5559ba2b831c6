#pragma once
/// A throwaway PostgreSQL server for the store tests: initdb into a
/// temporary directory, one postgres process on 127.0.0.1 and a free port
/// (its unix socket in the same directory), fsync off. When the tests run as
/// root (CI does), initdb and postgres run as the `postgres` OS user, since
/// both refuse root. The server is a child of the test process and dies with
/// it (PR_SET_PDEATHSIG), so a killed test leaves nothing running.
///
/// Missing binaries or a server that does not come up throw: the store
/// tests fail loudly, they never skip.

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include <sys/types.h>

namespace der::test {

class PgServer {
public:
    PgServer();  ///< initdb + start; throws std::runtime_error saying what is wrong
    ~PgServer();
    PgServer(const PgServer&) = delete;
    PgServer& operator=(const PgServer&) = delete;

    /// Starts the server (again) and waits until it accepts connections.
    void start();
    /// Fast shutdown (SIGINT), waited for.
    void stop();
    [[nodiscard]] bool running() const { return m_pid > 0; }

    [[nodiscard]] int port() const { return m_port; }
    /// key=value conninfo for `database`.
    [[nodiscard]] std::string conninfo(const std::string& database) const;
    /// Creates a fresh, empty database and returns its conninfo.
    std::string create_database();
    /// The server's log, for failure messages.
    [[nodiscard]] std::string log() const;

private:
    std::string m_bindir;
    std::string m_dir;
    std::string m_data;
    int m_port = 0;
    pid_t m_pid = -1;
    int m_databases = 0;
};

/// The one server of this test run, started on first use.
PgServer& pg();

/// Polls `condition` every 10 ms until it holds or `deadline` passes.
bool wait_until(const std::function<bool()>& condition, std::chrono::milliseconds deadline);

}  // namespace der::test
