#pragma once
/// JSON (nlohmann/json) form of the data model and the wire messages, as the
/// REST API and the CLIs print them. Timestamps are RFC 3339 UTC strings with
/// milliseconds, UUIDs canonical lowercase strings, enums their lowercase
/// names, nil optionals `null`. Only json_fwd.hpp here: cheap to include.
///
/// `to_json` overloads are found by ADL, so `nlohmann::json j = telemetry;`
/// works. Parsing back is total: `*_from_json` return an Error naming the
/// field instead of throwing.

#include "der/util/error.hpp"
#include "der/wire_codec.hpp"
#include "der/wire_messages.hpp"

#include <nlohmann/json_fwd.hpp>

namespace der {

void to_json(nlohmann::json& j, const Uuid& id);
void to_json(nlohmann::json& j, const BessLimits& limits);
void to_json(nlohmann::json& j, const AdapterConfig& adapter);
void to_json(nlohmann::json& j, const Asset& asset);
void to_json(nlohmann::json& j, const Site& site);
void to_json(nlohmann::json& j, const Telemetry& t);
void to_json(nlohmann::json& j, const Heartbeat& h);
void to_json(nlohmann::json& j, const Dispatch& d);
void to_json(nlohmann::json& j, const Setpoint& s);

Result<Telemetry> telemetry_from_json(const nlohmann::json& j);
Result<Heartbeat> heartbeat_from_json(const nlohmann::json& j);
Result<Dispatch> dispatch_from_json(const nlohmann::json& j);

namespace wire {
void to_json(nlohmann::json& j, const AgentState& s);
void to_json(nlohmann::json& j, const AgentInfo& a);
void to_json(nlohmann::json& j, const TelemetryBucket& b);
void to_json(nlohmann::json& j, const AgentEvent& e);
void to_json(nlohmann::json& j, const DispatchResult& r);
void to_json(nlohmann::json& j, const ErrorReply& e);
/// Any message, as `{"type": ..., "body": {...}}`.
void to_json(nlohmann::json& j, const AgentMessage& m);
void to_json(nlohmann::json& j, const ControlMessage& m);
}  // namespace wire

}  // namespace der
