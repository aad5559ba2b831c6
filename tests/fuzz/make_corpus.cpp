// Writes the seed corpus of fuzz_wire_decode: one input per message type
// (and a bare variant where optionals make a difference), each the selector
// byte of wire_kinds.hpp followed by a body encoded by der's own encoder.
// Usage: fuzz_make_corpus DIR   (README.md: regenerate after a codec change)
#include "wire_kinds.hpp"

#include "der/wire_codec.hpp"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>
#include <stdexcept>
#include <string>
#include <variant>
#include <vector>

namespace {

using namespace der;
using namespace der::wire;

Uuid id(std::uint8_t first) {
    Uuid::Bytes b{};
    for (std::size_t i = 0; i < b.size(); ++i) b[i] = static_cast<std::uint8_t>(first + i);
    return Uuid(b);
}

constexpr TimestampMs k_ts = 1'763'882'715'123;

Telemetry telemetry() {
    return Telemetry{id(0x10), id(0x20), id(0x30),  123, k_ts, 12.5, 62.5, 20.0, -3.25, -4.0, 5.0, -5.0,
                     AssetStatus::charging, id(0x40)};
}

Asset asset() {
    Asset a;
    a.id = id(0x50);
    a.name = "bess-1";
    a.site_id = id(0x60);
    a.site_name = "north";
    a.limits = BessLimits{20.0, 5.0, -5.0, 1.5, 0.9, 5.0, 95.0};
    a.adapter = AdapterConfig{"modbus", {{"host", "10.0.0.7"}, {"register_map.soc.address", "30001"}}};
    a.agent_public_key = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7";
    return a;
}

Dispatch dispatch() {
    Dispatch d;
    d.dispatch_id = id(0x70);
    d.asset_id = id(0x10);
    d.mw = -2.5;
    d.duration_s = 900.0;
    d.reason = "peak shaving";
    d.requested_by = "ops";
    d.created_at = k_ts;
    d.start_at = k_ts + 1000;
    d.parent_id = id(0x80);
    d.enter(DispatchState::queued, k_ts);
    d.enter(DispatchState::rejected, k_ts + 50);
    d.error = "device refused";
    return d;
}

AgentState state() { return AgentState{11.0, 2.0, 2.5, id(0x90), 120.5}; }
Heartbeat heartbeat() { return Heartbeat{id(0x10), k_ts, 3600.25, 17, "der-agent 0.1.0"}; }

// Requests are built by member so that a field added to them later needs no change here.
DispatchRequest dispatch_request() {
    DispatchRequest r;
    r.request_id = "r1";
    r.token = "secret";
    r.asset = "north/bess-1";
    r.mw = 2.5;
    r.duration_s = 900.0;
    r.wait = true;
    r.reason = "test";
    r.requested_by = "alice";
    return r;
}

DispatchRequest site_dispatch_request() {
    DispatchRequest r;
    r.request_id = "r2";
    r.site = "north";
    r.mw = -3.0;
    r.start_at = k_ts + 60'000;
    return r;
}

CancelRequest cancel_request() {
    CancelRequest r;
    r.request_id = "c1";
    r.dispatch_id = id(0x70);
    r.reason = "test";
    r.requested_by = "bob";
    return r;
}

StopRequest stop_request() {
    StopRequest r;
    r.request_id = "s1";
    r.token = "t";
    r.site = "north";
    r.reason = "fire alarm";
    return r;
}

struct Seed {
    std::string name;
    std::string type;
    std::string body;
};

std::vector<Seed> seeds() {
    std::vector<Seed> out;
    std::set<std::size_t> agent_kinds;
    std::set<std::size_t> control_kinds;
    const auto agent = [&](std::string name, const AgentMessage& m) {
        Frame f = encode(m);
        out.push_back({std::move(name), std::move(f.type), std::move(f.body)});
        agent_kinds.insert(m.index());
    };
    const auto control = [&](std::string name, const ControlMessage& m) {
        Frame f = encode(m);
        out.push_back({std::move(name), std::move(f.type), std::move(f.body)});
        control_kinds.insert(m.index());
    };
    agent("register", Register{id(1), 1, "der-agent 0.1.0", id(2), id(3), 77, state(), BessLimits{10, 2, -2, 0.5, 0.95, 10, 90}});
    agent("register-bare", Register{id(1), 1, "", id(2), id(3), 0, std::nullopt, std::nullopt});
    agent("welcome", Welcome{asset(), state(), 2.0, 15.0, 99, Setpoint{id(0x70), 3.5, 60.0, k_ts}});
    agent("welcome-bare", Welcome{asset(), std::nullopt, 4.0, 30.0, std::nullopt, std::nullopt});
    agent("reject", Reject{"asset_held", "held by another live agent", 1.5});
    agent("telemetry", telemetry());
    agent("heartbeat", heartbeat());
    agent("tack", Tack{id(0x30), 1'000'000});
    agent("setpoint", Setpoint{id(0x70), -1.25, 30.0, k_ts});
    agent("ack", Ack{id(0x70), AckStatus::rejected, "outside limits", k_ts});
    agent("reregister", Reregister{});
    const TelemetryBucket bucket{id(0x10), k_ts, 15, 50, 40, 60, 1, -2, 3};
    control("dispatch", dispatch_request());
    control("dispatch-site", site_dispatch_request());
    control("dispatch.result", DispatchResult{"r1", id(0x70), DispatchState::applied, "", true});
    control("history", HistoryRequest{"r3", "t", HistoryKind::dispatch, "north/bess-1", 1000, 2000, 60.0, 500});
    control("history.rows-telemetry", HistoryRows{"r5", std::vector<Telemetry>{telemetry()}});
    control("history.rows-dispatch", HistoryRows{"r6", std::vector<Dispatch>{dispatch(), Dispatch{}}});
    control("history.rows-heartbeat", HistoryRows{"r7", std::vector<Heartbeat>{heartbeat()}});
    control("history.rows-buckets", HistoryRows{"r8", std::vector<TelemetryBucket>{bucket}});
    control("history.end", HistoryEnd{"r5", 4242});
    control("assets", QueryRequest{"q1", "", QueryKind::assets, {"north/bess-1"}, {"north"}});
    control("agents", QueryRequest{"q2", "tok", QueryKind::agents, {}, {}});
    control("latest", QueryRequest{"q3", "", QueryKind::latest, {}, {"south"}});
    control("assets.reply", AssetsReply{"q1", {asset()}});
    control("agents.reply", AgentsReply{"q2", {AgentInfo{id(0x10), id(2), true, "0.1.0", k_ts - 1000, k_ts, 3}}});
    control("latest.reply", LatestReply{"q3", {telemetry()}});
    control("error", ErrorReply{"q9", "not_found", "unknown asset 'north/x'"});
    control("cancel", cancel_request());
    control("stop", stop_request());
    control("stop.result", StopResult{"s1", 3, 2});
    if (agent_kinds.size() != std::variant_size_v<AgentMessage> ||
        control_kinds.size() != std::variant_size_v<ControlMessage>)
        throw std::logic_error("a wire message type has no seed: add one here and to wire_kinds.hpp");
    return out;
}

bool write(const std::filesystem::path& path, const std::string& bytes) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    return static_cast<bool>(out);
}

/// The selector byte of the decoder for `decoder` and `type`.
char selector(fuzz::Decoder decoder, std::string_view type) {
    for (std::size_t i = 0; i < fuzz::k_wire_kinds.size(); ++i) {
        if (fuzz::k_wire_kinds[i].decoder == decoder && fuzz::k_wire_kinds[i].type == type)
            return static_cast<char>(i);
    }
    throw std::logic_error("no wire kind for " + std::string(type));
}

/// Writes every seed into `dir`; false when a file cannot be written.
bool write_corpus(const std::filesystem::path& dir) {
    std::filesystem::create_directories(dir);
    bool ok = true;
    for (const Seed& s : seeds()) {
        const bool is_agent = decode_agent(s.type, s.body).has_value();
        const char pick = selector(is_agent ? fuzz::Decoder::agent : fuzz::Decoder::control, s.type);
        ok &= write(dir / (s.name + ".bin"), pick + s.body);
    }
    ok &= write(dir / "stream-telemetry.bin", selector(fuzz::Decoder::telemetry, "") + encode_telemetry(telemetry()));
    ok &= write(dir / "stream-dispatch.bin", selector(fuzz::Decoder::dispatch, "") + encode_dispatch(dispatch()));
    const AgentEvent event{id(0x10), "heartbeat", k_ts, heartbeat()};
    ok &= write(dir / "stream-agent-event.bin", selector(fuzz::Decoder::agent_event, "") + encode_agent_event(event));
    const Frame tack = encode(AgentMessage{Tack{id(0x30), 7}});
    ok &= write(dir / "free-form-tack.bin", static_cast<char>(fuzz::k_free_form_type) + tack.type + '\0' + tack.body);
    return ok;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: fuzz_make_corpus DIR\n");
        return 64;
    }
    try {
        if (!write_corpus(argv[1])) {
            std::fprintf(stderr, "fuzz_make_corpus: error: cannot write into %s\n", argv[1]);
            return 74;
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "fuzz_make_corpus: error: %s\n", e.what());
        return 70;
    }
    return 0;
}
