// The REST encoding of an asset's latest telemetry, in pieces.
//
// Implementation details
// - nlohmann::json (not ordered_json) keeps an object's members sorted by
//   key, and GET /telemetry/{id} has always been the compact dump of such an
//   object. encode_telemetry_json() dumps every member but `age_s` and
//   `stale` in that order and cuts the text where those two go, so that
//   head + age + middle + stale + tail is byte for byte that dump
//   (tests/unit/test_telemetry_json.cpp compares them).
// - `age_s` is formatted by nlohmann's own number serializer (shortest
//   round-trip form, ".0" on integral values), as in the whole-object dump.
#include "telemetry_json.hpp"

#include "der/json_codec.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <functional>

namespace der::hub {

using nlohmann::json;

namespace {
constexpr std::string_view k_age_key = "age_s";
constexpr std::string_view k_stale_key = "stale";

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }
}  // namespace

TelemetryJson encode_telemetry_json(const Telemetry& t, std::string_view asset_name) {
    json j = t;
    j["asset"] = std::string(asset_name);
    j.erase(std::string(k_age_key));
    j.erase(std::string(k_stale_key));
    TelemetryJson out;
    std::string* piece = &out.head;
    piece->push_back('{');
    bool first = true;
    bool age_done = false;
    bool stale_done = false;
    const auto separator = [&] {
        if (!first) piece->push_back(',');
        first = false;
    };
    const auto place_age = [&] {
        separator();
        *piece += dump(json(k_age_key)) + ":";
        piece = &out.middle;
        age_done = true;
    };
    const auto place_stale = [&] {
        separator();
        *piece += dump(json(k_stale_key)) + ":";
        piece = &out.tail;
        stale_done = true;
    };
    for (const auto& [key, value] : j.items()) {
        // The two read-time keys go where the sorted object would put them.
        if (!age_done && std::less<>{}(k_age_key, std::string_view(key))) place_age();
        if (!stale_done && std::less<>{}(k_stale_key, std::string_view(key))) place_stale();
        separator();
        *piece += dump(json(key));
        piece->push_back(':');
        *piece += dump(value);
    }
    if (!age_done) place_age();
    if (!stale_done) place_stale();
    piece->push_back('}');
    return out;
}

Freshness freshness(TimestampMs received_ms, TimestampMs now_ms, double telemetry_s) {
    const double age_s = static_cast<double>(now_ms - received_ms) / 1000.0;
    return Freshness{std::max(0.0, age_s), age_s > 3.0 * telemetry_s};
}

void append_telemetry_json(std::string& out, const TelemetryJson& parts, Freshness f) {
    out += parts.head;
    out += dump(json(f.age_s));
    out += parts.middle;
    out += f.stale ? "true" : "false";
    out += parts.tail;
}

const TelemetryJson& AssetView::telemetry_json() const {
    if (const TelemetryJson* done = m_json.load(std::memory_order_acquire)) return *done;
    auto fresh = std::make_unique<const TelemetryJson>(encode_telemetry_json(*latest, asset.qualified_name()));
    const TelemetryJson* expected = nullptr;
    // Two readers may race to encode the same record: one wins, the other's copy is dropped.
    if (m_json.compare_exchange_strong(expected, fresh.get(), std::memory_order_acq_rel, std::memory_order_acquire))
        return *fresh.release();
    return *expected;
}

}  // namespace der::hub
