// What an operator does on day two, against the real binaries: `warrend --check-config`
// (exit codes, the key and line of a refusal, the printed configuration loading back as the
// same configuration), the systemd unit (`systemd-analyze verify` on what `cmake --install`
// writes), the service manager protocol (READY, WATCHDOG, STOPPING through a real
// NOTIFY_SOCKET), and SIGHUP reopening a --log-file that logrotate moved away.
#include <gtest/gtest.h>
#include <sys/un.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <atomic>
#include <sstream>

#include "loopback.h"

namespace warren::test {
namespace {

namespace fs = std::filesystem;

std::string fresh_dir(const std::string& name) {
    auto dir = fs::temp_directory_path() / ("warren-ops-" + name + "-" + std::to_string(::getpid()));
    fs::remove_all(dir);
    fs::create_directories(dir);
    return dir.string();
}

std::string test_dir() {
    return fresh_dir(::testing::UnitTest::GetInstance()->current_test_info()->name());
}

struct Ran {
    int status = -1;
    std::string out;  // stdout and stderr together
};

// Runs a shell command (bounded by `timeout`), capturing its output (stdout only unless
// `with_stderr`).
Ran run(const std::string& command, bool with_stderr = true) {
    Ran r;
    std::FILE* p =
        ::popen(("timeout 60 " + command + (with_stderr ? " 2>&1" : " 2>/dev/null")).c_str(), "r");
    if (!p) return r;
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
    int st = ::pclose(p);
    r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return r;
}

std::string write(const std::string& path, const std::string& text) {
    std::ofstream(path) << text;
    return path;
}

std::string slurp(const std::string& path) {
    std::ifstream in(path);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

const std::string warrend = bin_dir() + "/warrend";

TEST(CheckConfig, ValidFilePrintsEveryKeyWithSecretsRedacted) {
    std::string dir = test_dir();
    std::string conf = write(dir + "/w.toml",
                             "[admin]\ntoken = \"s3cret-token-value-42\"\n"
                             "[retention]\ndays = 30\n[retention.rooms]\nops = 7\n"
                             "[rate]\nuser_per_min = 99\n");
    Ran r = run(warrend + " --check-config " + conf);
    EXPECT_EQ(r.status, 0) << r.out;
    EXPECT_NE(r.out.find("user_per_min = 99"), std::string::npos) << r.out;
    // Defaults appear too, so the operator sees what the server will really run with.
    EXPECT_NE(r.out.find("ip_per_min = "), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("synchronous = 'normal'"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("days = 30"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("ops = 7"), std::string::npos) << r.out;
    EXPECT_EQ(r.out.find("s3cret-token-value-42"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("(redacted)"), std::string::npos) << r.out;
}

TEST(CheckConfig, PrintedConfigurationLoadsBackUnchanged) {
    std::string dir = test_dir();
    std::string conf = write(dir + "/w.toml", "[limits]\ntext_max_bytes = 2000\n"
                                              "[security]\nblock_ladder_ms = [60000, 120000]\n");
    Ran first = run(warrend + " --check-config " + conf, false);
    ASSERT_EQ(first.status, 0) << first.out;
    std::string again = write(dir + "/again.toml", first.out);
    Ran second = run(warrend + " --check-config " + again, false);
    ASSERT_EQ(second.status, 0) << second.out;
    EXPECT_EQ(first.out, second.out);
}

TEST(CheckConfig, RefusalNamesTheKeyAndItsLine) {
    std::string dir = test_dir();
    struct Case {
        std::string text, key, place;
    } cases[] = {
        {"[limits]\n\ninvitation_ttl_ms = 5\n", "limits.invitation_ttl_ms", ":3:"},
        {"[rate]\nuser_per_minute = 5\n", "user_per_minute", ":2:"},
        // A rule between keys is placed at the key the file sets.
        {"[limits]\n# comment\ntext_max_bytes = 65536\n", "max_frame_bytes", ":3:"},
        {"[retention]\ndays = -1\n", "retention.days", ":2:"},
        {"[retention.rooms]\ngeneral = \"long\"\n", "retention.rooms.general", ":2:"},
        {"[server\n", "", ":1:"},
    };
    int i = 0;
    for (const Case& c : cases) {
        std::string conf = write(dir + "/bad" + std::to_string(i++) + ".toml", c.text);
        Ran r = run(warrend + " --check-config " + conf);
        EXPECT_EQ(r.status, 2) << c.text << r.out;
        EXPECT_NE(r.out.find(conf + c.place), std::string::npos) << c.text << r.out;
        EXPECT_NE(r.out.find(c.key), std::string::npos) << c.text << r.out;
    }
    Ran missing = run(warrend + " --check-config " + dir + "/no-such.toml");
    EXPECT_EQ(missing.status, 2) << missing.out;
}

// The unit `cmake --install` writes passes systemd's own checker (which also insists that
// ExecStart names an executable), and the install lays out binary, unit, docs and config.
TEST(SystemdUnit, InstalledUnitVerifies) {
    // CI installs systemd (scripts/deps.sh); elsewhere a machine without it skips this.
    if (run("sh -c 'command -v systemd-analyze'").status != 0) {
        if (std::getenv("CI")) FAIL() << "systemd-analyze is missing in CI";
        GTEST_SKIP() << "no systemd-analyze";
    }
    std::string dir = test_dir();
    std::string dest = dir + "/root";
    // The tree the binaries under test come from (bin_dir() is its bin/).
    Ran inst = run("env DESTDIR=" + dest + " cmake --install " +
                   fs::path(bin_dir()).parent_path().string());
    ASSERT_EQ(inst.status, 0) << inst.out;
    std::string unit_path;
    for (const auto& e : fs::recursive_directory_iterator(dest))
        if (e.path().filename() == "warrend.service") unit_path = e.path().string();
    ASSERT_FALSE(unit_path.empty()) << inst.out;
    std::string unit = slurp(unit_path);
    // Point the unit at the files under DESTDIR, which is where they are in this test.
    for (std::string key : {"ExecStart=", "--config "}) {
        size_t at = unit.find(key);
        ASSERT_NE(at, std::string::npos) << unit;
        unit.insert(at + key.size(), dest);
    }
    std::string conf = unit.substr(unit.find("--config ") + 9);
    conf = conf.substr(0, conf.find(' '));
    EXPECT_TRUE(fs::exists(conf)) << conf;
    Ran check = run(warrend + " --check-config " + conf);
    EXPECT_EQ(check.status, 0) << check.out;
    std::string verify_path = dir + "/warrend.service";
    write(verify_path, unit);
    Ran v = run("systemd-analyze verify " + verify_path);
    EXPECT_EQ(v.status, 0) << v.out;
    EXPECT_EQ(v.out, "") << "systemd-analyze reported: " << v.out;
    EXPECT_NE(unit.find("Type=notify"), std::string::npos);
    EXPECT_NE(unit.find("NoNewPrivileges=yes"), std::string::npos);
    EXPECT_NE(unit.find("LimitNOFILE="), std::string::npos);
}

// A datagram socket standing in for systemd's notify socket.
class NotifySocket {
  public:
    explicit NotifySocket(const std::string& path) : path_(path) {
        fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        sockaddr_un a{};
        a.sun_family = AF_UNIX;
        std::snprintf(a.sun_path, sizeof a.sun_path, "%s", path.c_str());
        ::unlink(path.c_str());
        if (::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0)
            throw std::runtime_error("bind " + path);
    }
    ~NotifySocket() {
        ::close(fd_);
        ::unlink(path_.c_str());
    }
    // The next message, or "" after timeout_ms.
    std::string next(int timeout_ms) {
        pollfd p{fd_, POLLIN, 0};
        if (::poll(&p, 1, timeout_ms) <= 0) return {};
        char buf[4096];
        ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
        return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
    }
    // Waits for a message containing `what`, collecting the ones before it.
    bool wait_for(const std::string& what, int timeout_ms, std::vector<std::string>& seen) {
        auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
        while (std::chrono::steady_clock::now() < until) {
            std::string m = next(100);
            if (m.empty()) continue;
            seen.push_back(m);
            if (m.find(what) != std::string::npos) return true;
        }
        return false;
    }

  private:
    std::string path_;
    int fd_ = -1;
};

TEST(ServiceManager, ReadyWatchdogAndStoppingReachTheNotifySocket) {
    std::string dir = test_dir();
    NotifySocket sock(dir + "/notify.sock");
    ::setenv("NOTIFY_SOCKET", (dir + "/notify.sock").c_str(), 1);
    ::setenv("WATCHDOG_USEC", "200000", 1);  // pings every 100 ms
    Daemon d(dir + "/data");
    ::unsetenv("NOTIFY_SOCKET");
    ::unsetenv("WATCHDOG_USEC");
    std::vector<std::string> seen;
    ASSERT_TRUE(sock.wait_for("READY=1", 5000, seen));
    EXPECT_NE(seen.back().find("STATUS=serving on 127.0.0.1:" + std::to_string(d.port)),
              std::string::npos)
        << seen.back();
    // It is listening when it says so.
    Client c(d.port);
    ASSERT_TRUE(c.line());
    int pings = 0;
    for (int i = 0; i < 3; ++i) pings += sock.wait_for("WATCHDOG=1", 2000, seen) ? 1 : 0;
    EXPECT_EQ(pings, 3);
    ::kill(d.pid(), SIGTERM);
    EXPECT_TRUE(sock.wait_for("STOPPING=1", 5000, seen));
    EXPECT_EQ(d.stop(SIGTERM), 0);
}

TEST(ServiceManager, NoWatchdogPingsForAnotherProcess) {
    std::string dir = test_dir();
    NotifySocket sock(dir + "/notify.sock");
    ::setenv("NOTIFY_SOCKET", (dir + "/notify.sock").c_str(), 1);
    ::setenv("WATCHDOG_USEC", "200000", 1);
    ::setenv("WATCHDOG_PID", "1", 1);  // meant for another process
    Daemon d(dir + "/data");
    ::unsetenv("NOTIFY_SOCKET");
    ::unsetenv("WATCHDOG_USEC");
    ::unsetenv("WATCHDOG_PID");
    std::vector<std::string> seen;
    ASSERT_TRUE(sock.wait_for("READY=1", 5000, seen));
    EXPECT_FALSE(sock.wait_for("WATCHDOG=1", 700, seen));
    EXPECT_EQ(d.stop(SIGTERM), 0);
}

// logrotate's way: move the file, send SIGHUP; warrend writes to a new file at the path and
// the moved file keeps what was written before.
TEST(LogFile, SighupReopensTheFileAfterItWasMoved) {
    std::string dir = test_dir();
    std::string log = dir + "/warrend.log";
    Daemon d(dir + "/data", {"--log-file", log, "--log-level", "info"});
    auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (slurp(log).find("loaded") == std::string::npos &&
           std::chrono::steady_clock::now() < until)
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    ASSERT_NE(slurp(log).find("loaded"), std::string::npos) << slurp(log);
    fs::rename(log, log + ".1");
    ::kill(d.pid(), SIGHUP);
    until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (slurp(log).find("log_reopened") == std::string::npos &&
           std::chrono::steady_clock::now() < until)
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    EXPECT_NE(slurp(log).find("log_reopened"), std::string::npos) << slurp(log);
    EXPECT_EQ(slurp(log).find("loaded"), std::string::npos);
    EXPECT_NE(slurp(log + ".1").find("loaded"), std::string::npos);
    // Still serving after the signal.
    Client c(d.port);
    EXPECT_TRUE(c.line());
    EXPECT_EQ(d.stop(SIGTERM), 0);
    EXPECT_NE(slurp(log).find("stopped"), std::string::npos) << slurp(log);
}

TEST(LogFile, UnwritableLogFileIsRefusedAtStart) {
    std::string dir = test_dir();
    Ran r = run(warrend + " --data-dir " + dir + "/data --log-file " + dir +
                "/no/such/dir/w.log --admin-listen off --listen 127.0.0.1:0");
    EXPECT_EQ(r.status, 2) << r.out;
    EXPECT_NE(r.out.find("cannot open log file"), std::string::npos) << r.out;
}

const std::string admin_token = "ops-test-admin-token-0123456789";

// Every message id in `room` visible to `c`, paging back from the newest.
std::set<int64_t> all_ids(Client& c, const std::string& room) {
    std::set<int64_t> ids;
    json req = {{"op", "HISTORY"}, {"room", room}, {"limit", 100}};
    for (;;) {
        json page = c.call(req);
        if (!page.contains("messages") || page["messages"].empty()) break;
        int64_t oldest = INT64_MAX;
        for (const auto& m : page["messages"]) {
            ids.insert(m["id"].get<int64_t>());
            oldest = std::min(oldest, m["id"].get<int64_t>());
        }
        req["before"] = oldest;
    }
    return ids;
}

// The admin API's backup while a writer keeps committing: the copy holds every message
// acknowledged before the backup was asked for, restores into a fresh data directory, and
// the backup is in the audit log. `warrend backup` makes the same copy from the command line.
TEST(Backup, UnderLoadRestoresEveryMessageAcknowledgedBeforeIt) {
    std::string dir = test_dir();
    ::setenv("WARREN_ADMIN_TOKEN", admin_token.c_str(), 1);
    auto d = std::make_unique<Daemon>(dir + "/data");
    ::unsetenv("WARREN_ADMIN_TOKEN");
    Client alice(d->port);
    ASSERT_TRUE(alice.line());
    ASSERT_EQ(alice.call({{"op", "REGISTER"}, {"username", "alice"}, {"password", "alice-pw-1"}})
                  ["ok"],
              true);
    ASSERT_EQ(alice.call({{"op", "CREATE_ROOM"}, {"room", "general"}})["ok"], true);
    // A few MB, so that the copy takes many paced steps while the writer goes on.
    const std::string text(1000, 'x');
    int64_t next_id = 1000;
    auto send_window = [&](Client& c, int n) {
        for (int i = 0; i < n; ++i)
            c.send({{"id", next_id + i}, {"op", "SEND_MESSAGE"}, {"room", "general"},
                    {"text", text}});
        std::vector<int64_t> acked;
        for (int got = 0; got < n;) {
            auto l = c.line(20'000);
            if (!l) break;
            if (l->contains("re")) {
                ++got;
                if ((*l)["ok"] == true) acked.push_back((*l)["message"]["id"].get<int64_t>());
            }
        }
        next_id += n;
        return acked;
    };
    std::set<int64_t> acked_before;
    for (int w = 0; w < 25; ++w)
        for (int64_t id : send_window(alice, 200)) acked_before.insert(id);
    ASSERT_EQ(acked_before.size(), 5000u);

    std::atomic<bool> stop{false};
    std::atomic<size_t> during{0};
    std::thread writer([&] {
        Client bob(d->port);
        bob.line();
        bob.call({{"op", "LOGIN"}, {"username", "alice"}, {"password", "alice-pw-1"}});
        int64_t id = 1'000'000;
        while (!stop) {
            json r = bob.call({{"id", id++}, {"op", "SEND_MESSAGE"}, {"room", "general"},
                               {"text", text}});
            if (r["ok"] == true) ++during;
        }
    });
    // The writer is committing before the backup is asked for, and goes on while it runs.
    for (int i = 0; i < 1000 && during.load() == 0; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    size_t at_start = during.load();
    HttpResponse b = http(d->admin_port, "POST", "/api/v1/admin/backup", R"({"name":"b1.db"})",
                          admin_token, 60'000);
    size_t at_end = during.load();
    stop = true;
    writer.join();
    ASSERT_EQ(b.status, 200) << b.body;
    json info = json::parse(b.body)["backup"];
    std::string copy = info["path"];
    EXPECT_EQ(copy, dir + "/data/backups/b1.db");
    EXPECT_GT(info["bytes"].get<int64_t>(), 5'000'000);
    EXPECT_GT(at_start, 0u) << "the writer never committed";
    EXPECT_GT(at_end, at_start) << "nothing was committed while the backup ran";
    EXPECT_EQ(fs::status(dir + "/data/backups").permissions() & fs::perms::others_all,
              fs::perms::none);
    // The same name twice is refused rather than overwritten.
    HttpResponse again = http(d->admin_port, "POST", "/api/v1/admin/backup",
                              R"({"name":"b1.db"})", admin_token, 60'000);
    EXPECT_EQ(again.status, 500) << again.body;
    EXPECT_EQ(http(d->admin_port, "GET", "/api/v1/admin/backup", "", admin_token).status, 405);
    HttpResponse audit = http(d->admin_port, "GET", "/api/v1/admin/audit", "", admin_token);
    EXPECT_NE(audit.body.find("\"action\":\"backup\""), std::string::npos) << audit.body;
    EXPECT_NE(audit.body.find("\"action\":\"backup_failed\""), std::string::npos) << audit.body;

    // The command line makes a copy of the live database too.
    Ran cli = run(warrend + " backup --data-dir " + dir + "/data " + dir + "/cli.db");
    EXPECT_EQ(cli.status, 0) << cli.out;
    Ran cli_again = run(warrend + " backup --data-dir " + dir + "/data " + dir + "/cli.db");
    EXPECT_EQ(cli_again.status, 1) << cli_again.out;
    EXPECT_EQ(d->stop(SIGTERM), 0);

    // Restore as docs/OPERATIONS.md says: the copy becomes DATA_DIR/warren.db.
    for (const std::string& from : {copy, dir + "/cli.db"}) {
        std::string restored = dir + "/restored";
        fs::remove_all(restored);
        fs::create_directories(restored);
        fs::copy_file(from, restored + "/warren.db");
        Daemon r(restored);
        Client c(r.port);
        ASSERT_TRUE(c.line());
        ASSERT_EQ(
            c.call({{"op", "LOGIN"}, {"username", "alice"}, {"password", "alice-pw-1"}})["ok"],
            true);
        std::set<int64_t> ids = all_ids(c, "general");
        size_t missing = 0;
        for (int64_t id : acked_before) missing += ids.count(id) ? 0 : 1;
        EXPECT_EQ(missing, 0u) << from;
        EXPECT_GE(ids.size(), acked_before.size());
    }
}

// The flags that keep headless Chromium's own background traffic (updates, sync, accounts)
// quiet; what is left in the net log comes from the page.
const std::string chromium_flags =
    "--headless --no-sandbox --disable-gpu --disable-background-networking "
    "--disable-component-update --disable-sync --no-first-run --disable-default-apps "
    "--disable-domain-reliability --disable-client-side-phishing-detection "
    "--disable-features=Translate,OptimizationHints,MediaRouter --no-default-browser-check "
    "--disable-breakpad --enable-logging=stderr --v=0";

// GET / on the admin listener, in a real browser: it asks for the token (Basic, any name),
// renders live figures from the API, logs nothing to the console, and every request it makes
// goes to the admin origin.
TEST(StatusPage, RendersInHeadlessChromiumWithNoConsoleErrorsOrForeignRequests) {
    if (run("sh -c 'command -v chromium'").status != 0) {
        if (std::getenv("CI")) FAIL() << "chromium is missing in CI";
        GTEST_SKIP() << "no chromium";
    }
    std::string dir = test_dir();
    ::setenv("WARREN_ADMIN_TOKEN", admin_token.c_str(), 1);
    Daemon d(dir + "/data");
    ::unsetenv("WARREN_ADMIN_TOKEN");
    std::string origin = "http://127.0.0.1:" + std::to_string(d.admin_port);
    Client c(d.port);
    ASSERT_TRUE(c.line());
    c.call({{"op", "REGISTER"}, {"username", "alice"}, {"password", "alice-pw-1"}});
    c.call({{"op", "CREATE_ROOM"}, {"room", "general"}});
    for (int i = 0; i < 5; ++i)
        c.call({{"op", "SEND_MESSAGE"}, {"room", "general"}, {"text", "hi " + std::to_string(i)}});
    ASSERT_EQ(http(d.admin_port, "POST", "/api/v1/admin/security/blocks",
                   R"({"ip":"192.0.2.7","reason":"status page test"})", admin_token)
                  .status,
              200);

    // Without the token: 401, with a challenge a browser answers by asking for it.
    HttpResponse anon = http(d.admin_port, "GET", "/");
    EXPECT_EQ(anon.status, 401);
    EXPECT_NE(anon.headers.find("www-authenticate: basic"), std::string::npos) << anon.headers;
    HttpResponse page = http(d.admin_port, "GET", "/", "", admin_token);
    ASSERT_EQ(page.status, 200);
    EXPECT_NE(page.headers.find("content-security-policy: default-src 'none'"), std::string::npos)
        << page.headers;
    for (std::string foreign : {"http://", "https://", "src=", "href=\"http"})
        EXPECT_EQ(page.body.find(foreign), std::string::npos) << "the page names " << foreign;

    std::string net = dir + "/net.json", dom = dir + "/dom.html", err = dir + "/chromium.log";
    std::string url = "http://admin:" + admin_token + "@127.0.0.1:" + std::to_string(d.admin_port) + "/";
    Ran browser = run("chromium " + chromium_flags + " --log-net-log=" + net +
                          " --virtual-time-budget=5000 --dump-dom '" + url + "' > " + dom +
                          " 2> " + err,
                      false);
    ASSERT_EQ(browser.status, 0) << slurp(err);
    std::string html = slurp(dom);
    EXPECT_NE(html.find("<body data-state=\"live\">"), std::string::npos) << html.substr(0, 2000);
    EXPECT_NE(html.find("id=\"connections\">1 / 10000<"), std::string::npos);
    EXPECT_NE(html.find("<td>SEND_MESSAGE</td><td>5</td>"), std::string::npos);
    EXPECT_NE(html.find("<td>192.0.2.7</td>"), std::string::npos);
    EXPECT_NE(html.find("id=\"breaker\">closed<"), std::string::npos);

    std::string log = slurp(err);
    EXPECT_EQ(log.find(":CONSOLE"), std::string::npos) << log;

    json events = json::parse(slurp(net));
    std::map<int, std::string> types;
    for (const auto& [name, id] : events["constants"]["logEventTypes"].items())
        types[id.get<int>()] = name;
    size_t from_page = 0;
    for (const auto& e : events["events"]) {
        if (types[e["type"].get<int>()] != "URL_REQUEST_START_JOB") continue;
        if (!e.contains("params") || !e["params"].is_object()) continue;
        const json& p = e["params"];
        std::string initiator = p.value("initiator", "");
        bool page_request = initiator == origin || p.value("request_type", "") == "main frame";
        if (!page_request) continue;  // the browser's own, kept quiet by the flags above
        ++from_page;
        std::string target = p["url"];
        EXPECT_EQ(target.rfind(origin + "/", 0), 0u) << "the page requested " << target;
    }
    EXPECT_GE(from_page, 5u);  // the page and its four API reads
}

}  // namespace
}  // namespace warren::test
