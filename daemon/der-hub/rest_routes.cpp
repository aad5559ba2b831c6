#include "rest_routes.hpp"

#include <array>

namespace der::hub {

namespace {
constexpr std::array k_routes{
    RestRoute{"GET", "/health"},
    RestRoute{"GET", "/metrics"},
    RestRoute{"GET", "/openapi.yaml"},
    RestRoute{"GET", "/sites"},
    RestRoute{"GET", "/assets"},
    RestRoute{"GET", "/assets/{id}"},
    RestRoute{"GET", "/agents"},
    RestRoute{"GET", "/telemetry"},
    RestRoute{"GET", "/telemetry/{id}/history"},
    RestRoute{"GET", "/telemetry/{id}"},
    RestRoute{"GET", "/heartbeat/{id}/history"},
    RestRoute{"GET", "/heartbeat/{id}"},
    RestRoute{"POST", "/dispatch"},
    RestRoute{"GET", "/dispatch/history"},
    RestRoute{"GET", "/dispatch"},
    RestRoute{"GET", "/dispatch/{dispatch_id}"},
    RestRoute{"POST", "/sites/{site}/dispatch"},
    RestRoute{"DELETE", "/dispatch/{dispatch_id}"},
    RestRoute{"POST", "/stop"},
    RestRoute{"POST", "/assets/{id}/availability"},
    RestRoute{"GET", "/audit"},
};
}  // namespace

std::span<const RestRoute> rest_routes() noexcept {
    return k_routes;
}

std::string rest_route_regex(std::string_view path) {
    std::string out;
    for (std::size_t i = 0; i < path.size(); ++i) {
        const char c = path[i];
        if (c == '{') {
            const auto end = path.find('}', i);
            const auto name = path.substr(i + 1, end - i - 1);
            out += name == "id" ? R"(([^/]+(?:/[^/]+)?))" : R"(([^/]+))";
            i = end;
        } else if (c == '.' || c == '+' || c == '*' || c == '?' || c == '(' || c == ')' || c == '[' ||
                   c == ']' || c == '\\' || c == '^' || c == '$' || c == '|') {
            out += '\\';
            out += c;
        } else {
            out += c;
        }
    }
    return out;
}

}  // namespace der::hub
