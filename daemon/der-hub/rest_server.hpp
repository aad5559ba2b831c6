#pragma once
/// The REST API of der-hub (docs/openapi.yaml, routes in rest_routes.hpp).
/// cpp-httplib stays in the .cpp.
/// Reads come from the published Snapshot; anything that needs loop-owned
/// state (history) is posted to the loop's Mailbox and awaited.

#include "loop_api.hpp"
#include "mailbox.hpp"
#include "snapshot.hpp"

#include "der/store/writer.hpp"

#include <functional>

#include <memory>
#include <string>

namespace der::hub {

struct RestContext {
    SnapshotHolder& snapshots;
    LoopHealth& health;
    Mailbox& mailbox;
    LoopApi api;  ///< called only inside tasks run by the loop
    std::size_t threads = 8;
    /// With --db: the database writer's counters (callable from any thread);
    /// empty without a database.
    std::function<store::WriterStats()> db_stats = {};
    /// --api-token-file: the bearer token writes (and, with token_reads,
    /// reads but GET /health) need; empty = none.
    std::string api_token = {};
    bool token_reads = false;
    std::string transport = "plaintext";  ///< /health: "plaintext" or "curve"
};

class RestServer {
public:
    explicit RestServer(RestContext context);
    ~RestServer();
    RestServer(const RestServer&) = delete;
    RestServer& operator=(const RestServer&) = delete;

    /// Binds `host:port` (port 0 = any free port) and starts serving on
    /// worker threads. Errc::unavailable when the address cannot be bound.
    Result<void> start(const std::string& address);
    /// Stops accepting and joins the workers. Idempotent.
    void stop();
    [[nodiscard]] int port() const;

private:
    struct Impl;
    std::unique_ptr<Impl> m_impl;
};

}  // namespace der::hub
