// A stand-in for libFuzzer's driver, for building the fuzz targets with g++.
//
// Implementation details
// - Why: clang 14 (Debian 12) cannot compile libstdc++ 12's <expected>, so
//   libder cannot be built with -fsanitize=fuzzer here. g++ builds the same
//   target files (LLVMFuzzerTestOneInput) with this main() instead, under
//   ASan+UBSan, and the top-level DER_FUZZ option compiles der with
//   -fsanitize-coverage=trace-pc, whose hook is defined below.
// - Flags: the subset of libFuzzer's that tests/fuzz/run.sh uses, with the
//   same meaning: -max_total_time=S, -runs=N, -timeout=S, -rss_limit_mb=M,
//   -max_len=N, -seed=N, -artifact_prefix=P. Other -flags are ignored with a
//   warning. Arguments that are files are run once each (reproducing a
//   crash); directories are a corpus: every file is run, then mutated inputs
//   until the time or run budget is spent. Inputs that reach new coverage are
//   kept in memory and written into the first directory, named by hash.
// - Coverage: every basic block of instrumented code calls
//   __sanitizer_cov_trace_pc; the hook hashes (previous block, this block)
//   into a 64 Ki table of 8-bit hit counters, AFL-style. After each input a
//   feature is (slot, log2 bucket of its count); an input is kept when it
//   shows a feature never seen. `cov` in the status lines counts slots hit.
// - Mutations: libFuzzer's usual ones (bit flips, random and interesting
//   bytes, erase, insert, copy within the input, splice with another corpus
//   input, change an ASCII number), 1 to 5 stacked per run.
// - Crashes: ASan reports call the death callback, aborts (UBSan with
//   abort_on_error=1, failed properties, uncaught exceptions) and SIGILL reach
//   a signal handler; both write the input to <artifact_prefix>crash-<hash>
//   and print "Test unit written to <path>", as libFuzzer does. A SIGALRM
//   once a second checks the rest: an input running longer than -timeout
//   writes timeout-<hash> and exits 70, RSS above -rss_limit_mb writes
//   oom-<hash> and exits 71. Each input is passed in a heap buffer of exactly
//   its size, so ASan sees any read past its end.
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);
extern "C" __attribute__((weak)) int LLVMFuzzerInitialize(int* argc, char*** argv);
extern "C" __attribute__((weak)) void __sanitizer_set_death_callback(void (*callback)());

namespace {

namespace fs = std::filesystem;
using Bytes = std::vector<std::uint8_t>;

// --- coverage ------------------------------------------------------------------

constexpr std::size_t k_slots = 1 << 16;
std::array<std::uint8_t, k_slots> g_counters{};
std::uintptr_t g_previous_block = 0;

}  // namespace

extern "C" __attribute__((no_sanitize_coverage)) void __sanitizer_cov_trace_pc() {
    const auto pc = reinterpret_cast<std::uintptr_t>(__builtin_return_address(0));
    const std::uintptr_t block = (pc * 0x9E3779B97F4A7C15ULL) >> 48;  // 16 well-mixed bits
    ++g_counters[(block ^ g_previous_block) & (k_slots - 1)];
    g_previous_block = block >> 1;
}

namespace {

/// Features seen so far: per slot, a bit per log2 bucket of the hit count.
class Coverage {
public:
    /// Folds in the counters of the input just run, and clears them. True
    /// when they show a feature never seen before.
    bool absorb() {
        bool fresh = false;
        for (std::size_t i = 0; i < k_slots; ++i) {
            const std::uint8_t count = g_counters[i];
            if (count == 0) continue;
            const auto bit = static_cast<std::uint8_t>(1u << bucket(count));
            if ((m_seen[i] & bit) == 0) {
                if (m_seen[i] == 0) ++m_slots_hit;
                m_seen[i] |= bit;
                fresh = true;
            }
        }
        g_counters.fill(0);
        g_previous_block = 0;
        return fresh;
    }
    [[nodiscard]] std::size_t slots_hit() const { return m_slots_hit; }

private:
    static unsigned bucket(std::uint8_t count) {
        if (count <= 3) return count - 1u;
        if (count < 8) return 3;
        if (count < 16) return 4;
        if (count < 32) return 5;
        if (count < 128) return 6;
        return 7;
    }
    std::array<std::uint8_t, k_slots> m_seen{};
    std::size_t m_slots_hit = 0;
};

// --- options -------------------------------------------------------------------

struct Options {
    double max_total_time_s = 0;  ///< 0 = no limit (then -runs bounds the run)
    long long runs = -1;          ///< mutated runs; -1 = no limit
    int timeout_s = 1200;
    long rss_limit_mb = 2048;
    std::size_t max_len = 0;  ///< 0 = max(4096, largest corpus input)
    unsigned seed = 0;        ///< 0 = from the clock
    std::string artifact_prefix = "./";
    std::vector<std::string> inputs;
};

Options parse_options(int argc, char** argv) {
    Options o;
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        if (!arg.starts_with('-')) {
            o.inputs.emplace_back(arg);
            continue;
        }
        const auto eq = arg.find('=');
        const std::string_view name = arg.substr(1, eq == std::string_view::npos ? arg.npos : eq - 1);
        const std::string value(eq == std::string_view::npos ? std::string_view{} : arg.substr(eq + 1));
        if (name == "max_total_time") {
            o.max_total_time_s = std::atof(value.c_str());
        } else if (name == "runs") {
            o.runs = std::atoll(value.c_str());
        } else if (name == "timeout") {
            o.timeout_s = std::atoi(value.c_str());
        } else if (name == "rss_limit_mb") {
            o.rss_limit_mb = std::atol(value.c_str());
        } else if (name == "max_len") {
            o.max_len = static_cast<std::size_t>(std::atoll(value.c_str()));
        } else if (name == "seed") {
            o.seed = static_cast<unsigned>(std::atoll(value.c_str()));
        } else if (name == "artifact_prefix") {
            o.artifact_prefix = value;
        } else {
            std::fprintf(stderr, "WARNING: standalone fuzz driver: ignoring flag %s\n", argv[i]);
        }
    }
    return o;
}

// --- crash reporting (async-signal-safe from here to run_one) -------------------

char g_artifact_prefix[1024] = "./";
const std::uint8_t* volatile g_current = nullptr;
volatile std::size_t g_current_size = 0;
std::atomic<bool> g_artifact_written{false};
std::atomic<std::int64_t> g_unit_started_ms{0};  ///< 0 = not inside an input
int g_timeout_s = 1200;
long g_rss_limit_mb = 2048;

std::int64_t monotonic_ms() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<std::int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1'000'000;
}

std::uint64_t fnv1a(const std::uint8_t* data, std::size_t size) {
    std::uint64_t h = 0xcbf29ce484222325ULL;
    for (std::size_t i = 0; i < size; ++i) h = (h ^ data[i]) * 0x100000001b3ULL;
    return h;
}

void write_err(const char* text) {
    const ssize_t ignored = write(STDERR_FILENO, text, std::strlen(text));
    (void)ignored;
}

/// `<dir>/<kind>-<16 hex digits of the hash>`, without allocating.
void hashed_name(char* out, std::size_t cap, const char* dir, const char* kind, const std::uint8_t* data,
                 std::size_t size) {
    static constexpr char k_hex[] = "0123456789abcdef";
    char hash[17];
    std::uint64_t h = fnv1a(data, size);
    for (int i = 15; i >= 0; --i, h >>= 4) hash[i] = k_hex[h & 15];
    hash[16] = '\0';
    out[0] = '\0';
    std::strncat(out, dir, cap - 1);
    std::strncat(out, kind, cap - std::strlen(out) - 1);
    std::strncat(out, "-", cap - std::strlen(out) - 1);
    std::strncat(out, hash, cap - std::strlen(out) - 1);
}

void write_file(const char* path, const std::uint8_t* data, std::size_t size) {
    const int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) return;
    while (size > 0) {
        const ssize_t n = write(fd, data, size);
        if (n <= 0) break;
        data += n;
        size -= static_cast<std::size_t>(n);
    }
    close(fd);
}

/// Writes the input being run as an artifact, once per process.
void write_artifact(const char* kind) {
    if (g_current == nullptr || g_artifact_written.exchange(true)) return;
    char path[1200];
    hashed_name(path, sizeof path, g_artifact_prefix, kind, g_current, g_current_size);
    write_file(path, g_current, g_current_size);
    write_err("artifact_prefix='");
    write_err(g_artifact_prefix);
    write_err("'; Test unit written to ");
    write_err(path);
    write_err("\n");
}

void on_sanitizer_death() { write_artifact("crash"); }

void on_deadly_signal(int sig) {
    write_err("==ERROR: standalone fuzz driver: deadly signal\n");
    write_artifact("crash");
    signal(sig, SIG_DFL);
    raise(sig);
}

/// Once a second: the input running too long, or the process grown too big.
void on_alarm(int) {
    const std::int64_t started = g_unit_started_ms.load();
    if (started != 0 && monotonic_ms() - started > static_cast<std::int64_t>(g_timeout_s) * 1000) {
        write_err("==ERROR: standalone fuzz driver: timeout (an input ran longer than -timeout)\n");
        write_artifact("timeout");
        _exit(70);
    }
    rusage usage{};
    if (g_rss_limit_mb > 0 && getrusage(RUSAGE_SELF, &usage) == 0 && usage.ru_maxrss / 1024 > g_rss_limit_mb) {
        write_err("==ERROR: standalone fuzz driver: out-of-memory (RSS above -rss_limit_mb)\n");
        write_artifact("oom");
        _exit(71);
    }
}

void install_handlers(const Options& o) {
    g_artifact_prefix[0] = '\0';
    std::strncat(g_artifact_prefix, o.artifact_prefix.c_str(), sizeof g_artifact_prefix - 1);
    g_timeout_s = o.timeout_s;
    g_rss_limit_mb = o.rss_limit_mb;
    if (__sanitizer_set_death_callback != nullptr) __sanitizer_set_death_callback(on_sanitizer_death);
    struct sigaction deadly{};
    deadly.sa_handler = on_deadly_signal;
    sigemptyset(&deadly.sa_mask);
    deadly.sa_flags = static_cast<int>(SA_RESETHAND);
    for (const int sig : {SIGABRT, SIGILL}) sigaction(sig, &deadly, nullptr);
    struct sigaction alarm{};
    alarm.sa_handler = on_alarm;
    sigemptyset(&alarm.sa_mask);
    alarm.sa_flags = SA_RESTART;
    sigaction(SIGALRM, &alarm, nullptr);
    const itimerval every_second{{1, 0}, {1, 0}};
    setitimer(ITIMER_REAL, &every_second, nullptr);
}

/// Runs one input from an exact-size heap copy (so ASan sees overreads).
void run_one(const Bytes& input) {
    const auto copy = std::make_unique<std::uint8_t[]>(input.size());
    std::copy(input.begin(), input.end(), copy.get());
    g_current_size = input.size();
    g_current = copy.get();
    g_unit_started_ms.store(monotonic_ms());
    LLVMFuzzerTestOneInput(copy.get(), input.size());
    g_unit_started_ms.store(0);
    g_current = nullptr;
}

long rss_mb() {
    rusage usage{};
    getrusage(RUSAGE_SELF, &usage);
    return usage.ru_maxrss / 1024;
}

// --- mutation ------------------------------------------------------------------

class Mutator {
public:
    Mutator(unsigned seed, std::size_t max_len) : m_rng(seed), m_max_len(max_len) {}

    /// 1 to 5 stacked mutations of `base`; `other` is a second corpus input to splice from.
    Bytes mutate(const Bytes& base, const Bytes& other) {
        Bytes out = base;
        const int rounds = 1 + static_cast<int>(below(5));
        for (int i = 0; i < rounds; ++i) mutate_once(out, other);
        if (out.size() > m_max_len) out.resize(m_max_len);
        return out;
    }

private:
    std::size_t below(std::size_t n) { return n == 0 ? 0 : std::uniform_int_distribution<std::size_t>(0, n - 1)(m_rng); }

    void mutate_once(Bytes& b, const Bytes& other) {
        static constexpr std::array<std::uint8_t, 12> k_interesting{0x00, 0x01, 0x7f, 0x80, 0xff, 0xc0,
                                                                    0xc3, 0xcb, 0xde, 0x90, 0x22, 0x0a};
        switch (below(b.empty() ? 2 : 9)) {
            case 0:  // insert random bytes
            {
                const std::size_t at = below(b.size() + 1);
                const std::size_t n = 1 + below(8);
                for (std::size_t i = 0; i < n; ++i)
                    b.insert(b.begin() + static_cast<std::ptrdiff_t>(at), static_cast<std::uint8_t>(m_rng()));
                break;
            }
            case 1:  // splice: a chunk of the other input inserted here
            {
                if (other.empty()) break;
                const std::size_t from = below(other.size());
                const std::size_t n = 1 + below(std::min<std::size_t>(other.size() - from, 64));
                const std::size_t at = below(b.size() + 1);
                b.insert(b.begin() + static_cast<std::ptrdiff_t>(at), other.begin() + static_cast<std::ptrdiff_t>(from),
                         other.begin() + static_cast<std::ptrdiff_t>(from + n));
                break;
            }
            case 2: b[below(b.size())] ^= static_cast<std::uint8_t>(1u << below(8)); break;
            case 3: b[below(b.size())] = static_cast<std::uint8_t>(m_rng()); break;
            case 4: b[below(b.size())] = k_interesting[below(k_interesting.size())]; break;
            case 5:  // erase a range
            {
                const std::size_t at = below(b.size());
                const std::size_t n = 1 + below(std::min<std::size_t>(b.size() - at, 16));
                b.erase(b.begin() + static_cast<std::ptrdiff_t>(at), b.begin() + static_cast<std::ptrdiff_t>(at + n));
                break;
            }
            case 6:  // copy a range of the input over another place of it
            {
                const std::size_t from = below(b.size());
                const std::size_t to = below(b.size());
                const std::size_t n = 1 + below(std::min(b.size() - from, b.size() - to));
                std::memmove(b.data() + to, b.data() + from, n);
                break;
            }
            case 7:  // splice: the other input's tail replaces ours from a random point
            {
                if (other.empty()) break;
                b.resize(below(b.size() + 1));
                b.insert(b.end(), other.begin() + static_cast<std::ptrdiff_t>(below(other.size())), other.end());
                break;
            }
            case 8: change_ascii_number(b); break;
        }
    }

    /// Replaces a run of ASCII digits with a related or random number.
    void change_ascii_number(Bytes& b) {
        std::size_t at = below(b.size());
        while (at < b.size() && (b[at] < '0' || b[at] > '9')) ++at;
        if (at == b.size()) return;
        std::size_t end = at;
        while (end < b.size() && b[end] >= '0' && b[end] <= '9') ++end;
        const std::string digits(b.begin() + static_cast<std::ptrdiff_t>(at), b.begin() + static_cast<std::ptrdiff_t>(end));
        long long v = digits.size() > 18 ? 0 : std::atoll(digits.c_str());
        switch (below(4)) {
            case 0: v += 1; break;
            case 1: v -= 1; break;
            case 2: v *= 10; break;
            default: v = static_cast<long long>(m_rng() % 100000); break;
        }
        const std::string text = std::to_string(v);
        b.erase(b.begin() + static_cast<std::ptrdiff_t>(at), b.begin() + static_cast<std::ptrdiff_t>(end));
        b.insert(b.begin() + static_cast<std::ptrdiff_t>(at), text.begin(), text.end());
    }

    std::mt19937_64 m_rng;
    std::size_t m_max_len;
};

// --- driver --------------------------------------------------------------------

bool read_file(const fs::path& path, Bytes& out) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return false;
    out.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    return true;
}

int reproduce(const std::vector<std::string>& files) {
    for (const auto& file : files) {
        Bytes input;
        if (!read_file(file, input)) {
            std::fprintf(stderr, "ERROR: cannot read %s\n", file.c_str());
            return 1;
        }
        std::fprintf(stderr, "Running: %s\n", file.c_str());
        run_one(input);
        std::fprintf(stderr, "Executed %s\n", file.c_str());
    }
    return 0;
}

int fuzz(const Options& o) {
    std::vector<Bytes> corpus;
    std::size_t largest = 0;
    for (const auto& dir : o.inputs) {
        std::error_code ec;
        for (const auto& entry : fs::recursive_directory_iterator(dir, ec)) {
            Bytes input;
            if (entry.is_regular_file() && read_file(entry.path(), input)) {
                largest = std::max(largest, input.size());
                corpus.push_back(std::move(input));
            }
        }
    }
    const std::size_t max_len = o.max_len != 0 ? o.max_len : std::max<std::size_t>(4096, largest);
    const unsigned seed = o.seed != 0 ? o.seed : static_cast<unsigned>(monotonic_ms());
    std::fprintf(stderr, "INFO: standalone fuzz driver (libFuzzer-compatible flags), seed %u, max_len %zu\n", seed,
                 max_len);
    std::fprintf(stderr, "INFO: %zu corpus inputs from %zu director%s\n", corpus.size(), o.inputs.size(),
                 o.inputs.size() == 1 ? "y" : "ies");

    Coverage coverage;
    const auto started = std::chrono::steady_clock::now();
    const auto elapsed_s = [&] {
        return std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    };
    long long executed = 0;
    const auto status = [&](const char* what) {
        const double s = elapsed_s();
        std::fprintf(stderr, "#%lld\t%s cov: %zu corp: %zu exec/s: %.0f rss: %ldMb\n", executed, what,
                     coverage.slots_hit(), corpus.size(), s > 0 ? static_cast<double>(executed) / s : 0.0, rss_mb());
    };

    // Replay: the corpus as given (an empty input first, as libFuzzer does).
    run_one(Bytes{});
    coverage.absorb();
    for (const auto& input : corpus) {
        run_one(input);
        coverage.absorb();
        ++executed;
    }
    if (corpus.empty()) corpus.emplace_back();
    status("INITED");

    Mutator mutator(seed, max_len);
    std::mt19937 pick(seed);
    double next_status_s = 1.0;
    for (long long run = 0; o.runs < 0 || run < o.runs; ++run) {
        if ((run & 63) == 0) {
            const double s = elapsed_s();
            if (o.max_total_time_s > 0 && s >= o.max_total_time_s) break;
            if (s >= next_status_s) {
                status("pulse");
                next_status_s *= 2;
            }
        }
        const Bytes& base = corpus[pick() % corpus.size()];
        const Bytes& other = corpus[pick() % corpus.size()];
        Bytes input = mutator.mutate(base, other);
        run_one(input);
        ++executed;
        if (coverage.absorb()) {
            if (!o.inputs.empty()) {
                char path[1200];
                const std::string dir = o.inputs.front() + "/";
                hashed_name(path, sizeof path, dir.c_str(), "new", input.data(), input.size());
                write_file(path, input.data(), input.size());
            }
            corpus.push_back(std::move(input));
            status("NEW");
        }
    }
    status("DONE");
    std::fprintf(stderr, "Done %lld runs in %.0f second(s)\n", executed, elapsed_s());
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    if (LLVMFuzzerInitialize != nullptr) LLVMFuzzerInitialize(&argc, &argv);
    const Options options = parse_options(argc, argv);
    install_handlers(options);
    const bool all_files = !options.inputs.empty() && std::all_of(options.inputs.begin(), options.inputs.end(),
                                                                   [](const std::string& p) { return fs::is_regular_file(p); });
    return all_files ? reproduce(options.inputs) : fuzz(options);
}
