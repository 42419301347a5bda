// warrend: the Warren chat server. Wiring only: flags and config, the database, the core,
// and the production driver.
#include <sodium.h>
#include <sys/resource.h>
#include <pthread.h>
#include <sys/stat.h>
#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <span>
#include <tuple>

#include "app/settings.h"
#include "core/server.h"
#include "netadapter/log.h"
#include "store/backup.h"

namespace {

class SodiumEntropy final : public warren::Entropy {
  public:
    void fill(std::span<uint8_t> out) override { randombytes_buf(out.data(), out.size()); }
};

// The admin API's token when none is configured: kept in DATA_DIR/admin.token (0600, made on
// first start from 32 random bytes), so the API is never open to every local process.
// Returns the token, or "" with `error` set.
std::string stored_admin_token(const std::string& data_dir, std::string& error) {
    std::string path = (std::filesystem::path(data_dir) / "admin.token").string();
    if (std::FILE* f = std::fopen(path.c_str(), "r")) {
        char buf[256] = {};
        size_t n = std::fread(buf, 1, sizeof buf - 1, f);
        std::fclose(f);
        std::string token(buf, n);
        while (!token.empty() && (token.back() == '\n' || token.back() == '\r')) token.pop_back();
        if (token.size() < 16) error = path + " holds no usable token (16 characters or more)";
        return token;
    }
    uint8_t raw[32];
    randombytes_buf(raw, sizeof raw);
    static constexpr char hex[] = "0123456789abcdef";
    std::string token;
    for (uint8_t b : raw) {
        token += hex[b >> 4];
        token += hex[b & 0xF];
    }
    std::FILE* f = std::fopen(path.c_str(), "wx");  // the umask makes it 0600
    if (!f || std::fputs((token + "\n").c_str(), f) < 0 || std::fclose(f) != 0) {
        error = "cannot write " + path;
        return {};
    }
    return token;
}

// Descriptors warrend needs beside its clients: the database and its WAL, the listeners,
// the event loop, the threads' wakeups, the admin API's sessions, the closed connections
// still lingering, and a margin.
size_t descriptors_besides_clients(const warren::Settings& s) {
    return 64 + s.driver.close_lingering_max +
           (s.driver.admin_enabled ? s.driver.admin.sessions_max : 0);
}

// Raises the soft descriptor limit to what connections.max needs; if the hard limit cannot
// cover it, lowers connections.max to fit (a client past it is then refused at once rather
// than left hanging in the accept backlog). Returns false when not even a few fit.
bool fit_descriptor_limit(warren::Settings& s) {
    using warren::log_always;
    using warren::LogLevel;
    rlimit lim{};
    if (getrlimit(RLIMIT_NOFILE, &lim) != 0) return true;
    rlim_t need = s.core.connections_max + descriptors_besides_clients(s);
    rlim_t want = lim.rlim_max == RLIM_INFINITY ? need : std::min<rlim_t>(need, lim.rlim_max);
    if (want > lim.rlim_cur) {
        rlimit raised = lim;
        raised.rlim_cur = want;
        if (setrlimit(RLIMIT_NOFILE, &raised) == 0) lim.rlim_cur = want;
    }
    if (lim.rlim_cur >= need) return true;
    size_t besides = descriptors_besides_clients(s);
    if (lim.rlim_cur <= besides + 16) {
        log_always(LogLevel::error, "descriptor_limit",
                   {{"limit", std::to_string(lim.rlim_cur)},
                    {"text", "too few file descriptors to serve clients; raise ulimit -n"}});
        return false;
    }
    size_t clamped = lim.rlim_cur - besides;
    log_always(LogLevel::warn, "connections_clamped",
               {{"configured", std::to_string(s.core.connections_max)},
                {"now", std::to_string(clamped)},
                {"limit", std::to_string(lim.rlim_cur)},
                {"text",
                 "the descriptor limit cannot cover connections.max; raise ulimit -n "
                 "(LimitNOFILE=) or lower connections.max"}});
    s.core.connections_max = clamped;
    return true;
}

int64_t wall_now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

// "[WHAT ]listening on HOST:PORT" on stdout: how scripts and tests learn a port 0 listener's.
void print_listening(const char* what, const std::string& host, uint16_t port) {
    bool v6 = host.find(':') != std::string::npos;
    std::printf("%slistening on %s%s%s:%u\n", what, v6 ? "[" : "", host.c_str(), v6 ? "]" : "",
                port);
    std::fflush(stdout);
}

// The command line, before it is applied over the file.
struct Flags {
    std::string listen, data_dir, config_path, log_level, sync, log_format, admin_listen,
        irc_listen, log_file, check_config, tls_listen, irc_tls_listen, tls_cert, tls_key;
};

void add_flags(CLI::App& app, Flags& f) {
    app.add_option("--listen", f.listen,
                   "HOST:PORT to accept clients on (default 127.0.0.1:7070; "
                   "port 0 picks a free port)");
    app.add_option("--data-dir", f.data_dir, "directory for the SQLite database (default ./data)");
    app.add_option("--config", f.config_path, "TOML configuration file")->check(CLI::ExistingFile);
    app.add_option("--check-config", f.check_config,
                   "check this TOML file, print the effective configuration (defaults "
                   "included, secrets redacted) and exit: 0 when it is valid, 2 when not");
    app.add_option("--log-level", f.log_level, "trace, debug, info, warn, error");
    app.add_option("--log-format", f.log_format, "text or json")
        ->check(CLI::IsMember({"text", "json"}));
    app.add_option("--log-file", f.log_file,
                   "append the log to this file instead of stderr (reopened on SIGHUP, for "
                   "logrotate)");
    app.add_option("--admin-listen", f.admin_listen,
                   "HOST:PORT of the admin HTTP API (default 127.0.0.1:7071; port 0 picks a "
                   "free port; 'off' disables it). Beyond loopback it needs a token "
                   "(WARREN_ADMIN_TOKEN or [admin] token)");
    app.add_option("--irc-listen", f.irc_listen,
                   "HOST:PORT to accept IRC clients on (default off; port 0 picks a free port; "
                   "'off' disables it)");
    app.add_option("--tls-listen", f.tls_listen,
                   "HOST:PORT to accept native clients over TLS on (default off; needs a "
                   "certificate; port 0 picks a free port)");
    app.add_option("--irc-tls-listen", f.irc_tls_listen,
                   "HOST:PORT to accept IRC clients over TLS on (default off; usually 6697)");
    app.add_option("--tls-cert", f.tls_cert,
                   "PEM certificate chain for every TLS listener ([tls] cert_file)");
    app.add_option("--tls-key", f.tls_key, "PEM private key of --tls-cert ([tls] key_file)");
    app.add_option("--synchronous", f.sync, "storage durability: normal or full")
        ->check(CLI::IsMember({"normal", "full"}));
}

// The file, then the flags and the environment over it. Returns "" or what is wrong.
std::string settle(const Flags& f, const std::string& config_path, warren::Settings& s) {
    if (!config_path.empty())
        if (auto bad = warren::load_settings_file(config_path, s)) return "config: " + *bad;
    if (!f.listen.empty() &&
        !warren::parse_host_port(f.listen, s.driver.listen_host, s.driver.listen_port))
        return "--listen must be HOST:PORT";
    if (f.admin_listen == "off") {
        s.driver.admin_enabled = false;
    } else if (!f.admin_listen.empty() && !warren::parse_host_port(f.admin_listen,
                                                                   s.driver.admin.host,
                                                                   s.driver.admin.port)) {
        return "--admin-listen must be HOST:PORT or off";
    }
    if (f.irc_listen == "off") {
        s.driver.irc_enabled = false;
    } else if (!f.irc_listen.empty()) {
        if (!warren::parse_host_port(f.irc_listen, s.driver.irc_host, s.driver.irc_port))
            return "--irc-listen must be HOST:PORT or off";
        s.driver.irc_enabled = true;
    }
    for (auto [flag, text, on, host, port] :
         {std::tuple{"--tls-listen", &f.tls_listen, &s.driver.tls_enabled, &s.driver.tls_host,
                     &s.driver.tls_port},
          std::tuple{"--irc-tls-listen", &f.irc_tls_listen, &s.driver.irc_tls_enabled,
                     &s.driver.irc_tls_host, &s.driver.irc_tls_port}}) {
        if (*text == "off") {
            *on = false;
        } else if (!text->empty()) {
            if (!warren::parse_host_port(*text, *host, *port))
                return std::string(flag) + " must be HOST:PORT or off";
            *on = true;
        }
    }
    if (!f.tls_cert.empty()) s.driver.tls.cert_file = f.tls_cert;
    if (!f.tls_key.empty()) s.driver.tls.key_file = f.tls_key;
    // The environment wins over the file, so a token need not be written to disk.
    if (const char* token = std::getenv("WARREN_ADMIN_TOKEN"); token && *token)
        s.driver.admin.token = token;
    if (!f.data_dir.empty()) s.data_dir = f.data_dir;
    if (!f.log_level.empty()) s.log_level = f.log_level;
    if (!f.log_format.empty()) s.log_format = f.log_format;
    if (!f.log_file.empty()) s.log_file = f.log_file;
    if (!f.sync.empty())
        s.synchronous = f.sync == "full" ? warren::Synchronous::full : warren::Synchronous::normal;
    static constexpr std::string_view levels[] = {"trace", "debug", "info", "warn", "error"};
    if (std::find(std::begin(levels), std::end(levels), s.log_level) == std::end(levels))
        return "log level '" + s.log_level + "' must be one of trace, debug, info, warn, error";
    if (auto bad = warren::finish_settings(s)) return *bad;
    return {};
}

// `warrend backup OUT`: the same online copy the admin API makes, from the command line.
int backup(const Flags& f, const std::string& out) {
    warren::Settings s;
    if (std::string bad = settle(f, f.config_path, s); !bad.empty()) {
        std::fprintf(stderr, "%s\n", bad.c_str());
        return 2;
    }
    std::string db = (std::filesystem::path(s.data_dir) / "warren.db").string();
    ::umask(0077);
    auto done = warren::backup_database(db, out);
    if (!done.is_ok()) {
        std::fprintf(stderr, "backup failed: %s\n", done.status().message().c_str());
        return 1;
    }
    std::printf("backed up %s to %s: %llu bytes in %lld ms\n", db.c_str(), out.c_str(),
                static_cast<unsigned long long>(done.value().bytes),
                static_cast<long long>(done.value().took.count()));
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"warrend: the Warren chat server"};
    Flags f;
    add_flags(app, f);
    std::string backup_out;
    CLI::App* backup_cmd = app.add_subcommand(
        "backup",
        "copy the database of --data-dir (or the --config's data_dir) to OUT, consistently, "
        "also while warrend serves it; exit 0 when the copy is written and checked");
    backup_cmd->add_option("OUT", backup_out, "the file to write (must not exist)")->required();
    backup_cmd->add_option("--data-dir", f.data_dir, "directory of the database");
    backup_cmd->add_option("--config", f.config_path, "TOML configuration file")
        ->check(CLI::ExistingFile);
    app.set_version_flag("--version", WARREN_VERSION);
    CLI11_PARSE(app, argc, argv);

    warren::Settings s;
    if (backup_cmd->parsed()) return backup(f, backup_out);
    if (!f.check_config.empty()) {
        if (std::string bad = settle(f, f.check_config, s); !bad.empty()) {
            std::fprintf(stderr, "%s\n", bad.c_str());
            return 2;
        }
        std::fputs(warren::describe_settings(s).c_str(), stdout);
        std::fprintf(stderr, "%s: valid\n", f.check_config.c_str());
        return 0;
    }
    // Everything warrend creates (the data directory, the database, its WAL) is for its own
    // user only: messages and password hashes are not for other local accounts to read.
    ::umask(0077);
    if (sodium_init() < 0) {
        std::fprintf(stderr, "libsodium failed to initialise\n");
        return 1;
    }
    if (std::string bad = settle(f, f.config_path, s); !bad.empty()) {
        std::fprintf(stderr, "%s\n", bad.c_str());
        return 2;
    }
    if (std::string bad = warren::configure_logging(
            s.log_format == "json" ? warren::LogFormat::json : warren::LogFormat::text,
            s.log_level, s.log_lines_per_second, s.log_burst, s.log_file);
        !bad.empty()) {
        std::fprintf(stderr, "%s\n", bad.c_str());
        return 2;
    }
    using warren::log_always;
    using warren::LogLevel;
    if (!fit_descriptor_limit(s)) return 1;

    std::error_code ec;
    std::filesystem::create_directories(s.data_dir, ec);
    if (ec) {
        log_always(LogLevel::error, "data_dir_failed",
                   {{"dir", s.data_dir}, {"error", ec.message()}});
        return 1;
    }
    namespace fs = std::filesystem;
    if ((fs::status(s.data_dir, ec).permissions() &
         (fs::perms::group_all | fs::perms::others_all)) != fs::perms::none)
        log_always(LogLevel::warn, "data_dir_open",
                   {{"dir", s.data_dir},
                    {"text", "other users may read the data directory; chmod 700 it"}});
    if (s.driver.admin_enabled && s.driver.admin.token.empty() &&
        warren::is_loopback_host(s.driver.admin.host)) {
        std::string error;
        s.driver.admin.token = stored_admin_token(s.data_dir, error);
        if (!error.empty()) {
            log_always(LogLevel::error, "admin_token_failed", {{"error", error}});
            return 1;
        }
        std::string where = (fs::path(s.data_dir) / "admin.token").string();
        log_always(
            LogLevel::info, "admin_token",
            {{"path", where}, {"text", "the admin API needs the bearer token kept in this file"}});
    }
    std::string db_path = (std::filesystem::path(s.data_dir) / "warren.db").string();
    s.driver.db_path = db_path;
    s.driver.backup_dir =
        s.backup_dir.empty() ? (fs::path(s.data_dir) / "backups").string() : s.backup_dir;
    auto store = warren::Store::open(db_path, s.synchronous);
    if (!store.is_ok()) {
        log_always(LogLevel::error, "store_open_failed", {{"error", store.status().message()}});
        return 1;
    }
    auto snap = store.value()->load(s.core.room_cache_messages_max, wall_now_ms());
    if (!snap.is_ok()) {
        log_always(LogLevel::error, "load_failed",
                   {{"db", db_path}, {"error", snap.status().message()}});
        return 1;
    }
    log_always(LogLevel::info, "loaded",
               {{"db", db_path},
                {"users", std::to_string(snap.value().users.size())},
                {"rooms", std::to_string(snap.value().rooms.size())},
                {"newest_message_id", std::to_string(snap.value().max_message_id)},
                {"active_blocks", std::to_string(snap.value().blocks.size())}});

    SodiumEntropy entropy;
    warren::Server core(s.core, entropy, snap.value());
    s.driver.on_listening = [](const std::string& host, uint16_t port) {
        print_listening("", host, port);
    };
    s.driver.on_admin_listening = [](const std::string& host, uint16_t port) {
        print_listening("admin ", host, port);
    };
    s.driver.on_irc_listening = [](const std::string& host, uint16_t port) {
        print_listening("irc ", host, port);
    };
    s.driver.on_irc_tls_listening = [](const std::string& host, uint16_t port) {
        print_listening("ircs ", host, port);
    };
    s.driver.on_tls_listening = [](const std::string& host, uint16_t port) {
        print_listening("tls ", host, port);
    };
    s.driver.on_hangup = [] {
        if (std::string bad = warren::reopen_log_file(); !bad.empty())
            warren::log_always(warren::LogLevel::error, "log_reopen_failed", {{"error", bad}});
        else
            warren::log_always(warren::LogLevel::info, "log_reopened");
    };
    // Queries read the same file on a connection and thread of their own (WAL), so a costly
    // search never holds up a commit.
    auto reader = warren::Store::open(db_path, s.synchronous, warren::Access::read_only);
    if (!reader.is_ok()) {
        log_always(LogLevel::error, "store_open_failed", {{"error", reader.status().message()}});
        return 1;
    }
    int code = 0;
    {
        warren::Driver driver(core, *store.value(), reader.value().get(), s.driver);
        code = driver.run();
        // Shutting down: another SIGTERM or SIGINT (a service manager's, an impatient
        // operator's) must not kill the process while the driver's threads end and the store
        // closes. The driver's signal set restores the default action when it goes, so the
        // signals are blocked first and ignored after.
        sigset_t stop_signals;
        sigemptyset(&stop_signals);
        sigaddset(&stop_signals, SIGTERM);
        sigaddset(&stop_signals, SIGINT);
        pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
    }
    std::signal(SIGTERM, SIG_IGN);
    std::signal(SIGINT, SIG_IGN);
    return code;
}
