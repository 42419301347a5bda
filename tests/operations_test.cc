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

// Reports the first backup's result and returns its answer, checking that the answer waited
// for the audit row's commit.
std::optional<AdminReply> finish_backup(CoreHarness& h, const BackupResult& r) {
    h.hold_commits = true;
    h.backed_up(h.backups[0].id, r);
    EXPECT_FALSE(reply_to(h, h.backups[0].id)) << "answered before its audit row was durable";
    h.hold_commits = false;
    h.release();
    return reply_to(h, h.backups[0].id);
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
    auto done = finish_backup(h, r);
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
    auto done = finish_backup(h, r);
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

constexpr int64_t day_ms = 24LL * 3600 * 1000;

Config retention_config() {
    Config c;
    c.retention_ms = 1 * day_ms;
    c.room_retention_ms = {{"Archive", 0}, {"short", day_ms / 2}};
    c.retention_batch_max = 7;  // small, so that a backlog takes several Prunes
    c.retention_interval_ms = 60'000;
    c.idle_timeout_ms = 10 * day_ms;
    return c;
}

std::vector<int64_t> history_ids(CoreHarness& h, ConnId c, json req) {
    req["op"] = "HISTORY";
    req["limit"] = 100;
    json r = h.call(c, req);
    std::vector<int64_t> ids;
    for (const auto& m : r["messages"]) ids.push_back(m["id"].get<int64_t>());
    return ids;
}

size_t stored_in(CoreHarness& h, RoomId room) {
    HistoryQuery q;
    q.room = room;
    q.limit = 1000;
    StoredQuery sq;
    sq.kind = StoredQuery::Kind::history;
    sq.history = q;
    return h.store().run(sq).rows.size();
}

// Messages past their age leave storage and memory, room by room as configured, in bounded
// Prunes until the backlog is gone; reactions go with them; what is younger stays.
TEST(Retention, ExpiredMessagesLeaveStorageAndMemoryRoomByRoom) {
    CoreHarness h(retention_config());
    h.register_user(1, "ann");
    h.register_user(2, "bob");
    for (const char* room : {"general", "archive", "short"}) {
        ASSERT_EQ(h.call(1, {{"op", "CREATE_ROOM"}, {"room", room}})["ok"], true);
        ASSERT_EQ(h.call(2, {{"op", "JOIN_ROOM"}, {"room", room}})["ok"], true);
    }
    std::map<std::string, std::vector<int64_t>> old_ids;
    for (int i = 0; i < 20; ++i)
        for (const char* room : {"general", "archive", "short"}) {
            json r = h.call(1, {{"op", "SEND_MESSAGE"}, {"room", room}, {"text", "old words " + std::to_string(i)}});
            old_ids[room].push_back(r["message"]["id"].get<int64_t>());
        }
    json dm = h.call(1, {{"op", "DIRECT_MESSAGE"}, {"to", "bob"}, {"text", "old secret"}});
    ASSERT_EQ(dm["ok"], true) << dm;
    ASSERT_EQ(h.call(2, {{"op", "REACT"}, {"message_id", old_ids["general"][0]}, {"emoji", "👍"}})["ok"],
              true);
    EXPECT_EQ(h.prunes, 0u) << "nothing is old yet";

    h.advance(day_ms * 3 / 4);  // "short" (half a day) has expired, the rest has not
    h.tick();
    for (int i = 0; i < 10 && h.tick_to_deadline(1000);) ++i;
    RoomId general = h.core().state().rooms_by_key().at("general");
    RoomId archive = h.core().state().rooms_by_key().at("archive");
    RoomId shortr = h.core().state().rooms_by_key().at("short");
    EXPECT_EQ(stored_in(h, shortr), 0u);
    EXPECT_EQ(stored_in(h, general), 20u);

    h.advance(day_ms);  // now everything but "archive" is past its age
    json fresh = h.call(1, {{"op", "SEND_MESSAGE"}, {"room", "general"}, {"text", "new words"}});
    int64_t fresh_id = fresh["message"]["id"].get<int64_t>();
    size_t before = h.prunes;
    for (int i = 0; i < 50 && h.tick_to_deadline(1000); ++i) {
    }
    EXPECT_GE(h.prunes - before, 3u) << "20 expired messages at 7 a Prune take several";
    EXPECT_EQ(stored_in(h, general), 1u);
    EXPECT_EQ(stored_in(h, archive), 20u);
    EXPECT_EQ(history_ids(h, 2, {{"room", "general"}}), std::vector<int64_t>{fresh_id});
    EXPECT_EQ(history_ids(h, 2, {{"room", "archive"}}).size(), 20u);
    EXPECT_TRUE(history_ids(h, 2, {{"room", "short"}}).empty());
    EXPECT_TRUE(history_ids(h, 2, {{"with", "ann"}}).empty()) << "direct messages follow the global age";
    json found = h.call(2, {{"op", "SEARCH"}, {"query", "old"}, {"limit", 100}});
    EXPECT_EQ(found["results"].size(), 20u) << found;
    for (const auto& r : found["results"])
        EXPECT_EQ(r["room"], "archive") << "search still finds expired messages: " << r;
    EXPECT_EQ(h.core().retention().deleted_total(), 41u);  // 20 + 20 + 1 direct

    // Nothing left to delete: the rounds fall back to the interval.
    size_t idle = h.prunes;
    h.advance(1000);
    h.tick();
    h.advance(1000);
    h.tick();
    EXPECT_LE(h.prunes - idle, 1u);
}

// A history page read from storage after memory forgot the expired messages but before the
// Prune deleted them from storage shows none of them.
TEST(Retention, RowsReadBeforeThePruneAreFilteredOnTheWayIn) {
    Config c = retention_config();
    c.room_cache_messages_max = 100;
    CoreHarness h(c);
    h.register_user(1, "ann");
    ASSERT_EQ(h.call(1, {{"op", "CREATE_ROOM"}, {"room", "general"}})["ok"], true);
    for (int i = 0; i < 150; ++i)
        h.call(1, {{"op", "SEND_MESSAGE"}, {"room", "general"}, {"text", "m" + std::to_string(i)}});
    h.advance(2 * day_ms);
    h.hold_commits = true;  // Prunes wait with the commits: storage still has everything
    h.tick();               // the round starts: memory forgets, the Prune waits
    ASSERT_EQ(h.prunes, 1u);
    EXPECT_EQ(stored_in(h, h.core().state().rooms_by_key().at("general")), 150u);
    std::vector<int64_t> ids = history_ids(h, 1, {{"room", "general"}});
    EXPECT_TRUE(ids.empty()) << ids.size() << " expired messages shown";
    json older = h.call(1, {{"op", "HISTORY"}, {"room", "general"}, {"before", 60}});
    EXPECT_TRUE(older["messages"].empty()) << older;
}

}  // namespace
}  // namespace warren::test
