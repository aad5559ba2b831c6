#pragma once
/// A PostgreSQL connection (libpq), owned by one thread at a time.
/// libpq's own headers stay in the .cpp.

#include "der/util/error.hpp"

#include <memory>
#include <string>

struct pg_conn;

namespace der::store {

class Connection {
public:
    /// `conninfo` is a URI or key=value string; empty uses the PG* environment.
    /// Errc::unavailable when the server cannot be reached.
    static Result<Connection> open(const std::string& conninfo);

    /// Runs one or more statements that return no rows.
    Result<void> exec(const std::string& sql);
    /// Runs a query and returns the first column of the first row ("" when none).
    Result<std::string> query_value(const std::string& sql);

    [[nodiscard]] bool ok() const;
    [[nodiscard]] pg_conn* native() const { return m_conn.get(); }

private:
    struct Closer {
        void operator()(pg_conn* conn) const;
    };
    explicit Connection(pg_conn* conn) : m_conn(conn) {}
    std::unique_ptr<pg_conn, Closer> m_conn;
};

}  // namespace der::store
