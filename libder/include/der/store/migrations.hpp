#pragma once
/// Versioned schema migrations of der's database (docs/database.md).
///
/// The SQL is compiled into the library (no install paths). Each migration
/// runs in its own transaction and is recorded in
/// `schema_migrations(version, name, applied_at)`. A session advisory lock
/// serialises hubs that start together against one database.

#include "der/store/pg_connection.hpp"

namespace der::store {

/// The newest schema version this build knows.
int latest_schema_version() noexcept;

struct MigrationOutcome {
    int from_version = 0;  ///< 0 = empty database
    int to_version = 0;
    [[nodiscard]] bool changed() const { return from_version != to_version; }
};

/// Brings the schema up to latest_schema_version(). Idempotent.
/// Errc::config when the database already holds a newer schema than this
/// build knows (the message names both versions); Errc::unavailable when the
/// server went away.
Result<MigrationOutcome> migrate(Connection& conn);

/// The version recorded in the database (0 when none).
Result<int> schema_version(Connection& conn);

}  // namespace der::store
