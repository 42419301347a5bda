// Scenario files (TOML, schema 1): what QA writes to describe a simulated run without C++.
// load_scenario() reads one into a ScenarioSpec and reports every wrong type, unknown key,
// bad unit or impossible value as "FILE:LINE:COL: message". The schema — every key, its
// unit, default and bounds — is this file's reader and docs/SIMULATION.md, kept in step.
#pragma once

#include <string>
#include <vector>

#include "sim/engine/spec.h"

namespace warren::sim {

struct Loaded {
    ScenarioSpec spec;
    std::vector<std::string> errors;  // empty: the spec is good
};

// `overrides` are `key=value` pairs from the command line (`--set`), applied to the file
// before it is checked: `scenario.duration=60s`, `population.regulars.count=10`,
// `attacker.0.rate=50/s`, `server.set.limits.outbound_bytes_max=65536`.
Loaded load_scenario(const std::string& path, const std::vector<std::string>& overrides = {});

// Durations carry units: "250ms", "30s", "1.5m", "2h". Returns false if `text` is not one.
bool parse_duration(const std::string& text, int64_t& ms);

}  // namespace warren::sim
