// Enforcement: carrying out what the Guard decided (guard.h) and what admins order: blocks
// and suspensions close the connections they cover, every decision becomes an audit record
// (logged as an Audit output and persisted through Transactions), and the audit log is
// pruned. Decisions are made in guard.cc; this part only acts on them.
#pragma once

#include <optional>
#include <string>

#include "core/chat/chat.h"
#include "core/conn/connections.h"
#include "core/outputs.h"
#include "core/security/guard.h"
#include "core/txn/transactions.h"

namespace warren {

class Enforcement {
  public:
    Enforcement(const Config& config, Guard& guard, Transactions& txn, Connections& conns,
                const Chat& chat, Outputs& outputs, int64_t max_audit_id);

    // Drains the Guard's decisions: persist, audit, close connections.
    void carry_out_decisions(Time now);
    void close_ip(const std::string& ip_key, std::optional<int64_t> retry_after_ms);
    void close_user(UserId user, std::optional<int64_t> retry_after_ms);
    void close_connections(const std::vector<ConnId>& ids, DisconnectReason reason);
    // A new audit row (the next id, now) by "system" or "admin".
    AuditRow audit_row(std::string actor, std::string ip, std::string account, std::string action,
                       std::string reason, Time now, std::string details = {});
    // Logs and persists a system audit row.
    void audit(AuditRow row, Time now);
    // Asks storage to drop audit rows past retention and past audit_rows_max.
    void prune_audit(Time now);

  private:
    void blocked(const SecurityDecision& d, Time now);
    void suspended(const SecurityDecision& d, Time now);

    const Config& config_;
    Guard& guard_;
    Transactions& txn_;
    Connections& conns_;
    const Chat& chat_;
    Outputs& outputs_;
    int64_t next_audit_id_;
};

}  // namespace warren
