#include "dispatch_book.hpp"

#include <fmt/core.h>

#include <algorithm>
#include <cmath>

namespace der::hub {

namespace {
bool is_open(DispatchState s) {
    return s == DispatchState::queued || s == DispatchState::sent || s == DispatchState::applied;
}
std::int64_t to_ms(double seconds) { return static_cast<std::int64_t>(std::llround(seconds * 1000.0)); }
}  // namespace

void LatencyHistogram::observe(double seconds) {
    ++count;
    sum += seconds;
    for (std::size_t i = 0; i < k_buckets; ++i) {
        if (seconds <= k_bounds[i]) {
            ++counts[i];
            return;
        }
    }
    ++counts[k_buckets];
}

DispatchBook::DispatchBook(double pending_ttl_s, double ack_timeout_s, std::size_t max_kept)
    : m_pending_ttl_ms(to_ms(pending_ttl_s)), m_ack_timeout_ms(to_ms(ack_timeout_s)), m_max_kept(max_kept) {}

void DispatchBook::enter(Entry& e, DispatchState state, Now now, std::vector<Dispatch>& changed) {
    if (e.counted) --m_in_state[static_cast<std::size_t>(e.d.state)];
    e.counted = true;
    ++m_in_state[static_cast<std::size_t>(state)];
    e.d.enter(state, now.wall);
    ++m_transitions[static_cast<std::size_t>(state)];
    if (!is_open(state)) {
        const auto it = m_open.find(e.d.asset_id);
        if (it != m_open.end() && it->second == e.d.dispatch_id) m_open.erase(it);
    }
    changed.push_back(e.d);  // a copy: each transition is reported as it was
}

Dispatch& DispatchBook::create(const NewDispatch& request, Now now, std::vector<Dispatch>& changed) {
    if (const auto open = m_open.find(request.asset_id); open != m_open.end()) {
        Entry& old = m_entries.at(open->second);
        old.d.error = "superseded by a newer dispatch";
        enter(old, DispatchState::superseded, now, changed);
    }
    Entry e;
    e.d.dispatch_id = Uuid::v7(now.wall);
    e.d.asset_id = request.asset_id;
    e.d.mw = request.mw;
    e.d.duration_s = request.duration_s;
    e.d.reason = request.reason;
    e.d.requested_by = request.requested_by;
    e.d.created_at = now.wall;
    e.created_mono = now.mono;
    const Uuid id = e.d.dispatch_id;
    m_order.push_back(id);
    auto& entry = m_entries.emplace(id, std::move(e)).first->second;
    m_open[request.asset_id] = id;
    enter(entry, DispatchState::queued, now, changed);
    forget_oldest();
    return m_entries.at(id).d;
}

void DispatchBook::forget_oldest() {
    // Keep at most m_max_kept; never forget an open dispatch (there is at most one per asset).
    while (m_order.size() > m_max_kept) {
        const Uuid oldest = m_order.front();
        const auto it = m_entries.find(oldest);
        if (it != m_entries.end() && is_open(it->second.d.state)) break;
        m_order.pop_front();
        if (it != m_entries.end()) {
            --m_in_state[static_cast<std::size_t>(it->second.d.state)];
            m_entries.erase(it);
        }
    }
}

const Dispatch* DispatchBook::find(const Uuid& id) const {
    const auto it = m_entries.find(id);
    return it == m_entries.end() ? nullptr : &it->second.d;
}

const Dispatch* DispatchBook::open_for(const Uuid& asset_id) const {
    const auto it = m_open.find(asset_id);
    return it == m_open.end() ? nullptr : find(it->second);
}

std::optional<std::int64_t> DispatchBook::end_mono(const Entry& e) const {
    if (!e.d.duration_s) return std::nullopt;
    return e.created_mono + to_ms(*e.d.duration_s);
}

std::optional<Setpoint> DispatchBook::setpoint_for(const Dispatch& d, Now now) const {
    const auto it = m_entries.find(d.dispatch_id);
    if (it == m_entries.end()) return std::nullopt;
    Setpoint sp;
    sp.dispatch_id = d.dispatch_id;
    sp.mw = d.mw;
    sp.issued_at = now.wall;
    if (const auto end = end_mono(it->second)) {
        const std::int64_t left_ms = *end - now.mono;
        if (left_ms <= 0) return std::nullopt;
        sp.remaining_s = static_cast<double>(left_ms) / 1000.0;
    }
    return sp;
}

void DispatchBook::mark_sent(const Uuid& id, Now now, std::vector<Dispatch>& changed) {
    const auto it = m_entries.find(id);
    if (it == m_entries.end() || !is_open(it->second.d.state)) return;
    it->second.sent_mono = now.mono;
    if (it->second.d.state != DispatchState::sent) enter(it->second, DispatchState::sent, now, changed);
}

void DispatchBook::mark_queued(const Uuid& id, Now now, std::vector<Dispatch>& changed) {
    const auto it = m_entries.find(id);
    if (it == m_entries.end() || it->second.d.state != DispatchState::sent) return;
    enter(it->second, DispatchState::queued, now, changed);
}

bool DispatchBook::on_ack(const Uuid& asset_id, const Uuid& dispatch_id, bool applied, const std::string& reason,
                          Now now, std::vector<Dispatch>& changed) {
    const auto it = m_entries.find(dispatch_id);
    if (it == m_entries.end() || it->second.d.asset_id != asset_id) return false;
    Entry& e = it->second;
    // An ack for an applied dispatch (the agent re-acking after a welcome)
    // changes nothing; one for a dispatch already over (failed, superseded,
    // ...) is late and ignored: a newer decision stands.
    if (e.d.state != DispatchState::sent && e.d.state != DispatchState::queued)
        return e.d.state == DispatchState::applied && applied;
    if (e.sent_mono > 0) m_latency.observe(static_cast<double>(now.mono - e.sent_mono) / 1000.0);
    if (applied) {
        e.d.error.clear();
        enter(e, DispatchState::applied, now, changed);
    } else {
        e.d.error = reason.empty() ? "rejected by the agent" : reason;
        enter(e, DispatchState::rejected, now, changed);
    }
    return true;
}

void DispatchBook::tick(Now now, std::vector<Dispatch>& changed) {
    // Only open dispatches have timers, and there is at most one per asset.
    std::vector<Uuid> open;
    open.reserve(m_open.size());
    for (const auto& [asset, id] : m_open) open.push_back(id);
    for (const auto& id : open) {
        Entry& e = m_entries.at(id);
        const auto end = end_mono(e);
        if (end && now.mono >= *end) {
            if (e.d.state != DispatchState::applied)
                e.d.error = fmt::format("its duration ran out while {}", to_string(e.d.state));
            enter(e, DispatchState::expired, now, changed);
            continue;
        }
        if (e.d.state == DispatchState::sent && now.mono - e.sent_mono >= m_ack_timeout_ms) {
            e.d.error = fmt::format("no ack from the agent within {} ms", m_ack_timeout_ms);
            enter(e, DispatchState::failed, now, changed);
        } else if (e.d.state == DispatchState::queued && now.mono - e.created_mono >= m_pending_ttl_ms) {
            e.d.error = fmt::format("agent offline for longer than the pending TTL ({} s)", m_pending_ttl_ms / 1000);
            enter(e, DispatchState::failed, now, changed);
        }
    }
}

std::vector<Dispatch> DispatchBook::history(const std::optional<Uuid>& asset_id, std::optional<TimestampMs> since,
                                            std::optional<TimestampMs> until, std::optional<DispatchState> state,
                                            std::size_t limit) const {
    std::vector<Dispatch> out;
    for (auto it = m_order.rbegin(); it != m_order.rend() && out.size() < limit; ++it) {
        const auto e = m_entries.find(*it);
        if (e == m_entries.end()) continue;
        const Dispatch& d = e->second.d;
        if (asset_id && d.asset_id != *asset_id) continue;
        if (since && d.created_at < *since) continue;
        if (until && d.created_at >= *until) continue;
        if (state && d.state != *state) continue;
        out.push_back(d);
    }
    return out;
}

std::size_t DispatchBook::count_in(DispatchState state) const {
    return m_in_state[static_cast<std::size_t>(state)];
}

}  // namespace der::hub
