#include "schedule.hpp"

#include "der/util/text.hpp"

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include <charconv>
#include <cmath>
#include <map>

namespace der::cli {

namespace {

using nlohmann::json;

std::string_view trim(std::string_view s) {
    const auto first = s.find_first_not_of(" \t\r");
    if (first == std::string_view::npos) return {};
    const auto last = s.find_last_not_of(" \t\r");
    return s.substr(first, last - first + 1);
}

bool skipped(std::string_view line) {
    const auto t = trim(line);
    return t.empty() || t.front() == '#';
}

std::unexpected<Error> line_error(int line, const std::string& message) {
    return fail(Errc::decode, fmt::format("line {}: {}", line, message));
}

Result<double> parse_number(std::string_view text) {
    double value = 0.0;
    const auto* end = text.data() + text.size();
    const auto [ptr, ec] = std::from_chars(text.data(), end, value);
    if (ec != std::errc() || ptr != end || !std::isfinite(value))
        return fail(Errc::decode, fmt::format("'{}' is not a number", text));
    return value;
}

Result<double> parse_duration_field(std::string_view text) {
    auto seconds = parse_duration(text);
    if (!seconds) return fail(Errc::decode, seconds.error().message);
    if (!(*seconds > 0.0)) return fail(Errc::decode, "duration_s must be longer than 0");
    return seconds;
}

/// The fields of one line as text (CSV cells, or JSON values turned to text
/// where the JSON type was right), checked and converted the same way.
struct RawFields {
    std::optional<std::string> asset, site, mw, duration_s, at, reason;
};

Result<ScheduledDispatch> build(int line, const RawFields& raw, TimestampMs now_ms) {
    ScheduledDispatch d;
    d.line = line;
    const bool has_asset = raw.asset && !raw.asset->empty();
    const bool has_site = raw.site && !raw.site->empty();
    if (has_asset == has_site)
        return line_error(line, has_asset ? "give 'asset' or 'site', not both" : "missing 'asset' (or 'site')");
    if (has_asset) d.asset = *raw.asset;
    else d.site = *raw.site;
    if (!raw.mw || raw.mw->empty()) return line_error(line, "missing 'mw'");
    auto mw = parse_number(*raw.mw);
    if (!mw) return line_error(line, "mw: " + mw.error().message);
    d.mw = *mw;
    if (raw.duration_s && !raw.duration_s->empty()) {
        auto seconds = parse_duration_field(*raw.duration_s);
        if (!seconds) return line_error(line, "duration_s: " + seconds.error().message);
        d.duration_s = *seconds;
    }
    if (raw.at && !raw.at->empty()) {
        auto at = parse_time(*raw.at, now_ms);
        if (!at) return line_error(line, "at: " + at.error().message);
        d.at_ms = *at;
    }
    if (raw.reason) d.reason = *raw.reason;
    return d;
}

std::optional<std::string>* field_slot(RawFields& raw, std::string_view name) {
    if (name == "asset") return &raw.asset;
    if (name == "site") return &raw.site;
    if (name == "mw") return &raw.mw;
    if (name == "duration_s") return &raw.duration_s;
    if (name == "at") return &raw.at;
    if (name == "reason") return &raw.reason;
    return nullptr;
}

Result<ScheduledDispatch> parse_json_line(int line, std::string_view text, TimestampMs now_ms) {
    const json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) return line_error(line, "not valid JSON");
    if (!j.is_object()) return line_error(line, "expected a JSON object");
    RawFields raw;
    for (const auto& [key, value] : j.items()) {
        auto* slot = field_slot(raw, key);
        if (slot == nullptr)
            return line_error(line, fmt::format("unknown field '{}' (expected asset, site, mw, duration_s, at, reason)",
                                                key));
        if (value.is_null()) continue;
        if (key == "mw" || key == "duration_s") {
            if (value.is_number()) {
                *slot = value.dump();
                continue;
            }
            if (key == "mw" || !value.is_string())
                return line_error(line, fmt::format("{}: expected a number", key));
        } else if (!value.is_string()) {
            return line_error(line, fmt::format("{}: expected a string", key));
        }
        *slot = value.get<std::string>();
    }
    return build(line, raw, now_ms);
}

}  // namespace

Result<std::vector<std::string>> split_csv_line(std::string_view line) {
    std::vector<std::string> cells;
    std::string cell;
    std::size_t i = 0;
    while (true) {
        cell.clear();
        // Leading blanks before a quoted field are allowed.
        std::size_t j = i;
        while (j < line.size() && (line[j] == ' ' || line[j] == '\t')) ++j;
        if (j < line.size() && line[j] == '"') {
            i = j + 1;
            bool closed = false;
            while (i < line.size()) {
                if (line[i] == '"') {
                    if (i + 1 < line.size() && line[i + 1] == '"') {
                        cell += '"';
                        i += 2;
                        continue;
                    }
                    closed = true;
                    ++i;
                    break;
                }
                cell += line[i++];
            }
            if (!closed) return fail(Errc::decode, "unterminated quoted field");
            while (i < line.size() && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r')) ++i;
            if (i < line.size() && line[i] != ',') return fail(Errc::decode, "text after a quoted field");
            cells.push_back(cell);
        } else {
            const auto comma = line.find(',', i);
            const auto end = comma == std::string_view::npos ? line.size() : comma;
            cells.emplace_back(trim(line.substr(i, end - i)));
            i = end;
        }
        if (i >= line.size()) break;
        ++i;  // the comma
        if (i == line.size()) {  // a trailing comma: one more, empty cell
            cells.emplace_back();
            break;
        }
    }
    return cells;
}

Result<std::vector<ScheduledDispatch>> parse_schedule(std::string_view text, TimestampMs now_ms) {
    // A UTF-8 byte order mark (spreadsheets write one before a CSV header) is not data.
    if (text.starts_with("\xEF\xBB\xBF")) text.remove_prefix(3);
    const std::vector<std::string_view> lines = split_lines(text);

    std::vector<ScheduledDispatch> out;
    std::size_t first = 0;
    while (first < lines.size() && skipped(lines[first])) ++first;
    if (first == lines.size()) return out;

    if (trim(lines[first]).front() == '[')
        return line_error(static_cast<int>(first + 1),
                          "a JSON array: give one JSON object a line (JSON lines; `jq -c '.[]'` makes them), or CSV");
    if (trim(lines[first]).front() == '{') {
        for (std::size_t i = first; i < lines.size(); ++i) {
            if (skipped(lines[i])) continue;
            auto d = parse_json_line(static_cast<int>(i + 1), trim(lines[i]), now_ms);
            if (!d) return std::unexpected(d.error());
            out.push_back(std::move(*d));
        }
        return out;
    }

    // CSV: the first line is the header.
    const int header_line = static_cast<int>(first + 1);
    auto header = split_csv_line(lines[first]);
    if (!header) return line_error(header_line, header.error().message);
    std::map<std::string, int> seen;
    RawFields probe;
    for (const auto& name : *header) {
        if (field_slot(probe, name) == nullptr)
            return line_error(header_line,
                              fmt::format("unknown column '{}' in the CSV header (expected asset, site, mw, "
                                          "duration_s, at, reason; JSON lines start with '{{')",
                                          name));
        if (++seen[name] > 1) return line_error(header_line, fmt::format("column '{}' appears twice", name));
    }
    if ((!seen.contains("asset") && !seen.contains("site")) || !seen.contains("mw"))
        return line_error(header_line, "the CSV header needs the columns 'asset' (or 'site') and 'mw'");

    for (std::size_t i = first + 1; i < lines.size(); ++i) {
        if (skipped(lines[i])) continue;
        const int line = static_cast<int>(i + 1);
        auto cells = split_csv_line(lines[i]);
        if (!cells) return line_error(line, cells.error().message);
        if (cells->size() != header->size())
            return line_error(line, fmt::format("{} fields, the header has {}", cells->size(), header->size()));
        RawFields raw;
        for (std::size_t c = 0; c < cells->size(); ++c) *field_slot(raw, (*header)[c]) = (*cells)[c];
        auto d = build(line, raw, now_ms);
        if (!d) return std::unexpected(d.error());
        out.push_back(std::move(*d));
    }
    return out;
}

}  // namespace der::cli
