// Driver: runs the core in production. One thread runs the io_context and the core; a
// storage thread owns the writing Store and applies batches in order (and keeps the full-text
// index up to date); a reader thread answers queries on a read-only Store of the same file,
// so that a costly read never delays a commit (without a reader, queries share the storage
// thread); a small pool runs argon2id. The driver only translates: sockets and timers become core
// inputs, core outputs become writes, closes, storage jobs and hash jobs. No chat logic here.
//
// Under a service manager (netadapter/notify.h) it reports READY=1 once listening, STOPPING=1
// when shutdown begins, and pings the watchdog from the event loop.
//
// run() blocks until SIGINT/SIGTERM (or request_stop()) and a clean shutdown: stop
// accepting, let the core finish in-flight batches and tell clients DISCONNECT SHUTDOWN,
// flush, then stop the worker threads. It returns the process exit status. Boost stays out of
// this header so that app/ compiles quickly.
//
// Closes (core/outputs.h Close): what the core sent is written, then the closing line; then
// TLS says close_notify, the socket is shut down for writing, and what the peer still sends is
// read and discarded until it closes too or close_linger_ms has passed — closing with unread
// input would make the kernel reset the connection, and a reset throws away what the peer has
// not read yet. Only a slow consumer's close drops the output not yet written.
//
// TLS connections: the core hears of the connection at accept (so its connection caps and
// blocks apply before any handshake is paid for; one it refuses at once is closed without a
// handshake), its lines wait until the handshake is done, and a handshake that takes longer
// than tls.handshake_timeout_ms closes the connection. Each TLS connection keeps the context
// it was made with, so a certificate reloaded on SIGHUP applies to new connections and drops
// none.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "netadapter/admin_http.h"
#include "netadapter/tls_options.h"

namespace warren {

class Server;
class Store;

struct DriverOptions {
    std::string listen_host = "127.0.0.1";
    uint16_t listen_port = 7070;
    int hash_threads = 2;
    size_t hash_queue_max = 64;  // jobs waiting for a hashing thread; past it: overloaded
    // A write to a plain socket this large is made by the writer thread (0: every write).
    size_t write_off_thread_min = 0;
    // A connection written to less than this long ago waits for the rest of the window before
    // its next write (0: every turn's output is written at once).
    size_t write_coalesce_us = 5000;
    // argon2id cost (libsodium crypto_pwhash, ALG_ARGON2ID13).
    uint64_t argon2_ops = 2;
    size_t argon2_mem_bytes = 19 * 1024 * 1024;
    // Called once the listener is bound, with the real host and port.
    std::function<void(const std::string& host, uint16_t port)> on_listening;
    // The IRC listener (core/irc/, docs/IRC.md); on_irc_listening is called once it is bound.
    bool irc_enabled = false;
    std::string irc_host = "127.0.0.1";
    uint16_t irc_port = 6667;
    std::function<void(const std::string& host, uint16_t port)> on_irc_listening;
    // TLS (netadapter/tls.h): the native protocol and IRC each on a listener of their own, and
    // the admin API when admin.tls is set, all with one certificate (reloaded on SIGHUP).
    TlsOptions tls;
    bool tls_enabled = false;  // the native protocol over TLS
    std::string tls_host = "127.0.0.1";
    uint16_t tls_port = 7443;
    std::function<void(const std::string& host, uint16_t port)> on_tls_listening;
    bool irc_tls_enabled = false;
    std::string irc_tls_host = "127.0.0.1";
    uint16_t irc_tls_port = 6697;
    std::function<void(const std::string& host, uint16_t port)> on_irc_tls_listening;
    // The admin HTTP API; on_admin_listening is called once it is bound.
    bool admin_enabled = true;
    AdminHttpOptions admin;
    std::function<void(const std::string& host, uint16_t port)> on_admin_listening;
    // The database file (for online backups) and where backups go (made 0700 on first use).
    std::string db_path;
    std::string backup_dir;
    int backup_pages_per_step = 256;
    int64_t backup_pause_ms = 5;
    // Called on the event loop at each SIGHUP (warrend reopens its log file; the driver also
    // reloads the TLS certificate and key).
    std::function<void()> on_hangup;
    // How often process figures (RSS, CPU, open files, queue depths) go to the core.
    int64_t process_stats_interval_ms = 5000;
    // A connection the core closes gets this long to read what it is owed and its closing
    // line and to close its side; then it is closed regardless. At most close_lingering_max
    // wait for their peer at a time (beyond it, and for connections refused at accept, the
    // socket closes once its last line is written): the core no longer counts them against
    // connections.max, and each holds a descriptor.
    int64_t close_linger_ms = 5000;
    size_t close_lingering_max = 64;
};

class Driver {
  public:
    // `reader`: a read-only Store on the same database for queries, or nullptr.
    Driver(Server& core, Store& store, Store* reader, DriverOptions options);
    ~Driver();
    Driver(const Driver&) = delete;
    Driver& operator=(const Driver&) = delete;

    int run();

  private:
    struct State;
    std::unique_ptr<State> s_;
};

}  // namespace warren
