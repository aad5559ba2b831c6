#pragma once
/// Modbus register values and the `modbus` adapter's register map
/// (docs/adapters.md, "Register map"). Pure functions: no I/O, testable
/// without a device.
///
/// Addresses are protocol (0-based) holding-register addresses, as libmodbus
/// and SunSpec use them (`40000` is the register some manuals call 40001).
/// 32-bit values span two registers; `big` word order puts the high word
/// first (Modbus convention, SunSpec), `little` the low word first.

#include "der/util/error.hpp"

#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace der::adapters::modbus {

enum class RegisterType { uint16, int16, uint32, int32, float32 };
enum class WordOrder { big, little };

std::optional<RegisterType> parse_register_type(std::string_view text);
std::string_view to_string(RegisterType type);
/// 1 or 2.
int register_count(RegisterType type);

/// The raw value of `words` (register_count(type) of them) as a double.
double decode(std::span<const std::uint16_t> words, RegisterType type, WordOrder order);
/// `value` rounded (integers) into registers. Errc::invalid_argument when it
/// does not fit the type or is not finite.
Result<std::vector<std::uint16_t>> encode(double value, RegisterType type, WordOrder order);

/// A SunSpec-style scale factor: an int16 power of ten. Values outside
/// [-10, 10] (including "not implemented" 0x8000) are refused.
Result<int> decode_scale_factor(std::uint16_t word);
/// `raw * scale * 10^sf`.
double scaled(double raw, double scale, int scale_factor);

/// One quantity of the map.
struct RegisterSpec {
    std::uint16_t address = 0;
    RegisterType type = RegisterType::uint16;
    WordOrder order = WordOrder::big;
    double scale = 1.0;                           ///< fixed multiplier
    std::optional<std::uint16_t> scale_register;  ///< int16 power of ten, re-read every cycle
    double unit_mw = 1.0;  ///< power/energy: MW (MWh) per unit of the scaled value (W = 1e-6)
    bool invert = false;   ///< the register counts charge as positive

    /// Engineering value (MW, MWh, %, s) of a raw register value and scale factor.
    [[nodiscard]] double to_value(double raw, int scale_factor) const;
    /// Raw register value for an engineering value.
    [[nodiscard]] double to_raw(double value, int scale_factor) const;
};

/// The register map of a plain (non-SunSpec) device. Each field is optional
/// in the map; the adapter says which ones it needs.
struct RegisterMap {
    std::optional<RegisterSpec> soc_pct;
    std::optional<RegisterSpec> soc_mwh;
    std::optional<RegisterSpec> current_mw;
    std::optional<RegisterSpec> setpoint_mw;     ///< written; also read back
    std::optional<RegisterSpec> revert_timeout;  ///< seconds, written with every setpoint
    std::optional<RegisterSpec> fault;           ///< non-zero = fault
    std::optional<RegisterSpec> max_discharge_mw;
    std::optional<RegisterSpec> max_charge_mw;  ///< a magnitude (>= 0)
};

/// The fields a map may name, as in `map.<field>.address`.
inline constexpr std::string_view k_map_fields[] = {"soc_pct",          "soc_mwh",        "current_mw",
                                                    "setpoint_mw",      "revert_timeout", "fault",
                                                    "max_discharge_mw", "max_charge_mw"};

}  // namespace der::adapters::modbus
