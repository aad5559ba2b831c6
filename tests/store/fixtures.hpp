#pragma once
// Builders shared by the store tests.

#include "pg_server.hpp"

#include "der/model.hpp"
#include "der/store/pg_connection.hpp"
#include "der/store/store.hpp"

#include <fmt/core.h>

#include <cmath>
#include <stdexcept>
#include <string>

namespace der::test {

using namespace std::chrono_literals;

inline constexpr TimestampMs k_day_ms = 86'400'000;

inline Site make_site(const std::string& name, std::initializer_list<std::string> assets) {
    Site site;
    site.id = Uuid::v5(k_namespace_dns, "site." + name);
    site.name = name;
    site.timezone = "Europe/Paris";
    for (const auto& a : assets) {
        Asset asset;
        asset.id = Uuid::v5(k_namespace_dns, name + "/" + a);
        asset.name = a;
        asset.site_id = site.id;
        asset.site_name = name;
        asset.limits = BessLimits{4.0, 2.0, -2.0, 0.5, 0.9, 5.0, 95.0};
        site.assets.push_back(asset);
    }
    return site;
}

/// A telemetry record with values that vary with seq (exactly representable
/// or not: they must round-trip through COPY text either way).
inline Telemetry make_telemetry(const Uuid& asset, const Uuid& site, const Uuid& epoch, std::uint64_t seq,
                                TimestampMs ts) {
    Telemetry t;
    t.asset_id = asset;
    t.site_id = site;
    t.epoch = epoch;
    t.seq = seq;
    t.ts = ts;
    t.soc_pct = 50.0 + 40.0 * std::sin(static_cast<double>(seq) / 7.0);
    t.capacity_mwh = 4.0;
    t.soc_mwh = t.capacity_mwh * t.soc_pct / 100.0;
    t.current_mw = 2.0 * std::cos(static_cast<double>(seq) / 3.0);
    t.setpoint_mw = seq % 2 == 0 ? 1.5 : -0.1;
    t.max_mw = 2.0;
    t.min_mw = -2.0;
    t.status = t.current_mw > 0 ? AssetStatus::discharging : AssetStatus::charging;
    if (seq % 3 == 0) t.dispatch_id = Uuid::v7(ts);
    return t;
}

/// A fresh migrated database; returns its conninfo.
inline std::string fresh_store() {
    const std::string conninfo = pg().create_database();
    auto store = store::Store::open(conninfo);
    if (!store) throw std::runtime_error("Store::open: " + store.error().message);
    return conninfo;
}

inline store::Connection connect(const std::string& conninfo) {
    auto conn = store::Connection::open(conninfo);
    if (!conn) throw std::runtime_error(conn.error().message);
    return std::move(*conn);
}

/// First column of the first row, as text; throws on failure.
inline std::string value(store::Connection& conn, const std::string& sql) {
    auto v = conn.query_value(sql);
    if (!v) throw std::runtime_error(v.error().message);
    return *v;
}

inline long long count(store::Connection& conn, const std::string& sql) { return std::stoll(value(conn, sql)); }

}  // namespace der::test
