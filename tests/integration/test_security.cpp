// Security (docs/security.md): CURVE with keys bound to assets, the ZAP
// handler, API tokens on REST and the control socket. Real processes.
#include "harness.hpp"

#include "der/util/time.hpp"
#include "der/wire_codec.hpp"

#include <catch2/catch.hpp>
#include <fmt/core.h>
#include <httplib.h>
#include <nlohmann/json.hpp>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <csignal>
#include <filesystem>
#include <thread>

using namespace der::test;
using nlohmann::json;

namespace {

const std::string k_dispatch = DER_DISPATCH_BIN;
constexpr double k_interval_s = 0.3;

struct Keypair {
    std::string public_key;
    std::string secret_file;
    std::string public_file;
};

/// `der-hub keygen --out-dir DIR --name NAME`, which prints the public key.
Keypair keygen(const TempDir& dir, const std::string& name) {
    const auto r = run_capture({hub_binary(), "keygen", "--out-dir", dir.path(), "--name", name});
    INFO(r.err);
    REQUIRE(r.status == 0);
    Keypair k{r.out.substr(0, 40), dir.file(name + ".secret"), dir.file(name + ".public")};
    REQUIRE(read_file(k.public_file).substr(0, 40) == k.public_key);
    return k;
}

/// fleet_yaml with an agent_public_key on each asset (by name).
std::string keyed_yaml(const std::vector<TestAsset>& assets, const std::map<std::string, std::string>& keys) {
    std::string yaml = fleet_yaml(assets, k_interval_s);
    for (const auto& [name, key] : keys) {
        const std::string line = "      - name: " + name + "\n";
        const auto at = yaml.find(line);
        REQUIRE(at != std::string::npos);
        yaml.insert(at + line.size(), "        agent_public_key: '" + key + "'\n");
    }
    return yaml;
}

double metric(int port, const std::string& name) {
    const auto r = http_get(port, "/metrics");
    if (!r) return -1;
    // The first sample line of `name` (with or without labels): its value follows the last blank.
    for (const auto& line : lines_of(r->body)) {
        if (line.rfind(name, 0) != 0 || (line[name.size()] != ' ' && line[name.size()] != '{')) continue;
        return std::stod(line.substr(line.rfind(' ') + 1));
    }
    return -1;
}

bool has_telemetry(int port, const std::string& asset) {
    const auto r = http_get(port, "/telemetry/" + asset);
    return r && r->status == 200;
}

std::vector<TestAsset> two_assets() { return {{"site-a", "a1"}, {"site-a", "a2"}}; }

/// A CURVE hub with keys for site-a/a1 and site-a/a2, plus a key no asset has.
struct CurveFleet {
    TempDir dir;
    Keypair hub_key = keygen(dir, "hub");
    Keypair a1 = keygen(dir, "a1");
    Keypair a2 = keygen(dir, "a2");
    Keypair stranger = keygen(dir, "stranger");
    HubUnderTest hub{dir, keyed_yaml(two_assets(), {{"a1", a1.public_key}, {"a2", a2.public_key}}),
                     {"--curve-secret-file", hub_key.secret_file}};

    std::vector<std::string> curve_args(const Keypair& k) const {
        return {"--curve-server-key", hub_key.public_file, "--curve-secret-file", k.secret_file};
    }
    /// An agent from flags (no --config, so no local check of its key).
    std::unique_ptr<Process> agent_from_flags(const std::string& asset, std::vector<std::string> extra) const {
        std::vector<std::string> argv = {agent_binary(), "--hub",         hub.agents_endpoint(), "--asset",
                                         asset,          "--capacity-mwh", "4",                  "--max-mw",
                                         "2",            "--min-mw",      "-2",                  "--tick",
                                         "100ms",        "--log-level",   "debug"};
        argv.insert(argv.end(), extra.begin(), extra.end());
        static int n = 0;
        return std::make_unique<Process>(argv, dir.file(fmt::format("flags-agent-{}.log", ++n)));
    }
};

/// A raw CURVE DEALER holding some agent's keys, to say what der-agent never would.
struct RawAgent {
    zmq::context_t ctx;
    zmq::socket_t dealer{ctx, zmq::socket_type::dealer};
    RawAgent(const std::string& endpoint, const std::string& server_public, const std::string& secret_file) {
        const std::string secret = read_file(secret_file).substr(0, 40);
        char pub[41] = {};
        REQUIRE(zmq_curve_public(pub, secret.c_str()) == 0);
        dealer.set(zmq::sockopt::linger, 0);
        dealer.set(zmq::sockopt::curve_serverkey, server_public);
        dealer.set(zmq::sockopt::curve_publickey, std::string(pub));
        dealer.set(zmq::sockopt::curve_secretkey, secret);
        dealer.connect(endpoint);
    }
    void send(const der::wire::AgentMessage& m) {
        const auto frame = der::wire::encode(m);
        dealer.send(zmq::buffer(frame.type), zmq::send_flags::sndmore);
        dealer.send(zmq::buffer(frame.body), zmq::send_flags::none);
    }
    /// The type of the next message, "" after `ms`.
    std::string receive_type(int ms) {
        zmq::pollitem_t item{dealer.handle(), 0, ZMQ_POLLIN, 0};
        if (zmq::poll(&item, 1, std::chrono::milliseconds(ms)) == 0) return {};
        std::vector<zmq::message_t> parts;
        (void)zmq::recv_multipart(dealer, std::back_inserter(parts));
        return parts.empty() ? std::string() : parts[0].to_string();
    }
};

der::wire::Register register_for(const der::Uuid& asset) {
    der::wire::Register r;
    r.asset_id = asset;
    r.instance_id = der::Uuid::v7();
    r.epoch = der::Uuid::v7();
    return r;
}

der::Uuid asset_id(int port, const std::string& name) {
    return *der::Uuid::parse(get_json(port, "/assets/" + name)["id"].get<std::string>());
}

std::optional<httplib::Result> request(int port, const std::string& method, const std::string& path,
                                       const std::string& token, const std::string& body = "{}") {
    httplib::Client client("127.0.0.1", port);
    client.set_connection_timeout(2, 0);
    client.set_read_timeout(5, 0);
    httplib::Headers headers;
    if (!token.empty()) headers.emplace("Authorization", "Bearer " + token);
    if (method == "GET") return client.Get(path.c_str(), headers);
    return client.Post(path.c_str(), headers, body, "application/json");
}

}  // namespace

TEST_CASE("a CURVE hub admits an agent by its key and refuses an unknown key and a plain-text agent",
          "[security][sanitize]") {
    CurveFleet f;
    const int port = f.hub.http_port();
    CHECK(get_json(port, "/health")["transport"] == "curve");
    CHECK(f.hub.log().find("CURVE on") != std::string::npos);

    auto good = start_agent(f.dir, f.hub.agents_endpoint(), f.hub.config_path(), "site-a/a1", f.curve_args(f.a1));
    REQUIRE(wait_until([&] { return has_telemetry(port, "site-a/a1"); }, 10000ms));

    // A key that is in no asset of assets.yaml: ZAP says 400, nothing gets through.
    auto stranger = f.agent_from_flags("site-a/a2", f.curve_args(f.stranger));
    REQUIRE(wait_until([&] { return metric(port, "der_hub_zap_denied_total") >= 1; }, 10000ms));
    CHECK(f.hub.log().find("unknown agent key") != std::string::npos);

    // No keys at all: the NULL mechanism does not even get to ZAP.
    auto plain = f.agent_from_flags("site-a/a2", {});
    REQUIRE(wait_until([&] { return plain->log().find("handshake with") != std::string::npos; }, 10000ms));
    CHECK_FALSE(has_telemetry(port, "site-a/a2"));
    CHECK(has_telemetry(port, "site-a/a1"));

    // The NULL sockets beside it (control, stream) are not the ZAP handler's business.
    const auto r = run_capture({k_dispatch, "--control", f.hub.control_endpoint(), "site-a/a1", "0.5"}, {}, 15000ms);
    INFO(r.out << r.err);
    CHECK(r.status == 0);
}

TEST_CASE("an agent holding asset A's key cannot register as or send telemetry for asset B", "[security]") {
    CurveFleet f;
    const int port = f.hub.http_port();
    const auto a1 = asset_id(port, "site-a/a1");
    const auto a2 = asset_id(port, "site-a/a2");
    RawAgent raw(f.hub.agents_endpoint(), f.hub_key.public_key, f.a1.secret_file);

    raw.send(register_for(a2));
    CHECK(raw.receive_type(5000) == "reject");
    REQUIRE(wait_until([&] { return metric(port, "der_hub_identity_refused_total") >= 1; }, 5000ms));

    auto reg = register_for(a1);
    raw.send(reg);
    REQUIRE(raw.receive_type(5000) == "welcome");
    der::Telemetry t;
    t.asset_id = a2;
    t.epoch = reg.epoch;
    t.seq = 1;
    t.ts = der::now_ms();
    t.capacity_mwh = 4;
    raw.send(t);
    REQUIRE(wait_until([&] { return metric(port, "der_hub_identity_refused_total") >= 2; }, 5000ms));
    CHECK_FALSE(has_telemetry(port, "site-a/a2"));
    CHECK(f.hub.log().find("speaks for another asset") != std::string::npos);
}

TEST_CASE("a key removed by SIGHUP has its messages refused from then on", "[security]") {
    CurveFleet f;
    const int port = f.hub.http_port();
    const auto a1 = asset_id(port, "site-a/a1");
    RawAgent raw(f.hub.agents_endpoint(), f.hub_key.public_key, f.a1.secret_file);
    const auto reg = register_for(a1);
    raw.send(reg);
    REQUIRE(raw.receive_type(5000) == "welcome");

    const auto replacement = keygen(f.dir, "a1-new");
    f.dir.write("assets.yaml", keyed_yaml(two_assets(), {{"a1", replacement.public_key}, {"a2", f.a2.public_key}}));
    f.hub.process().signal(SIGHUP);
    REQUIRE(wait_until([&] { return f.hub.log().find("agent key of site-a/a1 changed") != std::string::npos; },
                       5000ms));
    CHECK(raw.receive_type(5000) == "reject");  // its session ended with the key

    // The same connection, still open (libzmq does not re-authenticate it): refused message by message.
    der::Telemetry t;
    t.asset_id = a1;
    t.epoch = reg.epoch;
    t.seq = 1;
    t.ts = der::now_ms();
    t.capacity_mwh = 4;
    raw.send(t);
    raw.send(reg);
    REQUIRE(wait_until([&] { return metric(port, "der_hub_identity_refused_total") >= 2; }, 5000ms));
    CHECK(raw.receive_type(5000) == "reject");
    CHECK_FALSE(has_telemetry(port, "site-a/a1"));
    CHECK(f.hub.log().find("no longer in the configuration") != std::string::npos);
}

TEST_CASE("a capture of a CURVE agent port shows no asset id in clear text", "[security]") {
    const bool tshark = run_shell("command -v tshark >/dev/null").status == 0;
    const bool tcpdump = run_shell("command -v tcpdump >/dev/null").status == 0;
    if (!tshark && !tcpdump) {
        WARN("SKIPPED: neither tshark nor tcpdump is installed (scripts/install-deps.sh installs tshark)");
        return;
    }
    CurveFleet f;
    const int port = f.hub.http_port();
    const std::string pcap = f.dir.file("agents.pcap");
    const std::string capture =
        tshark ? fmt::format("tshark -q -i lo -f 'tcp port {}' -w {} -a duration:6", f.hub.agents_port(), pcap)
               : fmt::format("timeout 6 tcpdump -q -i lo -U -w {} 'tcp port {}'", pcap, f.hub.agents_port());
    Process capturer({"/bin/sh", "-c", capture}, f.dir.file("capture.log"));
    std::this_thread::sleep_for(1500ms);  // the capture must be listening before the agent connects
    auto agent = start_agent(f.dir, f.hub.agents_endpoint(), f.hub.config_path(), "site-a/a1", f.curve_args(f.a1));
    REQUIRE(wait_until([&] { return has_telemetry(port, "site-a/a1"); }, 10000ms));
    const auto ended = capturer.wait_exit(15000ms);
    INFO(capturer.log());
    REQUIRE(ended);
    const std::string bytes = read_file(pcap);
    REQUIRE(bytes.size() > 2000);  // the handshake and some telemetry were captured
    const auto id = asset_id(port, "site-a/a1");
    const auto raw = id.bytes();
    CHECK(bytes.find(std::string(reinterpret_cast<const char*>(raw.data()), raw.size())) == std::string::npos);
    CHECK(bytes.find(id.to_string()) == std::string::npos);
    CHECK(bytes.find("telemetry") == std::string::npos);
}

TEST_CASE("the hub exits with a clear message when its ZAP handler cannot start, or keys are half configured",
          "[security]") {
    TempDir dir;
    const auto hub_key = keygen(dir, "hub");
    const auto a1 = keygen(dir, "a1");
    dir.write("assets.yaml", keyed_yaml({{"site-a", "a1"}}, {{"a1", a1.public_key}}));
    const std::string common = fmt::format("{} --config {} --agents tcp://127.0.0.1:{} --control tcp://127.0.0.1:{} "
                                           "--stream tcp://127.0.0.1:{} --http off",
                                           shell_quote(hub_binary()), shell_quote(dir.file("assets.yaml")),
                                           free_port(), free_port(), free_port());
    auto r = run_shell(fmt::format("DER_HUB_TEST_ZAP_TAKEN=1 {} --curve-secret-file {}", common,
                                   shell_quote(hub_key.secret_file)),
                       15000ms);
    INFO(r.err);
    CHECK(r.status == 69);
    CHECK(r.err.find("cannot start the ZAP handler") != std::string::npos);

    r = run_shell(common, 15000ms);  // keys in assets.yaml, none for the hub
    INFO(r.err);
    CHECK(r.status == 78);
    CHECK(r.err.find("--curve-secret-file") != std::string::npos);

    dir.write("mixed.yaml", keyed_yaml({{"site-a", "a1"}, {"site-a", "a2"}}, {{"a1", a1.public_key}}));
    r = run_capture({hub_binary(), "--config", dir.file("mixed.yaml"), "--http", "off"}, {}, 15000ms);
    INFO(r.err);
    CHECK(r.status == 78);
    CHECK(r.err.find("agent_public_key") != std::string::npos);
}

TEST_CASE("REST writes need the bearer token and the control socket every request", "[security][sanitize]") {
    TempDir dir;
    dir.write("token", "s3cret-token\n");
    HubUnderTest hub(dir, fleet_yaml({{"site-a", "a1"}}, k_interval_s),
                     {"--api-token-file", dir.file("token")});
    const int port = hub.http_port();
    const std::string body = R"({"asset":"site-a/a1","mw":1.0,"duration_s":60})";

    auto r = request(port, "POST", "/dispatch", "", body);
    REQUIRE(r);
    CHECK((*r)->status == 401);
    CHECK((*r)->get_header_value("WWW-Authenticate").rfind("Bearer", 0) == 0);
    CHECK(json::parse((*r)->body)["error"]["code"] == "unauthorized");
    r = request(port, "POST", "/dispatch", "wrong-token", body);
    REQUIRE(r);
    CHECK((*r)->status == 401);
    r = request(port, "POST", "/dispatch", "s3cret-token", body);
    REQUIRE(r);
    CHECK((*r)->status == 202);
    {  // the two refusals above are counted
        const auto m = http_get(port, "/metrics");
        REQUIRE(m);
        CHECK(m->body.find("der_hub_unauthorized_requests_total{endpoint=\"rest\"} 2\n") != std::string::npos);
    }
    {  // the scheme name is case-insensitive (RFC 9110)
        httplib::Client client("127.0.0.1", port);
        auto lower = client.Post("/dispatch", {{"Authorization", "bearer s3cret-token"}}, body, "application/json");
        REQUIRE(lower);
        CHECK(lower->status == 202);
    }
    r = request(port, "GET", "/assets", "");  // reads stay open without --api-token-reads
    REQUIRE(r);
    CHECK((*r)->status == 200);
    CHECK(hub.log().find("s3cret-token") == std::string::npos);

    const std::vector<std::string> dispatch = {k_dispatch, "--control", hub.control_endpoint(), "site-a/a1", "0.5"};
    auto refused = run_capture(dispatch, {}, 15000ms);
    INFO(refused.out << refused.err);
    CHECK(refused.status != 0);
    CHECK((refused.out + refused.err).find("unauthorized") != std::string::npos);
    auto with_flag = dispatch;
    with_flag.insert(with_flag.end(), {"--token-file", dir.file("token")});
    auto accepted = run_capture(with_flag, {}, 15000ms);
    INFO(accepted.out << accepted.err);
    CHECK(accepted.status == 0);
    std::string env_line = "DER_TOKEN_FILE=" + shell_quote(dir.file("token"));
    for (const auto& a : dispatch) env_line += " " + shell_quote(a);
    auto via_env = run_shell(env_line, 15000ms);
    INFO(via_env.out << via_env.err);
    CHECK(via_env.status == 0);
    CHECK(wait_until([&] { return metric(port, "der_hub_unauthorized_requests_total") >= 1; }, 5000ms));
}

TEST_CASE("with --api-token-reads reads need the token too, but not GET /health", "[security]") {
    TempDir dir;
    dir.write("token", "read-token\n");
    HubUnderTest hub(dir, fleet_yaml({{"site-a", "a1"}}, k_interval_s),
                     {"--api-token-file", dir.file("token"), "--api-token-reads"});
    const int port = hub.http_port();
    auto r = request(port, "GET", "/assets", "");
    REQUIRE(r);
    CHECK((*r)->status == 401);
    r = request(port, "GET", "/assets", "read-token");
    REQUIRE(r);
    CHECK((*r)->status == 200);
    r = request(port, "GET", "/health", "");
    REQUIRE(r);
    CHECK((*r)->status == 200);
    CHECK(json::parse((*r)->body)["transport"] == "plaintext");
}

TEST_CASE("der-launch gives each agent its own secret key from --curve-key-dir", "[security]") {
    CurveFleet f;
    const int port = f.hub.http_port();
    // The layout der-launch expects: DIR/SITE/ASSET.secret.
    const std::string keys = f.dir.file("keys");
    std::filesystem::create_directories(keys + "/site-a");
    std::filesystem::copy_file(f.a1.secret_file, keys + "/site-a/a1.secret");
    const std::vector<std::string> argv = {DER_LAUNCH_BIN, f.hub.config_path(), "--agent", agent_binary(),
                                           "--hub", f.hub.agents_endpoint(), "--curve-server-key",
                                           f.hub_key.public_file, "--curve-key-dir", keys};
    auto missing = run_capture(argv, {}, 15000ms);  // site-a/a2 has no key file yet
    INFO(missing.err);
    CHECK(missing.status == 66);
    CHECK(missing.err.find("site-a/a2.secret") != std::string::npos);

    std::filesystem::copy_file(f.a2.secret_file, keys + "/site-a/a2.secret");
    Process launch(argv, f.dir.file("launch.log"));
    CHECK(wait_until([&] { return has_telemetry(port, "site-a/a1") && has_telemetry(port, "site-a/a2"); }, 10000ms));
    CHECK(launch.stop() == 0);
}

namespace {
/// Sends `raw` as is on a new connection and returns the status line and headers.
std::string raw_http(int port, const std::string& raw) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(::send(fd, raw.data(), raw.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(raw.size()));
    std::string reply;
    std::array<char, 4096> buf{};
    timeval tv{5, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    for (ssize_t n; (n = ::recv(fd, buf.data(), buf.size(), 0)) > 0;) {
        reply.append(buf.data(), static_cast<std::size_t>(n));
        if (reply.find("\r\n\r\n") != std::string::npos && reply.find('}') != std::string::npos) break;
    }
    ::close(fd);
    return reply;
}
}  // namespace

TEST_CASE("a wrong method is 405 with Allow, a bodiless POST 411, both JSON", "[integration]") {
    TempDir dir;
    HubUnderTest hub(dir, fleet_yaml({{"site-a", "a1"}}, k_interval_s));
    const int port = hub.http_port();
    httplib::Client client("127.0.0.1", port);
    auto del = client.Delete("/health");
    REQUIRE(del);
    CHECK(del->status == 405);
    CHECK(del->get_header_value("Allow") == "GET");
    CHECK(json::parse(del->body)["error"]["code"] == "method_not_allowed");
    auto put = client.Put("/dispatch", "{}", "application/json");
    REQUIRE(put);
    CHECK(put->status == 405);
    CHECK(put->get_header_value("Allow") == "POST, GET");
    auto unknown = client.Delete("/nowhere");
    REQUIRE(unknown);
    CHECK(unknown->status == 404);

    // curl -X POST URL sends no Content-Length (cpp-httplib answers after its 5 s read timeout).
    const auto stop = raw_http(port, "POST /stop HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    INFO(stop);
    CHECK(stop.rfind("HTTP/1.1 411", 0) == 0);
    CHECK(stop.find("\"length_required\"") != std::string::npos);
    CHECK(hub.stop() == 0);
}

TEST_CASE("a second der-hub on the same --http port fails to bind instead of sharing it", "[integration]") {
    TempDir dir;
    HubUnderTest hub(dir, fleet_yaml({{"site-a", "a1"}}, k_interval_s));
    auto r = run_capture({DER_HUB_BIN, "-c", hub.config_path(), "--agents", fmt::format("tcp://127.0.0.1:{}", free_port()),
                          "--control", fmt::format("tcp://127.0.0.1:{}", free_port()), "--stream",
                          fmt::format("tcp://127.0.0.1:{}", free_port()), "--http",
                          fmt::format("127.0.0.1:{}", hub.http_port())},
                         {}, 15000ms);
    INFO(r.err);
    CHECK(r.status == 69);
    CHECK(r.err.find("cannot bind the REST address") != std::string::npos);
    CHECK(get_json(hub.http_port(), "/health")["status"] == "ok");
    CHECK(hub.stop() == 0);
}
