// Register decoding, scale factors and the adapters' option checks.
#include "der/adapters/adapter.hpp"
#include "der/adapters/exec_adapter.hpp"
#include "der/adapters/modbus_adapter.hpp"
#include "der/adapters/modbus_map.hpp"
#include "der/assets_config.hpp"

#include <catch2/catch.hpp>

#include <cstdint>
#include <vector>

using namespace der::adapters;
using namespace der::adapters::modbus;
using Words = std::vector<std::uint16_t>;

TEST_CASE("16-bit registers decode as unsigned and two's complement", "[adapters][modbus]") {
    CHECK(decode(Words{0xfffe}, RegisterType::uint16, WordOrder::big) == 65534);
    CHECK(decode(Words{0xfffe}, RegisterType::int16, WordOrder::big) == -2);
    CHECK(decode(Words{0x7fff}, RegisterType::int16, WordOrder::big) == 32767);
    CHECK(decode(Words{0x8000}, RegisterType::int16, WordOrder::big) == -32768);
}

TEST_CASE("32-bit registers honour the word order", "[adapters][modbus]") {
    CHECK(decode(Words{0x0001, 0x0002}, RegisterType::uint32, WordOrder::big) == 0x00010002);
    CHECK(decode(Words{0x0001, 0x0002}, RegisterType::uint32, WordOrder::little) == 0x00020001);
    CHECK(decode(Words{0xffff, 0xfffe}, RegisterType::int32, WordOrder::big) == -2);
    CHECK(decode(Words{0xfffe, 0xffff}, RegisterType::int32, WordOrder::little) == -2);
    // 1.5f = 0x3fc00000
    CHECK(decode(Words{0x3fc0, 0x0000}, RegisterType::float32, WordOrder::big) == 1.5);
    CHECK(decode(Words{0x0000, 0x3fc0}, RegisterType::float32, WordOrder::little) == 1.5);
    CHECK(decode(Words{0xc020, 0x0000}, RegisterType::float32, WordOrder::big) == -2.5);
}

TEST_CASE("encoding rounds, pins exact words and refuses values that do not fit", "[adapters][modbus]") {
    CHECK(*encode(-2.4, RegisterType::int16, WordOrder::big) == Words{0xfffe});
    CHECK(*encode(65535, RegisterType::uint16, WordOrder::big) == Words{0xffff});
    CHECK(*encode(0x00010002, RegisterType::uint32, WordOrder::big) == Words{0x0001, 0x0002});
    CHECK(*encode(0x00010002, RegisterType::uint32, WordOrder::little) == Words{0x0002, 0x0001});
    CHECK(*encode(-2, RegisterType::int32, WordOrder::big) == Words{0xffff, 0xfffe});
    CHECK(*encode(1.5, RegisterType::float32, WordOrder::big) == Words{0x3fc0, 0x0000});
    CHECK(*encode(1.5, RegisterType::float32, WordOrder::little) == Words{0x0000, 0x3fc0});
    CHECK_FALSE(encode(-1, RegisterType::uint16, WordOrder::big));
    CHECK_FALSE(encode(32768, RegisterType::int16, WordOrder::big));
    CHECK_FALSE(encode(4294967296.0, RegisterType::uint32, WordOrder::big));
    CHECK_FALSE(encode(std::numeric_limits<double>::quiet_NaN(), RegisterType::int16, WordOrder::big));
    for (auto type : {RegisterType::int16, RegisterType::int32, RegisterType::float32})
        for (auto order : {WordOrder::big, WordOrder::little}) {
            auto words = encode(-1234, type, order);
            REQUIRE(words);
            CHECK(decode(*words, type, order) == -1234);
        }
}

TEST_CASE("scale factors are int16 powers of ten from -10 to 10", "[adapters][modbus]") {
    CHECK(*decode_scale_factor(0xfffe) == -2);
    CHECK(*decode_scale_factor(3) == 3);
    CHECK_FALSE(decode_scale_factor(0x8000));  // SunSpec "not implemented"
    CHECK_FALSE(decode_scale_factor(11));
    CHECK(scaled(1234, 1.0, -1) == Approx(123.4));
    CHECK(scaled(12, 0.5, 2) == Approx(600));
}

TEST_CASE("a register spec converts units, scale, scale factor and sign both ways", "[adapters][modbus]") {
    RegisterSpec kw;
    kw.unit_mw = 1e-3;  // kW
    kw.scale = 1.0;
    CHECK(kw.to_value(1500, 0) == Approx(1.5));
    CHECK(kw.to_value(150, 1) == Approx(1.5));
    CHECK(kw.to_raw(1.5, 1) == Approx(150));
    kw.invert = true;
    CHECK(kw.to_value(1500, 0) == Approx(-1.5));
    CHECK(kw.to_raw(-1.5, -1) == Approx(15000));
    RegisterSpec pct;
    pct.scale = 0.1;
    CHECK(pct.to_value(505, 0) == Approx(50.5));
}

namespace {
der::AdapterConfig modbus_config(std::map<std::string, std::string> extra = {}) {
    der::AdapterConfig c;
    c.kind = "modbus";
    c.options = {{"host", "127.0.0.1"},
                 {"map.soc_pct.address", "40100"},
                 {"map.soc_pct.scale", "0.1"},
                 {"map.setpoint_mw.address", "40200"},
                 {"map.setpoint_mw.type", "int16"},
                 {"map.setpoint_mw.unit", "kW"},
                 {"map.setpoint_mw.scale_register", "40110"}};
    for (auto& [k, v] : extra) c.options[k] = v;
    return c;
}
}  // namespace

TEST_CASE("modbus options parse into a register map", "[adapters][modbus]") {
    auto o = parse_modbus_options(modbus_config({{"map.current_mw.address", "0x9c45"},
                                                 {"map.current_mw.type", "float32"},
                                                 {"map.current_mw.word_order", "little"},
                                                 {"port", "1502"}}));
    REQUIRE(o);
    CHECK(o->port == 1502);
    CHECK(o->timeout_ms == 500);
    CHECK(o->revert_s == 60);
    REQUIRE(o->map.setpoint_mw);
    CHECK(o->map.setpoint_mw->unit_mw == 1e-3);
    CHECK(o->map.setpoint_mw->scale_register == 40110);
    REQUIRE(o->map.current_mw);
    CHECK(o->map.current_mw->address == 40005);
    CHECK(o->map.current_mw->type == RegisterType::float32);
    CHECK(o->map.current_mw->order == WordOrder::little);
}

TEST_CASE("a bad or unknown adapter option is a config error naming it", "[adapters]") {
    der::BessLimits limits{4.0, 2.0, -2.0, 0.0, 0.9, 0.0, 100.0};
    auto error_of = [&](const der::AdapterConfig& c) {
        auto made = make_adapter(c, limits);
        REQUIRE_FALSE(made);
        CHECK(made.error().code == der::Errc::config);
        return made.error().message;
    };
    CHECK_THAT(error_of(modbus_config({{"map.soc_pct.type", "uint64"}})),
               Catch::Contains("adapter.map.soc_pct.type"));
    CHECK_THAT(error_of(modbus_config({{"timeout_ms", "9000"}})), Catch::Contains("adapter.timeout_ms"));
    CHECK_THAT(error_of(modbus_config({{"map.soc.address", "1"}})),
               Catch::Contains("adapter.map.soc.address: unknown"));
    CHECK_THAT(error_of(modbus_config({{"port", "http"}})),
               Catch::Contains("adapter.port: must be an integer"));
    der::AdapterConfig no_host = modbus_config();
    no_host.options.erase("host");
    CHECK_THAT(error_of(no_host), Catch::Contains("adapter.host: required"));
    der::AdapterConfig exec;
    exec.kind = "exec";
    CHECK_THAT(error_of(exec), Catch::Contains("adapter.command: required"));
    exec.options = {{"command", "true"}, {"timeout_ms", "soon"}};
    CHECK_THAT(error_of(exec), Catch::Contains("adapter.timeout_ms"));
    der::AdapterConfig sim;
    sim.options = {{"host", "x"}};
    CHECK_THAT(error_of(sim), Catch::Contains("adapter.host: unknown option"));
    der::AdapterConfig other;
    other.kind = "canbus";
    CHECK_THAT(error_of(other), Catch::Contains("'canbus' is not available"));
}

TEST_CASE("the sim adapter keeps its contract through the libder factory", "[adapters]") {
    der::BessLimits limits{4.0, 2.0, -2.0, 0.0, 0.9, 0.0, 100.0};
    AdapterEnv env;
    env.initial_soc_pct = 25.0;
    auto sim = make_adapter(der::AdapterConfig{}, limits, env);
    REQUIRE(sim);
    CHECK((*sim)->kind() == "sim");
    CHECK((*sim)->read().soc_pct == Approx(25.0));
    CHECK((*sim)->apply_setpoint(1.0).accepted());
    CHECK_FALSE((*sim)->apply_setpoint(3.0).accepted());
    (*sim)->step(3600.0);
    CHECK((*sim)->read().soc_mwh < 1.0);
}

TEST_CASE("the example fleet files load and their adapter options parse", "[adapters]") {
    for (const char* file : {"/examples/modbus/sunspec-124.yaml", "/examples/modbus/register-map.yaml",
                             "/examples/exec/assets.yaml"}) {
        INFO(file);
        auto loaded = der::config::load_file(std::string(DER_SOURCE_DIR) + file);
        REQUIRE(loaded);
        const der::Asset& asset = *loaded->fleet.all_assets().at(0);
        if (asset.adapter.kind == "modbus") {
            auto options = parse_modbus_options(asset.adapter);
            INFO((options ? std::string() : options.error().message));
            CHECK(options);
        } else {
            auto options = parse_exec_options(asset.adapter);
            CHECK(options);
        }
    }
}
