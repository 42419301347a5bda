#include "sim/builtin.h"

namespace warren::sim {

std::vector<std::string> builtin_scenario_names() {
    return {"brute_force",     "credential_stuffing", "connection_flood", "message_flood",
            "slowloris",       "bad_frames",          "invitation_spam",  "dm_spam",
            "storage_outage",  "slow_storage",        "pipelined_flood",  "operator_suspend",
            "shutdown_pipelined", "irc_flood"};
}

std::optional<ScenarioSpec> builtin_scenario(const std::string& name) {
    ScenarioSpec s;
    s.name = name;
    s.populations.emplace_back();
    auto attacker = [&s](std::string kind, int64_t count = 0) {
        AttackerSpec a;
        a.kind = std::move(kind);
        a.count = count;
        s.attackers.push_back(a);
    };
    auto pipelined = [&](std::string kind, int64_t count, std::string after_action) {
        s.duration_ms = 20'000;
        attacker(std::move(kind), count);
        if (!after_action.empty()) {
            OperatorSpec op;
            op.action = after_action;
            op.after = "attacker.pipeline_written";
            op.within_ms = 20;
            op.user = "malpipeli0";
            op.duration_ms = 3'600'000;
            s.operators.push_back(op);
        }
    };
    const auto names = builtin_scenario_names();
    if (std::find(names.begin(), names.end(), name) == names.end()) return std::nullopt;
    if (name == "storage_outage") {
        s.duration_ms = 180'000;
        s.faults.push_back(FaultSpec{.kind = "storage_outage", .from_ms = 30'000, .to_ms = 60'000});
    } else if (name == "slow_storage") {
        s.duration_ms = 200'000;
        s.faults.push_back(FaultSpec{.kind = "slow_storage", .from_ms = 30'000, .to_ms = 90'000});
        OperatorSpec op;
        op.action = "clear_alerts";
        op.at_ms = 60'000;
        s.operators.push_back(op);
    } else if (name == "pipelined_flood") {
        pipelined("pipeline", 200, "");
    } else if (name == "operator_suspend") {
        pipelined("pipeline", 25, "suspend");
    } else if (name == "shutdown_pipelined") {
        pipelined("pipeline", 25, "shutdown");
    } else if (name == "irc_flood") {
        pipelined("irc_pipeline", 200, "");
    } else {
        attacker(name);
    }
    return s;
}

}  // namespace warren::sim
