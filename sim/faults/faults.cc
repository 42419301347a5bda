#include "sim/faults/faults.h"

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
        fate.latency_ms = rng.between(f.latency_min_ms, f.latency_max_ms);
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
// most `max` times a run.
void crash(World& w, const FaultSpec& f, size_t i) {
    mark_window(w, f);
    Stream& rng = w.stream("fault/crash#" + std::to_string(i));
    auto crashes = std::make_shared<int64_t>(0);
    w.on_commit_hook([&w, &f, &rng, crashes](World::CommitFate& fate) {
        if (fate.crash || *crashes >= f.max || !active(w, f) || !rng.chance(f.probability)) return;
        ++*crashes;
        fate.crash = true;
        fate.restart_after_ms = f.restart_after_ms;
        w.probe("fault.crash.fired");
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
         "from the database after restart_after (at most max times)",
         {"from", "to", "probability", "restart_after", "max"},
         crash},
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
