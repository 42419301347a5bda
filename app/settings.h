// Settings of the `warrend` process: the core's Config plus what only the process needs
// (addresses, data directory, storage durability, hashing threads). Loaded from an optional
// TOML file; command-line flags override it. load_settings_file() returns an error message
// naming the bad key instead of guessing.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "core/config.h"
#include "netadapter/driver.h"
#include "store/store.h"

namespace warren {

struct Settings {
    // The core's defaults, but for the commit window, which a server under load wants
    // (docs/CONFIG.md) and the core's own tests, stepping one commit at a time, do not.
    Config core = [] {
        Config c;
        c.commit_coalesce_us = 5000;
        return c;
    }();
    DriverOptions driver;
    std::string data_dir = "./data";
    Synchronous synchronous = Synchronous::normal;
    std::string log_level = "info";
    std::string log_format = "text";
    std::string log_file;    // empty: stderr
    std::string backup_dir;  // empty: DATA_DIR/backups
    // Rate limit of request-error and security log lines (log_event): lines a second, burst.
    double log_lines_per_second = 200;
    double log_burst = 1000;
};

// Returns nullopt on success, else what is wrong with the file.
std::optional<std::string> load_settings_file(const std::string& path, Settings& s);
// The same for a document in memory; errors name `source` as the file.
std::optional<std::string> load_settings_text(std::string_view text, const std::string& source,
                                              Settings& s);
// Rules that join keys and flags, checked once both are applied: every TLS listener needs a
// certificate and key; the STS port defaults to the IRC TLS listener's. Returns what is wrong.
std::optional<std::string> finish_settings(Settings& s);
// The effective settings as TOML (every key, defaults included), secrets redacted: what
// `warrend --check-config` prints.
std::string describe_settings(const Settings& s);
// Parses "HOST:PORT" or "[V6]:PORT". Returns false on malformed input.
bool parse_host_port(const std::string& text, std::string& host, uint16_t& port);

}  // namespace warren
