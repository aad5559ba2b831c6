// Implementation details: the spool file (docs/spool.md).
//
//   DIR/<asset-id>.spool
//     magic        8 bytes  "DERSPL1\n"
//     record*      each:
//       length     uint32 LE   bytes of kind + payload (1 .. 1 MiB)
//       crc        uint32 LE   CRC-32 (IEEE) of kind + payload
//       kind       1 byte
//       payload    length - 1 bytes
//
//   kinds
//     'E'  epoch state: epoch (16 bytes, RFC 9562 order), last_seq (uint64
//          LE), acked_seq (uint64 LE). The first record of every file; a
//          later 'E' starts over (what came before it is superseded).
//     'T'  one telemetry record of the current epoch: the msgpack body of a
//          wire `telemetry` message (wire::encode_telemetry).
//     'A'  acknowledgement: uint64 LE seq; every record up to it is acked.
//
//   Reading stops at the first record that is short (a torn write: the
//   process died mid-append) or whose length, CRC, kind or payload is wrong
//   (corruption); everything from there on is dropped and logged, never
//   replayed. open() then compacts, which also cuts the bad tail off.
//
//   Compaction writes `<file>.tmp` (magic, 'E', the unacked 'T's),
//   fdatasyncs it, renames it over the file and fsyncs the directory, so a
//   crash leaves either the old file or the new one. It runs at open, when
//   acked records make up most of a file of at least 64 KiB, and when the
//   file reaches max_bytes (then, if the unacked records alone are over
//   3/4 of the bound, the oldest are dropped first).

#include "spool.hpp"

#include "der/util/log.hpp"
#include "der/wire_codec.hpp"

#include <fmt/core.h>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>
#include <array>
#include <cerrno>
#include <cstring>
#include <utility>

namespace der::agent {

namespace {

constexpr std::string_view k_magic = "DERSPL1\n";
constexpr std::size_t k_header_bytes = 8;  // length + crc
constexpr std::uint64_t k_compact_min_bytes = 64ull << 10;

constexpr std::array<std::uint32_t, 256> make_crc_table() {
    std::array<std::uint32_t, 256> table{};
    for (std::uint32_t i = 0; i < 256; ++i) {
        std::uint32_t c = i;
        for (int k = 0; k < 8; ++k) c = (c & 1u) != 0 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        table[i] = c;
    }
    return table;
}
constexpr auto k_crc_table = make_crc_table();

void put_u32(std::string& out, std::uint32_t v) {
    for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xffu));
}
void put_u64(std::string& out, std::uint64_t v) {
    for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xffu));
}
std::uint64_t get_le(std::string_view in, std::size_t at, int bytes) {
    std::uint64_t v = 0;
    for (int i = bytes - 1; i >= 0; --i)
        v = (v << 8) | static_cast<unsigned char>(in[at + static_cast<std::size_t>(i)]);
    return v;
}

/// length + crc + kind + payload.
std::string frame(char kind, std::string_view payload) {
    std::string body;
    body.reserve(1 + payload.size());
    body.push_back(kind);
    body.append(payload);
    std::string out;
    out.reserve(k_header_bytes + body.size());
    put_u32(out, static_cast<std::uint32_t>(body.size()));
    put_u32(out, crc32(body));
    out += body;
    return out;
}

std::string epoch_record(const Uuid& epoch, std::uint64_t last_seq, std::uint64_t acked_seq) {
    std::string payload(reinterpret_cast<const char*>(epoch.bytes().data()), epoch.bytes().size());
    put_u64(payload, last_seq);
    put_u64(payload, acked_seq);
    return frame('E', payload);
}

std::string errno_text() {
    return std::strerror(errno);
}

Result<void> write_all(int fd, std::string_view bytes, const std::filesystem::path& path) {
    while (!bytes.empty()) {
        const ssize_t n = ::write(fd, bytes.data(), bytes.size());
        if (n < 0) {
            if (errno == EINTR) continue;
            return fail(Errc::io, fmt::format("writing {}: {}", path.string(), errno_text()));
        }
        bytes.remove_prefix(static_cast<std::size_t>(n));
    }
    return {};
}

Result<std::string> read_file(const std::filesystem::path& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) return std::string();
        return fail(Errc::io, fmt::format("opening {}: {}", path.string(), errno_text()));
    }
    std::string data;
    std::array<char, 65536> buf{};
    for (;;) {
        const ssize_t n = ::read(fd, buf.data(), buf.size());
        if (n < 0) {
            if (errno == EINTR) continue;
            const std::string why = errno_text();
            ::close(fd);
            return fail(Errc::io, fmt::format("reading {}: {}", path.string(), why));
        }
        if (n == 0) break;
        data.append(buf.data(), static_cast<std::size_t>(n));
    }
    ::close(fd);
    return data;
}

/// Parses a whole file into `out` and the held records (framed as read).
Result<void> parse(std::string_view data, SpoolContents& out, std::deque<std::string>& framed) {
    if (data.empty()) return {};
    if (data.size() < k_magic.size() || data.substr(0, k_magic.size()) != k_magic) {
        if (k_magic.starts_with(data)) {  // died while writing the magic of a new file
            out.cut_bytes = data.size();
            out.cut_reason = "torn file header";
            return {};
        }
        return fail(Errc::decode, "not a der-agent spool file (bad magic)");
    }
    std::size_t at = k_magic.size();
    const auto cut = [&](std::string reason) {
        out.cut_bytes = data.size() - at;
        out.cut_reason = std::move(reason);
    };
    while (at < data.size()) {
        const std::size_t left = data.size() - at;
        if (left < k_header_bytes) {
            cut("torn record header");
            break;
        }
        const auto length = static_cast<std::uint32_t>(get_le(data, at, 4));
        const auto crc = static_cast<std::uint32_t>(get_le(data, at + 4, 4));
        if (length == 0 || length > Spool::k_max_record_bytes) {
            cut(fmt::format("bad record length {}", length));
            break;
        }
        if (left - k_header_bytes < length) {
            cut("torn record");
            break;
        }
        const std::string_view body = data.substr(at + k_header_bytes, length);
        if (crc32(body) != crc) {
            cut("CRC mismatch");
            break;
        }
        const char kind = body[0];
        const std::string_view payload = body.substr(1);
        if (kind == 'E' && payload.size() == 32) {
            Uuid::Bytes bytes{};
            std::memcpy(bytes.data(), payload.data(), bytes.size());
            out.epoch = Uuid(bytes);
            out.last_seq = get_le(payload, 16, 8);
            out.acked_seq = get_le(payload, 24, 8);
            out.unacked.clear();
            framed.clear();
        } else if (kind == 'T' && out.epoch) {
            auto t = wire::decode_telemetry(payload);
            if (!t || t->epoch != *out.epoch) {
                cut(t ? std::string("a record of another epoch")
                      : "undecodable record: " + t.error().message);
                break;
            }
            const bool newer = out.unacked.empty() || t->seq > out.unacked.back().seq;
            if (t->seq > out.acked_seq && newer) {
                out.last_seq = std::max(out.last_seq, t->seq);
                out.unacked.push_back(std::move(*t));
                framed.emplace_back(data.substr(at, k_header_bytes + length));
            }
        } else if (kind == 'A' && payload.size() == 8 && out.epoch) {
            const std::uint64_t seq = get_le(payload, 0, 8);
            if (seq > out.acked_seq) out.acked_seq = seq;
            std::size_t covered = 0;
            while (covered < out.unacked.size() && out.unacked[covered].seq <= out.acked_seq) ++covered;
            out.unacked.erase(out.unacked.begin(),
                              out.unacked.begin() + static_cast<std::ptrdiff_t>(covered));
            framed.erase(framed.begin(), framed.begin() + static_cast<std::ptrdiff_t>(covered));
        } else {
            cut(fmt::format("unknown record kind {:#04x} of {} bytes", static_cast<unsigned char>(kind),
                            length));
            break;
        }
        at += k_header_bytes + length;
    }
    out.last_seq = std::max(out.last_seq, out.acked_seq);
    return {};
}

Result<void> fsync_dir(const std::filesystem::path& dir) {
    const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return fail(Errc::io, fmt::format("opening {}: {}", dir.string(), errno_text()));
    const int rc = ::fsync(fd);
    const std::string why = rc != 0 ? errno_text() : std::string();
    ::close(fd);
    if (rc != 0) return fail(Errc::io, fmt::format("fsync {}: {}", dir.string(), why));
    return {};
}

}  // namespace

std::uint32_t crc32(std::string_view bytes, std::uint32_t crc) {
    crc = ~crc;
    for (const char ch : bytes)
        crc = k_crc_table[(crc ^ static_cast<unsigned char>(ch)) & 0xffu] ^ (crc >> 8);
    return ~crc;
}

Spool::Spool(SpoolOptions options, std::filesystem::path path)
    : m_options(std::move(options)), m_path(std::move(path)) {}

Spool::Spool(Spool&& other) noexcept
    : m_options(std::move(other.m_options)),
      m_path(std::move(other.m_path)),
      m_fd(std::exchange(other.m_fd, -1)),
      m_lock_fd(std::exchange(other.m_lock_fd, -1)),
      m_epoch(other.m_epoch),
      m_last_seq(other.m_last_seq),
      m_acked_seq(other.m_acked_seq),
      m_records(std::move(other.m_records)),
      m_records_bytes(other.m_records_bytes),
      m_file_bytes(other.m_file_bytes),
      m_dirty(other.m_dirty),
      m_last_sync_mono_ms(other.m_last_sync_mono_ms),
      m_dropped(other.m_dropped),
      m_compactions(other.m_compactions),
      m_syncs(other.m_syncs) {}

Spool& Spool::operator=(Spool&& other) noexcept {
    if (this == &other) return *this;
    if (m_fd >= 0) ::close(m_fd);
    if (m_lock_fd >= 0) ::close(m_lock_fd);
    m_options = std::move(other.m_options);
    m_path = std::move(other.m_path);
    m_fd = std::exchange(other.m_fd, -1);
    m_lock_fd = std::exchange(other.m_lock_fd, -1);
    m_epoch = other.m_epoch;
    m_last_seq = other.m_last_seq;
    m_acked_seq = other.m_acked_seq;
    m_records = std::move(other.m_records);
    m_records_bytes = other.m_records_bytes;
    m_file_bytes = other.m_file_bytes;
    m_dirty = other.m_dirty;
    m_last_sync_mono_ms = other.m_last_sync_mono_ms;
    m_dropped = other.m_dropped;
    m_compactions = other.m_compactions;
    m_syncs = other.m_syncs;
    return *this;
}

Spool::~Spool() {
    if (m_fd >= 0) {
        if (m_dirty) (void)::fdatasync(m_fd);
        ::close(m_fd);
    }
    if (m_lock_fd >= 0) ::close(m_lock_fd);
}

Result<Spool> Spool::open(const SpoolOptions& options, const Uuid& asset_id, SpoolContents& contents) {
    std::error_code ec;
    std::filesystem::create_directories(options.dir, ec);
    if (ec) return fail(Errc::io, fmt::format("--spool {}: {}", options.dir.string(), ec.message()));
    Spool spool(options, options.dir / (asset_id.to_string() + ".spool"));
    // One agent per spool: a second one would interleave its records.
    const std::filesystem::path lock = spool.m_path.string() + ".lock";
    spool.m_lock_fd = ::open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (spool.m_lock_fd < 0)
        return fail(Errc::io, fmt::format("creating {}: {}", lock.string(), errno_text()));
    if (::flock(spool.m_lock_fd, LOCK_EX | LOCK_NB) != 0)
        return fail(Errc::unavailable,
                    fmt::format("{} is locked: another der-agent uses this spool", spool.m_path.string()));

    contents = SpoolContents{};
    auto data = read_file(spool.m_path);
    if (!data) return std::unexpected(data.error());
    std::deque<std::string> framed;
    if (auto parsed = parse(*data, contents, framed); !parsed)
        return fail(parsed.error().code,
                    fmt::format("{}: {}", spool.m_path.string(), parsed.error().message));

    if (contents.epoch) {
        spool.m_epoch = *contents.epoch;
        spool.m_last_seq = contents.last_seq;
        spool.m_acked_seq = contents.acked_seq;
        for (std::size_t i = 0; i < framed.size(); ++i) {
            spool.m_records_bytes += framed[i].size();
            spool.m_records.push_back(Held{contents.unacked[i].seq, std::move(framed[i])});
        }
        // Rewrites the file clean (and cuts a torn or corrupt tail off).
        if (auto done = spool.compact(); !done) return std::unexpected(done.error());
    }
    return spool;
}

std::uint64_t Spool::live_bytes() const {
    return k_magic.size() + 41 + m_records_bytes;
}

Result<void> Spool::write_framed(const std::string& framed) {
    if (m_fd < 0) return fail(Errc::io, fmt::format("{}: not open", m_path.string()));
    if (auto done = write_all(m_fd, framed, m_path); !done) {
        // A partial write leaves a torn record: start a clean file at once.
        (void)compact();
        return done;
    }
    m_file_bytes += framed.size();
    m_dirty = true;
    return {};
}

Result<void> Spool::compact() {
    const std::filesystem::path tmp = m_path.string() + ".tmp";
    std::string data(k_magic);
    data += epoch_record(m_epoch, m_last_seq, m_acked_seq);
    for (const Held& h : m_records) data += h.framed;

    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return fail(Errc::io, fmt::format("creating {}: {}", tmp.string(), errno_text()));
    auto done = write_all(fd, data, tmp);
    if (done && ::fdatasync(fd) != 0)
        done = fail(Errc::io, fmt::format("fdatasync {}: {}", tmp.string(), errno_text()));
    ::close(fd);
    if (done && ::rename(tmp.c_str(), m_path.c_str()) != 0)
        done = fail(Errc::io, fmt::format("renaming {}: {}", tmp.string(), errno_text()));
    if (!done) {
        (void)::unlink(tmp.c_str());
        return done;
    }
    (void)fsync_dir(m_path.parent_path());

    if (m_fd >= 0) ::close(m_fd);
    m_fd = ::open(m_path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
    if (m_fd < 0) return fail(Errc::io, fmt::format("opening {}: {}", m_path.string(), errno_text()));
    m_file_bytes = data.size();
    m_dirty = false;
    ++m_compactions;
    ++m_syncs;
    return {};
}

Result<void> Spool::start_epoch(const Uuid& epoch, std::uint64_t last_seq) {
    m_epoch = epoch;
    m_last_seq = last_seq;
    m_acked_seq = 0;
    m_records.clear();
    m_records_bytes = 0;
    return compact();
}

Result<void> Spool::append(const Telemetry& record) {
    std::string framed = frame('T', wire::encode_telemetry(record));
    if (m_file_bytes + framed.size() > m_options.max_bytes) {
        // Full: drop the oldest unacknowledged records until the rest fill at
        // most 3/4 of the bound, then rewrite without the acknowledged ones.
        const std::uint64_t keep = m_options.max_bytes / 4 * 3;
        std::uint64_t dropped = 0;
        while (!m_records.empty() && live_bytes() + framed.size() > keep) {
            m_records_bytes -= m_records.front().framed.size();
            m_records.pop_front();
            ++dropped;
        }
        if (dropped > 0) {
            m_dropped += dropped;
            log::warn("spool {} full ({} bytes): dropped the {} oldest unacknowledged records ({} in all)",
                      m_path.string(), m_options.max_bytes, dropped, m_dropped);
        }
        if (auto done = compact(); !done) return done;
    }
    m_last_seq = std::max(m_last_seq, record.seq);
    if (auto done = write_framed(framed); !done) return done;
    m_records_bytes += framed.size();
    m_records.push_back(Held{record.seq, std::move(framed)});
    return {};
}

Result<void> Spool::acknowledge(std::uint64_t seq) {
    if (seq <= m_acked_seq) return {};
    m_acked_seq = seq;
    while (!m_records.empty() && m_records.front().seq <= seq) {
        m_records_bytes -= m_records.front().framed.size();
        m_records.pop_front();
    }
    if (m_file_bytes >= k_compact_min_bytes && live_bytes() * 2 < m_file_bytes) return compact();
    std::string payload;
    put_u64(payload, seq);
    return write_framed(frame('A', payload));
}

Result<void> Spool::sync_if_due(std::int64_t now_mono_ms) {
    if (!m_dirty || now_mono_ms - m_last_sync_mono_ms < m_options.sync_interval_ms) return {};
    m_last_sync_mono_ms = now_mono_ms;
    return sync();
}

Result<void> Spool::sync() {
    if (!m_dirty || m_fd < 0) return {};
    if (::fdatasync(m_fd) != 0)
        return fail(Errc::io, fmt::format("fdatasync {}: {}", m_path.string(), errno_text()));
    m_dirty = false;
    ++m_syncs;
    return {};
}

}  // namespace der::agent
