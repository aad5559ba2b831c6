#pragma once
/// What the fuzz targets share: a property check that stops the run the way a
/// sanitizer does, so the engine (libFuzzer or standalone_main.cpp) keeps the
/// input as a crash artifact.

#include <cstdio>
#include <cstdlib>
#include <string_view>

namespace der::fuzz {

/// Aborts with `what` (and `detail`, e.g. a decoder's message) on stderr
/// unless `ok`.
inline void require(bool ok, std::string_view what, std::string_view detail = {}) {
    if (ok) return;
    const auto put = [](std::string_view text) { std::fwrite(text.data(), 1, text.size(), stderr); };
    put("==FUZZ PROPERTY FAILED: ");
    put(what);
    if (!detail.empty()) {
        put(": ");
        put(detail);
    }
    put("\n");
    std::abort();
}

}  // namespace der::fuzz
