// The REST API of der-hub.
//
// Implementation details
// - cpp-httplib with the settings real use needs (DESIGN.md "Known costs"):
//   TCP_NODELAY, long keep-alive, a worker pool, a 1 MiB body limit.
// - Every response is JSON; every error is {"error":{"code","message"}}
//   with 400 (bad query or body), 401 (no or wrong API token), 404 (unknown asset or route), 413 (body
//   too large), 503 (starting, or the event loop is not answering).
// - Latest values come from the Snapshot without touching the loop; an
//   asset's latest telemetry is served from bytes encoded once per record
//   (telemetry_json.hpp), not built per request; history
//   is read by a closure posted to the loop, awaited for at most 5 s.
// - `{id}` is a UUID or `site/asset`; `age_s` and `stale` are computed at
//   read time from the hub's own receive time (not the agent's clock).
// - With an API token (--api-token-file) a pre-routing handler answers 401
//   {"error":{"code":"unauthorized"}} with `WWW-Authenticate: Bearer` to
//   every POST/DELETE (and, with --api-token-reads, every GET but /health)
//   without `Authorization: Bearer <token>`; compared in constant time, never logged.
#include "rest_server.hpp"

#include "dispatch_body.hpp"
#include "rest_routes.hpp"
#include "telemetry_json.hpp"
#include "token.hpp"
#include "der/json_codec.hpp"
#include "der/util/log.hpp"
#include "der/version.hpp"

#include <fmt/core.h>
#include <fmt/ranges.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <future>
#include <regex>
#include <stdexcept>
#include <thread>
#include <utility>
#include <vector>

namespace der::hub {

using nlohmann::json;

namespace {

constexpr std::size_t k_default_limit = 1000;
constexpr std::size_t k_max_limit = 100'000;
constexpr std::int64_t k_stalled_ms = 5000;

void send_json(httplib::Response& res, int status, const json& body) {
    res.status = status;
    res.set_content(body.dump(-1, ' ', false, json::error_handler_t::replace) + "\n", "application/json");
}

void send_error(httplib::Response& res, int status, std::string_view code, std::string_view message) {
    send_json(res, status, json{{"error", {{"code", code}, {"message", message}}}});
}

/// A body already encoded (ends with "\n" like send_json's).
void send_encoded(httplib::Response& res, int status, std::string body) {
    res.status = status;
    res.set_content(std::move(body), "application/json");
}

json agent_json(const AssetView& view) {
    json j;
    j["asset_id"] = view.asset.id;
    j["asset"] = view.asset.qualified_name();
    const auto& a = *view.agent;
    j["instance_id"] = a.instance_id;
    j["online"] = a.online;
    j["agent_version"] = a.agent_version;
    j["connected_at"] = format_rfc3339(a.connected_at);
    j["last_seen"] = format_rfc3339(a.last_seen);
    j["buffered"] = a.buffered;
    return j;
}

json asset_json(const AssetView& view) {
    json j = view.asset;
    j["available"] = view.available;  // the configuration's, or false in maintenance
    j["online"] = view.agent.has_value() && view.agent->online;
    return j;
}

/// Parses since/until/limit/cursor of a history query; false after answering 400.
bool parse_history_query(const httplib::Request& req, httplib::Response& res, HistoryQuery& q) {
    const TimestampMs now = now_ms();
    for (const char* key : {"since", "until"}) {
        if (!req.has_param(key)) continue;
        const std::string text = req.get_param_value(key);
        auto t = parse_time(text, now);
        if (!t) {
            // A '+' in a query string is a space: "…T07:00:00+01:00" arrives as "…T07:00:00 01:00".
            const bool plus = text.find(' ') != std::string::npos;
            send_error(res, 400, "bad_request",
                       fmt::format("{}: {}{}", key, t.error().message,
                                   plus ? " (a '+' in a URL query reads as a space: send it as %2B)" : ""));
            return false;
        }
        (std::string_view(key) == "since" ? q.since : q.until) = *t;
    }
    if (req.has_param("limit")) {
        const auto text = req.get_param_value("limit");
        std::size_t limit = 0;
        const auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), limit);
        if (ec != std::errc{} || p != text.data() + text.size() || limit == 0 || limit > k_max_limit) {
            send_error(res, 400, "bad_request",
                       fmt::format("limit: expected an integer from 1 to {}, got '{}'", k_max_limit, text));
            return false;
        }
        q.limit = limit;
    } else {
        q.limit = k_default_limit;
    }
    if (req.has_param("cursor")) q.cursor = req.get_param_value("cursor");
    return true;
}

std::string next_link(const httplib::Request& req, const std::string& cursor) {
    std::string link = req.path + "?";
    for (const auto& [key, value] : req.params) {
        if (key == "cursor") continue;
        link += httplib::detail::encode_query_param(key) + "=" + httplib::detail::encode_query_param(value) + "&";
    }
    return link + "cursor=" + httplib::detail::encode_query_param(cursor);
}

/// The database writer's counters (with --db), Prometheus text.
std::string db_prometheus_text(const store::WriterStats& st) {
    std::string out;
    const auto metric = [&](std::string_view name, std::string_view type, std::string_view help, double value) {
        out += fmt::format("# HELP {} {}\n# TYPE {} {}\n{} {}\n", name, help, name, type, name, value);
    };
    const auto d = [](auto v) { return static_cast<double>(v); };
    metric("der_hub_db_connected", "gauge", "1 when the database writer is connected to PostgreSQL.",
           st.connected ? 1.0 : 0.0);
    metric("der_hub_db_backlog_rows", "gauge", "Telemetry and heartbeat rows queued for PostgreSQL.",
           d(st.backlog_rows));
    metric("der_hub_db_backlog_events", "gauge", "Dispatch, session and fleet records queued for PostgreSQL.",
           d(st.backlog_events));
    metric("der_hub_db_max_backlog_rows", "gauge", "Bound of the row backlog; over it records are refused.",
           d(st.max_backlog_rows));
    metric("der_hub_db_rows_committed_total", "counter", "Records committed to PostgreSQL.", d(st.rows_committed));
    metric("der_hub_db_batches_committed_total", "counter", "Batches committed to PostgreSQL.",
           d(st.batches_committed));
    metric("der_hub_db_dropped_total", "counter",
           "Records refused over the backlog bound or abandoned at stop (telemetry is resent by its agent).",
           d(st.dropped));
    metric("der_hub_db_failed_batches_total", "counter", "Batches refused for a reason other than the connection.",
           d(st.failed_batches));
    metric("der_hub_db_set_aside_total", "counter", "Records set aside into dead_letters.", d(st.set_aside));
    metric("der_hub_db_reconnects_total", "counter", "Connection attempts after a failure.", d(st.reconnects));
    metric("der_hub_db_telemetry_direct_total", "counter",
           "Telemetry records COPYed straight into the telemetry table (known to be new).", d(st.telemetry_direct));
    metric("der_hub_db_direct_fallbacks_total", "counter",
           "Direct COPYs refused (a row stored behind the writer's back) and written through staging instead.",
           d(st.direct_fallbacks));
    return out;
}

template <const auto& Bounds>
void histogram_text(std::string& out, std::string_view name, std::string_view help, const Histogram<Bounds>& h) {
    out += fmt::format("# HELP {} {}\n# TYPE {} histogram\n", name, help, name);
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i < Histogram<Bounds>::k_buckets; ++i) {
        cumulative += h.counts[i];
        out += fmt::format("{}_bucket{{le=\"{}\"}} {}\n", name, Histogram<Bounds>::k_bounds[i], cumulative);
    }
    cumulative += h.counts[Histogram<Bounds>::k_buckets];
    out += fmt::format("{}_bucket{{le=\"+Inf\"}} {}\n", name, cumulative);
    out += fmt::format("{}_sum {}\n{}_count {}\n", name, h.sum, name, h.count);
}

/// Prometheus text exposition format 0.0.4.
std::string prometheus_text(const Snapshot& snap, std::uint64_t unauthorized_rest) {
    std::string out;
    const auto metric = [&](std::string_view name, std::string_view type, std::string_view help,
                            std::initializer_list<std::pair<std::string, double>> samples) {
        out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
        for (const auto& [labels, value] : samples)
            out += fmt::format("{}{} {}\n", name, labels.empty() ? "" : "{" + labels + "}", value);
    };
    const auto& c = snap.counters;
    const auto d = [](std::uint64_t v) { return static_cast<double>(v); };
    metric("der_hub_telemetry_received_total", "counter", "Telemetry messages received from agents.",
           {{"", d(c.telemetry_received)}});
    metric("der_hub_telemetry_stored_total", "counter", "Telemetry records stored (new, in order).",
           {{"", d(c.telemetry_stored)}});
    metric("der_hub_telemetry_duplicates_total", "counter", "Telemetry records dropped as already held.",
           {{"", d(c.telemetry_duplicate)}});
    metric("der_hub_telemetry_gaps_total", "counter",
           "Telemetry records dropped as out of order (the agent resends them).", {{"", d(c.telemetry_gap)}});
    metric("der_hub_heartbeats_received_total", "counter", "Heartbeats received from agents.",
           {{"", d(c.heartbeats_received)}});
    metric("der_hub_malformed_frames_total", "counter", "Frames dropped because they did not decode, by endpoint.",
           {{"endpoint=\"agents\"", d(c.malformed_agents)}, {"endpoint=\"control\"", d(c.malformed_control)}});
    metric("der_hub_refused_messages_total", "counter",
           "Well-formed messages refused (no session, wrong asset, wrong epoch).", {{"", d(c.refused)}});
    metric("der_hub_registers_total", "counter", "Register messages received.", {{"", d(c.registers)}});
    metric("der_hub_rejects_total", "counter", "Registers refused.", {{"", d(c.rejects)}});
    metric("der_hub_reregisters_sent_total", "counter", "Reregister requests sent to peers without a session.",
           {{"", d(c.reregisters_sent)}});
    metric("der_hub_tacks_sent_total", "counter", "Telemetry acknowledgements sent.", {{"", d(c.tacks_sent)}});
    metric("der_hub_send_failures_total", "counter", "Sends to agents that failed (peer gone or queue full).",
           {{"", d(c.send_failures)}});
    metric("der_hub_zap_denied_total", "counter", "CURVE handshakes refused (agent key not in assets.yaml).",
           {{"", d(c.zap_denied)}});
    metric("der_hub_identity_refused_total", "counter",
           "Agent messages refused because their CURVE key does not speak for the asset they name.",
           {{"", d(c.identity_refused)}});
    metric("der_hub_unauthorized_requests_total", "counter", "Requests refused for a missing or wrong API token.",
           {{"endpoint=\"control\"", d(c.unauthorized_control)}, {"endpoint=\"rest\"", d(unauthorized_rest)}});
    metric("der_hub_agents_online", "gauge", "Agents heard from within 3 telemetry intervals.",
           {{"", d(snap.agents_online)}});
    metric("der_hub_assets", "gauge", "Assets in the configuration.", {{"", d(snap.assets.size())}});
    metric("der_hub_history_rows", "gauge", "Telemetry rows held in the in-memory history.",
           {{"", d(snap.history_rows)}});
    metric("der_hub_stream_subscriptions", "gauge", "Subscriptions on the live stream.",
           {{"", d(snap.stream_subscriptions)}});
    metric("der_hub_snapshot_build_seconds", "gauge",
           "Time the event loop took to build the snapshot these figures come from.",
           {{"", static_cast<double>(snap.build_us) / 1e6}});
    metric("der_hub_snapshot_views_built", "gauge",
           "Asset views built for that snapshot (assets changed since the one before; the rest are shared).",
           {{"", d(snap.views_built)}});

    out += "# HELP der_hub_dispatches Dispatches kept by the hub, by current state.\n"
           "# TYPE der_hub_dispatches gauge\n";
    for (std::size_t i = 0; i < k_dispatch_state_count; ++i)
        out += fmt::format("der_hub_dispatches{{state=\"{}\"}} {}\n", to_string(static_cast<DispatchState>(i)),
                           snap.dispatches_in_state[i]);
    out += "# HELP der_hub_dispatch_transitions_total Dispatch state changes, by the state entered.\n"
           "# TYPE der_hub_dispatch_transitions_total counter\n";
    for (std::size_t i = 0; i < k_dispatch_state_count; ++i)
        out += fmt::format("der_hub_dispatch_transitions_total{{state=\"{}\"}} {}\n",
                           to_string(static_cast<DispatchState>(i)), snap.dispatch_transitions[i]);
    histogram_text(out, "der_hub_dispatch_ack_latency_seconds", "Time from sending a setpoint to the agent's ack.",
                   snap.ack_latency);
    histogram_text(out, "der_hub_loop_turn_seconds",
                   "Wall time of each turn of the event loop between two waits (a long turn holds everything "
                   "behind it).",
                   snap.loop_turns);
    return out;
}

/// The body of POST /dispatch; nil after answering 400.
std::optional<DispatchCommand> parse_dispatch_body(const httplib::Request& req, httplib::Response& res,
                                                   DispatchTarget target = DispatchTarget::asset) {
    auto c = hub::parse_dispatch_body(req.body, target);
    if (!c) {
        send_error(res, 400, "bad_request", c.error().message);
        return std::nullopt;
    }
    if (c->requested_by.empty() && req.has_header("X-Requested-By")) c->requested_by = req.get_header_value("X-Requested-By");
    return std::move(*c);
}

/// `reason` and `requested_by` of a cancel, stop or availability request:
/// from the JSON body (optional; empty body allowed), else the
/// `X-Requested-By` / `X-Reason` headers. Nil after answering 400.
struct Who {
    std::string reason;
    std::string requested_by;
    json body;
};
std::optional<Who> parse_who(const httplib::Request& req, httplib::Response& res,
                             std::initializer_list<std::string_view> other_fields) {
    Who who;
    if (!req.body.empty()) {
        try {
            who.body = json::parse(req.body);
        } catch (const json::exception& e) {
            send_error(res, 400, "bad_request", fmt::format("body is not valid JSON: {}", e.what()));
            return std::nullopt;
        }
        if (!who.body.is_object()) {
            send_error(res, 400, "bad_request", "body must be a JSON object");
            return std::nullopt;
        }
        for (const auto& [key, value] : who.body.items()) {
            if (key == "reason" || key == "requested_by") {
                if (!value.is_string()) {
                    send_error(res, 400, "bad_request", fmt::format("{} must be a string", key));
                    return std::nullopt;
                }
                (key == "reason" ? who.reason : who.requested_by) = value.get<std::string>();
            } else if (std::find(other_fields.begin(), other_fields.end(), key) == other_fields.end()) {
                send_error(res, 400, "bad_request", fmt::format("unknown field '{}'", key));
                return std::nullopt;
            }
        }
    }
    if (who.requested_by.empty() && req.has_header("X-Requested-By")) who.requested_by = req.get_header_value("X-Requested-By");
    if (who.reason.empty() && req.has_header("X-Reason")) who.reason = req.get_header_value("X-Reason");
    return who;
}

/// Maps a refused loop call to its HTTP answer.
void send_failure(httplib::Response& res, const Error& e) {
    const int status = e.code == Errc::not_found ? 404 : e.code == Errc::refused ? 422 : 400;
    const char* code = status == 404 ? "not_found" : status == 422 ? "unprocessable" : "bad_request";
    send_error(res, status, code, e.message);
}

}  // namespace

struct RestServer::Impl {
    explicit Impl(RestContext c) : ctx(c) {}

    RestContext ctx;
    httplib::Server server;
    std::thread thread;
    int port = 0;
    bool running = false;

    std::shared_ptr<const Snapshot> snapshot(httplib::Response& res) {
        auto snap = ctx.snapshots.get();
        if (!snap) send_error(res, 503, "starting", "the hub is starting");
        return snap;
    }

    /// A dispatch as the API shows it: a site dispatch's parent record carries
    /// the site's ID in asset_id internally; here it is site_id, with its
    /// children when `with_children` (docs/openapi.yaml, Dispatch).
    json dispatch_json(const Snapshot& snap, const Dispatch& d, bool with_children) {
        json j = d;
        const auto& sites = snap.fleet->sites;
        const bool site = !snap.fleet->by_id.contains(d.asset_id) &&
                          std::any_of(sites.begin(), sites.end(), [&](const Site& s) { return s.id == d.asset_id; });
        if (!site) return j;
        j["site_id"] = j["asset_id"];
        j.erase("asset_id");
        if (with_children) {
            auto children =
                on_loop<std::vector<Dispatch>>([this, id = d.dispatch_id] { return ctx.api.children(id); });
            if (children) j["children"] = *children;
        }
        return j;
    }

    const AssetView* asset_or_404(const Snapshot& snap, const std::string& id, httplib::Response& res) {
        const AssetView* view = snap.find(id);
        if (view == nullptr)
            send_error(res, 404, "not_found", fmt::format("no asset '{}' (give its UUID or site/asset name)", id));
        return view;
    }

    /// Runs `task` on the loop thread and waits for its result.
    template <class T>
    std::optional<T> on_loop(std::function<T()> task) {
        auto promise = std::make_shared<std::promise<T>>();
        auto future = promise->get_future();
        if (!ctx.mailbox.post([promise, task = std::move(task)] { promise->set_value(task()); }))
            return std::nullopt;
        if (future.wait_for(std::chrono::seconds(5)) != std::future_status::ready) return std::nullopt;
        return future.get();
    }

    /// A history read: on this worker when it comes from the database
    /// (history_off_loop), else on the loop.
    template <class T, class F>
    std::optional<T> history(F task) {
        if (ctx.api.history_off_loop) return std::optional<T>(task());
        return on_loop<T>(std::move(task));
    }

    static void history_error(httplib::Response& res, const Error& e) {
        if (e.code == Errc::invalid_argument) return send_error(res, 400, "bad_request", e.message);
        send_error(res, 503, "unavailable", fmt::format("history is unavailable: {}", e.message));
    }

    /// Registers `handler` for the next route of rest_routes(); a handler
    /// out of the table's order is a programming error (throws).
    void on(std::string_view method, std::string_view path, httplib::Server::Handler handler) {
        const auto table = rest_routes();
        if (next_route >= table.size() || table[next_route].method != method || table[next_route].path != path)
            throw std::logic_error(fmt::format("rest: {} {} is not the next route of rest_routes()", method, path));
        ++next_route;
        const std::string pattern = rest_route_regex(path);
        route_patterns.emplace_back(std::string(method), std::regex(pattern));
        if (method == "GET") server.Get(pattern, std::move(handler));
        else if (method == "POST") server.Post(pattern, std::move(handler));
        else if (method == "DELETE") server.Delete(pattern, std::move(handler));
        else throw std::logic_error(fmt::format("rest: unknown method {}", method));
    }
    std::size_t next_route = 0;
    std::atomic<std::uint64_t> unauthorized_rest{0};  ///< REST requests refused for the token (worker threads)
    int listen_fd = -1;  ///< the REST socket, recorded by its socket options (bind's thread)
    std::vector<std::pair<std::string, std::regex>> route_patterns;  ///< (method, path) of every route

    /// The methods a path has routes for, in table order; empty for none.
    std::vector<std::string_view> allowed_methods(const std::string& path) const {
        std::vector<std::string_view> methods;
        for (const auto& [method, re] : route_patterns)
            if (std::regex_match(path, re) && std::find(methods.begin(), methods.end(), method) == methods.end())
                methods.push_back(method);
        return methods;
    }

    void routes();
};

void RestServer::Impl::routes() {
    if (!ctx.api_token.empty()) {
        server.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
            const bool read = req.method == "GET" || req.method == "HEAD" || req.method == "OPTIONS";
            if (read && (!ctx.token_reads || req.path == "/health")) return httplib::Server::HandlerResponse::Unhandled;
            static constexpr std::string_view k_scheme = "bearer ";  // the scheme is case-insensitive (RFC 9110)
            const std::string header = req.get_header_value("Authorization");
            const bool bearer =
                header.size() > k_scheme.size() &&
                std::equal(k_scheme.begin(), k_scheme.end(), header.begin(), [](char a, char b) {
                    return a == std::tolower(static_cast<unsigned char>(b));
                });
            if (bearer && cli::constant_time_equal(std::string_view(header).substr(k_scheme.size()), ctx.api_token))
                return httplib::Server::HandlerResponse::Unhandled;
            unauthorized_rest.fetch_add(1, std::memory_order_relaxed);
            res.set_header("WWW-Authenticate", "Bearer realm=\"der-hub\"");
            send_error(res, 401, "unauthorized",
                       header.empty() ? "this hub requires an API token: Authorization: Bearer <token>"
                                      : "wrong API token");
            return httplib::Server::HandlerResponse::Handled;
        });
    }
    on("GET", "/health", [this](const httplib::Request&, httplib::Response& res) {
        const std::int64_t now = mono_ms();
        const bool ready = ctx.health.ready.load();
        const std::int64_t since_turn = now - ctx.health.last_turn_mono.load();
        auto snap = ctx.snapshots.get();
        json j;
        j["version"] = version();
        j["uptime_s"] = static_cast<double>(now - ctx.health.started_mono.load()) / 1000.0;
        j["transport"] = ctx.transport;
        j["api_token"] = !ctx.api_token.empty();
        j["history"] = ctx.db_stats ? "postgresql" : "memory";
        std::optional<store::WriterStats> db;
        if (ctx.db_stats) {
            db = ctx.db_stats();
            j["db"] = {{"connected", db->connected},         {"backlog_rows", db->backlog_rows},
                       {"backlog_events", db->backlog_events}, {"max_backlog_rows", db->max_backlog_rows},
                       {"dropped", db->dropped},               {"set_aside", db->set_aside},
                       {"last_error", db->last_error}};
        }
        j["agents_online"] = snap ? snap->agents_online : 0;
        j["assets"] = snap ? snap->assets.size() : 0;
        j["loop_turn_age_ms"] = since_turn;
        int status = 200;
        if (!ready || !snap) {
            j["status"] = "starting";
            status = 503;
        } else if (since_turn > k_stalled_ms) {
            j["status"] = "stalled";
            status = 503;
        } else if (db && db->max_backlog_rows > 0 && db->backlog_rows >= db->max_backlog_rows) {
            j["status"] = "db_backlog";
            status = 503;
        } else {
            j["status"] = "ok";
        }
        send_json(res, status, j);
    });

    on("GET", "/metrics", [this](const httplib::Request&, httplib::Response& res) {
        auto snap = snapshot(res);
        if (!snap) return;
        std::string text = prometheus_text(*snap, unauthorized_rest.load(std::memory_order_relaxed));
        if (ctx.db_stats) text += db_prometheus_text(ctx.db_stats());
        res.set_content(text, "text/plain; version=0.0.4; charset=utf-8");
    });

    on("GET", "/openapi.yaml", [](const httplib::Request&, httplib::Response& res) {
        const auto text = openapi_yaml();
        res.set_content(text.data(), text.size(), "application/yaml");
    });

    on("GET", "/sites", [this](const httplib::Request&, httplib::Response& res) {
        auto snap = snapshot(res);
        if (!snap) return;
        json out = json::array();
        for (const auto& site : snap->fleet->sites) {
            json j;
            j["id"] = site.id;
            j["name"] = site.name;
            j["timezone"] = site.timezone.empty() ? json(nullptr) : json(site.timezone);
            json assets = json::array();
            for (const auto& a : site.assets) assets.push_back(json{{"id", a.id}, {"name", a.name}});
            j["assets"] = std::move(assets);
            out.push_back(std::move(j));
        }
        send_json(res, 200, out);
    });

    on("GET", "/assets", [this](const httplib::Request& req, httplib::Response& res) {
        auto snap = snapshot(res);
        if (!snap) return;
        const std::string site = req.has_param("site") ? req.get_param_value("site") : "";
        json out = json::array();
        bool site_known = site.empty();
        for (const auto& view : snap->assets) {
            if (!site.empty() && view->asset.site_name != site && view->asset.site_id.to_string() != site) continue;
            site_known = true;
            out.push_back(asset_json(*view));
        }
        if (!site_known) return send_error(res, 404, "not_found", fmt::format("no site '{}'", site));
        send_json(res, 200, out);
    });

    on("GET", "/assets/{id}", [this](const httplib::Request& req, httplib::Response& res) {
        auto snap = snapshot(res);
        if (!snap) return;
        if (const auto* view = asset_or_404(*snap, req.matches[1], res)) send_json(res, 200, asset_json(*view));
    });

    on("GET", "/agents", [this](const httplib::Request&, httplib::Response& res) {
        auto snap = snapshot(res);
        if (!snap) return;
        json out = json::array();
        for (const auto& view : snap->assets)
            if (view->agent) out.push_back(agent_json(*view));
        send_json(res, 200, out);
    });

    on("GET", "/telemetry", [this](const httplib::Request& req, httplib::Response& res) {
        std::optional<bool> stale;  // ?stale=true: only the assets that went quiet; false: only the others
        if (req.has_param("stale")) {
            const auto v = req.get_param_value("stale");
            if (v != "true" && v != "false") return send_error(res, 400, "bad_request", "stale: expected true or false");
            stale = v == "true";
        }
        auto snap = snapshot(res);
        if (!snap) return;
        // Each element from the bytes its view encoded once (telemetry_json.hpp).
        const TimestampMs now = now_ms();
        std::string body = "[";
        for (const auto& view : snap->assets) {
            if (!view->latest) continue;
            const Freshness f = freshness(view->latest_received, now, snap->fleet->telemetry_s);
            if (stale && f.stale != *stale) continue;
            if (body.size() > 1) body.push_back(',');
            append_telemetry_json(body, view->telemetry_json(), f);
        }
        body += "]\n";
        send_encoded(res, 200, std::move(body));
    });

    on("GET", "/telemetry/{id}/history", [this](const httplib::Request& req,
                                                                  httplib::Response& res) {
        auto snap = snapshot(res);
        if (!snap) return;
        const auto* view = asset_or_404(*snap, req.matches[1], res);
        if (view == nullptr) return;
        HistoryQuery q;
        if (!parse_history_query(req, res, q)) return;
        const Uuid id = view->asset.id;
        auto page = history<Result<HistoryPage<Telemetry>>>([this, id, q] { return ctx.api.telemetry_history(id, q); });
        if (!page) return send_error(res, 503, "unavailable", "the hub's event loop did not answer in time");
        if (!*page) return history_error(res, page->error());
        json rows = json::array();
        for (const auto& t : (*page)->rows) rows.push_back(t);
        json out{{"asset_id", id}, {"asset", view->asset.qualified_name()}, {"count", (*page)->rows.size()},
                 {"rows", std::move(rows)}};
        out["next"] = (*page)->next.empty() ? json(nullptr) : json(next_link(req, (*page)->next));
        send_json(res, 200, out);
    });

    on("GET", "/telemetry/{id}", [this](const httplib::Request& req, httplib::Response& res) {
        auto snap = snapshot(res);
        if (!snap) return;
        const auto* view = asset_or_404(*snap, req.matches[1], res);
        if (view == nullptr) return;
        if (!view->latest)
            return send_error(res, 404, "no_telemetry",
                              fmt::format("no telemetry from {} yet", view->asset.qualified_name()));
        // The record's bytes were encoded once; only age_s and stale are of this request.
        const TelemetryJson& parts = view->telemetry_json();
        std::string body;
        body.reserve(parts.head.size() + parts.middle.size() + parts.tail.size() + 32);
        append_telemetry_json(body, parts, freshness(view->latest_received, now_ms(), snap->fleet->telemetry_s));
        body.push_back('\n');
        send_encoded(res, 200, std::move(body));
    });

    on("GET", "/heartbeat/{id}/history", [this](const httplib::Request& req,
                                                                  httplib::Response& res) {
        auto snap = snapshot(res);
        if (!snap) return;
        const auto* view = asset_or_404(*snap, req.matches[1], res);
        if (view == nullptr) return;
        HistoryQuery q;
        if (!parse_history_query(req, res, q)) return;
        const Uuid id = view->asset.id;
        auto page = history<Result<HistoryPage<Heartbeat>>>([this, id, q] { return ctx.api.heartbeat_history(id, q); });
        if (!page) return send_error(res, 503, "unavailable", "the hub's event loop did not answer in time");
        if (!*page) return history_error(res, page->error());
        json rows = json::array();
        for (const auto& h : (*page)->rows) rows.push_back(h);
        json out{{"asset_id", id}, {"asset", view->asset.qualified_name()}, {"count", (*page)->rows.size()},
                 {"rows", std::move(rows)}};
        out["next"] = (*page)->next.empty() ? json(nullptr) : json(next_link(req, (*page)->next));
        send_json(res, 200, out);
    });

    on("GET", "/heartbeat/{id}", [this](const httplib::Request& req, httplib::Response& res) {
        auto snap = snapshot(res);
        if (!snap) return;
        const auto* view = asset_or_404(*snap, req.matches[1], res);
        if (view == nullptr) return;
        if (!view->heartbeat)
            return send_error(res, 404, "no_heartbeat",
                              fmt::format("no heartbeat from {} yet", view->asset.qualified_name()));
        json j = *view->heartbeat;
        j["asset"] = view->asset.qualified_name();
        send_json(res, 200, j);
    });

    on("POST", "/dispatch", [this](const httplib::Request& req, httplib::Response& res) {
        auto command = parse_dispatch_body(req, res);
        if (!command) return;
        auto created = on_loop<Result<Dispatch>>([this, c = *command] { return ctx.api.create_dispatch(c); });
        if (!created) return send_error(res, 503, "unavailable", "the hub's event loop did not answer in time");
        if (!*created) {
            const auto& e = created->error();
            const int status = e.code == Errc::not_found ? 404 : e.code == Errc::refused ? 422 : 400;
            const char* code = status == 404 ? "not_found" : status == 422 ? "unprocessable" : "bad_request";
            return send_error(res, status, code, e.message);
        }
        json j = **created;
        send_json(res, 202, j);
    });

    const auto dispatch_list = [this](const httplib::Request& req, httplib::Response& res) {
        auto snap = snapshot(res);
        if (!snap) return;
        DispatchQuery q;
        for (const char* key : {"asset_id", "asset"}) {
            if (!req.has_param(key)) continue;
            const auto* view = asset_or_404(*snap, req.get_param_value(key), res);
            if (view == nullptr) return;
            if (q.asset_id && *q.asset_id != view->asset.id)
                return send_error(res, 400, "bad_request", "asset and asset_id name different assets");
            q.asset_id = view->asset.id;
        }
        if (req.has_param("cursor"))
            return send_error(res, 400, "bad_request",
                              "cursor: the dispatch history is not paged; narrow it with since, until and limit");
        HistoryQuery window;
        if (!parse_history_query(req, res, window)) return;
        q.since = window.since;
        q.until = window.until;
        q.limit = window.limit;
        if (req.has_param("state")) {
            q.state = parse_dispatch_state(req.get_param_value("state"));
            if (!q.state)
                return send_error(res, 400, "bad_request",
                                  fmt::format("state: unknown dispatch state '{}'", req.get_param_value("state")));
        }
        auto rows = history<Result<std::vector<Dispatch>>>([this, q] { return ctx.api.dispatch_history(q); });
        if (!rows) return send_error(res, 503, "unavailable", "the hub's event loop did not answer in time");
        if (!*rows) return history_error(res, rows->error());
        json list = json::array();
        for (const auto& d : **rows) list.push_back(dispatch_json(*snap, d, false));
        json out{{"count", (*rows)->size()}, {"rows", std::move(list)}};
        send_json(res, 200, out);
    };
    on("GET", "/dispatch/history", dispatch_list);
    on("GET", "/dispatch", dispatch_list);

    on("GET", "/dispatch/{dispatch_id}", [this](const httplib::Request& req, httplib::Response& res) {
        const std::string text = req.matches[1];
        auto id = Uuid::parse(text);
        if (!id) return send_error(res, 404, "not_found", fmt::format("no dispatch '{}' (not a UUID)", text));
        auto found = on_loop<std::optional<Dispatch>>([this, id = *id] { return ctx.api.find_dispatch(id); });
        if (!found) return send_error(res, 503, "unavailable", "the hub's event loop did not answer in time");
        if (!*found && ctx.api.stored_dispatch) {  // ended before a restart: the database has it
            auto stored = ctx.api.stored_dispatch(*id);
            if (!stored) return history_error(res, stored.error());
            *found = std::move(*stored);
        }
        if (!*found) return send_error(res, 404, "not_found", fmt::format("no dispatch {}", text));
        auto snap = snapshot(res);
        if (!snap) return;
        send_json(res, 200, dispatch_json(*snap, **found, true));
    });

    on("POST", "/sites/{site}/dispatch", [this](const httplib::Request& req, httplib::Response& res) {
        auto parsed = parse_dispatch_body(req, res, DispatchTarget::site);
        if (!parsed) return;
        SiteDispatchCommand c{req.matches[1], parsed->mw, parsed->duration_s, parsed->reason, parsed->requested_by,
                              parsed->start_at};
        auto result = on_loop<Result<SiteDispatchResult>>([this, c] { return ctx.api.create_site_dispatch(c); });
        if (!result) return send_error(res, 503, "unavailable", "the hub's event loop did not answer in time");
        if (!*result) return send_failure(res, result->error());
        json j = (*result)->parent;
        j["site_id"] = (*result)->parent.asset_id;
        j.erase("asset_id");
        j["children"] = (*result)->children;
        send_json(res, 202, j);
    });

    on("DELETE", "/dispatch/{dispatch_id}", [this](const httplib::Request& req, httplib::Response& res) {
        const std::string text = req.matches[1];
        auto id = Uuid::parse(text);
        if (!id) return send_error(res, 404, "not_found", fmt::format("no dispatch '{}' (not a UUID)", text));
        auto who = parse_who(req, res, {});
        if (!who) return;
        auto result = on_loop<Result<Dispatch>>(
            [this, id = *id, w = *who] { return ctx.api.cancel_dispatch(id, w.reason, w.requested_by); });
        if (!result) return send_error(res, 503, "unavailable", "the hub's event loop did not answer in time");
        if (!*result) return send_failure(res, result->error());
        auto snap = snapshot(res);
        if (!snap) return;
        send_json(res, 200, dispatch_json(*snap, **result, true));
    });

    on("POST", "/stop", [this](const httplib::Request& req, httplib::Response& res) {
        auto who = parse_who(req, res, {"site"});
        if (!who) return;
        StopCommand c{"", who->reason, who->requested_by};
        if (who->body.contains("site") && !who->body["site"].is_null()) {
            if (!who->body["site"].is_string()) return send_error(res, 400, "bad_request", "site must be a string");
            c.site = who->body["site"].get<std::string>();
        }
        auto result = on_loop<Result<StopResult>>([this, c] { return ctx.api.stop(c); });
        if (!result) return send_error(res, 503, "unavailable", "the hub's event loop did not answer in time");
        if (!*result) return send_failure(res, result->error());
        send_json(res, 200,
                  json{{"site", c.site.empty() ? json(nullptr) : json(c.site)},
                       {"assets", (*result)->assets},
                       {"cancelled", (*result)->cancelled},
                       {"reason", c.reason},
                       {"requested_by", c.requested_by}});
    });

    on("POST", "/assets/{id}/availability", [this](const httplib::Request& req,
                                                                     httplib::Response& res) {
        auto who = parse_who(req, res, {"available"});
        if (!who) return;
        if (!who->body.contains("available") || !who->body["available"].is_boolean())
            return send_error(res, 400, "bad_request", "available must be true or false");
        const bool available = who->body["available"].get<bool>();
        const std::string asset = req.matches[1];
        auto result = on_loop<Result<Asset>>([this, asset, available, w = *who] {
            return ctx.api.set_availability(asset, available, w.reason, w.requested_by);
        });
        if (!result) return send_error(res, 503, "unavailable", "the hub's event loop did not answer in time");
        if (!*result) return send_failure(res, result->error());
        json j = **result;
        send_json(res, 200, j);
    });

    on("GET", "/audit", [this](const httplib::Request& req, httplib::Response& res) {
        std::size_t limit = k_default_limit;
        if (req.has_param("limit")) {
            const auto text = req.get_param_value("limit");
            const auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), limit);
            if (ec != std::errc{} || p != text.data() + text.size() || limit == 0 || limit > k_max_limit)
                return send_error(res, 400, "bad_request", "limit: expected an integer from 1 to 100000");
        }
        auto rows = on_loop<std::vector<AuditEntry>>([this, limit] { return ctx.api.audit(limit); });
        if (!rows) return send_error(res, 503, "unavailable", "the hub's event loop did not answer in time");
        json out = json::array();
        for (const auto& a : *rows)
            out.push_back(json{{"ts", format_rfc3339(a.ts)},
                               {"action", a.action},
                               {"target", a.target},
                               {"reason", a.reason},
                               {"requested_by", a.requested_by},
                               {"detail", a.detail}});
        send_json(res, 200, json{{"count", out.size()}, {"rows", out}});
    });

    if (next_route != rest_routes().size())
        throw std::logic_error(fmt::format("rest: {} of rest_routes() have no handler",
                                           rest_routes().size() - next_route));

    server.set_error_handler([this](const httplib::Request& req, httplib::Response& res) {
        if (!res.body.empty()) return;  // a handler already answered
        // The path exists for other methods: 405 with Allow, not "no route"
        // (nor the 400 cpp-httplib gives a bodiless POST, PUT or PATCH).
        if (res.status == 404 || res.status == 400) {
            const auto methods = allowed_methods(req.path);
            if (!methods.empty() && std::find(methods.begin(), methods.end(), req.method) == methods.end()) {
                const std::string allow = fmt::format("{}", fmt::join(methods, ", "));
                res.set_header("Allow", allow);
                return send_error(res, 405, "method_not_allowed",
                                  fmt::format("{} is not allowed on {} (allowed: {})", req.method, req.path, allow));
            }
        }
        const bool has_body_header = req.has_header("Content-Length") || req.has_header("Transfer-Encoding");
        if (res.status == 404) {
            send_error(res, 404, "not_found", fmt::format("no route {} {}", req.method, req.path));
        } else if (res.status == 413) {
            send_error(res, 413, "too_large", "request body too large");
        } else if (res.status == 400 && (req.method == "POST" || req.method == "PUT" || req.method == "PATCH") &&
                   !has_body_header) {
            // cpp-httplib reads no body without a length: `curl -X POST URL` sends none.
            send_error(res, 411, "length_required",
                       fmt::format("{} {} needs a Content-Length (send a JSON body, or an empty one: curl -d '')",
                                   req.method, req.path));
        } else if (res.status == 414) {
            send_error(res, 414, "uri_too_long", "request URI too long");
        } else if (res.status == 400) {
            send_error(res, 400, "bad_request", "malformed HTTP request (request line, headers or body framing)");
        } else {
            send_error(res, res.status, "error", fmt::format("HTTP {}", res.status));
        }
    });
    server.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
        std::string what = "unknown";
        try {
            std::rethrow_exception(ep);
        } catch (const std::exception& e) {
            what = e.what();
        } catch (...) {
        }
        log::error("rest: handler failed: {}", what);
        send_error(res, 500, "internal", "internal error");
    });
}

RestServer::RestServer(RestContext context) : m_impl(std::make_unique<Impl>(context)) {}

RestServer::~RestServer() { stop(); }

Result<void> RestServer::start(const std::string& address) {
    auto& s = m_impl->server;
    const auto colon = address.rfind(':');
    if (colon == std::string::npos)
        return fail(Errc::invalid_argument, fmt::format("--http: expected HOST:PORT, got '{}'", address));
    std::string host = address.substr(0, colon);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    int port = 0;
    const auto port_text = std::string_view(address).substr(colon + 1);
    const auto [p, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (ec != std::errc{} || p != port_text.data() + port_text.size() || port < 0 || port > 65535)
        return fail(Errc::invalid_argument, fmt::format("--http: bad port in '{}'", address));

    const std::size_t threads = m_impl->ctx.threads;
    s.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
    s.set_tcp_nodelay(true);
    s.set_keep_alive_max_count(100'000);
    // Each open connection holds a worker while it is kept alive: idle ones
    // let go after 5 s, so a client pool larger than --http-threads delays
    // the others (/health included) by at most that (der-hub(8)).
    s.set_keep_alive_timeout(5);
    s.set_read_timeout(5, 0);
    s.set_write_timeout(10, 0);
    s.set_payload_max_length(1 << 20);
    // cpp-httplib's own socket options set SO_REUSEPORT: a second der-hub
    // given the same --http port would bind too and silently get half of the
    // requests. SO_REUSEADDR only (a restart binds at once); and the socket,
    // to raise its listen backlog from cpp-httplib's 5 once bound.
    s.set_socket_options([impl = m_impl.get()](socket_t sock) {
        const int yes = 1;
        ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
        impl->listen_fd = sock;
    });
    m_impl->routes();

    if (port == 0) {
        m_impl->port = s.bind_to_any_port(host);
        if (m_impl->port <= 0)
            return fail(Errc::unavailable, fmt::format("cannot bind the REST address {}", address));
    } else {
        if (!s.bind_to_port(host, port))
            return fail(Errc::unavailable, fmt::format("cannot bind the REST address {}: {}", address,
                                                       std::strerror(errno)));
        m_impl->port = port;
    }
    // A burst of clients (1,000 connecting at once) waited seconds in SYN retries behind a backlog of 5;
    // listen() again on a listening socket sets the new backlog (the kernel caps it at somaxconn).
    if (m_impl->listen_fd >= 0 && ::listen(m_impl->listen_fd, 4096) != 0)
        log::warn("rest: could not raise the listen backlog: {}", std::strerror(errno));
    m_impl->running = true;
    m_impl->thread = std::thread([this] { m_impl->server.listen_after_bind(); });
    log::info("rest: listening on http://{}:{}", host, m_impl->port);
    return {};
}

void RestServer::stop() {
    if (!m_impl || !m_impl->running) return;
    m_impl->server.stop();
    if (m_impl->thread.joinable()) m_impl->thread.join();
    m_impl->running = false;
}

int RestServer::port() const { return m_impl->port; }

}  // namespace der::hub
