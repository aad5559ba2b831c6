#pragma once
#include <string>
#include <string_view>

namespace der {
std::string_view version() noexcept;       ///< project version from CMake
std::string_view git_revision() noexcept;  ///< short hash, empty when not built from git
/// `der-hub 0.1.0 (git 0123abcd4567)`
std::string version_line(std::string_view program);
}  // namespace der
