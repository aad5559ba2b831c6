// The exec adapter in-process: examples/exec/bess-sim.sh and misbehaving children.
#include "harness.hpp"

#include "der/adapters/exec_adapter.hpp"
#include "der/util/log.hpp"

#include <catch2/catch.hpp>

#include <signal.h>

#include <chrono>
#include <thread>

using namespace der::adapters;
using namespace std::chrono_literals;

namespace {

const der::BessLimits k_limits{4.0, 2.0, -2.0, 0.0, 0.9, 0.0, 100.0};

std::string bess_sim() {
    return std::string("exec bash ") + DER_SOURCE_DIR + "/examples/exec/bess-sim.sh";
}

ExecOptions options_for(std::string command) {
    der::log::configure("test", der::log::Level::error, der::log::Format::text);
    ExecOptions o;
    o.command = std::move(command);
    o.timeout_ms = 500;
    o.read_interval_ms = 100;
    o.restart_min_ms = 100;
    o.restart_max_ms = 400;
    o.stop_grace_ms = 500;
    return o;
}

/// Polls the adapter (as the agent loop does) until `condition` holds.
bool pump_until(Adapter& adapter, const std::function<bool()>& condition,
                std::chrono::milliseconds deadline) {
    return der::test::wait_until(
        [&] {
            adapter.poll();
            return condition();
        },
        deadline);
}

/// Polls until the pending setpoint `ticket` settles.
ApplyResult settle(Adapter& adapter, const ApplyResult& first) {
    if (!first.pending()) return first;
    std::optional<ApplyResult> out;
    pump_until(
        adapter,
        [&] {
            while (auto r = adapter.take_settled())
                if (r->ticket == first.ticket) out = r;
            return out.has_value();
        },
        5000ms);
    REQUIRE(out);
    return *out;
}

bool alive(pid_t pid) {
    return pid > 0 && ::kill(pid, 0) == 0;
}

}  // namespace

TEST_CASE("exec adapter reads bess-sim.sh and applies its setpoints", "[adapters][exec]") {
    ExecAdapter adapter(options_for(bess_sim()), k_limits, {});
    CHECK(adapter.read().status == der::AssetStatus::fault);  // no reading yet
    REQUIRE(pump_until(
        adapter, [&] { return adapter.read().status != der::AssetStatus::fault; }, 5000ms));
    CHECK(adapter.read().soc_pct == Approx(50.0));
    CHECK(adapter.read().soc_mwh == Approx(2.0));  // of bess-sim.sh's 4000 kWh

    const ApplyResult first = adapter.apply_setpoint(1.5);
    REQUIRE(first.pending());
    CHECK(settle(adapter, first).accepted());
    REQUIRE(pump_until(
        adapter, [&] { return adapter.read().current_mw == 1.5; }, 3000ms));
    CHECK(adapter.read().status == der::AssetStatus::discharging);
    CHECK(adapter.read().setpoint_mw == 1.5);

    // Outside the limits in force: refused locally, nothing sent.
    const ApplyResult local = adapter.apply_setpoint(2.5);
    CHECK_FALSE(local.pending());
    CHECK_FALSE(local.accepted());
    adapter.stop();
}

TEST_CASE("exec adapter passes the device's refusal on with its reason", "[adapters][exec]") {
    der::BessLimits wide = k_limits;
    wide.max_mw = 5.0;
    ExecAdapter adapter(options_for("BESS_MAX_KW=1000 " + bess_sim()), wide, {});
    REQUIRE(pump_until(
        adapter, [&] { return adapter.read().status != der::AssetStatus::fault; }, 5000ms));
    const ApplyResult result = settle(adapter, adapter.apply_setpoint(3.0));
    CHECK_FALSE(result.accepted());
    CHECK_THAT(result.reason, Catch::Contains("device:") && Catch::Contains("above the discharge limit"));
    CHECK(adapter.read().status != der::AssetStatus::fault);  // a refusal is no fault
}

TEST_CASE("a silent exec child is a fault and is restarted", "[adapters][exec]") {
    ExecAdapter adapter(options_for("exec sleep 1000"), k_limits, {});
    const pid_t first = adapter.child_pid();
    REQUIRE(pump_until(
        adapter, [&] { return adapter.starts() >= 2; }, 5000ms));
    CHECK(adapter.read().status == der::AssetStatus::fault);
    CHECK_THAT(adapter.read().fault_reason, Catch::Contains("no answer to 'read' within 500 ms"));
    REQUIRE(pump_until(
        adapter, [&] { return !alive(first); }, 3000ms));  // the old one is gone
    // A setpoint while the child does not answer: pending, then refused.
    const ApplyResult result = adapter.apply_setpoint(1.0);
    if (result.pending()) CHECK_FALSE(settle(adapter, result).accepted());
}

TEST_CASE("an exec child speaking garbage is a fault and is restarted", "[adapters][exec]") {
    ExecAdapter adapter(options_for("while read -r l; do echo 'hello there'; done"), k_limits, {});
    REQUIRE(pump_until(
        adapter, [&] { return adapter.starts() >= 2; }, 5000ms));
    CHECK(adapter.read().status == der::AssetStatus::fault);
    CHECK_THAT(adapter.read().fault_reason, Catch::Contains("garbage from the device"));
}

TEST_CASE("a crashing exec child is restarted with exponential backoff", "[adapters][exec]") {
    ExecAdapter adapter(options_for("exit 3"), k_limits, {});
    REQUIRE(pump_until(
        adapter,
        [&] { return adapter.read().fault_reason.find("exited with status 3") != std::string::npos; },
        3000ms));
    // Backoff 100, 200, 400, 400 ... ms: about 5 starts in 1.5 s, never dozens.
    const auto start = std::chrono::steady_clock::now();
    pump_until(
        adapter, [] { return false; }, 1500ms);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    CHECK(adapter.starts() >= 3);
    CHECK(adapter.starts() <= 2 + static_cast<int>(seconds / 0.1));
    CHECK(adapter.starts() <= 8);
    // 0 MW while the child is down is accepted (it is the safe state); more is
    // not. Between restarts: a child just started is up until it exits, and
    // a setpoint to it would be pending (the adapter changes state only in
    // its poll, so none comes between the wait and the two setpoints).
    REQUIRE(pump_until(
        adapter, [&] { return adapter.child_pid() <= 0; }, 3000ms));
    CHECK(adapter.apply_setpoint(0.0).accepted());
    CHECK_FALSE(adapter.apply_setpoint(1.0).accepted());
}

TEST_CASE("an exec child that dies while a setpoint is pending refuses it, and recovers",
          "[adapters][exec]") {
    // Answers reads; dies on its first setpoint; the restarted one answers everything.
    der::test::TempDir dir;
    const std::string flag = dir.file("died-once");
    const std::string script =
        "while read -r l; do case $l in *setpoint*) if [ ! -e " + flag + " ]; then touch " + flag +
        "; exit 1; fi; echo '{\"ok\":true}';; *) echo '{\"soc_pct\":40,\"current_mw\":0}';; esac; done";
    ExecAdapter adapter(options_for(script), k_limits, {});
    REQUIRE(pump_until(
        adapter, [&] { return adapter.read().status == der::AssetStatus::idle; }, 5000ms));
    const ApplyResult died = settle(adapter, adapter.apply_setpoint(1.0));
    CHECK_FALSE(died.accepted());
    CHECK_THAT(died.reason, Catch::Contains("device fault"));
    REQUIRE(pump_until(
        adapter, [&] { return adapter.read().status == der::AssetStatus::idle; }, 5000ms));
    CHECK(adapter.read().soc_pct == 40.0);
    CHECK(adapter.read().soc_mwh == Approx(1.6));  // from the capacity
    CHECK(settle(adapter, adapter.apply_setpoint(1.0)).accepted());
}

TEST_CASE("stopping the exec adapter ends a child that ignores SIGTERM", "[adapters][exec]") {
    ExecAdapter adapter(
        options_for("trap '' TERM; while read -r l; do echo '{\"soc_pct\":1,\"current_mw\":0}'; done; "
                    "sleep 1000"),
        k_limits, {});
    REQUIRE(pump_until(
        adapter, [&] { return adapter.read().status == der::AssetStatus::idle; }, 5000ms));
    const pid_t pid = adapter.child_pid();
    REQUIRE(alive(pid));
    const auto start = std::chrono::steady_clock::now();
    adapter.stop();
    CHECK(std::chrono::steady_clock::now() - start < 2s);
    CHECK_FALSE(alive(pid));
}
