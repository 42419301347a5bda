// warren: the command-line client. Interactive by default (a line of text goes to the
// current room, /commands do the rest, incoming events print as readable lines); with a
// command (`warren send ROOM TEXT`, `warren history ROOM`, ...) it runs that one request and
// exits 0 on success, 1 on a refused request, 2 on a usage or connection error.
#include <arpa/inet.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

using json = nlohmann::json;

namespace {

class Link {
  public:
    bool open(const std::string& host, const std::string& port) {
        addrinfo hints{};
        hints.ai_socktype = SOCK_STREAM;
        addrinfo* res = nullptr;
        if (getaddrinfo(host.c_str(), port.c_str(), &hints, &res) != 0) return false;
        for (addrinfo* a = res; a; a = a->ai_next) {
            fd_ = socket(a->ai_family, a->ai_socktype, a->ai_protocol);
            if (fd_ >= 0 && connect(fd_, a->ai_addr, a->ai_addrlen) == 0) break;
            if (fd_ >= 0) close(fd_);
            fd_ = -1;
        }
        freeaddrinfo(res);
        return fd_ >= 0;
    }
    ~Link() {
        if (fd_ >= 0) close(fd_);
    }
    int fd() const { return fd_; }
    int64_t send(json req) {
        req["id"] = next_id_;
        std::string line = req.dump() + "\n";
        size_t off = 0;
        while (off < line.size()) {
            ssize_t n = ::send(fd_, line.data() + off, line.size() - off, MSG_NOSIGNAL);
            if (n <= 0) return -1;
            off += static_cast<size_t>(n);
        }
        return next_id_++;
    }
    // A complete line already buffered, if any.
    std::optional<json> buffered_line() {
        auto nl = buf_.find('\n');
        if (nl == std::string::npos) return std::nullopt;
        std::string line = buf_.substr(0, nl);
        buf_.erase(0, nl + 1);
        json j = json::parse(line, nullptr, false);
        if (j.is_discarded()) j = json{{"ev", "?"}, {"raw", line}};
        return j;
    }
    // Reads once from the socket; false when the server closed the connection.
    bool fill() {
        char tmp[16384];
        ssize_t n = recv(fd_, tmp, sizeof tmp, 0);
        if (n <= 0) return false;
        buf_.append(tmp, static_cast<size_t>(n));
        return true;
    }
    std::optional<json> next_line() {
        for (;;) {
            if (auto j = buffered_line()) return j;
            if (!fill()) return std::nullopt;
        }
    }

  private:
    int fd_ = -1;
    int64_t next_id_ = 1;
    std::string buf_;
};

std::string describe(const json& m) {
    std::string where = m["room"].is_string() ? "[" + m["room"].get<std::string>() + "]" : "[dm]";
    std::string s = where + " #" + std::to_string(m.value("id", 0)) + " " +
                    m.value("author", std::string("?")) + ": " + m.value("text", std::string());
    if (m.contains("reply_to") && m["reply_to"].is_number())
        s += "  (reply to #" + std::to_string(m["reply_to"].get<int64_t>()) + ")";
    return s;
}

void print_event(const json& ev) {
    std::string kind = ev.value("ev", std::string());
    if (kind == "MESSAGE")
        std::cout << describe(ev["message"]) << "\n";
    else if (kind == "MEMBER_JOINED")
        std::cout << "* " << ev.value("user", "") << " joined " << ev.value("room", "") << "\n";
    else if (kind == "MEMBER_LEFT")
        std::cout << "* " << ev.value("user", "") << " left " << ev.value("room", "") << "\n";
    else if (kind == "DISCONNECT")
        std::cout << "* disconnected by server: " << ev.value("reason", "") << "\n";
    else if (kind != "HELLO")
        std::cout << "* " << ev.dump() << "\n";
    std::cout.flush();
}

// Sends a request and waits for its reply, printing events that arrive meanwhile.
std::optional<json> call(Link& link, json req, bool show_events) {
    int64_t id = link.send(std::move(req));
    if (id < 0) return std::nullopt;
    while (auto line = link.next_line()) {
        if (line->contains("re") && (*line)["re"] == id) return line;
        if (line->contains("ev")) {
            if (show_events) print_event(*line);
            if ((*line)["ev"] == "DISCONNECT") return std::nullopt;
        }
    }
    return std::nullopt;
}

bool report(const std::optional<json>& reply) {
    if (!reply) {
        std::cerr << "connection lost\n";
        return false;
    }
    if ((*reply)["ok"] == true) return true;
    const json& e = (*reply)["error"];
    std::cerr << "error " << e.value("code", "") << ": " << e.value("message", "");
    if (e.contains("field")) std::cerr << " (field " << e["field"].get<std::string>() << ")";
    std::cerr << "\n";
    return false;
}

void print_result(const json& reply) {
    if (reply.contains("messages")) {
        for (const auto& m : reply["messages"]) std::cout << describe(m) << "\n";
        if (reply.value("has_more", false)) std::cout << "(older messages exist)\n";
    } else if (reply.contains("rooms")) {
        for (const auto& r : reply["rooms"])
            std::cout << r["name"].get<std::string>() << " (" << r["visibility"].get<std::string>()
                      << ", " << r["members"] << " members) " << r["topic"].get<std::string>()
                      << "\n";
    } else if (reply.contains("message")) {
        std::cout << describe(reply["message"]) << "\n";
    } else if (reply.contains("room")) {
        std::cout << "room " << reply["room"]["name"].get<std::string>() << "\n";
    } else if (reply.contains("pong")) {
        std::cout << "pong\n";
    }
}

void help() {
    std::cout << "commands: /create ROOM [private] | /join ROOM | /leave [ROOM] | /rooms |\n"
                 "          /history [N] | /room ROOM (switch) | /quit\n"
                 "any other line is sent to the current room\n";
}

int interactive(Link& link, std::string room) {
    help();
    std::string in;
    for (;;) {
        pollfd fds[2] = {{0, POLLIN, 0}, {link.fd(), POLLIN, 0}};
        if (poll(fds, 2, -1) < 0) return 2;
        if (fds[1].revents) {
            if (!link.fill()) {
                while (auto l = link.buffered_line()) print_event(*l);
                std::cout << "connection closed\n";
                return 0;
            }
            while (auto l = link.buffered_line())
                if (l->contains("ev")) print_event(*l);
        }
        if (!fds[0].revents) continue;
        if (!std::getline(std::cin, in)) return 0;
        if (in.empty()) continue;
        std::optional<json> reply;
        std::istringstream words(in);
        std::string cmd, arg;
        words >> cmd >> arg;
        if (in[0] != '/') {
            if (room.empty()) {
                std::cout << "join a room first (/join ROOM)\n";
                continue;
            }
            reply = call(link, {{"op", "SEND_MESSAGE"}, {"room", room}, {"text", in}}, true);
        } else if (cmd == "/quit") {
            return 0;
        } else if (cmd == "/join" || cmd == "/create") {
            std::string vis;
            words >> vis;
            json req = {{"op", cmd == "/join" ? "JOIN_ROOM" : "CREATE_ROOM"}, {"room", arg}};
            if (vis == "private") req["visibility"] = "private";
            reply = call(link, req, true);
            if (reply && (*reply)["ok"] == true) room = arg;
        } else if (cmd == "/room") {
            room = arg;
            continue;
        } else if (cmd == "/leave") {
            reply = call(link, {{"op", "LEAVE_ROOM"}, {"room", arg.empty() ? room : arg}}, true);
        } else if (cmd == "/rooms") {
            reply = call(link, {{"op", "LIST_ROOMS"}}, true);
        } else if (cmd == "/history") {
            json req = {{"op", "HISTORY"}, {"room", room}};
            if (!arg.empty()) req["limit"] = std::atoi(arg.c_str());
            reply = call(link, req, true);
        } else {
            help();
            continue;
        }
        if (!reply) return 1;
        if (report(reply)) print_result(*reply);
    }
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"warren: Warren chat client"};
    std::string server = "127.0.0.1:7070", user, password, token;
    bool do_register = false;
    app.add_option("-s,--server", server, "HOST:PORT of the server");
    app.add_option("-u,--user", user, "username");
    app.add_option("-p,--password", password, "password (or set WARREN_PASSWORD)");
    app.add_option("-t,--token", token, "log in with a session token instead");
    app.add_flag("--register", do_register, "create the account first");
    std::string room, text;
    int64_t limit = 0;
    auto* send = app.add_subcommand("send", "send TEXT to ROOM");
    send->add_option("room", room)->required();
    send->add_option("text", text)->required();
    auto* history = app.add_subcommand("history", "print ROOM's recent messages");
    history->add_option("room", room)->required();
    history->add_option("--limit", limit);
    auto* rooms = app.add_subcommand("rooms", "list rooms");
    auto* create = app.add_subcommand("create", "create ROOM");
    create->add_option("room", room)->required();
    auto* join = app.add_subcommand("join", "join ROOM");
    join->add_option("room", room)->required();
    auto* leave = app.add_subcommand("leave", "leave ROOM");
    leave->add_option("room", room)->required();
    auto* ping = app.add_subcommand("ping", "check the server answers");
    auto* chat = app.add_subcommand("chat", "interactive session (the default)");
    chat->add_option("room", room);
    CLI11_PARSE(app, argc, argv);

    if (password.empty())
        if (const char* env = std::getenv("WARREN_PASSWORD")) password = env;
    auto colon = server.rfind(':');
    if (colon == std::string::npos) {
        std::cerr << "--server must be HOST:PORT\n";
        return 2;
    }
    Link link;
    if (!link.open(server.substr(0, colon), server.substr(colon + 1))) {
        std::cerr << "cannot connect to " << server << "\n";
        return 2;
    }
    auto hello = link.next_line();
    if (!hello || (*hello)["ev"] != "HELLO") {
        std::cerr << "no HELLO from server" << (hello ? ": " + hello->dump() : "") << "\n";
        return 2;
    }
    if (!ping->parsed()) {
        bool is_interactive = app.get_subcommands().empty() || chat->parsed();
        if (user.empty() && token.empty() && is_interactive) {
            std::cout << "username: " << std::flush;
            std::getline(std::cin, user);
            if (password.empty()) {
                std::cout << "password: " << std::flush;
                std::getline(std::cin, password);
            }
        }
        json login = token.empty() ? json{{"op", do_register ? "REGISTER" : "LOGIN"},
                                          {"username", user},
                                          {"password", password}}
                                   : json{{"op", "LOGIN"}, {"token", token}};
        auto reply = call(link, login, false);
        if (!report(reply)) return 1;
        if (is_interactive)
            std::cout << "logged in as " << (*reply)["user"]["username"].get<std::string>()
                      << " (token " << (*reply)["session"]["token"].get<std::string>() << ")\n";
    }
    json req;
    if (send->parsed())
        req = {{"op", "SEND_MESSAGE"}, {"room", room}, {"text", text}};
    else if (history->parsed()) {
        req = {{"op", "HISTORY"}, {"room", room}};
        if (limit > 0) req["limit"] = limit;
    } else if (rooms->parsed())
        req = {{"op", "LIST_ROOMS"}};
    else if (create->parsed())
        req = {{"op", "CREATE_ROOM"}, {"room", room}};
    else if (join->parsed())
        req = {{"op", "JOIN_ROOM"}, {"room", room}};
    else if (leave->parsed())
        req = {{"op", "LEAVE_ROOM"}, {"room", room}};
    else if (ping->parsed())
        req = {{"op", "PING"}};
    else
        return interactive(link, room);
    auto reply = call(link, req, false);
    if (!report(reply)) return 1;
    print_result(*reply);
    return 0;
}
