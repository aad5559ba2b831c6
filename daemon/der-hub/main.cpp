// der-hub: the headend. Parses flags, then runs the event loop (hub.cpp).
#include "hub.hpp"
#include "hub_options.hpp"

#include "der/util/log.hpp"

#include <iostream>

int main(int argc, char** argv) {
    der::hub::HubOptions options;
    CLI::App app;
    der::hub::make_app(app, options);
    return der::cli::run_main("der-hub", app, argc, argv, [&] {
        if (options.keygen.requested) return der::hub::run_keygen(options.keygen);
        if (options.config_path.empty())
            throw der::cli::ExitError(der::cli::usage, "--config is required (or DER_CONFIG)");
        if (options.show_config) {
            std::cout << der::hub::describe_config(app, options, std::vector<std::string>(argv + 1, argv + argc));
            return 0;
        }
        der::cli::apply_log_options("der-hub", options.log);
        auto& signals = der::cli::install_signal_handlers(der::cli::HandleHup::yes);
        return der::hub::run(options, signals);
    });
}
