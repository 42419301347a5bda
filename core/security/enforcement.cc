#include "core/security/enforcement.h"

#include "core/protocol/json_writer.h"

namespace warren {

namespace {

std::string until_details(int64_t until_ms, uint32_t offences) {
    JsonWriter w;
    w.begin_object().key("until_ts").value_or_null(until_ms);
    w.key("offences").value(static_cast<int64_t>(offences)).end_object();
    return w.str();
}

std::optional<int64_t> retry_until(int64_t until_ms, Time now) {
    if (!until_ms) return std::nullopt;
    return until_ms - now.wall_ms;
}

}  // namespace

Enforcement::Enforcement(const Config& config, Guard& guard, Transactions& txn, Connections& conns,
                         const Chat& chat, Outputs& outputs, int64_t max_audit_id)
    : config_(config),
      guard_(guard),
      txn_(txn),
      conns_(conns),
      chat_(chat),
      outputs_(outputs),
      next_audit_id_(max_audit_id + 1) {}

AuditRow Enforcement::audit_row(std::string actor, std::string ip, std::string account,
                                std::string action, std::string reason, Time now,
                                std::string details) {
    return AuditRow{next_audit_id_++,   now.wall_ms,       std::move(actor),  std::move(ip),
                    std::move(account), std::move(action), std::move(reason), std::move(details)};
}

void Enforcement::audit(AuditRow row, Time now) {
    outputs_.push_back(Audit{row});
    txn_.persist(std::move(row), now);
}

void Enforcement::close_ip(const std::string& ip_key, std::optional<int64_t> retry_after_ms) {
    conns_.close_if([&](const Connections::Conn& c) { return c.ip_key == ip_key; },
                    DisconnectReason::blocked, retry_after_ms);
}

void Enforcement::close_user(UserId user, std::optional<int64_t> retry_after_ms) {
    const User* u = chat_.state().user(user);
    if (!u) return;
    std::vector<ConnId> ids(u->conns.begin(), u->conns.end());
    for (ConnId id : ids)
        if (Connections::Conn* c = conns_.live(id))
            conns_.close(*c, DisconnectReason::blocked, retry_after_ms);
}

void Enforcement::close_connections(const std::vector<ConnId>& ids, DisconnectReason reason) {
    for (ConnId id : ids)
        if (Connections::Conn* c = conns_.live(id)) conns_.close(*c, reason);
}

void Enforcement::blocked(const SecurityDecision& d, Time now) {
    txn_.persist(d.block, now);
    audit(audit_row("system", d.ip, "", "ip_blocked", d.reason, now,
                    until_details(d.block.until_ms, d.block.offences)),
          now);
    close_ip(d.ip, retry_until(d.block.until_ms, now));
}

void Enforcement::suspended(const SecurityDecision& d, Time now) {
    txn_.persist(d.suspension, now);
    audit(audit_row("system", d.ip, chat_.user_name(d.user), "account_suspended", d.reason, now,
                    until_details(d.suspension.until_ms, d.suspension.offences)),
          now);
    close_user(d.user, retry_until(d.suspension.until_ms, now));
}

void Enforcement::carry_out_decisions(Time now) {
    for (SecurityDecision& d : guard_.take_decisions()) {
        switch (d.kind) {
            case SecurityDecision::Kind::ip_blocked:
                blocked(d, now);
                break;
            case SecurityDecision::Kind::account_suspended:
                suspended(d, now);
                break;
            case SecurityDecision::Kind::name_locked:
                audit(audit_row("system", d.ip, d.name, "name_locked", d.reason, now,
                                until_details(now.wall_ms + config_.name_lock_ms, 0)),
                      now);
                break;
            case SecurityDecision::Kind::threat_level: {
                JsonWriter w;
                w.begin_object().key("level").value(threat_level_name(d.level)).end_object();
                audit(audit_row("system", d.ip, d.user ? chat_.user_name(d.user) : "",
                                "threat_level", d.reason, now, w.str()),
                      now);
                break;
            }
        }
    }
}

void Enforcement::prune_audit(Time now) {
    if (next_audit_id_ > 1)
        txn_.persist(AuditPrune{now.wall_ms - config_.audit_retention_ms, config_.audit_rows_max},
                     now);
}

}  // namespace warren
