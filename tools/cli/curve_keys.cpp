// CURVE key files. A key file holds one Z85 key and a newline; blanks around
// it are ignored when reading, so a key pasted with an editor still reads.
#include "curve_keys.hpp"

#include <fmt/core.h>
#include <zmq.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <fstream>

namespace der::cli {

namespace {
constexpr std::string_view k_z85_alphabet =
    "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";

std::string trim(std::string s) {
    const auto first = s.find_first_not_of(" \t\r\n");
    if (first == std::string::npos) return {};
    const auto last = s.find_last_not_of(" \t\r\n");
    return s.substr(first, last - first + 1);
}

Result<void> curve_available() {
    if (zmq_has("curve") == 0) return fail(Errc::unavailable, "this libzmq was built without CURVE support");
    return {};
}
}  // namespace

bool is_z85_key(std::string_view text) {
    return text.size() == k_z85_key_chars && text.find_first_not_of(k_z85_alphabet) == std::string_view::npos;
}

Result<CurveKeypair> generate_keypair() {
    if (auto ok = curve_available(); !ok) return std::unexpected(ok.error());
    std::array<char, k_z85_key_chars + 1> pub{};
    std::array<char, k_z85_key_chars + 1> sec{};
    if (zmq_curve_keypair(pub.data(), sec.data()) != 0)
        return fail(Errc::internal, fmt::format("zmq_curve_keypair: {}", zmq_strerror(zmq_errno())));
    CurveKeypair out{pub.data(), sec.data()};
    sec.fill('\0');
    return out;
}

Result<std::string> public_key_of(const std::string& secret_key) {
    if (auto ok = curve_available(); !ok) return std::unexpected(ok.error());
    if (!is_z85_key(secret_key)) return fail(Errc::config, "not a Z85 CURVE key (40 characters)");
    std::array<char, k_z85_key_chars + 1> pub{};
    if (zmq_curve_public(pub.data(), secret_key.c_str()) != 0)
        return fail(Errc::config, fmt::format("zmq_curve_public: {}", zmq_strerror(zmq_errno())));
    return std::string(pub.data());
}

Result<std::string> read_key_file(const std::string& path) {
    std::ifstream in(path);
    if (!in) return fail(Errc::not_found, fmt::format("{}: cannot read the key file: {}", path, std::strerror(errno)));
    std::string line;
    std::getline(in, line);
    line = trim(std::move(line));
    if (!is_z85_key(line))
        return fail(Errc::config, fmt::format("{}: does not hold a Z85 CURVE key (40 characters on its first line; "
                                              "make one with 'der-hub keygen')",
                                              path));
    return line;
}

Result<std::string> key_or_file(const std::string& key_or_file) {
    if (is_z85_key(key_or_file)) return key_or_file;
    return read_key_file(key_or_file);
}

Result<void> write_key_file(const std::string& path, const std::string& key, unsigned mode, Overwrite overwrite) {
    int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (overwrite == Overwrite::yes ? O_TRUNC : O_EXCL);
    const int fd = ::open(path.c_str(), flags, static_cast<mode_t>(mode));
    if (fd < 0) {
        if (errno == EEXIST)
            return fail(Errc::refused, fmt::format("{} exists; refusing to overwrite it (give --force)", path));
        return fail(Errc::io, fmt::format("{}: {}", path, std::strerror(errno)));
    }
    // An existing file keeps its mode through O_TRUNC: set it (umask does not apply to fchmod).
    const std::string text = key + "\n";
    const bool ok = ::fchmod(fd, static_cast<mode_t>(mode)) == 0 &&
                    ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
    const int saved = errno;
    if (::close(fd) != 0 || !ok)
        return fail(Errc::io, fmt::format("{}: {}", path, std::strerror(ok ? errno : saved)));
    return {};
}

}  // namespace der::cli
