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
    std::function<std::optional<Dispatch>(const Uuid&)> find_dispatch;
    std::function<std::vector<Dispatch>(const DispatchQuery&)> dispatch_history;
    std::function<Result<HistoryPage<Telemetry>>(const Uuid&, const HistoryQuery&)> telemetry_history;
    std::function<Result<HistoryPage<Heartbeat>>(const Uuid&, const HistoryQuery&)> heartbeat_history;
};

}  // namespace der::hub
