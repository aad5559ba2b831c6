// Fuzz target: the assets.yaml loader (docs/assets-yaml.md), on the input as
// YAML text. It must never throw or crash; a failure is Errc::config with a
// message; and a fleet that loads obeys every rule of the format reference:
// limits in range and finite, valid unique names, non-nil IDs unique across
// sites and assets, assets linked to their site, positive intervals, keys on
// every asset or none, and lookup by `site/asset` and by ID finds each asset.
#include "fuzz_check.hpp"

#include "der/assets_config.hpp"

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <set>
#include <string_view>

namespace {

using der::fuzz::require;

bool finite(double v) { return std::isfinite(v); }

bool valid_name(std::string_view name) {
    if (name.empty() || name == "." || name == ".." || der::Uuid::parse(name)) return false;
    for (const char c : name) {
        const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                        c == '_' || c == '-';
        if (!ok) return false;
    }
    return true;
}

void check_limits(const der::Asset& a) {
    const der::BessLimits& l = a.limits;
    const auto name = a.qualified_name();
    require(finite(l.capacity_mwh) && l.capacity_mwh > 0, "capacity_mwh > 0", name);
    require(finite(l.max_mw) && l.max_mw >= 0, "max_mw >= 0", name);
    require(finite(l.min_mw) && l.min_mw <= 0, "min_mw <= 0", name);
    require(finite(l.ramp_mw_per_s) && l.ramp_mw_per_s >= 0, "ramp_mw_per_s >= 0", name);
    require(l.efficiency > 0 && l.efficiency <= 1, "0 < efficiency <= 1", name);
    require(l.soc_min_pct >= 0 && l.soc_max_pct <= 100, "SOC window within [0, 100]", name);
    require(l.soc_min_pct < l.soc_max_pct, "soc_min_pct < soc_max_pct", name);
    require(a.initial_soc_pct >= l.soc_min_pct && a.initial_soc_pct <= l.soc_max_pct,
            "initial_soc_pct within the SOC window", name);
}

void check_fleet(const der::config::Fleet& fleet) {
    require(finite(fleet.telemetry_s) && fleet.telemetry_s > 0, "telemetry_s > 0");
    require(finite(fleet.heartbeat_s) && fleet.heartbeat_s > 0, "heartbeat_s > 0");
    std::set<der::Uuid> ids;
    std::set<std::string_view> site_names;
    std::size_t with_key = 0;
    std::size_t assets = 0;
    for (const der::Site& site : fleet.sites) {
        require(valid_name(site.name), "a site name is valid", site.name);
        require(site_names.insert(site.name).second, "site names are unique", site.name);
        require(!site.id.is_nil(), "a site ID is not nil", site.name);
        require(ids.insert(site.id).second, "IDs are unique", site.name);
        require(fleet.find_site(site.name) == &site, "find_site finds a site by name", site.name);
        std::set<std::string_view> asset_names;
        for (const der::Asset& a : site.assets) {
            const auto name = a.qualified_name();
            require(valid_name(a.name), "an asset name is valid", name);
            require(asset_names.insert(a.name).second, "asset names are unique within a site", name);
            require(!a.id.is_nil(), "an asset ID is not nil", name);
            require(ids.insert(a.id).second, "IDs are unique", name);
            require(a.site_id == site.id && a.site_name == site.name, "an asset names its own site", name);
            require(a.kind == "bess", "kind is bess", name);
            require(a.adapter.kind == "sim" || a.adapter.kind == "exec" || a.adapter.kind == "modbus",
                    "the adapter type is sim, exec or modbus", name);
            require(a.agent_public_key.empty() || a.agent_public_key.size() == 40,
                    "an agent key is 40 characters", name);
            check_limits(a);
            require(fleet.find_asset(name) == &a, "find_asset finds an asset by site/asset", name);
            require(fleet.find_asset(a.id.to_string()) == &a, "find_asset finds an asset by ID", name);
            with_key += a.agent_public_key.empty() ? 0 : 1;
            ++assets;
        }
    }
    require(with_key == 0 || with_key == assets, "agent keys on every asset or on none");
    require(fleet.all_assets().size() == assets, "all_assets lists every asset");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    const auto loaded = der::config::parse(text, "fuzz.yaml");
    if (!loaded) {
        require(loaded.error().code == der::Errc::config, "a load failure has code config", loaded.error().message);
        require(!loaded.error().message.empty(), "a load failure has a message");
        return 0;
    }
    check_fleet(loaded->fleet);
    return 0;
}
