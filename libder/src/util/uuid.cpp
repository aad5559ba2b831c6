#include "der/util/uuid.hpp"

#include "der/util/sha1.hpp"
#include "der/util/time.hpp"

#include <mutex>
#include <random>
#include <vector>

namespace der {

namespace {

int hex_value(char c) noexcept {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// v7 state: one generator per process, guarded, so that IDs from any thread
// in the same millisecond keep strictly increasing (RFC 9562 method 1: a
// 12-bit counter in rand_a, seeded randomly each new millisecond).
struct V7State {
    std::mutex mutex;
    std::mt19937_64 rng{std::random_device{}()};
    std::int64_t last_ms = -1;
    std::uint16_t counter = 0;
};

V7State& v7_state() {
    static V7State state;
    return state;
}

}  // namespace

Result<Uuid> Uuid::parse(std::string_view text) {
    if (text.size() != 36) return fail(Errc::invalid_argument, "not a UUID: '" + std::string(text) + "'");
    Bytes bytes{};
    std::size_t out = 0;
    for (std::size_t i = 0; i < 36;) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (text[i] != '-') return fail(Errc::invalid_argument, "not a UUID: '" + std::string(text) + "'");
            ++i;
            continue;
        }
        const int hi = hex_value(text[i]);
        const int lo = hex_value(text[i + 1]);
        if (hi < 0 || lo < 0) return fail(Errc::invalid_argument, "not a UUID: '" + std::string(text) + "'");
        bytes[out++] = static_cast<std::uint8_t>(hi * 16 + lo);
        i += 2;
    }
    return Uuid{bytes};
}

Uuid Uuid::v5(const Uuid& ns, std::string_view name) {
    std::vector<std::uint8_t> data(ns.m_bytes.begin(), ns.m_bytes.end());
    data.insert(data.end(), name.begin(), name.end());
    const auto digest = util::sha1(data);
    Bytes bytes{};
    for (std::size_t i = 0; i < 16; ++i) bytes[i] = digest[i];
    bytes[6] = static_cast<std::uint8_t>((bytes[6] & 0x0F) | 0x50);
    bytes[8] = static_cast<std::uint8_t>((bytes[8] & 0x3F) | 0x80);
    return Uuid{bytes};
}

Uuid Uuid::v7() { return v7(der::now_ms()); }

Uuid Uuid::v7(std::int64_t unix_ms) {
    auto& state = v7_state();
    std::uint64_t rand_b = 0;
    std::uint16_t counter = 0;
    {
        const std::lock_guard lock(state.mutex);
        if (unix_ms <= state.last_ms) {
            unix_ms = state.last_ms;  // never go backwards within a process
            if (++state.counter > 0x0FFF) {  // counter exhausted: borrow the next ms
                ++unix_ms;
                state.counter = static_cast<std::uint16_t>(state.rng() & 0x01FF);
            }
        } else {
            // Start low so that the counter has room to grow within the ms.
            state.counter = static_cast<std::uint16_t>(state.rng() & 0x01FF);
        }
        state.last_ms = unix_ms;
        counter = state.counter;
        rand_b = state.rng();
    }
    Bytes b{};
    const auto ms = static_cast<std::uint64_t>(unix_ms);
    for (int i = 0; i < 6; ++i) b[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(ms >> (40 - 8 * i));
    b[6] = static_cast<std::uint8_t>(0x70 | ((counter >> 8) & 0x0F));
    b[7] = static_cast<std::uint8_t>(counter & 0xFF);
    for (int i = 0; i < 8; ++i) b[8 + static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(rand_b >> (56 - 8 * i));
    b[8] = static_cast<std::uint8_t>((b[8] & 0x3F) | 0x80);
    return Uuid{b};
}

std::string Uuid::to_string() const {
    static constexpr char k_hex[] = "0123456789abcdef";
    std::string out;
    out.reserve(36);
    for (std::size_t i = 0; i < 16; ++i) {
        if (i == 4 || i == 6 || i == 8 || i == 10) out.push_back('-');
        out.push_back(k_hex[m_bytes[i] >> 4]);
        out.push_back(k_hex[m_bytes[i] & 0x0F]);
    }
    return out;
}

std::int64_t Uuid::unix_ms() const noexcept {
    std::uint64_t ms = 0;
    for (std::size_t i = 0; i < 6; ++i) ms = (ms << 8) | m_bytes[i];
    return static_cast<std::int64_t>(ms);
}

std::size_t UuidHash::operator()(const Uuid& id) const noexcept {
    // The last 8 bytes are random (v4/v7) or hash output (v5): mix both halves.
    std::uint64_t a = 0;
    std::uint64_t b = 0;
    for (std::size_t i = 0; i < 8; ++i) {
        a = (a << 8) | id.bytes()[i];
        b = (b << 8) | id.bytes()[i + 8];
    }
    return static_cast<std::size_t>(a * 0x9E3779B97F4A7C15ull ^ b);
}

}  // namespace der
