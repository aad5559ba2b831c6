#include "der/sim.hpp"

#include <catch2/catch.hpp>

#include <cmath>
#include <random>

using der::AssetStatus;
using der::BessLimits;
using der::sim::Bess;

namespace {

/// 10 MWh, +/-2 MW, no ramp limit, round trip 0.81 (0.9 each way), 10-90 %.
BessLimits test_limits() {
    BessLimits limits;
    limits.capacity_mwh = 10.0;
    limits.max_mw = 2.0;
    limits.min_mw = -2.0;
    limits.ramp_mw_per_s = 0.0;
    limits.efficiency = 0.81;
    limits.soc_min_pct = 10.0;
    limits.soc_max_pct = 90.0;
    return limits;
}

}  // namespace

TEST_CASE("discharging 1 MW for one hour at efficiency 0.81 removes 1/0.9 MWh", "[sim]") {
    const double expected_mwh = 5.0 - 1.0 / 0.9;

    SECTION("in one step of an hour") {
        Bess bess(test_limits(), 50.0);
        bess.set_setpoint(1.0);
        bess.step(3600.0);
        CHECK(bess.soc_mwh() == Approx(expected_mwh).epsilon(1e-12));
        CHECK(bess.current_mw() == 1.0);
        CHECK(bess.status() == AssetStatus::discharging);
    }
    SECTION("in 3600 steps of one second") {
        Bess bess(test_limits(), 50.0);
        bess.set_setpoint(1.0);
        for (int i = 0; i < 3600; ++i) {
            bess.step(1.0);
        }
        CHECK(bess.soc_mwh() == Approx(expected_mwh).epsilon(1e-9));
    }
}

TEST_CASE("charging 1 MW for one hour at efficiency 0.81 adds 0.9 MWh", "[sim]") {
    SECTION("in one step of an hour") {
        Bess bess(test_limits(), 50.0);
        bess.set_setpoint(-1.0);
        bess.step(3600.0);
        CHECK(bess.soc_mwh() == Approx(5.9).epsilon(1e-12));
        CHECK(bess.status() == AssetStatus::charging);
    }
    SECTION("in 3600 steps of one second") {
        Bess bess(test_limits(), 50.0);
        bess.set_setpoint(-1.0);
        for (int i = 0; i < 3600; ++i) {
            bess.step(1.0);
        }
        CHECK(bess.soc_mwh() == Approx(5.9).epsilon(1e-9));
    }
}

TEST_CASE("current follows the setpoint at no more than the ramp rate", "[sim]") {
    BessLimits limits = test_limits();
    limits.ramp_mw_per_s = 0.1;
    Bess bess(limits, 50.0);
    bess.set_setpoint(1.0);

    for (int second = 1; second <= 10; ++second) {
        const double before = bess.current_mw();
        bess.step(1.0);
        CHECK(std::abs(bess.current_mw() - before) <= 0.1 + 1e-12);
        if (second < 10) {
            CHECK(bess.current_mw() < 1.0);
        }
    }
    CHECK(bess.current_mw() == Approx(1.0).margin(1e-12));
    bess.step(1.0);
    CHECK(bess.current_mw() == Approx(1.0).margin(1e-12));

    SECTION("and ramps back down through zero into charge") {
        bess.set_setpoint(-1.0);
        bess.step(1.0);
        CHECK(bess.current_mw() == Approx(0.9).margin(1e-12));
        for (int i = 0; i < 19; ++i) {
            bess.step(1.0);
        }
        CHECK(bess.current_mw() == Approx(-1.0).margin(1e-12));
    }
}

TEST_CASE("a step of an hour stops discharging exactly at soc_min", "[sim]") {
    Bess bess(test_limits(), 15.0);
    bess.set_setpoint(2.0);
    bess.step(3600.0);
    CHECK(bess.soc_mwh() == 1.0);
    CHECK(bess.soc_pct() == Approx(10.0));
    CHECK(bess.current_mw() == 0.0);
    CHECK(bess.status() == AssetStatus::soc_limit);

    bess.step(3600.0);  // still pushing: stays put
    CHECK(bess.soc_mwh() == 1.0);
    CHECK(bess.current_mw() == 0.0);
    CHECK(bess.status() == AssetStatus::soc_limit);
}

TEST_CASE("a step of an hour stops charging exactly at soc_max", "[sim]") {
    Bess bess(test_limits(), 85.0);
    bess.set_setpoint(-2.0);
    bess.step(3600.0);
    CHECK(bess.soc_mwh() == 9.0);
    CHECK(bess.soc_pct() == Approx(90.0));
    CHECK(bess.current_mw() == 0.0);
    CHECK(bess.status() == AssetStatus::soc_limit);

    bess.step(3600.0);
    CHECK(bess.soc_mwh() == 9.0);
    CHECK(bess.status() == AssetStatus::soc_limit);
}

TEST_CASE("random setpoints and steps never leave the SOC bounds nor produce NaN", "[sim]") {
    BessLimits limits = test_limits();
    limits.ramp_mw_per_s = 0.05;
    Bess bess(limits, 50.0);

    std::mt19937_64 rng(20261123);
    std::uniform_real_distribution<double> setpoint(-3.0, 3.0);  // beyond the limits too
    std::uniform_real_distribution<double> log_dt(-3.0, 3.6);    // 1 ms .. about an hour
    std::uniform_int_distribution<int> pick(0, 99);

    for (int i = 0; i < 10000; ++i) {
        const int p = pick(rng);
        if (p < 20) {
            bess.set_setpoint(setpoint(rng));
        } else if (p == 20) {
            bess.set_setpoint(0.0);
        }
        double dt = std::pow(10.0, log_dt(rng));
        if (p == 21) {
            dt = -dt;
        } else if (p == 22) {
            dt = std::nan("");
        } else if (p == 23) {
            dt = INFINITY;
        }
        bess.step(dt);

        REQUIRE(std::isfinite(bess.soc_mwh()));
        REQUIRE(std::isfinite(bess.current_mw()));
        REQUIRE(bess.soc_mwh() >= 1.0);
        REQUIRE(bess.soc_mwh() <= 9.0);
        REQUIRE(bess.current_mw() >= limits.min_mw);
        REQUIRE(bess.current_mw() <= limits.max_mw);
    }
}

TEST_CASE("status follows the state", "[sim]") {
    Bess bess(test_limits(), 50.0);
    CHECK(bess.status() == AssetStatus::idle);

    bess.set_setpoint(1.0);
    bess.step(1.0);
    CHECK(bess.status() == AssetStatus::discharging);

    bess.set_setpoint(-1.0);
    bess.step(1.0);
    CHECK(bess.status() == AssetStatus::charging);

    bess.set_setpoint(0.0);
    bess.step(1.0);
    CHECK(bess.status() == AssetStatus::idle);

    bess.set_fault(true);
    CHECK(bess.status() == AssetStatus::fault);
    bess.set_fault(false);
    CHECK(bess.status() == AssetStatus::idle);
}

TEST_CASE("soc_limit clears as soon as the setpoint is 0 or turns away", "[sim]") {
    Bess bess(test_limits(), 10.0);
    bess.set_setpoint(1.0);
    bess.step(1.0);
    REQUIRE(bess.status() == AssetStatus::soc_limit);

    SECTION("setpoint 0") {
        bess.set_setpoint(0.0);
        CHECK(bess.status() == AssetStatus::idle);
        bess.step(1.0);
        CHECK(bess.status() == AssetStatus::idle);
    }
    SECTION("setpoint away from the bound") {
        bess.set_setpoint(-1.0);
        CHECK(bess.status() != AssetStatus::soc_limit);
        bess.step(1.0);
        CHECK(bess.status() == AssetStatus::charging);
        CHECK(bess.soc_mwh() > 1.0);
    }
    SECTION("fault takes precedence") {
        bess.set_fault(true);
        CHECK(bess.status() == AssetStatus::fault);
    }
}

TEST_CASE("setpoint, restore and new limits are clamped", "[sim]") {
    Bess bess(test_limits(), 50.0);

    bess.set_setpoint(5.0);
    CHECK(bess.setpoint_mw() == 2.0);
    bess.set_setpoint(-5.0);
    CHECK(bess.setpoint_mw() == -2.0);
    bess.set_setpoint(std::nan(""));
    CHECK(bess.setpoint_mw() == -2.0);

    CHECK(Bess(test_limits(), 0.0).soc_pct() == Approx(10.0));
    CHECK(Bess(test_limits(), 100.0).soc_pct() == Approx(90.0));

    bess.restore(20.0, 7.0);
    CHECK(bess.soc_mwh() == 9.0);
    CHECK(bess.current_mw() == 2.0);
    bess.restore(-1.0, -7.0);
    CHECK(bess.soc_mwh() == 1.0);
    CHECK(bess.current_mw() == -2.0);

    BessLimits smaller = test_limits();
    smaller.capacity_mwh = 5.0;
    smaller.min_mw = -1.0;
    bess.restore(8.0, 0.0);
    bess.set_limits(smaller);
    CHECK(bess.soc_mwh() == 4.5);
    CHECK(bess.setpoint_mw() == -1.0);
    CHECK(bess.limits() == smaller);
}

TEST_CASE("two simulations fed the same steps end in identical state", "[sim]") {
    BessLimits limits = test_limits();
    limits.ramp_mw_per_s = 0.02;
    Bess a(limits, 37.0);
    Bess b(limits, 37.0);

    std::mt19937_64 rng(7);
    std::uniform_real_distribution<double> setpoint(-2.5, 2.5);
    std::uniform_real_distribution<double> dt(0.0, 120.0);
    for (int i = 0; i < 2000; ++i) {
        if (i % 50 == 0) {
            const double mw = setpoint(rng);
            a.set_setpoint(mw);
            b.set_setpoint(mw);
        }
        const double step_s = dt(rng);
        a.step(step_s);
        b.step(step_s);
    }
    CHECK(a.soc_mwh() == b.soc_mwh());
    CHECK(a.current_mw() == b.current_mw());
    CHECK(a.setpoint_mw() == b.setpoint_mw());
    CHECK(a.status() == b.status());
}
