// history.complete (sim/checkers/history.cc): after the run, page every room's history back
// to its first message and compare it with the store.
#pragma once

#include "sim/engine/world.h"

namespace warren::sim {

// Starts the audit: an auditor connection logs in as the host and pages each room. The world
// runs on until it is done; what it finds is reported under history.complete.
void audit_history(World& w);

}  // namespace warren::sim
