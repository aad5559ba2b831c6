#pragma once
/// What other threads may ask of the event loop. Every function here runs
/// ON THE LOOP THREAD only: callers post a closure that calls it to the
/// Mailbox (RestServer::Impl::on_loop) and wait for the result.

#include "memory_history.hpp"

#include "der/model.hpp"

#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace der::hub {

struct DispatchCommand {
    std::string asset;  ///< UUID or `site/asset`
    double mw = 0.0;
    std::optional<double> duration_s;
    std::string reason;
    std::string requested_by;
    std::optional<TimestampMs> start_at;  ///< held by the hub (`scheduled`) until then
    /// REST bodies with both `asset` and `asset_id`: the other spelling, which
    /// must name the same asset (one may be the name, the other the UUID).
    std::string same_asset_as;
};

struct SiteDispatchCommand {
    std::string site;  ///< UUID or name
    double mw = 0.0;
    std::optional<double> duration_s;
    std::string reason;
    std::string requested_by;
    std::optional<TimestampMs> start_at;
};

struct SiteDispatchResult {
    Dispatch parent;
    std::vector<Dispatch> children;
};

struct StopCommand {
    std::string site;  ///< empty = every asset of the hub
    std::string reason;
    std::string requested_by;
};

struct StopResult {
    std::size_t assets = 0;     ///< assets told to go to 0 MW
    std::size_t cancelled = 0;  ///< dispatches cancelled
};

/// An operator action, kept for the audit trail (GET /audit).
struct AuditEntry {
    TimestampMs ts = 0;
    std::string action;  ///< dispatch, site_dispatch, cancel, stop, availability
    std::string target;  ///< asset, site or dispatch
    std::string reason;
    std::string requested_by;
    std::string detail;
};

struct DispatchQuery {
    std::optional<Uuid> asset_id;
    std::optional<TimestampMs> since;
    std::optional<TimestampMs> until;
    std::optional<DispatchState> state;
    std::size_t limit = 1000;
};

struct LoopApi {
    /// Errc::not_found (unknown asset), Errc::refused (outside the limits,
    /// unavailable asset) or Errc::invalid_argument (bad value).
    std::function<Result<Dispatch>(const DispatchCommand&)> create_dispatch;
    std::function<Result<SiteDispatchResult>(const SiteDispatchCommand&)> create_site_dispatch;
    /// Errc::not_found, or Errc::refused when already over.
    std::function<Result<Dispatch>(const Uuid&, const std::string& reason, const std::string& by)> cancel_dispatch;
    std::function<Result<StopResult>(const StopCommand&)> stop;
    std::function<Result<Asset>(const std::string& asset, bool available, const std::string& reason,
                                const std::string& by)>
        set_availability;
    std::function<std::vector<AuditEntry>(std::size_t limit)> audit;
    std::function<std::vector<Dispatch>(const Uuid& parent)> children;
    std::function<std::optional<Dispatch>(const Uuid&)> find_dispatch;
    /// With a database: a dispatch the hub no longer holds (ended before a
    /// restart, or dropped from memory), read on the REST worker; empty without.
    std::function<Result<std::optional<Dispatch>>(const Uuid&)> stored_dispatch;
    /// Errc::unavailable when the database cannot answer (history_off_loop).
    std::function<Result<std::vector<Dispatch>>(const DispatchQuery&)> dispatch_history;
    std::function<Result<HistoryPage<Telemetry>>(const Uuid&, const HistoryQuery&)> telemetry_history;
    std::function<Result<HistoryPage<Heartbeat>>(const Uuid&, const HistoryQuery&)> heartbeat_history;
    /// With a database: telemetry_history, heartbeat_history and
    /// dispatch_history read PostgreSQL, are safe on any thread and are
    /// called on the REST worker itself, not posted to the loop.
    bool history_off_loop = false;
};

}  // namespace der::hub
