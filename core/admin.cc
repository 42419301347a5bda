// The admin API as Server members (ARCHITECTURE.md: `admin(request, now)`). Reads answer at
// once; actions (block, unblock, suspend, unsuspend) take effect in memory at once (open
// connections included) and answer after their commit, together with their audit row. If
// the commit fails, the action is undone and the answer is 503. Statuses follow HTTP, since
// the one caller is the HTTP adapter: 200, 400, 404, 409, 503.
#include "core/protocol/json_writer.h"
#include "core/security/address.h"
#include "core/server.h"
#include "core/validate/rules.h"

namespace warren {

namespace {

void write_until(JsonWriter& w, int64_t until_ms) {
    w.key("until_ts");
    if (until_ms)
        w.value(until_ms);
    else
        w.null();
}

void write_block(JsonWriter& w, const BlockRow& b) {
    w.begin_object().key("ip").value(b.ip).key("since_ts").value(b.since_ms);
    write_until(w, b.until_ms);
    w.key("offences").value(static_cast<int64_t>(b.offences)).key("reason").value(b.reason);
    w.end_object();
}

std::string body_of(JsonWriter& w) {
    std::string s = w.take_line();
    s.pop_back();
    return s;
}

}  // namespace

AdminId Server::admin(const AdminRequest& q, Time now) {
    begin_input(now);
    AdminId id = next_admin_++;
    using K = AdminRequest::Kind;
    switch (q.kind) {
        case K::blocks:
            admin_blocks(id);
            break;
        case K::block:
            admin_block(id, q);
            break;
        case K::unblock:
            admin_unblock(id, q);
            break;
        case K::suspend:
            admin_suspend(id, q);
            break;
        case K::unsuspend:
            admin_unsuspend(id, q);
            break;
        case K::audit:
            admin_audit(id, q);
            break;
        case K::metrics:
            admin_reply(id, 200, monitor_.metrics_json(gauges(), now_.mono_ms));
            break;
        case K::report:
            admin_reply(id, 200, monitor_.report_json(gauges(), now_.mono_ms));
            break;
        case K::alerts:
            admin_reply(id, 200, monitor_.alerts_json());
            break;
        case K::clear_alerts: {
            JsonWriter w;
            size_t n = monitor_.acknowledge(q.rule, now_.wall_ms);
            w.begin_object().key("cleared").value(static_cast<int64_t>(n)).end_object();
            admin_reply(id, 200, body_of(w));
            break;
        }
        case K::prometheus:
            admin_reply(id, 200, monitor_.prometheus(gauges(), now_.mono_ms),
                        "text/plain; version=0.0.4; charset=utf-8");
            break;
        case K::health:
            admin_reply(id, 200, R"({"status":"ok"})");
            break;
        case K::ready: {
            Breaker::State st = breaker_.state(now_.mono_ms);
            if (shutting_down_)
                admin_reply(id, 503, R"({"status":"not ready","reason":"shutting down"})");
            else if (st != Breaker::State::closed)
                admin_reply(id, 503, R"({"status":"not ready","reason":"storage unavailable"})");
            else
                admin_reply(id, 200, R"({"status":"ready"})");
            break;
        }
    }
    end_input();
    return id;
}

void Server::admin_reply(AdminId id, int status, std::string body, std::string_view content_type) {
    outputs_.push_back(AdminReply{id, status, std::move(body), content_type});
}

void Server::admin_error(AdminId id, int status, std::string_view message) {
    JsonWriter w;
    w.begin_object().key("error").begin_object().key("status").value(int64_t{status});
    w.key("message").value(message).end_object().end_object();
    admin_reply(id, status, body_of(w));
}

bool Server::admin_commit(AdminId id, std::vector<Mutation> rows, std::string body, Undo undo) {
    if (breaker_.refuse_for(now_.mono_ms, !batches_.empty()) || batches_.full()) {
        undo();
        admin_error(id, 503, "storage unavailable; nothing was changed");
        return false;
    }
    Batch& b = batches_.open();
    for (auto& m : rows) {
        WARREN_CHECK(!check_record(m).has_value());
        if (auto* a = std::get_if<AuditRow>(&m)) outputs_.push_back(Audit{*a});
        b.mutations.push_back(std::move(m));
    }
    b.undo.push_back(std::move(undo));
    b.admin_replies.emplace_back(id, std::move(body));
    return true;
}

void Server::admin_blocks(AdminId id) {
    JsonWriter w;
    w.begin_object().key("blocks").begin_array();
    for (const BlockRow& b : guard_.active_blocks(now_)) write_block(w, b);
    w.end_array().key("suspensions").begin_array();
    for (const SuspensionRow& s : guard_.active_suspensions(now_)) {
        w.begin_object().key("username").value(user_name(s.user));
        w.key("since_ts").value(s.since_ms);
        write_until(w, s.until_ms);
        w.key("offences").value(static_cast<int64_t>(s.offences)).key("reason").value(s.reason);
        w.end_object();
    }
    w.end_array().end_object();
    admin_reply(id, 200, body_of(w));
}

void Server::admin_block(AdminId id, const AdminRequest& q) {
    if (!parse_ip(q.ip)) return admin_error(id, 400, "ip must be an IPv4 or IPv6 address");
    if (q.duration_ms && *q.duration_ms <= 0)
        return admin_error(id, 400, "duration_ms must be positive (omit it to block until lifted)");
    std::string key = address_key(q.ip);
    if (guard_.allowlisted(key)) return admin_error(id, 409, "the address is allowlisted");
    std::optional<BlockRow> previous = guard_.block_row(key);
    BlockRow row = guard_.block(key, q.duration_ms, q.reason.empty() ? "admin" : q.reason, now_);
    std::optional<int64_t> retry;
    if (row.until_ms) retry = row.until_ms - now_.wall_ms;
    close_ip(key, retry);
    JsonWriter w;
    w.begin_object().key("block");
    write_block(w, row);
    w.end_object();
    std::string body = body_of(w);
    JsonWriter d;
    write_block(d, row);
    admin_commit(id, {row, audit_row("admin", key, "", "ip_blocked", row.reason, d.str())},
                 std::move(body), [this, key, previous] { guard_.restore_block(key, previous); });
}

void Server::admin_unblock(AdminId id, const AdminRequest& q) {
    if (!parse_ip(q.ip) && q.ip.find('/') == std::string::npos)
        return admin_error(id, 400, "ip must be an IPv4 or IPv6 address");
    std::string key = q.ip.find('/') == std::string::npos ? address_key(q.ip) : q.ip;
    std::optional<BlockRow> previous = guard_.block_row(key);
    std::optional<BlockRow> row = guard_.unblock(key, now_);
    if (!row) return admin_error(id, 404, "no block in force for " + key);
    JsonWriter w;
    w.begin_object().key("unblocked").value(key).end_object();
    admin_commit(id, {*row, audit_row("admin", key, "", "ip_unblocked", q.reason)}, body_of(w),
                 [this, key, previous] { guard_.restore_block(key, previous); });
}

void Server::admin_suspend(AdminId id, const AdminRequest& q) {
    if (q.duration_ms && *q.duration_ms <= 0)
        return admin_error(id, 400,
                           "duration_ms must be positive (omit it to suspend until lifted)");
    User* u = chat_.find_user(q.username);
    if (!u) return admin_error(id, 404, "no user named '" + q.username + "'");
    std::optional<SuspensionRow> previous = guard_.suspension_row(u->id);
    SuspensionRow row =
        guard_.suspend(u->id, q.duration_ms, q.reason.empty() ? "admin" : q.reason, now_);
    std::optional<int64_t> retry;
    if (row.until_ms) retry = row.until_ms - now_.wall_ms;
    close_user(u->id, retry);
    JsonWriter w;
    w.begin_object().key("suspension").begin_object().key("username").value(u->name);
    w.key("since_ts").value(row.since_ms);
    write_until(w, row.until_ms);
    w.key("offences").value(static_cast<int64_t>(row.offences)).key("reason").value(row.reason);
    w.end_object().end_object();
    admin_commit(id, {row, audit_row("admin", "", u->name, "account_suspended", row.reason)},
                 body_of(w),
                 [this, user = u->id, previous] { guard_.restore_suspension(user, previous); });
}

void Server::admin_unsuspend(AdminId id, const AdminRequest& q) {
    User* u = chat_.find_user(q.username);
    if (!u) return admin_error(id, 404, "no user named '" + q.username + "'");
    std::optional<SuspensionRow> previous = guard_.suspension_row(u->id);
    std::optional<SuspensionRow> row = guard_.unsuspend(u->id, now_);
    if (!row) return admin_error(id, 404, u->name + " is not suspended");
    JsonWriter w;
    w.begin_object().key("unsuspended").value(u->name).end_object();
    admin_commit(id, {*row, audit_row("admin", "", u->name, "account_unsuspended", q.reason)},
                 body_of(w),
                 [this, user = u->id, previous] { guard_.restore_suspension(user, previous); });
}

void Server::admin_audit(AdminId id, const AdminRequest& q) {
    if (q.before < 0) return admin_error(id, 400, "before must be an audit id");
    if (query_jobs_.size() >= config_.queries_max) return admin_error(id, 503, "server busy");
    QueryJob job;
    job.kind = StoredQuery::Kind::audit;
    job.admin = id;
    StoredQuery what;
    what.audit_before = q.before;
    what.limit = std::clamp<uint32_t>(q.limit, 1, config_.audit_page_max);
    job.limit = what.limit;
    emit_query(std::move(job), std::move(what));
}

void Server::answer_audit(const QueryJob& job, const QueryRows& rows) {
    if (!rows.ok) return admin_error(job.admin, 503, "storage unavailable");
    JsonWriter w;
    w.begin_object().key("entries").begin_array();
    for (const AuditRow& a : rows.audit) {
        w.begin_object().key("id").value(a.id).key("ts").value(a.ts_ms);
        w.key("actor").value(a.actor).key("ip").value(a.ip).key("account").value(a.account);
        w.key("action").value(a.action).key("reason").value(a.reason).key("details");
        if (a.details.empty())
            w.null();
        else
            w.raw(a.details);
        w.end_object();
    }
    w.end_array().key("next_before");
    if (rows.audit.size() == job.limit && !rows.audit.empty())
        w.value(rows.audit.back().id);
    else
        w.null();
    w.end_object();
    admin_reply(job.admin, 200, body_of(w));
}

}  // namespace warren
