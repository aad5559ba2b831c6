#include "der/store/pg_connection.hpp"

#include <fmt/core.h>
#include <libpq-fe.h>

#include "der/util/log.hpp"

#include <charconv>
#include <limits>
#include <stdexcept>
#include <string_view>

namespace der::store {

namespace {

std::string trimmed(std::string message) {
    while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) message.pop_back();
    return message;
}

std::string conn_error(const PGconn* conn) { return trimmed(PQerrorMessage(conn)); }

/// SQLSTATE classes after which the same statement may succeed later.
bool transient_sqlstate(std::string_view state) {
    if (state.size() != 5) return false;
    const auto cls = state.substr(0, 2);
    return cls == "08" || cls == "53" || cls == "40" || state.starts_with("57P") || state == "55P03";
}

bool data_sqlstate(std::string_view state) {
    return state.starts_with("22") || state.starts_with("23");
}

/// The Error for a result that is not what the caller wanted (res may be null).
Error classify(PGconn* conn, const PGresult* res) {
    if (PQstatus(conn) != CONNECTION_OK)
        return {Errc::unavailable, "PostgreSQL connection lost: " + conn_error(conn)};
    if (res == nullptr) return {Errc::unavailable, "PostgreSQL: " + conn_error(conn)};
    const char* raw_state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    const std::string state = raw_state != nullptr ? raw_state : "";
    std::string message = trimmed(PQresultErrorMessage(res));
    if (message.starts_with("ERROR:  ")) message.erase(0, 8);
    const std::string text = fmt::format("SQL failed ({}): {}", state.empty() ? "?" : state, message);
    if (transient_sqlstate(state)) return {Errc::unavailable, text};
    if (data_sqlstate(state)) return {Errc::refused, text};
    return {Errc::internal, text};
}

bool success(const PGresult* res) {
    const auto status = PQresultStatus(res);
    return status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK;
}

}  // namespace

// --- Rows ----------------------------------------------------------------------

void Rows::Clear::operator()(pg_result* res) const { PQclear(res); }

int Rows::size() const { return m_res ? PQntuples(m_res.get()) : 0; }

bool Rows::is_null(int row, int col) const { return PQgetisnull(m_res.get(), row, col) != 0; }

std::string_view Rows::text(int row, int col) const {
    return {PQgetvalue(m_res.get(), row, col), static_cast<std::size_t>(PQgetlength(m_res.get(), row, col))};
}

std::int64_t Rows::i64(int row, int col) const {
    const auto t = text(row, col);
    std::int64_t value = 0;
    const auto r = std::from_chars(t.data(), t.data() + t.size(), value);
    if (r.ec != std::errc{} || r.ptr != t.data() + t.size())
        throw std::runtime_error(fmt::format("column {} is not an integer: '{}'", col, t));
    return value;
}

double Rows::f64(int row, int col) const {
    const auto t = text(row, col);
    if (t == "NaN") return std::numeric_limits<double>::quiet_NaN();
    if (t == "Infinity") return std::numeric_limits<double>::infinity();
    if (t == "-Infinity") return -std::numeric_limits<double>::infinity();
    double value = 0;
    const auto r = std::from_chars(t.data(), t.data() + t.size(), value);
    if (r.ec != std::errc{} || r.ptr != t.data() + t.size())
        throw std::runtime_error(fmt::format("column {} is not a number: '{}'", col, t));
    return value;
}

std::optional<std::int64_t> Rows::opt_i64(int row, int col) const {
    if (is_null(row, col)) return std::nullopt;
    return i64(row, col);
}

std::optional<double> Rows::opt_f64(int row, int col) const {
    if (is_null(row, col)) return std::nullopt;
    return f64(row, col);
}

// --- Connection ------------------------------------------------------------------

void Connection::Closer::operator()(pg_conn* conn) const { PQfinish(conn); }

Result<Connection> Connection::open(const std::string& conninfo) {
    // Our defaults first, then the caller's string expanded in place of
    // dbname: later keywords win, so the caller's settings override ours; an
    // empty value is skipped, so PG* environment variables still apply.
    const char* keys[] = {"connect_timeout", "application_name", "dbname", nullptr};
    const char* values[] = {"5", "der", conninfo.c_str(), nullptr};
    PGconn* raw = PQconnectdbParams(keys, values, 1);
    if (raw == nullptr) return fail(Errc::internal, "libpq could not allocate a connection");
    Connection conn{raw};
    if (PQstatus(raw) != CONNECTION_OK)
        return fail(Errc::unavailable, "cannot connect to PostgreSQL: " + conn_error(raw));
    // Server NOTICEs ("relation ... already exists, skipping") are not ours to print.
    PQsetNoticeProcessor(
        raw, [](void*, const char* message) { log::debug("database: {}", trimmed(message)); }, nullptr);
    return conn;
}

bool Connection::ok() const { return m_conn && PQstatus(m_conn.get()) == CONNECTION_OK; }

int Connection::server_version() const { return PQserverVersion(m_conn.get()); }

Result<void> Connection::exec(const std::string& sql) {
    // PQexec returns the last result of a multi-statement string; an error
    // stops the string there, so checking the last one is enough.
    Rows res{PQexec(m_conn.get(), sql.c_str())};
    if (!res.m_res || !success(res.m_res.get())) return std::unexpected(classify(m_conn.get(), res.m_res.get()));
    return {};
}

Result<Rows> Connection::query(const std::string& sql, const Params& params) {
    std::vector<const char*> values;
    values.reserve(params.size());
    for (const auto& p : params) values.push_back(p ? p->c_str() : nullptr);
    Rows res{PQexecParams(m_conn.get(), sql.c_str(), static_cast<int>(values.size()), nullptr, values.data(),
                          nullptr, nullptr, 0)};
    if (!res.m_res || !success(res.m_res.get())) return std::unexpected(classify(m_conn.get(), res.m_res.get()));
    return res;
}

Result<std::string> Connection::query_value(const std::string& sql, const Params& params) {
    auto rows = query(sql, params);
    if (!rows) return std::unexpected(rows.error());
    if (rows->empty() || PQnfields(rows->m_res.get()) == 0 || rows->is_null(0, 0)) return std::string();
    return std::string(rows->text(0, 0));
}

Result<void> Connection::copy_in(const std::string& copy_sql, std::string_view data) {
    PGconn* conn = m_conn.get();
    {
        Rows start{PQexec(conn, copy_sql.c_str())};
        if (!start.m_res || PQresultStatus(start.m_res.get()) != PGRES_COPY_IN)
            return std::unexpected(classify(conn, start.m_res.get()));
    }
    constexpr std::size_t k_chunk = 1 << 20;
    bool sent = true;
    for (std::size_t at = 0; at < data.size() && sent; at += k_chunk) {
        const auto part = data.substr(at, k_chunk);
        sent = PQputCopyData(conn, part.data(), static_cast<int>(part.size())) == 1;
    }
    if (!sent || PQputCopyEnd(conn, nullptr) != 1) {
        // Drain whatever results are pending so the connection is reusable (or found dead).
        while (PGresult* r = PQgetResult(conn)) PQclear(r);
        return fail(Errc::unavailable, "PostgreSQL COPY failed: " + conn_error(conn));
    }
    Error error;
    bool failed = false;
    while (PGresult* r = PQgetResult(conn)) {
        Rows res{r};
        if (!failed && PQresultStatus(r) != PGRES_COMMAND_OK) {
            error = classify(conn, r);
            failed = true;
        }
    }
    if (failed) return std::unexpected(error);
    return {};
}

// --- Transaction -----------------------------------------------------------------

Result<Transaction> Transaction::begin(Connection& conn) {
    if (auto r = conn.exec("BEGIN"); !r) return std::unexpected(r.error());
    return Transaction{conn};
}

Transaction::~Transaction() {
    if (m_conn != nullptr && m_conn->ok()) (void)m_conn->exec("ROLLBACK");
}

Result<void> Transaction::commit() {
    Connection* conn = m_conn;
    m_conn = nullptr;  // whatever happens, the transaction is over
    if (conn == nullptr) return fail(Errc::internal, "commit of a finished transaction");
    return conn->exec("COMMIT");
}

// --- COPY text -------------------------------------------------------------------

namespace copy_text {

void field(std::string& out, std::string_view text) {
    for (const char c : text) {
        switch (c) {
        case '\\': out += "\\\\"; break;
        case '\t': out += "\\t"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\0': break;  // PostgreSQL text cannot hold NUL
        default: out.push_back(c);
        }
    }
}

void field(std::string& out, double value) {
    // Shortest round-trip form; PostgreSQL reads nan/inf/-inf as NaN/Infinity.
    fmt::format_to(std::back_inserter(out), "{}", value);
}

void field(std::string& out, std::int64_t value) { fmt::format_to(std::back_inserter(out), "{}", value); }
void field(std::string& out, std::uint64_t value) { fmt::format_to(std::back_inserter(out), "{}", value); }

void field(std::string& out, const Uuid& value) {
    static constexpr char k_hex[] = "0123456789abcdef";
    const auto& b = value.bytes();
    for (std::size_t i = 0; i < b.size(); ++i) {
        if (i == 4 || i == 6 || i == 8 || i == 10) out.push_back('-');
        out.push_back(k_hex[b[i] >> 4]);
        out.push_back(k_hex[b[i] & 0x0f]);
    }
}

void timestamp_ms(std::string& out, std::int64_t unix_ms) {
    // Days to civil date: H. Hinnant's days_from_civil inverse (proleptic
    // Gregorian, exact for any day count), no gmtime_r (glibc locks there).
    const std::int64_t ms_per_day = 86'400'000;
    std::int64_t days = unix_ms / ms_per_day, in_day = unix_ms % ms_per_day;
    if (in_day < 0) in_day += ms_per_day, --days;
    days += 719'468;
    const std::int64_t era = (days >= 0 ? days : days - 146'096) / 146'097;
    const std::int64_t doe = days - era * 146'097;
    const std::int64_t yoe = (doe - doe / 1460 + doe / 36'524 - doe / 146'096) / 365;
    const std::int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const std::int64_t mp = (5 * doy + 2) / 153;
    const std::int64_t day = doy - (153 * mp + 2) / 5 + 1;
    const std::int64_t month = mp < 10 ? mp + 3 : mp - 9;
    const std::int64_t year = yoe + era * 400 + (month <= 2 ? 1 : 0);
    const std::int64_t secs = in_day / 1000;
    fmt::format_to(std::back_inserter(out), "{:04}-{:02}-{:02} {:02}:{:02}:{:02}.{:03}+00", year, month, day,
                   secs / 3600, secs / 60 % 60, secs % 60, in_day % 1000);
}

void null(std::string& out) { out += "\\N"; }

}  // namespace copy_text

std::string quote_literal(std::string_view text) {
    std::string out = "'";
    for (const char c : text) {
        if (c == '\'') out += "''";
        else if (c != '\0') out.push_back(c);
    }
    out += "'";
    return out;
}

}  // namespace der::store
