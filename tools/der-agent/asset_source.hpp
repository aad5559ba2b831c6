#pragma once
/// Where der-agent gets its asset and local limits: one asset of an
/// assets.yaml (`--config`), or the command line's explicit limits. Either
/// way the ID is the one the hub derives (assets_config.hpp).

#include "der/model.hpp"
#include "der/util/error.hpp"

#include <optional>
#include <string>
#include <string_view>

namespace der::agent {

struct AssetSource {
    Asset asset;
    std::optional<double> telemetry_s;  ///< the fleet file's, when read from one
    std::optional<double> heartbeat_s;
};

/// `id_or_name` (UUID or `site/name`) in the fleet file `path`. Errors: the
/// loader's (66 missing file, 78 invalid), or Errc::config naming an asset
/// the file does not hold.
Result<AssetSource> asset_from_config(const std::string& path, std::string_view id_or_name);

/// An asset from explicit limits. For `site/name`, asset ID =
/// v5(k_id_namespace, "site/name") and site ID = v5(k_id_namespace, "site");
/// for a UUID, the site is unknown (nil) until the hub's welcome names it.
/// Errors (Errc::invalid_argument) name the offending flag.
Result<AssetSource> asset_from_flags(std::string_view id_or_name, const BessLimits& limits,
                                     double initial_soc_pct);

}  // namespace der::agent
