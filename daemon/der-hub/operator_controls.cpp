// What an operator does beyond a single dispatch: split a site target,
// cancel, stop everything, take an asset out for maintenance, and the audit
// trail of who asked for what (der-hub(8), "OPERATOR CONTROLS").
#include "hub_impl.hpp"

#include "site_split.hpp"

#include "der/util/log.hpp"

#include <fmt/core.h>
#include <fmt/ranges.h>

#include <cmath>

namespace der::hub {

namespace {
constexpr std::size_t k_audit_kept = 10'000;
}

bool Hub::is_available(const Asset& asset) const { return asset.available && !m_maintenance.contains(asset.id); }

void Hub::record(std::string action, std::string target, std::string reason, std::string by, std::string detail) {
    log::info("audit: {} {} by '{}' ({}){}{}", action, target, by, reason.empty() ? "no reason given" : reason,
              detail.empty() ? "" : ": ", detail);
    m_audit.push_back({m_clock.now_ms(), std::move(action), std::move(target), std::move(reason), std::move(by),
                       std::move(detail)});
    while (m_audit.size() > k_audit_kept) m_audit.pop_front();
}

void Hub::release(const Uuid& asset_id) {
    const Session* s = m_sessions.by_asset(asset_id);
    if (s == nullptr || !s->online) return;  // its welcome carries no dispatch: it goes to 0 MW then
    Setpoint zero;  // nil dispatch_id: "no dispatch in force, 0 MW"
    zero.mw = 0.0;
    zero.issued_at = m_clock.now_ms();
    send_agent(s->routing_id, zero);
}

std::size_t Hub::take_out_of_service(const Uuid& asset_id, const std::string& why) {
    const std::size_t cancelled = m_dispatches.cancel_assets({asset_id}, why, now(), m_changed);
    release(asset_id);
    return cancelled;
}

void Hub::deliver_started() {
    std::vector<Uuid> started;
    for (const auto& d : m_changed)
        if (d.state == DispatchState::queued && d.start_at) started.push_back(d.dispatch_id);
    for (const auto& id : started) {
        const Dispatch* d = m_dispatches.find(id);
        if (d != nullptr && d->state == DispatchState::queued && m_assets.contains(d->asset_id)) deliver(id);
    }
}

Result<SiteDispatchResult> Hub::create_site_dispatch(const SiteDispatchCommand& c) {
    if (auto ok = check_who(c.reason, c.requested_by); !ok) return std::unexpected(ok.error());
    const Site* site = m_fleet.find_site(c.site);
    if (site == nullptr) return fail(Errc::not_found, fmt::format("no site '{}'", c.site));
    if (!std::isfinite(c.mw)) return fail(Errc::invalid_argument, "mw must be a finite number");
    if (auto ok = check_duration(c.duration_s); !ok) return std::unexpected(ok.error());

    // Available = in service, online, and reporting its SOC.
    std::vector<SplitInput> inputs;
    std::vector<std::string> skipped;
    for (const auto& asset : site->assets) {
        const Session* s = m_sessions.by_asset(asset.id);
        const auto live = m_live.find(asset.id);
        if (!is_available(asset)) {
            skipped.push_back(asset.name + " (unavailable)");
        } else if (s == nullptr || !s->online) {
            skipped.push_back(asset.name + " (offline)");
        } else if (live == m_live.end() || !live->second.latest) {
            skipped.push_back(asset.name + " (no telemetry yet)");
        } else {
            inputs.push_back({asset.id, live->second.latest->soc_mwh, asset.limits});
        }
    }
    auto shares = split_site_target(c.mw, inputs);
    if (!shares) {
        std::string message = fmt::format("site {}: {}", site->name, shares.error().message);
        if (!skipped.empty()) message += fmt::format(" (not counted: {})", fmt::join(skipped, ", "));
        return fail(Errc::refused, message);
    }

    NewDispatch parent_request{site->id, c.mw, c.duration_s, c.reason, c.requested_by, c.start_at, std::nullopt};
    const Uuid parent_id = m_dispatches.create_parent(parent_request, now(), m_changed).dispatch_id;
    // Every child first, then the deliveries: the parent summarises its
    // children, so delivering one before the next exists would report the
    // parent sent, then queued again, on the stream.
    std::vector<Uuid> children;
    for (const auto& share : *shares) {
        NewDispatch child{share.asset_id, share.mw, c.duration_s, c.reason, c.requested_by, c.start_at, parent_id};
        children.push_back(m_dispatches.create(child, now(), m_changed).dispatch_id);
    }
    for (const auto& id : children) deliver(id);
    record("site_dispatch", site->name, c.reason, c.requested_by,
           fmt::format("{} MW{} as {} over {} batteries{}", c.mw,
                       c.duration_s ? " for " + format_duration(*c.duration_s) : std::string(),
                       parent_id.to_string(), shares->size(),
                       skipped.empty() ? std::string() : fmt::format(" (skipped: {})", fmt::join(skipped, ", "))));
    publish_dispatch_changes();

    SiteDispatchResult result;
    result.parent = *m_dispatches.find(parent_id);
    for (const auto& id : m_dispatches.children_of(parent_id)) result.children.push_back(*m_dispatches.find(id));
    return result;
}

Result<Dispatch> Hub::cancel_dispatch(const Uuid& id, const std::string& reason, const std::string& by) {
    if (auto ok = check_who(reason, by); !ok) return std::unexpected(ok.error());
    const std::string why = fmt::format("cancelled by '{}'{}", by, reason.empty() ? "" : ": " + reason);
    auto in_force = m_dispatches.cancel(id, why, now(), m_changed);
    if (!in_force) return std::unexpected(in_force.error());
    for (const auto& asset : *in_force) release(asset);
    record("cancel", id.to_string(), reason, by,
           fmt::format("{} asset(s) sent to 0 MW", in_force->size()));
    publish_dispatch_changes();
    return *m_dispatches.find(id);
}

Result<StopResult> Hub::stop_assets(const StopCommand& c) {
    if (auto ok = check_who(c.reason, c.requested_by); !ok) return std::unexpected(ok.error());
    std::vector<Uuid> assets;
    std::string target = "all assets";
    if (!c.site.empty()) {
        const Site* site = m_fleet.find_site(c.site);
        if (site == nullptr) return fail(Errc::not_found, fmt::format("no site '{}'", c.site));
        for (const auto& a : site->assets) assets.push_back(a.id);
        target = "site " + site->name;
    } else {
        for (const auto& [id, asset] : m_assets) assets.push_back(id);
    }
    const std::string why = fmt::format("stopped by '{}'{}", c.requested_by, c.reason.empty() ? "" : ": " + c.reason);
    StopResult result;
    result.cancelled = m_dispatches.cancel_assets(assets, why, now(), m_changed);
    for (const auto& id : assets) {
        // Every asset goes to 0 MW, with or without a dispatch of ours in force.
        release(id);
        ++result.assets;
    }
    record("stop", target, c.reason, c.requested_by,
           fmt::format("{} assets to 0 MW, {} dispatches cancelled", result.assets, result.cancelled));
    publish_dispatch_changes();
    return result;
}

Result<Asset> Hub::set_availability(const std::string& name, bool available, const std::string& reason,
                                    const std::string& by) {
    if (auto ok = check_who(reason, by); !ok) return std::unexpected(ok.error());
    const Asset* asset = resolve_asset(name);
    if (asset == nullptr) return fail(Errc::not_found, fmt::format("no asset '{}'", name));
    if (available) {
        if (!asset->available)
            return fail(Errc::refused, fmt::format("{} is unavailable in the configuration (available: false); "
                                                   "change assets.yaml and reload",
                                                   asset->qualified_name()));
        m_maintenance.erase(asset->id);
    } else {
        m_maintenance[asset->id] = reason;
        // Out of service now: whatever it was doing stops.
        take_out_of_service(asset->id, fmt::format("asset taken out of service by '{}'{}", by,
                                                   reason.empty() ? "" : ": " + reason));
    }
    asset_changed(asset->id);
    record("availability", asset->qualified_name(), reason, by, available ? "available" : "unavailable");
    publish_dispatch_changes();
    Asset out = *asset;
    out.available = is_available(*asset);
    return out;
}

}  // namespace der::hub
