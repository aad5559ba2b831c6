#include "token.hpp"

#include "cli.hpp"

#include <fmt/core.h>

#include <cerrno>
#include <cstring>
#include <fstream>

namespace der::cli {

bool constant_time_equal(std::string_view a, std::string_view b) noexcept {
    // Every byte of the longer one is read whatever the contents; the length
    // difference is folded in so a prefix never matches.
    const std::size_t n = std::max(a.size(), b.size());
    unsigned diff = a.size() == b.size() ? 0U : 1U;
    for (std::size_t i = 0; i < n; ++i) {
        const auto x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0U;
        const auto y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0U;
        diff |= x ^ y;
    }
    // A volatile read keeps the compiler from turning the loop into an early exit.
    volatile unsigned result = diff;
    return result == 0;
}

Result<std::string> read_token_file(const std::string& path) {
    std::ifstream in(path);
    if (!in) return fail(Errc::not_found, fmt::format("{}: cannot read the token file: {}", path, std::strerror(errno)));
    std::string line;
    std::getline(in, line);
    const auto first = line.find_first_not_of(" \t\r\n");
    const auto last = line.find_last_not_of(" \t\r\n");
    if (first == std::string::npos) return fail(Errc::config, fmt::format("{}: the token file is empty", path));
    line = line.substr(first, last - first + 1);
    for (const char c : line)
        if (c < 0x21 || c > 0x7e)
            return fail(Errc::config,
                        fmt::format("{}: a token is printable ASCII without blanks (it goes in an HTTP header)", path));
    return line;
}

void add_token_flag(CLI::App& app, std::string& path) {
    app.add_option("--token-file", path,
                   "File holding the hub's API token (when the hub has --api-token-file)")
        ->envname("DER_TOKEN_FILE");
}

std::string token_from_flag(const std::string& path) {
    if (path.empty()) return {};
    return value_or_exit(read_token_file(path));
}

}  // namespace der::cli
