#include "netadapter/driver.h"

#include "netadapter/asio.h"

#include <fcntl.h>
#include <sodium.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include "core/server.h"
#include "core/txn/commit_chain.h"
#include "netadapter/log.h"
#include "netadapter/notify.h"
#include "netadapter/out_bytes.h"
#include "netadapter/tls.h"
#include "store/backup.h"
#include "store/store.h"

namespace warren {

namespace asio = boost::asio;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;

namespace {

// A FIFO of jobs run by `threads` worker threads. push() refuses past `max_waiting`.
class WorkQueue {
  public:
    // Run on a worker whenever it finds the queue empty; it then waits for a job, or at most
    // the time returned, after which (still idle) it runs `idle` again.
    using Idle = std::function<std::optional<std::chrono::milliseconds>()>;
    WorkQueue(int threads, size_t max_waiting, Idle idle = {})
        : max_waiting_(max_waiting), idle_(std::move(idle)) {
        for (int i = 0; i < threads; ++i) workers_.emplace_back([this] { work(); });
    }
    ~WorkQueue() { stop(); }
    bool push(std::function<void()> job) {
        std::lock_guard lock(mu_);
        if (stopping_ || jobs_.size() >= max_waiting_) return false;
        jobs_.push_back(std::move(job));
        cv_.notify_one();
        return true;
    }
    size_t waiting() {
        std::lock_guard lock(mu_);
        return jobs_.size();
    }
    // Finishes the queued jobs, then joins the threads.
    void stop() {
        {
            std::lock_guard lock(mu_);
            stopping_ = true;
        }
        cv_.notify_all();
        for (auto& t : workers_)
            if (t.joinable()) t.join();
    }

  private:
    void work() {
        for (;;) {
            std::function<void()> job;
            {
                std::unique_lock lock(mu_);
                auto ready = [&] { return stopping_ || !jobs_.empty(); };
                while (idle_ && !ready()) {
                    lock.unlock();
                    std::optional<std::chrono::milliseconds> again = idle_();
                    lock.lock();
                    if (!again) break;
                    cv_.wait_for(lock, *again, ready);
                }
                cv_.wait(lock, ready);
                if (jobs_.empty()) return;
                job = std::move(jobs_.front());
                jobs_.pop_front();
            }
            job();
        }
    }
    size_t max_waiting_;
    Idle idle_;
    std::mutex mu_;
    std::condition_variable cv_;
    std::deque<std::function<void()>> jobs_;
    bool stopping_ = false;
    std::vector<std::thread> workers_;
};

struct Connection {
    explicit Connection(tcp::socket s) : socket(std::move(s)), close_timer(socket.get_executor()) {}
    tcp::socket socket;
    asio::steady_timer close_timer;  // also the handshake deadline of a TLS connection
    // A TLS connection's stream over `socket`. It keeps the context it was made from (a SIGHUP
    // may replace the driver's). Its reads are asynchronous (the TLS engine holds partial
    // records), so it has a read buffer of its own.
    struct Tls {
        Tls(tcp::socket& s, std::shared_ptr<ssl::context> c)
            : context(std::move(c)), stream(s, *context) {}
        std::shared_ptr<ssl::context> context;
        ssl::stream<tcp::socket&> stream;
        std::array<char, 4096> in;
        std::string out;  // the write in flight, in one piece: one TLS record per 16 KiB
        bool handshaking = true;
        bool reading = false;
    };
    std::unique_ptr<Tls> tls;
    // What the core sent, in order: `queued` waits for the write in flight, `out` is that
    // write. A delivery costs a reference to bytes encoded once for its whole audience, and a
    // connection gets one write (one system call, one TLS record stream) for all it was sent
    // in a turn of the loop. Both hold no memory while the connection is idle.
    OutBytes queued;
    OutBytes out;
    std::string peer;
    bool writing = false;    // `out` is being written
    bool on_writer = false;  // ... by the writer thread (see State::write_off_thread)
    bool flush_due = false;  // listed in State::to_flush
    // When its last write began, and whether it waits for the coalescing window to end
    // (State::start_write, `[limits] write_coalesce_us`).
    std::chrono::steady_clock::time_point last_write{};
    bool held = false;
    bool core_knows = true;  // false once the core has said Close
    bool may_linger = true;  // Close::linger
    bool lingering = false;  // everything owed is written: saying goodbye, discarding input
    bool closed = false;
};

// One listening socket: the protocol it speaks and whether it wraps it in TLS.
struct Listener {
    Listener(asio::io_context& io, Wire w, bool t, std::string n)
        : wire(w), tls(t), name(std::move(n)), acceptor(io) {}
    Wire wire;
    bool tls;
    std::string name;  // its log event: "irc_listening", "tls_listening", ...
    tcp::acceptor acceptor;
};

}  // namespace

struct Driver::State {
    State(Server& c, Store& st, Store* rd, DriverOptions o)
        : core(c),
          store(st),
          reader(rd),
          opt(std::move(o)),
          timer(io),
          signals(io, SIGINT, SIGTERM),
          hangups(io, SIGHUP),
          watchdog_timer(io),
          // Bounded by the core: commits_in_flight_max, queries_max. When idle, the storage
          // thread brings the full-text index up to date, off the commit path.
          storage(1, SIZE_MAX, [this] { return index_when_idle(); }),
          reads(reader ? 1 : 0, SIZE_MAX),
          hasher(opt.hash_threads, opt.hash_queue_max),
          backups(1, 1),
          stats_timer(io),
          accept_pause(io),
          coalesce_timer(io) {
        spare_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    }
    ~State() {
        if (spare_fd >= 0) ::close(spare_fd);
    }

    // On the storage thread, whenever it has nothing else to do: bring the full-text index up
    // to date, at most once per index_every, so that between commits under load it folds in
    // hundreds of messages at a time, not a few (each run is a transaction, and FTS5 merges
    // what many small runs leave; indexing 100,000 messages took about half the storage
    // thread's time that way). A quiet server indexes a message right after its commit. After
    // a failure (a full disk, say) it waits before trying again, doubling the wait up to a
    // minute, and the warning goes through the rate-limited log. Returns when to come back,
    // if the index is not known to be up to date.
    std::optional<std::chrono::milliseconds> index_when_idle() {
        using std::chrono::milliseconds;
        auto now = std::chrono::steady_clock::now();
        auto left = [&](std::chrono::steady_clock::time_point at) {
            return std::chrono::ceil<milliseconds>(at - now);
        };
        if (now < index_retry_at) return left(index_retry_at);
        if (now < index_last + index_every) return left(index_last + index_every);
        index_last = now;
        if (Status st = store.index_pending(); !st.is_ok()) {
            index_backoff = std::min(index_backoff * 2, milliseconds(60'000));
            index_retry_at = now + index_backoff;
            log_event(
                LogLevel::warn, "fts_index_failed",
                {{"error", st.message()}, {"retry_in_ms", std::to_string(index_backoff.count())}});
            return index_backoff;
        }
        index_backoff = milliseconds(500);
        // A rebuild (schema 7) or a long burst: more than one run's worth was waiting.
        if (store.index_behind()) return index_every;
        return std::nullopt;
    }
    static constexpr std::chrono::milliseconds index_every{200};

    // On the storage thread after a commit: when it is never idle, the index still catches
    // up every half second (a message is searchable within a second of its commit).
    void index_when_busy() {
        if (std::chrono::steady_clock::now() - index_last >= std::chrono::milliseconds(500))
            (void)index_when_idle();
    }

    Server& core;
    Store& store;
    Store* reader;  // read-only, for queries on their own thread; may be null
    DriverOptions opt;
    std::chrono::steady_clock::time_point index_last{};  // storage thread only
    CommitChain chain;                                   // storage thread only
    // Storage-thread only: when idle indexing may run again after a failure.
    std::chrono::steady_clock::time_point index_retry_at{};
    std::chrono::milliseconds index_backoff{500};
    asio::io_context io;
    std::vector<std::unique_ptr<Listener>> listeners;  // the native one first
    // The TLS context new connections get (null without TLS); replaced by a SIGHUP reload.
    std::shared_ptr<ssl::context> tls_context;
    asio::steady_timer timer;
    std::optional<int64_t> armed_deadline;  // what `timer` waits for (arm_timer)
    asio::signal_set signals;
    asio::signal_set hangups;  // SIGHUP: opt.on_hangup (the log file is reopened)
    asio::steady_timer watchdog_timer;
    WorkQueue storage;
    WorkQueue reads;  // no threads without a reader
    WorkQueue hasher;
    WorkQueue backups;  // one online backup at a time (the core sees to it)
    // The writer thread: writes to plain sockets (write_off_thread). Declared after
    // `io`, so it is joined before the io_context it posts its results to goes.
    WorkQueue writer{1, SIZE_MAX};
    struct WriteJob {
        ConnId id;
        std::shared_ptr<Connection> conn;  // released on this thread, never on the writer's
        int fd;
        size_t written = 0;
        int error = 0;  // errno of a failed send; EAGAIN: the socket is full, wait for it
    };
    std::vector<WriteJob> to_writer;       // this turn's, handed over once the turn is done
    std::atomic<bool> backup_stop{false};  // set when shutdown begins: a backup gives up
    std::string dummy_phc;
    std::map<ConnId, std::shared_ptr<Connection>> conns;
    std::unique_ptr<AdminHttp> admin;
    std::map<AdminId, std::function<void(const AdminReply&)>> admin_waiting;
    asio::steady_timer stats_timer;
    asio::steady_timer accept_pause;  // after running out of descriptors
    int spare_fd = -1;                // given up to accept-and-close when out of descriptors
    size_t lingering = 0;             // closed connections waiting for their peer (linger)
    ConnId next_conn = 1;
    std::set<ConnId> read_waiting;  // not read while the core holds them back
    // Connections sent something this turn and not writing: written at the end of drain().
    std::vector<std::pair<ConnId, std::shared_ptr<Connection>>> to_flush;
    // Connections whose output waits for their coalescing window to end (start_write), and
    // the one timer that writes them all.
    std::vector<std::pair<ConnId, std::shared_ptr<Connection>>> held;
    asio::steady_timer coalesce_timer;
    bool coalesce_armed = false;
    std::array<char, 16 * 1024> read_buffer;  // see start_read
    bool shutting_down = false;
    std::chrono::steady_clock::time_point mono_epoch = std::chrono::steady_clock::now();

    Time now() const {
        auto mono = std::chrono::steady_clock::now() - mono_epoch;
        auto wall = std::chrono::system_clock::now().time_since_epoch();
        return Time{std::chrono::duration_cast<std::chrono::microseconds>(mono).count(),
                    std::chrono::duration_cast<std::chrono::milliseconds>(wall).count()};
    }

    // Carries out every output the core has, then re-arms the timer.
    void drain() {
        while (auto out = core.poll()) std::visit([this](auto& o) { carry_out(o); }, *out);
        flush_writes();
        if (!read_waiting.empty()) resume_reads();
        arm_timer();
        maybe_finish();
    }

    // Connections the core held back (backpressure) are read again once it wants them.
    void resume_reads() {
        std::vector<ConnId> ready;
        for (ConnId id : read_waiting)
            if (core.wants_input(id)) ready.push_back(id);
        for (ConnId id : ready) {
            read_waiting.erase(id);
            // Posted, not called: reading feeds the core, which must not happen inside drain.
            if (auto it = conns.find(id); it != conns.end())
                asio::post(io, [this, id, conn = it->second] { start_read(id, conn); });
        }
    }

    // Queued, and written when the core has nothing more to say this turn (flush_writes).
    void carry_out(Send& s) {
        SharedBytes* bytes = SharedBytes::make(std::move(s.bytes));
        for (ConnId id : s.to) {
            auto it = conns.find(id);
            if (it == conns.end() || it->second->closed) continue;
            Connection& conn = *it->second;
            conn.queued.append(bytes);
            if (!conn.writing && !conn.flush_due) {
                conn.flush_due = true;
                to_flush.emplace_back(id, it->second);
            }
        }
        bytes->unref();
    }

    void flush_writes() {
        for (auto& [id, conn] : std::exchange(to_flush, {})) {
            conn->flush_due = false;
            start_write(id, conn);
        }
    }

    void carry_out(Close& c) {
        auto it = conns.find(c.conn);
        if (it == conns.end() || it->second->closed) return;
        auto conn = it->second;
        conn->core_knows = false;
        read_waiting.erase(c.conn);
        // A slow consumer: what is not being written goes (the write in flight holds whole
        // lines, so the closing line starts a line of its own).
        if (c.drop_unsent) conn->queued.clear();
        if (c.last) {
            SharedBytes* last = SharedBytes::make(c.last);
            conn->queued.append(last);
            last->unref();
        }
        conn->may_linger = c.linger;
        // The peer gets close_linger_ms to read what it is owed and to close its side.
        conn->close_timer.expires_after(std::chrono::milliseconds(opt.close_linger_ms));
        conn->close_timer.async_wait([this, id = c.conn](boost::system::error_code ec) {
            if (!ec) close_now(id);
        });
        if (!conn->writing && conn->queued.empty()) return linger(c.conn, conn);
        start_write(c.conn, conn);
    }

    // Everything owed is written: TLS says close_notify, then the socket is shut down for
    // writing and input is discarded until the peer closes (or the close timer fires). A TLS
    // read in flight is cancelled first: one read at a time through the TLS engine.
    void linger(ConnId id, const std::shared_ptr<Connection>& conn) {
        if (conn->lingering || conn->closed) return;
        if (!conn->may_linger || lingering >= opt.close_lingering_max) return close_now(id);
        conn->lingering = true;
        ++lingering;
        boost::system::error_code ignored;
        if (!conn->tls || conn->tls->handshaking) return shut_down_writing(id, conn);
        if (conn->tls->reading) {
            conn->socket.cancel(ignored);  // its handler says close_notify (start_tls_read)
            return;
        }
        say_close_notify(id, conn);
    }

    void say_close_notify(ConnId id, const std::shared_ptr<Connection>& conn) {
        conn->tls->stream.async_shutdown([this, id, conn](boost::system::error_code) {
            if (!conn->closed) shut_down_writing(id, conn);
        });
    }

    void shut_down_writing(ConnId id, const std::shared_ptr<Connection>& conn) {
        boost::system::error_code ignored;
        conn->socket.shutdown(tcp::socket::shutdown_send, ignored);
        discard_input(id, conn);
    }

    // Reads and drops what the peer still sends until it closes; the close timer bounds it.
    void discard_input(ConnId id, const std::shared_ptr<Connection>& conn) {
        for (;;) {
            boost::system::error_code ec;
            conn->socket.read_some(asio::buffer(read_buffer), ec);
            if (ec == asio::error::would_block || ec == asio::error::try_again) {
                conn->socket.async_wait(tcp::socket::wait_read,
                                        [this, id, conn](boost::system::error_code wec) {
                                            if (conn->closed) return;
                                            if (wec) return close_now(id);
                                            discard_input(id, conn);
                                        });
                return;
            }
            if (ec) return close_now(id);  // the peer closed (or reset): done
        }
    }

    // Request errors go to the log with their fields (rate-limited by log_event).
    void carry_out(Refused& r) {
        auto it = conns.find(r.conn);
        std::string conn_id = std::to_string(r.conn);
        log_event(LogLevel::info, "request_error",
                  {{"conn", conn_id},
                   {"peer", it == conns.end() ? std::string_view() : it->second->peer},
                   {"op", r.op ? op_name(*r.op) : std::string_view("?")},
                   {"code", error_code_name(r.error.code)},
                   {"field", r.error.field},
                   {"message", r.error.message}});
    }

    void carry_out(Audit& a) {
        const AuditRow& r = a.record;
        std::string id = std::to_string(r.id);
        log_event(LogLevel::warn, "security",
                  {{"audit_id", id},
                   {"actor", r.actor},
                   {"action", r.action},
                   {"ip", r.ip},
                   {"account", r.account},
                   {"reason", r.reason},
                   {"details", r.details}});
    }

    void carry_out(Notice& n) {
        LogLevel l = n.level == AlertLevel::info      ? LogLevel::info
                     : n.level == AlertLevel::warning ? LogLevel::warn
                                                      : LogLevel::error;
        log_always(l, "alert", {{"level", alert_level_name(n.level)}, {"text", n.text}});
    }

    void carry_out(AdminReply& r) {
        auto it = admin_waiting.find(r.id);
        if (it == admin_waiting.end()) return;
        auto done = std::move(it->second);
        admin_waiting.erase(it);
        done(r);
    }

    void submit_admin(const AdminRequest& q, std::function<void(const AdminReply&)> done) {
        AdminId id = core.admin(q, now());
        admin_waiting[id] = std::move(done);
        drain();
    }

    ProcessStats read_process_stats() {
        ProcessStats p;
        long page = sysconf(_SC_PAGESIZE);
        long ticks = sysconf(_SC_CLK_TCK);
        std::ifstream statm("/proc/self/statm");
        uint64_t size = 0, resident = 0;
        if (statm >> size >> resident) p.rss_bytes = resident * static_cast<uint64_t>(page);
        std::ifstream stat("/proc/self/stat");
        std::string line;
        if (std::getline(stat, line)) {
            // Fields after the command name (which may contain spaces): utime is the 14th
            // field overall, stime the 15th.
            size_t close = line.rfind(')');
            std::istringstream rest(close == std::string::npos ? "" : line.substr(close + 2));
            std::string f;
            uint64_t utime = 0, stime = 0;
            for (int i = 3; i <= 15 && rest >> f; ++i) {
                if (i == 14) utime = std::stoull(f);
                if (i == 15) stime = std::stoull(f);
            }
            if (ticks > 0)
                p.cpu_seconds = static_cast<double>(utime + stime) / static_cast<double>(ticks);
        }
        std::error_code ec;
        for (auto it = std::filesystem::directory_iterator("/proc/self/fd", ec);
             !ec && it != std::filesystem::directory_iterator(); it.increment(ec))
            ++p.open_files;
        p.hash_queue_depth = hasher.waiting();
        p.storage_queue_depth = storage.waiting() + reads.waiting();
        return p;
    }

    void arm_stats_timer() {
        stats_timer.expires_after(std::chrono::milliseconds(opt.process_stats_interval_ms));
        stats_timer.async_wait([this](boost::system::error_code ec) {
            if (ec || shutting_down) return;
            core.process_stats(read_process_stats(), now());
            drain();
            arm_stats_timer();
        });
    }

    void carry_out(Commit& c) {
        storage.push([this, c] {
            Status st = chain.carry_out(c, [&] { return store.apply(*c.mutations); });
            asio::post(io, [this, batch = c.batch, st] {
                if (!st.is_ok() && st.code() != Status::Code::aborted)
                    log_event(LogLevel::error, "commit_failed",
                              {{"batch", std::to_string(batch)}, {"error", st.message()}});
                core.committed(batch, st, now());
                drain();
            });
            index_when_busy();
        });
    }

    void carry_out(Query& q) {
        WorkQueue& queue = reader ? reads : storage;
        Store& from = reader ? *reader : store;
        queue.push([this, &from, id = q.query, what = q.what] {
            QueryRows rows = from.run(what);
            asio::post(io, [this, id, rows = std::move(rows)]() mutable {
                core.answered(id, std::move(rows), now());
                drain();
            });
        });
    }

    // On the storage thread, behind every batch sent before it.
    void carry_out(Prune& p) {
        storage.push([this, p = std::move(p)] {
            PruneResult r = store.prune(p.scopes, p.limit);
            if (!r.ok) log_event(LogLevel::warn, "retention_failed", {{"error", r.error}});
            asio::post(io, [this, id = p.id, r = std::move(r)] {
                core.pruned(id, r, now());
                drain();
            });
        });
    }

    void carry_out(Backup& b) {
        auto job = [this, id = b.id, name = b.name] {
            BackupResult r;
            std::error_code ec;
            std::filesystem::create_directories(opt.backup_dir, ec);
            r.path = (std::filesystem::path(opt.backup_dir) / name).string();
            log_always(LogLevel::info, "backup_started", {{"path", r.path}});
            BackupPacing pacing{opt.backup_pages_per_step,
                                std::chrono::milliseconds(opt.backup_pause_ms)};
            auto done = backup_database(opt.db_path, r.path, pacing, &backup_stop);
            if (done.is_ok()) {
                r.ok = true;
                r.bytes = done.value().bytes;
                r.duration_ms = done.value().took.count();
                log_always(LogLevel::info, "backup_done",
                           {{"path", r.path},
                            {"bytes", std::to_string(r.bytes)},
                            {"duration_ms", std::to_string(r.duration_ms)}});
            } else {
                r.error = done.status().message();
                log_always(LogLevel::error, "backup_failed",
                           {{"path", r.path}, {"error", r.error}});
            }
            asio::post(io, [this, id, r = std::move(r)] {
                core.backed_up(id, r, now());
                drain();
            });
        };
        if (!backups.push(std::move(job))) {
            BackupResult r;
            r.error = "the server is stopping";
            asio::post(io, [this, id = b.id, r] {
                core.backed_up(id, r, now());
                drain();
            });
        }
    }

    void carry_out(Hash& h) {
        auto job = [this, id = h.job, mode = h.mode, pw = std::move(h.password),
                    phc = std::move(h.phc)]() mutable {
            HashResult r = run_hash(mode, pw, phc);
            sodium_memzero(pw.data(), pw.size());
            asio::post(io, [this, id, r = std::move(r)] {
                core.hashed(id, r, now());
                drain();
            });
        };
        if (!hasher.push(std::move(job))) {
            HashResult r;
            r.overloaded = true;
            asio::post(io, [this, id = h.job, r] {
                core.hashed(id, r, now());
                drain();
            });
        }
    }

    HashResult run_hash(HashMode mode, const std::string& pw, const std::string& phc) const {
        HashResult r;
        if (mode == HashMode::create) {
            char out[crypto_pwhash_STRBYTES];
            r.ok = crypto_pwhash_str_alg(out, pw.data(), pw.size(), opt.argon2_ops,
                                         opt.argon2_mem_bytes, crypto_pwhash_ALG_ARGON2ID13) == 0;
            if (r.ok)
                r.phc = out;
            else
                r.overloaded = true;  // out of memory: treat as a busy pool
            return r;
        }
        // Unknown users are checked against a dummy hash so that the answer takes as long.
        const std::string& target = phc.empty() ? dummy_phc : phc;
        bool match = crypto_pwhash_str_verify(target.c_str(), pw.data(), pw.size()) == 0;
        r.ok = match && !phc.empty();
        return r;
    }

    // Re-armed only when the core's deadline moved: every drain (one per completed write,
    // under load) asks, and re-arming costs a cancelled wait and a timerfd update.
    void arm_timer() {
        auto deadline = core.next_deadline();
        if (deadline == armed_deadline) return;
        armed_deadline = deadline;
        if (!deadline) {
            timer.cancel();
            return;
        }
        timer.expires_at(mono_epoch + std::chrono::microseconds(*deadline));
        timer.async_wait([this](boost::system::error_code ec) {
            if (ec) return;
            armed_deadline.reset();
            core.tick(now());
            drain();
        });
    }

    // Out of descriptors: a pending client would wait in the backlog while the loop spins on
    // the error. The spare descriptor, given up for a moment, lets one be accepted and closed
    // at once (it sees the close and may retry); accepting resumes after a short pause.
    void accept_without_descriptors(Listener& l) {
        log_event(LogLevel::warn, "accept_no_descriptors",
                  {{"text", "out of file descriptors; closing new clients at once"}});
        if (spare_fd >= 0) ::close(spare_fd);
        int fd = ::accept(l.acceptor.native_handle(), nullptr, nullptr);
        if (fd >= 0) ::close(fd);
        spare_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
        accept_pause.expires_after(std::chrono::milliseconds(50));
        accept_pause.async_wait([this, &l](boost::system::error_code ec) {
            if (!ec && !shutting_down) start_accept(l);
        });
    }

    // Each listener accepts for its own wire; the core is told which one a connection came in
    // on, and whether it is TLS.
    void start_accept(Listener& l) {
        l.acceptor.async_accept([this, &l](boost::system::error_code ec, tcp::socket socket) {
            if (ec == asio::error::no_descriptors ||
                ec == boost::system::error_code(ENFILE, boost::system::system_category()))
                return accept_without_descriptors(l);
            if (ec) {
                if (ec != asio::error::operation_aborted) {
                    log_event(LogLevel::warn, "accept_failed", {{"error", ec.message()}});
                    start_accept(l);
                }
                return;
            }
            boost::system::error_code ignored;
            socket.set_option(tcp::no_delay(true), ignored);
            socket.non_blocking(true, ignored);  // reads happen in start_read, never blocking
            auto ep = socket.remote_endpoint(ignored);
            ConnId id = next_conn++;
            auto conn = std::make_shared<Connection>(std::move(socket));
            conn->peer = ep.address().to_string();
            if (l.tls) conn->tls = std::make_unique<Connection::Tls>(conn->socket, tls_context);
            conns[id] = conn;
            core.connect(id, conn->peer, now(), l.wire, l.tls ? Transport::tls : Transport::plain);
            drain();
            if (!conn->tls)
                start_read(id, conn);
            else if (conn->core_knows)
                start_handshake(id, conn);
            else
                close_now(id);  // refused at accept: not worth a handshake
            start_accept(l);
        });
    }

    // The connection's lines wait (start_write) and nothing is read until the handshake is
    // done; past the deadline the connection goes.
    void start_handshake(ConnId id, const std::shared_ptr<Connection>& conn) {
        conn->close_timer.expires_after(std::chrono::milliseconds(opt.tls.handshake_timeout_ms));
        conn->close_timer.async_wait([this, id, conn](boost::system::error_code ec) {
            if (ec || conn->closed || !conn->tls->handshaking) return;
            log_event(LogLevel::info, "tls_handshake_timeout", {{"peer", conn->peer}});
            lost(id, conn);
        });
        conn->tls->stream.async_handshake(
            ssl::stream_base::server, [this, id, conn](boost::system::error_code ec) {
                if (conn->closed) return;
                conn->tls->handshaking = false;
                if (ec) {
                    log_event(LogLevel::info, "tls_handshake_failed",
                              {{"peer", conn->peer}, {"error", ec.message()}});
                    return lost(id, conn);
                }
                if (!conn->core_knows) {  // its last line, then the close
                    if (!conn->writing && conn->queued.empty()) return linger(id, conn);
                    return start_write(id, conn);
                }
                conn->close_timer.cancel();
                if (std::string fp = peer_fingerprint(conn->tls->stream.native_handle());
                    !fp.empty()) {
                    core.peer_certificate(id, fp, now());
                    drain();
                }
                start_write(id, conn);
                start_read(id, conn);
            });
    }

    // Reads go into one buffer the whole driver shares: the io_context runs on one thread and
    // a read happens only inside a handler here, so an idle connection holds no read buffer
    // of its own. Read first; only after the socket says would_block wait for readiness
    // (the next data then makes a new edge). Up to four reads per turn, then the connection
    // goes to the back of the queue so others get theirs.
    void start_read(ConnId id, const std::shared_ptr<Connection>& conn) {
        if (!conn->core_knows || conn->closed) return;
        if (!core.wants_input(id)) {
            read_waiting.insert(id);
            return;
        }
        if (conn->tls) return start_tls_read(id, conn);
        for (int round = 0; round < 4; ++round) {
            boost::system::error_code ec;
            size_t n = conn->socket.read_some(asio::buffer(read_buffer), ec);
            if (ec == asio::error::would_block || ec == asio::error::try_again) {
                conn->socket.async_wait(tcp::socket::wait_read,
                                        [this, id, conn](boost::system::error_code wec) {
                                            if (conn->closed || !conn->core_knows) return;
                                            if (wec) return lost(id, conn);
                                            start_read(id, conn);
                                        });
                return;
            }
            if (ec) return lost(id, conn);
            core.receive(id, std::string_view(read_buffer.data(), n), now());
            drain();
            if (conn->closed || !conn->core_knows) return;
            if (!core.wants_input(id)) {
                read_waiting.insert(id);
                return;
            }
        }
        asio::post(io, [this, id, conn] { start_read(id, conn); });
    }

    // One read at a time through the TLS engine, into the connection's own buffer.
    void start_tls_read(ConnId id, const std::shared_ptr<Connection>& conn) {
        Connection::Tls& t = *conn->tls;
        if (t.reading || t.handshaking) return;
        t.reading = true;
        t.stream.async_read_some(
            asio::buffer(t.in), [this, id, conn](boost::system::error_code ec, size_t n) {
                conn->tls->reading = false;
                if (conn->closed) return;
                if (!conn->core_knows) {
                    if (conn->lingering) say_close_notify(id, conn);  // the read was cancelled
                    return;
                }
                if (ec) return lost(id, conn);
                core.receive(id, std::string_view(conn->tls->in.data(), n), now());
                drain();
                start_read(id, conn);
            });
    }

    // The peer went away or the socket failed: the core hears of it (unless it closed the
    // connection itself), and the socket goes.
    void lost(ConnId id, const std::shared_ptr<Connection>& conn) {
        if (conn->core_knows) {
            conn->core_knows = false;
            core.disconnect(id, now());
        }
        close_now(id);
        drain();
    }

    void start_write(ConnId id, const std::shared_ptr<Connection>& conn) {
        if (conn->writing || conn->queued.empty() || conn->closed || conn->held) return;
        if (conn->tls && conn->tls->handshaking) return;
        // At most one write per connection per write_coalesce_us: a connection written to
        // less than that ago waits for the rest of the window, gathering what comes meanwhile
        // into one write. On a busy connection every write is a TCP segment the kernel
        // carries to the reader, most of the server's CPU at a thousand messages a second to
        // a hundred readers (with TCP_NODELAY, which keeps a quiet connection's latency low);
        // a connection quieter than that is written to at once. A message waits at most the
        // window, where the kernel's own Nagle waits for the reader's acknowledgement, which
        // a reader delaying its ACKs sends up to 40 ms later.
        if (opt.write_coalesce_us > 0) {
            auto t = std::chrono::steady_clock::now();
            auto window = std::chrono::microseconds(opt.write_coalesce_us);
            if (t - conn->last_write < window) return hold(id, conn, conn->last_write + window);
            conn->last_write = t;
        }
        std::swap(conn->out, conn->queued);  // `queued` is left empty
        conn->writing = true;
        if (conn->tls) {
            // The TLS engine makes a record of each buffer it is given: one piece, then.
            std::string& whole = conn->tls->out;
            whole.clear();
            for (const asio::const_buffer& b : buffers_of(conn->out, 0))
                whole.append(static_cast<const char*>(b.data()), b.size());
            return asio::async_write(conn->tls->stream, asio::buffer(whole),
                                     [this, id, conn](boost::system::error_code ec, size_t n) {
                                         written(id, conn, ec, n);
                                     });
        }
        if (conn->out.size() >= opt.write_off_thread_min) return write_off_thread(id, conn);
        asio::async_write(
            conn->socket, buffers_of(conn->out, 0),
            [this, id, conn](boost::system::error_code ec, size_t n) { written(id, conn, ec, n); });
    }

    void hold(ConnId id, const std::shared_ptr<Connection>& conn,
              std::chrono::steady_clock::time_point due) {
        conn->held = true;
        held.emplace_back(id, conn);
        // The timer armed by the first connection held since it last fired goes off within a
        // window of now: this one is written then, a little early at most.
        if (coalesce_armed) return;
        coalesce_armed = true;
        coalesce_timer.expires_at(due);
        coalesce_timer.async_wait([this](boost::system::error_code) {
            coalesce_armed = false;
            for (auto& [held_id, c] : std::exchange(held, {})) {
                c->held = false;
                c->last_write = {};
                start_write(held_id, c);
            }
        });
    }

    // The bytes from `offset` on, as Asio's buffer sequence (it keeps a copy of the sequence,
    // not of the bytes, which stay put while the write lasts).
    static std::vector<asio::const_buffer> buffers_of(const OutBytes& bytes, size_t offset) {
        std::vector<iovec> iov(bytes.parts());
        iov.resize(bytes.gather(bytes.seek(offset), iov.data(), iov.size()));
        std::vector<asio::const_buffer> seq;
        seq.reserve(iov.size());
        for (const iovec& v : iov) seq.emplace_back(v.iov_base, v.iov_len);
        return seq;
    }

    // A write is over (all of `out`, or a failure).
    void written(ConnId id, const std::shared_ptr<Connection>& conn, boost::system::error_code ec,
                 size_t n) {
        conn->writing = false;
        conn->out.clear();
        if (conn->tls && conn->queued.empty()) conn->tls->out = std::string();  // idle
        if (conn->closed) return;
        if (ec) return lost(id, conn);
        if (conn->core_knows) {
            core.sent(id, n, now());
            drain();
        }
        if (!conn->core_knows && conn->queued.empty()) return linger(id, conn);
        start_write(id, conn);
    }

    // Writes (of write_off_thread_min bytes or more) are made by the writer thread, so the
    // system calls and the kernel's copying run beside the core instead of on its thread. The
    // writer touches only the descriptor and `out`, both left alone here while `on_writer` is
    // set (the socket is not closed meanwhile: close_now leaves that to the job's return);
    // everything else — the core, the buffers, the connection's state — stays on this thread,
    // where the results come back. The writer sends what the socket takes; if it fills, the
    // rest is written from here once the socket has room, as any other write.
    void write_off_thread(ConnId id, const std::shared_ptr<Connection>& conn) {
        conn->on_writer = true;
        if (to_writer.empty()) asio::post(io, [this] { hand_to_writer(); });
        to_writer.push_back(WriteJob{id, conn, conn->socket.native_handle()});
    }

    void hand_to_writer() {
        auto jobs = std::make_shared<std::vector<WriteJob>>(std::exchange(to_writer, {}));
        writer.push([this, jobs = std::move(jobs)]() mutable {
            std::array<iovec, 1024> iov;  // IOV_MAX
            for (WriteJob& j : *jobs) {
                const OutBytes& out = j.conn->out;
                OutBytes::Cursor at;
                while (j.written < out.size()) {
                    msghdr msg{};
                    msg.msg_iov = iov.data();
                    msg.msg_iovlen = out.gather(at, iov.data(), iov.size());
                    ssize_t n = ::sendmsg(j.fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
                    if (n > 0) {
                        j.written += static_cast<size_t>(n);
                        at = out.advance(at, static_cast<size_t>(n));
                    } else if (n < 0 && errno == EINTR) {
                        continue;
                    } else {
                        j.error = n < 0 ? errno : EPIPE;
                        break;
                    }
                }
            }
            // Moved, not copied: the last reference to the connections is dropped on the core's
            // thread, never on this one.
            asio::post(io, [this, jobs = std::move(jobs)] {
                for (WriteJob& j : *jobs) written_off_thread(j);
            });
        });
    }

    void written_off_thread(WriteJob& j) {
        const std::shared_ptr<Connection>& conn = j.conn;
        conn->on_writer = false;
        if (conn->closed) {  // close_now left the descriptor to this moment
            boost::system::error_code ignored;
            conn->socket.close(ignored);
            return written(j.id, conn, {}, j.written);
        }
        if (j.error == EAGAIN || j.error == EWOULDBLOCK) {
            // The socket is full: the rest goes when it has room, from this thread.
            size_t done = j.written;
            return asio::async_write(
                conn->socket, buffers_of(conn->out, done),
                [this, id = j.id, conn, done](boost::system::error_code ec, size_t n) {
                    written(id, conn, ec, done + n);
                });
        }
        written(j.id, conn,
                j.error ? boost::system::error_code(j.error, boost::system::system_category())
                        : boost::system::error_code{},
                j.written);
    }

    void close_now(ConnId id) {
        auto it = conns.find(id);
        if (it == conns.end()) return;
        auto conn = it->second;
        conns.erase(it);
        read_waiting.erase(id);
        conn->closed = true;
        if (conn->lingering) --lingering;
        boost::system::error_code ignored;
        conn->close_timer.cancel();
        conn->socket.shutdown(tcp::socket::shutdown_both, ignored);
        // The writer thread still sends on the descriptor: closed when it is done, so the
        // number is not reused under it.
        if (!conn->on_writer) conn->socket.close(ignored);
        maybe_finish();
    }

    void begin_shutdown() {
        if (shutting_down) return;
        shutting_down = true;
        log_always(LogLevel::info, "shutting_down", {{"text", "finishing in-flight work"}});
        boost::system::error_code ignored;
        for (auto& l : listeners) l->acceptor.close(ignored);
        stats_timer.cancel();
        notify("STOPPING=1\nSTATUS=finishing in-flight work");
        backup_stop = true;
        if (admin) admin->stop();
        core.shutdown(now());
        drain();
    }

    void maybe_finish() {
        if (shutting_down && core.stopped() && conns.empty()) {
            timer.cancel();
            armed_deadline.reset();
            signals.cancel();
            hangups.cancel();
            watchdog_timer.cancel();
            io.stop();
        }
    }

    // A failure to reach the service manager is logged, never fatal.
    static void notify(std::string_view state) {
        if (std::string bad = notify_service_manager(state); !bad.empty())
            log_event(LogLevel::warn, "notify_failed", {{"error", bad}});
    }

    void wait_for_hangup() {
        hangups.async_wait([this](boost::system::error_code ec, int) {
            if (ec) return;
            log_always(LogLevel::info, "signal", {{"signal", "SIGHUP"}});
            if (opt.on_hangup) opt.on_hangup();
            if (tls_context) reload_tls();
            wait_for_hangup();
        });
    }

    // A new certificate and key for new connections; open ones keep theirs. A bad file keeps
    // the old context (and says why): a typo must not take TLS down.
    void reload_tls() {
        std::string error;
        if (auto fresh = make_tls_context(opt.tls, error)) {
            tls_context = std::move(fresh);
            log_always(LogLevel::info, "tls_reloaded", {{"cert_file", opt.tls.cert_file}});
        } else {
            log_always(LogLevel::error, "tls_reload_failed",
                       {{"error", error}, {"text", "new connections keep the old certificate"}});
        }
    }

    // Pings the service manager's watchdog from the event loop itself, so a loop that stops
    // turning (a deadlock, a handler that never returns) is noticed and restarted.
    void arm_watchdog(int64_t interval_us) {
        watchdog_timer.expires_after(std::chrono::microseconds(interval_us / 2));
        watchdog_timer.async_wait([this, interval_us](boost::system::error_code ec) {
            if (ec) return;
            notify("WATCHDOG=1");
            arm_watchdog(interval_us);
        });
    }

    static Status listen(tcp::acceptor& a, const std::string& host, uint16_t port) {
        boost::system::error_code ec;
        auto addr = asio::ip::make_address(host, ec);
        if (ec) return Status::failed("bad listen address '" + host + "'");
        tcp::endpoint ep(addr, port);
        a.open(ep.protocol(), ec);
        if (!ec) a.set_option(tcp::acceptor::reuse_address(true), ec);
        if (!ec) a.bind(ep, ec);
        if (!ec) a.listen(asio::socket_base::max_listen_connections, ec);
        if (ec)
            return Status::failed("cannot listen on " + host + ":" + std::to_string(port) + ": " +
                                  ec.message());
        return Status::ok();
    }
};

Driver::Driver(Server& core, Store& store, Store* reader, DriverOptions options)
    : s_(std::make_unique<State>(core, store, reader, std::move(options))) {}

Driver::~Driver() = default;

int Driver::run() {
    State& s = *s_;
    // The dummy hash for unknown users is made with the same cost as real ones.
    uint8_t random_pw[16];
    randombytes_buf(random_pw, sizeof random_pw);
    s.dummy_phc = s.run_hash(HashMode::create,
                             std::string(reinterpret_cast<char*>(random_pw), sizeof random_pw), "")
                      .phc;
    // The listeners: the native one first (its line on stdout comes last: it means ready).
    using OnListening = std::function<void(const std::string&, uint16_t)>;
    struct Wanted {
        bool on;
        Wire wire;
        bool tls;
        const char* name;
        const std::string& host;
        uint16_t port;
        const OnListening& report;
    };
    const DriverOptions& o = s.opt;
    const Wanted wanted[] = {
        {true, Wire::json, false, "listening", o.listen_host, o.listen_port, o.on_listening},
        {o.irc_enabled, Wire::irc, false, "irc_listening", o.irc_host, o.irc_port,
         o.on_irc_listening},
        {o.irc_tls_enabled, Wire::irc, true, "ircs_listening", o.irc_tls_host, o.irc_tls_port,
         o.on_irc_tls_listening},
        {o.tls_enabled, Wire::json, true, "tls_listening", o.tls_host, o.tls_port,
         o.on_tls_listening},
    };
    bool any_tls = o.admin.tls;
    for (const Wanted& w : wanted) any_tls = any_tls || (w.on && w.tls);
    if (any_tls) {
        std::string error;
        s.tls_context = make_tls_context(o.tls, error);
        if (!s.tls_context) {
            log_always(LogLevel::error, "tls_failed", {{"error", error}});
            return 1;
        }
    }
    for (const Wanted& w : wanted) {
        if (!w.on) continue;
        auto l = std::make_unique<Listener>(s.io, w.wire, w.tls, w.name);
        if (Status st = State::listen(l->acceptor, w.host, w.port); !st.is_ok()) {
            log_always(LogLevel::error, "listen_failed",
                       {{"listener", w.name}, {"error", st.message()}});
            return 1;
        }
        s.listeners.push_back(std::move(l));
    }
    if (s.opt.admin_enabled) {
        s.admin = std::make_unique<AdminHttp>(
            s.io, s.opt.admin,
            [&s](const AdminRequest& q, std::function<void(const AdminReply&)> done) {
                s.submit_admin(q, std::move(done));
            },
            [&s] { return s.tls_context; });
        if (std::string err = s.admin->start(); !err.empty()) {
            log_always(LogLevel::error, "admin_listen_failed", {{"error", err}});
            return 1;
        }
        if (s.opt.on_admin_listening)
            s.opt.on_admin_listening(s.admin->local_host(), s.admin->local_port());
    }
    s.signals.async_wait([&s](boost::system::error_code ec, int sig) {
        if (ec) return;
        log_always(LogLevel::info, "signal", {{"signal", std::to_string(sig)}});
        s.begin_shutdown();
    });
    s.core.process_stats(s.read_process_stats(), s.now());
    s.arm_stats_timer();
    s.wait_for_hangup();
    // Reported in reverse, so that the native listener's line is the last.
    for (size_t i = s.listeners.size(); i-- > 0;) {
        Listener& l = *s.listeners[i];
        s.start_accept(l);
        auto ep = l.acceptor.local_endpoint();
        if (i > 0)
            log_always(LogLevel::info, l.name,
                       {{"host", ep.address().to_string()}, {"port", std::to_string(ep.port())}});
        for (const Wanted& w : wanted)
            if (w.name == l.name && w.report) w.report(ep.address().to_string(), ep.port());
    }
    auto local = s.listeners.front()->acceptor.local_endpoint();
    State::notify("READY=1\nSTATUS=serving on " + local.address().to_string() + ":" +
                  std::to_string(local.port()));
    if (auto interval = watchdog_interval_us()) s.arm_watchdog(*interval);
    s.drain();
    s.io.run();
    s.hasher.stop();
    s.backups.stop();
    s.reads.stop();
    s.storage.stop();
    s.admin.reset();
    log_always(LogLevel::info, "stopped", {{"text", "stopped cleanly"}});
    return 0;
}

}  // namespace warren
