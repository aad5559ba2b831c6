#include "snapshot.hpp"
#include "telemetry_json.hpp"

#include "der/json_codec.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <cmath>
#include <limits>
#include <thread>
#include <vector>

using namespace der;
using namespace der::hub;
using nlohmann::json;

namespace {

/// What GET /telemetry/{id} answered before its bytes were encoded once per
/// record: the whole object built and dumped per request.
std::string reference_body(const Telemetry& t, const std::string& asset_name, TimestampMs received, TimestampMs now,
                           double telemetry_s) {
    json j = t;
    j["asset"] = asset_name;
    const double age_s = static_cast<double>(now - received) / 1000.0;
    j["age_s"] = std::max(0.0, age_s);
    j["stale"] = age_s > 3.0 * telemetry_s;
    return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string spliced_body(const Telemetry& t, const std::string& asset_name, TimestampMs received, TimestampMs now,
                         double telemetry_s) {
    std::string out;
    append_telemetry_json(out, encode_telemetry_json(t, asset_name), freshness(received, now, telemetry_s));
    return out;
}

Telemetry sample() {
    Telemetry t;
    t.asset_id = Uuid::v5(k_namespace_dns, "test/asset");
    t.site_id = Uuid::v5(k_namespace_dns, "test");
    t.epoch = Uuid::v7(1'700'000'000'000);
    t.seq = 42;
    t.ts = 1'700'000'000'123;
    t.soc_mwh = 1.25;
    t.soc_pct = 62.5;
    t.capacity_mwh = 2.0;
    t.current_mw = -0.5;
    t.setpoint_mw = -0.5;
    t.max_mw = 1.0;
    t.min_mw = -1.0;
    t.status = AssetStatus::charging;
    return t;
}

}  // namespace

TEST_CASE("telemetry json spliced with its read-time fields is the bytes of the whole object", "[hub]") {
    std::vector<Telemetry> records;
    records.push_back(sample());
    auto with_dispatch = sample();
    with_dispatch.dispatch_id = Uuid::v7(1'700'000'000'500);
    with_dispatch.status = AssetStatus::fault;
    records.push_back(with_dispatch);
    auto odd_numbers = sample();
    odd_numbers.soc_mwh = std::numeric_limits<double>::quiet_NaN();
    odd_numbers.current_mw = std::numeric_limits<double>::infinity();
    odd_numbers.soc_pct = 1e-300;
    odd_numbers.capacity_mwh = 123456789.125;
    odd_numbers.seq = std::numeric_limits<std::uint64_t>::max();
    odd_numbers.ts = 0;
    records.push_back(odd_numbers);

    const std::vector<std::string> names{"site-a/bess-1", "Zürich/\"quoted\" \\ name", std::string("bad/\xff\xfe utf8")};
    const TimestampMs received = 1'700'000'100'000;
    // now - received, ms: the clock behind the record, fresh, fractional,
    // exactly 3 intervals (not stale), just past, long past
    const std::vector<TimestampMs> ages{-1500, 0, 1, 333, 4000, 12'000, 12'001, 86'400'000, 1'000'000'000'000};
    for (const auto& t : records)
        for (const auto& name : names)
            for (const auto age : ages)
                for (const double interval : {4.0, 0.5}) {
                    INFO("asset " << name << ", age " << age << " ms, interval " << interval << " s");
                    CHECK(spliced_body(t, name, received, received + age, interval) ==
                          reference_body(t, name, received, received + age, interval));
                }
}

TEST_CASE("telemetry json freshness is of the read, clamped at zero, stale past three intervals", "[hub]") {
    CHECK(freshness(10'000, 10'000, 4.0).age_s == 0.0);
    CHECK_FALSE(freshness(10'000, 10'000, 4.0).stale);
    CHECK(freshness(10'000, 8'000, 4.0).age_s == 0.0);  // our clock stepped back
    CHECK(freshness(10'000, 22'000, 4.0).age_s == 12.0);
    CHECK_FALSE(freshness(10'000, 22'000, 4.0).stale);
    CHECK(freshness(10'000, 22'001, 4.0).stale);
}

TEST_CASE("an asset view encodes its telemetry once, whichever reader comes first", "[hub][sanitize]") {
    Site site;
    site.name = "site-a";
    Asset asset;
    asset.id = Uuid::v5(k_namespace_dns, "site-a/bess-1");
    asset.name = "bess-1";
    asset.site_name = "site-a";
    AssetView view(asset);
    view.latest = sample();
    view.latest_received = 5'000;
    std::vector<const TelemetryJson*> seen(4, nullptr);
    std::vector<std::thread> readers;
    for (std::size_t i = 0; i < seen.size(); ++i)
        readers.emplace_back([&view, &seen, i] { seen[i] = &view.telemetry_json(); });
    for (auto& r : readers) r.join();
    for (const auto* p : seen) CHECK(p == seen[0]);
    std::string body;
    append_telemetry_json(body, view.telemetry_json(), freshness(5'000, 6'000, 4.0));
    CHECK(body == reference_body(*view.latest, "site-a/bess-1", 5'000, 6'000, 4.0));
}

TEST_CASE("a fleet view indexes assets by id and by name in configuration order", "[hub]") {
    std::vector<Site> sites(2);
    sites[0].name = "a";
    sites[1].name = "b";
    for (int s = 0; s < 2; ++s)
        for (int k = 0; k < 2; ++k) {
            Asset asset;
            asset.name = "x" + std::to_string(k);
            asset.site_name = sites[s].name;
            asset.id = Uuid::v5(k_namespace_dns, asset.site_name + "/" + asset.name);
            sites[s].assets.push_back(asset);
        }
    auto fleet = std::make_shared<const FleetView>(sites, 4.0, 30.0);
    REQUIRE(fleet->assets.size() == 4);
    CHECK(fleet->assets[2]->qualified_name() == "b/x0");
    Snapshot snap;
    snap.fleet = fleet;
    for (const auto* asset : fleet->assets) snap.assets.push_back(std::make_shared<const AssetView>(*asset));
    REQUIRE(snap.find("b/x1") != nullptr);
    CHECK(&snap.find("b/x1")->asset == fleet->assets[3]);
    CHECK(snap.find(fleet->assets[1]->id.to_string()) == snap.assets[1].get());
    CHECK(snap.find("c/x0") == nullptr);
    CHECK(snap.find(Uuid::v7(1).to_string()) == nullptr);
}
