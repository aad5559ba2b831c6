#include "snapshot.hpp"

namespace der::hub {

FleetView::FleetView(std::vector<Site> sites_in, double telemetry_s_in, double heartbeat_s_in)
    : sites(std::move(sites_in)), telemetry_s(telemetry_s_in), heartbeat_s(heartbeat_s_in) {
    for (const auto& site : sites) {
        for (const auto& asset : site.assets) {
            by_id.emplace(asset.id, assets.size());
            by_name.emplace(asset.qualified_name(), assets.size());
            assets.push_back(&asset);
        }
    }
}

const AssetView* Snapshot::find(std::string_view id_or_name) const {
    if (auto id = Uuid::parse(id_or_name)) {
        const auto it = fleet->by_id.find(*id);
        return it == fleet->by_id.end() ? nullptr : assets[it->second].get();
    }
    const auto it = fleet->by_name.find(id_or_name);
    return it == fleet->by_name.end() ? nullptr : assets[it->second].get();
}

}  // namespace der::hub
