#pragma once
/// CURVE keys as der keeps them (docs/security.md): 40-character Z85 text,
/// one key per file, the secret key file readable by its owner only.
/// `der-hub keygen` writes them; der-hub, der-agent and der-launch read them.

#include "der/util/error.hpp"

#include <string>
#include <string_view>

namespace der::cli {

inline constexpr std::size_t k_z85_key_chars = 40;

struct CurveKeypair {
    std::string public_key;  ///< Z85
    std::string secret_key;  ///< Z85
};

/// True for exactly 40 characters of the Z85 alphabet.
[[nodiscard]] bool is_z85_key(std::string_view text);

/// A fresh keypair (zmq_curve_keypair). Errc::unavailable when libzmq was
/// built without CURVE.
Result<CurveKeypair> generate_keypair();

/// The public key of a Z85 secret key (zmq_curve_public).
Result<std::string> public_key_of(const std::string& secret_key);

/// Reads a key file: its first line, surrounding blanks removed, must be a
/// Z85 key. Errors name the file (Errc::not_found when missing, Errc::config
/// when it holds no key).
Result<std::string> read_key_file(const std::string& path);

/// A key given on the command line: the key itself when `key_or_file` is a
/// Z85 key, else the key read from the file of that name.
Result<std::string> key_or_file(const std::string& key_or_file);

enum class Overwrite { yes, no };

/// Writes `key` plus a newline to `path` with `mode` (created exclusively
/// unless `overwrite`; the mode is applied either way). Errc::refused when
/// the file exists and may not be overwritten.
Result<void> write_key_file(const std::string& path, const std::string& key, unsigned mode, Overwrite overwrite);

}  // namespace der::cli
