// Admin: the admin API's requests as the core sees them (ARCHITECTURE.md: `admin(request,
// now)`). Reads (blocks, metrics, reports, alerts, health, readiness) answer at once; actions
// (block, unblock, suspend, unsuspend) take effect in memory at once (open connections
// included) and answer after their commit, together with their audit row; if the commit
// fails the action is undone and the answer is 503. A backup is carried out by the driver
// (the Backup output), one at a time, and answered once its audit row is committed. The audit log is read from storage.
// Statuses follow HTTP, since the one caller is the HTTP adapter: 200, 400, 404, 409, 503.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/chat/chat.h"
#include "core/monitor/monitor.h"
#include "core/outputs.h"
#include "core/security/enforcement.h"
#include "core/security/guard.h"
#include "core/txn/transactions.h"

namespace warren {

struct AdminRequest {
    enum class Kind {
        blocks,           // list active blocks and suspensions
        block,            // ip, duration_ms?, reason
        unblock,          // ip
        suspend,          // username, duration_ms?, reason
        unsuspend,        // username
        revoke_sessions,  // username: every session ends, its connections close
        audit,            // before (0: newest), limit
        metrics,          // JSON metrics
        report,           // JSON performance report
        alerts,           // active alerts and history
        clear_alerts,     // rule? (empty: all)
        prometheus,       // text exposition format
        health,
        ready,
        backup,  // name? (empty: warren-<UTC time>.db)
    };
    Kind kind = Kind::blocks;
    std::string ip;
    std::string username;
    std::optional<int64_t> duration_ms;
    std::string reason;
    int64_t before = 0;
    uint32_t limit = 50;
    std::string rule;
    std::string name;
};

class Admin {
  public:
    // What admin reads need from the rest of the core at the moment of the request.
    struct View {
        std::function<Gauges()> gauges;
        bool shutting_down = false;
        bool queries_full = false;
    };

    Admin(const Config& config, Guard& guard, Chat& chat, Transactions& txn,
          Enforcement& enforcement, Monitor& monitor, Outputs& outputs);

    // Answers (or starts answering) request `id`. An audit read returns the storage query to
    // issue; its rows come back through answer_audit().
    std::optional<StoredQuery> handle(AdminId id, const AdminRequest& q, Time now, const View& v);
    void answer_audit(AdminId id, uint32_t limit, const QueryRows& rows);
    // A batch carrying admin answers is durable, or failed and was undone.
    void committed(std::vector<AdminAnswer>& answers);
    // A Backup finished: audited, then answered.
    void backed_up(AdminId id, const BackupResult& r, Time now);
    void failed(const std::vector<AdminAnswer>& answers);

  private:
    void reply(AdminId id, int status, std::string body,
               std::string_view content_type = "application/json");
    void error(AdminId id, int status, std::string_view message);
    bool commit(AdminId id, std::vector<Mutation> rows, std::string body, Undo undo, Time now,
                int status = 200);
    // Why an ordered duration is refused, if it is.
    std::optional<std::string> bad_duration(const std::optional<int64_t>& duration_ms) const;
    void read(AdminId id, const AdminRequest& q, Time now, const View& v);
    void blocks(AdminId id, Time now);
    void block(AdminId id, const AdminRequest& q, Time now);
    void unblock(AdminId id, const AdminRequest& q, Time now);
    void suspend(AdminId id, const AdminRequest& q, Time now);
    void unsuspend(AdminId id, const AdminRequest& q, Time now);
    void revoke_sessions(AdminId id, const AdminRequest& q, Time now);
    void backup(AdminId id, const AdminRequest& q, Time now);

    const Config& config_;
    Guard& guard_;
    Chat& chat_;
    Transactions& txn_;
    Enforcement& enforcement_;
    Monitor& monitor_;
    Outputs& outputs_;
    std::optional<AdminId> backup_running_;
};

}  // namespace warren
