// warrend: the Warren chat server. Wiring only: flags and config, the database, the core,
// and the production driver.
#include <sodium.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <span>

#include "app/settings.h"
#include "core/server.h"

namespace {

class SodiumEntropy final : public warren::Entropy {
  public:
    void fill(std::span<uint8_t> out) override { randombytes_buf(out.data(), out.size()); }
};

int64_t wall_now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"warrend: the Warren chat server"};
    std::string listen, data_dir, config_path, log_level, sync;
    app.add_option("--listen", listen,
                   "HOST:PORT to accept clients on (default 127.0.0.1:7070; "
                   "port 0 picks a free port)");
    app.add_option("--data-dir", data_dir, "directory for the SQLite database (default ./data)");
    app.add_option("--config", config_path, "TOML configuration file")->check(CLI::ExistingFile);
    app.add_option("--log-level", log_level, "trace, debug, info, warn, error");
    app.add_option("--synchronous", sync, "storage durability: normal or full")
        ->check(CLI::IsMember({"normal", "full"}));
    app.set_version_flag("--version", WARREN_VERSION);
    CLI11_PARSE(app, argc, argv);

    if (sodium_init() < 0) {
        std::fprintf(stderr, "libsodium failed to initialise\n");
        return 1;
    }
    warren::Settings s;
    if (!config_path.empty()) {
        if (auto bad = warren::load_settings_file(config_path, s)) {
            std::fprintf(stderr, "config: %s\n", bad->c_str());
            return 2;
        }
    }
    if (!listen.empty() &&
        !warren::parse_host_port(listen, s.driver.listen_host, s.driver.listen_port)) {
        std::fprintf(stderr, "--listen must be HOST:PORT\n");
        return 2;
    }
    if (!data_dir.empty()) s.data_dir = data_dir;
    if (!log_level.empty()) s.log_level = log_level;
    if (!sync.empty())
        s.synchronous = sync == "full" ? warren::Synchronous::full : warren::Synchronous::normal;
    spdlog::set_level(spdlog::level::from_str(s.log_level));
    spdlog::set_default_logger(spdlog::stderr_color_mt("warrend"));
    spdlog::set_level(spdlog::level::from_str(s.log_level));

    std::error_code ec;
    std::filesystem::create_directories(s.data_dir, ec);
    if (ec) {
        spdlog::error("cannot create data directory {}: {}", s.data_dir, ec.message());
        return 1;
    }
    std::string db_path = (std::filesystem::path(s.data_dir) / "warren.db").string();
    auto store = warren::Store::open(db_path, s.synchronous);
    if (!store.is_ok()) {
        spdlog::error("{}", store.status().message());
        return 1;
    }
    auto snap = store.value()->load(s.core.room_cache_messages_max, wall_now_ms());
    if (!snap.is_ok()) {
        spdlog::error("cannot load {}: {}", db_path, snap.status().message());
        return 1;
    }
    spdlog::info("loaded {}: {} users, {} rooms, newest message id {}", db_path,
                 snap.value().users.size(), snap.value().rooms.size(), snap.value().max_message_id);

    SodiumEntropy entropy;
    warren::Server core(s.core, entropy, snap.value());
    s.driver.on_listening = [](const std::string& host, uint16_t port) {
        bool v6 = host.find(':') != std::string::npos;
        std::printf("listening on %s%s%s:%u\n", v6 ? "[" : "", host.c_str(), v6 ? "]" : "", port);
        std::fflush(stdout);
    };
    warren::Driver driver(core, *store.value(), s.driver);
    return driver.run();
}
