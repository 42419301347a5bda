#include "sim/engine/world.h"

#include <sqlite3.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>

#include "core/validate/rules.h"
#include "sim/actors/attackers.h"
#include "sim/actors/population.h"
#include "sim/checkers/checkers.h"
#include "sim/checkers/history.h"
#include "sim/engine/disk.h"
#include "sim/faults/faults.h"

namespace warren::sim {

namespace {
const std::string db_file = "warren.db";  // on the world's disk
}

World::World(const ScenarioSpec& spec, uint64_t seed)
    : spec_(spec),
      seed_(seed),
      streams_(seed),
      entropy_(Streams::derive(seed, "entropy")),
      disk_(std::make_unique<SimDisk>(Streams::derive(seed, "disk"), spec.disk.sector_bytes)) {
    disk_->set_capacity(static_cast<uint64_t>(spec_.disk.capacity_bytes));
    // In WAL mode the database file is written, and synced, only by a checkpoint, which
    // SQLite runs after a commit: everything applied by then is on the platter.
    disk_->set_sync_listener([this](const std::string& path) {
        if (path == db_file) checkpointed_through_ = applying_through_;
    });
    disk_->set_fault_hook([this](SimDisk::Op op, const std::string& path) {
        // Past the duration only the history audit runs: the disk is well again.
        if (checking_ || auditing_) return 0;
        for (auto& hook : disk_hooks_)
            if (int rc = hook(op, path)) return rc;
        return 0;
    });
    WARREN_CHECK(open_store());
    start_core();
}

bool World::open_store() {
    auto st = Store::open(db_file, spec_.synchronous, Access::read_write, disk_->vfs_name());
    if (!st.is_ok()) {
        if (disk_->halted()) return false;  // the power went while it opened (crash() goes on)
        violation("storage.opens", "the database does not open: " + st.status().message());
        end_run();
        return false;
    }
    store_ = std::move(st.value());
    return true;
}

Status World::apply(const Commit& c, const std::optional<Status>& injected) {
    if (injected) return *injected;
    MessageId newest = applied_through_;
    for (const Mutation& m : *c.mutations)
        if (const auto* row = std::get_if<MessageRow>(&m)) newest = std::max(newest, row->id);
    applying_through_ = newest;
    Status st = store_->apply(*c.mutations);
    if (st.is_ok()) applied_through_ = newest;
    applying_through_ = applied_through_;
    return st;
}

// The store closes first, while everything its disk's hooks reach is alive; the end of a run
// is no time for faults.
World::~World() {
    checking_ = true;
    backup_.reset();
    store_.reset();
}

SimChaos::SimChaos(World& w, const ScenarioSpec& spec)
    : w_(w), p_(spec.chaos), rng_(&w.stream("chaos")) {
    for (size_t i = 0; i < probe_.size(); ++i)
        probe_[i] = "chaos." + std::string(chaos_site_names[i]) + ".fired";
}

bool SimChaos::fire(ChaosSite site) {
    auto i = static_cast<size_t>(site);
    // Like every fault, chaos ends when the liveness phase heals the world.
    if (p_[i] <= 0 || w_.healed() || !rng_->chance(p_[i])) return false;
    w_.probe(probe_[i]);
    w_.trace_chaos(site);
    return true;
}

void World::start_core() {
    auto snap = store_->load(spec_.config.room_cache_messages_max, now().wall_ms);
    WARREN_CHECK(snap.is_ok());
    wall_high_ms_ = 0;  // a new process: it has seen no wall time yet
    core_ = std::make_unique<Server>(spec_.config, entropy_, snap.value());
}

int64_t World::read_pace(Peer& p, int64_t min_bps, int64_t max_bps) {
    double lo = std::log(static_cast<double>(min_bps));
    double hi = std::log(static_cast<double>(max_bps));
    return std::max<int64_t>(1, static_cast<int64_t>(std::exp(lo + (hi - lo) * p.net->unit())));
}

ConnId World::open(const std::string& owner, std::string ip,
                   std::function<void(const Line&)> on_line,
                   std::function<void(const std::string&)> on_close, Wire wire) {
    ConnId id = next_conn_++;
    Peer& p = peers_[id];
    p.ip = ip;
    p.ip4 = ipv4(ip);
    p.owner = owner;
    p.net = &stream("net/" + owner);
    p.epoch = epoch_;
    p.on_line = std::move(on_line);
    p.on_close = std::move(on_close);
    // Legitimate clients read at their own pace, when the file says so.
    if (const NetworkSpec& n = spec_.network; n.readers_max_bps > 0 && owner.starts_with("client/"))
        p.read_bytes_per_s = read_pace(p, n.readers_min_bps, n.readers_max_bps);
    if (!core_) {
        // The server is down: the dial is refused.
        p.open = false;
        at(now_ms() + 1, [this, id] {
            Peer& q = peers_[id];
            if (q.on_close) q.on_close("REFUSED");
        });
        return id;
    }
    trace("connect", id, ip);
    core_->connect(id, ip, now(), wire);
    drain();
    return id;
}

bool World::is_open(ConnId id) const {
    auto it = peers_.find(id);
    return it != peers_.end() && it->second.open;
}

bool World::bytes_on_the_way(ConnId id) const {
    auto it = peers_.find(id);
    return it != peers_.end() && it->second.inbound_head < it->second.inbound.size();
}

const std::vector<std::optional<MessageRow>>& World::stored_rows() {
    if (!stored_rows_) {
        stored_rows_.emplace(1);
        if (core_)
            for (MessageId id = 1; id <= core_->state().committed_through(); ++id)
                stored_rows_->push_back(stored_message(id));
    }
    return *stored_rows_;
}

std::optional<MessageRow> World::stored_message(MessageId id) {
    checking_ = true;
    std::optional<MessageRow> row = store_->message(id);
    checking_ = false;
    return row;
}

size_t World::open_peers() const {
    size_t n = 0;
    for (const auto& [id, p] : peers_) n += p.open && p.epoch == epoch_;
    return n;
}

std::function<void()>* World::loop() {
    return loops_.emplace_back(std::make_unique<std::function<void()>>()).get();
}

int64_t World::net_delay(Peer& p) {
    const NetworkSpec& n = spec_.network;
    return p.net->delay(n.delay_min_ms, n.delay_mean_ms, n.delay_max_ms);
}

LinkFate World::link_fate(const Peer& p, bool to_server, size_t size) {
    LinkFate fate;
    for (auto& hook : link_hooks_) hook(p, to_server, size, fate);
    return fate;
}

void World::step_wall(int64_t by_ms) {
    if (by_ms < 0) {
        wall_high_ms_ = std::max(wall_high_ms_, now().wall_ms);
        wall_max_ms_ = std::max(wall_max_ms_, now().wall_ms);
    }
    wall_skew_ms_ += by_ms;
    trace("wall", static_cast<uint64_t>(by_ms));
}

void World::reset(ConnId id, int64_t at_ms) {
    at(at_ms, [this, id] {
        auto it = peers_.find(id);
        if (it == peers_.end() || !it->second.open) return;
        Peer& p = it->second;
        p.open = false;
        p.reset = true;  // what is still on its way to the client is lost
        if (core_ && p.epoch == epoch_) {
            trace("reset", id);
            core_->disconnect(id, now());
            drain();
        }
        at(now_ms() + 1, [this, id] {
            Peer& q = peers_[id];
            if (q.on_close) q.on_close("RESET");
        });
    });
}

void World::vanish(ConnId id) {
    auto it = peers_.find(id);
    if (it == peers_.end() || !it->second.open) return;
    Peer& p = it->second;
    p.open = false;
    p.cut = true;
    detach(p);
    p.vanished_ms = now_ms();
    trace("vanish", id);
}

void World::detach(Peer& p) {
    p.reset = true;  // what is still on its way to the client is lost
    p.on_line = nullptr;
    p.on_text = nullptr;
    p.on_close = nullptr;
}

std::vector<std::pair<ConnId, int64_t>> World::vanished_unclosed() const {
    std::vector<std::pair<ConnId, int64_t>> out;
    for (const auto& [id, p] : peers_)
        if (p.vanished_ms >= 0 && !p.server_closed && p.epoch == epoch_)
            out.emplace_back(id, p.vanished_ms);
    std::sort(out.begin(), out.end());
    return out;
}

std::vector<ConnId> World::open_peer_ids() const {
    std::vector<ConnId> ids;
    for (const auto& [id, p] : peers_)
        if (p.open) ids.push_back(id);
    std::sort(ids.begin(), ids.end());
    return ids;
}

// One stream: what a peer writes reaches the server in order, each write (or piece of it)
// after the network's delay.
void World::send(ConnId id, std::string bytes) {
    auto found = peers_.find(id);
    if (found == peers_.end() || !found->second.open || found->second.cut) return;
    Peer& peer = found->second;
    size_t chunk_max =
        peer.chunk_max ? peer.chunk_max : static_cast<size_t>(spec_.network.chunk_max);
    for (size_t pos = 0; pos < bytes.size();) {
        size_t n = bytes.size() - pos;
        if (chunk_max > 0)
            n = std::min(
                n, static_cast<size_t>(peer.net->between(1, static_cast<int64_t>(chunk_max))));
        LinkFate fate = link_fate(peer, true, n);
        if (fate.drop) {
            pos += n;
            continue;
        }
        if (fate.cut) n = *fate.cut;
        int64_t from = std::max(now_ms(), fate.hold_until_ms);
        peer.depart_ms = std::max(peer.depart_ms, from + net_delay(peer));
        int64_t read_ms = peer.depart_ms;  // when the server reads these bytes
        int64_t within = spec_.network.coalesce_ms;
        if (n > 0 && within > 0) {
            // The server reads `within` after bytes arrive, and finds whatever else has
            // arrived by then: several writes (or pieces) in one read.
            if (peer.reading && peer.depart_ms <= peer.read_at_ms) {
                peer.reading->append(bytes, pos, n);
                probe("network.coalesced");
            } else {
                peer.reading = std::make_shared<std::string>(bytes.substr(pos, n));
                peer.read_at_ms = peer.depart_ms + within;
                at(peer.read_at_ms, [this, id, piece = peer.reading] {
                    auto it = peers_.find(id);
                    if (it == peers_.end()) return;
                    if (it->second.reading == piece) it->second.reading.reset();
                    if (!it->second.open || it->second.epoch != epoch_ || !core_) return;
                    trace("receive", id, *piece);
                    core_->receive(id, *piece, now());
                    drain();
                });
            }
            read_ms = peer.read_at_ms;
        } else if (n > 0) {
            at(peer.depart_ms, [this, id, piece = bytes.substr(pos, n)] {
                auto it = peers_.find(id);
                if (it == peers_.end() || !it->second.open || it->second.epoch != epoch_ || !core_)
                    return;
                trace("receive", id, piece);
                core_->receive(id, piece, now());
                drain();
            });
        }
        if (fate.cut) {
            peer.cut = true;
            reset(id, read_ms + 1);  // after the bytes that got through
            return;
        }
        pos += n;
    }
}

void World::hang_up(ConnId id, bool deaf) {
    auto it = peers_.find(id);
    if (it == peers_.end() || !it->second.open) return;
    it->second.open = false;
    if (deaf) detach(it->second);
    if (!core_ || it->second.epoch != epoch_) return;
    trace("hang_up", id);
    core_->disconnect(id, now());
    drain();
}

void World::on_commit(const Commit& c) {
    trace("commit", c.batch, std::to_string(c.mutations->size()));
    CommitFate fate;
    fate.latency_ms = stream("store").between(1, 8);
    for (auto& hook : commit_hooks_) hook(fate);
    if (c.after != 0) probe("commit.pipelined");
    inflight_.push_back(c);
    // Storage applies commits one after another: this one starts when the one before is done.
    int64_t lands = std::max(now_ms(), commit_lands_ms_) + fate.latency_ms;
    commit_lands_ms_ = lands;
    if (fate.crash) {
        at(now_ms() + stream("store").between(0, fate.latency_ms),
           [this, e = epoch_, restart = fate.restart_after_ms] {
               if (e == epoch_ && core_) crash(restart);
           });
    }
    at(lands, [this, c, e = epoch_, status = fate.status, cut = fate.power_cut,
               cut_ops = fate.power_cut_ops] {
        if (e != epoch_ || !core_) return;
        std::erase_if(inflight_, [&](const Commit& x) { return x.batch == c.batch; });
        bool after_landed = c.after != 0 && chain_.admits(c);
        if (cut) disk_->cut_power_after(cut_ops);
        Status st = chain_.carry_out(c, [&] { return apply(c, status); });
        if (cut) {
            // The power went during the commit (it failed on the dead disk), or goes now,
            // right after it: either way before its answer left.
            probe(disk_->halted() ? "power_loss.during_a_commit" : "power_loss.after_a_commit");
            disk_->cut_power_after(-1);
            crash(cut->restart_after_ms, cut);
            return;
        }
        if (armed_cut_fired()) return;
        // The pipelined paths: a commit not tried because the one before it failed; one that
        // failed though the one before it, in flight with it, landed.
        if (st.code() == Status::Code::aborted) probe("commit.aborted_behind_a_failure");
        if (after_landed && !st.is_ok()) probe("commit.failed_after_the_one_before_landed");
        trace("committed", c.batch, st.message());
        core_->committed(c.batch, st, now());
        drain();
    });
}

// Retention deletes in a transaction of its own, after the commit sent before it.
void World::on_prune(const Prune& p) {
    trace("prune", p.id, std::to_string(p.scopes.size()));
    pruning_ = p;
    int64_t lands = std::max(now_ms() + stream("store").between(1, 8), commit_lands_ms_ + 1);
    at(lands, [this, e = epoch_] {
        if (e != epoch_ || !core_ || !pruning_) return;
        Prune done = std::move(*pruning_);
        pruning_.reset();
        PowerCut cut = power_cut(Moment::prune);
        if (cut.fault) disk_->cut_power_after(cut.ops);
        PruneResult r = store_->prune(done.scopes, done.limit);
        if (cut.fault) {
            // In the middle of the Prune's deletes and syncs, or right after them: before
            // the core heard.
            probe(disk_->halted() ? "power_loss.during_a_prune" : "power_loss.after_a_prune");
            disk_->cut_power_after(-1);
            crash(cut.fault->restart_after_ms, cut.fault);
            return;
        }
        if (armed_cut_fired()) return;
        uint64_t n = 0;
        for (uint32_t d : r.deleted) n += d;
        if (!auditing_) report_.metrics["retention.removed"] += static_cast<double>(n);
        core_->pruned(done.id, r, now());
        drain();
    });
}

// An online backup, as warrend's backup thread takes it: the same code (store/backup.h), on
// the world's disk, a step of pages every few milliseconds while commits go on. A power_loss
// fault of `during = "backup"` arms a cut as it starts.
void World::on_backup(const Backup& b) {
    trace("backup", b.id, b.name);
    std::string path = "backups/" + b.name;
    auto answer = [this, id = b.id, path](BackupResult r) {
        r.path = path;
        core_->backed_up(id, r, now());
        drain();
    };
    if (backup_) return answer({.error = "a backup is under way"});
    PowerCut cut = power_cut(Moment::backup);
    if (cut.fault) {
        disk_->cut_power_after(cut.ops);
        armed_cut_ = cut.fault;
        armed_moment_ = Moment::backup;
    }
    BackupFiles files;
    files.vfs = disk_->vfs_name();
    files.exists = [this](const std::string& f) { return disk_->exists(f); };
    files.remove = [this](const std::string& f) { (void)disk_->remove(f); };
    files.sync = [this](const std::string& f) {
        int rc = disk_->sync_file(f);
        return rc == 0 ? Status::ok() : Status::failed("sync " + f + ": " + sqlite3_errstr(rc));
    };
    files.rename = [this](const std::string& from, const std::string& to) {
        int rc = disk_->rename(from, to);
        return rc == 0 ? Status::ok()
                       : Status::failed("rename " + from + ": " + sqlite3_errstr(rc));
    };
    files.size = [this](const std::string& f) { return disk_->size(f); };
    auto started = OnlineBackup::start(db_file, path, std::move(files));
    if (armed_cut_fired()) return;
    if (!started.is_ok()) return answer({.error = started.status().message()});
    probe("backup.started");
    backup_ =
        std::make_unique<BackupRun>(BackupRun{b.id, path, std::move(started.value()), cut.fault});
    backup_step();
}

void World::backup_step() {
    at(now_ms() + stream("store").between(2, 8), [this, e = epoch_] {
        if (e != epoch_ || !core_ || !backup_) return;
        Result<bool> done = backup_->copy->step(8);
        if (armed_cut_fired()) return;
        if (done.is_ok() && !done.value()) return backup_step();
        BackupResult r;
        r.path = backup_->path;
        AdminId id = backup_->id;
        if (!done.is_ok()) {
            r.error = done.status().message();
        } else if (Result<BackupStats> st = backup_->copy->finish(); !st.is_ok()) {
            if (armed_cut_fired()) return;
            r.error = st.status().message();
        } else {
            if (armed_cut_fired()) return;
            r.ok = true;
            r.bytes = st.value().bytes;
            backup_files_.insert(r.path);
            probe("backup.done");
            event("backup.done");
            checking_ = true;
            std::string ic = disk_->integrity_check(r.path);
            checking_ = false;
            if (ic != "ok") violation("storage.backup_intact", r.path + ": " + ic);
        }
        // A cut armed at its start that did not go off in it goes now, right after it,
        // before the core hears.
        if (const FaultSpec* cut = backup_->cut; cut && armed_cut_ == cut) {
            probe("power_loss.after_a_backup");
            disk_->cut_power_after(-1);
            armed_cut_ = nullptr;
            backup_.reset();  // over: its file renamed (or, failed, its partial removed)
            crash(cut->restart_after_ms, cut);
            return;
        }
        backup_.reset();
        if (!r.ok) probe("backup.failed");
        core_->backed_up(id, r, now());
        drain();
    });
}

void World::judge_backups(const std::string& when) {
    checking_ = true;
    for (const std::string& f : backup_files_) {
        if (!disk_->exists(f)) continue;
        std::string ic = disk_->integrity_check(f);
        if (ic != "ok") violation("storage.backup_intact", f + ": " + ic + when);
    }
    checking_ = false;
}

World::PowerCut World::power_cut(Moment m) {
    PowerCut cut;
    for (auto& hook : power_cut_hooks_) {
        hook(m, cut);
        if (cut.fault) break;
    }
    return cut;
}

bool World::armed_cut_fired() {
    if (!armed_cut_ || !disk_->halted()) return false;
    probe(armed_moment_ == Moment::backup ? "power_loss.during_a_backup"
                                          : "power_loss.after_recovery");
    const FaultSpec* f = armed_cut_;
    crash(f->restart_after_ms, f);
    return true;
}

void World::lose_power(const FaultSpec& f) {
    SimDisk::PowerLossReport r = disk_->power_loss(stream("disk/power_loss"), {f.keep, f.torn});
    report_.metrics["disk.sectors_kept"] += static_cast<double>(r.kept);
    report_.metrics["disk.sectors_torn"] += static_cast<double>(r.torn);
    report_.metrics["disk.sectors_lost"] += static_cast<double>(r.lost);
}

std::optional<int64_t> World::retention_age_ms(std::string_view room) const {
    const Config& c = spec_.config;
    if (!room.empty())
        for (const auto& [name, ms] : c.room_retention_ms)
            if (name_key(name) == name_key(room)) return ms > 0 ? std::optional(ms) : std::nullopt;
    return c.retention_ms > 0 ? std::optional(c.retention_ms) : std::nullopt;
}

bool World::may_have_expired(std::string_view room, int64_t ts_ms) const {
    std::optional<int64_t> age = retention_age_ms(room);
    return age && ts_ms < std::max(wall_max_ms_, now().wall_ms) - *age;
}

std::string_view World::room_name(RoomId id) const {
    const Room* r = core_ && id != 0 ? core_->state().room(id) : nullptr;
    return r ? std::string_view(r->name) : std::string_view();
}

// The server process dies: memory, connections and in-flight work are gone. A commit in
// flight may or may not have reached the disk; nobody was told either way. With a power
// loss the host goes too: the disk keeps what was synced (and the fault's share of the rest).
void World::crash(int64_t restart_after_ms, const FaultSpec* power_loss) {
    // A cut armed at the last recovery or backup went off in what the process was doing.
    if (!power_loss && armed_cut_ && disk_->halted()) power_loss = armed_cut_;
    armed_cut_ = nullptr;
    trace(power_loss ? "power_loss" : "crash", epoch_);
    event("process.crash");
    if (power_loss) event("host.power_loss");
    restart_after_ms_ = -1;  // a graceful restart under way ends here too
    // Storage applies commits in order: those in flight that land are the oldest ones.
    if (inflight_.size() > 1) probe("crash.with_pipelined_commits");
    // (Nothing more lands once the power is gone.)
    for (const Commit& c : inflight_) {
        if (disk_->halted() || !stream("fault/crash/landed").chance(0.5)) break;
        (void)chain_.carry_out(c, [&] { return apply(c); });
    }
    inflight_.clear();
    if (pruning_ && !disk_->halted() && stream("fault/crash/landed").chance(0.5))
        (void)store_->prune(pruning_->scopes, pruning_->limit);
    pruning_.reset();
    uint64_t dead = epoch_;
    end_process();
    // The process's connection to the database dies with it, unclosed; the next process
    // opens the file again and recovers it from what the disk kept.
    disk_->halt();
    disk_->cut_power_after(-1);
    store_.reset();
    // The backup dies with the process: its .partial file stays (the next one removes it).
    std::string interrupted = backup_ ? backup_->path : "";
    backup_.reset();
    if (power_loss) lose_power(*power_loss);
    disk_->boot();
    // The store opens again, recovering the database from what the disk kept; a power_loss
    // fault of `during = "recovery"` may cut the power in the middle of that (again and
    // again, up to its max), or arm the cut for the new process's first writes.
    for (;;) {
        PowerCut cut = power_cut(Moment::recovery);
        if (cut.fault) disk_->cut_power_after(cut.ops);
        bool opened = open_store();
        if (!disk_->halted()) {
            if (!opened) return;
            armed_cut_ = cut.fault;
            armed_moment_ = Moment::recovery;
            break;
        }
        probe("power_loss.during_recovery");
        disk_->cut_power_after(-1);
        store_.reset();
        lose_power(*cut.fault);
        disk_->boot();
        if (!power_loss) power_loss = cut.fault;
    }
    if (power_loss) judge_power_loss(dead);
    if (!interrupted.empty()) {
        probe("backup.interrupted");
        event("backup.interrupted");
        backup_files_.insert(interrupted);
    }
    judge_backups(power_loss ? " (after the power loss at " + std::to_string(now_ms()) + " ms)"
                             : " (after the crash at " + std::to_string(now_ms()) + " ms)");
    // In id order: the resets are scheduled in it (the table itself is unordered).
    for (ConnId id : open_peer_ids()) {
        Peer& p = peers_[id];
        p.open = false;
        // The client sees a reset once what was already on its way has arrived.
        at(std::max(p.arrive_ms, now_ms()) + 1, [this, id = id] {
            Peer& q = peers_[id];
            if (q.on_close) q.on_close("CRASH");
        });
    }
    start_process_after(restart_after_ms);
}

// After a power loss, against what clients were told: the database opens and passes
// integrity_check; with synchronous = full every acknowledged message survived; with normal
// every one applied before the last checkpoint did, and of those after it, what survived is
// a prefix (commits land in order). What normal lost within its window is forgotten here, as
// its clients must: their later messages reuse the ids.
void World::judge_power_loss(uint64_t epoch) {
    probe("power_loss.judged");
    std::string when = " (the power loss at " + std::to_string(now_ms()) + " ms)";
    checking_ = true;
    std::string ic = disk_->integrity_check(db_file);
    checking_ = false;
    if (ic != "ok") violation("storage.integrity_after_power_loss", ic + when);
    bool full = spec_.synchronous == Synchronous::full;
    const std::string checker =
        full ? "durability.power_loss_full" : "durability.power_loss_normal";
    MessageId must = full ? applied_through_ : std::min(checkpointed_through_, applied_through_);
    MessageId survived = must;
    for (MessageId id = applied_through_; id > must; --id)
        if (stored_message(id)) {
            survived = id;
            break;
        }
    uint64_t lost = 0;
    for (auto it = tracked_.begin(); it != tracked_.end();) {
        auto& [id, t] = *it;
        if (id > survived) {
            lost += !t.author.empty();
            it = tracked_.erase(it);
            continue;
        }
        if (!t.author.empty() && !stored_message(id) && !may_have_expired(t.room, t.ts_ms))
            violation(checker, t.author + "'s message " + std::to_string(id) + " (\"" + t.original +
                                   "\") was acknowledged" +
                                   (id <= must ? (full ? "" : " before the last checkpoint")
                                               : ", a later one survived,") +
                                   " and is lost" + when);
        if (!full) {
            // Its acknowledged edits, deletions and reactions may be among what was lost.
            for (Change& c : t.changes)
                if (c.outcome == Outcome::acked) c.outcome = Outcome::in_doubt;
            for (Reaction& r : t.reactions)
                if (r.outcome == Outcome::acked) r.outcome = Outcome::in_doubt;
        }
        ++it;
    }
    if (!full) power_lost_above_[epoch] = survived;
    if (lost > 0) {
        probe("power_loss.lost_acknowledged");
        report_.metrics["durability.acked_lost_to_power_loss"] += static_cast<double>(lost);
    }
    if (survived < applied_through_) {
        for (const auto& c : legit_) {
            for (Legit::RoomView& v : c->asked) {
                v.last = std::min(v.last, survived);
                std::erase_if(v.recent, [&](int64_t id) { return id > survived; });
                std::erase_if(v.owed, [&](int64_t id) { return id > survived; });
            }
            std::erase_if(c->own, [&](int64_t id) { return id > survived; });
        }
        applied_through_ = applying_through_ = survived;
        checkpointed_through_ = std::min(checkpointed_through_, survived);
    }
    stored_rows_.reset();
}

void World::end_process() {
    metric("server.breaker_opened", report_.metrics["server.breaker_opened"] +
                                        static_cast<double>(core_->breaker_opened_count()));
    core_.reset();
    ++epoch_;
    tick_at_ = INT64_MAX;
    active_alerts_.clear();
}

void World::start_process_after(int64_t after_ms) {
    at(now_ms() + after_ms, [this] {
        restart_after_ms_ = -1;
        trace("restart", epoch_);
        start_core();
        event("process.restart");
        drain();
        for (auto& h : start_hooks_) h();
    });
}

// One receiver of a Send: what the link does with it, and whether it is read at once.
void World::carry_out_send(ConnId to, const std::shared_ptr<const std::string>& bytes) {
    // The core sends one event's bytes to every receiver: hashed once, then named as
    // the same (the held pointer keeps its address from being reused meanwhile).
    if (bytes == last_sent_) {
        trace("send=", to);
    } else {
        trace("send", to, *bytes);
        last_sent_ = bytes;
    }
    auto it = peers_.find(to);
    if (it == peers_.end() || !it->second.open) return;
    LinkFate fate = link_hooks_.empty() || it->second.cut
                        ? LinkFate{}
                        : link_fate(it->second, false, bytes->size());
    if (spec_.lose_message_events_every > 0 && bytes->starts_with(R"({"ev":"MESSAGE",)") &&
        ++messages_sent_ % spec_.lose_message_events_every == 0) {
        core_->sent(to, bytes->size(), now());
        return;
    }
    // Read once it arrives: by a slow reader, or after a partition; never if lost.
    bool later = it->second.read_bytes_per_s > 0 || fate.hold_until_ms > now_ms() || fate.drop;
    if (!later) {
        core_->sent(to, bytes->size(), now());  // a prompt reader
    } else {
        it->second.unread += bytes->size();
        peak_unread_ = std::max(peak_unread_, it->second.unread);
    }
    if (fate.drop || it->second.cut) return;
    if (fate.cut) {
        it->second.cut = true;
        to_peer(to, std::make_shared<const std::string>(bytes->substr(0, *fate.cut)), later,
                fate.hold_until_ms);
        reset(to, it->second.arrive_ms + 1);
        return;
    }
    to_peer(to, bytes, later, fate.hold_until_ms);
}

void World::drain() {
    if (!core_) return;
    while (auto out = core_->poll()) {
        if (auto* s = std::get_if<Send>(&*out)) {
            for (ConnId to : s->to) carry_out_send(to, s->bytes);
        } else if (auto* c = std::get_if<Close>(&*out)) {
            trace("close", c->conn, c->reason);
            auto it = peers_.find(c->conn);
            if (it == peers_.end()) continue;
            it->second.open = false;
            it->second.server_closed = true;
            if (c->last && !it->second.cut) to_peer(c->conn, c->last);
            // After the bytes already on their way.
            at(std::max(it->second.arrive_ms, now_ms()) + 1, [this, id = c->conn] {
                Peer& p = peers_[id];
                if (p.on_close) p.on_close(p.close_reason);
            });
        } else if (auto* cm = std::get_if<Commit>(&*out)) {
            on_commit(*cm);
        } else if (auto* q = std::get_if<Query>(&*out)) {
            trace("query", q->query);
            int64_t latency = stream("store").between(1, 8);
            for (auto& hook : query_hooks_) hook(latency);
            at(now_ms() + latency, [this, e = epoch_, id = q->query, what = q->what] {
                if (e != epoch_ || !core_) return;
                // A search on the writing connection indexes first: it writes.
                QueryRows rows = store_->run(what);
                if (armed_cut_fired()) return;
                core_->answered(id, std::move(rows), now());
                drain();
            });
        } else if (auto* h = std::get_if<Hash>(&*out)) {
            trace("hash", h->job);
            int64_t latency = stream("hasher").between(20, 40);
            for (auto& hook : hash_hooks_) hook(latency);
            at(now_ms() + latency,
               [this, e = epoch_, job = h->job, mode = h->mode, pw = h->password, phc = h->phc] {
                   if (e != epoch_ || !core_) return;
                   HashResult r;
                   r.ok = mode == HashMode::create || (!phc.empty() && phc == "sim$" + pw);
                   if (mode == HashMode::create) r.phc = "sim$" + pw;
                   core_->hashed(job, r, now());
                   drain();
               });
        } else if (auto* b = std::get_if<Backup>(&*out)) {
            on_backup(*b);
        } else if (auto* p = std::get_if<Prune>(&*out)) {
            on_prune(*p);
        } else if (std::holds_alternative<Audit>(*out)) {
            report_.metrics["server.audit_records"] += 1;
        }
    }
    if (restarting() && core_->stopped()) return finish_restart();
    observe();
    if (auto d = core_->next_deadline(); d && *d < tick_at_) {
        tick_at_ = std::max(*d, clock_.now_us());
        // Reported below; a millisecond on, so the run goes on instead of spinning with it.
        if (tick_at_ <= spun_at_us_) tick_at_ = clock_.now_us() + 1000;
        clock_.at_us(tick_at_, [this, e = epoch_] {
            if (e != epoch_ || !core_) return;
            tick_at_ = INT64_MAX;
            core_->tick(now());
            if (auto next = core_->next_deadline(); next && *next <= clock_.now_us()) {
                spun_at_us_ = clock_.now_us();
                violation("core.deadline_advances",
                          "after a tick at " + std::to_string(spun_at_us_) +
                              " us the core's next deadline is " + std::to_string(*next));
            }
            drain();
        });
    }
}

void World::to_peer(ConnId id, std::shared_ptr<const std::string> bytes, bool read_reports,
                    int64_t hold_until_ms) {
    // [network] server_chunks: the write reaches the client in pieces, each read (and, for a
    // reader the server hears from, reported sent) on its own: the server's partial writes.
    if (int64_t max = spec_.network.server_chunk_max; max > 0 && bytes->size() > 1) {
        Peer& peer = peers_[id];
        size_t pos = 0;
        while (pos < bytes->size()) {
            auto n = std::min(bytes->size() - pos, static_cast<size_t>(peer.net->between(1, max)));
            if (pos == 0 && n == bytes->size()) break;  // one piece: the write as it is
            deliver(id, std::make_shared<const std::string>(bytes->substr(pos, n)), read_reports,
                    hold_until_ms);
            pos += n;
        }
        if (pos > 0) return;
    }
    deliver(id, std::move(bytes), read_reports, hold_until_ms);
}

void World::deliver(ConnId id, std::shared_ptr<const std::string> bytes, bool read_reports,
                    int64_t hold_until_ms) {
    Peer& peer = peers_[id];
    peer.arrive_ms = std::max(peer.arrive_ms, std::max(now_ms(), hold_until_ms) + net_delay(peer));
    // A slow reader takes its time over each write, and only then has it read (sent()).
    if (peer.read_bytes_per_s > 0)
        peer.arrive_ms += static_cast<int64_t>(bytes->size()) * 1000 / peer.read_bytes_per_s;
    // The bytes wait in the peer's own queue (arrivals are in order), so the scheduled step
    // holds only the id: small enough for std::function to keep without an allocation.
    peer.inbound.push_back(Peer::Inbound{std::move(bytes), read_reports});
    at(peer.arrive_ms, [this, id] {
        auto p = peers_.find(id);
        if (p == peers_.end()) return;
        Peer& q = p->second;
        Peer::Inbound in = std::move(q.inbound[q.inbound_head++]);
        std::shared_ptr<const std::string> bytes = std::move(in.bytes);
        if (q.inbound_head == q.inbound.size()) {
            q.inbound.clear();  // keeps its capacity: no allocation per write
            q.inbound_head = 0;
        }
        if (q.reset) return;  // a reset discards what had not arrived
        if (in.read_reports) {
            p->second.unread -= std::min<uint64_t>(p->second.unread, bytes->size());
            if (core_ && p->second.epoch == epoch_) {
                core_->sent(id, bytes->size(), now());
                drain();
            }
        }
        // A write that is one whole line (an event, most often) is the same object for every
        // receiver: parsed once, found again by its address.
        bool whole = p->second.framer.buffered_bytes() == 0 && !bytes->empty() &&
                     bytes->back() == '\n' &&
                     std::memchr(bytes->data(), '\n', bytes->size()) == &bytes->back();
        p->second.framer.feed(*bytes);
        std::string_view line;
        while (p->second.framer.next(line) == LineFramer::Status::line) {
            if (auto text_handler = p->second.on_text) {
                text_handler(line);
                continue;
            }
            std::shared_ptr<const Line> parsed;
            if (whole) {
                auto& slot = parsed_writes_[bytes.get()];
                if (slot.first != bytes) slot = {bytes, parsed_.get(line)};
                parsed = slot.second;
                if (parsed_writes_.size() > 1024) parsed_writes_.clear();  // a bound
            } else {
                parsed = parsed_.get(line);
            }
            if (parsed->is_discarded())
                throw std::runtime_error("the server sent a line that is not JSON: " +
                                         std::string(line));
            if (parsed->ev == "DISCONNECT")
                p->second.close_reason = parsed->value.value("reason", "");
            // A handler may replace itself (an attacker's next phase): run a copy, so the
            // closure it is running lives until it returns.
            if (auto handler = p->second.on_line) handler(*parsed);
        }
    });
}

void World::observe() {
    if (auditing_) return;
    peak_connections_ = std::max(peak_connections_, core_->connection_count());
    peak_tracked_ips_ = std::max(peak_tracked_ips_, core_->guard().tracked_ips());
    // Most drains change no alert: compared in place, nothing built (this runs after every
    // input, and a slow reader's every read is one).
    const auto& active = core_->monitor().active();
    bool same = active.size() == active_alerts_.size();
    for (auto it = active.begin(); same && it != active.end(); ++it)
        same = active_alerts_.contains(it->first);
    if (same) return;
    std::set<std::pair<std::string, std::string>> now_active;
    for (const auto& [key, a] : active) {
        now_active.insert(key);
        if (!active_alerts_.contains(key))
            event("alert.raised", {{"rule", a.rule},
                                   {"subject", a.subject},
                                   {"level", std::string(alert_level_name(a.level))}});
    }
    for (const auto& key : active_alerts_)
        if (!now_active.contains(key))
            event("alert.resolved", {{"rule", key.first}, {"subject", key.second}});
    active_alerts_ = std::move(now_active);
}

void World::admin(const AdminRequest& q) {
    if (!core_) return;
    core_->admin(q, now());
    drain();
}

void World::restart(int64_t restart_after_ms) {
    if (!core_ || restarting()) return;
    trace("shutdown", epoch_);
    event("process.shutdown");
    restart_after_ms_ = restart_after_ms;
    core_->shutdown(now());
    drain();
}

// The core has stopped (every commit landed, every client told): the process exits.
void World::finish_restart() {
    end_process();
    backup_.reset();  // stopped with the server, its partial file removed
    // A power cut armed for this process goes with it (its close must not halt the disk).
    disk_->cut_power_after(-1);
    armed_cut_ = nullptr;
    // It closes the database on its way out (a checkpoint); the next process opens it.
    store_.reset();
    if (!open_store()) return;
    start_process_after(restart_after_ms_);
}

void World::shutdown() {
    if (!core_) return;
    shut_down_ = true;
    core_->shutdown(now());
    drain();
}

void World::event(std::string name, std::map<std::string, std::string> labels) {
    if (!auditing_) report_.events.push_back(Event{now_ms(), name, std::move(labels)});
    auto [from, to] = waiting_.equal_range(name);
    std::vector<std::function<void()>> wake;
    for (auto it = from; it != to; ++it) wake.push_back(std::move(it->second));
    waiting_.erase(from, to);
    for (auto& fn : wake) fn();
}

void World::violation(const std::string& checker, std::string what) {
    if (report_.violations.size() < 50) report_.violations.push_back(checker + ": " + what);
}

std::vector<Legit*> World::population(const std::string& name) const {
    std::vector<Legit*> out;
    for (const auto& c : legit_)
        if (c->index >= 0 && (name.empty() || c->population == name)) out.push_back(c.get());
    return out;
}

// ---- operators ----------------------------------------------------------------------------

void World::operator_action(const OperatorSpec& op) {
    event("operator." + op.action, {{"user", op.user}, {"ip", op.ip}});
    if (op.action == "shutdown") return shutdown();
    AdminRequest q;
    static const std::map<std::string, AdminRequest::Kind> kinds = {
        {"suspend", AdminRequest::Kind::suspend},
        {"unsuspend", AdminRequest::Kind::unsuspend},
        {"block", AdminRequest::Kind::block},
        {"unblock", AdminRequest::Kind::unblock},
        {"revoke_sessions", AdminRequest::Kind::revoke_sessions},
        {"clear_alerts", AdminRequest::Kind::clear_alerts},
        {"backup", AdminRequest::Kind::backup},
    };
    q.kind = kinds.at(op.action);  // the loader accepts no other
    q.username = op.user;
    q.ip = op.ip;
    q.reason = op.reason;
    q.duration_ms = op.duration_ms;
    admin(q);
}

void World::start_operators() {
    for (size_t i = 0; i < spec_.operators.size(); ++i) {
        const OperatorSpec& op = spec_.operators[i];
        auto act = [this, i] { operator_action(spec_.operators[i]); };
        if (op.after.empty()) {
            at(op.at_ms, act);
            continue;
        }
        waiting_.emplace(op.after, [this, i, act] {
            int64_t delay =
                stream("operator#" + std::to_string(i)).between(0, spec_.operators[i].within_ms);
            at(now_ms() + delay, act);
        });
    }
}

// ---- liveness -----------------------------------------------------------------------------

void World::liveness_check() {
    auto fail = [this](std::string what) { report_.liveness_failures.push_back(std::move(what)); };
    for (const std::string& r : spec_.liveness.require) {
        if (r == "clients_served") {
            for (Legit* c : population("")) {
                if (!is_open(c->conn) || !c->ready)
                    fail("clients_served: " + c->name + " is not connected and ready");
                for (const auto& [id, p] : c->pending)
                    if (now_ms() - p.sent_ms > spec_.liveness.within_ms)
                        fail("clients_served: " + c->name + "'s " + p.op + " unanswered for " +
                             std::to_string(now_ms() - p.sent_ms) + " ms");
            }
        } else if (r == "breaker_closed") {
            if (!core_ || core_->breaker_state() != Breaker::State::closed)
                fail("breaker_closed: the storage breaker is not closed");
        } else if (r == "alerts_resolved") {
            for (const auto& [rule, subject] : active_alerts_)
                fail("alerts_resolved: " + rule + " " + subject + " still active");
        }
    }
}

// ---- the run ------------------------------------------------------------------------------

RunReport World::run() {
    report_.seed = seed_;
#ifdef WARREN_CHAOS_POINTS
    std::optional<ChaosScope> chaos;  // the core's chaos points ask chaos_ while this runs
    if (spec_.any_chaos()) chaos.emplace(&chaos_);
#endif
    for (const char* m : {"server.audit_records", "server.breaker_opened"}) report_.metrics[m] = 0;
    if (core_->retention().enabled()) {
        report_.metrics["retention.removed"] = 0;
        int64_t round = spec_.config.retention_interval_ms + 5000;
        overdue_wall_ms_ = now().wall_ms;
        at(std::max<int64_t>(0, spec_.duration_ms - round),
           [this] { overdue_wall_ms_ = core_wall_floor_ms(); });
    }
    for (const FaultSpec& f : spec_.faults) install_fault(*this, f);
    start_operators();
    start_populations(*this, legit_);
    for (const AttackerSpec& a : spec_.attackers) start_attacker(*this, a, attacks_);
    if (spec_.liveness.heal_at_ms >= 0) {
        at(spec_.liveness.heal_at_ms, [this] {
            healed_ = true;
            event("liveness.heal");
        });
        at(spec_.liveness.heal_at_ms + spec_.liveness.within_ms, [this] { liveness_check(); });
    }
    clock_.run(spec_.duration_ms);
    report_.end_ms = now_ms();
    report_.metrics["server.end_connections"] =
        core_ ? static_cast<double>(core_->connection_count()) : 0;
    // Past the duration, the history audit: what users see when they scroll back. Nothing
    // from then on counts in the samples, events or metrics of the run.
    auditing_ = true;
    at(now_ms() + 5000, [this] { audit_history(*this); });  // commits in flight land first
    clock_.run(spec_.duration_ms + 30 * 60'000);
    finish();
    return std::move(report_);
}

void World::finish() {
    auditing_ = false;  // what the actors report at the end counts again
    if (core_)
        report_.metrics["server.breaker_opened"] +=
            static_cast<double>(core_->breaker_opened_count());
    report_.metrics["server.peak_unread_bytes"] = static_cast<double>(peak_unread_);
    report_.metrics["server.peak_connections"] = static_cast<double>(peak_connections_);
    report_.metrics["server.peak_tracked_ips"] = static_cast<double>(peak_tracked_ips_);
    report_.metrics["disk.used_bytes"] = static_cast<double>(disk_->used_bytes());
    report_.metrics["disk.syncs"] = static_cast<double>(disk_->syncs());
    report_.metrics["disk.full_refusals"] = static_cast<double>(disk_->full_refusals());
    if (disk_->full_refusals() > 0) probe("disk.full");
    for (auto& a : attacks_) finish_attacker(*this, *a);
    // Alerts: a raise for a (rule, subject) already active is a duplicate.
    std::set<std::pair<std::string, std::string>> open_alerts;
    double duplicates = 0;
    for (const Event& e : report_.events) {
        if (e.name != "alert.raised" && e.name != "alert.resolved") continue;
        auto key = std::make_pair(e.labels.at("rule"), e.labels.at("subject"));
        if (e.name == "alert.raised" && !open_alerts.insert(key).second) ++duplicates;
        if (e.name == "alert.resolved") open_alerts.erase(key);
    }
    report_.metrics["alerts.duplicate_raises"] = duplicates;
    report_.metrics["alerts.active_at_end"] = static_cast<double>(open_alerts.size());
    if (core_ && core_->retention().enabled()) {
        // Stored at the end though past its room's age already a retention round (and 5 s)
        // before the end of the run: by the wall time the core had then, not now less a
        // round, since the wall clock may have jumped meanwhile.
        double overdue = 0;
        for (const std::optional<MessageRow>& m : stored_rows()) {
            std::optional<int64_t> age = m ? retention_age_ms(room_name(m->room)) : std::nullopt;
            overdue += age && m->ts_ms < overdue_wall_ms_ - *age;
        }
        report_.metrics["retention.overdue"] = overdue;
    }
    run_checkers(*this, report_);
    for (const auto& [name, s] : streams_.all())
        report_.streams[name] = RunReport::StreamUse{s.draws(), s.digest()};
    report_.trace_hash = trace_.hex();
}

RunReport run_world(const ScenarioSpec& spec, uint64_t seed) {
    World w(spec, seed);
    return w.run();
}

}  // namespace warren::sim
