// TLS on every listener, end to end: the real warrend over loopback with a certificate made
// here, a JSON client and an IRC client over TLS (the IRC one showing a client certificate),
// the admin API over HTTPS, old protocol versions refused, the handshake deadline, a
// certificate reload on SIGHUP that drops no connection, and the STS policy.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "tests/loopback.h"
#include "tests/tls_client.h"

namespace warren::test {
namespace {

class TlsLoopback : public ::testing::Test {
  protected:
    void SetUp() override {
        dir_ = std::filesystem::temp_directory_path() /
               ("warren-tls-e2e-" + std::to_string(::getpid()) + "-" +
                ::testing::UnitTest::GetInstance()->current_test_info()->name());
        std::filesystem::remove_all(dir_);
        std::filesystem::create_directories(dir_);
        server_ = write_self_signed(dir_.string(), "server", "warren.test");
    }
    void TearDown() override { std::filesystem::remove_all(dir_); }
    std::string data() const { return (dir_ / "data").string(); }
    // The unlimited test config plus `extra` TOML, written to a file; returns its path.
    std::string config(const std::string& extra) const {
        std::string path = (dir_ / "warren.toml").string();
        std::ofstream(path) << unlimited_config << extra;
        return path;
    }
    std::vector<std::string> tls_flags() const {
        return {"--tls-cert", server_.cert, "--tls-key", server_.key};
    }
    std::filesystem::path dir_;
    CertFiles server_;
};

json parse(const std::optional<std::string>& line) {
    return line ? json::parse(*line, nullptr, false) : json{};
}

// Sends a JSON request over TLS and returns its reply (events before it are skipped).
json call(TlsClient& c, json req, int64_t id) {
    req["id"] = id;
    c.raw(req.dump() + "\n");
    for (int i = 0; i < 100; ++i) {
        json l = parse(c.text_line());
        if (l.is_null()) break;
        if (l.contains("re") && l["re"] == id) return l;
    }
    return json{};
}

TEST_F(TlsLoopback, JsonAndIrcClientsOverTlsChatAndWhoisShowsTheClientCertificate) {
    std::vector<std::string> args = tls_flags();
    args.insert(args.end(), {"--tls-listen", "127.0.0.1:0", "--irc-tls-listen", "127.0.0.1:0"});
    Daemon d(data(), args);
    ASSERT_NE(d.tls_port, 0);
    ASSERT_NE(d.ircs_port, 0);

    TlsClient alice(d.tls_port);
    ASSERT_TRUE(alice.handshake_ok()) << alice.error();
    EXPECT_EQ(alice.version(), "TLSv1.3");
    EXPECT_EQ(alice.server_fingerprint(), fingerprint_of_file(server_.cert));
    EXPECT_EQ(parse(alice.text_line())["ev"], "HELLO");
    ASSERT_EQ(call(alice, {{"op", "REGISTER"}, {"username", "alice"}, {"password", "alice-pw-1"}},
                   1)["ok"],
              true);
    ASSERT_EQ(call(alice, {{"op", "CREATE_ROOM"}, {"room", "den"}}, 2)["ok"], true);

    CertFiles mine = write_self_signed(dir_.string(), "visitor", "visitor");
    TlsClient irc(d.ircs_port, {.client_cert = &mine});
    ASSERT_TRUE(irc.handshake_ok()) << irc.error();
    irc.raw("NICK visitor\r\nUSER visitor 0 * :V\r\n");
    ASSERT_TRUE(irc.until_line(" 001 visitor "));
    irc.raw("WHOIS visitor\r\n");
    std::optional<std::string> secure = irc.until_line(" 671 visitor visitor ");
    ASSERT_TRUE(secure);
    std::optional<std::string> certfp = irc.until_line(" 276 visitor visitor ");
    ASSERT_TRUE(certfp);
    EXPECT_NE(certfp->find(fingerprint_of_file(mine.cert)), std::string::npos) << *certfp;
    irc.raw("JOIN #den\r\n");
    ASSERT_TRUE(irc.until_line(" 366 visitor #den "));

    json sent = call(alice, {{"op", "SEND_MESSAGE"}, {"room", "den"}, {"text", "over tls"}}, 3);
    ASSERT_EQ(sent["ok"], true) << sent;
    EXPECT_TRUE(irc.until_line("PRIVMSG #den :over tls"));
    irc.raw("PRIVMSG #den :and back\r\n");
    bool seen = false;
    for (int i = 0; i < 10 && !seen; ++i) {
        json ev = parse(alice.text_line());
        seen = ev.value("ev", "") == "MESSAGE" && ev["message"]["text"] == "and back";
    }
    EXPECT_TRUE(seen);

    // Alice's only connection is TLS (671); her fingerprint, had she one, is hers alone.
    irc.raw("WHOIS alice\r\nPING :end\r\n");
    std::string whois;
    for (std::optional<std::string> l; (l = irc.text_line()) && l->find("PONG") == std::string::npos;)
        whois += *l + "\n";
    EXPECT_NE(whois.find(" 671 visitor alice :is using a secure connection"), std::string::npos)
        << whois;
    EXPECT_EQ(whois.find(" 276 "), std::string::npos) << whois;
}

TEST_F(TlsLoopback, OldVersionsAreRefusedAndASilentClientIsClosedAtTheHandshakeDeadline) {
    std::vector<std::string> args = tls_flags();
    args.insert(args.end(), {"--config", config("[tls]\nhandshake_timeout_ms = 300\n"),
                             "--irc-tls-listen", "127.0.0.1:0"});
    Daemon d(data(), args);
    TlsClient old(d.ircs_port, {.max_version = TLS1_1_VERSION});
    EXPECT_FALSE(old.handshake_ok());

    // A client that connects and never starts a handshake.
    Client silent(d.ircs_port);
    auto t0 = std::chrono::steady_clock::now();
    EXPECT_TRUE(silent.closed_by_peer(5'000));
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(4));

    // The listener still serves.
    TlsClient fine(d.ircs_port);
    ASSERT_TRUE(fine.handshake_ok()) << fine.error();
    fine.raw("PING :x\r\n");
    EXPECT_TRUE(fine.until_line("PONG"));
}

TEST_F(TlsLoopback, SighupReloadsTheCertificateForNewConnectionsAndDropsNone) {
    std::vector<std::string> args = tls_flags();
    args.insert(args.end(), {"--irc-tls-listen", "127.0.0.1:0"});
    Daemon d(data(), args);
    std::string first = fingerprint_of_file(server_.cert);
    TlsClient before(d.ircs_port);
    ASSERT_TRUE(before.handshake_ok()) << before.error();
    EXPECT_EQ(before.server_fingerprint(), first);

    // The files are replaced (a renewal), then SIGHUP.
    CertFiles renewed = write_self_signed(dir_.string(), "renewed", "warren.test");
    std::filesystem::copy_file(renewed.cert, server_.cert,
                               std::filesystem::copy_options::overwrite_existing);
    std::filesystem::copy_file(renewed.key, server_.key,
                               std::filesystem::copy_options::overwrite_existing);
    std::string second = fingerprint_of_file(server_.cert);
    ASSERT_NE(first, second);
    ASSERT_EQ(::kill(d.pid(), SIGHUP), 0);
    bool reloaded = false;
    for (int i = 0; i < 100 && !reloaded; ++i) {
        TlsClient probe(d.ircs_port);
        reloaded = probe.handshake_ok() && probe.server_fingerprint() == second;
        if (!reloaded) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    EXPECT_TRUE(reloaded);
    // The connection made before the reload still works.
    before.raw("PING :still\r\n");
    EXPECT_TRUE(before.until_line("PONG"));

    // A broken file is refused: the renewed certificate stays in use.
    std::ofstream(server_.cert) << "not a certificate\n";
    ASSERT_EQ(::kill(d.pid(), SIGHUP), 0);
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    TlsClient after(d.ircs_port);
    ASSERT_TRUE(after.handshake_ok()) << after.error();
    EXPECT_EQ(after.server_fingerprint(), second);
}

TEST_F(TlsLoopback, TheAdminApiAnswersOverHttps) {
    std::vector<std::string> args = tls_flags();
    args.insert(args.end(), {"--config", config("[admin]\ntls = true\n")});
    Daemon d(data(), args);
    TlsClient https(d.admin_port);
    ASSERT_TRUE(https.handshake_ok()) << https.error();
    https.raw("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    std::string response = https.rest();
    EXPECT_EQ(response.rfind("HTTP/1.1 200", 0), 0u) << response;
    // Plain HTTP on the same port gets no answer.
    HttpResponse plain = http(d.admin_port, "GET", "/healthz", {}, {}, 2'000);
    EXPECT_EQ(plain.status, 0);
}

TEST_F(TlsLoopback, StsSendsPlaintextClientsToTheTlsPortAndTellsTlsClientsHowLong) {
    std::vector<std::string> args = tls_flags();
    args.insert(args.end(), {"--config", config("[irc]\nsts_duration_s = 86400\nsts_port = 6697\n"),
                             "--irc-listen", "127.0.0.1:0", "--irc-tls-listen", "127.0.0.1:0"});
    Daemon d(data(), args);
    Client plain(d.irc_port);
    plain.raw("CAP LS 302\r\n");
    std::optional<std::string> ls = plain.text_line();
    ASSERT_TRUE(ls);
    EXPECT_NE(ls->find(" sts=port=6697"), std::string::npos) << *ls;
    EXPECT_EQ(ls->find("duration"), std::string::npos) << *ls;

    TlsClient secure(d.ircs_port);
    ASSERT_TRUE(secure.handshake_ok()) << secure.error();
    secure.raw("CAP LS 302\r\n");
    std::optional<std::string> tls_ls = secure.text_line();
    ASSERT_TRUE(tls_ls);
    EXPECT_NE(tls_ls->find(" sts=duration=86400"), std::string::npos) << *tls_ls;
    // STS is a policy, not a capability to request.
    secure.raw("CAP REQ :sts\r\n");
    EXPECT_TRUE(secure.until_line("CAP * NAK :sts"));
}

std::string base64(const std::string& s) {
    static constexpr char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    for (size_t i = 0; i < s.size(); i += 3) {
        uint32_t v = static_cast<uint8_t>(s[i]) << 16;
        if (i + 1 < s.size()) v |= static_cast<uint8_t>(s[i + 1]) << 8;
        if (i + 2 < s.size()) v |= static_cast<uint8_t>(s[i + 2]);
        out += a[(v >> 18) & 63];
        out += a[(v >> 12) & 63];
        out += i + 1 < s.size() ? a[(v >> 6) & 63] : '=';
        out += i + 2 < s.size() ? a[v & 63] : '=';
    }
    return out;
}

// "AB:CD:..." as a client shows a fingerprint.
std::string paired_upper(const std::string& hex) {
    std::string out;
    for (size_t i = 0; i < hex.size(); i += 2) {
        if (i > 0) out += ':';
        out += static_cast<char>(std::toupper(static_cast<unsigned char>(hex[i])));
        out += static_cast<char>(std::toupper(static_cast<unsigned char>(hex[i + 1])));
    }
    return out;
}

// SASL EXTERNAL over IRC on TLS, and what happens without the right certificate. Returns the
// lines up to and including the SASL outcome (903 or 904).
std::string sasl_external(TlsClient& irc, const std::string& nick, const std::string& authzid) {
    irc.raw("CAP LS 302\r\nNICK " + nick + "\r\nUSER " + nick + " 0 * :x\r\nCAP REQ :sasl\r\n" +
            "AUTHENTICATE EXTERNAL\r\n");
    std::string seen;
    for (std::optional<std::string> l; (l = irc.text_line());) {
        seen += *l + "\n";
        if (*l == "AUTHENTICATE +") irc.raw("AUTHENTICATE " + (authzid.empty() ? "+" : base64(authzid)) + "\r\n");
        if (l->find(" 903 ") != std::string::npos || l->find(" 904 ") != std::string::npos) break;
    }
    return seen;
}

TEST_F(TlsLoopback, SaslExternalLogsInWithACertificateBoundToTheAccount) {
    std::vector<std::string> args = tls_flags();
    args.insert(args.end(), {"--irc-tls-listen", "127.0.0.1:0"});
    CertFiles mine = write_self_signed(dir_.string(), "alice", "alice");
    CertFiles other = write_self_signed(dir_.string(), "mallory", "mallory");
    std::string fp = fingerprint_of_file(mine.cert);
    {
        Daemon d(data(), args);
        Client alice(d.port), bob(d.port);
        EXPECT_EQ(alice.line().value_or(json{})["ev"], "HELLO");
        EXPECT_EQ(bob.line().value_or(json{})["ev"], "HELLO");
        ASSERT_EQ(alice.call({{"op", "REGISTER"}, {"username", "alice"}, {"password", "alice-pw-1"}})["ok"], true);
        ASSERT_EQ(bob.call({{"op", "REGISTER"}, {"username", "bob"}, {"password", "bob-pw-123"}})["ok"], true);
        // The form clients show (pairs, upper case) is stored as 64 lower-case digits.
        json added = alice.call({{"op", "ADD_CERTIFICATE"}, {"fingerprint", paired_upper(fp)}});
        ASSERT_EQ(added["ok"], true) << added;
        json listed = alice.call({{"op", "LIST_CERTIFICATES"}});
        ASSERT_EQ(listed["certificates"].size(), 1u) << listed;
        EXPECT_EQ(listed["certificates"][0]["fingerprint"], fp);
        json taken = bob.call({{"op", "ADD_CERTIFICATE"}, {"fingerprint", fp}});
        EXPECT_EQ(taken["error"]["code"], "CONFLICT") << taken;
        json bad = bob.call({{"op", "ADD_CERTIFICATE"}, {"fingerprint", "12:34"}});
        EXPECT_EQ(bad["error"]["code"], "BAD_REQUEST") << bad;
        EXPECT_EQ(bad["error"]["field"], "fingerprint") << bad;

        // A certificate nobody bound: 904, and the client may go on as a guest.
        TlsClient stranger(d.ircs_port, {.client_cert = &other});
        ASSERT_TRUE(stranger.handshake_ok()) << stranger.error();
        std::string refused = sasl_external(stranger, "mal", "");
        EXPECT_NE(refused.find("sasl=EXTERNAL,PLAIN"), std::string::npos) << refused;
        EXPECT_NE(refused.find(" 904 "), std::string::npos) << refused;
        // No certificate at all: EXTERNAL is not offered.
        TlsClient bare(d.ircs_port);
        ASSERT_TRUE(bare.handshake_ok()) << bare.error();
        std::string none = sasl_external(bare, "nobody", "");
        EXPECT_NE(none.find("sasl=PLAIN"), std::string::npos) << none;
        EXPECT_NE(none.find(" 908 nobody PLAIN :"), std::string::npos) << none;
        // The right certificate with someone else's name as authorization identity: refused.
        TlsClient wrong_name(d.ircs_port, {.client_cert = &mine});
        EXPECT_NE(sasl_external(wrong_name, "alice", "bob").find(" 904 "), std::string::npos);
    }
    // After a restart (the binding is stored), the certificate logs alice in.
    {
        Daemon d(data(), args);
        TlsClient irc(d.ircs_port, {.client_cert = &mine});
        ASSERT_TRUE(irc.handshake_ok()) << irc.error();
        std::string ok = sasl_external(irc, "whoever", "alice");
        EXPECT_NE(ok.find(" 900 "), std::string::npos) << ok;
        EXPECT_NE(ok.find("You are now logged in as alice"), std::string::npos) << ok;
        irc.raw("CAP END\r\n");
        EXPECT_TRUE(irc.until_line(" 001 alice "));

        // Removed, it logs nobody in.
        Client alice(d.port);
        EXPECT_EQ(alice.line().value_or(json{})["ev"], "HELLO");
        ASSERT_EQ(alice.call({{"op", "LOGIN"}, {"username", "alice"}, {"password", "alice-pw-1"}})["ok"], true);
        ASSERT_EQ(alice.call({{"op", "REMOVE_CERTIFICATE"}, {"fingerprint", fp}})["ok"], true);
        EXPECT_EQ(alice.call({{"op", "REMOVE_CERTIFICATE"}, {"fingerprint", fp}})["error"]["code"],
                  "NOT_FOUND");
        TlsClient again(d.ircs_port, {.client_cert = &mine});
        ASSERT_TRUE(again.handshake_ok()) << again.error();
        EXPECT_NE(sasl_external(again, "alice2", "").find(" 904 "), std::string::npos);
    }
}

// `warren --ca-file` checks the server's certificate and its name; a certificate it does not
// trust ends the run with the reason.
TEST_F(TlsLoopback, TheCommandLineClientSpeaksTlsAndChecksTheCertificate) {
    std::vector<std::string> args = tls_flags();
    args.insert(args.end(), {"--tls-listen", "127.0.0.1:0"});
    Daemon d(data(), args);
    std::string base = bin_dir() + "/warren -s 127.0.0.1:" +
                       std::to_string(d.tls_port);
    auto run = [](const std::string& cmd, int& status) {
        std::string out;
        FILE* p = popen(cmd.c_str(), "r");
        char buf[4096];
        size_t n;
        while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
        status = WEXITSTATUS(pclose(p));
        return out;
    };
    int st = -1;
    std::string out =
        run(base + " --ca-file " + server_.cert + " -u erin -p erin-pass --register create hut 2>&1",
            st);
    EXPECT_EQ(st, 0) << out;
    out = run(base + " --ca-file " + server_.cert + " -u erin -p erin-pass send hut 'sealed' 2>&1",
              st);
    EXPECT_EQ(st, 0) << out;
    out = run(base + " --ca-file " + server_.cert + " -u erin -p erin-pass history hut 2>&1", st);
    EXPECT_NE(out.find("erin: sealed"), std::string::npos) << out;

    CertFiles stranger = write_self_signed(dir_.string(), "stranger", "warren.test");
    out = run(base + " --ca-file " + stranger.cert + " ping 2>&1", st);
    EXPECT_EQ(st, 2) << out;
    EXPECT_NE(out.find("certificate"), std::string::npos) << out;
}

TEST_F(TlsLoopback, ATlsListenerWithoutACertificateIsAConfigurationError) {
    std::string bin = bin_dir() + "/warrend";
    std::string cmd = bin + " --data-dir " + data() + " --tls-listen 127.0.0.1:0 2>&1";
    FILE* p = popen(cmd.c_str(), "r");
    ASSERT_NE(p, nullptr);
    std::string out;
    char buf[512];
    while (fgets(buf, sizeof buf, p)) out += buf;
    int status = pclose(p);
    EXPECT_EQ(WEXITSTATUS(status), 2) << out;
    EXPECT_NE(out.find("tls.cert_file"), std::string::npos) << out;

    // A key that does not match the certificate is refused at start, with the reason.
    CertFiles other = write_self_signed(dir_.string(), "other", "other");
    cmd = bin + " --data-dir " + data() + " --listen 127.0.0.1:0 --admin-listen off" +
          " --tls-listen 127.0.0.1:0 --tls-cert " + server_.cert + " --tls-key " + other.key +
          " 2>&1";
    p = popen(cmd.c_str(), "r");
    ASSERT_NE(p, nullptr);
    out.clear();
    while (fgets(buf, sizeof buf, p)) out += buf;
    status = pclose(p);
    EXPECT_EQ(WEXITSTATUS(status), 1) << out;
    EXPECT_NE(out.find("does not match"), std::string::npos) << out;
}

}  // namespace
}  // namespace warren::test
