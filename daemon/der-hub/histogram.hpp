#pragma once
/// Prometheus-style histograms of durations, kept by the event loop and
/// copied into each snapshot (/metrics renders them).

#include <cstddef>
#include <cstdint>
#include <iterator>

namespace der::hub {

/// A histogram of durations in seconds, Prometheus style: `Bounds` are the
/// upper bounds of the buckets, ascending; one more bucket holds the rest.
template <const auto& Bounds>
struct Histogram {
    static constexpr const auto& k_bounds = Bounds;
    static constexpr std::size_t k_buckets = std::size(Bounds);
    std::uint64_t counts[k_buckets + 1] = {};  ///< last = +Inf
    std::uint64_t count = 0;
    double sum = 0.0;
    void observe(double seconds) {
        ++count;
        sum += seconds;
        std::size_t i = 0;
        while (i < k_buckets && seconds > k_bounds[i]) ++i;
        ++counts[i];
    }
};

inline constexpr double k_ack_latency_bounds[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                  0.1,   0.25,   0.5,   1,    2.5,   5};
/// Sent-to-ack latency of setpoints (DispatchBook).
using LatencyHistogram = Histogram<k_ack_latency_bounds>;

inline constexpr double k_loop_turn_bounds[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                                0.01,   0.025,   0.05,   0.1,   0.25,   1};
/// Wall time of one turn of the hub's event loop between two waits.
using LoopTurnHistogram = Histogram<k_loop_turn_bounds>;

}  // namespace der::hub
