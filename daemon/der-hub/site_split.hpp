#pragma once
/// Splitting a site's power target across its batteries by headroom
/// (der-hub(8), "SITE DISPATCH"). Pure function, unit-tested.
///
/// Discharge (mw > 0) is shared in proportion to each battery's energy above
/// its soc_min, charge (mw < 0) in proportion to its room below soc_max;
/// each share stays within the battery's power limit, and what a full
/// battery cannot take is shared among the others (water filling). A target
/// beyond what the batteries with headroom can deliver is refused, naming
/// the shortfall.

#include "der/model.hpp"
#include "der/util/error.hpp"

#include <vector>

namespace der::hub {

struct SplitInput {
    Uuid asset_id;
    double soc_mwh = 0.0;
    BessLimits limits;
};

struct SplitShare {
    Uuid asset_id;
    double mw = 0.0;
};

/// Errc::refused when the target cannot be met (message names the shortfall).
Result<std::vector<SplitShare>> split_site_target(double mw, const std::vector<SplitInput>& assets);

}  // namespace der::hub
