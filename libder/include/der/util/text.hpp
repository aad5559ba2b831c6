#pragma once
/// Small text helpers shared by the programs.

#include <string_view>
#include <vector>

namespace der {

/// The lines of `text`, split at '\n' (without it), empty ones included: a
/// text ending in '\n' ends with an empty line. Views into `text`.
inline std::vector<std::string_view> split_lines(std::string_view text) {
    std::vector<std::string_view> lines;
    for (std::size_t start = 0;;) {
        const auto nl = text.find('\n', start);
        lines.push_back(text.substr(start, nl == std::string_view::npos ? std::string_view::npos : nl - start));
        if (nl == std::string_view::npos) return lines;
        start = nl + 1;
    }
}

}  // namespace der
