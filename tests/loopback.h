// Helpers for tests against the real `warrend` binary over 127.0.0.1: start it on port 0
// with a data directory and read the port from its "listening on" line; a line-oriented
// protocol client with timeouts. Every wait is bounded, and a daemon left running by a
// failed test is killed by the destructor.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace warren::test {

using json = nlohmann::json;

// Where the binaries under test are: the tree the test was built in, unless WARREN_BIN_DIR
// says otherwise. The sanitizer trees of scripts/test.sh build only the binaries and run these
// tests from build/ against them (tests/CMakeLists.txt, WARREN_E2E_FROM).
inline std::string bin_dir() {
    const char* dir = std::getenv("WARREN_BIN_DIR");
    return dir && *dir ? dir : WARREN_BIN_DIR;
}

// Abuse limits out of the way, for tests that drive many requests and connections from
// 127.0.0.1 on purpose; security tests pass a --config of their own.
inline constexpr const char* unlimited_config = R"toml(
[rate]
user_per_min = 1000000000
user_burst = 1000000000
ip_per_min = 1000000000
ip_burst = 1000000000
[connections]
per_ip_max = 1000000
new_per_ip_max = 1000000
[security]
allowlist = ["127.0.0.0/8", "::1/128"]
registrations_per_ip_max = 1000000
)toml";

class Daemon {
  public:
    // Starts warrend (client port and admin port both 0) and waits (up to 20 s) for its
    // "admin listening on" and "listening on" lines. Without a --config in `extra`, it runs
    // with unlimited_config.
    // stderr_file: where warrend's stderr (its log) goes; empty: inherited.
    // prefix: a command that runs warrend (e.g. {"/usr/bin/prlimit", "--nofile=256:256"}); it
    // must exec it in place, so that the pid is warrend's.
    explicit Daemon(const std::string& data_dir, std::vector<std::string> extra = {},
                    const std::string& stderr_file = {}, std::vector<std::string> prefix = {}) {
        std::vector<std::string> args = prefix;
        args.insert(args.end(),
                    {bin_dir() + "/warrend", "--listen", "127.0.0.1:0", "--data-dir", data_dir});
        bool own_config = false, own_admin = false, own_level = false;
        for (const auto& e : extra) {
            own_config = own_config || e == "--config";
            own_admin = own_admin || e == "--admin-listen";
            own_level = own_level || e == "--log-level";
        }
        if (!own_level) args.insert(args.end(), {"--log-level", "warn"});
        if (!own_config) {
            std::filesystem::create_directories(data_dir);
            std::string path = data_dir + "/unlimited.toml";
            std::ofstream(path) << unlimited_config;
            args.insert(args.end(), {"--config", path});
        }
        if (!own_admin) args.insert(args.end(), {"--admin-listen", "127.0.0.1:0"});
        args.insert(args.end(), extra.begin(), extra.end());
        std::vector<char*> argv;
        for (auto& a : args) argv.push_back(a.data());
        argv.push_back(nullptr);
        int out[2];
        if (pipe(out) != 0) throw std::runtime_error("pipe");
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_adddup2(&fa, out[1], 1);
        posix_spawn_file_actions_addclose(&fa, out[0]);
        if (!stderr_file.empty())
            posix_spawn_file_actions_addopen(&fa, 2, stderr_file.c_str(),
                                             O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (posix_spawn(&pid_, argv[0], &fa, nullptr, argv.data(), environ) != 0)
            throw std::runtime_error("cannot start warrend");
        posix_spawn_file_actions_destroy(&fa);
        close(out[1]);
        out_ = out[0];
        for (;;) {
            std::string line = read_stdout_line(20'000);
            auto colon = line.rfind(':');
            if (colon == std::string::npos)
                throw std::runtime_error("warrend did not report listening: '" + line + "'");
            auto p = static_cast<uint16_t>(std::stoi(line.substr(colon + 1)));
            if (line.rfind("admin listening on ", 0) == 0) {
                admin_port = p;
            } else if (line.rfind("irc listening on ", 0) == 0) {
                irc_port = p;
            } else if (line.rfind("ircs listening on ", 0) == 0) {
                ircs_port = p;
            } else if (line.rfind("tls listening on ", 0) == 0) {
                tls_port = p;
            } else if (line.rfind("listening on ", 0) == 0) {
                port = p;
                break;
            } else {
                throw std::runtime_error("unexpected output from warrend: '" + line + "'");
            }
        }
    }
    ~Daemon() {
        if (pid_ > 0) {
            kill(pid_, SIGKILL);
            waitpid(pid_, nullptr, 0);
        }
        if (out_ >= 0) close(out_);
    }
    // Sends `sig` and waits up to timeout_ms for the exit; returns the exit status, or -1.
    int stop(int sig, int timeout_ms = 20'000) {
        kill(pid_, sig);
        auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
        int status = 0;
        while (std::chrono::steady_clock::now() < until) {
            if (waitpid(pid_, &status, WNOHANG) == pid_) {
                pid_ = -1;
                return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        return -1;
    }
    uint16_t port = 0;
    uint16_t admin_port = 0;  // 0 when the admin API is off
    uint16_t irc_port = 0;    // 0 unless --irc-listen was given
    uint16_t ircs_port = 0;   // 0 unless --irc-tls-listen was given
    uint16_t tls_port = 0;    // 0 unless --tls-listen was given
    pid_t pid() const { return pid_; }

  private:
    std::string read_stdout_line(int timeout_ms) {
        std::string line;
        char c;
        auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
        while (std::chrono::steady_clock::now() < until) {
            pollfd p{out_, POLLIN, 0};
            if (poll(&p, 1, 100) <= 0) continue;
            if (read(out_, &c, 1) != 1) break;
            if (c == '\n') return line;
            line.push_back(c);
        }
        return line;
    }
    pid_t pid_ = -1;
    int out_ = -1;
};

// A TCP connection to 127.0.0.1:port (from source_ip when given), with TCP_NODELAY.
inline int connect_loopback(uint16_t port, const char* source_ip = nullptr) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (source_ip) {
        sockaddr_in src{};
        src.sin_family = AF_INET;
        inet_pton(AF_INET, source_ip, &src.sin_addr);
        if (bind(fd, reinterpret_cast<sockaddr*>(&src), sizeof src) != 0) {
            close(fd);
            throw std::runtime_error("cannot bind to " + std::string(source_ip));
        }
    }
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
        close(fd);
        throw std::runtime_error("cannot connect");
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

// The first complete line of `buf` (taken out, without "\r\n"), if there is one.
inline std::optional<std::string> pop_line(std::string& buf) {
    auto nl = buf.find('\n');
    if (nl == std::string::npos) return std::nullopt;
    std::string l = buf.substr(0, nl);
    buf.erase(0, nl + 1);
    if (!l.empty() && l.back() == '\r') l.pop_back();
    return l;
}

class Client {
  public:
    // source_ip: bind to this local address first (any 127.x.y.z works on Linux), so tests
    // can speak from several "addresses".
    explicit Client(uint16_t port, const char* source_ip = nullptr)
        : fd_(connect_loopback(port, source_ip)) {}
    ~Client() { close(fd_); }
    void raw(const std::string& bytes) {
        size_t off = 0;
        while (off < bytes.size()) {
            ssize_t n = ::send(fd_, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
            if (n <= 0) return;
            off += static_cast<size_t>(n);
        }
    }
    void send(const json& j) { raw(j.dump() + "\n"); }
    // The next line, or nullopt on timeout or close.
    std::optional<json> line(int timeout_ms = 10'000) {
        std::optional<std::string> l = text_line(timeout_ms);
        if (!l) return std::nullopt;
        return json::parse(*l);
    }
    // The next line as text (without "\r\n"), or nullopt on timeout or close (IRC).
    std::optional<std::string> text_line(int timeout_ms = 10'000) {
        auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
        for (;;) {
            if (std::optional<std::string> l = pop_line(buf_)) return l;
            auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                            until - std::chrono::steady_clock::now())
                            .count();
            if (left <= 0) return std::nullopt;
            pollfd p{fd_, POLLIN, 0};
            if (poll(&p, 1, static_cast<int>(left)) <= 0) return std::nullopt;
            char tmp[65536];
            ssize_t n = recv(fd_, tmp, sizeof tmp, 0);
            if (n <= 0) return std::nullopt;
            buf_.append(tmp, static_cast<size_t>(n));
        }
    }
    // Sends a request with a fresh id and returns its reply; events meanwhile are kept.
    json call(json req) {
        int64_t id = next_id_++;
        req["id"] = id;
        send(req);
        for (;;) {
            auto l = line();
            if (!l) throw std::runtime_error("no reply to " + req.dump());
            if (l->contains("re") && (*l)["re"] == id) return *l;
            events.push_back(*l);
        }
    }
    // The next event (kept or new), or nullopt on timeout.
    std::optional<json> event(int timeout_ms = 10'000) {
        if (!events.empty()) {
            json e = events.front();
            events.erase(events.begin());
            return e;
        }
        return line(timeout_ms);
    }
    // What is left until the server closes: read `chunk` bytes at a time with `pause_ms`
    // between reads (a slow reader). `reset`: the close was a reset (ECONNRESET), which throws
    // away what the kernel had not handed over yet; `closed`: it ended (reset or FIN) before
    // the timeout.
    struct Rest {
        std::string bytes;
        bool closed = false;
        bool reset = false;
    };
    Rest rest(int timeout_ms = 10'000, size_t chunk = 65536, int pause_ms = 0) {
        Rest r;
        r.bytes.swap(buf_);
        auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
        std::vector<char> tmp(chunk);
        for (;;) {
            auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                            until - std::chrono::steady_clock::now())
                            .count();
            pollfd p{fd_, POLLIN, 0};
            if (left <= 0 || poll(&p, 1, static_cast<int>(left)) <= 0) return r;
            ssize_t n = recv(fd_, tmp.data(), tmp.size(), 0);
            if (n <= 0) {
                r.closed = true;
                r.reset = n < 0 && errno == ECONNRESET;
                return r;
            }
            r.bytes.append(tmp.data(), static_cast<size_t>(n));
            if (pause_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(pause_ms));
        }
    }
    bool closed_by_peer(int timeout_ms = 10'000) {
        pollfd p{fd_, POLLIN, 0};
        if (poll(&p, 1, timeout_ms) <= 0) return false;
        char c;
        return recv(fd_, &c, 1, MSG_PEEK) == 0;
    }
    std::vector<json> events;

  private:
    int fd_ = -1;
    int64_t next_id_ = 1;
    std::string buf_;
};

struct HttpResponse {
    int status = 0;
    std::string headers;  // raw, lower-cased
    std::string body;
};

// One HTTP/1.1 request over a fresh connection (Connection: close), read to the end. Bounded
// by timeout_ms; status 0 when the server closed without answering.
// Sends one raw HTTP request (from `source_ip` when given) and reads the response until the
// server closes or `timeout_ms` passes.
inline HttpResponse http_raw(uint16_t port, const std::string& req, const char* source_ip = nullptr,
                             int timeout_ms = 10'000) {
    int fd = connect_loopback(port, source_ip);
    size_t off = 0;
    while (off < req.size()) {
        ssize_t n = ::send(fd, req.data() + off, req.size() - off, MSG_NOSIGNAL);
        if (n <= 0) break;
        off += static_cast<size_t>(n);
    }
    std::string in;
    auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    for (;;) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                        until - std::chrono::steady_clock::now())
                        .count();
        pollfd p{fd, POLLIN, 0};
        if (left <= 0 || poll(&p, 1, static_cast<int>(left)) <= 0) break;
        char buf[65536];
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n <= 0) break;
        in.append(buf, static_cast<size_t>(n));
    }
    close(fd);
    HttpResponse r;
    auto end = in.find("\r\n\r\n");
    if (in.size() < 12 || end == std::string::npos) return r;
    r.status = std::stoi(in.substr(9, 3));
    r.headers = in.substr(0, end);
    for (auto& c : r.headers) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    r.body = in.substr(end + 4);
    return r;
}

inline HttpResponse http(uint16_t port, const std::string& method, const std::string& target,
                         const std::string& body = {}, const std::string& token = {},
                         int timeout_ms = 10'000) {
    std::string req =
        method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n";
    if (!token.empty()) req += "Authorization: Bearer " + token + "\r\n";
    if (!body.empty() || method == "POST")
        req += "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
               "\r\n";
    req += "\r\n" + body;
    return http_raw(port, req, nullptr, timeout_ms);
}

}  // namespace warren::test
