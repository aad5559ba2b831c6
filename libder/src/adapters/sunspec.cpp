// Implementation details: the SunSpec model chain.
//
//   base + 0, 1   "SunS" (0x5375 0x6e53)
//   base + 2      model ID, base + 3  L (registers of data that follow)
//   next model at its ID address + 2 + L; the chain ends with ID 0xFFFF, L 0.

#include "der/adapters/sunspec.hpp"

#include <fmt/core.h>

namespace der::adapters::sunspec {

const ModelRef* Chain::find(std::uint16_t id) const {
    for (const auto& m : models)
        if (m.id == id) return &m;
    return nullptr;
}

std::string Chain::describe() const {
    std::string out;
    for (const auto& m : models)
        out += fmt::format("{}{} ({}, {})", out.empty() ? "" : ", ", m.id, m.address, m.length);
    return out;
}

namespace {

Result<Chain> walk(const ReadFn& read, std::uint16_t base) {
    auto marker = read(base, 2);
    if (!marker) return std::unexpected(marker.error());
    if (marker->size() != 2 || (*marker)[0] != k_marker_hi || (*marker)[1] != k_marker_lo)
        return fail(Errc::not_found, fmt::format("no SunS marker at {}", base));
    Chain chain;
    chain.base = base;
    std::uint32_t at = base + 2u;
    for (std::size_t i = 0; i < k_max_models; ++i) {
        if (at + 1 > 0xffffu)
            return fail(Errc::decode, fmt::format("model chain runs past 65535 (at {})", at));
        auto header = read(static_cast<std::uint16_t>(at), 2);
        if (!header) return std::unexpected(header.error());
        if (header->size() != 2)
            return fail(Errc::decode, fmt::format("short read of the model header at {}", at));
        const std::uint16_t id = (*header)[0];
        const std::uint16_t length = (*header)[1];
        if (id == k_end_id) return chain;
        chain.models.push_back({id, static_cast<std::uint16_t>(at), length});
        at += 2u + length;
    }
    return fail(Errc::decode,
                fmt::format("more than {} models after the SunS marker at {}", k_max_models, base));
}

}  // namespace

Result<Chain> discover(const ReadFn& read, std::optional<std::uint16_t> base) {
    if (base) return walk(read, *base);
    std::string tried;
    for (const std::uint16_t candidate : k_bases) {
        auto chain = walk(read, candidate);
        if (chain) return chain;
        if (chain.error().code == Errc::decode) return chain;       // found, but broken
        if (chain.error().code == Errc::unavailable) return chain;  // the device is gone
        tried += fmt::format("{}{}: {}", tried.empty() ? "" : "; ", candidate, chain.error().message);
    }
    return fail(Errc::not_found, "no SunSpec device (" + tried + ")");
}

std::string decode_string(const std::vector<std::uint16_t>& words) {
    std::string out;
    for (const std::uint16_t w : words) {
        for (const char c : {static_cast<char>(w >> 8), static_cast<char>(w & 0xff)}) {
            if (c == '\0') return out;
            out += (c >= 0x20 && c < 0x7f) ? c : '?';
        }
    }
    return out;
}

}  // namespace der::adapters::sunspec
