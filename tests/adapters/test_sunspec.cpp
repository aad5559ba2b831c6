// SunSpec discovery: the SunS marker and the model chain.
#include "modbus_test_server.hpp"

#include "der/adapters/sunspec.hpp"

#include <modbus/modbus.h>
#include <catch2/catch.hpp>

#include <map>

using namespace der::adapters;
using Words = std::vector<std::uint16_t>;

namespace {

/// A register space in memory; absent registers are an exception (not_found).
struct FakeDevice {
    std::map<std::uint16_t, std::uint16_t> regs;
    void put(std::uint16_t at, Words words) {
        for (auto w : words) regs[at++] = w;
    }
    sunspec::ReadFn reader() {
        return [this](std::uint16_t a, int n) -> der::Result<Words> {
            Words out;
            for (int i = 0; i < n; ++i) {
                auto it = regs.find(static_cast<std::uint16_t>(a + i));
                if (it == regs.end()) return der::fail(der::Errc::not_found, "illegal data address");
                out.push_back(it->second);
            }
            return out;
        };
    }
};

}  // namespace

TEST_CASE("sunspec discovery walks the model chain to the end marker", "[adapters][sunspec]") {
    FakeDevice d;
    d.put(40000, {0x5375, 0x6e53, 1, 4, 0, 0, 0, 0, 124, 24});
    d.put(40034, {0xffff, 0});
    auto chain = sunspec::discover(d.reader());
    REQUIRE(chain);
    CHECK(chain->base == 40000);
    REQUIRE(chain->models.size() == 2);
    CHECK(chain->models[0].id == 1);
    CHECK(chain->models[1].id == 124);
    CHECK(chain->models[1].address == 40008);
    CHECK(chain->find(124)->data() == 40010);
    CHECK(chain->find(103) == nullptr);
}

TEST_CASE("sunspec discovery tries base 0 and 50000 after 40000", "[adapters][sunspec]") {
    FakeDevice d;
    d.put(50000, {0x5375, 0x6e53, 124, 24});
    d.put(50028, {0xffff, 0});
    auto chain = sunspec::discover(d.reader());
    REQUIRE(chain);
    CHECK(chain->base == 50000);
    CHECK(chain->models.at(0).id == 124);
}

TEST_CASE("sunspec discovery refuses a device without marker and a chain without end",
          "[adapters][sunspec]") {
    FakeDevice none;
    none.put(40000, {1, 2, 3, 4});
    auto missing = sunspec::discover(none.reader());
    REQUIRE_FALSE(missing);
    CHECK(missing.error().code == der::Errc::not_found);

    FakeDevice endless;  // the chain runs into registers that do not exist
    endless.put(40000, {0x5375, 0x6e53, 1, 2, 0, 0});
    auto broken = sunspec::discover(endless.reader(), std::uint16_t{40000});
    REQUIRE_FALSE(broken);

    FakeDevice looping;  // a model of length 0xfffe runs past the address space
    looping.put(40000, {0x5375, 0x6e53, 1, 0xfffe});
    CHECK_FALSE(sunspec::discover(looping.reader(), std::uint16_t{40000}));
}

TEST_CASE("sunspec strings decode two characters a register", "[adapters][sunspec]") {
    CHECK(sunspec::decode_string({0x6465, 0x722d, 0x7400, 0x4141}) == "der-t");
}

TEST_CASE("sunspec discovery finds models 1, 103 and 124 on the test server", "[adapters][sunspec]") {
    der::test::ModbusTestServer server(der::test::ModbusLayout::sunspec);
    modbus_t* ctx = modbus_new_tcp("127.0.0.1", server.port());
    REQUIRE(ctx != nullptr);
    REQUIRE(modbus_connect(ctx) == 0);
    auto chain = sunspec::discover([ctx](std::uint16_t a, int n) -> der::Result<Words> {
        Words w(static_cast<std::size_t>(n));
        if (modbus_read_registers(ctx, a, n, w.data()) != n)
            return der::fail(der::Errc::not_found, modbus_strerror(errno));
        return w;
    });
    modbus_close(ctx);
    modbus_free(ctx);
    REQUIRE(chain);
    CHECK(chain->describe() == "1 (40002, 66), 103 (40070, 50), 124 (40122, 24)");
}
