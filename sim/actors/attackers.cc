#include "sim/actors/attackers.h"

#include <algorithm>

#include "sim/actors/population.h"

namespace warren::sim {

namespace {

// Their messages' text marks the pipelining kinds' messages in the store.
constexpr std::string_view pipelined_text = "PIPE ";

std::vector<Legit*> targets(World& w, const Attack& a) {
    return w.population(a.spec.target);
}

std::string owner(const Attack& a) {
    return "attacker/" + a.name;
}

// Guesses one legitimate account's password (the target population's first client), one
// LOGIN at a time, reconnecting when closed.
void brute_force(World& w, Attack& a) {
    auto victims = targets(w, a);
    if (victims.empty()) return;
    std::string victim = victims[0]->name;
    auto conn = std::make_shared<ConnId>(0);
    auto guess = w.loop();
    auto connect = w.loop();
    *guess = [&w, &a, conn, victim] {
        if (static_cast<int64_t>(a.attempts) >= a.spec.attempts || a.over(w)) return;
        ++a.attempts;
        json req = {{"id", a.attempts},
                    {"op", "LOGIN"},
                    {"username", victim},
                    {"password", "guess-" + std::to_string(100000 + a.attempts)}};
        w.send(*conn, req.dump() + "\n");
    };
    *connect = [&w, &a, conn, guess, connect, victim] {
        if (static_cast<int64_t>(a.attempts) >= a.spec.attempts || a.over(w)) return;
        *conn = w.open(
            owner(a), a.spec.ip,
            [&w, &a, guess, victim](const json& m) {
                if (m.value("ev", "") == "HELLO") return (*guess)();
                if (!m.contains("re")) return;
                std::string code = m.value("ok", false) ? "" : m["error"].value("code", "");
                if (code.empty()) ++a.successes;
                if (code == "INVALID_CREDENTIALS") ++a.name_failures[victim];
                if (!code.empty()) a.refused(w, code);
                (*guess)();
            },
            [&w, &a, connect](const std::string& reason) {
                if (reason == "BLOCKED" || reason == "TOO_MANY_CONNECTIONS") {
                    ++a.attempts;
                    a.refused(w, reason == "BLOCKED" ? "BLOCKED" : "RATE_LIMITED");
                }
                w.at(w.now_ms() + a.spec.gap_ms, *connect);
            });
    };
    (*connect)();
}

// `count` addresses from a CIDR, `attempts` LOGINs each, over the target population's first
// 10 names and 10 that do not exist, starting over 20 s.
void credential_stuffing(World& w, Attack& a) {
    std::vector<std::string> names;
    auto victims = targets(w, a);
    for (size_t i = 0; i < std::min<size_t>(10, victims.size()); ++i)
        names.push_back(victims[i]->name);
    for (int i = 0; i < 10; ++i) names.push_back("ghost" + std::to_string(i));
    for (int64_t k = 0; k < a.spec.count; ++k) {
        std::string ip = address_in(a.spec.ip, k);
        w.at(w.now_ms() + a.rng->between(0, 20000), [&w, &a, ip, names] {
            auto left = std::make_shared<int64_t>(a.spec.attempts);
            auto conn = std::make_shared<ConnId>(0);
            auto next = w.loop();
            auto tried = std::make_shared<std::map<int64_t, std::string>>();
            *next = [&w, &a, conn, left, names, tried] {
                if ((*left)-- <= 0 || a.over(w)) return w.hang_up(*conn);
                ++a.attempts;
                std::string name = names[a.rng->below(names.size())];
                (*tried)[static_cast<int64_t>(a.attempts)] = name;
                json req = {{"id", a.attempts},
                            {"op", "LOGIN"},
                            {"username", name},
                            {"password", "leaked-" + std::to_string(a.rng->below(1000))}};
                w.send(*conn, req.dump() + "\n");
            };
            *conn = w.open(owner(a), ip,
                           [&w, &a, next, tried](const json& m) {
                               if (m.value("ev", "") == "HELLO") return (*next)();
                               if (!m.contains("re") || m["re"].is_null()) return;
                               std::string code =
                                   m.value("ok", false) ? "" : m["error"].value("code", "");
                               if (m.value("ok", false)) ++a.successes;
                               if (code == "INVALID_CREDENTIALS")
                                   ++a.name_failures[(*tried)[m["re"].get<int64_t>()]];
                               if (!code.empty()) a.refused(w, code);
                               w.at(w.now_ms() + a.spec.gap_ms, *next);
                           },
                           {});
        });
    }
}

// Opens connections from one address, one every `gap`.
void connection_flood(World& w, Attack& a) {
    auto step = w.loop();
    *step = [&w, &a, step] {
        if (static_cast<int64_t>(a.attempts) >= a.spec.attempts || a.over(w)) return;
        ++a.attempts;
        // Refusals are counted at the attempt they answer, blocks when they land (a block
        // also closes the connections opened before it).
        uint64_t attempt = a.attempts;
        w.open(owner(a), a.spec.ip, {}, [&w, &a, attempt](const std::string& reason) {
            if (reason == "TOO_MANY_CONNECTIONS" && !a.throttled_at) {
                a.throttled_at = attempt;
                w.event("attacker.throttled", {{"attacker", a.name}});
            }
            if (reason == "BLOCKED") a.refused(w, "BLOCKED");
        });
        w.at(w.now_ms() + a.spec.gap_ms, *step);
    };
    (*step)();
}

// Registers `a.account` from the attacker's address, then calls `then(conn)`.
void attacker_account(World& w, Attack& a, std::function<void(ConnId)> then) {
    auto conn = std::make_shared<ConnId>(0);
    auto done = std::make_shared<bool>(false);
    *conn = w.open(
        owner(a), a.spec.ip,
        [&w, &a, conn, then, done](const json& m) {
            if (m.value("ev", "") == "HELLO") {
                json req = {{"id", 1},
                            {"op", "REGISTER"},
                            {"username", a.account},
                            {"password", "attacker-pass"}};
                return w.send(*conn, req.dump() + "\n");
            }
            if (*done || !m.contains("re") || m["re"].is_null()) return;
            if (m["re"].get<int64_t>() == 1 && m.value("ok", false)) {
                *done = true;
                then(*conn);
            }
        },
        [&w, &a](const std::string& reason) {
            if (reason == "BLOCKED") a.refused(w, "BLOCKED");
            a.done = true;
        });
}

void refusals_of(World& w, Attack& a, ConnId conn) {
    w.peer(conn).on_line = [&w, &a](const json& m) {
        if (m.contains("re") && !m["re"].is_null() && !m.value("ok", false))
            a.refused(w, m["error"].value("code", ""));
    };
}

// A fresh account joins `room` and sends a message every `gap`.
void message_flood(World& w, Attack& a) {
    attacker_account(w, a, [&w, &a](ConnId conn) {
        json join = {{"id", 2}, {"op", "JOIN_ROOM"}, {"room", a.spec.room}};
        w.send(conn, join.dump() + "\n");
        refusals_of(w, a, conn);
        auto step = w.loop();
        *step = [&w, &a, conn, step] {
            if (a.done || static_cast<int64_t>(a.attempts) >= a.spec.attempts || a.over(w) ||
                !w.is_open(conn))
                return;
            ++a.attempts;
            json req = {{"id", 10 + a.attempts},
                        {"op", "SEND_MESSAGE"},
                        {"room", a.spec.room},
                        {"text", "BUY NOW " + std::to_string(a.attempts)}};
            w.send(conn, req.dump() + "\n");
            w.at(w.now_ms() + a.spec.gap_ms, *step);
        };
        w.at(w.now_ms() + 100, *step);
    });
}

// `count` connections that send one byte every `gap` and never a whole line.
void slowloris(World& w, Attack& a) {
    for (int64_t k = 0; k < a.spec.count; ++k) {
        auto opened = std::make_shared<int64_t>(w.now_ms());
        auto conn = std::make_shared<ConnId>(0);
        auto drip = w.loop();
        *drip = [&w, &a, conn, drip] {
            if (!w.is_open(*conn) || a.over(w)) return;
            ++a.attempts;
            w.send(*conn, a.attempts % 7 == 1 ? "{" : "a");
            w.at(w.now_ms() + a.spec.gap_ms, *drip);
        };
        *conn = w.open(owner(a), a.spec.ip, {}, [&w, &a, opened](const std::string&) {
            a.slowest_close_ms = std::max(a.slowest_close_ms, w.now_ms() - *opened);
        });
        w.at(w.now_ms() + a.spec.gap_ms, *drip);
    }
}

// Three frames per connection (every fourth oversized, the others junk), reconnecting `gap`
// after each close.
void bad_frames(World& w, Attack& a) {
    auto connect = w.loop();
    *connect = [&w, &a, connect] {
        if (static_cast<int64_t>(a.attempts) >= a.spec.attempts || a.over(w)) return;
        auto conn = std::make_shared<ConnId>(0);
        *conn = w.open(
            owner(a), a.spec.ip,
            [&w, &a, conn](const json& m) {
                if (m.value("ev", "") != "HELLO") return;
                for (int i = 0; i < 3; ++i) {
                    ++a.attempts;
                    if (a.attempts % 4 == 0)
                        w.send(*conn, std::string(70 * 1024, 'x') + "\n");
                    else
                        w.send(*conn, "<script>alert(1)</script>\n");
                }
            },
            [&w, &a, connect](const std::string& reason) {
                if (reason == "BLOCKED") {
                    ++a.attempts;
                    a.refused(w, "BLOCKED");
                }
                w.at(w.now_ms() + a.spec.gap_ms, *connect);
            });
    };
    (*connect)();
}

// A fresh account invites (or messages directly) the target population's users in turn.
void spam(World& w, Attack& a, bool invitations) {
    attacker_account(w, a, [&w, &a, invitations](ConnId conn) {
        if (invitations) {
            json room = {{"id", 2},
                         {"op", "CREATE_ROOM"},
                         {"room", "free-prizes-" + a.account},
                         {"visibility", "private"}};
            w.send(conn, room.dump() + "\n");
        }
        refusals_of(w, a, conn);
        auto step = w.loop();
        *step = [&w, &a, conn, step, invitations] {
            auto victims = targets(w, a);
            if (a.done || a.over(w) || !w.is_open(conn) || victims.empty()) return;
            const std::string& target = victims[a.attempts % victims.size()]->name;
            ++a.attempts;
            json req = invitations ? json{{"id", 10 + a.attempts},
                                          {"op", "INVITE_USER"},
                                          {"room", "free-prizes-" + a.account},
                                          {"user", target}}
                                   : json{{"id", 10 + a.attempts},
                                          {"op", "DIRECT_MESSAGE"},
                                          {"to", target},
                                          {"text", "click my link"}};
            w.send(conn, req.dump() + "\n");
            w.at(w.now_ms() + a.spec.gap_ms, *step);
        };
        w.at(w.now_ms() + 100, *step);
    });
}

void invitation_spam(World& w, Attack& a) {
    spam(w, a, true);
}
void dm_spam(World& w, Attack& a) {
    spam(w, a, false);
}

// Replies in request order until the DISCONNECT, and nothing after it.
void pipelined_line(World& w, Attack& a, const json& m) {
    if (!a.close_reason.empty()) {
        ++a.lines_after_close;
        return;
    }
    if (m.value("ev", "") == "DISCONNECT") {
        a.close_reason = m.value("reason", "");
        return;
    }
    if (!m.contains("re") || !m["re"].is_number()) return;
    int64_t re = m["re"].get<int64_t>();
    if (re != a.next_reply)
        w.violation("order.replies_in_request_order",
                    "the reply to " + std::to_string(re) + " came where " +
                        std::to_string(a.next_reply) + "'s was due");
    a.next_reply = re + 1;
    if (m.value("ok", false)) ++a.acknowledged;
}

// A fresh account joins `room`, then writes `count` SEND_MESSAGEs at once, cut by the network
// into pieces of 1-512 bytes, and reads its replies at 8 KB/s (driving the server's outbound
// accounting). Emits attacker.pipeline_written when they are on their way: an [[operator]]
// can act `after` it.
void pipeline(World& w, Attack& a) {
    a.pipelines = true;
    attacker_account(w, a, [&w, &a](ConnId conn) {
        json join = {{"id", 2}, {"op", "JOIN_ROOM"}, {"room", a.spec.room}};
        w.send(conn, join.dump() + "\n");
        w.peer(conn).on_line = [&w, &a, conn](const json& m) {
            if (!m.contains("re") || m["re"] != 2) return;
            Peer& p = w.peer(conn);
            p.chunk_max = 512;
            p.read_bytes_per_s = 8 * 1024;
            p.on_line = [&w, &a](const json& line) { pipelined_line(w, a, line); };
            std::string bytes;
            for (int64_t i = 0; i < a.spec.count; ++i)
                bytes += json{{"id", 10 + i},
                              {"op", "SEND_MESSAGE"},
                              {"room", a.spec.room},
                              {"text",
                               std::string(pipelined_text) + a.account + " " + std::to_string(i)}}
                             .dump() +
                         "\n";
            a.attempts = static_cast<uint64_t>(a.spec.count);
            w.send(conn, std::move(bytes));
            w.event("attacker.pipeline_written", {{"attacker", a.name}});
        };
    });
}

// Its own messages echoed in order until the ERROR, and nothing after it.
void pipelined_irc_line(World& w, Attack& a, std::string_view line) {
    if (!a.close_reason.empty()) {
        ++a.lines_after_close;
        return;
    }
    if (line.starts_with("ERROR :")) {
        a.close_reason = line.find("blocked") != std::string_view::npos        ? "BLOCKED"
                         : line.find("Excess Flood") != std::string_view::npos ? "EXCESS_FLOOD"
                                                                               : std::string(line);
        return;
    }
    std::string echo =
        " PRIVMSG #" + a.spec.room + " :" + std::string(pipelined_text) + a.account + " ";
    size_t at = line.find(echo);
    if (at == std::string_view::npos) return;
    int64_t k = std::stoll(std::string(line.substr(at + echo.size())));
    if (k != a.next_reply - 10)
        w.violation("order.replies_in_request_order",
                    "the echo of " + std::to_string(k) + " came where " +
                        std::to_string(a.next_reply - 10) + "'s was due");
    a.next_reply = k + 11;
    ++a.acknowledged;
}

// The same over IRC: registered over JSON, the account logs in with PASS on the IRC listener,
// asks for echo-message, joins the room, then writes its PRIVMSGs at once.
void irc_pipeline(World& w, Attack& a) {
    a.pipelines = true;
    attacker_account(w, a, [&w, &a](ConnId json_conn) {
        w.hang_up(json_conn);
        a.done = false;
        ConnId conn = w.open(
            owner(a), a.spec.ip, {}, [&a](const std::string&) { a.done = true; }, Wire::irc);
        w.peer(conn).on_text = [&w, &a, conn](std::string_view line) {
            if (line.find(" 366 ") == std::string_view::npos) return;  // end of the JOIN burst
            Peer& p = w.peer(conn);
            p.chunk_max = 512;
            p.read_bytes_per_s = 8 * 1024;
            p.on_text = [&w, &a](std::string_view l) { pipelined_irc_line(w, a, l); };
            std::string bytes;
            for (int64_t i = 0; i < a.spec.count; ++i)
                bytes += "PRIVMSG #" + a.spec.room + " :" + std::string(pipelined_text) +
                         a.account + " " + std::to_string(i) + "\r\n";
            a.attempts = static_cast<uint64_t>(a.spec.count);
            w.send(conn, std::move(bytes));
            w.event("attacker.pipeline_written", {{"attacker", a.name}});
        };
        w.send(conn, "CAP LS 302\r\nCAP REQ :echo-message\r\nPASS " + a.account +
                         ":attacker-pass\r\nNICK " + a.account +
                         "\r\nUSER u 0 * :u\r\nCAP END\r\nJOIN #" + a.spec.room + "\r\n");
    });
}

}  // namespace

void Attack::refused(World& w, std::string_view code) {
    if ((code == "RATE_LIMITED" || code == "TOO_MANY_CONNECTIONS") && !throttled_at) {
        throttled_at = attempts;
        w.event("attacker.throttled", {{"attacker", name}});
    }
    if (code == "BLOCKED" && !blocked_at) {
        blocked_at = attempts;
        w.event("attacker.blocked", {{"attacker", name}});
        if (!throttled_at) throttled_at = attempts;
    }
}

bool Attack::over(const World& w) const {
    return w.healed() || w.now_ms() > w.spec().duration_ms - 5000;
}

const std::vector<AttackerKind>& attacker_kinds() {
    static const std::vector<AttackerKind> kinds = {
        {"brute_force",
         "one address guesses one account's password, reconnecting when closed",
         "203.0.113.66",
         0,
         400,
         1000,
         {"ip", "attempts", "gap", "target"},
         brute_force},
        {"credential_stuffing",
         "many addresses try leaked passwords over 10 real names and 10 unknown ones",
         "198.51.100.0/22",
         200,
         3,
         1000,
         {"ip", "count", "attempts", "gap", "target"},
         credential_stuffing},
        {"connection_flood",
         "one address opens connections as fast as it can",
         "203.0.113.77",
         0,
         500,
         10,
         {"ip", "attempts", "gap"},
         connection_flood},
        {"message_flood",
         "a fresh account sends messages to a room as fast as it can",
         "203.0.113.88",
         0,
         1000,
         10,
         {"ip", "attempts", "gap", "room", "account"},
         message_flood},
        {"slowloris",
         "connections that send one byte at a time and never a whole line",
         "203.0.113.99",
         10,
         0,
         1000,
         {"ip", "count", "gap"},
         slowloris},
        {"bad_frames",
         "malformed and oversized frames, reconnecting after each close",
         "203.0.113.111",
         0,
         200,
         200,
         {"ip", "attempts", "gap"},
         bad_frames},
        {"invitation_spam",
         "a fresh account invites every user it can find to a private room",
         "203.0.113.122",
         0,
         0,
         200,
         {"ip", "gap", "target", "account"},
         invitation_spam},
        {"dm_spam",
         "a fresh account sends direct messages to every user it can find",
         "203.0.113.122",
         0,
         0,
         200,
         {"ip", "gap", "target", "account"},
         dm_spam},
        {"pipeline",
         "a fresh account writes `count` messages at once and reads its replies slowly; "
         "checks that what it was told matches what was stored",
         "203.0.113.77",
         200,
         0,
         0,
         {"ip", "count", "room", "account"},
         pipeline},
        {"irc_pipeline",
         "the same over IRC with echo-message",
         "203.0.113.78",
         200,
         0,
         0,
         {"ip", "count", "room", "account"},
         irc_pipeline},
    };
    return kinds;
}

const AttackerKind* attacker_kind(std::string_view name) {
    for (const auto& k : attacker_kinds())
        if (k.name == name) return &k;
    return nullptr;
}

std::vector<std::string> attacker_names(const std::vector<AttackerSpec>& attackers) {
    std::map<std::string, size_t> of_kind, seen;
    for (const auto& a : attackers) ++of_kind[a.kind];
    std::vector<std::string> names;
    for (const auto& a : attackers)
        names.push_back(of_kind[a.kind] > 1 ? a.kind + "#" + std::to_string(seen[a.kind]++)
                                            : a.kind);
    return names;
}

void start_attacker(World& w, const AttackerSpec& spec, std::vector<std::unique_ptr<Attack>>& all) {
    const AttackerKind* kind = attacker_kind(spec.kind);
    if (!kind) return;  // the loader accepts no other
    size_t index = static_cast<size_t>(&spec - w.spec().attackers.data());
    size_t mine = 0;  // its place among the attackers of its kind
    for (size_t i = 0; i < index; ++i) mine += w.spec().attackers[i].kind == spec.kind;
    auto& a = *all.emplace_back(std::make_unique<Attack>());
    a.spec = spec;
    a.name = attacker_names(w.spec().attackers)[index];
    a.account = spec.account;
    if (a.account.empty()) {
        a.account = "mal" + std::string(spec.kind.substr(0, 6)) + std::to_string(mine);
        std::erase(a.account, '_');
    }
    if (a.spec.ip.empty()) a.spec.ip = kind->ip;
    if (a.spec.count == 0) a.spec.count = kind->count;
    if (a.spec.attempts == 0) a.spec.attempts = kind->attempts;
    if (a.spec.gap_ms == 0) a.spec.gap_ms = kind->gap_ms;
    if (a.spec.target.empty() && !w.spec().populations.empty())
        a.spec.target = w.spec().populations.front().name;
    a.rng = &w.stream("attacker/" + a.name);
    w.at(spec.start_ms, [&w, &a, kind] {
        w.event("attacker.start", {{"attacker", a.name}});
        kind->start(w, a);
    });
}

void finish_attacker(World& w, Attack& a) {
    std::string p = "attacker." + a.name + ".";
    w.metric(p + "attempts", static_cast<double>(a.attempts));
    if (a.throttled_at) w.metric(p + "throttled_at", static_cast<double>(*a.throttled_at));
    if (a.blocked_at) w.metric(p + "blocked_at", static_cast<double>(*a.blocked_at));
    w.metric(p + "successes", static_cast<double>(a.successes));
    uint64_t worst = 0;
    for (const auto& [name, n] : a.name_failures) worst = std::max(worst, n);
    w.metric(p + "worst_name_failures", static_cast<double>(worst));
    w.metric(p + "slowest_close_ms", static_cast<double>(a.slowest_close_ms));
    if (!a.pipelines) return;
    // What the store holds of its messages, against what it was told.
    uint64_t stored = 0;
    std::string mark = std::string(pipelined_text) + a.account + " ";
    for (const std::optional<MessageRow>& m : w.stored_rows())
        if (m && m->text.starts_with(mark)) ++stored;
    w.metric(p + "acknowledged", static_cast<double>(a.acknowledged));
    w.metric(p + "stored", static_cast<double>(stored));
    w.metric(p + "lines_after_close", static_cast<double>(a.lines_after_close));
    if (!a.close_reason.empty())
        w.event("attacker.closed", {{"attacker", a.name}, {"reason", a.close_reason}});
    if (stored > 0 && stored < a.attempts) w.probe("attacker." + a.name + ".closed_mid_pipeline");
    // Judged only if the server closed it: a client still reading its replies at the end has
    // not read them all yet (whether it must be closed is the scenario's expectation).
    if (a.close_reason.empty()) return;
    if (a.acknowledged != stored)
        w.violation("closes.told_is_stored",
                    std::to_string(stored) + " of " + a.name + "'s messages stored, " +
                        std::to_string(a.acknowledged) + " acknowledged to it");
    if (a.lines_after_close > 0)
        w.violation("closes.told_is_stored",
                    std::to_string(a.lines_after_close) + " lines after " + a.name + "'s close");
}

}  // namespace warren::sim
