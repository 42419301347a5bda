#include "core/monitor/monitor.h"

#include <algorithm>
#include <cstdio>

#include "core/protocol/json_writer.h"

namespace warren {

namespace {

constexpr int64_t ms_of(int64_t now_us) {
    return now_us / 1000;
}

std::string op_label(size_t i) {
    return i < op_count ? std::string(op_name(static_cast<Op>(i))) : std::string("UNKNOWN");
}

std::string fixed(double v, int decimals = 3) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
    return buf;
}

// Microseconds as milliseconds with three decimals: 1234 -> "1.234".
std::string us_as_ms(int64_t us) {
    return fixed(static_cast<double>(us) / 1000);
}

// A bucket bound in µs as Prometheus `le` seconds, without trailing zeros: 10 -> "0.00001".
std::string le_seconds(int64_t us) {
    std::string s = fixed(static_cast<double>(us) / 1e6, 6);
    while (s.back() == '0') s.pop_back();
    if (s.back() == '.') s.pop_back();
    return s;
}

void write_latency(JsonWriter& w, const Histogram& h) {
    w.begin_object().key("count").value(static_cast<int64_t>(h.count()));
    w.key("p50").raw(us_as_ms(h.percentile(0.50))).key("p90").raw(us_as_ms(h.percentile(0.90)));
    w.key("p99").raw(us_as_ms(h.percentile(0.99))).key("max").raw(us_as_ms(h.max()));
    w.end_object();
}

void write_sizes(JsonWriter& w, const Histogram& h) {
    w.begin_object().key("count").value(static_cast<int64_t>(h.count()));
    w.key("p50").value(h.percentile(0.50)).key("p90").value(h.percentile(0.90));
    w.key("p99").value(h.percentile(0.99)).key("max").value(h.max()).end_object();
}

// Prometheus text exposition, appended to one string.
class Exposition {
  public:
    void help(std::string_view name, std::string_view type, std::string_view text) {
        out_ += "# HELP ";
        out_ += name;
        out_ += ' ';
        out_ += text;
        out_ += "\n# TYPE ";
        out_ += name;
        out_ += ' ';
        out_ += type;
        out_ += '\n';
    }
    void line(std::string_view name, std::string_view labels, const std::string& value) {
        out_ += name;
        if (!labels.empty()) {
            out_ += '{';
            out_ += labels;
            out_ += '}';
        }
        out_ += ' ';
        out_ += value;
        out_ += '\n';
    }
    void gauge(std::string_view name, std::string_view text, uint64_t v) {
        help(name, "gauge", text);
        line(name, "", std::to_string(v));
    }
    void counter(std::string_view name, std::string_view text, uint64_t v) {
        help(name, "counter", text);
        line(name, "", std::to_string(v));
    }
    // The buckets, sum and count of one histogram series; `seconds`: values are µs, shown in
    // seconds; otherwise they are counts.
    void histogram(std::string_view name, const std::string& labels, const Histogram& h,
                   bool seconds) {
        std::string bucket = std::string(name) + "_bucket";
        std::string sep = labels.empty() ? "" : ",";
        for (size_t b = 0; b < Histogram::bounds.size(); ++b) {
            int64_t bound = Histogram::bounds[b];
            if (!Histogram::exposed(bound)) continue;
            std::string le = labels;
            le += sep;
            le += "le=\"";
            le += seconds ? le_seconds(bound) : std::to_string(bound);
            le += '"';
            line(bucket, le, std::to_string(h.cumulative(b)));
        }
        line(bucket, labels + sep + "le=\"+Inf\"", std::to_string(h.count()));
        line(std::string(name) + "_sum", labels,
             seconds ? fixed(static_cast<double>(h.sum()) / 1e6, 6) : std::to_string(h.sum()));
        line(std::string(name) + "_count", labels, std::to_string(h.count()));
    }
    std::string take() { return std::move(out_); }

  private:
    std::string out_;
};

}  // namespace

std::string_view alert_level_name(AlertLevel l) {
    switch (l) {
        case AlertLevel::info:
            return "info";
        case AlertLevel::warning:
            return "warning";
        case AlertLevel::critical:
            return "critical";
        case AlertLevel::emergency:
            return "emergency";
    }
    return "info";
}

Monitor::Monitor(const Config& config) : config_(config) {}

void Monitor::request_done(std::optional<Op> op, std::optional<ErrorCode> error, int64_t latency_us,
                           int64_t now_us) {
    OpStats& s = stats_of(op);
    ++requests_;
    ++s.count;
    s.latency.record(latency_us);
    s.recent.record(latency_us, ms_of(now_us));
    bool server_error = false;
    if (error) {
        ++s.errors[static_cast<size_t>(*error)];
        server_error = *error == ErrorCode::unavailable || *error == ErrorCode::internal;
    }
    s.recent_server_errors.add(server_error ? 1 : 0, ms_of(now_us));
}

void Monitor::commit_done(bool ok, int64_t latency_us, size_t mutations, int64_t now_us) {
    commit_latency_.record(latency_us);
    commit_recent_.record(latency_us, ms_of(now_us));
    batch_size_.record(static_cast<int64_t>(mutations));
    if (!ok) ++commits_failed_;
}

// ---- alerts -------------------------------------------------------------------------------

void Monitor::op_conditions(std::vector<Condition>& out, int64_t now_ms) const {
    for (size_t i = 0; i < op_count; ++i) {
        Histogram h = ops_[i].recent.window(now_ms);
        if (h.count() < config_.alert_min_samples) continue;
        int64_t p99_us = h.percentile(0.99);
        std::string op = op_label(i);
        std::string latency =
            op + " p99 latency " + std::to_string(p99_us / 1000) + " ms over the last minute";
        if (p99_us > us_from_ms(config_.alert_p99_critical_ms))
            out.push_back({"latency_p99", op, AlertLevel::critical, latency});
        else if (p99_us > us_from_ms(config_.alert_p99_warning_ms))
            out.push_back({"latency_p99", op, AlertLevel::warning, latency});
        uint64_t errors = ops_[i].recent_server_errors.sum(now_ms);
        if (errors * 100 > h.count() * config_.alert_error_rate_pct)
            out.push_back({"error_rate", op, AlertLevel::warning,
                           op + ": " + std::to_string(errors) + " of " + std::to_string(h.count()) +
                               " requests failed on the server side in the last minute"});
    }
}

std::vector<Monitor::Condition> Monitor::conditions(const Gauges& g, int64_t now_ms) const {
    std::vector<Condition> out;
    op_conditions(out, now_ms);
    if (g.breaker != "closed") {
        bool long_open = breaker_open_since_ms_ >= 0 &&
                         now_ms - breaker_open_since_ms_ >= config_.alert_breaker_emergency_ms;
        out.push_back(
            {"breaker_open", "", long_open ? AlertLevel::emergency : AlertLevel::critical,
             "storage circuit breaker is " + std::string(g.breaker) + ": writes are refused"});
    }
    if (g.storage_corrupt)
        out.push_back({"storage_corrupt", "", AlertLevel::emergency,
                       "the database is corrupt: writes are stopped; repair or restore it from a "
                       "backup, then restart"});
    if (recent_failed_.sum(now_ms) > 0)
        out.push_back({"storage_failing", "", AlertLevel::critical,
                       "storage commits failed and were rolled back in the last minute"});
    if (g.connections_max > 0 &&
        g.connections_open * 100 >= g.connections_max * config_.alert_connections_pct)
        out.push_back({"connections_near_cap", "", AlertLevel::warning,
                       std::to_string(g.connections_open) + " of " +
                           std::to_string(g.connections_max) + " connections open"});
    if (g.rss_bytes > config_.alert_rss_bytes)
        out.push_back({"memory", "", AlertLevel::warning,
                       "resident memory " + std::to_string(g.rss_bytes / (1024 * 1024)) + " MiB"});
    uint64_t blocks = recent_blocks_.sum(now_ms);
    if (blocks >= config_.alert_block_surge)
        out.push_back({"block_surge", "", AlertLevel::warning,
                       std::to_string(blocks) + " IP blocks in the last minute"});
    return out;
}

void Monitor::retire(std::map<std::pair<std::string, std::string>, Alert>::iterator it,
                     int64_t wall_ms, std::string how, std::vector<AlertNotice>* notices) {
    Alert a = std::move(it->second);
    active_.erase(it);
    a.resolved_ms = wall_ms;
    a.how_resolved = std::move(how);
    if (notices)
        notices->push_back({AlertLevel::info, "alert resolved (" + a.how_resolved + "): " + a.rule +
                                                  (a.subject.empty() ? "" : " " + a.subject)});
    history_.push_back(std::move(a));
    if (history_.size() > config_.alert_history_max) history_.erase(history_.begin());
}

// Raises what newly holds; a change of level updates the active alert (never a duplicate).
void Monitor::raise(std::map<std::pair<std::string, std::string>, Condition>& now_true,
                    int64_t wall_ms, std::vector<AlertNotice>& notices) {
    for (auto& [key, c] : now_true) {
        if (acknowledged_.contains(key)) continue;
        auto it = active_.find(key);
        if (it != active_.end()) {
            if (it->second.level != c.level) {
                it->second.level = c.level;
                notices.push_back({c.level, "alert " + std::string(alert_level_name(c.level)) +
                                                ": " + c.message});
            }
            it->second.message = c.message;
            continue;
        }
        Alert a{next_alert_id_++, c.rule, c.subject, c.level, c.message, wall_ms, 0, {}};
        notices.push_back({c.level, "alert raised, " + std::string(alert_level_name(c.level)) +
                                        ": " + c.message});
        active_.emplace(key, std::move(a));
    }
}

std::vector<AlertNotice> Monitor::evaluate(const Gauges& g, int64_t now_us) {
    int64_t now_ms = ms_of(now_us);
    // Turn running totals into per-minute windows.
    recent_blocks_.add(g.blocks_total - std::min(blocks_seen_, g.blocks_total), now_ms);
    blocks_seen_ = g.blocks_total;
    recent_failed_.add(g.batches_failed - std::min(failed_seen_, g.batches_failed), now_ms);
    failed_seen_ = g.batches_failed;
    if (g.breaker == "closed")
        breaker_open_since_ms_ = -1;
    else if (breaker_open_since_ms_ < 0)
        breaker_open_since_ms_ = now_ms;

    std::vector<AlertNotice> notices;
    std::map<std::pair<std::string, std::string>, Condition> now_true;
    for (auto& c : conditions(g, now_ms)) now_true[{c.rule, c.subject}] = std::move(c);
    for (auto it = active_.begin(); it != active_.end();) {
        auto next = std::next(it);
        if (!now_true.contains(it->first)) retire(it, g.wall_ms, "cleared", &notices);
        it = next;
    }
    std::erase_if(acknowledged_, [&](const auto& kv) { return !now_true.contains(kv.first); });
    raise(now_true, g.wall_ms, notices);
    return notices;
}

size_t Monitor::acknowledge(std::string_view rule, int64_t wall_ms) {
    size_t n = 0;
    for (auto it = active_.begin(); it != active_.end();) {
        auto next = std::next(it);
        if (rule.empty() || it->first.first == rule) {
            acknowledged_[it->first] = true;
            retire(it, wall_ms, "acknowledged", nullptr);
            ++n;
        }
        it = next;
    }
    return n;
}

// ---- JSON renderers ---------------------------------------------------------------------------

void Monitor::write_ops_json(JsonWriter& w, int64_t now_ms) const {
    w.key("ops").begin_object();
    for (size_t i = 0; i <= op_count; ++i) {
        const OpStats& s = stats_at(i);
        if (s.count == 0) continue;
        w.key(op_label(i)).begin_object();
        w.key("count").value(static_cast<int64_t>(s.count));
        w.key("errors").begin_object();
        for (size_t e = 0; e < error_code_count; ++e)
            if (s.errors[e])
                w.key(error_code_name(static_cast<ErrorCode>(e)))
                    .value(static_cast<int64_t>(s.errors[e]));
        w.end_object();
        w.key("latency_ms");
        write_latency(w, s.latency);
        w.key("last_minute_latency_ms");
        write_latency(w, s.recent.window(now_ms));
        w.end_object();
    }
    w.end_object();
}

void Monitor::write_storage_json(JsonWriter& w, const Gauges& g, int64_t now_ms) const {
    w.key("storage").begin_object();
    w.key("commit_latency_ms");
    write_latency(w, commit_latency_);
    w.key("last_minute_commit_latency_ms");
    write_latency(w, commit_recent_.window(now_ms));
    w.key("batch_size");
    write_sizes(w, batch_size_);
    w.key("batches_queued").value(static_cast<int64_t>(g.batches_queued));
    w.key("queue_depth").value(static_cast<int64_t>(g.storage_queue_depth));
    w.key("batches_committed").value(static_cast<int64_t>(g.batches_committed));
    w.key("batches_failed").value(static_cast<int64_t>(g.batches_failed));
    w.key("commit_retries").value(static_cast<int64_t>(g.commit_retries));
    w.key("writes_refused").value(static_cast<int64_t>(g.writes_refused));
    w.key("breaker").value(g.breaker);
    w.key("breaker_opened").value(static_cast<int64_t>(g.breaker_opened));
    w.key("retention_deleted").value(static_cast<int64_t>(g.retention_deleted));
    w.key("retention_failures").value(static_cast<int64_t>(g.retention_failures));
    w.end_object();
}

void Monitor::write_security_json(JsonWriter& w, const Gauges& g) const {
    w.key("security").begin_object();
    w.key("active_blocks").value(static_cast<int64_t>(g.active_blocks));
    w.key("active_suspensions").value(static_cast<int64_t>(g.active_suspensions));
    w.key("blocks_total").value(static_cast<int64_t>(g.blocks_total));
    w.key("suspensions_total").value(static_cast<int64_t>(g.suspensions_total));
    w.key("login_failures").value(static_cast<int64_t>(g.login_failures));
    w.key("name_locks").value(static_cast<int64_t>(g.name_locks));
    w.key("rate_limited").value(static_cast<int64_t>(g.rate_limited));
    w.key("bad_frames").value(static_cast<int64_t>(g.bad_frames));
    w.key("signatures").value(static_cast<int64_t>(g.signatures));
    w.key("audit_unpersisted").value(static_cast<int64_t>(g.audit_unpersisted));
    w.end_object();
}

std::string Monitor::metrics_json(const Gauges& g, int64_t now_us) const {
    int64_t now_ms = ms_of(now_us);
    JsonWriter w;
    w.begin_object().key("requests").value(static_cast<int64_t>(requests_));
    write_ops_json(w, now_ms);
    w.key("connections").begin_object();
    w.key("open").value(static_cast<int64_t>(g.connections_open));
    w.key("max").value(static_cast<int64_t>(g.connections_max));
    w.key("accepted").value(static_cast<int64_t>(accepted_));
    w.key("refused").begin_object();
    for (const auto& [reason, n] : refused_) w.key(reason).value(static_cast<int64_t>(n));
    w.end_object().key("closed_by_server").begin_object();
    for (const auto& [reason, n] : closed_) w.key(reason).value(static_cast<int64_t>(n));
    w.end_object().end_object();
    w.key("sessions").value(static_cast<int64_t>(g.sessions));
    w.key("online_users").value(static_cast<int64_t>(g.online_users));
    w.key("users").value(static_cast<int64_t>(g.users));
    w.key("rooms").value(static_cast<int64_t>(g.rooms));
    w.key("messages_stored").value(g.messages_stored);
    write_storage_json(w, g, now_ms);
    w.key("hashing").begin_object();
    w.key("jobs").value(static_cast<int64_t>(g.hash_jobs));
    w.key("queue_depth").value(static_cast<int64_t>(g.hash_queue_depth)).end_object();
    write_security_json(w, g);
    w.key("process").begin_object();
    w.key("rss_bytes").value(static_cast<int64_t>(g.rss_bytes));
    w.key("cpu_seconds").raw(fixed(g.cpu_seconds));
    w.key("open_files").value(static_cast<int64_t>(g.open_files)).end_object();
    w.key("alerts_active").value(static_cast<int64_t>(active_.size()));
    w.end_object();
    return w.take_line();
}

std::string Monitor::report_json(const Gauges& g, int64_t now_us) const {
    int64_t now_ms = ms_of(now_us);
    // The slowest ops over the last minute, and the server-side error share of each.
    std::vector<std::pair<int64_t, size_t>> slow;
    for (size_t i = 0; i < op_count; ++i) {
        Histogram h = ops_[i].recent.window(now_ms);
        if (h.count()) slow.emplace_back(h.percentile(0.99), i);
    }
    std::sort(slow.begin(), slow.end(), [](auto& a, auto& b) {
        return a.first != b.first ? a.first > b.first : a.second < b.second;
    });
    JsonWriter w;
    w.begin_object().key("requests_total").value(static_cast<int64_t>(requests_));
    w.key("slowest_last_minute").begin_array();
    for (size_t k = 0; k < slow.size() && k < 5; ++k) {
        size_t i = slow[k].second;
        w.begin_object().key("op").value(op_label(i));
        w.key("count").value(static_cast<int64_t>(ops_[i].recent.window(now_ms).count()));
        w.key("p99_ms").raw(us_as_ms(slow[k].first));
        w.key("server_errors")
            .value(static_cast<int64_t>(ops_[i].recent_server_errors.sum(now_ms)));
        w.end_object();
    }
    w.end_array();
    w.key("storage").begin_object().key("breaker").value(g.breaker);
    w.key("commit_p99_ms").raw(us_as_ms(commit_recent_.window(now_ms).percentile(0.99)));
    w.key("batches_failed").value(static_cast<int64_t>(g.batches_failed)).end_object();
    w.key("connections_open").value(static_cast<int64_t>(g.connections_open));
    w.key("online_users").value(static_cast<int64_t>(g.online_users));
    w.key("active_blocks").value(static_cast<int64_t>(g.active_blocks));
    w.key("alerts_active").begin_array();
    for (const auto& [key, a] : active_)
        w.value(a.rule + (a.subject.empty() ? "" : ":" + a.subject));
    w.end_array();
    w.key("status").value(active_.empty() ? "ok" : "degraded");
    w.end_object();
    return w.take_line();
}

std::string Monitor::alerts_json() const {
    auto write = [](JsonWriter& w, const Alert& a) {
        w.begin_object().key("id").value(static_cast<int64_t>(a.id)).key("rule").value(a.rule);
        w.key("subject").value(a.subject).key("level").value(alert_level_name(a.level));
        w.key("message").value(a.message).key("raised_ts").value(a.raised_ms);
        if (a.resolved_ms)
            w.key("resolved_ts").value(a.resolved_ms).key("resolution").value(a.how_resolved);
        w.end_object();
    };
    JsonWriter w;
    w.begin_object().key("active").begin_array();
    for (const auto& [key, a] : active_) write(w, a);
    w.end_array().key("history").begin_array();
    for (auto it = history_.rbegin(); it != history_.rend(); ++it) write(w, *it);
    w.end_array().end_object();
    return w.take_line();
}

// ---- Prometheus ---------------------------------------------------------------------------

namespace {

void expose_storage(Exposition& x, const Gauges& g) {
    x.gauge("warren_storage_batches_queued", "Batches waiting or in flight in the core.",
            g.batches_queued);
    x.gauge("warren_storage_queue_depth", "Jobs waiting for the storage thread.",
            g.storage_queue_depth);
    x.counter("warren_storage_batches_committed_total", "Batches committed.", g.batches_committed);
    x.counter("warren_storage_batches_failed_total", "Batches rolled back.", g.batches_failed);
    x.counter("warren_storage_commit_retries_total", "Commit retries after transient failures.",
              g.commit_retries);
    x.counter("warren_storage_writes_refused_total",
              "Writes refused (breaker open or queues full).", g.writes_refused);
    x.counter("warren_retention_deleted_total", "Messages deleted for their age (retention).",
              g.retention_deleted);
    x.counter("warren_retention_failures_total", "Retention deletions storage refused.",
              g.retention_failures);
    x.help("warren_storage_breaker_state", "gauge", "1 for the circuit breaker's current state.");
    for (std::string_view st : {"closed", "open", "half_open"})
        x.line("warren_storage_breaker_state", "state=\"" + std::string(st) + "\"",
               g.breaker == st ? "1" : "0");
    x.gauge("warren_hash_jobs", "Password hash jobs in the core.", g.hash_jobs);
    x.gauge("warren_hash_queue_depth", "Jobs waiting for a hashing thread.", g.hash_queue_depth);
}

void expose_security(Exposition& x, const Gauges& g) {
    x.gauge("warren_security_active_blocks", "IP blocks in force.", g.active_blocks);
    x.gauge("warren_security_active_suspensions", "Account suspensions in force.",
            g.active_suspensions);
    x.counter("warren_security_blocks_total", "Automatic IP blocks.", g.blocks_total);
    x.counter("warren_security_suspensions_total", "Automatic account suspensions.",
              g.suspensions_total);
    x.counter("warren_security_login_failures_total", "Failed password logins.", g.login_failures);
    x.counter("warren_security_name_locks_total", "Login names locked after failures.",
              g.name_locks);
    x.counter("warren_security_rate_limited_total", "Requests refused by rate limits.",
              g.rate_limited);
    x.counter("warren_security_bad_frames_total", "Malformed frames.", g.bad_frames);
    x.counter("warren_security_signatures_total", "Requests refused for attack signatures.",
              g.signatures);
}

void expose_process(Exposition& x, const Gauges& g) {
    x.gauge("warren_sessions", "Unexpired sessions.", g.sessions);
    x.gauge("warren_online_users", "Users with at least one logged-in connection.", g.online_users);
    x.gauge("warren_users", "Registered accounts.", g.users);
    x.gauge("warren_rooms", "Rooms.", g.rooms);
    x.gauge("warren_messages_stored", "Highest durable message id.",
            static_cast<uint64_t>(g.messages_stored));
    x.gauge("warren_process_resident_memory_bytes", "Resident set size.", g.rss_bytes);
    x.help("warren_process_cpu_seconds_total", "counter", "CPU time used by the process.");
    x.line("warren_process_cpu_seconds_total", "", fixed(g.cpu_seconds));
    x.gauge("warren_process_open_fds", "Open file descriptors.", g.open_files);
}

}  // namespace

std::string Monitor::prometheus(const Gauges& g, int64_t now_us) const {
    Exposition x;
    auto op_label_of = [](size_t i) { return "op=\"" + op_label(i) + "\""; };
    x.help("warren_requests_total", "counter", "Requests answered, by op.");
    for (size_t i = 0; i <= op_count; ++i)
        if (stats_at(i).count)
            x.line("warren_requests_total", op_label_of(i), std::to_string(stats_at(i).count));
    x.help("warren_request_errors_total", "counter",
           "Requests answered with an error, by op and code.");
    for (size_t i = 0; i <= op_count; ++i)
        for (size_t e = 0; e < error_code_count; ++e)
            if (stats_at(i).errors[e])
                x.line("warren_request_errors_total",
                       op_label_of(i) + ",code=\"" +
                           std::string(error_code_name(static_cast<ErrorCode>(e))) + "\"",
                       std::to_string(stats_at(i).errors[e]));
    x.help("warren_request_latency_seconds", "histogram",
           "Time from a request's arrival to the release of its reply.");
    for (size_t i = 0; i <= op_count; ++i)
        if (stats_at(i).count)
            x.histogram("warren_request_latency_seconds", op_label_of(i), stats_at(i).latency,
                        true);
    x.help("warren_request_latency_p99_seconds", "gauge",
           "p99 request latency over the last minute, by op.");
    for (size_t i = 0; i < op_count; ++i) {
        Histogram h = ops_[i].recent.window(ms_of(now_us));
        if (h.count())
            x.line("warren_request_latency_p99_seconds", op_label_of(i),
                   fixed(static_cast<double>(h.percentile(0.99)) / 1e6, 6));
    }
    x.gauge("warren_connections_open", "Connections open now.", g.connections_open);
    x.counter("warren_connections_accepted_total", "Connections accepted.", accepted_);
    x.help("warren_connections_refused_total", "counter",
           "Connections refused at accept, by reason.");
    for (const auto& [reason, n] : refused_)
        x.line("warren_connections_refused_total", "reason=\"" + reason + "\"", std::to_string(n));
    x.help("warren_connections_closed_total", "counter",
           "Connections closed by the server, by reason.");
    for (const auto& [reason, n] : closed_)
        x.line("warren_connections_closed_total", "reason=\"" + reason + "\"", std::to_string(n));
    expose_process(x, g);
    x.help("warren_commit_latency_seconds", "histogram",
           "Storage commit latency (batch sent to durable).");
    x.histogram("warren_commit_latency_seconds", "", commit_latency_, true);
    x.help("warren_batch_mutations", "histogram", "Mutations per committed batch.");
    x.histogram("warren_batch_mutations", "", batch_size_, false);
    expose_storage(x, g);
    expose_security(x, g);
    x.help("warren_alerts_active", "gauge", "Active alerts, by level.");
    for (AlertLevel l :
         {AlertLevel::info, AlertLevel::warning, AlertLevel::critical, AlertLevel::emergency}) {
        auto n = std::count_if(active_.begin(), active_.end(),
                               [&](auto& kv) { return kv.second.level == l; });
        x.line("warren_alerts_active", "level=\"" + std::string(alert_level_name(l)) + "\"",
               std::to_string(n));
    }
    return x.take();
}

}  // namespace warren
