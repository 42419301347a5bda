// The admin HTTP API and the security refusals against the real `warrend` over 127.0.0.1:
// every endpoint, authentication, bad requests (400, 401, 404, 405, 413), blocks and
// suspensions acting on open connections, persistence across a restart, the Prometheus
// exposition checked by `promtool check metrics`, JSON logs, and the refusals of issue 5 with
// config overrides. Clients speak from several loopback addresses (127.0.0.x) to look like
// several hosts.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "loopback.h"

namespace warren::test {
namespace {

const std::string token = "test-admin-token-0123456789";

std::string fresh_dir(const std::string& name) {
    auto dir = std::filesystem::temp_directory_path() /
               ("warren-admin-e2e-" + name + "-" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    return dir.string();
}

std::string write_config(const std::string& dir, const std::string& text) {
    std::string path = dir + "/warren.toml";
    std::ofstream(path) << text;
    return path;
}

// Generous limits, but only 127.0.0.1 allowlisted: other loopback addresses can be blocked.
const char* admin_config = R"toml(
[rate]
user_per_min = 100000
user_burst = 100000
ip_per_min = 100000
ip_burst = 100000
[security]
allowlist = ["127.0.0.1/32"]
)toml";

json body_json(const HttpResponse& r) {
    return json::parse(r.body);
}

void hello(Client& c) {
    auto h = c.line();
    ASSERT_TRUE(h);
    ASSERT_EQ((*h)["ev"], "HELLO");
}

class AdminApi : public ::testing::Test {
  protected:
    void SetUp() override {
        setenv("WARREN_ADMIN_TOKEN", token.c_str(), 1);
        // One directory per test: ctest runs tests in parallel.
        dir = fresh_dir(::testing::UnitTest::GetInstance()->current_test_info()->name());
        cfg = write_config(dir, admin_config);
        d = std::make_unique<Daemon>(dir, std::vector<std::string>{"--config", cfg});
        unsetenv("WARREN_ADMIN_TOKEN");
        ASSERT_NE(d->admin_port, 0);
    }
    HttpResponse get(const std::string& target) {
        return http(d->admin_port, "GET", target, {}, token);
    }
    HttpResponse post(const std::string& target, const std::string& body = "{}") {
        return http(d->admin_port, "POST", target, body, token);
    }
    std::string dir, cfg;
    std::unique_ptr<Daemon> d;
};

TEST_F(AdminApi, HealthReadyMetricsReportAlerts) {
    EXPECT_EQ(get("/healthz").status, 200);
    auto ready = get("/readyz");
    EXPECT_EQ(ready.status, 200);
    EXPECT_EQ(body_json(ready)["status"], "ready");
    Client c(d->port);
    hello(c);
    c.call({{"op", "REGISTER"}, {"username", "alice"}, {"password", "password1"}});
    c.call({{"op", "JOIN_ROOM"}, {"room", "nowhere"}});
    auto m = get("/api/v1/admin/performance/metrics");
    ASSERT_EQ(m.status, 200);
    EXPECT_NE(m.headers.find("content-type: application/json"), std::string::npos);
    auto j = body_json(m);
    EXPECT_EQ(j["ops"]["REGISTER"]["count"], 1);
    EXPECT_EQ(j["ops"]["JOIN_ROOM"]["errors"]["NOT_FOUND"], 1);
    EXPECT_EQ(j["connections"]["open"], 1);
    EXPECT_GT(j["process"]["rss_bytes"].get<int64_t>(), 0);
    EXPECT_GT(j["process"]["open_files"].get<int64_t>(), 0);
    auto report = get("/api/v1/admin/performance/report");
    ASSERT_EQ(report.status, 200);
    EXPECT_EQ(body_json(report)["status"], "ok");
    auto alerts = get("/api/v1/admin/performance/alerts");
    ASSERT_EQ(alerts.status, 200);
    EXPECT_TRUE(body_json(alerts)["active"].is_array());
    auto cleared = post("/api/v1/admin/performance/alerts", R"({"rule":"latency_p99"})");
    ASSERT_EQ(cleared.status, 200);
    EXPECT_EQ(body_json(cleared)["cleared"], 0);
}

TEST_F(AdminApi, PrometheusExpositionPassesPromtool) {
    Client c(d->port);
    hello(c);
    c.call({{"op", "REGISTER"}, {"username", "alice"}, {"password", "password1"}});
    c.call({{"op", "PING"}});
    auto m = get("/metrics");
    ASSERT_EQ(m.status, 200);
    EXPECT_NE(m.headers.find("content-type: text/plain; version=0.0.4"), std::string::npos);
    EXPECT_NE(m.body.find("warren_requests_total{op=\"PING\"} 1"), std::string::npos);
    std::string file = dir + "/metrics.txt";
    std::ofstream(file) << m.body;
    ASSERT_EQ(std::system("command -v promtool >/dev/null"), 0)
        << "promtool is missing: scripts/deps.sh test installs Debian's prometheus package";
    std::string cmd = "promtool check metrics < " + file + " > " + dir + "/promtool.out 2>&1";
    int rc = std::system(cmd.c_str());
    std::ifstream out(dir + "/promtool.out");
    std::stringstream ss;
    ss << out.rdbuf();
    EXPECT_EQ(rc, 0) << ss.str();
    EXPECT_EQ(ss.str(), "") << "promtool has lint findings";
}

TEST_F(AdminApi, AuthenticationAndBadRequests) {
    EXPECT_EQ(http(d->admin_port, "GET", "/metrics").status, 401);
    auto wrong = http(d->admin_port, "GET", "/metrics", {}, "not-the-token");
    EXPECT_EQ(wrong.status, 401);
    EXPECT_NE(wrong.headers.find("www-authenticate: bearer"), std::string::npos);
    EXPECT_EQ(body_json(wrong)["error"]["status"], 401);
    EXPECT_EQ(get("/api/v1/admin/nothing-here").status, 404);
    auto method = http(d->admin_port, "PUT", "/metrics", "x", token);
    EXPECT_EQ(method.status, 405);
    EXPECT_NE(method.headers.find("allow: get"), std::string::npos);
    EXPECT_EQ(post("/api/v1/admin/security/blocks", "{not json").status, 400);
    EXPECT_EQ(post("/api/v1/admin/security/blocks", R"({"duration_ms": 5})").status, 400);
    EXPECT_EQ(post("/api/v1/admin/security/blocks", R"({"ip":"999.1.1.1"})").status, 400);
    EXPECT_EQ(
        post("/api/v1/admin/security/blocks", R"({"ip":"127.0.0.9","duration_ms":-1})").status,
        400);
    EXPECT_EQ(get("/api/v1/admin/audit?limit=abc").status, 400);
    EXPECT_EQ(post("/api/v1/admin/users/nobody/suspend").status, 404);
    auto big = post("/api/v1/admin/security/blocks", std::string(20 * 1024, ' '));
    EXPECT_EQ(big.status, 413);
    // The chat port kept working throughout.
    Client c(d->port);
    hello(c);
    EXPECT_EQ(c.call({{"op", "PING"}})["ok"], true);
}

TEST_F(AdminApi, BlockActsOnOpenConnectionsAndIsListedAuditedAndLifted) {
    Client victim(d->port, "127.0.0.2");
    hello(victim);
    auto r = post("/api/v1/admin/security/blocks",
                  R"({"ip":"127.0.0.2","duration_ms":600000,"reason":"abuse report"})");
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(body_json(r)["block"]["ip"], "127.0.0.2");
    auto bye = victim.line(5000);
    ASSERT_TRUE(bye);
    EXPECT_EQ((*bye)["ev"], "DISCONNECT");
    EXPECT_EQ((*bye)["reason"], "BLOCKED");
    EXPECT_GT((*bye)["retry_after_ms"].get<int64_t>(), 590'000);
    EXPECT_TRUE(victim.closed_by_peer(5000));
    Client again(d->port, "127.0.0.2");
    auto refused = again.line(5000);
    ASSERT_TRUE(refused);
    EXPECT_EQ((*refused)["reason"], "BLOCKED");  // no HELLO
    auto list = body_json(get("/api/v1/admin/security/blocks"));
    ASSERT_EQ(list["blocks"].size(), 1u);
    EXPECT_EQ(list["blocks"][0]["reason"], "abuse report");
    EXPECT_EQ(post("/api/v1/admin/security/blocks", R"({"ip":"127.0.0.1"})").status, 409);
    EXPECT_EQ(
        http(d->admin_port, "DELETE", "/api/v1/admin/security/blocks/127.0.0.2", {}, token).status,
        200);
    EXPECT_EQ(
        http(d->admin_port, "DELETE", "/api/v1/admin/security/blocks/127.0.0.2", {}, token).status,
        404);
    Client back(d->port, "127.0.0.2");
    hello(back);
    auto audit = body_json(get("/api/v1/admin/audit?limit=1"));
    ASSERT_EQ(audit["entries"].size(), 1u);
    EXPECT_EQ(audit["entries"][0]["action"], "ip_unblocked");
    auto older = body_json(
        get("/api/v1/admin/audit?before=" + std::to_string(audit["next_before"].get<int64_t>())));
    EXPECT_EQ(older["entries"][0]["action"], "ip_blocked");
    EXPECT_EQ(older["entries"][0]["actor"], "admin");
}

TEST_F(AdminApi, SuspensionClosesTheAccountsConnectionsAndSurvivesRestart) {
    Client alice(d->port, "127.0.0.3");
    hello(alice);
    ASSERT_EQ(
        alice.call({{"op", "REGISTER"}, {"username", "alice"}, {"password", "password1"}})["ok"],
        true);
    auto r =
        post("/api/v1/admin/users/alice/suspend", R"({"duration_ms":3600000,"reason":"spam"})");
    ASSERT_EQ(r.status, 200) << r.body;
    auto bye = alice.line(5000);
    ASSERT_TRUE(bye);
    EXPECT_EQ((*bye)["reason"], "BLOCKED");
    ASSERT_EQ(d->stop(SIGTERM), 0);
    setenv("WARREN_ADMIN_TOKEN", token.c_str(), 1);
    d = std::make_unique<Daemon>(dir, std::vector<std::string>{"--config", cfg});
    unsetenv("WARREN_ADMIN_TOKEN");
    Client again(d->port, "127.0.0.4");
    hello(again);
    json login = again.call({{"op", "LOGIN"}, {"username", "alice"}, {"password", "password1"}});
    EXPECT_EQ(login["error"]["code"], "BLOCKED");
    EXPECT_GT(login["error"]["retry_after_ms"].get<int64_t>(), 3'000'000);
    ASSERT_EQ(post("/api/v1/admin/users/alice/unsuspend").status, 200);
    EXPECT_EQ(again.call({{"op", "LOGIN"}, {"username", "alice"}, {"password", "password1"}})["ok"],
              true);
    // Revoking the account's sessions closes the connection that uses one.
    auto revoked = post("/api/v1/admin/users/alice/sessions/revoke");
    ASSERT_EQ(revoked.status, 200) << revoked.body;
    EXPECT_NE(revoked.body.find("\"revoked\":"), std::string::npos) << revoked.body;
    auto gone = again.line(5000);
    ASSERT_TRUE(gone);
    EXPECT_EQ((*gone)["reason"], "SESSION_REVOKED");
    EXPECT_EQ(post("/api/v1/admin/users/nobody/sessions/revoke").status, 404);
}

TEST_F(AdminApi, StalledHttpClientsDoNotHurtChatOrTheApi) {
    // Connections that send half a request, or nothing, and hold the socket.
    std::vector<std::unique_ptr<Client>> stalled;
    for (int i = 0; i < 5; ++i) {
        stalled.push_back(std::make_unique<Client>(d->admin_port));
        if (i % 2) stalled.back()->raw("GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: ");
    }
    Client c(d->port);
    hello(c);
    EXPECT_EQ(c.call({{"op", "PING"}})["ok"], true);
    EXPECT_EQ(get("/healthz").status, 200);
}

TEST(AdminListen, RefusesBeyondLoopbackWithoutAToken) {
    std::string dir = fresh_dir("no-token");
    unsetenv("WARREN_ADMIN_TOKEN");
    EXPECT_THROW(Daemon(dir, {"--admin-listen", "0.0.0.0:0"}), std::runtime_error);
    Daemon ok(dir, {"--admin-listen", "127.0.0.1:0"});  // loopback: allowed without a token
    EXPECT_EQ(http(ok.admin_port, "GET", "/healthz").status, 200);
}

TEST(Config, TheExampleFileLoadsAndServes) {
    std::string dir = fresh_dir("example");
    Daemon d(dir, {"--config", WARREN_SOURCE_DIR "/docs/warren.example.toml"});
    EXPECT_EQ(http(d.admin_port, "GET", "/healthz").status, 200);
    Client c(d.port);
    hello(c);
    EXPECT_EQ(c.call({{"op", "PING"}})["ok"], true);
}

TEST(SecurityLoopback, RefusalsWithConfigOverrides) {
    std::string dir = fresh_dir("refusals");
    std::string cfg = write_config(dir, R"toml(
[rate]
user_per_min = 60
user_burst = 5
[connections]
per_ip_max = 2
login_timeout_ms = 1000
[auth]
registration = "open"
)toml");
    Daemon d(dir, {"--config", cfg});
    // Rate limit: the burst of 5, then RATE_LIMITED with retry_after_ms.
    Client a(d.port, "127.0.0.5");
    hello(a);
    ASSERT_EQ(a.call({{"op", "REGISTER"}, {"username", "alice"}, {"password", "password1"}})["ok"],
              true);
    for (int i = 0; i < 5; ++i) ASSERT_EQ(a.call({{"op", "PING"}})["ok"], true) << i;
    json limited = a.call({{"op", "PING"}});
    EXPECT_EQ(limited["error"]["code"], "RATE_LIMITED");
    EXPECT_GT(limited["error"]["retry_after_ms"].get<int64_t>(), 0);
    EXPECT_LE(limited["error"]["retry_after_ms"].get<int64_t>(), 1000);
    // Two connections per address; the third is refused with no HELLO.
    Client b(d.port, "127.0.0.6"), c(d.port, "127.0.0.6"), e(d.port, "127.0.0.6");
    hello(b);
    hello(c);
    auto refused = e.line(5000);
    ASSERT_TRUE(refused);
    EXPECT_EQ((*refused)["reason"], "TOO_MANY_CONNECTIONS");
    // The login deadline (1 s here): a connection that never logs in is closed.
    auto idle = b.line(5000);
    ASSERT_TRUE(idle);
    EXPECT_EQ((*idle)["reason"], "IDLE_TIMEOUT");
}

TEST(Logs, RequestErrorLinesAreRateLimitedAndTheSuppressedCounted) {
    std::string dir = fresh_dir("log-limit");
    std::string cfg = write_config(dir, "[server]\nlog_lines_per_second = 1\nlog_burst = 5\n");
    std::string log = dir + "/stderr.log";
    {
        Daemon d(dir, {"--config", cfg, "--log-level", "info"}, log);
        Client a(d.port, "127.0.0.8");
        hello(a);
        for (int i = 0; i < 50; ++i)
            a.call({{"op", "JOIN_ROOM"}, {"room", "r"}});  // UNAUTHENTICATED
        std::this_thread::sleep_for(std::chrono::milliseconds(1500));
        a.call({{"op", "JOIN_ROOM"}, {"room", "r"}});
        EXPECT_EQ(d.stop(SIGTERM), 0);
    }
    std::ifstream in(log);
    std::string line;
    int errors = 0;
    bool suppressed = false;
    while (std::getline(in, line)) {
        if (line.find("request_error") == std::string::npos) continue;
        ++errors;
        suppressed = suppressed || line.find("log_lines_suppressed=") != std::string::npos;
    }
    EXPECT_GE(errors, 5);
    EXPECT_LE(errors, 8);  // the burst, what refilled meanwhile, and the line after the pause
    EXPECT_TRUE(suppressed);
}

// warren-load against the real server: every message acknowledged and delivered to every
// other member.
TEST(Load, GeneratorDeliversEverything) {
    std::string load = bin_dir() + "/warren-load";
    if (access(load.c_str(), X_OK) != 0)
        GTEST_SKIP() << "warren-load not built (WARREN_BUILD_BENCH=OFF)";
    std::string dir = fresh_dir("load");
    Daemon d(dir, {"--config", WARREN_SOURCE_DIR "/bench/load.toml"});
    std::string cmd = load + " --server 127.0.0.1:" + std::to_string(d.port) +
                      " --clients 20 --senders 5 --messages 40 --timeout 60 --json > " + dir +
                      "/load.out 2>&1";
    int rc = std::system(cmd.c_str());
    std::ifstream out(dir + "/load.out");
    std::stringstream ss;
    ss << out.rdbuf();
    ASSERT_EQ(rc, 0) << ss.str();
    std::string text = ss.str();
    json result = json::parse(text.substr(text.find("{\"acked\"")));
    EXPECT_EQ(result["acked"], 200);
    EXPECT_EQ(result["deliveries"], 200 * 19);
    EXPECT_EQ(result["refused"], 0);
}

TEST(SecurityLoopback, ClosedRegistrationAndJsonLogs) {
    std::string dir = fresh_dir("closed");
    std::string cfg = write_config(dir, "[auth]\nregistration = \"closed\"\n");
    std::string log = dir + "/stderr.log";
    {
        Daemon d(dir, {"--config", cfg, "--log-format", "json", "--log-level", "info"}, log);
        Client a(d.port, "127.0.0.7");
        hello(a);
        json r = a.call({{"op", "REGISTER"}, {"username", "alice"}, {"password", "password1"}});
        EXPECT_EQ(r["error"]["code"], "FORBIDDEN");
        a.raw("not json\n");
        a.line(5000);
        EXPECT_EQ(d.stop(SIGTERM), 0);
    }
    std::ifstream in(log);
    std::string line;
    int lines = 0;
    bool saw_error = false;
    while (std::getline(in, line)) {
        ++lines;
        json j = json::parse(line);  // every line is one JSON object
        EXPECT_TRUE(j.contains("ts") && j.contains("level") && j.contains("event")) << line;
        if (j["event"] == "request_error" && j["code"] == "FORBIDDEN") saw_error = true;
    }
    EXPECT_GT(lines, 2);
    EXPECT_TRUE(saw_error);
}

}  // namespace
}  // namespace warren::test

namespace warren::test {
namespace {

std::string request(const std::string& method, const std::string& target,
                    const std::string& headers, const std::string& body = {}) {
    std::string r = method + " " + target + " HTTP/1.1\r\nConnection: close\r\n" + headers;
    if (!body.empty()) r += "Content-Length: " + std::to_string(body.size()) + "\r\n";
    return r + "\r\n" + body;
}

// M5: with no token configured, the first start makes one, keeps it in the data directory
// (0600) and says where; only the probes answer without it.
TEST(AdminSecurity, ATokenIsMadeOnFirstStartAndKept) {
    std::string dir = fresh_dir("made-token");
    unsetenv("WARREN_ADMIN_TOKEN");
    std::string log = dir + "/stderr.log";
    std::string made;
    {
        Daemon d(dir, {"--log-level", "info"}, log);
        std::ifstream in(dir + "/admin.token");
        std::getline(in, made);
        ASSERT_GE(made.size(), 32u);
        namespace fs = std::filesystem;
        EXPECT_EQ(fs::status(dir + "/admin.token").permissions() & fs::perms::all,
                  fs::perms::owner_read | fs::perms::owner_write);
        EXPECT_EQ(http(d.admin_port, "GET", "/healthz").status, 200);
        EXPECT_EQ(http(d.admin_port, "GET", "/readyz").status, 200);
        EXPECT_EQ(http(d.admin_port, "GET", "/metrics").status, 401);
        EXPECT_EQ(
            http(d.admin_port, "POST", "/api/v1/admin/security/blocks", R"({"ip":"127.0.0.9"})")
                .status,
            401);
        EXPECT_EQ(http(d.admin_port, "GET", "/metrics", {}, made).status, 200);
    }
    std::ifstream l(log);
    std::stringstream text;
    text << l.rdbuf();
    EXPECT_NE(text.str().find(dir + "/admin.token"), std::string::npos) << text.str();
    Daemon again(dir, {});
    EXPECT_EQ(http(again.admin_port, "GET", "/metrics", {}, made).status, 200);  // kept
}

// M5: a browser cannot be made to talk to the API: foreign Host (DNS rebinding) and any
// Origin are refused, and a POST must be application/json.
TEST_F(AdminApi, ForeignHostsOriginsAndNonJsonPostsAreRefused) {
    std::string auth = "Authorization: Bearer " + token + "\r\n";
    auto status = [&](const std::string& req) { return http_raw(d->admin_port, req).status; };
    EXPECT_EQ(status(request("GET", "/metrics",
                             "Host: 127.0.0.1:" + std::to_string(d->admin_port) + "\r\n" + auth)),
              200);
    EXPECT_EQ(status(request("GET", "/metrics", "Host: localhost\r\n" + auth)), 200);
    EXPECT_EQ(status(request("GET", "/metrics", "Host: evil.example\r\n" + auth)), 421);
    EXPECT_EQ(status(request("GET", "/metrics", auth)), 400);  // no Host at all
    EXPECT_EQ(status(request("GET", "/metrics",
                             "Host: 127.0.0.1\r\nOrigin: http://evil.example\r\n" + auth)),
              403);
    std::string block = R"({"ip":"127.0.0.50"})";
    EXPECT_EQ(status(request("POST", "/api/v1/admin/security/blocks",
                             "Host: 127.0.0.1\r\nContent-Type: text/plain\r\n" + auth, block)),
              415);
    EXPECT_EQ(
        status(request("POST", "/api/v1/admin/security/blocks",
                       "Host: 127.0.0.1\r\nContent-Type: application/json\r\n" + auth, block)),
        200);
}

// M6: strangers cannot lock the operator out: failed authentications do not spend the
// operator's request budget, and idle sockets from many addresses give way to a real request.
TEST_F(AdminApi, UnauthenticatedTrafficCannotLockTheOperatorOut) {
    for (int i = 0; i < 150; ++i)
        http_raw(d->admin_port,
                 request("GET", "/metrics", "Host: 127.0.0.1\r\nAuthorization: Bearer nope\r\n"),
                 ("127.0.1." + std::to_string(i % 200 + 1)).c_str(), 2000);
    EXPECT_EQ(get("/metrics").status, 200);
    std::vector<std::unique_ptr<Client>> idle;
    for (int i = 0; i < 80; ++i)
        idle.push_back(
            std::make_unique<Client>(d->admin_port, ("127.0.2." + std::to_string(i + 1)).c_str()));
    EXPECT_EQ(get("/metrics").status, 200);
    EXPECT_EQ(get("/healthz").status, 200);
    // One address cannot hold more than its share.
    std::vector<std::unique_ptr<Client>> greedy;
    for (int i = 0; i < 20; ++i)
        greedy.push_back(std::make_unique<Client>(d->admin_port, "127.0.3.1"));
    EXPECT_EQ(get("/metrics").status, 200);
}

}  // namespace
}  // namespace warren::test
