#include "adapter_options.hpp"

#include <fmt/core.h>

#include <charconv>
#include <cmath>

namespace der::adapters {

bool OptionReader::has_prefix(std::string_view prefix) const {
    const auto it = m_options.lower_bound(std::string(prefix));
    return it != m_options.end() && std::string_view(it->first).starts_with(prefix);
}

std::optional<std::string> OptionReader::string(const std::string& key) {
    const auto it = m_options.find(key);
    if (it == m_options.end()) return std::nullopt;
    m_used.insert(key);
    return it->second;
}

std::string OptionReader::string_or(const std::string& key, std::string fallback) {
    auto value = string(key);
    return value ? *value : std::move(fallback);
}

std::optional<std::int64_t> OptionReader::integer(const std::string& key, std::int64_t lo, std::int64_t hi) {
    const auto text = string(key);
    if (!text) return std::nullopt;
    std::int64_t value = 0;
    const char* begin = text->data();
    const char* end = begin + text->size();
    // 0x... for register addresses
    int base = 10;
    if (text->size() > 2 && (*text)[0] == '0' && ((*text)[1] == 'x' || (*text)[1] == 'X')) {
        begin += 2;
        base = 16;
    }
    const auto [ptr, ec] = std::from_chars(begin, end, value, base);
    if (ec != std::errc() || ptr != end) {
        error(key, fmt::format("must be an integer, got '{}'", *text));
        return std::nullopt;
    }
    if (value < lo || value > hi) {
        error(key, fmt::format("must be in [{}, {}], got {}", lo, hi, value));
        return std::nullopt;
    }
    return value;
}

std::int64_t OptionReader::integer_or(const std::string& key, std::int64_t lo, std::int64_t hi,
                                      std::int64_t fallback) {
    return integer(key, lo, hi).value_or(fallback);
}

std::optional<double> OptionReader::number(const std::string& key) {
    const auto text = string(key);
    if (!text) return std::nullopt;
    double value = 0.0;
    const auto [ptr, ec] = std::from_chars(text->data(), text->data() + text->size(), value);
    if (ec != std::errc() || ptr != text->data() + text->size() || !std::isfinite(value)) {
        error(key, fmt::format("must be a finite number, got '{}'", *text));
        return std::nullopt;
    }
    return value;
}

bool OptionReader::boolean_or(const std::string& key, bool fallback) {
    const auto text = string(key);
    if (!text) return fallback;
    for (std::string_view yes : {"true", "yes", "on", "1", "y"})
        if (*text == yes) return true;
    for (std::string_view no : {"false", "no", "off", "0", "n"})
        if (*text == no) return false;
    error(key, fmt::format("must be true or false, got '{}'", *text));
    return fallback;
}

std::string OptionReader::choice_or(const std::string& key, std::initializer_list<std::string_view> choices,
                                    std::string fallback) {
    const auto text = string(key);
    if (!text) return fallback;
    for (const auto choice : choices)
        if (*text == choice) return *text;
    std::string list;
    for (const auto choice : choices) list += (list.empty() ? "" : ", ") + std::string(choice);
    error(key, fmt::format("must be one of {}, got '{}'", list, *text));
    return fallback;
}

void OptionReader::error(const std::string& key, const std::string& message) {
    if (m_error) return;
    m_error = Error{Errc::config, fmt::format("{} adapter: adapter.{}: {}", m_kind, key, message)};
}

void OptionReader::consume_prefix(std::string_view prefix) {
    for (auto it = m_options.lower_bound(std::string(prefix));
         it != m_options.end() && std::string_view(it->first).starts_with(prefix); ++it)
        m_used.insert(it->first);
}

Result<void> OptionReader::finish() {
    if (m_error) return std::unexpected(*m_error);
    for (const auto& [key, value] : m_options) {
        if (!m_used.contains(key))
            return fail(Errc::config, fmt::format("{} adapter: adapter.{}: unknown option", m_kind, key));
    }
    return {};
}

}  // namespace der::adapters
