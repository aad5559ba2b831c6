#include "agent.hpp"

#include "der/util/log.hpp"
#include "der/version.hpp"
#include "der/wire_codec.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <variant>

namespace der::agent {

namespace {

/// How many ended dispatch IDs the agent remembers, so that a welcome or a
/// late resend of a dispatch that already ran its course here is not applied
/// a second time.
constexpr std::size_t k_ended_remembered = 16;

std::string fmt_opt_seq(const std::optional<std::uint64_t>& seq) {
    return seq ? std::to_string(*seq) : std::string("none");
}

/// The next deadline of a periodic timer: one period after the last one, or
/// one period from now when the loop fell behind (no burst of catch-ups).
std::int64_t next_period(std::int64_t last_deadline, std::int64_t period, std::int64_t now) {
    const std::int64_t next = last_deadline + period;
    return next > now ? next : now + period;
}

}  // namespace

std::int64_t register_retry_ms(int unanswered, std::uint64_t salt) {
    const int doublings = std::clamp(unanswered - 1, 0, 16);
    const std::int64_t base =
        std::min(AgentCore::k_register_retry_ms << doublings, AgentCore::k_register_retry_max_ms);
    // splitmix64 of (salt, attempt): a fixed spread per instance and attempt.
    std::uint64_t z = salt + 0x9e3779b97f4a7c15ULL * static_cast<std::uint64_t>(unanswered + 1);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    const double factor = 0.75 + 0.5 * (static_cast<double>(z >> 11) / 9007199254740992.0);  // [0.75, 1.25)
    return static_cast<std::int64_t>(static_cast<double>(base) * factor);
}

std::int64_t to_ms(double seconds) {
    if (!std::isfinite(seconds) || seconds <= 0.0) return 1;
    const double ms = std::round(seconds * 1000.0);
    if (ms >= static_cast<double>(std::numeric_limits<std::int64_t>::max() / 4))
        return std::numeric_limits<std::int64_t>::max() / 4;
    return std::max<std::int64_t>(1, static_cast<std::int64_t>(ms));
}

AgentCore::AgentCore(AgentSettings settings, Adapter& adapter, const Clock& clock, SendFn send)
    : m_settings(std::move(settings)),
      m_adapter(adapter),
      m_clock(clock),
      m_send(std::move(send)),
      m_instance_id(Uuid::v7()),
      m_epoch(Uuid::v7()),
      m_ring(m_settings.buffer_records),
      m_limits(m_settings.asset.limits),
      m_site_id(m_settings.asset.site_id),
      m_start_mono_ms(clock.mono_ms()),
      m_tick_ms(to_ms(m_settings.tick_s)),
      m_telemetry_ms(to_ms(m_settings.telemetry_s)),
      m_heartbeat_ms(to_ms(m_settings.heartbeat_s)),
      m_hub_timeout_ms(to_ms(m_settings.hub_timeout_s)),
      m_last_step_mono_ms(m_start_mono_ms),
      m_next_tick_ms(m_start_mono_ms + m_tick_ms),
      m_next_telemetry_ms(m_start_mono_ms + m_telemetry_ms),
      m_next_heartbeat_ms(m_start_mono_ms + m_heartbeat_ms),
      m_next_register_ms(m_start_mono_ms),
      m_next_state_log_ms(m_start_mono_ms + k_state_log_ms),
      m_last_heard_mono_ms(m_start_mono_ms) {
    m_adapter.set_limits(m_limits);
}

void AgentCore::attach_spool(Spool& spool, const SpoolContents& contents) {
    m_spool = &spool;
    const std::int64_t now = m_clock.mono_ms();
    if (contents.cut_bytes > 0)
        log::warn("spool {}: dropped {} bytes at its end ({}): a write the agent did not finish",
                  spool.path().string(), contents.cut_bytes, contents.cut_reason);
    if (!contents.epoch) {
        spool_result(spool.start_epoch(m_epoch, m_last_seq), now);
        return;
    }
    // Carry on under the earlier run's epoch: its records keep their (epoch,
    // seq), so the hub's dedupe keeps them exactly-once, and new records
    // follow on without a gap.
    m_epoch = *contents.epoch;
    m_last_seq = contents.last_seq;
    m_ring.restart(contents.acked_seq, now);
    for (const Telemetry& t : contents.unacked) {
        if (m_ring.push(t) > 0 && m_ring.dropped() == 1)
            log::warn("spool holds more records than --buffer {}: the oldest are dropped", m_ring.capacity());
    }
    log::info("spool {}: resuming epoch {} after seq {}; {} unacknowledged records to resend (seq {}..{})",
              spool.path().string(), m_epoch.to_string(), m_last_seq, m_ring.size(),
              fmt_opt_seq(m_ring.oldest_seq()), fmt_opt_seq(m_ring.newest_seq()));
}

bool AgentCore::move_past_hole(std::uint64_t hub_seq, std::int64_t now) {
    if (!m_ring.oldest_seq() || *m_ring.oldest_seq() <= hub_seq + 1) return false;
    // Records after what the hub holds were dropped (buffer or spool full):
    // the hub takes an epoch strictly in order and would refuse the rest for
    // ever. None of them can be stored yet, so they carry on under a new
    // epoch (same seqs), announced by a new registration.
    const Uuid old_epoch = m_epoch;
    m_epoch = Uuid::v7();
    m_ring.move_to_epoch(m_epoch, now);
    log::warn("seq {}..{} of epoch {} were dropped before the hub had them: the {} records held move to epoch {}",
              hub_seq + 1, *m_ring.oldest_seq() - 1, old_epoch.to_string(), m_ring.size(), m_epoch.to_string());
    if (m_spool != nullptr) {
        spool_result(m_spool->start_epoch(m_epoch, m_last_seq), now);
        for (std::size_t i = 0; i < m_ring.size(); ++i) spool_result(m_spool->append(m_ring.at(i)), now);
    }
    m_welcomed = false;
    send_register(now);
    return true;
}

void AgentCore::spool_result(const Result<void>& result, std::int64_t now) {
    if (result) return;
    ++m_spool_errors;
    if (m_spool_error_logged_ms && now - *m_spool_error_logged_ms < k_state_log_ms) return;
    m_spool_error_logged_ms = now;
    log::warn("spool: {} ({} errors in all); telemetry stays buffered in memory", result.error().message,
              m_spool_errors);
}

// --- events -----------------------------------------------------------------

void AgentCore::on_connected(std::string_view endpoint) {
    const std::int64_t now = m_clock.mono_ms();
    m_connected = true;
    m_registers_unanswered = 0;  // a new connection: its register is the first
    if (m_welcomed) return;  // a welcome already overtook the monitor event
    log::info("connected to hub {}", endpoint);
    send_register(now);
}

void AgentCore::on_disconnected(std::string_view endpoint) {
    const bool had_session = m_welcomed;
    m_connected = false;
    m_welcomed = false;
    m_send_blocked = false;
    m_ring.rewind(m_clock.mono_ms());
    m_registers_unanswered = 0;
    // Register again as soon as a connection is back (the monitor will say so).
    m_next_register_ms = m_clock.mono_ms() + k_register_retry_ms;
    log::info("disconnected from hub {}{}; {} records buffered", endpoint,
              had_session ? " (session closed)" : "", m_ring.size());
}

void AgentCore::on_message(const wire::AgentMessage& message) {
    const std::int64_t now = m_clock.mono_ms();
    m_last_heard_mono_ms = now;
    m_connected = true;  // whatever the monitor has said so far
    if (m_hub_lost) {
        m_hub_lost = false;
        log::info("hub heard from again");
    }
    std::visit(
        [&](const auto& msg) {
            using T = std::decay_t<decltype(msg)>;
            if constexpr (std::is_same_v<T, wire::Welcome> || std::is_same_v<T, wire::Reject> ||
                          std::is_same_v<T, wire::Tack> || std::is_same_v<T, Setpoint>) {
                handle(msg, now);
            } else if constexpr (std::is_same_v<T, wire::Reregister>) {
                handle_reregister(now);
            } else {
                on_bad_frame(fmt::format("unexpected '{}' message from the hub", wire::type_name(message)));
            }
        },
        message);
}

void AgentCore::on_bad_frame(std::string_view what) {
    ++m_bad_frames;
    const std::int64_t now = m_clock.mono_ms();
    if (m_bad_frame_logged_ms && now - *m_bad_frame_logged_ms < k_bad_frame_log_ms) {
        ++m_bad_frames_unlogged;
        return;
    }
    log::warn("dropped a frame from the hub: {} ({} more dropped since the last report, {} in all)", what,
              m_bad_frames_unlogged, m_bad_frames);
    m_bad_frames_unlogged = 0;
    m_bad_frame_logged_ms = now;
}

void AgentCore::run_timers() {
    const std::int64_t now = m_clock.mono_ms();

    m_adapter.poll();
    settle_pending(now);
    if (m_spool != nullptr) spool_result(m_spool->sync_if_due(now), now);

    // The dispatch ends first, so no tick or record runs past its end at its power.
    if (m_dispatch && m_dispatch->end_mono_ms && now >= *m_dispatch->end_mono_ms) {
        advance_device(*m_dispatch->end_mono_ms);
        end_dispatch(now, "its duration is over");
    }
    if (now >= m_next_tick_ms) {
        advance_device(now);
        m_next_tick_ms = next_period(m_next_tick_ms, m_tick_ms, now);
    }
    if (now >= m_next_telemetry_ms) {
        produce_telemetry(now);
        m_next_telemetry_ms = next_period(m_next_telemetry_ms, m_telemetry_ms, now);
    }
    if (m_welcomed && now >= m_next_heartbeat_ms) {
        send_heartbeat(now);
        m_next_heartbeat_ms = next_period(m_next_heartbeat_ms, m_heartbeat_ms, now);
    }
    // A lost register must not hang the agent: retry until a welcome comes.
    // With no connection the send fails at once and costs nothing.
    if (!m_welcomed && now >= m_next_register_ms) send_register(now);

    // A stall over a hole (the ring dropped records while the hub was
    // connected but not acknowledging) needs a new epoch, not a resend.
    if (m_welcomed && m_ring.stalled(now, 2 * m_telemetry_ms) && m_ring.acked_seq() > 0)
        move_past_hole(m_ring.acked_seq(), now);
    if (m_welcomed && m_ring.stalled(now, 2 * m_telemetry_ms)) {
        log::info("no tack for {}: going back to seq {} ({} records in flight)",
                  format_duration(2.0 * static_cast<double>(m_telemetry_ms) / 1000.0), m_ring.acked_seq() + 1,
                  m_ring.in_flight());
        m_ring.rewind(now);
    }
    pump(now);

    if (!m_hub_lost && now - m_last_heard_mono_ms >= m_hub_timeout_ms) {
        m_hub_lost = true;
        const bool zero = m_settings.on_hub_loss == HubLoss::zero;
        log::warn("hub loss: nothing heard from the hub for {}; {}; telemetry stays buffered ({} records)",
                  format_duration(static_cast<double>(now - m_last_heard_mono_ms) / 1000.0),
                  zero ? "going to 0 MW (--on-hub-loss zero)" : "holding the setpoint (--on-hub-loss hold)",
                  m_ring.size());
        if (zero) {
            advance_device(now);
            if (m_pending) {
                log::info("dispatch {} dropped before the device answered (the hub is lost)",
                          m_pending->setpoint.dispatch_id.to_string());
                m_pending.reset();
            }
            if (m_dispatch) {
                end_dispatch(now, "the hub is lost");
            } else {
                (void)m_adapter.apply_setpoint(0.0);
            }
        }
    }

    if (now >= m_next_state_log_ms) {
        log_state();
        m_next_state_log_ms = next_period(m_next_state_log_ms, k_state_log_ms, now);
    }
}

std::int64_t AgentCore::next_deadline_mono_ms() const {
    std::int64_t next = std::min({m_next_tick_ms, m_next_telemetry_ms, m_next_state_log_ms});
    if (m_welcomed) next = std::min(next, m_next_heartbeat_ms);
    if (!m_welcomed) next = std::min(next, m_next_register_ms);
    if (m_dispatch && m_dispatch->end_mono_ms) next = std::min(next, *m_dispatch->end_mono_ms);
    if (!m_hub_lost) next = std::min(next, m_last_heard_mono_ms + m_hub_timeout_ms);
    if (m_welcomed) {
        if (const auto stall = m_ring.stall_deadline_ms(2 * m_telemetry_ms)) next = std::min(next, *stall);
    }
    if (m_welcomed && m_send_blocked) next = std::min(next, m_clock.mono_ms() + k_send_retry_ms);
    if (const auto device = m_adapter.next_deadline_mono_ms()) next = std::min(next, *device);
    return next;
}

// --- observers --------------------------------------------------------------

std::optional<Uuid> AgentCore::dispatch_id() const {
    if (!m_dispatch) return std::nullopt;
    return m_dispatch->id;
}

std::optional<Uuid> AgentCore::pending_dispatch_id() const {
    if (!m_pending) return std::nullopt;
    return m_pending->setpoint.dispatch_id;
}

std::optional<double> AgentCore::dispatch_remaining_s() const {
    if (!m_dispatch || !m_dispatch->end_mono_ms) return std::nullopt;
    const std::int64_t left = std::max<std::int64_t>(0, *m_dispatch->end_mono_ms - m_clock.mono_ms());
    return static_cast<double>(left) / 1000.0;
}

wire::Register AgentCore::make_register() const {
    wire::Register reg;
    reg.asset_id = m_settings.asset.id;
    reg.proto = k_protocol_version;
    reg.agent_version = std::string(version());
    reg.instance_id = m_instance_id;
    reg.epoch = m_epoch;
    reg.last_seq = m_last_seq;
    if (m_have_state) {
        const DeviceState device = m_adapter.read();
        wire::AgentState state;
        state.soc_mwh = device.soc_mwh;
        state.current_mw = device.current_mw;
        state.setpoint_mw = device.setpoint_mw;
        state.dispatch_id = dispatch_id();
        state.remaining_s = dispatch_remaining_s();
        reg.state = state;
    }
    reg.limits = m_settings.asset.limits;
    return reg;
}

void AgentCore::log_state() const {
    const DeviceState device = m_adapter.read();
    const auto remaining = dispatch_remaining_s();
    log::info(
        "state: soc {:.1f}% ({:.3f} MWh), {:.3f} MW (setpoint {:.3f} MW, {}), dispatch {}{}; session {}; "
        "buffer {} records (in flight {}, acked seq {}, last seq {}, dropped {})",
        device.soc_pct, device.soc_mwh, device.current_mw, device.setpoint_mw,
        device.fault_reason.empty() ? std::string(to_string(device.status))
                                    : fmt::format("fault: {}", device.fault_reason),
        m_dispatch ? m_dispatch->id.to_string() : std::string("none"),
        remaining ? fmt::format(" ({} left)", format_duration(*remaining)) : std::string(),
        m_welcomed ? "registered" : (m_connected ? "connected, not registered" : "disconnected"),
        m_ring.size(), m_ring.in_flight(), m_ring.acked_seq(), m_last_seq, m_ring.dropped());
}

// --- session ----------------------------------------------------------------

void AgentCore::send_register(std::int64_t now) {
    const bool sent = m_send(make_register());
    if (sent) {
        ++m_registers_unanswered;
        m_last_register_sent_ms = now;
        log::debug("register sent (last seq {}, {} unanswered)", m_last_seq, m_registers_unanswered);
    }
    if (m_rejected)
        m_next_register_ms = now + k_register_after_reject_ms;
    else if (sent)
        m_next_register_ms = now + register_retry_ms(m_registers_unanswered, UuidHash{}(m_instance_id));
    else
        m_next_register_ms = now + (m_connected ? k_register_fast_retry_ms : k_register_retry_ms);
}

void AgentCore::handle(const wire::Welcome& welcome, std::int64_t now) {
    if (welcome.asset.id != m_settings.asset.id) {
        log::error("hub welcomed asset {} but this agent is {}; ignoring it and registering again",
                   welcome.asset.id.to_string(), m_settings.asset.id.to_string());
        m_next_register_ms = now + k_register_after_reject_ms;
        return;
    }
    const bool first = !m_have_state;
    advance_device(now);

    const BessLimits previous = m_limits;
    m_limits = stricter(m_settings.asset.limits, welcome.asset.limits);
    m_adapter.set_limits(m_limits);
    if (m_limits != previous)
        log::info(
            "limits in force (stricter of local and hub's): max {} MW, min {} MW, capacity {} MWh, ramp {} "
            "MW/s, "
            "soc {}-{}%",
            m_limits.max_mw, m_limits.min_mw, m_limits.capacity_mwh, m_limits.ramp_mw_per_s,
            m_limits.soc_min_pct, m_limits.soc_max_pct);
    // The hub names the asset (an agent started with a bare UUID knows no names).
    if (!welcome.asset.site_id.is_nil()) m_site_id = welcome.asset.site_id;
    if (!welcome.asset.name.empty()) m_settings.asset.name = welcome.asset.name;
    if (!welcome.asset.site_name.empty()) m_settings.asset.site_name = welcome.asset.site_name;

    if (first && welcome.seed) {
        m_adapter.restore(*welcome.seed);
        const DeviceState device = m_adapter.read();
        log::info("state restored from the hub: soc {:.3f} MWh ({:.1f}%), {:.3f} MW", device.soc_mwh,
                  device.soc_pct, device.current_mw);
    }
    m_have_state = true;

    if (std::isfinite(welcome.telemetry_s) && welcome.telemetry_s > 0.0 &&
        to_ms(welcome.telemetry_s) != m_telemetry_ms) {
        m_telemetry_ms = to_ms(welcome.telemetry_s);
        m_next_telemetry_ms = now + m_telemetry_ms;
        log::info("telemetry every {} (from the hub)", format_duration(welcome.telemetry_s));
    }
    if (std::isfinite(welcome.heartbeat_s) && welcome.heartbeat_s > 0.0)
        m_heartbeat_ms = to_ms(welcome.heartbeat_s);
    m_next_heartbeat_ms = now + m_heartbeat_ms;

    m_welcomed = true;
    m_registers_unanswered = 0;
    m_rejected = false;
    m_send_blocked = false;
    if (welcome.ack_seq && *welcome.ack_seq > m_last_seq) {
        // The hub holds more of this epoch than we ever made: the spool lost
        // its last records (an OS crash before they were synced). Go on after
        // the hub's, so no seq means two records.
        log::warn("hub holds epoch {} up to seq {} but the agent made only {}: continuing after the hub's",
                  m_epoch.to_string(), *welcome.ack_seq, m_last_seq);
        m_last_seq = *welcome.ack_seq;
    }
    m_ring.restart(welcome.ack_seq, now);
    if (m_spool != nullptr && welcome.ack_seq) spool_result(m_spool->acknowledge(*welcome.ack_seq), now);
    if (welcome.ack_seq) move_past_hole(*welcome.ack_seq, now);
    log::info(
        "registered with hub as {} (epoch {}): hub's ack_seq {}, resending {} buffered records (seq {}..{})",
        m_settings.asset.qualified_name(), m_epoch.to_string(), fmt_opt_seq(welcome.ack_seq), m_ring.size(),
        fmt_opt_seq(m_ring.oldest_seq()), fmt_opt_seq(m_ring.newest_seq()));

    // Re-sync: the welcome carries the dispatch in force at the hub.
    // The hub is authoritative: no dispatch in force there (cancelled, stopped
    // or expired while we were away, or a hub without a database that
    // restarted) means none here either.
    if (welcome.dispatch) {
        apply_dispatch(*welcome.dispatch, now);
    } else if (m_dispatch || m_pending) {
        m_pending.reset();
        if (m_dispatch) end_dispatch(now, "the hub has no dispatch in force for this asset");
        else (void)m_adapter.apply_setpoint(0.0);
    }
    pump(now);
    // The first record of a run reaches the hub at once, with the restored state.
    if (first) {
        produce_telemetry(now);
        m_next_telemetry_ms = now + m_telemetry_ms;
    }
}

void AgentCore::handle(const wire::Reject& reject, std::int64_t now) {
    m_welcomed = false;
    m_rejected = true;
    m_registers_unanswered = 0;
    // The hub's hint (an asset held by a previous instance of ours: free once
    // that one has been silent for 3 telemetry intervals) when sooner than ours.
    std::int64_t retry_ms = k_register_after_reject_ms;
    if (reject.retry_after_s && *reject.retry_after_s > 0.0)
        retry_ms = std::clamp<std::int64_t>(std::llround(*reject.retry_after_s * 1000.0), k_min_reject_retry_ms,
                                            k_register_after_reject_ms);
    m_next_register_ms = now + retry_ms;
    log::error("hub rejected the registration of {}: {}: {}; retrying in {}", m_settings.asset.qualified_name(),
               reject.code, reject.reason, format_duration(static_cast<double>(retry_ms) / 1000.0));
}

void AgentCore::handle(const wire::Tack& tack, std::int64_t now) {
    if (tack.epoch != m_epoch) {
        log::debug("tack for another epoch {} ignored", tack.epoch.to_string());
        return;
    }
    if (m_ring.acknowledge(tack.seq, now)) {
        if (m_spool != nullptr) spool_result(m_spool->acknowledge(tack.seq), now);
        pump(now);
    }
}

void AgentCore::handle(const Setpoint& setpoint, std::int64_t now) {
    if (setpoint.dispatch_id.is_nil()) {
        // A release (cancel, stop, maintenance): 0 MW and no dispatch in force; no ack.
        m_pending.reset();
        if (m_dispatch) {
            end_dispatch(now, "released by the hub (cancel, stop or maintenance)");
        } else {
            advance_device(now);
            (void)m_adapter.apply_setpoint(0.0);
            log::info("released by the hub: 0 MW");
        }
        return;
    }
    if (!m_welcomed)
        log::debug("setpoint {} before a welcome; applying it", setpoint.dispatch_id.to_string());
    apply_dispatch(setpoint, now);
}

void AgentCore::handle_reregister(std::int64_t now) {
    m_welcomed = false;
    m_rejected = false;
    m_ring.rewind(now);
    // A register already on its way answers it: the hub saw a message this
    // agent sent before that register (a reconnect storm delivers many such).
    // Registering again would only add to the hub's queue; the retry timer
    // covers a register that was lost.
    if (m_registers_unanswered > 0 && now - m_last_register_sent_ms < k_register_retry_ms) {
        log::debug("hub asked to register again; the register sent {} ms ago answers it",
                   now - m_last_register_sent_ms);
        return;
    }
    log::info("hub asked to register again (it has no session for this connection)");
    send_register(now);
}

// --- dispatch ---------------------------------------------------------------

bool AgentCore::dispatch_ended_here(const Uuid& id) const {
    return std::find(m_ended_dispatches.begin(), m_ended_dispatches.end(), id) != m_ended_dispatches.end();
}

void AgentCore::apply_dispatch(const Setpoint& setpoint, std::int64_t now) {
    const std::string id = setpoint.dispatch_id.to_string();
    if (m_dispatch && m_dispatch->id == setpoint.dispatch_id) {
        // Already applied (a resend, or the welcome's re-sync): confirm it.
        log::debug("dispatch {} already in force; acknowledging again", id);
        send_ack(setpoint.dispatch_id, wire::AckStatus::applied, {});
        return;
    }
    if (m_pending && m_pending->setpoint.dispatch_id == setpoint.dispatch_id) {
        log::debug("dispatch {} is awaiting the device's answer", id);
        return;
    }
    if (dispatch_ended_here(setpoint.dispatch_id)) {
        log::info("dispatch {} already ended here; not applying it again", id);
        return;
    }
    if (setpoint.remaining_s && !(*setpoint.remaining_s > 0.0)) {
        log::warn("dispatch {} rejected: its duration is already over (remaining_s {})", id,
                  *setpoint.remaining_s);
        send_ack(setpoint.dispatch_id, wire::AckStatus::rejected, "duration already over");
        return;
    }
    advance_device(now);  // energy so far at the previous setpoint
    ApplyResult result = m_adapter.apply_setpoint(setpoint.mw);
    if (result.pending()) {
        if (m_pending)
            log::info("dispatch {} replaced by {} before the device answered",
                      m_pending->setpoint.dispatch_id.to_string(), id);
        log::debug("dispatch {} of {} MW sent to the device; awaiting its answer", id, setpoint.mw);
        m_pending = PendingDispatch{setpoint, result.ticket, now};
        return;
    }
    if (!result.accepted()) {
        log::warn("dispatch {} of {} MW rejected by the {} adapter: {}", id, setpoint.mw, m_adapter.kind(),
                  result.reason);
        send_ack(setpoint.dispatch_id, wire::AckStatus::rejected, std::move(result.reason));
        return;
    }
    m_pending.reset();  // a later setpoint overtook one the device had not answered
    commit_dispatch(setpoint, now);
}

void AgentCore::commit_dispatch(const Setpoint& setpoint, std::int64_t received_mono_ms) {
    const std::string id = setpoint.dispatch_id.to_string();
    DispatchInForce next{setpoint.dispatch_id, setpoint.mw, std::nullopt};
    if (setpoint.remaining_s) next.end_mono_ms = received_mono_ms + to_ms(*setpoint.remaining_s);
    if (m_dispatch) log::info("dispatch {} replaced by {}", m_dispatch->id.to_string(), id);
    m_dispatch = next;
    log::info("dispatch {} applied: {} MW {}", id, setpoint.mw,
              setpoint.remaining_s ? "for " + format_duration(*setpoint.remaining_s)
                                   : std::string("until replaced"));
    send_ack(setpoint.dispatch_id, wire::AckStatus::applied, {});
}

void AgentCore::settle_pending(std::int64_t now) {
    while (auto result = m_adapter.take_settled()) {
        if (!m_pending || result->ticket != m_pending->ticket) continue;  // replaced or dropped meanwhile
        const PendingDispatch pending = *m_pending;
        m_pending.reset();
        if (result->accepted()) {
            advance_device(now);
            commit_dispatch(pending.setpoint, pending.received_mono_ms);
            continue;
        }
        log::warn("dispatch {} of {} MW rejected by the {} adapter: {}",
                  pending.setpoint.dispatch_id.to_string(), pending.setpoint.mw, m_adapter.kind(),
                  result->reason);
        send_ack(pending.setpoint.dispatch_id, wire::AckStatus::rejected, result->reason);
        // A dispatch that ended while this one was pending left the device as it was.
        if (!m_dispatch) (void)m_adapter.apply_setpoint(0.0);
    }
}

void AgentCore::end_dispatch(std::int64_t now, std::string_view why) {
    if (!m_dispatch) return;
    advance_device(now);
    // 0 MW (never refused by an adapter); not when a newer setpoint is on
    // its way to the device: that one replaces this dispatch.
    if (!m_pending) (void)m_adapter.apply_setpoint(0.0);
    log::info("dispatch {} ended ({}): 0 MW", m_dispatch->id.to_string(), why);
    m_ended_dispatches.push_back(m_dispatch->id);
    if (m_ended_dispatches.size() > k_ended_remembered) m_ended_dispatches.pop_front();
    m_dispatch.reset();
}

void AgentCore::send_ack(const Uuid& dispatch_id, wire::AckStatus status, std::string reason) {
    wire::Ack ack{dispatch_id, status, std::move(reason), m_clock.now_ms()};
    // Not sent = lost: the hub marks the dispatch failed or re-sends it, and
    // the next welcome re-syncs it anyway.
    if (!m_send(ack))
        log::warn("ack for dispatch {} could not be sent (no hub connection)", dispatch_id.to_string());
}

// --- telemetry --------------------------------------------------------------

void AgentCore::advance_device(std::int64_t now) {
    if (now <= m_last_step_mono_ms) return;
    m_adapter.step(static_cast<double>(now - m_last_step_mono_ms) / 1000.0);
    m_last_step_mono_ms = now;
}

void AgentCore::produce_telemetry(std::int64_t now) {
    advance_device(now);
    const DeviceState device = m_adapter.read();
    Telemetry t;
    t.asset_id = m_settings.asset.id;
    t.site_id = m_site_id;
    t.epoch = m_epoch;
    t.seq = ++m_last_seq;
    t.ts = m_clock.now_ms();
    t.soc_mwh = device.soc_mwh;
    t.soc_pct = device.soc_pct;
    t.capacity_mwh = device.limits.capacity_mwh;
    t.current_mw = device.current_mw;
    t.setpoint_mw = device.setpoint_mw;
    t.max_mw = device.limits.max_mw;
    t.min_mw = device.limits.min_mw;
    t.status = device.status;
    t.dispatch_id = dispatch_id();
    // On disk before it can reach the hub: whatever the hub holds, the spool has.
    if (m_spool != nullptr) spool_result(m_spool->append(t), now);
    if (m_ring.push(std::move(t)) > 0) {
        // One warning a minute at most, with the running count.
        if (!m_drop_logged_ms || now - *m_drop_logged_ms >= k_state_log_ms) {
            log::warn(
                "telemetry buffer full ({} records): dropped the oldest, {} dropped in all ({} since the "
                "last "
                "report)",
                m_ring.capacity(), m_ring.dropped(), m_ring.dropped() - m_drops_logged);
            m_drops_logged = m_ring.dropped();
            m_drop_logged_ms = now;
        }
    }
    pump(now);
}

void AgentCore::send_heartbeat(std::int64_t now) {
    Heartbeat hb;
    hb.asset_id = m_settings.asset.id;
    hb.ts = m_clock.now_ms();
    hb.uptime_s = static_cast<double>(now - m_start_mono_ms) / 1000.0;
    hb.buffered = m_ring.size();
    hb.agent_version = std::string(version());
    if (!m_send(hb)) log::debug("heartbeat not sent (hub busy or gone)");
}

void AgentCore::pump(std::int64_t now) {
    if (!m_welcomed) return;
    m_send_blocked = false;
    while (const Telemetry* record = m_ring.next_to_send()) {
        if (!m_send(*record)) {
            m_send_blocked = true;
            return;
        }
        m_ring.mark_sent(now);
    }
}

}  // namespace der::agent
