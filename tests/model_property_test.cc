// Model-based property test (rapidcheck): random sequences of chat ops from three users, each
// with one connection, go through the real core and store; every reply's outcome and every
// event delivered to the other users is compared with a plain reference model of rooms,
// messages, reactions, invitations and permissions. History is compared message by message.
// Failures print rapidcheck's seed and the shrunk op sequence; replay with
// RC_PARAMS="reproduce=...".
#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include <map>
#include <set>

#include "tests/harness.h"

namespace warren::test {
namespace {

constexpr int users_n = 3;
const char* const user_names[users_n] = {"ann", "ben", "cid"};
const char* const room_names[] = {"r0", "r1", "r2"};
const char* const emojis[] = {"ok", "\xF0\x9F\x91\x8D"};

enum class Kind {
    create,
    join,
    leave,
    send,
    dm,
    edit,
    del,
    react,
    unreact,
    invite,
    accept,
    decline,
    topic,
    history,
    dm_history,
    count
};

// Connections 1..3 belong to users 0..2; connection 4 is user 0's second one.
constexpr int conns_n = 4;
int user_of(int conn) {
    return conn == 4 ? 0 : conn - 1;
}

struct Cmd {
    Kind kind;
    int user;   // who acts (0..2)
    int conn;   // through which connection (1..4); user is user_of(conn)
    int room;   // room index
    int other;  // another user, or a message index (mod the messages so far)
    int flag;   // private room / which emoji / reply or not
};

void showValue(const Cmd& c, std::ostream& os) {
    os << "{kind " << static_cast<int>(c.kind) << " conn " << c.conn << " room " << c.room
       << " other " << c.other << " flag " << c.flag << "}";
}

// ---- the reference model ----------------------------------------------------------------------

struct MRoom {
    int owner = 0;
    bool priv = false;
    std::set<int> members;
    std::string topic;
};

struct MMsg {
    int64_t id = 0;
    int room = -1;  // -1: direct
    int author = 0, to = -1;
    std::string text;
    bool deleted = false, edited = false;
    int64_t reply_to = 0;
    std::map<std::string, std::vector<int>> reactions;
};

struct Model {
    std::map<int, MRoom> rooms;
    std::vector<MMsg> msgs;                          // in id order
    std::map<std::pair<int, int>, int> invitations;  // (room, invitee) -> inviter
    int64_t next_id = 1;

    bool visible(const MMsg& m, int u) const {
        if (m.room < 0) return m.author == u || m.to == u;
        return rooms.at(m.room).members.contains(u);
    }
    // Users told about a message event (the actor's other connections included).
    std::set<int> audience(const MMsg& m) const {
        if (m.room < 0) return {m.author, m.to};
        return rooms.at(m.room).members;
    }
};

// Events go to every connection of the users named, except the requesting connection.
struct Expect {
    std::string code;                            // "" for ok
    std::map<int, std::vector<std::string>> ev;  // user -> event names, in order
};

// Predicts the outcome of `c` and updates the model as the server should.
Expect predict(Model& m, const Cmd& c, json& req) {
    Expect e;
    std::string room = room_names[c.room];
    auto tell = [&](const std::set<int>& who, const std::string& ev) {
        for (int u : who) e.ev[u].push_back(ev);
    };
    auto find_room = [&]() -> MRoom* {
        auto it = m.rooms.find(c.room);
        return it == m.rooms.end() ? nullptr : &it->second;
    };
    MMsg* msg = m.msgs.empty() ? nullptr : &m.msgs[static_cast<size_t>(c.other) % m.msgs.size()];
    int other = c.other % users_n;
    switch (c.kind) {
        case Kind::create: {
            req = {{"op", "CREATE_ROOM"},
                   {"room", room},
                   {"visibility", c.flag ? "private" : "public"}};
            if (find_room()) return e.code = "CONFLICT", e;
            m.rooms[c.room] = MRoom{c.user, c.flag != 0, {c.user}, ""};
            return e;
        }
        case Kind::join: {
            req = {{"op", "JOIN_ROOM"}, {"room", room}};
            MRoom* r = find_room();
            if (!r) return e.code = "NOT_FOUND", e;
            if (r->members.contains(c.user)) return e;
            auto inv = m.invitations.find({c.room, c.user});
            if (inv != m.invitations.end()) {
                e.ev[inv->second].push_back("INVITATION_ACCEPTED");
                m.invitations.erase(inv);
            } else if (r->priv) {
                return e.code = "FORBIDDEN", e;
            }
            r->members.insert(c.user);
            tell(r->members, "MEMBER_JOINED");
            return e;
        }
        case Kind::leave: {
            req = {{"op", "LEAVE_ROOM"}, {"room", room}};
            MRoom* r = find_room();
            if (!r) return e.code = "NOT_FOUND", e;
            if (!r->members.contains(c.user)) return e.code = "CONFLICT", e;
            tell(r->members, "MEMBER_LEFT");  // the leaver's other connections too
            r->members.erase(c.user);
            return e;
        }
        case Kind::send: {
            int64_t reply_to = c.flag && msg ? msg->id : 0;
            req = {
                {"op", "SEND_MESSAGE"}, {"room", room}, {"text", "t" + std::to_string(m.next_id)}};
            if (reply_to) req["reply_to"] = reply_to;
            MRoom* r = find_room();
            if (!r) return e.code = "NOT_FOUND", e;
            if (!r->members.contains(c.user)) return e.code = "FORBIDDEN", e;
            if (reply_to && msg->room != c.room) return e.code = "BAD_REQUEST", e;
            m.msgs.push_back(
                MMsg{m.next_id++, c.room, c.user, -1, req["text"], false, false, reply_to, {}});
            tell(r->members, "MESSAGE");
            return e;
        }
        case Kind::dm: {
            int64_t reply_to = c.flag && msg ? msg->id : 0;
            req = {{"op", "DIRECT_MESSAGE"},
                   {"to", user_names[other]},
                   {"text", "d" + std::to_string(m.next_id)}};
            if (reply_to) req["reply_to"] = reply_to;
            if (reply_to) {
                bool same = msg->room < 0 &&
                            std::set<int>{msg->author, msg->to} == std::set<int>{c.user, other};
                if (!same) return e.code = "BAD_REQUEST", e;
            }
            m.msgs.push_back(
                MMsg{m.next_id++, -1, c.user, other, req["text"], false, false, reply_to, {}});
            tell({c.user, other}, "DIRECT_MESSAGE");
            return e;
        }
        case Kind::edit:
        case Kind::del:
        case Kind::react:
        case Kind::unreact: {
            if (!msg) {
                req = {{"op", "PING"}};
                return e;
            }
            std::string emoji = emojis[c.flag % 2];
            if (c.kind == Kind::edit)
                req = {{"op", "EDIT_MESSAGE"},
                       {"message_id", msg->id},
                       {"text", "e" + std::to_string(msg->id)}};
            if (c.kind == Kind::del) req = {{"op", "DELETE_MESSAGE"}, {"message_id", msg->id}};
            if (c.kind == Kind::react)
                req = {{"op", "REACT"}, {"message_id", msg->id}, {"emoji", emoji}};
            if (c.kind == Kind::unreact)
                req = {{"op", "UNREACT"}, {"message_id", msg->id}, {"emoji", emoji}};
            // A private room one is not in does not exist for its messages either.
            if (!m.visible(*msg, c.user))
                return e.code =
                           msg->room < 0 || m.rooms.at(msg->room).priv ? "NOT_FOUND" : "FORBIDDEN",
                       e;
            std::set<int> aud = m.audience(*msg);
            if (c.kind == Kind::edit) {
                if (msg->author != c.user) return e.code = "FORBIDDEN", e;
                if (msg->deleted) return e.code = "CONFLICT", e;
                msg->text = req["text"];
                msg->edited = true;
                tell(aud, "MESSAGE_EDITED");
            } else if (c.kind == Kind::del) {
                bool owner = msg->room >= 0 && m.rooms.at(msg->room).owner == c.user;
                if (msg->author != c.user && !owner) return e.code = "FORBIDDEN", e;
                if (msg->deleted) return e.code = "CONFLICT", e;
                msg->deleted = true;
                msg->text.clear();
                msg->reactions.clear();
                tell(aud, "MESSAGE_DELETED");
            } else {
                if (msg->deleted) return e.code = "CONFLICT", e;
                auto& users = msg->reactions[emoji];
                bool mine = std::find(users.begin(), users.end(), c.user) != users.end();
                if (c.kind == Kind::react) {
                    if (mine) return e.code = "CONFLICT", e;
                    users.push_back(c.user);
                } else {
                    if (!mine) {
                        if (users.empty()) msg->reactions.erase(emoji);
                        return e.code = "NOT_FOUND", e;
                    }
                    std::erase(users, c.user);
                }
                if (users.empty()) msg->reactions.erase(emoji);
                tell(aud, c.kind == Kind::react ? "REACTION_ADDED" : "REACTION_REMOVED");
            }
            return e;
        }
        case Kind::invite: {
            req = {{"op", "INVITE_USER"}, {"room", room}, {"user", user_names[other]}};
            MRoom* r = find_room();
            if (!r) return e.code = "NOT_FOUND", e;
            if (!r->members.contains(c.user)) return e.code = "FORBIDDEN", e;
            if (r->members.contains(other) || m.invitations.contains({c.room, other}))
                return e.code = "CONFLICT", e;
            m.invitations[{c.room, other}] = c.user;
            e.ev[other].push_back("INVITATION");
            return e;
        }
        case Kind::accept:
        case Kind::decline: {
            req = {{"op", c.kind == Kind::accept ? "ACCEPT_INVITATION" : "DECLINE_INVITATION"},
                   {"room", room}};
            auto inv = m.invitations.find({c.room, c.user});
            if (!find_room() || inv == m.invitations.end()) return e.code = "NOT_FOUND", e;
            int inviter = inv->second;
            m.invitations.erase(inv);
            MRoom& r = m.rooms.at(c.room);
            if (c.kind == Kind::decline) {
                e.ev[inviter].push_back("INVITATION_DECLINED");
                return e;
            }
            e.ev[inviter].push_back("INVITATION_ACCEPTED");
            if (!r.members.contains(c.user)) {
                r.members.insert(c.user);
                tell(r.members, "MEMBER_JOINED");
            }
            return e;
        }
        case Kind::topic: {
            req = {
                {"op", "SET_TOPIC"}, {"room", room}, {"topic", "topic " + std::to_string(c.flag)}};
            MRoom* r = find_room();
            if (!r) return e.code = "NOT_FOUND", e;
            // The owner, while a member.
            if (r->owner != c.user || !r->members.contains(c.user)) return e.code = "FORBIDDEN", e;
            r->topic = req["topic"];
            tell(r->members, "TOPIC_CHANGED");
            return e;
        }
        case Kind::history: {
            req = {{"op", "HISTORY"}, {"room", room}, {"limit", 100}};
            MRoom* r = find_room();
            if (!r) return e.code = "NOT_FOUND", e;
            if (!r->members.contains(c.user)) return e.code = "FORBIDDEN", e;
            return e;
        }
        case Kind::dm_history:
            req = {{"op", "HISTORY"}, {"with", user_names[other]}, {"limit", 100}};
            return e;
        case Kind::count:
            break;
    }
    return e;
}

// What HISTORY should show, in the server's JSON shape for the compared fields.
json expected_history(const Model& m, const Cmd& c) {
    json out = json::array();
    int other = c.other % users_n;
    for (const auto& msg : m.msgs) {
        bool in = c.kind == Kind::history ? msg.room == c.room
                                          : msg.room < 0 && std::set<int>{msg.author, msg.to} ==
                                                                std::set<int>{c.user, other};
        if (!in) continue;
        json reactions = json::object();
        for (const auto& [emoji, users] : msg.reactions) {
            json names = json::array();
            for (int u : users) names.push_back(user_names[u]);
            reactions[emoji] = names;
        }
        out.push_back({{"id", msg.id},
                       {"author", user_names[msg.author]},
                       {"text", msg.text},
                       {"deleted", msg.deleted},
                       {"edited", msg.edited},
                       {"reply_to", msg.reply_to ? json(msg.reply_to) : json(nullptr)},
                       {"reactions", reactions}});
    }
    return out;
}

json actual_history(const json& reply) {
    json out = json::array();
    for (const auto& msg : reply["messages"])
        out.push_back({{"id", msg["id"]},
                       {"author", msg["author"]},
                       {"text", msg["text"]},
                       {"deleted", msg["deleted"]},
                       {"edited", !msg["edited_ts"].is_null()},
                       {"reply_to", msg["reply_to"]},
                       {"reactions", msg["reactions"]}});
    return out;
}

Cmd gen_cmd_value(int kind, int conn, int room, int other, int flag) {
    return Cmd{static_cast<Kind>(kind), user_of(conn), conn, room, other, flag};
}

RC_GTEST_PROP(ChatModel, CoreAgreesWithTheReferenceModel, ()) {
    auto cmds = *rc::gen::container<std::vector<Cmd>>(
        rc::gen::apply(gen_cmd_value, rc::gen::inRange(0, static_cast<int>(Kind::count)),
                       rc::gen::inRange(1, conns_n + 1), rc::gen::inRange(0, 3),
                       rc::gen::inRange(0, 50), rc::gen::inRange(0, 2)));
    Config cfg;
    cfg.room_cache_messages_max = 100;
    cfg.conversation_cache_messages_max = 4;  // conversations page through storage early
    CoreHarness h(cfg);
    std::string token;
    for (int u = 0; u < users_n; ++u) {
        json r = h.register_user(u + 1, user_names[u]);
        RC_ASSERT(r["ok"] == true);
        if (u == 0) token = r["session"]["token"];
    }
    h.connect(4);
    h.take(4);
    RC_ASSERT(h.call(4, {{"op", "LOGIN"}, {"token", token}})["ok"] == true);
    Model model;
    for (const Cmd& c : cmds) {
        json req;
        Expect want = predict(model, c, req);
        json reply = h.call(c.conn, req);
        std::string got = reply.value("ok", false) ? "" : reply["error"]["code"].get<std::string>();
        RC_ASSERT(got == want.code);
        if (got.empty() && (c.kind == Kind::history || c.kind == Kind::dm_history))
            RC_ASSERT(actual_history(reply) == expected_history(model, c));
        for (int k = 1; k <= conns_n; ++k) {
            std::vector<std::string> evs;
            for (const auto& ev : h.events(k)) evs.push_back(ev["ev"]);
            // The requesting connection has the reply instead of the event.
            std::vector<std::string> expected =
                k == c.conn ? std::vector<std::string>{} : want.ev[user_of(k)];
            RC_ASSERT(evs == expected);
        }
    }
}

}  // namespace
}  // namespace warren::test
