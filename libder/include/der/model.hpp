#pragma once
/// The data model of der (DESIGN.md, "Data model"). Depends on nothing but
/// the util helpers.
///
/// Power sign, stated once for the whole code base:
///   positive MW = discharge (export to the grid),
///   negative MW = charge (import from the grid).
/// `max_mw` (>= 0) is the discharge limit, `min_mw` (<= 0) the charge limit.
///
/// Instants are `TimestampMs` (Unix milliseconds, UTC); durations are seconds.

#include "der/util/time.hpp"
#include "der/util/uuid.hpp"

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace der {

inline constexpr int k_protocol_version = 1;

/// How the agent reaches its device. `kind` selects the adapter (`sim`,
/// later `exec`, `modbus`); `options` are that adapter's own settings as
/// strings, validated by the adapter.
struct AdapterConfig {
    std::string kind = "sim";
    std::map<std::string, std::string> options;
    friend bool operator==(const AdapterConfig&, const AdapterConfig&) = default;
};

/// The physical limits of a battery, in the units of their names.
struct BessLimits {
    double capacity_mwh = 0.0;
    double max_mw = 0.0;         ///< discharge limit, >= 0
    double min_mw = 0.0;         ///< charge limit, <= 0
    double ramp_mw_per_s = 0.0;  ///< 0 = no ramp limit (the device follows at once)
    double efficiency = 1.0;     ///< round trip, (0, 1]
    double soc_min_pct = 0.0;
    double soc_max_pct = 100.0;
    friend bool operator==(const BessLimits&, const BessLimits&) = default;
};

/// The stricter of two sets of limits (smaller power and SOC window, the
/// larger minimum SOC, lower ramp, lower efficiency is kept as the device's own).
BessLimits stricter(const BessLimits& a, const BessLimits& b);

struct Asset {
    Uuid id;
    std::string name;  ///< unique within its site
    Uuid site_id;
    std::string site_name;
    std::string kind = "bess";
    BessLimits limits;
    double initial_soc_pct = 50.0;
    AdapterConfig adapter;
    std::string agent_public_key;  ///< Z85 CURVE key, empty = none
    bool available = true;         ///< false while in maintenance

    /// `site/asset`, the name users type.
    [[nodiscard]] std::string qualified_name() const { return site_name + "/" + name; }
    friend bool operator==(const Asset&, const Asset&) = default;
};

struct Site {
    Uuid id;
    std::string name;
    std::string timezone;  ///< IANA name, may be empty
    std::vector<Asset> assets;
    friend bool operator==(const Site&, const Site&) = default;
};

enum class AssetStatus { idle, charging, discharging, soc_limit, fault };

std::string_view to_string(AssetStatus status) noexcept;
std::optional<AssetStatus> parse_asset_status(std::string_view text) noexcept;

struct Telemetry {
    Uuid asset_id;
    Uuid site_id;
    Uuid epoch;               ///< UUIDv7 of the agent's run (see protocol)
    std::uint64_t seq = 0;    ///< 1, 2, ... within an epoch
    TimestampMs ts = 0;
    double soc_mwh = 0.0;
    double soc_pct = 0.0;
    double capacity_mwh = 0.0;
    double current_mw = 0.0;
    double setpoint_mw = 0.0;
    double max_mw = 0.0;
    double min_mw = 0.0;
    AssetStatus status = AssetStatus::idle;
    std::optional<Uuid> dispatch_id;  ///< the dispatch in force
    friend bool operator==(const Telemetry&, const Telemetry&) = default;
};

struct Heartbeat {
    Uuid asset_id;
    TimestampMs ts = 0;
    double uptime_s = 0.0;
    std::uint64_t buffered = 0;  ///< telemetry records not yet acknowledged
    std::string agent_version;
    friend bool operator==(const Heartbeat&, const Heartbeat&) = default;
};

/// Dispatch lifecycle. `scheduled` -> `queued` (agent offline) -> `sent` ->
/// `applied` | `rejected` | `failed`; later `expired`, `superseded`, `cancelled`.
enum class DispatchState {
    scheduled,
    queued,
    sent,
    applied,
    rejected,
    failed,
    expired,
    superseded,
    cancelled,
};
inline constexpr std::size_t k_dispatch_state_count = 9;

std::string_view to_string(DispatchState state) noexcept;
std::optional<DispatchState> parse_dispatch_state(std::string_view text) noexcept;
/// States from which a dispatch never moves again.
bool is_final(DispatchState state) noexcept;

struct Dispatch {
    Uuid dispatch_id;  ///< UUIDv7
    Uuid asset_id;
    double mw = 0.0;
    std::optional<double> duration_s;  ///< nil = until replaced
    std::string reason;
    std::string requested_by;
    TimestampMs created_at = 0;
    std::optional<TimestampMs> start_at;  ///< held by the hub until then
    std::optional<Uuid> parent_id;        ///< site dispatch this one belongs to
    DispatchState state = DispatchState::queued;
    /// When each state was entered (index = DispatchState); nil = never.
    std::array<std::optional<TimestampMs>, k_dispatch_state_count> state_at{};
    std::string error;  ///< why it was rejected or failed

    void enter(DispatchState next, TimestampMs at) {
        state = next;
        state_at[static_cast<std::size_t>(next)] = at;
    }
    friend bool operator==(const Dispatch&, const Dispatch&) = default;
};

/// What the hub tells an agent to do.
struct Setpoint {
    Uuid dispatch_id;
    double mw = 0.0;
    std::optional<double> remaining_s;  ///< nil = until replaced
    TimestampMs issued_at = 0;
    friend bool operator==(const Setpoint&, const Setpoint&) = default;
};

}  // namespace der
