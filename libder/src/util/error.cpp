#include "der/util/error.hpp"

namespace der {

std::string_view to_string(Errc code) noexcept {
    switch (code) {
    case Errc::invalid_argument: return "invalid_argument";
    case Errc::decode: return "decode";
    case Errc::config: return "config";
    case Errc::not_found: return "not_found";
    case Errc::unavailable: return "unavailable";
    case Errc::timeout: return "timeout";
    case Errc::io: return "io";
    case Errc::refused: return "refused";
    case Errc::internal: return "internal";
    }
    return "internal";
}

int exit_code(Errc code) noexcept {
    switch (code) {
    case Errc::invalid_argument: return 64;
    case Errc::decode: return 65;
    case Errc::config: return 78;
    case Errc::not_found: return 66;
    case Errc::unavailable: return 69;
    case Errc::timeout: return 75;
    case Errc::io: return 74;
    case Errc::refused: return 1;
    case Errc::internal: return 70;
    }
    return 70;
}

}  // namespace der
