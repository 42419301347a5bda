// End-to-end over loopback against the real `warrend` binary and the `warren` client.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "tests/loopback.h"

namespace warren::test {
namespace {

class Loopback : public ::testing::Test {
  protected:
    void SetUp() override {
        dir_ = std::filesystem::temp_directory_path() /
               ("warren-e2e-" + std::to_string(::getpid()) + "-" +
                ::testing::UnitTest::GetInstance()->current_test_info()->name());
        std::filesystem::remove_all(dir_);
    }
    void TearDown() override { std::filesystem::remove_all(dir_); }
    std::string data() const { return dir_.string(); }
    std::filesystem::path dir_;
};

json hello(Client& c) {
    auto l = c.line();
    EXPECT_TRUE(l.has_value());
    EXPECT_EQ((*l)["ev"], "HELLO");
    return l.value_or(json{});
}

TEST_F(Loopback, MessageDeliveredAndSurvivesKill9) {
    std::string bob_token;
    int64_t msg_id = 0;
    {
        Daemon d(data());
        Client alice(d.port), bob(d.port);
        hello(alice);
        hello(bob);
        ASSERT_EQ(
            alice.call(
                {{"op", "REGISTER"}, {"username", "alice"}, {"password", "alice-pw-1"}})["ok"],
            true);
        json b = bob.call({{"op", "REGISTER"}, {"username", "bob"}, {"password", "bob-pw-12"}});
        ASSERT_EQ(b["ok"], true) << b;
        bob_token = b["session"]["token"];
        ASSERT_EQ(alice.call({{"op", "CREATE_ROOM"}, {"room", "general"}})["ok"], true);
        ASSERT_EQ(alice.call({{"op", "JOIN_ROOM"}, {"room", "general"}})["ok"], true);
        ASSERT_EQ(bob.call({{"op", "JOIN_ROOM"}, {"room", "general"}})["ok"], true);
        json m = alice.call({{"op", "SEND_MESSAGE"}, {"room", "general"}, {"text", "hello bob"}});
        ASSERT_EQ(m["ok"], true) << m;
        msg_id = m["message"]["id"];
        auto ev = bob.event();
        ASSERT_TRUE(ev.has_value());
        EXPECT_EQ((*ev)["ev"], "MESSAGE");
        EXPECT_EQ((*ev)["message"]["text"], "hello bob");
        EXPECT_EQ((*ev)["message"]["author"], "alice");
        EXPECT_EQ(d.stop(SIGKILL), 128 + SIGKILL);
    }
    Daemon d(data());
    Client bob(d.port);
    hello(bob);
    json t = bob.call({{"op", "LOGIN"}, {"token", bob_token}});
    ASSERT_EQ(t["ok"], true) << t;
    EXPECT_EQ(t["user"]["username"], "bob");
    json h = bob.call({{"op", "HISTORY"}, {"room", "general"}});
    ASSERT_EQ(h["messages"].size(), 1u) << h;
    EXPECT_EQ(h["messages"][0]["id"], msg_id);
    EXPECT_EQ(h["messages"][0]["text"], "hello bob");
    Client alice(d.port);
    hello(alice);
    EXPECT_EQ(
        alice.call({{"op", "LOGIN"}, {"username", "alice"}, {"password", "alice-pw-1"}})["ok"],
        true);
    EXPECT_EQ(
        alice.call(
            {{"op", "LOGIN"}, {"username", "alice"}, {"password", "another-pw"}})["error"]["code"],
        "CONFLICT");
}

TEST_F(Loopback, ProtocolErrorsDoNotDisturbOtherClients) {
    Daemon d(data());
    Client good(d.port), bad(d.port);
    hello(good);
    hello(bad);
    ASSERT_EQ(
        good.call({{"op", "REGISTER"}, {"username", "carol"}, {"password", "carol-pw"}})["ok"],
        true);
    bad.raw("{\"op\":\"PING\"}\n");
    auto l = bad.line();
    ASSERT_TRUE(l);
    EXPECT_TRUE((*l)["re"].is_null());
    EXPECT_EQ((*l)["error"]["code"], "BAD_REQUEST");
    bad.raw("{\"id\":4,\"op\":\"WHAT\"}\n");
    l = bad.line();
    EXPECT_EQ((*l)["re"], 4);
    EXPECT_EQ((*l)["error"]["code"], "UNKNOWN_OP");
    bad.raw("garbage\n");
    EXPECT_EQ((*bad.line())["error"]["code"], "BAD_FRAME");
    bad.raw(std::string(70'000, 'x'));
    l = bad.line();
    ASSERT_TRUE(l);
    EXPECT_EQ((*l)["error"]["code"], "FRAME_TOO_LARGE");
    EXPECT_TRUE((*l)["re"].is_null());
    l = bad.line();
    ASSERT_TRUE(l);
    EXPECT_EQ((*l)["ev"], "DISCONNECT");
    EXPECT_EQ((*l)["reason"], "FRAME_TOO_LARGE");
    EXPECT_TRUE(bad.closed_by_peer());
    EXPECT_EQ(good.call({{"op", "PING"}})["pong"], true);
    Client third(d.port);
    hello(third);
    third.raw("a\nb\nc\n");
    for (int i = 0; i < 3; ++i) EXPECT_EQ((*third.line())["error"]["code"], "BAD_FRAME");
    EXPECT_EQ((*third.line())["reason"], "BAD_FRAMES");
    EXPECT_EQ(good.call({{"op", "PING"}})["pong"], true);
}

TEST_F(Loopback, SigtermTellsClientsAndExitsCleanly) {
    Daemon d(data());
    Client c(d.port);
    hello(c);
    ASSERT_EQ(c.call({{"op", "PING"}})["ok"], true);
    EXPECT_EQ(d.stop(SIGTERM), 0);
    auto l = c.line();
    ASSERT_TRUE(l);
    EXPECT_EQ((*l)["ev"], "DISCONNECT");
    EXPECT_EQ((*l)["reason"], "SHUTDOWN");
}

std::string run(const std::string& cmd, int* status) {
    std::string out;
    FILE* p = popen(cmd.c_str(), "r");
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    *status = WEXITSTATUS(pclose(p));
    return out;
}

TEST_F(Loopback, CommandLineClientOneShotMode) {
    Daemon d(data());
    std::string base = bin_dir() + "/warren -s 127.0.0.1:" + std::to_string(d.port);
    int st = 0;
    run(base + " -u dave -p dave-pass --register create lobby 2>&1", &st);
    EXPECT_EQ(st, 0);
    std::string out = run(base + " -u dave -p dave-pass send lobby 'hi there' 2>&1", &st);
    EXPECT_EQ(st, 0) << out;
    out = run(base + " -u dave -p dave-pass history lobby 2>&1", &st);
    EXPECT_EQ(st, 0);
    EXPECT_NE(out.find("dave: hi there"), std::string::npos) << out;
    out = run(base + " -u dave -p wrong-pass rooms 2>&1", &st);
    EXPECT_EQ(st, 1);
    EXPECT_NE(out.find("INVALID_CREDENTIALS"), std::string::npos) << out;
    out = run(base + " -u dave -p dave-pass send nowhere x 2>&1", &st);
    EXPECT_EQ(st, 1);
    EXPECT_NE(out.find("NOT_FOUND"), std::string::npos) << out;
}

// Every op and event of the protocol over the real server, with the refusals a client meets.
TEST_F(Loopback, EveryOpAndEventEndToEnd) {
    Daemon d(data());
    Client ann(d.port), ben(d.port), cid(d.port);
    for (Client* c : {&ann, &ben, &cid}) hello(*c);
    auto ok = [](const json& r) { return r.value("ok", false); };
    auto code = [](const json& r) { return r["error"].value("code", std::string()); };
    auto next_event = [](Client& c, const std::string& name) {
        for (int i = 0; i < 20; ++i) {
            auto e = c.event(5000);
            if (!e) return json{};
            if ((*e)["ev"] == name) return *e;
        }
        return json{};
    };
    ASSERT_TRUE(
        ok(ann.call({{"op", "REGISTER"}, {"username", "ann"}, {"password", "ann-pass-1"}})));
    ASSERT_TRUE(
        ok(ben.call({{"op", "REGISTER"}, {"username", "ben"}, {"password", "ben-pass-1"}})));
    ASSERT_TRUE(
        ok(cid.call({{"op", "REGISTER"}, {"username", "cid"}, {"password", "cid-pass-1"}})));

    ASSERT_TRUE(ok(ann.call({{"op", "CREATE_ROOM"}, {"room", "pub"}})));
    ASSERT_TRUE(ok(ann.call({{"op", "CREATE_ROOM"}, {"room", "priv"}, {"visibility", "private"}})));
    EXPECT_EQ(code(cid.call({{"op", "JOIN_ROOM"}, {"room", "priv"}})), "FORBIDDEN");  // uninvited
    ASSERT_TRUE(ok(ben.call({{"op", "JOIN_ROOM"}, {"room", "pub"}})));
    EXPECT_EQ(next_event(ann, "MEMBER_JOINED")["user"], "ben");

    json m = ann.call({{"op", "SEND_MESSAGE"}, {"room", "pub"}, {"text", "hello café"}});
    ASSERT_TRUE(ok(m));
    int64_t id = m["message"]["id"];
    EXPECT_EQ(next_event(ben, "MESSAGE")["message"]["text"], "hello café");
    EXPECT_EQ(code(cid.call({{"op", "SEND_MESSAGE"}, {"room", "pub"}, {"text", "x"}})),
              "FORBIDDEN");
    EXPECT_EQ(code(ben.call({{"op", "EDIT_MESSAGE"}, {"message_id", id}, {"text", "x"}})),
              "FORBIDDEN");

    json e = ann.call({{"op", "EDIT_MESSAGE"}, {"message_id", id}, {"text", "hello café, edited"}});
    ASSERT_TRUE(ok(e));
    EXPECT_EQ(next_event(ben, "MESSAGE_EDITED")["message"]["text"], "hello café, edited");
    ASSERT_TRUE(ok(ben.call({{"op", "REACT"}, {"message_id", id}, {"emoji", "ok"}})));
    EXPECT_EQ(next_event(ann, "REACTION_ADDED")["user"], "ben");
    EXPECT_EQ(code(ben.call({{"op", "REACT"}, {"message_id", id}, {"emoji", "ok"}})), "CONFLICT");
    ASSERT_TRUE(ok(ben.call({{"op", "UNREACT"}, {"message_id", id}, {"emoji", "ok"}})));
    EXPECT_EQ(next_event(ann, "REACTION_REMOVED")["emoji"], "ok");
    json reply =
        ben.call({{"op", "SEND_MESSAGE"}, {"room", "pub"}, {"text", "re"}, {"reply_to", id}});
    ASSERT_TRUE(ok(reply));
    json th = ann.call({{"op", "GET_THREAD"}, {"message_id", id}});
    ASSERT_EQ(th["replies"].size(), 1u);
    EXPECT_EQ(th["replies"][0]["text"], "re");

    ASSERT_TRUE(ok(ann.call({{"op", "SET_TOPIC"}, {"room", "pub"}, {"topic", "news"}})));
    EXPECT_EQ(next_event(ben, "TOPIC_CHANGED")["topic"], "news");
    ASSERT_TRUE(ok(ben.call({{"op", "MARK_READ"}, {"room", "pub"}, {"message_id", id}})));

    json inv = ann.call({{"op", "INVITE_USER"}, {"room", "priv"}, {"user", "cid"}});
    ASSERT_TRUE(ok(inv));
    EXPECT_EQ(next_event(cid, "INVITATION")["invitation"]["room"], "priv");
    EXPECT_EQ(cid.call({{"op", "LIST_INVITATIONS"}})["invitations"].size(), 1u);
    ASSERT_TRUE(
        ok(cid.call({{"op", "ACCEPT_INVITATION"}, {"invitation_id", inv["invitation"]["id"]}})));
    EXPECT_EQ(next_event(ann, "INVITATION_ACCEPTED")["invitation"]["to"], "cid");
    json priv_msg = cid.call({{"op", "SEND_MESSAGE"}, {"room", "priv"}, {"text", "in private"}});
    ASSERT_TRUE(ok(priv_msg));
    json cross = ann.call({{"op", "SEND_MESSAGE"},
                           {"room", "pub"},
                           {"text", "x"},
                           {"reply_to", priv_msg["message"]["id"]}});
    EXPECT_EQ(code(cross), "BAD_REQUEST");  // a message of another room
    EXPECT_EQ(cross["error"]["field"], "reply_to");
    ASSERT_TRUE(ok(ben.call({{"op", "INVITE_USER"}, {"room", "pub"}, {"user", "cid"}})));
    ASSERT_TRUE(ok(cid.call({{"op", "DECLINE_INVITATION"}, {"room", "pub"}})));
    EXPECT_EQ(next_event(ben, "INVITATION_DECLINED")["invitation"]["room"], "pub");

    json dm = ben.call({{"op", "DIRECT_MESSAGE"}, {"to", "cid"}, {"text", "just us"}});
    ASSERT_TRUE(ok(dm));
    EXPECT_EQ(next_event(cid, "DIRECT_MESSAGE")["message"]["to"], "cid");
    EXPECT_EQ(cid.call({{"op", "HISTORY"}, {"with", "ben"}})["messages"].size(), 1u);
    json users = ann.call({{"op", "REQUEST_USER_LIST"}, {"room", "pub"}});
    EXPECT_EQ(users["users"].size(), 2u);

    // A message is searchable within a second of its acknowledgement (PROTOCOL.md): the
    // index is kept off the commit path.
    size_t found = 0;
    for (int i = 0; i < 20 && found == 0; ++i) {
        found = ben.call({{"op", "SEARCH"}, {"query", "cafe"}})["results"].size();
        if (found == 0) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    EXPECT_EQ(found, 1u);
    ASSERT_TRUE(ok(ben.call({{"op", "LEAVE_ROOM"}, {"room", "pub"}})));
    EXPECT_EQ(next_event(ann, "MEMBER_LEFT")["user"], "ben");
    EXPECT_TRUE(ben.call({{"op", "SEARCH"}, {"query", "cafe"}})["results"].empty());  // left it
    EXPECT_EQ(code(ben.call({{"op", "SEARCH"}, {"query", "cafe"}, {"room", "pub"}})), "FORBIDDEN");

    ASSERT_TRUE(ok(ann.call({{"op", "DELETE_MESSAGE"}, {"message_id", id}})));
    json hist = ann.call({{"op", "HISTORY"}, {"room", "pub"}});
    EXPECT_EQ(hist["messages"][0]["deleted"], true);
    EXPECT_EQ(hist["messages"][0]["text"], "");
    ASSERT_TRUE(ok(cid.call({{"op", "LOGOUT"}})));  // cid shares "priv" with ann
    json presence = next_event(ann, "PRESENCE");
    EXPECT_EQ(presence["user"], "cid");
    EXPECT_EQ(presence["online"], false);
}

// Several clients send as fast as replies come back while warrend is killed with SIGKILL at
// random moments, three times; after each restart every acknowledged message must be in
// history exactly once, with its text. WARREN_TEST_SEED replays the kill timing.
TEST_F(Loopback, AcknowledgedMessagesSurviveRepeatedKill9UnderLoad) {
    uint64_t seed = 20261126;
    if (const char* env = std::getenv("WARREN_TEST_SEED")) seed = std::strtoull(env, nullptr, 10);
    std::printf("seed=%llu (replay with WARREN_TEST_SEED=%llu)\n",
                static_cast<unsigned long long>(seed), static_cast<unsigned long long>(seed));
    std::mt19937_64 rng(seed);
    constexpr int senders = 3;
    std::vector<std::string> tokens;
    {
        Daemon d(data());
        Client setup(d.port);
        hello(setup);
        for (int i = 0; i < senders; ++i) {
            Client c(d.port);
            hello(c);
            json r = c.call({{"op", "REGISTER"},
                             {"username", "load" + std::to_string(i)},
                             {"password", "load-password"}});
            ASSERT_EQ(r["ok"], true) << r;
            tokens.push_back(r["session"]["token"]);
            json room = c.call({{"op", i == 0 ? "CREATE_ROOM" : "JOIN_ROOM"}, {"room", "load"}});
            ASSERT_EQ(room["ok"], true) << room;
        }
    }
    std::mutex mu;
    std::map<int64_t, std::string> acked;  // id -> text
    int64_t last_round_acked = 0;
    for (int round = 0; round < 3; ++round) {
        Daemon d(data());
        std::atomic<bool> stop{false};
        std::vector<std::thread> threads;
        std::atomic<int64_t> round_acked{0};
        for (int i = 0; i < senders; ++i) {
            threads.emplace_back([&, i, port = d.port] {
                try {
                    Client c(port);
                    c.line();
                    if (c.call({{"op", "LOGIN"}, {"token", tokens[i]}})["ok"] != true) return;
                    for (int n = 0; n < 20000 && !stop; ++n) {
                        std::string text = "r" + std::to_string(round) + "-u" + std::to_string(i) +
                                           "-" + std::to_string(n);
                        json r = c.call({{"op", "SEND_MESSAGE"}, {"room", "load"}, {"text", text}});
                        if (r["ok"] != true) continue;
                        std::lock_guard lock(mu);
                        acked[r["message"]["id"].get<int64_t>()] = text;
                        ++round_acked;
                    }
                } catch (const std::exception&) {
                    // The server died under us: expected.
                }
            });
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(150 + rng() % 350));
        EXPECT_EQ(d.stop(SIGKILL), 128 + SIGKILL);
        stop = true;
        for (auto& t : threads) t.join();
        last_round_acked = round_acked;
        EXPECT_GT(last_round_acked, 0) << "round " << round << " acknowledged nothing";
    }
    Daemon d(data());
    Client reader(d.port);
    hello(reader);
    ASSERT_EQ(reader.call({{"op", "LOGIN"}, {"token", tokens[0]}})["ok"], true);
    std::map<int64_t, std::string> stored;
    std::map<std::string, int> text_count;
    json req = {{"op", "HISTORY"}, {"room", "load"}, {"limit", 100}};
    for (int pages = 0; pages < 100000; ++pages) {
        json page = reader.call(req);
        ASSERT_EQ(page["ok"], true) << page;
        for (auto& m : page["messages"]) {
            EXPECT_TRUE(stored.emplace(m["id"].get<int64_t>(), m["text"]).second);
            ++text_count[m["text"]];
        }
        if (!page["has_more"].get<bool>() || page["messages"].empty()) break;
        req["before"] = page["messages"][0]["id"];
    }
    size_t missing = 0;
    for (const auto& [id, text] : acked) {
        auto it = stored.find(id);
        if (it == stored.end() || it->second != text) ++missing;
        EXPECT_EQ(text_count[text], 1) << text;
    }
    EXPECT_EQ(missing, 0u);
    std::printf("%zu acknowledged messages, %zu stored, all present exactly once\n", acked.size(),
                stored.size());
}

// Every write through the writer thread (writer_min_bytes = 0), to readers that read
// nothing while two senders pipeline into their room (so the writer finds their sockets full,
// and the rest waits for room on the core's thread), and one member that goes away in the
// middle: each reader then gets every acknowledged message once, in id order.
TEST_F(Loopback, FanOutThroughTheWriterThreadArrivesWholeAndInOrder) {
    std::filesystem::create_directories(dir_);
    std::string config = (dir_ / "writer.toml").string();
    // Readers that read nothing for a while are not what this is about: no stall closes them
    // however slow the build (sanitizers).
    std::ofstream(config) << unlimited_config
                          << "[limits]\nwriter_min_bytes = 0\noutbound_stall_ms = 3600000\n";
    Daemon d(data(), {"--config", config});
    // Pipelined (below conn_pending_max); 6 MB to each reader, more than its socket holds.
    constexpr int senders = 2, readers = 4, per_sender = 1000;
    std::vector<std::unique_ptr<Client>> cs;
    for (int i = 0; i < senders + readers + 1; ++i) {
        cs.push_back(std::make_unique<Client>(d.port));
        Client& c = *cs.back();
        hello(c);
        json r = c.call({{"op", "REGISTER"},
                         {"username", "fan" + std::to_string(i)},
                         {"password", "fan-password"}});
        ASSERT_EQ(r["ok"], true) << r;
        ASSERT_EQ(c.call({{"op", i == 0 ? "CREATE_ROOM" : "JOIN_ROOM"}, {"room", "fan"}})["ok"],
                  true);
    }
    // Readers that read a moment ago hold back the senders that outrun them (backpressure);
    // these have been quiet for longer, so the server goes on writing until their sockets fill.
    std::this_thread::sleep_for(std::chrono::milliseconds(1100));
    std::string pad(3000, 'x');
    std::vector<std::thread> threads;
    std::mutex mu;
    std::map<int64_t, std::string> acked;  // id -> text
    for (int s = 0; s < senders; ++s)
        threads.emplace_back([&, s] {
            Client& c = *cs[s];
            for (int n = 0; n < per_sender; ++n)
                c.send({{"id", 1000 + n},
                        {"op", "SEND_MESSAGE"},
                        {"room", "fan"},
                        {"text", std::to_string(s) + "-" + std::to_string(n) + pad}});
            for (int got = 0; got < per_sender;) {
                auto l = c.line(20'000);
                if (!l) return;
                if (!l->contains("re")) continue;  // the other sender's messages
                ++got;
                if ((*l)["ok"] == true) {
                    std::lock_guard lock(mu);
                    acked[(*l)["message"]["id"].get<int64_t>()] = (*l)["message"]["text"];
                }
            }
        });
    // The last member leaves halfway, its socket full and its writes in flight.
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    cs.pop_back();
    for (auto& t : threads) t.join();
    ASSERT_EQ(acked.size(), static_cast<size_t>(senders * per_sender));
    for (int r = senders; r < senders + readers; ++r) {
        std::vector<int64_t> ids;
        std::map<int64_t, std::string> got;
        while (ids.size() < acked.size()) {
            auto l = cs[r]->line(20'000);
            ASSERT_TRUE(l.has_value()) << "reader " << r << " got " << ids.size();
            if ((*l)["ev"] != "MESSAGE") continue;
            ids.push_back((*l)["message"]["id"].get<int64_t>());
            got[ids.back()] = (*l)["message"]["text"];
        }
        EXPECT_TRUE(std::is_sorted(ids.begin(), ids.end())) << "reader " << r;
        EXPECT_EQ(got.size(), ids.size()) << "reader " << r << ": a message twice";
        EXPECT_TRUE(got == acked) << "reader " << r << ": messages missing or altered";
    }
    EXPECT_EQ(cs[0]->call({{"op", "PING"}})["pong"], true);
}

}  // namespace
}  // namespace warren::test

namespace warren::test {
namespace {

// L19: the command-line client shows what others wrote without letting it forge lines or
// drive the terminal: a newline starts an indented continuation, controls are escaped.
TEST_F(Loopback, CommandLineClientEscapesWhatItPrints) {
    Daemon d(data());
    std::string base = bin_dir() + "/warren -s 127.0.0.1:" + std::to_string(d.port);
    int st = 0;
    run(base + " -u erin -p erin-pass --register create lobby 2>&1", &st);
    ASSERT_EQ(st, 0);
    Client c(d.port);
    hello(c);
    ASSERT_EQ(c.call({{"op", "LOGIN"}, {"username", "erin"}, {"password", "erin-pass"}})["ok"],
              true);
    // The server refuses C0 controls in text, but not C1 ones (U+009B is the 8-bit CSI that
    // starts terminal escape sequences) or direction overrides.
    std::string forged =
        "fine\n[lobby] #9 admin: send me your password\xc2\x9b"
        "2J\xe2\x80\xae";
    ASSERT_EQ(c.call({{"op", "SEND_MESSAGE"}, {"room", "lobby"}, {"text", forged}})["ok"], true);
    std::string out = run(base + " -u erin -p erin-pass history lobby 2>&1", &st);
    EXPECT_EQ(st, 0) << out;
    EXPECT_EQ(out.find("\n[lobby] #9"), std::string::npos) << out;
    EXPECT_NE(out.find("fine\n    [lobby] #9 admin"), std::string::npos) << out;
    EXPECT_EQ(out.find("\xc2\x9b"), std::string::npos) << out;
    EXPECT_NE(out.find("\\u009b2J"), std::string::npos) << out;
    EXPECT_NE(out.find("\\u202e"), std::string::npos) << out;
}

}  // namespace
}  // namespace warren::test

namespace warren::test {
namespace {

// L20: what warrend creates is for its own user only: the data directory 0700, the database
// and its WAL 0600.
TEST_F(Loopback, DataDirectoryAndDatabaseAreCreatedPrivate) {
    std::filesystem::create_directories(data());
    std::string cfg = data() + "/unlimited.toml";
    std::ofstream(cfg) << unlimited_config;
    std::string fresh = data() + "/fresh";
    {
        Daemon d(fresh, {"--config", cfg});
        Client c(d.port);
        hello(c);
        ASSERT_EQ(
            c.call({{"op", "REGISTER"}, {"username", "pat"}, {"password", "pat-pass-1"}})["ok"],
            true);
        namespace fs = std::filesystem;
        auto mode = [](const std::string& p) {
            return fs::status(p).permissions() & fs::perms::all;
        };
        EXPECT_EQ(mode(fresh), fs::perms::owner_all);
        EXPECT_EQ(mode(fresh + "/warren.db"), fs::perms::owner_read | fs::perms::owner_write);
        EXPECT_EQ(mode(fresh + "/warren.db-wal"), fs::perms::owner_read | fs::perms::owner_write);
    }
}

}  // namespace
}  // namespace warren::test

namespace warren::test {
namespace {

std::string file_text(const std::string& path) {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// M7: warrend raises its descriptor limit to cover connections.max.
TEST_F(Loopback, RaisesTheDescriptorLimitAtStart) {
    Daemon d(data(), {}, {}, {"/usr/bin/prlimit", "--nofile=256:8192", "--"});
    std::string limits = file_text("/proc/" + std::to_string(d.pid()) + "/limits");
    auto at = limits.find("Max open files");
    ASSERT_NE(at, std::string::npos);
    std::istringstream row(limits.substr(at + std::string("Max open files").size()));
    uint64_t soft = 0;
    row >> soft;
    EXPECT_EQ(soft, 8192u) << limits;
}

// M7: when the hard limit cannot cover connections.max, warrend clamps it (and says so), so
// that clients past it are refused at once instead of hanging in the backlog; once they
// leave, new clients are served.
TEST_F(Loopback, ClampsConnectionsToTheDescriptorLimit) {
    std::filesystem::create_directories(data());
    std::string log = data() + "/stderr.log";
    Daemon d(data(), {"--admin-listen", "off", "--log-level", "info"}, log,
             {"/usr/bin/prlimit", "--nofile=256:256", "--"});
    EXPECT_NE(file_text(log).find("connections_clamped"), std::string::npos) << file_text(log);
    std::vector<std::unique_ptr<Client>> clients;
    int hello = 0, refused = 0, silent = 0;
    for (int i = 0; i < 250; ++i) {
        clients.push_back(
            std::make_unique<Client>(d.port, ("127.0.4." + std::to_string(i % 250 + 1)).c_str()));
        auto l = clients.back()->line(3000);
        if (!l)
            ++silent;
        else if ((*l)["ev"] == "HELLO")
            ++hello;
        else if ((*l)["ev"] == "DISCONNECT")
            ++refused;
    }
    EXPECT_EQ(silent, 0);
    EXPECT_GT(hello, 100);
    EXPECT_GT(refused, 0);
    clients.clear();
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    Client fresh(d.port);
    auto l = fresh.line(5000);
    ASSERT_TRUE(l);
    EXPECT_EQ((*l)["ev"], "HELLO");
}

}  // namespace
}  // namespace warren::test
