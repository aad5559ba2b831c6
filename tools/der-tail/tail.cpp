#include "tail.hpp"

#include "cli.hpp"
#include "control_client.hpp"

#include "der/json_codec.hpp"
#include "der/stream.hpp"
#include "der/util/log.hpp"
#include "der/util/time.hpp"
#include "der/wire_codec.hpp"

#include <fmt/core.h>
#include <nlohmann/json.hpp>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <iterator>
#include <map>
#include <set>
#include <unordered_map>

namespace der::tail {

namespace {

using nlohmann::json;

/// Without filters, asset names are nice to have: wait this long at most.
constexpr std::int64_t k_optional_names_timeout_ms = 2000;

/// Columns of table and csv output; events put theirs in the same columns
/// (a dispatch's state under status, its MW under setpoint_mw).
std::vector<cli::Column> columns(Events events) {
    std::vector<cli::Column> out;
    if (events == Events::yes) out.push_back({"type", 9, -1});
    for (auto c : std::vector<cli::Column>{{"ts", 24, -1},
                                           {"asset", 20, -1},
                                           {"status", 11, -1},
                                           {"soc_pct", 7, 1},
                                           {"soc_mwh", 8, 3},
                                           {"current_mw", 10, 3},
                                           {"setpoint_mw", 11, 3},
                                           {"seq", 8, -1},
                                           {"dispatch_id", 36, -1}})
        out.push_back(std::move(c));
    return out;
}

class Tail {
public:
    Tail(const TailSettings& settings, const std::atomic<bool>& stop)
        : m_settings(settings),
          m_stop(stop),
          m_out(cli::RowFormatter(settings.format, columns(settings.events))) {}

    int run(const std::atomic<int>& last_signal) {
        const bool filtered = !m_settings.assets.empty() || !m_settings.sites.empty();
        const bool need_control = filtered || m_settings.snapshot == Snapshot::yes;
        // Names for the "asset" field: required to resolve filters, else best effort.
        cli::ControlClient control(m_settings.control, &m_stop);
        control.set_token(m_settings.token);
        load_assets(control, need_control ? Need::required : Need::optional);
        const auto topics = subscriptions(filtered);

        zmq::context_t ctx;
        zmq::socket_t sub(ctx, zmq::socket_type::sub);
        sub.set(zmq::sockopt::linger, 0);
        sub.set(zmq::sockopt::reconnect_ivl_max, 2000);
        sub.set(zmq::sockopt::subscribe, stream::k_welcome);
        for (const auto& topic : topics) sub.set(zmq::sockopt::subscribe, topic);
        try {
            sub.connect(m_settings.stream);
        } catch (const zmq::error_t& e) {
            throw cli::ExitError(cli::usage, fmt::format("bad stream endpoint '{}': {}", m_settings.stream, e.what()));
        }
        log::debug("stream: connecting to {} ({} topics)", m_settings.stream, topics.size());

        // The snapshot is taken once the hub's `welcome` said our
        // subscriptions are in place, so nothing falls between the two; what
        // came meanwhile is handled after it, and records the snapshot
        // already showed are skipped below.
        if (m_settings.snapshot == Snapshot::yes) {
            std::vector<std::vector<zmq::message_t>> early;
            await_welcome(sub, early);
            if (print_snapshot(control) == Done::yes) return cli::ok;
            for (const auto& frames : early)
                if (handle(frames) == Done::yes) return cli::ok;
        }

        while (true) {
            if (m_stop.load()) return last_signal.load() == SIGINT ? cli::interrupted : cli::ok;
            zmq_pollitem_t item{sub.handle(), 0, ZMQ_POLLIN, 0};
            if (zmq_poll(&item, 1, 100) <= 0) continue;  // timeout or EINTR: look at the flag
            const auto frames = receive(sub);
            if (frames.empty()) continue;
            if (handle(frames) == Done::yes) return cli::ok;
        }
    }

private:
    enum class Done { no, yes };
    enum class Need { required, optional };

    /// One message off the SUB socket; none when nothing is waiting.
    static std::vector<zmq::message_t> receive(zmq::socket_t& sub) {
        std::vector<zmq::message_t> frames;
        (void)zmq::recv_multipart(sub, std::back_inserter(frames), zmq::recv_flags::dontwait);
        return frames;
    }

    /// Waits (at most --timeout) for the hub's `welcome`, keeping what comes
    /// before it in `early`. Without it the snapshot goes ahead, and records
    /// stored before the subscriptions took may be missing from the output.
    void await_welcome(zmq::socket_t& sub, std::vector<std::vector<zmq::message_t>>& early) {
        const auto deadline =
            std::chrono::steady_clock::now() + std::chrono::milliseconds(m_settings.control_timeout_ms);
        while (!m_stop.load() && std::chrono::steady_clock::now() < deadline) {
            zmq_pollitem_t item{sub.handle(), 0, ZMQ_POLLIN, 0};
            if (zmq_poll(&item, 1, 100) <= 0) continue;
            auto frames = receive(sub);
            if (frames.empty()) continue;
            if (frames[0].to_string_view() == stream::k_welcome) {
                (void)handle(frames);
                return;
            }
            early.push_back(std::move(frames));
        }
        if (!m_stop.load())
            log::warn("stream {}: no welcome within {} ms; the snapshot goes ahead, records stored meanwhile may be "
                      "missing",
                      m_settings.stream, m_settings.control_timeout_ms);
    }

    void load_assets(cli::ControlClient& control, Need need) {
        const bool required = need == Need::required;
        const std::int64_t timeout =
            required ? m_settings.control_timeout_ms
                     : std::min(m_settings.control_timeout_ms, k_optional_names_timeout_ms);
        auto assets = cli::query_assets(control, {}, {}, timeout);
        if (!assets) {
            if (required) {
                if (assets.error().code == Errc::refused)
                    throw cli::ExitError(cli::refused, "assets: " + assets.error().message);
                throw cli::ExitError(exit_code(assets.error().code), assets.error().message);
            }
            log::warn("asset names unknown ({}); printing IDs only", assets.error().message);
            return;
        }
        for (auto& a : *assets) {
            m_site_names.emplace(a.site_id, a.site_name);
            m_assets.emplace(a.id, std::move(a));
        }
    }

    /// The selected assets, by --asset and --site (union); every name must exist.
    std::vector<const Asset*> selected() const {
        std::vector<const Asset*> out;
        std::set<Uuid> taken;
        const auto take = [&](const Asset& a) {
            if (taken.insert(a.id).second) out.push_back(&a);
        };
        for (const auto& wanted : m_settings.assets) {
            bool found = false;
            for (const auto& [id, a] : m_assets) {
                if (id.to_string() == wanted || a.qualified_name() == wanted) {
                    take(a);
                    found = true;
                }
            }
            if (!found) throw cli::ExitError(cli::usage, fmt::format("--asset '{}': no such asset on the hub", wanted));
        }
        for (const auto& wanted : m_settings.sites) {
            bool found = false;
            for (const auto& [id, a] : m_assets) {
                if (a.site_id.to_string() == wanted || a.site_name == wanted) {
                    take(a);
                    found = true;
                }
            }
            if (!found) throw cli::ExitError(cli::usage, fmt::format("--site '{}': no such site on the hub", wanted));
        }
        return out;
    }

    std::vector<std::string> subscriptions(bool filtered) {
        std::vector<std::string> topics;
        if (!filtered) {
            topics.emplace_back("telemetry/");
            if (m_settings.events == Events::yes) {
                topics.emplace_back("dispatch/");
                topics.emplace_back("agent/");
            }
            return topics;
        }
        std::set<std::string> unique;
        for (const auto& site : m_settings.sites) {
            for (const auto& [id, a] : m_assets) {
                if (a.site_id.to_string() != site && a.site_name != site) continue;
                unique.insert(fmt::format("telemetry/{}/", a.site_id.to_string()));
                // The site's own dispatches (their parent records; the children are per asset).
                if (m_settings.events == Events::yes) unique.insert("dispatch/" + a.site_id.to_string());
            }
        }
        for (const auto* a : selected()) {
            m_selected.insert(a->id);
            unique.insert(fmt::format("telemetry/{}/{}", a->site_id.to_string(), a->id.to_string()));
            if (m_settings.events == Events::yes) {
                unique.insert("dispatch/" + a->id.to_string());
                unique.insert("agent/" + a->id.to_string());
            }
        }
        // A site prefix covers its assets' telemetry topics: drop the longer ones.
        for (const auto& topic : unique) {
            const bool covered = std::any_of(unique.begin(), unique.end(), [&](const std::string& other) {
                return other != topic && topic.starts_with(other);
            });
            if (!covered) topics.push_back(topic);
        }
        return topics;
    }

    Done print_snapshot(cli::ControlClient& control) {
        wire::QueryRequest query;
        query.request_id = cli::new_request_id();
        query.kind = wire::QueryKind::latest;
        for (const auto& id : m_selected) query.assets.push_back(id.to_string());
        auto reply = control.request(query, m_settings.control_timeout_ms);
        if (!reply) {
            if (m_stop.load()) return Done::no;  // the loop reports the signal
            throw cli::ExitError(reply.error().code == Errc::refused ? cli::refused : exit_code(reply.error().code),
                                 "latest: " + reply.error().message);
        }
        const auto* latest = std::get_if<wire::LatestReply>(&*reply);
        if (latest == nullptr)
            throw cli::ExitError(cli::software, fmt::format("unexpected '{}' reply to latest", wire::type_name(*reply)));
        for (const auto& t : latest->telemetry) {
            if (!m_selected.empty() && !m_selected.contains(t.asset_id)) continue;
            m_snapshot_seq[t.asset_id] = {t.epoch, t.seq};
            if (print(telemetry_row(t), telemetry_view(t)) == Done::yes) return Done::yes;
        }
        return Done::no;
    }

    Done handle(const std::vector<zmq::message_t>& frames) {
        const auto topic = frames[0].to_string_view();
        if (topic == stream::k_welcome) {
            if (!m_subscribed) log::info("subscribed to {}", m_settings.stream);
            else log::debug("stream: re-attached to {}", m_settings.stream);
            m_subscribed = true;
            return Done::no;
        }
        if (frames.size() != 2) return Done::no;
        const auto body = frames[1].to_string_view();
        if (topic.starts_with("telemetry/")) {
            auto t = wire::decode_telemetry(body);
            if (!t) return dropped(topic, t.error());
            if (const auto it = m_snapshot_seq.find(t->asset_id); it != m_snapshot_seq.end()) {
                if (it->second.first == t->epoch && t->seq <= it->second.second) return Done::no;
                m_snapshot_seq.erase(it);
            }
            return print(telemetry_row(*t), telemetry_view(*t));
        }
        if (m_settings.events == Events::no) return Done::no;
        if (topic.starts_with("dispatch/")) {
            auto d = wire::decode_dispatch(body);
            if (!d) return dropped(topic, d.error());
            json row = *d;
            std::string target = display_name(d->asset_id);
            const auto site = m_site_names.find(d->asset_id);
            if (site != m_site_names.end() && !m_assets.contains(d->asset_id)) {
                // A site dispatch (the parent of its assets' dispatches) carries the
                // site's ID in asset_id on the stream; shown as the REST API does.
                row.erase("asset_id");
                row["site_id"] = d->asset_id.to_string();
                row["site"] = site->second;
                row["type"] = "dispatch";
                target = site->second;
            } else {
                add_names(row, "dispatch", d->asset_id);
            }
            json view = {{"type", "dispatch"},
                         {"ts", row["states"].value(std::string(to_string(d->state)), row["created_at"].get<std::string>())},
                         {"asset", target},
                         {"status", to_string(d->state)},
                         {"setpoint_mw", d->mw},
                         {"dispatch_id", d->dispatch_id.to_string()}};
            return print(row, view);
        }
        if (topic.starts_with("agent/")) {
            auto e = wire::decode_agent_event(body);
            if (!e) return dropped(topic, e.error());
            json row = *e;
            add_names(row, "agent", e->asset_id);
            json view = {{"type", "agent"},
                         {"ts", format_rfc3339(e->ts)},
                         {"asset", display_name(e->asset_id)},
                         {"status", e->event}};
            return print(row, view);
        }
        return Done::no;
    }

    Done dropped(std::string_view topic, const Error& error) {
        log::debug("stream: dropped a '{}' message: {}", topic, error.message);
        return Done::no;
    }

    json telemetry_row(const Telemetry& t) const {
        json row = t;
        add_names(row, "telemetry", t.asset_id);
        return row;
    }

    json telemetry_view(const Telemetry& t) const {
        return json{{"type", "telemetry"},
                    {"ts", format_rfc3339(t.ts)},
                    {"asset", display_name(t.asset_id)},
                    {"status", to_string(t.status)},
                    {"soc_pct", t.soc_pct},
                    {"soc_mwh", t.soc_mwh},
                    {"current_mw", t.current_mw},
                    {"setpoint_mw", t.setpoint_mw},
                    {"seq", t.seq},
                    {"dispatch_id", t.dispatch_id ? json(t.dispatch_id->to_string()) : json(nullptr)}};
    }

    /// JSON rows: "asset" (site/name) when known; "type" with --events.
    void add_names(json& row, const char* type, const Uuid& asset_id) const {
        if (const auto it = m_assets.find(asset_id); it != m_assets.end()) row["asset"] = it->second.qualified_name();
        if (m_settings.events == Events::yes) row["type"] = type;
    }

    std::string display_name(const Uuid& asset_id) const {
        const auto it = m_assets.find(asset_id);
        return it != m_assets.end() ? it->second.qualified_name() : asset_id.to_string();
    }

    Done print(const json& row, const json& view) {
        const auto written = m_out.write(m_settings.format == cli::Format::json ? row : view);
        if (written == cli::Written::closed) return Done::yes;  // stdout closed: end quietly
        ++m_printed;
        return m_settings.count && m_printed >= *m_settings.count ? Done::yes : Done::no;
    }

    const TailSettings& m_settings;
    const std::atomic<bool>& m_stop;
    cli::RowWriter m_out;
    std::unordered_map<Uuid, Asset> m_assets;
    std::unordered_map<Uuid, std::string> m_site_names;  ///< site ID -> name
    std::set<Uuid> m_selected;  ///< empty = every asset
    std::map<Uuid, std::pair<Uuid, std::uint64_t>> m_snapshot_seq;  ///< asset -> (epoch, seq) shown by the snapshot
    std::uint64_t m_printed = 0;
    bool m_subscribed = false;
};

}  // namespace

int run_tail(const TailSettings& settings, const std::atomic<bool>& stop, const std::atomic<int>& last_signal) {
    if (settings.count && *settings.count == 0) return cli::ok;
    Tail tail(settings, stop);
    return tail.run(last_signal);
}

}  // namespace der::tail
