#include "sim/faults/faults.h"

#include <sqlite3.h>

#include <algorithm>
#include <cmath>

#include "sim/actors/population.h"

namespace warren::sim {

namespace {

bool active(const World& w, const FaultSpec& f) {
    return !w.healed() && w.now_ms() >= f.from_ms && w.now_ms() < f.to_ms;
}

void mark_window(World& w, const FaultSpec& f) {
    w.at(f.from_ms, [&w, kind = f.kind] { w.event("fault." + kind + ".start"); });
    if (f.to_ms < w.spec().duration_ms)
        w.at(f.to_ms, [&w, kind = f.kind] { w.event("fault." + kind + ".end"); });
}

// A latency of a slow_storage or slow_hasher fault: uniform in min..max, or min plus an
// exponential of the mean (a long tail), at most max.
int64_t latency(Stream& rng, const FaultSpec& f) {
    return rng.delay(f.latency_min_ms, f.latency_mean_ms, f.latency_max_ms);
}

// Jobs of the fault's kind in its window (hash jobs, storage reads) take latency() with
// `probability`; `install` hands the hook to the world.
template <class Install>
void slow_jobs(World& w, const FaultSpec& f, size_t i, Install install) {
    mark_window(w, f);
    Stream& rng = w.stream("fault/" + f.kind + "#" + std::to_string(i));
    install([&w, &f, &rng, fired = "fault." + f.kind + ".fired"](int64_t& latency_ms) {
        if (!active(w, f) || !rng.chance(f.probability)) return;
        latency_ms = latency(rng, f);
        w.probe(fired);
    });
}

// Every commit in the window fails transiently (the core retries, then opens its breaker).
void storage_outage(World& w, const FaultSpec& f, size_t) {
    mark_window(w, f);
    w.on_commit_hook([&w, &f](World::CommitFate& fate) {
        if (fate.status || !active(w, f)) return;
        fate.status = Status::transient("simulated outage");
        w.probe("fault.storage_outage.fired");
    });
}

// Commits in the window take latency_min..latency_max.
void slow_storage(World& w, const FaultSpec& f, size_t i) {
    mark_window(w, f);
    Stream& rng = w.stream("fault/slow_storage#" + std::to_string(i));
    w.on_commit_hook([&w, &f, &rng](World::CommitFate& fate) {
        if (!active(w, f) || !rng.chance(f.probability)) return;
        fate.latency_ms = latency(rng, f);
        w.probe("fault.slow_storage.fired");
    });
}

// Each commit in the window fails with `probability`, with `status`.
void failing(World& w, const FaultSpec& f, size_t i, Status status) {
    mark_window(w, f);
    Stream& rng = w.stream("fault/" + f.kind + "#" + std::to_string(i));
    w.on_commit_hook([&w, &f, &rng, status](World::CommitFate& fate) {
        if (fate.status || !active(w, f) || !rng.chance(f.probability)) return;
        fate.status = status;
        w.probe("fault." + f.kind + ".fired");
    });
}

// Transiently: rolled back and retried by the core.
void commit_transient(World& w, const FaultSpec& f, size_t i) {
    failing(w, f, i, Status::transient("injected: database busy"));
}

// For good: its requests answered with an error.
void commit_failure(World& w, const FaultSpec& f, size_t i) {
    failing(w, f, i, Status::failed("injected: I/O error"));
}

// With `probability` per commit in the window, the process dies while the commit is in
// flight (which lands or not, 50/50) and restarts from the database after restart_after; at
// most `max` times a run. A power loss (`power`) takes the host too, in the middle of the
// commit's own writes and syncs (or right after them): the disk keeps what was synced and, of
// each sector written since, `keep` whole and `torn` half (sim/engine/disk.h).
void crash_or_power_loss(World& w, const FaultSpec& f, size_t i, bool power) {
    const FaultSpec* loss = power ? &f : nullptr;
    if (power && f.during != "commit") {
        // With `probability` each time the store opens again after a process died (and the
        // new process's first writes), each retention Prune or each online backup: after
        // 0-24 (a backup: 0-120) of the disk's writes and syncs, or right after them.
        World::Moment moment = f.during == "recovery" ? World::Moment::recovery
                               : f.during == "prune"  ? World::Moment::prune
                                                      : World::Moment::backup;
        // A backup writes its copy a few pages a step: the cut may come anywhere in it.
        int64_t ops_max = moment == World::Moment::backup ? 120 : 24;
        mark_window(w, f);
        Stream& rng = w.stream("fault/" + f.kind + "#" + std::to_string(i));
        auto cuts = std::make_shared<int64_t>(0);
        w.on_power_cut_hook(
            [&w, &f, &rng, cuts, moment, ops_max](World::Moment m, World::PowerCut& cut) {
                if (m != moment || *cuts >= f.max || !active(w, f) || !rng.chance(f.probability))
                    return;
                ++*cuts;
                cut = {&f, rng.between(0, ops_max)};
                w.probe("fault." + f.kind + ".fired");
            });
        return;
    }
    if (f.at_ms >= 0) {  // at a moment, whatever is under way then
        w.at(f.at_ms, [&w, &f, loss] {
            if (!w.alive() || w.healed()) return;
            w.probe("fault." + f.kind + ".fired");
            w.crash(f.restart_after_ms, loss);
        });
        return;
    }
    mark_window(w, f);
    Stream& rng = w.stream("fault/" + f.kind + "#" + std::to_string(i));
    auto crashes = std::make_shared<int64_t>(0);
    w.on_commit_hook([&w, &f, &rng, crashes, loss](World::CommitFate& fate) {
        if (fate.crash || fate.power_cut || *crashes >= f.max || !active(w, f) ||
            !rng.chance(f.probability))
            return;
        ++*crashes;
        if (loss) {
            // Inside the commit's I/O: after some of its writes and syncs (a commit with its
            // checkpoint does a few to a few dozen), or right after it.
            fate.power_cut = loss;
            fate.power_cut_ops = rng.between(0, 24);
        } else {
            fate.crash = true;
            fate.restart_after_ms = f.restart_after_ms;
        }
        w.probe("fault." + f.kind + ".fired");
    });
}

void crash(World& w, const FaultSpec& f, size_t i) {
    crash_or_power_loss(w, f, i, false);
}
void power_loss(World& w, const FaultSpec& f, size_t i) {
    crash_or_power_loss(w, f, i, true);
}

// With `probability`, each `op` of the database's files in [from, to) fails with `code`.
void disk_op_failure(World& w, const FaultSpec& f, size_t i, SimDisk::Op op, int code) {
    mark_window(w, f);
    Stream& rng = w.stream("fault/" + f.kind + "#" + std::to_string(i));
    w.on_disk_hook([&w, &f, &rng, op, code](SimDisk::Op o, const std::string&) {
        if (o != op || !active(w, f) || !rng.chance(f.probability)) return 0;
        w.probe("fault." + f.kind + ".fired");
        return code;
    });
}

// A sync fails: the commit (or checkpoint) that asked for it fails, and its writes never
// reach the platter (the disk counts them clean: sim/engine/disk.h).
void sync_failure(World& w, const FaultSpec& f, size_t i) {
    disk_op_failure(w, f, i, SimDisk::Op::sync, SQLITE_IOERR_FSYNC);
}

// A read fails: the query or the commit that needed the page fails.
void read_failure(World& w, const FaultSpec& f, size_t i) {
    disk_op_failure(w, f, i, SimDisk::Op::read, SQLITE_IOERR_READ);
}

// `who` of a fault, parsed once: a population's name, or an IPv4 network.
struct Who {
    std::string population;
    std::string prefix;  // "client/<population>/"
    std::optional<Cidr> cidr;
    explicit Who(const std::string& who)
        : population(who), prefix("client/" + who + "/"), cidr(Cidr::parse(who)) {}
    // A connection (legitimate or an attacker's). Looked at for every write while its fault
    // is active: no parsing, no allocation.
    bool matches(const Peer& p) const {
        if (cidr) return p.ip4 && cidr->contains(*p.ip4);
        return p.owner.starts_with(prefix);
    }
    // A legitimate client, by its current address.
    bool matches(const Legit& c) const {
        if (!cidr) return c.population == population;
        std::optional<uint32_t> a = ipv4(c.ip);
        return a && cidr->contains(*a);
    }
};

// When the fault's window closes: at `to`, or when the liveness phase heals everything.
int64_t window_end(const World& w, const FaultSpec& f) {
    int64_t heal = w.spec().liveness.heal_at_ms;
    return heal >= 0 ? std::min(f.to_ms, heal) : f.to_ms;
}

// In [from, to) the disk is full: another program took the free space when the window opened,
// so a write that would grow the database's files fails with SQLITE_FULL and writes nothing
// (one within a file's size, as in a WAL reused after a checkpoint, still succeeds); at the
// window's end, or the heal, the space is back.
void disk_full(World& w, const FaultSpec& f, size_t) {
    mark_window(w, f);
    w.at(f.from_ms, [&w] {
        if (w.healed()) return;
        w.probe("fault.disk_full.fired");
        auto cap = static_cast<uint64_t>(w.spec().disk.capacity_bytes);
        uint64_t used = w.disk().used_bytes();
        w.disk().set_capacity(cap > 0 ? std::min(cap, used) : used);
    });
    w.at(window_end(w, f),
         [&w] { w.disk().set_capacity(static_cast<uint64_t>(w.spec().disk.capacity_bytes)); });
}

// Storage reads in [from, to) take query.min..query.max (with probability): history pages,
// threads, searches and audit pages are slow; the core's bounds on reads in flight refuse the
// excess, and nothing else waits for them.
void slow_query(World& w, const FaultSpec& f, size_t i) {
    slow_jobs(w, f, i, [&w](World::QueryHook h) { w.on_query_hook(std::move(h)); });
}

// The network between `who` and the server is cut in [from, to). "hold": bytes either way
// wait and arrive after the heal, as TCP retransmits them (the server hears a client read
// only when its bytes arrive: its outbound queue grows meanwhile). "drop": the bytes are
// lost, and at the heal the connections are reset.
void partition(World& w, const FaultSpec& f, size_t) {
    mark_window(w, f);
    auto who = std::make_shared<const Who>(f.who);
    w.on_link_hook([&w, &f, who](const Peer& p, bool, size_t, LinkFate& fate) {
        if (!active(w, f) || !who->matches(p)) return;
        if (f.mode == "drop")
            fate.drop = true;
        else
            fate.hold_until_ms = std::max(fate.hold_until_ms, window_end(w, f));
        w.probe("fault.partition.fired");
    });
    if (f.mode == "drop")
        w.at(window_end(w, f), [&w, who] {
            for (ConnId id : w.open_peer_ids())
                if (who->matches(w.peer(id))) w.reset(id, w.now_ms());
        });
}

// With `probability` per write either way on `who`'s connections in [from, to), the
// connection is reset in the middle of that write: the bytes before the cut arrive, the rest
// never does, and both sides see the connection go.
void reset(World& w, const FaultSpec& f, size_t i) {
    mark_window(w, f);
    Stream& rng = w.stream("fault/reset#" + std::to_string(i));
    auto who = std::make_shared<const Who>(f.who);
    // Each write resets with `probability`: the writes until the next reset are drawn at once
    // (geometrically), not a draw per write, which would cost more than the write at a
    // rate of one in thousands.
    auto until_next = [&rng, &f] {
        if (f.probability >= 1) return int64_t{1};
        double u = 1 - rng.unit();  // (0, 1]
        return 1 + static_cast<int64_t>(std::floor(std::log(u) / std::log1p(-f.probability)));
    };
    auto countdown = std::make_shared<int64_t>(f.probability > 0 ? until_next() : INT64_MAX);
    w.on_link_hook([&w, &f, &rng, who, countdown, until_next](const Peer& p, bool, size_t size,
                                                              LinkFate& fate) {
        if (fate.cut || fate.drop || !active(w, f) || !who->matches(p) || --*countdown > 0) return;
        *countdown = until_next();
        fate.cut = size > 1 ? static_cast<size_t>(rng.below(size)) : 0;
        w.probe("fault.reset.fired");
    });
}

// Each time the process starts again (after a crash or a restart), with `probability` it
// crashes again at a moment within `within` of its start: while clients reconnect and resume
// and their first commits are in flight. At most `max` times a run.
void crash_on_restart(World& w, const FaultSpec& f, size_t i) {
    Stream& rng = w.stream("fault/crash_on_restart#" + std::to_string(i));
    auto crashes = std::make_shared<int64_t>(0);
    w.on_start_hook([&w, &f, &rng, crashes] {
        if (*crashes >= f.max || !active(w, f) || !rng.chance(f.probability)) return;
        ++*crashes;
        uint64_t epoch = w.process_epoch();
        w.at(w.now_ms() + rng.between(0, f.within_ms), [&w, &f, epoch] {
            if (!w.alive() || w.process_epoch() != epoch || w.healed()) return;
            w.probe("fault.crash_on_restart.fired");
            w.crash(f.restart_after_ms);
        });
    });
}

// At `at`, a graceful restart: the SIGTERM path (in-flight commits finish, clients are told
// DISCONNECT SHUTDOWN), the process exits, and a new one starts from the database
// restart_after later; clients redial.
void restart(World& w, const FaultSpec& f, size_t) {
    w.at(f.at_ms, [&w, &f] {
        if (!w.alive() || w.stopped()) return;
        w.probe("fault.restart.fired");
        w.restart(f.restart_after_ms);
    });
}

// Password hashing (argon2id on its own thread in warrend) is slow in [from, to): with
// `probability`, a job takes hash.min..hash.max (a stall, when long); logins and
// registrations wait, and the core's bound on jobs in flight refuses the excess.
void slow_hasher(World& w, const FaultSpec& f, size_t i) {
    slow_jobs(w, f, i, [&w](World::HashHook h) { w.on_hash_hook(std::move(h)); });
}

// At `at`, the host's wall clock steps by `by` (forward or back: an NTP correction, an
// operator's date command, a VM resumed from a snapshot); monotonic time does not move.
void clock_step(World& w, const FaultSpec& f, size_t) {
    w.at(f.at_ms, [&w, &f] {
        if (w.healed()) return;
        w.probe("fault.clock_step.fired");
        w.step_wall(f.by_ms);
        w.event("clock.step", {{"by_ms", std::to_string(f.by_ms)}});
    });
}

// In [from, to) the host's wall clock runs fast (ppm > 0) or slow against monotonic time,
// by ppm per million: moved each second by what has added up to a whole millisecond.
void clock_drift(World& w, const FaultSpec& f, size_t) {
    mark_window(w, f);
    auto carry = std::make_shared<double>(0);
    std::function<void()>* tick = w.loop();
    *tick = [&w, &f, carry, tick] {
        if (!active(w, f)) return;
        *carry += f.ppm * 1e-3;  // per second of monotonic time
        auto whole = static_cast<int64_t>(*carry);
        if (whole != 0) {
            *carry -= static_cast<double>(whole);
            w.step_wall(whole);
            w.probe("fault.clock_drift.fired");
        }
        w.at(w.now_ms() + 1000, *tick);
    };
    w.at(f.from_ms, *tick);
}

// The legitimate clients `who` names: a population, or those whose address is in a CIDR.
std::vector<Legit*> clients_of(World& w, const std::string& who) {
    Who match(who);
    std::vector<Legit*> out;
    for (Legit* c : w.population(""))
        if (match.matches(*c)) out.push_back(c);
    return out;
}

// With `probability`, each of who's clients vanishes at a moment in [from, to) without a FIN
// (its phone changed networks) and dials again 1-3 s later, resuming its session; the server
// holds the old connection until its own timeouts close it (sessions.no_leak allows them
// that long).
void half_open(World& w, const FaultSpec& f, size_t i) {
    mark_window(w, f);
    Stream& rng = w.stream("fault/half_open#" + std::to_string(i));
    w.at(f.from_ms, [&w, &f, &rng] {
        for (Legit* c : clients_of(w, f.who)) {
            if (!rng.chance(f.probability)) continue;
            int64_t when = rng.between(w.now_ms(), std::max(w.now_ms(), window_end(w, f) - 1));
            int64_t back = rng.between(1000, 3000);
            w.at(when, [&w, c, back] {
                if (!w.is_open(c->conn) || w.healed()) return;
                w.probe("fault.half_open.fired");
                redial(w, *c, w.now_ms() + back, /*silently=*/true);
            });
        }
    });
}

// At `from`, each of who's connected clients (with `probability`) drops its connection and
// dials again at a moment in [from, to), resuming its session with its token: a reconnect
// storm, as after a network blip or a load balancer's restart.
void reconnect_storm(World& w, const FaultSpec& f, size_t i) {
    mark_window(w, f);
    Stream& rng = w.stream("fault/reconnect_storm#" + std::to_string(i));
    w.at(f.from_ms, [&w, &f, &rng] {
        int64_t end = std::max(w.now_ms() + 1, window_end(w, f));
        for (Legit* c : clients_of(w, f.who)) {
            if (!w.is_open(c->conn) || !rng.chance(f.probability)) continue;
            w.probe("fault.reconnect_storm.fired");
            redial(w, *c, rng.between(w.now_ms() + 1, end), /*silently=*/false);
        }
    });
}

}  // namespace

const std::vector<FaultKind>& fault_kinds() {
    static const std::vector<FaultKind> kinds = {
        {"storage_outage",
         "every commit in [from, to) fails transiently",
         {"from", "to"},
         storage_outage},
        {"slow_storage",
         "commits in [from, to) take commit.min..commit.max (with probability)",
         {"from", "to", "commit", "probability"},
         slow_storage},
        {"commit_transient",
         "each commit in [from, to) fails transiently with probability",
         {"from", "to", "probability"},
         commit_transient},
        {"commit_failure",
         "each commit in [from, to) fails for good with probability",
         {"from", "to", "probability"},
         commit_failure},
        {"crash",
         "with probability per commit in [from, to), the process dies mid-commit and restarts "
         "from the database after restart_after (at most max times); or it dies at `at`, "
         "whatever is under way",
         {"from", "to", "probability", "restart_after", "max", "at"},
         crash},
        {"power_loss",
         "like crash, and the host loses power: the disk keeps what was synced and, of each "
         "sector written since, a share `keep` whole and `torn` half (the rest is lost); "
         "`during` = \"commit\" (each commit), \"recovery\" (each reopening of the store after "
         "a process died, and the new process's first writes), \"prune\" (each retention "
         "Prune) or \"backup\" (each online backup: its pages, its sync and rename)",
         {"from", "to", "probability", "restart_after", "max", "at", "keep", "torn", "during"},
         power_loss},
        {"sync_failure",
         "each sync of the database's files in [from, to) fails with probability; its writes "
         "never reach the disk (as on Linux after an fsync error)",
         {"from", "to", "probability"},
         sync_failure},
        {"read_failure",
         "each read of the database's files in [from, to) fails with probability",
         {"from", "to", "probability"},
         read_failure},
        {"disk_full",
         "in [from, to) the disk has no free space: writes that would grow the database's "
         "files fail with SQLITE_FULL; the space is back at `to` (or the heal)",
         {"from", "to"},
         disk_full},
        {"slow_query",
         "storage reads in [from, to) (history, threads, search, audit) take query.min..query.max "
         "(with probability)",
         {"from", "to", "query", "probability"},
         slow_query},
        {"crash_on_restart",
         "each time the process starts again in [from, to), with probability it crashes again "
         "within `within` of its start (while clients reconnect and commit), at most max times",
         {"from", "to", "probability", "within", "restart_after", "max"},
         crash_on_restart},
        {"restart",
         "at `at`, a graceful restart: in-flight commits finish, clients are told DISCONNECT "
         "SHUTDOWN, the process exits and a new one starts from the database restart_after "
         "later",
         {"at", "restart_after"},
         restart},
        {"slow_hasher",
         "password hash jobs in [from, to) take hash.min..hash.max (with probability): slow "
         "logins and registrations, stalls, a full hash queue",
         {"from", "to", "hash", "probability"},
         slow_hasher},
        {"clock_step",
         "at `at`, the host's wall clock steps by `by` (\"+2h\", \"-30m\", \"8d\"); "
         "monotonic time does not",
         {"at", "by"},
         clock_step},
        {"clock_drift",
         "in [from, to), the host's wall clock gains ppm per million of monotonic time (loses, "
         "if negative)",
         {"from", "to", "ppm"},
         clock_drift},
        {"partition",
         "the network between who (a population, or an address or CIDR) and the server is cut "
         "in [from, to): mode = \"hold\" (bytes wait and arrive after the heal) or \"drop\" "
         "(bytes are lost; the connections are reset at the heal)",
         {"from", "to", "who", "mode"},
         partition},
        {"reset",
         "with probability per write either way on who's connections in [from, to), the "
         "connection is reset in the middle of the write (RST): both sides see it go",
         {"from", "to", "who", "probability"},
         reset},
        {"half_open",
         "with probability, each of who's clients vanishes at a moment in [from, to) without a "
         "FIN and dials again 1-3 s later; the server must notice through its own timeouts",
         {"from", "to", "who", "probability"},
         half_open},
        {"reconnect_storm",
         "at from, each of who's connected clients (with probability) drops its connection and "
         "dials again at a moment in [from, to), resuming its session",
         {"from", "to", "who", "probability"},
         reconnect_storm},
    };
    return kinds;
}

const FaultKind* fault_kind(std::string_view name) {
    for (const auto& k : fault_kinds())
        if (k.name == name) return &k;
    return nullptr;
}

void install_fault(World& w, const FaultSpec& f) {
    const FaultKind* kind = fault_kind(f.kind);
    if (!kind) return;  // the loader accepts no other
    size_t index = static_cast<size_t>(&f - w.spec().faults.data());
    kind->install(w, f, index);
}

}  // namespace warren::sim
