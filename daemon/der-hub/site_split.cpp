#include "site_split.hpp"

#include <fmt/core.h>

#include <algorithm>
#include <cmath>

namespace der::hub {

Result<std::vector<SplitShare>> split_site_target(double mw, const std::vector<SplitInput>& assets) {
    std::vector<SplitShare> shares;
    shares.reserve(assets.size());
    for (const auto& a : assets) shares.push_back({a.asset_id, 0.0});
    if (mw == 0.0) return shares;

    const bool discharge = mw > 0;
    std::vector<double> headroom(assets.size());
    std::vector<double> power_cap(assets.size());
    double total_cap = 0.0;
    for (std::size_t i = 0; i < assets.size(); ++i) {
        const auto& l = assets[i].limits;
        const double floor_mwh = l.capacity_mwh * l.soc_min_pct / 100.0;
        const double ceiling_mwh = l.capacity_mwh * l.soc_max_pct / 100.0;
        headroom[i] = std::max(0.0, discharge ? assets[i].soc_mwh - floor_mwh : ceiling_mwh - assets[i].soc_mwh);
        power_cap[i] = headroom[i] > 1e-9 ? (discharge ? l.max_mw : -l.min_mw) : 0.0;
        total_cap += power_cap[i];
    }
    const double target = std::abs(mw);
    if (target > total_cap + 1e-9)
        return fail(Errc::refused,
                    fmt::format("the site can {} at most {:.3f} MW now ({} batteries with headroom); {:.3f} MW short",
                                discharge ? "discharge" : "charge", total_cap,
                                std::count_if(power_cap.begin(), power_cap.end(), [](double c) { return c > 0; }),
                                target - total_cap));

    // Water filling: share by headroom; a battery that hits its power cap
    // takes the cap, and the rest is shared again among the others.
    std::vector<bool> fixed(assets.size(), false);
    for (std::size_t i = 0; i < assets.size(); ++i) fixed[i] = power_cap[i] <= 0;
    double remaining = target;
    while (true) {
        double weight = 0.0;
        for (std::size_t i = 0; i < assets.size(); ++i)
            if (!fixed[i]) weight += headroom[i];
        if (weight <= 0.0) break;
        bool clamped = false;
        for (std::size_t i = 0; i < assets.size(); ++i) {
            if (fixed[i]) continue;
            if (remaining * headroom[i] / weight >= power_cap[i]) {
                shares[i].mw = power_cap[i];
                remaining -= power_cap[i];
                fixed[i] = true;
                clamped = true;
            }
        }
        if (clamped) continue;
        for (std::size_t i = 0; i < assets.size(); ++i)
            if (!fixed[i]) shares[i].mw = remaining * headroom[i] / weight;
        break;
    }
    if (!discharge)
        for (auto& s : shares) s.mw = -s.mw;
    return shares;
}

}  // namespace der::hub
