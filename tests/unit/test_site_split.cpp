#include "site_split.hpp"

#include <catch2/catch.hpp>

using namespace der;
using der::hub::split_site_target;
using der::hub::SplitInput;

namespace {
SplitInput battery(const char* name, double capacity, double soc_pct, double max_mw, double min_mw) {
    BessLimits l;
    l.capacity_mwh = capacity;
    l.max_mw = max_mw;
    l.min_mw = min_mw;
    l.soc_min_pct = 10;
    l.soc_max_pct = 90;
    return {Uuid::v5(k_namespace_dns, name), capacity * soc_pct / 100.0, l};
}
double sum(const std::vector<der::hub::SplitShare>& s) {
    double t = 0;
    for (const auto& x : s) t += x.mw;
    return t;
}
}  // namespace

TEST_CASE("a site target is shared by energy above soc_min, within each battery's limits", "[hub][site]") {
    const std::vector<SplitInput> site = {battery("a", 4, 80, 2, -2), battery("b", 4, 40, 2, -2),
                                          battery("c", 8, 60, 1, -1)};
    auto shares = split_site_target(3.0, site);
    REQUIRE(shares);
    CHECK(sum(*shares) == Approx(3.0));
    // Headroom 2.8, 1.2 and 4.0 MWh: c is capped at 1 MW, a and b share the rest 2.8 : 1.2.
    CHECK((*shares)[2].mw == Approx(1.0));
    CHECK((*shares)[0].mw == Approx(1.4));
    CHECK((*shares)[1].mw == Approx(0.6));
    for (std::size_t i = 0; i < site.size(); ++i) CHECK((*shares)[i].mw <= site[i].limits.max_mw + 1e-12);
}

TEST_CASE("a charge target is shared by room below soc_max", "[hub][site]") {
    const std::vector<SplitInput> site = {battery("a", 4, 80, 2, -2), battery("b", 4, 40, 2, -2)};
    auto shares = split_site_target(-1.0, site);
    REQUIRE(shares);
    CHECK(sum(*shares) == Approx(-1.0));
    // Room 0.4 and 2.0 MWh.
    CHECK((*shares)[0].mw == Approx(-1.0 * 0.4 / 2.4));
    CHECK((*shares)[1].mw == Approx(-1.0 * 2.0 / 2.4));
}

TEST_CASE("an impossible site target is refused naming the shortfall, empty batteries are skipped", "[hub][site]") {
    const std::vector<SplitInput> site = {battery("a", 4, 10, 2, -2), battery("b", 4, 50, 2, -2)};
    auto shares = split_site_target(3.0, site);  // a is at soc_min: only b (2 MW) can discharge
    REQUIRE_FALSE(shares);
    CHECK(shares.error().code == Errc::refused);
    CHECK(shares.error().message.find("1.000 MW short") != std::string::npos);
    auto ok = split_site_target(1.5, site);
    REQUIRE(ok);
    CHECK((*ok)[0].mw == 0.0);
    CHECK((*ok)[1].mw == Approx(1.5));
    auto zero = split_site_target(0.0, site);
    REQUIRE(zero);
    CHECK(sum(*zero) == 0.0);
}
