// Server: the whole behaviour of Warren as one deterministic, single-threaded state machine
// that performs no I/O ("sans-IO"). Two drivers run it: netadapter/ in production and sim/ in
// tests. Same inputs in the same order give the same outputs, byte for byte.
//
// Call order (the only one supported):
//   1. feed one input: connect / receive / sent / disconnect / tick / committed / answered /
//      hashed / shutdown, each with the current Time from the driver;
//   2. drain poll() until it returns nullopt, carrying out each output;
//   3. arm one timer for next_deadline() and call tick() when it fires.
// Never call the core from inside the handling of one of its outputs; queue the completion
// and feed it as a new input. Outputs:
//   Send    - write these bytes to the connection (the bytes may be shared by many Sends).
//             Report progress with sent(conn, n).
//   Close   - flush what was sent to the connection, then close it. The core has already
//             forgotten the connection; a later disconnect() for it is ignored.
//   Commit  - apply these mutations in one storage transaction, in order of batch id, and
//             report committed(batch, status). Only one batch is in flight at a time.
//   Query   - read stored messages (a history page, one message, a thread, a search) and
//             report answered(query, rows).
//   Hash    - hash (create) or verify a password with argon2id off the event loop and report
//             hashed(job, result).
//   Audit   - a security decision or admin action, for the log (it is also committed).
//   Notice  - an alert raised, changed or resolved, for the log.
//   AdminReply - the answer to an admin() request: an HTTP status and a JSON (or text) body.
// admin() serves the admin API: reads answer at once, actions (block, suspend) take effect at
// once in memory and answer after their commit.
// A reply or event that depends on a change is released only after committed(ok) for it.
#pragma once

#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "core/base.h"
#include "core/chat/records.h"
#include "core/chat/state.h"
#include "core/config.h"
#include "core/entropy.h"
#include "core/monitor/monitor.h"
#include "core/protocol/codes.h"
#include "core/protocol/framer.h"
#include "core/protocol/request.h"
#include "core/security/guard.h"
#include "core/txn/batches.h"
#include "core/txn/breaker.h"

namespace warren {

class JsonWriter;

struct Send {
    ConnId conn = 0;
    std::shared_ptr<const std::string> bytes;
};

struct Close {
    ConnId conn = 0;
    std::string_view reason;  // the DISCONNECT reason already sent, for logs
};

struct Commit {
    BatchId batch = 0;
    std::shared_ptr<const std::vector<Mutation>> mutations;
};

struct Query {
    QueryId query = 0;
    StoredQuery what;
};

enum class HashMode { create, verify };

struct Hash {
    JobId job = 0;
    HashMode mode = HashMode::create;
    std::string password;
    // verify: the PHC string to check against; empty means "no such user": the hasher
    // verifies against a dummy hash so that the answer takes the same time, and fails.
    std::string phc;
};

struct HashResult {
    bool ok = false;          // create: hashed; verify: the password matches
    bool overloaded = false;  // the hashing pool was full: nothing was computed
    std::string phc;          // create: the new PHC string
};

struct Audit {
    AuditRow record;
};

// A line for the operator's log: an alert raised or resolved.
struct Notice {
    AlertLevel level = AlertLevel::info;
    std::string text;
};

using AdminId = uint64_t;

struct AdminRequest {
    enum class Kind {
        blocks,        // list active blocks and suspensions
        block,         // ip, duration_ms?, reason
        unblock,       // ip
        suspend,       // username, duration_ms?, reason
        unsuspend,     // username
        audit,         // before (0: newest), limit
        metrics,       // JSON metrics
        report,        // JSON performance report
        alerts,        // active alerts and history
        clear_alerts,  // rule? (empty: all)
        prometheus,    // text exposition format
        health,
        ready,
    };
    Kind kind = Kind::blocks;
    std::string ip;
    std::string username;
    std::optional<int64_t> duration_ms;
    std::string reason;
    int64_t before = 0;
    uint32_t limit = 50;
    std::string rule;
};

struct AdminReply {
    AdminId id = 0;
    int status = 200;
    std::string body;
    std::string_view content_type = "application/json";
};

// Process resources the driver measures and passes in (the core reads no /proc).
struct ProcessStats {
    uint64_t rss_bytes = 0;
    double cpu_seconds = 0;
    uint64_t open_files = 0;
    uint64_t hash_queue_depth = 0;
    uint64_t storage_queue_depth = 0;
};

using Output = std::variant<Send, Close, Commit, Query, Hash, Audit, Notice, AdminReply>;

class Server {
  public:
    Server(Config config, Entropy& entropy, const Snapshot& snapshot);
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;
    ~Server();

    // Inputs.
    void connect(ConnId conn, std::string_view peer_ip, Time now);
    void receive(ConnId conn, std::string_view bytes, Time now);
    void sent(ConnId conn, size_t n_bytes, Time now);
    void disconnect(ConnId conn, Time now);
    void tick(Time now);
    void committed(BatchId batch, const Status& status, Time now);
    void answered(QueryId query, QueryRows rows, Time now);
    void hashed(JobId job, HashResult result, Time now);
    // Stop taking requests, let in-flight work finish, then DISCONNECT SHUTDOWN everyone.
    void shutdown(Time now);
    // The admin API. The answer comes out of poll() as an AdminReply with the returned id.
    AdminId admin(const AdminRequest& request, Time now);
    // Latest process figures from the driver, for monitoring and alerts.
    void process_stats(const ProcessStats& stats, Time now);

    // Outputs.
    std::optional<Output> poll();
    std::optional<int64_t> next_deadline() const;  // mono_ms
    // True once shutdown() has completed: no work in flight, every connection closed.
    bool stopped() const { return stopped_; }

    // Observation (tests, monitoring).
    struct StorageStats {
        uint64_t batches_committed = 0;
        uint64_t batches_failed = 0;  // rolled back (permanent failure or out of retries)
        uint64_t commit_retries = 0;
        uint64_t mutations_committed = 0;
        uint64_t writes_refused = 0;  // refused while the breaker was open or queues full
    };
    const StorageStats& storage_stats() const { return storage_stats_; }
    Breaker::State breaker_state() const { return breaker_.state(now_.mono_ms); }
    uint64_t breaker_opened_count() const { return breaker_.opened_count(); }
    size_t connection_count() const { return conns_.size(); }
    const Guard& guard() const { return guard_; }
    const Monitor& monitor() const { return monitor_; }
    const ChatState& state() const { return chat_; }
    const Config& config() const { return config_; }

  private:
    struct Slot {
        int64_t received_ms = 0;
        int8_t op = -1;  // the request's Op, or -1 while (or if) it is not known
        bool ready = false;
        std::shared_ptr<const std::string> bytes;
        std::string_view close_reason;  // non-empty: close the connection after this line
    };
    struct Conn {
        Conn(ConnId i, std::string_view peer, std::string key, size_t max_frame, int64_t now_ms)
            : id(i),
              ip(peer),
              ip_key(std::move(key)),
              framer(max_frame),
              opened_ms(now_ms),
              active_ms(now_ms) {}
        ConnId id;
        std::string ip;
        std::string ip_key;  // what security state is tracked under (IPv6: the /64)
        LineFramer framer;
        std::optional<UserId> user;
        std::string token_hash;  // the session this connection is logged in with
        std::deque<Slot> slots;  // replies in request order
        uint64_t slot_base = 0;  // sequence number of slots.front()
        bool paused = false;     // a password hash is running; further lines wait
        bool closing = false;
        size_t outbound_bytes = 0;
        std::deque<int64_t> bad_frame_ms;
        int64_t opened_ms = 0;
        int64_t active_ms = 0;  // the last complete request (idle timeout)
    };
    // The request being handled: where its reply goes.
    struct Req {
        Conn* conn;
        uint64_t slot;
        int64_t id;
        std::string_view line = {};  // the request as received, to run it again later
        Op op = Op::ping;            // known once the op name is
    };
    struct HashJob {
        ConnId conn = 0;
        uint64_t slot = 0;
        int64_t request_id = 0;
        Op op = Op::register_;
        std::string username;
        std::string ip_key;  // whose failure a failed login counts as
    };
    struct QueryJob {
        ConnId conn = 0;
        uint64_t slot = 0;
        int64_t request_id = 0;
        StoredQuery::Kind kind = StoredQuery::Kind::history;
        HistoryQuery spec;   // history
        std::string line;    // message: the request to run again once it is in memory
        MessageRow root;     // thread
        uint32_t limit = 0;  // thread, search
        AdminId admin = 0;   // audit
    };

    // Input plumbing (server.cc).
    void begin_input(Time now);
    void end_input();
    void process_lines(Conn& c);
    void handle_line(Conn& c, std::string_view line);
    void handle_bad_frame(Conn& c, std::string detail);
    void dispatch(Req& r, Op op, Args& args);
    Conn* conn(ConnId id);
    uint64_t open_slot(Conn& c);
    void fill_slot(ConnId conn, uint64_t slot, std::shared_ptr<const std::string> bytes,
                   std::string_view close_reason = {});
    void flush_slots(Conn& c);
    void send_bytes(Conn& c, std::shared_ptr<const std::string> bytes);
    void close_with(Conn& c, std::string_view reason, std::optional<int64_t> retry_after_ms = {});
    // Security (security in server.cc): decisions the Guard made, carried out; persisted rows
    // ride in the open batch (or are only logged if storage refuses writes).
    bool admit_request(Req& r, Args& args);
    void carry_out_decisions();
    void close_ip(const std::string& ip_key, std::optional<int64_t> retry_after_ms);
    void close_user(UserId user, std::optional<int64_t> retry_after_ms);
    void audit(std::string actor, std::string ip, std::string account, std::string action,
               std::string reason, std::string details = {});
    void persist(Mutation m);
    // Moves the backlog of security rows into the open batch when storage takes writes.
    void flush_security_backlog();
    Gauges gauges() const;
    std::string user_name(UserId id);
    // Timeouts every sweep_interval_ms; Guard pruning and expired sessions every minute; audit
    // pruning every hour.
    void sweep();
    // Admin (admin.cc).
    void admin_reply(AdminId id, int status, std::string body,
                     std::string_view content_type = "application/json");
    void admin_error(AdminId id, int status, std::string_view message);
    void admin_blocks(AdminId id);
    void admin_block(AdminId id, const AdminRequest& q);
    void admin_suspend(AdminId id, const AdminRequest& q);
    void admin_unsuspend(AdminId id, const AdminRequest& q);
    void admin_unblock(AdminId id, const AdminRequest& q);
    void admin_audit(AdminId id, const AdminRequest& q);
    bool admin_commit(AdminId id, std::vector<Mutation> rows, std::string body, Undo undo);
    // A new audit row (the next id, now) by "system" or "admin".
    AuditRow audit_row(std::string actor, std::string ip, std::string account, std::string action,
                       std::string reason, std::string details = {});
    void answer_audit(const QueryJob& job, const QueryRows& rows);
    void forget_conn(Conn& c);
    void maybe_send_batch();
    void finish_shutdown_if_idle();

    // Replies (server.cc). reply() releases behind the newest batch (the read barrier).
    void reply(const Req& r, std::shared_ptr<const std::string> bytes);
    void reply_error(const Req& r, ErrorCode code, std::string_view message,
                     std::string_view field = {}, std::optional<int64_t> retry_after_ms = {});
    std::shared_ptr<const std::string> error_line(std::optional<int64_t> re, ErrorCode code,
                                                  std::string_view message,
                                                  std::string_view field = {},
                                                  std::optional<int64_t> retry_after_ms = {});
    // Write path (server.cc): apply a mutation into the open batch with its undo action.
    // Answers UNAVAILABLE and returns true when no state change may start now (breaker open,
    // queues full); the caller then stops.
    bool refuse_write(const Req& r);
    Batch& write_batch();
    void send_batch(Batch& b);
    void batch_failed(BatchId batch);
    void apply(Batch& b, Mutation m);
    void commit_reply(Batch& b, const Req& r, std::shared_ptr<const std::string> bytes);
    void bind_user(Conn& c, UserId user, std::string token_hash);
    // announce = false when undoing a login whose PRESENCE was never sent.
    void unbind_user(Conn& c, bool announce = true);

    // Ops (chat/ops.cc).
    Room* room_or_reply(const Req& r, std::string_view name);
    void op_register(Req& r, Args& a);
    void op_login(Req& r, Args& a);
    void op_logout(Req& r);
    void op_create_room(Req& r, Args& a);
    void op_join_room(Req& r, Args& a);
    void op_leave_room(Req& r, Args& a);
    void op_list_rooms(Req& r, Args& a);
    void op_send_message(Req& r, Args& a);
    void op_history(Req& r, Args& a);
    void op_direct_message(Req& r, Args& a);
    void post_message(const Req& r, MessageRow m, std::string_view event, std::vector<ConnId> to);
    bool check_message_args(const Req& r, Args& a, std::string_view& text,
                            std::optional<int64_t>& reply_to);
    bool check_reply_to(Req& r, RoomId room, PeerPair peers, std::optional<int64_t> reply_to);
    MessageLog& log_for(const QueryJob& job);
    void op_set_topic(Req& r, Args& a);
    void op_mark_read(Req& r, Args& a);
    void op_request_user_list(Req& r, Args& a);
    void op_invite_user(Req& r, Args& a);
    void op_answer_invitation(Req& r, Args& a, bool accept);
    void op_list_invitations(Req& r);
    // Joins the invitee to the room (ACCEPT_INVITATION, or JOIN_ROOM of a private room).
    void accept_invitation(const Req& r, const InvitationRow& inv);
    void write_invitation(JsonWriter& w, const InvitationRow& inv);
    void expire_invitations();
    void op_edit_message(Req& r, Args& a);
    void op_delete_message(Req& r, Args& a);
    void op_react(Req& r, Args& a, bool add);
    void op_get_thread(Req& r, Args& a);
    void op_search(Req& r, Args& a);
    // The message from memory; otherwise nullptr, after either answering (NOT_FOUND,
    // UNAVAILABLE) or asking storage for it, in which case the request runs again, in the
    // same reply slot, once the message is in memory.
    MessageRow* message_or_fetch(Req& r, MessageId id);
    // NOT_FOUND for someone else's direct message, FORBIDDEN for a room one is not in.
    bool check_visible(const Req& r, const MessageRow& m);
    // Connections that see events about `m`, except `except`.
    std::vector<ConnId> message_audience(const MessageRow& m, ConnId except);
    void emit_query(QueryJob job, StoredQuery what);
    void answer_lookup(QueryJob& job, std::vector<MessageRow> rows);
    void answer_thread(const QueryJob& job, std::vector<MessageRow> rows);
    void answer_search(const QueryJob& job, std::vector<MessageRow> rows);
    // Rows read from storage, with any newer state memory holds (edits, deletions and
    // reactions not yet durable, which the read barrier covers).
    void prefer_memory(std::vector<MessageRow>& rows);
    // Sends an event now, or with the newest batch if one is pending (never ahead of state
    // that is not yet durable).
    void emit_event(std::vector<ConnId> to, std::shared_ptr<const std::string> bytes);
    void announce_presence(const User& u, bool online);
    void finish_register(HashJob& job, const HashResult& result);
    void finish_login(HashJob& job, const HashResult& result);
    void start_session(Batch& b, const Req& r, User& u);
    void answer_history(const QueryJob& job, std::vector<MessageRow> disk_rows);
    void write_room(JsonWriter& w, const Room& room);
    void write_message(JsonWriter& w, const MessageRow& m);
    std::vector<ConnId> member_conns(const Room& room, ConnId except);

    Config config_;
    Entropy& entropy_;
    Guard guard_;
    Monitor monitor_;
    Breaker breaker_;
    StorageStats storage_stats_;
    ChatState chat_;
    BatchQueue batches_;
    RequestDecoder decoder_;
    Time now_{};
    std::map<ConnId, Conn> conns_;
    std::vector<ConnId> closed_;  // conns to forget at the end of the input
    std::deque<Output> outputs_;
    std::map<JobId, HashJob> hash_jobs_;
    std::set<std::string> names_reserved_;  // usernames with a REGISTER hash running
    std::map<QueryId, QueryJob> query_jobs_;
    JobId next_job_ = 1;
    QueryId next_query_ = 1;
    std::shared_ptr<const std::string> hello_;
    int64_t expiry_blocked_until_ms_ = 0;  // expiry was refused a write; try again then
    bool clock_started_ = false;
    int64_t next_sweep_ms_ = 0;
    int64_t next_eval_ms_ = 0;
    int64_t next_prune_ms_ = 0;
    ProcessStats process_{};
    int64_t next_housekeeping_ms_ = 0;
    int64_t next_audit_id_ = 1;
    AdminId next_admin_ = 1;
    uint64_t audit_unpersisted_ = 0;  // security rows dropped from a full backlog
    std::deque<Mutation> security_backlog_;
    bool shutting_down_ = false;
    bool stopped_ = false;
};

}  // namespace warren
