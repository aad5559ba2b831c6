#pragma once
/// SHA-1 (FIPS 180-4), needed only for UUIDv5. Not for security.

#include <array>
#include <cstdint>
#include <span>

namespace der::util {

std::array<std::uint8_t, 20> sha1(std::span<const std::uint8_t> data);

}  // namespace der::util
