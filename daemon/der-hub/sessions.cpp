#include "sessions.hpp"

#include <fmt/core.h>

namespace der::hub {

RegisterOutcome SessionTable::on_register(std::string_view routing_id, const wire::Register& reg,
                                          std::int64_t now_mono, TimestampMs now_wall, std::int64_t held_ms) {
    RegisterOutcome out;
    if (reg.proto != k_protocol_version) {
        out.reject = {"bad_protocol",
                      fmt::format("protocol {} not supported; this hub speaks {}", reg.proto, k_protocol_version),
                      {}};
        return out;
    }
    if (auto it = m_sessions.find(reg.asset_id); it != m_sessions.end()) {
        Session& held = it->second;
        if (held.instance_id != reg.instance_id) {
            const std::int64_t silent_ms = now_mono - held.last_seen_mono;
            if (silent_ms < held_ms) {
                out.reject = {"asset_held",
                              fmt::format("asset {} is held by agent instance {} (heard {} ms ago); retry "
                                          "after it has been silent for {} ms",
                                          reg.asset_id.to_string(), held.instance_id.to_string(), silent_ms,
                                          held_ms),
                              // When the holder will have been silent long enough, if it stays so.
                              static_cast<double>(held_ms - silent_ms) / 1000.0 + 0.1};
                return out;
            }
            out.replaced_other_instance = true;
        }
        m_routes.erase(held.routing_id);  // before the session it points to goes
        erase(it);
    }
    // A routing id belongs to one session; a peer re-registering for another asset drops the old one.
    if (auto route = m_routes.find(routing_id); route != m_routes.end()) {
        const Uuid other = route->second->asset_id;
        m_routes.erase(route);
        if (auto it = m_sessions.find(other); it != m_sessions.end()) erase(it);
    }

    Session s;
    s.asset_id = reg.asset_id;
    s.instance_id = reg.instance_id;
    s.routing_id = routing_id;
    s.agent_version = reg.agent_version;
    s.epoch = reg.epoch;
    s.connected_at = now_wall;
    s.last_seen_wall = now_wall;
    s.last_seen_mono = now_mono;

    auto& epoch = m_epochs[reg.asset_id];
    if (epoch.epoch != reg.epoch) epoch = EpochState{reg.epoch, std::nullopt, std::nullopt};
    s.epoch_state = &epoch;
    out.ack_seq = m_tack_committed ? epoch.committed : epoch.acked;
    out.admitted = true;
    Session& stored = m_sessions.emplace(reg.asset_id, std::move(s)).first->second;
    ++m_online;
    mark_changed(stored);
    m_routes.insert_or_assign(std::string(routing_id), &stored);
    return out;
}

Session* SessionTable::by_route(std::string_view routing_id) {
    const auto it = m_routes.find(routing_id);
    return it == m_routes.end() ? nullptr : it->second;
}

EpochState& SessionTable::epoch_of(const Session& s) {
    return s.epoch_state != nullptr ? *s.epoch_state : m_epochs[s.asset_id];
}

Session* SessionTable::by_asset(const Uuid& asset_id) {
    const auto it = m_sessions.find(asset_id);
    return it == m_sessions.end() ? nullptr : &it->second;
}

const Session* SessionTable::by_asset(const Uuid& asset_id) const {
    const auto it = m_sessions.find(asset_id);
    return it == m_sessions.end() ? nullptr : &it->second;
}

bool SessionTable::touch(Session& s, std::int64_t now_mono, TimestampMs now_wall) {
    s.last_seen_mono = now_mono;
    s.last_seen_wall = now_wall;
    const bool came_back = !s.online;
    s.online = true;
    if (came_back) ++m_online;
    mark_changed(s);
    return came_back;
}

TelemetryOutcome SessionTable::on_telemetry(Session& s, const Telemetry& t) {
    if (t.asset_id != s.asset_id) return TelemetryOutcome::wrong_asset;
    if (t.epoch != s.epoch) return TelemetryOutcome::wrong_epoch;
    auto& epoch = epoch_of(s);
    if (epoch.epoch != t.epoch) epoch = EpochState{t.epoch, std::nullopt, std::nullopt};
    if (epoch.acked) {
        if (t.seq <= *epoch.acked) return TelemetryOutcome::duplicate;
        if (t.seq != *epoch.acked + 1) return TelemetryOutcome::gap;
    }
    // Nothing held of this epoch yet: the first record seen starts it (the
    // agent resends from its oldest unacknowledged record).
    epoch.acked = t.seq;
    return TelemetryOutcome::stored;
}

const EpochState* SessionTable::find_epoch(const Session& s) const {
    if (s.epoch_state != nullptr) return s.epoch_state;
    const auto it = m_epochs.find(s.asset_id);
    return it != m_epochs.end() ? &it->second : nullptr;
}

TelemetryOutcome SessionTable::peek_telemetry(const Session& s, const Telemetry& t) const {
    if (t.asset_id != s.asset_id) return TelemetryOutcome::wrong_asset;
    if (t.epoch != s.epoch) return TelemetryOutcome::wrong_epoch;
    const EpochState* state = find_epoch(s);
    if (state != nullptr && state->epoch == t.epoch && state->acked) {
        const std::uint64_t acked = *state->acked;
        if (t.seq <= acked) return TelemetryOutcome::duplicate;
        if (t.seq != acked + 1) return TelemetryOutcome::gap;
    }
    return TelemetryOutcome::stored;
}

void SessionTable::restore_epoch(const Uuid& asset_id, const Uuid& epoch, std::uint64_t seq) {
    m_epochs[asset_id] = EpochState{epoch, seq, seq};
}

Session* SessionTable::on_committed(const Uuid& asset_id, const Uuid& epoch, std::uint64_t seq) {
    const auto it = m_epochs.find(asset_id);
    if (it == m_epochs.end() || it->second.epoch != epoch) return nullptr;
    auto& state = it->second;
    if (!state.committed || *state.committed < seq) state.committed = seq;
    Session* s = by_asset(asset_id);
    return s != nullptr && s->epoch == epoch ? s : nullptr;
}

std::optional<std::uint64_t> SessionTable::committed(const Session& s) const {
    const EpochState* state = find_epoch(s);
    if (state == nullptr || state->epoch != s.epoch) return std::nullopt;
    return state->committed;
}

std::optional<std::uint64_t> SessionTable::acked(const Session& s) const {
    const EpochState* state = find_epoch(s);
    if (state == nullptr || state->epoch != s.epoch) return std::nullopt;
    return state->acked;
}

std::vector<Uuid> SessionTable::sweep_offline(std::int64_t now_mono, std::int64_t timeout_ms) {
    std::vector<Uuid> gone;
    for (auto& [id, s] : m_sessions) {
        if (s.online && now_mono - s.last_seen_mono > timeout_ms) {
            s.online = false;
            --m_online;
            mark_changed(s);
            gone.push_back(id);
        }
    }
    return gone;
}

void SessionTable::drop_asset(const Uuid& asset_id) {
    if (auto it = m_sessions.find(asset_id); it != m_sessions.end()) {
        m_routes.erase(it->second.routing_id);
        erase(it);
    }
    m_epochs.erase(asset_id);
}

void SessionTable::erase(std::unordered_map<Uuid, Session>::iterator it) {
    if (it->second.online) --m_online;
    // Journaled or not, its asset changes: it has no session any more.
    m_changed.push_back(it->first);
    m_sessions.erase(it);
}

std::vector<Uuid> SessionTable::take_changed() {
    std::vector<Uuid> out;
    out.swap(m_changed);
    for (const auto& id : out)
        if (Session* s = by_asset(id)) s->journaled = false;
    return out;
}

}  // namespace der::hub
