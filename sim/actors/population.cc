#include "sim/actors/population.h"

#include <arpa/inet.h>

namespace warren::sim {

namespace {

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
    c.pending[id] = std::move(p);
    if (op == "JOIN_ROOM" || op == "CREATE_ROOM") {
        const std::string& room = req["room"].get_ref<const std::string&>();
        if (std::none_of(c.asked.begin(), c.asked.end(),
                         [&](const auto& a) { return a.first == room; }))
            c.asked.emplace_back(room, 0);
    }
    w.send(c.conn, req.dump() + "\n");
}

void connect(World& w, Legit& c);

// The text of the client's next message or edit: unique in the run.
std::string fresh_text(const Legit& c, const char* what) {
    return std::string(what) + " from " + c.name + " #" + std::to_string(c.next_id);
}

// The last message the client saw in `room` on this connection (0: none yet).
int64_t last_seen(const Legit& c, const std::string& room) {
    for (const auto& [r, id] : c.asked)
        if (r == room) return id;
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
        // Out and back in, pipelined: events of the room may stop for a moment.
        request(w, c, {{"op", "LEAVE_ROOM"}, {"room", room}});
        request(w, c, {{"op", "JOIN_ROOM"}, {"room", room}});
    } else if ((roll -= mix.relogin) < 0) {
        // The session ends (its token revoked) and a new one begins on the same connection.
        c.token.clear();
        request(w, c, {{"op", "LOGOUT"}});
        request(w, c, {{"op", "LOGIN"}, {"username", c.name}, {"password", c.password}});
    } else {
        if (int64_t id = last_seen(c, room))
            request(w, c, {{"op", "MARK_READ"}, {"room", room}, {"message_id", id}});
        else
            send();
    }
    w.at(w.now_ms() + rng.between(c.spec->think_min_ms, c.spec->think_max_ms),
         [&w, &c] { loop(w, c); });
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

void on_event(World& w, Legit& c, const json& m) {
    const std::string_view ev = text_field(m, "ev");
    if (ev == "HELLO") {
        if (!c.token.empty()) return request(w, c, {{"op", "LOGIN"}, {"token", c.token}});
        if (c.register_sent)
            return request(w, c, {{"op", "LOGIN"}, {"username", c.name}, {"password", c.password}});
        c.register_sent = true;
        return request(w, c, {{"op", "REGISTER"}, {"username", c.name}, {"password", c.password}});
    }
    if (ev != "MESSAGE") return;
    // By reference: this runs once per receiver of every message.
    auto found = m.find("message");
    if (found == m.end() || !found->is_object()) return;
    const json& msg = *found;
    auto room_at = msg.find("room");
    if (room_at == msg.end() || !room_at->is_string()) return;
    const std::string& room = room_at->get_ref<const std::string&>();
    int64_t id = msg.value("id", int64_t{0});
    auto asked = std::find_if(c.asked.begin(), c.asked.end(),
                              [&](const auto& a) { return a.first == room; });
    if (asked == c.asked.end()) {
        w.violation("delivery.members_only", c.name + " got message " + std::to_string(id) +
                                                 " of " + room + ", which it never joined");
        return;
    }
    int64_t& last = asked->second;
    if (id <= last)
        w.violation("order.room_monotonic", c.name + " got message " + std::to_string(id) + " of " +
                                                room + " after " + std::to_string(last));
    last = std::max(last, id);
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

void on_line(World& w, Legit& c, const json& m) {
    auto re = m.find("re");
    if (re == m.end() || !re->is_number()) return on_event(w, c, m);
    auto it = c.pending.find(re->get<int64_t>());
    if (it == c.pending.end()) return;
    Legit::Pending p = std::move(it->second);
    c.pending.erase(it);
    bool ok = m.value("ok", false);
    std::string code = ok ? "" : m["error"].value("code", "?");
    if (c.index >= 0)
        w.report_sample(Sample{w.now_ms(), w.now_ms() - p.sent_ms, p.op, code, c.population});
    if (p.op == "SEND_MESSAGE" || p.op == "DIRECT_MESSAGE") {
        auto msg = m.find("message");
        if (ok && msg != m.end() && msg->is_object()) {
            int64_t id = msg->value("id", int64_t{0});
            World::Tracked& t = w.tracked()[id];  // reactions may be there already
            t.author = c.name;
            t.original = p.text;
            c.own.push_back(id);
            if (c.own.size() > 32) c.own.erase(c.own.begin());
        } else if (!ok) {
            w.refused_texts().insert(p.text);
        }
    }
    if (p.op == "REACT" && p.change > 0)
        w.tracked()[p.message_id].reactions[p.change - 1].outcome =
            ok ? World::Outcome::acked : World::Outcome::refused;
    if (p.op == "EDIT_MESSAGE" || p.op == "DELETE_MESSAGE")
        w.tracked()[p.message_id].changes[p.change].outcome =
            ok ? World::Outcome::acked : World::Outcome::refused;
    if (p.op == "REGISTER" || p.op == "LOGIN") {
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
    if ((p.op == "JOIN_ROOM" || p.op == "CREATE_ROOM") && !ok && code != "CONFLICT")
        return retry_later(w, c, m, {{"op", p.op}, {"room", p.room}});  // again, later
    if (p.op == "JOIN_ROOM" && c.ready) return;                         // back in after a leave
    if (p.op == "JOIN_ROOM" || p.op == "CREATE_ROOM") {
        // Joining a room it is already in (after a reconnect) is fine too.
        if (ok || code == "CONFLICT") {
            ++c.joined;
            join_next(w, c);
        }
    }
}

void on_close(World& w, Legit& c, const std::string& reason) {
    c.ready = false;
    for (const auto& [id, p] : c.pending)
        if (p.op == "SEND_MESSAGE" || p.op == "DIRECT_MESSAGE") w.in_doubt_texts().insert(p.text);
    // Edits and deletes whose answer is lost stay in doubt (their changes' default).
    c.pending.clear();
    if (c.index >= 0)
        w.event("legit.disconnected", {{"population", c.population}, {"reason", reason}});
    if (reason == "SHUTDOWN" || w.stopped()) return;
    // Real clients redial: after a crash as soon as the server is back, else after a pause.
    Stream& rng = *c.rng;
    w.at(w.now_ms() + rng.between(reason == "CRASH" ? 100 : 1000, 2000), [&w, &c] {
        if (w.now_ms() < w.spec().duration_ms - 2000) connect(w, c);
    });
}

void connect(World& w, Legit& c) {
    c.joined = 0;
    for (auto& a : c.asked) a.second = 0;  // a new connection starts its own order
    c.conn = w.open(
        c.index < 0 ? "host" : "client/" + c.population + "/" + std::to_string(c.index), c.ip,
        [&w, &c](const json& m) { on_line(w, c, m); },
        [&w, &c](const std::string& reason) { on_close(w, c, reason); });
}

}  // namespace

std::string address_in(const std::string& ip_or_cidr, int64_t i) {
    size_t slash = ip_or_cidr.find('/');
    if (slash == std::string::npos) return ip_or_cidr;
    in_addr a{};
    if (inet_pton(AF_INET, ip_or_cidr.substr(0, slash).c_str(), &a) != 1) return {};
    int bits = std::stoi(ip_or_cidr.substr(slash + 1));
    uint64_t hosts = bits >= 31 ? 1 : (uint64_t{1} << (32 - bits)) - 2;
    if (i < 0 || static_cast<uint64_t>(i) >= hosts) return {};
    uint32_t mask = bits == 0 ? 0 : ~uint32_t{0} << (32 - bits);
    uint32_t host = (ntohl(a.s_addr) & mask) + (bits >= 31 ? 0 : 1) + static_cast<uint32_t>(i);
    a.s_addr = htonl(host);
    char out[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &a, out, sizeof out);
    return out;
}

void start_populations(World& w, std::vector<std::unique_ptr<Legit>>& legit) {
    // The host registers first and creates the rooms everyone joins.
    static const PopulationSpec host_spec;
    auto& host = legit.emplace_back(std::make_unique<Legit>());
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
            c->index = i;
            c->name = p.name + std::to_string(i);
            c->password = "password-" + std::to_string(i);
            c->ip = address_in(p.ip, i);
            c->rooms = p.rooms;
            c->spec = &p;
            c->rng = &w.stream("client/" + p.name + "/" + std::to_string(i));
            Stream& rng = *c->rng;
            w.at(rng.between(p.arrive_from_ms, p.arrive_to_ms), [&w, &c = *c] { connect(w, c); });
        }
    }
}

}  // namespace warren::sim
