#include "der/assets_config.hpp"

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <map>
#include <string>
#include <string_view>

using Catch::Matchers::Contains;
using der::Errc;
using der::Uuid;
using der::config::k_id_namespace;
using der::config::parse;

namespace {

/// The error message of a document that must not load.
std::string errors_of(std::string_view yaml) {
    const auto result = parse(yaml, "test.yaml");
    REQUIRE_FALSE(result.has_value());
    CHECK(result.error().code == Errc::config);
    return result.error().message;
}

der::config::Loaded loaded(std::string_view yaml) {
    auto result = parse(yaml, "test.yaml");
    if (!result) FAIL(result.error().message);
    return std::move(*result);
}

}  // namespace

TEST_CASE("the ID namespace is UUIDv5 of assets.der.invalid in the DNS namespace", "[config]") {
    CHECK(k_id_namespace == Uuid::v5(der::k_namespace_dns, "assets.der.invalid"));
    CHECK(k_id_namespace.to_string() == "c948e670-00cd-5c4f-b03d-ad81d225ec8f");
}

TEST_CASE("a minimal asset loads with the documented defaults", "[config]") {
    const auto fleet = loaded(R"(sites:
  - name: north
    assets:
      - name: bess-1
        capacity_mwh: 4
        max_mw: 2
        min_mw: -2
)").fleet;
    CHECK(fleet.telemetry_s == 4.0);
    CHECK(fleet.heartbeat_s == 30.0);
    REQUIRE(fleet.sites.size() == 1);
    REQUIRE(fleet.sites[0].assets.size() == 1);
    const der::Asset& asset = fleet.sites[0].assets[0];
    CHECK(asset.site_name == "north");
    CHECK(asset.site_id == fleet.sites[0].id);
    CHECK(asset.kind == "bess");
    CHECK(asset.limits.capacity_mwh == 4.0);
    CHECK(asset.limits.max_mw == 2.0);
    CHECK(asset.limits.min_mw == -2.0);
    CHECK(asset.limits.ramp_mw_per_s == 0.0);
    CHECK(asset.limits.efficiency == 0.9);
    CHECK(asset.limits.soc_min_pct == 0.0);
    CHECK(asset.limits.soc_max_pct == 100.0);
    CHECK(asset.initial_soc_pct == 50.0);
    CHECK(asset.available);
    CHECK(asset.agent_public_key.empty());
    CHECK(asset.adapter == der::AdapterConfig{});
}

TEST_CASE("derived IDs are stable across parses and equal UUIDv5 of site/asset", "[config]") {
    constexpr std::string_view yaml = R"(sites:
  - name: north
    assets:
      - name: bess-1
        capacity_mwh: 4
        max_mw: 2
        min_mw: -2
)";
    const auto first = loaded(yaml).fleet;
    const auto second = loaded(yaml).fleet;
    CHECK(first.sites == second.sites);
    CHECK(first.sites[0].id == Uuid::v5(k_id_namespace, "north"));
    CHECK(first.sites[0].assets[0].id == Uuid::v5(k_id_namespace, "north/bess-1"));
    CHECK(first.sites[0].assets[0].id.to_string() == "4aa88bab-a89f-5f84-927b-4666b0717b6f");
}

TEST_CASE("explicit IDs are kept", "[config]") {
    const auto fleet = loaded(R"(sites:
  - name: harbour
    id: 6F1C2A8E-4B7D-4F3A-9C21-5E8D0B7A3F10
    assets:
      - name: bess-a
        id: 0b9e5d4c-2a1f-4e6b-8d37-91c4f2a6e805
        capacity_mwh: 10
        max_mw: 5
        min_mw: -5
)").fleet;
    CHECK(fleet.sites[0].id.to_string() == "6f1c2a8e-4b7d-4f3a-9c21-5e8d0b7a3f10");
    CHECK(fleet.sites[0].assets[0].id.to_string() == "0b9e5d4c-2a1f-4e6b-8d37-91c4f2a6e805");
    CHECK(fleet.sites[0].assets[0].site_id == fleet.sites[0].id);
}

TEST_CASE("a duplicate asset ID is an error naming both places", "[config]") {
    const std::string msg = errors_of(R"(sites:
  - name: north
    assets:
      - name: bess-1
        id: 0b9e5d4c-2a1f-4e6b-8d37-91c4f2a6e805
        capacity_mwh: 4
        max_mw: 2
        min_mw: -2
  - name: south
    assets:
      - name: bess-1
        id: 0b9e5d4c-2a1f-4e6b-8d37-91c4f2a6e805
        capacity_mwh: 4
        max_mw: 2
        min_mw: -2
)");
    CHECK_THAT(msg, Contains("test.yaml:12:13: sites[1].assets[0].id: duplicate ID"));
    CHECK_THAT(msg, Contains("test.yaml:5:13, sites[0].assets[0].id"));
}

TEST_CASE("an explicit ID equal to a derived one is a duplicate", "[config]") {
    const std::string msg = errors_of(R"(sites:
  - name: north
    assets:
      - name: bess-1
        capacity_mwh: 4
        max_mw: 2
        min_mw: -2
      - name: bess-2
        id: 4aa88bab-a89f-5f84-927b-4666b0717b6f
        capacity_mwh: 4
        max_mw: 2
        min_mw: -2
)");
    CHECK_THAT(msg, Contains("test.yaml:9:13: sites[0].assets[1].id: duplicate ID") &&
                        Contains("test.yaml:4:9, sites[0].assets[0].id"));
}

TEST_CASE("a duplicate asset name within a site is an error, across sites it is not", "[config]") {
    const std::string msg = errors_of(R"(sites:
  - name: north
    assets:
      - name: bess-1
        capacity_mwh: 4
        max_mw: 2
        min_mw: -2
      - name: bess-1
        capacity_mwh: 4
        max_mw: 2
        min_mw: -2
)");
    CHECK_THAT(msg, Contains("test.yaml:8:15: sites[0].assets[1].name: duplicate asset name 'bess-1'") &&
                        Contains("test.yaml:4:15"));
    // The derived IDs collide too, but that is the same mistake: one line only.
    CHECK(msg.find('\n') == std::string::npos);

    loaded(R"(sites:
  - name: north
    assets: [{name: bess-1, capacity_mwh: 4, max_mw: 2, min_mw: -2}]
  - name: south
    assets: [{name: bess-1, capacity_mwh: 4, max_mw: 2, min_mw: -2}]
)");
}

TEST_CASE("a duplicate site name is an error naming the first", "[config]") {
    const std::string msg = errors_of(R"(sites:
  - name: north
    assets: [{name: bess-1, capacity_mwh: 4, max_mw: 2, min_mw: -2}]
  - name: north
    assets: [{name: bess-2, capacity_mwh: 4, max_mw: 2, min_mw: -2}]
)");
    CHECK_THAT(msg, Contains("test.yaml:4:11: sites[1].name: duplicate site name 'north'") &&
                        Contains("test.yaml:2:11, sites[0].name"));
}

TEST_CASE("a missing capacity_mwh is reported at the asset's map", "[config]") {
    const std::string msg = errors_of(R"(sites:
  - name: north
    assets:
      - name: bess-1
        max_mw: 2
        min_mw: -2
)");
    CHECK_THAT(msg, Contains("test.yaml:4:9: sites[0].assets[0].capacity_mwh: required key is missing"));
}

TEST_CASE("a misspelt key warns, and a missing required key points at the typo", "[config]") {
    const std::string msg = errors_of(R"(sites:
  - name: north
    assets:
      - name: bess-1
        capcity_mwh: 4
        max_mw: 2
        min_mw: -2
)");
    CHECK_THAT(msg, Contains("capacity_mwh: required key is missing ('capcity_mwh' is there: a typo?)"));
}

TEST_CASE("capacity_mwh must be > 0", "[config]") {
    for (const std::string_view value : {"0", "-4"}) {
        const std::string msg = errors_of(fmt::format(R"(sites:
  - name: north
    assets:
      - name: bess-1
        max_mw: 2
        min_mw: -2
        capacity_mwh: {}
)",
                                                      value));
        CHECK_THAT(msg, Contains("test.yaml:7:23: sites[0].assets[0].capacity_mwh: must be > 0"));
    }
}

TEST_CASE("max_mw below 0 is an error", "[config]") {
    const std::string msg = errors_of(R"(sites:
  - name: north
    assets:
      - name: bess-1
        capacity_mwh: 4
        max_mw: -1
        min_mw: -2
)");
    CHECK_THAT(msg, Contains("test.yaml:6:17: sites[0].assets[0].max_mw: must be >= 0"));
}

TEST_CASE("min_mw above 0 is an error", "[config]") {
    const std::string msg = errors_of(R"(sites:
  - name: north
    assets:
      - name: bess-1
        capacity_mwh: 4
        max_mw: 2
        min_mw: 0.5
)");
    CHECK_THAT(msg, Contains("test.yaml:7:17: sites[0].assets[0].min_mw: must be <= 0"));
}

TEST_CASE("efficiency must be above 0 and at most 1", "[config]") {
    const auto with_efficiency = [](std::string_view value) {
        return fmt::format(R"(sites:
  - name: north
    assets:
      - name: bess-1
        capacity_mwh: 4
        max_mw: 2
        min_mw: -2
        efficiency: {}
)",
                           value);
    };
    SECTION("0") {
        CHECK_THAT(errors_of(with_efficiency("0")),
                   Contains("test.yaml:8:21: sites[0].assets[0].efficiency: must be in (0, 1], got 0"));
    }
    SECTION("1.5") {
        CHECK_THAT(errors_of(with_efficiency("1.5")),
                   Contains("test.yaml:8:21: sites[0].assets[0].efficiency: must be in (0, 1], got 1.5"));
    }
    SECTION("1 is allowed") { CHECK(loaded(with_efficiency("1")).fleet.sites[0].assets[0].limits.efficiency == 1.0); }
}

TEST_CASE("soc_min_pct must be below soc_max_pct", "[config]") {
    const std::string msg = errors_of(R"(sites:
  - name: north
    assets:
      - name: bess-1
        capacity_mwh: 4
        max_mw: 2
        min_mw: -2
        soc_min_pct: 60
        soc_max_pct: 60
)");
    CHECK_THAT(msg, Contains("test.yaml:9:22: sites[0].assets[0].soc_max_pct: soc_max_pct (60) must be greater "
                             "than soc_min_pct (60)"));
}

TEST_CASE("initial_soc_pct must lie in the SOC window, the default too", "[config]") {
    const std::string msg = errors_of(R"(sites:
  - name: north
    assets:
      - name: bess-1
        capacity_mwh: 4
        max_mw: 2
        min_mw: -2
        soc_min_pct: 10
        soc_max_pct: 90
        initial_soc_pct: 95
      - name: bess-2
        capacity_mwh: 4
        max_mw: 2
        min_mw: -2
        soc_min_pct: 60
)");
    CHECK_THAT(msg, Contains("test.yaml:10:26: sites[0].assets[0].initial_soc_pct: 95 must be within the SOC "
                             "window [10, 90]"));
    CHECK_THAT(msg, Contains("test.yaml:11:9: sites[0].assets[1].initial_soc_pct: the default 50 must be "
                             "within the SOC window [60, 100]"));
}

TEST_CASE("a value of the wrong type is an error naming the field", "[config]") {
    const std::string msg = errors_of(R"(telemetry_s: [4]
sites:
  - name: north
    assets:
      - name: bess-1
        capacity_mwh: lots
        max_mw: 2
        min_mw: -2
        available: maybe
        efficiency: .nan
)");
    CHECK_THAT(msg, Contains("test.yaml:1:14: telemetry_s: must be a number, got a list"));
    CHECK_THAT(msg, Contains("test.yaml:6:23: sites[0].assets[0].capacity_mwh: must be a number, got 'lots'"));
    CHECK_THAT(msg, Contains("test.yaml:9:20: sites[0].assets[0].available: must be true or false, got 'maybe'"));
    CHECK_THAT(msg, Contains("test.yaml:10:21: sites[0].assets[0].efficiency: must be a finite number"));
}

TEST_CASE("a YAML syntax error names its line", "[config]") {
    const std::string msg = errors_of(R"(sites:
  - name: north
    assets:
      - name: bess-1
        capacity_mwh: [4
        max_mw: 2
)");
    CHECK_THAT(msg, Contains("test.yaml:") && Contains("YAML syntax error"));
    CHECK(msg.find("test.yaml:1:") == std::string::npos);  // a real line, not the top

    CHECK_THAT(errors_of("sites:\n\t- name: north\n"), Contains("test.yaml:2:2: YAML syntax error: illegal block entry"));
    // yaml-cpp 0.7's LoadAll never returns on this one (yaml-cpp PR #1319).
    CHECK(errors_of("# fleet\n,\n") == "test.yaml:2:1: YAML syntax error: unexpected ','");
}

TEST_CASE("an empty file, a second document, a missing or empty sites list is an error", "[config]") {
    CHECK_THAT(errors_of(""), Contains("test.yaml:1:1: empty file"));
    CHECK_THAT(errors_of("# only a comment\n"), Contains("test.yaml:1:1: empty file"));
    CHECK_THAT(errors_of("telemetry_s: 2\n"), Contains("test.yaml:1:1: sites: required key is missing"));
    CHECK_THAT(errors_of("sites: []\n"), Contains("test.yaml:1:8: sites: must be a non-empty list"));
    CHECK_THAT(errors_of("- 1\n"), Contains("test.yaml:1:1: the file must be a map"));
    CHECK_THAT(errors_of("sites: []\n---\nsites: []\n"),
               Contains("test.yaml:3:1: only one YAML document is allowed"));
}

TEST_CASE("unknown keys are warnings and the file still loads", "[config]") {
    const auto result = loaded(R"(colour: blue
sites:
  - name: north
    assets:
      - name: bess-1
        capacity_mwh: 4
        max_mw: 2
        min_mw: -2
        max_mv: 3
)");
    REQUIRE(result.warnings.size() == 2);
    CHECK(result.warnings[0].to_string() == "test.yaml:1:1: colour: unknown key, ignored");
    CHECK(result.warnings[1].to_string() ==
          "test.yaml:9:9: sites[0].assets[0].max_mv: unknown key, ignored; did you mean 'max_mw'?");
    CHECK(result.fleet.sites[0].assets[0].limits.max_mw == 2.0);
}

TEST_CASE("names are restricted and a key may appear once", "[config]") {
    const std::string msg = errors_of(R"(sites:
  - name: north/east
    assets:
      - name: bess 1
        capacity_mwh: 4
        capacity_mwh: 5
        max_mw: 2
        min_mw: -2
)");
    CHECK_THAT(msg, Contains("test.yaml:2:11: sites[0].name: must be letters, digits"));
    CHECK_THAT(msg, Contains("test.yaml:4:15: sites[0].assets[0].name: must be letters, digits"));
    CHECK_THAT(msg, Contains("test.yaml:6:9: sites[0].assets[0].capacity_mwh: duplicate key (first at line 5)"));
}

TEST_CASE("adapter options are kept as strings, nested maps flattened", "[config]") {
    const auto fleet = loaded(R"(sites:
  - name: north
    assets:
      - name: bess-1
        capacity_mwh: 4
        max_mw: 2
        min_mw: -2
        adapter:
          type: modbus
          host: 10.0.0.5
          port: 502
          register_map:
            soc: {address: 30001, scale: 0.1}
)").fleet;
    const der::AdapterConfig& adapter = fleet.sites[0].assets[0].adapter;
    CHECK(adapter.kind == "modbus");
    CHECK(adapter.options == std::map<std::string, std::string>{{"host", "10.0.0.5"},
                                                                  {"port", "502"},
                                                                  {"register_map.soc.address", "30001"},
                                                                  {"register_map.soc.scale", "0.1"}});

    const std::string msg = errors_of(R"(sites:
  - name: north
    assets:
      - name: bess-1
        capacity_mwh: 4
        max_mw: 2
        min_mw: -2
        adapter:
          type: serial
          hosts: [a, b]
)");
    CHECK_THAT(msg, Contains("test.yaml:9:17: sites[0].assets[0].adapter.type: must be one of sim, exec, modbus"));
    CHECK_THAT(msg, Contains("test.yaml:10:18: sites[0].assets[0].adapter.hosts: lists are not supported"));
}

TEST_CASE("agent public keys are 40 Z85 characters, unique, on every asset or none", "[config]") {
    const std::string msg = errors_of(R"(sites:
  - name: north
    assets:
      - {name: a, capacity_mwh: 4, max_mw: 2, min_mw: -2, agent_public_key: "Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID"}
      - {name: b, capacity_mwh: 4, max_mw: 2, min_mw: -2, agent_public_key: "Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID"}
      - {name: c, capacity_mwh: 4, max_mw: 2, min_mw: -2, agent_public_key: "too short"}
      - {name: d, capacity_mwh: 4, max_mw: 2, min_mw: -2}
)");
    CHECK_THAT(msg, Contains("test.yaml:5:") && Contains("sites[0].assets[1].agent_public_key: duplicate") &&
                        Contains("test.yaml:4:"));
    CHECK_THAT(msg, Contains("test.yaml:6:") && Contains("sites[0].assets[2].agent_public_key: must be a Z85"));
    CHECK_THAT(msg, Contains("test.yaml:7:9: sites[0].assets[3].agent_public_key: missing: 3 asset(s)"));
}

TEST_CASE("several errors are reported together, in line order", "[config]") {
    const std::string msg = errors_of(R"(heartbeat_s: 0
sites:
  - name: north
    assets:
      - name: bess-1
        capacity_mwh: -1
        max_mw: -2
        min_mw: 2
)");
    CHECK(msg ==
          "test.yaml:1:14: heartbeat_s: must be between 0.1 and 86400 (seconds), got 0\n"
          "test.yaml:6:23: sites[0].assets[0].capacity_mwh: must be > 0, got -1\n"
          "test.yaml:7:17: sites[0].assets[0].max_mw: must be >= 0 (the discharge limit), got -2\n"
          "test.yaml:8:17: sites[0].assets[0].min_mw: must be <= 0 (the charge limit), got 2");
}

TEST_CASE("examples/assets.yaml loads without warnings", "[config]") {
    const auto result = der::config::load_file(DER_SOURCE_DIR "/examples/assets.yaml");
    REQUIRE(result.has_value());
    CHECK(result->warnings.empty());
    const auto& fleet = result->fleet;
    REQUIRE(fleet.sites.size() == 2);
    CHECK(fleet.all_assets().size() == 5);
    CHECK(fleet.sites[0].id == Uuid::v5(k_id_namespace, "north"));
    CHECK(fleet.sites[1].id.to_string() == "6f1c2a8e-4b7d-4f3a-9c21-5e8d0b7a3f10");
}

TEST_CASE("telemetry_s and heartbeat_s are bounded to sane intervals", "[config]") {
    const auto fleet = [](const std::string& head) {
        return head + "\nsites:\n  - name: s\n    assets:\n      - {name: b, capacity_mwh: 1, max_mw: 1, min_mw: -1}\n";
    };
    CHECK(der::config::parse(fleet("telemetry_s: 0.1\nheartbeat_s: 86400"), "t.yaml"));
    CHECK(der::config::parse(fleet("telemetry_s: 3600\nheartbeat_s: 0.1"), "t.yaml"));
    for (const char* bad : {"telemetry_s: 1e-9", "telemetry_s: 1e300", "telemetry_s: 3601", "heartbeat_s: 0.01",
                            "heartbeat_s: 86401"}) {
        INFO(bad);
        const auto r = der::config::parse(fleet(bad), "t.yaml");
        REQUIRE_FALSE(r);
        CHECK_THAT(r.error().message, Contains("t.yaml:1:") && Contains("must be between 0.1 and"));
    }
}

TEST_CASE("load_file refuses a directory and stops reading an endless file", "[config]") {
    const auto dir = der::config::load_file("/tmp");
    REQUIRE_FALSE(dir);
    CHECK(dir.error().code == der::Errc::not_found);
    CHECK_THAT(dir.error().message, Contains("/tmp: is a directory"));
    const auto zero = der::config::load_file("/dev/zero");  // a character device: read, up to the cap
    REQUIRE_FALSE(zero);
    CHECK(zero.error().code == der::Errc::config);
    CHECK_THAT(zero.error().message, Contains("at most 64 MiB"));
}

TEST_CASE("load_file of a missing file is not_found naming the path", "[config]") {
    const auto result = der::config::load_file("/nonexistent/assets.yaml");
    REQUIRE_FALSE(result.has_value());
    CHECK(result.error().code == Errc::not_found);
    CHECK_THAT(result.error().message, Contains("/nonexistent/assets.yaml: No such file or directory"));
}

TEST_CASE("find_asset takes the ID or site/asset, find_site the ID or name", "[config]") {
    const auto fleet = loaded(R"(sites:
  - name: north
    assets: [{name: bess-1, capacity_mwh: 4, max_mw: 2, min_mw: -2},
             {name: bess-2, capacity_mwh: 8, max_mw: 4, min_mw: -4}]
  - name: south
    assets: [{name: bess-1, capacity_mwh: 2, max_mw: 1, min_mw: -1}]
)").fleet;
    const der::Asset* by_name = fleet.find_asset("south/bess-1");
    REQUIRE(by_name != nullptr);
    CHECK(by_name->limits.capacity_mwh == 2.0);
    CHECK(fleet.find_asset(by_name->id.to_string()) == by_name);
    CHECK(fleet.find_asset("north/bess-2") == &fleet.sites[0].assets[1]);
    CHECK(fleet.find_asset("north/bess-9") == nullptr);
    CHECK(fleet.find_asset("bess-1") == nullptr);
    CHECK(fleet.find_asset(Uuid::v5(k_id_namespace, "east/bess-1").to_string()) == nullptr);
    CHECK(fleet.find_site("south") == &fleet.sites[1]);
    CHECK(fleet.find_site(fleet.sites[0].id.to_string()) == &fleet.sites[0]);
    CHECK(fleet.find_site("east") == nullptr);
}

TEST_CASE("to_yaml writes a fleet that parses back equal", "[config]") {
    const auto original = loaded(R"(telemetry_s: 2.5
heartbeat_s: 0.1
sites:
  - name: north
    timezone: Europe/Berlin
    assets:
      - {name: a, capacity_mwh: 0.3, max_mw: 2, min_mw: -1.7, ramp_mw_per_s: 0.05, efficiency: 0.87,
         soc_min_pct: 5, soc_max_pct: 95.5, initial_soc_pct: 33.3, available: false,
         agent_public_key: "Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID",
         adapter: {type: modbus, host: "10.0.0.7", port: 502, empty:, note: "a: 'b' \"c\"\n# d",
                   register_map: {soc: {address: 30001, scale: 0.1}}}}
  - name: south
    id: 2f1c1c3e-7f0e-4a43-9a56-1a1c1b1d1e1f
    assets:
      - {name: b, id: 7f8c2a3e-1b2c-4d5e-8f90-a1b2c3d4e5f6, capacity_mwh: 4, max_mw: 2, min_mw: -2,
         agent_public_key: "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7"}
)");
    const std::string text = der::config::to_yaml(original.fleet);
    const auto again = loaded(text);
    CHECK(again.warnings.empty());
    CHECK(again.fleet.telemetry_s == original.fleet.telemetry_s);
    CHECK(again.fleet.heartbeat_s == original.fleet.heartbeat_s);
    CHECK(again.fleet.sites == original.fleet.sites);
    CHECK(again.fleet.sites[0].assets[0].adapter.options.at("note") == "a: 'b' \"c\"\n# d");
    CHECK(again.fleet.sites[0].assets[0].adapter.options.at("empty").empty());

    SECTION("one asset on its own") {
        der::config::Fleet one;
        one.telemetry_s = original.fleet.telemetry_s;
        const der::Site& south = original.fleet.sites[1];
        one.sites.push_back(der::Site{south.id, south.name, south.timezone, {south.assets[0]}});
        const auto alone = loaded(der::config::to_yaml(one));
        REQUIRE(alone.fleet.all_assets().size() == 1);
        CHECK(*alone.fleet.find_asset("south/b") == south.assets[0]);
    }
}
