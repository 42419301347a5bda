// The server's side of security: carrying out the Guard's decisions (persist, audit, close
// connections), housekeeping on tick (login deadline, idle timeout, pruning), and the
// gauges monitoring reads. Decisions are made in guard.cc; this file only acts on them.
#include <algorithm>

#include "core/protocol/json_writer.h"
#include "core/server.h"

namespace warren {

std::string Server::user_name(UserId id) {
    const User* u = chat_.user(id);
    return u ? u->name : std::string();
}

// Security rows ride in the open batch without an undo: memory keeps the block whatever
// storage does (the server fails closed). While storage refuses writes they wait in a
// bounded backlog; a batch that fails hands its rows back to it.
void Server::persist(Mutation m) {
    WARREN_CHECK(!check_record(m).has_value());
    security_backlog_.push_back(std::move(m));
    while (security_backlog_.size() > config_.security_backlog_max) {
        security_backlog_.pop_front();
        ++audit_unpersisted_;
    }
    flush_security_backlog();
}

void Server::flush_security_backlog() {
    if (security_backlog_.empty()) return;
    if (breaker_.refuse_for(now_.mono_ms, !batches_.empty()) || batches_.full()) return;
    Batch& b = batches_.open();
    for (auto& m : security_backlog_) {
        b.security_rows.push_back(m);
        b.mutations.push_back(std::move(m));
    }
    security_backlog_.clear();
}

AuditRow Server::audit_row(std::string actor, std::string ip, std::string account,
                           std::string action, std::string reason, std::string details) {
    return AuditRow{next_audit_id_++,   now_.wall_ms,      std::move(actor),  std::move(ip),
                    std::move(account), std::move(action), std::move(reason), std::move(details)};
}

void Server::audit(std::string actor, std::string ip, std::string account, std::string action,
                   std::string reason, std::string details) {
    AuditRow row = audit_row(std::move(actor), std::move(ip), std::move(account), std::move(action),
                             std::move(reason), std::move(details));
    outputs_.push_back(Audit{row});
    persist(std::move(row));
}

void Server::close_ip(const std::string& ip_key, std::optional<int64_t> retry_after_ms) {
    for (auto& [id, c] : conns_)
        if (!c.closing && c.ip_key == ip_key) close_with(c, "BLOCKED", retry_after_ms);
}

void Server::close_user(UserId user, std::optional<int64_t> retry_after_ms) {
    const User* u = chat_.user(user);
    if (!u) return;
    std::vector<ConnId> ids(u->conns.begin(), u->conns.end());
    for (ConnId id : ids)
        if (Conn* c = conn(id)) close_with(*c, "BLOCKED", retry_after_ms);
}

namespace {
std::string until_details(int64_t until_ms, uint32_t offences) {
    JsonWriter w;
    w.begin_object().key("until_ts");
    if (until_ms)
        w.value(until_ms);
    else
        w.null();
    w.key("offences").value(static_cast<int64_t>(offences)).end_object();
    return w.str();
}
}  // namespace

void Server::carry_out_decisions() {
    for (SecurityDecision& d : guard_.take_decisions()) {
        switch (d.kind) {
            case SecurityDecision::Kind::ip_blocked: {
                std::optional<int64_t> retry;
                if (d.block.until_ms) retry = d.block.until_ms - now_.wall_ms;
                persist(d.block);
                audit("system", d.ip, "", "ip_blocked", d.reason,
                      until_details(d.block.until_ms, d.block.offences));
                close_ip(d.ip, retry);
                break;
            }
            case SecurityDecision::Kind::account_suspended: {
                std::optional<int64_t> retry;
                if (d.suspension.until_ms) retry = d.suspension.until_ms - now_.wall_ms;
                persist(d.suspension);
                audit("system", d.ip, user_name(d.user), "account_suspended", d.reason,
                      until_details(d.suspension.until_ms, d.suspension.offences));
                close_user(d.user, retry);
                break;
            }
            case SecurityDecision::Kind::name_locked:
                audit("system", d.ip, d.name, "name_locked", d.reason,
                      until_details(now_.wall_ms + config_.name_lock_ms, 0));
                break;
            case SecurityDecision::Kind::threat_level: {
                JsonWriter w;
                w.begin_object().key("level").value(threat_level_name(d.level)).end_object();
                audit("system", d.ip, d.user ? user_name(d.user) : "", "threat_level", d.reason,
                      w.str());
                break;
            }
        }
    }
}

void Server::sweep() {
    next_sweep_ms_ = now_.mono_ms + config_.sweep_interval_ms;
    for (auto& [id, c] : conns_) {
        if (c.closing || c.paused) continue;
        bool late_login = !c.user && now_.mono_ms - c.opened_ms >= config_.login_timeout_ms;
        bool idle = c.user && now_.mono_ms - c.active_ms >= config_.idle_timeout_ms;
        if (late_login || idle) close_with(c, "IDLE_TIMEOUT");
    }
    if (now_.mono_ms >= next_housekeeping_ms_) {
        next_housekeeping_ms_ = now_.mono_ms + 60'000;
        guard_.sweep(now_);
        chat_.drop_expired_sessions(now_.wall_ms);
    }
    if (now_.mono_ms >= next_prune_ms_) {
        next_prune_ms_ = now_.mono_ms + 3'600'000;
        if (next_audit_id_ > 1)
            persist(AuditPrune{now_.wall_ms - config_.audit_retention_ms, config_.audit_rows_max});
    }
}

Gauges Server::gauges() const {
    Gauges g;
    g.wall_ms = now_.wall_ms;
    g.connections_open = conns_.size();
    g.connections_max = config_.connections_max;
    g.sessions = chat_.session_count();
    g.users = chat_.users().size();
    g.online_users =
        static_cast<uint64_t>(std::count_if(chat_.users().begin(), chat_.users().end(),
                                            [](auto& kv) { return !kv.second.conns.empty(); }));
    g.rooms = chat_.room_count();
    g.messages_stored = chat_.committed_through();
    g.batches_queued = batches_.size();
    g.hash_jobs = hash_jobs_.size();
    g.queries = query_jobs_.size();
    g.breaker = breaker_state_name(breaker_.state(now_.mono_ms));
    g.breaker_opened = breaker_.opened_count();
    g.batches_committed = storage_stats_.batches_committed;
    g.batches_failed = storage_stats_.batches_failed;
    g.commit_retries = storage_stats_.commit_retries;
    g.writes_refused = storage_stats_.writes_refused;
    g.active_blocks = guard_.active_blocks(now_).size();
    g.active_suspensions = guard_.active_suspensions(now_).size();
    const Guard::Counters& k = guard_.counters();
    g.login_failures = k.login_failures;
    g.rate_limited = k.rate_limited;
    g.bad_frames = k.bad_frames;
    g.signatures = k.signatures;
    g.blocks_total = k.blocks;
    g.suspensions_total = k.suspensions;
    g.name_locks = k.name_locks;
    g.audit_unpersisted = audit_unpersisted_;
    g.rss_bytes = process_.rss_bytes;
    g.cpu_seconds = process_.cpu_seconds;
    g.open_files = process_.open_files;
    g.hash_queue_depth = process_.hash_queue_depth;
    g.storage_queue_depth = process_.storage_queue_depth;
    return g;
}

void Server::process_stats(const ProcessStats& stats, Time now) {
    begin_input(now);
    process_ = stats;
    end_input();
}

}  // namespace warren
