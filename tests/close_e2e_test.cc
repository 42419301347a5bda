// Closes never drop what was answered (docs/PROTOCOL.md, "Closes"), against the real warrend
// over 127.0.0.1: a client pipelines messages and the server closes it — suspended for
// flooding, suspended or its sessions revoked by an operator, the server shutting down, an IRC
// client flooding a channel, a client over TLS. Each time the client reads to the end without
// a reset, every message stored was acknowledged before the closing line (OK replies, or IRC
// echoes, counted against the room's history), the replies came in request order, and nothing
// follows the closing line. The close decision races the client's requests, so each case runs
// several rounds, with prompt and slow readers.
#include <gtest/gtest.h>

#include <signal.h>

#include <filesystem>
#include <fstream>

#include "tests/loopback.h"
#include "tests/tls_client.h"

namespace warren::test {
namespace {

const std::string admin_token = "close-e2e-admin-token-0123456789";

// The default rate limits (a flood gets its account suspended); only the reader's address,
// 127.0.0.1, is allowlisted.
const char* flood_config = R"toml(
[security]
allowlist = ["127.0.0.1/32"]
)toml";
// Flood control holds 1 KiB of an IRC client's input here: a 200-line flood goes past it.
const char* irc_flood_config = R"toml(
[security]
allowlist = ["127.0.0.1/32"]
[irc]
flood_bytes_max = 1024
)toml";

class Closes : public ::testing::Test {
  protected:
    void SetUp() override {
        dir_ = std::filesystem::temp_directory_path() /
               ("warren-close-e2e-" + std::to_string(::getpid()) + "-" +
                ::testing::UnitTest::GetInstance()->current_test_info()->name());
        std::filesystem::remove_all(dir_);
        std::filesystem::create_directories(dir_);
    }
    void TearDown() override { std::filesystem::remove_all(dir_); }
    std::string data() const { return (dir_ / "data").string(); }
    std::string config(const std::string& text) const {
        std::string path = (dir_ / "warren.toml").string();
        std::ofstream(path) << text;
        return path;
    }
    std::filesystem::path dir_;
};

void hello(Client& c) {
    auto h = c.line();
    ASSERT_TRUE(h);
    ASSERT_EQ((*h)["ev"], "HELLO");
}

void account(Client& c, const std::string& name) {
    hello(c);
    json r = c.call({{"op", "REGISTER"}, {"username", name}, {"password", "password1"}});
    ASSERT_EQ(r["ok"], true) << r;
}

// A new account `name` on `c` creates `room`, and `reader` joins it.
void account_with_room(Client& c, const std::string& name, const std::string& room,
                       Client& reader) {
    account(c, name);
    ASSERT_EQ(c.call({{"op", "CREATE_ROOM"}, {"room", room}})["ok"], true);
    ASSERT_EQ(reader.call({{"op", "JOIN_ROOM"}, {"room", room}})["ok"], true);
}

// `n` SEND_MESSAGE lines to `room`, ids from `first_id`.
std::string messages(int n, const std::string& room, int64_t first_id) {
    std::string bytes;
    for (int i = 0; i < n; ++i)
        bytes += json{{"id", first_id + i},
                      {"op", "SEND_MESSAGE"},
                      {"room", room},
                      {"text", "m" + std::to_string(i)}}
                     .dump() +
                 "\n";
    return bytes;
}

// What a JSON client read before its connection closed.
struct Seen {
    std::vector<int64_t> answered;  // reply ids, as they came
    int64_t ok = 0;
    std::string reason;  // the DISCONNECT's
    size_t after = 0;    // lines after the DISCONNECT
    bool partial = false;
};

Seen seen_json(const std::string& bytes) {
    Seen s;
    size_t pos = 0;
    while (pos < bytes.size()) {
        size_t nl = bytes.find('\n', pos);
        if (nl == std::string::npos) {
            s.partial = true;
            break;
        }
        json l = json::parse(bytes.substr(pos, nl - pos));
        pos = nl + 1;
        if (!s.reason.empty())
            ++s.after;
        else if (l.value("ev", "") == "DISCONNECT")
            s.reason = l["reason"];
        else if (l.contains("re") && l["re"].is_number()) {
            s.answered.push_back(l["re"]);
            if (l.value("ok", false)) ++s.ok;
        }
    }
    return s;
}

void expect_answered_then_closed(bool closed, bool reset, const Seen& s, const std::string& reason,
                                 int64_t first_id) {
    EXPECT_TRUE(closed);
    EXPECT_FALSE(reset) << "the close was a reset: what the client had not read was lost";
    EXPECT_EQ(s.reason, reason);
    EXPECT_EQ(s.after, 0u);
    EXPECT_FALSE(s.partial);
    for (size_t i = 0; i < s.answered.size(); ++i)
        ASSERT_EQ(s.answered[i], first_id + static_cast<int64_t>(i)) << i;
}

// The messages `author` has in `room`, read by `reader`, a member.
int64_t stored_by(Client& reader, const std::string& room, const std::string& author) {
    int64_t n = 0;
    json req = {{"op", "HISTORY"}, {"room", room}, {"after", 0}, {"limit", 100}};
    for (;;) {
        json page = reader.call(req);
        EXPECT_EQ(page["ok"], true) << page;
        if (page["ok"] != true) return -1;
        for (auto& m : page["messages"]) {
            if (m["author"] == author) ++n;
            req["after"] = m["id"];
        }
        if (!page["has_more"].get<bool>()) return n;
    }
}

// Every other round reads slowly: it starts late and takes 512 bytes at a time.
Client::Rest read_rest(Client& c, int round) {
    if (round % 2 == 0) return c.rest(20'000);
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    return c.rest(20'000, 512, 1);
}

// The flood from outside: 200 pipelined messages; the account is suspended on the way.
TEST_F(Closes, AFloodingAccountHadEveryStoredMessageAcknowledgedBeforeItsDisconnect) {
    Daemon d(data(), {"--config", config(flood_config), "--log-level", "error"});
    Client reader(d.port, "127.0.0.1");
    account(reader, "reader");
    for (int round = 0; round < 8; ++round) {
        SCOPED_TRACE("round " + std::to_string(round));
        std::string name = "flooder" + std::to_string(round), room = "r" + std::to_string(round);
        std::string ip = "127.0.7." + std::to_string(round + 1);
        Client f(d.port, ip.c_str());
        account_with_room(f, name, room, reader);
        f.raw(messages(200, room, 1000));
        Client::Rest r = read_rest(f, round);
        Seen s = seen_json(r.bytes);
        expect_answered_then_closed(r.closed, r.reset, s, "BLOCKED", 1000);
        int64_t stored = stored_by(reader, room, name);
        EXPECT_GT(stored, 0);
        EXPECT_EQ(s.ok, stored);
    }
}

// An operator suspends the account, or revokes its sessions, while 800 pipelined messages are
// on their way.
TEST_F(Closes, AnOperatorsSuspensionOrRevocationAnswersWhatWasStoredFirst) {
    setenv("WARREN_ADMIN_TOKEN", admin_token.c_str(), 1);
    Daemon d(data(), {"--log-level", "error"});
    unsetenv("WARREN_ADMIN_TOKEN");
    Client reader(d.port);
    account(reader, "reader");
    for (int round = 0; round < 6; ++round) {
        SCOPED_TRACE("round " + std::to_string(round));
        std::string name = "user" + std::to_string(round), room = "r" + std::to_string(round);
        Client u(d.port);
        account_with_room(u, name, room, reader);
        u.raw(messages(800, room, 1));
        bool suspend = round % 2 == 0;
        HttpResponse act =
            suspend ? http(d.admin_port, "POST", "/api/v1/admin/users/" + name + "/suspend",
                           R"({"duration_ms":3600000,"reason":"test"})", admin_token)
                    : http(d.admin_port, "POST", "/api/v1/admin/users/" + name + "/sessions/revoke",
                           "{}", admin_token);
        ASSERT_EQ(act.status, 200) << act.body;
        Client::Rest r = read_rest(u, round / 2);
        Seen s = seen_json(r.bytes);
        expect_answered_then_closed(r.closed, r.reset, s, suspend ? "BLOCKED" : "SESSION_REVOKED",
                                    1);
        EXPECT_EQ(s.ok, stored_by(reader, room, name));
    }
}

// SIGTERM while 900 pipelined messages are on their way, and 100 more written after it: what
// was answered OK is exactly what the restarted server has.
TEST_F(Closes, AShutdownUnderPipelinedLoadAnswersEveryStoredMessage) {
    int64_t acknowledged = 0;
    for (int round = 0; round < 4; ++round) {
        SCOPED_TRACE("round " + std::to_string(round));
        Daemon d(data(), {"--log-level", "error"});
        {
            Client u(d.port);
            if (round == 0) {
                account(u, "author");
                ASSERT_EQ(u.call({{"op", "CREATE_ROOM"}, {"room", "r"}})["ok"], true);
            } else {
                hello(u);
                ASSERT_EQ(
                    u.call(
                        {{"op", "LOGIN"}, {"username", "author"}, {"password", "password1"}})["ok"],
                    true);
            }
            // 1000 in all: under the 1024 unanswered requests past which a connection is
            // closed SLOW_CONSUMER, however many the server reads before it decides.
            u.raw(messages(900, "r", 1));
            ::kill(d.pid(), SIGTERM);
            // Still writing after the server decided: what it does not read must not turn its
            // close into a reset.
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
            u.raw(messages(100, "r", 901));
            Client::Rest r = read_rest(u, round);
            Seen s = seen_json(r.bytes);
            expect_answered_then_closed(r.closed, r.reset, s, "SHUTDOWN", 1);
            acknowledged += s.ok;
        }
        EXPECT_EQ(d.stop(SIGTERM), 0);
    }
    Daemon d(data(), {"--log-level", "error"});
    Client u(d.port);
    hello(u);
    ASSERT_EQ(u.call({{"op", "LOGIN"}, {"username", "author"}, {"password", "password1"}})["ok"],
              true);
    EXPECT_GT(acknowledged, 0);
    EXPECT_EQ(stored_by(u, "r", "author"), acknowledged);
}

// An IRC client with echo-message floods a channel past what flood control holds and is
// closed for Excess Flood on the way: each stored message was echoed to it before its ERROR.
TEST_F(Closes, AnIrcClientFloodingAChannelSawEveryStoredMessageEchoedBeforeItsError) {
    Daemon d(data(), {"--config", config(irc_flood_config), "--irc-listen", "127.0.0.1:0",
                      "--log-level", "error"});
    Client reader(d.port, "127.0.0.1");
    account(reader, "reader");
    for (int round = 0; round < 6; ++round) {
        SCOPED_TRACE("round " + std::to_string(round));
        std::string name = "ircer" + std::to_string(round), room = "c" + std::to_string(round);
        std::string ip = "127.0.8." + std::to_string(round + 1);
        {
            Client j(d.port, ip.c_str());
            account_with_room(j, name, room, reader);
        }
        Client irc(d.irc_port, ip.c_str());
        irc.raw("CAP LS 302\r\nCAP REQ :echo-message\r\nPASS " + name + ":password1\r\nNICK " +
                name + "\r\nUSER u 0 * :u\r\nCAP END\r\nJOIN #" + room + "\r\n");
        bool joined = false;
        while (std::optional<std::string> l = irc.text_line())
            if (l->find(" 366 ") != std::string::npos) {
                joined = true;
                break;
            }
        ASSERT_TRUE(joined);
        std::string flood;
        for (int i = 0; i < 200; ++i)
            flood += "PRIVMSG #" + room + " :m" + std::to_string(i) + "\r\n";
        irc.raw(flood);
        Client::Rest r = read_rest(irc, round);
        EXPECT_TRUE(r.closed);
        EXPECT_FALSE(r.reset);
        size_t error = r.bytes.find("ERROR :");
        ASSERT_NE(error, std::string::npos) << r.bytes;
        EXPECT_EQ(r.bytes.find("\r\n", error) + 2, r.bytes.size()) << "lines after ERROR";
        int64_t echoed = 0;
        std::string echo = " PRIVMSG #" + room + " :m";
        for (size_t p = r.bytes.find(echo); p < error; p = r.bytes.find(echo, p + 1)) ++echoed;
        EXPECT_GT(echoed, 0);
        EXPECT_EQ(echoed, stored_by(reader, room, name));
    }
}

// Over TLS: the replies, then DISCONNECT, then close_notify.
TEST_F(Closes, OverTlsTheRepliesComeThenTheDisconnectThenCloseNotify) {
    CertFiles cert = write_self_signed(dir_.string(), "server", "warren.test");
    setenv("WARREN_ADMIN_TOKEN", admin_token.c_str(), 1);
    Daemon d(data(), {"--tls-listen", "127.0.0.1:0", "--tls-cert", cert.cert, "--tls-key", cert.key,
                      "--log-level", "error"});
    unsetenv("WARREN_ADMIN_TOKEN");
    Client reader(d.port);
    account(reader, "reader");
    for (int round = 0; round < 3; ++round) {
        SCOPED_TRACE("round " + std::to_string(round));
        std::string name = "tls" + std::to_string(round), room = "t" + std::to_string(round);
        TlsClient t(d.tls_port);
        ASSERT_TRUE(t.handshake_ok()) << t.error();
        ASSERT_TRUE(t.until_line("HELLO"));
        t.raw(json{{"id", 0}, {"op", "REGISTER"}, {"username", name}, {"password", "password1"}}
                  .dump() +
              "\n" + json{{"id", 0}, {"op", "CREATE_ROOM"}, {"room", room}}.dump() + "\n");
        ASSERT_TRUE(t.until_line("\"room\""));
        ASSERT_EQ(reader.call({{"op", "JOIN_ROOM"}, {"room", room}})["ok"], true);
        t.raw(messages(800, room, 1));
        HttpResponse act = http(d.admin_port, "POST", "/api/v1/admin/users/" + name + "/suspend",
                                R"({"duration_ms":3600000,"reason":"test"})", admin_token);
        ASSERT_EQ(act.status, 200) << act.body;
        Seen s = seen_json(t.rest(20'000));
        EXPECT_TRUE(t.closed_cleanly()) << "no close_notify";
        expect_answered_then_closed(true, false, s, "BLOCKED", 1);
        EXPECT_EQ(s.ok, stored_by(reader, room, name));
    }
}

}  // namespace
}  // namespace warren::test
