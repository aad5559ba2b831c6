// Security building blocks: constant-time compare, token and key files, the
// hub's key table, ZAP answers and per-message identity check.
#include "curve_keys.hpp"
#include "key_table.hpp"
#include "token.hpp"

#include "der/assets_config.hpp"

#include <catch2/catch.hpp>
#include <zmq.h>

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

using namespace der;

namespace {

std::string temp_dir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "der-sec-XXXXXX").string();
    REQUIRE(::mkdtemp(pattern.data()) != nullptr);
    return pattern;
}

std::string bytes_of_key(const std::string& z85) {
    std::string raw(32, '\0');
    REQUIRE(zmq_z85_decode(reinterpret_cast<std::uint8_t*>(raw.data()), z85.c_str()) != nullptr);
    return raw;
}

config::Fleet fleet_with_keys(const std::string& key1, const std::string& key2) {
    const std::string yaml = "sites:\n  - name: s\n    assets:\n"
                             "      - {name: a1, capacity_mwh: 1, max_mw: 1, min_mw: -1, agent_public_key: '" +
                             key1 +
                             "'}\n"
                             "      - {name: a2, capacity_mwh: 1, max_mw: 1, min_mw: -1, agent_public_key: '" +
                             key2 + "'}\n";
    auto loaded = config::parse(yaml, "test.yaml");
    REQUIRE(loaded);
    return loaded->fleet;
}

}  // namespace

TEST_CASE("constant_time_equal compares whole secrets", "[security][sanitize]") {
    CHECK(cli::constant_time_equal("token", "token"));
    CHECK(cli::constant_time_equal("", ""));
    CHECK_FALSE(cli::constant_time_equal("token", "tokem"));
    CHECK_FALSE(cli::constant_time_equal("token", "token2"));
    CHECK_FALSE(cli::constant_time_equal("token2", "token"));
    CHECK_FALSE(cli::constant_time_equal("", "x"));
    CHECK_FALSE(cli::constant_time_equal(std::string_view("a\0", 2), "a"));
}

TEST_CASE("token files: first line trimmed, empty or blank-laden ones refused", "[security]") {
    const auto dir = temp_dir();
    const auto write = [&](const std::string& name, const std::string& text) {
        std::ofstream(dir + "/" + name) << text;
        return dir + "/" + name;
    };
    CHECK(cli::read_token_file(write("ok", "  abc-123 \nignored\n")).value() == "abc-123");
    CHECK(cli::read_token_file(write("empty", "\n")).error().code == Errc::config);
    CHECK(cli::read_token_file(write("space", "a b\n")).error().code == Errc::config);
    const auto missing = cli::read_token_file(dir + "/missing");
    CHECK(missing.error().code == Errc::not_found);
    std::filesystem::remove_all(dir);
}

TEST_CASE("key files: written with their mode, never over an existing one, read back", "[security]") {
    const auto dir = temp_dir();
    const auto pair = cli::generate_keypair().value();
    CHECK(cli::is_z85_key(pair.public_key));
    CHECK(cli::public_key_of(pair.secret_key).value() == pair.public_key);
    const auto path = dir + "/k.secret";
    REQUIRE(cli::write_key_file(path, pair.secret_key, 0600, cli::Overwrite::no));
    struct stat st {};
    REQUIRE(::stat(path.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0600);
    CHECK(cli::read_key_file(path).value() == pair.secret_key);
    CHECK(cli::write_key_file(path, pair.secret_key, 0600, cli::Overwrite::no).error().code == Errc::refused);
    CHECK(cli::write_key_file(path, pair.public_key, 0600, cli::Overwrite::yes));
    CHECK(cli::key_or_file(path).value() == pair.public_key);
    CHECK(cli::key_or_file(pair.secret_key).value() == pair.secret_key);
    std::ofstream(dir + "/bad") << "not a key\n";
    CHECK(cli::read_key_file(dir + "/bad").error().code == Errc::config);
    std::filesystem::remove_all(dir);
}

TEST_CASE("ZAP answers by the key table: user id = asset id, unknown keys refused", "[security][sanitize]") {
    const auto k1 = cli::generate_keypair().value();
    const auto k2 = cli::generate_keypair().value();
    const auto stranger = cli::generate_keypair().value();
    const auto fleet = fleet_with_keys(k1.public_key, k2.public_key);
    hub::KeyTable keys;
    keys.rebuild(fleet);
    REQUIRE(keys.size() == 2);
    const Uuid a1 = fleet.sites[0].assets[0].id;
    const Uuid a2 = fleet.sites[0].assets[1].id;

    const auto request = [](const std::string& domain, const std::string& mechanism, const std::string& key) {
        std::vector<std::string> frames{"1.0", "7", domain, "127.0.0.1", "", mechanism};
        if (!key.empty()) frames.push_back(key);
        return frames;
    };
    auto reply = hub::answer_zap(keys, request("der-agents", "CURVE", bytes_of_key(k1.public_key)));
    CHECK(reply.request_id == "7");
    CHECK(reply.status_code == "200");
    CHECK(reply.user_id == a1.to_string());
    CHECK(reply.metadata == hub::zap_metadata("X-Agent-Key", k1.public_key));
    CHECK(reply.metadata.substr(0, 12) == std::string("\x0b" "X-Agent-Key", 12));
    CHECK(reply.metadata.substr(12, 4) == std::string("\0\0\0\x28", 4));

    reply = hub::answer_zap(keys, request("der-agents", "CURVE", bytes_of_key(stranger.public_key)));
    CHECK(reply.status_code == "400");
    CHECK(reply.user_id.empty());
    CHECK(hub::answer_zap(keys, request("der-agents", "NULL", "")).status_code == "400");
    CHECK(hub::answer_zap(keys, request("", "NULL", "")).status_code == "200");  // the control socket
    CHECK(hub::answer_zap(keys, {"1.0", "1"}).status_code == "500");

    const std::string u1 = a1.to_string();
    CHECK(hub::check_peer(keys, u1.c_str(), k1.public_key.c_str(), a1) == hub::PeerCheck::ok);
    CHECK(hub::check_peer(keys, u1.c_str(), k1.public_key.c_str(), std::nullopt) == hub::PeerCheck::ok);
    CHECK(hub::check_peer(keys, u1.c_str(), k1.public_key.c_str(), a2) == hub::PeerCheck::wrong_asset);
    CHECK(hub::check_peer(keys, nullptr, nullptr, a1) == hub::PeerCheck::no_identity);
    CHECK(hub::check_peer(keys, u1.c_str(), k2.public_key.c_str(), a1) == hub::PeerCheck::key_removed);

    // SIGHUP: a1 gets a new key; the connection that authenticated with the old one is refused.
    const auto k1b = cli::generate_keypair().value();
    keys.rebuild(fleet_with_keys(k1b.public_key, k2.public_key));
    CHECK(hub::check_peer(keys, u1.c_str(), k1.public_key.c_str(), a1) == hub::PeerCheck::key_removed);
}
