#pragma once
/// Small helpers shared by the benchmark programs of tests/bench: clocks,
/// percentiles, flag parsing and the open-files limit. Benchmarks only.

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include <sys/resource.h>

namespace der::bench {

inline std::int64_t now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

/// Raises RLIMIT_NOFILE to the hard limit; returns the new soft limit.
inline long raise_fd_limit() {
    rlimit r{};
    if (getrlimit(RLIMIT_NOFILE, &r) != 0) return -1;
    r.rlim_cur = r.rlim_max;
    setrlimit(RLIMIT_NOFILE, &r);
    getrlimit(RLIMIT_NOFILE, &r);
    return static_cast<long>(r.rlim_cur);
}

/// p in [0, 100]; nearest rank on a copy. 0 for an empty sample.
inline double percentile(std::vector<double> v, double p) {
    if (v.empty()) return 0.0;
    std::sort(v.begin(), v.end());
    auto rank = static_cast<std::size_t>(p / 100.0 * static_cast<double>(v.size()));
    if (rank >= v.size()) rank = v.size() - 1;
    return v[rank];
}

/// `--key value` pairs and bare `--flag`s; anything else is a usage error (exit 64).
class Flags {
public:
    Flags(int argc, char** argv, const char* usage) : m_usage(usage) {
        for (int i = 1; i < argc; ++i) {
            std::string a = argv[i];
            if (a == "-h" || a == "--help") {
                std::fputs(usage, stdout);
                std::exit(0);
            }
            if (a.rfind("--", 0) != 0) fail("unexpected argument '" + a + "'");
            a = a.substr(2);
            if (auto eq = a.find('='); eq != std::string::npos) {
                m_values[a.substr(0, eq)] = a.substr(eq + 1);
            } else if (i + 1 < argc && std::string(argv[i + 1]).rfind("--", 0) != 0) {
                m_values[a] = argv[++i];
            } else {
                m_values[a] = "1";
            }
        }
    }
    std::string str(const std::string& key, const std::string& def) {
        m_used[key] = true;
        auto it = m_values.find(key);
        return it == m_values.end() ? def : it->second;
    }
    double num(const std::string& key, double def) {
        const auto s = str(key, "");
        if (s.empty()) return def;
        char* end = nullptr;
        const double v = std::strtod(s.c_str(), &end);
        if (end == s.c_str() || *end != '\0') fail("--" + key + ": not a number: '" + s + "'");
        return v;
    }
    bool flag(const std::string& key) { return str(key, "") == "1"; }
    /// Call after reading every flag: an unknown one is a usage error.
    void done() {
        for (const auto& [k, v] : m_values)
            if (!m_used.count(k)) fail("unknown option '--" + k + "'");
    }
    [[noreturn]] void fail(const std::string& msg) {
        std::fprintf(stderr, "error: %s\n%s", msg.c_str(), m_usage);
        std::exit(64);
    }

private:
    const char* m_usage;
    std::map<std::string, std::string> m_values;
    std::map<std::string, bool> m_used;
};

}  // namespace der::bench
