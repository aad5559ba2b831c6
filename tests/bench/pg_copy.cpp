/// der_bench_copy: the PostgreSQL baseline of the ingest benchmark. Plain
/// libpq COPY (text format) of telemetry rows shaped like der's, from
/// --assets assets, straight into the store's `telemetry` table (same
/// indexes and constraints as der-hub writes into), one transaction per
/// --batch rows, for --duration seconds. Prints committed rows/s as JSON.
/// Benchmarks only (tests/bench).

#include "bench_common.hpp"

#include "der/util/uuid.hpp"

#include <fmt/format.h>
#include <libpq-fe.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <string>
#include <vector>

namespace {

bool exec_ok(PGconn* c, const char* sql) {
    PGresult* r = PQexec(c, sql);
    const bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok) std::fprintf(stderr, "error: %s: %s", sql, PQerrorMessage(c));
    PQclear(r);
    return ok;
}

}  // namespace

int main(int argc, char** argv) {
    der::bench::Flags f(argc, argv,
                        "usage: der_bench_copy --conninfo CONNINFO [--assets N] [--batch B] [--duration S]\n"
                        "  --conninfo C   libpq conninfo of a database der-hub has migrated\n"
                        "  --assets N     distinct asset ids, rows round-robin over them (1000)\n"
                        "  --batch B      rows per COPY and transaction (10000)\n"
                        "  --duration S   seconds (10)\n");
    const auto conninfo = f.str("conninfo", "");
    const auto assets = static_cast<std::size_t>(f.num("assets", 1000));
    const auto batch = static_cast<std::size_t>(f.num("batch", 10000));
    const double duration = f.num("duration", 10);
    f.done();
    if (conninfo.empty()) f.fail("--conninfo is required");
    PGconn* c = PQconnectdb(conninfo.c_str());
    if (PQstatus(c) != CONNECTION_OK) {
        std::fprintf(stderr, "error: %s", PQerrorMessage(c));
        return 69;
    }
    struct A {
        std::string id, site, epoch;
        std::uint64_t seq = 0;
    };
    std::vector<A> as(assets);
    const auto site = der::Uuid::v7().to_string();
    for (auto& a : as) {
        a.id = der::Uuid::v7().to_string();
        a.site = site;
        a.epoch = der::Uuid::v7().to_string();
    }
    std::string buf;
    std::uint64_t rows = 0;
    std::size_t rr = 0;
    const auto t0 = der::bench::now_ns();
    const auto end = t0 + static_cast<std::int64_t>(duration * 1e9);
    while (der::bench::now_ns() < end) {
        buf.clear();
        const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
        char stamp[32];
        const std::time_t secs = ms / 1000;
        std::tm tm{};
        gmtime_r(&secs, &tm);
        std::strftime(stamp, sizeof stamp, "%Y-%m-%d %H:%M:%S", &tm);
        for (std::size_t i = 0; i < batch; ++i) {
            A& a = as[rr++ % as.size()];
            fmt::format_to(std::back_inserter(buf),
                           "{}\t{}\t{}\t{}\t{}.{:03}+00\t2\t50\t4\t0.5\t0.5\t2\t-2\tdischarging\t\\N\n", a.id, a.site,
                           a.epoch, ++a.seq, stamp, ms % 1000);
        }
        if (!exec_ok(c, "BEGIN")) return 70;
        PGresult* r = PQexec(c, "COPY telemetry (asset_id, site_id, epoch, seq, ts, soc_mwh, soc_pct, capacity_mwh, "
                                "current_mw, setpoint_mw, max_mw, min_mw, status, dispatch_id) FROM STDIN");
        if (PQresultStatus(r) != PGRES_COPY_IN) {
            std::fprintf(stderr, "error: COPY: %s", PQerrorMessage(c));
            return 70;
        }
        PQclear(r);
        if (PQputCopyData(c, buf.data(), static_cast<int>(buf.size())) != 1 || PQputCopyEnd(c, nullptr) != 1) {
            std::fprintf(stderr, "error: COPY data: %s", PQerrorMessage(c));
            return 70;
        }
        r = PQgetResult(c);
        if (PQresultStatus(r) != PGRES_COMMAND_OK) {
            std::fprintf(stderr, "error: COPY: %s", PQerrorMessage(c));
            return 70;
        }
        PQclear(r);
        while ((r = PQgetResult(c)) != nullptr) PQclear(r);
        if (!exec_ok(c, "COMMIT")) return 70;
        rows += batch;
    }
    const double s = static_cast<double>(der::bench::now_ns() - t0) / 1e9;
    std::printf(R"({"rows":%llu,"seconds":%.3f,"rows_per_s":%.1f})" "\n", static_cast<unsigned long long>(rows), s,
                static_cast<double>(rows) / s);
    PQfinish(c);
    return 0;
}
