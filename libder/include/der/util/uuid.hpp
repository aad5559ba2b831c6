#pragma once
/// UUIDs (RFC 9562): v5 for IDs derived from names, v7 for time-ordered IDs
/// (dispatch IDs, agent epochs). Knows nothing of DER terms.

#include "der/util/error.hpp"

#include <array>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace der {

class Uuid {
public:
    using Bytes = std::array<std::uint8_t, 16>;

    constexpr Uuid() noexcept = default;  ///< the nil UUID
    constexpr explicit Uuid(const Bytes& bytes) noexcept : m_bytes(bytes) {}

    /// Accepts the canonical 8-4-4-4-12 hex form, either case.
    static Result<Uuid> parse(std::string_view text);
    /// Name-based, SHA-1 (version 5).
    static Uuid v5(const Uuid& ns, std::string_view name);
    /// Unix-millisecond time-ordered (version 7); IDs made by one process in
    /// the same millisecond still sort in creation order.
    static Uuid v7();
    static Uuid v7(std::int64_t unix_ms);

    [[nodiscard]] std::string to_string() const;  ///< lowercase canonical form
    [[nodiscard]] constexpr const Bytes& bytes() const noexcept { return m_bytes; }
    [[nodiscard]] constexpr bool is_nil() const noexcept { return m_bytes == Bytes{}; }
    [[nodiscard]] int version() const noexcept { return m_bytes[6] >> 4; }
    /// For v7: the embedded Unix milliseconds.
    [[nodiscard]] std::int64_t unix_ms() const noexcept;

    friend constexpr auto operator<=>(const Uuid&, const Uuid&) = default;

private:
    Bytes m_bytes{};
};

/// Namespace UUIDs of RFC 9562 appendix.
inline constexpr Uuid k_namespace_dns{Uuid::Bytes{0x6b, 0xa7, 0xb8, 0x10, 0x9d, 0xad, 0x11, 0xd1,
                                                   0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4, 0x30, 0xc8}};

struct UuidHash {
    std::size_t operator()(const Uuid& id) const noexcept;
};

}  // namespace der

template <>
struct std::hash<der::Uuid> : der::UuidHash {};
