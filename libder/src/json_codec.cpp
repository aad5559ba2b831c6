// Implementation details: the JSON form of the data model (REST API, CLIs).
//
// Keys are the struct member names (snake_case), as on the wire. Instants are
// RFC 3339 UTC strings with milliseconds (format_rfc3339); UUIDs canonical
// lowercase strings; enums their lowercase names; unset optionals `null`.
// Dispatch carries its per-state timestamps as "states": {state: time, ...}
// holding only the states entered. HistoryRequest.every_s is "every", as on
// the wire. A message is {"type": <type frame>, "body": {...}}; a request's
// `token` is never printed, only "<redacted>" when one is present.
//
// Parsing back (*_from_json) is total: nothing throws out of it. Numbers are
// checked with is_number*(), times parsed with parse_rfc3339 (an integer is
// also taken, as Unix milliseconds), UUIDs with Uuid::parse. A missing key
// and `null` are the same for optionals; the required sets are those of the
// msgpack codec (wire_codec.cpp).

#include "der/json_codec.hpp"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

namespace der {

using nlohmann::json;

namespace {

json time_json(TimestampMs ms) { return format_rfc3339(ms); }

template <class T, class F>
json opt_json(const std::optional<T>& v, F&& to) {
    return v ? json(to(*v)) : json(nullptr);
}

json opt_time(const std::optional<TimestampMs>& v) { return opt_json(v, time_json); }

json opt_uuid(const std::optional<Uuid>& v) {
    return opt_json(v, [](const Uuid& id) { return id.to_string(); });
}

json opt_double(const std::optional<double>& v) {
    return opt_json(v, [](double d) { return d; });
}

// --- parsing ------------------------------------------------------------------

enum class Need { required, optional };

/// Reads the fields of one JSON object, keeping the first error.
class ObjectReader {
public:
    ObjectReader(const json& j, std::string_view type) : m_json(j), m_type(type) {
        if (!j.is_object()) {
            m_error = Error{Errc::decode, fmt::format("{}: must be a JSON object", type)};
        }
    }

    template <class T>
    ObjectReader& field(const char* key, T& out, Need need = Need::required) {
        if (m_error) {
            return *this;
        }
        const auto it = m_json.find(key);
        if (it == m_json.end() || (it->is_null() && need == Need::optional)) {
            if (need == Need::required) {
                m_error = Error{Errc::decode, fmt::format("{}: missing field '{}'", m_type, key)};
            }
            return *this;
        }
        if (const auto problem = read(*it, out)) {
            m_error = Error{Errc::decode, fmt::format("{}: field '{}' {}", m_type, key, *problem)};
        }
        return *this;
    }

    template <class T>
    ObjectReader& field(const char* key, std::optional<T>& out) {
        if (m_error) {
            return *this;
        }
        const auto it = m_json.find(key);
        if (it == m_json.end() || it->is_null()) {
            out.reset();
            return *this;
        }
        T value{};
        if (const auto problem = read(*it, value)) {
            m_error = Error{Errc::decode, fmt::format("{}: field '{}' {}", m_type, key, *problem)};
            return *this;
        }
        out = std::move(value);
        return *this;
    }

    /// Dispatch "states": {state-name: time}.
    ObjectReader& states(const char* key, std::array<std::optional<TimestampMs>, k_dispatch_state_count>& out) {
        if (m_error) {
            return *this;
        }
        const auto it = m_json.find(key);
        if (it == m_json.end() || it->is_null()) {
            return *this;
        }
        if (!it->is_object()) {
            return fault(key, "must be an object");
        }
        for (const auto& [name, at] : it->items()) {
            const auto state = parse_dispatch_state(name);
            if (!state) {
                return fault(key, fmt::format("has an unknown state '{}'", name));
            }
            if (at.is_null()) {
                continue;
            }
            TimestampMs ms = 0;
            if (const auto problem = read(at, ms)) {
                return fault(fmt::format("{}.{}", key, name), *problem);
            }
            out[static_cast<std::size_t>(*state)] = ms;
        }
        return *this;
    }

    [[nodiscard]] const std::optional<Error>& error() const { return m_error; }

private:
    using Problem = std::optional<std::string>;

    ObjectReader& fault(std::string_view key, std::string_view what) {
        m_error = Error{Errc::decode, fmt::format("{}: field '{}' {}", m_type, key, what)};
        return *this;
    }

    static Problem read(const json& v, double& out) {
        if (!v.is_number()) return "must be a number";
        out = v.get<double>();
        return std::nullopt;
    }
    static Problem read(const json& v, std::uint64_t& out) {
        if (!v.is_number_unsigned()) return "must be a non-negative integer";
        out = v.get<std::uint64_t>();
        return std::nullopt;
    }
    /// Instants: RFC 3339, or an integer of Unix milliseconds.
    static Problem read(const json& v, TimestampMs& out) {
        if (v.is_number_integer()) {
            if (v.is_number_unsigned() &&
                v.get<std::uint64_t>() > static_cast<std::uint64_t>(INT64_MAX)) {
                return "is out of range";
            }
            out = v.get<std::int64_t>();
            return std::nullopt;
        }
        if (!v.is_string()) return "must be an RFC 3339 time";
        auto parsed = parse_rfc3339(v.get_ref<const std::string&>());
        if (!parsed) return fmt::format("must be an RFC 3339 time ({})", parsed.error().message);
        out = *parsed;
        return std::nullopt;
    }
    static Problem read(const json& v, std::string& out) {
        if (!v.is_string()) return "must be a string";
        out = v.get_ref<const std::string&>();
        return std::nullopt;
    }
    static Problem read(const json& v, Uuid& out) {
        if (!v.is_string()) return "must be a UUID string";
        auto parsed = Uuid::parse(v.get_ref<const std::string&>());
        if (!parsed) return "must be a UUID string";
        out = *parsed;
        return std::nullopt;
    }
    static Problem read(const json& v, AssetStatus& out) {
        if (!v.is_string()) return "must be a string";
        auto parsed = parse_asset_status(v.get_ref<const std::string&>());
        if (!parsed) return fmt::format("has an unknown value '{}'", v.get_ref<const std::string&>());
        out = *parsed;
        return std::nullopt;
    }
    static Problem read(const json& v, DispatchState& out) {
        if (!v.is_string()) return "must be a string";
        auto parsed = parse_dispatch_state(v.get_ref<const std::string&>());
        if (!parsed) return fmt::format("has an unknown value '{}'", v.get_ref<const std::string&>());
        out = *parsed;
        return std::nullopt;
    }

    const json& m_json;
    std::string_view m_type;
    std::optional<Error> m_error;
};

template <class T>
Result<T> finish(const ObjectReader& reader, T&& value) {
    if (reader.error()) {
        return std::unexpected(*reader.error());
    }
    return std::forward<T>(value);
}

/// nlohmann throws only on misuse (e.g. get<> on the wrong type, which the
/// readers check first); this is the belt to that pair of braces.
template <class F>
auto total(std::string_view type, F&& parse) -> decltype(parse()) {
    try {
        return parse();
    } catch (const std::exception& e) {
        return fail(Errc::decode, fmt::format("{}: {}", type, e.what()));
    }
}

}  // namespace

void to_json(json& j, const Uuid& id) { j = id.to_string(); }

void to_json(json& j, const BessLimits& l) {
    j = json{{"capacity_mwh", l.capacity_mwh}, {"max_mw", l.max_mw},
             {"min_mw", l.min_mw},             {"ramp_mw_per_s", l.ramp_mw_per_s},
             {"efficiency", l.efficiency},     {"soc_min_pct", l.soc_min_pct},
             {"soc_max_pct", l.soc_max_pct}};
}

void to_json(json& j, const AdapterConfig& a) {
    j = json{{"kind", a.kind}, {"options", a.options}};
}

void to_json(json& j, const Asset& a) {
    j = json{{"id", a.id},
             {"name", a.name},
             {"site_id", a.site_id},
             {"site_name", a.site_name},
             {"kind", a.kind},
             {"limits", a.limits},
             {"initial_soc_pct", a.initial_soc_pct},
             {"adapter", a.adapter},
             {"agent_public_key", a.agent_public_key},
             {"available", a.available}};
}

void to_json(json& j, const Site& s) {
    j = json{{"id", s.id}, {"name", s.name}, {"timezone", s.timezone}, {"assets", s.assets}};
}

void to_json(json& j, const Telemetry& t) {
    j = json{{"asset_id", t.asset_id},
             {"site_id", t.site_id},
             {"epoch", t.epoch},
             {"seq", t.seq},
             {"ts", time_json(t.ts)},
             {"soc_mwh", t.soc_mwh},
             {"soc_pct", t.soc_pct},
             {"capacity_mwh", t.capacity_mwh},
             {"current_mw", t.current_mw},
             {"setpoint_mw", t.setpoint_mw},
             {"max_mw", t.max_mw},
             {"min_mw", t.min_mw},
             {"status", to_string(t.status)},
             {"dispatch_id", opt_uuid(t.dispatch_id)}};
}

void to_json(json& j, const Heartbeat& h) {
    j = json{{"asset_id", h.asset_id},
             {"ts", time_json(h.ts)},
             {"uptime_s", h.uptime_s},
             {"buffered", h.buffered},
             {"agent_version", h.agent_version}};
}

void to_json(json& j, const Dispatch& d) {
    json states = json::object();
    for (std::size_t i = 0; i < d.state_at.size(); ++i) {
        if (d.state_at[i]) {
            states[std::string(to_string(static_cast<DispatchState>(i)))] = time_json(*d.state_at[i]);
        }
    }
    j = json{{"dispatch_id", d.dispatch_id},
             {"asset_id", d.asset_id},
             {"mw", d.mw},
             {"duration_s", opt_double(d.duration_s)},
             {"reason", d.reason},
             {"requested_by", d.requested_by},
             {"created_at", time_json(d.created_at)},
             {"start_at", opt_time(d.start_at)},
             {"parent_id", opt_uuid(d.parent_id)},
             {"state", to_string(d.state)},
             {"states", std::move(states)},
             {"error", d.error}};
}

void to_json(json& j, const Setpoint& s) {
    j = json{{"dispatch_id", s.dispatch_id},
             {"mw", s.mw},
             {"remaining_s", opt_double(s.remaining_s)},
             {"issued_at", time_json(s.issued_at)}};
}

Result<Telemetry> telemetry_from_json(const json& j) {
    return total("telemetry", [&]() -> Result<Telemetry> {
        Telemetry t;
        ObjectReader r(j, "telemetry");
        r.field("asset_id", t.asset_id)
            .field("site_id", t.site_id)
            .field("epoch", t.epoch)
            .field("seq", t.seq)
            .field("ts", t.ts)
            .field("soc_mwh", t.soc_mwh)
            .field("soc_pct", t.soc_pct)
            .field("capacity_mwh", t.capacity_mwh)
            .field("current_mw", t.current_mw)
            .field("setpoint_mw", t.setpoint_mw)
            .field("max_mw", t.max_mw)
            .field("min_mw", t.min_mw)
            .field("status", t.status)
            .field("dispatch_id", t.dispatch_id);
        return finish(r, std::move(t));
    });
}

Result<Heartbeat> heartbeat_from_json(const json& j) {
    return total("heartbeat", [&]() -> Result<Heartbeat> {
        Heartbeat h;
        ObjectReader r(j, "heartbeat");
        r.field("asset_id", h.asset_id)
            .field("ts", h.ts)
            .field("uptime_s", h.uptime_s)
            .field("buffered", h.buffered)
            .field("agent_version", h.agent_version, Need::optional);
        return finish(r, std::move(h));
    });
}

Result<Dispatch> dispatch_from_json(const json& j) {
    return total("dispatch", [&]() -> Result<Dispatch> {
        Dispatch d;
        ObjectReader r(j, "dispatch");
        r.field("dispatch_id", d.dispatch_id)
            .field("asset_id", d.asset_id)
            .field("mw", d.mw)
            .field("duration_s", d.duration_s)
            .field("reason", d.reason, Need::optional)
            .field("requested_by", d.requested_by, Need::optional)
            .field("created_at", d.created_at)
            .field("start_at", d.start_at)
            .field("parent_id", d.parent_id)
            .field("state", d.state)
            .states("states", d.state_at)
            .field("error", d.error, Need::optional);
        return finish(r, std::move(d));
    });
}

namespace wire {

namespace {

json redacted(const std::string& token) {
    return token.empty() ? json(nullptr) : json("<redacted>");
}

json string_list(const std::vector<std::string>& items) { return items; }

// Bodies of the messages that have no public to_json.
void body(json& j, const Register& m) {
    j = json{{"asset_id", m.asset_id},
             {"proto", m.proto},
             {"agent_version", m.agent_version},
             {"instance_id", m.instance_id},
             {"epoch", m.epoch},
             {"last_seq", m.last_seq},
             {"state", opt_json(m.state, [](const AgentState& s) { return json(s); })},
             {"limits", opt_json(m.limits, [](const BessLimits& l) { return json(l); })}};
}

void body(json& j, const Welcome& m) {
    j = json{{"asset", m.asset},
             {"seed", opt_json(m.seed, [](const AgentState& s) { return json(s); })},
             {"telemetry_s", m.telemetry_s},
             {"heartbeat_s", m.heartbeat_s},
             {"ack_seq", opt_json(m.ack_seq, [](std::uint64_t v) { return json(v); })},
             {"dispatch", opt_json(m.dispatch, [](const Setpoint& s) { return json(s); })}};
}

void body(json& j, const Reject& m) { j = json{{"code", m.code}, {"reason", m.reason}}; }

void body(json& j, const Tack& m) { j = json{{"epoch", m.epoch}, {"seq", m.seq}}; }

void body(json& j, const Ack& m) {
    j = json{{"dispatch_id", m.dispatch_id},
             {"status", to_string(m.status)},
             {"reason", m.reason},
             {"ts", time_json(m.ts)}};
}

void body(json& j, const Reregister&) { j = json::object(); }

void body(json& j, const DispatchRequest& m) {
    j = json{{"request_id", m.request_id},
             {"token", redacted(m.token)},
             {"asset", m.asset},
             {"site", m.site},
             {"mw", m.mw},
             {"duration_s", opt_double(m.duration_s)},
             {"start_at", opt_time(m.start_at)},
             {"wait", m.wait},
             {"reason", m.reason},
             {"requested_by", m.requested_by}};
}

void body(json& j, const CancelRequest& m) {
    j = json{{"request_id", m.request_id},
             {"token", redacted(m.token)},
             {"dispatch_id", m.dispatch_id},
             {"reason", m.reason},
             {"requested_by", m.requested_by}};
}

void body(json& j, const StopRequest& m) {
    j = json{{"request_id", m.request_id},
             {"token", redacted(m.token)},
             {"site", m.site},
             {"reason", m.reason},
             {"requested_by", m.requested_by}};
}

void body(json& j, const StopResult& m) {
    j = json{{"request_id", m.request_id}, {"assets", m.assets}, {"cancelled", m.cancelled}};
}

void body(json& j, const HistoryRequest& m) {
    j = json{{"request_id", m.request_id},
             {"token", redacted(m.token)},
             {"kind", to_string(m.kind)},
             {"asset", m.asset},
             {"since", opt_time(m.since)},
             {"until", opt_time(m.until)},
             {"every", opt_double(m.every_s)},
             {"limit", opt_json(m.limit, [](std::uint64_t v) { return json(v); })}};
}

void body(json& j, const HistoryRows& m) {
    static constexpr std::array<std::string_view, 4> k_kinds{"telemetry", "dispatch", "heartbeat",
                                                             "buckets"};
    j = json{{"request_id", m.request_id},
             {"kind", k_kinds[m.rows.index()]},
             {"rows", std::visit([](const auto& rows) { return json(rows); }, m.rows)}};
}

void body(json& j, const HistoryEnd& m) {
    j = json{{"request_id", m.request_id}, {"count", m.count}};
}

void body(json& j, const QueryRequest& m) {
    j = json{{"request_id", m.request_id},
             {"token", redacted(m.token)},
             {"kind", to_string(m.kind)},
             {"assets", string_list(m.assets)},
             {"sites", string_list(m.sites)}};
}

void body(json& j, const AssetsReply& m) {
    j = json{{"request_id", m.request_id}, {"assets", m.assets}};
}

void body(json& j, const AgentsReply& m) {
    j = json{{"request_id", m.request_id}, {"agents", m.agents}};
}

void body(json& j, const LatestReply& m) {
    j = json{{"request_id", m.request_id}, {"telemetry", m.telemetry}};
}

/// Messages that have a public to_json (Telemetry, Heartbeat, Setpoint, ...).
template <class T>
void body(json& j, const T& m) {
    j = m;
}

template <class Variant>
void message_json(json& j, const Variant& m) {
    json b;
    std::visit([&](const auto& x) { body(b, x); }, m);
    j = json{{"type", type_name(m)}, {"body", std::move(b)}};
}

}  // namespace

void to_json(json& j, const AgentState& s) {
    j = json{{"soc_mwh", s.soc_mwh},
             {"current_mw", s.current_mw},
             {"setpoint_mw", s.setpoint_mw},
             {"dispatch_id", opt_uuid(s.dispatch_id)},
             {"remaining_s", opt_double(s.remaining_s)}};
}

void to_json(json& j, const AgentInfo& a) {
    j = json{{"asset_id", a.asset_id},
             {"instance_id", a.instance_id},
             {"online", a.online},
             {"agent_version", a.agent_version},
             {"connected_at", time_json(a.connected_at)},
             {"last_seen", time_json(a.last_seen)},
             {"buffered", a.buffered}};
}

void to_json(json& j, const TelemetryBucket& b) {
    j = json{{"asset_id", b.asset_id},
             {"ts", time_json(b.ts)},
             {"count", b.count},
             {"soc_pct_avg", b.soc_pct_avg},
             {"soc_pct_min", b.soc_pct_min},
             {"soc_pct_max", b.soc_pct_max},
             {"current_mw_avg", b.current_mw_avg},
             {"current_mw_min", b.current_mw_min},
             {"current_mw_max", b.current_mw_max}};
}

void to_json(json& j, const AgentEvent& e) {
    j = json{{"asset_id", e.asset_id},
             {"event", e.event},
             {"ts", time_json(e.ts)},
             {"heartbeat", opt_json(e.heartbeat, [](const Heartbeat& h) { return json(h); })}};
}

void to_json(json& j, const DispatchResult& r) {
    j = json{{"request_id", r.request_id},
             {"dispatch_id", opt_uuid(r.dispatch_id)},
             {"state", opt_json(r.state, [](DispatchState s) { return to_string(s); })},
             {"error", r.error},
             {"final", r.final}};
}

void to_json(json& j, const ErrorReply& e) {
    j = json{{"request_id", e.request_id}, {"code", e.code}, {"message", e.message}};
}

void to_json(json& j, const AgentMessage& m) { message_json(j, m); }

void to_json(json& j, const ControlMessage& m) { message_json(j, m); }

}  // namespace wire

}  // namespace der
