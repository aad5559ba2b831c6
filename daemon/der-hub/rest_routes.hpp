#pragma once
/// The routes of der-hub's REST API, as one table: the REST server registers
/// its handlers through it (and refuses to start when a handler and the table
/// disagree), and a test compares it with docs/openapi.yaml.

#include <span>
#include <string>
#include <string_view>

namespace der::hub {

struct RestRoute {
    std::string_view method;  ///< "GET", "POST" or "DELETE"
    std::string_view path;    ///< OpenAPI template: /telemetry/{id}/history
};

/// Every route, in the order the server tries them (a longer path before
/// the shorter one that would also match it).
std::span<const RestRoute> rest_routes() noexcept;

/// The server's regular expression for a path template: `{id}` (an asset:
/// UUID or site/name) matches one or two segments, any other `{param}` one
/// segment, and everything else literally.
std::string rest_route_regex(std::string_view path);

/// docs/openapi.yaml, embedded at build time (served at GET /openapi.yaml).
std::string_view openapi_yaml() noexcept;

}  // namespace der::hub
