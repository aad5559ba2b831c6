#pragma once
/// The JSON of an asset's latest telemetry as the REST API serves it
/// (GET /telemetry/{id} and the elements of GET /telemetry): the record's
/// fields, `asset` (`site/asset`), and two fields of the moment of the read,
/// `age_s` (seconds since the hub received the record, never negative) and
/// `stale` (older than 3 telemetry intervals). The record part is encoded
/// once per record (AssetView::telemetry_json); a read splices in the two.

#include "snapshot.hpp"

#include "der/model.hpp"

#include <string>
#include <string_view>

namespace der::hub {

/// Encodes `t` of asset `asset_name` without `age_s` and `stale`, in the
/// bytes nlohmann::json's compact dump gives for the whole object.
[[nodiscard]] TelemetryJson encode_telemetry_json(const Telemetry& t, std::string_view asset_name);

/// `age_s` and `stale` of a record received at `received_ms`, read at `now_ms`.
struct Freshness {
    double age_s = 0.0;  ///< clamped at 0
    bool stale = false;
};
[[nodiscard]] Freshness freshness(TimestampMs received_ms, TimestampMs now_ms, double telemetry_s);

/// Appends the whole object (no newline).
void append_telemetry_json(std::string& out, const TelemetryJson& parts, Freshness f);

}  // namespace der::hub
