#include "sim/actors/population.h"

#include <arpa/inet.h>

#include "core/security/address.h"

namespace warren::sim {

namespace {

// The client's view of `room`, added if it has none.
Legit::RoomView& view(Legit& c, const std::string& room) {
    for (auto& v : c.asked)
        if (v.room == room) return v;
    auto& v = c.asked.emplace_back();
    v.room = room;
    (*c.audiences)[room].emplace_back(&c, c.asked.size() - 1);
    return v;
}

// The room's messages need no longer reach this connection (it left, logged out or closed):
// what was owed is forgiven, what arrives is still checked.
void stop_flow(Legit::RoomView& v) {
    v.flowing_ms = -1;
    v.owed.clear();
}

// Whether a request `op` (of `room`, if given) is still unanswered: one sent after the
// request being answered now undoes its effect.
bool unanswered(const Legit& c, std::string_view op, const std::string* room = nullptr) {
    for (const auto& [id, p] : c.pending)
        if (p.op == op && (!room || p.room == *room)) return true;
    return false;
}

// Its join of the room is acknowledged on this connection; events flow unless logged out (or
// about to leave it again).
void joined(World& w, Legit& c, const std::string& room) {
    if (unanswered(c, "LEAVE_ROOM", &room)) return;
    auto& v = view(c, room);
    v.in = true;
    if (!c.logged_out && v.flowing_ms < 0) v.flowing_ms = w.now_ms();
}

// Sends `req` with the next id. For an edit or delete of message `message_id`, the change is
// recorded (in doubt until answered).
void request(World& w, Legit& c, json req, int64_t message_id = 0) {
    int64_t id = c.next_id++;
    req["id"] = id;
    std::string op = req.value("op", "");
    Legit::Pending p{w.now_ms(), op, req.value("text", ""), req.value("room", ""), message_id, 0};
    if (op == "EDIT_MESSAGE" || op == "DELETE_MESSAGE") {
        auto& changes = w.tracked()[message_id].changes;
        p.change = changes.size();
        changes.push_back(World::Change{op == "DELETE_MESSAGE", p.text});
    }
    if (op == "REACT") {
        // Its author may not have been told yet that the message is stored: the event can
        // reach a reader before the reply reaches the author.
        auto& reactions = w.tracked()[message_id].reactions;
        reactions.push_back(World::Reaction{c.name, req["emoji"]});
        p.change = reactions.size();
    }
    if (op == "JOIN_ROOM" || op == "CREATE_ROOM" || op == "ACCEPT_INVITATION") view(c, p.room);
    if (op == "LEAVE_ROOM") {
        auto& v = view(c, p.room);
        v.in = false;
        stop_flow(v);
    }
    if (op == "LOGOUT") {
        c.logged_out = true;
        for (auto& v : c.asked) stop_flow(v);
    }
    c.pending[id] = std::move(p);
    w.send(c.conn, req.dump() + "\n");
}

void connect(World& w, Legit& c);

// The text of the client's next message or edit: unique in the run.
std::string fresh_text(const Legit& c, const char* what) {
    return std::string(what) + " from " + c.name + " #" + std::to_string(c.next_id);
}

// The client's own private room, created the first time it invites someone or sets a topic.
std::string den_of(const Legit& c) {
    return c.name + "-den";
}

// The last message the client saw in `room` on this connection (0: none yet).
int64_t last_seen(const Legit& c, const std::string& room) {
    for (const auto& v : c.asked)
        if (v.room == room) return v.last;
    return 0;
}

void loop(World& w, Legit& c) {
    if (!w.is_open(c.conn) || !c.ready || w.stopped() ||
        w.now_ms() >= w.spec().duration_ms - 2000) {
        c.looping = false;
        return;
    }
    c.looping = true;
    Stream& rng = *c.rng;
    const Mix& mix = c.spec->mix;
    int64_t roll = static_cast<int64_t>(rng.below(static_cast<uint64_t>(mix.total())));
    const std::string& room = c.rooms[rng.below(c.rooms.size())];
    uint64_t pick = rng.next();  // which message, friend or emoji, for the ops that choose
    static constexpr const char* emoji[] = {"+1", "tada", "eyes"};
    auto send = [&] {
        request(w, c, {{"op", "SEND_MESSAGE"}, {"room", room}, {"text", fresh_text(c, "hello")}});
    };
    if ((roll -= mix.send) < 0) {
        send();
    } else if ((roll -= mix.history) < 0) {
        request(w, c, {{"op", "HISTORY"}, {"room", room}, {"limit", 20}});
    } else if ((roll -= mix.ping) < 0) {
        request(w, c, {{"op", "PING"}});
    } else if ((roll -= mix.list_rooms) < 0) {
        request(w, c, {{"op", "LIST_ROOMS"}});
    } else if ((roll -= mix.react) < 0) {
        if (int64_t id = last_seen(c, room))
            request(w, c, {{"op", "REACT"}, {"message_id", id}, {"emoji", emoji[pick % 3]}}, id);
        else
            send();
    } else if ((roll -= mix.edit) < 0) {
        if (c.own.empty()) {
            send();
        } else {
            int64_t id = c.own[pick % c.own.size()];
            request(w, c,
                    {{"op", "EDIT_MESSAGE"}, {"message_id", id}, {"text", fresh_text(c, "edit")}},
                    id);
        }
    } else if ((roll -= mix.remove) < 0) {
        if (c.own.empty()) {
            send();
        } else {
            size_t k = pick % c.own.size();
            int64_t id = c.own[k];
            c.own.erase(c.own.begin() + static_cast<ptrdiff_t>(k));
            request(w, c, {{"op", "DELETE_MESSAGE"}, {"message_id", id}}, id);
        }
    } else if ((roll -= mix.dm) < 0) {
        // Two friends each: a day-old account writing to many people would be spam.
        int count = c.spec->count;
        int friend_index = (c.index + 1 + static_cast<int>(pick % 2)) % std::max(count, 1);
        if (count < 2 || friend_index == c.index) {
            send();
        } else {
            request(w, c,
                    {{"op", "DIRECT_MESSAGE"},
                     {"to", c.population + std::to_string(friend_index)},
                     {"text", fresh_text(c, "psst")}});
        }
    } else if ((roll -= mix.search) < 0) {
        request(w, c, {{"op", "SEARCH"}, {"query", "hello"}, {"room", room}, {"limit", 10}});
    } else if ((roll -= mix.leave) < 0) {
        // Out and back in, pipelined: events of the room may stop for a moment. Only the
        // population's rooms: a private one would not let it back in.
        const auto& open = c.spec->rooms;
        if (std::find(open.begin(), open.end(), room) == open.end()) {
            send();
        } else {
            request(w, c, {{"op", "LEAVE_ROOM"}, {"room", room}});
            request(w, c, {{"op", "JOIN_ROOM"}, {"room", room}});
        }
    } else if ((roll -= mix.relogin) < 0) {
        // The session ends (its token revoked) and a new one begins on the same connection.
        c.token.clear();
        request(w, c, {{"op", "LOGOUT"}});
        request(w, c, {{"op", "LOGIN"}, {"username", c.name}, {"password", c.password}});
    } else if ((roll -= mix.invite) < 0) {
        int count = c.spec->count;
        int friend_index = (c.index + 1 + static_cast<int>(pick % 2)) % std::max(count, 1);
        if (!c.den) {
            request(w, c, {{"op", "CREATE_ROOM"}, {"room", den_of(c)}, {"visibility", "private"}});
        } else if (pick % 4 == 0) {
            request(w, c, {{"op", "LIST_INVITATIONS"}});
        } else if (count < 2 || friend_index == c.index) {
            send();
        } else {
            request(w, c,
                    {{"op", "INVITE_USER"},
                     {"room", den_of(c)},
                     {"user", c.population + std::to_string(friend_index)}});
        }
    } else if ((roll -= mix.thread) < 0) {
        if (int64_t id = last_seen(c, room))
            request(w, c, {{"op", "GET_THREAD"}, {"message_id", id}});
        else
            send();
    } else if ((roll -= mix.members) < 0) {
        request(w, c, {{"op", "REQUEST_USER_LIST"}, {"room", room}});
    } else if ((roll -= mix.topic) < 0) {
        if (!c.den)
            request(w, c, {{"op", "CREATE_ROOM"}, {"room", den_of(c)}, {"visibility", "private"}});
        else
            request(w, c,
                    {{"op", "SET_TOPIC"}, {"room", den_of(c)}, {"topic", fresh_text(c, "topic")}});
    } else {
        if (int64_t id = last_seen(c, room))
            request(w, c, {{"op", "MARK_READ"}, {"room", room}, {"message_id", id}});
        else
            send();
    }
    w.at(w.now_ms() + rng.between(c.spec->think_min_ms, c.spec->think_max_ms),
         [&w, &c] { loop(w, c); });
}

// In a room after setup (its own private room, an accepted invitation, a rejoin): one it
// sends to and joins again after a reconnect.
void enter(World& w, Legit& c, const std::string& room) {
    joined(w, c, room);
    if (std::find(c.rooms.begin(), c.rooms.end(), room) != c.rooms.end()) return;
    c.rooms.push_back(room);
    if (c.ready) ++c.joined;  // every room before it is joined too: no JOIN needed now
}

void join_next(World& w, Legit& c) {
    if (c.joined < c.rooms.size()) {
        const std::string& room = c.rooms[c.joined];
        if (c.index < 0) return request(w, c, {{"op", "CREATE_ROOM"}, {"room", room}});
        return request(w, c, {{"op", "JOIN_ROOM"}, {"room", room}});
    }
    if (c.index < 0) return;  // the host only sets up
    c.ready = true;
    if (!c.looping) {
        c.looping = true;
        Stream& rng = *c.rng;
        w.at(w.now_ms() + rng.between(c.spec->think_min_ms, c.spec->think_max_ms),
             [&w, &c] { loop(w, c); });
    }
}

// How many ids of each room a client keeps, to tell whether a message acknowledged to its
// author after it reached this client did reach it.
constexpr size_t recent_max = 128;

void on_invitation(World& w, Legit& c, const json& m);

void on_event(World& w, Legit& c, const Line& l) {
    const std::string_view ev = l.ev;
    if (ev == "HELLO") {
        if (!c.token.empty()) return request(w, c, {{"op", "LOGIN"}, {"token", c.token}});
        if (c.register_sent)
            return request(w, c, {{"op", "LOGIN"}, {"username", c.name}, {"password", c.password}});
        c.register_sent = true;
        return request(w, c, {{"op", "REGISTER"}, {"username", c.name}, {"password", c.password}});
    }
    if (ev == "INVITATION") return on_invitation(w, c, l.value);
    // This runs once per receiver of every message: the line's facts, no lookups.
    if (ev != "MESSAGE" || l.message_room.empty()) return;
    const std::string_view room = l.message_room;
    const int64_t id = l.message_id;
    // Sent by a process whose power loss then took it (synchronous = normal): its id is the
    // next process's to give again.
    if (w.any_lost_to_power_loss() && w.lost_to_power_loss(w.peer(c.conn).epoch, id)) {
        w.probe("power_loss.lost_message_delivered");
        return;
    }
    auto v = std::find_if(c.asked.begin(), c.asked.end(),
                          [&](const Legit::RoomView& a) { return a.room == room; });
    if (v == c.asked.end()) {
        w.violation("delivery.members_only", c.name + " got message " + std::to_string(id) +
                                                 " of " + std::string(room) +
                                                 ", which it never joined");
        return;
    }
    if (id <= v->last)
        w.violation("order.room_monotonic", c.name + " got message " + std::to_string(id) + " of " +
                                                std::string(room) + " after " +
                                                std::to_string(v->last));
    v->last = std::max(v->last, id);
    v->recent.push_back(id);
    if (v->recent.size() > recent_max) v->recent.pop_front();
    // In order: whatever is owed below this id was skipped.
    for (size_t i = 0; i < v->owed.size();) {
        int64_t o = v->owed[i];
        if (o > id) {
            ++i;
            continue;
        }
        if (o < id)
            w.violation("delivery.complete", c.name + " got message " + std::to_string(id) +
                                                 " of " + std::string(room) + " but never " +
                                                 std::to_string(o) +
                                                 ", stored before it while it was in the room");
        v->owed[i] = v->owed.back();
        v->owed.pop_back();
    }
}

// Two invitations of three are accepted, the rest declined; either way at once.
void on_invitation(World& w, Legit& c, const json& m) {
    auto inv = m.find("invitation");
    if (inv == m.end() || !inv->is_object()) return;
    std::string_view to = text_field(*inv, "to");
    std::string room(text_field(*inv, "room"));
    if (to != c.name) {
        w.violation("delivery.members_only",
                    c.name + " got an invitation addressed to " + std::string(to));
        return;
    }
    if (c.index < 0 || room.empty()) return;
    // By its id: answered by room, a newer invitation to the same room would be the one taken.
    int64_t id = inv->value("id", int64_t{0});
    bool accept = c.rng->below(3) != 0;
    request(w, c,
            {{"op", accept ? "ACCEPT_INVITATION" : "DECLINE_INVITATION"}, {"invitation_id", id}});
    Legit::Pending& p = c.pending[c.next_id - 1];
    p.room = room;
    if (accept) view(c, room);  // its messages may reach it from now on
    p.expires_ms = inv->value("expires_ts", int64_t{0});
    p.wall_floor_ms = w.core_wall_floor_ms();
}

// Whether `id` is among the ids of the room received lately. From the newest: the message
// arrived moments ago, most often it is the last or nearly (a binary search began in the
// middle, on memory long cold: a twentieth of a run's time).
bool received_lately(const Legit::RoomView& v, int64_t id) {
    for (auto it = v.recent.rbegin(); it != v.recent.rend() && *it >= id; ++it)
        if (*it == id) return true;
    return false;
}

// The message `id` of `room` was acknowledged to its author, who sent it at `sent_ms`: every
// connection of another legitimate client whose events of the room flowed since before then
// receives it (or has already).
void owe(World& w, const Legit& author, const std::string& room, int64_t id, int64_t sent_ms) {
    for (auto [r, index] : (*author.audiences)[room]) {
        Legit::RoomView& v = r->asked[index];
        if (r == &author || v.flowing_ms < 0 || v.flowing_ms >= sent_ms || !w.is_open(r->conn))
            continue;
        if (id > v.last) {
            v.owed.push_back(id);
            ++r->owed_total;
        } else if (received_lately(v, id)) {
            ++r->owed_total;  // received before its author heard back
        } else if (v.recent.size() < recent_max || id > v.recent.front()) {
            w.violation("delivery.complete",
                        r->name + " never got message " + std::to_string(id) + " of " + room +
                            ", stored while it was in the room (it got later ones)");
        } else {
            w.probe("delivery.unjudged");  // older than the window of received ids
        }
    }
}

// As real clients do after a refusal (RATE_LIMITED, UNAVAILABLE while storage is down, ...):
// wait as long as asked (a second if not said), then send the same request again on the same
// connection, if it is still open.
void retry_later(World& w, Legit& c, const json& reply, json again) {
    int64_t wait = 1000;
    if (auto e = reply.find("error"); e != reply.end() && e->is_object())
        wait = std::clamp<int64_t>(e->value("retry_after_ms", int64_t{1000}), 100, 60'000);
    ConnId conn = c.conn;
    w.at(w.now_ms() + wait, [&w, &c, conn, again = std::move(again)] {
        if (c.conn == conn && w.is_open(conn)) request(w, c, again);
    });
}

void on_line(World& w, Legit& c, const Line& l) {
    if (!l.re) return on_event(w, c, l);
    const json& m = l.value;
    // The oldest request still unanswered is the one this reply is to.
    int64_t re_id = *l.re;
    auto it = c.pending.begin();
    if (it == c.pending.end() || it->first != re_id) {
        w.violation("order.replies_in_request_order",
                    c.name + " got the reply to request " + std::to_string(re_id) +
                        (it == c.pending.end()
                             ? ", with none unanswered"
                             : " while " + std::to_string(it->first) + " was unanswered"));
        it = c.pending.find(re_id);
        if (it == c.pending.end()) return;
    }
    Legit::Pending p = std::move(it->second);
    c.pending.erase(it);
    bool ok = l.ok;
    std::string code = ok ? "" : m["error"].value("code", "?");
    if (c.index >= 0)
        w.report_sample(Sample{w.now_ms(), w.now_ms() - p.sent_ms, p.op, code, c.population});
    // An answer of a process that lost power since, taking changes it had acknowledged
    // (synchronous = normal): a message above what survived is forgotten, as its author must;
    // other changes it acknowledged are in doubt.
    const bool lost_power = w.any_lost_to_power_loss() && w.lost_power(w.peer(c.conn).epoch);
    const World::Outcome acked = lost_power ? World::Outcome::in_doubt : World::Outcome::acked;
    if (p.op == "SEND_MESSAGE" || p.op == "DIRECT_MESSAGE") {
        auto msg = m.find("message");
        if (ok && msg != m.end() && msg->is_object() &&
            w.lost_to_power_loss(w.peer(c.conn).epoch, msg->value("id", int64_t{0}))) {
            w.probe("power_loss.lost_message_acknowledged");
        } else if (ok && msg != m.end() && msg->is_object()) {
            int64_t id = msg->value("id", int64_t{0});
            // Told it is stored: it must be, already (unless it is past its room's age).
            int64_t ts = msg->value("ts", int64_t{0});
            std::string room = p.op == "SEND_MESSAGE" ? p.room : "";
            std::optional<MessageRow> row = w.stored_message(id);
            if (row ? row->text != p.text : !w.may_have_expired(room, ts))
                w.violation("durability.acked_stored", c.name + " was told message " +
                                                           std::to_string(id) +
                                                           " is stored before it was");
            if (p.op == "SEND_MESSAGE") owe(w, c, p.room, id, p.sent_ms);
            World::Tracked& t = w.tracked()[id];  // reactions may be there already
            t.author = c.name;
            t.original = p.text;
            t.room = room;
            t.ts_ms = ts;
            c.own.push_back(id);
            if (c.own.size() > 32) c.own.erase(c.own.begin());
        } else if (!ok) {
            w.refused_texts().insert(p.text);
        }
    }
    // (A message a power loss took is no longer tracked, nor what was asked of it.)
    auto tracked = lost_power && w.lost_to_power_loss(w.peer(c.conn).epoch, p.message_id)
                       ? w.tracked().end()
                       : w.tracked().find(p.message_id);
    if (p.op == "REACT" && p.change > 0 && tracked != w.tracked().end() &&
        p.change <= tracked->second.reactions.size())
        tracked->second.reactions[p.change - 1].outcome = ok ? acked : World::Outcome::refused;
    if ((p.op == "EDIT_MESSAGE" || p.op == "DELETE_MESSAGE") && tracked != w.tracked().end() &&
        p.change < tracked->second.changes.size())
        tracked->second.changes[p.change].outcome = ok ? acked : World::Outcome::refused;
    if (p.op == "REGISTER" || p.op == "LOGIN") {
        if (ok || (p.op == "LOGIN" && code == "CONFLICT" && c.ready)) {
            // Logged in again after a LOGOUT (or the LOGOUT was refused and the session went
            // on): events of the rooms it is in flow from now on, unless it logs out again.
            c.logged_out = unanswered(c, "LOGOUT");
            for (auto& v : c.asked)
                if (v.in) joined(w, c, v.room);
        }
        if (ok) {
            if (m.contains("session") && m["session"].is_object())
                c.token = m["session"].value("token", "");
            return join_next(w, c);
        }
        if (!c.token.empty()) {
            // The session did not survive (a crash before its commit): log in afresh.
            c.token.clear();
            return request(w, c, {{"op", "LOGIN"}, {"username", c.name}, {"password", c.password}});
        }
        // A REGISTER whose answer a crash hid may have landed; a LOGIN for an account whose
        // REGISTER did not land must register.
        if (code == "INVALID_CREDENTIALS" || code == "NOT_FOUND") {
            c.register_sent = false;
            return request(w, c,
                           {{"op", "REGISTER"}, {"username", c.name}, {"password", c.password}});
        }
        // A LOGIN after a LOGOUT that storage refused: the session it meant to end goes on.
        if (p.op == "LOGIN" && code == "CONFLICT" && c.ready) return;
        if (p.op == "REGISTER" && code == "CONFLICT")
            return request(w, c, {{"op", "LOGIN"}, {"username", c.name}, {"password", c.password}});
        json again = p.op == "REGISTER"
                         ? json{{"op", "REGISTER"}, {"username", c.name}, {"password", c.password}}
                         : json{{"op", "LOGIN"}, {"username", c.name}, {"password", c.password}};
        return retry_later(w, c, m, std::move(again));
    }
    if (p.op == "ACCEPT_INVITATION" && code == "NOT_FOUND" && p.expires_ms > 0 &&
        p.wall_floor_ms >= p.expires_ms)
        w.probe("time.invitation_expired_refused");
    if (p.op == "ACCEPT_INVITATION" && ok) {
        // The core read its wall clock after the request left, so at no less than the floor.
        if (p.expires_ms > 0 && p.wall_floor_ms >= p.expires_ms)
            w.violation("time.invitations_expire",
                        c.name + " accepted the invitation to " + p.room + " that expired at " +
                            std::to_string(p.expires_ms) + ", asked at wall time " +
                            std::to_string(p.wall_floor_ms) + " or later");
        return enter(w, c, p.room);
    }
    if ((p.op == "JOIN_ROOM" || p.op == "CREATE_ROOM") && c.ready) {
        // Back in after a leave, or its own private room created (CONFLICT: it was, and a
        // crash hid the answer).
        bool den = p.op == "CREATE_ROOM" && p.room == den_of(c);
        if (den && (ok || code == "CONFLICT")) c.den = true;
        if (ok || (den && code == "CONFLICT")) enter(w, c, p.room);
        return;
    }
    if ((p.op == "JOIN_ROOM" || p.op == "CREATE_ROOM") && !ok && code != "CONFLICT")
        return retry_later(w, c, m, {{"op", p.op}, {"room", p.room}});  // again, later
    if (p.op == "JOIN_ROOM" || p.op == "CREATE_ROOM") {
        // Joining a room it is already in (after a reconnect) is fine too.
        joined(w, c, p.room);
        ++c.joined;
        join_next(w, c);
    }
}

// The connection is gone: what it was waiting for is in doubt.
void forget_connection(World& w, Legit& c, const std::string& reason) {
    c.ready = false;
    for (auto& v : c.asked) stop_flow(v);
    for (const auto& [id, p] : c.pending)
        if (p.op == "SEND_MESSAGE" || p.op == "DIRECT_MESSAGE") w.in_doubt_texts().insert(p.text);
    // Edits and deletes whose answer is lost stay in doubt (their changes' default).
    c.pending.clear();
    if (c.index >= 0)
        w.event("legit.disconnected", {{"population", c.population}, {"reason", reason}});
}

void on_close(World& w, Legit& c, const std::string& reason) {
    forget_connection(w, c, reason);
    if (w.stopped()) return;  // shut down for good; SHUTDOWN in a restart: dial again
    // Real clients redial: after a crash as soon as the server is back, else after a pause.
    Stream& rng = *c.rng;
    w.at(w.now_ms() + rng.between(reason == "CRASH" ? 100 : 1000, 2000), [&w, &c] {
        if (w.now_ms() < w.spec().duration_ms - 2000) connect(w, c);
    });
}

void connect(World& w, Legit& c) {
    if (c.roam) c.ip = c.roam->any(*c.rng);  // a new network, a new address
    c.joined = 0;
    c.logged_out = false;
    for (auto& v : c.asked) {  // a new connection starts its own order
        v.last = 0;
        v.in = false;
        v.recent.clear();
        stop_flow(v);
    }
    c.conn = w.open(
        c.index < 0 ? "host" : "client/" + c.population + "/" + std::to_string(c.index), c.ip,
        [&w, &c](const Line& l) { on_line(w, c, l); },
        [&w, &c](const std::string& reason) { on_close(w, c, reason); });
    if (c.spec->readers_max_bps > 0 && w.is_open(c.conn)) {
        Peer& p = w.peer(c.conn);
        p.read_bytes_per_s = World::read_pace(p, c.spec->readers_min_bps, c.spec->readers_max_bps);
    }
}

}  // namespace

void redial(World& w, Legit& c, int64_t at_ms, bool silently) {
    if (!w.is_open(c.conn)) return;
    if (silently)
        w.vanish(c.conn);
    else
        w.hang_up(c.conn, /*deaf=*/true);
    forget_connection(w, c, silently ? "VANISHED" : "REDIAL");
    ConnId old = c.conn;
    w.at(at_ms, [&w, &c, old] {
        if (c.conn == old && !w.stopped() && w.now_ms() < w.spec().duration_ms - 2000)
            connect(w, c);
    });
}

std::optional<uint32_t> ipv4(const std::string& ip) {
    in_addr a{};
    if (inet_pton(AF_INET, ip.c_str(), &a) != 1) return std::nullopt;
    return ntohl(a.s_addr);
}

std::optional<Cidr> Cidr::parse(const std::string& ip_or_cidr) {
    std::optional<AddressRange> r = AddressRange::parse(ip_or_cidr);
    if (!r || r->v6) return std::nullopt;
    Cidr c;
    c.bits = r->bits;
    c.mask = c.bits == 0 ? 0 : ~uint32_t{0} << (32 - c.bits);
    c.net = uint32_t{r->net[0]} << 24 | uint32_t{r->net[1]} << 16 | uint32_t{r->net[2]} << 8 |
            r->net[3];
    return c;
}

std::optional<AddressRange> AddressRange::parse(const std::string& ip_or_cidr) {
    size_t slash = ip_or_cidr.find('/');
    std::optional<IpAddress> ip = parse_ip(std::string_view(ip_or_cidr).substr(0, slash));
    if (!ip) return std::nullopt;
    AddressRange r;
    r.net = ip->bytes;
    r.v6 = !ip->v4;
    r.bits = r.v6 ? 128 : 32;
    if (slash != std::string::npos) {
        const std::string b = ip_or_cidr.substr(slash + 1);
        if (b.empty() || b.size() > 3 || !std::all_of(b.begin(), b.end(), ::isdigit))
            return std::nullopt;
        int bits = std::stoi(b);
        if (bits > (r.v6 ? 128 : 32)) return std::nullopt;
        r.bits = bits;
    }
    for (int i = r.bits; i < (r.v6 ? 128 : 32); ++i)  // the network's own address
        r.net[static_cast<size_t>(i / 8)] &= static_cast<uint8_t>(~(0x80 >> (i % 8)));
    return r;
}

// An IPv4 network's own address and broadcast are no host's, nor IPv6's all-zero one. An IPv6
// network wider than a /64 gives each host a /64 of its own (as providers delegate them).
uint64_t AddressRange::hosts() const {
    int host_bits = (v6 ? 128 : 32) - bits;
    if (v6 && bits < 64) return uint64_t{1} << std::min(64 - bits, 62);
    if (host_bits == 0 || (!v6 && host_bits == 1)) return host_bits == 0 ? 1 : 2;
    uint64_t n = uint64_t{1} << std::min(host_bits, 62);
    return v6 ? n - 1 : n - 2;
}

std::string AddressRange::nth(uint64_t i) const {
    if (i >= hosts()) return {};
    int host_bits = (v6 ? 128 : 32) - bits;
    std::array<uint8_t, 16> a = net;
    bool own_64 = v6 && bits < 64;
    uint64_t add = own_64 ? i : i + (host_bits >= (v6 ? 1 : 2) ? 1 : 0);
    // From the low end of the host part, or of the /64's prefix.
    for (size_t k = own_64 ? 8 : v6 ? 16 : 4; k-- > 0 && add;) {
        uint64_t sum = a[k] + (add & 0xff);
        a[k] = static_cast<uint8_t>(sum);
        add = (add >> 8) + (sum >> 8);
    }
    if (own_64) a[15] = 1;  // its /64's first host
    char out[INET6_ADDRSTRLEN];
    inet_ntop(v6 ? AF_INET6 : AF_INET, a.data(), out, sizeof out);
    return out;
}

std::string address_in(const std::string& ip_or_cidr, int64_t i) {
    std::optional<AddressRange> r = AddressRange::parse(ip_or_cidr);
    if (!r || i < 0) return {};
    if (ip_or_cidr.find('/') == std::string::npos) return ip_or_cidr;  // shared by all
    return r->nth(static_cast<uint64_t>(i));
}

void start_populations(World& w, std::vector<std::unique_ptr<Legit>>& legit) {
    // The host registers first and creates the rooms everyone joins.
    static const PopulationSpec host_spec;
    auto audiences = std::make_shared<Audiences>();
    w.hold(audiences);
    auto& host = legit.emplace_back(std::make_unique<Legit>());
    host->audiences = audiences.get();
    host->population = "host";
    host->index = -1;
    host->name = "host";
    host->password = "host-password";
    host->ip = "10.1.0.1";
    host->spec = &host_spec;
    host->rng = &w.stream("host");
    for (const auto& p : w.spec().populations)
        for (const auto& r : p.rooms)
            if (std::find(host->rooms.begin(), host->rooms.end(), r) == host->rooms.end())
                host->rooms.push_back(r);
    connect(w, *host);
    for (const PopulationSpec& p : w.spec().populations) {
        for (int i = 0; i < p.count; ++i) {
            auto& c = legit.emplace_back(std::make_unique<Legit>());
            c->population = p.name;
            c->audiences = audiences.get();
            c->index = i;
            c->name = p.name + std::to_string(i);
            c->password = "password-" + std::to_string(i);
            c->ip = address_in(p.ip, i);
            if (!p.roam.empty()) c->roam = AddressRange::parse(p.roam);
            c->rooms = p.rooms;
            c->spec = &p;
            c->rng = &w.stream("client/" + p.name + "/" + std::to_string(i));
            Stream& rng = *c->rng;
            w.at(rng.between(p.arrive_from_ms, p.arrive_to_ms), [&w, &c = *c] { connect(w, c); });
        }
    }
}

}  // namespace warren::sim
