#pragma once
/// API tokens (docs/security.md): a secret shared by the hub (`--api-token-file`)
/// and its clients (`--token-file`, DER_TOKEN_FILE), kept in a file so it never
/// shows in a process list or a shell history.

#include "der/util/error.hpp"

#include <CLI/CLI.hpp>

#include <string>
#include <string_view>

namespace der::cli {

/// Compares two secrets in time that depends only on their lengths, not on
/// where they first differ.
[[nodiscard]] bool constant_time_equal(std::string_view a, std::string_view b) noexcept;

/// Reads a token file: the first line, surrounding blanks removed. Errors:
/// Errc::not_found (missing or unreadable, 66), Errc::config (empty, or
/// characters outside printable ASCII, 78). The token itself is never in a message.
Result<std::string> read_token_file(const std::string& path);

/// Adds `--token-file FILE` (env DER_TOKEN_FILE) to a CLI that talks to the
/// control socket.
void add_token_flag(CLI::App& app, std::string& path);

/// The token of `--token-file` (empty when none was given). Throws ExitError.
std::string token_from_flag(const std::string& path);

}  // namespace der::cli
