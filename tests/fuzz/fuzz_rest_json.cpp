// Fuzz target: the JSON body of POST /dispatch and POST /sites/{site}/dispatch
// (der-hub's dispatch_body.hpp), both on every input, with a fixed `now`.
// Properties, beyond "never crash, never throw":
// - a failure is Errc::invalid_argument with a message (the 400 answer);
// - a command has a finite mw, a finite positive duration or none, and for
//   a site no asset;
// - the command written back as JSON parses to the same command.
#include "fuzz_check.hpp"

#include "dispatch_body.hpp"

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace {

using der::fuzz::require;
using der::hub::DispatchCommand;
using der::hub::DispatchTarget;

constexpr der::TimestampMs k_now_ms = 1'763'882'715'123;
constexpr der::TimestampMs k_year_10000_ms = 253'402'300'800'000;  // the first instant RFC 3339 cannot write

/// The command as a body; false when its start_at has no RFC 3339 form
/// (before 1970 or after 9999: a relative time that far from now).
bool to_json_text(const DispatchCommand& c, DispatchTarget target, std::string& out) {
    nlohmann::json j{{"mw", c.mw}, {"reason", c.reason}, {"requested_by", c.requested_by}};
    if (target == DispatchTarget::asset) j["asset"] = c.asset;
    j["duration_s"] = c.duration_s ? nlohmann::json(*c.duration_s) : nlohmann::json(nullptr);
    if (c.start_at) {
        if (*c.start_at < 0 || *c.start_at >= k_year_10000_ms) return false;
        j["start_at"] = der::format_rfc3339(*c.start_at);
    }
    out = j.dump();
    return true;
}

bool same(const DispatchCommand& a, const DispatchCommand& b) {
    return a.asset == b.asset && a.mw == b.mw && a.duration_s == b.duration_s && a.reason == b.reason &&
           a.requested_by == b.requested_by && a.start_at == b.start_at;
}

void check(std::string_view body, DispatchTarget target) {
    const auto c = der::hub::parse_dispatch_body(body, target, k_now_ms);
    if (!c) {
        require(c.error().code == der::Errc::invalid_argument, "a bad body is invalid_argument", c.error().message);
        require(!c.error().message.empty(), "a bad body has a message");
        return;
    }
    require(std::isfinite(c->mw), "mw is finite");
    require(!c->duration_s || (std::isfinite(*c->duration_s) && *c->duration_s > 0), "duration_s is positive");
    require(target == DispatchTarget::asset || c->asset.empty(), "a site dispatch names no asset", c->asset);
    std::string text;
    if (!to_json_text(*c, target, text)) return;
    const auto back = der::hub::parse_dispatch_body(text, target, k_now_ms);
    if (!back) return require(false, "a command written as JSON parses", back.error().message);
    require(same(*back, *c), "parse(to_json(command)) == command", text);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view body(reinterpret_cast<const char*>(data), size);
    check(body, DispatchTarget::asset);
    check(body, DispatchTarget::site);
    return 0;
}
