// Attackers: every kind an [[attacker]] table can name, with what it does, its defaults and
// the keys it reads. Each attacker draws from its own stream ("attacker/<name>") and reports
// metrics under attacker.<name>.* (the name is the kind, or kind#k when a file has several
// of one kind): attempts, throttled_at and blocked_at (the attempt at which the first
// refusal and the first block came), successes, worst_name_failures, slowest_close_ms, and
// for the pipelining kinds acknowledged, stored and lines_after_close.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sim/engine/world.h"

namespace warren::sim {

struct Attack {
    AttackerSpec spec;
    std::string name;     // attacker.<name>.* metrics
    std::string account;  // the account it registers, if any
    Stream* rng = nullptr;
    uint64_t attempts = 0;
    std::optional<uint64_t> throttled_at, blocked_at;
    uint64_t successes = 0;
    std::map<std::string, uint64_t> name_failures;
    int64_t slowest_close_ms = 0;
    bool done = false;
    // The pipelining kinds.
    bool pipelines = false;
    int64_t next_reply = 10;
    uint64_t acknowledged = 0;
    std::string close_reason;
    uint64_t lines_after_close = 0;

    void refused(World& w, std::string_view code);
    bool over(const World& w) const;  // stop: healed, or the run is about to end
};

struct AttackerKind {
    std::string_view name;
    std::string_view summary;
    std::string_view ip;  // default address (a CIDR for the many-address kinds)
    int64_t count, attempts, gap_ms;
    std::vector<std::string_view> keys;  // optional keys it reads, besides kind and start
    void (*start)(World&, Attack&);
};

const std::vector<AttackerKind>& attacker_kinds();
// The names of a scenario's attackers, in order: the kind, or kind#k when it comes twice or
// more (k counting from 0 among that kind). Their metrics are attacker.<name>.*.
std::vector<std::string> attacker_names(const std::vector<AttackerSpec>& attackers);
const AttackerKind* attacker_kind(std::string_view name);

void start_attacker(World& w, const AttackerSpec& spec, std::vector<std::unique_ptr<Attack>>& all);
// Its metrics, and the pipelining kinds' check of what was stored against what was told.
void finish_attacker(World& w, Attack& a);

}  // namespace warren::sim
