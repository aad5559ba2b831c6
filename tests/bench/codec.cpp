/// der_bench_codec: CPU cost of the agent wire codec per message, on one
/// core, without sockets: encode a telemetry body, decode it with the flat
/// fast path (what der-hub runs per record) and with the msgpack object-tree
/// decoder (detail::decode_agent_reference). Prints one JSON line of
/// nanoseconds per message (best of --rounds rounds of --n messages each,
/// so a pre-empted round does not count).

#include "bench_common.hpp"

#include "der/wire_codec.hpp"

#include <fmt/format.h>

#include <cstdio>
#include <string>
#include <vector>

using namespace der;

namespace {

constexpr const char* k_usage =
    "usage: der_bench_codec [--n MESSAGES] [--rounds N]\n"
    "  per-message ns of encoding and decoding a telemetry body (best round)\n";

/// A typical record of the load generator: 14 fields, a dispatch in force.
std::vector<std::string> bodies(std::size_t count) {
    std::vector<std::string> out;
    out.reserve(count);
    Telemetry t;
    t.asset_id = Uuid::v7();
    t.site_id = Uuid::v7();
    t.epoch = Uuid::v7();
    t.ts = 1'765'000'000'000;
    t.capacity_mwh = 2.0;
    t.max_mw = 1.0;
    t.min_mw = -1.0;
    t.status = AssetStatus::discharging;
    t.dispatch_id = Uuid::v7();
    for (std::size_t i = 0; i < count; ++i) {
        t.seq = i + 1;
        t.ts += 4000;
        t.soc_mwh = 1.0 + static_cast<double>(i % 100) / 1000.0;
        t.soc_pct = t.soc_mwh / t.capacity_mwh * 100.0;
        t.current_mw = 0.25 + static_cast<double>(i % 7) / 100.0;
        t.setpoint_mw = 0.25;
        std::string b;
        wire::encode_body(wire::AgentMessage{t}, b);
        out.push_back(std::move(b));
    }
    return out;
}

/// Best-of-rounds ns per call of `fn(i)` over `n` calls.
template <class F>
double best_ns(int rounds, std::size_t n, F&& fn) {
    double best = 1e18;
    for (int r = 0; r < rounds; ++r) {
        const auto t0 = bench::now_ns();
        for (std::size_t i = 0; i < n; ++i) fn(i);
        const auto t1 = bench::now_ns();
        best = std::min(best, static_cast<double>(t1 - t0) / static_cast<double>(n));
    }
    return best;
}

}  // namespace

int main(int argc, char** argv) {
    bench::Flags f(argc, argv, k_usage);
    const auto n = static_cast<std::size_t>(f.num("n", 200'000));
    const int rounds = static_cast<int>(f.num("rounds", 5));
    f.done();
    if (n == 0 || rounds <= 0) f.fail("--n and --rounds must be positive");

    // Distinct bodies (4,096 of them, reused round robin) so the decoder does
    // not see one cached buffer; small enough to stay in the L2 cache, like
    // the hub's receive buffers.
    const auto input = bodies(4096);
    const std::size_t mask = input.size() - 1;
    std::uint64_t check = 0;  // keeps the results observable

    std::string buf;
    wire::AgentMessage msg{Telemetry{}};
    if (auto d = wire::decode_agent("telemetry", input[0])) msg = *d;
    const double encode = best_ns(rounds, n, [&](std::size_t) {
        buf.clear();
        wire::encode_body(msg, buf);
        check += buf.size();
    });
    const double flat = best_ns(rounds, n, [&](std::size_t i) {
        auto d = wire::decode_agent("telemetry", input[i & mask]);
        check += d ? std::get<Telemetry>(*d).seq : 0;
    });
    const double tree = best_ns(rounds, n, [&](std::size_t i) {
        auto d = wire::detail::decode_agent_reference("telemetry", input[i & mask]);
        check += d ? std::get<Telemetry>(*d).seq : 0;
    });
    std::puts(fmt::format(R"({{"messages":{},"rounds":{},"body_bytes":{},"encode_ns":{:.1f},)"
                          R"("decode_flat_ns":{:.1f},"decode_tree_ns":{:.1f},"check":{}}})",
                          n, rounds, input[0].size(), encode, flat, tree, check)
                  .c_str());
    return 0;
}
