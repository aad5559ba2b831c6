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

Result<void> check_duration(const std::optional<double>& duration_s) {
    if (!duration_s) return {};
    if (!std::isfinite(*duration_s) || *duration_s < k_min_duration_s || *duration_s > k_max_duration_s)
        return fail(Errc::invalid_argument,
                    fmt::format("duration_s must be between {} s and {} s ({} days), or null for until replaced",
                                k_min_duration_s, k_max_duration_s, k_max_duration_s / 86'400.0));
    return {};
}

Result<void> check_who(const std::string& reason, const std::string& requested_by) {
    if (reason.size() > k_max_reason_bytes)
        return fail(Errc::invalid_argument,
                    fmt::format("reason is {} bytes; at most {}", reason.size(), k_max_reason_bytes));
    if (requested_by.size() > k_max_requested_by_bytes)
        return fail(Errc::invalid_argument, fmt::format("requested_by is {} bytes; at most {}", requested_by.size(),
                                                        k_max_requested_by_bytes));
    return {};
}

DispatchBook::DispatchBook(double pending_ttl_s, double ack_timeout_s, std::size_t max_kept)
    : m_pending_ttl_ms(to_ms(pending_ttl_s)), m_ack_timeout_ms(to_ms(ack_timeout_s)), m_max_kept(max_kept) {}

void DispatchBook::enter(Entry& e, DispatchState state, Now now, std::vector<Dispatch>& changed) {
    if (e.d.state == state && e.counted) return;
    if (!e.parent) {
        if (e.counted) --m_in_state[static_cast<std::size_t>(e.d.state)];
        e.counted = true;
        ++m_in_state[static_cast<std::size_t>(state)];
        ++m_transitions[static_cast<std::size_t>(state)];
    }
    e.counted = true;
    e.d.enter(state, now.wall);
    if (!is_open(state)) {
        const auto it = m_open.find(e.d.asset_id);
        if (it != m_open.end() && it->second == e.d.dispatch_id) m_open.erase(it);
    }
    if (state != DispatchState::scheduled)
        std::erase(m_scheduled, e.d.dispatch_id);
    if (!e.parent && (state == DispatchState::queued || state == DispatchState::sent)) arm(e);
    changed.push_back(e.d);  // a copy: each transition is reported as it was
    if (e.d.parent_id) update_parent(*e.d.parent_id, now, changed);
}

void DispatchBook::arm(const Entry& e) {
    std::int64_t when = e.d.state == DispatchState::sent ? e.sent_mono + m_ack_timeout_ms
                                                         : e.start_mono + m_pending_ttl_ms;
    if (const auto end = end_mono(e)) when = std::min(when, *end);
    m_deadlines.push({when, e.d.dispatch_id});
}

DispatchBook::Entry& DispatchBook::add(const NewDispatch& request, Now now, bool parent) {
    Entry e;
    e.parent = parent;
    e.d.dispatch_id = Uuid::v7(now.wall);
    e.d.asset_id = request.asset_id;
    e.d.mw = request.mw;
    e.d.duration_s = request.duration_s;
    e.d.reason = request.reason;
    e.d.requested_by = request.requested_by;
    e.d.created_at = now.wall;
    e.d.parent_id = request.parent_id;
    e.created_mono = now.mono;
    e.start_mono = now.mono;
    if (request.start_at && *request.start_at > now.wall) {
        e.d.start_at = request.start_at;
        e.start_mono = now.mono + (*request.start_at - now.wall);
    }
    const Uuid id = e.d.dispatch_id;
    m_order.push_back(id);
    if (request.parent_id) m_children[*request.parent_id].push_back(id);
    return m_entries.emplace(id, std::move(e)).first->second;
}

Dispatch& DispatchBook::create(const NewDispatch& request, Now now, std::vector<Dispatch>& changed) {
    Entry& e = add(request, now, false);
    const Uuid id = e.d.dispatch_id;
    if (e.d.start_at) {
        m_scheduled.push_back(id);
        enter(e, DispatchState::scheduled, now, changed);
    } else {
        start(e, now, changed);
    }
    forget_oldest();
    return m_entries.at(id).d;
}

Dispatch& DispatchBook::create_parent(const NewDispatch& request, Now now, std::vector<Dispatch>& changed) {
    Entry& e = add(request, now, true);
    enter(e, e.d.start_at ? DispatchState::scheduled : DispatchState::queued, now, changed);
    return e.d;
}

void DispatchBook::start(Entry& e, Now now, std::vector<Dispatch>& changed) {
    if (const auto open = m_open.find(e.d.asset_id); open != m_open.end() && open->second != e.d.dispatch_id) {
        Entry& old = m_entries.at(open->second);
        old.d.error = "superseded by a newer dispatch";
        enter(old, DispatchState::superseded, now, changed);
    }
    m_open[e.d.asset_id] = e.d.dispatch_id;
    enter(e, DispatchState::queued, now, changed);
}

bool DispatchBook::adopt(const Dispatch& d, Now now, bool parent, std::vector<Dispatch>& changed) {
    if (d.state != DispatchState::scheduled && !is_open(d.state)) return false;
    if (m_entries.contains(d.dispatch_id)) return false;
    Entry e;
    e.parent = parent;
    e.d = d;
    const auto mono_of = [&](TimestampMs wall) { return now.mono + (wall - now.wall); };
    e.created_mono = mono_of(d.created_at);
    e.start_mono = mono_of(d.start_at.value_or(d.created_at));
    if (d.state == DispatchState::sent || d.state == DispatchState::applied) e.d.state = DispatchState::queued;
    const Uuid id = d.dispatch_id;
    if (!parent) {
        e.counted = true;
        ++m_in_state[static_cast<std::size_t>(e.d.state)];
    }
    if (parent) {
        // A parent only summarises its children (update_parent): no timers of its own.
    } else if (e.d.state == DispatchState::scheduled) {
        m_scheduled.push_back(id);
    } else {
        // Oldest first: a later open dispatch of the same asset wins.
        if (const auto open = m_open.find(d.asset_id); open != m_open.end()) {
            Entry& old = m_entries.at(open->second);
            old.d.error = "superseded by a newer dispatch";
            enter(old, DispatchState::superseded, now, changed);
        }
        m_open[d.asset_id] = id;
    }
    m_order.push_back(id);
    if (d.parent_id) m_children[*d.parent_id].push_back(id);
    const Entry& adopted = m_entries.emplace(id, std::move(e)).first->second;
    if (!parent && is_open(adopted.d.state)) arm(adopted);
    return true;
}

std::vector<Uuid> DispatchBook::children_of(const Uuid& parent_id) const {
    std::vector<Uuid> out;
    if (const auto it = m_children.find(parent_id); it != m_children.end())
        for (const auto& id : it->second)
            if (m_entries.contains(id)) out.push_back(id);
    return out;
}

void DispatchBook::update_parent(const Uuid& parent_id, Now now, std::vector<Dispatch>& changed) {
    const auto it = m_entries.find(parent_id);
    if (it == m_entries.end()) return;
    // The parent summarises its children: the least advanced open state
    // while any child is open; once all are over, applied... → the outcome.
    bool any[k_dispatch_state_count] = {};
    std::size_t n = 0;
    for (const auto& child : children_of(parent_id)) {
        any[static_cast<std::size_t>(m_entries.at(child).d.state)] = true;
        ++n;
    }
    if (n == 0) return;
    const auto has = [&](DispatchState s) { return any[static_cast<std::size_t>(s)]; };
    DispatchState summary = DispatchState::expired;
    if (has(DispatchState::scheduled)) summary = DispatchState::scheduled;
    else if (has(DispatchState::queued)) summary = DispatchState::queued;
    else if (has(DispatchState::sent)) summary = DispatchState::sent;
    else if (has(DispatchState::applied)) summary = DispatchState::applied;
    else if (has(DispatchState::rejected) || has(DispatchState::failed)) summary = DispatchState::failed;
    else if (has(DispatchState::cancelled)) summary = DispatchState::cancelled;
    else if (has(DispatchState::superseded)) summary = DispatchState::superseded;
    if (it->second.d.state != summary) enter(it->second, summary, now, changed);
}

Result<std::vector<Uuid>> DispatchBook::cancel(const Uuid& id, const std::string& why, Now now,
                                               std::vector<Dispatch>& changed) {
    const auto it = m_entries.find(id);
    if (it == m_entries.end()) return fail(Errc::not_found, fmt::format("no dispatch {}", id.to_string()));
    std::vector<Uuid> targets = it->second.parent ? children_of(id) : std::vector<Uuid>{id};
    std::vector<Uuid> in_force;
    bool any = false;
    for (const auto& target : targets) {
        Entry& e = m_entries.at(target);
        const auto state = e.d.state;
        if (state != DispatchState::scheduled && !is_open(state)) continue;
        any = true;
        if (state == DispatchState::sent || state == DispatchState::applied) in_force.push_back(e.d.asset_id);
        e.d.error = why;
        enter(e, DispatchState::cancelled, now, changed);
    }
    if (!any)
        return fail(Errc::refused, fmt::format("dispatch {} is already {}", id.to_string(),
                                               to_string(it->second.d.state)));
    return in_force;
}

std::size_t DispatchBook::cancel_assets(const std::vector<Uuid>& assets, const std::string& why, Now now,
                                        std::vector<Dispatch>& changed) {
    std::size_t n = 0;
    std::vector<Uuid> targets;
    for (const auto& asset : assets) {
        if (const auto open = m_open.find(asset); open != m_open.end()) targets.push_back(open->second);
        for (const auto& id : m_scheduled)
            if (m_entries.at(id).d.asset_id == asset) targets.push_back(id);
    }
    for (const auto& id : targets) {
        Entry& e = m_entries.at(id);
        e.d.error = why;
        enter(e, DispatchState::cancelled, now, changed);
        ++n;
    }
    return n;
}

void DispatchBook::forget_oldest() {
    // Keep at most m_max_kept; never forget a dispatch that is not over.
    while (m_order.size() > m_max_kept) {
        const Uuid oldest = m_order.front();
        const auto it = m_entries.find(oldest);
        if (it != m_entries.end() &&
            (is_open(it->second.d.state) || it->second.d.state == DispatchState::scheduled))
            break;
        m_order.pop_front();
        if (it != m_entries.end()) {
            if (!it->second.parent) --m_in_state[static_cast<std::size_t>(it->second.d.state)];
            if (it->second.parent) m_children.erase(oldest);
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
    return e.start_mono + to_ms(*e.d.duration_s);
}

std::optional<Setpoint> DispatchBook::setpoint_for(const Dispatch& d, Now now) const {
    const auto it = m_entries.find(d.dispatch_id);
    if (it == m_entries.end() || it->second.parent) return std::nullopt;
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
    else arm(it->second);  // sent again: the ack timeout restarts
}

void DispatchBook::mark_queued(const Uuid& id, Now now, std::vector<Dispatch>& changed) {
    const auto it = m_entries.find(id);
    if (it == m_entries.end() || it->second.d.state != DispatchState::sent) return;
    enter(it->second, DispatchState::queued, now, changed);
}

bool DispatchBook::on_ack(const Uuid& asset_id, const Uuid& dispatch_id, bool applied, const std::string& reason,
                          Now now, std::vector<Dispatch>& changed) {
    const auto it = m_entries.find(dispatch_id);
    if (it == m_entries.end() || it->second.d.asset_id != asset_id || it->second.parent) return false;
    Entry& e = it->second;
    // An ack for an applied dispatch (the agent re-acking after a welcome)
    // changes nothing, but a reject of one means the battery no longer runs
    // it (a restarted agent, given it again in its welcome, turned it down,
    // e.g. under limits lowered since): that is recorded. An ack for a
    // dispatch already over (failed, superseded, ...) is late and ignored: a
    // newer decision stands.
    if (e.d.state == DispatchState::applied && !applied) {
        e.d.error = reason.empty() ? "rejected by the agent" : reason;
        enter(e, DispatchState::rejected, now, changed);
        return true;
    }
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
    // Scheduled dispatches whose time has come start (in start order).
    if (!m_scheduled.empty()) {
        std::vector<Uuid> due;
        for (const auto& id : m_scheduled)
            if (m_entries.at(id).start_mono <= now.mono) due.push_back(id);
        std::sort(due.begin(), due.end(), [&](const Uuid& a, const Uuid& b) {
            return m_entries.at(a).start_mono < m_entries.at(b).start_mono;
        });
        for (const auto& id : due) start(m_entries.at(id), now, changed);
    }
    // Only open dispatches have timers; each is in m_deadlines at its next
    // one (an applied dispatch without a duration has none).
    while (!m_deadlines.empty() && m_deadlines.top().mono <= now.mono) {
        const Uuid id = m_deadlines.top().id;
        m_deadlines.pop();
        const auto it = m_entries.find(id);
        if (it == m_entries.end() || it->second.parent || !is_open(it->second.d.state)) continue;  // stale
        check_timers(it->second, now, changed);
    }
}

void DispatchBook::check_timers(Entry& e, Now now, std::vector<Dispatch>& changed) {
    const auto end = end_mono(e);
    if (end && now.mono >= *end) {
        if (e.d.state != DispatchState::applied)
            e.d.error = fmt::format("its duration ran out while {}", to_string(e.d.state));
        enter(e, DispatchState::expired, now, changed);
        return;
    }
    if (e.d.state == DispatchState::sent && now.mono - e.sent_mono >= m_ack_timeout_ms) {
        e.d.error = fmt::format("no ack from the agent within {} ms", m_ack_timeout_ms);
        enter(e, DispatchState::failed, now, changed);
    } else if (e.d.state == DispatchState::queued && now.mono - e.start_mono >= m_pending_ttl_ms) {
        e.d.error = fmt::format("agent offline for longer than the pending TTL ({} s)", m_pending_ttl_ms / 1000);
        enter(e, DispatchState::failed, now, changed);
    } else if (e.d.state == DispatchState::applied && end) {
        m_deadlines.push({*end, e.d.dispatch_id});  // applied: only its end is left
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
