// docs/openapi.yaml and the hub's route table (rest_routes.cpp) describe the
// same set of routes, and the hub serves the file as it is in the tree.
#include "rest_routes.hpp"

#include <yaml-cpp/yaml.h>
#include <catch2/catch.hpp>

#include <fstream>
#include <set>
#include <sstream>
#include <string>

namespace {

const std::string k_openapi_path = std::string(DER_SOURCE_DIR) + "/docs/openapi.yaml";

std::string upper(std::string text) {
    for (auto& c : text) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return text;
}

/// "GET /path" for every operation of the OpenAPI file.
std::set<std::string> documented_routes() {
    const YAML::Node doc = YAML::LoadFile(k_openapi_path);
    std::set<std::string> out;
    for (const auto& path : doc["paths"]) {
        for (const auto& op : path.second) {
            const auto key = op.first.as<std::string>();
            if (key == "parameters" || key == "summary" || key == "description") continue;
            out.insert(upper(key) + " " + path.first.as<std::string>());
        }
    }
    return out;
}

}  // namespace

TEST_CASE("docs/openapi.yaml documents exactly the routes the hub serves", "[openapi]") {
    std::set<std::string> served;
    for (const auto& r : der::hub::rest_routes()) {
        const auto inserted = served.insert(std::string(r.method) + " " + std::string(r.path)).second;
        CHECK(inserted);  // no route twice
    }
    const auto documented = documented_routes();
    for (const auto& r : served) {
        INFO("served but not in docs/openapi.yaml: " << r);
        CHECK(documented.count(r) == 1);
    }
    for (const auto& r : documented) {
        INFO("in docs/openapi.yaml but not served: " << r);
        CHECK(served.count(r) == 1);
    }
}

TEST_CASE("docs/openapi.yaml is an OpenAPI 3 document with schemas for every reference", "[openapi]") {
    const YAML::Node doc = YAML::LoadFile(k_openapi_path);
    REQUIRE(doc["openapi"].as<std::string>().rfind("3.", 0) == 0);
    REQUIRE(doc["info"]["title"]);
    // Every $ref points at an entry of components.
    std::ifstream in(k_openapi_path);
    std::stringstream text;
    text << in.rdbuf();
    const std::string s = text.str();
    const std::string marker = "\"#/components/";
    for (auto pos = s.find(marker); pos != std::string::npos; pos = s.find(marker, pos + 1)) {
        const auto start = pos + marker.size();
        const auto end = s.find('"', start);
        const std::string ref = s.substr(start, end - start);  // schemas/Error
        const auto slash = ref.find('/');
        INFO("$ref " << ref);
        CHECK(doc["components"][ref.substr(0, slash)][ref.substr(slash + 1)].IsDefined());
    }
}

TEST_CASE("the hub embeds docs/openapi.yaml as it is in the tree", "[openapi]") {
    std::ifstream in(k_openapi_path);
    std::stringstream text;
    text << in.rdbuf();
    CHECK(der::hub::openapi_yaml() == text.str());
}

TEST_CASE("route templates become the server's regular expressions", "[openapi]") {
    CHECK(der::hub::rest_route_regex("/health") == "/health");
    CHECK(der::hub::rest_route_regex("/openapi.yaml") == R"(/openapi\.yaml)");
    CHECK(der::hub::rest_route_regex("/telemetry/{id}/history") ==
          R"(/telemetry/([^/]+(?:/[^/]+)?)/history)");
    CHECK(der::hub::rest_route_regex("/sites/{site}/dispatch") == R"(/sites/([^/]+)/dispatch)");
}
