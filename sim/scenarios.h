// Scenarios: attack and failure scenarios run against the real core and store, with 50
// legitimate clients alongside (each from its own address, one request every 2-6 s).
//
// Attack scenarios report when the attacker was first throttled (a refusal: RATE_LIMITED,
// TOO_MANY_CONNECTIONS, a name lock) and first blocked (BLOCKED, DISCONNECT BLOCKED), counted
// in attacker attempts; the errors and p99 reply latency (simulated time) of legitimate
// clients; and peaks of server state (connections, tracked addresses) to show memory stays
// bounded. Failure scenarios (storage outage, slow storage) record every alert raised and
// resolved, for the monitoring checks.
//
// run_scenario() is a pure function of its options: the same seed gives the same trace hash.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace warren::sim {

enum class Scenario {
    none,
    brute_force,          // one IP guesses one account's password
    credential_stuffing,  // 200 IPs try name/password pairs over 20 names
    connection_flood,     // one IP opens connections as fast as it can
    message_flood,        // a logged-in account sends messages as fast as it can
    slowloris,            // connections that send one byte per second and never a line
    bad_frames,           // malformed and oversized frames, reconnecting after each close
    invitation_spam,      // an account invites every user it can find
    dm_spam,              // a fresh account sends direct messages to every user
    storage_outage,       // every commit fails from 30 s to 60 s
    slow_storage,         // commits take ~800 ms from 30 s to 90 s; alerts cleared at 60 s
    // Closes under pipelined load (issue "closing never drops what was answered"): a client
    // writes many SEND_MESSAGEs at once, cut by the network into chunks of 1-512 bytes, and
    // reads its replies slowly (2 KB/s, driving the core's outbound accounting); the server
    // closes it on the way. Each checks that the OK replies it read before its DISCONNECT are
    // exactly the messages stored, in request order, with nothing after the DISCONNECT.
    pipelined_flood,     // 200 messages; the account is suspended for flooding
    operator_suspend,    // 25 messages (under the burst); an operator suspends it 0-20 ms in
    shutdown_pipelined,  // 25 messages (under the burst); the server shuts down 0-20 ms in
    irc_flood,  // an IRC client with echo-message, 200 PRIVMSGs; suspended for flooding (the
                // echoes it read before its ERROR are its acknowledgements)
};

std::optional<Scenario> scenario_from_name(std::string_view name);
std::string_view scenario_name(Scenario s);
std::vector<Scenario> attack_scenarios();
std::vector<Scenario> close_scenarios();

struct ScenarioOptions {
    Scenario scenario = Scenario::none;
    uint64_t seed = 1;
    int legit_clients = 50;
    int64_t duration_ms = 0;  // 0: the scenario's own length
};

struct AlertEvent {
    int64_t at_ms = 0;
    bool raised = true;  // false: resolved
    std::string rule;
    std::string subject;
    std::string level;
};

struct ScenarioReport {
    uint64_t seed = 0;
    std::string trace_hash;
    // Legitimate clients.
    uint64_t legit_requests = 0;
    uint64_t legit_errors = 0;
    std::vector<std::string> legit_error_samples;  // "op CODE" (first few)
    int64_t legit_p99_ms = 0;
    int64_t legit_max_ms = 0;
    uint64_t legit_disconnects = 0;
    // The attacker.
    uint64_t attempts = 0;
    std::optional<uint64_t> throttled_at;  // attempt number
    std::optional<uint64_t> blocked_at;
    uint64_t attacker_successes = 0;   // logins that succeeded (brute force, stuffing)
    uint64_t worst_name_failures = 0;  // stuffing: most INVALID_CREDENTIALS for one name
    int64_t slowest_close_ms = 0;      // slowloris: longest a connection stayed open
    // Server state peaks.
    size_t peak_connections = 0;
    size_t peak_tracked_ips = 0;
    size_t end_connections = 0;
    // Alerts.
    std::vector<AlertEvent> alerts;
    uint64_t duplicate_raises = 0;  // a raise for a (rule, subject) already active
    uint64_t audit_records = 0;
    // The close scenarios' pipelining client.
    uint64_t acknowledged = 0;  // OK replies it read before its DISCONNECT
    uint64_t stored = 0;        // its messages in the store at the end
    std::string close_reason;   // its DISCONNECT's
    uint64_t lines_after_close = 0;
    std::vector<std::string> violations;
};

ScenarioReport run_scenario(const ScenarioOptions& options);

}  // namespace warren::sim
