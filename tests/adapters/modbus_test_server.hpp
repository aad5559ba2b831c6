#pragma once
/// A Modbus TCP server that behaves like a tiny battery, for the modbus
/// adapter's tests (libmodbus in server mode, one thread). Holding
/// registers 40000..40399; the registers can be read and changed by the
/// test while the server runs, and the server can be stopped and started
/// again on the same port.
///
/// Plain layout (k_plain_*): SOC % ×0.1 at 40100 (uint16), power at 40101
/// (int16, kW × 10^sf), setpoint at 40200 (int16, kW × 10^sf), the shared
/// scale factor at 40110 (int16), revert timeout at 40210 (uint16, s), a
/// fault register at 40120. A write to the setpoint makes the power follow
/// at once.
///
/// SunSpec layout: "SunS" at 40000, model 1 (L 66) at 40002, model 103
/// (L 50) at 40070, model 124 (L 24) at 40122, end marker at 40148.
/// WChaMax 2 MW (20000 × 10^2 W), ChaState 50.0 % (500 × 10^-1),
/// InOutWRte_SF -2; the inverter's W (W_SF 2) follows OutWRte/InWRte and
/// StorCtl_Mod after every write.

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>

namespace der::test {

enum class ModbusLayout { plain, sunspec };

inline constexpr std::uint16_t k_plain_soc = 40100;
inline constexpr std::uint16_t k_plain_power = 40101;
inline constexpr std::uint16_t k_plain_sf = 40110;
inline constexpr std::uint16_t k_plain_fault = 40120;
inline constexpr std::uint16_t k_plain_setpoint = 40200;
inline constexpr std::uint16_t k_plain_revert = 40210;

inline constexpr std::uint16_t k_sunspec_base = 40000;
inline constexpr std::uint16_t k_sunspec_inverter = 40070;  ///< model 103's ID register
inline constexpr std::uint16_t k_sunspec_storage = 40122;   ///< model 124's ID register
/// Address of a model-124 field (offset into its data, der/adapters/sunspec.hpp).
constexpr std::uint16_t storage_reg(int offset) {
    return static_cast<std::uint16_t>(k_sunspec_storage + 2 + offset);
}
constexpr std::uint16_t inverter_reg(int offset) {
    return static_cast<std::uint16_t>(k_sunspec_inverter + 2 + offset);
}

class ModbusTestServer {
public:
    /// Listens on 127.0.0.1:`port` (0 = a free one) and serves at once.
    explicit ModbusTestServer(ModbusLayout layout, int port = 0);
    ~ModbusTestServer();
    ModbusTestServer(const ModbusTestServer&) = delete;
    ModbusTestServer& operator=(const ModbusTestServer&) = delete;

    [[nodiscard]] int port() const;
    /// Closes the listening socket and every connection; registers are kept.
    void stop();
    /// Listens again on the same port.
    void start();
    [[nodiscard]] bool running() const;

    [[nodiscard]] std::uint16_t get(std::uint16_t address) const;
    void set(std::uint16_t address, std::uint16_t value);
    /// How many write requests have covered `address`.
    [[nodiscard]] int writes_to(std::uint16_t address) const;
    /// Requests served so far.
    [[nodiscard]] int requests() const;

private:
    struct Impl;
    std::unique_ptr<Impl> m_impl;
};

}  // namespace der::test
