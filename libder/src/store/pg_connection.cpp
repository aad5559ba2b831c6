#include "der/store/pg_connection.hpp"

#include <libpq-fe.h>

#include <string_view>

namespace der::store {

namespace {

std::string trimmed_error(const PGconn* conn) {
    std::string message = PQerrorMessage(conn);
    while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) message.pop_back();
    return message;
}

}  // namespace

void Connection::Closer::operator()(pg_conn* conn) const { PQfinish(conn); }

Result<Connection> Connection::open(const std::string& conninfo) {
    PGconn* raw = PQconnectdb(conninfo.c_str());
    if (raw == nullptr) return fail(Errc::internal, "libpq could not allocate a connection");
    Connection conn{raw};
    if (PQstatus(raw) != CONNECTION_OK)
        return fail(Errc::unavailable, "cannot connect to PostgreSQL: " + trimmed_error(raw));
    return conn;
}

bool Connection::ok() const { return m_conn && PQstatus(m_conn.get()) == CONNECTION_OK; }

Result<void> Connection::exec(const std::string& sql) {
    PGresult* res = PQexec(m_conn.get(), sql.c_str());
    const auto status = PQresultStatus(res);
    std::string message = PQresultErrorMessage(res);
    PQclear(res);
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
        if (!ok()) return fail(Errc::unavailable, "PostgreSQL connection lost: " + trimmed_error(m_conn.get()));
        return fail(Errc::internal, "SQL failed: " + message);
    }
    return {};
}

Result<std::string> Connection::query_value(const std::string& sql) {
    PGresult* res = PQexec(m_conn.get(), sql.c_str());
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        std::string message = PQresultErrorMessage(res);
        PQclear(res);
        if (!ok()) return fail(Errc::unavailable, "PostgreSQL connection lost: " + trimmed_error(m_conn.get()));
        return fail(Errc::internal, "SQL failed: " + message);
    }
    std::string value;
    if (PQntuples(res) > 0 && PQnfields(res) > 0 && !PQgetisnull(res, 0, 0)) value = PQgetvalue(res, 0, 0);
    PQclear(res);
    return value;
}

}  // namespace der::store
