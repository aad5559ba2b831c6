#pragma once
/// The agent's disk spool (`der-agent --spool DIR`, docs/spool.md): every
/// telemetry record is appended to `DIR/<asset-id>.spool` before it is sent,
/// and a hub `tack` appends an acknowledgement, so the records the hub has
/// not acknowledged survive a `kill -9` (or a crash) of the agent. At start
/// the agent reads the file back (Spool::open) and carries on under the
/// same epoch, resending what was not acknowledged.
///
/// The file is append-only between compactions; each record carries its
/// length and CRC-32, so a torn last record (the process killed mid-write)
/// or a corrupt one is detected, dropped and cut off, never replayed.
/// Bounded (`max_bytes`): compaction rewrites the file with only the
/// unacknowledged records once acknowledged ones make up most of it; when
/// the unacknowledged records alone reach the bound the oldest are dropped
/// and counted.
///
/// fsync policy: write(2) puts every record in the page cache at once, which
/// is all a `kill -9` needs; fdatasync(2) runs at most once per
/// `sync_interval_ms` when something was appended (AgentCore calls
/// sync_if_due from its timers), after each compaction, and on close. An
/// OS crash or power loss can lose at most that interval of records.
///
/// Not thread-safe: owned by the agent loop. Every failure after open is
/// logged (rate-limited) and leaves the agent running on its memory buffer.

#include "der/model.hpp"
#include "der/util/error.hpp"

#include <cstdint>
#include <deque>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace der::agent {

struct SpoolOptions {
    static constexpr std::uint64_t k_default_max_bytes = 64ull << 20;
    static constexpr std::uint64_t k_min_max_bytes = 64ull << 10;
    static constexpr std::int64_t k_default_sync_interval_ms = 1'000;

    std::filesystem::path dir;
    std::uint64_t max_bytes = k_default_max_bytes;
    std::int64_t sync_interval_ms = k_default_sync_interval_ms;
};

/// What a spool file held when it was opened.
struct SpoolContents {
    std::optional<Uuid> epoch;       ///< nil: a new file (or nothing usable in it)
    std::uint64_t last_seq = 0;      ///< highest seq ever made in the epoch
    std::uint64_t acked_seq = 0;     ///< highest seq the hub acknowledged
    std::vector<Telemetry> unacked;  ///< seq order, all > acked_seq
    std::uint64_t cut_bytes = 0;     ///< torn or corrupt tail dropped (0 = clean)
    std::string cut_reason;          ///< why, when cut_bytes > 0
};

class Spool {
public:
    /// Opens (creates) `options.dir/<asset_id>.spool`, reads it back into
    /// `contents`, cuts off a torn or corrupt tail and compacts it. Fails
    /// (Errc::io) when the directory or file cannot be created, read or
    /// written, or (Errc::decode) when the file is not a spool.
    static Result<Spool> open(const SpoolOptions& options, const Uuid& asset_id, SpoolContents& contents);

    Spool(Spool&&) noexcept;
    Spool& operator=(Spool&&) noexcept;
    Spool(const Spool&) = delete;
    Spool& operator=(const Spool&) = delete;
    /// Syncs and closes.
    ~Spool();

    /// The epoch the next records belong to, and the highest seq made in it.
    /// Written at once (a new epoch starts a new file).
    Result<void> start_epoch(const Uuid& epoch, std::uint64_t last_seq);
    /// Appends a record of the current epoch (seq must grow). When the bound
    /// is reached the oldest unacknowledged records are dropped (counted in
    /// dropped()).
    Result<void> append(const Telemetry& record);
    /// The hub acknowledged every record of the current epoch up to `seq`.
    Result<void> acknowledge(std::uint64_t seq);
    /// fdatasync when something was written and `sync_interval_ms` has
    /// passed since the last one (`now_mono_ms`: the agent's monotonic clock).
    Result<void> sync_if_due(std::int64_t now_mono_ms);
    Result<void> sync();

    [[nodiscard]] const std::filesystem::path& path() const { return m_path; }
    [[nodiscard]] std::uint64_t file_bytes() const { return m_file_bytes; }
    [[nodiscard]] std::size_t unacked() const { return m_records.size(); }
    [[nodiscard]] std::uint64_t dropped() const { return m_dropped; }
    [[nodiscard]] std::uint64_t compactions() const { return m_compactions; }
    [[nodiscard]] std::uint64_t syncs() const { return m_syncs; }

    /// The file format's record kinds (implementation details in spool.cpp).
    static constexpr std::uint32_t k_max_record_bytes = 1u << 20;

private:
    Spool(SpoolOptions options, std::filesystem::path path);

    struct Held {
        std::uint64_t seq = 0;
        std::string framed;  ///< the record as written, header included
    };

    Result<void> write_framed(const std::string& framed);
    /// Rewrites the file: state record + unacknowledged records.
    Result<void> compact();
    [[nodiscard]] std::uint64_t live_bytes() const;

    SpoolOptions m_options;
    std::filesystem::path m_path;
    int m_fd = -1;
    int m_lock_fd = -1;  ///< flock'ed `<file>.lock`: one agent per spool
    Uuid m_epoch;
    std::uint64_t m_last_seq = 0;
    std::uint64_t m_acked_seq = 0;
    std::deque<Held> m_records;  ///< unacknowledged, seq order
    std::uint64_t m_records_bytes = 0;
    std::uint64_t m_file_bytes = 0;
    bool m_dirty = false;
    std::int64_t m_last_sync_mono_ms = 0;
    std::uint64_t m_dropped = 0;
    std::uint64_t m_compactions = 0;
    std::uint64_t m_syncs = 0;
};

/// CRC-32 (IEEE 802.3, as zlib's crc32), exposed for the tests.
std::uint32_t crc32(std::string_view bytes, std::uint32_t crc = 0);

}  // namespace der::agent
