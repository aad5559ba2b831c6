#pragma once
/// Typed reads of an adapter's string options (AdapterConfig::options), for
/// the adapters' constructors. The first error wins and names the option as
/// assets.yaml spells it (`adapter.map.soc_pct.address`); unknown keys are
/// an error too, so a typo never silently drops a setting.

#include "der/util/error.hpp"

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>

namespace der::adapters {

class OptionReader {
public:
    OptionReader(std::string_view kind, const std::map<std::string, std::string>& options)
        : m_kind(kind), m_options(options) {}

    [[nodiscard]] bool has(const std::string& key) const { return m_options.contains(key); }
    /// Whether any option starts with `prefix` (e.g. "map.soc_pct.").
    [[nodiscard]] bool has_prefix(std::string_view prefix) const;

    std::optional<std::string> string(const std::string& key);
    std::string string_or(const std::string& key, std::string fallback);
    /// An integer in [lo, hi].
    std::optional<std::int64_t> integer(const std::string& key, std::int64_t lo, std::int64_t hi);
    std::int64_t integer_or(const std::string& key, std::int64_t lo, std::int64_t hi, std::int64_t fallback);
    /// A finite number.
    std::optional<double> number(const std::string& key);
    /// true/false (also yes/no, on/off, 1/0).
    bool boolean_or(const std::string& key, bool fallback);
    /// One of `choices`.
    std::string choice_or(const std::string& key, std::initializer_list<std::string_view> choices,
                          std::string fallback);

    /// Records an error about `key` (only the first is kept).
    void error(const std::string& key, const std::string& message);
    /// Marks keys under `prefix` as used without reading them.
    void consume_prefix(std::string_view prefix);
    /// The first error, or an error naming the first option nobody read.
    Result<void> finish();

private:
    std::string m_kind;
    const std::map<std::string, std::string>& m_options;
    std::set<std::string, std::less<>> m_used;
    std::optional<Error> m_error;
};

}  // namespace der::adapters
