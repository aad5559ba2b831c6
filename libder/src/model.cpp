#include "der/model.hpp"

#include <algorithm>

namespace der {

BessLimits stricter(const BessLimits& a, const BessLimits& b) {
    BessLimits out;
    out.capacity_mwh = std::min(a.capacity_mwh, b.capacity_mwh);
    out.max_mw = std::min(a.max_mw, b.max_mw);
    out.min_mw = std::max(a.min_mw, b.min_mw);
    // 0 means "no ramp limit": any positive limit is stricter.
    if (a.ramp_mw_per_s <= 0) out.ramp_mw_per_s = b.ramp_mw_per_s;
    else if (b.ramp_mw_per_s <= 0) out.ramp_mw_per_s = a.ramp_mw_per_s;
    else out.ramp_mw_per_s = std::min(a.ramp_mw_per_s, b.ramp_mw_per_s);
    out.efficiency = std::min(a.efficiency, b.efficiency);
    out.soc_min_pct = std::max(a.soc_min_pct, b.soc_min_pct);
    out.soc_max_pct = std::min(a.soc_max_pct, b.soc_max_pct);
    return out;
}

std::string_view to_string(AssetStatus status) noexcept {
    switch (status) {
    case AssetStatus::idle: return "idle";
    case AssetStatus::charging: return "charging";
    case AssetStatus::discharging: return "discharging";
    case AssetStatus::soc_limit: return "soc_limit";
    case AssetStatus::fault: return "fault";
    }
    return "fault";
}

std::optional<AssetStatus> parse_asset_status(std::string_view text) noexcept {
    for (auto s : {AssetStatus::idle, AssetStatus::charging, AssetStatus::discharging, AssetStatus::soc_limit,
                   AssetStatus::fault})
        if (to_string(s) == text) return s;
    return std::nullopt;
}

std::string_view to_string(DispatchState state) noexcept {
    switch (state) {
    case DispatchState::scheduled: return "scheduled";
    case DispatchState::queued: return "queued";
    case DispatchState::sent: return "sent";
    case DispatchState::applied: return "applied";
    case DispatchState::rejected: return "rejected";
    case DispatchState::failed: return "failed";
    case DispatchState::expired: return "expired";
    case DispatchState::superseded: return "superseded";
    case DispatchState::cancelled: return "cancelled";
    }
    return "failed";
}

std::optional<DispatchState> parse_dispatch_state(std::string_view text) noexcept {
    for (std::size_t i = 0; i < k_dispatch_state_count; ++i) {
        const auto s = static_cast<DispatchState>(i);
        if (to_string(s) == text) return s;
    }
    return std::nullopt;
}

bool is_final(DispatchState state) noexcept {
    switch (state) {
    case DispatchState::rejected:
    case DispatchState::failed:
    case DispatchState::expired:
    case DispatchState::superseded:
    case DispatchState::cancelled: return true;
    default: return false;
    }
}

}  // namespace der
