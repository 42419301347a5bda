// The simulator's one world: the real core and store under a virtual clock, a network of
// in-order byte streams, a simulated hasher, and every actor a scenario names — populations
// of legitimate clients (sim/actors/population.cc), attackers (sim/actors/attackers.cc),
// faults (sim/faults/faults.cc) and operator actions — all at once. Safety checkers
// (sim/checkers/checkers.cc) watch the run and judge its end. Each actor draws from its own
// named stream (sim/engine/streams.h).
//
// run_world() is a pure function of (spec, seed): the same pair gives the same trace hash.
#pragma once

#include <algorithm>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/server.h"
#include "core/txn/commit_chain.h"
#include "sim/engine/disk.h"
#include "sim/engine/report.h"
#include "sim/engine/spec.h"
#include "sim/engine/streams.h"
#include "sim/events.h"
#include "sim/parsed_lines.h"
#include "sim/rng.h"
#include "store/backup.h"
#include "store/store.h"

namespace warren::sim {

using json = nlohmann::json;

// A string field of a line, without a copy ("" if absent or not a string): read for every
// line every receiver gets.
inline std::string_view text_field(const json& m, const char* key) {
    auto it = m.find(key);
    return it != m.end() && it->is_string() ? std::string_view(it->get_ref<const std::string&>())
                                            : std::string_view();
}

// A simulated TCP peer as the world sees it: bytes in, lines out, a close.
struct Peer {
    std::string ip;
    std::optional<uint32_t> ip4;  // the IPv4 address, host order (parsed once, for matching)
    std::string owner;            // the actor's name
    Stream* net = nullptr;        // "net/<owner>": the delays and cuts of its bytes
    bool open = true;
    uint64_t epoch = 0;  // the server process it is connected to
    LineFramer framer{1 << 22};
    std::function<void(const Line&)> on_line;
    std::function<void(std::string_view)> on_text;  // an IRC peer: its lines, as text
    std::function<void(const std::string& reason)> on_close;
    std::string close_reason;
    bool reset = false;          // reset: nothing more arrives
    bool cut = false;            // a reset is under way: nothing more is written either way
    int64_t vanished_ms = -1;    // the client vanished then, without a FIN (half-open)
    bool server_closed = false;  // the server closed it (a Close came)
    int64_t arrive_ms = 0;       // when the last bytes sent to it arrive: one stream, in order
    int64_t depart_ms = 0;       // when the last bytes it wrote reach the server
    // [network] coalesce: the server's next read of its bytes, which later pieces join.
    std::shared_ptr<std::string> reading;
    int64_t read_at_ms = -1;
    size_t chunk_max = 0;          // 0: the network's
    int64_t read_bytes_per_s = 0;  // a slow reader: it reads at this pace (0: at once)
    uint64_t unread = 0;           // bytes the server wrote that it has not read yet
    // On their way to it, in order; `read_reports`: the server learns it was read (sent())
    // only when it arrives (a slow reader, or a write a partition holds).
    struct Inbound {
        std::shared_ptr<const std::string> bytes;
        bool read_reports = false;
    };
    std::vector<Inbound> inbound;
    size_t inbound_head = 0;  // the next to arrive
};

// How one write between a client and the server fares: every link hook is asked, in order.
struct LinkFate {
    int64_t hold_until_ms = -1;  // the bytes wait until then (a partition that holds)
    bool drop = false;           // the bytes are lost (a partition that drops)
    std::optional<size_t> cut;   // the connection is reset after this many of its bytes
};

struct Legit;
struct Attack;

class World;

// The core's chaos points fire with the scenario's [chaos] probabilities, drawn from the
// world's "chaos" stream; each firing is a probe (chaos.<site>.fired) and part of the trace.
class SimChaos final : public Chaos {
  public:
    SimChaos(World& w, const ScenarioSpec& spec);
    bool fire(ChaosSite site) override;

  private:
    World& w_;
    std::array<double, chaos_site_names.size()> p_;
    std::array<std::string, chaos_site_names.size()> probe_;
    Stream* rng_;
};

class World {
  public:
    World(const ScenarioSpec& spec, uint64_t seed);
    ~World();
    RunReport run();

    // ---- for actors -----------------------------------------------------------------------
    const ScenarioSpec& spec() const { return spec_; }
    // Monotonic time is the virtual clock's; the wall clock is it plus the steps and drift of
    // clock faults (step_wall).
    Time now() const { return Time{clock_.now_us(), wall_base_ms + now_ms() + wall_skew_ms_}; }
    // At least the wall time the core has seen in this process: the core never lets its wall
    // clock go back (core/server.cc), so after a step back it still reads the highest.
    int64_t core_wall_floor_ms() const { return std::max(wall_high_ms_, now().wall_ms); }
    // Retention as the scenario configured it, judged apart from the core's own reading:
    // the age of a room's messages (by name; "": direct messages), nullopt if kept for ever.
    std::optional<int64_t> retention_age_ms(std::string_view room) const;
    // Whether retention may have removed a message of `room` stamped ts_ms: it is older than
    // the room's age at the highest wall time any process has seen.
    bool may_have_expired(std::string_view room, int64_t ts_ms) const;
    std::string_view room_name(RoomId id) const;  // "": a direct message's 0, or unknown
    int64_t now_ms() const { return clock_.now_ms(); }
    void at(int64_t t_ms, std::function<void()> fn) { clock_.at(t_ms, std::move(fn)); }
    Stream& stream(std::string_view name) { return streams_[name]; }
    // Opens a connection from `ip` for `owner`; the server's lines go to on_line (or to the
    // peer's on_text for an IRC peer), its close to on_close.
    // A read pace drawn from a peer's network stream, log-uniform in [min, max] bytes/s.
    static int64_t read_pace(Peer& p, int64_t min_bps, int64_t max_bps);
    ConnId open(const std::string& owner, std::string ip, std::function<void(const Line&)> on_line,
                std::function<void(const std::string&)> on_close, Wire wire = Wire::json);
    void send(ConnId id, std::string bytes);
    // The client closes its connection (a FIN); `deaf`: and reads nothing more of it, as
    // when it dials again at once.
    void hang_up(ConnId id, bool deaf = false);
    Peer& peer(ConnId id) { return peers_[id]; }
    bool is_open(ConnId id) const;
    // Whether bytes the server wrote are still on their way to this peer (a slow reader's
    // backlog, a partition's held bytes).
    bool bytes_on_the_way(ConnId id) const;
    // A step that schedules itself again (an actor's loop) lives here, so the closures that
    // call it hold a plain pointer, not a shared_ptr to themselves (a cycle never freed).
    std::function<void()>* loop();
    // Whether actors should stop: the liveness phase began (every attack and fault ends).
    bool healed() const { return healed_; }
    // The server was shut down (not crashed): nobody should redial.
    bool stopped() const { return shut_down_; }
    void admin(const AdminRequest& q);
    void shutdown();
    // The timeline: events are recorded and wake `after` operator actions and expectations.
    void event(std::string name, std::map<std::string, std::string> labels = {});
    void probe(const std::string& name, uint64_t n = 1) { report_.probes[name] += n; }
    void trace_chaos(ChaosSite site) { trace("chaos", static_cast<uint64_t>(site)); }
    void metric(const std::string& name, double v) { report_.metrics[name] = v; }
    void violation(const std::string& checker, std::string what);
    const std::vector<std::unique_ptr<Legit>>& legit() const { return legit_; }
    // Legitimate clients of a population, in order (empty name: all).
    std::vector<Legit*> population(const std::string& name) const;
    Store& store() { return *store_; }
    Server& core() { return *core_; }
    // What legitimate clients were told, for the checkers. Their texts are unique: every
    // message and every edit a client writes carries its name and a request number.
    enum class Outcome { acked, in_doubt, refused };  // in doubt: a close or crash hid it
    struct Change {
        bool del = false;  // a DELETE_MESSAGE; else an EDIT_MESSAGE to `text`
        std::string text;
        Outcome outcome = Outcome::in_doubt;
    };
    struct Reaction {
        std::string user, emoji;
        Outcome outcome = Outcome::in_doubt;
    };
    struct Tracked {
        std::string author;
        std::string original;
        std::string room;                 // empty: a direct message
        int64_t ts_ms = 0;                // its stamp, as its author was told
        std::vector<Change> changes;      // in request order
        std::vector<Reaction> reactions;  // legitimate clients' REACTs to it
    };
    // Messages acknowledged to their author (by id), and the changes the author asked for.
    std::map<int64_t, Tracked>& tracked() { return tracked_; }
    // Texts of messages answered with an error (never stored) and of messages whose answer a
    // close or crash hid (stored at most once).
    std::set<std::string>& refused_texts() { return refused_texts_; }
    std::set<std::string>& in_doubt_texts() { return in_doubt_texts_; }
    void report_sample(Sample s) {
        if (!auditing_) report_.legit.push_back(std::move(s));
    }
    // Every message the store holds, by id (index 0 unused; a gap is nullopt), read in one
    // pass at the end of the run and kept: the checkers read it instead of one query each.
    const std::vector<std::optional<MessageRow>>& stored_rows();
    // One stored message, as a checker reads it (no disk fault applies).
    std::optional<MessageRow> stored_message(MessageId id);
    // The history audit is done: the run ends (nothing after it is judged).
    void end_run() { clock_.stop(); }
    // Keeps `p` alive as long as the world (state of an actor its closures point to).
    void hold(std::shared_ptr<void> p) { held_.push_back(std::move(p)); }
    bool alive() const { return core_ != nullptr; }
    // The process `epoch` died in a power loss that synchronous = normal let take changes it
    // had acknowledged (its answers still on their way may speak of them): message ids above
    // what survived were lost, and its acknowledgements of other changes are in doubt.
    bool lost_power(uint64_t epoch) const { return power_lost_above_.contains(epoch); }
    bool lost_to_power_loss(uint64_t epoch, int64_t message_id) const {
        auto it = power_lost_above_.find(epoch);
        return it != power_lost_above_.end() && message_id > it->second;
    }
    bool any_lost_to_power_loss() const { return !power_lost_above_.empty(); }
    uint64_t process_epoch() const { return epoch_; }  // which process is running
    size_t open_peers() const;

    // ---- for faults -----------------------------------------------------------------------
    // How a commit fares: a hook per fault, asked in order; the first to decide wins.
    struct CommitFate {
        int64_t latency_ms = 0;
        std::optional<Status> status;  // set: the commit is not applied; this is the outcome
        bool crash = false;            // the process dies while the commit is in flight
        int64_t restart_after_ms = 200;
        // The host loses power while storage carries the commit out: after this many of its
        // writes and syncs (or right after it, if it does fewer), before anyone hears.
        const FaultSpec* power_cut = nullptr;
        int64_t power_cut_ops = 0;
    };
    using CommitHook = std::function<void(CommitFate&)>;
    void on_commit_hook(CommitHook h) { commit_hooks_.push_back(std::move(h)); }
    // The process dies; `power_loss` (a power_loss fault): with the host, whose disk keeps
    // only what was synced (and the fault's share of the rest).
    void crash(int64_t restart_after_ms, const FaultSpec* power_loss = nullptr);
    // A power loss armed for a moment other than a commit: the power goes after `ops` more
    // writes, syncs and truncations of the disk (sim/engine/disk.h cut_power_after).
    enum class Moment { recovery, prune, backup };
    struct PowerCut {
        const FaultSpec* fault = nullptr;  // null: the power stays on
        int64_t ops = 0;
    };
    // Asked, in order, when the store opens again after a process died (recovery), before each
    // retention Prune and as each online backup starts; the first hook to arm a cut wins.
    using PowerCutHook = std::function<void(Moment, PowerCut&)>;
    void on_power_cut_hook(PowerCutHook h) { power_cut_hooks_.push_back(std::move(h)); }
    SimDisk& disk() { return *disk_; }
    // A graceful restart: shutdown, the process exits once the core has stopped, a new one
    // starts from the database restart_after_ms later.
    void restart(int64_t restart_after_ms);
    bool restarting() const { return restart_after_ms_ >= 0; }
    // Called each time a new process has started from the database (not the first).
    using StartHook = std::function<void()>;
    void on_start_hook(StartHook h) { start_hooks_.push_back(std::move(h)); }
    // How long a password hash job takes (the hasher's latency): each hook may set it.
    using HashHook = std::function<void(int64_t& latency_ms)>;
    void on_hash_hook(HashHook h) { hash_hooks_.push_back(std::move(h)); }
    // How long a storage read (a Query) takes: each hook may set it.
    using QueryHook = std::function<void(int64_t& latency_ms)>;
    void on_query_hook(QueryHook h) { query_hooks_.push_back(std::move(h)); }
    // A write of `size` bytes to (to_server) or from the server on a peer's connection.
    using LinkHook = std::function<void(const Peer&, bool to_server, size_t size, LinkFate&)>;
    void on_link_hook(LinkHook h) { link_hooks_.push_back(std::move(h)); }
    // A read, write, sync or truncation of a file on the disk: every hook is asked in order,
    // the first to answer an SQLite error code fails it (0: it proceeds). The checkers' own
    // reads of the store are never failed (stored_message, stored_rows).
    using DiskHook = std::function<int(SimDisk::Op, const std::string& path)>;
    void on_disk_hook(DiskHook h) { disk_hooks_.push_back(std::move(h)); }
    // The host's wall clock moves by `by_ms` (either way); monotonic time does not.
    void step_wall(int64_t by_ms);
    // The connection is reset at `at_ms`: the server and the client each see it go.
    void reset(ConnId id, int64_t at_ms);
    // The client is gone without a FIN: nothing more is read or written on its side, its
    // handlers are detached; the server is not told (its timeouts must notice).
    void vanish(ConnId id);
    // Connections whose client vanished and that the server has not closed, with when.
    std::vector<std::pair<ConnId, int64_t>> vanished_unclosed() const;
    std::vector<ConnId> open_peer_ids() const;  // in id order

    static constexpr int64_t wall_base_ms = 1764000000000;

  private:
    void start_core();
    void drain();
    void carry_out_send(ConnId to, const std::shared_ptr<const std::string>& bytes);
    // Bytes on their way to a client; `read_reports`: the server hears they were read only
    // when they arrive (sent()); `hold_until_ms`: they do not leave before then.
    void to_peer(ConnId id, std::shared_ptr<const std::string> bytes, bool read_reports = false,
                 int64_t hold_until_ms = -1);
    // One piece of them, in order after the others.
    void deliver(ConnId id, std::shared_ptr<const std::string> bytes, bool read_reports,
                 int64_t hold_until_ms);
    void on_commit(const Commit& c);
    void on_prune(const Prune& p);
    PowerCut power_cut(Moment m);
    void on_backup(const Backup& b);
    void backup_step();
    // After a crash or power loss: every backup file on the disk passes integrity_check.
    void judge_backups(const std::string& when);
    // After a store operation: the cut armed at recovery went off in it.
    bool armed_cut_fired();
    // The disk keeps what the power loss `f` leaves of it (metrics disk.sectors_*).
    void lose_power(const FaultSpec& f);
    // The client side of a connection is gone: nothing more reaches its handlers.
    static void detach(Peer& p);
    void observe();
    void trace(std::string_view tag, uint64_t a, std::string_view bytes = {}) {
        trace_.add(tag, a, clock_.now_us(), bytes);
    }
    int64_t net_delay(Peer& p);
    void start_operators();
    void operator_action(const OperatorSpec& op);
    void liveness_check();
    void finish();

    ScenarioSpec spec_;
    uint64_t seed_;
    Streams streams_;
    ParsedLines parsed_{ParsedLines::Keep::top_level_error_and_message};
    SeededEntropy entropy_;
    TraceHash trace_;
    std::unique_ptr<SimDisk> disk_;  // before the store, which is closed first
    std::unique_ptr<Store> store_;
    // The newest message id of the commits applied so far (of the one being applied, while
    // it is), and of those applied when the database file was last synced (a checkpoint:
    // what synchronous = normal keeps across a power loss).
    MessageId applied_through_ = 0, applying_through_ = 0, checkpointed_through_ = 0;
    // Applies a commit to the store (or fails it with `injected`), keeping the marks above.
    Status apply(const Commit& c, const std::optional<Status>& injected = std::nullopt);
    // A new process opens the database (recovering it); false: it cannot (a violation).
    bool open_store();
    // After a power loss of the process `epoch`: what survived against what was acknowledged.
    void judge_power_loss(uint64_t epoch);
    std::map<uint64_t, MessageId> power_lost_above_;  // process epoch -> newest id that survived
    std::unique_ptr<Server> core_;
    uint64_t epoch_ = 0;
    EventQueue clock_;
    int64_t tick_at_ = INT64_MAX;
    int64_t spun_at_us_ = -1;
    int64_t messages_sent_ = 0;  // MESSAGE events sent (ScenarioSpec::lose_message_events_every) //
                                 // a tick after which the next deadline had not moved past now
    std::unordered_map<ConnId, Peer> peers_;  // looked up for every byte delivered
    std::vector<std::unique_ptr<std::function<void()>>> loops_;
    ConnId next_conn_ = 1;
    std::vector<std::unique_ptr<Legit>> legit_;
    std::vector<std::unique_ptr<Attack>> attacks_;
    std::vector<CommitHook> commit_hooks_;
    std::vector<PowerCutHook> power_cut_hooks_;
    // A cut armed when the store opened again or a backup started (Moment::recovery, backup)
    // that has not gone off yet: it goes off in whatever is written next (the new process's
    // first commits, the backup's pages), and the process dies with it.
    const FaultSpec* armed_cut_ = nullptr;
    Moment armed_moment_ = Moment::recovery;
    // The online backup under way (one at a time, as in warrend), and the files of those done.
    struct BackupRun {
        AdminId id = 0;
        std::string path;
        std::unique_ptr<OnlineBackup> copy;
        const FaultSpec* cut = nullptr;  // a power cut armed as it started
    };
    std::unique_ptr<BackupRun> backup_;
    std::set<std::string> backup_files_;
    std::vector<LinkHook> link_hooks_;
    std::vector<DiskHook> disk_hooks_;
    bool checking_ = false;  // a checker reads the store: no disk fault applies
    std::vector<HashHook> hash_hooks_;
    std::vector<QueryHook> query_hooks_;
    std::vector<StartHook> start_hooks_;
    LinkFate link_fate(const Peer& p, bool to_server, size_t size);
    std::vector<Commit> inflight_;  // sent to storage, oldest first
    CommitChain chain_;             // what storage does with a commit whose predecessor failed
    int64_t commit_lands_ms_ = 0;   // when the newest commit in flight lands (a Prune waits)
    std::optional<Prune> pruning_;  // the Prune in flight, if any
    std::map<int64_t, Tracked> tracked_;
    std::set<std::string> refused_texts_;
    std::set<std::string> in_doubt_texts_;
    std::set<std::pair<std::string, std::string>> active_alerts_;
    std::multimap<std::string, std::function<void()>> waiting_;  // event name -> action
    bool healed_ = false;
    bool shut_down_ = false;
    int64_t wall_skew_ms_ = 0;       // the clock faults' steps and drift so far
    int64_t wall_high_ms_ = 0;       // the wall time before this process's latest step back
    int64_t wall_max_ms_ = 0;        // the highest wall time of the run before its latest step back
    int64_t overdue_wall_ms_ = 0;    // the core's wall time a retention round before the end
    int64_t restart_after_ms_ = -1;  // a graceful restart is under way
    void finish_restart();
    // The process is gone (crashed or exited): its volatile state goes with it.
    void end_process();
    // A new process starts from the database `after_ms` from now.
    void start_process_after(int64_t after_ms);
    bool auditing_ = false;  // past the duration: only the history audit runs, unrecorded
    std::vector<std::shared_ptr<void>> held_;
    std::optional<std::vector<std::optional<MessageRow>>> stored_rows_;
    // Peaks seen after every drain, reported as metrics at the end.
    uint64_t peak_unread_ = 0;
    size_t peak_connections_ = 0, peak_tracked_ips_ = 0;
    std::shared_ptr<const std::string> last_sent_;
    // Writes that were one whole line, by address (held, so the address is not reused).
    std::unordered_map<const std::string*,
                       std::pair<std::shared_ptr<const std::string>, std::shared_ptr<const Line>>>
        parsed_writes_;
    RunReport report_;
    SimChaos chaos_{*this, spec_};  // after everything it uses
};

RunReport run_world(const ScenarioSpec& spec, uint64_t seed);

}  // namespace warren::sim
