#include "sim/simulation.h"

#include <sodium.h>

#include <algorithm>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <queue>
#include <set>

#include "core/server.h"
#include "sim/events.h"
#include "sim/parsed_lines.h"
#include "sim/rng.h"
#include "store/store.h"

namespace warren::sim {

namespace {

using json = nlohmann::json;

constexpr int64_t wall_base_ms = 1764000000000;  // a fixed epoch so runs replay exactly

struct Pending {
    json request;
    int64_t issued_ms = 0;
};

// A scripted user: registers (or logs back in), joins its rooms, sends messages, and when
// every client is done reads its rooms back page by page. It survives server crashes by
// reconnecting and resuming its session.
struct Client {
    int index = 0;
    ConnId conn = 0;
    bool connected = false;
    std::string name;
    std::string password;
    std::string token;
    bool registered = false;  // REGISTER was acknowledged at some point
    LineFramer framer{1 << 20};
    int64_t next_id = 1;
    std::map<int64_t, Pending> pending;
    std::deque<int64_t> reply_order;  // ids in the order sent: replies must follow it
    std::vector<std::string> want_rooms;
    std::set<std::string> joined;                  // on the current connection
    std::map<std::string, int64_t> join_acked_ms;  // on the current connection
    // Rooms this user ever asked to join: membership outlives connections and crashes, and
    // the user never leaves, so events may come only from these.
    std::set<std::string> asked_to_join;
    std::set<std::string> owned;  // rooms this user created
    std::set<int64_t> changing;   // messages with a change of ours not yet answered
    std::map<std::string, std::vector<int64_t>> seen;  // room -> MESSAGE ids, current epoch
    std::map<std::string, std::vector<json>> paged;    // room -> messages read back
    int to_send = 0;
    int sent_count = 0;
    bool sending = false;         // the send loop is scheduled
    int64_t paused_until_ms = 0;  // the server asked to wait (retry_after_ms)
    bool relogging = false;       // between a LOGOUT and the LOGIN that follows it
    bool done = false;
};

struct Acked {
    std::string room;  // empty for a direct message
    int client = 0;
    int64_t issued_ms = 0;
    uint64_t epoch = 0;
    std::string text;
    int peer = -1;  // direct message: the recipient's client index
};

// What the final state of an acknowledged message may be, given the acknowledged and the
// in-doubt (hidden by a crash) changes to it.
enum class Maybe { no, maybe, yes };
struct Expected {
    std::set<std::string> texts;  // any of these
    Maybe deleted = Maybe::no;
    std::map<std::pair<int, std::string>, Maybe> reacted;  // (client, emoji)
};

class World {
  public:
    explicit World(const SimOptions& o) : opt_(o), rng_(o.seed), entropy_(o.seed ^ 0xE17) {
        auto st = Store::open(":memory:", Synchronous::normal);
        WARREN_CHECK(st.is_ok());
        store_ = std::move(st.value());
        cfg_.room_cache_messages_max = o.room_cache_messages_max;
        cfg_.invitation_ttl_ms = 3000;     // short, so runs see invitations expire
        cfg_.old_messages_cached_max = 4;  // tiny, so messages leave memory often
        start_core();
    }

    SimReport run();

  private:
    Time now() const { return Time{clock_.now_us(), wall_base_ms + clock_.now_ms()}; }
    void at(int64_t t, std::function<void()> fn) { clock_.at(t, std::move(fn)); }
    // Like at(), but dropped if the server crashed in between (the work died with it).
    void at_epoch(int64_t t_ms, std::function<void()> fn) {
        at_epoch_us(t_ms * 1000, std::move(fn));
    }
    void at_epoch_us(int64_t t_us, std::function<void()> fn) {
        clock_.at_us(t_us, [this, e = epoch_, fn = std::move(fn)] {
            if (e == epoch_ && core_) fn();
        });
    }
    void trace(std::string_view tag, uint64_t a, std::string_view bytes = {}) {
        trace_.add(tag, a, clock_.now_us(), bytes);
        ++inputs_;
    }
    void violation(std::string what) {
        if (violations_.size() < 50) violations_.push_back(std::move(what));
    }

    void start_core();
    void crash();
    void transmit(std::map<ConnId, int64_t>& last, ConnId conn, const std::string& bytes,
                  std::function<void(std::string)> deliver);
    void drain();
    void on_commit(const Commit& cm);
    Status commit_outcome(const std::vector<Mutation>& muts);
    void on_hash(const Hash& h);
    void connect(Client& c);
    void to_core(Client& c, json request);
    void retry_later(Client& c, json request, const json& reply);
    void client_bytes(Client& c, std::string chunk);
    void client_line(Client& c, const json& msg);
    void client_reply(Client& c, const json& msg, const Pending& p);
    void client_event(Client& c, const json& msg);
    void logged_in(Client& c);
    void joined(Client& c, const std::string& room);
    void on_message_reply(Client& c, const json& msg, const Pending& p);
    void on_history_reply(Client& c, const json& msg, const Pending& p);
    void send_some(Client& c);
    void other_op(Client& c);
    void on_change_reply(Client& c, const json& msg, const Pending& p);
    bool sees(const Client& c, const Acked& a) const;
    void check_messages_in_store();
    void maybe_finish(Client& c);
    void start_paging();
    void page_rooms(Client& c);
    void check_end();

    SimOptions opt_;
    Config cfg_;
    Rng rng_;
    ParsedLines parsed_;
    SeededEntropy entropy_;
    std::unique_ptr<Store> store_;
    std::unique_ptr<Server> core_;
    TraceHash trace_;
    EventQueue clock_;
    int64_t tick_at_ = INT64_MAX;
    uint64_t inputs_ = 0;
    uint64_t epoch_ = 0;
    int64_t last_crash_ms_ = -1;
    int64_t store_free_ms_ = 0;
    std::shared_ptr<const std::vector<Mutation>> inflight_commit_;
    ConnId next_conn_ = 1;
    std::map<ConnId, int64_t> c2s_last_, s2c_last_;
    std::map<ConnId, int> client_of_;  // connection -> client index
    std::vector<Client> clients_;
    std::map<int64_t, Acked> acked_;        // message id -> what its sender was told
    std::map<int64_t, Expected> expected_;  // message id -> its possible final states
    std::set<std::string> refused_texts_;   // answered with an error: must never be stored
    std::set<std::string> in_doubt_texts_;  // answer lost in a crash: stored at most once
    std::vector<std::string> violations_;
    SimReport report_;
    int clients_done_ = 0;
    bool paging_ = false;
};

void World::start_core() {
    auto snap = store_->load(cfg_.room_cache_messages_max, wall_base_ms + clock_.now_ms());
    WARREN_CHECK(snap.is_ok());
    // This workload checks durability and ordering under faults; abuse limits would only
    // refuse its deliberately fast clients (sim/scenarios.cc exercises them).
    Config cfg = without_abuse_limits(cfg_);
    cfg.sweep_interval_ms = cfg.alert_eval_ms = 1'000'000'000;
    core_ = std::make_unique<Server>(cfg, entropy_, snap.value());
}

// The server process dies: memory, connections and in-flight work are gone. A commit in
// flight may or may not have reached the disk; nobody was told either way.
void World::crash() {
    trace("crash", epoch_);
    ++report_.crashes;
    report_.breaker_opened += core_->breaker_opened_count();
    if (inflight_commit_ && rng_.chance(0.5)) (void)store_->apply(*inflight_commit_);
    inflight_commit_.reset();
    core_.reset();
    ++epoch_;
    tick_at_ = INT64_MAX;  // the pending tick belonged to the old epoch
    last_crash_ms_ = clock_.now_ms();
    for (auto& c : clients_) {
        for (auto& [id, p] : c.pending) {
            std::string op = p.request["op"];
            if (op == "SEND_MESSAGE" || op == "DIRECT_MESSAGE") {
                in_doubt_texts_.insert(p.request["text"].get<std::string>());
                ++report_.in_doubt;
            } else if (op == "EDIT_MESSAGE") {
                expected_[p.request["message_id"]].texts.insert(
                    p.request["text"].get<std::string>());
            } else if (op == "DELETE_MESSAGE") {
                expected_[p.request["message_id"]].deleted = Maybe::maybe;
            } else if (op == "REACT" || op == "UNREACT") {
                expected_[p.request["message_id"]].reacted[{c.index, p.request["emoji"]}] =
                    Maybe::maybe;
            }
        }
        c.pending.clear();
        c.changing.clear();
        c.relogging = false;
        c.reply_order.clear();
        c.joined.clear();
        c.join_acked_ms.clear();
        c.seen.clear();
        c.connected = false;
        c.sending = false;
        c.framer = LineFramer(1 << 20);
    }
    at(clock_.now_ms() + opt_.restart_ms, [this] {
        trace("restart", epoch_);
        start_core();
        for (auto& c : clients_)
            at(clock_.now_ms() + rng_.between(0, 100),
               [this, i = c.index] { connect(clients_[i]); });
    });
}

// Byte streams: split into 1..3 chunks, each delayed, never reordered within a direction.
void World::transmit(std::map<ConnId, int64_t>& last, ConnId conn, const std::string& bytes,
                     std::function<void(std::string)> deliver) {
    size_t pos = 0;
    int pieces = static_cast<int>(rng_.between(1, 3));
    for (int i = 0; i < pieces && pos < bytes.size(); ++i) {
        size_t n =
            i + 1 == pieces
                ? bytes.size() - pos
                : static_cast<size_t>(rng_.between(1, static_cast<int64_t>(bytes.size() - pos)));
        int64_t t = std::max(last[conn], clock_.now_ms() + rng_.between(0, opt_.net_delay_max_ms));
        last[conn] = t;
        at_epoch(t, [deliver, chunk = bytes.substr(pos, n)] { deliver(chunk); });
        pos += n;
    }
}

void World::drain() {
    while (auto out = core_->poll()) {
        if (auto* s = std::get_if<Send>(&*out)) {
            trace("send", s->conn, *s->bytes);
            ConnId conn = s->conn;
            transmit(s2c_last_, conn, *s->bytes, [this, conn](std::string chunk) {
                size_t n = chunk.size();
                client_bytes(clients_[client_of_.at(conn)], std::move(chunk));
                trace("sent", conn);
                core_->sent(conn, n, now());
                drain();
            });
        } else if (auto* c = std::get_if<Close>(&*out)) {
            trace("close", c->conn, c->reason);
            violation("connection " + std::to_string(c->conn) +
                      " closed: " + std::string(c->reason));
        } else if (auto* cm = std::get_if<Commit>(&*out)) {
            on_commit(*cm);
        } else if (auto* q = std::get_if<Query>(&*out)) {
            trace("query", q->query);
            store_free_ms_ = std::max(store_free_ms_, clock_.now_ms()) +
                             rng_.between(1, opt_.store_latency_max_ms);
            at_epoch(store_free_ms_, [this, id = q->query, what = q->what] {
                QueryRows rows = store_->run(what);
                trace("answered", id, std::to_string(rows.rows.size()));
                core_->answered(id, std::move(rows), now());
                drain();
            });
        } else if (auto* h = std::get_if<Hash>(&*out)) {
            on_hash(*h);
        }
    }
    // One tick pending at a time, at the earliest deadline. Housekeeping deadlines are pushed
    // out of reach (see start_core), so the run ends when the workload does.
    if (auto d = core_->next_deadline();
        d && *d < tick_at_ && *d <= clock_.now_us() + 600'000'000) {
        tick_at_ = *d;
        at_epoch_us(*d, [this] {
            tick_at_ = INT64_MAX;
            trace("tick", 0);
            core_->tick(now());
            drain();
        });
    }
}

Status World::commit_outcome(const std::vector<Mutation>& muts) {
    bool outage = clock_.now_ms() >= opt_.outage_from_ms && clock_.now_ms() < opt_.outage_to_ms;
    if (outage || rng_.chance(opt_.commit_transient_p)) {
        ++report_.commit_faults;
        return Status::transient("injected: database busy");
    }
    if (rng_.chance(opt_.commit_fail_p)) {
        ++report_.commit_faults;
        return Status::failed("injected: I/O error");
    }
    return store_->apply(muts);
}

void World::on_commit(const Commit& cm) {
    trace("commit", cm.batch, std::to_string(cm.mutations->size()));
    ++report_.batches;
    int64_t latency = rng_.between(1, opt_.store_latency_max_ms);
    if (rng_.chance(opt_.commit_slow_p)) latency *= 20;
    store_free_ms_ = std::max(store_free_ms_, clock_.now_ms()) + latency;
    inflight_commit_ = cm.mutations;
    if (static_cast<int>(report_.crashes) < opt_.crashes_max && rng_.chance(opt_.crash_p))
        at(rng_.between(clock_.now_ms(), store_free_ms_), [this, e = epoch_] {
            if (e == epoch_ && core_) crash();
        });
    at_epoch(store_free_ms_, [this, batch = cm.batch, muts = cm.mutations] {
        inflight_commit_.reset();
        Status st = commit_outcome(*muts);
        trace("committed", batch, st.message());
        core_->committed(batch, st, now());
        drain();
    });
}

void World::on_hash(const Hash& h) {
    trace("hash", h.job);
    // A stand-in for argon2id: deterministic and cheap, with simulated latency.
    uint8_t d[16];
    crypto_generichash(d, sizeof d, reinterpret_cast<const uint8_t*>(h.password.data()),
                       h.password.size(), nullptr, 0);
    // Appended, not `"$sim$" + std::string(...)`: GCC 12 at -O3 misreports that as an
    // out-of-bounds copy (-Warray-bounds).
    std::string phc = "$sim$";
    phc.append(reinterpret_cast<char*>(d), sizeof d);
    HashResult r;
    if (h.mode == HashMode::create) {
        r.ok = true;
        r.phc = phc;
    } else {
        r.ok = !h.phc.empty() && h.phc == phc;
    }
    at_epoch(clock_.now_ms() + rng_.between(5, opt_.hash_latency_max_ms), [this, job = h.job, r] {
        trace("hashed", job, r.ok ? "1" : "0");
        core_->hashed(job, r, now());
        drain();
    });
}

void World::connect(Client& c) {
    if (!core_) return;
    c.conn = next_conn_++;
    c.connected = true;
    client_of_[c.conn] = c.index;
    trace("connect", c.conn);
    core_->connect(c.conn, "127.0.0." + std::to_string(c.index % 250 + 1), now());
    drain();
}

void World::to_core(Client& c, json request) {
    // Between a LOGOUT and its LOGIN a client sends nothing else (it would be refused).
    if (c.relogging && request["op"] != "LOGIN" && request["op"] != "LOGOUT") {
        at_epoch(clock_.now_ms() + 50,
                 [this, i = c.index, request] { to_core(clients_[i], request); });
        return;
    }
    int64_t id = c.next_id++;
    request["id"] = id;
    if (request.contains("message_id") && request["op"] != "GET_THREAD" &&
        request["op"] != "MARK_READ")
        c.changing.insert(request["message_id"].get<int64_t>());
    if (request["op"] == "CREATE_ROOM" || request["op"] == "JOIN_ROOM")
        c.asked_to_join.insert(request["room"].get<std::string>());
    std::string line = request.dump() + "\n";
    c.pending[id] = Pending{std::move(request), clock_.now_ms()};
    c.reply_order.push_back(id);
    ConnId conn = c.conn;
    transmit(c2s_last_, conn, line, [this, conn](std::string chunk) {
        trace("receive", conn, chunk);
        core_->receive(conn, chunk, now());
        drain();
    });
}

// Clients wait as long as the server asks, then send the same request again.
void World::retry_later(Client& c, json request, const json& reply) {
    int64_t wait = reply["error"].value("retry_after_ms", int64_t{1000});
    request.erase("id");
    at_epoch(clock_.now_ms() + wait,
             [this, i = c.index, request] { to_core(clients_[i], request); });
}

void World::client_bytes(Client& c, std::string chunk) {
    c.framer.feed(chunk);
    std::string_view line;
    while (c.framer.next(line) == LineFramer::Status::line) {
        std::shared_ptr<const json> msg = parsed_.get(line);
        if (msg->is_discarded() || !msg->is_object()) {
            violation(c.name + " got a line that is not a JSON object");
            continue;
        }
        client_line(c, *msg);
    }
}

void World::client_line(Client& c, const json& msg) {
    if (msg.contains("ev")) return client_event(c, msg);
    if (!msg.contains("re") || msg["re"].is_null()) {
        violation(c.name + " got an error for a frame it never sent badly: " + msg.dump());
        return;
    }
    int64_t re = msg["re"].get<int64_t>();
    if (c.reply_order.empty() || c.reply_order.front() != re) {
        violation(c.name + " got reply " + std::to_string(re) + " out of request order");
    } else {
        c.reply_order.pop_front();
    }
    auto it = c.pending.find(re);
    if (it == c.pending.end()) return violation(c.name + " got a reply to no request");
    Pending p = std::move(it->second);
    c.pending.erase(it);
    if (!msg.value("ok", false) && msg["error"]["code"] == "UNAVAILABLE") ++report_.unavailable;
    client_reply(c, msg, p);
}

void World::client_event(Client& c, const json& msg) {
    std::string ev = msg["ev"].get<std::string>();
    if (ev == "HELLO") {
        if (!c.token.empty()) return to_core(c, {{"op", "LOGIN"}, {"token", c.token}});
        if (c.registered)
            return to_core(c, {{"op", "LOGIN"}, {"username", c.name}, {"password", c.password}});
        return to_core(c, {{"op", "REGISTER"}, {"username", c.name}, {"password", c.password}});
    }
    if (ev == "MESSAGE_EDITED" || ev == "MESSAGE_DELETED" || ev == "REACTION_ADDED" ||
        ev == "REACTION_REMOVED" || ev == "DIRECT_MESSAGE") {
        ++report_.events_delivered;
        int64_t id = ev == "MESSAGE_EDITED" || ev == "DIRECT_MESSAGE"
                         ? msg["message"]["id"].get<int64_t>()
                         : msg["message_id"].get<int64_t>();
        auto a = acked_.find(id);
        if (a != acked_.end() && !sees(c, a->second))
            violation(c.name + " got " + ev + " about message " + std::to_string(id) +
                      " it cannot see");
        return;
    }
    if (ev == "INVITATION") {
        // Accept two of three invitations; the room's events may come from now on.
        std::string room = msg["invitation"]["room"];
        if (msg["invitation"]["to"] != c.name) violation(c.name + " got someone else's invitation");
        bool accept = rng_.below(3) != 0;
        if (accept) c.asked_to_join.insert(room);
        return to_core(c, {{"op", accept ? "ACCEPT_INVITATION" : "DECLINE_INVITATION"},
                           {"invitation_id", msg["invitation"]["id"]}});
    }
    if (ev == "MESSAGE") {
        ++report_.events_delivered;
        const json& m = msg["message"];
        std::string room = m["room"].get<std::string>();
        if (!c.asked_to_join.contains(room))
            violation(c.name + " received a MESSAGE of " + room + " without being a member");
        if (m["author"].get<std::string>() == c.name)
            violation(c.name + " received its own message as an event");
        c.seen[room].push_back(m["id"].get<int64_t>());
    }
}

void World::client_reply(Client& c, const json& msg, const Pending& p) {
    bool ok = msg.value("ok", false);
    std::string op = p.request["op"].get<std::string>();
    std::string code = ok ? "" : msg["error"]["code"].get<std::string>();
    if (op == "SEND_MESSAGE" || op == "DIRECT_MESSAGE") return on_message_reply(c, msg, p);
    if (op == "EDIT_MESSAGE" || op == "DELETE_MESSAGE" || op == "REACT" || op == "UNREACT")
        return on_change_reply(c, msg, p);
    if (op == "INVITE_USER" && code == "CONFLICT") return maybe_finish(c);  // already in/invited
    if (op == "LEAVE_ROOM" && code == "CONFLICT") return maybe_finish(c);   // never got in
    if (op == "LEAVE_ROOM" && ok) {
        // Events already in flight from the room may still arrive; none after a new join.
        return maybe_finish(c);
    }
    if ((op == "ACCEPT_INVITATION" || op == "DECLINE_INVITATION") && code == "NOT_FOUND")
        return maybe_finish(c);  // a crash hid that it was already answered
    if (op == "HISTORY") return on_history_reply(c, msg, p);
    // A LOGOUT that failed left the session as it was; the LOGIN pipelined after it then
    // finds the connection logged in: back to normal either way.
    if (op == "LOGOUT" && code == "UNAVAILABLE") return;
    if (op == "LOGIN" && code == "CONFLICT" && c.relogging) {
        c.relogging = false;
        for (const auto& room : c.joined) c.join_acked_ms[room] = clock_.now_ms();
        return maybe_finish(c);
    }
    if (code == "UNAVAILABLE") return retry_later(c, p.request, msg);
    if (op == "REGISTER" || op == "LOGIN") {
        if (ok) {
            c.registered = true;
            c.token = msg["session"]["token"].get<std::string>();
            // Logged back in after a LOGOUT on a connection that is set up already: events
            // flow again from this commit on.
            if (!c.joined.empty()) {
                c.relogging = false;
                for (const auto& room : c.joined) c.join_acked_ms[room] = clock_.now_ms();
                return maybe_finish(c);
            }
            return logged_in(c);
        }
        // A REGISTER whose answer a crash hid may have landed: log in instead. A token that
        // a LOGOUT (whose answer a crash hid) revoked: log in with the password.
        if (op == "LOGIN" && code == "INVALID_CREDENTIALS" && p.request.contains("token")) {
            c.token.clear();
            return to_core(c, {{"op", "LOGIN"}, {"username", c.name}, {"password", c.password}});
        }
        if (op == "REGISTER" && code == "CONFLICT")
            return to_core(c, {{"op", "LOGIN"}, {"username", c.name}, {"password", c.password}});
        return violation(c.name + " could not log in: " + msg.dump());
    }
    if (op == "CREATE_ROOM" || op == "JOIN_ROOM") {
        std::string room = p.request["room"].get<std::string>();
        if (ok && op == "CREATE_ROOM") c.owned.insert(room);
        if (ok) return joined(c, room);
        if (op == "CREATE_ROOM" && code == "CONFLICT")
            return to_core(c, {{"op", "JOIN_ROOM"}, {"room", room}});
        return violation(c.name + " could not join " + room + ": " + msg.dump());
    }
    if (!ok) return violation(c.name + " " + op + " refused: " + msg.dump());
    maybe_finish(c);
}

void World::logged_in(Client& c) {
    for (const auto& room : c.want_rooms) to_core(c, {{"op", "CREATE_ROOM"}, {"room", room}});
}

void World::joined(Client& c, const std::string& room) {
    c.joined.insert(room);
    c.join_acked_ms[room] = clock_.now_ms();
    if (c.joined.size() != c.want_rooms.size()) return;
    if (paging_) return page_rooms(c);  // rejoined after a late crash: read back again
    if (c.to_send == 0) return maybe_finish(c);
    c.sending = true;
    at_epoch(clock_.now_ms() + rng_.between(1, 50),
             [this, i = c.index] { send_some(clients_[i]); });
}

void World::on_message_reply(Client& c, const json& msg, const Pending& p) {
    std::string text = p.request["text"].get<std::string>();
    if (!msg.value("ok", false)) {
        if (msg["error"]["code"] != "UNAVAILABLE")
            violation(c.name + " message refused: " + msg.dump());
        // The user sends it again later, as a new message; this one must never appear.
        refused_texts_.insert(text);
        ++c.to_send;
        c.paused_until_ms = clock_.now_ms() + msg["error"].value("retry_after_ms", int64_t{1000});
        if (!c.sending) {
            c.sending = true;
            at_epoch(c.paused_until_ms, [this, i = c.index] { send_some(clients_[i]); });
        }
        return;
    }
    const json& m = msg["message"];
    int64_t id = m["id"].get<int64_t>();
    // Durability: the acknowledged message must already be in storage.
    std::optional<MessageRow> row = store_->message(id);
    if (!row || row->text != text)
        violation("message " + std::to_string(id) + " acknowledged before durable");
    if (m["text"] != text) violation("message " + std::to_string(id) + " text changed");
    if (acked_.contains(id)) violation("message id " + std::to_string(id) + " acknowledged twice");
    int peer = -1;
    if (p.request.contains("to"))
        for (const auto& o : clients_)
            if (o.name == p.request["to"]) peer = o.index;
    acked_[id] =
        Acked{p.request.value("room", std::string()), c.index, p.issued_ms, epoch_, text, peer};
    expected_[id].texts = {text};
    maybe_finish(c);
}

void World::on_history_reply(Client& c, const json& msg, const Pending& p) {
    if (!msg.value("ok", false)) {
        if (msg["error"]["code"] == "UNAVAILABLE") return retry_later(c, p.request, msg);
        return violation(c.name + " HISTORY refused: " + msg.dump());
    }
    if (!paging_ || !p.request.contains("paging")) return maybe_finish(c);
    std::string room = p.request["room"].get<std::string>();
    auto& msgs = c.paged[room];
    std::vector<json> page(msg["messages"].begin(), msg["messages"].end());
    for (size_t i = 1; i < page.size(); ++i)
        if (page[i - 1]["id"].get<int64_t>() >= page[i]["id"].get<int64_t>())
            violation("HISTORY page not ascending");
    msgs.insert(msgs.begin(), page.begin(), page.end());
    if (msg["has_more"].get<bool>() && !page.empty()) {
        to_core(c, {{"op", "HISTORY"},
                    {"room", room},
                    {"before", page.front()["id"]},
                    {"limit", 7},
                    {"paging", true}});
    }
}

void World::send_some(Client& c) {
    if (c.relogging) c.paused_until_ms = std::max(c.paused_until_ms, clock_.now_ms() + 50);
    if (clock_.now_ms() < c.paused_until_ms) {
        at_epoch(c.paused_until_ms, [this, i = c.index] { send_some(clients_[i]); });
        return;
    }
    // A burst of 1..3 pipelined requests, mostly messages, sometimes reads.
    int burst = static_cast<int>(rng_.between(1, 3));
    for (int i = 0; i < burst && c.to_send > 0 && !c.relogging; ++i) {
        std::vector<std::string> rooms(c.joined.begin(), c.joined.end());
        const std::string& room = rooms[rng_.below(rooms.size())];
        uint64_t pick = rng_.below(10);
        if (pick == 0) {
            to_core(c, {{"op", "PING"}});
        } else if (pick == 1) {
            to_core(c, {{"op", "HISTORY"}, {"room", room}, {"limit", rng_.between(1, 30)}});
        } else if (pick == 2) {
            to_core(c, {{"op", "LIST_ROOMS"}, {"limit", 2}});
        } else if (pick <= 5) {
            other_op(c);
        } else {
            --c.to_send;
            // Texts are unique, so history can be matched against what clients were told.
            std::string text = c.name + " says " + std::to_string(c.sent_count++);
            if (rng_.chance(0.2)) text += " \"<b>\" \\ \xC3\xA9\n\t";
            to_core(c, {{"op", "SEND_MESSAGE"}, {"room", room}, {"text", text}});
        }
    }
    if (c.to_send > 0) {
        at_epoch(clock_.now_ms() + rng_.between(1, 60),
                 [this, i = c.index] { send_some(clients_[i]); });
    } else {
        c.sending = false;
        maybe_finish(c);
    }
}

bool World::sees(const Client& c, const Acked& a) const {
    if (a.room.empty()) return a.client == c.index || a.peer == c.index;
    return c.asked_to_join.contains(a.room);
}

// The rest of the protocol: direct messages, edits, deletions, reactions, threads, search,
// read markers, user lists, topics and invitations.
void World::other_op(Client& c) {
    std::vector<int64_t> mine, visible;
    for (const auto& [id, a] : acked_) {
        const Expected& e = expected_[id];
        if (e.deleted != Maybe::no || c.changing.contains(id)) continue;
        if (a.client == c.index && e.texts.size() == 1) mine.push_back(id);
        if (sees(c, a) && (a.room.empty() || c.joined.contains(a.room))) visible.push_back(id);
    }
    std::vector<std::string> rooms(c.joined.begin(), c.joined.end());
    const std::string& room = rooms[rng_.below(rooms.size())];
    const Client& other = clients_[rng_.below(clients_.size())];
    if (!other.registered) return to_core(c, {{"op", "PING"}});
    switch (rng_.below(13)) {
        case 0:
        case 1: {
            std::string text = c.name + " whispers " + std::to_string(c.sent_count++);
            return to_core(c, {{"op", "DIRECT_MESSAGE"}, {"to", other.name}, {"text", text}});
        }
        case 2:
            if (mine.empty()) break;
            return to_core(c, {{"op", "EDIT_MESSAGE"},
                               {"message_id", mine[rng_.below(mine.size())]},
                               {"text", c.name + " edits " + std::to_string(c.sent_count++)}});
        case 3:
            if (mine.empty() || !rng_.chance(0.3)) break;
            return to_core(
                c, {{"op", "DELETE_MESSAGE"}, {"message_id", mine[rng_.below(mine.size())]}});
        case 4: {
            if (visible.empty()) break;
            int64_t id = visible[rng_.below(visible.size())];
            Maybe state = expected_[id].reacted[{c.index, "ok"}];
            if (state == Maybe::maybe) break;
            return to_core(c, {{"op", state == Maybe::yes ? "UNREACT" : "REACT"},
                               {"message_id", id},
                               {"emoji", "ok"}});
        }
        case 5:
            if (visible.empty()) break;
            return to_core(
                c, {{"op", "GET_THREAD"}, {"message_id", visible[rng_.below(visible.size())]}});
        case 6:
            return to_core(c, {{"op", "SEARCH"}, {"query", c.name + " says"}, {"limit", 5}});
        case 7:
            if (!c.owned.contains(room))
                return to_core(c, {{"op", "REQUEST_USER_LIST"}, {"room", room}});
            return to_core(c, {{"op", "SET_TOPIC"},
                               {"room", room},
                               {"topic", "t" + std::to_string(clock_.now_ms())}});
        case 8:
            if (acked_.empty()) break;
            return to_core(
                c, {{"op", "MARK_READ"}, {"room", room}, {"message_id", acked_.rbegin()->first}});
        case 9:
            if (other.index == c.index) break;
            return to_core(c, {{"op", "INVITE_USER"}, {"room", room}, {"user", other.name}});
        case 10:
            return to_core(c, {{"op", "LIST_INVITATIONS"}});
        case 11: {
            // Leave a room joined by invitation (the rooms the workload checks stay joined).
            for (const auto& r : c.asked_to_join)
                if (std::find(c.want_rooms.begin(), c.want_rooms.end(), r) == c.want_rooms.end())
                    return to_core(c, {{"op", "LEAVE_ROOM"}, {"room", r}});
            break;
        }
        case 12:
            // Log out and straight back in (pipelined: later requests wait for the hash).
            if (!rng_.chance(0.2)) break;
            // Logged out, the user gets no events until logged in again; its token is gone.
            c.join_acked_ms.clear();
            c.token.clear();
            c.relogging = true;
            to_core(c, {{"op", "LOGOUT"}});
            return to_core(c, {{"op", "LOGIN"}, {"username", c.name}, {"password", c.password}});
    }
    to_core(c, {{"op", "PING"}});
}

void World::on_change_reply(Client& c, const json& msg, const Pending& p) {
    std::string op = p.request["op"];
    int64_t id = p.request["message_id"];
    c.changing.erase(id);
    Expected& e = expected_[id];
    if (!msg.value("ok", false)) {
        std::string code = msg["error"]["code"];
        // The author may have deleted the message meanwhile; the refusal is held behind that
        // deletion's commit, so the deletion is durable.
        bool deleted_meanwhile = code == "CONFLICT" && op != "DELETE_MESSAGE" &&
                                 msg["error"]["message"] == "the message was deleted";
        if (deleted_meanwhile)
            e.deleted = Maybe::yes;
        else if (code != "UNAVAILABLE")
            violation(c.name + " " + op + " refused: " + msg.dump());
        if (op == "EDIT_MESSAGE") refused_texts_.insert(p.request["text"].get<std::string>());
        return maybe_finish(c);
    }
    if (op == "EDIT_MESSAGE") {
        e.texts = {p.request["text"].get<std::string>()};
        if (msg["message"]["text"] != p.request["text"]) violation("edit reply shows old text");
    } else if (op == "DELETE_MESSAGE") {
        e.deleted = Maybe::yes;
    } else {
        e.reacted[{c.index, p.request["emoji"]}] = op == "REACT" ? Maybe::yes : Maybe::no;
    }
    maybe_finish(c);
}

// The durable truth: every acknowledged message, as the store holds it, matches what its
// clients were told (allowing either outcome for changes a crash hid).
void World::check_messages_in_store() {
    for (const auto& [id, a] : acked_) {
        std::optional<MessageRow> row = store_->message(id);
        if (!row) {
            violation("acknowledged message " + std::to_string(id) + " is not stored");
            continue;
        }
        const Expected& e = expected_[id];
        if ((e.deleted == Maybe::yes && !row->deleted) || (e.deleted == Maybe::no && row->deleted))
            violation("message " + std::to_string(id) + " deletion state is wrong");
        if (row->deleted) continue;
        if (!e.texts.contains(row->text))
            violation("message " + std::to_string(id) + " has text '" + row->text +
                      "' that no acknowledged or in-doubt change gave it");
        for (const auto& [key, state] : e.reacted) {
            auto it = row->reactions.find(key.second);
            bool present = false;
            if (it != row->reactions.end())
                for (UserId u : it->second)
                    present =
                        present || (core_->state().users().contains(u) &&
                                    core_->state().users().at(u).name == clients_[key.first].name);
            if ((state == Maybe::yes && !present) || (state == Maybe::no && present))
                violation("message " + std::to_string(id) + " reaction of " +
                          clients_[key.first].name + " is wrong");
        }
    }
}

void World::maybe_finish(Client& c) {
    if (c.done || c.to_send > 0 || c.sending || !c.pending.empty() || !c.connected ||
        c.joined.size() != c.want_rooms.size())
        return;
    c.done = true;
    if (++clients_done_ == static_cast<int>(clients_.size())) start_paging();
}

// Once every client is done, each reads back every room it is in, page by page.
void World::start_paging() {
    paging_ = true;
    for (auto& c : clients_)
        if (c.connected && c.joined.size() == c.want_rooms.size()) page_rooms(c);
}

void World::page_rooms(Client& c) {
    for (const auto& room : c.joined) {
        c.paged[room].clear();
        to_core(c, {{"op", "HISTORY"}, {"room", room}, {"limit", 7}, {"paging", true}});
    }
}

void World::check_end() {
    if (clients_done_ != static_cast<int>(clients_.size()))
        violation("only " + std::to_string(clients_done_) + " clients finished");
    std::map<std::string, std::vector<int64_t>> acked_by_room;
    for (const auto& [id, a] : acked_) acked_by_room[a.room].push_back(id);
    for (const auto& c : clients_) {
        for (const auto& room : c.want_rooms) {
            auto it = c.paged.find(room);
            if (it == c.paged.end()) {
                violation(c.name + " never read back " + room);
                continue;
            }
            std::set<int64_t> ids;
            std::map<std::string, int> texts;
            for (const auto& m : it->second) {
                int64_t id = m["id"].get<int64_t>();
                if (!ids.insert(id).second)
                    violation(room + " history repeats id " + std::to_string(id));
                std::string text = m["text"].get<std::string>();
                if (m["deleted"].get<bool>()) continue;
                if (refused_texts_.contains(text))
                    violation(room + " holds a message whose request failed: " + text);
                if (++texts[text] > 1) violation(room + " holds a text twice: " + text);
                auto a = acked_.find(id);
                if (a != acked_.end() && !expected_[id].texts.contains(text))
                    violation(room + " message " + std::to_string(id) + " is not what was acked");
                if (a == acked_.end() && !in_doubt_texts_.contains(text))
                    violation(room + " holds an unacknowledged message not in doubt: " + text);
            }
            for (int64_t id : acked_by_room[room])
                if (!ids.contains(id))
                    violation(c.name + ": acknowledged message " + std::to_string(id) +
                              " missing from " + room);
        }
        for (const auto& [room, seen] : c.seen)
            for (size_t i = 1; i < seen.size(); ++i)
                if (seen[i - 1] >= seen[i]) violation(c.name + " saw " + room + " out of order");
    }
    // Every message acknowledged after the last crash reached every other member that had
    // joined (on its current connection) before the message was sent, exactly once.
    for (const auto& [id, a] : acked_) {
        if (a.epoch != epoch_) continue;
        for (const auto& c : clients_) {
            if (c.index == a.client) continue;
            auto j = c.join_acked_ms.find(a.room);
            if (j == c.join_acked_ms.end() || j->second >= a.issued_ms) continue;
            const auto s = c.seen.find(a.room);
            auto n = s == c.seen.end() ? 0 : std::count(s->second.begin(), s->second.end(), id);
            if (n != 1)
                violation(c.name + " received message " + std::to_string(id) + " " +
                          std::to_string(n) + " times");
        }
    }
}

SimReport World::run() {
    for (int i = 0; i < opt_.clients; ++i) {
        Client c;
        c.index = i;
        c.name = "user" + std::to_string(i);
        c.password = "password-" + std::to_string(i);
        c.to_send = opt_.messages_per_client;
        int nrooms = static_cast<int>(rng_.between(1, std::min(2, opt_.rooms)));
        std::set<std::string> rooms;
        while (static_cast<int>(rooms.size()) < nrooms)
            rooms.insert("room" + std::to_string(rng_.below(static_cast<uint64_t>(opt_.rooms))));
        c.want_rooms.assign(rooms.begin(), rooms.end());
        clients_.push_back(std::move(c));
    }
    for (auto& c : clients_)
        at(rng_.between(0, 100), [this, i = c.index] { connect(clients_[i]); });
    clock_.run();
    check_end();
    check_messages_in_store();
    SimReport& rep = report_;
    rep.seed = opt_.seed;
    rep.trace_hash = trace_.hex();
    rep.inputs = inputs_;
    rep.acked_messages = acked_.size();
    rep.end_ms = clock_.now_ms();
    rep.breaker_opened += core_->breaker_opened_count();
    rep.breaker_closed_at_end = core_->breaker_state() == Breaker::State::closed;
    rep.violations = violations_;
    return rep;
}

}  // namespace

SimReport run_simulation(const SimOptions& options) {
    World world(options);
    return world.run();
}

}  // namespace warren::sim
