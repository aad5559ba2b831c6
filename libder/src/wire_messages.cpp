#include "der/wire_messages.hpp"

namespace der::wire {

std::string_view to_string(AckStatus status) noexcept {
    return status == AckStatus::applied ? "applied" : "rejected";
}

std::string_view to_string(HistoryKind kind) noexcept {
    switch (kind) {
    case HistoryKind::telemetry: return "telemetry";
    case HistoryKind::dispatch: return "dispatch";
    case HistoryKind::heartbeat: return "heartbeat";
    }
    return "telemetry";
}

std::string_view to_string(QueryKind kind) noexcept {
    switch (kind) {
    case QueryKind::assets: return "assets";
    case QueryKind::agents: return "agents";
    case QueryKind::latest: return "latest";
    }
    return "assets";
}

}  // namespace der::wire
