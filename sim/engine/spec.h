// What one simulated run is made of: the server's config, the network, populations of
// legitimate clients, attackers, faults, operator actions, liveness and expectations. A
// scenario file (sim/scenario_file.h) is read into a ScenarioSpec; the engine
// (sim/engine/world.h) runs one seed of it. Times are simulated milliseconds from the start.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/chaos.h"
#include "core/config.h"
#include "store/store.h"

namespace warren::sim {

struct NetworkSpec {
    // One-way delay of each piece of a write: uniform in [min, max], or (mean > 0) min plus an
    // exponential of that mean, at most max.
    int64_t delay_min_ms = 1;
    int64_t delay_max_ms = 5;
    int64_t delay_mean_ms = 0;
    // What a client writes reaches the server in pieces of 1..chunk_max bytes (0: whole).
    int64_t chunk_max = 0;
    // What the server writes reaches a client in pieces of 1..server_chunk_max bytes, each read
    // (and, for a slow reader, reported sent) on its own: partial writes (0: whole).
    int64_t server_chunk_max = 0;
    // The server reads a connection this long after bytes arrive, and takes everything that
    // has arrived by then in one read (several writes, or pieces, together); 0: each piece
    // is read as it arrives.
    int64_t coalesce_ms = 0;
    // Legitimate clients read what the server sends at a pace drawn per connection between
    // these (bytes/s, log-uniform), and only then is it read (sent()): 0, at once.
    int64_t readers_min_bps = 0, readers_max_bps = 0;
};

// Weights of what a ready client does next.
struct Mix {
    int send = 70;       // SEND_MESSAGE to one of its rooms
    int history = 15;    // HISTORY, a page of 20
    int ping = 10;       // PING
    int list_rooms = 5;  // LIST_ROOMS
    int react = 0;       // REACT to the last message it saw in one of its rooms
    int edit = 0;        // EDIT_MESSAGE of one of its own recent messages
    int remove = 0;      // DELETE_MESSAGE of one of its own recent messages ("delete")
    int dm = 0;          // DIRECT_MESSAGE to one of two friends in its population
    int search = 0;      // SEARCH its rooms for a word
    int mark_read = 0;   // MARK_READ of the last message it saw in a room
    int leave = 0;       // LEAVE_ROOM one of its rooms and JOIN_ROOM it again at once
    int relogin = 0;     // LOGOUT, then LOGIN with its password on the same connection
    int invite = 0;      // INVITE_USER a friend to its own private room (created first)
    int thread = 0;      // GET_THREAD of the last message it saw in a room
    int members = 0;     // REQUEST_USER_LIST of one of its rooms
    int topic = 0;       // SET_TOPIC of its own private room (created first)
    int total() const {
        return send + history + ping + list_rooms + react + edit + remove + dm + search +
               mark_read + leave + relogin + invite + thread + members + topic;
    }
};

struct PopulationSpec {
    std::string name = "regulars";
    int count = 50;
    // A CIDR gives each client its own address (in order, from the first host address); a
    // plain address is shared by the whole population (a NAT).
    std::string ip = "10.2.0.0/16";
    std::vector<std::string> rooms = {"lobby"};  // joined after registering, in order
    int64_t arrive_from_ms = 500, arrive_to_ms = 5000;
    int64_t think_min_ms = 2000, think_max_ms = 6000;
    // Set: each time a client dials (the first time too), it comes from a fresh address drawn
    // from this network, IPv4 or IPv6 (a phone changing networks, privacy addresses rotating
    // inside a /64), instead of `ip`.
    std::string roam;
    // Its clients read at a pace drawn between these (bytes/s), instead of [network]'s.
    int64_t readers_min_bps = 0, readers_max_bps = 0;
    Mix mix;
};

// Every attacker kind reads the keys it uses (sim/actors/attackers.cc lists them); the
// others must stay unset.
struct AttackerSpec {
    std::string kind;
    int64_t start_ms = 10'000;
    std::string ip;        // "": the kind's own address
    int64_t count = 0;     // addresses, connections or messages (0: the kind's)
    int64_t attempts = 0;  // most attempts (0: the kind's)
    int64_t gap_ms = 0;    // pause between attempts (0: the kind's)
    std::string target;    // a population whose first clients are the targets
    std::string room = "lobby";
    std::string account;  // the account it registers ("": mal<kind><index>)
};

struct FaultSpec {
    std::string kind;
    int64_t from_ms = 0, to_ms = INT64_MAX / 4;          // active in [from, to)
    double probability = 1;                              // per commit, while active
    int64_t latency_min_ms = 700, latency_max_ms = 900;  // slow_storage, slow_hasher, slow_query
    int64_t latency_mean_ms = 0;     // > 0: min plus an exponential of this mean, at most max
    int64_t restart_after_ms = 200;  // crash
    int64_t max = 3;                 // crash: most per run
    int64_t at_ms = -1;  // crash, restart: at this moment (a crash: whatever is under way)
    // Network faults: whose connections (a population's name, or an address or CIDR).
    std::string who;
    std::string mode = "hold";  // partition: "hold" (bytes wait for the heal) or "drop"
    int64_t within_ms = 500;    // crash_on_restart: how soon after a start the crash comes
    // power_loss: each sector written since its file's last sync reaches the disk (keep), half
    // of it does (torn), or none of it (the rest).
    double keep = 0.4, torn = 0.2;
    // power_loss: what the power goes in the middle of: "commit" (each commit in the window),
    // "recovery" (each start of the process after a crash or power loss: the store's opening
    // and the new process's first writes), "prune" (each retention Prune), "backup" (each
    // online backup).
    std::string during = "commit";
    int64_t by_ms = 0;  // clock_step: the wall clock moves by this (either way)
    double ppm = 0;     // clock_drift: the wall clock gains (or loses) this per million
};

struct OperatorSpec {
    std::string action;  // suspend, unsuspend, block, unblock, revoke_sessions,
                         // clear_alerts, shutdown, backup
    int64_t at_ms = -1;  // a time, or:
    std::string after;   // an event (its first occurrence), then a delay in [0, within]
    int64_t within_ms = 0;
    std::string user, ip, reason = "operator";
    std::optional<int64_t> duration_ms;
};

struct LivenessSpec {
    int64_t heal_at_ms = -1;  // -1: no liveness phase
    int64_t within_ms = 30'000;
    std::vector<std::string> require;  // clients_served, breaker_closed, alerts_resolved
};

// A metric or event name with label filters: `legit.errors{code!=UNAVAILABLE}`.
struct Selector {
    std::string name;
    struct Label {
        std::string key, value;
        bool equal = true;
    };
    std::vector<Label> labels;
    std::string text;  // as written
};

struct ExpectSpec {
    std::string id;
    enum class Kind { metric, eventually, sometimes } kind = Kind::metric;
    Selector metric;  // metric
    std::optional<double> min, max;
    std::optional<int64_t> from_ms, to_ms;  // metric: only samples/events in [from, to)
    Selector event, after;                  // eventually: `event` within `within` of `after`
    int64_t within_ms = 0;
    std::string probe;  // sometimes
};

struct ScenarioSpec {
    std::string name = "unnamed";
    std::string summary;
    int64_t duration_ms = 120'000;
    uint64_t seed_first = 1, seed_count = 10;
    int64_t timeout_sim_ms = 0;  // 0: duration
    int64_t timeout_wall_ms = 60'000;
    Config config;  // abuse limits on unless the file turns them off
    NetworkSpec network;
    // [server]'s storage.synchronous: what the store syncs (what a power loss may take).
    Synchronous synchronous = Synchronous::normal;
    // [disk]: the simulated disk under the store (sim/engine/disk.h).
    struct Disk {
        uint32_t sector_bytes = 512;  // a power loss keeps, loses or tears whole sectors
        int64_t capacity_bytes = 0;   // writes past it fail with SQLITE_FULL (0: no limit)
    } disk;
    std::vector<PopulationSpec> populations;
    std::vector<AttackerSpec> attackers;
    std::vector<FaultSpec> faults;
    std::vector<OperatorSpec> operators;
    LivenessSpec liveness;
    std::vector<ExpectSpec> expects;
    // [chaos]: with what probability each of the core's chaos points fires when reached
    // (core/chaos.h; by ChaosSite; 0: never).
    std::array<double, chaos_site_names.size()> chaos{};
    bool any_chaos() const {
        for (double p : chaos)
            if (p > 0) return true;
        return false;
    }
    // For the tests of the checkers only (no file sets it): every nth MESSAGE event the core
    // sends is lost on its way, as if the core had forgotten a receiver.
    int64_t lose_message_events_every = 0;
};

}  // namespace warren::sim
