#include "sim/engine/report.h"

#include <algorithm>
#include <cmath>

namespace warren::sim {

namespace {

bool label_ok(const Selector& s, const std::map<std::string, std::string>& labels) {
    for (const auto& l : s.labels) {
        auto it = labels.find(l.key);
        bool same = it != labels.end() && it->second == l.value;
        if (same != l.equal) return false;
    }
    return true;
}

bool in_window(int64_t t, std::optional<int64_t> from, std::optional<int64_t> to) {
    return (!from || t >= *from) && (!to || t < *to);
}

const std::vector<std::string> attacker_fields = {
    "attempts",         "throttled_at", "blocked_at", "successes",        "worst_name_failures",
    "slowest_close_ms", "acknowledged", "stored",     "lines_after_close"};

std::string number(double v) {
    if (v == std::floor(v) && std::fabs(v) < 1e15) return std::to_string(static_cast<int64_t>(v));
    return std::to_string(v);
}

}  // namespace

bool matches(const Selector& s, const Event& e) {
    return e.name == s.name && label_ok(s, e.labels);
}

const std::vector<std::pair<std::string, std::string>>& metric_families() {
    static const std::vector<std::pair<std::string, std::string>> all = {
        {"legit.requests{op,code,population}", "legitimate requests answered (window allowed)"},
        {"legit.errors{op,code,population}", "of those, answered with an error (window allowed)"},
        {"legit.reply_ms.p50{...}", "median reply time, simulated ms (window allowed)"},
        {"legit.reply_ms.p99{...}", "99th percentile reply time (window allowed)"},
        {"legit.reply_ms.max{...}", "slowest reply (window allowed)"},
        {"legit.disconnects{population,reason}",
         "legitimate connections closed (reason: the DISCONNECT's, CRASH, REFUSED)"},
        {"events.<event>{labels}", "how many times an event happened (window allowed)"},
        {"server.peak_connections", "most connections open at once"},
        {"server.peak_tracked_ips", "most addresses the abuse guard tracked at once"},
        {"server.end_connections", "connections open at the end"},
        {"server.audit_records", "audit records written (blocks, suspensions, operator actions)"},
        {"server.breaker_opened", "times the storage breaker opened"},
        {"server.peak_unread_bytes", "most bytes a connection had queued unread"},
        {"alerts.duplicate_raises", "raises of an alert already active"},
        {"alerts.active_at_end", "alerts still active at the end"},
        {"delivery.owed",
         "room messages legitimate connections had to receive (delivery.complete judged them)"},
        {"retention.removed", "messages retention removed (set when retention is on)"},
        {"disk.used_bytes", "bytes the simulated disk's files hold at the end"},
        {"disk.syncs", "syncs of the simulated disk's files that succeeded"},
        {"disk.full_refusals", "writes the simulated disk refused as full (capacity_bytes)"},
        {"disk.sectors_kept", "unsynced sectors power losses kept whole"},
        {"disk.sectors_torn", "unsynced sectors power losses tore (first half written)"},
        {"disk.sectors_lost", "unsynced sectors power losses lost"},
        {"durability.acked_lost_to_power_loss",
         "acknowledged messages synchronous = normal lost within its window"},
        {"retention.overdue",
         "messages stored at the end that were past their room's age a retention round and 5 s "
         "before the end"},
        {"attacker.<name>.attempts", "what the attacker tried (logins, connections, frames, ...)"},
        {"attacker.<name>.throttled_at",
         "the attempt answered by the first refusal (unset: never)"},
        {"attacker.<name>.blocked_at", "the attempt at which it was blocked (unset: never)"},
        {"attacker.<name>.successes", "logins that succeeded"},
        {"attacker.<name>.worst_name_failures", "most failed logins for one name"},
        {"attacker.<name>.slowest_close_ms", "longest one of its connections stayed open"},
        {"attacker.<name>.acknowledged", "pipelining kinds: OK replies (or echoes) it read"},
        {"attacker.<name>.stored", "pipelining kinds: its messages in the store at the end"},
        {"attacker.<name>.lines_after_close", "pipelining kinds: lines after its close"},
    };
    return all;
}

bool metric_known(const std::string& name, std::string* why) {
    static const std::vector<std::string> plain = {"legit.requests",
                                                   "legit.errors",
                                                   "legit.reply_ms.p50",
                                                   "legit.reply_ms.p99",
                                                   "legit.reply_ms.max",
                                                   "legit.disconnects",
                                                   "server.peak_connections",
                                                   "server.peak_tracked_ips",
                                                   "server.end_connections",
                                                   "server.audit_records",
                                                   "server.breaker_opened",
                                                   "server.peak_unread_bytes",
                                                   "alerts.duplicate_raises",
                                                   "alerts.active_at_end",
                                                   "delivery.owed",
                                                   "retention.removed",
                                                   "retention.overdue",
                                                   "disk.used_bytes",
                                                   "disk.syncs",
                                                   "disk.full_refusals",
                                                   "disk.sectors_kept",
                                                   "disk.sectors_torn",
                                                   "disk.sectors_lost",
                                                   "durability.acked_lost_to_power_loss"};
    if (std::find(plain.begin(), plain.end(), name) != plain.end()) return true;
    if (name.starts_with("events.") && name.size() > 7) return true;
    if (name.starts_with("attacker.")) {
        size_t dot = name.rfind('.');
        std::string field = name.substr(dot + 1);
        if (dot > 9 && std::find(attacker_fields.begin(), attacker_fields.end(), field) !=
                           attacker_fields.end())
            return true;
    }
    if (why) *why = "unknown metric '" + name + "' (warren-sim list metrics)";
    return false;
}

std::optional<double> metric_value(const RunReport& r, const Selector& s,
                                   std::optional<int64_t> from, std::optional<int64_t> to) {
    if (s.name.starts_with("legit.") && s.name != "legit.disconnects") {
        std::vector<int64_t> latencies;
        double count = 0;
        for (const Sample& x : r.legit) {
            if (!in_window(x.at_ms, from, to)) continue;
            if (!label_ok(s, {{"op", x.op}, {"code", x.error}, {"population", x.population}}))
                continue;
            if (s.name == "legit.errors" && x.error.empty()) continue;
            ++count;
            latencies.push_back(x.latency_ms);
        }
        if (s.name == "legit.requests" || s.name == "legit.errors") return count;
        if (latencies.empty()) return std::nullopt;
        std::sort(latencies.begin(), latencies.end());
        if (s.name == "legit.reply_ms.max") return static_cast<double>(latencies.back());
        size_t pct = s.name == "legit.reply_ms.p50" ? 50 : 99;
        return static_cast<double>(latencies[(latencies.size() - 1) * pct / 100]);
    }
    if (s.name == "legit.disconnects" || s.name.starts_with("events.")) {
        Selector ev = s;
        ev.name = s.name == "legit.disconnects" ? "legit.disconnected" : s.name.substr(7);
        double n = 0;
        for (const Event& e : r.events)
            if (in_window(e.at_ms, from, to) && matches(ev, e)) ++n;
        return n;
    }
    auto it = r.metrics.find(s.name);
    if (it == r.metrics.end()) return std::nullopt;
    return it->second;
}

std::vector<std::string> check_expectations(const ScenarioSpec& spec, const RunReport& r) {
    std::vector<std::string> failed;
    for (const ExpectSpec& e : spec.expects) {
        if (e.kind == ExpectSpec::Kind::metric) {
            std::optional<double> v = metric_value(r, e.metric, e.from_ms, e.to_ms);
            if (!v) {
                failed.push_back(e.id + ": " + e.metric.text + " never had a value");
                continue;
            }
            if (e.min && *v < *e.min)
                failed.push_back(e.id + ": " + e.metric.text + " = " + number(*v) + ", under min " +
                                 number(*e.min));
            if (e.max && *v > *e.max)
                failed.push_back(e.id + ": " + e.metric.text + " = " + number(*v) + ", over max " +
                                 number(*e.max));
        } else if (e.kind == ExpectSpec::Kind::eventually) {
            bool any = false;
            for (const Event& a : r.events) {
                if (!matches(e.after, a)) continue;
                any = true;
                bool followed = std::any_of(r.events.begin(), r.events.end(), [&](const Event& b) {
                    return matches(e.event, b) && b.at_ms >= a.at_ms &&
                           b.at_ms <= a.at_ms + e.within_ms;
                });
                if (!followed)
                    failed.push_back(e.id + ": no " + e.event.text + " within " +
                                     number(static_cast<double>(e.within_ms)) + " ms of " +
                                     e.after.text + " at " + number(static_cast<double>(a.at_ms)) +
                                     " ms");
            }
            if (!any) failed.push_back(e.id + ": " + e.after.text + " never happened");
        }
    }
    return failed;
}

}  // namespace warren::sim
