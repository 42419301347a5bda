// What one simulated run produced: the trace hash, the legitimate clients' answered requests,
// the timeline of events (faults, alerts, blocks, operator actions, disconnects), whole-run
// metrics, the probes that fired, which safety checkers ran and what they found. Expectations
// (sim/engine/expect.h) are evaluated against it.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "sim/engine/spec.h"

namespace warren::sim {

struct Event {
    int64_t at_ms = 0;
    std::string name;  // "alert.raised", "fault.storage_outage.start", "attacker.blocked", ...
    std::map<std::string, std::string> labels;
};

// One answered request of a legitimate client.
struct Sample {
    int64_t at_ms = 0;  // when the answer arrived
    int64_t latency_ms = 0;
    std::string op;
    std::string error;  // "" for ok, else the code
    std::string population;
};

struct RunReport {
    uint64_t seed = 0;
    std::string trace_hash;
    int64_t end_ms = 0;
    std::vector<Sample> legit;
    std::vector<Event> events;
    std::map<std::string, double> metrics;   // whole-run: server.*, attacker.*, fault.*
    std::map<std::string, uint64_t> probes;  // `sometimes` probes that fired, and how often
    std::vector<std::string> checkers;       // the safety checkers that ran
    std::vector<std::string> violations;     // "checker: what"
    std::vector<std::string> liveness_failures;
    struct StreamUse {
        uint64_t draws = 0, digest = 0;
    };
    std::map<std::string, StreamUse> streams;
};

// Whether `e` has the selector's name and labels.
bool matches(const Selector& s, const Event& e);
// A metric's value over the run, or only over [from, to) where the metric allows a window
// (legit.* and events.*). nullopt: the metric never got a value (a block that never
// happened); a bound on it then fails.
std::optional<double> metric_value(const RunReport& r, const Selector& s,
                                   std::optional<int64_t> from_ms, std::optional<int64_t> to_ms);
// Whether the name is a metric some run can have (for `check` and `list metrics`).
bool metric_known(const std::string& name, std::string* why);
// Every metric family, with what it measures.
const std::vector<std::pair<std::string, std::string>>& metric_families();

// The expectations of one seed (not `sometimes`, which a sweep judges): what failed.
std::vector<std::string> check_expectations(const ScenarioSpec& spec, const RunReport& r);

}  // namespace warren::sim
