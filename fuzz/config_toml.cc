// libFuzzer target: warrend's TOML configuration loader (app/settings.cc), on documents in
// memory. Checks: it never throws past its caller or crashes; a rejected document gets an
// error that names the file ("warren.toml:LINE:COL: ..." or "warren.toml: ..."); an accepted
// one round-trips: what --check-config prints for it loads back to the same settings.
#include <cstddef>
#include <cstdint>
#include <string>

#include "app/settings.h"
#include "core/base.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view text(reinterpret_cast<const char*>(data), size);
    warren::Settings s;
    if (auto bad = warren::load_settings_text(text, "warren.toml", s)) {
        WARREN_CHECK(bad->starts_with("warren.toml:") && bad->size() > 13);
        return 0;
    }
    std::string shown = warren::describe_settings(s);
    warren::Settings again;
    auto bad = warren::load_settings_text(shown, "effective.toml", again);
    WARREN_CHECK(!bad);
    WARREN_CHECK(warren::describe_settings(again) == shown);
    return 0;
}
