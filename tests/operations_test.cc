// The core's side of day-two operations, through the real core and a real SQLite store:
// online backups asked through the admin API (one at a time, plain file names, audited,
// answered only once the audit row is durable) and message retention.
#include <gtest/gtest.h>

#include "harness.h"

namespace warren::test {
namespace {

AdminRequest backup_req(std::string name = {}) {
    AdminRequest q;
    q.kind = AdminRequest::Kind::backup;
    q.name = std::move(name);
    return q;
}

std::optional<AdminReply> reply_to(CoreHarness& h, AdminId id) {
    for (auto it = h.admin_replies.begin(); it != h.admin_replies.end(); ++it)
        if (it->id == id) return *it;
    return std::nullopt;
}

TEST(Backup, OneAtATimeNamedByTimeAndAnsweredAfterItsAuditRow) {
    CoreHarness h;
    EXPECT_FALSE(h.admin(backup_req()));  // no answer until the copy is done
    ASSERT_EQ(h.backups.size(), 1u);
    // The harness's wall clock starts at 2025-11-24 16:00:00 UTC.
    EXPECT_EQ(h.backups[0].name, "warren-20251124-160000.db");
    auto second = h.admin(backup_req("other.db"));
    ASSERT_TRUE(second);
    EXPECT_EQ(second->status, 409) << second->body;
    EXPECT_EQ(h.backups.size(), 1u);

    BackupResult r;
    r.ok = true;
    r.path = "/var/lib/warren/backups/warren-20251124-160000.db";
    r.bytes = 123456;
    r.duration_ms = 42;
    h.hold_commits = true;
    h.backed_up(h.backups[0].id, r);
    EXPECT_FALSE(reply_to(h, h.backups[0].id)) << "answered before its audit row was durable";
    h.hold_commits = false;
    h.release();
    auto done = reply_to(h, h.backups[0].id);
    ASSERT_TRUE(done);
    EXPECT_EQ(done->status, 200);
    EXPECT_NE(done->body.find(r.path), std::string::npos) << done->body;
    EXPECT_NE(done->body.find("123456"), std::string::npos) << done->body;
    ASSERT_FALSE(h.audits.empty());
    EXPECT_EQ(h.audits.back().action, "backup");
    EXPECT_NE(h.audits.back().details.find(r.path), std::string::npos);

    // The next one may start now.
    EXPECT_FALSE(h.admin(backup_req("next.db")));
    ASSERT_EQ(h.backups.size(), 2u);
    EXPECT_EQ(h.backups[1].name, "next.db");
}

TEST(Backup, FailureIsAnsweredAndAudited) {
    CoreHarness h;
    EXPECT_FALSE(h.admin(backup_req("b.db")));
    ASSERT_EQ(h.backups.size(), 1u);
    BackupResult r;
    r.path = "/x/b.db";
    r.error = "disk full";
    h.backed_up(h.backups[0].id, r);
    auto done = reply_to(h, h.backups[0].id);
    ASSERT_TRUE(done);
    EXPECT_EQ(done->status, 500);
    EXPECT_NE(done->body.find("disk full"), std::string::npos) << done->body;
    ASSERT_FALSE(h.audits.empty());
    EXPECT_EQ(h.audits.back().action, "backup_failed");
}

TEST(Backup, NamesThatCouldLeaveTheBackupDirectoryAreRefused) {
    CoreHarness h;
    for (const std::string& bad : std::vector<std::string>{"../warren.db", "a/b.db", ".hidden", "x y", std::string(101, 'a'),
                            std::string("nul\0byte", 8)}) {
        auto r = h.admin(backup_req(bad));
        ASSERT_TRUE(r) << bad;
        EXPECT_EQ(r->status, 400) << bad << " " << r->body;
    }
    EXPECT_TRUE(h.backups.empty());
}

// A result for a backup nobody asked for (or answered twice) changes nothing.
TEST(Backup, StrayResultsAreIgnored) {
    CoreHarness h;
    BackupResult r;
    r.ok = true;
    h.backed_up(999, r);
    EXPECT_TRUE(h.admin_replies.empty());
    EXPECT_TRUE(h.audits.empty());
}

}  // namespace
}  // namespace warren::test
