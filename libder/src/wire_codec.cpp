// Implementation details: the msgpack body format of wire protocol v1.
//
// Every body is one msgpack map keyed by the snake_case member names of the
// structs in wire_messages.hpp / model.hpp, with two renames:
// HistoryRequest.every_s is "every", and the `kind` of a QueryRequest is not in
// the body at all (the type frame, `assets`/`agents`/`latest`, carries it).
// Encoders always write every key, in declaration order, so a map's size is
// fixed per type (Dispatch.state_at excepted, see below).
//
//   UUID        bin of exactly 16 bytes (c4 10 ...). Decoders also accept the canonical
//               36-character string.
//   timestamp   int64 Unix milliseconds (TimestampMs), smallest int encoding.
//   double      float64 always. Decoders accept any msgpack int or float.
//   unsigned    smallest uint encoding. Decoders accept a non-negative int only
//               (a negative int or a float is an error).
//   int         (Register.proto) any msgpack int within the range of int.
//   bool        msgpack true/false.
//   string      str. Enums are their lowercase names (der::to_string):
//               status, state, kind, ack status. An unknown name is an error.
//   optional    nil when unset; decoders treat a missing key and nil alike.
//   nested      a nested map (Register.state/limits, Welcome.asset/seed/
//               dispatch, Asset.limits, Asset.adapter {kind, options: map
//               str->str}, AgentEvent.heartbeat); vectors are arrays of maps.
//   state_at    Dispatch.state_at is a map state-name -> int64 holding only
//               the states that have a timestamp (nil values are skipped).
//   rows        HistoryRows is {request_id, kind: "telemetry"|"dispatch"|
//               "heartbeat"|"buckets", rows: [map...]}.
//   reregister  an empty map; decoders also accept an empty body frame.
//
// Decoding is total: msgpack::unpack runs inside try/catch with limits bounded
// by the body length (a hostile length prefix cannot make the unpacker
// allocate more than ~16 x 48 bytes per body byte), and bytes after the body
// object are an error. Each map is then walked once: every key is looked up in
// the type's field table (compared once, starting at the slot after the
// previous match, so keys in encoder order cost one comparison each), decoded
// by that field's reader, and marked seen. Unknown and non-string keys are
// ignored; a duplicate key wins last. Errors name the message and the field
// path: "telemetry: missing field 'seq'", "register: field 'state.mw' must be
// a number", "history.rows: field 'rows[3].ts' must be an integer".
//
// Required fields (the rest are optional; optional strings default to "",
// optional vectors/maps to empty, Dispatch.state_at to no timestamps):
//   AgentState     soc_mwh current_mw setpoint_mw
//   BessLimits     all seven
//   AdapterConfig  kind                      (options optional)
//   Asset          id name site_id site_name kind limits initial_soc_pct
//                  adapter available         (agent_public_key optional)
//   register       asset_id proto instance_id epoch last_seq
//   welcome        asset telemetry_s heartbeat_s
//   reject         code
//   telemetry      asset_id site_id epoch seq ts soc_mwh soc_pct capacity_mwh
//                  current_mw setpoint_mw max_mw min_mw status
//   heartbeat      asset_id ts uptime_s buffered
//   tack           epoch seq
//   setpoint       dispatch_id mw issued_at
//   ack            dispatch_id status ts
//   Dispatch       dispatch_id asset_id mw created_at state
//   dispatch       asset mw                  (wait defaults to false)
//   dispatch.result final
//   history        kind
//   TelemetryBucket all fields
//   history.rows   kind rows
//   history.end    count
//   assets|agents|latest  (nothing)
//   AgentInfo      asset_id instance_id online connected_at last_seen buffered
//   assets.reply   assets;  agents.reply agents;  latest.reply telemetry
//   error          code message
//   agent event    asset_id event ts

#include "der/wire_codec.hpp"

#include <fmt/format.h>

#ifndef MSGPACK_DEFAULT_API_VERSION
#define MSGPACK_DEFAULT_API_VERSION 3
#endif
#include <msgpack.hpp>

#include <algorithm>
#include <array>
#include <bit>
#include <climits>
#include <cstdint>
#include <cstring>
#include <limits>
#include <new>
#include <type_traits>

namespace der::wire {

namespace {

template <class... Ts>
struct Overloaded : Ts... {
    using Ts::operator()...;
};
template <class... Ts>
Overloaded(Ts...) -> Overloaded<Ts...>;

// --- encoding ----------------------------------------------------------------

/// msgpack's packer needs a stream with `write`; this one appends to a string.
struct StringSink {
    std::string* out;
    void write(const char* data, std::size_t size) { out->append(data, size); }
};

class Writer {
public:
    explicit Writer(std::string& out) : m_sink{&out}, m_pk(m_sink) {}

    void map(std::uint32_t size) { m_pk.pack_map(size); }
    void array(std::uint32_t size) { m_pk.pack_array(size); }
    void str(std::string_view s) {
        const auto n = static_cast<std::uint32_t>(s.size());
        m_pk.pack_str(n);
        m_pk.pack_str_body(s.data(), n);
    }
    void key(std::string_view k) { str(k); }
    void nil() { m_pk.pack_nil(); }
    /// Always float64: msgpack-c's pack_double would pack 2.0 as the int 2.
    void f64(double v) {
        std::array<char, 9> buf;
        buf[0] = static_cast<char>(0xcb);
        const auto bits = std::bit_cast<std::uint64_t>(v);
        for (int i = 0; i < 8; ++i) {
            buf[static_cast<std::size_t>(1 + i)] = static_cast<char>(bits >> (56 - 8 * i));
        }
        m_sink.write(buf.data(), buf.size());
    }
    void u64(std::uint64_t v) { m_pk.pack_uint64(v); }
    void i64(std::int64_t v) { m_pk.pack_int64(v); }
    void boolean(bool v) { v ? m_pk.pack_true() : m_pk.pack_false(); }
    void uuid(const Uuid& id) {
        m_pk.pack_bin(16);
        m_pk.pack_bin_body(reinterpret_cast<const char*>(id.bytes().data()), 16);
    }

    template <class T, class F>
    void opt(const std::optional<T>& v, F&& write) {
        if (v) {
            write(*v);
        } else {
            nil();
        }
    }

private:
    StringSink m_sink;
    msgpack::packer<StringSink> m_pk;
};

void write(Writer& w, const BessLimits& l) {
    w.map(7);
    w.key("capacity_mwh"), w.f64(l.capacity_mwh);
    w.key("max_mw"), w.f64(l.max_mw);
    w.key("min_mw"), w.f64(l.min_mw);
    w.key("ramp_mw_per_s"), w.f64(l.ramp_mw_per_s);
    w.key("efficiency"), w.f64(l.efficiency);
    w.key("soc_min_pct"), w.f64(l.soc_min_pct);
    w.key("soc_max_pct"), w.f64(l.soc_max_pct);
}

void write(Writer& w, const AdapterConfig& a) {
    w.map(2);
    w.key("kind"), w.str(a.kind);
    w.key("options");
    w.map(static_cast<std::uint32_t>(a.options.size()));
    for (const auto& [k, v] : a.options) {
        w.str(k);
        w.str(v);
    }
}

void write(Writer& w, const Asset& a) {
    w.map(10);
    w.key("id"), w.uuid(a.id);
    w.key("name"), w.str(a.name);
    w.key("site_id"), w.uuid(a.site_id);
    w.key("site_name"), w.str(a.site_name);
    w.key("kind"), w.str(a.kind);
    w.key("limits"), write(w, a.limits);
    w.key("initial_soc_pct"), w.f64(a.initial_soc_pct);
    w.key("adapter"), write(w, a.adapter);
    w.key("agent_public_key"), w.str(a.agent_public_key);
    w.key("available"), w.boolean(a.available);
}

void write(Writer& w, const AgentState& s) {
    w.map(5);
    w.key("soc_mwh"), w.f64(s.soc_mwh);
    w.key("current_mw"), w.f64(s.current_mw);
    w.key("setpoint_mw"), w.f64(s.setpoint_mw);
    w.key("dispatch_id"), w.opt(s.dispatch_id, [&](const Uuid& v) { w.uuid(v); });
    w.key("remaining_s"), w.opt(s.remaining_s, [&](double v) { w.f64(v); });
}

void write(Writer& w, const Register& r) {
    w.map(8);
    w.key("asset_id"), w.uuid(r.asset_id);
    w.key("proto"), w.i64(r.proto);
    w.key("agent_version"), w.str(r.agent_version);
    w.key("instance_id"), w.uuid(r.instance_id);
    w.key("epoch"), w.uuid(r.epoch);
    w.key("last_seq"), w.u64(r.last_seq);
    w.key("state"), w.opt(r.state, [&](const AgentState& v) { write(w, v); });
    w.key("limits"), w.opt(r.limits, [&](const BessLimits& v) { write(w, v); });
}

void write(Writer& w, const Setpoint& s) {
    w.map(4);
    w.key("dispatch_id"), w.uuid(s.dispatch_id);
    w.key("mw"), w.f64(s.mw);
    w.key("remaining_s"), w.opt(s.remaining_s, [&](double v) { w.f64(v); });
    w.key("issued_at"), w.i64(s.issued_at);
}

void write(Writer& w, const Welcome& m) {
    w.map(6);
    w.key("asset"), write(w, m.asset);
    w.key("seed"), w.opt(m.seed, [&](const AgentState& v) { write(w, v); });
    w.key("telemetry_s"), w.f64(m.telemetry_s);
    w.key("heartbeat_s"), w.f64(m.heartbeat_s);
    w.key("ack_seq"), w.opt(m.ack_seq, [&](std::uint64_t v) { w.u64(v); });
    w.key("dispatch"), w.opt(m.dispatch, [&](const Setpoint& v) { write(w, v); });
}

void write(Writer& w, const Reject& m) {
    w.map(m.retry_after_s ? 3 : 2);  // the field is new: older agents never see it unless it is set
    w.key("code"), w.str(m.code);
    w.key("reason"), w.str(m.reason);
    if (m.retry_after_s) w.key("retry_after_s"), w.f64(*m.retry_after_s);
}

void write(Writer& w, const Telemetry& t) {
    w.map(14);
    w.key("asset_id"), w.uuid(t.asset_id);
    w.key("site_id"), w.uuid(t.site_id);
    w.key("epoch"), w.uuid(t.epoch);
    w.key("seq"), w.u64(t.seq);
    w.key("ts"), w.i64(t.ts);
    w.key("soc_mwh"), w.f64(t.soc_mwh);
    w.key("soc_pct"), w.f64(t.soc_pct);
    w.key("capacity_mwh"), w.f64(t.capacity_mwh);
    w.key("current_mw"), w.f64(t.current_mw);
    w.key("setpoint_mw"), w.f64(t.setpoint_mw);
    w.key("max_mw"), w.f64(t.max_mw);
    w.key("min_mw"), w.f64(t.min_mw);
    w.key("status"), w.str(to_string(t.status));
    w.key("dispatch_id"), w.opt(t.dispatch_id, [&](const Uuid& v) { w.uuid(v); });
}

void write(Writer& w, const Heartbeat& h) {
    w.map(5);
    w.key("asset_id"), w.uuid(h.asset_id);
    w.key("ts"), w.i64(h.ts);
    w.key("uptime_s"), w.f64(h.uptime_s);
    w.key("buffered"), w.u64(h.buffered);
    w.key("agent_version"), w.str(h.agent_version);
}

void write(Writer& w, const Tack& m) {
    w.map(2);
    w.key("epoch"), w.uuid(m.epoch);
    w.key("seq"), w.u64(m.seq);
}

void write(Writer& w, const Ack& m) {
    w.map(4);
    w.key("dispatch_id"), w.uuid(m.dispatch_id);
    w.key("status"), w.str(to_string(m.status));
    w.key("reason"), w.str(m.reason);
    w.key("ts"), w.i64(m.ts);
}

void write(Writer& w, const Reregister&) { w.map(0); }

void write(Writer& w, const Dispatch& d) {
    w.map(12);
    w.key("dispatch_id"), w.uuid(d.dispatch_id);
    w.key("asset_id"), w.uuid(d.asset_id);
    w.key("mw"), w.f64(d.mw);
    w.key("duration_s"), w.opt(d.duration_s, [&](double v) { w.f64(v); });
    w.key("reason"), w.str(d.reason);
    w.key("requested_by"), w.str(d.requested_by);
    w.key("created_at"), w.i64(d.created_at);
    w.key("start_at"), w.opt(d.start_at, [&](TimestampMs v) { w.i64(v); });
    w.key("parent_id"), w.opt(d.parent_id, [&](const Uuid& v) { w.uuid(v); });
    w.key("state"), w.str(to_string(d.state));
    w.key("state_at");
    const auto set = std::count_if(d.state_at.begin(), d.state_at.end(),
                                   [](const auto& at) { return at.has_value(); });
    w.map(static_cast<std::uint32_t>(set));
    for (std::size_t i = 0; i < d.state_at.size(); ++i) {
        if (d.state_at[i]) {
            w.str(to_string(static_cast<DispatchState>(i)));
            w.i64(*d.state_at[i]);
        }
    }
    w.key("error"), w.str(d.error);
}

void write(Writer& w, const DispatchRequest& m) {
    w.map(10);
    w.key("request_id"), w.str(m.request_id);
    w.key("token"), w.str(m.token);
    w.key("asset"), w.str(m.asset);
    w.key("site"), w.str(m.site);
    w.key("mw"), w.f64(m.mw);
    w.key("duration_s"), w.opt(m.duration_s, [&](double v) { w.f64(v); });
    w.key("start_at"), w.opt(m.start_at, [&](TimestampMs v) { w.i64(v); });
    w.key("wait"), w.boolean(m.wait);
    w.key("reason"), w.str(m.reason);
    w.key("requested_by"), w.str(m.requested_by);
}

void write(Writer& w, const CancelRequest& m) {
    w.map(5);
    w.key("request_id"), w.str(m.request_id);
    w.key("token"), w.str(m.token);
    w.key("dispatch_id"), w.uuid(m.dispatch_id);
    w.key("reason"), w.str(m.reason);
    w.key("requested_by"), w.str(m.requested_by);
}

void write(Writer& w, const StopRequest& m) {
    w.map(5);
    w.key("request_id"), w.str(m.request_id);
    w.key("token"), w.str(m.token);
    w.key("site"), w.str(m.site);
    w.key("reason"), w.str(m.reason);
    w.key("requested_by"), w.str(m.requested_by);
}

void write(Writer& w, const StopResult& m) {
    w.map(3);
    w.key("request_id"), w.str(m.request_id);
    w.key("assets"), w.u64(m.assets);
    w.key("cancelled"), w.u64(m.cancelled);
}

void write(Writer& w, const DispatchResult& m) {
    w.map(5);
    w.key("request_id"), w.str(m.request_id);
    w.key("dispatch_id"), w.opt(m.dispatch_id, [&](const Uuid& v) { w.uuid(v); });
    w.key("state"), w.opt(m.state, [&](DispatchState v) { w.str(to_string(v)); });
    w.key("error"), w.str(m.error);
    w.key("final"), w.boolean(m.final);
}

void write(Writer& w, const HistoryRequest& m) {
    w.map(8);
    w.key("request_id"), w.str(m.request_id);
    w.key("token"), w.str(m.token);
    w.key("kind"), w.str(to_string(m.kind));
    w.key("asset"), w.str(m.asset);
    w.key("since"), w.opt(m.since, [&](TimestampMs v) { w.i64(v); });
    w.key("until"), w.opt(m.until, [&](TimestampMs v) { w.i64(v); });
    w.key("every"), w.opt(m.every_s, [&](double v) { w.f64(v); });
    w.key("limit"), w.opt(m.limit, [&](std::uint64_t v) { w.u64(v); });
}

void write(Writer& w, const TelemetryBucket& b) {
    w.map(9);
    w.key("asset_id"), w.uuid(b.asset_id);
    w.key("ts"), w.i64(b.ts);
    w.key("count"), w.u64(b.count);
    w.key("soc_pct_avg"), w.f64(b.soc_pct_avg);
    w.key("soc_pct_min"), w.f64(b.soc_pct_min);
    w.key("soc_pct_max"), w.f64(b.soc_pct_max);
    w.key("current_mw_avg"), w.f64(b.current_mw_avg);
    w.key("current_mw_min"), w.f64(b.current_mw_min);
    w.key("current_mw_max"), w.f64(b.current_mw_max);
}

void write(Writer& w, const AgentInfo& a) {
    w.map(7);
    w.key("asset_id"), w.uuid(a.asset_id);
    w.key("instance_id"), w.uuid(a.instance_id);
    w.key("online"), w.boolean(a.online);
    w.key("agent_version"), w.str(a.agent_version);
    w.key("connected_at"), w.i64(a.connected_at);
    w.key("last_seen"), w.i64(a.last_seen);
    w.key("buffered"), w.u64(a.buffered);
}

template <class T>
void write_array(Writer& w, const std::vector<T>& items) {
    w.array(static_cast<std::uint32_t>(items.size()));
    for (const auto& item : items) {
        write(w, item);
    }
}

std::string_view rows_kind(const HistoryRows& m) noexcept {
    switch (m.rows.index()) {
    case 0: return "telemetry";
    case 1: return "dispatch";
    case 2: return "heartbeat";
    default: return "buckets";
    }
}

void write(Writer& w, const HistoryRows& m) {
    w.map(3);
    w.key("request_id"), w.str(m.request_id);
    w.key("kind"), w.str(rows_kind(m));
    w.key("rows");
    std::visit([&](const auto& rows) { write_array(w, rows); }, m.rows);
}

void write(Writer& w, const HistoryEnd& m) {
    w.map(2);
    w.key("request_id"), w.str(m.request_id);
    w.key("count"), w.u64(m.count);
}

void write(Writer& w, const QueryRequest& m) {
    w.map(4);
    w.key("request_id"), w.str(m.request_id);
    w.key("token"), w.str(m.token);
    w.key("assets"), w.array(static_cast<std::uint32_t>(m.assets.size()));
    for (const auto& s : m.assets) {
        w.str(s);
    }
    w.key("sites"), w.array(static_cast<std::uint32_t>(m.sites.size()));
    for (const auto& s : m.sites) {
        w.str(s);
    }
}

void write(Writer& w, const AssetsReply& m) {
    w.map(2);
    w.key("request_id"), w.str(m.request_id);
    w.key("assets"), write_array(w, m.assets);
}

void write(Writer& w, const AgentsReply& m) {
    w.map(2);
    w.key("request_id"), w.str(m.request_id);
    w.key("agents"), write_array(w, m.agents);
}

void write(Writer& w, const LatestReply& m) {
    w.map(2);
    w.key("request_id"), w.str(m.request_id);
    w.key("telemetry"), write_array(w, m.telemetry);
}

void write(Writer& w, const ErrorReply& m) {
    w.map(3);
    w.key("request_id"), w.str(m.request_id);
    w.key("code"), w.str(m.code);
    w.key("message"), w.str(m.message);
}

void write(Writer& w, const AgentEvent& e) {
    w.map(4);
    w.key("asset_id"), w.uuid(e.asset_id);
    w.key("event"), w.str(e.event);
    w.key("ts"), w.i64(e.ts);
    w.key("heartbeat"), w.opt(e.heartbeat, [&](const Heartbeat& v) { write(w, v); });
}

// --- decoding: primitives ----------------------------------------------------

using Obj = msgpack::object;
namespace mt = msgpack::type;

/// Why a value did not decode. `field` is the path below the value being
/// read ("", "seq", "state.soc_mwh", "rows[3].ts"); parents prepend to it.
struct Fault {
    std::string field;
    std::string_view what;  ///< "must be a number"; empty = missing
    std::string detail;     ///< e.g. the unknown enum string
};

bool bad(Fault& f, std::string_view what) {
    f.field.clear();
    f.what = what;
    return false;
}

void prepend(Fault& f, std::string_view name) {
    if (f.field.empty()) {
        f.field = name;
    } else if (f.field.front() == '[') {
        f.field.insert(0, name);
    } else {
        f.field.insert(0, 1, '.');
        f.field.insert(0, name);
    }
}

std::string_view as_view(const Obj& o) noexcept { return {o.via.str.ptr, o.via.str.size}; }

bool read(const Obj& o, double& v, Fault& f) {
    switch (o.type) {
    case mt::FLOAT64:
    case mt::FLOAT32: v = o.via.f64; return true;
    case mt::POSITIVE_INTEGER: v = static_cast<double>(o.via.u64); return true;
    case mt::NEGATIVE_INTEGER: v = static_cast<double>(o.via.i64); return true;
    default: return bad(f, "must be a number");
    }
}

bool read(const Obj& o, std::uint64_t& v, Fault& f) {
    if (o.type != mt::POSITIVE_INTEGER) {
        return bad(f, "must be a non-negative integer");
    }
    v = o.via.u64;
    return true;
}

bool read(const Obj& o, std::int64_t& v, Fault& f) {
    if (o.type == mt::NEGATIVE_INTEGER) {
        v = o.via.i64;
        return true;
    }
    if (o.type == mt::POSITIVE_INTEGER &&
        o.via.u64 <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
        v = static_cast<std::int64_t>(o.via.u64);
        return true;
    }
    return bad(f, "must be a 64-bit integer");
}

bool read(const Obj& o, int& v, Fault& f) {
    std::int64_t wide = 0;
    if (!read(o, wide, f) || wide < INT_MIN || wide > INT_MAX) {
        return bad(f, "must be an integer");
    }
    v = static_cast<int>(wide);
    return true;
}

bool read(const Obj& o, bool& v, Fault& f) {
    if (o.type != mt::BOOLEAN) {
        return bad(f, "must be a boolean");
    }
    v = o.via.boolean;
    return true;
}

bool read(const Obj& o, std::string& v, Fault& f) {
    if (o.type != mt::STR) {
        return bad(f, "must be a string");
    }
    v.assign(o.via.str.ptr, o.via.str.size);
    return true;
}

bool read(const Obj& o, Uuid& v, Fault& f) {
    if (o.type == mt::BIN && o.via.bin.size == 16) {
        Uuid::Bytes bytes;
        std::memcpy(bytes.data(), o.via.bin.ptr, 16);
        v = Uuid(bytes);
        return true;
    }
    if (o.type == mt::STR && o.via.str.size == 36) {
        if (auto parsed = Uuid::parse(as_view(o))) {
            v = *parsed;
            return true;
        }
    }
    return bad(f, "must be a UUID (bin 16 or canonical string)");
}

/// Enums travel as their lowercase names.
template <class E, class Parse>
bool read_enum(const Obj& o, E& v, Fault& f, Parse parse) {
    if (o.type != mt::STR) {
        return bad(f, "must be a string");
    }
    const auto text = as_view(o);
    if (auto parsed = parse(text)) {
        v = *parsed;
        return true;
    }
    bad(f, "has an unknown value");
    f.detail.assign(text.substr(0, 32));
    return false;
}

std::optional<AckStatus> parse_ack_status(std::string_view s) noexcept {
    if (s == "applied") return AckStatus::applied;
    if (s == "rejected") return AckStatus::rejected;
    return std::nullopt;
}

std::optional<HistoryKind> parse_history_kind(std::string_view s) noexcept {
    if (s == "telemetry") return HistoryKind::telemetry;
    if (s == "dispatch") return HistoryKind::dispatch;
    if (s == "heartbeat") return HistoryKind::heartbeat;
    return std::nullopt;
}

bool read(const Obj& o, AssetStatus& v, Fault& f) { return read_enum(o, v, f, parse_asset_status); }
bool read(const Obj& o, DispatchState& v, Fault& f) { return read_enum(o, v, f, parse_dispatch_state); }
bool read(const Obj& o, AckStatus& v, Fault& f) { return read_enum(o, v, f, parse_ack_status); }
bool read(const Obj& o, HistoryKind& v, Fault& f) { return read_enum(o, v, f, parse_history_kind); }

// Structs, declared here so the generic readers below find them.
bool read(const Obj& o, BessLimits& v, Fault& f);
bool read(const Obj& o, AdapterConfig& v, Fault& f);
bool read(const Obj& o, Asset& v, Fault& f);
bool read(const Obj& o, AgentState& v, Fault& f);
bool read(const Obj& o, Setpoint& v, Fault& f);
bool read(const Obj& o, Telemetry& v, Fault& f);
bool read(const Obj& o, Heartbeat& v, Fault& f);
bool read(const Obj& o, Dispatch& v, Fault& f);
bool read(const Obj& o, TelemetryBucket& v, Fault& f);
bool read(const Obj& o, AgentInfo& v, Fault& f);
bool read(const Obj& o, std::map<std::string, std::string>& v, Fault& f);
bool read(const Obj& o, std::array<std::optional<TimestampMs>, k_dispatch_state_count>& v,
          Fault& f);

template <class T>
bool read(const Obj& o, std::optional<T>& v, Fault& f) {
    if (o.type == mt::NIL) {
        v.reset();
        return true;
    }
    T value{};
    if (!read(o, value, f)) {
        return false;
    }
    v = std::move(value);
    return true;
}

template <class T>
bool read(const Obj& o, std::vector<T>& v, Fault& f) {
    if (o.type != mt::ARRAY) {
        return bad(f, "must be an array");
    }
    // Grown as elements decode, so a hostile count of 1-byte elements cannot
    // make us construct that many structs before the first one fails.
    v.clear();
    v.reserve(std::min<std::size_t>(o.via.array.size, 256));
    for (std::uint32_t i = 0; i < o.via.array.size; ++i) {
        if (!read(o.via.array.ptr[i], v.emplace_back(), f)) {
            prepend(f, fmt::format("[{}]", i));
            return false;
        }
    }
    return true;
}

// --- decoding: field tables --------------------------------------------------

enum class Need { required, optional };

template <class S>
struct FieldSpec {
    std::string_view name;
    Need need;
    bool (*read)(const Obj&, S&, Fault&);
};

template <class M>
struct MemberOf;
template <class C, class T>
struct MemberOf<T C::*> {
    using Class = C;
};

/// A table entry that decodes `name` into the member `Member`.
template <auto Member>
constexpr FieldSpec<typename MemberOf<decltype(Member)>::Class> field(std::string_view name,
                                                                      Need need) {
    using S = typename MemberOf<decltype(Member)>::Class;
    return {name, need, [](const Obj& o, S& s, Fault& f) { return read(o, s.*Member, f); }};
}

template <class S, std::size_t N>
constexpr std::uint64_t required_mask(const std::array<FieldSpec<S>, N>& spec) {
    static_assert(N <= 64);
    std::uint64_t mask = 0;
    for (std::size_t i = 0; i < N; ++i) {
        if (spec[i].need == Need::required) {
            mask |= std::uint64_t{1} << i;
        }
    }
    return mask;
}

/// Index of `key` in `spec`, trying `hint` first (encoders write in table
/// order, so the expected key is the one after the previous match).
template <class S, std::size_t N>
std::size_t find_field(const std::array<FieldSpec<S>, N>& spec, std::string_view key,
                       std::size_t hint) noexcept {
    for (std::size_t n = 0; n < N; ++n) {
        std::size_t i = hint + n;
        if (i >= N) {
            i -= N;
        }
        const auto name = spec[i].name;
        if (name.size() == key.size() && std::memcmp(name.data(), key.data(), key.size()) == 0) {
            return i;
        }
    }
    return N;
}

/// The single pass over a map: each key looked up once, its value decoded.
template <const auto& spec, class S>
bool read_struct(const Obj& o, S& out, Fault& f) {
    constexpr std::size_t N = spec.size();
    static constexpr std::uint64_t k_required = required_mask(spec);
    if (o.type != mt::MAP) {
        return bad(f, "must be a map");
    }
    std::uint64_t seen = 0;
    std::size_t hint = 0;
    const msgpack::object_kv* kv = o.via.map.ptr;
    for (std::uint32_t n = 0; n < o.via.map.size; ++n, ++kv) {
        if (kv->key.type != mt::STR) {
            continue;  // unknown by construction
        }
        const std::size_t i = find_field(spec, as_view(kv->key), hint);
        if (i == N) {
            continue;  // forward compatibility
        }
        if (!spec[i].read(kv->val, out, f)) {
            prepend(f, spec[i].name);
            return false;
        }
        seen |= std::uint64_t{1} << i;
        hint = i + 1;
    }
    const std::uint64_t missing = k_required & ~seen;
    if (missing != 0) {
        f.field = spec[static_cast<std::size_t>(std::countr_zero(missing))].name;
        f.what = {};
        return false;
    }
    return true;
}

// Tables. Order = encoder order (fast path), not semantics.
using enum Need;

constexpr std::array k_limits_fields{
    field<&BessLimits::capacity_mwh>("capacity_mwh", required),
    field<&BessLimits::max_mw>("max_mw", required),
    field<&BessLimits::min_mw>("min_mw", required),
    field<&BessLimits::ramp_mw_per_s>("ramp_mw_per_s", required),
    field<&BessLimits::efficiency>("efficiency", required),
    field<&BessLimits::soc_min_pct>("soc_min_pct", required),
    field<&BessLimits::soc_max_pct>("soc_max_pct", required),
};
bool read(const Obj& o, BessLimits& v, Fault& f) { return read_struct<k_limits_fields>(o, v, f); }

bool read(const Obj& o, std::map<std::string, std::string>& v, Fault& f) {
    if (o.type != mt::MAP) {
        return bad(f, "must be a map");
    }
    v.clear();
    for (std::uint32_t i = 0; i < o.via.map.size; ++i) {
        const auto& kv = o.via.map.ptr[i];
        std::string value;
        if (kv.key.type != mt::STR) {
            return bad(f, "must have string keys");
        }
        if (!read(kv.val, value, f)) {
            prepend(f, as_view(kv.key).substr(0, 64));
            return false;
        }
        v.insert_or_assign(std::string(as_view(kv.key)), std::move(value));
    }
    return true;
}

constexpr std::array k_adapter_fields{
    field<&AdapterConfig::kind>("kind", required),
    field<&AdapterConfig::options>("options", optional),
};
bool read(const Obj& o, AdapterConfig& v, Fault& f) { return read_struct<k_adapter_fields>(o, v, f); }

constexpr std::array k_asset_fields{
    field<&Asset::id>("id", required),
    field<&Asset::name>("name", required),
    field<&Asset::site_id>("site_id", required),
    field<&Asset::site_name>("site_name", required),
    field<&Asset::kind>("kind", required),
    field<&Asset::limits>("limits", required),
    field<&Asset::initial_soc_pct>("initial_soc_pct", required),
    field<&Asset::adapter>("adapter", required),
    field<&Asset::agent_public_key>("agent_public_key", optional),
    field<&Asset::available>("available", required),
};
bool read(const Obj& o, Asset& v, Fault& f) { return read_struct<k_asset_fields>(o, v, f); }

constexpr std::array k_agent_state_fields{
    field<&AgentState::soc_mwh>("soc_mwh", required),
    field<&AgentState::current_mw>("current_mw", required),
    field<&AgentState::setpoint_mw>("setpoint_mw", required),
    field<&AgentState::dispatch_id>("dispatch_id", optional),
    field<&AgentState::remaining_s>("remaining_s", optional),
};
bool read(const Obj& o, AgentState& v, Fault& f) { return read_struct<k_agent_state_fields>(o, v, f); }

constexpr std::array k_register_fields{
    field<&Register::asset_id>("asset_id", required),
    field<&Register::proto>("proto", required),
    field<&Register::agent_version>("agent_version", optional),
    field<&Register::instance_id>("instance_id", required),
    field<&Register::epoch>("epoch", required),
    field<&Register::last_seq>("last_seq", required),
    field<&Register::state>("state", optional),
    field<&Register::limits>("limits", optional),
};
bool read(const Obj& o, Register& v, Fault& f) { return read_struct<k_register_fields>(o, v, f); }

constexpr std::array k_setpoint_fields{
    field<&Setpoint::dispatch_id>("dispatch_id", required),
    field<&Setpoint::mw>("mw", required),
    field<&Setpoint::remaining_s>("remaining_s", optional),
    field<&Setpoint::issued_at>("issued_at", required),
};
bool read(const Obj& o, Setpoint& v, Fault& f) { return read_struct<k_setpoint_fields>(o, v, f); }

constexpr std::array k_welcome_fields{
    field<&Welcome::asset>("asset", required),
    field<&Welcome::seed>("seed", optional),
    field<&Welcome::telemetry_s>("telemetry_s", required),
    field<&Welcome::heartbeat_s>("heartbeat_s", required),
    field<&Welcome::ack_seq>("ack_seq", optional),
    field<&Welcome::dispatch>("dispatch", optional),
};
bool read(const Obj& o, Welcome& v, Fault& f) { return read_struct<k_welcome_fields>(o, v, f); }

constexpr std::array k_reject_fields{
    field<&Reject::code>("code", required),
    field<&Reject::reason>("reason", optional),
    field<&Reject::retry_after_s>("retry_after_s", optional),
};
bool read(const Obj& o, Reject& v, Fault& f) { return read_struct<k_reject_fields>(o, v, f); }

constexpr std::array k_telemetry_fields{
    field<&Telemetry::asset_id>("asset_id", required),
    field<&Telemetry::site_id>("site_id", required),
    field<&Telemetry::epoch>("epoch", required),
    field<&Telemetry::seq>("seq", required),
    field<&Telemetry::ts>("ts", required),
    field<&Telemetry::soc_mwh>("soc_mwh", required),
    field<&Telemetry::soc_pct>("soc_pct", required),
    field<&Telemetry::capacity_mwh>("capacity_mwh", required),
    field<&Telemetry::current_mw>("current_mw", required),
    field<&Telemetry::setpoint_mw>("setpoint_mw", required),
    field<&Telemetry::max_mw>("max_mw", required),
    field<&Telemetry::min_mw>("min_mw", required),
    field<&Telemetry::status>("status", required),
    field<&Telemetry::dispatch_id>("dispatch_id", optional),
};
bool read(const Obj& o, Telemetry& v, Fault& f) { return read_struct<k_telemetry_fields>(o, v, f); }

constexpr std::array k_heartbeat_fields{
    field<&Heartbeat::asset_id>("asset_id", required),
    field<&Heartbeat::ts>("ts", required),
    field<&Heartbeat::uptime_s>("uptime_s", required),
    field<&Heartbeat::buffered>("buffered", required),
    field<&Heartbeat::agent_version>("agent_version", optional),
};
bool read(const Obj& o, Heartbeat& v, Fault& f) { return read_struct<k_heartbeat_fields>(o, v, f); }

constexpr std::array k_tack_fields{
    field<&Tack::epoch>("epoch", required),
    field<&Tack::seq>("seq", required),
};
bool read(const Obj& o, Tack& v, Fault& f) { return read_struct<k_tack_fields>(o, v, f); }

constexpr std::array k_ack_fields{
    field<&Ack::dispatch_id>("dispatch_id", required),
    field<&Ack::status>("status", required),
    field<&Ack::reason>("reason", optional),
    field<&Ack::ts>("ts", required),
};
bool read(const Obj& o, Ack& v, Fault& f) { return read_struct<k_ack_fields>(o, v, f); }

bool read(const Obj& o, Reregister&, Fault& f) {
    return o.type == mt::MAP ? true : bad(f, "must be a map");
}

bool read(const Obj& o, std::array<std::optional<TimestampMs>, k_dispatch_state_count>& v,
          Fault& f) {
    if (o.type != mt::MAP) {
        return bad(f, "must be a map");
    }
    v = {};
    for (std::uint32_t i = 0; i < o.via.map.size; ++i) {
        const auto& kv = o.via.map.ptr[i];
        DispatchState state{};
        if (!read(kv.key, state, f)) {
            f.what = "must have dispatch-state keys";
            return false;
        }
        if (!read(kv.val, v[static_cast<std::size_t>(state)], f)) {
            prepend(f, to_string(state));
            return false;
        }
    }
    return true;
}

constexpr std::array k_dispatch_fields{
    field<&Dispatch::dispatch_id>("dispatch_id", required),
    field<&Dispatch::asset_id>("asset_id", required),
    field<&Dispatch::mw>("mw", required),
    field<&Dispatch::duration_s>("duration_s", optional),
    field<&Dispatch::reason>("reason", optional),
    field<&Dispatch::requested_by>("requested_by", optional),
    field<&Dispatch::created_at>("created_at", required),
    field<&Dispatch::start_at>("start_at", optional),
    field<&Dispatch::parent_id>("parent_id", optional),
    field<&Dispatch::state>("state", required),
    field<&Dispatch::state_at>("state_at", optional),
    field<&Dispatch::error>("error", optional),
};
bool read(const Obj& o, Dispatch& v, Fault& f) { return read_struct<k_dispatch_fields>(o, v, f); }

constexpr std::array k_dispatch_request_fields{
    field<&DispatchRequest::request_id>("request_id", optional),
    field<&DispatchRequest::token>("token", optional),
    field<&DispatchRequest::asset>("asset", optional),
    field<&DispatchRequest::site>("site", optional),
    field<&DispatchRequest::mw>("mw", required),
    field<&DispatchRequest::duration_s>("duration_s", optional),
    field<&DispatchRequest::start_at>("start_at", optional),
    field<&DispatchRequest::wait>("wait", optional),
    field<&DispatchRequest::reason>("reason", optional),
    field<&DispatchRequest::requested_by>("requested_by", optional),
};
bool read(const Obj& o, DispatchRequest& v, Fault& f) {
    return read_struct<k_dispatch_request_fields>(o, v, f);
}

constexpr std::array k_cancel_fields{
    field<&CancelRequest::request_id>("request_id", optional),
    field<&CancelRequest::token>("token", optional),
    field<&CancelRequest::dispatch_id>("dispatch_id", required),
    field<&CancelRequest::reason>("reason", optional),
    field<&CancelRequest::requested_by>("requested_by", optional),
};
bool read(const Obj& o, CancelRequest& v, Fault& f) { return read_struct<k_cancel_fields>(o, v, f); }

constexpr std::array k_stop_fields{
    field<&StopRequest::request_id>("request_id", optional),
    field<&StopRequest::token>("token", optional),
    field<&StopRequest::site>("site", optional),
    field<&StopRequest::reason>("reason", optional),
    field<&StopRequest::requested_by>("requested_by", optional),
};
bool read(const Obj& o, StopRequest& v, Fault& f) { return read_struct<k_stop_fields>(o, v, f); }

constexpr std::array k_stop_result_fields{
    field<&StopResult::request_id>("request_id", optional),
    field<&StopResult::assets>("assets", required),
    field<&StopResult::cancelled>("cancelled", required),
};
bool read(const Obj& o, StopResult& v, Fault& f) { return read_struct<k_stop_result_fields>(o, v, f); }

constexpr std::array k_dispatch_result_fields{
    field<&DispatchResult::request_id>("request_id", optional),
    field<&DispatchResult::dispatch_id>("dispatch_id", optional),
    field<&DispatchResult::state>("state", optional),
    field<&DispatchResult::error>("error", optional),
    field<&DispatchResult::final>("final", required),
};
bool read(const Obj& o, DispatchResult& v, Fault& f) {
    return read_struct<k_dispatch_result_fields>(o, v, f);
}

constexpr std::array k_history_request_fields{
    field<&HistoryRequest::request_id>("request_id", optional),
    field<&HistoryRequest::token>("token", optional),
    field<&HistoryRequest::kind>("kind", required),
    field<&HistoryRequest::asset>("asset", optional),
    field<&HistoryRequest::since>("since", optional),
    field<&HistoryRequest::until>("until", optional),
    field<&HistoryRequest::every_s>("every", optional),
    field<&HistoryRequest::limit>("limit", optional),
};
bool read(const Obj& o, HistoryRequest& v, Fault& f) {
    return read_struct<k_history_request_fields>(o, v, f);
}

constexpr std::array k_bucket_fields{
    field<&TelemetryBucket::asset_id>("asset_id", required),
    field<&TelemetryBucket::ts>("ts", required),
    field<&TelemetryBucket::count>("count", required),
    field<&TelemetryBucket::soc_pct_avg>("soc_pct_avg", required),
    field<&TelemetryBucket::soc_pct_min>("soc_pct_min", required),
    field<&TelemetryBucket::soc_pct_max>("soc_pct_max", required),
    field<&TelemetryBucket::current_mw_avg>("current_mw_avg", required),
    field<&TelemetryBucket::current_mw_min>("current_mw_min", required),
    field<&TelemetryBucket::current_mw_max>("current_mw_max", required),
};
bool read(const Obj& o, TelemetryBucket& v, Fault& f) { return read_struct<k_bucket_fields>(o, v, f); }

/// `rows` depends on `kind`, which may come after it: both are found in the
/// pass, then `rows` is decoded.
bool read(const Obj& o, HistoryRows& v, Fault& f) {
    if (o.type != mt::MAP) {
        return bad(f, "must be a map");
    }
    const Obj* kind = nullptr;
    const Obj* rows = nullptr;
    for (std::uint32_t i = 0; i < o.via.map.size; ++i) {
        const auto& kv = o.via.map.ptr[i];
        if (kv.key.type != mt::STR) {
            continue;
        }
        const auto key = as_view(kv.key);
        if (key == "request_id") {
            if (!read(kv.val, v.request_id, f)) {
                prepend(f, key);
                return false;
            }
        } else if (key == "kind") {
            kind = &kv.val;
        } else if (key == "rows") {
            rows = &kv.val;
        }
    }
    if (kind == nullptr || rows == nullptr) {
        f.field = kind == nullptr ? "kind" : "rows";
        f.what = {};
        return false;
    }
    if (kind->type != mt::STR) {
        bad(f, "must be a string");
        f.field = "kind";
        return false;
    }
    const auto name = as_view(*kind);
    bool ok = false;
    if (name == "telemetry") {
        ok = read(*rows, v.rows.emplace<std::vector<Telemetry>>(), f);
    } else if (name == "dispatch") {
        ok = read(*rows, v.rows.emplace<std::vector<Dispatch>>(), f);
    } else if (name == "heartbeat") {
        ok = read(*rows, v.rows.emplace<std::vector<Heartbeat>>(), f);
    } else if (name == "buckets") {
        ok = read(*rows, v.rows.emplace<std::vector<TelemetryBucket>>(), f);
    } else {
        bad(f, "has an unknown value");
        f.detail.assign(name.substr(0, 32));
        f.field = "kind";
        return false;
    }
    if (!ok) {
        prepend(f, "rows");
    }
    return ok;
}

constexpr std::array k_history_end_fields{
    field<&HistoryEnd::request_id>("request_id", optional),
    field<&HistoryEnd::count>("count", required),
};
bool read(const Obj& o, HistoryEnd& v, Fault& f) { return read_struct<k_history_end_fields>(o, v, f); }

constexpr std::array k_query_fields{
    field<&QueryRequest::request_id>("request_id", optional),
    field<&QueryRequest::token>("token", optional),
    field<&QueryRequest::assets>("assets", optional),
    field<&QueryRequest::sites>("sites", optional),
};
bool read(const Obj& o, QueryRequest& v, Fault& f) { return read_struct<k_query_fields>(o, v, f); }

constexpr std::array k_agent_info_fields{
    field<&AgentInfo::asset_id>("asset_id", required),
    field<&AgentInfo::instance_id>("instance_id", required),
    field<&AgentInfo::online>("online", required),
    field<&AgentInfo::agent_version>("agent_version", optional),
    field<&AgentInfo::connected_at>("connected_at", required),
    field<&AgentInfo::last_seen>("last_seen", required),
    field<&AgentInfo::buffered>("buffered", required),
};
bool read(const Obj& o, AgentInfo& v, Fault& f) { return read_struct<k_agent_info_fields>(o, v, f); }

constexpr std::array k_assets_reply_fields{
    field<&AssetsReply::request_id>("request_id", optional),
    field<&AssetsReply::assets>("assets", required),
};
bool read(const Obj& o, AssetsReply& v, Fault& f) { return read_struct<k_assets_reply_fields>(o, v, f); }

constexpr std::array k_agents_reply_fields{
    field<&AgentsReply::request_id>("request_id", optional),
    field<&AgentsReply::agents>("agents", required),
};
bool read(const Obj& o, AgentsReply& v, Fault& f) { return read_struct<k_agents_reply_fields>(o, v, f); }

constexpr std::array k_latest_reply_fields{
    field<&LatestReply::request_id>("request_id", optional),
    field<&LatestReply::telemetry>("telemetry", required),
};
bool read(const Obj& o, LatestReply& v, Fault& f) { return read_struct<k_latest_reply_fields>(o, v, f); }

constexpr std::array k_error_fields{
    field<&ErrorReply::request_id>("request_id", optional),
    field<&ErrorReply::code>("code", required),
    field<&ErrorReply::message>("message", required),
};
bool read(const Obj& o, ErrorReply& v, Fault& f) { return read_struct<k_error_fields>(o, v, f); }

constexpr std::array k_agent_event_fields{
    field<&AgentEvent::asset_id>("asset_id", required),
    field<&AgentEvent::event>("event", required),
    field<&AgentEvent::ts>("ts", required),
    field<&AgentEvent::heartbeat>("heartbeat", optional),
};
bool read(const Obj& o, AgentEvent& v, Fault& f) { return read_struct<k_agent_event_fields>(o, v, f); }

// --- decoding: the body ------------------------------------------------------

/// Strings and bins point into the body instead of being copied: the object
/// lives only while the body is being decoded.
bool reference_all(mt::object_type, std::size_t, void*) { return true; }

constexpr std::size_t k_max_str = std::size_t{1} << 20;
constexpr std::size_t k_max_elements = 1'000'000;
constexpr std::size_t k_max_depth = 16;

/// Limits no larger than what the body could hold (an element takes at least
/// one byte, a map pair two), so a length prefix cannot reserve more than the
/// body's size in objects.
msgpack::unpack_limit limits_for(std::size_t body_size) {
    const std::size_t elements = std::min(k_max_elements, body_size);
    const std::size_t bytes = std::min(k_max_str, body_size);
    return msgpack::unpack_limit(elements, elements / 2, bytes, bytes, bytes, k_max_depth);
}

Error fault_error(std::string_view message, const Fault& f) {
    std::string text;
    if (f.field.empty()) {
        text = fmt::format("{}: body {}", message, f.what);
    } else if (f.what.empty()) {
        text = fmt::format("{}: missing field '{}'", message, f.field);
    } else {
        text = fmt::format("{}: field '{}' {}", message, f.field, f.what);
    }
    if (!f.detail.empty()) {
        fmt::format_to(std::back_inserter(text), " '{}'", f.detail);
    }
    return Error{Errc::decode, std::move(text)};
}

/// Unpack `body` (one msgpack object, nothing after it) and hand it to `use`.
template <class Use>
std::optional<Error> with_object(std::string_view message, std::string_view body, Use&& use) {
    std::string_view problem;
    try {
        std::size_t offset = 0;
        msgpack::object_handle handle;
        msgpack::unpack(handle, body.data(), body.size(), offset, reference_all, nullptr,
                        limits_for(body.size()));
        if (offset != body.size()) {
            return Error{Errc::decode, fmt::format("{}: {} trailing bytes after the body", message,
                                                   body.size() - offset)};
        }
        return use(handle.get());
    } catch (const msgpack::insufficient_bytes&) {
        problem = "truncated body";
    } catch (const msgpack::size_overflow&) {  // incl. depth_size_overflow
        problem = "body exceeds the size or nesting limits";
    } catch (const std::bad_alloc&) {
        problem = "body too large";
    } catch (...) {
        problem = "malformed msgpack body";
    }
    return Error{Errc::decode, fmt::format("{}: {}", message, problem)};
}

// --- decoding: the flat fast path ----------------------------------------------
//
// The hot messages (telemetry, heartbeat, tack, ack) are flat maps of scalars.
// They are read straight from the bytes, without building a msgpack::object
// tree: each value is turned into a stack msgpack::object (scalars only, the
// way msgpack::unpack would make it) and handed to the same field reader as
// above. The fast path only ever says "decoded" or "not sure": anything it
// does not handle (a nested value, an unknown or non-string key, a missing
// field, a value its reader refuses, a limit, a short or long body) sends
// the body to the tree decoder, which accepts or rejects it with its own
// error. So what is accepted, and every error, is the tree decoder's.

/// Reads one msgpack scalar at `p` into `o`; false for anything else (maps,
/// arrays, ext, never-used bytes) or a value running past `end`.
class FlatReader {
public:
    explicit FlatReader(std::string_view body) noexcept
        : m_p(reinterpret_cast<const unsigned char*>(body.data())), m_end(m_p + body.size()),
          m_max_bytes(std::min(k_max_str, body.size())),
          m_max_map(std::min(k_max_elements, body.size()) / 2) {}

    [[nodiscard]] bool at_end() const noexcept { return m_p == m_end; }

    bool map_header(std::uint32_t& n) noexcept {
        if (m_p == m_end) return false;
        const unsigned char c = *m_p++;
        if ((c & 0xf0) == 0x80) {
            n = c & 0x0f;
            return true;
        }
        if (c == 0xde) return big<std::uint16_t>(n);
        if (c == 0xdf) return big<std::uint32_t>(n);
        return false;
    }

    bool scalar(Obj& o) noexcept {
        if (m_p == m_end) return false;
        const unsigned char c = *m_p++;
        if (c <= 0x7f) return positive(o, c);
        if (c >= 0xe0) return negative(o, static_cast<std::int8_t>(c));
        if ((c & 0xe0) == 0xa0) return raw(o, mt::STR, c & 0x1f);
        std::uint32_t n = 0;
        switch (c) {
        case 0xc0: o.type = mt::NIL; return true;
        case 0xc2: o.type = mt::BOOLEAN; o.via.boolean = false; return true;
        case 0xc3: o.type = mt::BOOLEAN; o.via.boolean = true; return true;
        case 0xc4: return big<std::uint8_t>(n) && raw(o, mt::BIN, n);
        case 0xc5: return big<std::uint16_t>(n) && raw(o, mt::BIN, n);
        case 0xc6: return big<std::uint32_t>(n) && raw(o, mt::BIN, n);
        case 0xca: {
            std::uint32_t bits = 0;
            if (!big<std::uint32_t>(bits)) return false;
            o.type = mt::FLOAT32;
            o.via.f64 = static_cast<double>(std::bit_cast<float>(bits));
            return true;
        }
        case 0xcb: {
            std::uint64_t bits = 0;
            if (!big<std::uint64_t>(bits)) return false;
            o.type = mt::FLOAT64;
            o.via.f64 = std::bit_cast<double>(bits);
            return true;
        }
        case 0xcc: return unsigned_int<std::uint8_t>(o);
        case 0xcd: return unsigned_int<std::uint16_t>(o);
        case 0xce: return unsigned_int<std::uint32_t>(o);
        case 0xcf: return unsigned_int<std::uint64_t>(o);
        case 0xd0: return signed_int<std::uint8_t, std::int8_t>(o);
        case 0xd1: return signed_int<std::uint16_t, std::int16_t>(o);
        case 0xd2: return signed_int<std::uint32_t, std::int32_t>(o);
        case 0xd3: return signed_int<std::uint64_t, std::int64_t>(o);
        case 0xd9: return big<std::uint8_t>(n) && raw(o, mt::STR, n);
        case 0xda: return big<std::uint16_t>(n) && raw(o, mt::STR, n);
        case 0xdb: return big<std::uint32_t>(n) && raw(o, mt::STR, n);
        default: return false;  // arrays, maps, ext, 0xc1
        }
    }

    /// The largest map msgpack::unpack takes from a body this size (limits_for).
    [[nodiscard]] std::size_t max_map() const noexcept { return m_max_map; }

private:
    template <class U, class T>
    bool big(T& out) noexcept {
        if (static_cast<std::size_t>(m_end - m_p) < sizeof(U)) return false;
        U v = 0;
        std::memcpy(&v, m_p, sizeof(U));
        if constexpr (sizeof(U) > 1 && std::endian::native == std::endian::little) v = std::byteswap(v);
        m_p += sizeof(U);
        out = static_cast<T>(v);
        return true;
    }
    bool positive(Obj& o, std::uint64_t v) noexcept {
        o.type = mt::POSITIVE_INTEGER;
        o.via.u64 = v;
        return true;
    }
    bool negative(Obj& o, std::int64_t v) noexcept {
        o.type = mt::NEGATIVE_INTEGER;
        o.via.i64 = v;
        return true;
    }
    template <class U>
    bool unsigned_int(Obj& o) noexcept {
        std::uint64_t v = 0;
        return big<U>(v) && positive(o, v);
    }
    template <class U, class S>
    bool signed_int(Obj& o) noexcept {
        U bits = 0;
        if (!big<U>(bits)) return false;
        const auto v = static_cast<S>(bits);
        return v >= 0 ? positive(o, static_cast<std::uint64_t>(v)) : negative(o, v);
    }
    bool raw(Obj& o, mt::object_type type, std::uint32_t n) noexcept {
        if (n > m_max_bytes || static_cast<std::size_t>(m_end - m_p) < n) return false;
        o.type = type;
        if (type == mt::STR) {
            o.via.str.size = n;
            o.via.str.ptr = reinterpret_cast<const char*>(m_p);
        } else {
            o.via.bin.size = n;
            o.via.bin.ptr = reinterpret_cast<const char*>(m_p);
        }
        m_p += n;
        return true;
    }
    const unsigned char* m_p;
    const unsigned char* m_end;
    std::size_t m_max_bytes;  ///< longest str/bin msgpack::unpack takes from this body (limits_for)
    std::size_t m_max_map;
};

/// Decodes `body` into `out` when it is a flat map the tree decoder would
/// accept; false means "ask the tree decoder" (`out` is then garbage).
template <const auto& spec, class S>
bool read_flat(std::string_view body, S& out) noexcept {
    constexpr std::size_t N = spec.size();
    static constexpr std::uint64_t k_required = required_mask(spec);
    FlatReader in(body);
    const std::size_t max_map = in.max_map();
    std::uint32_t pairs = 0;
    if (!in.map_header(pairs) || pairs > max_map) return false;
    std::uint64_t seen = 0;
    std::size_t hint = 0;
    Obj key;
    Obj value;
    Fault f;
    for (std::uint32_t n = 0; n < pairs; ++n) {
        if (!in.scalar(key) || key.type != mt::STR) return false;
        const std::size_t i = find_field(spec, as_view(key), hint);
        if (i == N || !in.scalar(value)) return false;
        bool ok = false;
        try {
            ok = spec[i].read(value, out, f);
        } catch (...) {  // a std::string that cannot grow: the tree decoder says so
            return false;
        }
        if (!ok) return false;
        seen |= std::uint64_t{1} << i;
        hint = i + 1;
    }
    return in.at_end() && (k_required & ~seen) == 0;
}

/// The flat reader of the message kinds it knows (the hot ones); false for
/// the others, which go to the tree decoder.
template <class T>
bool read_flat_known(std::string_view body, T& v) noexcept {
    if constexpr (std::is_same_v<T, Telemetry>) return read_flat<k_telemetry_fields>(body, v);
    else if constexpr (std::is_same_v<T, Heartbeat>) return read_flat<k_heartbeat_fields>(body, v);
    else if constexpr (std::is_same_v<T, Tack>) return read_flat<k_tack_fields>(body, v);
    else if constexpr (std::is_same_v<T, Ack>) return read_flat<k_ack_fields>(body, v);
    else return false;
}

/// Off: every body goes through the tree decoder (decode_agent_reference).
thread_local bool t_flat_enabled = true;

template <class T>
Result<T> decode_as(std::string_view message, std::string_view body) {
    T value{};
    if (t_flat_enabled && read_flat_known(body, value)) {
        return value;
    }
    value = T{};
    auto error = with_object(message, body, [&](const Obj& o) -> std::optional<Error> {
        Fault f;
        if (!read(o, value, f)) {
            return fault_error(message, f);
        }
        return std::nullopt;
    });
    if (error) {
        return std::unexpected(std::move(*error));
    }
    return value;
}

template <class Variant, class T>
Result<Variant> decode_into(std::string_view message, std::string_view body) {
    auto r = decode_as<T>(message, body);
    if (!r) {
        return std::unexpected(std::move(r.error()));
    }
    return Variant{std::in_place_type<T>, std::move(*r)};
}

/// A type frame for an error message: printable ASCII, at most 32 characters.
std::string printable(std::string_view text) {
    std::string out;
    for (const char c : text.substr(0, 32)) {
        const auto u = static_cast<unsigned char>(c);
        if (u >= 0x20 && u < 0x7f) {
            out.push_back(c);
        } else {
            fmt::format_to(std::back_inserter(out), "\\x{:02x}", u);
        }
    }
    if (text.size() > 32) {
        out += "...";
    }
    return out;
}

}  // namespace

// --- public API -----------------------------------------------------------------

std::string_view type_name(const AgentMessage& message) noexcept {
    return std::visit(Overloaded{
                          [](const Register&) -> std::string_view { return "register"; },
                          [](const Welcome&) -> std::string_view { return "welcome"; },
                          [](const Reject&) -> std::string_view { return "reject"; },
                          [](const Telemetry&) -> std::string_view { return "telemetry"; },
                          [](const Heartbeat&) -> std::string_view { return "heartbeat"; },
                          [](const Tack&) -> std::string_view { return "tack"; },
                          [](const Setpoint&) -> std::string_view { return "setpoint"; },
                          [](const Ack&) -> std::string_view { return "ack"; },
                          [](const Reregister&) -> std::string_view { return "reregister"; },
                      },
                      message);
}

std::string_view type_name(const ControlMessage& message) noexcept {
    return std::visit(
        Overloaded{
            [](const DispatchRequest&) -> std::string_view { return "dispatch"; },
            [](const DispatchResult&) -> std::string_view { return "dispatch.result"; },
            [](const HistoryRequest&) -> std::string_view { return "history"; },
            [](const HistoryRows&) -> std::string_view { return "history.rows"; },
            [](const HistoryEnd&) -> std::string_view { return "history.end"; },
            [](const QueryRequest& q) -> std::string_view { return to_string(q.kind); },
            [](const AssetsReply&) -> std::string_view { return "assets.reply"; },
            [](const AgentsReply&) -> std::string_view { return "agents.reply"; },
            [](const LatestReply&) -> std::string_view { return "latest.reply"; },
            [](const ErrorReply&) -> std::string_view { return "error"; },
            [](const CancelRequest&) -> std::string_view { return "cancel"; },
            [](const StopRequest&) -> std::string_view { return "stop"; },
            [](const StopResult&) -> std::string_view { return "stop.result"; },
        },
        message);
}

void encode_body(const AgentMessage& message, std::string& out) {
    Writer w(out);
    std::visit([&](const auto& m) { write(w, m); }, message);
}

Frame encode(const AgentMessage& message) {
    Frame frame{std::string(type_name(message)), {}};
    encode_body(message, frame.body);
    return frame;
}

Frame encode(const ControlMessage& message) {
    Frame frame{std::string(type_name(message)), {}};
    Writer w(frame.body);
    std::visit([&](const auto& m) { write(w, m); }, message);
    return frame;
}

namespace detail {
Result<AgentMessage> decode_agent_reference(std::string_view type, std::string_view body) {
    t_flat_enabled = false;
    auto r = decode_agent(type, body);
    t_flat_enabled = true;
    return r;
}
}  // namespace detail

Result<AgentMessage> decode_agent(std::string_view type, std::string_view body) {
    using M = AgentMessage;
    // Ordered by traffic.
    if (type == "telemetry") return decode_into<M, Telemetry>(type, body);
    if (type == "tack") return decode_into<M, Tack>(type, body);
    if (type == "heartbeat") return decode_into<M, Heartbeat>(type, body);
    if (type == "ack") return decode_into<M, Ack>(type, body);
    if (type == "setpoint") return decode_into<M, Setpoint>(type, body);
    if (type == "register") return decode_into<M, Register>(type, body);
    if (type == "welcome") return decode_into<M, Welcome>(type, body);
    if (type == "reject") return decode_into<M, Reject>(type, body);
    if (type == "reregister") {
        if (body.empty()) {
            return M{Reregister{}};
        }
        return decode_into<M, Reregister>(type, body);
    }
    return fail(Errc::decode, fmt::format("unknown message type '{}'", printable(type)));
}

Result<ControlMessage> decode_control(std::string_view type, std::string_view body) {
    using M = ControlMessage;
    if (type == "dispatch") return decode_into<M, DispatchRequest>(type, body);
    if (type == "dispatch.result") return decode_into<M, DispatchResult>(type, body);
    if (type == "history") return decode_into<M, HistoryRequest>(type, body);
    if (type == "history.rows") return decode_into<M, HistoryRows>(type, body);
    if (type == "history.end") return decode_into<M, HistoryEnd>(type, body);
    for (const auto kind : {QueryKind::assets, QueryKind::agents, QueryKind::latest}) {
        if (type == to_string(kind)) {
            auto r = decode_as<QueryRequest>(type, body);
            if (!r) {
                return std::unexpected(std::move(r.error()));
            }
            r->kind = kind;
            return M{std::move(*r)};
        }
    }
    if (type == "assets.reply") return decode_into<M, AssetsReply>(type, body);
    if (type == "agents.reply") return decode_into<M, AgentsReply>(type, body);
    if (type == "latest.reply") return decode_into<M, LatestReply>(type, body);
    if (type == "error") return decode_into<M, ErrorReply>(type, body);
    if (type == "cancel") return decode_into<M, CancelRequest>(type, body);
    if (type == "stop") return decode_into<M, StopRequest>(type, body);
    if (type == "stop.result") return decode_into<M, StopResult>(type, body);
    return fail(Errc::decode, fmt::format("unknown message type '{}'", printable(type)));
}

std::string encode_telemetry(const Telemetry& t) {
    std::string out;
    Writer w(out);
    write(w, t);
    return out;
}

std::string encode_dispatch(const Dispatch& d) {
    std::string out;
    Writer w(out);
    write(w, d);
    return out;
}

std::string encode_agent_event(const AgentEvent& e) {
    std::string out;
    Writer w(out);
    write(w, e);
    return out;
}

Result<Telemetry> decode_telemetry(std::string_view body) {
    return decode_as<Telemetry>("telemetry", body);
}

Result<Dispatch> decode_dispatch(std::string_view body) { return decode_as<Dispatch>("dispatch", body); }

Result<AgentEvent> decode_agent_event(std::string_view body) {
    return decode_as<AgentEvent>("agent event", body);
}

}  // namespace der::wire
