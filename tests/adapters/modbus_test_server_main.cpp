// der-modbus-test-server [--sunspec] [PORT]: the tests' battery-like Modbus
// TCP server on 127.0.0.1, for trying the modbus adapter by hand
// (examples/modbus/). Prints the port, serves until SIGINT/SIGTERM.
#include "modbus_test_server.hpp"

#include <unistd.h>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace {
volatile std::sig_atomic_t g_stop = 0;
extern "C" void on_signal(int) {
    g_stop = 1;
}
}  // namespace

int main(int argc, char** argv) {
    auto layout = der::test::ModbusLayout::plain;
    int port = 0;
    for (int i = 1; i < argc; ++i) {
        if (std::strcmp(argv[i], "--sunspec") == 0)
            layout = der::test::ModbusLayout::sunspec;
        else if (std::strcmp(argv[i], "--help") == 0) {
            std::puts("usage: der-modbus-test-server [--sunspec] [PORT]");
            return 0;
        } else
            port = std::atoi(argv[i]);
    }
    std::signal(SIGINT, on_signal);
    std::signal(SIGTERM, on_signal);
    der::test::ModbusTestServer server(layout, port);
    std::printf("%d\n", server.port());
    std::fflush(stdout);
    while (g_stop == 0) pause();
    return 0;
}
