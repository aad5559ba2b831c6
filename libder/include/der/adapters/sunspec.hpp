#pragma once
/// SunSpec discovery (the `SunS` marker and model chain) and the register
/// offsets the `modbus` adapter uses (models 1, 101-103, 124). No I/O of its
/// own: registers are read through a function, so the walk is testable.

#include "der/util/error.hpp"

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace der::adapters::sunspec {

/// Where the `SunS` marker may be, tried in this order.
inline constexpr std::uint16_t k_bases[] = {40000, 0, 50000};
inline constexpr std::uint16_t k_marker_hi = 0x5375;  // "Su"
inline constexpr std::uint16_t k_marker_lo = 0x6e53;  // "nS"
inline constexpr std::uint16_t k_end_id = 0xffff;
inline constexpr std::size_t k_max_models = 128;

struct ModelRef {
    std::uint16_t id = 0;
    std::uint16_t address = 0;  ///< of the model's ID register; data starts at address + 2
    std::uint16_t length = 0;   ///< registers of data (the L register)
    [[nodiscard]] std::uint16_t data() const { return static_cast<std::uint16_t>(address + 2); }
};

struct Chain {
    std::uint16_t base = 0;  ///< address of the marker
    std::vector<ModelRef> models;
    [[nodiscard]] const ModelRef* find(std::uint16_t id) const;
    /// `1 (40002, 66), 103 (40070, 50), ...` for log lines.
    [[nodiscard]] std::string describe() const;
};

/// Reads `count` holding registers from `address`.
using ReadFn = std::function<Result<std::vector<std::uint16_t>>(std::uint16_t address, int count)>;

/// Finds the marker at `base` (or at each of k_bases) and walks the chain to
/// the end model (0xFFFF). Errors: Errc::unavailable when no base answers,
/// Errc::decode for a broken chain (too long, past the address space).
Result<Chain> discover(const ReadFn& read, std::optional<std::uint16_t> base = std::nullopt);

/// Model 1 (common): offsets into its data.
namespace common {
inline constexpr std::uint16_t id = 1;
inline constexpr int manufacturer = 0;  ///< string, 16 registers
inline constexpr int model = 16;        ///< string, 16 registers
inline constexpr int serial = 48;       ///< string, 16 registers
}  // namespace common

/// Models 101, 102, 103 (inverter, int16 + scale factors): offsets into the data.
namespace inverter {
inline constexpr std::uint16_t ids[] = {101, 102, 103};
inline constexpr int w = 12;  ///< AC power, W, positive = export (discharge)
inline constexpr int w_sf = 13;
inline constexpr int st = 36;  ///< operating state; 7 = FAULT
inline constexpr std::uint16_t st_fault = 7;
}  // namespace inverter

/// Model 124 (storage): offsets into the data (length 24).
namespace storage {
inline constexpr std::uint16_t id = 124;
inline constexpr int length = 24;
inline constexpr int w_cha_max = 0;  ///< W, sf w_cha_max_sf
inline constexpr int w_cha_gra = 1;  ///< % WChaMax/s
inline constexpr int w_dis_cha_gra = 2;
inline constexpr int stor_ctl_mod = 3;  ///< bit 0 charge, bit 1 discharge
inline constexpr int va_cha_max = 4;
inline constexpr int min_rsv_pct = 5;  ///< %, sf min_rsv_pct_sf
inline constexpr int cha_state = 6;    ///< SOC %, sf cha_state_sf
inline constexpr int stor_aval = 7;
inline constexpr int in_bat_v = 8;
inline constexpr int cha_st = 9;      ///< charge status enum
inline constexpr int out_w_rte = 10;  ///< discharge rate, % WChaMax, int16, sf in_out_w_rte_sf
inline constexpr int in_w_rte = 11;   ///< charge rate, % WChaMax, int16
inline constexpr int in_out_w_rte_win_tms = 12;
inline constexpr int in_out_w_rte_rvrt_tms = 13;  ///< s; the device reverts the rates after it
inline constexpr int in_out_w_rte_rmp_tms = 14;
inline constexpr int cha_gri_set = 15;
inline constexpr int w_cha_max_sf = 16;
inline constexpr int w_cha_dis_cha_gra_sf = 17;
inline constexpr int va_cha_max_sf = 18;
inline constexpr int min_rsv_pct_sf = 19;
inline constexpr int cha_state_sf = 20;
inline constexpr int stor_aval_sf = 21;
inline constexpr int in_bat_v_sf = 22;
inline constexpr int in_out_w_rte_sf = 23;
inline constexpr std::uint16_t ctl_charge = 1;
inline constexpr std::uint16_t ctl_discharge = 2;
}  // namespace storage

/// A SunSpec string (two ASCII characters a register, NUL padded).
std::string decode_string(const std::vector<std::uint16_t>& words);

}  // namespace der::adapters::sunspec
