// Monitor: what the server is doing, in injected time. Per op: request count, errors by code,
// latency in microseconds (request received -> reply released) since start and over the last
// minute;
// connections accepted, refused and closed by reason; commit latency and batch sizes; and an
// alert engine with a rule table evaluated every alert_eval_ms on tick.
//
// The monitor only counts. Gauges that the server already knows (open connections, sessions,
// rooms, queue depths, breaker state, blocks) are passed in as a Gauges value when rendering
// or evaluating, so nothing is counted twice. Recording costs a few nanoseconds and never
// allocates after the first minute. Renderers return JSON (metrics, report, alerts) or the
// Prometheus text exposition format. Every container is bounded.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/config.h"
#include "core/monitor/histogram.h"
#include "core/ops/codes.h"
#include "core/ops/ops.h"
#include "core/outputs.h"

namespace warren {

std::string_view alert_level_name(AlertLevel l);

struct Gauges {
    int64_t wall_ms = 0;
    uint64_t connections_open = 0;
    uint64_t connections_max = 0;
    uint64_t sessions = 0;
    uint64_t online_users = 0;
    uint64_t users = 0;
    uint64_t rooms = 0;
    int64_t messages_stored = 0;  // highest committed message id
    uint64_t batches_queued = 0;
    uint64_t hash_jobs = 0;
    uint64_t queries = 0;
    std::string_view breaker = "closed";
    bool storage_corrupt = false;
    uint64_t breaker_opened = 0;
    uint64_t batches_committed = 0;
    uint64_t batches_failed = 0;
    uint64_t commit_retries = 0;
    uint64_t writes_refused = 0;
    uint64_t retention_deleted = 0;   // messages deleted for their age
    uint64_t retention_failures = 0;  // Prunes storage refused
    uint64_t active_blocks = 0;
    uint64_t active_suspensions = 0;
    uint64_t login_failures = 0;
    uint64_t rate_limited = 0;
    uint64_t bad_frames = 0;
    uint64_t signatures = 0;
    uint64_t blocks_total = 0;
    uint64_t suspensions_total = 0;
    uint64_t name_locks = 0;
    uint64_t audit_unpersisted = 0;
    uint64_t rss_bytes = 0;
    double cpu_seconds = 0;
    uint64_t open_files = 0;
    uint64_t hash_queue_depth = 0;     // in the driver's pool
    uint64_t storage_queue_depth = 0;  // in the driver's storage thread
};

struct Alert {
    uint64_t id = 0;
    std::string rule;
    std::string subject;  // e.g. the op for a per-op rule; empty otherwise
    AlertLevel level = AlertLevel::warning;
    std::string message;
    int64_t raised_ms = 0;     // wall
    int64_t resolved_ms = 0;   // wall; 0 while active
    std::string how_resolved;  // "cleared" (condition gone) or "acknowledged" (admin)
};

// One line for the log when an alert is raised or resolved.
struct AlertNotice {
    AlertLevel level = AlertLevel::info;
    std::string text;
};

class Monitor {
  public:
    explicit Monitor(const Config& config);

    // Recording. Times are mono microseconds.
    void request_done(std::optional<Op> op, std::optional<ErrorCode> error, int64_t latency_us,
                      int64_t now_us);
    void connection_accepted() { ++accepted_; }
    void connection_refused(std::string_view reason) { ++refused_[std::string(reason)]; }
    void connection_closed(std::string_view reason) { ++closed_[std::string(reason)]; }
    void commit_done(bool ok, int64_t latency_us, size_t mutations, int64_t now_us);

    // Alerts: evaluates the rule table; returns what was raised or resolved.
    std::vector<AlertNotice> evaluate(const Gauges& g, int64_t now_us);
    // Acknowledges the active alerts of `rule` (every rule when empty); returns how many.
    // An acknowledged alert is not raised again until its condition has cleared once.
    size_t acknowledge(std::string_view rule, int64_t wall_ms);
    const std::map<std::pair<std::string, std::string>, Alert>& active() const { return active_; }

    // Renderers. Latencies are shown in milliseconds with microsecond precision (JSON) and in
    // seconds (Prometheus).
    std::string metrics_json(const Gauges& g, int64_t now_us) const;
    std::string report_json(const Gauges& g, int64_t now_us) const;
    std::string alerts_json() const;
    std::string prometheus(const Gauges& g, int64_t now_us) const;

    uint64_t requests() const { return requests_; }

  private:
    struct OpStats {
        uint64_t count = 0;
        std::array<uint64_t, error_code_count> errors{};
        Histogram latency;
        WindowHistogram recent;
        WindowCounter recent_server_errors;
    };
    struct Condition {
        std::string rule;
        std::string subject;
        AlertLevel level;
        std::string message;
    };
    OpStats& stats_of(std::optional<Op> op) { return op ? ops_[static_cast<size_t>(*op)] : other_; }
    const OpStats& stats_at(size_t i) const { return i < op_count ? ops_[i] : other_; }
    std::vector<Condition> conditions(const Gauges& g, int64_t now_ms) const;
    void op_conditions(std::vector<Condition>& out, int64_t now_ms) const;
    void write_ops_json(class JsonWriter& w, int64_t now_ms) const;
    void write_storage_json(class JsonWriter& w, const Gauges& g, int64_t now_ms) const;
    void write_security_json(class JsonWriter& w, const Gauges& g) const;
    void retire(std::map<std::pair<std::string, std::string>, Alert>::iterator it, int64_t wall_ms,
                std::string how, std::vector<AlertNotice>* notices);
    void raise(std::map<std::pair<std::string, std::string>, Condition>& now_true, int64_t wall_ms,
               std::vector<AlertNotice>& notices);

    const Config& config_;
    std::array<OpStats, op_count> ops_{};
    OpStats other_;  // requests refused before their op was known
    uint64_t requests_ = 0;
    uint64_t accepted_ = 0;
    std::map<std::string, uint64_t> refused_;  // keys: the closed set of DISCONNECT reasons
    std::map<std::string, uint64_t> closed_;
    Histogram commit_latency_;
    WindowHistogram commit_recent_;
    Histogram batch_size_;
    uint64_t commits_failed_ = 0;
    // Alerts.
    std::map<std::pair<std::string, std::string>, Alert> active_;
    std::map<std::pair<std::string, std::string>, bool> acknowledged_;  // until it clears
    std::vector<Alert> history_;  // newest last, at most alert_history_max
    uint64_t next_alert_id_ = 1;
    int64_t breaker_open_since_ms_ = -1;
    uint64_t blocks_seen_ = 0;
    WindowCounter recent_blocks_;
    uint64_t failed_seen_ = 0;
    WindowCounter recent_failed_;
};

}  // namespace warren
