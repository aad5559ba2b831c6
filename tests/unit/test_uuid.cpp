#include "der/util/sha1.hpp"
#include "der/util/uuid.hpp"

#include <catch2/catch.hpp>

#include <set>
#include <string>
#include <vector>

using der::Uuid;

namespace {
std::string hex(const std::array<std::uint8_t, 20>& digest) {
    static constexpr char k[] = "0123456789abcdef";
    std::string out;
    for (auto b : digest) {
        out.push_back(k[b >> 4]);
        out.push_back(k[b & 15]);
    }
    return out;
}
std::array<std::uint8_t, 20> sha1_of(std::string_view s) {
    return der::util::sha1({reinterpret_cast<const std::uint8_t*>(s.data()), s.size()});
}
}  // namespace

TEST_CASE("sha1 matches the FIPS 180 test vectors", "[util][uuid]") {
    CHECK(hex(sha1_of("abc")) == "a9993e364706816aba3e25717850c26c9cd0d89d");
    CHECK(hex(sha1_of("")) == "da39a3ee5e6b4b0d3255bfef95601890afd80709");
    CHECK(hex(sha1_of("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")) ==
          "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
    CHECK(hex(sha1_of(std::string(1000000, 'a'))) == "34aa973cd4c4daa4f61eeb2bdbad27316534016f");
}

TEST_CASE("uuid v5 matches the RFC 9562 example and is stable", "[util][uuid]") {
    // RFC 9562 appendix A.4: v5 of "www.example.com" in the DNS namespace.
    CHECK(Uuid::v5(der::k_namespace_dns, "www.example.com").to_string() == "2ed6657d-e927-568b-95e1-2665a8aea6a2");
    const auto a = Uuid::v5(der::k_namespace_dns, "north/bess-1");
    CHECK(a == Uuid::v5(der::k_namespace_dns, "north/bess-1"));
    CHECK(a != Uuid::v5(der::k_namespace_dns, "north/bess-2"));
    CHECK(a.version() == 5);
}

TEST_CASE("uuid parses the canonical form in either case and rejects the rest", "[util][uuid]") {
    const auto id = Uuid::parse("2ED6657D-e927-568b-95e1-2665a8aea6a2");
    REQUIRE(id);
    CHECK(id->to_string() == "2ed6657d-e927-568b-95e1-2665a8aea6a2");
    for (const char* bad : {"", "2ed6657d-e927-568b-95e1-2665a8aea6a", "2ed6657d-e927-568b-95e1-2665a8aea6a22",
                            "2ed6657de927-568b-95e1-2665a8aea6a2-", "2ed6657d-e927-568b-95e1-2665a8aea6ag",
                            "{2ed6657d-e927-568b-95e1-2665a8aea6}"}) {
        INFO(bad);
        CHECK_FALSE(Uuid::parse(bad));
    }
    CHECK(Uuid{}.is_nil());
}

TEST_CASE("uuid v7 embeds the time and sorts in creation order", "[util][uuid]") {
    const auto fixed = Uuid::v7(1'763'882'715'123);
    CHECK(fixed.version() == 7);
    CHECK(fixed.unix_ms() == 1'763'882'715'123);
    CHECK((fixed.bytes()[8] & 0xC0) == 0x80);  // RFC 9562 variant

    std::vector<Uuid> ids;
    for (int i = 0; i < 20000; ++i) ids.push_back(Uuid::v7());
    for (std::size_t i = 1; i < ids.size(); ++i) REQUIRE(ids[i - 1] < ids[i]);
    CHECK(std::set<Uuid>(ids.begin(), ids.end()).size() == ids.size());
}
