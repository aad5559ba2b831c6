// der-agent's disk spool: the file format (torn and corrupt records,
// truncation, compaction, the size bound, the lock) and an AgentCore that
// resumes its epoch from a spool after a restart. Real files in a temp dir.

#include "adapter.hpp"
#include "agent.hpp"
#include "spool.hpp"

#include "der/assets_config.hpp"
#include "der/util/log.hpp"

#include <catch2/catch.hpp>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <optional>
#include <variant>
#include <vector>

using der::Telemetry;
using der::Uuid;
using der::agent::Spool;
using der::agent::SpoolContents;
using der::agent::SpoolOptions;
namespace fs = std::filesystem;
namespace wire = der::wire;

namespace {

struct TempDir {
    fs::path path;
    TempDir() {
        path = fs::temp_directory_path() /
               ("der-spool-test-" + std::to_string(::getpid()) + "-" + Uuid::v7().to_string());
        fs::create_directories(path);
    }
    ~TempDir() {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
};

const Uuid k_asset = Uuid::v5(der::config::k_id_namespace, "north/bess-1");

Telemetry record(const Uuid& epoch, std::uint64_t seq) {
    Telemetry t;
    t.asset_id = k_asset;
    t.epoch = epoch;
    t.seq = seq;
    t.ts = 1'700'000'000'000 + static_cast<std::int64_t>(seq);
    t.soc_mwh = 2.0;
    t.soc_pct = 50.0;
    t.capacity_mwh = 4.0;
    return t;
}

std::vector<std::uint64_t> seqs_of(const SpoolContents& c) {
    std::vector<std::uint64_t> out;
    for (const auto& t : c.unacked) out.push_back(t.seq);
    return out;
}

std::vector<std::uint64_t> range(std::uint64_t first, std::uint64_t last) {
    std::vector<std::uint64_t> out;
    for (std::uint64_t s = first; s <= last; ++s) out.push_back(s);
    return out;
}

SpoolOptions options_in(const TempDir& dir, std::uint64_t max_bytes = SpoolOptions::k_default_max_bytes) {
    SpoolOptions o;
    o.dir = dir.path;
    o.max_bytes = max_bytes;
    return o;
}

/// A spool of epoch `epoch` holding seq 1..n, none acknowledged; closed.
fs::path write_spool(const TempDir& dir, const Uuid& epoch, std::uint64_t n) {
    SpoolContents c;
    auto spool = Spool::open(options_in(dir), k_asset, c);
    REQUIRE(spool.has_value());
    REQUIRE(spool->start_epoch(epoch, 0));
    for (std::uint64_t s = 1; s <= n; ++s) REQUIRE(spool->append(record(epoch, s)));
    return spool->path();
}

SpoolContents reopen(const TempDir& dir) {
    SpoolContents c;
    auto spool = Spool::open(options_in(dir), k_asset, c);
    REQUIRE(spool.has_value());
    return c;
}

void truncate_by(const fs::path& file, std::uintmax_t bytes) {
    fs::resize_file(file, fs::file_size(file) - bytes);
}

}  // namespace

TEST_CASE("crc32 matches the IEEE check value", "[agent][spool]") {
    CHECK(der::agent::crc32("123456789") == 0xCBF43926u);
    CHECK(der::agent::crc32("") == 0u);
}

TEST_CASE("a spool gives back its epoch, last seq and the unacknowledged records", "[agent][spool]") {
    der::log::configure("test", der::log::Level::error, der::log::Format::text);
    TempDir dir;
    const Uuid epoch = Uuid::v7();
    {
        SpoolContents c;
        auto spool = Spool::open(options_in(dir), k_asset, c);
        REQUIRE(spool.has_value());
        CHECK_FALSE(c.epoch.has_value());
        REQUIRE(spool->start_epoch(epoch, 0));
        for (std::uint64_t s = 1; s <= 5; ++s) REQUIRE(spool->append(record(epoch, s)));
        REQUIRE(spool->acknowledge(2));
        CHECK(spool->unacked() == 3);
    }
    const SpoolContents c = reopen(dir);
    REQUIRE(c.epoch.has_value());
    CHECK(*c.epoch == epoch);
    CHECK(c.last_seq == 5);
    CHECK(c.acked_seq == 2);
    CHECK(seqs_of(c) == range(3, 5));
    CHECK(c.unacked[0].ts == record(epoch, 3).ts);
    CHECK(c.cut_bytes == 0);
}

TEST_CASE("every record acknowledged still keeps the epoch and last seq", "[agent][spool]") {
    der::log::configure("test", der::log::Level::error, der::log::Format::text);
    TempDir dir;
    const Uuid epoch = Uuid::v7();
    {
        SpoolContents c;
        auto spool = Spool::open(options_in(dir), k_asset, c);
        REQUIRE(spool);
        REQUIRE(spool->start_epoch(epoch, 0));
        for (std::uint64_t s = 1; s <= 4; ++s) REQUIRE(spool->append(record(epoch, s)));
        REQUIRE(spool->acknowledge(4));
    }
    const SpoolContents c = reopen(dir);
    CHECK(*c.epoch == epoch);
    CHECK(c.last_seq == 4);
    CHECK(c.unacked.empty());
}

TEST_CASE("a torn last record is dropped, never replayed, and the file is cut clean", "[agent][spool]") {
    der::log::configure("test", der::log::Level::error, der::log::Format::text);
    TempDir dir;
    const Uuid epoch = Uuid::v7();
    const fs::path file = write_spool(dir, epoch, 3);
    truncate_by(file, 5);  // the process died inside the write of seq 3
    {
        SpoolContents c;
        auto spool = Spool::open(options_in(dir), k_asset, c);
        REQUIRE(spool);
        CHECK(seqs_of(c) == range(1, 2));
        CHECK(c.last_seq == 2);
        CHECK(c.cut_bytes > 0);
        CHECK(c.cut_reason == "torn record");
        // Appending after the cut gives a well-formed file.
        REQUIRE(spool->append(record(epoch, 3)));
    }
    const SpoolContents again = reopen(dir);
    CHECK(seqs_of(again) == range(1, 3));
    CHECK(again.cut_bytes == 0);
}

TEST_CASE("a record whose CRC does not match ends the spool there", "[agent][spool]") {
    der::log::configure("test", der::log::Level::error, der::log::Format::text);
    TempDir dir;
    const Uuid epoch = Uuid::v7();
    const fs::path file = write_spool(dir, epoch, 3);
    {
        std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
        f.seekp(static_cast<std::streamoff>(fs::file_size(file) - 3));
        f.put('\x5a');
    }
    const SpoolContents c = reopen(dir);
    CHECK(seqs_of(c) == range(1, 2));
    CHECK(c.cut_reason == "CRC mismatch");
}

TEST_CASE("a spool cut at any byte gives back a prefix of its records", "[agent][spool]") {
    der::log::configure("test", der::log::Level::error, der::log::Format::text);
    TempDir dir;
    const Uuid epoch = Uuid::v7();
    const fs::path file = write_spool(dir, epoch, 4);
    std::string whole;
    {
        std::ifstream in(file, std::ios::binary);
        whole.assign(std::istreambuf_iterator<char>(in), {});
    }
    for (std::size_t len = 0; len <= whole.size(); ++len) {
        {
            std::ofstream out(file, std::ios::binary | std::ios::trunc);
            out.write(whole.data(), static_cast<std::streamsize>(len));
        }
        SpoolContents c;
        auto spool = Spool::open(options_in(dir), k_asset, c);
        REQUIRE(spool);
        const auto got = seqs_of(c);
        INFO("cut at " << len << " of " << whole.size());
        if (!got.empty()) CHECK(got == range(1, got.size()));
        if (len == whole.size()) CHECK(got == range(1, 4));
        if (c.epoch) CHECK(*c.epoch == epoch);
    }
}

TEST_CASE("a file that is not a spool is an error, not an empty spool", "[agent][spool]") {
    TempDir dir;
    {
        std::ofstream out(dir.path / (k_asset.to_string() + ".spool"), std::ios::binary);
        out << "hello, this is not a spool file\n";
    }
    SpoolContents c;
    const auto spool = Spool::open(options_in(dir), k_asset, c);
    REQUIRE_FALSE(spool.has_value());
    CHECK(spool.error().code == der::Errc::decode);
}

TEST_CASE("a second agent cannot open a spool in use", "[agent][spool]") {
    TempDir dir;
    SpoolContents c;
    auto first = Spool::open(options_in(dir), k_asset, c);
    REQUIRE(first);
    const auto second = Spool::open(options_in(dir), k_asset, c);
    REQUIRE_FALSE(second.has_value());
    CHECK(second.error().code == der::Errc::unavailable);
}

TEST_CASE("acknowledged records are compacted away once they fill most of the file", "[agent][spool]") {
    der::log::configure("test", der::log::Level::error, der::log::Format::text);
    TempDir dir;
    const Uuid epoch = Uuid::v7();
    SpoolContents c;
    auto spool = Spool::open(options_in(dir), k_asset, c);
    REQUIRE(spool);
    REQUIRE(spool->start_epoch(epoch, 0));
    std::uint64_t biggest = 0;
    for (std::uint64_t s = 1; s <= 5'000; ++s) {
        REQUIRE(spool->append(record(epoch, s)));
        if (s > 3) REQUIRE(spool->acknowledge(s - 3));  // three in flight
        biggest = std::max<std::uint64_t>(biggest, spool->file_bytes());
    }
    CHECK(spool->compactions() > 1);
    CHECK(biggest < 160'000);  // 64 KiB of records, doubled at most
    CHECK(spool->dropped() == 0);
    CHECK(fs::file_size(spool->path()) == spool->file_bytes());
    spool = std::unexpected(der::Error{});  // closes it
    const SpoolContents back = reopen(dir);
    CHECK(seqs_of(back) == range(4'998, 5'000));
    CHECK(back.last_seq == 5'000);
}

TEST_CASE("a full spool drops its oldest unacknowledged records and counts them", "[agent][spool]") {
    der::log::configure("test", der::log::Level::error, der::log::Format::text);
    TempDir dir;
    const Uuid epoch = Uuid::v7();
    const std::uint64_t max_bytes = SpoolOptions::k_min_max_bytes;
    std::uint64_t dropped = 0;
    {
        SpoolContents c;
        auto spool = Spool::open(options_in(dir, max_bytes), k_asset, c);
        REQUIRE(spool);
        REQUIRE(spool->start_epoch(epoch, 0));
        for (std::uint64_t s = 1; s <= 3'000; ++s) {
            REQUIRE(spool->append(record(epoch, s)));
            REQUIRE(spool->file_bytes() <= max_bytes);
        }
        dropped = spool->dropped();
        CHECK(dropped > 0);
        CHECK(spool->unacked() + dropped == 3'000);
    }
    SpoolContents c;
    auto spool = Spool::open(options_in(dir, max_bytes), k_asset, c);
    REQUIRE(spool);
    CHECK(c.last_seq == 3'000);
    CHECK(seqs_of(c) == range(dropped + 1, 3'000));  // the newest, without a hole
}

// --- AgentCore with a spool ---------------------------------------------------

namespace {

struct SpooledAgent {
    der::FakeClock clock;
    der::agent::AgentSettings settings;
    std::optional<der::agent::SimAdapter> adapter;
    std::optional<Spool> spool;
    std::optional<der::agent::AgentCore> core;
    std::vector<wire::AgentMessage> sent;
    bool online = false;

    explicit SpooledAgent(const TempDir& dir) {
        der::log::configure("test", der::log::Level::error, der::log::Format::text);
        settings.asset.id = k_asset;
        settings.asset.site_id = Uuid::v5(der::config::k_id_namespace, "north");
        settings.asset.name = "bess-1";
        settings.asset.site_name = "north";
        settings.asset.limits.capacity_mwh = 4.0;
        settings.asset.limits.max_mw = 2.0;
        settings.asset.limits.min_mw = -2.0;
        settings.asset.limits.efficiency = 1.0;
        settings.asset.limits.soc_max_pct = 100.0;
        settings.telemetry_s = 1.0;
        adapter.emplace(settings.asset.limits, 50.0);
        core.emplace(settings, *adapter, clock, [this](const wire::AgentMessage& m) {
            if (!online) return false;
            sent.push_back(m);
            return true;
        });
        SpoolContents contents;
        auto opened = Spool::open(options_in(dir), k_asset, contents);
        REQUIRE(opened);
        spool.emplace(std::move(*opened));
        core->attach_spool(*spool, contents);
    }

    void run_for_ms(std::int64_t ms) {
        const std::int64_t end = clock.mono_ms() + ms;
        core->run_timers();
        while (clock.mono_ms() < end) {
            clock.advance_ms(std::min(std::max(core->next_deadline_mono_ms(), clock.mono_ms() + 1), end) -
                             clock.mono_ms());
            core->run_timers();
        }
    }

    std::vector<Telemetry> sent_telemetry() const {
        std::vector<Telemetry> out;
        for (const auto& m : sent)
            if (const auto* t = std::get_if<Telemetry>(&m)) out.push_back(*t);
        return out;
    }
};

}  // namespace

TEST_CASE("records after a hole left by a full buffer move to a new epoch the hub can take",
          "[agent][spool]") {
    TempDir dir;
    SpooledAgent a(dir);
    a.settings.buffer_records = 10;
    a.core.emplace(a.settings, *a.adapter, a.clock, [&a](const wire::AgentMessage& m) {
        if (!a.online) return false;
        a.sent.push_back(m);
        return true;
    });
    SpoolContents none;
    a.spool.reset();
    auto opened = Spool::open(options_in(dir), k_asset, none);
    REQUIRE(opened);
    a.spool.emplace(std::move(*opened));
    a.core->attach_spool(*a.spool, none);
    const Uuid first_epoch = a.core->epoch();

    a.online = true;
    a.core->on_connected();
    wire::Welcome w;
    w.asset = a.settings.asset;
    w.telemetry_s = 1.0;
    w.heartbeat_s = 30.0;
    a.core->on_message(w);
    a.run_for_ms(1'500);
    a.core->on_message(wire::Tack{first_epoch, 2});
    a.core->on_disconnected();
    a.online = false;
    a.run_for_ms(30'000);  // 30 records into a ring of 10: seq 3.. dropped
    REQUIRE(a.core->ring().dropped() > 0);
    const std::uint64_t oldest = *a.core->ring().oldest_seq();
    const std::uint64_t newest = *a.core->ring().newest_seq();
    REQUIRE(oldest > 3);

    a.online = true;
    a.sent.clear();
    a.core->on_connected();
    w.ack_seq = 2;  // the hub holds the old epoch up to 2: 3..oldest-1 are gone
    a.core->on_message(w);
    const Uuid second_epoch = a.core->epoch();
    CHECK(second_epoch != first_epoch);
    CHECK_FALSE(a.core->welcomed());
    const auto* reg = std::get_if<wire::Register>(&a.sent.back());
    REQUIRE(reg != nullptr);
    CHECK(reg->epoch == second_epoch);
    CHECK(a.sent_telemetry().empty());  // nothing the hub would refuse as a gap

    a.sent.clear();
    w.ack_seq = std::nullopt;  // the hub knows nothing of the new epoch
    a.core->on_message(w);
    const auto sent = a.sent_telemetry();
    REQUIRE_FALSE(sent.empty());
    CHECK(sent.front().seq == oldest);
    CHECK(sent.back().seq >= newest);
    for (const auto& t : sent) CHECK(t.epoch == second_epoch);

    // The spool holds them under the new epoch too.
    a.core.reset();
    a.spool.reset();
    SpoolContents back;
    REQUIRE(Spool::open(options_in(dir), k_asset, back));
    CHECK(*back.epoch == second_epoch);
    REQUIRE_FALSE(back.unacked.empty());
    CHECK(back.unacked.front().seq == oldest);
}

TEST_CASE("a restarted agent resends its spooled records under their epoch and seq", "[agent][spool]") {
    TempDir dir;
    Uuid first_epoch;
    {
        SpooledAgent a(dir);
        a.online = true;
        a.core->on_connected();
        wire::Welcome w;
        w.asset = a.settings.asset;
        w.telemetry_s = 1.0;
        w.heartbeat_s = 30.0;
        a.core->on_message(w);
        a.run_for_ms(3'000);
        first_epoch = a.core->epoch();
        a.core->on_message(wire::Tack{first_epoch, 2});
        a.online = false;  // the hub goes away; records pile up unacknowledged
        a.run_for_ms(5'000);
        REQUIRE(a.core->last_seq() >= 7);
        // "kill -9": the core and spool vanish with nothing flushed by hand.
    }
    SpooledAgent b(dir);
    CHECK(b.core->epoch() == first_epoch);
    const std::uint64_t last = b.core->last_seq();
    CHECK(last >= 7);
    b.online = true;
    b.core->on_connected();
    const auto* reg = std::get_if<wire::Register>(&b.sent.at(0));
    REQUIRE(reg != nullptr);
    CHECK(reg->epoch == first_epoch);
    CHECK(reg->last_seq == last);
    wire::Welcome w;
    w.asset = b.settings.asset;
    w.telemetry_s = 1.0;
    w.heartbeat_s = 30.0;
    w.ack_seq = 2;
    b.core->on_message(w);
    std::vector<std::uint64_t> seqs;
    for (const auto& t : b.sent_telemetry()) {
        CHECK(t.epoch == first_epoch);
        seqs.push_back(t.seq);
    }
    // 3..last resent, then the new run's first record right after.
    CHECK(seqs == range(3, last + 1));
}
