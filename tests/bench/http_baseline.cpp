/// der_bench_http: the REST baseline. A minimal cpp-httplib server that
/// answers GET /telemetry/<anything> with the bytes of --body-file, tuned as
/// der-hub's REST server is (thread pool, TCP_NODELAY, long keep-alive).
/// Benchmarks only (tests/bench).

#include "bench_common.hpp"

#include <httplib.h>

#include <fstream>
#include <sstream>

int main(int argc, char** argv) {
    der::bench::Flags f(argc, argv,
                        "usage: der_bench_http --body-file FILE [--port P] [--threads N]\n"
                        "  --body-file FILE  the response body (JSON)\n"
                        "  --port P          port on 127.0.0.1 (7480)\n"
                        "  --threads N       worker threads (8, as der-hub --http-threads)\n"
                        "  --duration S      stop after S seconds (0 = never)\n");
    const auto file = f.str("body-file", "");
    const int port = static_cast<int>(f.num("port", 7480));
    const auto threads = static_cast<std::size_t>(f.num("threads", 8));
    const double duration = f.num("duration", 0);
    f.done();
    if (file.empty()) f.fail("--body-file is required");
    std::ifstream in(file, std::ios::binary);
    if (!in) {
        std::fprintf(stderr, "error: cannot read %s\n", file.c_str());
        return 66;
    }
    std::stringstream ss;
    ss << in.rdbuf();
    const std::string body = ss.str();

    httplib::Server s;
    s.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
    s.set_tcp_nodelay(true);
    s.set_keep_alive_max_count(100'000);
    s.set_keep_alive_timeout(30);
    s.set_read_timeout(10, 0);
    s.Get(R"(/telemetry/([^/]+(?:/[^/]+)?))", [&body](const httplib::Request&, httplib::Response& res) {
        res.set_content(body, "application/json");
    });
    if (!s.bind_to_port("127.0.0.1", port)) {
        std::fprintf(stderr, "error: cannot listen on 127.0.0.1:%d\n", port);
        return 69;
    }
    std::thread stopper;
    if (duration > 0)
        stopper = std::thread([&s, duration] {
            std::this_thread::sleep_for(std::chrono::duration<double>(duration));
            s.stop();
        });
    s.listen_after_bind();
    if (stopper.joinable()) stopper.join();
    return 0;
}
