#include "modbus_test_server.hpp"

#include <modbus/modbus.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace der::test {

namespace {

constexpr int k_start = 40000;
constexpr int k_count = 400;

void put_string(std::uint16_t* regs, const std::string& text, int words) {
    for (int i = 0; i < words; ++i) {
        const auto at = static_cast<std::size_t>(2 * i);
        const char hi = at < text.size() ? text[at] : '\0';
        const char lo = at + 1 < text.size() ? text[at + 1] : '\0';
        regs[i] = static_cast<std::uint16_t>((static_cast<unsigned char>(hi) << 8) |
                                             static_cast<unsigned char>(lo));
    }
}

}  // namespace

struct ModbusTestServer::Impl {
    ModbusLayout layout;
    int port = 0;
    modbus_t* ctx = nullptr;
    modbus_mapping_t* map = nullptr;
    mutable std::mutex mutex;
    std::map<std::uint16_t, int> writes;
    int requests = 0;
    int listen_fd = -1;
    std::thread thread;
    std::atomic<bool> quit{false};

    std::uint16_t& reg(std::uint16_t address) { return map->tab_registers[address - k_start]; }

    void init_registers() {
        if (layout == ModbusLayout::plain) {
            reg(k_plain_soc) = 500;  // 50.0 %
            reg(k_plain_sf) = 0;
            return;
        }
        // SunSpec: marker, model 1, model 103, model 124, end.
        reg(40000) = 0x5375;
        reg(40001) = 0x6e53;
        reg(40002) = 1;
        reg(40003) = 66;
        put_string(&reg(40004), "der-test", 16);
        put_string(&reg(40020), "battery-124", 16);
        put_string(&reg(40052), "SN-0001", 16);
        reg(k_sunspec_inverter) = 103;
        reg(k_sunspec_inverter + 1) = 50;
        reg(inverter_reg(13)) = 2;  // W_SF
        reg(inverter_reg(36)) = 4;  // St: MPPT (running)
        reg(k_sunspec_storage) = 124;
        reg(k_sunspec_storage + 1) = 24;
        reg(storage_reg(0)) = 20000;                            // WChaMax 20000 × 10^2 W = 2 MW
        reg(storage_reg(6)) = 500;                              // ChaState 50.0 %
        reg(storage_reg(16)) = 2;                               // WChaMax_SF
        reg(storage_reg(20)) = static_cast<std::uint16_t>(-1);  // ChaState_SF
        reg(storage_reg(23)) = static_cast<std::uint16_t>(-2);  // InOutWRte_SF
        reg(storage_reg(19)) = 0;
        reg(40148) = 0xffff;
        reg(40149) = 0;
    }

    /// The battery: power follows the setpoint registers.
    void follow() {
        if (layout == ModbusLayout::plain) {
            reg(k_plain_power) = reg(k_plain_setpoint);
            return;
        }
        const auto sf = [](std::uint16_t w) { return std::pow(10.0, static_cast<std::int16_t>(w)); };
        const double w_max = reg(storage_reg(0)) * sf(reg(storage_reg(16)));
        const double rate_sf = sf(reg(storage_reg(23)));
        const std::uint16_t mode = reg(storage_reg(3));
        const double out_pct = static_cast<std::int16_t>(reg(storage_reg(10))) * rate_sf;
        const double in_pct = static_cast<std::int16_t>(reg(storage_reg(11))) * rate_sf;
        double w = 0.0;
        if ((mode & 2) != 0 && out_pct > 0) w = out_pct / 100.0 * w_max;
        if ((mode & 1) != 0 && in_pct > 0) w = -in_pct / 100.0 * w_max;
        const double raw = std::round(w / sf(reg(inverter_reg(13))));
        reg(inverter_reg(12)) = static_cast<std::uint16_t>(static_cast<std::int16_t>(raw));
    }

    void listen() {
        ctx = modbus_new_tcp("127.0.0.1", port);
        if (ctx == nullptr) throw std::runtime_error("modbus_new_tcp failed");
        modbus_set_indication_timeout(ctx, 1, 0);
        listen_fd = modbus_tcp_listen(ctx, 8);
        if (listen_fd < 0) {
            modbus_free(ctx);
            ctx = nullptr;
            throw std::runtime_error(std::string("modbus_tcp_listen: ") + modbus_strerror(errno));
        }
        sockaddr_in addr{};
        socklen_t len = sizeof addr;
        getsockname(listen_fd, reinterpret_cast<sockaddr*>(&addr), &len);
        port = ntohs(addr.sin_port);
        quit = false;
        thread = std::thread([this] { serve(); });
    }

    void serve() {
        std::vector<int> clients;
        std::vector<std::uint8_t> query(MODBUS_TCP_MAX_ADU_LENGTH);
        while (!quit) {
            fd_set fds;
            FD_ZERO(&fds);
            FD_SET(listen_fd, &fds);
            int top = listen_fd;
            for (int c : clients) {
                FD_SET(c, &fds);
                top = std::max(top, c);
            }
            timeval tv{0, 20'000};
            if (select(top + 1, &fds, nullptr, nullptr, &tv) <= 0) continue;
            if (FD_ISSET(listen_fd, &fds)) {
                int s = listen_fd;
                const int client = modbus_tcp_accept(ctx, &s);
                if (client >= 0) clients.push_back(client);
            }
            for (auto it = clients.begin(); it != clients.end();) {
                if (!FD_ISSET(*it, &fds)) {
                    ++it;
                    continue;
                }
                modbus_set_socket(ctx, *it);
                const int rc = modbus_receive(ctx, query.data());
                if (rc > 0) {
                    std::lock_guard lock(mutex);
                    ++requests;
                    modbus_reply(ctx, query.data(), rc, map);
                    const int h = modbus_get_header_length(ctx);
                    const int function = query[static_cast<std::size_t>(h)];
                    if (function == MODBUS_FC_WRITE_SINGLE_REGISTER ||
                        function == MODBUS_FC_WRITE_MULTIPLE_REGISTERS) {
                        const int address = (query[static_cast<std::size_t>(h) + 1] << 8) |
                                            query[static_cast<std::size_t>(h) + 2];
                        const int count = function == MODBUS_FC_WRITE_SINGLE_REGISTER
                                              ? 1
                                              : (query[static_cast<std::size_t>(h) + 3] << 8) |
                                                    query[static_cast<std::size_t>(h) + 4];
                        for (int i = 0; i < count; ++i) ++writes[static_cast<std::uint16_t>(address + i)];
                        follow();
                    }
                    ++it;
                } else if (rc == 0) {
                    ++it;  // not for us (another unit id): ignored
                } else {
                    ::close(*it);
                    it = clients.erase(it);
                }
            }
        }
        for (int c : clients) ::close(c);
    }

    void shutdown() {
        if (!thread.joinable()) return;
        quit = true;
        thread.join();
        ::close(listen_fd);
        listen_fd = -1;
        modbus_free(ctx);
        ctx = nullptr;
    }
};

ModbusTestServer::ModbusTestServer(ModbusLayout layout, int port) : m_impl(std::make_unique<Impl>()) {
    m_impl->layout = layout;
    m_impl->port = port;
    m_impl->map = modbus_mapping_new_start_address(0, 0, 0, 0, k_start, k_count, 0, 0);
    if (m_impl->map == nullptr) throw std::runtime_error("modbus_mapping_new_start_address failed");
    m_impl->init_registers();
    m_impl->listen();
}

ModbusTestServer::~ModbusTestServer() {
    m_impl->shutdown();
    modbus_mapping_free(m_impl->map);
}

int ModbusTestServer::port() const {
    return m_impl->port;
}
void ModbusTestServer::stop() {
    m_impl->shutdown();
}
void ModbusTestServer::start() {
    if (!m_impl->thread.joinable()) m_impl->listen();
}
bool ModbusTestServer::running() const {
    return m_impl->thread.joinable();
}

std::uint16_t ModbusTestServer::get(std::uint16_t address) const {
    std::lock_guard lock(m_impl->mutex);
    return m_impl->map->tab_registers[address - k_start];
}

void ModbusTestServer::set(std::uint16_t address, std::uint16_t value) {
    std::lock_guard lock(m_impl->mutex);
    m_impl->reg(address) = value;
}

int ModbusTestServer::writes_to(std::uint16_t address) const {
    std::lock_guard lock(m_impl->mutex);
    const auto it = m_impl->writes.find(address);
    return it == m_impl->writes.end() ? 0 : it->second;
}

int ModbusTestServer::requests() const {
    std::lock_guard lock(m_impl->mutex);
    return m_impl->requests;
}

}  // namespace der::test
