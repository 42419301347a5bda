// Faults: every kind a [[fault]] table can name, with the keys it reads. Each installs itself
// into the world (a commit hook, a scheduled event), draws from its own stream
// ("fault/<kind>#<i>"), marks its window on the timeline (fault.<kind>.start / .end) and
// fires the probe fault.<kind>.fired each time it acts, so a run in which a configured fault
// never applied can be told from one in which it did.
#pragma once

#include <string_view>
#include <vector>

#include "sim/engine/world.h"

namespace warren::sim {

struct FaultKind {
    std::string_view name;
    std::string_view summary;
    std::vector<std::string_view> keys;  // optional keys it reads, besides kind
    void (*install)(World&, const FaultSpec&, size_t index);
};

const std::vector<FaultKind>& fault_kinds();
const FaultKind* fault_kind(std::string_view name);
void install_fault(World& w, const FaultSpec& f);

}  // namespace warren::sim
