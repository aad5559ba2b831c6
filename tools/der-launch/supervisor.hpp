#pragma once
/// der-launch's supervisor: runs one child process per spec, prefixes each
/// line it writes with `[name] ` (stdout to stdout, stderr to stderr),
/// restarts a child that ends with exponential backoff, and on SIGTERM/SIGINT
/// (SIGHUP counts as SIGTERM: there is no reload) forwards the signal to every child, waits for them (SIGKILL after a grace
/// period) and returns. Single-threaded: one poll loop owns every child.
///
/// Children get PR_SET_PDEATHSIG = SIGTERM, so none outlives a supervisor that
/// dies without cleaning up (kill -9).

#include "cli.hpp"

#include <string>
#include <vector>

namespace der::launch {

/// A file a child reads at start (its own config), written before each start.
struct ChildFile {
    std::string path;
    std::string content;
};

struct ChildSpec {
    std::string name;               ///< the prefix, e.g. `site-a/b1`
    std::vector<std::string> argv;  ///< argv[0] is an absolute or relative path (no PATH search)
    /// Written (mode 0600; missing directories made 0700) before every start,
    /// so a restarted child reads the same content even if the file went.
    std::vector<ChildFile> files;
};

struct SuperviseSettings {
    double backoff_initial_s = 1.0;
    double backoff_max_s = 30.0;
    double backoff_reset_after_s = 60.0;  ///< a child up this long starts again at backoff_initial_s
    double kill_after_s = 10.0;           ///< grace after the forwarded signal, then SIGKILL
};

/// Supervises until `signals.stop`; returns 0 when every child then ended
/// cleanly (status 0, or killed by the forwarded signal), 1 otherwise (one
/// had to be SIGKILLed, or ended with another status).
int supervise(const std::vector<ChildSpec>& specs, const SuperviseSettings& settings, cli::Signals& signals);

/// Splits `buffer` into complete lines, each passed to `emit` without its
/// newline; the unfinished rest stays in `buffer`.
template <class Emit>
void take_lines(std::string& buffer, Emit&& emit) {
    std::size_t start = 0;
    for (auto nl = buffer.find('\n'); nl != std::string::npos; nl = buffer.find('\n', start)) {
        emit(std::string_view(buffer).substr(start, nl - start));
        start = nl + 1;
    }
    buffer.erase(0, start);
}

}  // namespace der::launch
