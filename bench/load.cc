// warren-load: a load generator for a running warrend, over real TCP. N clients register
// and join one room; S of them send M messages each (as fast as acknowledgements allow, or
// at a total --rate per second); every client counts the MESSAGE events it receives.
// Reports acknowledged messages per second, deliveries per second and delivery latency
// (send -> event received, p50/p99/max), as text and as one JSON line (--json).
//
// Each message's text carries its send time, so latency needs no clock sync: sender and
// receivers share this process's steady clock. One thread, non-blocking sockets, poll().
// Run the server with limits that let the load through: bench/load.toml.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

namespace {

int64_t now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

struct Client {
    int fd = -1;
    std::string in, out;
    int64_t next_id = 1;
    bool ready = false;        // logged in and in the room
    int to_send = 0;           // messages still to send (senders)
    int unacked = 0;           // sent, not yet acknowledged
    int64_t next_send_ns = 0;  // paced mode
};

struct Totals {
    int64_t acks = 0, refusals = 0, deliveries = 0, ready = 0;
    std::vector<int64_t> latency_ns;
    std::string first_error;
};

bool connect_client(Client& c, const std::string& host, uint16_t port) {
    c.fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    if (inet_pton(AF_INET, host.c_str(), &a.sin_addr) != 1) return false;
    if (connect(c.fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return false;
    int one = 1;
    setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    fcntl(c.fd, F_SETFL, fcntl(c.fd, F_GETFL) | O_NONBLOCK);
    return true;
}

void request(Client& c, const std::string& op_and_args) {
    c.out += "{\"id\":" + std::to_string(c.next_id++) + "," + op_and_args + "}\n";
}

// Handles one line from the server. Replies are counted by kind; MESSAGE events carry the
// send time after "t=".
void on_line(Client& c, std::string_view line, Totals& t, int64_t setup_replies) {
    if (line.starts_with("{\"ev\":\"MESSAGE\"")) {
        size_t at = line.find("t=");
        if (at != std::string_view::npos) {
            int64_t sent = std::strtoll(line.data() + at + 2, nullptr, 10);
            t.latency_ns.push_back(now_ns() - sent);
        }
        ++t.deliveries;
        return;
    }
    if (!line.starts_with("{\"re\":")) return;
    int64_t re = std::strtoll(line.data() + 6, nullptr, 10);
    bool ok = line.find("\"ok\":true") != std::string_view::npos;
    if (!ok && t.first_error.empty()) t.first_error = std::string(line.substr(0, 200));
    if (re <= setup_replies) {
        if (!ok && line.find("CONFLICT") == std::string_view::npos) {
            std::fprintf(stderr, "setup failed: %.200s\n", std::string(line).c_str());
            std::exit(1);
        }
        if (re == setup_replies && ok && !c.ready) {
            c.ready = true;
            ++t.ready;
        }
        return;
    }
    --c.unacked;
    ok ? ++t.acks : ++t.refusals;
}

// CPU seconds (user + system) the process has used so far, from /proc; -1 if unknown.
double cpu_seconds(int pid) {
    std::FILE* f = std::fopen(("/proc/" + std::to_string(pid) + "/stat").c_str(), "r");
    if (!f) return -1;
    char stat[4096];
    size_t n = std::fread(stat, 1, sizeof stat - 1, f);
    std::fclose(f);
    stat[n] = 0;
    const char* p = std::strrchr(stat, ')');  // the command name may hold spaces
    unsigned long long utime = 0, stime = 0;
    if (!p || std::sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime,
                          &stime) != 2)
        return -1;
    return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"warren-load: drive a running warrend and measure throughput and latency"};
    std::string server = "127.0.0.1:7070", room = "load";
    int clients = 50, senders = 50, messages = 200, window = 32;
    double rate = 0;
    int64_t timeout_s = 120;
    bool json_out = false;
    int server_pid = 0;
    app.add_option("--server", server, "HOST:PORT (IPv4)");
    app.add_option("--clients", clients, "connections, each its own account, all in one room");
    app.add_option("--senders", senders, "how many of them send");
    app.add_option("--messages", messages, "messages per sender");
    app.add_option("--rate", rate, "total messages per second (0: as fast as acks allow)");
    app.add_option("--window", window, "unacknowledged messages per sender at most");
    app.add_option("--room", room, "room name (created if missing)");
    app.add_option("--timeout", timeout_s, "give up after this many seconds");
    app.add_flag("--json", json_out, "also print one JSON line");
    app.add_option("--pid", server_pid,
                   "the server's process id: report the CPU it used from the first message on");
    CLI11_PARSE(app, argc, argv);
    senders = std::min(senders, clients);
    auto colon = server.rfind(':');
    std::string host = server.substr(0, colon);
    auto port = static_cast<uint16_t>(std::stoi(server.substr(colon + 1)));

    std::vector<Client> cs(static_cast<size_t>(clients));
    std::string tag = std::to_string(std::random_device{}() % 1000000);
    for (int i = 0; i < clients; ++i) {
        if (!connect_client(cs[static_cast<size_t>(i)], host, port)) {
            std::fprintf(stderr, "cannot connect client %d to %s\n", i, server.c_str());
            return 2;
        }
        if (i < senders) cs[static_cast<size_t>(i)].to_send = messages;
    }
    // REGISTER then CREATE_ROOM (client 0) or JOIN_ROOM, pipelined (the server reads lines
    // after a REGISTER only once it is done), a few clients at a time so the server's
    // password-hashing queue never overflows.
    constexpr int setups_at_once = 8;
    int setups_started = 0;
    auto start_setups = [&](const Totals& t) {
        while (setups_started < clients && setups_started - t.ready < setups_at_once) {
            int i = setups_started++;
            Client& c = cs[static_cast<size_t>(i)];
            request(c, "\"op\":\"REGISTER\",\"username\":\"l" + tag + "_" + std::to_string(i) +
                           "\",\"password\":\"load-password\"");
            if (i == 0) request(c, "\"op\":\"CREATE_ROOM\",\"room\":\"" + room + "\"");
            request(c, "\"op\":\"JOIN_ROOM\",\"room\":\"" + room + "\"");
            if (i == 0) break;  // the room must exist before anyone joins it
        }
    };
    // Setup replies per client: REGISTER, [CREATE_ROOM], JOIN_ROOM; ids count from 1.
    Totals t;
    t.latency_ns.reserve(static_cast<size_t>(senders) * messages * (clients - 1));
    int64_t start = 0, interval_ns = rate > 0 ? static_cast<int64_t>(1e9 * senders / rate) : 0;
    int64_t deadline = now_ns() + timeout_s * 1'000'000'000;
    int64_t expected = static_cast<int64_t>(senders) * messages * (clients - 1);
    int64_t total_msgs = static_cast<int64_t>(senders) * messages;
    double cpu_start = -1;
    std::vector<pollfd> pfds(cs.size());
    char buf[65536];
    for (;;) {
        int64_t now = now_ns();
        if (now > deadline) {
            std::fprintf(stderr, "timed out\n");
            break;
        }
        if (setups_started < clients && (setups_started > 1 || t.ready == 1 || setups_started == 0))
            start_setups(t);
        if (start == 0 && t.ready == clients) {
            start = now;
            if (server_pid > 0) cpu_start = cpu_seconds(server_pid);
            for (auto& c : cs) c.next_send_ns = now;
        }
        if (start && t.acks + t.refusals == total_msgs && t.deliveries >= expected) break;
        int64_t wait_ns = 50'000'000;
        for (size_t i = 0; i < cs.size(); ++i) {
            Client& c = cs[i];
            while (start && c.to_send > 0 && c.unacked < window && now >= c.next_send_ns) {
                request(c, "\"op\":\"SEND_MESSAGE\",\"room\":\"" + room +
                               "\",\"text\":\"t=" + std::to_string(now_ns()) + " load\"");
                --c.to_send;
                ++c.unacked;
                if (interval_ns) c.next_send_ns += interval_ns;
            }
            if (start && c.to_send > 0 && interval_ns)
                wait_ns = std::min(wait_ns, std::max<int64_t>(0, c.next_send_ns - now));
            if (!c.out.empty()) {
                ssize_t n = send(c.fd, c.out.data(), c.out.size(), MSG_NOSIGNAL);
                if (n > 0) c.out.erase(0, static_cast<size_t>(n));
            }
            pfds[i] = {c.fd, static_cast<short>(POLLIN | (c.out.empty() ? 0 : POLLOUT)), 0};
        }
        if (poll(pfds.data(), pfds.size(), static_cast<int>(wait_ns / 1'000'000)) < 0) return 2;
        for (size_t i = 0; i < cs.size(); ++i) {
            if (!(pfds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            Client& c = cs[i];
            ssize_t n = recv(c.fd, buf, sizeof buf, 0);
            if (n <= 0) {
                std::fprintf(stderr, "client %zu: connection closed by the server (last: %.200s)\n",
                             i, c.in.c_str());
                return 1;
            }
            c.in.append(buf, static_cast<size_t>(n));
            size_t pos = 0, nl;
            while ((nl = c.in.find('\n', pos)) != std::string::npos) {
                std::string_view line = std::string_view(c.in).substr(pos, nl - pos);
                if (line.starts_with("{\"ev\":\"DISCONNECT\"")) {
                    std::fprintf(stderr, "client %zu: %.200s\n", i, std::string(line).c_str());
                    return 1;
                }
                on_line(c, line, t, i == 0 ? 3 : 2);
                pos = nl + 1;
            }
            c.in.erase(0, pos);
        }
    }
    double secs = start ? static_cast<double>(now_ns() - start) / 1e9 : 0;
    double cpu_end = server_pid > 0 ? cpu_seconds(server_pid) : -1;
    double server_cpu = cpu_start >= 0 && cpu_end >= 0 ? cpu_end - cpu_start : -1;
    std::sort(t.latency_ns.begin(), t.latency_ns.end());
    auto pct = [&](double p) {
        if (t.latency_ns.empty()) return 0.0;
        size_t k = std::min(t.latency_ns.size() - 1,
                            static_cast<size_t>(p * static_cast<double>(t.latency_ns.size())));
        return static_cast<double>(t.latency_ns[k]) / 1e6;
    };
    double acks_s = secs > 0 ? static_cast<double>(t.acks) / secs : 0;
    double deliveries_s = secs > 0 ? static_cast<double>(t.deliveries) / secs : 0;
    std::printf(
        "clients=%d senders=%d messages=%d acked=%lld refused=%lld deliveries=%lld/%lld "
        "seconds=%.3f acks/s=%.0f deliveries/s=%.0f latency_ms p50=%.3f p99=%.3f max=%.3f\n",
        clients, senders, messages, static_cast<long long>(t.acks),
        static_cast<long long>(t.refusals), static_cast<long long>(t.deliveries),
        static_cast<long long>(expected), secs, acks_s, deliveries_s, pct(0.5), pct(0.99),
        pct(1.0));
    if (server_cpu >= 0 && t.acks > 0)
        std::printf("server cpu=%.3f s, %.2f us per acknowledged message\n", server_cpu,
                    server_cpu * 1e6 / static_cast<double>(t.acks));
    if (!t.first_error.empty()) std::printf("first error: %s\n", t.first_error.c_str());
    if (json_out)
        std::printf(
            "{\"acked\":%lld,\"refused\":%lld,\"deliveries\":%lld,\"expected\":%lld,\"seconds\":%."
            "3f,"
            "\"acks_per_s\":%.0f,\"deliveries_per_s\":%.0f,\"p50_ms\":%.3f,\"p99_ms\":%.3f,"
            "\"server_cpu_s\":%.3f}\n",
            static_cast<long long>(t.acks), static_cast<long long>(t.refusals),
            static_cast<long long>(t.deliveries), static_cast<long long>(expected), secs, acks_s,
            deliveries_s, pct(0.5), pct(0.99), server_cpu);
    for (auto& c : cs) close(c.fd);
    bool complete = t.acks == total_msgs && t.deliveries == expected;
    return complete ? 0 : 1;
}
