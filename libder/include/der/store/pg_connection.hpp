#pragma once
/// A PostgreSQL connection (libpq), owned by one thread at a time, and the
/// few helpers der's store is built from: parameterised queries, COPY FROM
/// STDIN, a transaction guard. libpq's own headers stay in the .cpp.
///
/// Errors: every call returns der::Result. The code says what a caller can
/// do about it:
///   Errc::unavailable  the connection is gone or the server cannot serve now
///                      (SQLSTATE classes 08, 53, 57P, 40 and a dead socket):
///                      reconnect and retry later;
///   Errc::refused      the server refused the data (classes 22 and 23: a
///                      data exception or a constraint): retrying never helps;
///   Errc::internal     anything else (a bug in the SQL, a permission).
/// Messages carry the SQLSTATE: `SQL failed (23514): new row ... violates ...`.

#include "der/util/error.hpp"
#include "der/util/uuid.hpp"

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

struct pg_conn;
struct pg_result;

namespace der::store {

/// A text-format query parameter; nil = SQL NULL.
using Param = std::optional<std::string>;
using Params = std::vector<Param>;

/// The rows of a query, text format. Owns the libpq result.
class Rows {
public:
    Rows() = default;
    [[nodiscard]] int size() const;
    [[nodiscard]] bool empty() const { return size() == 0; }
    [[nodiscard]] bool is_null(int row, int col) const;
    /// The value as text ("" for NULL).
    [[nodiscard]] std::string_view text(int row, int col) const;
    /// Typed readers; throw std::runtime_error on a value of the wrong form
    /// (a programming error: the SQL chose the column types).
    [[nodiscard]] std::int64_t i64(int row, int col) const;
    [[nodiscard]] double f64(int row, int col) const;
    [[nodiscard]] std::optional<std::int64_t> opt_i64(int row, int col) const;
    [[nodiscard]] std::optional<double> opt_f64(int row, int col) const;

private:
    friend class Connection;
    struct Clear {
        void operator()(pg_result* res) const;
    };
    explicit Rows(pg_result* res) : m_res(res) {}
    std::unique_ptr<pg_result, Clear> m_res;
};

class Connection {
public:
    /// `conninfo` is a URI or key=value string; empty uses the PG* environment
    /// (and libpq's defaults). der adds `connect_timeout=5` and
    /// `application_name=der` unless the string sets them.
    /// Errc::unavailable when the server cannot be reached.
    static Result<Connection> open(const std::string& conninfo);

    /// Runs one or more statements that return no rows (simple protocol).
    Result<void> exec(const std::string& sql);
    /// Runs one statement with text parameters ($1, $2, ...).
    Result<Rows> query(const std::string& sql, const Params& params = {});
    /// Runs a query and returns the first column of the first row ("" when none).
    Result<std::string> query_value(const std::string& sql, const Params& params = {});

    /// `COPY ... FROM STDIN` (text format) with `data` as the whole input.
    Result<void> copy_in(const std::string& copy_sql, std::string_view data);

    [[nodiscard]] bool ok() const;
    [[nodiscard]] pg_conn* native() const { return m_conn.get(); }
    /// Server version as an integer (150004 for 15.4).
    [[nodiscard]] int server_version() const;

private:
    struct Closer {
        void operator()(pg_conn* conn) const;
    };
    explicit Connection(pg_conn* conn) : m_conn(conn) {}
    std::unique_ptr<pg_conn, Closer> m_conn;
};

/// BEGIN on construction, ROLLBACK on destruction unless commit() succeeded.
class Transaction {
public:
    static Result<Transaction> begin(Connection& conn);
    Transaction(Transaction&& other) noexcept : m_conn(other.m_conn) { other.m_conn = nullptr; }
    Transaction& operator=(Transaction&&) = delete;
    ~Transaction();
    Result<void> commit();

private:
    explicit Transaction(Connection& conn) : m_conn(&conn) {}
    Connection* m_conn;
};

/// Text-format COPY field writers (tab-separated, `\N` for NULL, backslash
/// escapes for tab, newline, CR and backslash).
namespace copy_text {
void field(std::string& out, std::string_view text);
void field(std::string& out, double value);
void field(std::string& out, std::int64_t value);
void field(std::string& out, std::uint64_t value);
void field(std::string& out, const Uuid& value);  ///< canonical form, no allocation
/// A timestamptz from Unix milliseconds: `2026-11-23 18:46:54.123+00` (UTC,
/// exact to the millisecond; years 1..9999, others are refused by the server).
void timestamp_ms(std::string& out, std::int64_t unix_ms);
void null(std::string& out);
template <class T>
void field(std::string& out, const std::optional<T>& value) {
    if (value) field(out, *value);
    else null(out);
}
/// Ends a field: a tab, or (last) a newline.
inline void sep(std::string& out) { out.push_back('\t'); }
inline void end_row(std::string& out) { out.push_back('\n'); }
}  // namespace copy_text

/// `'text'` quoted as an SQL string literal (standard_conforming_strings on).
std::string quote_literal(std::string_view text);

}  // namespace der::store
