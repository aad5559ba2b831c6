// Implementation details: the assets.yaml format (docs/assets-yaml.md,
// der-assets.yaml(5)).
//
// The document is one YAML map: `telemetry_s`, `heartbeat_s` and `sites`, a
// non-empty list of site maps, each with a list of `assets`. yaml-cpp builds
// the node tree (it throws only on syntax errors, which become a diagnostic);
// validation then walks the tree by hand and never converts with `as<T>()`,
// so a wrong type is a diagnostic, never an exception. Before that, one
// event-only pass counts documents: a second document is an error, and
// YAML::LoadAll is avoided because yaml-cpp 0.7 loops on a stray top-level
// ',' (allocating until the process dies).
//
// Every check records a Diagnostic and carries on, so one run reports every
// problem. A diagnostic points at the value node of a bad value, or at the
// parent map when a required key is missing; lines and columns are yaml-cpp's
// 0-based marks plus one. Unknown keys are warnings (a close match to a known
// key is suggested); a duplicated key inside one map is an error, since
// yaml-cpp itself keeps both.
//
// IDs: an omitted `id` is UUIDv5(k_id_namespace, "site") for a site and
// UUIDv5(k_id_namespace, "site/asset") for an asset. Site and asset IDs share
// one space and must all differ. Names are restricted to [A-Za-z0-9._-]+ and
// may not parse as a UUID, so `site/asset` and an ID can never be confused.
//
// Adapter options: every key of `adapter` other than `type` is kept as a
// string; nested maps are flattened with dotted keys
// (`register_map.soc.address`), lists are refused.

#include "der/assets_config.hpp"

#include <fmt/format.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <optional>
#include <span>
#include <sstream>
#include <unordered_map>

#include <sys/stat.h>

namespace der::config {

// v5(k_namespace_dns, "assets.der.invalid") = c948e670-00cd-5c4f-b03d-ad81d225ec8f,
// spelled out so it is constant-initialised (no static-init order question);
// a unit test checks it against Uuid::v5.
constinit const Uuid k_id_namespace{Uuid::Bytes{0xc9, 0x48, 0xe6, 0x70, 0x00, 0xcd, 0x5c, 0x4f,
                                                0xb0, 0x3d, 0xad, 0x81, 0xd2, 0x25, 0xec, 0x8f}};

std::string Diagnostic::to_string() const {
    std::string out = file.empty() ? std::string("<input>") : file;
    if (line > 0) out += column > 0 ? fmt::format(":{}:{}", line, column) : fmt::format(":{}", line);
    out += ": ";
    if (!field.empty()) {
        out += field;
        out += ": ";
    }
    out += message;
    return out;
}

namespace {

constexpr std::array<std::string_view, 3> k_fleet_keys{"telemetry_s", "heartbeat_s", "sites"};
constexpr std::array<std::string_view, 4> k_site_keys{"name", "id", "timezone", "assets"};
constexpr std::array<std::string_view, 14> k_asset_keys{
    "name",        "id",          "kind",        "capacity_mwh",    "max_mw",
    "min_mw",      "ramp_mw_per_s", "efficiency", "soc_min_pct",    "soc_max_pct",
    "initial_soc_pct", "available", "agent_public_key", "adapter"};
constexpr std::array<std::string_view, 3> k_adapter_types{"sim", "exec", "modbus"};
constexpr std::string_view k_z85_alphabet =
    "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";
constexpr std::size_t k_z85_key_chars = 40;

struct Place {
    int line = 0;    // 1-based, 0 = unknown
    int column = 0;  // 1-based, 0 = unknown
};

Place place_of(const YAML::Node& node) {
    const YAML::Mark mark = node.Mark();
    if (mark.is_null()) return {};
    return {mark.line + 1, mark.column + 1};
}

std::string join_path(std::string_view parent, std::string_view key) {
    return parent.empty() ? std::string(key) : fmt::format("{}.{}", parent, key);
}

std::size_t edit_distance(std::string_view a, std::string_view b) {
    std::vector<std::size_t> row(b.size() + 1);
    for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
    for (std::size_t i = 1; i <= a.size(); ++i) {
        std::size_t diagonal = row[0];
        row[0] = i;
        for (std::size_t j = 1; j <= b.size(); ++j) {
            const std::size_t above = row[j];
            row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
            diagonal = above;
        }
    }
    return row[b.size()];
}

bool is_name_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
}

enum class Need { required, optional };

struct Entry {
    YAML::Node key;
    YAML::Node value;
};

/// The keys of one YAML map, looked up by name.
struct MapFields {
    YAML::Node map;
    std::string path;  // e.g. "sites[0].assets[1]"
    std::map<std::string, Entry, std::less<>> known;
    std::vector<std::string> unknown;

    [[nodiscard]] const Entry* find(std::string_view key) const {
        const auto it = known.find(key);
        return it == known.end() ? nullptr : &it->second;
    }
    [[nodiscard]] std::string field(std::string_view key) const { return join_path(path, key); }
    /// Where a problem with `key` is reported: its value, else the map.
    [[nodiscard]] Place place(std::string_view key) const {
        const Entry* entry = find(key);
        return place_of(entry != nullptr ? entry->value : map);
    }
};

/// Records where each document's first node starts, building nothing.
class DocumentStarts final : public YAML::EventHandler {
public:
    std::vector<YAML::Mark> marks;

    void OnDocumentStart(const YAML::Mark&) override { m_in_document = true; }
    void OnDocumentEnd() override { m_in_document = false; }
    void OnNull(const YAML::Mark& mark, YAML::anchor_t) override { node(mark); }
    void OnAlias(const YAML::Mark& mark, YAML::anchor_t) override { node(mark); }
    void OnScalar(const YAML::Mark& mark, const std::string&, YAML::anchor_t, const std::string&) override {
        node(mark);
    }
    void OnSequenceStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t,
                         YAML::EmitterStyle::value) override {
        node(mark);
    }
    void OnSequenceEnd() override {}
    void OnMapStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {
        node(mark);
    }
    void OnMapEnd() override {}

private:
    bool m_in_document = false;
    void node(const YAML::Mark& mark) {
        if (!m_in_document) return;
        marks.push_back(mark);
        m_in_document = false;  // only the first node of a document
    }
};

/// Where a name, ID or key was first seen, for duplicate diagnostics.
struct Seen {
    std::string field;
    Place place;
    bool derived = false;
};

class Loader {
public:
    explicit Loader(std::string_view file) : m_file(file) {}

    Result<Loaded> load(std::string_view text) {
        Fleet fleet;
        try {
            const std::string owned(text);
            if (check_documents(owned)) {
                const YAML::Node root = YAML::Load(owned);
                if (root.IsNull()) {
                    error({1, 1}, "", "empty file: expected a map with a `sites` list");
                } else {
                    read_fleet(root, fleet);
                }
            }
        } catch (const YAML::Exception& e) {
            const Place at = e.mark.is_null() ? Place{} : Place{e.mark.line + 1, e.mark.column + 1};
            error(at, "", fmt::format("YAML syntax error: {}", e.msg));
        } catch (const std::exception& e) {
            error({}, "", fmt::format("cannot read: {}", e.what()));
        }
        sort_by_place(m_warnings);
        if (!m_errors.empty()) {
            sort_by_place(m_errors);
            std::string message;
            for (const Diagnostic& d : m_errors) {
                if (!message.empty()) message += '\n';
                message += d.to_string();
            }
            return fail(Errc::config, std::move(message));
        }
        return Loaded{std::move(fleet), std::move(m_warnings)};
    }

private:
    std::string m_file;
    std::vector<Diagnostic> m_errors;
    std::vector<Diagnostic> m_warnings;
    std::unordered_map<Uuid, Seen> m_ids;
    std::map<std::string, Seen, std::less<>> m_site_names;
    std::map<std::string, Seen, std::less<>> m_public_keys;
    std::optional<Seen> m_first_with_key;
    std::optional<Seen> m_first_without_key;
    std::size_t m_with_key = 0;
    std::size_t m_without_key = 0;

    /// Refuses a second document, and the stray top-level ',' on which
    /// yaml-cpp 0.7 never finishes a document (it yields the same empty one
    /// for ever: yaml-cpp PR #1319, why YAML::LoadAll is never called).
    /// False when the text must not be loaded.
    bool check_documents(const std::string& text) {
        std::istringstream stream(text);
        YAML::Parser parser(stream);
        DocumentStarts starts;
        for (int i = 0; i < 2 && parser.HandleNextDocument(starts); ++i) {
        }
        if (starts.marks.size() < 2) return true;
        const YAML::Mark& first = starts.marks[0];
        const YAML::Mark& second = starts.marks[1];
        const Place at{second.line + 1, second.column + 1};
        if (second.pos != first.pos) {
            error(at, "", "only one YAML document is allowed");
            return true;
        }
        const auto pos = static_cast<std::size_t>(second.pos);
        error(at, "", fmt::format("YAML syntax error: unexpected '{}'", pos < text.size() ? text[pos] : '?'));
        return false;
    }

    static void sort_by_place(std::vector<Diagnostic>& list) {
        std::stable_sort(list.begin(), list.end(), [](const Diagnostic& a, const Diagnostic& b) {
            return std::pair(a.line, a.column) < std::pair(b.line, b.column);
        });
    }

    void error(Place at, std::string field, std::string message) {
        m_errors.push_back(Diagnostic{m_file, at.line, at.column, std::move(field), std::move(message)});
    }
    void warn(Place at, std::string field, std::string message) {
        m_warnings.push_back(Diagnostic{m_file, at.line, at.column, std::move(field), std::move(message)});
    }
    [[nodiscard]] std::string where(const Seen& seen) const {
        return fmt::format("{}:{}:{}, {}", m_file.empty() ? "<input>" : m_file, seen.place.line,
                           seen.place.column, seen.field);
    }

    /// Splits a map into the keys the format knows and warns about the rest.
    /// An empty `known` accepts every key (adapter options).
    MapFields fields(const YAML::Node& map, std::string path, std::span<const std::string_view> known) {
        MapFields out{map, std::move(path), {}, {}};
        std::map<std::string, Place, std::less<>> first_place;
        for (const auto& pair : map) {
            const YAML::Node& key = pair.first;
            if (!key.IsScalar()) {
                error(place_of(key), out.path, "keys must be plain strings");
                continue;
            }
            const std::string& name = key.Scalar();
            const Place at = place_of(key);
            if (const auto it = first_place.find(name); it != first_place.end()) {
                error(at, out.field(name),
                      fmt::format("duplicate key (first at line {})", it->second.line));
                continue;
            }
            first_place.emplace(name, at);
            if (known.empty() || std::find(known.begin(), known.end(), name) != known.end()) {
                out.known.emplace(name, Entry{key, pair.second});
                continue;
            }
            out.unknown.push_back(name);
            std::string message = "unknown key, ignored";
            if (const auto guess = closest(name, known)) {
                message += fmt::format("; did you mean '{}'?", *guess);
            }
            warn(at, out.field(name), std::move(message));
        }
        return out;
    }

    static std::optional<std::string_view> closest(std::string_view name,
                                                   std::span<const std::string_view> candidates) {
        std::optional<std::string_view> best;
        std::size_t best_distance = 3;  // suggest only within two edits
        for (const std::string_view candidate : candidates) {
            const std::size_t distance = edit_distance(name, candidate);
            if (distance < best_distance) {
                best = candidate;
                best_distance = distance;
            }
        }
        return best;
    }

    void missing(const MapFields& f, std::string_view key) {
        std::string message = "required key is missing";
        for (const std::string& other : f.unknown) {
            if (edit_distance(other, key) <= 2) {
                message += fmt::format(" ('{}' is there: a typo?)", other);
                break;
            }
        }
        error(place_of(f.map), f.field(key), std::move(message));
    }

    /// The number under `key`: absent gives `fallback` (absent and no
    /// fallback is an error); nullopt when invalid, with the error recorded.
    std::optional<double> number(const MapFields& f, std::string_view key, std::optional<double> fallback,
                                 bool (*valid)(double), std::string_view rule) {
        const Entry* entry = f.find(key);
        if (entry == nullptr) {
            if (!fallback) missing(f, key);
            return fallback;
        }
        const YAML::Node& node = entry->value;
        double value = 0.0;
        if (!node.IsScalar() || !YAML::convert<double>::decode(node, value)) {
            error(place_of(node), f.field(key), fmt::format("must be a number, got {}", describe(node)));
            return std::nullopt;
        }
        if (!std::isfinite(value)) {
            error(place_of(node), f.field(key), fmt::format("must be a finite number, got {}", node.Scalar()));
            return std::nullopt;
        }
        if (!valid(value)) {
            error(place_of(node), f.field(key), fmt::format("{}, got {}", rule, node.Scalar()));
            return std::nullopt;
        }
        return value;
    }

    /// A scalar string under `key`; nullopt when absent or invalid.
    std::optional<std::string> text(const MapFields& f, std::string_view key, Need need) {
        const Entry* entry = f.find(key);
        if (entry == nullptr) {
            if (need == Need::required) missing(f, key);
            return std::nullopt;
        }
        if (!entry->value.IsScalar()) {
            error(place_of(entry->value), f.field(key),
                  fmt::format("must be a string, got {}", describe(entry->value)));
            return std::nullopt;
        }
        return entry->value.Scalar();
    }

    static std::string describe(const YAML::Node& node) {
        switch (node.Type()) {
        case YAML::NodeType::Scalar: return fmt::format("'{}'", node.Scalar());
        case YAML::NodeType::Sequence: return "a list";
        case YAML::NodeType::Map: return "a map";
        case YAML::NodeType::Null: return "nothing";
        case YAML::NodeType::Undefined: break;
        }
        return "nothing";
    }

    /// `name`: required, [A-Za-z0-9._-]+, not "." or "..", not a UUID.
    std::optional<std::string> name(const MapFields& f) {
        auto value = text(f, "name", Need::required);
        if (!value) return std::nullopt;
        const bool charset = !value->empty() && std::all_of(value->begin(), value->end(), is_name_char);
        if (!charset || *value == "." || *value == "..") {
            error(f.place("name"), f.field("name"),
                  fmt::format("must be letters, digits, '.', '_' or '-' (no '/', no spaces), got '{}'", *value));
            return std::nullopt;
        }
        if (Uuid::parse(*value)) {
            error(f.place("name"), f.field("name"), "must not be a UUID (it would be read as an ID)");
            return std::nullopt;
        }
        return value;
    }

    /// The explicit `id`, or the one derived from `derive_from` (nullopt
    /// when the name is invalid: no ID to check then).
    std::optional<Uuid> id(const MapFields& f, const std::optional<std::string>& derive_from) {
        const Entry* entry = f.find("id");
        if (entry == nullptr) {
            if (!derive_from) return std::nullopt;
            const Uuid derived = Uuid::v5(k_id_namespace, *derive_from);
            claim_id(derived, Seen{f.field("id"), place_of(f.map), true}, *derive_from);
            return derived;
        }
        auto spelled = text(f, "id", Need::optional);
        if (!spelled) return std::nullopt;
        auto parsed = Uuid::parse(*spelled);
        if (!parsed) {
            error(f.place("id"), f.field("id"), fmt::format("must be a UUID (8-4-4-4-12 hex digits), got '{}'", *spelled));
            return std::nullopt;
        }
        if (parsed->is_nil()) {
            error(f.place("id"), f.field("id"), "must not be the nil UUID");
            return std::nullopt;
        }
        claim_id(*parsed, Seen{f.field("id"), f.place("id"), false}, {});
        return *parsed;
    }

    void claim_id(const Uuid& id, Seen seen, std::string_view derived_from) {
        const auto [it, inserted] = m_ids.emplace(id, seen);
        if (inserted) return;
        // Two derived IDs only meet when two names are equal, already an error.
        if (it->second.derived && seen.derived) return;
        const std::string what = seen.derived ? fmt::format("derived ID {} (from '{}')", id.to_string(), derived_from)
                                              : fmt::format("ID {}", id.to_string());
        error(seen.place, seen.field, fmt::format("duplicate {}: already the ID at {}", what, where(it->second)));
    }

    void read_fleet(const YAML::Node& root, Fleet& fleet) {
        if (!root.IsMap()) {
            error(place_of(root), "", "the file must be a map with a `sites` list");
            return;
        }
        const MapFields f = fields(root, "", k_fleet_keys);
        // Bounded: below 0.1 s an agent floods the hub and its own log; beyond
        // an hour (a day for heartbeats) the offline threshold (3 intervals)
        // is meaningless and its millisecond arithmetic can overflow.
        const auto telemetry = [](double v) { return v >= 0.1 && v <= 3'600.0; };
        const auto heartbeat = [](double v) { return v >= 0.1 && v <= 86'400.0; };
        if (auto v = number(f, "telemetry_s", 4.0, telemetry, "must be between 0.1 and 3600 (seconds)"))
            fleet.telemetry_s = *v;
        if (auto v = number(f, "heartbeat_s", 30.0, heartbeat, "must be between 0.1 and 86400 (seconds)"))
            fleet.heartbeat_s = *v;

        const Entry* sites = f.find("sites");
        if (sites == nullptr) {
            missing(f, "sites");
            return;
        }
        if (!sites->value.IsSequence() || sites->value.size() == 0) {
            error(place_of(sites->value), "sites", "must be a non-empty list of sites");
            return;
        }
        std::size_t index = 0;
        for (const auto& node : sites->value) {
            if (auto site = read_site(node, index)) fleet.sites.push_back(std::move(*site));
            ++index;
        }
        check_public_keys_all_or_none();
    }

    std::optional<Site> read_site(const YAML::Node& node, std::size_t index) {
        const std::string path = fmt::format("sites[{}]", index);
        if (!node.IsMap()) {
            error(place_of(node), path, "must be a map with `name` and `assets`");
            return std::nullopt;
        }
        const MapFields f = fields(node, path, k_site_keys);
        Site site;
        const auto site_name = name(f);
        if (site_name) {
            const Seen seen{f.field("name"), f.place("name"), false};
            if (const auto [it, inserted] = m_site_names.emplace(*site_name, seen); !inserted) {
                error(seen.place, seen.field,
                      fmt::format("duplicate site name '{}': already at {}", *site_name, where(it->second)));
            }
            site.name = *site_name;
        }
        if (auto site_id = id(f, site_name)) site.id = *site_id;
        if (auto zone = text(f, "timezone", Need::optional)) {
            const bool plausible =
                !zone->empty() && zone->front() != '/' && zone->find("..") == std::string::npos &&
                std::all_of(zone->begin(), zone->end(), [](char c) { return is_name_char(c) || c == '/' || c == '+'; });
            if (plausible) {
                site.timezone = *zone;
            } else {
                error(f.place("timezone"), f.field("timezone"),
                      fmt::format("must be an IANA time zone name such as Europe/Berlin, got '{}'", *zone));
            }
        }

        const Entry* assets = f.find("assets");
        if (assets == nullptr) {
            missing(f, "assets");
            return site;
        }
        if (assets->value.IsSequence() && assets->value.size() == 0) {
            warn(place_of(assets->value), f.field("assets"), "site has no assets");
            return site;
        }
        if (!assets->value.IsSequence()) {
            error(place_of(assets->value), f.field("assets"), "must be a list of assets");
            return site;
        }
        std::map<std::string, Seen, std::less<>> asset_names;
        std::size_t asset_index = 0;
        for (const auto& asset_node : assets->value) {
            const std::string asset_path = fmt::format("{}.assets[{}]", path, asset_index++);
            if (auto asset = read_asset(asset_node, asset_path, site_name, site, asset_names)) {
                site.assets.push_back(std::move(*asset));
            }
        }
        return site;
    }

    std::optional<Asset> read_asset(const YAML::Node& node, const std::string& path,
                                    const std::optional<std::string>& site_name, const Site& site,
                                    std::map<std::string, Seen, std::less<>>& asset_names) {
        if (!node.IsMap()) {
            error(place_of(node), path, "must be a map with `name` and the battery's limits");
            return std::nullopt;
        }
        const MapFields f = fields(node, path, k_asset_keys);
        Asset asset;
        asset.site_id = site.id;
        asset.site_name = site.name;

        const auto asset_name = name(f);
        std::optional<std::string> qualified;
        if (asset_name) {
            asset.name = *asset_name;
            const Seen seen{f.field("name"), f.place("name"), false};
            if (const auto [it, inserted] = asset_names.emplace(*asset_name, seen); !inserted) {
                error(seen.place, seen.field,
                      fmt::format("duplicate asset name '{}' in this site: already at {}", *asset_name,
                                  where(it->second)));
            }
            if (site_name) qualified = fmt::format("{}/{}", *site_name, *asset_name);
        }
        if (auto asset_id = id(f, qualified)) asset.id = *asset_id;

        if (auto kind = text(f, "kind", Need::optional); kind && *kind != "bess") {
            error(f.place("kind"), f.field("kind"), fmt::format("must be 'bess' (the only kind), got '{}'", *kind));
        }

        BessLimits& limits = asset.limits;
        const auto positive = [](double v) { return v > 0.0; };
        const auto non_negative = [](double v) { return v >= 0.0; };
        const auto non_positive = [](double v) { return v <= 0.0; };
        const auto efficiency = [](double v) { return v > 0.0 && v <= 1.0; };
        const auto percent = [](double v) { return v >= 0.0 && v <= 100.0; };
        const auto any = [](double) { return true; };
        const auto capacity = number(f, "capacity_mwh", std::nullopt, positive, "must be > 0");
        const auto max_mw = number(f, "max_mw", std::nullopt, non_negative, "must be >= 0 (the discharge limit)");
        const auto min_mw = number(f, "min_mw", std::nullopt, non_positive, "must be <= 0 (the charge limit)");
        const auto ramp = number(f, "ramp_mw_per_s", 0.0, non_negative, "must be >= 0 (0 = no ramp limit)");
        const auto eta = number(f, "efficiency", 0.9, efficiency, "must be in (0, 1]");
        const auto soc_min = number(f, "soc_min_pct", 0.0, percent, "must be in [0, 100]");
        const auto soc_max = number(f, "soc_max_pct", 100.0, percent, "must be in [0, 100]");
        const auto initial = number(f, "initial_soc_pct", 50.0, any, "");
        limits.capacity_mwh = capacity.value_or(0.0);
        limits.max_mw = max_mw.value_or(0.0);
        limits.min_mw = min_mw.value_or(0.0);
        limits.ramp_mw_per_s = ramp.value_or(0.0);
        limits.efficiency = eta.value_or(0.9);
        if (soc_min && soc_max && *soc_min >= *soc_max) {
            const std::string_view key = f.find("soc_max_pct") != nullptr ? "soc_max_pct" : "soc_min_pct";
            error(f.place(key), f.field(key),
                  fmt::format("soc_max_pct ({}) must be greater than soc_min_pct ({})", *soc_max, *soc_min));
        } else if (soc_min && soc_max) {
            limits.soc_min_pct = *soc_min;
            limits.soc_max_pct = *soc_max;
            if (initial && (*initial < *soc_min || *initial > *soc_max)) {
                error(f.place("initial_soc_pct"), f.field("initial_soc_pct"),
                      fmt::format("{} must be within the SOC window [{}, {}]",
                                  f.find("initial_soc_pct") != nullptr ? fmt::format("{}", *initial)
                                                                       : fmt::format("the default {}", *initial),
                                  *soc_min, *soc_max));
            }
        }
        asset.initial_soc_pct = initial.value_or(50.0);

        if (const Entry* entry = f.find("available")) {
            bool value = true;
            if (entry->value.IsScalar() && YAML::convert<bool>::decode(entry->value, value)) {
                asset.available = value;
            } else {
                error(place_of(entry->value), f.field("available"),
                      fmt::format("must be true or false, got {}", describe(entry->value)));
            }
        }

        read_public_key(f, asset);
        read_adapter(f, asset.adapter);
        return asset;
    }

    void read_public_key(const MapFields& f, Asset& asset) {
        const Seen here{f.path, place_of(f.map), false};
        const Entry* entry = f.find("agent_public_key");
        if (entry == nullptr) {
            if (!m_first_without_key) m_first_without_key = here;
            ++m_without_key;
            return;
        }
        if (!m_first_with_key) m_first_with_key = here;
        ++m_with_key;
        auto key = text(f, "agent_public_key", Need::optional);
        if (!key) return;
        const bool z85 = key->size() == k_z85_key_chars &&
                         key->find_first_not_of(k_z85_alphabet) == std::string::npos;
        if (!z85) {
            error(f.place("agent_public_key"), f.field("agent_public_key"),
                  fmt::format("must be a Z85 CURVE public key: exactly {} characters of the Z85 alphabet",
                              k_z85_key_chars));
            return;
        }
        const Seen seen{f.field("agent_public_key"), f.place("agent_public_key"), false};
        if (const auto [it, inserted] = m_public_keys.emplace(*key, seen); !inserted) {
            error(seen.place, seen.field,
                  fmt::format("duplicate agent_public_key: already the key at {}", where(it->second)));
            return;
        }
        asset.agent_public_key = *key;
    }

    /// DESIGN.md: keys on some assets but not others is a configuration error.
    void check_public_keys_all_or_none() {
        if (m_with_key == 0 || m_without_key == 0) return;
        error(m_first_without_key->place, m_first_without_key->field + ".agent_public_key",
              fmt::format("missing: {} asset(s) have an agent_public_key (first at {}) and {} do not; "
                          "CURVE needs a key on every asset or on none",
                          m_with_key, where(*m_first_with_key), m_without_key));
    }

    void read_adapter(const MapFields& asset_fields, AdapterConfig& adapter) {
        const Entry* entry = asset_fields.find("adapter");
        if (entry == nullptr) return;  // the default: {type: sim}
        const std::string path = asset_fields.field("adapter");
        if (!entry->value.IsMap()) {
            error(place_of(entry->value), path, fmt::format("must be a map with `type`, got {}", describe(entry->value)));
            return;
        }
        const MapFields f = fields(entry->value, path, {});
        for (const auto& [key, item] : f.known) {
            if (key == "type") {
                auto type = text(f, "type", Need::optional);
                if (!type) continue;
                if (std::find(k_adapter_types.begin(), k_adapter_types.end(), *type) == k_adapter_types.end()) {
                    error(f.place("type"), f.field("type"),
                          fmt::format("must be one of sim, exec, modbus, got '{}'", *type));
                    continue;
                }
                adapter.kind = *type;
            } else {
                flatten_option(item.value, key, f.field(key), adapter.options);
            }
        }
    }

    void flatten_option(const YAML::Node& node, const std::string& key, const std::string& path,
                        std::map<std::string, std::string>& options) {
        if (node.IsMap()) {
            const MapFields f = fields(node, path, {});
            for (const auto& [child, item] : f.known) {
                flatten_option(item.value, key + "." + child, f.field(child), options);
            }
            return;
        }
        if (node.IsSequence()) {
            error(place_of(node), path, "lists are not supported in adapter options (use a map)");
            return;
        }
        const std::string value = node.IsScalar() ? node.Scalar() : std::string();
        if (!options.emplace(key, value).second) {
            error(place_of(node), path, fmt::format("adapter option '{}' is given twice", key));
        }
    }
};

}  // namespace

Result<Loaded> parse(std::string_view yaml_text, std::string_view file_name) {
    return Loader(file_name).load(yaml_text);
}

namespace {
constexpr off_t k_max_file_bytes = off_t{64} << 20;
}  // namespace

Result<Loaded> load_file(const std::string& path) {
    // Not an endless file: `-c /dev/zero` grew until memory ran out. (A pipe,
    // as from `<(...)`, is read like a file, up to the same size.)
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return fail(Errc::not_found, fmt::format("{}: {}", path, std::strerror(errno)));
    if (S_ISDIR(st.st_mode)) return fail(Errc::not_found, fmt::format("{}: is a directory", path));
    if (S_ISREG(st.st_mode) && st.st_size > k_max_file_bytes)
        return fail(Errc::config, fmt::format("{}: {} bytes; a fleet file is at most {} MiB", path, st.st_size,
                                              k_max_file_bytes >> 20));
    std::FILE* file = std::fopen(path.c_str(), "rb");
    if (file == nullptr) return fail(Errc::not_found, fmt::format("{}: {}", path, std::strerror(errno)));
    std::string text;
    std::array<char, 16384> buffer{};
    std::size_t got = 0;
    while ((got = std::fread(buffer.data(), 1, buffer.size(), file)) > 0) {
        text.append(buffer.data(), got);
        if (text.size() > static_cast<std::size_t>(k_max_file_bytes)) {  // grew while read
            std::fclose(file);
            return fail(Errc::config, fmt::format("{}: a fleet file is at most {} MiB", path, k_max_file_bytes >> 20));
        }
    }
    const int read_errno = std::ferror(file) != 0 ? errno : 0;
    std::fclose(file);
    if (read_errno != 0) return fail(Errc::not_found, fmt::format("{}: {}", path, std::strerror(read_errno)));
    return parse(text, path);
}

std::string to_yaml(const Fleet& fleet) {
    // Numbers as their shortest round-trip text (yaml-cpp's own double
    // output prints 17 digits); strings are quoted by yaml-cpp where needed.
    const auto number = [](double v) { return fmt::format("{}", v); };
    YAML::Emitter out;
    out << YAML::BeginMap;
    out << YAML::Key << "telemetry_s" << YAML::Value << number(fleet.telemetry_s);
    out << YAML::Key << "heartbeat_s" << YAML::Value << number(fleet.heartbeat_s);
    out << YAML::Key << "sites" << YAML::Value << YAML::BeginSeq;
    for (const Site& site : fleet.sites) {
        out << YAML::BeginMap;
        out << YAML::Key << "name" << YAML::Value << site.name;
        out << YAML::Key << "id" << YAML::Value << site.id.to_string();
        if (!site.timezone.empty()) out << YAML::Key << "timezone" << YAML::Value << site.timezone;
        out << YAML::Key << "assets" << YAML::Value << YAML::BeginSeq;
        for (const Asset& asset : site.assets) {
            const BessLimits& l = asset.limits;
            out << YAML::BeginMap;
            out << YAML::Key << "name" << YAML::Value << asset.name;
            out << YAML::Key << "id" << YAML::Value << asset.id.to_string();
            out << YAML::Key << "capacity_mwh" << YAML::Value << number(l.capacity_mwh);
            out << YAML::Key << "max_mw" << YAML::Value << number(l.max_mw);
            out << YAML::Key << "min_mw" << YAML::Value << number(l.min_mw);
            out << YAML::Key << "ramp_mw_per_s" << YAML::Value << number(l.ramp_mw_per_s);
            out << YAML::Key << "efficiency" << YAML::Value << number(l.efficiency);
            out << YAML::Key << "soc_min_pct" << YAML::Value << number(l.soc_min_pct);
            out << YAML::Key << "soc_max_pct" << YAML::Value << number(l.soc_max_pct);
            out << YAML::Key << "initial_soc_pct" << YAML::Value << number(asset.initial_soc_pct);
            out << YAML::Key << "available" << YAML::Value << asset.available;
            if (!asset.agent_public_key.empty())
                out << YAML::Key << "agent_public_key" << YAML::Value << asset.agent_public_key;
            out << YAML::Key << "adapter" << YAML::Value << YAML::BeginMap;
            out << YAML::Key << "type" << YAML::Value << asset.adapter.kind;
            for (const auto& [key, value] : asset.adapter.options) {
                // A dotted key reads back as the same flattened option.
                out << YAML::Key << key << YAML::Value << YAML::DoubleQuoted << value;
            }
            out << YAML::EndMap;
            out << YAML::EndMap;
        }
        out << YAML::EndSeq;
        out << YAML::EndMap;
    }
    out << YAML::EndSeq;
    out << YAML::EndMap;
    std::string text = out.c_str();
    text += '\n';
    return text;
}

const Asset* Fleet::find_asset(std::string_view id_or_name) const {
    if (const auto id = Uuid::parse(id_or_name)) {
        for (const Site& site : sites) {
            for (const Asset& asset : site.assets) {
                if (asset.id == *id) return &asset;
            }
        }
        return nullptr;
    }
    const auto slash = id_or_name.find('/');
    if (slash == std::string_view::npos) return nullptr;
    const Site* site = find_site(id_or_name.substr(0, slash));
    if (site == nullptr) return nullptr;
    const std::string_view asset_name = id_or_name.substr(slash + 1);
    for (const Asset& asset : site->assets) {
        if (asset.name == asset_name) return &asset;
    }
    return nullptr;
}

const Site* Fleet::find_site(std::string_view id_or_name) const {
    const auto id = Uuid::parse(id_or_name);
    for (const Site& site : sites) {
        if (id ? site.id == *id : site.name == id_or_name) return &site;
    }
    return nullptr;
}

std::vector<const Asset*> Fleet::all_assets() const {
    std::vector<const Asset*> out;
    for (const Site& site : sites) {
        for (const Asset& asset : site.assets) out.push_back(&asset);
    }
    return out;
}

}  // namespace der::config
