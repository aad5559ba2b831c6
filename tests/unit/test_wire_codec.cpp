#include "der/wire_codec.hpp"

#include <catch2/catch.hpp>

#include <cstring>
#include <random>
#include <utility>
#include <vector>

using namespace der;
using namespace der::wire;

namespace {

Uuid id(std::uint8_t first) {
    Uuid::Bytes b{};
    for (std::size_t i = 0; i < b.size(); ++i) {
        b[i] = static_cast<std::uint8_t>(first + i);
    }
    return Uuid(b);
}

std::string to_hex(std::string_view bytes) {
    static constexpr char k_digits[] = "0123456789abcdef";
    std::string out;
    for (const char c : bytes) {
        const auto u = static_cast<unsigned char>(c);
        out += k_digits[u >> 4];
        out += k_digits[u & 15];
    }
    return out;
}

std::string from_hex(std::string_view hex) {
    std::string out;
    auto nibble = [](char c) { return c <= '9' ? c - '0' : c - 'a' + 10; };
    for (std::size_t i = 0; i + 1 < hex.size(); i += 2) {
        out += static_cast<char>(nibble(hex[i]) * 16 + nibble(hex[i + 1]));
    }
    return out;
}

/// Hand-made msgpack values, independent of the codec under test.
namespace mp {
std::string be(std::uint64_t v, int bytes) {
    std::string out;
    for (int i = bytes - 1; i >= 0; --i) {
        out += static_cast<char>((v >> (8 * i)) & 0xff);
    }
    return out;
}
std::string str(std::string_view s) {
    if (s.size() < 32) return static_cast<char>(0xa0 | s.size()) + std::string(s);
    return "\xd9" + be(s.size(), 1) + std::string(s);  // str 8
}
std::string u64(std::uint64_t v) { return "\xcf" + be(v, 8); }
std::string i64(std::int64_t v) { return "\xd3" + be(static_cast<std::uint64_t>(v), 8); }
std::string f64(double d) {
    std::uint64_t bits = 0;
    std::memcpy(&bits, &d, 8);
    return "\xcb" + be(bits, 8);
}
std::string nil() { return "\xc0"; }
std::string uuid(const Uuid& u) {
    return std::string("\xc4\x10", 2) + std::string(reinterpret_cast<const char*>(u.bytes().data()), 16);
}

/// A map as ordered key/value pairs, edited by tests.
struct Map {
    std::vector<std::pair<std::string, std::string>> pairs;
    Map without(std::string_view key) const {
        Map m;
        for (const auto& p : pairs) {
            if (p.first != key) m.pairs.push_back(p);
        }
        return m;
    }
    Map with(std::string key, std::string value) const {
        Map m = without(key);
        m.pairs.emplace_back(std::move(key), std::move(value));
        return m;
    }
    std::string bytes() const {
        std::string out = "\xde" + be(pairs.size(), 2);
        for (const auto& [k, v] : pairs) {
            out += str(k) + v;
        }
        return out;
    }
};
}  // namespace mp

Telemetry sample_telemetry() {
    Telemetry t;
    t.asset_id = id(0x10);
    t.site_id = id(0x20);
    t.epoch = id(0x30);
    t.seq = 123456789;
    t.ts = 1'763'882'715'123;
    t.soc_mwh = 12.5;
    t.soc_pct = 62.5;
    t.capacity_mwh = 20.0;
    t.current_mw = -3.25;
    t.setpoint_mw = -4.0;
    t.max_mw = 5.0;
    t.min_mw = -5.0;
    t.status = AssetStatus::charging;
    t.dispatch_id = id(0x40);
    return t;
}

mp::Map telemetry_map() {
    const auto t = sample_telemetry();
    return mp::Map{{{"asset_id", mp::uuid(t.asset_id)},
                    {"site_id", mp::uuid(t.site_id)},
                    {"epoch", mp::uuid(t.epoch)},
                    {"seq", mp::u64(t.seq)},
                    {"ts", mp::i64(t.ts)},
                    {"soc_mwh", mp::f64(t.soc_mwh)},
                    {"soc_pct", mp::f64(t.soc_pct)},
                    {"capacity_mwh", mp::f64(t.capacity_mwh)},
                    {"current_mw", mp::f64(t.current_mw)},
                    {"setpoint_mw", mp::f64(t.setpoint_mw)},
                    {"max_mw", mp::f64(t.max_mw)},
                    {"min_mw", mp::f64(t.min_mw)},
                    {"status", mp::str("charging")},
                    {"dispatch_id", mp::uuid(*t.dispatch_id)}}};
}

Asset sample_asset() {
    Asset a;
    a.id = id(0x50);
    a.name = "bess-1";
    a.site_id = id(0x60);
    a.site_name = "north";
    a.limits = BessLimits{20.0, 5.0, -5.0, 1.5, 0.9, 5.0, 95.0};
    a.initial_soc_pct = 40.0;
    a.adapter = AdapterConfig{"modbus", {{"host", "10.0.0.7"}, {"unit", "3"}}};
    a.agent_public_key = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7";
    a.available = false;
    return a;
}

Dispatch sample_dispatch() {
    Dispatch d;
    d.dispatch_id = id(0x70);
    d.asset_id = id(0x10);
    d.mw = -2.5;
    d.duration_s = 900.0;
    d.reason = "peak shaving";
    d.requested_by = "ops@example";
    d.created_at = 1'763'882'700'000;
    d.start_at = 1'763'882'800'000;
    d.parent_id = id(0x80);
    d.enter(DispatchState::queued, 1'763'882'700'001);
    d.enter(DispatchState::sent, 1'763'882'800'002);
    d.enter(DispatchState::rejected, 1'763'882'800'050);
    d.error = "device refused";
    return d;
}

AgentState sample_state() { return AgentState{11.0, 2.0, 2.5, id(0x90), 120.5}; }

std::vector<AgentMessage> agent_messages() {
    Register full{id(1), 1, "der-agent 0.1.0", id(2), id(3), 77, sample_state(),
                  BessLimits{10, 2, -2, 0.5, 0.95, 10, 90}};
    Register bare{id(1), 1, "", id(2), id(3), 0, std::nullopt, std::nullopt};
    Welcome welcome_full{sample_asset(), sample_state(), 2.0, 15.0, 99,
                         Setpoint{id(0x70), 3.5, 60.0, 1'763'882'715'000}};
    Welcome welcome_bare{sample_asset(), std::nullopt, 4.0, 30.0, std::nullopt, std::nullopt};
    Telemetry no_dispatch = sample_telemetry();
    no_dispatch.dispatch_id.reset();
    no_dispatch.status = AssetStatus::soc_limit;
    return {
        full,
        bare,
        welcome_full,
        welcome_bare,
        Reject{"asset_held", "held by another live agent", {}},
        Reject{"asset_held", "held", 1.25},
        sample_telemetry(),
        no_dispatch,
        Heartbeat{id(0x10), 1'763'882'715'123, 3600.25, 17, "der-agent 0.1.0"},
        Tack{id(0x30), 1'000'000'000'000ULL},
        Setpoint{id(0x70), -1.25, 30.0, 1'763'882'715'000},
        Setpoint{id(0x70), 0.0, std::nullopt, -5},
        Ack{id(0x70), AckStatus::rejected, "outside limits", 1'763'882'715'999},
        Reregister{},
    };
}

std::vector<ControlMessage> control_messages() {
    TelemetryBucket bucket{id(0x10), 1'763'882'700'000, 15, 50, 40, 60, 1, -2, 3};
    Heartbeat hb{id(0x10), 1'763'882'715'123, 1.5, 0, ""};
    return {
        DispatchRequest{"r1", "secret", "north/bess-1", 2.5, 900.0, true, "test", "alice", "", 1'763'882'800'000},
        DispatchRequest{"", "", "", -1.0, std::nullopt, false, "", "", "north", std::nullopt},
        DispatchResult{"r1", id(0x70), DispatchState::applied, "", true},
        DispatchResult{"r2", std::nullopt, std::nullopt, "mw outside [-5, 5]", false},
        HistoryRequest{"r3", "t", HistoryKind::dispatch, "north/bess-1", 1000, 2000, 60.0, 500},
        HistoryRequest{"r4", "", HistoryKind::heartbeat, "", std::nullopt, std::nullopt,
                       std::nullopt, std::nullopt},
        HistoryRows{"r5", std::vector<Telemetry>{sample_telemetry(), sample_telemetry()}},
        HistoryRows{"r6", std::vector<Dispatch>{sample_dispatch(), Dispatch{}}},
        HistoryRows{"r7", std::vector<Heartbeat>{hb}},
        HistoryRows{"r8", std::vector<TelemetryBucket>{bucket, bucket}},
        HistoryRows{"r9", std::vector<Telemetry>{}},
        HistoryEnd{"r5", 4242},
        QueryRequest{"q1", "", QueryKind::assets, {"north/bess-1", "x"}, {"north"}},
        QueryRequest{"q2", "tok", QueryKind::agents, {}, {}},
        QueryRequest{"q3", "", QueryKind::latest, {}, {"south"}},
        AssetsReply{"q1", {sample_asset(), Asset{}}},
        AgentsReply{"q2",
                    {AgentInfo{id(0x10), id(2), true, "0.1.0", 1'763'882'000'000,
                               1'763'882'715'000, 3}}},
        LatestReply{"q3", {sample_telemetry()}},
        ErrorReply{"q9", "not_found", "unknown asset 'north/x'"},
    };
}

std::vector<std::string> agent_types() {
    return {"register", "welcome", "reject", "telemetry", "heartbeat",
            "tack",     "setpoint", "ack",   "reregister"};
}

std::vector<std::string> control_types() {
    return {"dispatch", "dispatch.result", "history",      "history.rows",
            "history.end", "assets",       "agents",       "latest",
            "assets.reply", "agents.reply", "latest.reply", "error"};
}

std::string decode_error(std::string_view type, std::string_view body) {
    auto r = decode_agent(type, body);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == Errc::decode);
    return r.error().message;
}

/// 1..max_edits random edits of `body`: a flipped byte, a cut tail or an inserted byte each.
void mutate(std::string& body, std::mt19937_64& rng, int max_edits) {
    std::uniform_int_distribution<int> byte(0, 255);
    const int edits = 1 + byte(rng) % max_edits;
    for (int e = 0; e < edits && !body.empty(); ++e) {
        const std::size_t at = static_cast<std::size_t>(byte(rng) * 7919) % body.size();
        switch (byte(rng) % 3) {
        case 0: body[at] = static_cast<char>(byte(rng)); break;
        case 1: body.resize(at); break;
        default: body.insert(at, 1, static_cast<char>(byte(rng))); break;
        }
    }
}

}  // namespace

TEST_CASE("every agent message survives an encode/decode round trip", "[wire]") {
    for (const auto& message : agent_messages()) {
        const Frame frame = encode(message);
        INFO(frame.type << " " << to_hex(frame.body));
        CHECK(frame.type == type_name(message));
        auto decoded = decode_agent(frame.type, frame.body);
        REQUIRE(decoded.has_value());
        CHECK(*decoded == message);
    }
}

TEST_CASE("every control message survives an encode/decode round trip", "[wire]") {
    for (const auto& message : control_messages()) {
        const Frame frame = encode(message);
        INFO(frame.type << " " << to_hex(frame.body));
        auto decoded = decode_control(frame.type, frame.body);
        REQUIRE(decoded.has_value());
        CHECK(*decoded == message);
    }
}

TEST_CASE("stream bodies round-trip: telemetry, dispatch and agent events", "[wire]") {
    CHECK(decode_telemetry(encode_telemetry(sample_telemetry())) == sample_telemetry());
    CHECK(decode_dispatch(encode_dispatch(sample_dispatch())) == sample_dispatch());
    CHECK(decode_dispatch(encode_dispatch(Dispatch{})) == Dispatch{});
    const AgentEvent online{id(0x10), "online", 1'763'882'715'123, std::nullopt};
    const AgentEvent beat{id(0x10), "heartbeat", 5,
                          Heartbeat{id(0x10), 5, 2.0, 1, "der-agent 0.1.0"}};
    CHECK(decode_agent_event(encode_agent_event(online)) == online);
    CHECK(decode_agent_event(encode_agent_event(beat)) == beat);
}

TEST_CASE("tack and ack encode to pinned bytes and decode from them", "[wire]") {
    const std::string tack_hex =
        "82"                                        // map of 2
        "a565706f6368"                              // "epoch"
        "c410000102030405060708090a0b0c0d0e0f"      // bin 16
        "a3736571"                                  // "seq"
        "cd012c";                                   // uint16 300
    const Tack tack{id(0x00), 300};
    CHECK(to_hex(encode(AgentMessage{tack}).body) == tack_hex);
    CHECK(decode_agent("tack", from_hex(tack_hex)) == AgentMessage{tack});

    const std::string ack_hex =
        "84"
        "ab64697370617463685f6964"                  // "dispatch_id"
        "c410101112131415161718191a1b1c1d1e1f"
        "a6737461747573" "a76170706c696564"         // "status" "applied"
        "a6726561736f6e" "a0"                       // "reason" ""
        "a27473" "cf0000018bcfe56800";              // "ts" 1700000000000
    const Ack ack{id(0x10), AckStatus::applied, "", 1'700'000'000'000};
    const Frame frame = encode(AgentMessage{ack});
    CHECK(frame.type == "ack");
    CHECK(to_hex(frame.body) == ack_hex);
    CHECK(decode_agent("ack", from_hex(ack_hex)) == AgentMessage{ack});

    // Fields in another order, fixint seq, UUID as its canonical string.
    auto decoded = decode_agent("tack", from_hex("82a373657105a565706f6368d924") + id(0).to_string());
    REQUIRE(decoded.has_value());
    CHECK(*decoded == AgentMessage{Tack{id(0x00), 5}});
}

TEST_CASE("decode rejects every truncation of a telemetry body", "[wire]") {
    const std::string body = encode(AgentMessage{sample_telemetry()}).body;
    REQUIRE(decode_agent("telemetry", body).has_value());
    for (std::size_t n = 0; n < body.size(); ++n) {
        INFO("prefix of " << n << " bytes");
        auto r = decode_agent("telemetry", std::string_view(body).substr(0, n));
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error().code == Errc::decode);
        CHECK(r.error().message.rfind("telemetry: ", 0) == 0);
    }
    CHECK(decode_error("telemetry", "") == "telemetry: truncated body");
}

TEST_CASE("decoders survive random and mutated bytes for every type", "[wire]") {
    std::mt19937_64 rng(20261123);
    std::uniform_int_distribution<int> byte(0, 255);
    std::uniform_int_distribution<std::size_t> length(0, 256);
    std::size_t decoded = 0;
    std::size_t rejected = 0;
    std::size_t odd_errors = 0;
    auto count = [&](const auto& r) {
        if (r) {
            ++decoded;
        } else {
            ++rejected;
            if (r.error().code != Errc::decode || r.error().message.empty()) ++odd_errors;
        }
    };
    auto feed = [&](std::string_view body) {
        for (const auto& type : agent_types()) {
            auto r = decode_agent(type, body);
            count(r);
        }
        for (const auto& type : control_types()) {
            auto r = decode_control(type, body);
            count(r);
        }
    };

    // Random strings, half of them starting like a map so the walk is reached.
    for (int i = 0; i < 10'000; ++i) {
        std::string body(length(rng), '\0');
        for (auto& c : body) c = static_cast<char>(byte(rng));
        if (i % 2 == 0 && !body.empty()) body[0] = static_cast<char>(0x80 | (byte(rng) & 0x0f));
        feed(body);
    }

    // Mutations of valid frames: flipped bytes, cut tails, inserted bytes.
    std::vector<std::string> seeds;
    for (const auto& m : agent_messages()) seeds.push_back(encode(m).body);
    for (const auto& m : control_messages()) seeds.push_back(encode(m).body);
    for (int i = 0; i < 10'000; ++i) {
        std::string body = seeds[static_cast<std::size_t>(i) % seeds.size()];
        mutate(body, rng, 4);
        feed(body);
    }
    CHECK(decoded + rejected == 20'000 * (agent_types().size() + control_types().size()));
    CHECK(odd_errors == 0);
    CHECK(rejected > 0);
    CHECK(decoded > 0);  // some mutations keep a frame valid (e.g. a changed double)
}

TEST_CASE("the flat fast path decodes exactly what the object-tree decoder does", "[wire]") {
    // decode_agent reads telemetry, heartbeat, tack and ack without a msgpack
    // object tree; detail::decode_agent_reference is the tree decoder alone.
    // Every body must give the same value, or the same error message.
    std::vector<std::pair<std::string, std::string>> seeds;
    for (const auto& m : agent_messages()) {
        const Frame f = encode(m);
        if (f.type == "telemetry" || f.type == "heartbeat" || f.type == "tack" || f.type == "ack")
            seeds.emplace_back(f.type, f.body);
    }
    REQUIRE(seeds.size() >= 4);
    // Hand-made variants the encoder never writes: other int and float
    // widths, map 16, string UUIDs, nil optionals, unknown and duplicate keys.
    const std::string u = "\xc4\x10" + std::string(16, '\x01');
    const std::string hb_tail = mp::str("ts") + "\xd0\x05" + mp::str("uptime_s") + "\xca\x3f\x80\x00\x00" +
                                mp::str("buffered") + "\xcd\x01\x00";
    seeds.emplace_back("heartbeat", "\x84" + mp::str("asset_id") + u + hb_tail);
    seeds.emplace_back("heartbeat", "\xde\x00\x04" + mp::str("asset_id") + mp::str(id(3).to_string()) + hb_tail);
    seeds.emplace_back("heartbeat", "\x85" + mp::str("asset_id") + u + hb_tail + mp::str("agent_version") + "\xc0");
    seeds.emplace_back("heartbeat", "\x85" + mp::str("asset_id") + u + hb_tail + mp::str("extra") + "\x90");
    seeds.emplace_back("heartbeat", "\x85" + mp::str("asset_id") + u + hb_tail + mp::str("ts") + "\xff");
    seeds.emplace_back("heartbeat", "\x84" + mp::str("asset_id") + u + hb_tail + "\xc0");
    seeds.emplace_back("tack", "\x82" + mp::str("epoch") + u + mp::str("seq") + "\xd3" + mp::be(7, 8));
    seeds.emplace_back("tack", "\x82" + mp::str("epoch") + u + mp::str("seq") + "\xd0\xff");
    seeds.emplace_back("tack", "\x82\x01" + u + mp::str("seq") + "\x07");

    std::mt19937_64 rng(20261124);
    std::uniform_int_distribution<int> byte(0, 255);
    std::size_t agree_ok = 0;
    std::size_t agree_error = 0;
    auto compare = [&](const std::string& type, const std::string& body) {
        INFO(type << " body " << to_hex(body));
        const auto fast = decode_agent(type, body);
        const auto tree = detail::decode_agent_reference(type, body);
        REQUIRE(fast.has_value() == tree.has_value());
        if (fast) {
            CHECK(encode(*fast).body == encode(*tree).body);  // bytes: NaN fields compare unequal
            ++agree_ok;
        } else {
            CHECK(fast.error().code == tree.error().code);
            CHECK(fast.error().message == tree.error().message);
            ++agree_error;
        }
    };
    for (const auto& [type, body] : seeds) {
        compare(type, body);
        for (std::size_t n = 0; n < body.size(); ++n) compare(type, body.substr(0, n));
    }
    for (int i = 0; i < 20'000; ++i) {
        const auto& [type, seed] = seeds[static_cast<std::size_t>(i) % seeds.size()];
        std::string body = seed;
        mutate(body, rng, 3);
        compare(type, body);
    }
    CHECK(agree_ok > 100);
    CHECK(agree_error > 100);
}

TEST_CASE("decode names a field of the wrong type", "[wire]") {
    const auto t = telemetry_map();
    CHECK(decode_error("telemetry", t.with("seq", mp::str("12")).bytes()) ==
          "telemetry: field 'seq' must be a non-negative integer");
    CHECK(decode_error("telemetry", t.with("seq", mp::i64(-1)).bytes()) ==
          "telemetry: field 'seq' must be a non-negative integer");
    CHECK(decode_error("telemetry", t.with("seq", mp::f64(3.0)).bytes()) ==
          "telemetry: field 'seq' must be a non-negative integer");
    CHECK(decode_error("telemetry", t.with("soc_pct", mp::nil()).bytes()) ==
          "telemetry: field 'soc_pct' must be a number");
    CHECK(decode_error("telemetry", t.with("ts", mp::f64(1.5)).bytes()) ==
          "telemetry: field 'ts' must be a 64-bit integer");
    CHECK(decode_error("telemetry", t.with("site_id", mp::str("not-a-uuid")).bytes()) ==
          "telemetry: field 'site_id' must be a UUID (bin 16 or canonical string)");
    CHECK(decode_error("telemetry", t.with("epoch", "\xc4\x03" + std::string("abc")).bytes()) ==
          "telemetry: field 'epoch' must be a UUID (bin 16 or canonical string)");
    CHECK(decode_error("telemetry", t.with("status", mp::str("exploding")).bytes()) ==
          "telemetry: field 'status' has an unknown value 'exploding'");
    CHECK(decode_error("telemetry", t.with("dispatch_id", mp::u64(1)).bytes()) ==
          "telemetry: field 'dispatch_id' must be a UUID (bin 16 or canonical string)");

    // Nested fields are named by their path.
    Register r{id(1), 1, "v", id(2), id(3), 0, sample_state(), std::nullopt};
    std::string body = encode(AgentMessage{r}).body;
    const std::string soc = mp::str("soc_mwh") + mp::f64(11.0);
    const auto at = body.find(soc);
    REQUIRE(at != std::string::npos);
    body.replace(at, soc.size(), mp::str("soc_mwh") + mp::str("lots"));
    CHECK(decode_error("register", body) == "register: field 'state.soc_mwh' must be a number");

    ControlMessage rows = HistoryRows{"r", std::vector<Telemetry>{sample_telemetry(), sample_telemetry()}};
    std::string rows_body = encode(rows).body;
    const std::string charging = mp::str("charging");
    rows_body.replace(rows_body.rfind(charging), charging.size(), mp::str("sleeping"));
    auto rr = decode_control("history.rows", rows_body);
    REQUIRE_FALSE(rr.has_value());
    CHECK(rr.error().message == "history.rows: field 'rows[1].status' has an unknown value 'sleeping'");
}

TEST_CASE("decode names a missing required field", "[wire]") {
    const auto t = telemetry_map();
    for (const char* field : {"asset_id", "site_id", "epoch", "seq", "ts", "soc_mwh", "soc_pct",
                              "capacity_mwh", "current_mw", "setpoint_mw", "max_mw", "min_mw",
                              "status"}) {
        CHECK(decode_error("telemetry", t.without(field).bytes()) ==
              std::string("telemetry: missing field '") + field + "'");
    }
    CHECK(decode_error("tack", mp::Map{{{"epoch", mp::uuid(id(0))}}}.bytes()) ==
          "tack: missing field 'seq'");
    CHECK(decode_error("ack", "\x80") == "ack: missing field 'dispatch_id'");
    auto c = decode_control("history", mp::Map{{{"request_id", mp::str("x")}}}.bytes());
    REQUIRE_FALSE(c.has_value());
    CHECK(c.error().message == "history: missing field 'kind'");
}

TEST_CASE("decode ignores unknown fields and treats nil and absent optionals alike", "[wire]") {
    const auto t = telemetry_map();
    const std::string nested_unknown = "\x81" + mp::str("deep") + "\x92\x01" + mp::str("x");
    auto with_extra = t.with("firmware", mp::str("2.1")).with("future", nested_unknown);
    std::string bytes = with_extra.bytes();
    CHECK(decode_agent("telemetry", bytes) == AgentMessage{sample_telemetry()});

    // A non-string key is unknown too.
    std::string int_key = t.bytes();
    int_key[2] = static_cast<char>(int_key[2] + 1);  // one more pair
    int_key += "\x07\xc3";                            // 7: true
    CHECK(decode_agent("telemetry", int_key) == AgentMessage{sample_telemetry()});

    Telemetry expected = sample_telemetry();
    expected.dispatch_id.reset();
    CHECK(decode_agent("telemetry", t.with("dispatch_id", mp::nil()).bytes()) == AgentMessage{expected});
    CHECK(decode_agent("telemetry", t.without("dispatch_id").bytes()) == AgentMessage{expected});

    // Optional strings default to empty.
    auto hb = decode_agent("heartbeat", mp::Map{{{"asset_id", mp::uuid(id(1))},
                                                  {"ts", mp::i64(7)},
                                                  {"uptime_s", mp::u64(3)},
                                                  {"buffered", mp::u64(0)}}}
                                            .bytes());
    REQUIRE(hb.has_value());
    CHECK(*hb == AgentMessage{Heartbeat{id(1), 7, 3.0, 0, ""}});

    // reregister: an empty frame or an empty map.
    CHECK(decode_agent("reregister", "") == AgentMessage{Reregister{}});
    CHECK(decode_agent("reregister", "\x80") == AgentMessage{Reregister{}});
}

TEST_CASE("decode accepts ints for doubles and canonical-string UUIDs", "[wire]") {
    auto t = telemetry_map()
                 .with("soc_mwh", "\x0c")            // positive fixint 12
                 .with("current_mw", "\xfd")         // negative fixint -3
                 .with("max_mw", std::string("\xca\x40\xa0\x00\x00", 5))  // float32 5.0
                 .with("asset_id", mp::str(id(0x10).to_string()));
    Telemetry expected = sample_telemetry();
    expected.soc_mwh = 12.0;
    expected.current_mw = -3.0;
    auto decoded = decode_agent("telemetry", t.bytes());
    INFO((decoded ? std::string("decoded") : decoded.error().message));
    CHECK(decoded == AgentMessage{expected});
}

TEST_CASE("decode rejects trailing bytes, non-map bodies and unknown types", "[wire]") {
    const std::string body = encode(AgentMessage{sample_telemetry()}).body;
    CHECK(decode_error("telemetry", body + "\xc0") == "telemetry: 1 trailing bytes after the body");
    CHECK(decode_error("telemetry", "\x93\x01\x02\x03") == "telemetry: body must be a map");
    CHECK(decode_error("tack", "\xc1") == "tack: malformed msgpack body");
    CHECK(decode_error("reregister", "\x01") == "reregister: body must be a map");
    CHECK(decode_error("bogus", body) == "unknown message type 'bogus'");
    CHECK(decode_error(std::string("te\x01", 3), body) == "unknown message type 'te\\x01'");
    auto c = decode_control("telemetry", body);
    REQUIRE_FALSE(c.has_value());
    CHECK(c.error().message == "unknown message type 'telemetry'");
}

TEST_CASE("decode rejects hostile length prefixes without allocating them", "[wire]") {
    // Containers and strings claiming up to 4 G entries in a few bytes.
    for (const char* hex : {"ddffffffff", "dfffffffff", "dbffffffff", "c6ffffffff", "c9ffffffff01",
                            "de0010", "dc00ff", "81a1789a"}) {
        INFO(hex);
        CHECK_FALSE(decode_agent("telemetry", from_hex(hex)).has_value());
    }
    // Deep nesting inside an unknown field.
    std::string deep = from_hex("81a178");
    for (int i = 0; i < 1000; ++i) deep += "\x91";
    deep += "\xc0";
    CHECK(decode_error("telemetry", deep) == "telemetry: body exceeds the size or nesting limits");
    // Many levels each claiming a large array, cut short.
    std::string claims;
    for (int i = 0; i < 12; ++i) claims += from_hex("dd00010000");
    CHECK_FALSE(decode_agent("telemetry", claims).has_value());
}

TEST_CASE("encode_body appends and type names follow the protocol", "[wire]") {
    std::string out = "prefix";
    encode_body(AgentMessage{Tack{id(0), 300}}, out);
    CHECK(out.substr(0, 6) == "prefix");
    CHECK(out.substr(6) == encode(AgentMessage{Tack{id(0), 300}}).body);

    std::vector<std::string> names;
    for (const auto& m : agent_messages()) names.emplace_back(type_name(m));
    CHECK(names == std::vector<std::string>{"register", "register", "welcome", "welcome", "reject", "reject",
                                            "telemetry", "telemetry", "heartbeat", "tack",
                                            "setpoint", "setpoint", "ack", "reregister"});
    CHECK(type_name(ControlMessage{QueryRequest{"", "", QueryKind::latest, {}, {}}}) == "latest");
    CHECK(type_name(ControlMessage{DispatchResult{}}) == "dispatch.result");
    CHECK(type_name(ControlMessage{AssetsReply{}}) == "assets.reply");
    CHECK(type_name(ControlMessage{ErrorReply{}}) == "error");

    // A query's kind comes from the type frame, not the body.
    auto q = decode_control("agents", "\x80");
    REQUIRE(q.has_value());
    CHECK(std::get<QueryRequest>(*q).kind == QueryKind::agents);
}
