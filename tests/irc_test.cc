// The IRC front door through the real core and store: registration (CAP, SASL PLAIN, PASS),
// the JOIN burst, channels and messages in both directions with the JSON protocol, tags,
// PONG as a barrier, limits and closes.
#include <gtest/gtest.h>

#include <sodium.h>

#include <filesystem>

#include "core/irc/message.h"
#include "tests/harness.h"

namespace warren::test {
namespace {

std::vector<std::string> lines_of(const std::string& raw) {
    std::vector<std::string> out;
    size_t pos = 0;
    while (pos < raw.size()) {
        size_t nl = raw.find("\r\n", pos);
        if (nl == std::string::npos) {
            ADD_FAILURE() << "line without CRLF: " << raw.substr(pos);
            break;
        }
        out.push_back(raw.substr(pos, nl - pos));
        pos = nl + 2;
    }
    return out;
}

// The lines containing `needle`.
std::vector<std::string> with(const std::vector<std::string>& lines, std::string_view needle) {
    std::vector<std::string> out;
    for (const auto& l : lines)
        if (l.find(needle) != std::string::npos) out.push_back(l);
    return out;
}

size_t index_of(const std::vector<std::string>& lines, std::string_view needle) {
    for (size_t i = 0; i < lines.size(); ++i)
        if (lines[i].find(needle) != std::string::npos) return i;
    return lines.size();
}

std::string base64(const std::string& bin) {
    std::string out(sodium_base64_ENCODED_LEN(bin.size(), sodium_base64_VARIANT_ORIGINAL), '\0');
    sodium_bin2base64(out.data(), out.size(), reinterpret_cast<const unsigned char*>(bin.data()),
                      bin.size(), sodium_base64_VARIANT_ORIGINAL);
    out.resize(out.size() - 1);  // the NUL
    return out;
}

class Irc : public ::testing::Test {
  protected:
    CoreHarness h;
    ConnId next_json_ = 100;

    // An account made over the JSON protocol, its connection left logged in.
    ConnId account(const std::string& name, const std::string& pw = "password1") {
        ConnId c = next_json_++;
        EXPECT_EQ(h.register_user(c, name, pw)["ok"], true);
        return c;
    }
    // alice (JSON, returned) and bob (IRC connection 1, with `caps`) in #den, which bob made.
    ConnId alice_and_bob_in_den(const std::string& caps = "sasl") {
        ConnId j = account("alice");
        account("bob");
        sasl(1, "bob", "password1", caps);
        say(1, "JOIN #den\r\n");
        h.call(j, {{"op", "JOIN_ROOM"}, {"room", "den"}});
        h.take_raw(1);
        return j;
    }
    std::vector<std::string> say(ConnId c, const std::string& lines) {
        h.raw(c, lines);
        return lines_of(h.take_raw(c));
    }
    // Connects on the IRC listener and logs in with SASL PLAIN; returns what it was told.
    std::vector<std::string> sasl(ConnId c, const std::string& name,
                                  const std::string& pw = "password1",
                                  const std::string& caps = "sasl") {
        h.connect_irc(c);
        std::vector<std::string> out = say(c, "CAP LS 302\r\nNICK " + name + "\r\nUSER " + name +
                                                  " 0 * :Real Name\r\nCAP REQ :" + caps + "\r\n");
        auto more = say(c, "AUTHENTICATE PLAIN\r\n");
        out.insert(out.end(), more.begin(), more.end());
        more = say(c, "AUTHENTICATE " + base64(std::string("\0", 1) + name +
                                                std::string("\0", 1) + pw) +
                          "\r\nCAP END\r\n");
        out.insert(out.end(), more.begin(), more.end());
        return out;
    }
};

TEST_F(Irc, SaslPlainLogsIntoTheAccountAndWelcomesWithTheJoinBurst) {
    ConnId j = account("alice");
    EXPECT_EQ(h.call(j, {{"op", "CREATE_ROOM"}, {"room", "lobby"}, {"topic", "hello there"}})["ok"],
              true);
    EXPECT_EQ(h.call(j, {{"op", "CREATE_ROOM"}, {"room", "annex"}})["ok"], true);
    std::vector<std::string> l = sasl(1, "alice");
    ASSERT_FALSE(with(l, " CAP * LS :").empty());
    EXPECT_NE(with(l, " CAP * LS :")[0].find("sasl=PLAIN"), std::string::npos);
    EXPECT_EQ(with(l, " CAP alice ACK :sasl").size(), 1u);
    EXPECT_EQ(with(l, "AUTHENTICATE +").size(), 1u);
    EXPECT_EQ(with(l, " 900 alice alice!alice@warren alice :").size(), 1u);
    EXPECT_EQ(with(l, " 903 alice ").size(), 1u);
    ASSERT_EQ(with(l, " 001 alice ").size(), 1u);
    std::vector<std::string> isupport = with(l, " 005 alice ");
    ASSERT_FALSE(isupport.empty());
    EXPECT_NE(isupport[0].find("CASEMAPPING=ascii"), std::string::npos);
    EXPECT_NE(isupport[0].find("CHANTYPES=#"), std::string::npos);
    EXPECT_NE(isupport[0].find("UTF8ONLY"), std::string::npos);
    EXPECT_EQ(with(l, " 422 alice ").size(), 1u);
    // The burst: each room once, by name, with its topic and names (the owner as @).
    size_t annex = index_of(l, ":alice!alice@warren JOIN #annex");
    size_t lobby = index_of(l, ":alice!alice@warren JOIN #lobby");
    ASSERT_LT(annex, l.size());
    ASSERT_LT(lobby, l.size());
    EXPECT_LT(annex, lobby);
    EXPECT_LT(index_of(l, " 422 "), annex);
    EXPECT_EQ(with(l, " 332 alice #lobby :hello there").size(), 1u);
    EXPECT_EQ(with(l, " 353 alice = #lobby :@alice").size(), 1u);
    EXPECT_EQ(with(l, " 366 alice #lobby ").size(), 1u);
    EXPECT_EQ(h.core().connection_count(), 2u);
}

TEST_F(Irc, WrongPasswordIs904AndTheAccountsNickIsNotGivenToAGuest) {
    account("alice");
    std::vector<std::string> l = sasl(1, "alice", "wrong-password");
    EXPECT_EQ(with(l, " 904 alice :SASL authentication failed").size(), 1u);
    EXPECT_TRUE(with(l, " 001 ").empty());
    // Registration goes on as a guest, but "alice" is an account's name.
    EXPECT_EQ(with(l, " 433 * alice :Nickname is already in use").size(), 1u);
    EXPECT_FALSE(h.closed(1));
    EXPECT_GT(h.core().guard().counters().login_failures, 0u);
    // Another nick makes it a guest.
    l = say(1, "NICK alice2\r\n");
    EXPECT_EQ(with(l, " 001 alice2 :Welcome").size(), 1u);
}

TEST_F(Irc, WithGuestsOffAClientWithoutAnAccountIsRefused) {
    Config cfg;
    cfg.irc_guests = false;
    CoreHarness strict(cfg);
    strict.connect_irc(1);
    strict.raw(1, "NICK nobody\r\nUSER nobody 0 * :N\r\n");
    std::vector<std::string> l = lines_of(strict.take_raw(1));
    EXPECT_EQ(with(l, " 464 nobody :An account is needed").size(), 1u);
    EXPECT_EQ(with(l, "ERROR :Closing link").size(), 1u);
    EXPECT_TRUE(strict.closed(1));
}

// A guest: NICK and USER only. It chats under its nick with JSON users and accounts on IRC,
// shows no account, and when it goes it leaves its rooms (QUIT on IRC, LEFT and PRESENCE on
// JSON) and its name is free again.
TEST_F(Irc, AGuestChatsUnderItsNickAndItsNameIsFreedWhenItGoes) {
    ConnId j = account("alice");
    EXPECT_EQ(h.call(j, {{"op", "CREATE_ROOM"}, {"room", "den"}})["ok"], true);
    sasl(2, "alice", "password1", "sasl account-tag message-tags");
    say(2, "JOIN #den\r\n");
    h.connect_irc(1);
    std::vector<std::string> l = say(1, "NICK visitor\r\nUSER v 0 * :V\r\n");
    ASSERT_EQ(with(l, " 001 visitor :Welcome").size(), 1u);
    l = say(1, "JOIN #den\r\n");
    EXPECT_EQ(with(l, ":visitor!visitor@warren JOIN #den").size(), 1u);
    EXPECT_EQ(with(l, " 353 visitor = #den :").size(), 1u);
    l = say(1, "PRIVMSG #den :hello from a guest\r\n");
    // The account on IRC sees the guest's message without an account tag.
    std::vector<std::string> seen = lines_of(h.take_raw(2));
    std::vector<std::string> msg = with(seen, "PRIVMSG #den :hello from a guest");
    ASSERT_EQ(msg.size(), 1u);
    EXPECT_EQ(msg[0].find("account="), std::string::npos);
    EXPECT_NE(msg[0].find("msgid="), std::string::npos);
    // WHOIS: no 330 for a guest.
    l = say(2, "WHOIS visitor\r\n");
    EXPECT_EQ(with(l, " 311 alice visitor ").size(), 1u);
    EXPECT_TRUE(with(l, " 330 ").empty());
    // The JSON side answers, by the guest's name, in the room and directly.
    EXPECT_EQ(h.call(j, {{"op", "SEND_MESSAGE"}, {"room", "den"}, {"text", "welcome"}})["ok"], true);
    EXPECT_EQ(h.call(j, {{"op", "DIRECT_MESSAGE"}, {"to", "visitor"}, {"text", "psst"}})["ok"],
              true);
    l = lines_of(h.take_raw(1));
    EXPECT_EQ(with(l, ":alice!alice@warren PRIVMSG #den :welcome").size(), 1u);
    EXPECT_EQ(with(l, ":alice!alice@warren PRIVMSG visitor :psst").size(), 1u);
    // Nobody can register the guest's name while it is here.
    h.connect(50);
    h.take(50);
    EXPECT_EQ(h.call(50, {{"op", "REGISTER"}, {"username", "visitor"}, {"password", "password1"}})
                  ["error"]["code"],
              "CONFLICT");
    h.events(j);
    h.take_raw(2);
    // A PART reason reaches IRC members (the JSON event has no such field).
    say(1, "JOIN #side\r\n");
    say(2, "JOIN #side\r\n");
    EXPECT_EQ(with(say(1, "PART #side :see you\r\n"), ":visitor!visitor@warren PART #side :see you")
                  .size(),
              1u);
    EXPECT_EQ(with(lines_of(h.take_raw(2)), ":visitor!visitor@warren PART #side :see you").size(),
              1u);
    h.events(j);
    // It goes: IRC sees one QUIT with its reason, JSON sees it leave and go offline.
    h.raw(1, "QUIT :off to bed\r\n");
    h.disconnect(1);
    EXPECT_EQ(with(lines_of(h.take_raw(2)), ":visitor!visitor@warren QUIT :off to bed").size(), 1u);
    bool left = false, offline = false;
    for (const json& e : h.events(j)) {
        if (e.value("ev", "") == "MEMBER_LEFT" && e["user"] == "visitor") left = true;
        if (e.value("ev", "") == "PRESENCE" && e["user"] == "visitor" && e["online"] == false)
            offline = true;
    }
    EXPECT_TRUE(left);
    EXPECT_TRUE(offline);
    const Room* den = h.core().state().find_room("den");
    ASSERT_NE(den, nullptr);
    EXPECT_EQ(den->members.size(), 1u);  // alice (on two connections)
    // Its message keeps its author; its name is free for an account now.
    json hist = h.call(j, {{"op", "HISTORY"}, {"room", "den"}});
    ASSERT_EQ(hist["ok"], true);
    EXPECT_NE(hist.dump().find("\"author\":\"visitor\""), std::string::npos);
    EXPECT_EQ(h.call(50, {{"op", "REGISTER"}, {"username", "visitor"}, {"password", "password1"}})
                  ["ok"],
              true);
    // A direct message to the gone guest's old name now reaches the account, not the guest.
    EXPECT_EQ(h.call(j, {{"op", "DIRECT_MESSAGE"}, {"to", "visitor"}, {"text", "hi"}})["ok"], true);
}

TEST_F(Irc, AGuestNickMayBeOneCharacterButNotOneNoUsernameMayHave) {
    h.connect_irc(1);
    EXPECT_EQ(with(say(1, "NICK b\r\nUSER u 0 * :U\r\n"), " 001 b ").size(), 1u);
    h.connect_irc(2);
    EXPECT_EQ(with(say(2, "NICK b.0\r\nUSER u 0 * :U\r\n"), " 432 * b.0 :Erroneous").size(), 1u);
}

TEST_F(Irc, TwoGuestsCannotShareANickAndAGuestThatSaidNothingLeavesNoRow) {
    h.connect_irc(1);
    ASSERT_EQ(with(say(1, "NICK same\r\nUSER s 0 * :S\r\n"), " 001 same ").size(), 1u);
    h.connect_irc(2);
    EXPECT_EQ(with(say(2, "NICK Same\r\nUSER s 0 * :S\r\n"), " 433 * Same ").size(), 1u);
    size_t users = h.core().state().users().size();
    h.disconnect(1);
    // Nothing referred to it: its row is gone, in memory and in storage.
    EXPECT_EQ(h.core().state().users().size(), users - 1);
    auto snap = h.store().load(10, h.now().wall_ms);
    ASSERT_TRUE(snap.is_ok());
    for (const UserRow& u : snap.value().users) EXPECT_NE(u.name, "same");
    // The JSON protocol has no such op.
    h.connect(60);
    h.take(60);
    EXPECT_EQ(h.call(60, {{"op", "GUEST_LOGIN"}, {"username", "sneaky"}})["error"]["code"],
              "UNKNOWN_OP");
    // Nor a certificate login: the fingerprint must come from the TLS layer.
    EXPECT_EQ(h.call(60, {{"op", "CERTIFICATE_LOGIN"}, {"fingerprint", std::string(64, 'a')}})
                  ["error"]["code"],
              "UNKNOWN_OP");
    EXPECT_EQ(with(say(2, "NICK Same\r\n"), " 001 Same ").size(), 1u);
}

// Keepalive: a quiet IRC connection is sent PING; one that answers stays, one that stays
// quiet past the timeout is closed.
TEST(IrcKeepalive, AQuietConnectionIsPingedAndClosedIfItNeverAnswers) {
    Config cfg;
    cfg.irc_ping_interval_ms = 120'000;
    cfg.irc_ping_timeout_ms = 60'000;
    CoreHarness h(cfg, ":memory:", true);  // housekeeping on its usual second
    h.connect_irc(1);
    h.connect_irc(2);
    h.raw(1, "NICK answers\r\nUSER a 0 * :A\r\n");
    h.raw(2, "NICK silent\r\nUSER s 0 * :S\r\n");
    h.take_raw(1);
    h.take_raw(2);
    auto quiet_for = [&](int64_t ms) {
        for (int64_t t = 0; t < ms; t += 1000) {
            h.advance(1000);
            h.tick();
        }
    };
    quiet_for(110'000);
    EXPECT_TRUE(h.take_raw(1).empty());  // not yet
    quiet_for(11'000);
    EXPECT_EQ(h.take_raw(1), "PING :warren.local\r\n");
    EXPECT_EQ(h.take_raw(2), "PING :warren.local\r\n");
    h.raw(1, "PONG :warren.local\r\n");
    quiet_for(61'000);
    EXPECT_TRUE(h.closed(2));
    EXPECT_NE(h.take_raw(2).find("ERROR :Closing link"), std::string::npos);
    EXPECT_FALSE(h.closed(1));
    EXPECT_TRUE(h.take_raw(1).empty());  // pinged once per quiet spell
    quiet_for(61'000);
    EXPECT_EQ(h.take_raw(1), "PING :warren.local\r\n");
}

// Flood control as IRC clients expect it (fakelag): a guest pasting 60 lines, past its rate
// limit's burst of 30, has every line delivered, in order, paced by the limit's refill; it is
// told of no error and none is dropped, and its connection is not read while it waits.
TEST(IrcFlood, APastePastTheRateLimitArrivesWholeInOrderPaced) {
    CoreHarness h(Config{}, ":memory:", true);  // the shipped rate limits
    json r = h.register_user(100, "alice", "password1", "10.0.0.9");
    ASSERT_EQ(r["ok"], true);
    ASSERT_EQ(h.call(100, {{"op", "CREATE_ROOM"}, {"room", "den"}})["ok"], true);
    h.connect_irc(1);
    h.raw(1, "NICK paster\r\nUSER p 0 * :P\r\nJOIN #den\r\n");
    ASSERT_FALSE(with(lines_of(h.take_raw(1)), " JOIN #den").empty());
    h.events(100);
    std::string paste;
    for (int i = 1; i <= 60; ++i) paste += "PRIVMSG #den :line " + std::to_string(i) + "\r\n";
    h.raw(1, paste);
    EXPECT_FALSE(h.core().wants_input(1));  // waiting for tokens: not read meanwhile
    std::vector<std::string> got;
    auto collect = [&] {
        for (const json& e : h.events(100))
            if (e.value("ev", "") == "MESSAGE") got.push_back(e["message"]["text"]);
    };
    collect();
    EXPECT_GE(got.size(), 20u);
    EXPECT_LT(got.size(), 60u);
    for (int ticks = 0; got.size() < 60 && ticks < 200; ++ticks) {
        ASSERT_TRUE(h.tick_to_deadline());
        collect();
    }
    ASSERT_EQ(got.size(), 60u);
    for (int i = 0; i < 60; ++i) EXPECT_EQ(got[i], "line " + std::to_string(i + 1));
    // Nothing refused, nothing said to the paster about it, and it is read again.
    std::vector<std::string> told = lines_of(h.take_raw(1));
    EXPECT_TRUE(with(told, "NOTICE").empty());
    EXPECT_TRUE(with(told, "FAIL").empty());
    EXPECT_TRUE(h.core().wants_input(1));
    EXPECT_FALSE(h.closed(1));
}

// Past what flood control holds (irc_flood_bytes_max of input waiting), the connection is
// closed with ERROR :Excess Flood; what it was paced through before is delivered in order.
TEST(IrcFlood, InputPastTheBoundIsExcessFlood) {
    Config cfg;
    cfg.irc_flood_bytes_max = 1024;
    CoreHarness h(cfg, ":memory:", true);
    ASSERT_EQ(h.register_user(100, "alice", "password1", "10.0.0.9")["ok"], true);
    ASSERT_EQ(h.call(100, {{"op", "CREATE_ROOM"}, {"room", "den"}})["ok"], true);
    h.connect_irc(1);
    h.raw(1, "NICK flooder\r\nUSER f 0 * :F\r\nJOIN #den\r\n");
    h.take_raw(1);
    h.events(100);
    std::string flood;
    for (int i = 1; i <= 200; ++i)
        flood += "PRIVMSG #den :flood line number " + std::to_string(i) + "\r\n";
    h.raw(1, flood);
    EXPECT_TRUE(h.closed(1));
    EXPECT_NE(h.take_raw(1).find("ERROR :Closing link: Excess Flood"), std::string::npos);
    std::vector<std::string> got;
    for (const json& e : h.events(100))
        if (e.value("ev", "") == "MESSAGE") got.push_back(e["message"]["text"]);
    ASSERT_FALSE(got.empty());
    for (size_t i = 0; i < got.size(); ++i)
        EXPECT_EQ(got[i], "flood line number " + std::to_string(i + 1));
}

// A restart with guests connected (a crash): they come back retired, out of their rooms, their
// names free; what they wrote keeps its author.
TEST(IrcGuests, ARestartRetiresTheGuestsThatWereConnected) {
    char tmpl[] = "/tmp/warren-guests-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    std::string db = std::string(tmpl) + "/w.db";
    {
        CoreHarness h(Config{}, db);
        h.connect_irc(1);
        h.raw(1, "NICK ghost\r\nUSER g 0 * :G\r\nJOIN #hall\r\nPRIVMSG #hall :still here\r\n");
        ASSERT_NE(h.take_raw(1).find(" JOIN #hall"), std::string::npos);
        // No disconnect: the process "dies" with the guest connected.
    }
    CoreHarness h(Config{}, db);
    const auto& st = h.core().state();
    EXPECT_EQ(st.find_user("ghost"), nullptr);
    const Room* hall = st.find_room("hall");
    ASSERT_NE(hall, nullptr);
    EXPECT_TRUE(hall->members.empty());
    EXPECT_EQ(h.register_user(10, "ghost")["ok"], true);
    h.call(10, {{"op", "JOIN_ROOM"}, {"room", "hall"}});
    json hist = h.call(10, {{"op", "HISTORY"}, {"room", "hall"}});
    EXPECT_NE(hist.dump().find("still here"), std::string::npos);
    std::filesystem::remove_all(tmpl);
}

TEST_F(Irc, PassWithAccountAndPasswordLogsIn) {
    account("bob");
    h.connect_irc(1);
    std::vector<std::string> l = say(1, "PASS bob:password1\r\nNICK whatever\r\nUSER b 0 * :B\r\n");
    EXPECT_EQ(with(l, " 001 bob :Welcome").size(), 1u);
    // Wrong PASS: 464 and the close.
    h.connect_irc(2);
    l = say(2, "PASS bob:nope-nope-nope\r\nNICK bob\r\nUSER b 0 * :B\r\n");
    EXPECT_EQ(with(l, " 464 ").size(), 1u);
    EXPECT_TRUE(h.closed(2));
}

TEST_F(Irc, CommandsBeforeRegistrationAre451AndUnknownOnesAre421) {
    account("carol");
    h.connect_irc(1);
    EXPECT_EQ(with(say(1, "JOIN #x\r\n"), " 451 * :You have not registered").size(), 1u);
    sasl(2, "carol");
    EXPECT_EQ(with(say(2, "FROBNICATE a b\r\n"), " 421 carol FROBNICATE :Unknown command").size(),
              1u);
    EXPECT_EQ(with(say(2, "PRIVMSG\r\n"), " 411 carol ").size(), 1u);
    EXPECT_EQ(with(say(2, "NICK someoneelse\r\n"), " 432 carol someoneelse").size(), 1u);
}

TEST_F(Irc, JoinCreatesTheRoomAndMessagesFlowBothWaysWithTheSameIds) {
    ConnId j = account("alice");
    account("bob");
    sasl(1, "bob", "password1", "sasl message-tags server-time echo-message account-tag");
    std::vector<std::string> l = say(1, "JOIN #den\r\n");
    EXPECT_EQ(with(l, ":bob!bob@warren JOIN #den").size(), 1u);
    EXPECT_EQ(with(l, " 353 bob = #den :@bob").size(), 1u);
    // The JSON side sees a room bob owns, and joins it: IRC sees the JOIN.
    json joined = h.call(j, {{"op", "JOIN_ROOM"}, {"room", "den"}});
    ASSERT_EQ(joined["ok"], true);
    EXPECT_EQ(joined["room"]["owner"], "bob");
    EXPECT_EQ(with(lines_of(h.take_raw(1)), ":alice!alice@warren JOIN #den").size(), 1u);
    // JSON -> IRC: the tags carry Warren's id and time.
    json sent = h.call(j, {{"op", "SEND_MESSAGE"}, {"room", "den"}, {"text", "hi bob"}});
    ASSERT_EQ(sent["ok"], true);
    int64_t id = sent["message"]["id"];
    l = lines_of(h.take_raw(1));
    ASSERT_EQ(l.size(), 1u);
    EXPECT_NE(l[0].find("msgid=" + std::to_string(id)), std::string::npos) << l[0];
    EXPECT_NE(l[0].find("account=alice"), std::string::npos) << l[0];
    EXPECT_NE(l[0].find("time=" + irc::server_time(sent["message"]["ts"].get<int64_t>())),
              std::string::npos)
        << l[0];
    EXPECT_NE(l[0].find(" :alice!alice@warren PRIVMSG #den :hi bob"), std::string::npos) << l[0];
    // IRC -> JSON, with the echo to the sender carrying the same id.
    l = say(1, "PRIVMSG #den :hello alice\r\n");
    ASSERT_EQ(l.size(), 1u);
    std::vector<json> ev = h.events(j);
    ASSERT_EQ(ev.size(), 1u);
    EXPECT_EQ(ev[0]["ev"], "MESSAGE");
    EXPECT_EQ(ev[0]["message"]["text"], "hello alice");
    EXPECT_EQ(ev[0]["message"]["author"], "bob");
    EXPECT_NE(l[0].find("msgid=" + std::to_string(ev[0]["message"]["id"].get<int64_t>())),
              std::string::npos)
        << l[0];
    EXPECT_NE(l[0].find(":bob!bob@warren PRIVMSG #den :hello alice"), std::string::npos);
}

TEST_F(Irc, WithoutEchoMessageTheSenderSeesNothingAndPlainClientsGetNoTags) {
    ConnId j = alice_and_bob_in_den();
    EXPECT_TRUE(say(1, "PRIVMSG #den :quiet\r\n").empty());
    EXPECT_EQ(h.events(j).size(), 1u);
    h.call(j, {{"op", "SEND_MESSAGE"}, {"room", "den"}, {"text", "plain"}});
    std::vector<std::string> l = lines_of(h.take_raw(1));
    ASSERT_EQ(l.size(), 1u);
    EXPECT_EQ(l[0], ":alice!alice@warren PRIVMSG #den :plain");
}

TEST_F(Irc, PongLeavesOnlyAfterEverythingEarlierLinesCaused) {
    account("bob");
    sasl(1, "bob", "password1", "sasl echo-message");
    say(1, "JOIN #den\r\n");
    h.hold_commits = true;
    // The message waits for its commit; the PONG behind it waits too.
    EXPECT_TRUE(say(1, "PRIVMSG #den :first\r\nPING :barrier\r\n").empty());
    h.hold_commits = false;
    h.release();
    std::vector<std::string> l = lines_of(h.take_raw(1));
    ASSERT_EQ(l.size(), 2u);
    EXPECT_NE(l[0].find("PRIVMSG #den :first"), std::string::npos);
    EXPECT_EQ(l[1], ":warren.local PONG warren.local :barrier");
}

TEST_F(Irc, DirectMessagesBothWays) {
    ConnId j = account("alice");
    account("bob");
    sasl(1, "bob");
    EXPECT_TRUE(say(1, "PRIVMSG alice :psst\r\n").empty());
    std::vector<json> ev = h.events(j);
    ASSERT_EQ(ev.size(), 1u);
    EXPECT_EQ(ev[0]["ev"], "DIRECT_MESSAGE");
    EXPECT_EQ(ev[0]["message"]["to"], "alice");
    EXPECT_EQ(ev[0]["message"]["text"], "psst");
    ASSERT_EQ(h.call(j, {{"op", "DIRECT_MESSAGE"}, {"to", "bob"}, {"text", "yes?"}})["ok"], true);
    EXPECT_EQ(lines_of(h.take_raw(1)),
              std::vector<std::string>{":alice!alice@warren PRIVMSG bob :yes?"});
    EXPECT_EQ(with(say(1, "PRIVMSG nobody :hello\r\n"), " 401 bob nobody ").size(), 1u);
}

TEST_F(Irc, MultilineTextActionsAndFormattingCrossTheDoorReadably) {
    ConnId j = alice_and_bob_in_den();
    h.call(j, {{"op", "SEND_MESSAGE"}, {"room", "den"}, {"text", "one\ntwo\n\nfour"}});
    std::vector<std::string> l = lines_of(h.take_raw(1));
    ASSERT_EQ(l.size(), 4u);
    EXPECT_EQ(l[0], ":alice!alice@warren PRIVMSG #den :one");
    EXPECT_EQ(l[2], ":alice!alice@warren PRIVMSG #den : ");
    EXPECT_EQ(l[3], ":alice!alice@warren PRIVMSG #den :four");
    h.call(j, {{"op", "SEND_MESSAGE"}, {"room", "den"}, {"text", "/me waves"}});
    EXPECT_EQ(lines_of(h.take_raw(1)),
              std::vector<std::string>{":alice!alice@warren PRIVMSG #den :\x01" "ACTION waves\x01"});
    say(1, "PRIVMSG #den :\x01" "ACTION bows\x01\r\nPRIVMSG #den :\x02" "bold\x02 and \x03" "04,12red\x0f\r\n");
    std::vector<json> ev = h.events(j);
    ASSERT_EQ(ev.size(), 2u);
    EXPECT_EQ(ev[0]["message"]["text"], "/me bows");
    EXPECT_EQ(ev[1]["message"]["text"], "bold and red");
    // A long Warren message is cut to fit IRC's 512 bytes, never inside a character.
    std::string text;
    for (int i = 0; i < 300; ++i) text += "\xc3\xa9";  // 600 bytes of 'é'
    h.call(j, {{"op", "SEND_MESSAGE"}, {"room", "den"}, {"text", text}});
    l = lines_of(h.take_raw(1));
    ASSERT_EQ(l.size(), 2u);
    std::string joined;
    for (const auto& one : l) {
        EXPECT_LE(one.size() + 2, irc::line_max_bytes);
        joined += one.substr(one.find(" :") + 2);
    }
    EXPECT_EQ(joined, text);
}

TEST_F(Irc, TopicPartAndQuitMapToTheRoomOps) {
    ConnId j = account("alice");
    account("bob");
    h.call(j, {{"op", "CREATE_ROOM"}, {"room", "den"}});
    sasl(1, "bob");
    say(1, "JOIN #den\r\n");
    h.events(j);
    EXPECT_EQ(with(say(1, "TOPIC #den :mine now\r\n"), " 482 bob #den ").size(), 1u);
    ASSERT_EQ(h.call(j, {{"op", "SET_TOPIC"}, {"room", "den"}, {"topic", "owned"}})["ok"], true);
    EXPECT_EQ(lines_of(h.take_raw(1)),
              std::vector<std::string>{":alice!alice@warren TOPIC #den :owned"});
    EXPECT_EQ(with(say(1, "TOPIC #den\r\n"), " 332 bob #den :owned").size(), 1u);
    std::vector<std::string> names = say(1, "NAMES #den\r\n");
    EXPECT_EQ(with(names, " 353 bob = #den :@alice bob").size(), 1u);
    // QUIT ends the connection, not the membership.
    EXPECT_EQ(with(say(1, "QUIT :bye\r\n"), "ERROR :Closing link").size(), 1u);
    EXPECT_TRUE(h.closed(1));
    json users = h.call(j, {{"op", "REQUEST_USER_LIST"}, {"room", "den"}});
    EXPECT_EQ(users["users"].size(), 2u);
    // PART leaves it.
    sasl(2, "bob");
    EXPECT_EQ(say(2, "PART #den\r\n"), std::vector<std::string>{":bob!bob@warren PART #den"});
    std::vector<json> ev = h.events(j);
    ASSERT_FALSE(ev.empty());
    EXPECT_EQ(ev.back()["ev"], "MEMBER_LEFT");
    EXPECT_EQ(with(say(2, "PART #den\r\n"), " 442 bob #den ").size(), 1u);
}

TEST_F(Irc, AnIrcLoginsSessionEndsWithItsConnection) {
    account("bob");  // one session: the JSON connection's
    size_t before = h.core().state().session_count();
    sasl(1, "bob");
    EXPECT_EQ(h.core().state().session_count(), before + 1);
    say(1, "QUIT\r\n");
    EXPECT_EQ(h.core().state().session_count(), before);
    // And durably: a restart loads no session for it.
    auto snap = h.store().load(100, h.now().wall_ms);
    ASSERT_TRUE(snap.is_ok());
    EXPECT_EQ(snap.value().sessions.size(), before);
    // A dropped connection too.
    sasl(2, "bob");
    EXPECT_EQ(h.core().state().session_count(), before + 1);
    h.disconnect(2);
    EXPECT_EQ(h.core().state().session_count(), before);
}

TEST_F(Irc, DeletionsAreRedactAndReactionsAreTagmsgBothWays) {
    ConnId j = account("alice");
    account("bob");
    h.call(j, {{"op", "CREATE_ROOM"}, {"room", "den"}});  // alice owns it
    sasl(1, "bob", "password1", "sasl message-tags echo-message draft/message-redaction");
    say(1, "JOIN #den\r\n");
    h.events(j);
    int64_t id = h.call(j, {{"op", "SEND_MESSAGE"}, {"room", "den"}, {"text", "x"}})["message"]["id"];
    std::string sid = std::to_string(id);
    h.take_raw(1);
    // JSON -> IRC.
    ASSERT_EQ(h.call(j, {{"op", "REACT"}, {"message_id", id}, {"emoji", "👍"}})["ok"], true);
    EXPECT_EQ(lines_of(h.take_raw(1)),
              std::vector<std::string>{"@+draft/react=👍;+draft/reply=" + sid +
                                       " :alice!alice@warren TAGMSG #den"});
    // IRC -> JSON, with the echo.
    std::vector<std::string> l = say(1, "@+draft/react=🎉;+reply=" + sid + " TAGMSG #den\r\n");
    EXPECT_EQ(l, std::vector<std::string>{"@+draft/react=🎉;+draft/reply=" + sid +
                                          " :bob!bob@warren TAGMSG #den"});
    std::vector<json> ev = h.events(j);
    ASSERT_EQ(ev.size(), 1u);
    EXPECT_EQ(ev[0]["ev"], "REACTION_ADDED");
    EXPECT_EQ(ev[0]["emoji"], "🎉");
    EXPECT_EQ(ev[0]["user"], "bob");
    say(1, "@+draft/unreact=🎉;+draft/reply=" + sid + " TAGMSG #den\r\n");
    EXPECT_EQ(h.events(j).at(0)["ev"], "REACTION_REMOVED");
    // Typing notices are not kept.
    EXPECT_TRUE(say(1, "@+typing=active TAGMSG #den\r\n").empty());
    EXPECT_TRUE(h.events(j).empty());
    // A deletion by its author reaches IRC as REDACT; bob may not delete alice's message.
    EXPECT_EQ(with(say(1, "REDACT #den " + sid + "\r\n"), "FAIL REDACT REDACT_FORBIDDEN").size(),
              1u);
    ASSERT_EQ(h.call(j, {{"op", "DELETE_MESSAGE"}, {"message_id", id}})["ok"], true);
    EXPECT_EQ(lines_of(h.take_raw(1)),
              std::vector<std::string>{":alice!alice@warren REDACT #den " + sid});
    // IRC -> JSON: bob deletes his own.
    l = say(1, "PRIVMSG #den :oops\r\n");
    ev = h.events(j);
    ASSERT_EQ(ev.size(), 1u);
    std::string mine = std::to_string(ev[0]["message"]["id"].get<int64_t>());
    EXPECT_EQ(say(1, "REDACT #den " + mine + " :typo\r\n"),
              std::vector<std::string>{":bob!bob@warren REDACT #den " + mine});
    ev = h.events(j);
    ASSERT_EQ(ev.size(), 1u);
    EXPECT_EQ(ev[0]["ev"], "MESSAGE_DELETED");
    EXPECT_EQ(ev[0]["message_id"].dump(), mine);
    EXPECT_EQ(with(say(1, "REDACT #den abc\r\n"), "FAIL REDACT UNKNOWN_MSGID").size(), 1u);
    // A client without the capability sees no REDACT.
    sasl(2, "bob");
    h.take_raw(2);
    int64_t other = h.call(j, {{"op", "SEND_MESSAGE"}, {"room", "den"}, {"text", "y"}})["message"]["id"];
    h.take_raw(2);
    h.take_raw(1);
    h.call(j, {{"op", "DELETE_MESSAGE"}, {"message_id", other}});
    EXPECT_TRUE(h.take_raw(2).empty());
    EXPECT_EQ(lines_of(h.take_raw(1)).size(), 1u);
}

TEST_F(Irc, PrivateRoomsAreInviteOnly) {
    ConnId j = account("alice");
    account("bob");
    h.call(j, {{"op", "CREATE_ROOM"}, {"room", "vault"}, {"visibility", "private"}});
    sasl(1, "bob");
    EXPECT_EQ(with(say(1, "JOIN #vault\r\n"), " 473 bob #vault ").size(), 1u);
    ASSERT_EQ(h.call(j, {{"op", "INVITE_USER"}, {"room", "vault"}, {"user", "bob"}})["ok"], true);
    EXPECT_EQ(with(lines_of(h.take_raw(1)), ":alice!alice@warren INVITE bob #vault").size(), 1u);
    std::vector<std::string> l = say(1, "JOIN #vault\r\n");
    EXPECT_EQ(with(l, ":bob!bob@warren JOIN #vault").size(), 1u);
    EXPECT_EQ(with(l, " 353 bob @ #vault :").size(), 1u);
    EXPECT_EQ(with(say(1, "MODE #vault\r\n"), " 324 bob #vault +int").size(), 1u);
}

TEST_F(Irc, OverlongLinesAre417AndTheConnectionGoesOn) {
    account("bob");
    sasl(1, "bob");
    std::string huge = "PRIVMSG #den :" + std::string(600, 'x') + "\r\n";
    EXPECT_EQ(with(say(1, huge), " 417 bob ").size(), 1u);
    // Longer than the framer holds: dropped as it arrives, and the next line is read.
    std::string vast = "@" + std::string(9000, 'a') + " PING x";
    std::vector<std::string> l = say(1, vast.substr(0, 5000));
    l = say(1, vast.substr(5000) + "\r\nPING :after\r\n");
    EXPECT_EQ(with(l, " 417 bob ").size(), 1u);
    EXPECT_EQ(with(l, "PONG warren.local :after").size(), 1u);
    // A client's tags are bounded at 4094 bytes, under the line's 8191.
    l = say(1, "@+big=" + std::string(4096, 'a') + " PRIVMSG #den :hi\r\n");
    EXPECT_EQ(with(l, " 417 bob ").size(), 1u);
    EXPECT_FALSE(h.closed(1));
}

// Answers irctest's core files found missing: NOTICE errors are silent, INVITE checks
// membership (442, 443), a private room's NAMES is "@", userhost-in-names, UTF8ONLY's FAIL
// and USER's empty realname.
TEST_F(Irc, NoticeErrorsAreSilentAndInviteAndNamesFollowTheRfc) {
    account("carol");
    account("dave");
    sasl(1, "carol", "password1", "sasl userhost-in-names");
    say(1, "JOIN #open\r\n");
    EXPECT_TRUE(say(1, "NOTICE #nowhere :hi\r\nNOTICE nobody-here :hi\r\n").empty());
    EXPECT_EQ(with(say(1, "PRIVMSG #nowhere :hi\r\n"), " 403 carol #nowhere ").size(), 1u);
    EXPECT_EQ(with(say(1, "INVITE dave #open\r\n"), " 341 carol dave #open").size(), 1u);
    sasl(2, "dave");
    say(2, "JOIN #open\r\n");
    EXPECT_EQ(with(say(1, "INVITE dave #open\r\n"), " 443 carol dave #open ").size(), 1u);
    say(2, "JOIN #mine\r\n");
    EXPECT_EQ(with(say(1, "INVITE dave #mine\r\n"), " 442 carol #mine ").size(), 1u);
    std::vector<std::string> l = say(1, "NAMES #open\r\n");
    EXPECT_EQ(with(l, " 353 carol = #open :@carol!carol@warren dave!dave@warren").size(), 1u);
    EXPECT_EQ(h.call(100, {{"op", "CREATE_ROOM"}, {"room", "hush"}, {"visibility", "private"}})["ok"],
              true);
    sasl(3, "carol");
    EXPECT_EQ(with(say(3, "NAMES #hush\r\n"), " 353 carol @ #hush :@carol").size(), 1u);
    EXPECT_EQ(with(say(1, "PRIVMSG #open :\xff\xfe\r\n"), "FAIL PRIVMSG INVALID_UTF8 ").size(), 1u);
    h.connect_irc(4);
    EXPECT_EQ(with(say(4, "NICK e\r\nUSER e 0 * :\r\n"), " 461 e USER ").size(), 1u);
}

TEST_F(Irc, BlockedAddressesAreToldAndClosed) {
    CoreHarness limited(Config{}, ":memory:", true);
    AdminRequest block;
    block.kind = AdminRequest::Kind::block;
    block.ip = "10.0.0.9";
    block.duration_ms = 60'000;
    block.reason = "test";
    ASSERT_TRUE(limited.admin(block).has_value());
    limited.connect_irc(1, "10.0.0.9");
    EXPECT_EQ(lines_of(limited.take_raw(1)),
              std::vector<std::string>{"ERROR :Closing link: This address is blocked"});
    EXPECT_TRUE(limited.closed(1));
}

TEST(IrcMessage, ParsesTagsSourceAndTrailing) {
    auto m = irc::parse("@+reply=12;time=2026-01-01T00:00:00.000Z;esc=a\\sb\\:c :nick!u@h PRIVMSG #den :hello there");
    ASSERT_TRUE(m);
    EXPECT_EQ(m->tag("+reply"), "12");
    EXPECT_EQ(m->tag("esc"), "a b;c");
    EXPECT_EQ(m->source, "nick!u@h");
    EXPECT_TRUE(m->command_is("PRIVMSG"));
    ASSERT_EQ(m->params.size(), 2u);
    EXPECT_EQ(m->params[1], "hello there");
    EXPECT_FALSE(irc::parse("   "));
    irc::ParseError why;
    EXPECT_FALSE(irc::parse("PRIVMSG #a :" + std::string(600, 'x'), &why));
    EXPECT_EQ(why, irc::ParseError::too_long);
    EXPECT_EQ(irc::unescape_tag_value(irc::escape_tag_value("a; b\\c\r\n")), "a; b\\c\r\n");
    EXPECT_EQ(irc::server_time(0), "1970-01-01T00:00:00.000Z");
    EXPECT_EQ(irc::server_time(1764000000123), "2025-11-24T16:00:00.123Z");
    EXPECT_EQ(irc::server_time(951782400000), "2000-02-29T00:00:00.000Z");
}

// labeled-response: a labelled line's answer carries the label (one line), comes in a
// labeled-response BATCH (several), or is an ACK (none), also when the answer waits for a
// commit; unlabelled lines and other clients' events are untouched.
TEST_F(Irc, LabeledResponsesTagOneLineBatchSeveralAndAckNone) {
    ConnId j = alice_and_bob_in_den("sasl batch labeled-response echo-message message-tags");
    std::vector<std::string> pong = say(1, "@label=p1 PING :x\r\n");
    ASSERT_EQ(pong.size(), 1u);
    EXPECT_EQ(pong[0], "@label=p1 :warren.local PONG warren.local :x");

    std::vector<std::string> echo = say(1, "@label=m1 PRIVMSG #den :hi\r\n");
    ASSERT_EQ(echo.size(), 1u);
    EXPECT_EQ(echo[0].rfind("@label=m1;", 0), 0u) << echo[0];
    EXPECT_NE(echo[0].find("PRIVMSG #den :hi"), std::string::npos) << echo[0];
    // alice's event is not labelled.
    std::vector<json> evs = h.events(j);
    ASSERT_EQ(evs.size(), 1u);
    EXPECT_EQ(evs[0]["message"]["text"], "hi");

    std::vector<std::string> names = say(1, "@label=n1 NAMES #den\r\n");
    ASSERT_GE(names.size(), 4u);
    ASSERT_EQ(names.front().rfind("@label=n1 :warren.local BATCH +", 0), 0u) << names.front();
    std::string id = names.front().substr(names.front().find('+') + 1);
    id = id.substr(0, id.find(' '));
    EXPECT_NE(names.front().find(" labeled-response"), std::string::npos);
    for (size_t i = 1; i + 1 < names.size(); ++i)
        EXPECT_EQ(names[i].rfind("@batch=" + id + " ", 0), 0u) << names[i];
    EXPECT_EQ(names.back(), ":warren.local BATCH -" + id);

    std::vector<std::string> ack = say(1, "@label=q1 PONG :x\r\n");
    ASSERT_EQ(ack.size(), 1u);
    EXPECT_EQ(ack[0], "@label=q1 :warren.local ACK");
    EXPECT_EQ(say(1, "PING :plain\r\n")[0], ":warren.local PONG warren.local :plain");
}

// Without the capability, a label is ignored.
TEST_F(Irc, ALabelWithoutTheCapabilityIsIgnored) {
    alice_and_bob_in_den();
    std::vector<std::string> pong = say(1, "@label=p1 PING :x\r\n");
    ASSERT_EQ(pong.size(), 1u);
    EXPECT_EQ(pong[0], ":warren.local PONG warren.local :x");
}

// A NOTICE stays a NOTICE for IRC members (JSON members get the message); a reply tag that
// names no message in memory is dropped and the message still goes.
TEST_F(Irc, NoticesStayNoticesAndAnUnknownReplyTagDoesNotLoseTheMessage) {
    ConnId j = alice_and_bob_in_den("sasl message-tags");
    account("carol");
    sasl(2, "carol", "password1", "sasl message-tags");
    say(2, "JOIN #den\r\n");
    h.take_raw(1);
    h.events(j);
    say(1, "NOTICE #den :heads up\r\n");
    std::vector<std::string> seen = lines_of(h.take_raw(2));
    EXPECT_EQ(with(seen, ":bob!bob@warren NOTICE #den :heads up").size(), 1u);
    std::vector<json> evs = h.events(j);
    ASSERT_EQ(evs.size(), 1u);
    EXPECT_EQ(evs[0]["message"]["text"], "heads up");

    say(1, "@+draft/reply=99999 PRIVMSG #den :still here\r\n");
    seen = lines_of(h.take_raw(2));
    ASSERT_EQ(with(seen, "PRIVMSG #den :still here").size(), 1u);
    EXPECT_EQ(with(seen, "+reply=").size(), 0u);
    // The JSON protocol still refuses a reply_to that names nothing.
    json bad = h.call(j, {{"op", "SEND_MESSAGE"}, {"room", "den"}, {"text", "x"}, {"reply_to", 99999}});
    EXPECT_EQ(bad["error"]["field"], "reply_to") << bad;
}

}  // namespace
}  // namespace warren::test
