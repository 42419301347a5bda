// Security through the real core and a real SQLite store (CoreHarness with abuse limits on,
// at their defaults unless a test says otherwise): the rule table and attack signatures,
// token buckets with exact retry_after_ms, connection caps, the login deadline and idle
// timeout, login throttling, registration, blocks and suspensions (admin and automatic),
// their persistence and the audit log.
#include <gtest/gtest.h>

#include <filesystem>

#include "core/security/address.h"
#include "harness.h"

namespace warren::test {
namespace {

std::string code_of(const json& reply) {
    return reply.contains("error") ? reply["error"].value("code", "") : "";
}

CoreHarness secured(Config c = {}, const std::string& db = ":memory:") {
    return CoreHarness(c, db, /*abuse_limits=*/true);
}

std::string temp_db(const std::string& name) {
    auto p = std::filesystem::temp_directory_path() /
             ("warren-security-" + name + "-" + std::to_string(::getpid()) + ".db");
    std::filesystem::remove(p);
    std::filesystem::remove(p.string() + "-wal");
    std::filesystem::remove(p.string() + "-shm");
    return p.string();
}

TEST(Address, KeysAndCidrs) {
    EXPECT_EQ(address_key("203.0.113.7"), "203.0.113.7");
    EXPECT_EQ(address_key("::ffff:203.0.113.7"), "203.0.113.7");
    EXPECT_EQ(address_key("2001:db8:0:1::5"), "2001:db8:0:1::/64");
    EXPECT_EQ(address_key("2001:db8:0:1:ffff::9"), "2001:db8:0:1::/64");
    EXPECT_EQ(address_key("not an address"), "not an address");
    EXPECT_FALSE(parse_ip("1.2.3"));
    EXPECT_FALSE(parse_ip("01.2.3.4"));
    EXPECT_FALSE(parse_ip("1::2::3"));
    EXPECT_FALSE(parse_ip("1.2.3.256"));
    Cidrs c;
    EXPECT_TRUE(c.add("10.0.0.0/8"));
    EXPECT_TRUE(c.add("2001:db8::/32"));
    EXPECT_FALSE(c.add("10.0.0.0/33"));
    EXPECT_FALSE(c.add("nonsense"));
    EXPECT_TRUE(c.contains("10.200.3.4"));
    EXPECT_FALSE(c.contains("11.0.0.1"));
    EXPECT_TRUE(c.contains("2001:db8:ffff::1"));
    EXPECT_FALSE(c.contains("2001:db9::1"));
}

TEST(Validation, SignaturesInStructuralFieldsAreRefusedAndScored) {
    Config c;
    c.points_signature = 5;  // low enough to send every probe before the block
    auto h = secured(c);
    h.register_user(1, "alice");
    h.call(1, {{"op", "CREATE_ROOM"}, {"room", "general"}});
    struct Probe {
        json req;
        std::string field;
    };
    std::vector<Probe> probes = {
        {{{"op", "JOIN_ROOM"}, {"room", "../../etc/passwd"}}, "room"},
        {{{"op", "JOIN_ROOM"}, {"room", "x' OR 1=1 --"}}, "room"},
        {{{"op", "DIRECT_MESSAGE"}, {"to", "<script>alert(1)</script>"}, {"text", "hi"}}, "to"},
        {{{"op", "REACT"}, {"message_id", 1}, {"emoji", "<img src=x>"}}, "emoji"},
        {{{"op", "LIST_ROOMS"}, {"cursor", std::string("a\0b", 3)}}, "cursor"},
        {{{"op", "DELETE_MESSAGE"}, {"message_id", "1; DROP TABLE messages"}}, "message_id"},
    };
    uint64_t before = h.core().guard().counters().signatures;
    for (const auto& p : probes) {
        json r = h.call(1, p.req);
        EXPECT_EQ(code_of(r), "BAD_REQUEST") << p.req;
        EXPECT_EQ(r["error"].value("field", ""), p.field) << p.req;
    }
    EXPECT_EQ(h.core().guard().counters().signatures, before + probes.size());
    // A plain invalid value is refused without being called an attack.
    EXPECT_EQ(code_of(h.call(1, {{"op", "JOIN_ROOM"}, {"room", std::string(51, 'a')}})),
              "BAD_REQUEST");
    EXPECT_EQ(h.core().guard().counters().signatures, before + probes.size());
    EXPECT_NE(h.core().guard().ip_level("127.0.0.1", h.now()), ThreatLevel::low);
}

TEST(Validation, FourSignaturesAtDefaultScoresBlockTheAddress) {
    auto h = secured();
    h.register_user(1, "alice", "password1", "203.0.113.9");
    for (int i = 0; i < 4; ++i) h.call(1, {{"op", "JOIN_ROOM"}, {"room", "<script>"}});
    EXPECT_EQ(h.close_reason(1), "BLOCKED");
}

TEST(Validation, MessageTextIsDataNeverASignature) {
    auto h = secured();
    h.register_user(1, "alice");
    h.call(1, {{"op", "CREATE_ROOM"}, {"room", "general"}});
    std::vector<std::string> texts = {"<script>alert('x')</script>", "'; DROP TABLE users; --",
                                      "../../etc/passwd", "${jndi:ldap://x}"};
    for (const auto& t : texts)
        EXPECT_EQ(h.call(1, {{"op", "SEND_MESSAGE"}, {"room", "general"}, {"text", t}})["ok"],
                  true);
    json hist = h.call(1, {{"op", "HISTORY"}, {"room", "general"}});
    ASSERT_EQ(hist["messages"].size(), texts.size());
    for (size_t i = 0; i < texts.size(); ++i) EXPECT_EQ(hist["messages"][i]["text"], texts[i]);
    EXPECT_EQ(h.core().guard().counters().signatures, 0u);
    EXPECT_EQ(h.core().guard().ip_level("127.0.0.1", h.now()), ThreatLevel::low);
}

TEST(RateLimit, UserBucketBurstThenExactRetryAfterAndNothingChanges) {
    auto h = secured();
    h.register_user(1, "alice");
    h.call(1, {{"op", "CREATE_ROOM"}, {"room", "general"}});  // 1 of the 30
    for (int i = 0; i < 29; ++i) ASSERT_EQ(h.call(1, {{"op", "PING"}})["ok"], true) << i;
    json r = h.call(1, {{"op", "SEND_MESSAGE"}, {"room", "general"}, {"text", "too many"}});
    EXPECT_EQ(code_of(r), "RATE_LIMITED");
    EXPECT_EQ(r["error"]["retry_after_ms"], 1000);  // 60 a minute: one token a second
    h.advance(999);
    EXPECT_EQ(h.call(1, {{"op", "PING"}})["error"]["retry_after_ms"], 1);
    h.advance(1);
    EXPECT_EQ(h.call(1, {{"op", "PING"}})["ok"], true);
    h.advance(1000);
    EXPECT_TRUE(
        h.call(1, {{"op", "HISTORY"}, {"room", "general"}, {"limit", 10}}).contains("error"));
    h.advance(2000);  // HISTORY weighs 2
    json hist = h.call(1, {{"op", "HISTORY"}, {"room", "general"}});
    EXPECT_EQ(hist["messages"].size(), 0u);  // the refused message changed nothing
}

TEST(RateLimit, IpBucketCoversRequestsBeforeLogin) {
    auto h = secured();
    h.connect(1);
    h.take(1);
    for (int i = 0; i < 50; ++i) ASSERT_EQ(h.call(1, {{"op", "PING"}})["ok"], true) << i;
    json r = h.call(1, {{"op", "PING"}});
    EXPECT_EQ(code_of(r), "RATE_LIMITED");
    EXPECT_EQ(r["error"]["retry_after_ms"], 600);  // 100 a minute
    // Another address is not affected.
    h.connect(2, "10.0.0.2");
    h.take(2);
    EXPECT_EQ(h.call(2, {{"op", "PING"}})["ok"], true);
}

TEST(Connections, PerAddressCapWithIpv6PerSlash64AndAllowlist) {
    Config c;
    c.allowlist = {"10.9.0.0/16"};
    auto h = secured(c);
    for (ConnId i = 1; i <= 16; ++i) h.connect(i, "10.0.0.1");
    h.connect(17, "10.0.0.1");
    EXPECT_TRUE(h.closed(17));
    auto refusal = h.take(17);
    ASSERT_EQ(refusal.size(), 1u);  // no HELLO
    EXPECT_EQ(refusal[0]["reason"], "TOO_MANY_CONNECTIONS");
    EXPECT_TRUE(refusal[0].contains("retry_after_ms"));
    h.disconnect(1);
    h.connect(18, "10.0.0.1");
    EXPECT_FALSE(h.closed(18));
    // Two addresses in one /64 share the cap; the next /64 does not.
    for (ConnId i = 100; i < 108; ++i) h.connect(i, "2001:db8::" + std::to_string(i));
    for (ConnId i = 108; i < 116; ++i) h.connect(i, "2001:db8::1:" + std::to_string(i));
    h.connect(116, "2001:db8::ffff");
    EXPECT_TRUE(h.closed(116));
    h.connect(117, "2001:db8:0:1::1");
    EXPECT_FALSE(h.closed(117));
    for (ConnId i = 200; i < 240; ++i) h.connect(i, "10.9.1.1");
    for (ConnId i = 200; i < 240; ++i) EXPECT_FALSE(h.closed(i));
}

TEST(Connections, NewConnectionsPerAddressPerWindow) {
    auto h = secured();
    for (ConnId i = 1; i <= 30; ++i) {
        h.connect(i, "10.0.0.8");
        ASSERT_FALSE(h.closed(i)) << i;
        h.disconnect(i);  // never more than one open: only the rate is at stake
    }
    h.connect(31, "10.0.0.8");
    EXPECT_EQ(h.close_reason(31), "TOO_MANY_CONNECTIONS");
    auto refusal = h.take(31);
    ASSERT_EQ(refusal.size(), 1u);
    EXPECT_EQ(refusal[0]["retry_after_ms"], 10'000);  // when the oldest leaves the window
    h.advance(10'000);
    h.connect(32, "10.0.0.8");
    EXPECT_FALSE(h.closed(32));
}

TEST(Connections, LoginDeadlineAndIdleTimeout) {
    auto h = secured();
    h.connect(1);
    h.register_user(2, "alice");
    h.advance(29'000);
    h.tick();
    EXPECT_FALSE(h.closed(1));
    h.advance(1'000);
    while (h.tick_to_deadline(1000) && !h.closed(1)) {
    }
    EXPECT_EQ(h.close_reason(1), "IDLE_TIMEOUT");
    EXPECT_FALSE(h.closed(2));  // logged in: the idle timeout (15 min) applies
    h.call(2, {{"op", "PING"}});
    h.advance(15 * 60 * 1000 - 1000);
    h.tick();
    EXPECT_FALSE(h.closed(2));
    h.advance(1000);
    while (h.tick_to_deadline(1000) && !h.closed(2)) {
    }
    EXPECT_EQ(h.close_reason(2), "IDLE_TIMEOUT");
}

TEST(Login, SameAnswerForUnknownNameAndWrongPasswordThenNameLock) {
    Config c;
    c.ip_login_failures_max = 100;  // this test is about names, not the address
    c.rate_ip_burst = 1000;         // (a password LOGIN weighs 5 of the address's tokens)
    auto h = secured(c);
    h.register_user(1, "alice", "right-password");
    h.connect(2, "10.0.0.2");
    h.take(2);
    json wrong = h.call(2, {{"op", "LOGIN"}, {"username", "alice"}, {"password", "wrong-pass"}});
    json unknown = h.call(2, {{"op", "LOGIN"}, {"username", "nobody"}, {"password", "wrong-pass"}});
    EXPECT_EQ(wrong["error"], unknown["error"]);
    EXPECT_EQ(code_of(wrong), "INVALID_CREDENTIALS");
    for (int i = 0; i < 4; ++i) {
        h.call(2, {{"op", "LOGIN"}, {"username", "alice"}, {"password", "wrong-pass"}});
        h.call(2, {{"op", "LOGIN"}, {"username", "Nobody"}, {"password", "wrong-pass"}});
    }
    // Five failures each: both names are locked, whatever the password, existing or not.
    json locked =
        h.call(2, {{"op", "LOGIN"}, {"username", "alice"}, {"password", "right-password"}});
    EXPECT_EQ(code_of(locked), "RATE_LIMITED");
    EXPECT_EQ(locked["error"]["retry_after_ms"], 15 * 60 * 1000);
    EXPECT_EQ(
        code_of(h.call(2, {{"op", "LOGIN"}, {"username", "nobody"}, {"password", "x-password"}})),
        "RATE_LIMITED");
    bool audited = false;
    for (const auto& a : h.audits)
        audited = audited || (a.action == "name_locked" && a.account == "alice");
    EXPECT_TRUE(audited);
    // Token logins are unaffected.
    h.connect(3, "10.0.0.3");
    h.take(3);
    json fresh = h.register_user(4, "bob");
    std::string bob_token = fresh["session"]["token"];
    h.connect(5, "10.0.0.5");
    h.take(5);
    EXPECT_EQ(h.call(5, {{"op", "LOGIN"}, {"token", bob_token}})["ok"], true);
    // The lock ends after 15 minutes.
    h.advance(15 * 60 * 1000);
    EXPECT_EQ(
        h.call(2, {{"op", "LOGIN"}, {"username", "alice"}, {"password", "right-password"}})["ok"],
        true);
}

TEST(Login, TenFailuresFromOneAddressBlockItWithAnEscalatingLadder) {
    auto h = secured();
    h.connect(1, "198.51.100.7");
    h.take(1);
    h.connect(2, "198.51.100.7");
    h.take(2);
    for (int i = 0; i < 10; ++i)
        h.call(1, {{"op", "LOGIN"},
                   {"username", "user" + std::to_string(i)},
                   {"password", "guess-pass"}});
    EXPECT_EQ(h.close_reason(1), "BLOCKED");
    EXPECT_EQ(h.close_reason(2), "BLOCKED");  // every connection from the address
    auto last = h.take(2);
    ASSERT_FALSE(last.empty());
    EXPECT_EQ(last.back()["reason"], "BLOCKED");
    EXPECT_EQ(last.back()["retry_after_ms"], 15 * 60 * 1000);
    h.connect(3, "198.51.100.7");
    EXPECT_TRUE(h.closed(3));
    h.advance(15 * 60 * 1000);
    h.connect(4, "198.51.100.7");
    EXPECT_FALSE(h.closed(4));
    h.take(4);
    for (int i = 0; i < 10; ++i)
        h.call(4, {{"op", "LOGIN"},
                   {"username", "user" + std::to_string(i)},
                   {"password", "guess-pass"}});
    auto second = h.events(4);
    ASSERT_FALSE(second.empty());
    EXPECT_EQ(second.back()["retry_after_ms"], 60 * 60 * 1000);  // the next step: 1 h
}

TEST(Registration, ClosedAndCappedPerAddress) {
    Config closed;
    closed.registration_open = false;
    auto h = secured(closed);
    EXPECT_EQ(code_of(h.register_user(1, "alice")), "FORBIDDEN");
    auto g = secured();
    for (int i = 0; i < 5; ++i)
        EXPECT_EQ(g.register_user(10 + i, "user" + std::to_string(i))["ok"], true);
    json r = g.register_user(20, "user5");
    EXPECT_EQ(code_of(r), "RATE_LIMITED");
    EXPECT_GT(r["error"]["retry_after_ms"].get<int64_t>(), 0);
    EXPECT_EQ(g.register_user(21, "user6", "password1", "10.0.0.9")["ok"], true);
}

AdminRequest block_req(std::string ip, std::optional<int64_t> duration = {}) {
    AdminRequest q;
    q.kind = AdminRequest::Kind::block;
    q.ip = std::move(ip);
    q.duration_ms = duration;
    q.reason = "test";
    return q;
}

TEST(Admin, BlockTakesEffectAtOnceSurvivesRestartAndUnblocks) {
    std::string db = temp_db("block");
    {
        auto h = secured({}, db);
        h.register_user(1, "alice", "password1", "192.0.2.10");
        auto r = h.admin(block_req("192.0.2.10", 3'600'000));
        ASSERT_TRUE(r);
        EXPECT_EQ(r->status, 200) << r->body;
        EXPECT_EQ(h.close_reason(1), "BLOCKED");
        auto bad = h.admin(block_req("not-an-ip"));
        EXPECT_EQ(bad->status, 400);
        auto list = h.admin(AdminRequest{AdminRequest::Kind::blocks});
        EXPECT_NE(list->body.find("192.0.2.10"), std::string::npos);
    }
    {
        auto h = secured({}, db);
        h.connect(1, "192.0.2.10");
        EXPECT_EQ(h.close_reason(1), "BLOCKED");
        auto lines = h.take(1);
        ASSERT_EQ(lines.size(), 1u);
        EXPECT_LE(lines[0]["retry_after_ms"].get<int64_t>(), 3'600'000);
        AdminRequest q;
        q.kind = AdminRequest::Kind::unblock;
        q.ip = "192.0.2.10";
        EXPECT_EQ(h.admin(q)->status, 200);
        EXPECT_EQ(h.admin(q)->status, 404);  // nothing left to lift
        h.connect(2, "192.0.2.10");
        EXPECT_FALSE(h.closed(2));
        // The audit log holds both actions, newest first, paged.
        AdminRequest a;
        a.kind = AdminRequest::Kind::audit;
        a.limit = 1;
        auto page = h.admin(a);
        ASSERT_TRUE(page);
        auto j = json::parse(page->body);
        ASSERT_EQ(j["entries"].size(), 1u);
        EXPECT_EQ(j["entries"][0]["action"], "ip_unblocked");
        a.before = j["next_before"];
        auto older = json::parse(h.admin(a)->body);
        EXPECT_EQ(older["entries"][0]["action"], "ip_blocked");
        EXPECT_EQ(older["entries"][0]["details"]["until_ts"].is_number(), true);
    }
    {
        auto h = secured({}, db);  // the block expired or was lifted: not in force
        h.connect(1, "192.0.2.10");
        EXPECT_FALSE(h.closed(1));
    }
}

// A block found while the half-open breaker's probe is in flight waits in the backlog. After
// a tick the core's next deadline must be later than now: the breaker's reopening time, which
// has passed, made the driver's timer fire again at once, forever (a busy event loop; the
// simulator hung on it).
TEST(Persistence, ABacklogBehindTheProbeDoesNotSpinTheEventLoop) {
    Config c;
    c.breaker_open_ms = 5000;
    auto h = secured(c);
    h.register_user(1, "alice", "password1", "10.0.0.1");
    h.call(1, {{"op", "CREATE_ROOM"}, {"room", "r"}});
    h.fail_commits = 3;  // three rolled-back batches open the breaker
    for (int i = 0; i < 3; ++i) h.call(1, {{"op", "SEND_MESSAGE"}, {"room", "r"}, {"text", "x"}});
    ASSERT_EQ(h.core().breaker_state(), Breaker::State::open);
    h.advance(c.breaker_open_ms);
    h.hold_commits = true;
    h.send(1, {{"id", 9}, {"op", "SEND_MESSAGE"}, {"room", "r"}, {"text", "probe"}});
    for (ConnId conn = 10; conn < 14; ++conn) {  // bad frames: a block to persist
        h.connect(conn, "203.0.113.50");
        h.raw(conn, "x\nx\nx\n");
    }
    ASSERT_EQ(h.core().breaker_state(), Breaker::State::half_open);
    for (int i = 0; i < 3; ++i) {
        h.tick();
        std::optional<int64_t> d = h.core().next_deadline();
        ASSERT_TRUE(d.has_value());
        EXPECT_GT(*d, h.now().mono_us) << "tick " << i;
        h.advance_us(std::max<int64_t>(*d - h.now().mono_us, 0));
    }
    h.hold_commits = false;
    h.release();  // the probe lands; the block goes out after it
    while (h.tick_to_deadline(10'000) && h.core().breaker_state() != Breaker::State::closed) {
    }
    EXPECT_EQ(h.core().breaker_state(), Breaker::State::closed);
}

TEST(Persistence, AutomaticBlocksWaitForStorageAndAreWrittenWhenItRecovers) {
    std::string db = temp_db("backlog");
    {
        auto h = secured({}, db);
        h.register_user(1, "alice", "password1", "10.0.0.1");
        h.call(1, {{"op", "CREATE_ROOM"}, {"room", "r"}});
        h.fail_commits = 3;  // three rolled-back batches open the breaker
        for (int i = 0; i < 3; ++i)
            h.call(1, {{"op", "SEND_MESSAGE"}, {"room", "r"}, {"text", "lost"}});
        ASSERT_EQ(h.core().breaker_state(), Breaker::State::open);
        for (ConnId c = 10; c < 14; ++c) {
            h.connect(c, "203.0.113.50");
            h.raw(c, "x\nx\nx\n");
        }
        h.connect(20, "203.0.113.50");
        EXPECT_EQ(h.close_reason(20), "BLOCKED");  // in force at once, storage or not
        size_t commits = h.commits;
        while (h.tick_to_deadline(10'000) && h.commits == commits) {
        }
        EXPECT_GT(h.commits, commits);  // the backlog went out as the half-open probe
        EXPECT_EQ(h.core().breaker_state(), Breaker::State::closed);
    }
    auto h = secured({}, db);  // restarted from the database
    h.connect(1, "203.0.113.50");
    EXPECT_EQ(h.close_reason(1), "BLOCKED");
    AdminRequest a;
    a.kind = AdminRequest::Kind::audit;
    auto j = json::parse(h.admin(a)->body);
    ASSERT_FALSE(j["entries"].empty());
    EXPECT_EQ(j["entries"][0]["action"], "ip_blocked");
}

TEST(Admin, BlockExpiresOnItsOwn) {
    auto h = secured();
    h.admin(block_req("192.0.2.20", 60'000));
    h.connect(1, "192.0.2.20");
    EXPECT_TRUE(h.closed(1));
    h.advance(60'000);
    h.connect(2, "192.0.2.20");
    EXPECT_FALSE(h.closed(2));
}

TEST(Admin, AllowlistedAddressesAreNeverBlocked) {
    Config c;
    c.allowlist = {"192.0.2.0/24"};
    auto h = secured(c);
    EXPECT_EQ(h.admin(block_req("192.0.2.5"))->status, 409);
}

TEST(Admin, SuspensionClosesConnectionsRefusesLoginsAndLifts) {
    auto h = secured();
    json reg = h.register_user(1, "mallory", "password1", "192.0.2.30");
    std::string token = reg["session"]["token"];
    AdminRequest q;
    q.kind = AdminRequest::Kind::suspend;
    q.username = "Mallory";
    q.duration_ms = 600'000;
    EXPECT_EQ(h.admin(q)->status, 200);
    EXPECT_EQ(h.close_reason(1), "BLOCKED");
    h.connect(2, "192.0.2.31");
    h.take(2);
    json pw = h.call(2, {{"op", "LOGIN"}, {"username", "mallory"}, {"password", "password1"}});
    EXPECT_EQ(code_of(pw), "BLOCKED");
    EXPECT_EQ(pw["error"]["retry_after_ms"], 600'000);
    EXPECT_EQ(code_of(h.call(2, {{"op", "LOGIN"}, {"token", token}})), "BLOCKED");
    q.username = "nobody";
    EXPECT_EQ(h.admin(q)->status, 404);
    q.kind = AdminRequest::Kind::unsuspend;
    q.username = "mallory";
    EXPECT_EQ(h.admin(q)->status, 200);
    EXPECT_EQ(h.call(2, {{"op", "LOGIN"}, {"token", token}})["ok"], true);
}

TEST(Admin, FailedCommitUndoesTheAction) {
    auto h = secured();
    h.fail_commits = 1;
    auto r = h.admin(block_req("192.0.2.40"));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 503);
    h.connect(1, "192.0.2.40");
    EXPECT_FALSE(h.closed(1));
}

TEST(Audit, RowsArePrunedToTheConfiguredBound) {
    Config c;
    c.audit_rows_max = 2;
    auto h = secured(c);
    h.connect(99, "10.0.0.99");  // keeps housekeeping ticking
    for (int i = 1; i <= 4; ++i) h.admin(block_req("192.0.2." + std::to_string(i)));
    AdminRequest a;
    a.kind = AdminRequest::Kind::audit;
    EXPECT_EQ(json::parse(h.admin(a)->body)["entries"].size(), 4u);
    h.advance(3'600'000);
    h.tick();
    auto j = json::parse(h.admin(a)->body);
    ASSERT_EQ(j["entries"].size(), 2u);
    EXPECT_EQ(j["entries"][0]["ip"], "192.0.2.4");
}

TEST(Threat, BadFramesBlockTheAddressAndTheLevelIsReported) {
    auto h = secured();
    for (ConnId c = 1; c <= 4; ++c) {
        h.connect(c, "203.0.113.5");
        h.raw(c, "nope\nnope\nnope\n");
    }
    // The tenth bad frame blocked the address (connection 4 was already closing for its
    // third bad frame); a new connection is refused.
    h.connect(5, "203.0.113.5");
    EXPECT_EQ(h.close_reason(5), "BLOCKED");
    bool blocked = false;
    for (const auto& a : h.audits)
        blocked = blocked || (a.action == "ip_blocked" && a.ip == "203.0.113.5");
    EXPECT_TRUE(blocked);
    EXPECT_EQ(h.core().guard().counters().blocks, 1u);
}

TEST(Threat, SameTextAcrossRoomsSuspendsTheAccount) {
    auto h = secured();
    h.register_user(1, "spammer", "password1", "198.51.100.20");
    for (const char* r : {"r1", "r2", "r3"}) h.call(1, {{"op", "CREATE_ROOM"}, {"room", r}});
    int sent = 0;
    for (int i = 0; i < 10 && !h.closed(1); ++i, ++sent)
        h.call(1, {{"op", "SEND_MESSAGE"},
                   {"room", "r" + std::to_string(1 + i % 3)},
                   {"text", "BUY NOW"}});
    EXPECT_EQ(h.close_reason(1), "BLOCKED");
    EXPECT_EQ(sent, 7);  // the 3rd room scores 20, and every copy after it: 5 copies reach 100
    EXPECT_EQ(h.core().guard().counters().suspensions, 1u);
    // Different texts in many rooms are fine.
    h.register_user(2, "chatty", "password1", "198.51.100.21");
    for (const char* r : {"r1", "r2", "r3"}) h.call(2, {{"op", "JOIN_ROOM"}, {"room", r}});
    for (int i = 0; i < 15; ++i)
        EXPECT_EQ(h.call(2, {{"op", "SEND_MESSAGE"},
                             {"room", "r" + std::to_string(1 + i % 3)},
                             {"text", "message " + std::to_string(i)}})["ok"],
                  true);
}

TEST(Threat, JoinLeaveChurnSuspendsTheAccount) {
    auto h = secured();
    h.register_user(1, "owner", "password1", "198.51.100.30");
    h.call(1, {{"op", "CREATE_ROOM"}, {"room", "lobby"}});
    h.register_user(2, "churner", "password1", "198.51.100.31");
    int changes = 0;
    for (int i = 0; i < 30 && !h.closed(2); ++i, ++changes)
        h.call(2, {{"op", i % 2 ? "LEAVE_ROOM" : "JOIN_ROOM"}, {"room", "lobby"}});
    EXPECT_EQ(h.close_reason(2), "BLOCKED");
    EXPECT_EQ(changes, 20);  // 10 free, then 10 points each
}

TEST(Housekeeping, ExpiredSessionsLeaveMemory) {
    Config c;
    c.session_ttl_ms = 120'000;
    auto h = secured(c);
    std::string token = h.register_user(1, "alice")["session"]["token"];
    EXPECT_EQ(h.core().state().session_count(), 1u);
    h.advance(200'000);
    h.tick();  // housekeeping runs once a minute
    EXPECT_EQ(h.core().state().session_count(), 0u);
    h.connect(2, "10.0.0.2");
    h.take(2);
    EXPECT_EQ(code_of(h.call(2, {{"op", "LOGIN"}, {"token", token}})), "INVALID_CREDENTIALS");
}

TEST(Monitor, CountsErrorsLatencyAndRendersPrometheus) {
    auto h = secured();
    h.register_user(1, "alice");
    h.call(1, {{"op", "JOIN_ROOM"}, {"room", "nowhere"}});
    h.call(1, {{"op", "PING"}});
    auto m = json::parse(h.admin(AdminRequest{AdminRequest::Kind::metrics})->body);
    EXPECT_EQ(m["ops"]["JOIN_ROOM"]["count"], 1);
    EXPECT_EQ(m["ops"]["JOIN_ROOM"]["errors"]["NOT_FOUND"], 1);
    EXPECT_EQ(m["ops"]["REGISTER"]["count"], 1);
    EXPECT_EQ(m["connections"]["open"], 1);
    EXPECT_EQ(m["online_users"], 1);
    auto p = h.admin(AdminRequest{AdminRequest::Kind::prometheus});
    EXPECT_EQ(p->content_type.substr(0, 10), "text/plain");
    EXPECT_NE(p->body.find("warren_requests_total{op=\"PING\"} 1\n"), std::string::npos);
    EXPECT_NE(p->body.find("warren_request_errors_total{op=\"JOIN_ROOM\",code=\"NOT_FOUND\"} 1\n"),
              std::string::npos);
    EXPECT_NE(p->body.find("# TYPE warren_request_latency_seconds histogram"), std::string::npos);
    EXPECT_EQ(h.admin(AdminRequest{AdminRequest::Kind::ready})->status, 200);
    EXPECT_EQ(h.admin(AdminRequest{AdminRequest::Kind::health})->status, 200);
}

TEST(Monitor, HistogramPercentiles) {
    Histogram hg;
    for (int i = 1; i <= 100; ++i) hg.record(i);
    EXPECT_EQ(hg.count(), 100u);
    EXPECT_EQ(hg.max(), 100);
    EXPECT_EQ(hg.percentile(0.5), 50);
    EXPECT_EQ(hg.percentile(0.99), 100);
    EXPECT_EQ(hg.percentile(0.0), 1);
    WindowHistogram w;
    w.record(5, 0);
    w.record(7, 59'000);
    EXPECT_EQ(w.window(59'000).count(), 2u);
    EXPECT_EQ(w.window(61'000).count(), 1u);  // the first slot has left the last minute
    EXPECT_EQ(w.window(200'000).count(), 0u);
}

}  // namespace
}  // namespace warren::test

namespace warren::test {
namespace {

// The error code is read from the typed reply, so the length of the request id cannot hide it.
TEST(Monitor, ErrorsAreCountedWhateverTheRequestIdsLength) {
    CoreHarness h;
    h.connect(1);
    h.take(1);
    for (int64_t id : {int64_t{5}, int64_t{12345678901234}, int64_t{9007199254740991}}) {
        h.send(1, {{"id", id}, {"op", "JOIN_ROOM"}, {"room", "r"}});
        auto lines = h.take(1);
        ASSERT_EQ(lines.size(), 1u);
        EXPECT_EQ(lines[0]["re"], id);
        EXPECT_EQ(lines[0]["error"]["code"], "UNAUTHENTICATED");
    }
    auto p = h.admin(AdminRequest{AdminRequest::Kind::prometheus});
    EXPECT_NE(
        p->body.find("warren_request_errors_total{op=\"JOIN_ROOM\",code=\"UNAUTHENTICATED\"} 3\n"),
        std::string::npos)
        << p->body;
    auto m = json::parse(h.admin(AdminRequest{AdminRequest::Kind::metrics})->body);
    EXPECT_EQ(m["ops"]["JOIN_ROOM"]["errors"]["UNAUTHENTICATED"], 3);
}

// The cumulative count of `series` at bucket `le`, from the exposition text.
std::optional<uint64_t> bucket(const std::string& text, const std::string& series,
                               const std::string& le) {
    std::string head = series + ",le=\"" + le + "\"} ";
    size_t at = text.find(head);
    if (at == std::string::npos) return std::nullopt;
    return std::stoull(text.substr(at + head.size()));
}

// A request answered 250 µs after it arrived is recorded as 250 µs: in the buckets of
// Prometheus (which start at or below 10 µs and ascend) and in the JSON metrics.
TEST(Monitor, SubMillisecondLatenciesLandInMicrosecondBuckets) {
    CoreHarness h;
    h.register_user(1, "alice");
    h.call(1, {{"op", "CREATE_ROOM"}, {"room", "r"}});
    h.hold_commits = true;
    h.send(1, {{"id", 77}, {"op", "SEND_MESSAGE"}, {"room", "r"}, {"text", "quick"}});
    h.advance_us(250);
    h.release();
    ASSERT_EQ(h.take(1).at(0)["re"], 77);
    std::string text = h.admin(AdminRequest{AdminRequest::Kind::prometheus})->body;
    std::string series = "warren_request_latency_seconds_bucket{op=\"SEND_MESSAGE\"";
    EXPECT_EQ(bucket(text, series, "0.0001"), 0u) << text;
    EXPECT_EQ(bucket(text, series, "0.00025"), 1u);
    EXPECT_EQ(bucket(text, series, "+Inf"), 1u);
    // Bounds ascend from at most 10 µs; every one is a number.
    std::vector<double> les;
    for (size_t at = text.find(series); at != std::string::npos; at = text.find(series, at + 1)) {
        std::string le = text.substr(text.find("le=\"", at) + 4);
        le = le.substr(0, le.find('"'));
        if (le != "+Inf") les.push_back(std::stod(le));
    }
    ASSERT_GE(les.size(), 10u);
    EXPECT_LE(les.front(), 10e-6);
    EXPECT_TRUE(std::is_sorted(les.begin(), les.end()) &&
                std::adjacent_find(les.begin(), les.end()) == les.end());
    auto m = json::parse(h.admin(AdminRequest{AdminRequest::Kind::metrics})->body);
    EXPECT_DOUBLE_EQ(m["ops"]["SEND_MESSAGE"]["latency_ms"]["max"].get<double>(), 0.25);
}

}  // namespace
}  // namespace warren::test
