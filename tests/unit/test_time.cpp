#include "der/util/time.hpp"

#include <catch2/catch.hpp>

using der::format_rfc3339;
using der::parse_duration;
using der::parse_rfc3339;
using der::parse_time;

TEST_CASE("rfc3339 formats UTC with milliseconds", "[util][time]") {
    CHECK(format_rfc3339(0) == "1970-01-01T00:00:00.000Z");
    CHECK(format_rfc3339(1'795'419'115'123) == "2026-11-23T07:31:55.123Z");
    CHECK(format_rfc3339(951'782'400'000) == "2000-02-29T00:00:00.000Z");
}

TEST_CASE("rfc3339 parses offsets, fractions and round-trips", "[util][time]") {
    CHECK(parse_rfc3339("2026-11-23T07:31:55.123Z").value() == 1'795'419'115'123);
    CHECK(parse_rfc3339("2026-11-23T08:31:55.123+01:00").value() == 1'795'419'115'123);
    CHECK(parse_rfc3339("2026-11-23t07:31:55z").value() == 1'795'419'115'000);
    CHECK(parse_rfc3339("2026-11-23 07:31:55.1239999Z").value() == 1'795'419'115'123);
    CHECK(parse_rfc3339("2026-11-23T07:31:55.5Z").value() == 1'795'419'115'500);
    for (std::int64_t ms : {0LL, 1'795'419'115'123LL, 4'102'444'799'999LL})
        CHECK(parse_rfc3339(format_rfc3339(ms)).value() == ms);
}

TEST_CASE("rfc3339 rejects malformed and out-of-range times", "[util][time]") {
    for (const char* bad : {"", "2026-11-23", "2026-11-23T07:31:55", "2026-13-01T00:00:00Z",
                            "2026-02-30T00:00:00Z", "2026-11-23T24:00:00Z", "2026-11-23T07:31:55.Z",
                            "1969-12-31T23:59:59Z", "2026-11-23T07:31:55Zjunk", "2026-11-23T07:31:55+0100"}) {
        INFO(bad);
        const auto r = parse_rfc3339(bad);
        REQUIRE_FALSE(r);
        CHECK(r.error().message.find("RFC 3339") != std::string::npos);
    }
}

TEST_CASE("relative times count from now", "[util][time]") {
    const der::TimestampMs now = 1'795'419'115'123;
    CHECK(parse_time("now", now).value() == now);
    CHECK(parse_time("-1h", now).value() == now - 3'600'000);
    CHECK(parse_time("-15m", now).value() == now - 900'000);
    CHECK(parse_time("+5m", now).value() == now + 300'000);
    CHECK(parse_time("-1h30m", now).value() == now - 5'400'000);
    CHECK(parse_time("-2d", now).value() == now - 172'800'000);
    CHECK(parse_time("2026-11-23T07:31:55.123Z", 0).value() == now);
    CHECK_FALSE(parse_time("-1x", now));
    CHECK_FALSE(parse_time("yesterday", now));
    CHECK_FALSE(parse_time("-", now));
}

TEST_CASE("durations accept seconds and unit sums and refuse the rest", "[util][time]") {
    CHECK(parse_duration("900").value() == 900.0);
    CHECK(parse_duration("1.5").value() == 1.5);
    CHECK(parse_duration("15m").value() == 900.0);
    CHECK(parse_duration("1h30m").value() == 5400.0);
    CHECK(parse_duration("2h").value() == 7200.0);
    CHECK(parse_duration("45s").value() == 45.0);
    CHECK(parse_duration("500ms").value() == Approx(0.5));
    CHECK(parse_duration("1d").value() == 86400.0);
    for (const char* bad : {"", "-5m", "5x", "m", "1h30", "15 m", "nan", "inf", "1e400"}) {
        INFO(bad);
        CHECK_FALSE(parse_duration(bad));
    }
    CHECK(der::format_duration(5400) == "1h30m");
    CHECK(der::format_duration(0.5) == "500ms");
}

TEST_CASE("the fake clock moves only when told and keeps wall and monotonic apart", "[util][time]") {
    der::FakeClock clock{1000};
    CHECK(clock.now_ms() == 1000);
    CHECK(clock.mono_ms() == 0);
    clock.advance_ms(250);
    CHECK(clock.now_ms() == 1250);
    CHECK(clock.mono_ms() == 250);
    clock.set_wall_ms(0);  // a wall-clock step backwards
    CHECK(clock.mono_ms() == 250);
}
