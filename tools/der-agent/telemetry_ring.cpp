#include "telemetry_ring.hpp"

#include <algorithm>
#include <stdexcept>

namespace der::agent {

TelemetryRing::TelemetryRing(std::size_t capacity, std::size_t max_in_flight)
    : m_capacity(capacity), m_max_in_flight(std::max<std::size_t>(max_in_flight, 1)) {
    if (capacity == 0) throw std::invalid_argument("telemetry ring capacity must be at least 1");
}

void TelemetryRing::pop_front() {
    m_records.pop_front();
    if (m_sent > 0) --m_sent;
}

std::size_t TelemetryRing::push(Telemetry record) {
    if (!m_records.empty() && record.seq <= m_records.back().seq)
        throw std::invalid_argument("telemetry ring: seq must increase");
    std::size_t dropped = 0;
    if (m_records.size() >= m_capacity) {
        pop_front();
        ++m_dropped;
        dropped = 1;
    }
    m_records.push_back(std::move(record));
    return dropped;
}

bool TelemetryRing::acknowledge(std::uint64_t seq, std::int64_t now_mono_ms) {
    if (seq <= m_acked_seq) return false;
    m_acked_seq = seq;
    while (!m_records.empty() && m_records.front().seq <= seq) pop_front();
    m_progress_mono_ms = now_mono_ms;
    return true;
}

void TelemetryRing::restart(std::optional<std::uint64_t> ack_seq, std::int64_t now_mono_ms) {
    m_acked_seq = ack_seq.value_or(0);
    while (!m_records.empty() && m_records.front().seq <= m_acked_seq) pop_front();
    rewind(now_mono_ms);
}

void TelemetryRing::move_to_epoch(const Uuid& epoch, std::int64_t now_mono_ms) {
    for (Telemetry& t : m_records) t.epoch = epoch;
    m_acked_seq = 0;
    rewind(now_mono_ms);
}

void TelemetryRing::rewind(std::int64_t now_mono_ms) {
    m_sent = 0;
    m_progress_mono_ms = now_mono_ms;
}

const Telemetry* TelemetryRing::next_to_send() const {
    if (m_sent >= m_records.size() || m_sent >= m_max_in_flight) return nullptr;
    return &m_records[m_sent];
}

void TelemetryRing::mark_sent(std::int64_t now_mono_ms) {
    if (m_sent >= m_records.size()) return;
    // The stall clock starts when the first record of an idle window leaves;
    // afterwards only a tack moves it.
    if (m_sent == 0) m_progress_mono_ms = now_mono_ms;
    ++m_sent;
}

bool TelemetryRing::stalled(std::int64_t now_mono_ms, std::int64_t stall_ms) const {
    return m_sent > 0 && now_mono_ms - m_progress_mono_ms >= stall_ms;
}

std::optional<std::int64_t> TelemetryRing::stall_deadline_ms(std::int64_t stall_ms) const {
    if (m_sent == 0) return std::nullopt;
    return m_progress_mono_ms + stall_ms;
}

std::optional<std::uint64_t> TelemetryRing::oldest_seq() const {
    if (m_records.empty()) return std::nullopt;
    return m_records.front().seq;
}

std::optional<std::uint64_t> TelemetryRing::newest_seq() const {
    if (m_records.empty()) return std::nullopt;
    return m_records.back().seq;
}

}  // namespace der::agent
