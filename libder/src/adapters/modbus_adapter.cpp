// Implementation details: the modbus adapter's cycle.
//
//   poll():  not connected and the backoff is over -> connect (bounded by
//            timeout_ms), SunSpec discovery when asked, re-write the setpoint
//            in force; connected -> refresh the setpoint (and revert timer)
//            every max(1 s, revert_s / 3), and one read cycle every
//            read_interval_ms.
//   read cycle (map):     [scale_register] + value for each mapped quantity,
//            the scale factor read right before its value, every cycle.
//   read cycle (SunSpec): model 124's 24 data registers in one request (SOC
//            = ChaState * 10^ChaState_SF, WChaMax, the rates and control mode
//            for the setpoint read back), and W, W_SF .. St of the inverter
//            model (101/102/103) when there is one.
//   setpoint (map):       revert_timeout (if mapped) then setpoint_mw, each
//            with its scale factor read just before.
//   setpoint (SunSpec):   model 124 re-read (WChaMax, InOutWRte_SF), then
//            OutWRte, InWRte, InOutWRte_WinTms = 0, InOutWRte_RvrtTms =
//            revert_s in one write, then StorCtl_Mod: discharge -> OutWRte =
//            mw / WChaMax in %, mode 2; charge -> InWRte, mode 1; 0 MW ->
//            both rates 0, mode 3 (hold at zero).
//   A connection-level failure (timeout, reset, refused) closes the
//   connection and schedules a reconnect; a device exception or an invalid
//   scale factor is a fault on a connection that stays up.

#include "der/adapters/modbus_adapter.hpp"

#include "adapter_options.hpp"

#include "der/adapters/sunspec.hpp"
#include "der/util/log.hpp"

#include <fmt/format.h>
#include <modbus/modbus.h>

#include <algorithm>
#include <cerrno>
#include <cmath>

namespace der::adapters {

using modbus::RegisterSpec;

namespace {

SystemClock& system_clock() {
    static SystemClock clock;
    return clock;
}

/// Reads map.<field>.* into a spec; `units` maps unit names to MW (MWh) per unit.
std::optional<RegisterSpec> read_spec(OptionReader& r, std::string_view field,
                                      std::initializer_list<std::pair<std::string_view, double>> units) {
    const std::string prefix = fmt::format("map.{}.", field);
    if (!r.has_prefix(prefix)) return std::nullopt;
    RegisterSpec spec;
    const auto address = r.integer(prefix + "address", 0, 65535);
    if (!address && !r.has(prefix + "address")) r.error(prefix + "address", "required");
    spec.address = static_cast<std::uint16_t>(address.value_or(0));
    const std::string type =
        r.choice_or(prefix + "type", {"uint16", "int16", "uint32", "int32", "float32"}, "uint16");
    spec.type = *modbus::parse_register_type(type);
    spec.order = r.choice_or(prefix + "word_order", {"big", "little"}, "big") == "little"
                     ? modbus::WordOrder::little
                     : modbus::WordOrder::big;
    if (auto scale = r.number(prefix + "scale")) {
        if (*scale == 0.0) r.error(prefix + "scale", "must not be 0");
        spec.scale = *scale;
    }
    if (auto sf = r.integer(prefix + "scale_register", 0, 65535))
        spec.scale_register = static_cast<std::uint16_t>(*sf);
    if (units.size() > 0) {
        std::vector<std::string_view> names;
        for (const auto& u : units) names.push_back(u.first);
        const auto unit = r.string(prefix + "unit");
        if (unit) {
            const auto it =
                std::find_if(units.begin(), units.end(), [&](const auto& u) { return u.first == *unit; });
            if (it == units.end())
                r.error(prefix + "unit",
                        fmt::format("must be one of {}, got '{}'", fmt::join(names, ", "), *unit));
            else
                spec.unit_mw = it->second;
        } else {
            spec.unit_mw = units.begin()->second;
        }
    }
    spec.invert = r.boolean_or(prefix + "invert", false);
    return spec;
}

}  // namespace

Result<ModbusOptions> parse_modbus_options(const AdapterConfig& config) {
    OptionReader r("modbus", config.options);
    ModbusOptions o;
    o.host = r.string_or("host", "");
    if (o.host.empty()) r.error("host", "required: the device's address (der-agent --modbus HOST:PORT)");
    o.port = static_cast<int>(r.integer_or("port", 1, 65535, o.port));
    o.unit_id = static_cast<int>(r.integer_or("unit_id", 0, 255, o.unit_id));
    o.timeout_ms = r.integer_or("timeout_ms", 10, 2'000, o.timeout_ms);
    o.read_interval_ms = r.integer_or("read_interval_ms", 100, 3'600'000, o.read_interval_ms);
    o.reconnect_min_ms = r.integer_or("reconnect_min_ms", 10, 3'600'000, o.reconnect_min_ms);
    o.reconnect_max_ms = r.integer_or("reconnect_max_ms", 10, 3'600'000, o.reconnect_max_ms);
    if (o.reconnect_max_ms < o.reconnect_min_ms) r.error("reconnect_max_ms", "must be >= reconnect_min_ms");
    o.revert_s = r.integer_or("revert_s", 0, 65535, o.revert_s);
    o.sunspec = r.boolean_or("sunspec", false);
    if (auto base = r.integer("sunspec_base", 0, 65535)) o.sunspec_base = static_cast<std::uint16_t>(*base);

    const std::initializer_list<std::pair<std::string_view, double>> power{
        {"MW", 1.0}, {"kW", 1e-3}, {"W", 1e-6}};
    const std::initializer_list<std::pair<std::string_view, double>> energy{
        {"MWh", 1.0}, {"kWh", 1e-3}, {"Wh", 1e-6}};
    auto& m = o.map;
    m.soc_pct = read_spec(r, "soc_pct", {{"pct", 1.0}});
    m.soc_mwh = read_spec(r, "soc_mwh", energy);
    m.current_mw = read_spec(r, "current_mw", power);
    m.setpoint_mw = read_spec(r, "setpoint_mw", power);
    // One device count is this many seconds (as kW above: one count is 1e-3 MW).
    m.revert_timeout = read_spec(r, "revert_timeout", {{"s", 1.0}, {"ms", 1e-3}, {"min", 60.0}});
    m.fault = read_spec(r, "fault", {});
    m.max_discharge_mw = read_spec(r, "max_discharge_mw", power);
    m.max_charge_mw = read_spec(r, "max_charge_mw", power);
    if (!o.sunspec) {
        if (!m.soc_pct && !m.soc_mwh)
            r.error("map.soc_pct", "a map needs soc_pct or soc_mwh (or sunspec: true)");
        if (!m.setpoint_mw) r.error("map.setpoint_mw", "a map needs setpoint_mw (or sunspec: true)");
    } else if (m.setpoint_mw) {
        r.error("map.setpoint_mw", "not with sunspec: true (the setpoint is model 124's OutWRte/InWRte)");
    }
    if (m.soc_pct && m.soc_mwh) r.error("map.soc_mwh", "give soc_pct or soc_mwh, not both");
    if (auto ok = r.finish(); !ok) return std::unexpected(ok.error());
    return o;
}

// --- Impl ---------------------------------------------------------------------

struct ModbusAdapter::Impl {
    ModbusOptions o;
    BessLimits limits;
    const Clock* clock;
    std::string name;

    modbus_t* ctx = nullptr;
    bool stopped = false;
    std::int64_t backoff_ms;
    std::optional<std::int64_t> reconnect_at_ms;  ///< nil while connected
    std::int64_t next_read_ms = 0;
    std::int64_t next_refresh_ms = 0;
    std::optional<double> commanded;  ///< last setpoint accepted by the adapter

    DeviceState state;
    bool have_reading = false;
    std::string fault;  ///< adapter-side fault (connection, read failure)
    std::optional<sunspec::ModelRef> m124;
    std::optional<sunspec::ModelRef> inverter;
    std::optional<double> device_max_discharge_mw;
    std::optional<double> device_max_charge_mw;  ///< magnitude

    Impl(ModbusOptions opts, const BessLimits& l, const AdapterEnv& env)
        : o(std::move(opts)),
          limits(l),
          clock(env.clock != nullptr ? env.clock : &system_clock()),
          name(env.name),
          backoff_ms(o.reconnect_min_ms),
          reconnect_at_ms(clock->mono_ms()) {
        fault = "not connected yet";
    }

    [[nodiscard]] std::int64_t now() const { return clock->mono_ms(); }
    [[nodiscard]] std::string where() const { return fmt::format("{}:{}", o.host, o.port); }
    [[nodiscard]] std::string tag() const { return name.empty() ? std::string() : " " + name; }
    [[nodiscard]] std::int64_t refresh_ms() const {
        return std::max<std::int64_t>(1'000, o.revert_s * 1'000 / 3);
    }

    void set_fault(std::string why) {
        if (why != fault) log::warn("modbus adapter{}: device fault: {}", tag(), why);
        fault = std::move(why);
    }
    void clear_fault() {
        if (!fault.empty())
            log::info("modbus adapter{}: device {} answers again (was: {})", tag(), where(), fault);
        fault.clear();
    }

    void disconnect(const std::string& why) {
        if (ctx != nullptr) {
            modbus_close(ctx);
            modbus_free(ctx);
            ctx = nullptr;
        }
        set_fault(why);
        if (!stopped) {
            reconnect_at_ms = now() + backoff_ms;
            log::info("modbus adapter{}: reconnecting to {} in {} ms", tag(), where(), backoff_ms);
            backoff_ms = std::min(backoff_ms * 2, o.reconnect_max_ms);
        }
    }

    /// An error from the last libmodbus call: a device exception keeps the
    /// connection (Errc::refused), anything else is the connection's (unavailable).
    Error last_error(std::string_view what) const {
        const int e = errno;
        const bool exception = e > MODBUS_ENOBASE && e < MODBUS_ENOBASE + 64;
        return Error{exception ? Errc::refused : Errc::unavailable,
                     fmt::format("{}: {}", what, modbus_strerror(e))};
    }

    Result<std::vector<std::uint16_t>> read_regs(std::uint16_t address, int count) {
        if (ctx == nullptr) return fail(Errc::unavailable, "not connected");
        std::vector<std::uint16_t> words(static_cast<std::size_t>(count));
        if (modbus_read_registers(ctx, address, count, words.data()) != count)
            return std::unexpected(last_error(fmt::format("reading {} register(s) at {}", count, address)));
        return words;
    }

    Result<void> write_regs(std::uint16_t address, const std::vector<std::uint16_t>& words) {
        if (ctx == nullptr) return fail(Errc::unavailable, "not connected");
        const int n = static_cast<int>(words.size());
        if (modbus_write_registers(ctx, address, n, words.data()) != n)
            return std::unexpected(last_error(fmt::format("writing {} register(s) at {}", n, address)));
        return {};
    }

    Result<int> scale_factor_of(const RegisterSpec& spec) {
        if (!spec.scale_register) return 0;
        auto word = read_regs(*spec.scale_register, 1);
        if (!word) return std::unexpected(word.error());
        auto sf = modbus::decode_scale_factor((*word)[0]);
        if (!sf)
            return fail(Errc::refused, fmt::format("scale-factor register {}: {}", *spec.scale_register,
                                                   sf.error().message));
        return sf;
    }

    Result<double> read_value(const RegisterSpec& spec) {
        auto sf = scale_factor_of(spec);
        if (!sf) return std::unexpected(sf.error());
        auto words = read_regs(spec.address, modbus::register_count(spec.type));
        if (!words) return std::unexpected(words.error());
        return spec.to_value(modbus::decode(*words, spec.type, spec.order), *sf);
    }

    Result<void> write_value(const RegisterSpec& spec, double value, std::string_view what) {
        auto sf = scale_factor_of(spec);
        if (!sf) return std::unexpected(sf.error());
        auto words = modbus::encode(spec.to_raw(value, *sf), spec.type, spec.order);
        if (!words)
            return fail(Errc::invalid_argument, fmt::format("{} {} at register {}: {}", what, value,
                                                            spec.address, words.error().message));
        return write_regs(spec.address, *words);
    }

    /// Handles a failed I/O: disconnect for connection-level errors, fault otherwise.
    void io_failed(const Error& error) {
        if (error.code == Errc::unavailable)
            disconnect(fmt::format("{}: {}", where(), error.message));
        else
            set_fault(fmt::format("{}: {}", where(), error.message));
    }

    // --- connection -------------------------------------------------------

    void connect() {
        reconnect_at_ms.reset();
        ctx = modbus_new_tcp_pi(o.host.c_str(), std::to_string(o.port).c_str());
        if (ctx == nullptr) {
            disconnect(fmt::format("cannot set up a connection to {}: {}", where(), modbus_strerror(errno)));
            return;
        }
        modbus_set_slave(ctx, o.unit_id);
        const auto sec = static_cast<std::uint32_t>(o.timeout_ms / 1000);
        const auto usec = static_cast<std::uint32_t>((o.timeout_ms % 1000) * 1000);
        modbus_set_response_timeout(ctx, sec, usec);
        modbus_set_byte_timeout(ctx, sec, usec);
        if (modbus_connect(ctx) != 0) {
            disconnect(fmt::format("cannot connect to {}: {}", where(), modbus_strerror(errno)));
            return;
        }
        log::info("modbus adapter{}: connected to {} (unit {})", tag(), where(), o.unit_id);
        if (o.sunspec && !discover()) return;
        if (commanded) {
            // Re-sync the setpoint in force (and restart the revert timer).
            if (auto ok = write_setpoint(*commanded); !ok) {
                io_failed(ok.error());
                if (ctx == nullptr) return;
            }
        }
        next_read_ms = now();  // read at once
    }

    bool discover() {
        auto chain =
            sunspec::discover([this](std::uint16_t a, int n) { return read_regs(a, n); }, o.sunspec_base);
        if (!chain) {
            if (chain.error().code == Errc::unavailable)
                disconnect(fmt::format("{}: SunSpec discovery: {}", where(), chain.error().message));
            else
                set_fault(fmt::format("{}: SunSpec discovery: {}", where(), chain.error().message));
            if (ctx != nullptr) disconnect(fault);  // retried after the backoff
            return false;
        }
        m124.reset();
        inverter.reset();
        if (const auto* m = chain->find(sunspec::storage::id);
            m != nullptr && m->length >= sunspec::storage::length)
            m124 = *m;
        for (const auto id : sunspec::inverter::ids) {
            const auto* m = chain->find(id);
            if (m != nullptr && m->length > sunspec::inverter::st) {
                inverter = *m;
                break;
            }
        }
        std::string who;
        if (const auto* common = chain->find(sunspec::common::id);
            common != nullptr && common->length >= 64) {
            auto mn = read_regs(common->data() + sunspec::common::manufacturer, 16);
            auto md = read_regs(common->data() + sunspec::common::model, 16);
            auto sn = read_regs(common->data() + sunspec::common::serial, 16);
            if (mn && md && sn)
                who = fmt::format(" {} {} (serial {})", sunspec::decode_string(*mn),
                                  sunspec::decode_string(*md), sunspec::decode_string(*sn));
        }
        log::info("modbus adapter{}: SunSpec device{} at base {}: models {}", tag(), who, chain->base,
                  chain->describe());
        if (!m124) {
            disconnect(fmt::format("{}: SunSpec device has no storage model 124", where()));
            return false;
        }
        if (!inverter && !o.map.current_mw)
            log::warn(
                "modbus adapter{}: no inverter model (101-103) and no map.current_mw: current_mw reports "
                "the commanded setpoint",
                tag());
        return true;
    }

    // --- read cycle ---------------------------------------------------------

    void read_cycle() {
        auto result = o.sunspec ? read_sunspec() : read_map();
        if (!result) {
            io_failed(result.error());
            return;
        }
        state = *result;
        have_reading = true;
        clear_fault();
    }

    AssetStatus status_of(double current_mw, double soc_pct) const {
        const double setpoint = commanded.value_or(0.0);
        if (setpoint > 0 && soc_pct <= limits.soc_min_pct) return AssetStatus::soc_limit;
        if (setpoint < 0 && soc_pct >= limits.soc_max_pct) return AssetStatus::soc_limit;
        return status_from_power(current_mw);
    }

    void fill_soc(DeviceState& s, std::optional<double> pct, std::optional<double> mwh) const {
        const double capacity = limits.capacity_mwh;
        s.soc_pct = pct ? *pct : (capacity > 0 ? mwh.value_or(0.0) / capacity * 100.0 : 0.0);
        s.soc_mwh = mwh ? *mwh : s.soc_pct / 100.0 * capacity;
    }

    Result<DeviceState> read_map() {
        const auto& m = o.map;
        DeviceState s;
        std::optional<double> pct, mwh;
        if (m.soc_pct) {
            auto v = read_value(*m.soc_pct);
            if (!v) return std::unexpected(v.error());
            pct = *v;
        } else if (m.soc_mwh) {
            auto v = read_value(*m.soc_mwh);
            if (!v) return std::unexpected(v.error());
            mwh = *v;
        }
        fill_soc(s, pct, mwh);
        s.setpoint_mw = commanded.value_or(0.0);
        if (m.setpoint_mw) {
            auto v = read_value(*m.setpoint_mw);
            if (!v) return std::unexpected(v.error());
            s.setpoint_mw = *v;
        }
        s.current_mw = s.setpoint_mw;
        if (m.current_mw) {
            auto v = read_value(*m.current_mw);
            if (!v) return std::unexpected(v.error());
            s.current_mw = *v;
        }
        for (auto [spec, out] : {std::pair{&m.max_discharge_mw, &device_max_discharge_mw},
                                 std::pair{&m.max_charge_mw, &device_max_charge_mw}}) {
            if (!*spec) continue;
            auto v = read_value(**spec);
            if (!v) return std::unexpected(v.error());
            *out = std::fabs(*v);
        }
        s.status = status_of(s.current_mw, s.soc_pct);
        if (m.fault) {
            auto v = read_value(*m.fault);
            if (!v) return std::unexpected(v.error());
            if (*v != 0.0) {
                s.status = AssetStatus::fault;
                s.fault_reason = fmt::format("device fault register {} = {}", m.fault->address, *v);
            }
        }
        return s;
    }

    struct Storage {
        double w_cha_max_w = 0.0;
        double soc_pct = 0.0;
        double setpoint_mw = 0.0;
        int rate_sf = 0;
    };

    Result<Storage> read_storage() {
        namespace st = sunspec::storage;
        auto words = read_regs(m124->data(), st::length);
        if (!words) return std::unexpected(words.error());
        const auto& w = *words;
        auto sf = [&](int offset, std::string_view label) -> Result<int> {
            auto v = modbus::decode_scale_factor(w[static_cast<std::size_t>(offset)]);
            if (!v) return fail(Errc::refused, fmt::format("model 124 {}: {}", label, v.error().message));
            return v;
        };
        auto w_sf = sf(st::w_cha_max_sf, "WChaMax_SF");
        auto soc_sf = sf(st::cha_state_sf, "ChaState_SF");
        auto rate_sf = sf(st::in_out_w_rte_sf, "InOutWRte_SF");
        for (const auto* r : {&w_sf, &soc_sf, &rate_sf})
            if (!*r) return std::unexpected(r->error());
        Storage out;
        out.w_cha_max_w = modbus::scaled(w[st::w_cha_max], 1.0, *w_sf);
        if (w[st::cha_state] == 0xffff)
            return fail(Errc::refused, "model 124 ChaState is not implemented (0xFFFF)");
        out.soc_pct = modbus::scaled(w[st::cha_state], 1.0, *soc_sf);
        out.rate_sf = *rate_sf;
        const auto mode = w[st::stor_ctl_mod];
        const double out_pct = modbus::scaled(static_cast<std::int16_t>(w[st::out_w_rte]), 1.0, *rate_sf);
        const double in_pct = modbus::scaled(static_cast<std::int16_t>(w[st::in_w_rte]), 1.0, *rate_sf);
        const double w_max_mw = out.w_cha_max_w * 1e-6;
        if ((mode & st::ctl_discharge) != 0 && out_pct > 0)
            out.setpoint_mw = out_pct / 100.0 * w_max_mw;
        else if ((mode & st::ctl_charge) != 0 && in_pct > 0)
            out.setpoint_mw = -in_pct / 100.0 * w_max_mw;
        return out;
    }

    Result<DeviceState> read_sunspec() {
        auto storage = read_storage();
        if (!storage) return std::unexpected(storage.error());
        DeviceState s;
        fill_soc(s, storage->soc_pct, std::nullopt);
        s.setpoint_mw = storage->setpoint_mw;
        s.current_mw = s.setpoint_mw;
        device_max_discharge_mw = storage->w_cha_max_w * 1e-6;
        device_max_charge_mw = storage->w_cha_max_w * 1e-6;
        bool inverter_fault = false;
        if (inverter) {
            namespace inv = sunspec::inverter;
            auto words =
                read_regs(static_cast<std::uint16_t>(inverter->data() + inv::w), inv::st - inv::w + 1);
            if (!words) return std::unexpected(words.error());
            auto w_sf = modbus::decode_scale_factor((*words)[inv::w_sf - inv::w]);
            if (!w_sf) return fail(Errc::refused, fmt::format("inverter W_SF: {}", w_sf.error().message));
            s.current_mw = modbus::scaled(static_cast<std::int16_t>((*words)[0]), 1.0, *w_sf) * 1e-6;
            inverter_fault = (*words)[inv::st - inv::w] == inv::st_fault;
        } else if (o.map.current_mw) {
            auto v = read_value(*o.map.current_mw);
            if (!v) return std::unexpected(v.error());
            s.current_mw = *v;
        }
        s.status = status_of(s.current_mw, s.soc_pct);
        if (inverter_fault) {
            s.status = AssetStatus::fault;
            s.fault_reason = "inverter reports FAULT (SunSpec St 7)";
        }
        return s;
    }

    // --- setpoint -------------------------------------------------------------

    Result<void> write_setpoint(double mw) {
        if (o.sunspec) return write_sunspec_setpoint(mw);
        if (o.map.revert_timeout && o.revert_s > 0) {
            if (auto ok =
                    write_value(*o.map.revert_timeout, static_cast<double>(o.revert_s), "revert timeout");
                !ok)
                return ok;
        }
        return write_value(*o.map.setpoint_mw, mw, "setpoint");
    }

    Result<void> write_sunspec_setpoint(double mw) {
        namespace st = sunspec::storage;
        auto storage = read_storage();  // fresh WChaMax and InOutWRte_SF, never cached
        if (!storage) return std::unexpected(storage.error());
        const double w_max = storage->w_cha_max_w;
        std::int16_t out_raw = 0;
        std::int16_t in_raw = 0;
        std::uint16_t mode = st::ctl_charge | st::ctl_discharge;  // both rates 0: hold at 0 MW
        if (mw != 0.0) {
            if (!(w_max > 0))
                return fail(Errc::invalid_argument, "the device's WChaMax is 0: it takes no power setpoint");
            const double pct = std::fabs(mw) * 1e6 / w_max * 100.0;
            if (pct > 100.0 + 1e-6)
                return fail(Errc::invalid_argument,
                            fmt::format("{} MW is beyond the device's WChaMax {} MW", mw, w_max * 1e-6));
            const double raw = std::round(pct / std::pow(10.0, storage->rate_sf));
            if (raw > 32767)
                return fail(Errc::invalid_argument,
                            fmt::format("{} % does not fit OutWRte/InWRte with InOutWRte_SF {}", pct,
                                        storage->rate_sf));
            (mw > 0 ? out_raw : in_raw) = static_cast<std::int16_t>(raw);
            mode = mw > 0 ? st::ctl_discharge : st::ctl_charge;
        }
        const std::vector<std::uint16_t> rates{static_cast<std::uint16_t>(out_raw),
                                               static_cast<std::uint16_t>(in_raw), 0,
                                               static_cast<std::uint16_t>(o.revert_s)};
        if (auto ok = write_regs(static_cast<std::uint16_t>(m124->data() + st::out_w_rte), rates); !ok)
            return ok;
        return write_regs(static_cast<std::uint16_t>(m124->data() + st::stor_ctl_mod), {mode});
    }

    ApplyResult apply(double mw) {
        if (auto why = check_setpoint(mw, limits); !why.empty()) return ApplyResult::refuse(std::move(why));
        mw = std::clamp(mw, limits.min_mw, limits.max_mw);
        if (mw > 0 && device_max_discharge_mw && mw > *device_max_discharge_mw + 1e-9)
            return ApplyResult::refuse(fmt::format("{} MW is above the device's discharge limit {} MW", mw,
                                                   *device_max_discharge_mw));
        if (mw < 0 && device_max_charge_mw && -mw > *device_max_charge_mw + 1e-9)
            return ApplyResult::refuse(
                fmt::format("{} MW is beyond the device's charge limit {} MW", mw, *device_max_charge_mw));
        if (ctx == nullptr) {
            if (mw == 0.0) {
                commanded = 0.0;  // written on reconnect; the device's revert timer covers the gap
                return ApplyResult::ok();
            }
            return ApplyResult::refuse("device unreachable: " + fault);
        }
        if (auto ok = write_setpoint(mw); !ok) {
            if (ok.error().code == Errc::invalid_argument) return ApplyResult::refuse(ok.error().message);
            io_failed(ok.error());
            if (mw == 0.0) {
                commanded = 0.0;
                return ApplyResult::ok();
            }
            return ApplyResult::refuse("device fault: " + ok.error().message);
        }
        commanded = mw;
        state.setpoint_mw = mw;
        next_refresh_ms = now() + refresh_ms();
        return ApplyResult::ok();
    }

    void poll() {
        if (stopped) return;
        if (ctx == nullptr) {
            if (reconnect_at_ms && now() >= *reconnect_at_ms) connect();
            if (ctx == nullptr) return;
        }
        if (commanded && o.revert_s > 0 && now() >= next_refresh_ms) {
            next_refresh_ms = now() + refresh_ms();
            if (auto ok = write_setpoint(*commanded); !ok) {
                io_failed(ok.error());
                if (ctx == nullptr) return;
            }
        }
        if (now() >= next_read_ms) {
            next_read_ms = now() + o.read_interval_ms;
            read_cycle();
        }
    }
};

// --- ModbusAdapter ------------------------------------------------------------

ModbusAdapter::ModbusAdapter(ModbusOptions options, const BessLimits& limits, const AdapterEnv& env)
    : m_impl(std::make_unique<Impl>(std::move(options), limits, env)) {}

ModbusAdapter::~ModbusAdapter() {
    stop();
}

void ModbusAdapter::poll() {
    m_impl->poll();
}

DeviceState ModbusAdapter::read() const {
    DeviceState s = m_impl->state;
    s.limits = m_impl->limits;
    if (!m_impl->fault.empty()) {
        s.status = AssetStatus::fault;
        s.fault_reason = m_impl->fault;
    }
    return s;
}

ApplyResult ModbusAdapter::apply_setpoint(double mw) {
    return m_impl->apply(mw);
}

void ModbusAdapter::set_limits(const BessLimits& limits) {
    m_impl->limits = limits;
}

std::optional<std::int64_t> ModbusAdapter::next_deadline_mono_ms() const {
    const Impl& i = *m_impl;
    if (i.stopped) return std::nullopt;
    if (i.ctx == nullptr) return i.reconnect_at_ms;
    std::int64_t next = i.next_read_ms;
    if (i.commanded && i.o.revert_s > 0) next = std::min(next, i.next_refresh_ms);
    return next;
}

void ModbusAdapter::stop() {
    if (m_impl->stopped) return;
    m_impl->stopped = true;
    if (m_impl->ctx != nullptr) {
        modbus_close(m_impl->ctx);
        modbus_free(m_impl->ctx);
        m_impl->ctx = nullptr;
    }
}

bool ModbusAdapter::connected() const {
    return m_impl->ctx != nullptr;
}

}  // namespace der::adapters
