#pragma once
/// Time as der uses it: wall-clock instants are int64 milliseconds since the
/// Unix epoch (UTC); durations are seconds as double. In text, instants are
/// RFC 3339 UTC with milliseconds (`2026-11-23T07:31:55.123Z`).

#include "der/util/error.hpp"

#include <cstdint>
#include <string>
#include <string_view>

namespace der {

using TimestampMs = std::int64_t;

/// The clocks a component reads, so timers and the simulation can be driven
/// by a fake clock in tests.
class Clock {
public:
    virtual ~Clock() = default;
    /// Wall clock, Unix milliseconds: for timestamps only, never for timers.
    [[nodiscard]] virtual TimestampMs now_ms() const = 0;
    /// Monotonic milliseconds from an arbitrary origin: for every timer.
    [[nodiscard]] virtual std::int64_t mono_ms() const = 0;
};

class SystemClock final : public Clock {
public:
    [[nodiscard]] TimestampMs now_ms() const override;
    [[nodiscard]] std::int64_t mono_ms() const override;
};

/// A clock that moves only when told to.
class FakeClock final : public Clock {
public:
    explicit FakeClock(TimestampMs start_ms = 1'763'882'715'123) : m_wall_ms(start_ms) {}
    [[nodiscard]] TimestampMs now_ms() const override { return m_wall_ms; }
    [[nodiscard]] std::int64_t mono_ms() const override { return m_mono_ms; }
    void advance_ms(std::int64_t ms) {
        m_wall_ms += ms;
        m_mono_ms += ms;
    }
    void set_wall_ms(TimestampMs ms) { m_wall_ms = ms; }  ///< a wall-clock step; mono unaffected

private:
    TimestampMs m_wall_ms;
    std::int64_t m_mono_ms = 0;
};

TimestampMs now_ms();           ///< system wall clock
std::int64_t mono_ms();         ///< system monotonic clock

/// `2026-11-23T07:31:55.123Z`, always UTC, always milliseconds.
std::string format_rfc3339(TimestampMs ms);

/// RFC 3339 date-time: `T` or space or `t` as separator, optional fraction
/// (truncated to milliseconds), `Z` or a numeric offset. Dates before 1970
/// and out-of-range fields are errors.
Result<TimestampMs> parse_rfc3339(std::string_view text);

/// A point in time as users write it: RFC 3339, `now`, or relative to `now_ms`:
/// `-1h`, `-15m`, `+5m`, `-1h30m`, `+90s`, `-2d`.
Result<TimestampMs> parse_time(std::string_view text, TimestampMs now_ms);

/// A duration as users write it, in seconds: `900` (seconds), `1.5`, `15m`,
/// `1h30m`, `2h`, `45s`, `1d`, `500ms`. Negative durations are errors.
Result<double> parse_duration(std::string_view text);

/// `5400` -> `1h30m`; `0.5` -> `500ms`. For logs and messages.
std::string format_duration(double seconds);

}  // namespace der
