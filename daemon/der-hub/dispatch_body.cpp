#include "dispatch_body.hpp"

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <set>
#include <string>

namespace der::hub {

using nlohmann::json;

Result<DispatchCommand> parse_dispatch_body(std::string_view text, DispatchTarget target,
                                            std::optional<TimestampMs> now) {
    json body;
    // A key given twice would silently take its last value ({"mw":1,"mw":2}): refused.
    std::string duplicate;
    std::set<std::string> keys;
    const json::parser_callback_t once = [&](int depth, json::parse_event_t event, json& parsed) {
        if (event != json::parse_event_t::key || depth != 1) return true;
        if (auto key = parsed.get<std::string>(); !keys.insert(key).second && duplicate.empty()) duplicate = key;
        return true;
    };
    try {
        body = json::parse(text, once);
    } catch (const json::exception& e) {  // parse_error, and out_of_range for 1e999
        return fail(Errc::invalid_argument, fmt::format("body is not valid JSON: {}", e.what()));
    }
    if (!duplicate.empty()) return fail(Errc::invalid_argument, fmt::format("duplicate key '{}'", duplicate));
    if (!body.is_object()) return fail(Errc::invalid_argument, "body must be a JSON object");
    const auto bad = [](std::string message) { return fail(Errc::invalid_argument, std::move(message)); };
    DispatchCommand c;
    bool have_asset = false;
    bool have_mw = false;
    for (const auto& [key, value] : body.items()) {
        if ((key == "asset" || key == "asset_id") && target == DispatchTarget::site) {
            return bad(fmt::format("'{}' is not taken here: the site is in the path", key));
        } else if (key == "asset" || key == "asset_id") {
            if (!value.is_string()) return bad(fmt::format("{} must be a string (UUID or site/asset)", key));
            if (have_asset && value.get<std::string>() != c.asset) {
                c.same_asset_as = value.get<std::string>();  // the hub checks they name one asset
                continue;
            }
            c.asset = value.get<std::string>();
            have_asset = true;
        } else if (key == "mw") {
            if (!value.is_number()) return bad("mw must be a number (positive = discharge, negative = charge)");
            c.mw = value.get<double>();
            have_mw = true;
        } else if (key == "duration_s") {
            if (value.is_null()) continue;
            if (value.is_number()) {
                c.duration_s = value.get<double>();
            } else if (value.is_string()) {
                auto d = parse_duration(value.get<std::string>());
                if (!d) return bad("duration_s: " + d.error().message);
                c.duration_s = *d;
            } else {
                return bad("duration_s must be a number of seconds, a duration like \"15m\", or null");
            }
            if (!std::isfinite(*c.duration_s) || *c.duration_s <= 0) return bad("duration_s must be positive");
        } else if (key == "start_at") {
            if (value.is_null()) continue;
            if (!value.is_string()) return bad("start_at must be an RFC 3339 time or relative like \"+5m\"");
            auto at = parse_time(value.get<std::string>(), now.value_or(now_ms()));
            if (!at) return bad("start_at: " + at.error().message);
            c.start_at = *at;
        } else if (key == "reason" || key == "requested_by") {
            if (!value.is_string() && !value.is_null()) return bad(fmt::format("{} must be a string", key));
            (key == "reason" ? c.reason : c.requested_by) = value.is_string() ? value.get<std::string>() : "";
        } else {
            return bad(fmt::format("unknown field '{}' (expected {}mw, duration_s, start_at, reason, requested_by)", key,
                                   target == DispatchTarget::asset ? "asset, " : ""));
        }
    }
    if (!have_asset && target == DispatchTarget::asset) return bad("missing field 'asset' (UUID or site/asset)");
    if (!have_mw) return bad("missing field 'mw'");
    if (!std::isfinite(c.mw)) return bad("mw must be finite");
    return c;
}

}  // namespace der::hub
