// The files in examples/ that are not assets.yaml (test_assets_config.cpp
// loads that one) are valid: the docker-compose file is YAML with what
// docs/database.md promises, the dispatch schedules parse as der-dispatch
// reads them.
#include "schedule.hpp"

#include <yaml-cpp/yaml.h>
#include <catch2/catch.hpp>

#include <fstream>
#include <sstream>
#include <string>

namespace {

const std::string k_examples = std::string(DER_SOURCE_DIR) + "/examples/";

std::string slurp(const std::string& path) {
    std::ifstream in(path);
    REQUIRE(in.good());
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

}  // namespace

TEST_CASE("examples/docker-compose.yml runs PostgreSQL 15 for der-hub --db", "[examples]") {
    const YAML::Node doc = YAML::LoadFile(k_examples + "docker-compose.yml");
    const YAML::Node db = doc["services"]["db"];
    REQUIRE(db.IsMap());
    CHECK(db["image"].as<std::string>() == "postgres:15");
    CHECK(db["environment"]["POSTGRES_DB"].as<std::string>() == "der");
    CHECK(db["environment"]["POSTGRES_USER"].as<std::string>() == "der");
    REQUIRE(db["ports"].IsSequence());
    CHECK(db["ports"][0].as<std::string>() == "127.0.0.1:5432:5432");
    // The named volume it mounts is declared.
    const auto mount = db["volumes"][0].as<std::string>();
    CHECK(doc["volumes"][mount.substr(0, mount.find(':'))]);
}

TEST_CASE("examples/dispatch schedules parse as der-dispatch reads them", "[examples]") {
    for (const char* name : {"evening-peak.csv", "morning-charge.jsonl"}) {
        INFO(name);
        const auto run = der::cli::parse_schedule(slurp(k_examples + "dispatch/" + name), 1'000'000);
        REQUIRE(run.has_value());
        CHECK(run->size() >= 4);
        for (const auto& d : *run) {
            CHECK(d.asset.find('/') != std::string::npos);
            CHECK(d.duration_s.has_value());
        }
    }
}
