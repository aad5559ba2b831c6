#pragma once
/// Checks `--every` buckets (der-history, control `history` with every_s)
/// against aggregates this test computes itself from the raw rows of the same
/// window: the test's own arithmetic, not the hub's, is the reference.

#include "der/util/time.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdint>
#include <map>
#include <vector>

namespace der::test {

/// Checks that `buckets` are exactly the `every_ms` buckets of `rows` (aligned
/// to the Unix epoch, empty ones left out) with count, avg, min and max of
/// soc_pct and current_mw. Returns whether any bucket's SOC varied inside it.
inline bool check_buckets_match_raw(const std::vector<nlohmann::json>& rows,
                                    const std::vector<nlohmann::json>& buckets, TimestampMs every_ms) {
    struct Agg {
        std::uint64_t count = 0;
        double soc_sum = 0, soc_min = 1e300, soc_max = -1e300, mw_sum = 0, mw_min = 1e300, mw_max = -1e300;
    };
    std::map<TimestampMs, Agg> expected;
    for (const auto& row : rows) {
        const auto ts = *parse_rfc3339(row["ts"].get<std::string>());
        auto& a = expected[ts - ts % every_ms];
        const double soc = row["soc_pct"].get<double>();
        const double mw = row["current_mw"].get<double>();
        ++a.count;
        a.soc_sum += soc;
        a.soc_min = std::min(a.soc_min, soc);
        a.soc_max = std::max(a.soc_max, soc);
        a.mw_sum += mw;
        a.mw_min = std::min(a.mw_min, mw);
        a.mw_max = std::max(a.mw_max, mw);
    }
    REQUIRE(buckets.size() == expected.size());
    bool varied = false;
    for (const auto& b : buckets) {
        INFO(b.dump());
        const auto ts = *parse_rfc3339(b["ts"].get<std::string>());
        REQUIRE(expected.contains(ts));
        const auto& e = expected[ts];
        const auto n = static_cast<double>(e.count);
        CHECK(b["count"].get<std::uint64_t>() == e.count);
        CHECK(b["soc_pct_avg"].get<double>() == Approx(e.soc_sum / n));
        CHECK(b["soc_pct_min"].get<double>() == Approx(e.soc_min));
        CHECK(b["soc_pct_max"].get<double>() == Approx(e.soc_max));
        CHECK(b["current_mw_avg"].get<double>() == Approx(e.mw_sum / n));
        CHECK(b["current_mw_min"].get<double>() == Approx(e.mw_min));
        CHECK(b["current_mw_max"].get<double>() == Approx(e.mw_max));
        varied = varied || e.soc_min != e.soc_max;
    }
    return varied;
}

}  // namespace der::test
