#include "der/json_codec.hpp"

#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

using namespace der;
using nlohmann::json;

namespace {

Uuid id(std::uint8_t first) {
    Uuid::Bytes b{};
    for (std::size_t i = 0; i < b.size(); ++i) {
        b[i] = static_cast<std::uint8_t>(first + i);
    }
    return Uuid(b);
}

Telemetry sample_telemetry() {
    Telemetry t;
    t.asset_id = id(0x10);
    t.site_id = id(0x20);
    t.epoch = id(0x30);
    t.seq = 42;
    t.ts = 1'763'882'715'123;
    t.soc_mwh = 12.5;
    t.soc_pct = 62.5;
    t.capacity_mwh = 20.0;
    t.current_mw = -3.25;
    t.setpoint_mw = -4.0;
    t.max_mw = 5.0;
    t.min_mw = -5.0;
    t.status = AssetStatus::soc_limit;
    return t;
}

Dispatch sample_dispatch() {
    Dispatch d;
    d.dispatch_id = id(0x70);
    d.asset_id = id(0x10);
    d.mw = 2.5;
    d.duration_s = 900.0;
    d.reason = "peak";
    d.requested_by = "alice";
    d.created_at = 1'763'882'700'000;
    d.parent_id = id(0x80);
    d.enter(DispatchState::sent, 1'763'882'700'010);
    d.enter(DispatchState::applied, 1'763'882'700'250);
    return d;
}

}  // namespace

TEST_CASE("telemetry JSON has RFC 3339 millisecond UTC times and null optionals", "[json]") {
    const json j = sample_telemetry();
    CHECK(j.at("ts") == "2025-11-23T07:25:15.123Z");
    CHECK(j.at("asset_id") == "10111213-1415-1617-1819-1a1b1c1d1e1f");
    CHECK(j.at("status") == "soc_limit");
    CHECK(j.at("seq") == 42);
    CHECK(j.at("current_mw") == -3.25);
    CHECK(j.at("dispatch_id").is_null());
    CHECK(j.size() == 14);

    Telemetry with_dispatch = sample_telemetry();
    with_dispatch.dispatch_id = id(0x40);
    CHECK(json(with_dispatch).at("dispatch_id") == id(0x40).to_string());

    const json d = sample_dispatch();
    CHECK(d.at("states") == json{{"sent", "2025-11-23T07:25:00.010Z"},
                                 {"applied", "2025-11-23T07:25:00.250Z"}});
    CHECK(d.at("start_at").is_null());
    CHECK(d.at("state") == "applied");
}

TEST_CASE("telemetry, heartbeat and dispatch survive a JSON round trip", "[json]") {
    Telemetry t = sample_telemetry();
    CHECK(telemetry_from_json(json(t)) == t);
    t.dispatch_id = id(0x40);
    CHECK(telemetry_from_json(json::parse(json(t).dump())) == t);

    const Heartbeat h{id(0x10), 1'763'882'715'123, 3600.5, 7, "der-agent 0.1.0"};
    CHECK(heartbeat_from_json(json(h)) == h);

    Dispatch d = sample_dispatch();
    CHECK(dispatch_from_json(json(d)) == d);
    d.duration_s.reset();
    d.parent_id.reset();
    d.start_at = 1'763'882'800'000;
    d.error = "timeout";
    CHECK(dispatch_from_json(json::parse(json(d).dump())) == d);
}

TEST_CASE("from_json names the missing or mistyped field and never throws", "[json]") {
    const json good = sample_telemetry();
    auto message = [](const Result<Telemetry>& r) {
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error().code == Errc::decode);
        return r.error().message;
    };
    json j = good;
    j.erase("seq");
    CHECK(message(telemetry_from_json(j)) == "telemetry: missing field 'seq'");
    j = good;
    j["seq"] = -1;
    CHECK(message(telemetry_from_json(j)) == "telemetry: field 'seq' must be a non-negative integer");
    j = good;
    j["soc_pct"] = "full";
    CHECK(message(telemetry_from_json(j)) == "telemetry: field 'soc_pct' must be a number");
    j = good;
    j["ts"] = "yesterday";
    CHECK_THAT(message(telemetry_from_json(j)),
               Catch::StartsWith("telemetry: field 'ts' must be an RFC 3339 time"));
    j = good;
    j["asset_id"] = "nope";
    CHECK(message(telemetry_from_json(j)) == "telemetry: field 'asset_id' must be a UUID string");
    j = good;
    j["status"] = "asleep";
    CHECK(message(telemetry_from_json(j)) == "telemetry: field 'status' has an unknown value 'asleep'");
    CHECK(message(telemetry_from_json(json::array({1, 2}))) == "telemetry: must be a JSON object");
    CHECK(message(telemetry_from_json(json())) == "telemetry: must be a JSON object");

    // An integer time is read as Unix milliseconds.
    j = good;
    j["ts"] = 1'763'882'715'123;
    CHECK(telemetry_from_json(j) == sample_telemetry());

    json d = sample_dispatch();
    d["states"]["dozing"] = "2025-11-23T07:25:00.010Z";
    auto r = dispatch_from_json(d);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().message == "dispatch: field 'states' has an unknown state 'dozing'");
    d = sample_dispatch();
    d["states"]["sent"] = 1.5;
    r = dispatch_from_json(d);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().message == "dispatch: field 'states.sent' must be an RFC 3339 time");

    auto hb = heartbeat_from_json(json{{"asset_id", id(1)}, {"ts", "2025-11-23T07:25:15Z"}, {"uptime_s", 1}});
    REQUIRE_FALSE(hb.has_value());
    CHECK(hb.error().message == "heartbeat: missing field 'buffered'");
}

TEST_CASE("messages print as type and body, with tokens redacted", "[json]") {
    using namespace der::wire;
    const json tack = AgentMessage{Tack{id(0x30), 9}};
    CHECK(tack == json{{"type", "tack"}, {"body", {{"epoch", id(0x30).to_string()}, {"seq", 9}}}});

    const json request = ControlMessage{
        DispatchRequest{"r1", "secret", "north/bess-1", 2.5, std::nullopt, true, "", "bob", "", std::nullopt}};
    CHECK(request.at("type") == "dispatch");
    CHECK(request.at("body").at("token") == "<redacted>");
    CHECK(request.at("body").at("duration_s").is_null());
    CHECK(request.dump().find("secret") == std::string::npos);

    const json rows = ControlMessage{HistoryRows{"r2", std::vector<Telemetry>{sample_telemetry()}}};
    CHECK(rows.at("type") == "history.rows");
    CHECK(rows.at("body").at("kind") == "telemetry");
    CHECK(rows.at("body").at("rows").at(0).at("ts") == "2025-11-23T07:25:15.123Z");

    const json result = ControlMessage{DispatchResult{"r3", std::nullopt, DispatchState::queued, "", false}};
    CHECK(result.at("body") == json{{"request_id", "r3"},
                                    {"dispatch_id", nullptr},
                                    {"state", "queued"},
                                    {"error", ""},
                                    {"final", false}});

    const json event = AgentEvent{id(0x10), "offline", 1'763'882'715'123, std::nullopt};
    CHECK(event.at("ts") == "2025-11-23T07:25:15.123Z");
    CHECK(event.at("heartbeat").is_null());
    CHECK(json(AgentMessage{Reregister{}}).at("body") == json::object());
}
