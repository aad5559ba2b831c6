#pragma once
/// The agent's telemetry buffer and its go-back-N send window (DESIGN.md,
/// "Sequence and exactly-once").
///
/// Records enter in `seq` order and stay until the hub's cumulative `tack`
/// covers them, whether or not a hub is there: the ring is the only buffer
/// (the DEALER has ZMQ_IMMEDIATE, nothing queues in libzmq). It is bounded;
/// when full the oldest record is dropped and counted. The first
/// `in_flight()` records have been sent and not yet acknowledged; at most
/// `max_in_flight` are. Going back N means sending again from the oldest
/// record held, i.e. from the last acknowledged `seq` + 1.
///
/// Times are monotonic milliseconds (der::Clock::mono_ms). Not thread-safe:
/// owned by the agent loop.

#include "der/model.hpp"

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>

namespace der::agent {

class TelemetryRing {
public:
    static constexpr std::size_t k_default_max_in_flight = 256;

    /// `capacity` >= 1 records; throws std::invalid_argument otherwise.
    explicit TelemetryRing(std::size_t capacity, std::size_t max_in_flight = k_default_max_in_flight);

    /// Appends `record`, whose seq must exceed every seq held (throws
    /// std::invalid_argument otherwise: a bug). When the ring is full the
    /// oldest record is dropped first; returns how many were dropped (0 or 1).
    std::size_t push(Telemetry record);

    /// A cumulative `tack`: drops every record with seq <= `seq`. Returns true
    /// when the acknowledged seq moved forward (a stale tack changes nothing).
    bool acknowledge(std::uint64_t seq, std::int64_t now_mono_ms);

    /// A new session (`welcome`): the hub holds this epoch up to `ack_seq`
    /// (nil = nothing of it). Drops what it holds, takes its `ack_seq` as the
    /// acknowledged seq (even a lower one: a hub without a database forgets)
    /// and sends everything else again.
    void restart(std::optional<std::uint64_t> ack_seq, std::int64_t now_mono_ms);

    /// Moves every held record to `epoch` (their seqs stay), nothing sent:
    /// for records the hub cannot have stored (AgentCore's hole rule).
    void move_to_epoch(const Uuid& epoch, std::int64_t now_mono_ms);

    /// Go back N: nothing counts as sent any more; sending starts again at
    /// the oldest record held.
    void rewind(std::int64_t now_mono_ms);

    /// The next record to send, or nullptr when all are sent or the window
    /// (`max_in_flight`) is full. Valid until the ring is next modified.
    [[nodiscard]] const Telemetry* next_to_send() const;
    /// The record next_to_send() returned has gone out.
    void mark_sent(std::int64_t now_mono_ms);

    /// Records are in flight and neither a tack nor a (re)start of sending
    /// has happened for `stall_ms`: time to go back N.
    [[nodiscard]] bool stalled(std::int64_t now_mono_ms, std::int64_t stall_ms) const;
    /// When stalled() becomes true if nothing happens; nil with nothing in flight.
    [[nodiscard]] std::optional<std::int64_t> stall_deadline_ms(std::int64_t stall_ms) const;

    [[nodiscard]] std::size_t size() const { return m_records.size(); }
    [[nodiscard]] bool empty() const { return m_records.empty(); }
    [[nodiscard]] std::size_t capacity() const { return m_capacity; }
    [[nodiscard]] std::size_t in_flight() const { return m_sent; }
    [[nodiscard]] std::size_t max_in_flight() const { return m_max_in_flight; }
    /// The highest seq the hub acknowledged (0 = none).
    [[nodiscard]] std::uint64_t acked_seq() const { return m_acked_seq; }
    /// Records dropped unsent-or-unacknowledged because the ring was full.
    [[nodiscard]] std::uint64_t dropped() const { return m_dropped; }
    [[nodiscard]] std::optional<std::uint64_t> oldest_seq() const;
    /// The i-th record held, oldest first (i < size()).
    [[nodiscard]] const Telemetry& at(std::size_t i) const { return m_records.at(i); }
    [[nodiscard]] std::optional<std::uint64_t> newest_seq() const;

private:
    void pop_front();

    std::deque<Telemetry> m_records;
    std::size_t m_capacity;
    std::size_t m_max_in_flight;
    std::size_t m_sent = 0;  ///< records at the front that are in flight
    std::uint64_t m_acked_seq = 0;
    std::uint64_t m_dropped = 0;
    std::int64_t m_progress_mono_ms = 0;  ///< last tack progress or start of sending
};

}  // namespace der::agent
