// The core through its facade, with the real store: protocol errors, accounts, rooms,
// messages, durability ordering, rollback and history paging.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>

#include "tests/harness.h"

namespace warren::test {
namespace {

std::string code_of(const json& reply) {
    return reply["error"]["code"].get<std::string>();
}

TEST(Core, HelloFirst) {
    CoreHarness h;
    h.connect(1);
    auto lines = h.take(1);
    ASSERT_EQ(lines.size(), 1u);
    EXPECT_EQ(lines[0]["ev"], "HELLO");
    EXPECT_EQ(lines[0]["server"], "warren");
    EXPECT_EQ(lines[0]["protocol"], 1);
    EXPECT_EQ(lines[0]["version"], WARREN_VERSION);
    EXPECT_EQ(lines[0]["limits"]["max_frame_bytes"], 65536);
    EXPECT_EQ(lines[0]["limits"]["max_text_bytes"], 4000);
}

TEST(Core, BadFramesAnsweredThenThirdDisconnects) {
    CoreHarness h;
    h.connect(1);
    h.take(1);
    h.raw(1, "not json\n");
    auto l = h.take(1);
    ASSERT_EQ(l.size(), 1u);
    EXPECT_TRUE(l[0]["re"].is_null());
    EXPECT_EQ(l[0]["ok"], false);
    EXPECT_EQ(code_of(l[0]), "BAD_FRAME");
    h.raw(1, "[1]\n");
    EXPECT_EQ(code_of(h.take(1).at(0)), "BAD_FRAME");
    EXPECT_FALSE(h.closed(1));
    h.raw(1, "\"str\"\n{\"id\":1,\"op\":\"PING\"}\n");
    l = h.take(1);
    ASSERT_EQ(l.size(), 2u);  // the third BAD_FRAME, then DISCONNECT; the PING is not read
    EXPECT_EQ(code_of(l[0]), "BAD_FRAME");
    EXPECT_EQ(l[1]["ev"], "DISCONNECT");
    EXPECT_EQ(l[1]["reason"], "BAD_FRAMES");
    EXPECT_TRUE(h.closed(1));
}

TEST(Core, BadFrameWindowSlides) {
    CoreHarness h;
    h.connect(1);
    h.take(1);
    h.raw(1, "x\ny\n");
    h.advance(60'001);
    h.raw(1, "z\n");
    EXPECT_FALSE(h.closed(1));
    EXPECT_EQ(h.take(1).size(), 3u);
}

TEST(Core, MissingIdUnknownOpAndUnauthenticated) {
    CoreHarness h;
    h.connect(1);
    h.take(1);
    h.raw(1,
          "{\"op\":\"PING\"}\n{\"id\":7,\"op\":\"FLY\"}\n{\"id\":8,\"op\":\"SEND_MESSAGE\"}\n"
          "{\"id\":9}\n{\"id\":10,\"op\":\"PING\",\"extra\":[1]}\n");
    auto l = h.take(1);
    ASSERT_EQ(l.size(), 5u);
    EXPECT_TRUE(l[0]["re"].is_null());
    EXPECT_EQ(code_of(l[0]), "BAD_REQUEST");
    EXPECT_EQ(l[0]["error"]["field"], "id");
    EXPECT_EQ(l[1]["re"], 7);
    EXPECT_EQ(code_of(l[1]), "UNKNOWN_OP");
    EXPECT_EQ(l[2]["re"], 8);
    EXPECT_EQ(code_of(l[2]), "UNAUTHENTICATED");  // before argument checks
    EXPECT_EQ(code_of(l[3]), "BAD_REQUEST");
    EXPECT_EQ(l[3]["error"]["field"], "op");
    EXPECT_EQ(l[4]["re"], 10);
    EXPECT_EQ(l[4]["pong"], true);
    EXPECT_FALSE(h.closed(1));
}

TEST(Core, OversizedFrameRefusedAndClosedWithoutBufferingIt) {
    Config c;
    c.max_frame_bytes = 1024;
    c.text_max_bytes = 100;
    CoreHarness h(c);
    h.connect(1);
    h.take(1);
    h.raw(1, std::string(600, 'a'));
    EXPECT_TRUE(h.take(1).empty());
    h.raw(1, std::string(600, 'a'));  // no newline yet: refused as soon as it is certain
    auto l = h.take(1);
    ASSERT_EQ(l.size(), 2u);
    EXPECT_TRUE(l[0]["re"].is_null());
    EXPECT_EQ(code_of(l[0]), "FRAME_TOO_LARGE");
    EXPECT_EQ(l[1]["reason"], "FRAME_TOO_LARGE");
    EXPECT_TRUE(h.closed(1));
}

TEST(Core, RegisterLoginTokenLogout) {
    CoreHarness h;
    json r = h.register_user(1, "Alice", "correct horse");
    ASSERT_EQ(r["ok"], true) << r;
    EXPECT_EQ(r["user"]["username"], "Alice");
    std::string token = r["session"]["token"];
    EXPECT_GE(token.size(), 32u);  // >= 128 bits as hex
    EXPECT_GT(r["session"]["expires_ts"].get<int64_t>(), h.now().wall_ms);
    EXPECT_EQ(code_of(h.call(1, {{"op", "LOGIN"}, {"token", token}})), "CONFLICT");

    json dup = h.register_user(2, "alice", "another pw");
    EXPECT_EQ(code_of(dup), "CONFLICT");  // case-insensitive
    json wrong = h.call(2, {{"op", "LOGIN"}, {"username", "alice"}, {"password", "wrong pass"}});
    json unknown = h.call(2, {{"op", "LOGIN"}, {"username", "nobody"}, {"password", "wrong pass"}});
    EXPECT_EQ(code_of(wrong), "INVALID_CREDENTIALS");
    EXPECT_EQ(wrong["error"]["message"], unknown["error"]["message"]);
    json ok = h.call(2, {{"op", "LOGIN"}, {"username", "ALICE"}, {"password", "correct horse"}});
    ASSERT_EQ(ok["ok"], true) << ok;
    EXPECT_EQ(ok["user"]["username"], "Alice");  // displayed as registered

    h.connect(3);
    h.take(3);
    json t = h.call(3, {{"op", "LOGIN"}, {"token", token}});
    ASSERT_EQ(t["ok"], true) << t;
    EXPECT_EQ(t["session"]["token"], token);
    ASSERT_EQ(h.call(1, {{"op", "LOGOUT"}})["ok"], true);
    EXPECT_EQ(code_of(h.call(1, {{"op", "CREATE_ROOM"}, {"room", "x"}})), "UNAUTHENTICATED");
    h.connect(4);
    h.take(4);
    EXPECT_EQ(code_of(h.call(4, {{"op", "LOGIN"}, {"token", token}})), "INVALID_CREDENTIALS");
}

TEST(Core, RegisterValidatesArguments) {
    CoreHarness h;
    h.connect(1);
    h.take(1);
    json r = h.call(1, {{"op", "REGISTER"}, {"username", "a b"}, {"password", "12345678"}});
    EXPECT_EQ(code_of(r), "BAD_REQUEST");
    EXPECT_EQ(r["error"]["field"], "username");
    r = h.call(1, {{"op", "REGISTER"}, {"username", "abc"}, {"password", "short"}});
    EXPECT_EQ(r["error"]["field"], "password");
    r = h.call(1, {{"op", "REGISTER"}, {"username", 5}, {"password", "12345678"}});
    EXPECT_EQ(r["error"]["field"], "username");
}

TEST(Core, PipelinedRequestsWaitForTheHashAndAnswerInOrder) {
    CoreHarness h;
    h.connect(1);
    h.take(1);
    h.raw(1,
          "{\"id\":1,\"op\":\"REGISTER\",\"username\":\"bob\",\"password\":\"12345678\"}\n"
          "{\"id\":2,\"op\":\"CREATE_ROOM\",\"room\":\"r\"}\n{\"id\":3,\"op\":\"PING\"}\n");
    auto l = h.take(1);
    ASSERT_EQ(l.size(), 3u);
    for (int i = 0; i < 3; ++i) {
        EXPECT_EQ(l[i]["re"], i + 1);
        EXPECT_EQ(l[i]["ok"], true) << l[i];
    }
}

TEST(Core, RoomsAndMessagesWithEvents) {
    CoreHarness h;
    h.register_user(1, "alice");
    h.register_user(2, "bob");
    json room = h.call(1, {{"op", "CREATE_ROOM"}, {"room", "General"}, {"topic", "hi"}});
    ASSERT_EQ(room["ok"], true) << room;
    EXPECT_EQ(room["room"], (json{{"name", "General"},
                                  {"topic", "hi"},
                                  {"visibility", "public"},
                                  {"owner", "alice"},
                                  {"members", 1}}));
    EXPECT_EQ(code_of(h.call(2, {{"op", "CREATE_ROOM"}, {"room", "general"}})), "CONFLICT");
    EXPECT_EQ(code_of(h.call(2, {{"op", "SEND_MESSAGE"}, {"room", "general"}, {"text", "x"}})),
              "FORBIDDEN");
    json j = h.call(2, {{"op", "JOIN_ROOM"}, {"room", "general"}});
    EXPECT_EQ(j["room"]["members"], 2);
    auto ev = h.events(1);
    ASSERT_EQ(ev.size(), 1u);
    EXPECT_EQ(ev[0], (json{{"ev", "MEMBER_JOINED"}, {"room", "General"}, {"user", "bob"}}));
    EXPECT_EQ(h.call(2, {{"op", "JOIN_ROOM"}, {"room", "general"}})["ok"], true);
    EXPECT_TRUE(h.events(1).empty());  // idempotent join: no event

    std::string text = "<script>alert(1)</script> DROP TABLE users;\n\t\xF0\x9F\x91\x8D";
    json m = h.call(1, {{"op", "SEND_MESSAGE"}, {"room", "general"}, {"text", text}});
    ASSERT_EQ(m["ok"], true) << m;
    EXPECT_EQ(m["message"]["text"], text);
    EXPECT_EQ(m["message"]["room"], "General");
    EXPECT_TRUE(m["message"]["to"].is_null());
    EXPECT_EQ(m["message"]["author"], "alice");
    EXPECT_EQ(m["message"]["ts"], h.now().wall_ms);
    EXPECT_EQ(m["message"]["deleted"], false);
    EXPECT_TRUE(h.events(1).empty());  // the sender's connection has the reply instead
    auto got = h.events(2);
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0]["ev"], "MESSAGE");
    EXPECT_EQ(got[0]["message"], m["message"]);

    json bad = h.call(1, {{"op", "SEND_MESSAGE"}, {"room", "general"}, {"text", "a\x01"}});
    EXPECT_EQ(bad["error"]["field"], "text");
    bad = h.call(1, {{"op", "SEND_MESSAGE"}, {"room", "general"}, {"text", ""}});
    EXPECT_EQ(bad["error"]["field"], "text");
    EXPECT_EQ(code_of(h.call(1, {{"op", "SEND_MESSAGE"}, {"room", "nope"}, {"text", "x"}})),
              "NOT_FOUND");
    json reply = h.call(2, {{"op", "SEND_MESSAGE"},
                            {"room", "general"},
                            {"text", "re"},
                            {"reply_to", m["message"]["id"]}});
    EXPECT_EQ(reply["message"]["reply_to"], m["message"]["id"]);
    EXPECT_EQ(h.call(2, {{"op", "SEND_MESSAGE"},
                         {"room", "general"},
                         {"text", "re"},
                         {"reply_to", 999}})["error"]["field"],
              "reply_to");

    json hist = h.call(2, {{"op", "HISTORY"}, {"room", "general"}});
    ASSERT_EQ(hist["messages"].size(), 2u);
    EXPECT_EQ(hist["messages"][0], m["message"]);
    EXPECT_EQ(hist["has_more"], false);

    EXPECT_EQ(h.call(2, {{"op", "LEAVE_ROOM"}, {"room", "general"}})["ok"], true);
    ev = h.events(1);
    ASSERT_FALSE(ev.empty());
    EXPECT_EQ(ev.back(), (json{{"ev", "MEMBER_LEFT"}, {"room", "General"}, {"user", "bob"}}));
    EXPECT_EQ(code_of(h.call(2, {{"op", "LEAVE_ROOM"}, {"room", "general"}})), "CONFLICT");
    EXPECT_EQ(code_of(h.call(2, {{"op", "HISTORY"}, {"room", "general"}})), "FORBIDDEN");
}

// An event goes to its whole audience as one output, in the order members are named; the
// sender's reply is an output of its own.
TEST(Core, AnEventIsOneSendToItsWholeAudience) {
    CoreHarness h;
    for (ConnId c = 1; c <= 4; ++c) h.register_user(c, "user" + std::to_string(c));
    ASSERT_EQ(h.call(1, {{"op", "CREATE_ROOM"}, {"room", "hall"}})["ok"], true);
    for (ConnId c = 2; c <= 4; ++c)
        ASSERT_EQ(h.call(c, {{"op", "JOIN_ROOM"}, {"room", "hall"}})["ok"], true);
    for (ConnId c = 1; c <= 4; ++c) h.take(c);
    h.record_sends = true;
    ASSERT_EQ(h.call(3, {{"op", "SEND_MESSAGE"}, {"room", "hall"}, {"text", "hi"}})["ok"], true);
    std::vector<std::vector<ConnId>> audiences;
    for (const auto& to : h.sends)
        if (to.size() > 1) audiences.push_back(to);
    ASSERT_EQ(audiences.size(), 1u);
    std::vector<ConnId> to = audiences[0];
    std::sort(to.begin(), to.end());
    EXPECT_EQ(to, (std::vector<ConnId>{1, 2, 4}));
    for (ConnId c : {1, 2, 4}) {
        auto ev = h.events(c);
        ASSERT_EQ(ev.size(), 1u) << c;
        EXPECT_EQ(ev[0]["ev"], "MESSAGE");
    }
}

TEST(Core, ListRoomsPagesAndHidesPrivateRooms) {
    CoreHarness h;
    h.register_user(1, "alice");
    h.register_user(2, "bob");
    for (std::string r : {"c", "a", "e", "b", "d"})
        ASSERT_EQ(h.call(1, {{"op", "CREATE_ROOM"}, {"room", r}})["ok"], true);
    ASSERT_EQ(
        h.call(1, {{"op", "CREATE_ROOM"}, {"room", "secret"}, {"visibility", "private"}})["ok"],
        true);
    EXPECT_EQ(code_of(h.call(2, {{"op", "JOIN_ROOM"}, {"room", "secret"}})), "FORBIDDEN");
    std::vector<std::string> seen;
    json cursor = nullptr;
    for (int page = 0; page < 10; ++page) {
        json req = {{"op", "LIST_ROOMS"}, {"limit", 2}};
        if (!cursor.is_null()) req["cursor"] = cursor;
        json r = h.call(2, req);
        ASSERT_EQ(r["ok"], true) << r;
        for (auto& room : r["rooms"]) seen.push_back(room["name"]);
        cursor = r["next_cursor"];
        if (cursor.is_null()) break;
    }
    EXPECT_EQ(seen, (std::vector<std::string>{"a", "b", "c", "d", "e"}));
    json all = h.call(1, {{"op", "LIST_ROOMS"}, {"limit", 1000}});
    EXPECT_EQ(all["rooms"].size(), 6u);  // clamped to 50, owner sees the private room
    EXPECT_EQ(h.call(1, {{"op", "LIST_ROOMS"}, {"limit", 0}})["error"]["field"], "limit");
}

TEST(Core, ReplyAndEventsWaitForDurability) {
    CoreHarness h;
    h.register_user(1, "alice");
    h.register_user(2, "bob");
    h.call(1, {{"op", "CREATE_ROOM"}, {"room", "r"}});
    h.call(2, {{"op", "JOIN_ROOM"}, {"room", "r"}});
    h.events(1);
    h.hold_commits = true;
    h.send(1, {{"id", 100}, {"op", "SEND_MESSAGE"}, {"room", "r"}, {"text", "one"}});
    h.send(2, {{"id", 200}, {"op", "PING"}});  // a read behind an in-flight write waits too
    EXPECT_TRUE(h.take(1).empty());
    EXPECT_TRUE(h.take(2).empty());
    EXPECT_TRUE(h.store().history({1, std::nullopt, std::nullopt, 10}).rows.empty());
    h.release();
    auto a = h.take(1);
    ASSERT_EQ(a.size(), 1u);
    EXPECT_EQ(a[0]["re"], 100);
    auto b = h.take(2);
    ASSERT_EQ(b.size(), 2u);
    EXPECT_EQ(b[0]["re"], 200);
    EXPECT_EQ(b[1]["ev"], "MESSAGE");
    EXPECT_EQ(h.store().history({1, std::nullopt, std::nullopt, 10}).rows.size(), 1u);
}

TEST(Core, RequestsArrivingWhileABatchIsInFlightShareTheNextBatch) {
    CoreHarness h;
    h.register_user(1, "alice");
    h.call(1, {{"op", "CREATE_ROOM"}, {"room", "r"}});
    size_t before = h.commits;
    h.hold_commits = true;
    for (int i = 0; i < 5; ++i)
        h.send(1, {{"id", 10 + i}, {"op", "SEND_MESSAGE"}, {"room", "r"}, {"text", "m"}});
    h.hold_commits = false;
    h.release();
    // One in flight, the other four grouped: too few to go beside it (commit_pipeline_min).
    EXPECT_EQ(h.commits - before, 2u);
    auto l = h.take(1);
    ASSERT_EQ(l.size(), 5u);
    for (int i = 0; i < 5; ++i) EXPECT_EQ(l[i]["re"], 10 + i);
    EXPECT_EQ(h.store().history({1, std::nullopt, std::nullopt, 10}).rows.size(), 5u);
}

// The commit window: with nothing in flight, a batch that would follow the previous new one
// within commit_coalesce_us waits for the rest of the window, gathering what comes meanwhile
// into one commit; the core's deadline is the window's end.
struct CommitWindow {
    CoreHarness h{[] {
        Config c;
        c.commit_coalesce_us = 5000;
        c.commit_pipeline_min = 4;
        return c;
    }()};
    CommitWindow() {
        h.register_user(1, "alice");
        h.call(1, {{"op", "CREATE_ROOM"}, {"room", "r"}});
        h.advance(10);  // the window of the setup's last commit is over
    }
    void say(int id) {
        h.send(1, {{"id", id}, {"op", "SEND_MESSAGE"}, {"room", "r"}, {"text", "m"}});
    }
    // The replies to the test's own requests (ids from 10) among what connection 1 was sent:
    // its messages reach it as events too.
    std::vector<nlohmann::json> replies() {
        std::vector<nlohmann::json> out;
        for (auto& line : h.take(1))
            if (line.contains("re") && line["re"].get<int>() >= 10) out.push_back(line);
        return out;
    }
    size_t stored() { return h.store().history({1, std::nullopt, std::nullopt, 20}).rows.size(); }
};

TEST(Core, MessagesWithinTheCommitWindowShareOneCommitAtItsEnd) {
    CommitWindow w;
    size_t before = w.h.commits;
    w.say(10);  // a quiet server: at once
    EXPECT_EQ(w.h.commits - before, 1u);
    ASSERT_EQ(w.replies().size(), 1u);
    int64_t first = w.h.now().mono_us;
    w.h.advance(1);
    w.say(11);
    w.h.advance(2);
    w.say(12);
    // Held: nothing committed, nothing answered, and the core wakes at the window's end.
    EXPECT_EQ(w.h.commits - before, 1u);
    EXPECT_TRUE(w.replies().empty());
    EXPECT_EQ(w.stored(), 1u);
    ASSERT_TRUE(w.h.core().next_deadline().has_value());
    EXPECT_EQ(*w.h.core().next_deadline(), first + 5000);
    ASSERT_TRUE(w.h.tick_to_deadline());
    EXPECT_EQ(w.h.commits - before, 2u);  // both in one
    auto l = w.replies();
    ASSERT_EQ(l.size(), 2u);
    EXPECT_EQ(l[0]["re"], 11);
    EXPECT_EQ(l[1]["re"], 12);
    EXPECT_EQ(w.stored(), 3u);
}

TEST(Core, AChangeAfterTheCommitWindowGoesAtOnce) {
    CommitWindow w;
    size_t before = w.h.commits;
    w.say(10);
    w.h.advance(5);  // exactly the window later
    w.say(11);
    EXPECT_EQ(w.h.commits - before, 2u);
    EXPECT_EQ(w.replies().size(), 2u);
}

TEST(Core, ABatchHoldingCommitPipelineMinChangesDoesNotWaitForTheWindow) {
    CommitWindow w;
    size_t before = w.h.commits;
    w.say(10);
    for (int i = 11; i <= 13; ++i) w.say(i);
    EXPECT_EQ(w.h.commits - before, 1u);  // three wait
    w.say(14);                            // the fourth fills the batch: it goes
    EXPECT_EQ(w.h.commits - before, 2u);
    EXPECT_EQ(w.replies().size(), 5u);
    EXPECT_EQ(w.stored(), 5u);
}

// A read behind a held change waits with it (the read barrier), and is answered with it.
TEST(Core, AReadBehindAHeldChangeIsAnsweredWhenTheWindowEnds) {
    CommitWindow w;
    w.say(10);
    w.say(11);
    w.h.send(1, {{"id", 12}, {"op", "PING"}});
    auto early = w.replies();
    ASSERT_EQ(early.size(), 1u);
    EXPECT_EQ(early[0]["re"], 10);
    ASSERT_TRUE(w.h.tick_to_deadline());
    auto l = w.replies();
    ASSERT_EQ(l.size(), 2u);
    EXPECT_EQ(l[0]["re"], 11);
    EXPECT_EQ(l[1]["re"], 12);
}

// Pipelined commits: a batch of commit_pipeline_min changes goes to storage while the one
// before it is in flight, up to commits_in_flight_max; the rest wait in the open batch.
// `outcome` says what storage does with the first and the second.
struct Pipelined {
    CoreHarness h{[] {
        Config c;
        c.commit_pipeline_min = 3;
        c.commits_in_flight_max = 2;
        return c;
    }()};
    size_t before = 0;
    // Messages 1 (alone in the first batch), 2-4 (the second), 5-6 (the open third).
    void send_all() {
        h.register_user(1, "alice");
        h.call(1, {{"op", "CREATE_ROOM"}, {"room", "r"}});
        before = h.commits;
        h.hold_commits = true;
        for (int i = 1; i <= 6; ++i)
            h.send(1, {{"id", 100 + i},
                       {"op", "SEND_MESSAGE"},
                       {"room", "r"},
                       {"text", "m" + std::to_string(i)}});
    }
    // Storage answers every commit, held ones first.
    void land_all() {
        h.hold_commits = false;
        h.release();
    }
    std::vector<std::string> stored() {
        std::vector<std::string> out;
        for (const MessageRow& m : h.store().history({1, std::nullopt, std::nullopt, 20}).rows)
            out.push_back(m.text);
        std::sort(out.begin(), out.end());
        return out;
    }
};

TEST(Core, PipelinedBatchesGoBeforeTheOneAheadIsDurableAndReleaseInOrder) {
    Pipelined p;
    p.send_all();
    EXPECT_EQ(p.h.commits - p.before, 2u);  // the first, and the full second beside it
    EXPECT_TRUE(p.h.take(1).empty());       // nothing is answered before it is durable
    p.land_all();
    EXPECT_EQ(p.h.commits - p.before, 3u);
    auto l = p.h.take(1);
    ASSERT_EQ(l.size(), 6u);
    for (int i = 0; i < 6; ++i) {
        EXPECT_EQ(l[i]["re"], 101 + i);
        EXPECT_TRUE(l[i]["ok"].get<bool>()) << l[i];
    }
    EXPECT_EQ(p.stored(), (std::vector<std::string>{"m1", "m2", "m3", "m4", "m5", "m6"}));
}

// The first fails for good with the second in flight: storage does not apply the second
// (it builds on the first), and both are rolled back; the third, not sent yet, too.
TEST(Core, AFailedBatchTakesThePipelinedOnesBehindItWithIt) {
    Pipelined p;
    p.send_all();
    p.h.fail_commits = 1;
    p.land_all();
    auto l = p.h.take(1);
    ASSERT_EQ(l.size(), 6u);
    for (auto& r : l) EXPECT_EQ(code_of(r), "UNAVAILABLE") << r;
    EXPECT_TRUE(p.stored().empty());
    // Nor in memory: the room's history is empty, and a new message is stored and shown.
    EXPECT_TRUE(p.h.call(1, {{"op", "HISTORY"}, {"room", "r"}})["messages"].empty());
    EXPECT_EQ(p.h.call(1, {{"op", "SEND_MESSAGE"}, {"room", "r"}, {"text", "m7"}})["ok"], true);
    EXPECT_EQ(p.stored(), (std::vector<std::string>{"m7"}));
}

// The first fails transiently: the second, in flight, comes back aborted; the first goes
// again after its backoff and the second after it. Everything lands once, answered in order.
TEST(Core, ABatchRetriedSendsThePipelinedOnesAgainAfterIt) {
    Pipelined p;
    p.send_all();
    p.h.transient_commits = 1;
    p.land_all();
    std::vector<json> l = p.h.take(1);
    EXPECT_TRUE(l.empty());  // nothing before the first is durable
    while (l.size() < 6 && p.h.tick_to_deadline())
        for (json& r : p.h.take(1)) l.push_back(std::move(r));
    ASSERT_EQ(l.size(), 6u);
    for (int i = 0; i < 6; ++i) EXPECT_EQ(l[i]["re"], 101 + i);
    for (auto& r : l) EXPECT_TRUE(r["ok"].get<bool>()) << r;
    EXPECT_EQ(p.stored(), (std::vector<std::string>{"m1", "m2", "m3", "m4", "m5", "m6"}));
}

// The first lands and the second then fails: the first's replies are released, the second's
// and the third's are UNAVAILABLE, and only the first is stored.
TEST(Core, ASecondBatchFailingAfterTheFirstLandedUndoesOnlyWhatFollows) {
    Pipelined p;
    p.send_all();
    p.h.release_one();  // the first lands
    p.h.fail_commits = 1;
    p.land_all();
    auto l = p.h.take(1);
    ASSERT_EQ(l.size(), 6u);
    EXPECT_TRUE(l[0]["ok"].get<bool>()) << l[0];
    for (int i = 1; i < 6; ++i) EXPECT_EQ(code_of(l[i]), "UNAVAILABLE") << l[i];
    EXPECT_EQ(p.stored(), (std::vector<std::string>{"m1"}));
}

TEST(Core, FailedCommitRollsBackEverythingInFlight) {
    CoreHarness h;
    h.register_user(1, "alice");
    h.register_user(2, "bob");
    h.call(1, {{"op", "CREATE_ROOM"}, {"room", "r"}});
    h.call(2, {{"op", "JOIN_ROOM"}, {"room", "r"}});
    h.events(1);
    h.hold_commits = true;
    h.send(1, {{"id", 1}, {"op", "CREATE_ROOM"}, {"room", "new"}});
    h.send(1, {{"id", 2}, {"op", "SEND_MESSAGE"}, {"room", "r"}, {"text", "lost"}});
    h.send(2, {{"id", 3}, {"op", "JOIN_ROOM"}, {"room", "new"}});
    h.fail_commits = 1;
    h.hold_commits = false;
    h.release();
    auto a = h.take(1);
    ASSERT_EQ(a.size(), 2u);
    for (auto& r : a) {
        EXPECT_EQ(code_of(r), "UNAVAILABLE");
        EXPECT_GT(r["error"]["retry_after_ms"].get<int64_t>(), 0);
    }
    auto b = h.events(2);
    ASSERT_EQ(b.size(), 1u);  // the JOIN's UNAVAILABLE; no MESSAGE event ever
    EXPECT_EQ(code_of(b[0]), "UNAVAILABLE");
    // Nothing survived, in memory or on disk.
    EXPECT_EQ(code_of(h.call(2, {{"op", "JOIN_ROOM"}, {"room", "new"}})), "NOT_FOUND");
    EXPECT_TRUE(h.call(1, {{"op", "HISTORY"}, {"room", "r"}})["messages"].empty());
    EXPECT_TRUE(h.store().history({1, std::nullopt, std::nullopt, 10}).rows.empty());
    EXPECT_EQ(h.call(1, {{"op", "CREATE_ROOM"}, {"room", "new"}})["ok"], true);
    json m = h.call(1, {{"op", "SEND_MESSAGE"}, {"room", "r"}, {"text", "kept"}});
    ASSERT_EQ(m["ok"], true);
    EXPECT_GT(m["message"]["id"].get<int64_t>(), 1);  // ids are never reused
}

TEST(Core, FailedRegisterLeavesNoAccount) {
    CoreHarness h;
    h.fail_commits = 1;
    EXPECT_EQ(code_of(h.register_user(1, "alice")), "UNAVAILABLE");
    EXPECT_EQ(code_of(h.call(1, {{"op", "CREATE_ROOM"}, {"room", "r"}})), "UNAUTHENTICATED");
    EXPECT_EQ(h.register_user(2, "alice")["ok"], true);
}

// Registers alice on connection 1, creates room "r" and sends n messages to it; their ids.
std::vector<int64_t> alice_in_room_r_sends(CoreHarness& h, int n) {
    h.register_user(1, "alice");
    h.call(1, {{"op", "CREATE_ROOM"}, {"room", "r"}});
    std::vector<int64_t> ids;
    for (int i = 0; i < n; ++i)
        ids.push_back(h.call(
            1,
            {{"op", "SEND_MESSAGE"}, {"room", "r"}, {"text", std::to_string(i)}})["message"]["id"]);
    return ids;
}

TEST(Core, HistoryPagesThroughStorageWithoutGapsOrDuplicates) {
    Config c;
    c.room_cache_messages_max = 100;
    CoreHarness h(c);
    std::vector<int64_t> ids = alice_in_room_r_sends(h, 250);
    std::vector<int64_t> back;
    json req = {{"op", "HISTORY"}, {"room", "r"}, {"limit", 30}};
    for (;;) {
        json page = h.call(1, req);
        ASSERT_EQ(page["ok"], true) << page;
        std::vector<int64_t> got;
        for (auto& m : page["messages"]) got.push_back(m["id"]);
        back.insert(back.begin(), got.begin(), got.end());
        if (!page["has_more"].get<bool>()) break;
        req["before"] = got.front();
    }
    EXPECT_EQ(back, ids);
    EXPECT_GT(h.queries, 0u);
    std::vector<int64_t> fwd;
    req = {{"op", "HISTORY"}, {"room", "r"}, {"after", 0}, {"limit", 1000}};  // clamped to 100
    for (;;) {
        json page = h.call(1, req);
        ASSERT_LE(page["messages"].size(), 100u);
        for (auto& m : page["messages"]) fwd.push_back(m["id"]);
        if (!page["has_more"].get<bool>()) break;
        req["after"] = fwd.back();
    }
    EXPECT_EQ(fwd, ids);
    EXPECT_EQ(
        h.call(1,
               {{"op", "HISTORY"}, {"room", "r"}, {"before", 1}, {"after", 2}})["error"]["field"],
        "after");
}

// Pages served from memory alone are slices of the room's log: every before / after / limit
// against the list of ids the room holds, including has_more.
TEST(Core, HistoryPagesFromMemoryMatchEverySliceOfTheLog) {
    Config c;
    c.room_cache_messages_max = 100;
    CoreHarness h(c);
    std::vector<int64_t> ids = alice_in_room_r_sends(h, 12);
    int64_t lo = ids.front() - 1, hi = ids.back() + 2;
    for (int64_t bound = lo; bound <= hi; ++bound) {
        for (int limit : {1, 3, 12, 20}) {
            for (bool after : {false, true}) {
                json req = {{"op", "HISTORY"}, {"room", "r"}, {"limit", limit}};
                req[after ? "after" : "before"] = bound;
                if (!after && bound < 1) continue;  // before must name an id
                json page = h.call(1, req);
                ASSERT_EQ(page["ok"], true) << req << page;
                std::vector<int64_t> in_range;
                for (int64_t id : ids)
                    if (after ? id > bound : id < bound) in_range.push_back(id);
                size_t take = std::min<size_t>(in_range.size(), static_cast<size_t>(limit));
                std::vector<int64_t> want =
                    after ? std::vector<int64_t>(in_range.begin(), in_range.begin() + take)
                          : std::vector<int64_t>(in_range.end() - take, in_range.end());
                std::vector<int64_t> got;
                for (auto& m : page["messages"]) got.push_back(m["id"]);
                EXPECT_EQ(got, want) << req;
                EXPECT_EQ(page["has_more"], in_range.size() > static_cast<size_t>(limit)) << req;
            }
        }
    }
    EXPECT_EQ(h.queries, 0u);  // all from memory
}

TEST(Core, SlowReaderIsDisconnected) {
    Config c;
    c.outbound_bytes_max = 4096;
    CoreHarness h(c);
    h.register_user(1, "alice");
    h.register_user(2, "bob");
    h.call(1, {{"op", "CREATE_ROOM"}, {"room", "r"}});
    h.call(2, {{"op", "JOIN_ROOM"}, {"room", "r"}});
    // bob never reads: his queue grows until the bound closes him.
    h.stalled.insert(2);
    for (int i = 0; i < 40 && !h.closed(2); ++i)
        h.call(1, {{"op", "SEND_MESSAGE"}, {"room", "r"}, {"text", std::string(200, 'x')}});
    EXPECT_TRUE(h.closed(2));
    EXPECT_EQ(h.close_reason(2), "SLOW_CONSUMER");
    EXPECT_FALSE(h.closed(1));
    EXPECT_FALSE(h.closed(4));
}

// A member who keeps reading is not dropped because a busy room produced a burst (here
// 6.6 MB, past the old fixed 4 MiB cap); one who reads nothing is, once the stall time passes.
TEST(Core, ABurstIsNotASlowConsumerButAStallIs) {
    // The burst lands whole (backpressure would spread it out: the holds' own tests).
    Config config = without_abuse_limits(Config{});
    config.outbound_bytes_hold = config.outbound_bytes_total_max / 2;
    // abuse_limits=true keeps the default sweep (the harness otherwise moves it a day away).
    CoreHarness h(config, ":memory:", /*abuse_limits=*/true);
    h.register_user(1, "alice");
    h.register_user(2, "bob");
    h.register_user(3, "carol");
    h.call(1, {{"op", "CREATE_ROOM"}, {"room", "r"}});
    h.call(2, {{"op", "JOIN_ROOM"}, {"room", "r"}});
    h.call(3, {{"op", "JOIN_ROOM"}, {"room", "r"}});
    h.stalled.insert(2);
    h.stalled.insert(3);
    // A burst: two senders' 1600 pipelined messages committed together, their events
    // released at once.
    h.register_user(4, "dave");
    h.call(4, {{"op", "JOIN_ROOM"}, {"room", "r"}});
    h.hold_commits = true;
    for (int i = 0; i < 800; ++i)
        for (ConnId from : {ConnId{1}, ConnId{4}})
            h.send(from, {{"id", 10 + i},
                          {"op", "SEND_MESSAGE"},
                          {"room", "r"},
                          {"text", std::string(4000, 'x')}});
    h.hold_commits = false;
    h.release();
    ASSERT_GT(h.unread_bytes(2), 6'000'000u);
    EXPECT_FALSE(h.closed(2));
    EXPECT_FALSE(h.closed(3));
    const Config& c = h.core().config();
    for (int64_t t = 0; t <= c.outbound_stall_ms + 2 * c.sweep_interval_ms; t += 500) {
        h.advance(500);
        h.core().sent(2, 64 * 1024, h.now());  // bob reads 128 KiB a second
        h.tick();
    }
    EXPECT_FALSE(h.closed(2));
    EXPECT_EQ(h.close_reason(3), "SLOW_CONSUMER");
    // (Past outbound_bytes_max a connection is closed at once: SlowReaderIsDisconnected.)
    EXPECT_FALSE(h.closed(1)) << h.close_reason(1);
    EXPECT_FALSE(h.closed(4)) << h.close_reason(4);
}

// Backpressure: a reader that reads but is far behind holds back the sender whose messages
// it is behind on (its lines wait, the driver stops reading it) until it has caught up; a
// reader that stops reading holds nobody for long.
// alice (connection 1) and bob (2), both in room "r".
void alice_and_bob_in_a_room(CoreHarness& h) {
    h.register_user(1, "alice");
    h.register_user(2, "bob");
    h.call(1, {{"op", "CREATE_ROOM"}, {"room", "r"}});
    h.call(2, {{"op", "JOIN_ROOM"}, {"room", "r"}});
}

// bob stops reading; alice sends 4000-byte messages, each after the last one's reply, until
// bob is more than outbound_bytes_stalled_max behind.
void stall_bob_behind_alice(CoreHarness& h) {
    h.stalled.insert(2);
    std::string text(4000, 'x');
    while (h.unread_bytes(2) <= h.core().config().outbound_bytes_stalled_max) {
        ASSERT_TRUE(h.core().wants_input(1));
        h.call(1, {{"op", "SEND_MESSAGE"}, {"room", "r"}, {"text", text}});
    }
}

TEST(Core, ReadersFarBehindHoldTheirSendersBack) {
    CoreHarness h(without_abuse_limits(Config{}), ":memory:", /*abuse_limits=*/true);
    alice_and_bob_in_a_room(h);
    stall_bob_behind_alice(h);
    const size_t high = h.core().config().outbound_bytes_stalled_max;
    std::string text(4000, 'x');
    EXPECT_FALSE(h.core().wants_input(1));
    EXPECT_TRUE(h.core().wants_input(2));
    h.send(1, {{"id", 9001}, {"op", "SEND_MESSAGE"}, {"room", "r"}, {"text", "waits"}});
    auto replied = [&] {
        for (const json& l : h.take(1))
            if (l.value("re", 0) == 9001) return true;
        return false;
    };
    EXPECT_FALSE(replied());
    // bob reads, but not yet down to half the mark: alice still waits.
    size_t outbound = h.unread_bytes(2);
    h.core().sent(2, outbound - high / 2 - 1, h.now());
    h.tick();
    EXPECT_FALSE(h.core().wants_input(1));
    EXPECT_FALSE(replied());
    h.core().sent(2, 2, h.now());
    h.tick();
    EXPECT_TRUE(h.core().wants_input(1));
    EXPECT_TRUE(replied());
    EXPECT_FALSE(h.closed(1));
    EXPECT_FALSE(h.closed(2));
    // bob stops reading altogether: once he is behind again he holds alice, but only until
    // the next sweep finds him idle for a second.
    while (h.core().wants_input(1))
        h.call(1, {{"op", "SEND_MESSAGE"}, {"room", "r"}, {"text", text}});
    h.advance(2 * h.core().config().sweep_interval_ms);
    h.tick();
    h.advance(h.core().config().sweep_interval_ms);
    h.tick();
    EXPECT_TRUE(h.core().wants_input(1));
    EXPECT_FALSE(h.closed(2));  // not yet: the stall time has not passed
}

// A reader quiet for a while (nothing to read) that falls behind when a burst begins is
// reading as far as backpressure goes: it holds the sender back as soon as it is past the
// mark, instead of its backlog growing unchecked until the memory bound closes it.
TEST(Core, AReaderIdleBeforeABurstHoldsTheSenderBack) {
    CoreHarness h(without_abuse_limits(Config{}), ":memory:", /*abuse_limits=*/true);
    alice_and_bob_in_a_room(h);
    h.advance(5000);
    h.tick();
    stall_bob_behind_alice(h);
    EXPECT_FALSE(h.core().wants_input(1));
    h.core().sent(2, h.unread_bytes(2), h.now());
    h.tick();
    EXPECT_TRUE(h.core().wants_input(1));
    EXPECT_FALSE(h.closed(2));
}

// What the batches in flight will deliver counts against the global outbound budget before
// their commit lands: a sender whose pipelined messages would flood a big room all at once
// is held back (its lines wait) instead of the burst shedding readers that read.
TEST(Core, ASenderIsHeldBeforeItsCommittedBurstWouldOverflowTheBudget) {
    Config c = without_abuse_limits(Config{});
    c.outbound_bytes_hold = 512 << 10;
    CoreHarness h(c, ":memory:", /*abuse_limits=*/true);
    h.register_user(1, "sender");
    h.call(1, {{"op", "CREATE_ROOM"}, {"room", "big"}});
    constexpr ConnId readers = 20;
    for (ConnId r = 2; r < 2 + readers; ++r) {
        h.register_user(r, "reader" + std::to_string(r));
        h.call(r, {{"op", "JOIN_ROOM"}, {"room", "big"}});
        h.take(r);
    }
    // 400 messages of 1 KB to 20 readers: 8 MB, sixteen times the hold. The sender writes
    // while the server wants its input (as the driver reads it).
    constexpr int messages = 400;
    int sent = 0, answered = 0;
    auto send_while_wanted = [&] {
        for (; sent < messages && h.core().wants_input(1); ++sent)
            h.send(1, {{"id", 10 + sent},
                       {"op", "SEND_MESSAGE"},
                       {"room", "big"},
                       {"text", std::string(1000, 'a' + sent % 26)}});
    };
    h.hold_commits = true;
    send_while_wanted();
    EXPECT_LT(sent, messages / 8);  // held while what its batches owe is past the hold
    EXPECT_FALSE(h.core().wants_input(1));
    h.hold_commits = false;
    for (int round = 0; round < 1000 && answered < messages; ++round) {
        h.release();
        h.tick();
        send_while_wanted();
        for (const json& l : h.take(1))
            if (l.contains("re")) ++answered;
    }
    EXPECT_EQ(answered, messages);
    EXPECT_TRUE(h.core().wants_input(1));
    for (ConnId r = 2; r < 2 + readers; ++r) {
        EXPECT_FALSE(h.closed(r)) << r;
        int got = 0;
        for (const json& e : h.events(r))
            if (e["ev"] == "MESSAGE") ++got;
        EXPECT_EQ(got, messages) << r;
    }
}

TEST(Core, RestartFromFileKeepsEverything) {
    auto dir =
        std::filesystem::temp_directory_path() / ("warren-core-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    std::string db = (dir / "w.db").string();
    std::string token;
    {
        CoreHarness h({}, db);
        token = h.register_user(1, "alice")["session"]["token"];
        h.call(1, {{"op", "CREATE_ROOM"}, {"room", "r"}});
        h.call(1, {{"op", "SEND_MESSAGE"}, {"room", "r"}, {"text", "persisted"}});
    }
    {
        CoreHarness h({}, db);
        h.connect(1);
        h.take(1);
        ASSERT_EQ(h.call(1, {{"op", "LOGIN"}, {"token", token}})["ok"], true);
        json hist = h.call(1, {{"op", "HISTORY"}, {"room", "r"}});
        ASSERT_EQ(hist["messages"].size(), 1u);
        EXPECT_EQ(hist["messages"][0]["text"], "persisted");
        json m = h.call(1, {{"op", "SEND_MESSAGE"}, {"room", "r"}, {"text", "next"}});
        EXPECT_EQ(m["message"]["id"], 2);
    }
    std::filesystem::remove_all(dir);
}

TEST(Core, ShutdownFinishesInFlightWorkThenDisconnects) {
    CoreHarness h;
    h.register_user(1, "alice");
    h.call(1, {{"op", "CREATE_ROOM"}, {"room", "r"}});
    h.hold_commits = true;
    h.send(1, {{"id", 5}, {"op", "SEND_MESSAGE"}, {"room", "r"}, {"text", "last"}});
    h.core().shutdown(h.now());
    EXPECT_FALSE(h.core().stopped());
    h.release();
    auto l = h.take(1);
    ASSERT_EQ(l.size(), 2u);
    EXPECT_EQ(l[0]["ok"], true);
    EXPECT_EQ(l[1]["reason"], "SHUTDOWN");
    EXPECT_TRUE(h.core().stopped());
}

}  // namespace
}  // namespace warren::test

namespace warren::test {
namespace {

// A released batch lends its vectors to the next new one: that one starts empty (no reply,
// event or undo of the old one leaks into it), with a new id, and keeps the storage.
TEST(Txn, ARecycledBatchStartsEmptyWithItsStorageKept) {
    BatchQueue q(/*mutations_max=*/4, /*queued_max=*/8);
    Batch& first = q.open();
    for (int i = 0; i < 100; ++i)
        first.replies.push_back(PendingReply{1, uint64_t(i), i, reply::Done{}});
    first.events.emplace_back();
    first.undo.emplace_back();
    first.owed_bytes = 7;
    first.attempts = 3;
    BatchId id = first.id;
    size_t capacity = first.replies.capacity();
    q.recycle(q.pop_committed(id));
    Batch& next = q.open();
    EXPECT_GT(next.id, id);
    EXPECT_TRUE(next.replies.empty());
    EXPECT_TRUE(next.events.empty());
    EXPECT_TRUE(next.undo.empty());
    EXPECT_TRUE(next.mutations.empty());
    EXPECT_EQ(next.owed_bytes, 0u);
    EXPECT_EQ(next.attempts, 0u);
    EXPECT_FALSE(next.sent);
    EXPECT_EQ(next.replies.capacity(), capacity);
}

TEST(Txn, TransientFailuresAreRetriedWithBackoffThenSucceed) {
    CoreHarness h;
    h.register_user(1, "alice");
    h.call(1, {{"op", "CREATE_ROOM"}, {"room", "r"}});
    h.transient_commits = 2;
    h.send(1, {{"id", 50}, {"op", "SEND_MESSAGE"}, {"room", "r"}, {"text", "eventually"}});
    EXPECT_TRUE(h.take(1).empty());  // waiting for a retry, not answered
    int64_t start = h.now().mono_ms();
    int ticks = 0;
    while (h.tick_to_deadline()) ++ticks;
    EXPECT_EQ(ticks, 2);
    // Two waits of at most 20 and 40 ms (full jitter).
    EXPECT_LE(h.now().mono_ms() - start, 60);
    auto l = h.take(1);
    ASSERT_EQ(l.size(), 1u);
    EXPECT_EQ(l[0]["ok"], true) << l[0];
    EXPECT_EQ(h.core().storage_stats().commit_retries, 2u);
    EXPECT_EQ(h.store().history({1, std::nullopt, std::nullopt, 10}).rows.size(), 1u);
}

TEST(Txn, RetriesRunOutThenRollBack) {
    Config c;
    c.commit_attempts_max = 3;
    CoreHarness h(c);
    h.register_user(1, "alice");
    h.call(1, {{"op", "CREATE_ROOM"}, {"room", "r"}});
    h.transient_commits = 100;
    h.send(1, {{"id", 50}, {"op", "SEND_MESSAGE"}, {"room", "r"}, {"text", "never"}});
    while (h.tick_to_deadline()) {
    }
    auto l = h.take(1);
    ASSERT_EQ(l.size(), 1u);
    EXPECT_EQ(code_of(l[0]), "UNAVAILABLE");
    EXPECT_EQ(h.core().storage_stats().commit_retries, 2u);
    EXPECT_EQ(h.core().storage_stats().batches_failed, 1u);
    h.transient_commits = 0;
    EXPECT_TRUE(h.call(1, {{"op", "HISTORY"}, {"room", "r"}})["messages"].empty());
}

TEST(Txn, BreakerOpensFailsFastKeepsReadsAndRecovers) {
    Config c;
    c.breaker_failures_max = 2;
    c.breaker_open_ms = 5000;
    CoreHarness h(c);
    h.register_user(1, "alice");
    h.call(1, {{"op", "CREATE_ROOM"}, {"room", "r"}});
    h.call(1, {{"op", "SEND_MESSAGE"}, {"room", "r"}, {"text", "before"}});
    h.fail_commits = 2;
    EXPECT_EQ(code_of(h.call(1, {{"op", "SEND_MESSAGE"}, {"room", "r"}, {"text", "a"}})),
              "UNAVAILABLE");
    EXPECT_EQ(h.core().breaker_state(), Breaker::State::closed);
    EXPECT_EQ(code_of(h.call(1, {{"op", "SEND_MESSAGE"}, {"room", "r"}, {"text", "b"}})),
              "UNAVAILABLE");
    EXPECT_EQ(h.core().breaker_state(), Breaker::State::open);
    size_t commits = h.commits;
    json refused = h.call(1, {{"op", "SEND_MESSAGE"}, {"room", "r"}, {"text", "c"}});
    EXPECT_EQ(code_of(refused), "UNAVAILABLE");
    EXPECT_EQ(refused["error"]["retry_after_ms"], 5000);
    EXPECT_EQ(h.commits, commits);  // failed fast: storage was not asked
    json hist = h.call(1, {{"op", "HISTORY"}, {"room", "r"}});  // reads go on
    ASSERT_EQ(hist["ok"], true);
    EXPECT_EQ(hist["messages"].size(), 1u);
    h.advance(5000);
    h.tick();  // the core knows time only through its inputs
    EXPECT_EQ(h.core().breaker_state(), Breaker::State::half_open);
    EXPECT_EQ(h.call(1, {{"op", "SEND_MESSAGE"}, {"room", "r"}, {"text", "probe"}})["ok"], true);
    EXPECT_EQ(h.core().breaker_state(), Breaker::State::closed);
    EXPECT_EQ(h.core().breaker_opened_count(), 1u);
}

TEST(Txn, FailedProbeReopensTheBreaker) {
    Config c;
    c.breaker_failures_max = 1;
    CoreHarness h(c);
    h.register_user(1, "alice");
    h.call(1, {{"op", "CREATE_ROOM"}, {"room", "r"}});
    h.fail_commits = 2;
    h.call(1, {{"op", "SEND_MESSAGE"}, {"room", "r"}, {"text", "a"}});
    EXPECT_EQ(h.core().breaker_state(), Breaker::State::open);
    h.advance(c.breaker_open_ms);
    EXPECT_EQ(code_of(h.call(1, {{"op", "SEND_MESSAGE"}, {"room", "r"}, {"text", "probe"}})),
              "UNAVAILABLE");
    EXPECT_EQ(h.core().breaker_state(), Breaker::State::open);
    EXPECT_EQ(h.core().breaker_opened_count(), 2u);
}

}  // namespace
}  // namespace warren::test

namespace warren::test {
namespace {

TEST(Direct, MessagesReachTheRecipientAndTheSendersOtherConnections) {
    CoreHarness h;
    std::string token = h.register_user(1, "alice")["session"]["token"];
    h.register_user(2, "bob");
    h.connect(3);
    h.take(3);
    ASSERT_EQ(h.call(3, {{"op", "LOGIN"}, {"token", token}})["ok"], true);  // alice again
    h.register_user(4, "carol");
    json m = h.call(1, {{"op", "DIRECT_MESSAGE"}, {"to", "Bob"}, {"text", "psst"}});
    ASSERT_EQ(m["ok"], true) << m;
    EXPECT_TRUE(m["message"]["room"].is_null());
    EXPECT_EQ(m["message"]["to"], "bob");
    EXPECT_EQ(m["message"]["author"], "alice");
    auto to_bob = h.events(2);
    ASSERT_EQ(to_bob.size(), 1u);
    EXPECT_EQ(to_bob[0]["ev"], "DIRECT_MESSAGE");
    EXPECT_EQ(to_bob[0]["message"], m["message"]);
    auto to_alice2 = h.events(3);
    ASSERT_EQ(to_alice2.size(), 1u);
    EXPECT_EQ(to_alice2[0]["message"]["id"], m["message"]["id"]);
    EXPECT_TRUE(h.events(1).empty());
    EXPECT_TRUE(h.events(4).empty());
    EXPECT_EQ(code_of(h.call(1, {{"op", "DIRECT_MESSAGE"}, {"to", "nobody"}, {"text", "x"}})),
              "NOT_FOUND");
    EXPECT_EQ(h.call(1, {{"op", "DIRECT_MESSAGE"}, {"to", "b c"}, {"text", "x"}})["error"]["field"],
              "to");
    json reply = h.call(2, {{"op", "DIRECT_MESSAGE"},
                            {"to", "alice"},
                            {"text", "ok"},
                            {"reply_to", m["message"]["id"]}});
    EXPECT_EQ(reply["message"]["reply_to"], m["message"]["id"]);
    EXPECT_EQ(h.call(4, {{"op", "DIRECT_MESSAGE"},
                         {"to", "alice"},
                         {"text", "x"},
                         {"reply_to", m["message"]["id"]}})["error"]["field"],
              "reply_to");  // a message of another conversation
    json hist = h.call(2, {{"op", "HISTORY"}, {"with", "alice"}});
    ASSERT_EQ(hist["messages"].size(), 2u) << hist;
    EXPECT_EQ(hist["messages"][0]["text"], "psst");
    EXPECT_TRUE(h.call(4, {{"op", "HISTORY"}, {"with", "alice"}})["messages"].empty());
    EXPECT_EQ(h.call(4, {{"op", "HISTORY"}, {"with", "alice"}, {"room", "r"}})["error"]["field"],
              "room");
}

TEST(Direct, OfflineRecipientFindsMessagesAfterLoggingIn) {
    CoreHarness h;
    h.register_user(1, "alice");
    h.register_user(2, "bob");
    h.call(2, {{"op", "LOGOUT"}});
    h.disconnect(2);
    ASSERT_EQ(h.call(1, {{"op", "DIRECT_MESSAGE"}, {"to", "bob"}, {"text", "while away"}})["ok"],
              true);
    h.connect(5);
    h.take(5);
    ASSERT_EQ(h.call(5, {{"op", "LOGIN"}, {"username", "bob"}, {"password", "password1"}})["ok"],
              true);
    json hist = h.call(5, {{"op", "HISTORY"}, {"with", "alice"}});
    ASSERT_EQ(hist["messages"].size(), 1u);
    EXPECT_EQ(hist["messages"][0]["text"], "while away");
}

TEST(Direct, ConversationHistoryPagesThroughStorageAndSurvivesEviction) {
    Config c;
    c.conversation_cache_messages_max = 8;
    c.conversations_cached_max = 2;
    CoreHarness h(c);
    h.register_user(1, "alice");
    h.register_user(2, "bob");
    h.register_user(3, "carol");
    h.register_user(4, "dave");
    std::vector<int64_t> ids;
    for (int i = 0; i < 60; ++i) {
        ids.push_back(h.call(1, {{"op", "DIRECT_MESSAGE"},
                                 {"to", "bob"},
                                 {"text", "m" + std::to_string(i)}})["message"]["id"]);
        // Other conversations push alice-bob out of memory now and then.
        h.call(3, {{"op", "DIRECT_MESSAGE"}, {"to", i % 2 ? "dave" : "alice"}, {"text", "x"}});
    }
    std::vector<int64_t> back;
    json req = {{"op", "HISTORY"}, {"with", "alice"}, {"limit", 7}};
    for (int guard = 0; guard < 100; ++guard) {
        json page = h.call(2, req);
        ASSERT_EQ(page["ok"], true) << page;
        std::vector<int64_t> got;
        for (auto& m : page["messages"]) got.push_back(m["id"]);
        back.insert(back.begin(), got.begin(), got.end());
        if (!page["has_more"].get<bool>()) break;
        req["before"] = got.front();
    }
    EXPECT_EQ(back, ids);
    EXPECT_LE(h.core().state().conversation_count(), 2u);
    EXPECT_GT(h.queries, 0u);
}

}  // namespace
}  // namespace warren::test

namespace warren::test {
namespace {

TEST(Chat, TopicOwnerOnlyWithEvent) {
    CoreHarness h;
    h.register_user(1, "alice");
    h.register_user(2, "bob");
    h.call(1, {{"op", "CREATE_ROOM"}, {"room", "r"}});
    h.call(2, {{"op", "JOIN_ROOM"}, {"room", "r"}});
    h.events(1);
    EXPECT_EQ(code_of(h.call(2, {{"op", "SET_TOPIC"}, {"room", "r"}, {"topic", "mine"}})),
              "FORBIDDEN");
    json t = h.call(1, {{"op", "SET_TOPIC"}, {"room", "r"}, {"topic", "release day"}});
    ASSERT_EQ(t["ok"], true) << t;
    EXPECT_EQ(t["room"]["topic"], "release day");
    auto ev = h.events(2);
    ASSERT_EQ(ev.size(), 1u);
    EXPECT_EQ(
        ev[0],
        (json{{"ev", "TOPIC_CHANGED"}, {"room", "r"}, {"topic", "release day"}, {"by", "alice"}}));
    EXPECT_EQ(h.call(1, {{"op", "SET_TOPIC"},
                         {"room", "r"},
                         {"topic", std::string(201, 't')}})["error"]["field"],
              "topic");
    h.fail_commits = 1;
    EXPECT_EQ(code_of(h.call(1, {{"op", "SET_TOPIC"}, {"room", "r"}, {"topic", "lost"}})),
              "UNAVAILABLE");
    EXPECT_EQ(h.call(2, {{"op", "JOIN_ROOM"}, {"room", "r"}})["room"]["topic"], "release day");
}

TEST(Chat, ReadMarkersGoToMyOtherConnections) {
    CoreHarness h;
    std::string token = h.register_user(1, "alice")["session"]["token"];
    h.connect(2);
    h.take(2);
    h.call(2, {{"op", "LOGIN"}, {"token", token}});
    h.register_user(3, "bob");
    h.call(1, {{"op", "CREATE_ROOM"}, {"room", "r"}});
    h.events(2);
    int64_t id = h.call(1, {{"op", "SEND_MESSAGE"}, {"room", "r"}, {"text", "x"}})["message"]["id"];
    h.events(2);
    ASSERT_EQ(h.call(1, {{"op", "MARK_READ"}, {"room", "r"}, {"message_id", id}})["ok"], true);
    auto ev = h.events(2);
    ASSERT_EQ(ev.size(), 1u);
    EXPECT_EQ(ev[0], (json{{"ev", "READ_MARKER"}, {"room", "r"}, {"message_id", id}}));
    EXPECT_TRUE(h.events(3).empty());
    ASSERT_EQ(h.call(1, {{"op", "MARK_READ"}, {"with", "bob"}, {"message_id", id}})["ok"], true);
    EXPECT_EQ(h.events(2)[0]["with"], "bob");
    EXPECT_EQ(code_of(h.call(3, {{"op", "MARK_READ"}, {"room", "r"}, {"message_id", id}})),
              "FORBIDDEN");
    EXPECT_EQ(code_of(h.call(1, {{"op", "MARK_READ"}, {"room", "r"}, {"message_id", id + 50}})),
              "NOT_FOUND");
    EXPECT_EQ(h.call(1, {{"op", "MARK_READ"}, {"room", "r"}})["error"]["field"], "message_id");
}

// A marker never moves back, in memory and in storage: an older id is answered ok and changes
// nothing (no READ_MARKER), also after a restart on the same file.
TEST(Chat, ReadMarkersNeverMoveBack) {
    char tmpl[] = "/tmp/warren-markers-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    std::string db = std::string(tmpl) + "/w.db";
    int64_t first = 0, second = 0;
    {
        CoreHarness h(Config{}, db);
        h.register_user(1, "alice");
        h.call(1, {{"op", "CREATE_ROOM"}, {"room", "r"}});
        first = h.call(1, {{"op", "SEND_MESSAGE"}, {"room", "r"}, {"text", "a"}})["message"]["id"];
        second = h.call(1, {{"op", "SEND_MESSAGE"}, {"room", "r"}, {"text", "b"}})["message"]["id"];
        h.connect(2);
        h.take(2);
        json token = h.call(2, {{"op", "LOGIN"}, {"username", "alice"}, {"password", "password1"}});
        ASSERT_EQ(token["ok"], true);
        ASSERT_EQ(h.call(1, {{"op", "MARK_READ"}, {"room", "r"}, {"message_id", second}})["ok"],
                  true);
        EXPECT_EQ(h.events(2).size(), 1u);
        EXPECT_EQ(h.call(1, {{"op", "MARK_READ"}, {"room", "r"}, {"message_id", first}})["ok"],
                  true);
        EXPECT_TRUE(h.events(2).empty());
        EXPECT_EQ(h.core().state().read_marker(1, h.core().state().find_room("r")->id, 0), second);
    }
    CoreHarness h(Config{}, db);
    const Room* r = h.core().state().find_room("r");
    ASSERT_NE(r, nullptr);
    UserId alice = h.core().state().find_user("alice")->id;
    EXPECT_EQ(h.core().state().read_marker(alice, r->id, 0), second);
    json in = h.register_user(1, "bobby");
    ASSERT_EQ(in["ok"], true);
    auto snap = h.store().load(10, h.now().wall_ms);
    ASSERT_TRUE(snap.is_ok());
    ASSERT_EQ(snap.value().read_markers.size(), 1u);
    EXPECT_EQ(snap.value().read_markers[0].message, second);
    std::filesystem::remove_all(tmpl);
}

TEST(Chat, UserListsAndPresence) {
    CoreHarness h;
    h.register_user(1, "alice");
    h.register_user(2, "bob");
    h.call(1, {{"op", "CREATE_ROOM"}, {"room", "r"}});
    h.call(2, {{"op", "JOIN_ROOM"}, {"room", "r"}});
    h.call(1, {{"op", "CREATE_ROOM"}, {"room", "hidden"}, {"visibility", "private"}});
    h.events(1);
    h.events(2);
    json online = h.call(1, {{"op", "REQUEST_USER_LIST"}});
    EXPECT_EQ(online["users"], (json{{{"username", "alice"}, {"online", true}},
                                     {{"username", "bob"}, {"online", true}}}));
    // carol shares no room: no presence about her; bob's last connection closing is announced.
    h.register_user(3, "carol");
    EXPECT_TRUE(h.events(1).empty());
    h.disconnect(2);
    auto ev = h.events(1);
    ASSERT_EQ(ev.size(), 1u);
    EXPECT_EQ(ev[0], (json{{"ev", "PRESENCE"}, {"user", "bob"}, {"online", false}}));
    json members = h.call(3, {{"op", "REQUEST_USER_LIST"}, {"room", "r"}});
    EXPECT_EQ(members["users"], (json{{{"username", "alice"}, {"online", true}},
                                      {{"username", "bob"}, {"online", false}}}));
    EXPECT_EQ(code_of(h.call(3, {{"op", "REQUEST_USER_LIST"}, {"room", "hidden"}})), "FORBIDDEN");
    h.connect(4);
    h.take(4);
    h.call(4, {{"op", "LOGIN"}, {"username", "bob"}, {"password", "password1"}});
    ev = h.events(1);
    ASSERT_EQ(ev.size(), 1u);
    EXPECT_EQ(ev[0], (json{{"ev", "PRESENCE"}, {"user", "bob"}, {"online", true}}));
    h.call(4, {{"op", "LOGOUT"}});
    EXPECT_EQ(h.events(1).at(0)["online"], false);
}

TEST(Chat, FailedLoginAnnouncesNothing) {
    CoreHarness h;
    h.register_user(1, "alice");
    h.register_user(2, "bob");
    h.call(1, {{"op", "CREATE_ROOM"}, {"room", "r"}});
    h.call(2, {{"op", "JOIN_ROOM"}, {"room", "r"}});
    h.call(2, {{"op", "LOGOUT"}});
    h.events(1);
    h.fail_commits = 1;
    EXPECT_EQ(code_of(h.call(2, {{"op", "LOGIN"}, {"username", "bob"}, {"password", "password1"}})),
              "UNAVAILABLE");
    EXPECT_TRUE(h.events(1).empty());
}

}  // namespace
}  // namespace warren::test

namespace warren::test {
namespace {

TEST(Invitations, InviteAcceptDeclineListAndEvents) {
    CoreHarness h;
    h.register_user(1, "alice");
    h.register_user(2, "bob");
    h.register_user(3, "carol");
    h.call(1, {{"op", "CREATE_ROOM"}, {"room", "ops"}, {"visibility", "private"}});
    EXPECT_EQ(code_of(h.call(2, {{"op", "JOIN_ROOM"}, {"room", "ops"}})), "FORBIDDEN");
    EXPECT_EQ(code_of(h.call(2, {{"op", "INVITE_USER"}, {"room", "ops"}, {"user", "carol"}})),
              "FORBIDDEN");  // only members invite
    EXPECT_EQ(code_of(h.call(1, {{"op", "INVITE_USER"}, {"room", "ops"}, {"user", "zed"}})),
              "NOT_FOUND");
    EXPECT_EQ(code_of(h.call(1, {{"op", "INVITE_USER"}, {"room", "ops"}, {"user", "alice"}})),
              "CONFLICT");  // already a member
    json inv = h.call(1, {{"op", "INVITE_USER"}, {"room", "ops"}, {"user", "bob"}});
    ASSERT_EQ(inv["ok"], true) << inv;
    EXPECT_EQ(inv["invitation"]["room"], "ops");
    EXPECT_EQ(inv["invitation"]["from"], "alice");
    EXPECT_EQ(inv["invitation"]["to"], "bob");
    EXPECT_EQ(
        inv["invitation"]["expires_ts"].get<int64_t>() - inv["invitation"]["ts"].get<int64_t>(),
        7LL * 24 * 3600 * 1000);
    EXPECT_EQ(code_of(h.call(1, {{"op", "INVITE_USER"}, {"room", "ops"}, {"user", "bob"}})),
              "CONFLICT");  // a second pending one
    auto ev = h.events(2);
    ASSERT_EQ(ev.size(), 1u);
    EXPECT_EQ(ev[0]["ev"], "INVITATION");
    EXPECT_EQ(ev[0]["invitation"], inv["invitation"]);
    json list = h.call(2, {{"op", "LIST_INVITATIONS"}});
    ASSERT_EQ(list["invitations"].size(), 1u);
    EXPECT_TRUE(h.call(3, {{"op", "LIST_INVITATIONS"}})["invitations"].empty());
    EXPECT_EQ(code_of(h.call(
                  3, {{"op", "ACCEPT_INVITATION"}, {"invitation_id", inv["invitation"]["id"]}})),
              "NOT_FOUND");  // not carol's
    json acc = h.call(2, {{"op", "ACCEPT_INVITATION"}, {"invitation_id", inv["invitation"]["id"]}});
    ASSERT_EQ(acc["ok"], true) << acc;
    EXPECT_EQ(acc["room"]["members"], 2);
    ev = h.events(1);
    ASSERT_EQ(ev.size(), 2u);
    EXPECT_EQ(ev[0]["ev"], "INVITATION_ACCEPTED");
    EXPECT_EQ(ev[1], (json{{"ev", "MEMBER_JOINED"}, {"room", "ops"}, {"user", "bob"}}));
    EXPECT_TRUE(h.call(2, {{"op", "LIST_INVITATIONS"}})["invitations"].empty());
    EXPECT_EQ(code_of(h.call(2, {{"op", "ACCEPT_INVITATION"}, {"room", "ops"}})), "NOT_FOUND");

    // carol: invited by bob, declines; then invited again, joins with JOIN_ROOM.
    h.call(2, {{"op", "INVITE_USER"}, {"room", "ops"}, {"user", "carol"}});
    h.events(3);
    ASSERT_EQ(h.call(3, {{"op", "DECLINE_INVITATION"}, {"room", "ops"}})["ok"], true);
    ev = h.events(2);
    ASSERT_EQ(ev.size(), 1u);
    EXPECT_EQ(ev[0]["ev"], "INVITATION_DECLINED");
    EXPECT_EQ(code_of(h.call(3, {{"op", "JOIN_ROOM"}, {"room", "ops"}})), "FORBIDDEN");
    json again = h.call(2, {{"op", "INVITE_USER"}, {"room", "ops"}, {"user", "carol"}});
    EXPECT_GT(again["invitation"]["id"].get<int64_t>(), inv["invitation"]["id"].get<int64_t>());
    EXPECT_EQ(h.call(3, {{"op", "JOIN_ROOM"}, {"room", "ops"}})["room"]["members"], 3);
    EXPECT_EQ(h.call(3, {{"op", "ACCEPT_INVITATION"}})["error"]["field"], "invitation_id");
}

TEST(Invitations, ExpireOnTickDurablyAndSurviveRestartWhilePending) {
    auto dir =
        std::filesystem::temp_directory_path() / ("warren-inv-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    std::string db = (dir / "w.db").string();
    Config c;
    c.invitation_ttl_ms = 60'000;
    {
        CoreHarness h(c, db);
        h.register_user(1, "alice");
        h.register_user(2, "bob");
        h.register_user(3, "carol");
        h.call(1, {{"op", "CREATE_ROOM"}, {"room", "ops"}, {"visibility", "private"}});
        h.call(1, {{"op", "INVITE_USER"}, {"room", "ops"}, {"user", "bob"}});
        h.advance(30'000);
        h.call(1, {{"op", "INVITE_USER"}, {"room", "ops"}, {"user", "carol"}});
        auto d = h.core().next_deadline();
        ASSERT_TRUE(d.has_value());
        EXPECT_EQ(*d, h.now().mono_us + 30'000'000);  // bob's expires first
        size_t commits = h.commits;
        ASSERT_TRUE(h.tick_to_deadline());
        EXPECT_EQ(h.commits, commits + 1);  // the expiry is a durable change
        EXPECT_TRUE(h.call(2, {{"op", "LIST_INVITATIONS"}})["invitations"].empty());
        EXPECT_EQ(code_of(h.call(2, {{"op", "JOIN_ROOM"}, {"room", "ops"}})), "FORBIDDEN");
        EXPECT_EQ(h.call(3, {{"op", "LIST_INVITATIONS"}})["invitations"].size(), 1u);
    }
    {
        CoreHarness h(c, db);  // carol's is still pending after a restart; bob's is gone
        h.connect(3);
        h.take(3);
        h.call(3, {{"op", "LOGIN"}, {"username", "carol"}, {"password", "password1"}});
        EXPECT_EQ(h.call(3, {{"op", "LIST_INVITATIONS"}})["invitations"].size(), 1u);
        EXPECT_EQ(h.call(3, {{"op", "JOIN_ROOM"}, {"room", "ops"}})["ok"], true);
    }
    std::filesystem::remove_all(dir);
}

// Found by sim/scenarios/clock_steps.toml (time.stamps_monotonic): a process that started with
// the host's clock behind what was stored stamped new messages before older ones.
TEST(Clock, MessageStampsNeverGoBackAcrossARestartWithTheClockBehind) {
    auto dir =
        std::filesystem::temp_directory_path() / ("warren-clock-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    std::string db = (dir / "w.db").string();
    int64_t first = 0;
    {
        CoreHarness h(Config{}, db);
        h.register_user(1, "alice");
        h.call(1, {{"op", "CREATE_ROOM"}, {"room", "lobby"}});
        h.register_user(2, "bob");
        json m = h.call(2, {{"op", "DIRECT_MESSAGE"}, {"to", "alice"}, {"text", "first"}});
        ASSERT_EQ(m["ok"], true) << m;
        first = m["message"]["ts"].get<int64_t>();
    }
    CoreHarness h(Config{}, db);
    h.step_wall(-3LL * 3600 * 1000);  // the new process's clock is three hours behind
    h.connect(1);
    h.take(1);
    ASSERT_EQ(h.call(1, {{"op", "LOGIN"}, {"username", "alice"}, {"password", "password1"}})["ok"],
              true);
    json m = h.call(1, {{"op", "SEND_MESSAGE"}, {"room", "lobby"}, {"text", "second"}});
    ASSERT_EQ(m["ok"], true) << m;
    EXPECT_GE(m["message"]["ts"].get<int64_t>(), first);
    h.advance(1000);  // and do not go back while the clock catches up
    json n = h.call(1, {{"op", "SEND_MESSAGE"}, {"room", "lobby"}, {"text", "third"}});
    EXPECT_GE(n["message"]["ts"].get<int64_t>(), m["message"]["ts"].get<int64_t>());
    std::filesystem::remove_all(dir);
}

TEST(Invitations, AcceptIsAtomicUnderFailure) {
    CoreHarness h;
    h.register_user(1, "alice");
    h.register_user(2, "bob");
    h.call(1, {{"op", "CREATE_ROOM"}, {"room", "ops"}, {"visibility", "private"}});
    h.call(1, {{"op", "INVITE_USER"}, {"room", "ops"}, {"user", "bob"}});
    h.fail_commits = 1;
    EXPECT_EQ(code_of(h.call(2, {{"op", "ACCEPT_INVITATION"}, {"room", "ops"}})), "UNAVAILABLE");
    // Neither half survived: bob is no member, and the invitation is still pending.
    EXPECT_EQ(code_of(h.call(2, {{"op", "HISTORY"}, {"room", "ops"}})), "FORBIDDEN");
    EXPECT_EQ(h.call(2, {{"op", "LIST_INVITATIONS"}})["invitations"].size(), 1u);
    EXPECT_EQ(h.call(2, {{"op", "ACCEPT_INVITATION"}, {"room", "ops"}})["ok"], true);
}

}  // namespace
}  // namespace warren::test

namespace warren::test {
namespace {

struct Trio {
    CoreHarness h;
    int64_t msg = 0;
    // On `db` the three may exist already: then they log in.
    explicit Trio(Config c = {}, const std::string& db = ":memory:") : h(c, db) {
        for (auto [conn, name] :
             {std::pair{1, "alice"}, std::pair{2, "bob"}, std::pair{3, "carol"}})
            if (h.register_user(conn, name).contains("error"))
                h.call(conn, {{"op", "LOGIN"}, {"username", name}, {"password", "password1"}});
        h.call(1, {{"op", "CREATE_ROOM"}, {"room", "r"}});
        h.call(2, {{"op", "JOIN_ROOM"}, {"room", "r"}});
        msg = h.call(1, {{"op", "SEND_MESSAGE"},
                         {"room", "r"},
                         {"text", "the original café"}})["message"]["id"];
        h.events(1);
        h.events(2);
    }
};

TEST(Messages, EditIsAuthorOnlyAndShowsEverywhere) {
    Trio t;
    auto& h = t.h;
    EXPECT_EQ(code_of(h.call(2, {{"op", "EDIT_MESSAGE"}, {"message_id", t.msg}, {"text", "x"}})),
              "FORBIDDEN");
    EXPECT_EQ(code_of(h.call(3, {{"op", "EDIT_MESSAGE"}, {"message_id", t.msg}, {"text", "x"}})),
              "FORBIDDEN");  // not a member of the room
    EXPECT_EQ(code_of(h.call(1, {{"op", "EDIT_MESSAGE"}, {"message_id", 999}, {"text", "x"}})),
              "NOT_FOUND");
    h.advance(5);
    json e =
        h.call(1, {{"op", "EDIT_MESSAGE"}, {"message_id", t.msg}, {"text", "the revised text"}});
    ASSERT_EQ(e["ok"], true) << e;
    EXPECT_EQ(e["message"]["text"], "the revised text");
    EXPECT_EQ(e["message"]["edited_ts"], h.now().wall_ms);
    auto ev = h.events(2);
    ASSERT_EQ(ev.size(), 1u);
    EXPECT_EQ(ev[0]["ev"], "MESSAGE_EDITED");
    EXPECT_EQ(ev[0]["message"], e["message"]);
    EXPECT_EQ(h.call(2, {{"op", "HISTORY"}, {"room", "r"}})["messages"][0], e["message"]);
    EXPECT_EQ(h.call(2, {{"op", "SEARCH"}, {"query", "revised"}})["results"].size(), 1u);
    EXPECT_TRUE(h.call(2, {{"op", "SEARCH"}, {"query", "original"}})["results"].empty());
}

TEST(Messages, DeleteLeavesATombstoneForAuthorOwnerOrAdmin) {
    // Admin rights bind to the account holding the name when the server starts.
    std::string db = std::filesystem::temp_directory_path() /
                     ("warren-admin-delete-" + std::to_string(::getpid()) + ".db");
    std::filesystem::remove(db);
    CoreHarness({}, db).register_user(3, "carol");
    Config c;
    c.admin_usernames = {"Carol"};
    Trio t(c, db);
    auto& h = t.h;
    int64_t bobs =
        h.call(2, {{"op", "SEND_MESSAGE"}, {"room", "r"}, {"text", "bob here"}})["message"]["id"];
    h.events(1);
    EXPECT_EQ(code_of(h.call(2, {{"op", "DELETE_MESSAGE"}, {"message_id", t.msg}})), "FORBIDDEN");
    ASSERT_EQ(h.call(1, {{"op", "DELETE_MESSAGE"}, {"message_id", bobs}})["ok"], true);  // owner
    auto ev = h.events(2);
    ASSERT_EQ(ev.size(), 1u);
    EXPECT_EQ(ev[0], (json{{"ev", "MESSAGE_DELETED"}, {"message_id", bobs}, {"room", "r"}}));
    EXPECT_EQ(code_of(h.call(1, {{"op", "DELETE_MESSAGE"}, {"message_id", bobs}})), "CONFLICT");
    json hist = h.call(2, {{"op", "HISTORY"}, {"room", "r"}});
    ASSERT_EQ(hist["messages"].size(), 2u);
    json tomb = hist["messages"][1];
    EXPECT_EQ(tomb["id"], bobs);
    EXPECT_EQ(tomb["deleted"], true);
    EXPECT_EQ(tomb["text"], "");
    EXPECT_EQ(tomb["author"], "bob");
    EXPECT_TRUE(h.call(1, {{"op", "SEARCH"}, {"query", "bob"}})["results"].empty());
    EXPECT_EQ(code_of(h.call(1, {{"op", "REACT"}, {"message_id", bobs}, {"emoji", "x"}})),
              "CONFLICT");
    // carol is an admin, but cannot see a room she is not in.
    EXPECT_EQ(code_of(h.call(3, {{"op", "DELETE_MESSAGE"}, {"message_id", t.msg}})), "FORBIDDEN");
    h.call(3, {{"op", "JOIN_ROOM"}, {"room", "r"}});
    EXPECT_EQ(h.call(3, {{"op", "DELETE_MESSAGE"}, {"message_id", t.msg}})["ok"], true);
    std::filesystem::remove(db);
}

TEST(Messages, DeletingADirectMessageTellsEachSideTheOtherName) {
    Trio t;
    auto& h = t.h;
    int64_t dm =
        h.call(1, {{"op", "DIRECT_MESSAGE"}, {"to", "bob"}, {"text", "secret"}})["message"]["id"];
    h.events(2);
    EXPECT_EQ(code_of(h.call(3, {{"op", "DELETE_MESSAGE"}, {"message_id", dm}})), "NOT_FOUND");
    EXPECT_EQ(code_of(h.call(3, {{"op", "REACT"}, {"message_id", dm}, {"emoji", "x"}})),
              "NOT_FOUND");
    ASSERT_EQ(h.call(1, {{"op", "DELETE_MESSAGE"}, {"message_id", dm}})["ok"], true);
    auto ev = h.events(2);
    ASSERT_EQ(ev.size(), 1u);
    EXPECT_EQ(ev[0], (json{{"ev", "MESSAGE_DELETED"}, {"message_id", dm}, {"with", "alice"}}));
}

TEST(Messages, ReactionsAddRemoveAndShow) {
    Trio t;
    auto& h = t.h;
    const std::string thumbs = "\xF0\x9F\x91\x8D";
    ASSERT_EQ(h.call(2, {{"op", "REACT"}, {"message_id", t.msg}, {"emoji", thumbs}})["ok"], true);
    auto ev = h.events(1);
    ASSERT_EQ(ev.size(), 1u);
    EXPECT_EQ(
        ev[0],
        (json{
            {"ev", "REACTION_ADDED"}, {"message_id", t.msg}, {"emoji", thumbs}, {"user", "bob"}}));
    EXPECT_EQ(code_of(h.call(2, {{"op", "REACT"}, {"message_id", t.msg}, {"emoji", thumbs}})),
              "CONFLICT");
    h.call(1, {{"op", "REACT"}, {"message_id", t.msg}, {"emoji", thumbs}});
    h.call(1, {{"op", "REACT"}, {"message_id", t.msg}, {"emoji", "ok"}});
    json m = h.call(2, {{"op", "HISTORY"}, {"room", "r"}})["messages"][0];
    EXPECT_EQ(m["reactions"], (json{{thumbs, {"bob", "alice"}}, {"ok", {"alice"}}}));
    EXPECT_EQ(
        h.call(2, {{"op", "REACT"}, {"message_id", t.msg}, {"emoji", "a b"}})["error"]["field"],
        "emoji");
    EXPECT_EQ(code_of(h.call(2, {{"op", "UNREACT"}, {"message_id", t.msg}, {"emoji", "ok"}})),
              "NOT_FOUND");
    ASSERT_EQ(h.call(1, {{"op", "UNREACT"}, {"message_id", t.msg}, {"emoji", "ok"}})["ok"], true);
    EXPECT_EQ(h.events(2).back()["ev"], "REACTION_REMOVED");
    m = h.call(2, {{"op", "HISTORY"}, {"room", "r"}})["messages"][0];
    EXPECT_EQ(m["reactions"], (json{{thumbs, {"bob", "alice"}}}));
}

TEST(Messages, ThreadsListRepliesOldestFirst) {
    Trio t;
    auto& h = t.h;
    for (int i = 0; i < 3; ++i)
        h.call(2, {{"op", "SEND_MESSAGE"},
                   {"room", "r"},
                   {"text", "reply " + std::to_string(i)},
                   {"reply_to", t.msg}});
    h.call(2, {{"op", "SEND_MESSAGE"}, {"room", "r"}, {"text", "not a reply"}});
    json th = h.call(1, {{"op", "GET_THREAD"}, {"message_id", t.msg}});
    ASSERT_EQ(th["ok"], true) << th;
    EXPECT_EQ(th["root"]["id"], t.msg);
    ASSERT_EQ(th["replies"].size(), 3u);
    EXPECT_EQ(th["replies"][0]["text"], "reply 0");
    EXPECT_EQ(th["replies"][2]["text"], "reply 2");
    EXPECT_EQ(h.call(1, {{"op", "GET_THREAD"}, {"message_id", t.msg}, {"limit", 2}})["has_more"],
              true);
    EXPECT_EQ(code_of(h.call(3, {{"op", "GET_THREAD"}, {"message_id", t.msg}})), "FORBIDDEN");
}

TEST(Messages, SearchCoversMyRoomsAndMyDirectMessagesOnly) {
    Trio t;
    auto& h = t.h;
    h.call(3, {{"op", "CREATE_ROOM"}, {"room", "other"}});
    h.call(3, {{"op", "SEND_MESSAGE"}, {"room", "other"}, {"text", "cafe in other room"}});
    h.call(3, {{"op", "DIRECT_MESSAGE"}, {"to", "bob"}, {"text", "cafe for bob"}});
    h.call(2, {{"op", "SEND_MESSAGE"}, {"room", "r"}, {"text", "newer CAFE mention"}});
    json res = h.call(1, {{"op", "SEARCH"}, {"query", "cafe"}});  // diacritics removed
    ASSERT_EQ(res["ok"], true) << res;
    ASSERT_EQ(res["results"].size(), 2u);
    EXPECT_EQ(res["results"][0]["text"], "newer CAFE mention");  // newest first
    EXPECT_EQ(res["results"][1]["text"], "the original café");
    EXPECT_EQ(h.call(2, {{"op", "SEARCH"}, {"query", "cafe"}})["results"].size(), 3u);
    EXPECT_EQ(h.call(2, {{"op", "SEARCH"}, {"query", "cafe"}, {"room", "r"}})["results"].size(),
              2u);
    EXPECT_EQ(code_of(h.call(2, {{"op", "SEARCH"}, {"query", "cafe"}, {"room", "other"}})),
              "FORBIDDEN");
    // FTS syntax in the query is just text.
    for (std::string q : {"\"", "cafe*", "NEAR(cafe", "a OR b", "-cafe", "col:cafe", "()"}) {
        json r = h.call(2, {{"op", "SEARCH"}, {"query", q}});
        EXPECT_EQ(r["ok"], true) << q << " -> " << r;
    }
    EXPECT_EQ(h.call(2, {{"op", "SEARCH"}, {"query", "   "}})["error"]["field"], "query");
    h.call(2, {{"op", "LEAVE_ROOM"}, {"room", "r"}});
    EXPECT_EQ(h.call(2, {{"op", "SEARCH"}, {"query", "cafe"}})["results"].size(), 1u);  // the DM
}

TEST(Messages, OldMessagesAreFetchedFromStorageAndChangesPersist) {
    auto dir =
        std::filesystem::temp_directory_path() / ("warren-old-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    std::string db = (dir / "w.db").string();
    Config c;
    c.room_cache_messages_max = 100;
    int64_t first = 0;
    {
        CoreHarness h(c, db);
        h.register_user(1, "alice");
        h.register_user(2, "bob");
        h.call(1, {{"op", "CREATE_ROOM"}, {"room", "r"}});
        h.call(2, {{"op", "JOIN_ROOM"}, {"room", "r"}});
        first =
            h.call(1, {{"op", "SEND_MESSAGE"}, {"room", "r"}, {"text", "first"}})["message"]["id"];
        for (int i = 0; i < 150; ++i)
            h.call(
                2,
                {{"op", "SEND_MESSAGE"}, {"room", "r"}, {"text", "filler"}, {"reply_to", first}});
    }
    CoreHarness h(c, db);  // after a restart, `first` is only in storage
    h.connect(1);
    h.take(1);
    h.call(1, {{"op", "LOGIN"}, {"username", "alice"}, {"password", "password1"}});
    size_t queries = h.queries;
    // Pipelined: the edit waits for the lookup; the reaction runs after it, in order.
    h.send(1,
           {{"id", 1}, {"op", "EDIT_MESSAGE"}, {"message_id", first}, {"text", "first, edited"}});
    h.send(1, {{"id", 2}, {"op", "REACT"}, {"message_id", first}, {"emoji", "ok"}});
    auto l = h.take(1);
    ASSERT_EQ(l.size(), 2u);
    EXPECT_EQ(l[0]["re"], 1);
    EXPECT_EQ(l[0]["message"]["text"], "first, edited");
    EXPECT_EQ(l[1]["re"], 2);
    EXPECT_EQ(l[1]["ok"], true);
    EXPECT_EQ(h.queries, queries + 1);  // fetched once, then kept
    json th = h.call(1, {{"op", "GET_THREAD"}, {"message_id", first}, {"limit", 200}});
    EXPECT_EQ(th["root"]["text"], "first, edited");
    EXPECT_EQ(th["root"]["reactions"], (json{{"ok", {"alice"}}}));
    EXPECT_EQ(th["replies"].size(), 100u);  // clamped
    EXPECT_EQ(th["has_more"], true);
    json page = h.call(1, {{"op", "HISTORY"}, {"room", "r"}, {"after", 0}, {"limit", 1}});
    EXPECT_EQ(page["messages"][0]["text"], "first, edited");
    EXPECT_EQ(page["messages"][0]["reactions"], (json{{"ok", {"alice"}}}));
    if (!std::getenv("KEEP")) std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace warren::test

namespace warren::test {
namespace {

std::vector<json> page_all(CoreHarness& h, ConnId c, bool forwards, int limit) {
    std::vector<json> pages;
    json req = {{"op", "HISTORY"}, {"room", "big"}, {"limit", limit}};
    if (forwards) req["after"] = 0;
    for (int guard = 0; guard < 100000; ++guard) {
        json page = h.call(c, req);
        EXPECT_EQ(page["ok"], true) << page;
        pages.push_back(page);
        if (!page["has_more"].get<bool>() || page["messages"].empty()) break;
        if (forwards)
            req["after"] = page["messages"].back()["id"];
        else
            req["before"] = page["messages"].front()["id"];
    }
    return pages;
}

std::vector<int64_t> ids_of(const std::vector<json>& pages, bool forwards) {
    std::vector<int64_t> ids;
    for (const auto& p : pages) {
        std::vector<int64_t> page;
        for (const auto& m : p["messages"]) page.push_back(m["id"]);
        if (forwards)
            ids.insert(ids.end(), page.begin(), page.end());
        else
            ids.insert(ids.begin(), page.begin(), page.end());
    }
    return ids;
}

TEST(History, TenThousandMessagesPageBothWaysIdenticallyAcrossARestart) {
    auto dir =
        std::filesystem::temp_directory_path() / ("warren-10k-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    std::string db = (dir / "w.db").string();
    std::vector<int64_t> sent;
    std::vector<json> fwd_before, back_before;
    {
        CoreHarness h({}, db);
        h.register_user(1, "alice");
        h.call(1, {{"op", "CREATE_ROOM"}, {"room", "big"}});
        h.call(1, {{"op", "CREATE_ROOM"}, {"room", "noise"}});
        // 64 requests per receive, as a busy client would pipeline them.
        for (int i = 0; i < 10000; i += 64) {
            std::string lines;
            for (int k = i; k < std::min(i + 64, 10000); ++k) {
                json req = {{"id", k + 100},
                            {"op", "SEND_MESSAGE"},
                            {"room", "big"},
                            {"text", "message " + std::to_string(k)}};
                lines += req.dump() + "\n";
                if (k % 7 == 0)  // interleave another room so ids have gaps
                    lines += json{{"id", k + 100000},
                                  {"op", "SEND_MESSAGE"},
                                  {"room", "noise"},
                                  {"text", "n"}}
                                 .dump() +
                             "\n";
            }
            h.raw(1, lines);
            for (auto& l : h.take(1))
                if (l["re"].get<int64_t>() < 100000) sent.push_back(l["message"]["id"]);
        }
        ASSERT_EQ(sent.size(), 10000u);
        fwd_before = page_all(h, 1, true, 100);
        back_before = page_all(h, 1, false, 100);
        EXPECT_EQ(ids_of(fwd_before, true), sent);
        EXPECT_EQ(ids_of(back_before, false), sent);
        EXPECT_EQ(fwd_before.size(), 100u);
    }
    CoreHarness h({}, db);
    h.connect(1);
    h.take(1);
    h.call(1, {{"op", "LOGIN"}, {"username", "alice"}, {"password", "password1"}});
    auto strip = [](std::vector<json> pages) {
        for (auto& p : pages) p.erase("re");
        return pages;
    };
    EXPECT_EQ(strip(page_all(h, 1, true, 100)), strip(fwd_before));
    EXPECT_EQ(strip(page_all(h, 1, false, 100)), strip(back_before));
    std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace warren::test

namespace warren::test {
namespace {

TEST(Messages, SearchWithNoRoomsStillFindsMyDirectMessages) {
    CoreHarness h;
    h.register_user(1, "alice");
    h.register_user(2, "bob");
    h.call(1, {{"op", "DIRECT_MESSAGE"}, {"to", "bob"}, {"text", "lonely words"}});
    json r = h.call(2, {{"op", "SEARCH"}, {"query", "lonely"}});  // bob is in no room
    ASSERT_EQ(r["ok"], true) << r;
    EXPECT_EQ(r["results"].size(), 1u);
}

}  // namespace
}  // namespace warren::test

namespace warren::test {
namespace {

// Rolling back an insert that evicted a durable message, then an older insert that evicted
// nothing, must leave the evicted message reachable (in storage), not hidden.
TEST(Txn, RollbackAfterEvictionKeepsOlderMessagesReachable) {
    Config c;
    c.room_cache_messages_max = 3;
    c.old_messages_cached_max = 1;
    CoreHarness h(c);
    h.register_user(1, "alice");
    h.call(1, {{"op", "CREATE_ROOM"}, {"room", "r"}});
    for (std::string t : {"m1", "m2"})
        h.call(1, {{"op", "SEND_MESSAGE"}, {"room", "r"}, {"text", t}});
    h.hold_commits = true;
    h.send(1, {{"id", 50}, {"op", "SEND_MESSAGE"}, {"room", "r"}, {"text", "m3"}});  // fills
    h.send(1, {{"id", 51}, {"op", "SEND_MESSAGE"}, {"room", "r"}, {"text", "m4"}});  // evicts m1
    h.fail_commits = 2;
    h.hold_commits = false;
    h.release();
    for (auto& l : h.take(1)) EXPECT_EQ(l["error"]["code"], "UNAVAILABLE");
    json hist = h.call(1, {{"op", "HISTORY"}, {"room", "r"}});
    ASSERT_EQ(hist["messages"].size(), 2u) << hist;
    EXPECT_EQ(hist["messages"][0]["text"], "m1");
    EXPECT_EQ(hist["messages"][1]["text"], "m2");
}

// Messages pushed out of a log before they are durable stay in memory (storage does not have
// them yet) however many there are; once committed, the old-message cache is back within its
// bound, and every message is still reachable.
TEST(Txn, UncommittedEvictionsStayUntilDurableThenTheCacheShrinks) {
    Config c;
    c.room_cache_messages_max = 3;
    c.old_messages_cached_max = 2;
    CoreHarness h(c);
    h.register_user(1, "alice");
    h.call(1, {{"op", "CREATE_ROOM"}, {"room", "r"}});
    h.hold_commits = true;
    for (int i = 0; i < 40; ++i)
        h.send(1, {{"id", 100 + i},
                   {"op", "SEND_MESSAGE"},
                   {"room", "r"},
                   {"text", "m" + std::to_string(i)}});
    EXPECT_EQ(h.core().state().old_message_count(), 37u);
    h.hold_commits = false;
    h.release();
    EXPECT_LE(h.core().state().old_message_count(), 2u);
    json hist = h.call(1, {{"op", "HISTORY"}, {"room", "r"}, {"limit", 100}});
    ASSERT_EQ(hist["messages"].size(), 40u) << hist;
    EXPECT_EQ(hist["messages"][0]["text"], "m0");
}

}  // namespace
}  // namespace warren::test

namespace warren::test {
namespace {

// Leaves the stalled readers (which have taken nothing since they stalled, so they hold the
// same bytes) within `slack` bytes of their outbound bound, with messages from `writer` into
// room r, sized exactly: the first one measures the event's overhead.
void fill_to_slack(CoreHarness& h, ConnId writer, const std::vector<ConnId>& readers, size_t bound,
                   size_t slack) {
    ConnId reader = readers.front();
    size_t before = h.unread_bytes(reader);
    h.call(writer, {{"op", "SEND_MESSAGE"}, {"room", "r"}, {"text", "0123456789"}});
    size_t overhead = h.unread_bytes(reader) - before - 10;
    while (h.unread_bytes(reader) + overhead + 4000 < bound - slack)
        h.call(writer, {{"op", "SEND_MESSAGE"}, {"room", "r"}, {"text", std::string(4000, 'a')}});
    size_t text = bound - slack - h.unread_bytes(reader) - overhead;
    ASSERT_GE(text, 1u);
    h.call(writer, {{"op", "SEND_MESSAGE"}, {"room", "r"}, {"text", std::string(text, 'b')}});
    for (ConnId c : readers) {
        ASSERT_EQ(h.unread_bytes(c), bound - slack) << c;
        ASSERT_FALSE(h.closed(c));
    }
}

// alice (1) and `readers`, stalled members of room r, each left 10 bytes short of the
// bound: alice's offline PRESENCE (longer than that) overflows every one of them.
void presence_overflows(CoreHarness& h, const std::vector<ConnId>& readers) {
    h.register_user(1, "alice");
    h.call(1, {{"op", "CREATE_ROOM"}, {"room", "r"}});
    for (ConnId c : readers) {
        h.register_user(c, "reader" + std::to_string(c));
        h.call(c, {{"op", "JOIN_ROOM"}, {"room", "r"}});
    }
    h.events(1);
    for (ConnId c : readers) {
        h.stalled.insert(c);
        h.events(c);
    }
    fill_to_slack(h, 1, readers, h.core().config().outbound_bytes_max, 10);
}

Config small_outbound() {
    Config c;
    c.outbound_bytes_max = 16 * 1024;
    return c;
}

// A connection closed by the PRESENCE its neighbour's departure caused is forgotten like any
// other: its address slot, its place under connections.max and its "online" are released.
TEST(Lifecycle, PresenceThatOverflowsASlowReaderOnDisconnectForgetsIt) {
    CoreHarness h(small_outbound());
    presence_overflows(h, {2});
    h.disconnect(1);
    EXPECT_TRUE(h.closed(2));
    EXPECT_EQ(h.close_reason(2), "SLOW_CONSUMER");
    EXPECT_EQ(h.core().connection_count(), 0u);
    h.register_user(9, "carol");
    json online = h.call(9, {{"op", "REQUEST_USER_LIST"}});
    EXPECT_EQ(online["users"], (json{{{"username", "carol"}, {"online", true}}}));
}

TEST(Lifecycle, TwoReadersClosedByOnePresenceAreBothForgotten) {
    CoreHarness h(small_outbound());
    presence_overflows(h, {2, 3});
    h.disconnect(1);
    EXPECT_EQ(h.close_reason(2), "SLOW_CONSUMER");
    EXPECT_EQ(h.close_reason(3), "SLOW_CONSUMER");
    EXPECT_EQ(h.core().connection_count(), 0u);
}

// The same when the server itself closes the departing connection (its third bad frame).
TEST(Lifecycle, PresenceAfterAServerCloseOverflowsAndForgetsTheReaders) {
    CoreHarness h(small_outbound());
    presence_overflows(h, {2, 3});
    for (int i = 0; i < 3; ++i) h.raw(1, "not json\n");
    EXPECT_EQ(h.close_reason(1), "BAD_FRAMES");
    EXPECT_EQ(h.close_reason(2), "SLOW_CONSUMER");
    EXPECT_EQ(h.close_reason(3), "SLOW_CONSUMER");
    EXPECT_EQ(h.core().connection_count(), 0u);
}

}  // namespace
}  // namespace warren::test

namespace warren::test {
namespace {

// ---- closes never drop what was answered -------------------------------------------------
// A client that pipelines requests and is then closed by the server learns which of them were
// applied: every reply before the DISCONNECT is one of its requests in order, every applied
// request has its reply there, and nothing comes after the DISCONNECT.

struct BeforeClose {
    std::vector<int64_t> answered;  // ids of the replies, in the order they came
    int64_t ok = 0;
    std::string reason;  // the DISCONNECT's
    size_t after = 0;    // lines after the DISCONNECT
};

BeforeClose read_to_disconnect(const std::vector<json>& lines) {
    BeforeClose b;
    for (const json& l : lines) {
        if (!b.reason.empty()) {
            ++b.after;
        } else if (l.value("ev", "") == "DISCONNECT") {
            b.reason = l["reason"];
        } else if (l.contains("re") && l["re"].is_number()) {
            b.answered.push_back(l["re"]);
            if (l.value("ok", false)) ++b.ok;
        }
    }
    return b;
}

// The messages `author` has in room r, read by a member on connection `reader`.
int64_t messages_by(CoreHarness& h, ConnId reader, const std::string& author) {
    int64_t n = 0;
    json req = {{"op", "HISTORY"}, {"room", "r"}, {"after", 0}, {"limit", 100}};
    for (;;) {
        json page = h.call(reader, req);
        EXPECT_EQ(page["ok"], true) << page;
        if (page["ok"] != true) return n;
        for (auto& m : page["messages"]) {
            if (m["author"] == author) ++n;
            req["after"] = m["id"];
        }
        if (!page["has_more"].get<bool>()) return n;
    }
}

// `n` SEND_MESSAGE lines to room r with ids from `first_id`.
std::string pipelined_messages(int n, int64_t first_id) {
    std::string bytes;
    for (int i = 0; i < n; ++i)
        bytes += json{{"id", first_id + i},
                      {"op", "SEND_MESSAGE"},
                      {"room", "r"},
                      {"text", "m" + std::to_string(i)}}
                     .dump() +
                 "\n";
    return bytes;
}

// alice (connection 1) owns room r, bob (2) is a member; alice's inbox is empty.
void alice_and_bob_in_r(CoreHarness& h) {
    h.register_user(1, "alice");
    h.call(1, {{"op", "CREATE_ROOM"}, {"room", "r"}});
    h.register_user(2, "bob");
    h.call(2, {{"op", "JOIN_ROOM"}, {"room", "r"}});
    h.take(1);
}

AdminRequest operator_action(AdminRequest::Kind kind, const std::string& username) {
    AdminRequest q;
    q.kind = kind;
    q.username = username;
    q.duration_ms = 600'000;
    q.reason = "test";
    return q;
}

void expect_answered_in_order(const BeforeClose& b, int64_t first_id) {
    for (size_t i = 0; i < b.answered.size(); ++i)
        EXPECT_EQ(b.answered[i], first_id + static_cast<int64_t>(i)) << i;
}

// The flood from outside (issue 30): 200 pipelined messages, the account suspended on the way;
// the messages stored before the suspension were acknowledged to their author, whichever way
// the bytes were cut and however commits interleave with them.
TEST(Close, AFloodSuspendedMidPipelineAcknowledgesEveryStoredMessage) {
    for (size_t chunk : {size_t{0}, size_t{1}, size_t{7}, size_t{333}, size_t{4096}}) {
        for (bool held : {false, true}) {
            SCOPED_TRACE("chunk " + std::to_string(chunk) + (held ? " commits held" : ""));
            CoreHarness h({}, ":memory:", /*abuse_limits=*/true);
            h.register_user(1, "flooder", "password1", "192.0.2.71");
            h.call(1, {{"op", "CREATE_ROOM"}, {"room", "r"}});
            h.register_user(2, "reader", "password1", "192.0.2.72");
            h.call(2, {{"op", "JOIN_ROOM"}, {"room", "r"}});
            h.take(1);
            h.hold_commits = held;
            std::string bytes = pipelined_messages(200, 1000);
            if (chunk == 0) chunk = bytes.size();
            for (size_t at = 0; at < bytes.size() && !h.closed(1); at += chunk) {
                h.raw(1, std::string_view(bytes).substr(at, chunk));
                if (held && at % (chunk * 3) == 0) h.release();
            }
            h.hold_commits = false;
            h.release();
            ASSERT_EQ(h.close_reason(1), "BLOCKED");
            BeforeClose b = read_to_disconnect(h.take(1));
            EXPECT_EQ(b.reason, "BLOCKED");
            EXPECT_EQ(b.after, 0u);
            expect_answered_in_order(b, 1000);
            int64_t stored = messages_by(h, 2, "flooder");
            EXPECT_GT(stored, 0);
            EXPECT_EQ(b.ok, stored);
        }
    }
}

// An operator suspends (or revokes the sessions of) an account whose pipelined messages are
// waiting for their commit: they are answered, then the DISCONNECT.
TEST(Close, AdminActionsAnswerWhatWasAppliedBeforeClosing) {
    for (auto kind : {AdminRequest::Kind::suspend, AdminRequest::Kind::revoke_sessions}) {
        CoreHarness h;
        alice_and_bob_in_r(h);
        h.hold_commits = true;
        h.raw(1, pipelined_messages(10, 50));
        h.admin(operator_action(kind, "alice"));
        h.hold_commits = false;
        h.release();
        std::string expected = kind == AdminRequest::Kind::suspend ? "BLOCKED" : "SESSION_REVOKED";
        EXPECT_EQ(h.close_reason(1), expected);
        BeforeClose b = read_to_disconnect(h.take(1));
        EXPECT_EQ(b.reason, expected);
        EXPECT_EQ(b.after, 0u);
        expect_answered_in_order(b, 50);
        EXPECT_EQ(b.ok, 10);
        EXPECT_EQ(messages_by(h, 2, "alice"), 10);
    }
}

// Lines that arrive after the close decision are not applied, and get no reply.
TEST(Close, RequestsReadAfterTheDecisionAreNotApplied) {
    CoreHarness h;
    alice_and_bob_in_r(h);
    h.hold_commits = true;
    h.raw(1, pipelined_messages(3, 1));
    h.admin(operator_action(AdminRequest::Kind::suspend, "alice"));
    h.raw(1, pipelined_messages(3, 4));  // after the decision
    h.hold_commits = false;
    h.release();
    BeforeClose b = read_to_disconnect(h.take(1));
    EXPECT_EQ(b.reason, "BLOCKED");
    EXPECT_EQ(b.answered, (std::vector<int64_t>{1, 2, 3}));
    EXPECT_EQ(messages_by(h, 2, "alice"), 3);
}

// Events produced before the close decision reach the connection before its DISCONNECT;
// events produced after it do not.
TEST(Close, EventsBeforeTheDecisionArriveThoseAfterDoNot) {
    CoreHarness h;
    alice_and_bob_in_r(h);
    h.hold_commits = true;
    h.send(2, {{"id", 7}, {"op", "SEND_MESSAGE"}, {"room", "r"}, {"text", "before"}});
    h.raw(1, pipelined_messages(1, 1));
    h.admin(operator_action(AdminRequest::Kind::suspend, "alice"));
    h.send(2, {{"id", 8}, {"op", "SEND_MESSAGE"}, {"room", "r"}, {"text", "after"}});
    h.hold_commits = false;
    h.release();
    std::vector<std::string> texts;
    bool disconnected = false;
    for (const json& l : h.take(1)) {
        if (l.value("ev", "") == "DISCONNECT") disconnected = true;
        if (l.value("ev", "") == "MESSAGE") {
            EXPECT_FALSE(disconnected);
            texts.push_back(l["message"]["text"]);
        }
    }
    EXPECT_TRUE(disconnected);
    EXPECT_EQ(texts, (std::vector<std::string>{"before"}));  // its own m0 is its reply
}

// An IRC client with echo-message that floods a channel past what flood control holds: each
// stored message came back to it before its ERROR (Excess Flood).
TEST(Close, AnIrcFloodEchoesEveryStoredMessageBeforeItsError) {
    Config cfg;
    cfg.irc_flood_bytes_max = 1024;
    CoreHarness h(cfg, ":memory:", /*abuse_limits=*/true);
    h.register_user(2, "reader", "password1", "192.0.2.82");
    h.call(2, {{"op", "CREATE_ROOM"}, {"room", "r"}});
    h.connect(3, "192.0.2.81");
    h.take(3);
    h.call(3, {{"op", "REGISTER"}, {"username", "ircer"}, {"password", "password1"}});
    h.disconnect(3);
    h.connect_irc(1, "192.0.2.81");
    h.raw(1,
          "CAP LS 302\r\nCAP REQ :echo-message\r\nPASS ircer:password1\r\nNICK ircer\r\n"
          "USER u 0 * :u\r\nCAP END\r\n");
    h.raw(1, "JOIN #r\r\n");
    h.take_raw(1);
    std::string flood;
    for (int i = 0; i < 200; ++i) flood += "PRIVMSG #r :m" + std::to_string(i) + "\r\n";
    h.hold_commits = true;
    for (size_t at = 0; at < flood.size() && !h.closed(1); at += 500) {
        h.raw(1, std::string_view(flood).substr(at, 500));
        h.release();
    }
    h.hold_commits = false;
    h.release();
    ASSERT_TRUE(h.closed(1));
    std::string raw = h.take_raw(1);
    size_t error = raw.find("ERROR :");
    ASSERT_NE(error, std::string::npos) << raw;
    int64_t echoed = 0;
    for (size_t p = raw.find(" PRIVMSG #r :"); p != std::string::npos && p < error;
         p = raw.find(" PRIVMSG #r :", p + 1))
        ++echoed;
    EXPECT_EQ(raw.find("\r\n", error) + 2, raw.size()) << "lines after ERROR";
    EXPECT_GT(echoed, 0);
    EXPECT_EQ(echoed, messages_by(h, 2, "ircer"));
}

}  // namespace
}  // namespace warren::test

namespace warren::test {
namespace {

// A request that first fetches its message from storage (an edit of one older than the room's
// cache) and whose connection's login is rolled back while the fetch is in flight (the login's
// commit failed) is refused as admission would refuse it now, not run without a session (that
// aborted the server: found by 10,000 seeds of sim/scenarios/power_loss.toml, seed 2004).
TEST(Core, ARequestWhoseLoginIsRolledBackWhileItsMessageIsFetchedIsRefused) {
    Config c;
    c.room_cache_messages_max = 100;
    c.old_messages_cached_max = 1;
    CoreHarness h(c);
    std::vector<int64_t> ids = alice_in_room_r_sends(h, 150);
    ASSERT_EQ(h.call(1, {{"op", "LOGOUT"}})["ok"], true);
    h.hold_commits = true;
    h.hold_queries = true;
    h.send(1, {{"id", 900}, {"op", "LOGIN"}, {"username", "alice"}, {"password", "password1"}});
    h.send(1, {{"id", 901}, {"op", "EDIT_MESSAGE"}, {"message_id", ids.front()}, {"text", "x"}});
    h.fail_commits = 1;
    h.hold_commits = false;
    h.hold_queries = false;
    h.release();
    std::vector<json> lines = h.take(1);
    ASSERT_EQ(lines.size(), 2u);
    EXPECT_EQ(lines[0]["re"], 900);
    EXPECT_EQ(lines[0]["error"]["code"], "UNAVAILABLE") << lines[0];
    EXPECT_EQ(lines[1]["re"], 901);
    EXPECT_EQ(lines[1]["error"]["code"], "UNAUTHENTICATED") << lines[1];
}

}  // namespace
}  // namespace warren::test
