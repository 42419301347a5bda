// warren: the command-line client. Interactive by default (a line of text goes to the
// current room, /commands do the rest, incoming events print as readable lines); with a
// command (`warren send ROOM TEXT`, `warren history ROOM`, ...) it runs that one request and
// exits 0 on success, 1 on a refused request, 2 on a usage or connection error.
#include <arpa/inet.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

using json = nlohmann::json;

namespace {

// How to reach the server over TLS: off, or verified against the system's CAs or `ca_file`
// (a private CA, or the server's own self-signed certificate), with the host name (or IP
// address) checked against the certificate.
struct TlsChoice {
    bool on = false;
    std::string ca_file;
};

class Link {
  public:
    // Connects, and with TLS completes the handshake; false with `error` set.
    bool open(const std::string& host, const std::string& port, const TlsChoice& tls,
              std::string& error) {
        if (!connect_tcp(host, port)) {
            error = "cannot connect to " + host + ":" + port;
            return false;
        }
        if (tls.on && !handshake(host, tls, error)) return false;
        return true;
    }
    bool connect_tcp(const std::string& host, const std::string& port) {
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
        if (ssl_) SSL_free(ssl_);
        if (ctx_) SSL_CTX_free(ctx_);
        if (fd_ >= 0) close(fd_);
    }
    bool handshake(const std::string& host, const TlsChoice& tls, std::string& error) {
        ctx_ = SSL_CTX_new(TLS_client_method());
        SSL_CTX_set_min_proto_version(ctx_, TLS1_2_VERSION);
        bool trusted = tls.ca_file.empty()
                           ? SSL_CTX_set_default_verify_paths(ctx_) == 1
                           : SSL_CTX_load_verify_locations(ctx_, tls.ca_file.c_str(), nullptr) == 1;
        if (!trusted) {
            error = "cannot load the CA certificates" +
                    (tls.ca_file.empty() ? std::string() : " of " + tls.ca_file);
            return false;
        }
        SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER, nullptr);
        ssl_ = SSL_new(ctx_);
        in6_addr ip6{};
        in_addr ip4{};
        bool is_ip = inet_pton(AF_INET, host.c_str(), &ip4) == 1 ||
                     inet_pton(AF_INET6, host.c_str(), &ip6) == 1;
        X509_VERIFY_PARAM* param = SSL_get0_param(ssl_);
        if (is_ip) {
            X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str());
        } else {
            SSL_set_tlsext_host_name(ssl_, host.c_str());
            X509_VERIFY_PARAM_set1_host(param, host.c_str(), 0);
        }
        SSL_set_fd(ssl_, fd_);
        if (SSL_connect(ssl_) != 1) {
            long verify = SSL_get_verify_result(ssl_);
            error = "TLS handshake with " + host + " failed: ";
            error += verify != X509_V_OK ? X509_verify_cert_error_string(verify)
                                         : ERR_reason_error_string(ERR_get_error());
            return false;
        }
        return true;
    }
    int fd() const { return fd_; }
    int64_t send(json req) {
        req["id"] = next_id_;
        std::string line = req.dump() + "\n";
        size_t off = 0;
        while (off < line.size()) {
            ssize_t n = ssl_ ? SSL_write(ssl_, line.data() + off, static_cast<int>(line.size() - off))
                             : ::send(fd_, line.data() + off, line.size() - off, MSG_NOSIGNAL);
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
    // Reads once from the socket (over TLS: also whatever the TLS engine already holds, which
    // the socket's readiness would not show); false when the server closed the connection.
    bool fill() {
        char tmp[16384];
        if (!ssl_) {
            ssize_t n = recv(fd_, tmp, sizeof tmp, 0);
            if (n <= 0) return false;
            buf_.append(tmp, static_cast<size_t>(n));
            return true;
        }
        do {
            int n = SSL_read(ssl_, tmp, sizeof tmp);
            if (n <= 0) return false;
            buf_.append(tmp, static_cast<size_t>(n));
        } while (SSL_pending(ssl_) > 0);
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
    SSL_CTX* ctx_ = nullptr;
    SSL* ssl_ = nullptr;
    int64_t next_id_ = 1;
    std::string buf_;
};

// Text from the server as it may safely reach a terminal: controls (escape sequences above
// all), C1 controls and direction overrides are shown as \xNN / \uNNNN, and a newline
// starts an indented continuation line, so a message cannot forge a line of its own.
std::string shown(std::string_view s) {
    static constexpr char hex[] = "0123456789abcdef";
    std::string out;
    out.reserve(s.size());
    for (size_t i = 0; i < s.size(); ++i) {
        auto c = static_cast<unsigned char>(s[i]);
        auto next = [&](size_t k) {
            return i + k < s.size() ? static_cast<unsigned char>(s[i + k]) : 0;
        };
        if (c == '\n') {
            out += "\n    ";
        } else if (c == '\t') {
            out += '\t';
        } else if (c < 0x20 || c == 0x7F) {
            out += "\\x";
            out += hex[c >> 4];
            out += hex[c & 0xF];
        } else if (c == 0xC2 && next(1) >= 0x80 && next(1) <= 0x9F) {
            out += "\\u00";
            out += hex[next(1) >> 4];
            out += hex[next(1) & 0xF];
            ++i;
        } else if (c == 0xE2 && ((next(1) == 0x80 && (next(2) == 0x8E || next(2) == 0x8F ||
                                                      (next(2) >= 0xAA && next(2) <= 0xAE))) ||
                                 (next(1) == 0x81 && next(2) >= 0xA6 && next(2) <= 0xA9))) {
            unsigned cp = 0x2000 | ((next(1) & 0x3F) << 6) | (next(2) & 0x3F);
            out += "\\u";
            for (int shift = 12; shift >= 0; shift -= 4) out += hex[(cp >> shift) & 0xF];
            i += 2;
        } else {
            out += static_cast<char>(c);
        }
    }
    return out;
}

// A string field of a JSON object, shown safely ("" when absent).
std::string field(const json& j, const char* key) {
    return j.contains(key) && j[key].is_string() ? shown(j[key].get<std::string>()) : std::string();
}

std::string describe(const json& m) {
    std::string author = m["author"].is_string() ? field(m, "author") : "?";
    std::string where =
        m["room"].is_string()
            ? "[" + field(m, "room") + "]"
            : "[dm " + author + " -> " + (m["to"].is_string() ? field(m, "to") : "?") + "]";
    std::string s = where + " #" + std::to_string(m.value("id", 0)) + " " + author;
    if (m.value("deleted", false)) return s + " (message deleted)";
    if (m.contains("edited_ts") && m["edited_ts"].is_number()) s += " (edited)";
    s += ": " + field(m, "text");
    if (m.contains("reply_to") && m["reply_to"].is_number())
        s += "  (reply to #" + std::to_string(m["reply_to"].get<int64_t>()) + ")";
    if (m.contains("reactions") && !m["reactions"].empty()) {
        s += "  [";
        bool first = true;
        for (auto& [emoji, users] : m["reactions"].items()) {
            s += (first ? "" : "; ") + shown(emoji);
            for (const auto& u : users) s += " " + shown(u.get<std::string>());
            first = false;
        }
        s += "]";
    }
    return s;
}

std::string describe_invitation(const json& inv) {
    return "invitation " + std::to_string(inv.value("id", 0)) + ": " + field(inv, "from") +
           " invited " + field(inv, "to") + " to " + field(inv, "room");
}

void print_event(const json& ev) {
    std::string kind = ev.value("ev", std::string());
    std::string where = ev.contains("room") && ev["room"].is_string()
                            ? field(ev, "room")
                            : "conversation with " + field(ev, "with");
    if (kind == "MESSAGE" || kind == "DIRECT_MESSAGE")
        std::cout << describe(ev["message"]) << "\n";
    else if (kind == "MESSAGE_EDITED")
        std::cout << describe(ev["message"]) << "\n";
    else if (kind == "MESSAGE_DELETED")
        std::cout << "* message #" << ev.value("message_id", 0) << " deleted in " << where << "\n";
    else if (kind == "REACTION_ADDED" || kind == "REACTION_REMOVED")
        std::cout << "* " << field(ev, "user")
                  << (kind == "REACTION_ADDED" ? " reacted " : " took back ") << field(ev, "emoji")
                  << " on #" << ev.value("message_id", 0) << "\n";
    else if (kind == "MEMBER_JOINED")
        std::cout << "* " << field(ev, "user") << " joined " << field(ev, "room") << "\n";
    else if (kind == "MEMBER_LEFT")
        std::cout << "* " << field(ev, "user") << " left " << field(ev, "room") << "\n";
    else if (kind == "PRESENCE")
        std::cout << "* " << field(ev, "user") << " is "
                  << (ev.value("online", false) ? "online" : "offline") << "\n";
    else if (kind == "TOPIC_CHANGED")
        std::cout << "* " << field(ev, "by") << " set the topic of " << field(ev, "room") << ": "
                  << field(ev, "topic") << "\n";
    else if (kind == "INVITATION")
        std::cout << "* " << describe_invitation(ev["invitation"]) << "  (/accept "
                  << ev["invitation"].value("id", 0) << " or /decline "
                  << ev["invitation"].value("id", 0) << ")\n";
    else if (kind == "INVITATION_ACCEPTED" || kind == "INVITATION_DECLINED")
        std::cout << "* " << field(ev["invitation"], "to")
                  << (kind == "INVITATION_ACCEPTED" ? " accepted " : " declined ")
                  << describe_invitation(ev["invitation"]) << "\n";
    else if (kind == "READ_MARKER")
        std::cout << "* read up to #" << ev.value("message_id", 0) << " in " << where << "\n";
    else if (kind == "DISCONNECT")
        std::cout << "* disconnected by server: " << field(ev, "reason") << "\n";
    else if (kind != "HELLO")
        std::cout << "* " << shown(ev.dump()) << "\n";
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
    std::cerr << "error " << field(e, "code") << ": " << field(e, "message");
    if (e.contains("field")) std::cerr << " (field " << e["field"].get<std::string>() << ")";
    if (e.contains("retry_after_ms"))
        std::cerr << " (retry after " << e["retry_after_ms"] << " ms)";
    std::cerr << "\n";
    return false;
}

void print_result(const json& reply) {
    if (reply.contains("messages")) {
        for (const auto& m : reply["messages"]) std::cout << describe(m) << "\n";
        if (reply.value("has_more", false)) std::cout << "(more messages exist)\n";
    } else if (reply.contains("results")) {
        for (const auto& m : reply["results"]) std::cout << describe(m) << "\n";
        if (reply["results"].empty()) std::cout << "(no matches)\n";
    } else if (reply.contains("root")) {
        std::cout << describe(reply["root"]) << "\n";
        for (const auto& m : reply["replies"]) std::cout << "  " << describe(m) << "\n";
        if (reply.value("has_more", false)) std::cout << "  (more replies exist)\n";
    } else if (reply.contains("rooms")) {
        for (const auto& r : reply["rooms"])
            std::cout << field(r, "name") << " (" << field(r, "visibility") << ", " << r["members"]
                      << " members) " << field(r, "topic") << "\n";
    } else if (reply.contains("users")) {
        for (const auto& u : reply["users"])
            std::cout << field(u, "username") << (u.value("online", false) ? " (online)" : "")
                      << "\n";
    } else if (reply.contains("invitations")) {
        for (const auto& inv : reply["invitations"]) std::cout << describe_invitation(inv) << "\n";
        if (reply["invitations"].empty()) std::cout << "(no pending invitations)\n";
    } else if (reply.contains("certificates")) {
        for (const auto& c : reply["certificates"]) std::cout << field(c, "fingerprint") << "\n";
        if (reply["certificates"].empty()) std::cout << "(no certificates)\n";
    } else if (reply.contains("invitation")) {
        std::cout << describe_invitation(reply["invitation"]) << "\n";
    } else if (reply.contains("message")) {
        std::cout << describe(reply["message"]) << "\n";
    } else if (reply.contains("room")) {
        std::cout << "room " << field(reply["room"], "name") << ": "
                  << field(reply["room"], "topic") << "\n";
    } else if (reply.contains("pong")) {
        std::cout << "pong\n";
    } else {
        std::cout << "ok\n";
    }
}

// `rest` joins the words from index i on, for free text.
std::string rest(const std::vector<std::string>& w, size_t i) {
    std::string s;
    for (; i < w.size(); ++i) s += (s.empty() ? "" : " ") + w[i];
    return s;
}

json id_or_room(const std::string& arg) {
    bool numeric = !arg.empty() && arg.find_first_not_of("0123456789") == std::string::npos;
    return numeric ? json{{"invitation_id", std::stoll(arg)}} : json{{"room", arg}};
}

int64_t number(const std::string& s) {
    return s.find_first_not_of("0123456789") == std::string::npos && !s.empty() ? std::stoll(s)
                                                                                : -1;
}

// One command (words[0]) with its arguments to a request; nullopt with a usage line printed
// when the words do not fit. `room`/`with` are the interactive defaults.
std::optional<json> request_for(const std::vector<std::string>& w, const std::string& room,
                                const std::string& with) {
    const std::string& c = w[0];
    auto need = [&](size_t n, const char* usage) {
        if (w.size() >= n + 1) return true;
        std::cerr << "usage: " << usage << "\n";
        return false;
    };
    auto target = [&](json req) {  // the current room or conversation
        if (!with.empty())
            req["with"] = with;
        else
            req["room"] = room;
        return req;
    };
    if (c == "send" && need(2, "send ROOM TEXT"))
        return json{{"op", "SEND_MESSAGE"}, {"room", w[1]}, {"text", rest(w, 2)}};
    if (c == "dm" && need(2, "dm USER TEXT"))
        return json{{"op", "DIRECT_MESSAGE"}, {"to", w[1]}, {"text", rest(w, 2)}};
    if (c == "reply" && need(2, "reply MESSAGE_ID TEXT")) {
        json req = with.empty() ? json{{"op", "SEND_MESSAGE"}, {"room", room}}
                                : json{{"op", "DIRECT_MESSAGE"}, {"to", with}};
        req["text"] = rest(w, 2);
        req["reply_to"] = number(w[1]);
        return req;
    }
    if (c == "history") {
        json req =
            w.size() > 1 ? json{{"op", "HISTORY"}, {"room", w[1]}} : target({{"op", "HISTORY"}});
        if (w.size() > 2) req["limit"] = number(w[2]);
        return req;
    }
    if (c == "dm-history" && need(1, "dm-history USER"))
        return json{{"op", "HISTORY"}, {"with", w[1]}};
    if (c == "rooms") return json{{"op", "LIST_ROOMS"}};
    if (c == "create" && need(1, "create ROOM [private] [TOPIC...]")) {
        json req{{"op", "CREATE_ROOM"}, {"room", w[1]}};
        size_t topic_from = 2;
        if (w.size() > 2 && w[2] == "private") req["visibility"] = "private", topic_from = 3;
        if (w.size() > topic_from) req["topic"] = rest(w, topic_from);
        return req;
    }
    if (c == "join" && need(1, "join ROOM")) return json{{"op", "JOIN_ROOM"}, {"room", w[1]}};
    if (c == "leave") return json{{"op", "LEAVE_ROOM"}, {"room", w.size() > 1 ? w[1] : room}};
    if (c == "edit" && need(2, "edit MESSAGE_ID TEXT"))
        return json{{"op", "EDIT_MESSAGE"}, {"message_id", number(w[1])}, {"text", rest(w, 2)}};
    if (c == "delete" && need(1, "delete MESSAGE_ID"))
        return json{{"op", "DELETE_MESSAGE"}, {"message_id", number(w[1])}};
    if ((c == "react" || c == "unreact") && need(2, "react|unreact MESSAGE_ID EMOJI"))
        return json{{"op", c == "react" ? "REACT" : "UNREACT"},
                    {"message_id", number(w[1])},
                    {"emoji", w[2]}};
    if (c == "thread" && need(1, "thread MESSAGE_ID"))
        return json{{"op", "GET_THREAD"}, {"message_id", number(w[1])}};
    if (c == "search" && need(1, "search WORDS..."))
        return json{{"op", "SEARCH"}, {"query", rest(w, 1)}};
    if (c == "read" && need(1, "read MESSAGE_ID (in the current room or conversation)"))
        return target({{"op", "MARK_READ"}, {"message_id", number(w[1])}});
    if (c == "topic" && need(2, "topic ROOM TEXT"))
        return json{{"op", "SET_TOPIC"}, {"room", w[1]}, {"topic", rest(w, 2)}};
    if (c == "invite" && need(2, "invite ROOM USER"))
        return json{{"op", "INVITE_USER"}, {"room", w[1]}, {"user", w[2]}};
    if ((c == "accept" || c == "decline") && need(1, "accept|decline INVITATION_ID|ROOM")) {
        json req = id_or_room(w[1]);
        req["op"] = c == "accept" ? "ACCEPT_INVITATION" : "DECLINE_INVITATION";
        return req;
    }
    if (c == "invitations") return json{{"op", "LIST_INVITATIONS"}};
    if ((c == "cert-add" || c == "cert-remove") && need(1, "cert-add|cert-remove FINGERPRINT"))
        return json{{"op", c == "cert-add" ? "ADD_CERTIFICATE" : "REMOVE_CERTIFICATE"},
                    {"fingerprint", w[1]}};
    if (c == "certs") return json{{"op", "LIST_CERTIFICATES"}};
    if (c == "users") {
        json req{{"op", "REQUEST_USER_LIST"}};
        if (w.size() > 1) req["room"] = w[1];
        return req;
    }
    if (c == "ping") return json{{"op", "PING"}};
    if (c != "send" && c != "dm" && c != "reply" && c != "dm-history" && c != "create" &&
        c != "join" && c != "edit" && c != "delete" && c != "react" && c != "unreact" &&
        c != "thread" && c != "search" && c != "read" && c != "topic" && c != "invite" &&
        c != "accept" && c != "decline" && c != "cert-add" && c != "cert-remove")
        std::cerr << "unknown command '" << c << "'\n";
    return std::nullopt;
}

std::vector<std::string> split(const std::string& line) {
    std::vector<std::string> w;
    std::istringstream in(line);
    for (std::string word; in >> word;) w.push_back(word);
    return w;
}

void help() {
    std::cout
        << "a plain line goes to the current room (or conversation, after /with USER)\n"
           "/room ROOM | /with USER           switch where plain lines go\n"
           "/join ROOM | /leave [ROOM] | /create ROOM [private] [TOPIC] | /rooms | /users [ROOM]\n"
           "/history [ROOM] [N] | /dm-history USER | /thread ID | /search WORDS\n"
           "/dm USER TEXT | /reply ID TEXT | /edit ID TEXT | /delete ID | /react ID EMOJI | "
           "/unreact ID EMOJI\n"
           "/topic ROOM TEXT | /invite ROOM USER | /invitations | /accept ID|ROOM | "
           "/decline ID|ROOM | /read ID | /quit\n";
}

int interactive(Link& link, std::string room) {
    help();
    std::string with, in;
    for (;;) {
        pollfd fds[2] = {{0, POLLIN, 0}, {link.fd(), POLLIN, 0}};
        // The server closes logged-in connections idle for 15 minutes: a quiet session
        // PINGs every 5 (its reply is skipped like any other non-event line).
        int ready = poll(fds, 2, 5 * 60 * 1000);
        if (ready < 0) return 2;
        if (ready == 0) {
            link.send({{"op", "PING"}});
            continue;
        }
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
        std::optional<json> req;
        if (in[0] != '/') {
            if (room.empty() && with.empty()) {
                std::cout << "join a room (/join ROOM) or pick a conversation (/with USER) first\n";
                continue;
            }
            req = with.empty() ? json{{"op", "SEND_MESSAGE"}, {"room", room}, {"text", in}}
                               : json{{"op", "DIRECT_MESSAGE"}, {"to", with}, {"text", in}};
        } else {
            std::vector<std::string> w = split(in.substr(1));
            if (w.empty() || w[0] == "help") {
                help();
                continue;
            }
            if (w[0] == "quit") return 0;
            if (w[0] == "room" && w.size() > 1) {
                room = w[1];
                with.clear();
                continue;
            }
            if (w[0] == "with" && w.size() > 1) {
                with = w[1];
                continue;
            }
            req = request_for(w, room, with);
            if (!req) continue;
        }
        auto reply = call(link, *req, true);
        if (!reply) return 1;
        if (!report(reply)) continue;
        if (((*req)["op"] == "JOIN_ROOM" || (*req)["op"] == "CREATE_ROOM" ||
             (*req)["op"] == "ACCEPT_INVITATION") &&
            reply->contains("room")) {
            room = (*reply)["room"]["name"].get<std::string>();
            with.clear();
        }
        if ((*req)["op"] != "SEND_MESSAGE" && (*req)["op"] != "DIRECT_MESSAGE")
            print_result(*reply);
    }
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{
        "warren: Warren chat client.\n"
        "Without a command: interactive. Commands: send ROOM TEXT | dm USER TEXT |\n"
        "history ROOM [N] | dm-history USER | rooms | create ROOM [private] [TOPIC] |\n"
        "join ROOM | leave ROOM | edit ID TEXT | delete ID | react ID EMOJI |\n"
        "unreact ID EMOJI | thread ID | search WORDS | topic ROOM TEXT |\n"
        "invite ROOM USER | accept ID|ROOM | decline ID|ROOM | invitations |\n"
        "users [ROOM] | cert-add FINGERPRINT | cert-remove FINGERPRINT | certs | ping |\n"
        "chat [ROOM]"};
    std::string server = "127.0.0.1:7070", user, password, token;
    bool do_register = false;
    std::vector<std::string> words;
    app.add_option("-s,--server", server, "HOST:PORT of the server");
    app.add_option("-u,--user", user, "username");
    app.add_option("-p,--password", password, "password (or set WARREN_PASSWORD)");
    app.add_option("-t,--token", token, "log in with a session token instead");
    app.add_flag("--register", do_register, "create the account first");
    TlsChoice tls;
    app.add_flag("--tls", tls.on,
                 "connect over TLS (warrend --tls-listen), checking the server's certificate "
                 "against the system's CAs and the host name");
    app.add_option("--ca-file", tls.ca_file,
                   "with TLS: trust these PEM certificates instead (a private CA, or the "
                   "server's self-signed certificate); implies --tls")
        ->check(CLI::ExistingFile);
    int64_t reply_to = 0;
    app.add_option("--reply-to", reply_to, "with send or dm: the message this one answers");
    app.add_option("command", words, "command and its arguments");
    app.allow_extras(false);
    CLI11_PARSE(app, argc, argv);

    if (password.empty())
        if (const char* env = std::getenv("WARREN_PASSWORD")) password = env;
    auto colon = server.rfind(':');
    if (colon == std::string::npos) {
        std::cerr << "--server must be HOST:PORT\n";
        return 2;
    }
    bool is_interactive = words.empty() || words[0] == "chat";
    std::optional<json> req;
    if (!is_interactive) {
        if (words[0] == "reply") {
            std::cerr << "reply is interactive; one-shot: send ROOM TEXT --reply-to ID\n";
            return 2;
        }
        req = request_for(words, "", "");
        if (!req) return 2;
        if (reply_to > 0) (*req)["reply_to"] = reply_to;
    }
    if (!tls.ca_file.empty()) tls.on = true;
    std::string host = server.substr(0, colon);
    if (host.size() > 2 && host.front() == '[' && host.back() == ']')
        host = host.substr(1, host.size() - 2);
    Link link;
    std::string error;
    if (!link.open(host, server.substr(colon + 1), tls, error)) {
        std::cerr << error << "\n";
        return 2;
    }
    auto hello = link.next_line();
    if (!hello || (*hello)["ev"] != "HELLO") {
        std::cerr << "no HELLO from server" << (hello ? ": " + hello->dump() : "") << "\n";
        return 2;
    }
    if (!req || (*req)["op"] != "PING") {
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
    if (is_interactive) return interactive(link, words.size() > 1 ? words[1] : "");
    auto reply = call(link, *req, false);
    if (!report(reply)) return 1;
    print_result(*reply);
    return 0;
}
