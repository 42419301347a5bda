// The IRC listener end to end: the real warrend over loopback, an IRC client speaking raw
// lines (SASL with the real argon2id), a JSON client beside it, and a real IRC client
// (weechat-headless) when the machine has one (scripts/test.sh installs it).
#include <gtest/gtest.h>
#include <sodium.h>
#include <spawn.h>
#include <sys/wait.h>

#include <fcntl.h>

#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "tests/loopback.h"
#include "tests/tls_client.h"

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
    // A config file of `text` beside the data directory; its path.
    std::string config(const std::string& name, const std::string& text) const {
        std::string path = (dir_ / name).string();
        std::ofstream(path) << text;
        return path;
    }
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

// A guest over loopback: NICK and USER are enough to chat (the guest of the IRC load
// generators and test suites); with [irc] guests = false the client is told why and closed.
TEST_F(IrcLoopback, AGuestChatsAndWithGuestsOffTheClientIsToldWhyAndClosed) {
    {
        Daemon d(data(), {"--irc-listen", "127.0.0.1:0"});
        Client c(d.irc_port);
        c.raw("NICK visitor\r\nUSER visitor 0 * :V\r\n");
        ASSERT_TRUE(until_line(c, " 001 visitor "));
        c.raw("JOIN #hall\r\nPRIVMSG #hall :hi\r\nPING :done\r\n");
        EXPECT_TRUE(until_line(c, ":visitor!visitor@warren JOIN #hall"));
        EXPECT_TRUE(until_line(c, "PONG"));
    }
    std::string conf = config("noguests.toml", "[irc]\nguests = false\n");
    Daemon d(data(), {"--config", conf, "--irc-listen", "127.0.0.1:0"});
    Client c(d.irc_port);
    c.raw("NICK nobody\r\nUSER nobody 0 * :N\r\n");
    EXPECT_TRUE(until_line(c, " 464 nobody :An account is needed"));
    EXPECT_TRUE(until_line(c, "ERROR :Closing link"));
    EXPECT_TRUE(c.closed_by_peer());
}

// Flood control over a real socket: a guest pastes 60 lines past its rate limit's burst of
// 30 (a limit of 10 lines a second here, so the test takes seconds); every line reaches the
// JSON client, in order, and the guest is told of no error (before flood control, 30 were
// dropped with only a server log line).
TEST_F(IrcLoopback, AGuestsPastePastTheRateLimitArrivesWholeAndInOrder) {
    std::string conf = config("rate.toml", "[rate]\nuser_per_min = 600\nip_per_min = 600\n");
    Daemon d(data(), {"--config", conf, "--irc-listen", "127.0.0.1:0"});
    Client alice(d.port);
    json_account(alice, "alice", "alice-pw-1");
    ASSERT_EQ(alice.call({{"op", "CREATE_ROOM"}, {"room", "den"}})["ok"], true);
    Client g(d.irc_port);
    g.raw("NICK paster\r\nUSER paster 0 * :P\r\nJOIN #den\r\n");
    ASSERT_TRUE(until_line(g, ":paster!paster@warren JOIN #den"));
    std::string paste;
    for (int i = 1; i <= 60; ++i) paste += "PRIVMSG #den :line " + std::to_string(i) + "\r\n";
    g.raw(paste + "PING :pasted\r\n");
    std::vector<std::string> told;
    for (std::optional<std::string> l; (l = g.text_line(20'000));) {
        told.push_back(*l);
        if (l->find("PONG") != std::string::npos) break;
    }
    ASSERT_FALSE(told.empty());
    EXPECT_NE(told.back().find("PONG"), std::string::npos) << "no PONG after the paste";
    for (const std::string& l : told) {
        EXPECT_EQ(l.find("NOTICE"), std::string::npos) << l;
        EXPECT_EQ(l.find("FAIL"), std::string::npos) << l;
    }
    std::vector<std::string> got;
    while (got.size() < 60) {
        std::optional<json> e = alice.line(10'000);
        if (!e) break;
        if (e->value("ev", "") == "MESSAGE") got.push_back((*e)["message"]["text"]);
    }
    ASSERT_EQ(got.size(), 60u);
    for (int i = 0; i < 60; ++i) EXPECT_EQ(got[i], "line " + std::to_string(i + 1));
}

// weechat-headless, run with a command script and a home of its own; stopped by its pid.
class Weechat {
  public:
    Weechat(const std::string& home, const std::string& script) {
        std::string bin = "/usr/bin/weechat-headless";
        std::vector<std::string> args = {bin, "--dir", home, "-r", script};
        std::vector<char*> argv;
        for (auto& a : args) argv.push_back(a.data());
        argv.push_back(nullptr);
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
        posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
        posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
        if (posix_spawn(&pid_, bin.c_str(), &fa, nullptr, argv.data(), environ) != 0) pid_ = -1;
        posix_spawn_file_actions_destroy(&fa);
    }
    ~Weechat() { stop(0); }
    bool started() const { return pid_ > 0; }
    // Waits up to timeout_ms for it to quit by itself, then kills it; true if it quit.
    bool stop(int timeout_ms) {
        if (pid_ <= 0) return true;
        auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
        int status = 0;
        do {
            if (waitpid(pid_, &status, WNOHANG) == pid_) {
                pid_ = -1;
                return true;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        } while (std::chrono::steady_clock::now() < until);
        kill(pid_, SIGKILL);
        waitpid(pid_, nullptr, 0);
        pid_ = -1;
        return false;
    }

  private:
    pid_t pid_ = -1;
};

std::string read_file(const std::filesystem::path& p) {
    std::ifstream in(p);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// "HH:MM:SS" of a Warren timestamp (ms since the epoch), in UTC: the clients below run with
// TZ=UTC and show a message's server-time.
std::string clock_of(int64_t ts_ms) {
    std::time_t t = ts_ms / 1000;
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[16];
    std::strftime(buf, sizeof buf, "%H:%M:%S", &tm);
    return buf;
}

// warrend's flags for an IRC TLS listener with `cert`.
std::vector<std::string> ircs_flags(const CertFiles& cert) {
    return {"--irc-tls-listen", "127.0.0.1:0", "--tls-cert", cert.cert, "--tls-key", cert.key};
}

// alice (JSON) owns #den; `name` gets an account over `reg` for a real client to log in with.
void alice_in_den_and(Client& alice, Client& reg, const std::string& name, const std::string& pw) {
    json_account(alice, "alice", "alice-pw-1");
    json_account(reg, name, pw);
    ASSERT_EQ(alice.call({{"op", "CREATE_ROOM"}, {"room", "den"}})["ok"], true);
}

void require_client(const char* path) {
    if (std::filesystem::exists(path)) return;
    if (std::getenv("WARREN_REQUIRE_IRC_CLIENTS"))
        FAIL() << path << " is not installed (scripts/deps.sh test installs it)";
    GTEST_SKIP() << path << " is not installed";
}

// A real IRC client: weechat logs in with SASL over TLS (trusting the test's certificate),
// is joined to its room, says something the JSON client reads, and logs what the JSON client
// says with the message's server-time.
TEST_F(IrcLoopback, WeechatLogsInOverTlsJoinsAndChatsWithAJsonClient) {
    require_client("/usr/bin/weechat-headless");
    if (HasFatalFailure() || IsSkipped()) return;
    CertFiles cert = write_self_signed(dir_.string(), "server", "localhost");
    Daemon d(data(), ircs_flags(cert));
    Client alice(d.port), reg(d.port);
    alice_in_den_and(alice, reg, "carol", "carol-pw-1");
    if (HasFatalFailure()) return;
    std::string home = (dir_ / "weechat").string();
    std::string p = std::to_string(d.ircs_port);
    ::setenv("TZ", "UTC", 1);  // inherited by weechat: its log shows times in UTC
    // weechat 3.8 names TLS "ssl".
    Weechat w(home, "/set logger.file.flush_delay 0;"
                    "/set weechat.network.gnutls_ca_user " + cert.cert + ";"
                    "/server add warren localhost/" + p + " -ssl;"
                    "/set irc.server.warren.sasl_mechanism plain;"
                    "/set irc.server.warren.sasl_username carol;"
                    "/set irc.server.warren.sasl_password carol-pw-1;"
                    "/set irc.server.warren.nicks carol;"
                    "/set irc.server.warren.autojoin #den;"
                    "/connect warren;"
                    "/wait 3 /msg -server warren #den hello from weechat;"
                    "/wait 6 /quit");
    ASSERT_TRUE(w.started());
    std::optional<json> joined = alice.event(15'000);
    ASSERT_TRUE(joined);
    EXPECT_EQ((*joined)["ev"], "MEMBER_JOINED");
    EXPECT_EQ((*joined)["user"], "carol");
    json sent = alice.call({{"op", "SEND_MESSAGE"}, {"room", "den"}, {"text", "hello weechat"}});
    ASSERT_EQ(sent["ok"], true);
    std::optional<json> said = alice.event(15'000);
    ASSERT_TRUE(said);
    EXPECT_EQ((*said)["ev"], "MESSAGE");
    EXPECT_EQ((*said)["message"]["author"], "carol");
    EXPECT_EQ((*said)["message"]["text"], "hello from weechat");
    EXPECT_TRUE(w.stop(20'000)) << "weechat did not quit by itself";
    std::string log = read_file(std::filesystem::path(home) / "logs" / "irc.warren.#den.weechatlog");
    std::string at = clock_of(sent["message"]["ts"].get<int64_t>());
    EXPECT_NE(log.find(at + "\t@alice\thello weechat"), std::string::npos) << at << "\n" << log;
    EXPECT_NE(log.find("carol (carol@warren) has joined #den"), std::string::npos) << log;
    std::string server_log =
        read_file(std::filesystem::path(home) / "logs" / "irc.server.warren.weechatlog");
    EXPECT_NE(server_log.find("peer's certificate is trusted"), std::string::npos) << server_log;
    EXPECT_NE(server_log.find("SASL authentication successful"), std::string::npos) << server_log;
}

// irssi in a tmux session of its own (a socket in the test directory): driven by keys, read
// from the screen, and every process it started stopped by its pid.
class TmuxIrssi {
  public:
    TmuxIrssi(const std::string& dir, const std::string& startup) : socket_(dir + "/tmux.sock") {
        std::string home = dir + "/irssi";
        std::filesystem::create_directories(home);
        std::ofstream(home + "/startup") << startup;
        ok_ = run({"/usr/bin/tmux", "-S", socket_, "new-session", "-d", "-s", "irssi", "-x", "160",
                   "-y", "50", "env TZ=UTC /usr/bin/irssi --home=" + home}) == 0;
        if (!ok_) return;
        std::string pids = output({"/usr/bin/tmux", "-S", socket_, "display-message", "-p", "-t",
                                   "irssi", "#{pid} #{pane_pid}"});
        std::istringstream in(pids);
        in >> server_pid_ >> pane_pid_;
        ok_ = server_pid_ > 0 && pane_pid_ > 0;
    }
    ~TmuxIrssi() {
        for (pid_t p : {pane_pid_, server_pid_})
            if (p > 0) ::kill(p, SIGKILL);
    }
    bool started() const { return ok_; }
    void keys(const std::string& text) {
        run({"/usr/bin/tmux", "-S", socket_, "send-keys", "-t", "irssi", "-l", text});
        run({"/usr/bin/tmux", "-S", socket_, "send-keys", "-t", "irssi", "Enter"});
    }
    std::string screen() {
        return output({"/usr/bin/tmux", "-S", socket_, "capture-pane", "-p", "-t", "irssi"});
    }
    // Waits until the screen shows `needle`; returns the screen.
    std::optional<std::string> wait_for(const std::string& needle, int timeout_ms = 15'000) {
        auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
        std::string s;
        while (std::chrono::steady_clock::now() < until) {
            s = screen();
            if (s.find(needle) != std::string::npos) return s;
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
        last_ = s;
        return std::nullopt;
    }
    const std::string& last_screen() const { return last_; }
    // True once irssi's process is gone (it quit), within timeout_ms.
    bool quit_within(int timeout_ms) {
        auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
        while (std::chrono::steady_clock::now() < until) {
            if (::kill(pane_pid_, 0) != 0) return true;
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
        return false;
    }

  private:
    static int run(std::vector<std::string> args) {
        std::vector<char*> argv;
        for (auto& a : args) argv.push_back(a.data());
        argv.push_back(nullptr);
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
        posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
        pid_t pid = -1;
        int status = -1;
        if (posix_spawn(&pid, argv[0], &fa, nullptr, argv.data(), environ) == 0)
            waitpid(pid, &status, 0);
        posix_spawn_file_actions_destroy(&fa);
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    }
    static std::string output(const std::vector<std::string>& args) {
        std::string cmd;
        for (const auto& a : args) cmd += "'" + a + "' ";
        std::string out;
        if (FILE* p = popen((cmd + "2>/dev/null").c_str(), "r")) {
            char buf[4096];
            size_t n;
            while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
            pclose(p);
        }
        return out;
    }
    std::string socket_;
    pid_t server_pid_ = -1, pane_pid_ = -1;
    bool ok_ = false;
    std::string last_;
};

// irssi logs in with SASL over TLS (checking the certificate against the test's), joins,
// speaks, shows what the JSON client says at its server-time, and quits.
TEST_F(IrcLoopback, IrssiInTmuxLogsInOverTlsAndChatsWithAJsonClient) {
    require_client("/usr/bin/irssi");
    require_client("/usr/bin/tmux");
    if (HasFatalFailure() || IsSkipped()) return;
    CertFiles cert = write_self_signed(dir_.string(), "server", "localhost");
    Daemon d(data(), ircs_flags(cert));
    Client alice(d.port), reg(d.port);
    alice_in_den_and(alice, reg, "erin", "erin-pw-12");
    if (HasFatalFailure()) return;
    // localhost: irssi checks the certificate's DNS names, not its IP addresses.
    TmuxIrssi irssi(dir_.string(),
                    "/set timestamp_format %H:%M:%S\n"
                    "/network add -sasl_mechanism PLAIN -sasl_username erin -sasl_password "
                    "erin-pw-12 -nick erin -autosendcmd \"/join #den\" warren\n"
                    "/server add -tls -tls_cafile " + cert.cert + " -network warren localhost " +
                        std::to_string(d.ircs_port) + "\n"
                    "/connect warren\n");
    ASSERT_TRUE(irssi.started());
    std::optional<json> joined = alice.event(15'000);
    ASSERT_TRUE(joined);
    EXPECT_EQ((*joined)["ev"], "MEMBER_JOINED");
    EXPECT_EQ((*joined)["user"], "erin");
    ASSERT_TRUE(irssi.wait_for("Total of 2 nicks")) << irssi.last_screen();

    irssi.keys("/msg #den hello from irssi");
    std::optional<json> said = alice.event(15'000);
    ASSERT_TRUE(said);
    EXPECT_EQ((*said)["message"]["author"], "erin");
    EXPECT_EQ((*said)["message"]["text"], "hello from irssi");

    json sent = alice.call({{"op", "SEND_MESSAGE"}, {"room", "den"}, {"text", "hello irssi"}});
    ASSERT_EQ(sent["ok"], true);
    std::string at = clock_of(sent["message"]["ts"].get<int64_t>());
    EXPECT_TRUE(irssi.wait_for(at + " <@alice> hello irssi")) << at << "\n" << irssi.last_screen();

    irssi.keys("/quit done");
    EXPECT_TRUE(irssi.quit_within(10'000));
}

}  // namespace
}  // namespace warren::test
