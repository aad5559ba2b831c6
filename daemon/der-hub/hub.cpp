// The der-hub event loop.
//
// Implementation details
// - One thread (the caller of run()) owns every piece of fleet state: the
//   configuration, the session table, latest telemetry, the in-memory history
//   and the counters. REST workers read the Snapshot it publishes (at most
//   every 100 ms, when something changed) and post closures to the Mailbox
//   for anything else. A publish builds views only of the assets changed
//   since the last one (SessionTable's journal, asset_changed()) and shares
//   the rest and the configuration part with the previous snapshot.
// - Sockets: the agent ROUTER (ROUTER_MANDATORY, so a send to a vanished peer
//   fails at once with EHOSTUNREACH instead of queueing), polled together
//   with the mailbox's eventfd. Every send is ZMQ_DONTWAIT.
// - Frames on the agent socket are [routing id][type][msgpack body]; anything
//   else, or a body that does not decode, is dropped, counted and logged at
//   most once per peer per minute.
// - Tacks are coalesced: a stored record marks its session due, and the due
//   list is flushed at most once per session per 50 ms.
// - CURVE (--curve-secret-file): the ZAP handler is a REP socket on
//   inproc://zeromq.zap.01 in the hub's context, bound before the agent
//   ROUTER and polled by this same loop (no thread, no shared key table:
//   SIGHUP swaps the table between two turns). ZAP in libzmq is asynchronous:
//   a handshake waits for the loop's next turn, nothing blocks an I/O
//   thread. Any error on it ends the hub (libzmq admits every key when no
//   handler answers). Every agent message is then checked against the table
//   (key_table.hpp): a removed key or a message for another asset is refused.
#include "hub.hpp"

#include "hub_impl.hpp"

#include "curve_keys.hpp"
#include "token.hpp"

#include "dispatch_book.hpp"
#include "mailbox.hpp"
#include "memory_history.hpp"
#include "rest_server.hpp"
#include "sessions.hpp"
#include "snapshot.hpp"

#include "der/assets_config.hpp"
#include "der/stream.hpp"
#include "der/util/log.hpp"
#include "der/util/text.hpp"
#include "der/version.hpp"
#include "der/wire_codec.hpp"

#include <fmt/core.h>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#ifdef DER_HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

#include <malloc.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <unordered_set>
#include <utility>

namespace der::hub {

namespace {
constexpr const char* k_zap_endpoint = "inproc://zeromq.zap.01";

/// A power the asset's configured limits do not allow.
bool outside_limits(double mw, const BessLimits& limits) { return mw > limits.max_mw || mw < limits.min_mw; }

/// Only this host can reach it: ipc, inproc, or a loopback address.
bool local_only(std::string_view endpoint) {
    return endpoint.starts_with("ipc://") || endpoint.starts_with("inproc://") ||
           endpoint.find("127.0.0.1") != std::string_view::npos || endpoint.find("localhost") != std::string_view::npos ||
           endpoint.find("[::1]") != std::string_view::npos;
}
}  // namespace

void Hub::set_fleet(config::Fleet fleet) {
    m_fleet = std::move(fleet);
    m_assets.clear();
    m_by_name.clear();
    for (const auto& site : m_fleet.sites) {
        for (const auto& asset : site.assets) {
            m_assets.emplace(asset.id, &asset);
            m_by_name.emplace(asset.qualified_name(), &asset);
        }
    }
    m_keys.rebuild(m_fleet);
    m_views.clear();  // they refer into the previous fleet view
    m_fleet_view = std::make_shared<const FleetView>(m_fleet.sites, m_fleet.telemetry_s, m_fleet.heartbeat_s);
    m_views.assign(m_fleet_view->assets.size(), nullptr);
    m_view_built_at.assign(m_fleet_view->assets.size(), 0);
    m_all_views_stale = true;
    m_changed_assets.clear();
    m_dirty = true;
}

void Hub::setup_security() {
    if (!m_options.api_token_file.empty()) {
        m_api_token = cli::value_or_exit(cli::read_token_file(m_options.api_token_file));
        log::info("api: a token is required for REST writes{} and every control request",
                  m_options.api_token_reads ? " and reads" : "");
    } else if (m_options.api_token_reads) {
        throw cli::ExitError(cli::usage, "--api-token-reads needs --api-token-file");
    }
    const bool fleet_keys = m_keys.size() > 0;
    if (m_options.curve_secret_file.empty()) {
        if (fleet_keys)
            throw cli::ExitError(cli::config,
                                 fmt::format("{}: the assets have agent_public_key but the hub has no "
                                             "--curve-secret-file (make one with 'der-hub keygen')",
                                             m_options.config_path));
        return;
    }
    if (!fleet_keys)
        throw cli::ExitError(cli::config, fmt::format("--curve-secret-file is given but no asset of {} has an "
                                                      "agent_public_key: CURVE needs every agent's key",
                                                      m_options.config_path));
    m_curve_secret = cli::value_or_exit(cli::read_key_file(m_options.curve_secret_file));
    const auto public_key = cli::value_or_exit(cli::public_key_of(m_curve_secret));
    struct stat st {};
    if (::stat(m_options.curve_secret_file.c_str(), &st) == 0 && (st.st_mode & 077) != 0)
        log::warn("{}: the secret key is readable by others than its owner (chmod 600 it)",
                  m_options.curve_secret_file);
    m_curve = true;
    log::info("agents: CURVE on; the hub's public key is {}; {} agent keys admitted", public_key, m_keys.size());
}

void Hub::bind_zap() {
    m_zap.set(zmq::sockopt::linger, 0);
    // Test hook (tests/integration/test_security.cpp): the endpoint taken
    // before the hub binds it, the only way to see the hub refuse to run
    // without its handler (inproc endpoints are private to a context).
    std::optional<zmq::socket_t> squatter;
    if (const char* taken = std::getenv("DER_HUB_TEST_ZAP_TAKEN"); taken != nullptr && std::string(taken) == "1") {
        squatter.emplace(m_ctx, zmq::socket_type::rep);
        squatter->set(zmq::sockopt::linger, 0);
        squatter->bind(k_zap_endpoint);
    }
    try {
        m_zap.bind(k_zap_endpoint);
    } catch (const zmq::error_t& e) {
        throw cli::ExitError(cli::unavailable,
                             fmt::format("cannot start the ZAP handler on {}: {}; not opening the agent endpoint "
                                         "(libzmq would admit any CURVE key without it)",
                                         k_zap_endpoint, e.what()));
    }
}

void Hub::drain_zap() {
    std::vector<zmq::message_t> frames;
    for (int i = 0; i < k_max_batch; ++i) {
        frames.clear();
        std::optional<std::size_t> n;
        try {
            n = zmq::recv_multipart(m_zap, std::back_inserter(frames), zmq::recv_flags::dontwait);
        } catch (const zmq::error_t& e) {
            if (e.num() == EINTR) continue;
            throw cli::ExitError(cli::software,
                                 fmt::format("the ZAP handler failed ({}); stopping, since libzmq would admit any "
                                             "CURVE key without it",
                                             e.what()));
        }
        if (!n) return;
        std::vector<std::string> text;
        text.reserve(frames.size());
        for (const auto& f : frames) text.push_back(f.to_string());
        const ZapReply reply = answer_zap(m_keys, text);
        if (reply.status_code != "200") {
            ++m_counters.zap_denied;
            m_dirty = true;
            const std::string address = text.size() > 3 ? text[3] : std::string("?");
            const std::int64_t now = m_clock.mono_ms();
            auto [it, fresh] = m_peer_log.try_emplace("zap:" + address, now);
            if (fresh || now - it->second >= k_log_peer_interval_ms) {
                it->second = now;
                log::warn("agents: refused a handshake from {}: {}{} ({} so far; logged at most once a minute per "
                          "address)",
                          address, reply.status_text, reply.z85_key.empty() ? "" : " " + reply.z85_key,
                          m_counters.zap_denied);
            }
        }
        try {
            const std::array<std::string_view, 6> out{"1.0",          reply.request_id, reply.status_code,
                                                      reply.status_text, reply.user_id,   reply.metadata};
            for (std::size_t k = 0; k < out.size(); ++k)
                m_zap.send(zmq::buffer(out[k]), k + 1 < out.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
        } catch (const zmq::error_t& e) {
            throw cli::ExitError(cli::software, fmt::format("the ZAP handler failed to reply ({}); stopping", e.what()));
        }
    }
}

bool Hub::identity_fits(const std::string& route, const zmq::message_t& frame, const std::optional<Uuid>& speaks_for,
                        std::string_view type) {
    const zmq_msg_t* msg = frame.handle();
    const PeerCheck check = check_peer(m_keys, zmq_msg_gets(msg, "User-Id"), zmq_msg_gets(msg, k_key_property),
                                       speaks_for);
    if (check == PeerCheck::ok) return true;
    ++m_counters.identity_refused;
    m_dirty = true;
    const std::int64_t now = m_clock.mono_ms();
    auto [it, fresh] = m_peer_log.try_emplace("id:" + route, now);
    if (fresh || now - it->second >= k_log_peer_interval_ms) {
        it->second = now;
        const char* user = zmq_msg_gets(msg, "User-Id");
        log::warn("agents: refused '{}' from peer {} (key of asset {}): {} ({} so far; logged at most once a "
                  "minute per peer)",
                  type, hex_id(route), user != nullptr ? user : "?", to_string(check), m_counters.identity_refused);
    }
    if (type == "register")
        send_agent(route, wire::Reject{"unauthorized", fmt::format("refused: {}", to_string(check)), {}});
    return false;
}

void Hub::bind_sockets() {
    if (m_curve) {
        bind_zap();  // before the agent ROUTER: no handshake may ever find no handler
        m_agents.set(zmq::sockopt::curve_server, 1);
        if (zmq_setsockopt(m_agents.handle(), ZMQ_CURVE_SECRETKEY, m_curve_secret.c_str(),
                           m_curve_secret.size() + 1) != 0)
            throw cli::ExitError(cli::config, fmt::format("--curve-secret-file: {}", zmq_strerror(zmq_errno())));
        m_agents.set(zmq::sockopt::zap_domain, std::string(k_zap_domain));
    }
    m_agents.set(zmq::sockopt::router_mandatory, 1);
    m_agents.set(zmq::sockopt::linger, 0);
    m_agents.set(zmq::sockopt::backlog, 65535);  // the kernel caps it at net.core.somaxconn
    // A connection whose agent vanished (power cut, network gone) is closed
    // by the kernel's keepalive after ~90 s of silence. Not ZMTP heartbeat
    // TTLs: libzmq 4.3 cancels a TTL timer by scanning every timer of the I/O
    // thread, on every message of every peer (docs/protocol.md).
    m_agents.set(zmq::sockopt::tcp_keepalive, 1);
    m_agents.set(zmq::sockopt::tcp_keepalive_idle, 60);
    m_agents.set(zmq::sockopt::tcp_keepalive_intvl, 10);
    m_agents.set(zmq::sockopt::tcp_keepalive_cnt, 3);
    m_agents.set(zmq::sockopt::rcvhwm, 100'000);
    m_agents.set(zmq::sockopt::sndhwm, 100'000);
    try {
        m_agents.bind(m_options.agents_ep);
    } catch (const zmq::error_t& e) {
        throw cli::ExitError(cli::unavailable,
                             fmt::format("cannot bind the agent endpoint {}: {}", m_options.agents_ep, e.what()));
    }
    log::info("agents: listening on {}", m_agents.get(zmq::sockopt::last_endpoint));

    // The live stream: a slow subscriber loses messages at its high-water
    // mark (XPUB drops), it never slows the loop. Every (un)subscription of
    // every subscriber comes up (VERBOSER), so m_subscriptions counts them
    // all and each subscription to `welcome` is answered (drain_stream).
    m_stream.set(zmq::sockopt::linger, 0);
    m_stream.set(zmq::sockopt::sndhwm, 10'000);
    m_stream.set(zmq::sockopt::xpub_verboser, 1);
    try {
        m_stream.bind(m_options.stream_ep);
    } catch (const zmq::error_t& e) {
        throw cli::ExitError(cli::unavailable,
                             fmt::format("cannot bind the stream endpoint {}: {}", m_options.stream_ep, e.what()));
    }
    log::info("stream: publishing on {}", m_stream.get(zmq::sockopt::last_endpoint));
    if (!local_only(m_options.stream_ep))
        log::warn("stream: {} is not a loopback address; the stream has no authentication and anyone who reaches it "
                  "reads all telemetry (docs/security.md)",
                  m_options.stream_ep);
    if (!local_only(m_options.control_ep))
        log::warn("control: {} is not a loopback address; requests (and their token) cross the network in clear "
                  "(docs/security.md)",
                  m_options.control_ep);
    bind_control();

    if (m_options.http != "off" && !m_options.http.empty()) {
        LoopApi api;
        api.create_dispatch = [this](const DispatchCommand& c) { return create_dispatch(c); };
        api.create_site_dispatch = [this](const SiteDispatchCommand& c) { return create_site_dispatch(c); };
        api.cancel_dispatch = [this](const Uuid& id, const std::string& reason, const std::string& by) {
            return cancel_dispatch(id, reason, by);
        };
        api.stop = [this](const StopCommand& c) { return stop_assets(c); };
        api.set_availability = [this](const std::string& asset, bool available, const std::string& reason,
                                      const std::string& by) { return set_availability(asset, available, reason, by); };
        api.audit = [this](std::size_t limit) {
            std::vector<AuditEntry> out;
            for (auto it = m_audit.rbegin(); it != m_audit.rend() && out.size() < limit; ++it) out.push_back(*it);
            return out;
        };
        api.children = [this](const Uuid& parent) {
            std::vector<Dispatch> out;
            for (const auto& id : m_dispatches.children_of(parent)) out.push_back(*m_dispatches.find(id));
            return out;
        };
        api.find_dispatch = [this](const Uuid& id) -> std::optional<Dispatch> {
            const Dispatch* d = m_dispatches.find(id);
            return d != nullptr ? std::optional<Dispatch>(*d) : std::nullopt;
        };
        api.dispatch_history = [this](const DispatchQuery& q) -> Result<std::vector<Dispatch>> {
            return m_dispatches.history(q.asset_id, q.since, q.until, q.state, q.limit);
        };
        api.telemetry_history = [this](const Uuid& id, const HistoryQuery& q) { return m_history.telemetry(id, q); };
        api.heartbeat_history = [this](const Uuid& id, const HistoryQuery& q) { return m_history.heartbeats(id, q); };
        std::function<store::WriterStats()> db_stats;
        if (db()) {
            // History from PostgreSQL, read on the REST worker (one Reader per thread), never on the loop.
            const std::string conninfo = *m_options.db;
            const auto reader = [conninfo]() -> store::Reader& {
                thread_local std::optional<store::Reader> r;
                if (!r) r.emplace(conninfo);
                return *r;
            };
            api.history_off_loop = true;
            api.telemetry_history = [reader](const Uuid& id, const HistoryQuery& q) -> Result<HistoryPage<Telemetry>> {
                store::TelemetryQuery sq{id, q.since, q.until, q.limit, std::nullopt};
                if (!q.cursor.empty()) {
                    auto c = store::parse_cursor(q.cursor);
                    if (!c) return std::unexpected(c.error());
                    sq.after = *c;
                }
                auto page = reader().telemetry(sq);
                if (!page) return std::unexpected(page.error());
                HistoryPage<Telemetry> out{std::move(page->rows), {}};
                if (page->next) out.next = store::format_cursor(*page->next);
                return out;
            };
            api.heartbeat_history = [reader](const Uuid& id, const HistoryQuery& q) -> Result<HistoryPage<Heartbeat>> {
                store::HeartbeatQuery sq{id, q.since, q.until, q.limit, std::nullopt};
                if (!q.cursor.empty()) {
                    auto c = store::parse_cursor(q.cursor);
                    if (!c) return std::unexpected(c.error());
                    sq.after = *c;
                }
                auto page = reader().heartbeats(sq);
                if (!page) return std::unexpected(page.error());
                HistoryPage<Heartbeat> out{std::move(page->rows), {}};
                if (page->next) out.next = store::format_cursor(*page->next);
                return out;
            };
            api.dispatch_history = [reader](const DispatchQuery& q) -> Result<std::vector<Dispatch>> {
                return reader().dispatches({q.asset_id, q.since, q.until, q.state, q.limit});
            };
            api.stored_dispatch = [reader](const Uuid& id) { return reader().dispatch(id); };
            db_stats = [writer = m_writer.get()] { return writer->stats(); };
        }
        m_rest = std::make_unique<RestServer>(
            RestContext{m_snapshots, m_health, m_mailbox, std::move(api), m_options.http_threads, std::move(db_stats),
                        m_api_token, m_options.api_token_reads, m_curve ? "curve" : "plaintext"});
        if (auto started = m_rest->start(m_options.http); !started)  // a malformed address is usage, a busy port not
            throw cli::ExitError(started.error().code == Errc::invalid_argument ? cli::usage : cli::unavailable,
                                 started.error().message);
    }
}

namespace {

/// Every agent connection is a file descriptor. Raises the soft open-files
/// limit to the hard one (a login shell's soft 1,024 would cap the hub near
/// 1,000 agents) and warns when even that is short of the fleet.
void raise_open_files_limit(std::size_t assets) {
    rlimit lim{};
    if (::getrlimit(RLIMIT_NOFILE, &lim) != 0) return;
    if (lim.rlim_cur < lim.rlim_max) {
        rlimit raised = lim;
        raised.rlim_cur = lim.rlim_max;
        if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) lim = raised;
    }
    constexpr rlim_t k_spare = 256;  // the REST server, the database, the other sockets
    if (lim.rlim_cur != RLIM_INFINITY && lim.rlim_cur < assets + k_spare)
        log::warn("open files: the limit is {}, too few for {} agents and the hub's own {} (raise LimitNOFILE= or "
                  "ulimit -Hn)",
                  lim.rlim_cur, assets, k_spare);
    else
        log::info("open files: limit {}", lim.rlim_cur == RLIM_INFINITY ? std::string("unlimited")
                                                                           : std::to_string(lim.rlim_cur));
}

}  // namespace

int Hub::run() {
    raise_open_files_limit(m_assets.size());
    m_ctx.set(zmq::ctxopt::max_sockets, 65536);
    if (m_options.db) open_database();
    setup_security();
    bind_sockets();
    if (!m_curve)
        log::warn("transport: plain text (no CURVE keys configured); agents are not authenticated");
    if (m_api_token.empty())
        log::warn("api: no --api-token-file; REST writes and the control socket take requests from anyone who "
                  "reaches them");
    const std::int64_t start = m_clock.mono_ms();
    m_health.started_mono = start;
    m_health.last_turn_mono = start;
    publish(start);
    m_health.ready = true;
#ifdef DER_HAVE_SYSTEMD
    sd_notify(0, "READY=1\nSTATUS=serving");
#endif
    log::info("der-hub {} serving {} assets in {} sites", version(), m_assets.size(), m_fleet.sites.size());

    while (!m_signals.stop.load()) {
        std::int64_t now = m_clock.mono_ms();
        std::int64_t timeout = 100;
        if (!m_tack_due.empty())
            timeout = std::clamp<std::int64_t>(m_last_tack_flush + k_tack_flush_ms - now, 0, timeout);
        zmq::pollitem_t items[] = {
            {m_agents.handle(), 0, ZMQ_POLLIN, 0},
            {nullptr, m_mailbox.fd(), ZMQ_POLLIN, 0},
            {m_stream.handle(), 0, ZMQ_POLLIN, 0},
            {m_control.handle(), 0, ZMQ_POLLIN, 0},
            {m_zap.handle(), 0, ZMQ_POLLIN, 0},
        };
        try {
            zmq::poll(items, m_curve ? 5 : 4, std::chrono::milliseconds(timeout));
        } catch (const zmq::error_t& e) {
            if (e.num() != EINTR) throw;
        }
        const auto turn_started = std::chrono::steady_clock::now();
        if (m_curve && (items[4].revents & ZMQ_POLLIN) != 0) drain_zap();
        if ((items[0].revents & ZMQ_POLLIN) != 0) drain_agents();
        if ((items[1].revents & ZMQ_POLLIN) != 0) m_mailbox.run_pending();
        if ((items[2].revents & ZMQ_POLLIN) != 0) drain_stream();
        if ((items[3].revents & ZMQ_POLLIN) != 0) drain_control();

        if (m_writer) take_committed();
        m_dispatches.tick(this->now(), m_changed);
        deliver_started();
        publish_dispatch_changes();
        now = m_clock.mono_ms();
        if (now - m_last_tack_flush >= k_tack_flush_ms) flush_tacks(now);
        if (now - m_last_sweep >= sweep_interval_ms()) sweep(now);
        if (m_dirty && now - m_last_publish >= m_publish_interval_ms) publish(now);
        if (m_signals.reload.exchange(false)) reload();
        m_health.last_turn_mono = now;
        m_loop_turns.observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - turn_started).count());
#ifdef DER_HAVE_SYSTEMD
        // WATCHDOG=1 from the loop itself: a stuck loop stops the pings.
        static std::int64_t last_ping = 0;
        if (now - last_ping >= 1000) {
            sd_notify(0, "WATCHDOG=1");
            last_ping = now;
        }
#endif
    }

    log::info("stopping (signal {})", m_signals.last.load());
#ifdef DER_HAVE_SYSTEMD
    sd_notify(0, "STOPPING=1");
#endif
    m_health.ready = false;
    if (m_rest) m_rest->stop();
    if (m_writer) {
        stop_history_worker();
        publish_dispatch_changes();
        std::vector<Uuid> open;
        for (const auto& [asset, rec] : m_db_sessions) open.push_back(asset);
        for (const auto& asset : open) session_ended(asset, "hub_stopped");
        const std::size_t abandoned = m_writer->stop(std::chrono::seconds(5));
        if (abandoned > 0)
            log::error("database: {} records could not be written before stopping (agents resend their telemetry)",
                       abandoned);
        else
            log::info("database: everything queued was written");
    }
    m_mailbox.close();
    return cli::ok;
}

void Hub::drain_agents() {
    std::vector<zmq::message_t> frames;
    const std::int64_t started = m_clock.mono_ms();
    std::int64_t flushed = started;
    for (int i = 0; i < k_max_batch; ++i) {
        frames.clear();
        std::optional<std::size_t> n;
        try {
            n = zmq::recv_multipart(m_agents, std::back_inserter(frames), zmq::recv_flags::dontwait);
        } catch (const zmq::error_t& e) {
            if (e.num() == EINTR) continue;
            throw;
        }
        if (!n) return;
        on_agent_frames(frames);
        // A batch of slow messages (a reconnect storm: thousands of registers)
        // must not hold back the tacks of agents already welcomed, nor the
        // rest of the turn (control, dispatch timers).
        if (i % k_drain_check_every == k_drain_check_every - 1) {
            const std::int64_t now = m_clock.mono_ms();
            if (now - flushed >= k_tack_flush_ms) {
                flush_tacks(now);
                flushed = now;
            }
            if (now - started >= k_max_drain_ms) return;
        }
    }
}

void Hub::malformed(const std::string& route, std::uint64_t& counter, std::string_view why) {
    ++counter;
    m_dirty = true;
    const std::int64_t now = m_clock.mono_ms();
    if (m_peer_log.size() > 10'000) m_peer_log.clear();  // bound the memory a flood of peers can take
    auto [it, fresh] = m_peer_log.try_emplace(route, now);
    if (!fresh && now - it->second < k_log_peer_interval_ms) return;
    it->second = now;
    log::warn("agents: dropped a malformed message from peer {}: {} (further ones from it logged at most once a "
              "minute; {} so far)",
              hex_id(route), why, counter);
}

void Hub::on_agent_frames(std::vector<zmq::message_t>& frames) {
    if (frames.empty()) return;
    const std::string route = frames[0].to_string();
    if (frames.size() != 3) {
        malformed(route, m_counters.malformed_agents, fmt::format("{} frames, expected [type][body]", frames.size() - 1));
        return;
    }
    const auto type = frames[1].to_string_view();
    auto message = wire::decode_agent(type, frames[2].to_string_view());
    if (!message) {
        malformed(route, m_counters.malformed_agents, message.error().message);
        return;
    }
    if (m_curve) {
        const std::optional<Uuid> speaks_for = std::visit(
            Overloaded{
                [](const wire::Register& m) -> std::optional<Uuid> { return m.asset_id; },
                [](const Telemetry& m) -> std::optional<Uuid> { return m.asset_id; },
                [](const Heartbeat& m) -> std::optional<Uuid> { return m.asset_id; },
                [](const auto&) -> std::optional<Uuid> { return std::nullopt; },
            },
            *message);
        if (!identity_fits(route, frames[1], speaks_for, type)) return;
    }
    std::visit(Overloaded{
                   [&](const wire::Register& m) {
                       std::string peer;
                       if (db()) {
                           // The remote address, for the agent_sessions audit row (may be unknown).
                           if (const char* addr = zmq_msg_gets(frames[0].handle(), "Peer-Address")) peer = addr;
                       }
                       on_register(route, m, peer);
                   },
                   [&](const Telemetry& m) { on_telemetry(route, m); },
                   [&](const Heartbeat& m) { on_heartbeat(route, m); },
                   [&](const wire::Ack& m) { on_ack(route, m); },
                   [&](const auto&) {
                       ++m_counters.refused;
                       malformed(route, m_counters.malformed_agents,
                                 fmt::format("'{}' is not a message an agent sends", type));
                   },
               },
               *message);
}

void Hub::on_register(const std::string& route, const wire::Register& reg, const std::string& peer_address) {
    ++m_counters.registers;
    m_dirty = true;
    const auto asset_it = m_assets.find(reg.asset_id);
    if (asset_it == m_assets.end()) {
        ++m_counters.rejects;
        log::warn("agents: refused register for unknown asset {} (instance {})", reg.asset_id.to_string(),
                  reg.instance_id.to_string());
        send_agent(route, wire::Reject{"unknown_asset",
                                       fmt::format("asset {} is not in this hub's configuration",
                                                   reg.asset_id.to_string()),
                                       {}});
        return;
    }
    const Asset& asset = *asset_it->second;
    const auto outcome = m_sessions.on_register(route, reg, m_clock.mono_ms(), m_clock.now_ms(), offline_after_ms());
    if (!outcome.admitted) {
        ++m_counters.rejects;
        log::warn("agents: refused register for {} (instance {}): {}", asset.qualified_name(),
                  reg.instance_id.to_string(), outcome.reject.reason);
        send_agent(route, outcome.reject);
        return;
    }
    wire::Welcome welcome;
    welcome.asset = asset;
    welcome.telemetry_s = m_fleet.telemetry_s;
    welcome.heartbeat_s = m_fleet.heartbeat_s;
    welcome.ack_seq = outcome.ack_seq;
    if (db()) {
        session_ended(asset.id, outcome.replaced_other_instance ? "replaced" : "reconnected");
        if (const Session* s = m_sessions.by_asset(asset.id)) session_started(*s, peer_address);
        // A fresh agent (no state of its own) starts from what was last stored of its asset.
        if (!reg.state) {
            if (const auto live = m_live.find(asset.id); live != m_live.end() && live->second.latest) {
                const Telemetry& t = *live->second.latest;
                welcome.seed = wire::AgentState{t.soc_mwh, t.current_mw, t.setpoint_mw, t.dispatch_id, std::nullopt};
            }
        }
    }
    // Re-sync: the welcome carries the dispatch in force (or waiting), with
    // what is left of its duration; the agent applies or re-acks it.
    const Dispatch* open = m_dispatches.open_for(asset.id);
    if (open != nullptr) welcome.dispatch = m_dispatches.setpoint_for(*open, now());
    m_reregistered.erase(route);
    if (m_subscriptions > 0)  // a storm registers thousands at once: build the event only for a listener
        publish_stream("agent/" + asset.id.to_string(),
                       wire::encode_agent_event({asset.id, "online", m_clock.now_ms(), std::nullopt}));
    if (send_agent(route, welcome)) {
        if (welcome.dispatch && open->state != DispatchState::applied) {
            m_dispatches.mark_sent(open->dispatch_id, now(), m_changed);
            publish_dispatch_changes();
        }
        if (log::enabled(log::Level::info))  // its arguments are strings built for it
            log::info("agents: {} registered (instance {}, agent {}, epoch {}, last seq {}, ack {})",
                      asset.qualified_name(), reg.instance_id.to_string(), reg.agent_version,
                      reg.epoch.to_string(), reg.last_seq,
                      outcome.ack_seq ? std::to_string(*outcome.ack_seq) : std::string("none"));
    }
}

Session* Hub::session_or_reregister(const std::string& route) {
    if (Session* s = m_sessions.by_route(route)) {
        if (s->live == nullptr) {  // first message of the session: one lookup each, once
            s->live = &m_live[s->asset_id];
            s->history = &m_history.slot(s->asset_id);
        }
        return s;
    }
    ++m_counters.refused;
    // At most one reregister per peer per second: an agent with 256 records
    // in flight must not be answered 256 times.
    const std::int64_t now = m_clock.mono_ms();
    // Bounded by pruning what is past its window, never by clearing: a clear
    // at a fixed size made a 10,000-agent reconnect storm reregister every
    // agent over and over (found by tests/bench). The bound follows the fleet.
    if (m_reregistered.size() > m_reregister_prune_at) {
        std::erase_if(m_reregistered, [now](const auto& entry) { return now - entry.second >= 1000; });
        m_reregister_prune_at = std::max<std::size_t>(1024, 2 * m_reregistered.size());
    }
    auto [it, fresh] = m_reregistered.try_emplace(route, now);
    if (fresh || now - it->second >= 1000) {
        it->second = now;
        if (send_agent(route, wire::Reregister{})) ++m_counters.reregisters_sent;
    }
    return nullptr;
}

void Hub::on_telemetry(const std::string& route, const Telemetry& t) {
    ++m_counters.telemetry_received;
    Session* s = session_or_reregister(route);
    if (s == nullptr) return;
    const std::int64_t now = m_clock.mono_ms();
    if (m_sessions.touch(*s, now, m_clock.now_ms()))
    {
        log::info("agents: {} back online", name_of(s->asset_id));
        if (db()) session_started(*s, {});
        publish_stream("agent/" + s->asset_id.to_string(),
                       wire::encode_agent_event({s->asset_id, "online", m_clock.now_ms(), std::nullopt}));
        if (const Dispatch* open = m_dispatches.open_for(s->asset_id);
            open != nullptr && open->state == DispatchState::queued)
            deliver(open->dispatch_id);
    }
    // With a database a record counts as stored only once the writer took it;
    // when it is over its bound the record is not acknowledged and the agent
    // sends it again.
    // (The writer counts and logs the refusal: der_hub_db_dropped_total.)
    if (db() && m_sessions.peek_telemetry(*s, t) == TelemetryOutcome::stored && !m_writer->push(t)) return;
    switch (m_sessions.on_telemetry(*s, t)) {
    case TelemetryOutcome::stored: {
        ++m_counters.telemetry_stored;
        m_history.add(*s->history, t);
        if (m_subscriptions > 0)  // hot path: build topic and body only for a listener
            publish_stream(fmt::format("telemetry/{}/{}", t.site_id.to_string(), t.asset_id.to_string()),
                           wire::encode_telemetry(t));
        auto& live = *s->live;
        if (!live.latest || live.latest->ts <= t.ts) {
            live.latest = t;
            live.latest_received = m_clock.now_ms();
        }
        if (!db()) mark_tack_due(*s);  // with a database, take_committed() makes it due
        m_dirty = true;
        break;
    }
    case TelemetryOutcome::duplicate:
        ++m_counters.telemetry_duplicate;
        mark_tack_due(*s);  // the agent may have missed our tack: repeat it
        break;
    case TelemetryOutcome::gap: ++m_counters.telemetry_gap; break;
    case TelemetryOutcome::wrong_asset:
        ++m_counters.refused;
        malformed(route, m_counters.refused,
                  fmt::format("telemetry for asset {} on the session of {}", t.asset_id.to_string(),
                              s->asset_id.to_string()));
        break;
    case TelemetryOutcome::wrong_epoch: ++m_counters.refused; break;
    }
}

void Hub::on_heartbeat(const std::string& route, const Heartbeat& h) {
    ++m_counters.heartbeats_received;
    Session* s = session_or_reregister(route);
    if (s == nullptr) return;
    if (h.asset_id != s->asset_id) {
        ++m_counters.refused;
        return;
    }
    m_sessions.touch(*s, m_clock.mono_ms(), m_clock.now_ms());
    s->buffered = h.buffered;
    s->agent_version = h.agent_version;
    s->live->heartbeat = h;
    m_history.add(*s->history, h);
    if (m_writer) m_writer->push(h);  // over the bound it is counted as dropped: heartbeats are not resent
    if (m_subscriptions > 0)  // build topic and body only for a listener
        publish_stream("agent/" + h.asset_id.to_string(),
                       wire::encode_agent_event({h.asset_id, "heartbeat", m_clock.now_ms(), h}));
    m_dirty = true;
}

bool Hub::send_agent(const std::string& route, const wire::AgentMessage& message) {
    const auto frame = wire::encode(message);
    try {
        if (!m_agents.send(zmq::buffer(route), zmq::send_flags::sndmore | zmq::send_flags::dontwait)) {
            ++m_counters.send_failures;
            return false;
        }
        m_agents.send(zmq::buffer(frame.type), zmq::send_flags::sndmore | zmq::send_flags::dontwait);
        m_agents.send(zmq::buffer(frame.body), zmq::send_flags::dontwait);
        return true;
    } catch (const zmq::error_t& e) {
        ++m_counters.send_failures;  // EHOSTUNREACH: the peer is gone
        log::debug("agents: send to {} failed: {}", hex_id(route), e.what());
        return false;
    }
}

void Hub::on_ack(const std::string& route, const wire::Ack& ack) {
    Session* s = session_or_reregister(route);
    if (s == nullptr) return;
    m_sessions.touch(*s, m_clock.mono_ms(), m_clock.now_ms());
    const bool applied = ack.status == wire::AckStatus::applied;
    if (!m_dispatches.on_ack(s->asset_id, ack.dispatch_id, applied, ack.reason, now(), m_changed)) {
        log::debug("dispatch: ignored ack {} for {} from {}", to_string(ack.status), ack.dispatch_id.to_string(),
                   name_of(s->asset_id));
        return;
    }
    if (!applied)
        log::warn("dispatch: {} rejected by {}: {}", ack.dispatch_id.to_string(), name_of(s->asset_id), ack.reason);
    publish_dispatch_changes();
}

Result<Dispatch> Hub::create_dispatch(const DispatchCommand& c) {
    if (auto ok = check_who(c.reason, c.requested_by); !ok) return std::unexpected(ok.error());
    const Asset* asset = resolve_asset(c.asset);
    if (asset == nullptr)
        return fail(Errc::not_found, fmt::format("no asset '{}' (give its UUID or site/asset name)", c.asset));
    if (!c.same_asset_as.empty() && resolve_asset(c.same_asset_as) != asset)
        return fail(Errc::invalid_argument,
                    fmt::format("asset and asset_id name different assets ('{}', '{}')", c.asset, c.same_asset_as));
    if (!std::isfinite(c.mw)) return fail(Errc::invalid_argument, "mw must be a finite number");
    if (auto ok = check_duration(c.duration_s); !ok) return std::unexpected(ok.error());
    if (!is_available(*asset))
        return fail(Errc::refused, fmt::format("{} is unavailable (maintenance) and takes no dispatch",
                                               asset->qualified_name()));
    const auto& limits = asset->limits;
    if (outside_limits(c.mw, limits))
        return fail(Errc::refused,
                    fmt::format("{} MW is outside the limits of {}: [{} MW charge, {} MW discharge]", c.mw,
                                asset->qualified_name(), limits.min_mw, limits.max_mw));
    NewDispatch request{asset->id, c.mw, c.duration_s, c.reason, c.requested_by, c.start_at, std::nullopt};
    const Dispatch& d = m_dispatches.create(request, now(), m_changed);
    const Uuid id = d.dispatch_id;
    record("dispatch", asset->qualified_name(), c.reason, c.requested_by,
           fmt::format("{} {} MW{}{}", id.to_string(), c.mw,
                       c.duration_s ? " for " + format_duration(*c.duration_s) : std::string(),
                       c.start_at ? " from " + format_rfc3339(*c.start_at) : std::string()));
    if (!c.start_at) deliver(id);
    publish_dispatch_changes();
    return *m_dispatches.find(id);
}

void Hub::deliver(const Uuid& dispatch_id) {
    const Dispatch* d = m_dispatches.find(dispatch_id);
    if (d == nullptr) return;
    const Session* s = m_sessions.by_asset(d->asset_id);
    if (s == nullptr || !s->online) return;  // stays queued until the agent registers
    const auto sp = m_dispatches.setpoint_for(*d, now());
    if (!sp) return;  // its time ran out; tick() expires it
    if (send_agent(s->routing_id, *sp)) {
        m_dispatches.mark_sent(dispatch_id, now(), m_changed);
    } else {
        // EHOSTUNREACH (ROUTER_MANDATORY): the peer is gone; wait for it to register again.
        m_dispatches.mark_queued(dispatch_id, now(), m_changed);
    }
}

void Hub::publish_dispatch_changes() {
    if (m_changed.empty()) return;
    for (const auto& d : m_changed) {
        log::debug("dispatch: {} is {}", d.dispatch_id.to_string(), to_string(d.state));
        if (m_writer) m_writer->push(d);
        publish_stream("dispatch/" + d.asset_id.to_string(), wire::encode_dispatch(d));
        answer_waiters(d);
        // A dispatch whose time ran out before it was ever sent may still have
        // superseded the one the battery runs: with nothing in force here now,
        // the battery must not go on with it (0 MW, as after a cancel).
        if (d.state == DispatchState::expired && !d.state_at[static_cast<std::size_t>(DispatchState::sent)] &&
            m_dispatches.open_for(d.asset_id) == nullptr)
            release(d.asset_id);
    }
    m_changed.clear();
    m_dirty = true;
}

void Hub::publish_stream(const std::string& topic, const std::string& body) {
    if (m_subscriptions == 0) return;  // nobody listens: skip the work
    try {
        if (m_stream.send(zmq::buffer(topic), zmq::send_flags::sndmore | zmq::send_flags::dontwait))
            m_stream.send(zmq::buffer(body), zmq::send_flags::dontwait);
    } catch (const zmq::error_t&) {
        // XPUB drops at the high-water mark; a send error here is never the loop's problem.
    }
}

void Hub::drain_stream() {
    // XPUB delivers (un)subscriptions as messages: byte 1 = subscribe, 0 = unsubscribe.
    for (int i = 0; i < k_max_batch; ++i) {
        zmq::message_t msg;
        std::optional<std::size_t> n;
        try {
            n = m_stream.recv(msg, zmq::recv_flags::dontwait);
        } catch (const zmq::error_t&) {
            return;
        }
        if (!n) return;
        if (msg.size() == 0) continue;
        const auto first = static_cast<const unsigned char*>(msg.data())[0];
        if (first == 1) {
            ++m_subscriptions;
            // Once this one is taken, the subscriber's earlier ones are too
            // (stream.hpp); the answer tells it so. ZMQ_XPUB_WELCOME_MSG would
            // be sent at connect, before any subscription is in place.
            if (msg.to_string_view().substr(1) == stream::k_welcome) {
                try {
                    (void)m_stream.send(zmq::buffer(stream::k_welcome), zmq::send_flags::dontwait);
                } catch (const zmq::error_t&) {
                }
            }
        } else if (first == 0 && m_subscriptions > 0) {
            --m_subscriptions;
        }
    }
}

void Hub::flush_tacks(std::int64_t now) {
    m_last_tack_flush = now;
    if (m_tack_due.empty()) return;
    std::size_t kept = 0;
    for (std::size_t i = 0; i < m_tack_due.size(); ++i) {
        Session* s = m_sessions.by_asset(m_tack_due[i]);
        if (s == nullptr || !s->tack_due) continue;
        if (now - s->last_tack_mono < k_tack_interval_ms) {
            m_tack_due[kept++] = m_tack_due[i];
            continue;
        }
        const auto acked = m_sessions.tack_seq(*s);  // with --db: only what is committed
        s->tack_due = false;
        if (!acked) continue;
        s->last_tack_mono = now;
        if (send_agent(s->routing_id, wire::Tack{s->epoch, *acked})) ++m_counters.tacks_sent;
    }
    m_tack_due.resize(kept);
}

void Hub::sweep(std::int64_t now) {
    m_last_sweep = now;
    for (const auto& id : m_sessions.sweep_offline(now, offline_after_ms())) {
        publish_stream("agent/" + id.to_string(), wire::encode_agent_event({id, "offline", m_clock.now_ms(), std::nullopt}));
        log::warn("agents: {} offline (silent for more than {})", name_of(id),
                  format_duration(3.0 * m_fleet.telemetry_s));
        if (db()) session_ended(id, "offline");
        m_dirty = true;
    }
    m_history.trim(m_clock.now_ms());
    if (now - m_last_trim >= k_trim_interval_ms) release_free_memory(now);
}

void Hub::release_free_memory(std::int64_t now) {
    // A backlog (a loop that fell behind on a busy machine, a reconnect
    // storm) makes libzmq's I/O thread allocate message buffers in its own
    // glibc arena; once the backlog is drained they are free but stay
    // resident, and RSS never comes back down (the soak saw +3 MiB for good
    // after one load spike). Give free pages back once a minute; it walks
    // the arenas' free lists, well under a millisecond at a few 10 MiB.
    m_last_trim = now;
    const auto started = std::chrono::steady_clock::now();
    ::malloc_trim(0);
    const auto us =
        std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - started).count();
    if (us >= 5000) log::info("memory: returning free heap pages to the system took {} ms", us / 1000);
}

std::shared_ptr<const AssetView> Hub::build_view(std::size_t index) const {
    const Asset& asset = *m_fleet_view->assets[index];
    auto view = std::make_shared<AssetView>(asset);
    view->available = is_available(asset);
    if (const auto live = m_live.find(asset.id); live != m_live.end()) {
        view->latest = live->second.latest;
        view->latest_received = live->second.latest_received;
        view->heartbeat = live->second.heartbeat;
    }
    if (const Session* s = m_sessions.by_asset(asset.id)) {
        view->agent = AgentView{s->instance_id,  s->online,         s->agent_version,
                                s->connected_at, s->last_seen_wall, s->buffered};
    }
    return view;
}

void Hub::publish(std::int64_t now) {
    const auto build_started = std::chrono::steady_clock::now();
    // Only the views of assets that changed since the last publish are built;
    // the others, and the configuration part, are shared with it.
    ++m_publishes;
    std::size_t built = 0;
    const auto rebuild = [&](std::size_t index) {
        if (m_view_built_at[index] == m_publishes) return;
        m_view_built_at[index] = m_publishes;
        m_views[index] = build_view(index);
        ++built;
    };
    const auto journal = m_sessions.take_changed();
    if (m_all_views_stale) {
        for (std::size_t i = 0; i < m_views.size(); ++i) rebuild(i);
        m_all_views_stale = false;
        m_changed_assets.clear();
    } else {
        // At most k_max_views_per_publish views per publish: a reconnect
        // storm changes every asset at once, and building 10,000 views in one
        // turn held the loop (and every ack) for ~25 ms. The rest wait in
        // m_changed_assets for the next publish, one interval later.
        std::vector<Uuid> later;
        const auto& by_id = m_fleet_view->by_id;
        for (const std::vector<Uuid>* ids : {&std::as_const(m_changed_assets), &journal})
            for (const auto& id : *ids) {
                const auto it = by_id.find(id);
                if (it == by_id.end() || m_view_built_at[it->second] == m_publishes) continue;
                if (built < k_max_views_per_publish) rebuild(it->second);
                else later.push_back(id);
            }
        m_changed_assets = std::move(later);
    }

    auto snap = std::make_shared<Snapshot>();
    snap->fleet = m_fleet_view;
    snap->assets = m_views;
    snap->counters = m_counters;
    snap->history_rows = m_history.telemetry_rows();
    snap->agents_online = m_sessions.online_count();
    snap->stream_subscriptions = m_subscriptions;
    for (std::size_t i = 0; i < k_dispatch_state_count; ++i) {
        snap->dispatches_in_state[i] = m_dispatches.count_in(static_cast<DispatchState>(i));
        snap->dispatch_transitions[i] = m_dispatches.transitions(static_cast<DispatchState>(i));
    }
    snap->ack_latency = m_dispatches.ack_latency();
    snap->loop_turns = m_loop_turns;
    snap->published_at = m_clock.now_ms();
    snap->views_built = built;
    const auto build_us = std::chrono::duration_cast<std::chrono::microseconds>(
                              std::chrono::steady_clock::now() - build_started)
                              .count();
    snap->build_us = build_us;
    m_snapshots.publish(std::move(snap));
    m_last_publish = now;
    m_dirty = !m_changed_assets.empty();
    m_publish_interval_ms = std::clamp<std::int64_t>(k_publish_cost_share * build_us / 1000, k_publish_interval_ms,
                                                     k_publish_interval_max_ms);
}

void Hub::reload() {
    log::info("SIGHUP: reloading {}", m_options.config_path);
    auto loaded = config::load_file(m_options.config_path);
    if (!loaded) {
        // One log line per error: a journal entry keeps its priority (and a
        // JSON log stays one object a line).
        for (const auto line : split_lines(loaded.error().message))
            if (!line.empty()) log::error("reload failed, keeping the current configuration: {}", line);
        return;
    }
    for (const auto& w : loaded->warnings) log::warn("{}", w.to_string());
    std::unordered_set<Uuid> kept;
    std::unordered_map<Uuid, std::string> new_keys;
    for (const auto& site : loaded->fleet.sites)
        for (const auto& asset : site.assets) {
            kept.insert(asset.id);
            if (!asset.agent_public_key.empty()) new_keys.emplace(asset.id, asset.agent_public_key);
        }
    if (new_keys.empty() == m_curve) {
        log::error("reload failed, keeping the current configuration: {} (CURVE is switched on or off only by a "
                   "restart with or without --curve-secret-file)",
                   m_curve ? "the new assets.yaml has no agent_public_key" : "the new assets.yaml has agent keys");
        return;
    }
    // A changed or removed key: the session it opened ends now (libzmq does
    // not re-authenticate live connections; identity_fits refuses the rest).
    for (const auto& [id, asset] : m_assets) {
        if (!m_curve || !kept.contains(id)) continue;
        const auto it = new_keys.find(id);
        if (it != new_keys.end() && it->second == asset->agent_public_key) continue;
        log::info("reload: the agent key of {} changed; its session ends", asset->qualified_name());
        if (const Session* s = m_sessions.by_asset(id))
            send_agent(s->routing_id, wire::Reject{"unauthorized", "the asset's agent key changed", {}});
        if (db()) session_ended(id, "key_changed");
        m_sessions.drop_asset(id);
    }
    std::size_t removed = 0;
    for (const auto& [id, asset] : m_assets) {
        if (kept.contains(id)) continue;
        ++removed;
        log::info("reload: {} removed from the configuration; its session ends, its history is kept",
                  asset->qualified_name());
        if (const Session* s = m_sessions.by_asset(id))
            send_agent(s->routing_id, wire::Reject{"unknown_asset", "asset removed from the hub's configuration", {}});
        if (db()) session_ended(id, "removed");
        m_sessions.drop_asset(id);
    }
    const std::size_t before = m_assets.size();
    // What each kept agent was welcomed with, to tell the changed ones.
    std::unordered_map<Uuid, Asset> was;
    for (const auto& [id, asset] : m_assets)
        if (kept.contains(id)) was.emplace(id, *asset);
    const bool intervals_changed =
        loaded->fleet.telemetry_s != m_fleet.telemetry_s || loaded->fleet.heartbeat_s != m_fleet.heartbeat_s;
    set_fleet(std::move(loaded->fleet));
    push_reloaded(was, intervals_changed);
    // The database: sites and assets upserted, the absent ones retired (their history stays).
    if (m_writer && !m_writer->push(store::FleetSync{m_fleet.sites, store::RetireScope::all_assets}))
        log::error("reload: the database writer is over its bound; the fleet is not synced to PostgreSQL");
    log::info("reload: {} assets ({} before, {} removed)", m_assets.size(), before, removed);
}

void Hub::push_reloaded(const std::unordered_map<Uuid, Asset>& was, bool intervals_changed) {
    // An agent learns its asset (limits, intervals, availability) from its
    // welcome: one whose asset changed is asked to register again
    // (`reregister`), so that it gets the new one now, not at its next
    // reconnect. Before that, the dispatch in force must still hold: one an
    // asset taken out of service, or outside its new limits, is cancelled
    // and the battery released, as POST /assets/{id}/availability does.
    std::size_t told = 0;
    for (const auto& [id, old] : was) {
        const Asset* now_asset = m_assets.at(id);
        if (*now_asset == old && !intervals_changed) continue;
        if (old.available && !now_asset->available) {
            const std::string why = "asset taken out of service by a configuration reload";
            if (take_out_of_service(id, why) > 0) log::info("reload: {}: {}", now_asset->qualified_name(), why);
        } else if (const Dispatch* d = m_dispatches.open_for(id);
                   d != nullptr && outside_limits(d->mw, now_asset->limits)) {
            const std::string why =
                fmt::format("{} MW is outside the limits of the reloaded configuration [{} MW, {} MW]", d->mw,
                            now_asset->limits.min_mw, now_asset->limits.max_mw);
            const Uuid dispatch_id = d->dispatch_id;
            log::info("reload: {}: dispatch {} cancelled: {}", now_asset->qualified_name(), dispatch_id.to_string(),
                      why);
            if (auto in_force = m_dispatches.cancel(dispatch_id, why, now(), m_changed); in_force)
                for (const auto& asset : *in_force) release(asset);
        }
        asset_changed(id);
        const Session* s = m_sessions.by_asset(id);
        if (s == nullptr || !s->online) continue;  // it gets the new asset in its next welcome
        if (send_agent(s->routing_id, wire::Reregister{})) {
            ++m_counters.reregisters_sent;
            ++told;
        }
    }
    publish_dispatch_changes();
    if (told > 0) log::info("reload: {} online agent(s) asked to register again for their changed asset", told);
}

void Hub::open_database() {
    const std::string& conninfo = *m_options.db;
    auto store = store::Store::open(conninfo, m_clock.now_ms());
    if (!store) throw cli::ExitError(exit_code(store.error().code), "database: " + store.error().message);
    const auto& migration = store->migration();
    if (migration.changed())
        log::info("database: schema migrated from version {} to {}", migration.from_version, migration.to_version);
    else
        log::info("database: schema at version {}", migration.to_version);
    auto synced = store->sync_fleet({m_fleet.sites, store::RetireScope::all_assets});
    if (!synced) throw cli::ExitError(exit_code(synced.error().code), "database: fleet sync: " + synced.error().message);
    log::info("database: fleet synced ({} assets new, {} retired, {} back)", synced->assets_inserted,
              synced->assets_retired, synced->assets_returned);
    auto restored = store->restore();
    if (!restored) throw cli::ExitError(exit_code(restored.error().code), "database: restore: " + restored.error().message);
    restore(*restored);

    m_sessions.set_tack_committed(true);
    m_writer = std::make_unique<store::Writer>(store::WriterOptions{.conninfo = conninfo});
    m_writer->on_commit([this] { m_mailbox.post([] {}); });  // wakes the loop: tacks are due
    m_writer->start();
    start_history_worker();
}

void Hub::restore(const store::Restored& restored) {
    std::size_t assets = 0;
    for (const auto& t : restored.last_telemetry) {
        if (!m_assets.contains(t.asset_id)) continue;
        auto& live = m_live[t.asset_id];
        live.latest = t;
        live.latest_received = t.ts;  // its age is that of the record, not of the restart
        ++assets;
    }
    for (const auto& e : restored.last_epochs)
        if (m_assets.contains(e.asset_id)) m_sessions.restore_epoch(e.asset_id, e.epoch, e.seq);
    std::unordered_set<Uuid> sites;
    for (const auto& site : m_fleet.sites) sites.insert(site.id);
    std::size_t dispatches = 0;
    for (const auto& d : restored.open_dispatches) {
        const bool parent = sites.contains(d.asset_id);
        if (!parent && !m_assets.contains(d.asset_id)) continue;  // its asset is no longer configured
        if (m_dispatches.adopt(d, now(), parent, m_changed)) ++dispatches;
    }
    log::info("database: restored the last state of {} assets and {} dispatches in force", assets, dispatches);
    m_dirty = true;
}

void Hub::take_committed() {
    for (const auto& c : m_writer->take_committed())
        if (Session* s = m_sessions.on_committed(c.asset_id, c.epoch, c.seq)) mark_tack_due(*s);
}

void Hub::session_started(const Session& s, const std::string& peer_address) {
    store::AgentSession rec;
    rec.session_id = Uuid::v7(m_clock.now_ms());
    rec.asset_id = s.asset_id;
    rec.instance_id = s.instance_id;
    rec.epoch = s.epoch;
    rec.agent_version = s.agent_version;
    rec.remote_address = peer_address;
    rec.connected_at = m_clock.now_ms();
    m_writer->push(rec);
    m_db_sessions[s.asset_id] = std::move(rec);
}

void Hub::session_ended(const Uuid& asset_id, const std::string& reason) {
    const auto it = m_db_sessions.find(asset_id);
    if (it == m_db_sessions.end()) return;
    it->second.disconnected_at = m_clock.now_ms();
    it->second.disconnect_reason = reason;
    m_writer->push(it->second);
    m_db_sessions.erase(it);
}

int run(const HubOptions& options, cli::Signals& signals) {
    auto loaded = config::load_file(options.config_path);
    if (!loaded) throw cli::ExitError(exit_code(loaded.error().code), loaded.error().message);
    for (const auto& w : loaded->warnings) log::warn("{}", w.to_string());
    Hub hub(options, std::move(*loaded), signals);
    return hub.run();
}

}  // namespace der::hub
