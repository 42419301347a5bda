// Safety checkers: named properties that hold in every run, whatever the scenario. Some watch
// as the run goes (the legitimate clients report what they see under the checker's name);
// the rest judge the end state. Every run lists the checkers that ran.
#pragma once

#include <string_view>
#include <vector>

#include "sim/engine/world.h"

namespace warren::sim {

struct Checker {
    std::string_view name;
    std::string_view summary;
    void (*at_end)(World&, RunReport&);  // null: it watches during the run
};

const std::vector<Checker>& checkers();
void run_checkers(World& w, RunReport& r);

}  // namespace warren::sim
