// Server: the whole behaviour of Warren as one deterministic, single-threaded state machine
// that performs no I/O ("sans-IO"). Two drivers run it: netadapter/ in production and sim/ in
// tests. Same inputs in the same order give the same outputs, byte for byte.
//
// Call order (the only one supported):
//   1. feed one input: connect / receive / sent / disconnect / tick / committed / answered /
//      hashed / admin / backed_up / pruned / process_stats / shutdown, each with the current Time from the driver;
//   2. drain poll() until it returns nullopt, carrying out each output (core/outputs.h says
//      what each one asks);
//   3. arm one timer for next_deadline() (mono µs) and call tick() when it fires.
// Never call the core from inside the handling of one of its outputs; queue the completion
// and feed it as a new input. A reply or event that depends on a change is released only after
// committed(ok) for it. admin() serves the admin API: reads answer at once, actions (block,
// suspend) take effect at once in memory and answer after their commit.
//
// The facade only wires the parts, each of which owns its state (docs/ARCHITECTURE.md):
//   conn/       Connections: framing, reply slots in request order, outbound bounds, closes
//   security/   Guard (decisions), admission, Enforcement (carrying decisions out)
//   validate/   frames -> typed, checked requests
//   chat/       Chat: the ops on the chat state, as Outcomes
//   txn/        Transactions: batches, retries, rollback, the breaker
//   monitor/    Monitor: counters, latency histograms, alerts
//   admin/      Admin: the admin API
// and routes what they return: replies to slots, events to connections, mutations to batches,
// effects to outputs.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "core/admin/admin.h"
#include "core/base.h"
#include "core/chat/chat.h"
#include "core/chat/retention.h"
#include "core/config.h"
#include "core/conn/connections.h"
#include "core/entropy.h"
#include "core/monitor/monitor.h"
#include "core/outputs.h"
#include "core/security/enforcement.h"
#include "core/security/guard.h"
#include "core/txn/transactions.h"
#include "core/validate/requests.h"

namespace warren {

class RequestDecoder;  // core/protocol/request.h

// Process resources the driver measures and passes in (the core reads no /proc).
struct ProcessStats {
    uint64_t rss_bytes = 0;
    double cpu_seconds = 0;
    uint64_t open_files = 0;
    uint64_t hash_queue_depth = 0;
    uint64_t storage_queue_depth = 0;
};

class Server {
  public:
    Server(Config config, Entropy& entropy, const Snapshot& snapshot);
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;
    ~Server();

    // Inputs.
    // `wire`: the protocol of the listener that accepted it (IRC: core/irc/).
    // `transport`: tls when the driver terminates TLS for it (the handshake may still run; the
    // core's lines wait in the driver until it is done).
    void connect(ConnId id, std::string_view peer_ip, Time now, Wire wire = Wire::json,
                 Transport transport = Transport::plain);
    // After a TLS handshake in which the client showed a certificate: its SHA-256 fingerprint
    // (lowercase hex of the DER). Comes before any receive() on the connection.
    void peer_certificate(ConnId id, std::string_view sha256_hex, Time now);
    void receive(ConnId id, std::string_view bytes, Time now);
    void sent(ConnId id, size_t n_bytes, Time now);
    // False while readers of this connection's messages are far behind (backpressure): the
    // driver should not read from it until this is true again (checked after each drain).
    // Lines it does deliver meanwhile wait, within a bound.
    bool wants_input(ConnId id) const;
    void disconnect(ConnId id, Time now);
    void tick(Time now);
    void committed(BatchId batch, const Status& status, Time now);
    void answered(QueryId query, QueryRows rows, Time now);
    void hashed(JobId job_id, HashResult result, Time now);
    // Stop taking requests, let in-flight work finish, then DISCONNECT SHUTDOWN everyone.
    void shutdown(Time now);
    // The admin API. The answer comes out of poll() as an AdminReply with the returned id.
    AdminId admin(const AdminRequest& request, Time now);
    // A Prune output finished (retention).
    void pruned(uint64_t id, const PruneResult& result, Time now);
    // A Backup output finished (the admin request that asked for it is answered).
    void backed_up(AdminId id, const BackupResult& result, Time now);
    // Latest process figures from the driver, for monitoring and alerts.
    void process_stats(const ProcessStats& stats, Time now);

    // Outputs.
    std::optional<Output> poll();
    std::optional<int64_t> next_deadline() const;  // mono µs
    // True once shutdown() has completed: no work in flight, every connection closed.
    bool stopped() const { return stopped_; }

    // Observation (tests, monitoring).
    using StorageStats = Transactions::Stats;
    const StorageStats& storage_stats() const { return txn_.stats(); }
    Breaker::State breaker_state() const { return txn_.breaker().state(now_.mono_us); }
    uint64_t breaker_opened_count() const { return txn_.breaker().opened_count(); }
    size_t connection_count() const { return conns_.size(); }
    const Guard& guard() const { return guard_; }
    const Monitor& monitor() const { return monitor_; }
    const ChatState& state() const { return chat_.state(); }
    const Config& config() const { return config_; }
    const Retention& retention() const { return retention_; }

  private:
    // Where a request's reply goes.
    struct Route {
        ConnId conn = 0;
        uint64_t slot = 0;
        int64_t request_id = 0;
    };
    // An effect in flight and what to do with its result.
    struct Job {
        Route route;
        std::string ip_key;  // whose security state the request counts against
        Continuation then;
        bool paused = false;  // the connection waits for it
        UserId user = 0;      // the account whose storage reads it counts against (0: none)
    };

    void begin_input(Time now);
    void end_input();
    void read_lines(Connections::Conn& c);
    void handle_line(Connections::Conn& c, std::string_view line);
    void handle_irc_line(Connections::Conn& c, std::string_view line);
    void run_irc_step(Connections::Conn& c);
    void run_checked(Connections::Conn& c, const Route& route, std::optional<UserId> user,
                     std::variant<Validated, Rejection> checked);
    // What the rest of the core allows a request now (writes only asked about if it writes).
    Gate gate(bool writes, std::optional<UserId> user) const;
    // Carries out what the chat machine returned for the request at `route`.
    void route_outcome(const Route& route, const std::string& ip_key, std::optional<UserId> user,
                       Outcome& out);
    void hold_changes(Outcome& out);
    void close_revoked(std::vector<ConnId>& ids);
    void reply(const Route& route, ReplyBody body);
    void emit(Addressed a);
    void start_effect(const Route& route, const std::string& ip_key, Effect effect);
    void resume(Job job, EffectResult result);
    void release(Batch& b);
    void roll_back(Transactions::Settled& s);
    void forget_closed();
    // Reads the waiting lines of connections no reader holds back any more.
    void read_released();
    void end_fakelags();
    void expire_invitations();
    // Sends the next retention Prune when one is due.
    void prune_expired();
    void housekeeping();
    void finish_shutdown_if_idle();
    Gauges gauges() const;

    Config config_;
    Entropy& entropy_;
    Outputs outputs_;
    Monitor monitor_;
    Guard guard_;
    Chat chat_;
    Connections conns_;
    Transactions txn_;
    Enforcement enforcement_;
    Admin admin_;
    Retention retention_;
    // Behind a pointer so that the drivers and tests including this header do not compile
    // simdjson (core/protocol/request.h).
    std::unique_ptr<RequestDecoder> decoder_;
    Time now_{};
    std::map<JobId, Job> hash_jobs_;
    std::map<QueryId, Job> query_jobs_;
    std::map<UserId, size_t> queries_of_;  // storage reads in flight per account
    // IRC connections waiting for their rate limit's tokens (fakelag), by when.
    std::set<std::pair<int64_t, ConnId>> fakelagged_;
    std::map<QueryId, std::pair<AdminId, uint32_t>> audit_reads_;  // admin audit pages
    JobId next_job_ = 1;
    QueryId next_query_ = 1;
    AdminId next_admin_ = 1;
    ProcessStats process_{};
    bool clock_started_ = false;
    int64_t next_sweep_us_ = 0;
    int64_t next_eval_us_ = 0;
    int64_t next_housekeeping_us_ = 0;
    int64_t next_prune_us_ = 0;
    int64_t expiry_blocked_until_us_ = 0;  // expiry was refused a write; try again then
    bool shutting_down_ = false;
    bool stopped_ = false;
};

}  // namespace warren
