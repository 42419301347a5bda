// The store on real SQLite files: migrations, atomic batches, snapshot loading, history.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <filesystem>

#include "store/store.h"

namespace warren {
namespace {

class StoreFile : public ::testing::Test {
  protected:
    void SetUp() override {
        dir_ = std::filesystem::temp_directory_path() /
               ("warren-store-" + std::to_string(::getpid()) + "-" +
                ::testing::UnitTest::GetInstance()->current_test_info()->name());
        std::filesystem::remove_all(dir_);
        std::filesystem::create_directories(dir_);
        path_ = (dir_ / "w.db").string();
    }
    void TearDown() override { std::filesystem::remove_all(dir_); }
    std::unique_ptr<Store> open() {
        auto r = Store::open(path_, Synchronous::normal);
        EXPECT_TRUE(r.is_ok()) << (r.is_ok() ? "" : r.status().message());
        return std::move(r.value());
    }
    std::filesystem::path dir_;
    std::string path_;
};

const std::string hash64(64, 'a');

std::vector<Mutation> seed_rows() {
    return {UserRow{1, "Alice", "$phc", 10}, SessionRow{hash64, 1, 5000},
            RoomRow{1, "Gen", "t", false, 1, 11}, MemberRow{1, 1, 12}};
}

TEST_F(StoreFile, MigratesAndReopens) {
    { EXPECT_EQ(open()->schema_version(), Store::current_schema_version); }
    EXPECT_EQ(open()->schema_version(), Store::current_schema_version);
}

TEST_F(StoreFile, RefusesNewerSchema) {
    { open(); }
    sqlite3* db;
    sqlite3_open(path_.c_str(), &db);
    sqlite3_exec(db, "PRAGMA user_version=99", nullptr, nullptr, nullptr);
    sqlite3_close(db);
    auto r = Store::open(path_, Synchronous::normal);
    ASSERT_FALSE(r.is_ok());
    EXPECT_EQ(r.status().code(), Status::Code::corrupt);
}

TEST_F(StoreFile, BatchIsAllOrNothing) {
    auto s = open();
    ASSERT_TRUE(s->apply(seed_rows()).is_ok());
    // The second user row collides on name_key: the message before it must not survive.
    Status st = s->apply({MessageRow{1, 1, 1, "hi", 20, 0}, UserRow{2, "ALICE", "$phc", 21}});
    EXPECT_FALSE(st.is_ok());
    EXPECT_TRUE(s->history({1, std::nullopt, std::nullopt, 10}).rows.empty());
    EXPECT_TRUE(s->apply({MessageRow{1, 1, 1, "hi", 20, 0}}).is_ok());
}

TEST_F(StoreFile, RefusesMalformedRecords) {
    auto s = open();
    EXPECT_FALSE(s->apply({MessageRow{0, 1, 1, "", 20, 0}}).is_ok());
}

TEST_F(StoreFile, SnapshotRoundTripsAndDropsExpiredSessions) {
    {
        auto s = open();
        ASSERT_TRUE(s->apply(seed_rows()).is_ok());
        std::vector<Mutation> msgs;
        for (int i = 1; i <= 30; ++i)
            msgs.push_back(MessageRow{i, 1, 1, "m" + std::to_string(i), 100 + i, 0});
        ASSERT_TRUE(s->apply(msgs).is_ok());
        ASSERT_TRUE(s->apply({SessionRow{std::string(64, 'b'), 1, 100}}).is_ok());
    }
    auto s = open();
    auto snap = s->load(10, 1000);
    ASSERT_TRUE(snap.is_ok());
    const Snapshot& sn = snap.value();
    ASSERT_EQ(sn.users.size(), 1u);
    EXPECT_EQ(sn.users[0].name, "Alice");
    ASSERT_EQ(sn.sessions.size(), 1u);  // the one expiring at 100 is left out
    EXPECT_EQ(sn.sessions[0].token_hash, hash64);
    ASSERT_EQ(sn.rooms.size(), 1u);
    EXPECT_EQ(sn.rooms[0].topic, "t");
    EXPECT_EQ(sn.members.size(), 1u);
    ASSERT_EQ(sn.recent_messages.size(), 10u);
    EXPECT_EQ(sn.recent_messages.front().id, 21);
    EXPECT_EQ(sn.recent_messages.back().id, 30);
    EXPECT_EQ(sn.rooms_with_older, std::vector<RoomId>{1});
    EXPECT_EQ(sn.max_message_id, 30);
}

TEST_F(StoreFile, HistoryBeforeAndAfterAreAscending) {
    auto s = open();
    ASSERT_TRUE(s->apply(seed_rows()).is_ok());
    for (int i = 1; i <= 9; ++i) ASSERT_TRUE(s->apply({MessageRow{i, 1, 1, "m", 1, 0}}).is_ok());
    auto b = s->history({1, MessageId{6}, std::nullopt, 3}).rows;
    ASSERT_EQ(b.size(), 3u);
    EXPECT_EQ(b[0].id, 3);
    EXPECT_EQ(b[2].id, 5);
    auto a = s->history({1, std::nullopt, MessageId{6}, 2}).rows;
    ASSERT_EQ(a.size(), 2u);
    EXPECT_EQ(a[0].id, 7);
    EXPECT_EQ(a[1].id, 8);
}

}  // namespace
}  // namespace warren

namespace warren {
namespace {

TEST_F(StoreFile, SnapshotCarriesReactionsEditsAndTombstones) {
    {
        auto s = open();
        ASSERT_TRUE(s->apply(seed_rows()).is_ok());
        ASSERT_TRUE(
            s->apply({MessageRow{1, 1, 1, "one", 5}, MessageRow{2, 1, 1, "two", 6}}).is_ok());
        ASSERT_TRUE(s->apply({ReactionAdd{1, 1, "ok"}, MessageEdit{1, "uno", 7}, MessageDelete{2}})
                        .is_ok());
        // A change to a message that does not exist is refused, and the batch with it.
        EXPECT_FALSE(s->apply({ReactionAdd{2, 1, "x"}, MessageEdit{99, "nope", 8}}).is_ok());
    }
    auto s = open();
    auto snap = s->load(10, 0);
    ASSERT_TRUE(snap.is_ok());
    const auto& msgs = snap.value().recent_messages;
    ASSERT_EQ(msgs.size(), 2u);
    EXPECT_EQ(msgs[0].text, "uno");
    EXPECT_EQ(msgs[0].edited_ms, 7);
    EXPECT_EQ(msgs[0].reactions, (std::map<std::string, std::vector<UserId>>{{"ok", {1}}}));
    EXPECT_TRUE(msgs[1].deleted);
    EXPECT_EQ(msgs[1].text, "");
    EXPECT_TRUE(msgs[1].reactions.empty());
}

}  // namespace
}  // namespace warren

namespace warren {
namespace {

TEST_F(StoreFile, QueuedIndexingSurvivesReopenAndSearchDrainsIt) {
    {
        auto s = open();
        ASSERT_TRUE(s->apply(seed_rows()).is_ok());
        ASSERT_TRUE(s->apply({MessageRow{1, 1, 1, "alpha beta", 5}, MessageRow{2, 1, 1, "gamma", 6},
                              MessageRow{3, 1, 1, "delta", 7}})
                        .is_ok());
        ASSERT_TRUE(s->apply({MessageEdit{2, "gamma epsilon", 8}, MessageDelete{3}}).is_ok());
        // Closed without indexing: the queue is in the file.
    }
    auto s = open();
    auto search = [&](const std::string& match) {
        StoredQuery q;
        q.kind = StoredQuery::Kind::search;
        q.search = SearchQuery{match, {1}, 0, 10};
        std::vector<MessageId> ids;
        for (const auto& r : s->run(q).rows) ids.push_back(r.id);
        return ids;
    };
    EXPECT_EQ(search("\"beta\""), std::vector<MessageId>{1});
    EXPECT_EQ(search("\"epsilon\""), std::vector<MessageId>{2});
    EXPECT_TRUE(search("\"delta\"").empty());
    EXPECT_TRUE(s->index_pending().is_ok());  // nothing left: a no-op
    EXPECT_EQ(search("\"gamma\""), std::vector<MessageId>{2});
}

}  // namespace
}  // namespace warren

namespace warren {
namespace {

std::vector<MessageId> ids_of(const QueryRows& r) {
    std::vector<MessageId> out;
    for (const auto& m : r.rows) out.push_back(m.id);
    return out;
}

QueryRows search(Store& s, std::string match, std::vector<RoomId> rooms, UserId dm_user,
                 uint32_t limit = 10) {
    StoredQuery q;
    q.kind = StoredQuery::Kind::search;
    q.search = SearchQuery{std::move(match), std::move(rooms), dm_user, limit};
    return s.run(q);
}

// Three users in two rooms, and direct messages between 1 and 2 and between 2 and 3.
std::vector<Mutation> scoped_corpus() {
    std::vector<Mutation> m = {UserRow{1, "u1", "$p", 1}, UserRow{2, "u2", "$p", 1},
                               UserRow{3, "u3", "$p", 1}, RoomRow{1, "a", "", false, 1, 1},
                               RoomRow{2, "b", "", true, 2, 1}};
    MessageId id = 1;
    for (int i = 0; i < 30; ++i) {
        m.push_back(MessageRow{id++, 1, 1, "the news " + std::to_string(i), 10, 0, 0});
        m.push_back(MessageRow{id++, 2, 2, "the secret " + std::to_string(i), 10, 0, 0});
    }
    m.push_back(MessageRow{id++, 0, 1, "the note to two", 10, 0, 2});
    m.push_back(MessageRow{id++, 0, 3, "the note to two from three", 10, 0, 2});
    return m;
}

// H3: the reader's scope is applied inside the index: only its rooms and its own
// conversations, newest first, at most `limit`, edits and deletions followed.
TEST_F(StoreFile, SearchIsScopedInsideTheIndexNewestFirst) {
    auto s = open();
    ASSERT_TRUE(s->apply(scoped_corpus()).is_ok());
    auto room_a = search(*s, "\"the\"", {1}, 0, 5);
    ASSERT_TRUE(room_a.ok);
    EXPECT_EQ(ids_of(room_a), (std::vector<MessageId>{59, 57, 55, 53, 51}));
    for (const auto& m : search(*s, "\"the\"", {1}, 0, 100).rows) EXPECT_EQ(m.room, 1);
    // User 1: room a and the conversation with 2, not 2's room nor 3's note to 2.
    auto mine = search(*s, "\"note\"", {1}, 1);
    EXPECT_EQ(ids_of(mine), (std::vector<MessageId>{61}));
    EXPECT_EQ(ids_of(search(*s, "\"note\"", {}, 2)), (std::vector<MessageId>{62, 61}));
    EXPECT_TRUE(search(*s, "\"secret\"", {1}, 1).rows.empty());
    EXPECT_TRUE(search(*s, "\"the\"", {}, 0).rows.empty());  // no scope: nothing
    ASSERT_TRUE(s->apply({MessageEdit{59, "rewritten", 20}, MessageDelete{57}}).is_ok());
    EXPECT_EQ(ids_of(search(*s, "\"the\"", {1}, 0, 2)), (std::vector<MessageId>{55, 53}));
    EXPECT_EQ(ids_of(search(*s, "\"rewritten\"", {1}, 0)), (std::vector<MessageId>{59}));
}

// The index takes new messages from the messages table and follows edits, deletions and
// retention whether they come before or after it reached the message, twice over too; the
// index stays whole (FTS5's integrity check) and only the live text is found.
TEST_F(StoreFile, TheIndexFollowsChangesBeforeAndAfterItReachesAMessage) {
    auto s = open();
    std::vector<Mutation> rows = {UserRow{1, "u1", "$p", 1}, UserRow{2, "u2", "$p", 1},
                                  RoomRow{1, "a", "", false, 1, 1},
                                  RoomRow{2, "b", "", false, 1, 1}};
    for (MessageId id = 1; id <= 8; ++id)
        rows.push_back(MessageRow{id, 1, 1, "orig" + std::to_string(id) + " common", id, 0, 0});
    rows.push_back(MessageRow{9, 0, 1, "orig9 common", 9, 0, 2});  // a direct message
    rows.push_back(MessageRow{10, 2, 1, "elsewhere common", 1, 0, 0});
    ASSERT_TRUE(s->apply(rows).is_ok());
    ASSERT_TRUE(s->index_behind());
    ASSERT_TRUE(s->index_pending(4).is_ok());  // the index holds 1-4; 5-9 wait
    ASSERT_TRUE(s->apply({MessageEdit{2, "new2 common", 20}, MessageEdit{6, "new6 common", 20},
                          MessageDelete{3}, MessageDelete{7}, MessageEdit{2, "newer2", 21},
                          MessageEdit{9, "new9", 22}})
                    .is_ok());
    // Retention takes 1 (indexed) and 10 (not yet).
    PruneResult pr = s->prune({PruneScope{1, 2}, PruneScope{2, 2}}, 100);
    ASSERT_TRUE(pr.ok) << pr.error;
    ASSERT_EQ(pr.deleted, (std::vector<uint32_t>{1, 1}));
    auto found = [&](std::string word, std::vector<RoomId> rooms = {1}, UserId dm = 0) {
        return ids_of(search(*s, "\"" + word + "\"", std::move(rooms), dm, 100));
    };
    // search catches up first, whatever is still queued
    EXPECT_EQ(found("common"), (std::vector<MessageId>{8, 6, 5, 4}));
    EXPECT_TRUE(found("orig2").empty());
    EXPECT_TRUE(found("new2").empty());
    EXPECT_EQ(found("newer2"), std::vector<MessageId>{2});
    EXPECT_TRUE(found("orig1").empty());
    EXPECT_TRUE(found("orig3").empty());
    EXPECT_TRUE(found("orig6").empty());
    EXPECT_EQ(found("new6"), std::vector<MessageId>{6});
    EXPECT_TRUE(found("orig7").empty());
    EXPECT_EQ(found("new9", {}, 2), std::vector<MessageId>{9});
    EXPECT_TRUE(found("orig9", {}, 1).empty());
    EXPECT_TRUE(found("common", {2}).empty());
    EXPECT_FALSE(s->index_behind());
    // Later changes to messages the index now holds, then a check of the whole index.
    ASSERT_TRUE(s->apply({MessageEdit{8, "last8", 30}, MessageDelete{4}}).is_ok());
    ASSERT_TRUE(s->index_behind());
    ASSERT_TRUE(s->index_pending().is_ok());
    EXPECT_FALSE(s->index_behind());
    EXPECT_EQ(found("common"), (std::vector<MessageId>{6, 5}));
    EXPECT_EQ(found("last8"), std::vector<MessageId>{8});
    s.reset();
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
    char* err = nullptr;
    EXPECT_EQ(sqlite3_exec(db, "INSERT INTO messages_fts(messages_fts) VALUES('integrity-check')",
                           nullptr, nullptr, &err),
              SQLITE_OK)
        << (err ? err : "");
    sqlite3_free(err);
    sqlite3_close(db);
}

// H3: a read-only Store on the same file answers queries while the writer commits, and sees
// what the writer has indexed; it cannot write.
TEST_F(StoreFile, AReaderOnTheSameFileServesQueries) {
    auto w = open();
    ASSERT_TRUE(w->apply(scoped_corpus()).is_ok());
    ASSERT_TRUE(w->index_pending().is_ok());
    auto r = Store::open(path_, Synchronous::normal, Access::read_only);
    ASSERT_TRUE(r.is_ok()) << r.status().message();
    Store& reader = *r.value();
    EXPECT_EQ(search(reader, "\"news\"", {1}, 0, 3).rows.size(), 3u);
    ASSERT_TRUE(w->apply({MessageRow{63, 1, 1, "fresh news", 30, 0, 0}}).is_ok());
    EXPECT_NE(ids_of(search(reader, "\"fresh\"", {1}, 0)), (std::vector<MessageId>{63}));
    ASSERT_TRUE(w->index_pending().is_ok());
    EXPECT_EQ(ids_of(search(reader, "\"fresh\"", {1}, 0)), (std::vector<MessageId>{63}));
    HistoryQuery h;
    h.room = 1;
    h.limit = 2;
    EXPECT_EQ(reader.history(h).rows.back().id, 63);
    EXPECT_FALSE(reader.apply({MessageRow{64, 1, 1, "no", 31, 0, 0}}).is_ok());
}

// H3: a search runs within its time budget; past it, it stops and says so.
TEST_F(StoreFile, ASearchPastItsTimeBudgetStops) {
    auto s = open();
    std::vector<Mutation> m = {UserRow{1, "u1", "$p", 1}, RoomRow{1, "a", "", false, 1, 1},
                               RoomRow{2, "b", "", false, 1, 1}};
    // The scope is part of the match, so a search of room 1 (no matches there) is cheap even
    // with 20,000 matches in room 2; walking all of those is what the budget has to stop.
    for (MessageId id = 1; id <= 20'000; ++id) m.push_back(MessageRow{id, 2, 1, "the", 10, 0, 0});
    ASSERT_TRUE(s->apply(m).is_ok());
    ASSERT_TRUE(s->index_pending(100'000).is_ok());
    s->set_query_time_max(std::chrono::milliseconds(0));
    auto elsewhere = search(*s, "\"the\"", {1}, 0);
    EXPECT_TRUE(elsewhere.ok);
    EXPECT_TRUE(elsewhere.rows.empty());
    auto r = search(*s, "\"the\"", {2}, 0, 20'000);
    EXPECT_FALSE(r.ok);
    EXPECT_TRUE(r.too_costly);
    EXPECT_TRUE(r.rows.empty());
    s->set_query_time_max(std::chrono::milliseconds(10'000));
    auto fine = search(*s, "\"the\"", {2}, 0, 20'000);
    EXPECT_TRUE(fine.ok);
    EXPECT_EQ(fine.rows.size(), 20'000u);
}

}  // namespace
}  // namespace warren
