#include "core/admin/admin.h"

#include <algorithm>
#include <cstdio>

#include "core/civil.h"
#include "core/protocol/json_writer.h"
#include "core/security/address.h"
#include "core/validate/rules.h"

namespace warren {

namespace {

void write_block(JsonWriter& w, const BlockRow& b) {
    w.begin_object().key("ip").value(b.ip).key("since_ts").value(b.since_ms);
    w.key("until_ts").value_or_null(b.until_ms);
    w.key("offences").value(static_cast<int64_t>(b.offences)).key("reason").value(b.reason);
    w.end_object();
}

void write_suspension(JsonWriter& w, std::string_view username, const SuspensionRow& s) {
    w.begin_object().key("username").value(username).key("since_ts").value(s.since_ms);
    w.key("until_ts").value_or_null(s.until_ms);
    w.key("offences").value(static_cast<int64_t>(s.offences)).key("reason").value(s.reason);
    w.end_object();
}

std::string body_of(JsonWriter& w) {
    std::string s = w.take_line();
    s.pop_back();
    return s;
}

// "YYYYMMDD-HHMMSS" in UTC.
std::string utc_stamp(int64_t wall_ms) {
    CivilTime t = civil_utc(wall_ms);
    char buf[96];
    std::snprintf(buf, sizeof buf, "%04lld%02lld%02lld-%02lld%02lld%02lld",
                  static_cast<long long>(t.year), static_cast<long long>(t.month),
                  static_cast<long long>(t.day), static_cast<long long>(t.hour),
                  static_cast<long long>(t.minute), static_cast<long long>(t.second));
    return buf;
}

// A backup's file name: letters, digits, '.', '_' and '-', not starting with '.', so that it
// can only name a file in the backup directory.
bool plain_file_name(std::string_view name) {
    if (name.empty() || name.size() > 100 || name.front() == '.') return false;
    return std::all_of(name.begin(), name.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '.' || c == '_' || c == '-';
    });
}

std::optional<int64_t> retry_until(int64_t until_ms, Time now) {
    if (!until_ms) return std::nullopt;
    return until_ms - now.wall_ms;
}

}  // namespace

Admin::Admin(const Config& config, Guard& guard, Chat& chat, Transactions& txn,
             Enforcement& enforcement, Monitor& monitor, Outputs& outputs)
    : config_(config),
      guard_(guard),
      chat_(chat),
      txn_(txn),
      enforcement_(enforcement),
      monitor_(monitor),
      outputs_(outputs) {}

std::optional<StoredQuery> Admin::handle(AdminId id, const AdminRequest& q, Time now,
                                         const View& v) {
    // Answers echo these strings in JSON, and audit rows store them: bytes that are not UTF-8
    // would make both invalid. (The HTTP adapter percent-decodes paths, so any byte can come.)
    for (auto [field, text] : {std::pair<std::string_view, std::string_view>{"ip", q.ip},
                               {"username", q.username},
                               {"reason", q.reason},
                               {"rule", q.rule},
                               {"name", q.name}})
        if (!is_valid_utf8(text))
            return error(id, 400, std::string(field) + " must be UTF-8"), std::nullopt;
    using K = AdminRequest::Kind;
    switch (q.kind) {
        case K::block:
            return block(id, q, now), std::nullopt;
        case K::unblock:
            return unblock(id, q, now), std::nullopt;
        case K::suspend:
            return suspend(id, q, now), std::nullopt;
        case K::unsuspend:
            return unsuspend(id, q, now), std::nullopt;
        case K::revoke_sessions:
            return revoke_sessions(id, q, now), std::nullopt;
        case K::backup:
            return backup(id, q, now), std::nullopt;
        case K::audit: {
            if (q.before < 0) return error(id, 400, "before must be an audit id"), std::nullopt;
            if (v.queries_full) return error(id, 503, "server busy"), std::nullopt;
            StoredQuery what;
            what.kind = StoredQuery::Kind::audit;
            what.audit_before = q.before;
            what.limit = std::clamp<uint32_t>(q.limit, 1, config_.audit_page_max);
            return what;
        }
        default:
            read(id, q, now, v);
            return std::nullopt;
    }
}

void Admin::read(AdminId id, const AdminRequest& q, Time now, const View& v) {
    using K = AdminRequest::Kind;
    switch (q.kind) {
        case K::blocks:
            return blocks(id, now);
        case K::metrics:
            return reply(id, 200, monitor_.metrics_json(v.gauges(), now.mono_us));
        case K::report:
            return reply(id, 200, monitor_.report_json(v.gauges(), now.mono_us));
        case K::alerts:
            return reply(id, 200, monitor_.alerts_json());
        case K::clear_alerts: {
            JsonWriter w;
            size_t n = monitor_.acknowledge(q.rule, now.wall_ms);
            w.begin_object().key("cleared").value(static_cast<int64_t>(n)).end_object();
            return reply(id, 200, body_of(w));
        }
        case K::prometheus:
            return reply(id, 200, monitor_.prometheus(v.gauges(), now.mono_us),
                         "text/plain; version=0.0.4; charset=utf-8");
        case K::health:
            return reply(id, 200, R"({"status":"ok"})");
        case K::ready:
            if (v.shutting_down)
                return reply(id, 503, R"({"status":"not ready","reason":"shutting down"})");
            if (txn_.corrupt())
                return reply(id, 503, R"({"status":"not ready","reason":"storage corrupt"})");
            if (txn_.breaker().state(now.mono_us) != Breaker::State::closed)
                return reply(id, 503, R"({"status":"not ready","reason":"storage unavailable"})");
            return reply(id, 200, R"({"status":"ready"})");
        default:
            return error(id, 400, "not a read");
    }
}

void Admin::reply(AdminId id, int status, std::string body, std::string_view content_type) {
    outputs_.push_back(AdminReply{id, status, std::move(body), content_type});
}

namespace {

std::string error_body(int status, std::string_view message) {
    JsonWriter w;
    w.begin_object().key("error").begin_object().key("status").value(int64_t{status});
    w.key("message").value(message).end_object().end_object();
    return body_of(w);
}

}  // namespace

void Admin::error(AdminId id, int status, std::string_view message) {
    reply(id, status, error_body(status, message));
}

bool Admin::commit(AdminId id, std::vector<Mutation> rows, std::string body, Undo undo, Time now,
                   int status) {
    if (!txn_.writable(now)) {
        undo();
        error(id, 503, "storage unavailable; nothing was changed");
        return false;
    }
    Batch& b = txn_.open(now);
    for (auto& m : rows) {
        WARREN_CHECK(!check_record(m).has_value());
        if (auto* a = std::get_if<AuditRow>(&m)) outputs_.push_back(Audit{*a});
        b.mutations.push_back(std::move(m));
    }
    b.undo.push_back(std::move(undo));
    b.admin_replies.push_back({id, status, std::move(body)});
    return true;
}

void Admin::committed(std::vector<AdminAnswer>& answers) {
    for (AdminAnswer& a : answers) reply(a.id, a.status, std::move(a.body));
}

void Admin::failed(const std::vector<AdminAnswer>& answers) {
    for (const AdminAnswer& a : answers)
        error(a.id, 503, "storage unavailable; nothing was changed");
}

void Admin::blocks(AdminId id, Time now) {
    JsonWriter w;
    w.begin_object().key("blocks").begin_array();
    for (const BlockRow& b : guard_.active_blocks(now)) write_block(w, b);
    w.end_array().key("suspensions").begin_array();
    for (const SuspensionRow& s : guard_.active_suspensions(now))
        write_suspension(w, chat_.user_name(s.user), s);
    w.end_array().end_object();
    reply(id, 200, body_of(w));
}

std::optional<std::string> Admin::bad_duration(const std::optional<int64_t>& duration_ms) const {
    if (!duration_ms || (*duration_ms > 0 && *duration_ms <= config_.admin_duration_max_ms))
        return std::nullopt;
    return "duration_ms must be from 1 to " + std::to_string(config_.admin_duration_max_ms) +
           " (omit it for \"until lifted\")";
}

void Admin::block(AdminId id, const AdminRequest& q, Time now) {
    if (!parse_ip(q.ip)) return error(id, 400, "ip must be an IPv4 or IPv6 address");
    if (auto bad = bad_duration(q.duration_ms)) return error(id, 400, *bad);
    std::string key = address_key(q.ip);
    if (guard_.allowlisted(key)) return error(id, 409, "the address is allowlisted");
    std::optional<BlockRow> previous = guard_.block_row(key);
    BlockRow row = guard_.block(key, q.duration_ms, q.reason.empty() ? "admin" : q.reason, now);
    enforcement_.close_ip(key, retry_until(row.until_ms, now));
    JsonWriter w;
    w.begin_object().key("block");
    write_block(w, row);
    w.end_object();
    std::string body = body_of(w);
    JsonWriter d;
    write_block(d, row);
    commit(
        id, {row, enforcement_.audit_row("admin", key, "", "ip_blocked", row.reason, now, d.str())},
        std::move(body), [this, key, previous] { guard_.restore_block(key, previous); }, now);
}

void Admin::unblock(AdminId id, const AdminRequest& q, Time now) {
    if (!parse_ip(q.ip) && q.ip.find('/') == std::string::npos)
        return error(id, 400, "ip must be an IPv4 or IPv6 address");
    std::string key = q.ip.find('/') == std::string::npos ? address_key(q.ip) : q.ip;
    std::optional<BlockRow> previous = guard_.block_row(key);
    std::optional<BlockRow> row = guard_.unblock(key, now);
    if (!row) return error(id, 404, "no block in force for " + key);
    JsonWriter w;
    w.begin_object().key("unblocked").value(key).end_object();
    commit(
        id, {*row, enforcement_.audit_row("admin", key, "", "ip_unblocked", q.reason, now)},
        body_of(w), [this, key, previous] { guard_.restore_block(key, previous); }, now);
}

void Admin::suspend(AdminId id, const AdminRequest& q, Time now) {
    if (auto bad = bad_duration(q.duration_ms)) return error(id, 400, *bad);
    const User* u = chat_.state().find_user(q.username);
    if (!u) return error(id, 404, "no user named '" + q.username + "'");
    std::optional<SuspensionRow> previous = guard_.suspension_row(u->id);
    SuspensionRow row =
        guard_.suspend(u->id, q.duration_ms, q.reason.empty() ? "admin" : q.reason, now);
    enforcement_.close_user(u->id, retry_until(row.until_ms, now));
    JsonWriter w;
    w.begin_object().key("suspension");
    write_suspension(w, u->name, row);
    w.end_object();
    commit(
        id,
        {row, enforcement_.audit_row("admin", "", u->name, "account_suspended", row.reason, now)},
        body_of(w), [this, user = u->id, previous] { guard_.restore_suspension(user, previous); },
        now);
}

void Admin::unsuspend(AdminId id, const AdminRequest& q, Time now) {
    const User* u = chat_.state().find_user(q.username);
    if (!u) return error(id, 404, "no user named '" + q.username + "'");
    std::optional<SuspensionRow> previous = guard_.suspension_row(u->id);
    std::optional<SuspensionRow> row = guard_.unsuspend(u->id, now);
    if (!row) return error(id, 404, u->name + " is not suspended");
    JsonWriter w;
    w.begin_object().key("unsuspended").value(u->name).end_object();
    commit(
        id,
        {*row, enforcement_.audit_row("admin", "", u->name, "account_unsuspended", q.reason, now)},
        body_of(w), [this, user = u->id, previous] { guard_.restore_suspension(user, previous); },
        now);
}

void Admin::revoke_sessions(AdminId id, const AdminRequest& q, Time now) {
    const User* u = chat_.state().find_user(q.username);
    if (!u) return error(id, 404, "no user named '" + q.username + "'");
    if (!txn_.writable(now)) return error(id, 503, "storage unavailable; nothing was changed");
    std::string name = u->name;
    Outcome out = chat_.revoke_sessions(u->id);
    enforcement_.close_connections(out.revoked, DisconnectReason::session_revoked);
    JsonWriter w;
    w.begin_object().key("username").value(name);
    w.key("revoked").value(static_cast<int64_t>(out.mutations.size())).end_object();
    std::vector<Mutation> rows = std::move(out.mutations);
    rows.emplace_back(enforcement_.audit_row("admin", "", name, "sessions_revoked",
                                          q.reason.empty() ? "admin" : q.reason, now));
    commit(
        id, std::move(rows), body_of(w),
        [undo = std::move(out.undo)] {
            for (auto it = undo.rbegin(); it != undo.rend(); ++it) (*it)();
        },
        now);
}

void Admin::backup(AdminId id, const AdminRequest& q, Time now) {
    if (backup_running_) return error(id, 409, "a backup is already running");
    if (!q.name.empty() && !plain_file_name(q.name))
        return error(id, 400,
                     "name must be 1 to 100 letters, digits, '.', '_' or '-', not starting "
                     "with '.'");
    backup_running_ = id;
    outputs_.push_back(Backup{id, q.name.empty() ? "warren-" + utc_stamp(now.wall_ms) + ".db"
                                                 : q.name});
}

void Admin::backed_up(AdminId id, const BackupResult& r, Time now) {
    if (backup_running_ != id) return;
    backup_running_.reset();
    JsonWriter d;
    d.begin_object().key("path").value(r.path).key("bytes").value(static_cast<int64_t>(r.bytes));
    d.key("duration_ms").value(r.duration_ms);
    if (!r.ok) d.key("error").value(r.error);
    d.end_object();
    std::string details = d.str();
    AuditRow row = enforcement_.audit_row("admin", "", "", r.ok ? "backup" : "backup_failed",
                                          r.ok ? "" : r.error, now, details);
    int status = r.ok ? 200 : 500;
    std::string body = r.ok ? R"({"backup":)" + details + "}"
                            : error_body(500, "backup failed: " + r.error);
    if (!txn_.writable(now)) {
        // Storage refuses writes: the row waits in the backlog, the operator hears at once.
        txn_.persist(row, now);
        outputs_.push_back(Audit{row});
        return reply(id, status, std::move(body));
    }
    // Answered once the audit row is durable, so the audit log shows it by then.
    commit(id, {row}, std::move(body), [] {}, now, status);
}

void Admin::answer_audit(AdminId id, uint32_t limit, const QueryRows& rows) {
    if (!rows.ok) return error(id, 503, "storage unavailable");
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
    if (rows.audit.size() == limit && !rows.audit.empty())
        w.value(rows.audit.back().id);
    else
        w.null();
    w.end_object();
    reply(id, 200, body_of(w));
}

}  // namespace warren
