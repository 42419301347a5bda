// The built-in scenarios as specs: the attack and failure scenarios warren-sim has always
// shipped, each with 50 legitimate clients alongside.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "sim/engine/spec.h"

namespace warren::sim {

std::optional<ScenarioSpec> builtin_scenario(const std::string& name);
std::vector<std::string> builtin_scenario_names();

}  // namespace warren::sim
