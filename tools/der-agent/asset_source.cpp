#include "asset_source.hpp"

#include "der/assets_config.hpp"

#include <fmt/core.h>

#include <cmath>

namespace der::agent {

namespace {

Result<void> check_limits(const BessLimits& l, double initial_soc_pct) {
    auto bad = [](std::string_view flag, std::string_view rule, double value) {
        return fail(Errc::invalid_argument, fmt::format("{} must be {} (got {})", flag, rule, value));
    };
    if (!std::isfinite(l.capacity_mwh) || l.capacity_mwh <= 0)
        return bad("--capacity-mwh", "> 0", l.capacity_mwh);
    if (!std::isfinite(l.max_mw) || l.max_mw < 0) return bad("--max-mw", ">= 0", l.max_mw);
    if (!std::isfinite(l.min_mw) || l.min_mw > 0) return bad("--min-mw", "<= 0", l.min_mw);
    if (!std::isfinite(l.ramp_mw_per_s) || l.ramp_mw_per_s < 0)
        return bad("--ramp-mw-per-s", ">= 0", l.ramp_mw_per_s);
    if (!(l.efficiency > 0 && l.efficiency <= 1)) return bad("--efficiency", "in (0, 1]", l.efficiency);
    if (!(l.soc_min_pct >= 0 && l.soc_min_pct <= 100))
        return bad("--soc-min-pct", "in [0, 100]", l.soc_min_pct);
    if (!(l.soc_max_pct >= 0 && l.soc_max_pct <= 100))
        return bad("--soc-max-pct", "in [0, 100]", l.soc_max_pct);
    if (l.soc_min_pct > l.soc_max_pct)
        return bad("--soc-min-pct", fmt::format("<= --soc-max-pct {}", l.soc_max_pct), l.soc_min_pct);
    if (!(initial_soc_pct >= l.soc_min_pct && initial_soc_pct <= l.soc_max_pct))
        return bad("--initial-soc-pct", fmt::format("in [{}, {}]", l.soc_min_pct, l.soc_max_pct),
                   initial_soc_pct);
    return {};
}

}  // namespace

Result<AssetSource> asset_from_config(const std::string& path, std::string_view id_or_name) {
    auto loaded = config::load_file(path);
    if (!loaded) return std::unexpected(loaded.error());
    const Asset* asset = loaded->fleet.find_asset(id_or_name);
    if (asset == nullptr)
        return fail(Errc::config,
                    fmt::format("{}: no asset '{}' (give its UUID or site/name)", path, id_or_name));
    return AssetSource{*asset, loaded->fleet.telemetry_s, loaded->fleet.heartbeat_s};
}

Result<AssetSource> asset_from_flags(std::string_view id_or_name, const BessLimits& limits,
                                     double initial_soc_pct) {
    if (auto ok = check_limits(limits, initial_soc_pct); !ok) return std::unexpected(ok.error());
    AssetSource source;
    Asset& asset = source.asset;
    asset.limits = limits;
    asset.initial_soc_pct = initial_soc_pct;
    if (const auto id = Uuid::parse(id_or_name)) {
        asset.id = *id;
        asset.name = std::string(id_or_name);
        return source;
    }
    const auto slash = id_or_name.find('/');
    if (slash == std::string_view::npos || slash == 0 || slash + 1 == id_or_name.size() ||
        id_or_name.find('/', slash + 1) != std::string_view::npos)
        return fail(Errc::invalid_argument,
                    fmt::format("--asset '{}' is neither a UUID nor site/name", id_or_name));
    asset.site_name = std::string(id_or_name.substr(0, slash));
    asset.name = std::string(id_or_name.substr(slash + 1));
    asset.site_id = Uuid::v5(config::k_id_namespace, asset.site_name);
    asset.id = Uuid::v5(config::k_id_namespace, id_or_name);
    return source;
}

}  // namespace der::agent
