// Regression tests for the defects an outside audit found (issue "Hardening"), each named
// after the audit's item, through the real core and a real SQLite store. Every one of them
// failed on the core before its fix.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <limits>

#include "harness.h"

namespace warren::test {
namespace {

std::string code_of(const json& reply) {
    return reply.contains("error") ? reply["error"].value("code", "") : "";
}

CoreHarness secured(Config c = {}, const std::string& db = ":memory:") {
    return CoreHarness(c, db, /*abuse_limits=*/true);
}

AdminRequest admin_req(AdminRequest::Kind kind, std::string ip, std::string user,
                       std::optional<int64_t> duration) {
    AdminRequest q;
    q.kind = kind;
    q.ip = std::move(ip);
    q.username = std::move(user);
    q.duration_ms = duration;
    q.reason = "test";
    return q;
}

// M4: admin durations are bounded (10 years) and never overflow into an assertion.
TEST(Hardening, AdminDurationsAreBoundedAndNeverCrash) {
    auto h = secured();
    h.register_user(1, "mallory", "password1", "192.0.2.40");
    constexpr int64_t ten_years = 10LL * 366 * 24 * 3600 * 1000;
    for (int64_t d : {std::numeric_limits<int64_t>::max(), std::numeric_limits<int64_t>::max() - 1,
                      ten_years + 1}) {
        auto b = h.admin(admin_req(AdminRequest::Kind::block, "192.0.2.41", "", d));
        EXPECT_EQ(b->status, 400) << d << " " << b->body;
        EXPECT_NE(b->body.find("duration_ms"), std::string::npos);
        auto s = h.admin(admin_req(AdminRequest::Kind::suspend, "", "mallory", d));
        EXPECT_EQ(s->status, 400) << d << " " << s->body;
    }
    EXPECT_EQ(h.admin(admin_req(AdminRequest::Kind::block, "192.0.2.41", "", ten_years))->status,
              200);
    EXPECT_EQ(h.admin(admin_req(AdminRequest::Kind::suspend, "", "mallory", ten_years))->status,
              200);
    EXPECT_EQ(h.close_reason(1), "BLOCKED");
}

// M8: an IPv6 allowlist entry covers the address (security state is kept per /64, so the
// entry covers its whole /64).
TEST(Hardening, Ipv6AllowlistEntriesMatch) {
    Config c;
    c.allowlist = {"::1/128", "2001:db8:aa::/48"};
    auto h = secured(c);
    for (ConnId i = 1; i <= 20; ++i) h.connect(i, "::1");  // past 16 per address
    for (ConnId i = 1; i <= 20; ++i) EXPECT_FALSE(h.closed(i)) << i;
    for (ConnId i = 21; i <= 40; ++i) h.connect(i, "2001:db8:aa:5::7");
    for (ConnId i = 21; i <= 40; ++i) EXPECT_FALSE(h.closed(i)) << i;
    EXPECT_EQ(h.admin(admin_req(AdminRequest::Kind::block, "::1", "", {}))->status, 409);
    EXPECT_EQ(h.admin(admin_req(AdminRequest::Kind::block, "2001:db8:aa:9::1", "", {}))->status,
              409);
    // Outside the entries the caps still hold.
    for (ConnId i = 41; i <= 57; ++i) h.connect(i, "2001:db8:bb::1");
    EXPECT_EQ(h.close_reason(57), "TOO_MANY_CONNECTIONS");
}

// M10: values that obey their field's own grammar are never called attacks: emoji are text,
// and names may contain "--".
TEST(Hardening, EmojiAndDashedNamesAreNotAttacks) {
    auto h = secured();
    EXPECT_EQ(h.register_user(1, "dash--board", "password1", "198.51.100.3")["ok"], true);
    ASSERT_EQ(h.call(1, {{"op", "CREATE_ROOM"}, {"room", "war--room"}})["ok"], true);
    json m = h.call(1, {{"op", "SEND_MESSAGE"}, {"room", "war--room"}, {"text", "hi"}});
    int64_t id = m["message"]["id"];
    for (std::string e : {"<3", ";)", ">_<", "<=>", "--", "'"}) {
        json r = h.call(1, {{"op", "REACT"}, {"message_id", id}, {"emoji", e}});
        EXPECT_EQ(r["ok"], true) << e << " " << r;
    }
    EXPECT_FALSE(h.closed(1));
    EXPECT_EQ(h.core().guard().counters().signatures, 0u);
    EXPECT_EQ(h.core().guard().ip_level("198.51.100.3", h.now()), ThreatLevel::low);
}

// M12: a message of a private room one is not in is as invisible as a missing one (its room's
// name does not leak), in memory and in storage alike.
TEST(Hardening, MessagesOfPrivateRoomsDoNotLeakTheirRoom) {
    Config c;
    c.room_cache_messages_max = 4;  // so older messages live only in storage
    c.old_messages_cached_max = 2;
    CoreHarness h(c);
    h.register_user(1, "alice");
    h.register_user(2, "eve");
    h.call(1, {{"op", "CREATE_ROOM"}, {"room", "board-secrets"}, {"visibility", "private"}});
    std::vector<int64_t> ids;
    for (int i = 0; i < 12; ++i)
        ids.push_back(h.call(1, {{"op", "SEND_MESSAGE"},
                                 {"room", "board-secrets"},
                                 {"text", "m" + std::to_string(i)}})["message"]["id"]);
    size_t queries = h.queries;
    for (int64_t id : {ids.front(), ids.back()}) {
        for (json req : {json{{"op", "REACT"}, {"message_id", id}, {"emoji", "x"}},
                         json{{"op", "GET_THREAD"}, {"message_id", id}},
                         json{{"op", "EDIT_MESSAGE"}, {"message_id", id}, {"text", "y"}},
                         json{{"op", "DELETE_MESSAGE"}, {"message_id", id}}}) {
            json r = h.call(2, req);
            EXPECT_EQ(code_of(r), "NOT_FOUND") << req << r;
            EXPECT_EQ(r.dump().find("board-secrets"), std::string::npos) << r;
        }
    }
    EXPECT_GT(h.queries, queries);  // the oldest one was asked of storage...
    // ...and storage answered as it would for a missing message; alice still sees hers.
    EXPECT_EQ(h.call(1, {{"op", "GET_THREAD"}, {"message_id", ids.front()}})["ok"], true);
    // A public room's messages still name their room to a non-member (rooms are not secret).
    h.call(1, {{"op", "CREATE_ROOM"}, {"room", "lobby"}});
    int64_t pub =
        h.call(1, {{"op", "SEND_MESSAGE"}, {"room", "lobby"}, {"text", "hi"}})["message"]["id"];
    EXPECT_EQ(code_of(h.call(2, {{"op", "GET_THREAD"}, {"message_id", pub}})), "FORBIDDEN");
}

// M17: a room owner who left no longer sets its topic.
TEST(Hardening, OwnerWhoLeftCannotSetTheTopic) {
    CoreHarness h;
    h.register_user(1, "alice");
    h.call(1, {{"op", "CREATE_ROOM"}, {"room", "ops"}, {"visibility", "private"}});
    ASSERT_EQ(h.call(1, {{"op", "LEAVE_ROOM"}, {"room", "ops"}})["ok"], true);
    EXPECT_EQ(code_of(h.call(1, {{"op", "SET_TOPIC"}, {"room", "ops"}, {"topic", "mine"}})),
              "FORBIDDEN");
}

// M18: pending invitations are capped per inviter, so one user cannot fill another's.
TEST(Hardening, InvitationsAreCappedPerInviterNotPerInvitee) {
    Config c;
    c.invitations_pending_max = 3;
    CoreHarness h(c);
    h.register_user(1, "spammer");
    h.register_user(2, "bob");
    h.register_user(3, "victim");
    for (int i = 0; i < 4; ++i) {
        std::string room = "spam" + std::to_string(i);
        h.call(1, {{"op", "CREATE_ROOM"}, {"room", room}, {"visibility", "private"}});
        json r = h.call(1, {{"op", "INVITE_USER"}, {"room", room}, {"user", "victim"}});
        EXPECT_EQ(i < 3 ? std::string() : code_of(r), i < 3 ? "" : "CONFLICT") << r;
    }
    h.call(2, {{"op", "CREATE_ROOM"}, {"room", "real"}, {"visibility", "private"}});
    EXPECT_EQ(h.call(2, {{"op", "INVITE_USER"}, {"room", "real"}, {"user", "victim"}})["ok"], true);
}

}  // namespace
}  // namespace warren::test

namespace warren::test {
namespace {

std::string v4(uint32_t n) {
    return "10." + std::to_string((n >> 16) & 0xFF) + "." + std::to_string((n >> 8) & 0xFF) + "." +
           std::to_string(n & 0xFF);
}

// H2: more distinct addresses than the table holds never make strangers share state: the
// least recently seen idle ones leave, and a newcomer gets its own bucket, caps and
// registration cap.
TEST(Hardening, AddressTableNeverSharesStateBetweenStrangers) {
    auto h = secured();
    size_t table = h.core().config().security_ips_max;
    ConnId id = 1;
    for (uint32_t n = 0; n < table + 500; ++n, ++id) {
        h.connect(id, v4(n));
        ASSERT_FALSE(h.closed(id)) << v4(n);
        h.disconnect(id);
        h.take(id);
    }
    EXPECT_LE(h.core().guard().tracked_ips(), table);
    json reg = h.register_user(++id, "newcomer", "password1", "192.0.2.200");
    ASSERT_EQ(reg["ok"], true) << reg;
    for (int i = 0; i < 30; ++i) ASSERT_EQ(h.call(id, {{"op", "PING"}})["ok"], true) << i;
    EXPECT_EQ(code_of(h.call(id, {{"op", "PING"}})), "RATE_LIMITED");  // its own 30, no more
    // The registration cap holds for a fresh address too.
    for (int i = 0; i < 5; ++i)
        EXPECT_EQ(
            h.register_user(++id, "reg" + std::to_string(i), "password1", "192.0.2.201")["ok"],
            true)
            << i;
    EXPECT_EQ(code_of(h.register_user(++id, "reg5", "password1", "192.0.2.201")), "RATE_LIMITED");
}

// H2: addresses with open connections are never forgotten, so their per-address cap holds
// however many other addresses come and go.
TEST(Hardening, OpenConnectionCountsSurviveTableChurn) {
    Config c;
    c.security_ips_max = 1000;
    c.connections_max = 800;
    auto h = secured(c);
    ConnId id = 1;
    for (int i = 0; i < 16; ++i) h.connect(id++, "192.0.2.77");
    for (uint32_t n = 0; n < 5000; ++n, ++id) {
        h.connect(id, v4(n));
        h.disconnect(id);
        h.take(id);
    }
    h.connect(id, "192.0.2.77");
    EXPECT_EQ(h.close_reason(id), "TOO_MANY_CONNECTIONS");
}

// H2: an IPv6 /48 is a second tier: /64s rotated inside it share the /48's (larger) caps.
TEST(Hardening, Ipv6PrefixTierCapsRotatedSubnets) {
    auto h = secured();
    const Config& c = h.core().config();
    uint32_t cap = c.conns_per_ip_max * c.ipv6_prefix_factor;
    ConnId id = 1;
    auto addr = [](int prefix, uint32_t subnet) {
        char buf[64];
        std::snprintf(buf, sizeof buf, "2001:db8:%x:%x::1", prefix, subnet);
        return std::string(buf);
    };
    for (uint32_t s = 0; s < cap; ++s) {
        h.connect(id, addr(1, s));
        ASSERT_FALSE(h.closed(id)) << s;
        ++id;
    }
    h.connect(id, addr(1, cap));
    EXPECT_EQ(h.close_reason(id), "TOO_MANY_CONNECTIONS");
    h.connect(++id, addr(2, 0));  // another /48 is not affected
    EXPECT_FALSE(h.closed(id));
}

// M9: an account's name lock holds however many other names have failed meanwhile.
TEST(Hardening, NameLockOfAnAccountSurvivesNameTableChurn) {
    Config c;
    c.security_names_max = 50;
    auto h = secured(c);
    h.register_user(1, "alice", "password1", "192.0.2.90");
    ConnId id = 10;
    uint32_t junk_addr = 0;
    int junk_name = 0;
    // Junk names fail from ever new addresses (5 per address, under the address's limit).
    auto junk = [&](int count) {
        for (int n = 0; n < count; ++n) {
            if (n % 5 == 0) {
                h.connect(++id, v4(junk_addr++));
                h.take(id);
            }
            h.call(id, {{"op", "LOGIN"},
                        {"username", "junk" + std::to_string(junk_name++)},
                        {"password", "nopenope"}});
        }
    };
    junk(200);
    h.connect(2, "192.0.2.91");
    h.take(2);
    for (int i = 0; i < 5; ++i) {
        h.call(2, {{"op", "LOGIN"}, {"username", "alice"}, {"password", "wrongpass"}});
        junk(60);  // churns the name table between the guesses
    }
    json r = h.call(2, {{"op", "LOGIN"}, {"username", "alice"}, {"password", "password1"}});
    EXPECT_EQ(code_of(r), "RATE_LIMITED") << r;
}

}  // namespace
}  // namespace warren::test

namespace warren::test {
namespace {

// M11: capacity refusals are not hostility. Many connects refused from one shared address
// (an office, a CGNAT) never block it: the people already connected through it go on.
TEST(Hardening, RefusedConnectsDoNotBlockASharedAddress) {
    auto h = secured();
    const std::string office = "192.0.2.150";
    for (ConnId c = 1; c <= 16; ++c)
        h.register_user(c, "worker" + std::to_string(c), "password1", office);
    for (ConnId c = 100; c < 160; ++c) {
        h.connect(c, office);
        EXPECT_EQ(h.close_reason(c), "TOO_MANY_CONNECTIONS") << c;
        h.advance(500);
    }
    for (ConnId c = 1; c <= 16; ++c) {
        EXPECT_FALSE(h.closed(c)) << c;
        EXPECT_EQ(h.call(c, {{"op", "PING"}})["ok"], true) << c;
    }
    EXPECT_TRUE(h.core().guard().active_blocks(h.now()).empty());
    h.disconnect(16);
    h.connect(200, office);
    EXPECT_FALSE(h.closed(200));
}

// M11: one account flooding from a shared address is throttled and then suspended on the
// account; its neighbours on the address see no error and stay connected.
TEST(Hardening, AFloodingAccountIsSuspendedNotItsAddress) {
    auto h = secured();
    const std::string office = "192.0.2.151";
    h.register_user(1, "flooder", "password1", office);
    h.register_user(2, "neighbour", "password1", office);
    h.call(1, {{"op", "CREATE_ROOM"}, {"room", "r"}});
    h.call(2, {{"op", "JOIN_ROOM"}, {"room", "r"}});
    int limited = 0;
    for (int i = 0; i < 400 && !h.closed(1); ++i) {
        json r = h.call(1, {{"op", "SEND_MESSAGE"}, {"room", "r"}, {"text", "spam"}});
        if (code_of(r) == "RATE_LIMITED") ++limited;
        if (i % 20 == 0) {
            h.advance(1000);
            ASSERT_EQ(h.call(2, {{"op", "PING"}})["ok"], true) << i;
        }
    }
    EXPECT_GT(limited, 0);
    EXPECT_EQ(h.close_reason(1), "BLOCKED");  // the account is suspended...
    EXPECT_FALSE(h.closed(2));                // ...not the address
    EXPECT_TRUE(h.core().guard().active_blocks(h.now()).empty());
    EXPECT_EQ(h.core().guard().active_suspensions(h.now()).size(), 1u);
    EXPECT_EQ(h.call(2, {{"op", "SEND_MESSAGE"}, {"room", "r"}, {"text", "still here"}})["ok"],
              true);
}

}  // namespace
}  // namespace warren::test

namespace warren::test {
namespace {

// L19: C1 controls and bidirectional overrides are refused in emoji (the one structural field
// that allows non-ASCII); a joiner used in emoji sequences is fine.
TEST(Hardening, EmojiRefuseC1ControlsAndBidiOverrides) {
    CoreHarness h;
    h.register_user(1, "alice");
    h.call(1, {{"op", "CREATE_ROOM"}, {"room", "r"}});
    int64_t id =
        h.call(1, {{"op", "SEND_MESSAGE"}, {"room", "r"}, {"text", "hi"}})["message"]["id"];
    for (std::string bad :
         {std::string("\xc2\x85"), std::string("x\xc2\x9b"),
          std::string("\xe2\x80\xae"
                      "abc"),
          std::string("\xe2\x81\xa6"), std::string("\xe2\x80\x8f"), std::string("\xd8\x9c")}) {
        json r = h.call(1, {{"op", "REACT"}, {"message_id", id}, {"emoji", bad}});
        EXPECT_EQ(code_of(r), "BAD_REQUEST") << r;
        EXPECT_EQ(r["error"].value("field", ""), "emoji");
    }
    // A family emoji: man, ZWJ, woman, ZWJ, girl.
    std::string family = "\xf0\x9f\x91\xa8\xe2\x80\x8d\xf0\x9f\x91\xa9\xe2\x80\x8d\xf0\x9f\x91\xa7";
    EXPECT_EQ(h.call(1, {{"op", "REACT"}, {"message_id", id}, {"emoji", family}})["ok"], true);
}

}  // namespace
}  // namespace warren::test

namespace warren::test {
namespace {

// M22: a corrupt database is not a passing hiccup: the batch is rolled back, every later
// write is refused until an operator acts (a restart after repair), reads go on, readiness
// fails and an Emergency alert is raised.
TEST(Hardening, CorruptStorageStopsWritesAndRaisesAnEmergency) {
    Config c;
    c.alert_eval_ms = 1000;
    auto h = secured(c);  // with housekeeping and alert evaluation at their real pace
    h.register_user(1, "alice");
    h.call(1, {{"op", "CREATE_ROOM"}, {"room", "r"}});
    h.call(1, {{"op", "SEND_MESSAGE"}, {"room", "r"}, {"text", "before"}});
    h.corrupt_commits = 1;
    json r = h.call(1, {{"op", "SEND_MESSAGE"}, {"room", "r"}, {"text", "lost?"}});
    EXPECT_EQ(code_of(r), "UNAVAILABLE") << r;
    size_t commits = h.commits;
    for (int i = 0; i < 3; ++i) {
        h.advance(60'000);  // long after any breaker would have closed again
        json w = h.call(1, {{"op", "SEND_MESSAGE"}, {"room", "r"}, {"text", "after"}});
        EXPECT_EQ(code_of(w), "UNAVAILABLE") << w;
        EXPECT_NE(w["error"].value("message", "").find("corrupt"), std::string::npos) << w;
    }
    EXPECT_EQ(h.commits, commits);  // nothing more was written
    json hist = h.call(1, {{"op", "HISTORY"}, {"room", "r"}});
    ASSERT_EQ(hist["messages"].size(), 1u);  // reads go on, and the refused change is not there
    EXPECT_EQ(hist["messages"][0]["text"], "before");
    EXPECT_EQ(h.admin(AdminRequest{AdminRequest::Kind::ready})->status, 503);
    h.advance(1000);
    h.tick();
    auto alerts = json::parse(h.admin(AdminRequest{AdminRequest::Kind::alerts})->body);
    bool emergency = false;
    for (const auto& a : alerts["active"])
        emergency = emergency || (a["rule"] == "storage_corrupt" && a["level"] == "emergency");
    EXPECT_TRUE(emergency) << alerts;
}

}  // namespace
}  // namespace warren::test

namespace warren::test {
namespace {

// L16: admin rights go to accounts, not names: a configured admin name that no account holds
// is reserved (nobody can register it and gain the rights) and the operator is warned.
TEST(Hardening, AdminNamesBindToAccountsAndUnregisteredOnesAreReserved) {
    std::string db = std::filesystem::temp_directory_path() /
                     ("warren-admins-" + std::to_string(::getpid()) + ".db");
    std::filesystem::remove(db);
    {
        CoreHarness h({}, db);
        h.register_user(1, "boss");
    }
    Config c;
    c.admin_usernames = {"Boss", "root"};
    CoreHarness h(c, db);
    ASSERT_EQ(h.notices.size(), 1u);
    EXPECT_NE(h.notices[0].text.find("root"), std::string::npos) << h.notices[0].text;
    EXPECT_EQ(code_of(h.register_user(2, "root")), "FORBIDDEN");
    EXPECT_EQ(code_of(h.register_user(3, "ROOT")), "FORBIDDEN");
    h.register_user(4, "writer");
    h.call(4, {{"op", "CREATE_ROOM"}, {"room", "r"}});
    int64_t id =
        h.call(4, {{"op", "SEND_MESSAGE"}, {"room", "r"}, {"text", "hi"}})["message"]["id"];
    h.connect(5);
    h.take(5);
    h.call(5, {{"op", "LOGIN"}, {"username", "boss"}, {"password", "password1"}});
    h.call(5, {{"op", "JOIN_ROOM"}, {"room", "r"}});
    EXPECT_EQ(h.call(5, {{"op", "DELETE_MESSAGE"}, {"message_id", id}})["ok"], true);
    std::filesystem::remove(db);
}

}  // namespace
}  // namespace warren::test

namespace warren::test {
namespace {

// L15: a revoked session ends everywhere it is in use. LOGOUT ends this session on every
// connection using it; LOGOUT {"all":true} ends every session of the account.
TEST(Hardening, LogoutEndsTheSessionOnEveryConnectionUsingIt) {
    CoreHarness h;
    std::string token = h.register_user(1, "alice")["session"]["token"];
    h.connect(2);
    h.take(2);
    ASSERT_EQ(h.call(2, {{"op", "LOGIN"}, {"token", token}})["ok"], true);
    h.connect(3);
    h.take(3);
    ASSERT_EQ(h.call(3, {{"op", "LOGIN"}, {"username", "alice"}, {"password", "password1"}})["ok"],
              true);
    ASSERT_EQ(h.call(1, {{"op", "LOGOUT"}})["ok"], true);
    EXPECT_EQ(h.close_reason(2), "SESSION_REVOKED");  // same token
    EXPECT_FALSE(h.closed(3));                        // another session
    EXPECT_FALSE(h.closed(1));                        // logged out, still connected
    h.connect(4);
    h.take(4);
    EXPECT_EQ(code_of(h.call(4, {{"op", "LOGIN"}, {"token", token}})), "INVALID_CREDENTIALS");
    ASSERT_EQ(h.call(3, {{"op", "LOGOUT"}, {"all", true}})["ok"], true);
    EXPECT_FALSE(h.closed(3));
    EXPECT_EQ(h.call(3, {{"op", "LOGIN"}, {"username", "alice"}, {"password", "password1"}})["ok"],
              true);
}

TEST(Hardening, LogoutAllEndsEverySessionOfTheAccount) {
    CoreHarness h;
    std::string t1 = h.register_user(1, "alice")["session"]["token"];
    std::vector<std::string> tokens = {t1};
    for (ConnId c = 2; c <= 4; ++c) {
        h.connect(c);
        h.take(c);
        tokens.push_back(h.call(c, {{"op", "LOGIN"},
                                    {"username", "alice"},
                                    {"password", "password1"}})["session"]["token"]);
    }
    ASSERT_EQ(h.call(1, {{"op", "LOGOUT"}, {"all", true}})["ok"], true);
    for (ConnId c = 2; c <= 4; ++c) EXPECT_EQ(h.close_reason(c), "SESSION_REVOKED") << c;
    h.connect(9);
    h.take(9);
    for (const auto& t : tokens)
        EXPECT_EQ(code_of(h.call(9, {{"op", "LOGIN"}, {"token", t}})), "INVALID_CREDENTIALS");
    EXPECT_EQ(h.core().state().session_count(), 0u);
}

// L15: an operator can end every session of an account.
TEST(Hardening, AdminRevokesAnAccountsSessions) {
    CoreHarness h;
    std::string token = h.register_user(1, "mallory")["session"]["token"];
    h.register_user(2, "bystander");
    AdminRequest q;
    q.kind = AdminRequest::Kind::revoke_sessions;
    q.username = "Mallory";
    auto r = h.admin(q);
    ASSERT_EQ(r->status, 200) << r->body;
    EXPECT_NE(r->body.find("\"revoked\":1"), std::string::npos) << r->body;
    EXPECT_EQ(h.close_reason(1), "SESSION_REVOKED");
    EXPECT_FALSE(h.closed(2));
    h.connect(3);
    h.take(3);
    EXPECT_EQ(code_of(h.call(3, {{"op", "LOGIN"}, {"token", token}})), "INVALID_CREDENTIALS");
    ASSERT_FALSE(h.audits.empty());
    EXPECT_EQ(h.audits.back().action, "sessions_revoked");
    q.username = "nobody";
    EXPECT_EQ(h.admin(q)->status, 404);
}

// L15, M14: an expired session ends on the connections using it, and its row is pruned.
TEST(Hardening, ExpiredSessionsEndOnOpenConnectionsAndArePruned) {
    Config c;
    c.session_ttl_ms = 3'600'000;
    c.idle_timeout_ms = 24LL * 3600 * 1000;
    auto h = secured(c);
    h.register_user(1, "alice");
    for (int i = 0; i < 70; ++i) {
        h.advance(60'000);
        h.tick();
        if (h.closed(1)) break;
        h.call(1, {{"op", "PING"}});
    }
    EXPECT_EQ(h.close_reason(1), "SESSION_REVOKED");
    // The row is gone from storage too (a restart would not load it anyway).
    h.advance(3'600'000);
    h.tick();
    EXPECT_EQ(h.store().session_rows(), 0u);
}

// M14: sessions per account are capped (the oldest gives way), rooms per owner too, and a
// password LOGIN weighs what its hash costs.
TEST(Hardening, SessionsAndOwnedRoomsAreCapped) {
    Config c;
    c.sessions_per_user_max = 3;
    c.rooms_owned_max = 2;
    CoreHarness h(c);
    std::string first = h.register_user(1, "alice")["session"]["token"];
    for (ConnId conn = 2; conn <= 4; ++conn) {
        h.advance(1000);  // each session expires later than the one before
        h.connect(conn);
        h.take(conn);
        h.call(conn, {{"op", "LOGIN"}, {"username", "alice"}, {"password", "password1"}});
    }
    EXPECT_EQ(h.close_reason(1), "SESSION_REVOKED");  // the first to expire gave way
    EXPECT_EQ(h.core().state().session_count(), 3u);
    EXPECT_EQ(h.call(2, {{"op", "CREATE_ROOM"}, {"room", "a"}})["ok"], true);
    EXPECT_EQ(h.call(2, {{"op", "CREATE_ROOM"}, {"room", "b"}})["ok"], true);
    EXPECT_EQ(code_of(h.call(2, {{"op", "CREATE_ROOM"}, {"room", "c"}})), "CONFLICT");
    EXPECT_EQ(op_info(Op::login).weight, 5u);
}

// M3: one account cannot hold the storage reader with searches; others still get theirs.
TEST(Hardening, StorageReadsAreCappedPerAccount) {
    Config c;
    c.queries_per_user_max = 2;
    CoreHarness h(c);
    h.register_user(1, "alice");
    h.register_user(9, "bob");
    ASSERT_EQ(h.call(1, {{"op", "CREATE_ROOM"}, {"room", "lobby"}})["ok"], true);
    ASSERT_EQ(h.call(9, {{"op", "JOIN_ROOM"}, {"room", "lobby"}})["ok"], true);
    ASSERT_EQ(h.call(1, {{"op", "SEND_MESSAGE"}, {"room", "lobby"}, {"text", "hello"}})["ok"],
              true);
    for (ConnId conn = 2; conn <= 3; ++conn) {
        h.connect(conn);
        h.take(conn);
        h.call(conn, {{"op", "LOGIN"}, {"username", "alice"}, {"password", "password1"}});
    }
    h.hold_queries = true;
    size_t before = h.queries;
    for (ConnId conn = 1; conn <= 3; ++conn)
        h.send(conn, {{"op", "SEARCH"}, {"query", "hello"}, {"id", 100 + conn}});
    h.send(9, {{"op", "SEARCH"}, {"query", "hello"}, {"id", 109}});
    EXPECT_EQ(h.queries - before, 3u);  // two of alice's and bob's
    EXPECT_TRUE(h.take(1).empty());
    EXPECT_TRUE(h.take(2).empty());
    auto third = h.take(3);
    ASSERT_EQ(third.size(), 1u);
    EXPECT_EQ(code_of(third[0]), "UNAVAILABLE");
    EXPECT_TRUE(third[0]["error"].contains("retry_after_ms"));
    h.release();
    h.hold_queries = false;
    for (ConnId conn : {ConnId{1}, ConnId{2}, ConnId{9}}) {
        size_t replies = 0;
        for (const json& l : h.take(conn))
            if (l.value("re", 0) == int64_t(100 + conn)) {
                ++replies;
                EXPECT_EQ(l["results"].size(), 1u) << conn;
            }
        EXPECT_EQ(replies, 1u) << conn;
    }
    // Answered reads no longer count: alice may search again.
    EXPECT_EQ(h.call(3, {{"op", "SEARCH"}, {"query", "hello"}})["results"].size(), 1u);
}

}  // namespace
}  // namespace warren::test

namespace warren::test {
namespace {

// M13: a connection that is not logged in may hold far less unsent output than a member's.
TEST(Hardening, GuestsHaveASmallOutboundCap) {
    Config c;
    c.outbound_bytes_guest_max = 4096;
    CoreHarness h(c);
    h.connect(1);
    h.stalled.insert(1);
    for (int i = 0; i < 400 && !h.closed(1); ++i) h.send(1, {{"id", i}, {"op", "PING"}});
    EXPECT_EQ(h.close_reason(1), "SLOW_CONSUMER");
    EXPECT_LE(h.unread_bytes(1), 4096u + 240u);  // the cap, a reply and the DISCONNECT line
    h.register_user(2, "member");
    h.stalled.insert(2);
    for (int i = 0; i < 400; ++i) h.send(2, {{"id", 1000 + i}, {"op", "PING"}});
    EXPECT_FALSE(h.closed(2));  // a member's 400 pongs fit in a member's cap
}

// M13: all connections together stay within a global budget: past it the largest consumers
// are shed first, and the others go on.
TEST(Hardening, AGlobalOutboundBudgetShedsTheLargestConsumersFirst) {
    Config c = without_abuse_limits(Config{});
    c.outbound_bytes_total_max = 64 * 1024;
    c.outbound_stall_ms = 3'600'000;  // only the budget closes anyone here
    // abuse_limits=true keeps the default sweep, which lets holds go (see below).
    CoreHarness h(c, ":memory:", /*abuse_limits=*/true);
    h.register_user(1, "writer");
    h.call(1, {{"op", "CREATE_ROOM"}, {"room", "r"}});
    for (ConnId r = 2; r <= 6; ++r) {
        h.register_user(r, "reader" + std::to_string(r));
        h.call(r, {{"op", "JOIN_ROOM"}, {"room", "r"}});
    }
    h.events(1);
    // A reader that has just fallen behind holds the writer back; one that reads nothing for
    // a second holds nobody, and the writer goes on until the budget sheds someone.
    auto send_and_let_holds_go = [&](int n, char fill) {
        for (int i = 0; i < n; ++i)
            h.send(1, {{"id", 100 + i},
                       {"op", "SEND_MESSAGE"},
                       {"room", "r"},
                       {"text", std::string(3000, fill)}});
        for (int k = 0; k < 3; ++k) {
            h.advance(h.core().config().sweep_interval_ms);
            h.tick();
        }
    };
    // Reader 2 stalls first and so holds the most; 3 and 4 stall later; 5 and 6 read.
    h.stalled.insert(2);
    send_and_let_holds_go(6, 'a');
    h.stalled.insert(3);
    h.stalled.insert(4);
    for (int round = 0; round < 4 && !h.closed(2); ++round) send_and_let_holds_go(4, 'b');
    EXPECT_EQ(h.close_reason(2), "SLOW_CONSUMER");
    EXPECT_FALSE(h.closed(3));
    EXPECT_FALSE(h.closed(5));
    EXPECT_FALSE(h.closed(6));
    EXPECT_FALSE(h.closed(1));
    EXPECT_LE(h.unread_bytes(3) + h.unread_bytes(4), 64u * 1024);
}

// Found by fuzz/admin_http.cc: an admin request naming a user or address in bytes that are not
// UTF-8 (a percent-encoded path can carry any byte) got an answer whose JSON echoed them, so
// the answer itself was not valid JSON. Every string an admin request carries is checked first.
TEST(Hardening, AdminRequestsWithBytesThatAreNotUtf8AreRefusedWithValidJson) {
    CoreHarness h;
    h.register_user(1, "alice");
    using K = AdminRequest::Kind;
    for (K kind : {K::suspend, K::unsuspend, K::revoke_sessions, K::block, K::unblock, K::backup,
                   K::clear_alerts}) {
        AdminRequest q;
        q.kind = kind;
        q.username = "al\xC0\xC0ice";
        q.ip = kind == K::block || kind == K::unblock ? "10.0.0.\xFF" : "";
        q.name = kind == K::backup ? "x\xE2\x28.db" : "";
        q.rule = kind == K::clear_alerts ? "\xF0\x28" : "";
        if (kind == K::suspend) q.reason = "spam\xC3";
        auto r = h.admin(q);
        ASSERT_TRUE(r);
        EXPECT_EQ(r->status, 400) << r->body;
        auto j = nlohmann::json::parse(r->body, nullptr, false);
        ASSERT_FALSE(j.is_discarded()) << r->body;
        EXPECT_NE(j["error"]["message"].get<std::string>().find("UTF-8"), std::string::npos)
            << r->body;
    }
    EXPECT_FALSE(h.closed(1));
}

}  // namespace
}  // namespace warren::test
