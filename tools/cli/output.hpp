#pragma once
/// Data on stdout as the CLIs print it: JSON lines (one object a line), CSV
/// (a header, then RFC 4180 rows) or an aligned table, written and flushed a
/// line at a time. A closed pipe (EPIPE; SIGPIPE is ignored by
/// install_signal_handlers) is reported, never fatal: `der-tail | head -1`
/// ends quietly.

#include <nlohmann/json_fwd.hpp>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace der::cli {

enum class Format { json, table, csv };
std::optional<Format> parse_format(std::string_view text);

enum class Written { ok, closed };
/// Writes `line` and a newline to stdout with write(2) (no stdio buffer, so
/// each line is out at once). `closed` on EPIPE; throws ExitError(74) on any
/// other write error.
Written write_line(std::string_view line);

/// One column of CSV or table output: `key` names a field of the JSON row
/// object; `precision` (>= 0) fixes the decimals of numbers in tables.
struct Column {
    std::string key;
    std::size_t width = 0;  ///< table only
    int precision = -1;
};

/// A CSV field: quoted when it holds a comma, quote, CR or LF.
std::string csv_field(std::string_view text);
/// A cell's text: strings as they are, null as empty, numbers (in tables
/// with `precision` decimals), objects and arrays as compact JSON.
std::string cell_text(const nlohmann::json& value, Format format, int precision = -1);

/// Turns JSON row objects into lines of one format. For json, the row's dump;
/// for csv and table, the named columns (missing fields print empty) and a
/// header line before the first row.
class RowFormatter {
public:
    RowFormatter(Format format, std::vector<Column> columns);
    /// The header line, or nil for json.
    [[nodiscard]] std::optional<std::string> header() const;
    [[nodiscard]] std::string row(const nlohmann::json& object) const;
    [[nodiscard]] Format format() const { return m_format; }

private:
    Format m_format;
    std::vector<Column> m_columns;
};

/// Writes rows through a RowFormatter, the header before the first one.
class RowWriter {
public:
    explicit RowWriter(RowFormatter formatter) : m_formatter(std::move(formatter)) {}
    /// `closed` once stdout is gone; the caller should end quietly.
    Written write(const nlohmann::json& object);

private:
    RowFormatter m_formatter;
    bool m_header_done = false;
};

}  // namespace der::cli
