// The IRC listener end to end: the real warrend over loopback, an IRC client speaking raw
// lines (SASL with the real argon2id), a JSON client beside it, and a real IRC client
// (weechat-headless) when the machine has one (scripts/test.sh installs it).
#include <gtest/gtest.h>
#include <sodium.h>
#include <spawn.h>
#include <sys/wait.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "tests/loopback.h"

namespace warren::test {
namespace {

class IrcLoopback : public ::testing::Test {
  protected:
    void SetUp() override {
        dir_ = std::filesystem::temp_directory_path() /
               ("warren-irc-e2e-" + std::to_string(::getpid()) + "-" +
                ::testing::UnitTest::GetInstance()->current_test_info()->name());
        std::filesystem::remove_all(dir_);
        std::filesystem::create_directories(dir_);
    }
    void TearDown() override { std::filesystem::remove_all(dir_); }
    std::string data() const { return (dir_ / "data").string(); }
    std::filesystem::path dir_;
};

std::string base64(const std::string& bin) {
    std::string out(sodium_base64_ENCODED_LEN(bin.size(), sodium_base64_VARIANT_ORIGINAL), '\0');
    sodium_bin2base64(out.data(), out.size(), reinterpret_cast<const unsigned char*>(bin.data()),
                      bin.size(), sodium_base64_VARIANT_ORIGINAL);
    out.resize(out.size() - 1);
    return out;
}

// Reads lines until one contains `needle` (returned), or nullopt after the timeout.
std::optional<std::string> until_line(Client& c, std::string_view needle, int timeout_ms = 10'000) {
    auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (std::chrono::steady_clock::now() < until) {
        std::optional<std::string> l = c.text_line(timeout_ms);
        if (!l) return std::nullopt;
        if (l->find(needle) != std::string::npos) return l;
    }
    return std::nullopt;
}

json json_account(Client& c, const std::string& name, const std::string& pw) {
    EXPECT_EQ(c.line().value_or(json{})["ev"], "HELLO");
    json r = c.call({{"op", "REGISTER"}, {"username", name}, {"password", pw}});
    EXPECT_EQ(r["ok"], true) << r;
    return r;
}

TEST_F(IrcLoopback, RawClientChatsWithAJsonClientAndWhatItSaidSurvivesKill9) {
    int64_t said_id = 0;
    {
        Daemon d(data(), {"--irc-listen", "127.0.0.1:0"});
        ASSERT_NE(d.irc_port, 0);
        Client alice(d.port), reg(d.port);
        json_account(alice, "alice", "alice-pw-1");
        json_account(reg, "bob", "bob-pw-123");
        ASSERT_EQ(alice.call({{"op", "CREATE_ROOM"}, {"room", "den"}})["ok"], true);

        Client bob(d.irc_port);
        bob.raw("CAP LS 302\r\nNICK bob\r\nUSER bob 0 * :Bob\r\nCAP REQ :sasl message-tags "
                "echo-message\r\nAUTHENTICATE PLAIN\r\n");
        ASSERT_TRUE(until_line(bob, "AUTHENTICATE +"));
        bob.raw("AUTHENTICATE " + base64(std::string("\0bob\0bob-pw-123", 15)) +
                "\r\nCAP END\r\n");
        ASSERT_TRUE(until_line(bob, " 903 bob "));
        ASSERT_TRUE(until_line(bob, " 001 bob "));
        bob.raw("JOIN #den\r\n");
        ASSERT_TRUE(until_line(bob, " 366 bob #den "));
        ASSERT_TRUE(alice.event().has_value());  // MEMBER_JOINED

        json m = alice.call({{"op", "SEND_MESSAGE"}, {"room", "den"}, {"text", "hi bob"}});
        ASSERT_EQ(m["ok"], true);
        std::optional<std::string> got = until_line(bob, "PRIVMSG #den :hi bob");
        ASSERT_TRUE(got);
        EXPECT_NE(got->find("msgid=" + std::to_string(m["message"]["id"].get<int64_t>())),
                  std::string::npos);

        // The echo and the PONG behind it: the PONG comes last.
        bob.raw("PRIVMSG #den :hello alice\r\nPING :sync\r\n");
        std::optional<std::string> echo = bob.text_line();
        ASSERT_TRUE(echo);
        EXPECT_NE(echo->find("PRIVMSG #den :hello alice"), std::string::npos) << *echo;
        EXPECT_EQ(bob.text_line(), ":warren.local PONG warren.local :sync");
        std::optional<json> ev = alice.event();
        ASSERT_TRUE(ev);
        EXPECT_EQ((*ev)["message"]["text"], "hello alice");
        said_id = (*ev)["message"]["id"];
        EXPECT_EQ(d.stop(SIGKILL), 128 + SIGKILL);
    }
    Daemon d(data(), {"--irc-listen", "127.0.0.1:0"});
    Client alice(d.port);
    EXPECT_EQ(alice.line().value_or(json{})["ev"], "HELLO");
    ASSERT_EQ(alice.call({{"op", "LOGIN"}, {"username", "alice"}, {"password", "alice-pw-1"}})["ok"],
              true);
    json page = alice.call({{"op", "HISTORY"}, {"room", "den"}});
    ASSERT_EQ(page["ok"], true) << page;
    ASSERT_FALSE(page["messages"].empty());
    EXPECT_EQ(page["messages"].back()["id"], said_id);
    EXPECT_EQ(page["messages"].back()["author"], "bob");
}

TEST_F(IrcLoopback, WithoutAnAccountTheClientIsToldWhyAndClosed) {
    Daemon d(data(), {"--irc-listen", "127.0.0.1:0"});
    Client c(d.irc_port);
    c.raw("NICK nobody\r\nUSER nobody 0 * :N\r\n");
    EXPECT_TRUE(until_line(c, " 464 nobody :An account is needed"));
    EXPECT_TRUE(until_line(c, "ERROR :Closing link"));
    EXPECT_TRUE(c.closed_by_peer());
}

}  // namespace
}  // namespace warren::test
