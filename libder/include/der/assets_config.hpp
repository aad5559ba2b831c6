#pragma once
/// assets.yaml: the fleet's configuration (der-assets.yaml(5)). Loading
/// validates everything; every diagnostic names file, line, column and the
/// field's path (`sites[0].assets[1].max_mw`).

#include "der/model.hpp"
#include "der/util/error.hpp"

#include <string>
#include <string_view>
#include <vector>

namespace der::config {

/// Namespace of the UUIDv5 IDs given to sites and assets that omit `id`:
/// site ID = v5(ns, "site-name"), asset ID = v5(ns, "site-name/asset-name").
/// It is itself v5(DNS namespace, "assets.der.invalid"), and never changes.
extern const Uuid k_id_namespace;

struct Diagnostic {
    std::string file;
    int line = 0;    ///< 1-based; 0 when unknown
    int column = 0;  ///< 1-based; 0 when unknown
    std::string field;
    std::string message;
    /// `assets.yaml:12:7: sites[0].assets[1].max_mw: must be >= 0`
    [[nodiscard]] std::string to_string() const;
};

struct Fleet {
    std::vector<Site> sites;
    double telemetry_s = 4.0;   ///< agents' telemetry interval
    double heartbeat_s = 30.0;  ///< agents' heartbeat interval

    /// By UUID, or by `site/asset` name.
    [[nodiscard]] const Asset* find_asset(std::string_view id_or_name) const;
    /// By UUID or name.
    [[nodiscard]] const Site* find_site(std::string_view id_or_name) const;
    [[nodiscard]] std::vector<const Asset*> all_assets() const;
};

struct Loaded {
    Fleet fleet;
    std::vector<Diagnostic> warnings;  ///< e.g. unknown keys
};

/// Errors: `Errc::not_found` when the file cannot be read, `Errc::config`
/// otherwise; the message holds every diagnostic, one per line.
Result<Loaded> load_file(const std::string& path);
Result<Loaded> parse(std::string_view yaml_text, std::string_view file_name);

/// `fleet` as assets.yaml text that parse() reads back to an equal Fleet:
/// every ID is written out, adapter options keep their dotted keys, numbers
/// their shortest exact form; comments and key order of an original file are
/// not kept. der-launch writes each agent a file of its one asset with it.
std::string to_yaml(const Fleet& fleet);

}  // namespace der::config
