// The pure parts of the CLIs: der-dispatch's stdin schedule, CSV/table
// output, and the control client's "unreachable" verdict.
#include "control_client.hpp"
#include "output.hpp"
#include "schedule.hpp"

#include "der/util/time.hpp"
#include "der/wire_codec.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <zmq.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <thread>

using namespace der;
using cli::Column;
using cli::Format;
using cli::RowFormatter;

namespace {
constexpr TimestampMs k_now = 1'763'882'715'123;  // 2025-11-23T07:25:15.123Z
}

TEST_CASE("a JSON-lines schedule keeps input order, line numbers and relative times", "[cli]") {
    const std::string text =
        "\n"
        "{\"asset\": \"site-a/b1\", \"mw\": 2, \"duration_s\": 900, \"at\": \"+0s\"}\n"
        "# a comment\n"
        "{\"asset\": \"site-a/b2\", \"mw\": -1.5, \"at\": \"+5m\", \"reason\": \"peak\"}\n"
        "{\"asset\": \"0b8e0a42-0000-7000-8000-000000000001\", \"mw\": 0, \"duration_s\": \"15m\"}\n";
    auto parsed = cli::parse_schedule(text, k_now);
    REQUIRE(parsed);
    REQUIRE(parsed->size() == 3);
    const auto& a = (*parsed)[0];
    CHECK(a.line == 2);
    CHECK(a.asset == "site-a/b1");
    CHECK(a.mw == 2.0);
    CHECK(a.duration_s == 900.0);
    CHECK(a.at_ms == k_now);
    const auto& b = (*parsed)[1];
    CHECK(b.line == 4);
    CHECK(b.mw == -1.5);
    CHECK(!b.duration_s);
    CHECK(b.at_ms == k_now + 300'000);
    CHECK(b.reason == "peak");
    const auto& c = (*parsed)[2];
    CHECK(c.line == 5);
    CHECK(c.duration_s == 900.0);
    CHECK(!c.at_ms);
}

TEST_CASE("a schedule may start with a UTF-8 byte order mark, and a JSON array is named as such", "[cli]") {
    auto csv = cli::parse_schedule("\xEF\xBB\xBF" "asset,mw\nsite-a/b1,1\n", k_now);
    REQUIRE(csv);
    CHECK((*csv)[0].asset == "site-a/b1");
    auto json_lines = cli::parse_schedule("\xEF\xBB\xBF{\"asset\":\"site-a/b1\",\"mw\":1}\n", k_now);
    REQUIRE(json_lines);
    CHECK((*json_lines)[0].mw == 1.0);
    auto array = cli::parse_schedule("[{\"asset\":\"site-a/b1\",\"mw\":1}]\n", k_now);
    REQUIRE_FALSE(array);
    CHECK(array.error().message.find("line 1: a JSON array") != std::string::npos);
}

TEST_CASE("a JSON-lines schedule accepts RFC 3339 times", "[cli]") {
    auto parsed = cli::parse_schedule("{\"asset\":\"a/b\",\"mw\":1,\"at\":\"2025-11-23T07:25:15.123Z\"}", k_now);
    REQUIRE(parsed);
    CHECK((*parsed)[0].at_ms == k_now);
}

TEST_CASE("a bad JSON line is named by its line number", "[cli]") {
    struct Case {
        std::string line;
        std::string expected;
    };
    const std::vector<Case> cases = {
        {"{\"asset\":\"a/b\",\"mw\":\"x\"}", "line 3: mw: expected a number"},
        {"{\"asset\":\"a/b\"}", "line 3: missing 'mw'"},
        {"{\"mw\":1}", "line 3: missing 'asset'"},
        {"{\"asset\":\"a/b\",\"site\":\"a\",\"mw\":1}", "line 3: give 'asset' or 'site', not both"},
        {"{\"site\":7,\"mw\":1}", "line 3: site: expected a string"},
        {"{\"asset\":\"a/b\",\"mw\":1,\"at\":\"soon\"}", "line 3: at: invalid time 'soon'"},
        {"{\"asset\":\"a/b\",\"mw\":1,\"duration_s\":-5}", "line 3: duration_s:"},
        {"{\"asset\":\"a/b\",\"mw\":1,\"duraton_s\":5}", "line 3: unknown field 'duraton_s'"},
        {"{\"asset\":\"a/b\",\"mw\":1", "line 3: not valid JSON"},
        {"asset,mw", "line 3: not valid JSON"},
    };
    for (const auto& c : cases) {
        INFO(c.line);
        const std::string text = "{\"asset\":\"a/b\",\"mw\":1}\n\n" + c.line + "\n{\"asset\":\"a/b\",\"mw\":1}\n";
        auto parsed = cli::parse_schedule(text, k_now);
        REQUIRE(!parsed);
        CHECK(parsed.error().code == Errc::decode);
        CHECK_THAT(parsed.error().message, Catch::StartsWith(c.expected));
    }
}

TEST_CASE("a schedule line may name a site instead of an asset", "[cli]") {
    auto json_lines = cli::parse_schedule("{\"site\":\"north\",\"mw\":-2,\"at\":\"+5m\"}\n", k_now);
    REQUIRE(json_lines);
    REQUIRE(json_lines->size() == 1);
    CHECK((*json_lines)[0].site == "north");
    CHECK((*json_lines)[0].asset.empty());
    CHECK((*json_lines)[0].mw == -2.0);
    CHECK((*json_lines)[0].at_ms == k_now + 300'000);

    auto csv = cli::parse_schedule("site,mw\nnorth,3\n", k_now);
    REQUIRE(csv);
    CHECK((*csv)[0].site == "north");
    auto neither = cli::parse_schedule("reason,mw\npeak,3\n", k_now);
    REQUIRE(!neither);
    CHECK_THAT(neither.error().message, Catch::Contains("'asset' (or 'site')"));
}

TEST_CASE("a CSV schedule reads its header, columns in any order and quoted fields", "[cli]") {
    const std::string text =
        "at,asset,mw,duration_s,reason\r\n"
        "+1s,site-a/b1,2,15m,\"evening peak, part 1\"\r\n"
        ",site-a/b2,-0.5,,\r\n"
        "\n"
        "+2s, site-a/b1 ,0,60,\"say \"\"stop\"\"\"\n";
    auto parsed = cli::parse_schedule(text, k_now);
    REQUIRE(parsed);
    REQUIRE(parsed->size() == 3);
    CHECK((*parsed)[0] == cli::ScheduledDispatch{2, "site-a/b1", 2.0, 900.0, k_now + 1000, "evening peak, part 1", ""});
    CHECK((*parsed)[1] == cli::ScheduledDispatch{3, "site-a/b2", -0.5, std::nullopt, std::nullopt, "", ""});
    CHECK((*parsed)[2] == cli::ScheduledDispatch{5, "site-a/b1", 0.0, 60.0, k_now + 2000, "say \"stop\"", ""});
}

TEST_CASE("a bad CSV line or header is named by its line number", "[cli]") {
    auto bad_row = cli::parse_schedule("asset,mw,at\na/b,1,+1s\na/b,two,+2s\n", k_now);
    REQUIRE(!bad_row);
    CHECK_THAT(bad_row.error().message, Catch::StartsWith("line 3: mw: 'two' is not a number"));

    auto short_row = cli::parse_schedule("asset,mw,at\na/b,1\n", k_now);
    REQUIRE(!short_row);
    CHECK_THAT(short_row.error().message, Catch::StartsWith("line 2: 2 fields, the header has 3"));

    auto unknown = cli::parse_schedule("# run\nasset,megawatts\n", k_now);
    REQUIRE(!unknown);
    CHECK_THAT(unknown.error().message, Catch::StartsWith("line 2: unknown column 'megawatts'"));

    auto missing = cli::parse_schedule("asset,at\n", k_now);
    REQUIRE(!missing);
    CHECK_THAT(missing.error().message, Catch::Contains("'asset' (or 'site') and 'mw'"));

    auto quote = cli::parse_schedule("asset,mw\n\"a/b,1\n", k_now);
    REQUIRE(!quote);
    CHECK_THAT(quote.error().message, Catch::StartsWith("line 2: unterminated quoted field"));
}

TEST_CASE("an empty schedule is empty, not an error", "[cli]") {
    auto parsed = cli::parse_schedule("\n  \n# nothing\n", k_now);
    REQUIRE(parsed);
    CHECK(parsed->empty());
}

TEST_CASE("CSV splitting follows RFC 4180 quoting", "[cli]") {
    auto cells = cli::split_csv_line("a,\"b,c\",,\"d\"\"e\",");
    REQUIRE(cells);
    CHECK(*cells == std::vector<std::string>{"a", "b,c", "", "d\"e", ""});
    CHECK(!cli::split_csv_line("\"a\"x,b"));
}

TEST_CASE("CSV output has a header and quotes only where needed", "[cli]") {
    RowFormatter f(Format::csv, {Column{"ts"}, Column{"asset"}, Column{"mw"}, Column{"reason"}, Column{"none"}});
    CHECK(*f.header() == "ts,asset,mw,reason,none");
    const nlohmann::json row = {{"ts", "2025-11-23T07:25:15.123Z"},
                                {"asset", "site-a/b1"},
                                {"mw", 1.25},
                                {"reason", "peak, \"evening\""},
                                {"ignored", 1}};
    CHECK(f.row(row) == "2025-11-23T07:25:15.123Z,site-a/b1,1.25,\"peak, \"\"evening\"\"\",");
    CHECK(cli::csv_field("plain") == "plain");
    CHECK(cli::csv_field("two\nlines") == "\"two\nlines\"");
}

TEST_CASE("table output aligns columns: numbers right with fixed decimals, text left", "[cli]") {
    RowFormatter f(Format::table, {Column{"asset", 10, -1}, Column{"soc_pct", 7, 1}, Column{"mw", 8, 3},
                                   Column{"seq", 5, -1}, Column{"status", 8, -1}});
    CHECK(*f.header() == "asset       soc_pct  mw        seq    status");
    CHECK(f.row({{"asset", "s/b1"}, {"soc_pct", 50.0}, {"mw", -1.5}, {"seq", 12}, {"status", "idle"}}) ==
          "s/b1           50.0    -1.500     12  idle");
    CHECK(f.row({{"asset", "s/b2"}, {"soc_pct", 7.25}, {"mw", 2.0}, {"seq", 3}, {"status", nullptr}}) ==
          "s/b2            7.2     2.000      3");
    // Every line has the same column positions.
    const auto header = *f.header();
    const auto row = f.row({{"asset", "s/b1"}, {"soc_pct", 50.0}, {"mw", -1.5}, {"seq", 12}, {"status", "idle"}});
    CHECK(header.find("status") == row.find("idle"));
}

TEST_CASE("json output is the row itself, without a header", "[cli]") {
    RowFormatter f(Format::json, {});
    CHECK(!f.header());
    CHECK(f.row({{"a", 1}}) == "{\"a\":1}");
    CHECK(cli::parse_format("table") == Format::table);
    CHECK(!cli::parse_format("xml"));
}

TEST_CASE("the control client calls a port where nothing listens unreachable, not a timeout", "[cli]") {
    cli::ControlClient client("tcp://127.0.0.1:1");
    wire::QueryRequest query;
    query.request_id = cli::new_request_id();
    auto reply = client.request(query, 300);
    REQUIRE(!reply);
    CHECK(reply.error().code == Errc::unavailable);
    CHECK(!client.reached());
}

TEST_CASE("the control client calls a peer that accepts TCP but never answers a timeout", "[cli]") {
    // A listening socket that never accepts: the kernel completes the TCP
    // handshake (as for a SIGSTOPped hub), ZMTP never starts.
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(::listen(fd, 8) == 0);
    socklen_t len = sizeof addr;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);

    cli::ControlClient client("tcp://127.0.0.1:" + std::to_string(ntohs(addr.sin_port)));
    wire::QueryRequest query;
    query.request_id = cli::new_request_id();
    auto reply = client.request(query, 500);
    ::close(fd);
    REQUIRE(!reply);
    CHECK(reply.error().code == Errc::timeout);
    CHECK(client.reached());
}

TEST_CASE("the control client matches replies by request_id and maps error replies", "[cli]") {
    zmq::context_t ctx;
    zmq::socket_t router(ctx, zmq::socket_type::router);
    router.set(zmq::sockopt::linger, 0);
    router.bind("tcp://127.0.0.1:*");
    const std::string endpoint = router.get(zmq::sockopt::last_endpoint);

    // A fake hub: answers an `assets` request with a stray reply first, then
    // its own; any other request with an `error`.
    std::thread hub([&] {
        for (int i = 0; i < 2; ++i) {
            std::vector<zmq::message_t> frames(3);
            // No REQUIRE here: Catch2 assertions are not thread-safe.
            for (auto& f : frames)
                if (!router.recv(f)) return;
            auto request = wire::decode_control(frames[1].to_string_view(), frames[2].to_string_view());
            if (!request) return;
            const auto send = [&](const wire::ControlMessage& m) {
                const auto frame = wire::encode(m);
                router.send(zmq::buffer(frames[0].to_string_view()), zmq::send_flags::sndmore);
                router.send(zmq::buffer(frame.type), zmq::send_flags::sndmore);
                router.send(zmq::buffer(frame.body));
            };
            const auto id = cli::request_id_of(*request);
            if (std::holds_alternative<wire::QueryRequest>(*request)) {
                send(wire::AssetsReply{"someone-else", {}});
                Asset asset;
                asset.name = "b1";
                asset.site_name = "site-a";
                send(wire::AssetsReply{id, {asset}});
            } else {
                send(wire::ErrorReply{id, "not_found", "unknown asset 'x/y'"});
            }
        }
    });

    cli::ControlClient client(endpoint);
    auto assets = cli::query_assets(client, {}, {}, 5000);
    REQUIRE(assets);
    REQUIRE(assets->size() == 1);
    CHECK((*assets)[0].qualified_name() == "site-a/b1");
    CHECK(client.reached());

    wire::HistoryRequest history;
    history.request_id = cli::new_request_id();
    history.asset = "x/y";
    auto refused = client.request(history, 5000);
    REQUIRE(!refused);
    CHECK(refused.error().code == Errc::refused);
    CHECK(refused.error().message == "not_found: unknown asset 'x/y'");
    hub.join();
}
