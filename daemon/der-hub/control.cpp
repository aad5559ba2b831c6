// The hub's control socket: request/reply for der-dispatch, der-history and
// the other CLIs (der-protocol(7), "Control socket").
//
// Implementation details
// - A ROUTER (ROUTER_MANDATORY) polled by the event loop; requests are
//   [routing id][type][msgpack body], replies go back to the same routing id
//   and echo the request's `request_id`.
// - A request that does not decode is answered with `error` (code
//   `bad_request`) and counted; it never stalls the loop.
// - `dispatch` with `wait` registers a waiter on the dispatch; the final
//   `dispatch.result` is sent when the dispatch reaches an outcome (applied,
//   rejected, failed, expired, superseded, cancelled). A client that left is
//   simply dropped (EHOSTUNREACH).
// - `history` is answered in chunks of at most 1,000 rows (`history.rows`),
//   then `history.end`, so neither side holds a large range in one message.
//   With `every`, telemetry is aggregated into buckets aligned to the Unix
//   epoch (like PostgreSQL's date_bin with origin 1970-01-01).
// - With --api-token-file every request must carry the token (compared in
//   constant time) or is answered `error` code `unauthorized`; the token is
//   never logged.
#include "hub_impl.hpp"

#include "token.hpp"

#include "der/util/log.hpp"

#include <fmt/core.h>
#include <zmq_addon.hpp>

#include <algorithm>
#include <cmath>
#include <map>

namespace der::hub {

namespace {
constexpr std::size_t k_chunk_rows = 1000;
constexpr std::uint64_t k_default_history_limit = 100'000;

bool is_outcome(DispatchState s) { return s == DispatchState::applied || is_final(s); }
}  // namespace

const Asset* Hub::resolve_asset(std::string_view id_or_name) const {
    if (auto id = Uuid::parse(id_or_name)) {
        const auto it = m_assets.find(*id);
        return it == m_assets.end() ? nullptr : it->second;
    }
    const auto it = m_by_name.find(std::string(id_or_name));
    return it == m_by_name.end() ? nullptr : it->second;
}

void Hub::bind_control() {
    m_control.set(zmq::sockopt::router_mandatory, 1);
    m_control.set(zmq::sockopt::linger, 0);
    m_control.set(zmq::sockopt::sndhwm, 100'000);
    try {
        m_control.bind(m_options.control_ep);
    } catch (const zmq::error_t& e) {
        throw cli::ExitError(cli::unavailable,
                             fmt::format("cannot bind the control endpoint {}: {}", m_options.control_ep, e.what()));
    }
    log::info("control: listening on {}", m_control.get(zmq::sockopt::last_endpoint));
}

void Hub::drain_control() {
    std::vector<zmq::message_t> frames;
    for (int i = 0; i < k_max_batch; ++i) {
        frames.clear();
        std::optional<std::size_t> n;
        try {
            n = zmq::recv_multipart(m_control, std::back_inserter(frames), zmq::recv_flags::dontwait);
        } catch (const zmq::error_t& e) {
            if (e.num() == EINTR) continue;
            throw;
        }
        if (!n) return;
        on_control_frames(frames);
    }
}

bool Hub::send_control(const std::string& route, const wire::ControlMessage& message) {
    const auto frame = wire::encode(message);
    try {
        if (!m_control.send(zmq::buffer(route), zmq::send_flags::sndmore | zmq::send_flags::dontwait)) return false;
        m_control.send(zmq::buffer(frame.type), zmq::send_flags::sndmore | zmq::send_flags::dontwait);
        m_control.send(zmq::buffer(frame.body), zmq::send_flags::dontwait);
        return true;
    } catch (const zmq::error_t&) {
        return false;  // the client left
    }
}

void Hub::control_error(const std::string& route, const std::string& request_id, std::string code,
                        std::string message) {
    send_control(route, wire::ErrorReply{request_id, std::move(code), std::move(message)});
}

void Hub::on_control_frames(std::vector<zmq::message_t>& frames) {
    if (frames.empty()) return;
    const std::string route = frames[0].to_string();
    if (frames.size() != 3) {
        malformed(route, m_counters.malformed_control,
                  fmt::format("control: {} frames, expected [type][body]", frames.size() - 1));
        control_error(route, "", "bad_request", "a request is two frames: [type][msgpack body]");
        return;
    }
    auto message = wire::decode_control(frames[1].to_string_view(), frames[2].to_string_view());
    if (!message) {
        malformed(route, m_counters.malformed_control, message.error().message);
        control_error(route, "", "bad_request", message.error().message);
        return;
    }
    const auto [request_id, token] = std::visit(
        [](const auto& m) -> std::pair<std::string, std::string> {
            if constexpr (requires { m.token; }) return {m.request_id, m.token};
            else return {m.request_id, {}};
        },
        *message);
    if (!token_ok(route, request_id, token)) return;
    std::visit(Overloaded{
                   [&](const wire::DispatchRequest& r) { on_control_dispatch(route, r); },
                   [&](const wire::HistoryRequest& r) { on_control_history(route, r); },
                   [&](const wire::QueryRequest& r) { on_control_query(route, r); },
                   [&](const wire::CancelRequest& r) { on_control_cancel(route, r); },
                   [&](const wire::StopRequest& r) { on_control_stop(route, r); },
                   [&](const auto&) {
                       ++m_counters.refused;
                       control_error(route, "", "bad_request",
                                     fmt::format("'{}' is a reply, not a request", frames[1].to_string_view()));
                   },
               },
               *message);
}

bool Hub::token_ok(const std::string& route, const std::string& request_id, const std::string& token) {
    if (m_api_token.empty() || cli::constant_time_equal(token, m_api_token)) return true;
    ++m_counters.unauthorized_control;
    m_dirty = true;
    const std::int64_t now = m_clock.mono_ms();
    auto [it, fresh] = m_peer_log.try_emplace("token:" + route, now);
    if (fresh || now - it->second >= k_log_peer_interval_ms) {
        it->second = now;
        log::warn("control: refused a request from client {}: {} ({} so far)", hex_id(route),
                  token.empty() ? "no token" : "wrong token", m_counters.unauthorized_control);
    }
    control_error(route, request_id, "unauthorized",
                  token.empty() ? "this hub requires an API token: give --token-file or DER_TOKEN_FILE"
                                : "wrong API token");
    return false;
}

namespace {
const char* error_code(const Error& e) {
    return e.code == Errc::not_found ? "not_found" : e.code == Errc::refused ? "unprocessable" : "bad_request";
}
}  // namespace

void Hub::on_control_dispatch(const std::string& route, const wire::DispatchRequest& r) {
    if (r.asset.empty() == r.site.empty()) {
        control_error(route, r.request_id, "bad_request", "a dispatch names either an asset or a site");
        return;
    }
    Result<Dispatch> created = fail(Errc::internal, "");
    if (!r.site.empty()) {
        auto site = create_site_dispatch({r.site, r.mw, r.duration_s, r.reason, r.requested_by, r.start_at});
        if (site) created = site->parent;
        else created = std::unexpected(site.error());
    } else {
        created = create_dispatch({r.asset, r.mw, r.duration_s, r.reason, r.requested_by, r.start_at, {}});
    }
    if (!created) {
        control_error(route, r.request_id, error_code(created.error()), created.error().message);
        return;
    }
    wire::DispatchResult result;
    result.request_id = r.request_id;
    result.dispatch_id = created->dispatch_id;
    result.state = created->state;
    result.error = created->error;
    result.final = !r.wait || is_outcome(created->state);
    if (!result.final) m_waiters[created->dispatch_id].push_back({route, r.request_id});
    send_control(route, result);
}

void Hub::on_control_cancel(const std::string& route, const wire::CancelRequest& r) {
    auto cancelled = cancel_dispatch(r.dispatch_id, r.reason, r.requested_by);
    if (!cancelled) {
        control_error(route, r.request_id, error_code(cancelled.error()), cancelled.error().message);
        return;
    }
    send_control(route, wire::DispatchResult{r.request_id, cancelled->dispatch_id, cancelled->state,
                                             cancelled->error, true});
}

void Hub::on_control_stop(const std::string& route, const wire::StopRequest& r) {
    auto stopped = stop_assets({r.site, r.reason, r.requested_by});
    if (!stopped) {
        control_error(route, r.request_id, error_code(stopped.error()), stopped.error().message);
        return;
    }
    send_control(route, wire::StopResult{r.request_id, stopped->assets, stopped->cancelled});
}

void Hub::answer_waiters(const Dispatch& d) {
    if (!is_outcome(d.state)) return;
    const auto it = m_waiters.find(d.dispatch_id);
    if (it == m_waiters.end()) return;
    for (const auto& w : it->second) {
        wire::DispatchResult result;
        result.request_id = w.request_id;
        result.dispatch_id = d.dispatch_id;
        result.state = d.state;
        result.error = d.error;
        result.final = true;
        send_control(w.route, result);
    }
    m_waiters.erase(it);
}

void Hub::on_control_history(const std::string& route, const wire::HistoryRequest& r) {
    const std::uint64_t limit = r.limit.value_or(k_default_history_limit);
    const Asset* asset = nullptr;
    if (!r.asset.empty()) {
        asset = resolve_asset(r.asset);
        if (asset == nullptr) {
            control_error(route, r.request_id, "not_found",
                          fmt::format("no asset '{}' (give its UUID or site/asset name)", r.asset));
            return;
        }
    } else if (r.kind != wire::HistoryKind::dispatch) {
        control_error(route, r.request_id, "bad_request", "history of telemetry or heartbeats needs an asset");
        return;
    }
    if (r.every_s && (!std::isfinite(*r.every_s) || *r.every_s <= 0)) {
        control_error(route, r.request_id, "bad_request", "every must be a positive number of seconds");
        return;
    }
    if (db()) {
        // From PostgreSQL, off the loop: a slow query never holds up ingest.
        {
            const std::lock_guard lock(m_history_mutex);
            if (m_history_jobs.size() >= 64) {
                control_error(route, r.request_id, "unavailable", "too many history requests in progress; retry");
                return;
            }
            m_history_jobs.push_back({route, r, asset ? std::optional<Uuid>(asset->id) : std::nullopt});
        }
        m_history_cv.notify_one();
        return;
    }
    std::uint64_t count = 0;

    if (r.kind == wire::HistoryKind::dispatch) {
        auto rows = m_dispatches.history(asset ? std::optional<Uuid>(asset->id) : std::nullopt, r.since, r.until,
                                         std::nullopt, static_cast<std::size_t>(limit));
        std::reverse(rows.begin(), rows.end());  // oldest first
        for (std::size_t i = 0; i < rows.size(); i += k_chunk_rows) {
            const auto end = std::min(rows.size(), i + k_chunk_rows);
            wire::HistoryRows chunk{r.request_id, std::vector<Dispatch>(rows.begin() + static_cast<std::ptrdiff_t>(i),
                                                                        rows.begin() + static_cast<std::ptrdiff_t>(end))};
            send_control(route, chunk);
        }
        count = rows.size();
    } else if (r.kind == wire::HistoryKind::heartbeat) {
        HistoryQuery q{r.since, r.until, k_chunk_rows, ""};
        while (count < limit) {
            q.limit = static_cast<std::size_t>(std::min<std::uint64_t>(k_chunk_rows, limit - count));
            auto page = m_history.heartbeats(asset->id, q);
            if (!page || page->rows.empty()) break;
            count += page->rows.size();
            q.cursor = page->next;
            send_control(route, wire::HistoryRows{r.request_id, std::move(page->rows)});
            if (q.cursor.empty()) break;
        }
    } else if (!r.every_s) {
        HistoryQuery q{r.since, r.until, k_chunk_rows, ""};
        while (count < limit) {
            q.limit = static_cast<std::size_t>(std::min<std::uint64_t>(k_chunk_rows, limit - count));
            auto page = m_history.telemetry(asset->id, q);
            if (!page || page->rows.empty()) break;
            count += page->rows.size();
            q.cursor = page->next;
            send_control(route, wire::HistoryRows{r.request_id, std::move(page->rows)});
            if (q.cursor.empty()) break;
        }
    } else {
        // Buckets aligned to the Unix epoch, like date_bin(every, ts, '1970-01-01').
        const auto every_ms = std::max<std::int64_t>(1, std::llround(*r.every_s * 1000.0));
        std::vector<wire::TelemetryBucket> buckets;
        HistoryQuery q{r.since, r.until, k_chunk_rows, ""};
        const auto flush = [&](bool all) {
            while (!buckets.empty() && (all || buckets.size() > k_chunk_rows) && count < limit) {
                const auto n = std::min<std::size_t>(
                    {buckets.size(), k_chunk_rows, static_cast<std::size_t>(limit - count)});
                std::vector<wire::TelemetryBucket> chunk(buckets.begin(), buckets.begin() + static_cast<std::ptrdiff_t>(n));
                buckets.erase(buckets.begin(), buckets.begin() + static_cast<std::ptrdiff_t>(n));
                count += n;
                send_control(route, wire::HistoryRows{r.request_id, std::move(chunk)});
            }
        };
        while (count < limit) {
            auto page = m_history.telemetry(asset->id, q);
            if (!page || page->rows.empty()) break;
            for (const auto& t : page->rows) {
                const TimestampMs start = t.ts - (((t.ts % every_ms) + every_ms) % every_ms);
                if (buckets.empty() || buckets.back().ts != start) {
                    // A bucket is complete when a later one starts: send full chunks as we go.
                    if (buckets.size() > k_chunk_rows) flush(false);
                    wire::TelemetryBucket b;
                    b.asset_id = asset->id;
                    b.ts = start;
                    b.soc_pct_min = b.soc_pct_max = t.soc_pct;
                    b.current_mw_min = b.current_mw_max = t.current_mw;
                    buckets.push_back(b);
                }
                auto& b = buckets.back();
                ++b.count;
                b.soc_pct_avg += t.soc_pct;  // sums until finished below
                b.current_mw_avg += t.current_mw;
                b.soc_pct_min = std::min(b.soc_pct_min, t.soc_pct);
                b.soc_pct_max = std::max(b.soc_pct_max, t.soc_pct);
                b.current_mw_min = std::min(b.current_mw_min, t.current_mw);
                b.current_mw_max = std::max(b.current_mw_max, t.current_mw);
            }
            q.cursor = page->next;
            if (q.cursor.empty()) break;
        }
        for (auto& b : buckets) {
            b.soc_pct_avg /= static_cast<double>(b.count);
            b.current_mw_avg /= static_cast<double>(b.count);
        }
        flush(true);
    }
    send_control(route, wire::HistoryEnd{r.request_id, count});
}

void Hub::on_control_query(const std::string& route, const wire::QueryRequest& r) {
    std::vector<const Asset*> selected;
    for (const auto& name : r.assets) {
        const Asset* a = resolve_asset(name);
        if (a == nullptr) {
            control_error(route, r.request_id, "not_found", fmt::format("no asset '{}'", name));
            return;
        }
        selected.push_back(a);
    }
    for (const auto& site_name : r.sites) {
        const Site* site = m_fleet.find_site(site_name);
        if (site == nullptr) {
            control_error(route, r.request_id, "not_found", fmt::format("no site '{}'", site_name));
            return;
        }
        for (const auto& a : site->assets) selected.push_back(&a);
    }
    if (r.assets.empty() && r.sites.empty())
        for (const auto& site : m_fleet.sites)
            for (const auto& a : site.assets) selected.push_back(&a);

    switch (r.kind) {
    case wire::QueryKind::assets: {
        wire::AssetsReply reply{r.request_id, {}};
        for (const auto* a : selected) reply.assets.push_back(*a);
        send_control(route, reply);
        break;
    }
    case wire::QueryKind::agents: {
        wire::AgentsReply reply{r.request_id, {}};
        for (const auto* a : selected) {
            const Session* s = m_sessions.by_asset(a->id);
            if (s == nullptr) continue;
            reply.agents.push_back(
                {a->id, s->instance_id, s->online, s->agent_version, s->connected_at, s->last_seen_wall, s->buffered});
        }
        send_control(route, reply);
        break;
    }
    case wire::QueryKind::latest: {
        wire::LatestReply reply{r.request_id, {}};
        for (const auto* a : selected) {
            const auto it = m_live.find(a->id);
            if (it != m_live.end() && it->second.latest) reply.telemetry.push_back(*it->second.latest);
        }
        send_control(route, reply);
        break;
    }
    }
}

namespace {

/// The replies to a control `history` request, read from PostgreSQL.
Result<std::vector<wire::ControlMessage>> db_history(store::Reader& reader, const wire::HistoryRequest& r,
                                                     const std::optional<Uuid>& asset) {
    const std::uint64_t limit = r.limit.value_or(k_default_history_limit);
    std::vector<wire::ControlMessage> out;
    std::uint64_t count = 0;
    if (r.kind == wire::HistoryKind::dispatch) {
        auto rows = reader.dispatches({asset, r.since, r.until, std::nullopt, static_cast<std::size_t>(limit)});
        if (!rows) return std::unexpected(rows.error());
        std::reverse(rows->begin(), rows->end());  // oldest first
        for (std::size_t i = 0; i < rows->size(); i += k_chunk_rows) {
            const auto end = std::min(rows->size(), i + k_chunk_rows);
            out.push_back(wire::HistoryRows{r.request_id,
                                            std::vector<Dispatch>(rows->begin() + static_cast<std::ptrdiff_t>(i),
                                                                  rows->begin() + static_cast<std::ptrdiff_t>(end))});
        }
        count = rows->size();
    } else if (r.every_s) {
        auto buckets = reader.telemetry_buckets(
            {*asset, r.since, r.until, *r.every_s, static_cast<std::size_t>(std::min<std::uint64_t>(limit, 100'000))});
        if (!buckets) return std::unexpected(buckets.error());
        for (std::size_t i = 0; i < buckets->size(); i += k_chunk_rows) {
            const auto end = std::min(buckets->size(), i + k_chunk_rows);
            out.push_back(wire::HistoryRows{
                r.request_id, std::vector<wire::TelemetryBucket>(buckets->begin() + static_cast<std::ptrdiff_t>(i),
                                                                 buckets->begin() + static_cast<std::ptrdiff_t>(end))});
        }
        count = buckets->size();
    } else {
        std::optional<store::Cursor> after;
        while (count < limit) {
            const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(k_chunk_rows, limit - count));
            std::optional<store::Cursor> next;
            if (r.kind == wire::HistoryKind::heartbeat) {
                auto page = reader.heartbeats({*asset, r.since, r.until, n, after});
                if (!page) return std::unexpected(page.error());
                if (page->rows.empty()) break;
                count += page->rows.size();
                next = page->next;
                out.push_back(wire::HistoryRows{r.request_id, std::move(page->rows)});
            } else {
                auto page = reader.telemetry({*asset, r.since, r.until, n, after});
                if (!page) return std::unexpected(page.error());
                if (page->rows.empty()) break;
                count += page->rows.size();
                next = page->next;
                out.push_back(wire::HistoryRows{r.request_id, std::move(page->rows)});
            }
            if (!next) break;
            after = next;
        }
    }
    out.push_back(wire::HistoryEnd{r.request_id, count});
    return out;
}

}  // namespace

void Hub::start_history_worker() {
    m_history_thread = std::thread([this] { history_worker(); });
}

void Hub::stop_history_worker() {
    {
        const std::lock_guard lock(m_history_mutex);
        m_history_stop = true;
    }
    m_history_cv.notify_all();
    if (m_history_thread.joinable()) m_history_thread.join();
}

void Hub::history_worker() {
    store::Reader reader(*m_options.db);
    while (true) {
        HistoryJob job;
        {
            std::unique_lock lock(m_history_mutex);
            m_history_cv.wait(lock, [&] { return m_history_stop || !m_history_jobs.empty(); });
            if (m_history_stop) return;
            job = std::move(m_history_jobs.front());
            m_history_jobs.pop_front();
        }
        auto replies = db_history(reader, job.request, job.asset_id);
        if (!replies) {
            m_mailbox.post([this, route = job.route, id = job.request.request_id, e = replies.error()] {
                control_error(route, id, "unavailable", fmt::format("history is unavailable: {}", e.message));
            });
            continue;
        }
        m_mailbox.post([this, route = std::move(job.route), msgs = std::move(*replies)] {
            for (const auto& m : msgs) send_control(route, m);
        });
    }
}

}  // namespace der::hub
