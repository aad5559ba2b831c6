#include "output.hpp"

#include "cli.hpp"

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace der::cli {

std::optional<Format> parse_format(std::string_view text) {
    if (text == "json") return Format::json;
    if (text == "table") return Format::table;
    if (text == "csv") return Format::csv;
    return std::nullopt;
}

Written write_line(std::string_view line) {
    std::string buffer;
    buffer.reserve(line.size() + 1);
    buffer.append(line);
    buffer.push_back('\n');
    std::size_t done = 0;
    while (done < buffer.size()) {
        const ssize_t n = ::write(STDOUT_FILENO, buffer.data() + done, buffer.size() - done);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EPIPE) return Written::closed;
            throw ExitError(io_err, fmt::format("writing to stdout: {}", std::strerror(errno)));
        }
        done += static_cast<std::size_t>(n);
    }
    return Written::ok;
}

std::string csv_field(std::string_view text) {
    if (text.find_first_of(",\"\r\n") == std::string_view::npos) return std::string(text);
    std::string out = "\"";
    for (const char c : text) {
        if (c == '"') out += '"';
        out += c;
    }
    out += '"';
    return out;
}

std::string cell_text(const nlohmann::json& value, Format format, int precision) {
    if (value.is_null()) return {};
    if (value.is_string()) return value.get<std::string>();
    if (value.is_boolean()) return value.get<bool>() ? "true" : "false";
    if (value.is_number_float() && format == Format::table && precision >= 0)
        return fmt::format("{:.{}f}", value.get<double>(), precision);
    return value.dump();  // integers, shortest round-trip doubles, objects, arrays
}

RowFormatter::RowFormatter(Format format, std::vector<Column> columns)
    : m_format(format), m_columns(std::move(columns)) {}

std::optional<std::string> RowFormatter::header() const {
    if (m_format == Format::json) return std::nullopt;
    std::string out;
    for (std::size_t i = 0; i < m_columns.size(); ++i) {
        const auto& column = m_columns[i];
        if (m_format == Format::csv) {
            if (i > 0) out += ',';
            out += csv_field(column.key);
        } else {
            if (i > 0) out += "  ";
            out += fmt::format("{:<{}}", column.key, column.width);
        }
    }
    if (m_format == Format::table) out.erase(out.find_last_not_of(' ') + 1);
    return out;
}

std::string RowFormatter::row(const nlohmann::json& object) const {
    if (m_format == Format::json) return object.dump();
    std::string out;
    for (std::size_t i = 0; i < m_columns.size(); ++i) {
        const auto& column = m_columns[i];
        const auto it = object.find(column.key);
        const std::string text = it == object.end() ? std::string() : cell_text(*it, m_format, column.precision);
        if (m_format == Format::csv) {
            if (i > 0) out += ',';
            out += csv_field(text);
        } else {
            if (i > 0) out += "  ";
            // Numbers right-aligned, text left-aligned; a long cell widens its row only.
            const bool number = it != object.end() && it->is_number();
            out += number ? fmt::format("{:>{}}", text, column.width) : fmt::format("{:<{}}", text, column.width);
        }
    }
    if (m_format == Format::table) out.erase(out.find_last_not_of(' ') + 1);
    return out;
}

Written RowWriter::write(const nlohmann::json& object) {
    if (!m_header_done) {
        m_header_done = true;
        if (auto header = m_formatter.header())
            if (write_line(*header) == Written::closed) return Written::closed;
    }
    return write_line(m_formatter.row(object));
}

}  // namespace der::cli
