#include "sim/simulation.h"

#include <sodium.h>

#include <functional>
#include <map>
#include <memory>
#include <queue>
#include <set>

#include <nlohmann/json.hpp>

#include "core/server.h"
#include "sim/rng.h"
#include "store/store.h"

namespace warren::sim {

namespace {

using json = nlohmann::json;

constexpr int64_t wall_base_ms = 1764000000000;  // a fixed epoch so runs replay exactly

struct Pending {
    std::string op;
    std::string room;
    int64_t issued_ms = 0;
};

struct Client {
    ConnId conn = 0;
    std::string name;
    std::string password;
    LineFramer framer{1 << 20};
    int64_t next_id = 1;
    std::map<int64_t, Pending> pending;
    std::deque<int64_t> reply_order;  // ids in the order sent: replies must follow it
    std::vector<std::string> want_rooms;
    std::set<std::string> joined;
    std::map<std::string, int64_t> join_acked_ms;
    std::map<std::string, std::vector<int64_t>> seen;   // room -> MESSAGE event ids
    std::map<std::string, std::vector<int64_t>> paged;  // room -> ids read back via HISTORY
    int to_send = 0;
    bool sending = false;
    bool done = false;
    bool closed = false;
};

struct Acked {
    std::string room;
    ConnId author = 0;
    int64_t issued_ms = 0;
    std::string text;
};

class World {
  public:
    explicit World(const SimOptions& o) : opt_(o), rng_(o.seed), entropy_(o.seed ^ 0xE17) {
        crypto_generichash_init(&trace_, nullptr, 0, 32);
        auto st = Store::open(":memory:", Synchronous::normal);
        WARREN_CHECK(st.is_ok());
        store_ = std::move(st.value());
        Config cfg;
        cfg.room_cache_messages_max = o.room_cache_messages_max;
        auto snap = store_->load(cfg.room_cache_messages_max, wall_base_ms);
        WARREN_CHECK(snap.is_ok());
        core_ = std::make_unique<Server>(cfg, entropy_, snap.value());
    }

    SimReport run();

  private:
    struct Event {
        int64_t t;
        uint64_t seq;
        std::function<void()> fn;
        bool operator>(const Event& o) const { return t != o.t ? t > o.t : seq > o.seq; }
    };

    Time now() const { return Time{now_ms_, wall_base_ms + now_ms_}; }
    void at(int64_t t, std::function<void()> fn) {
        queue_.push(Event{std::max(t, now_ms_), seq_++, std::move(fn)});
    }
    void trace(std::string_view tag, uint64_t a, std::string_view bytes = {}) {
        std::string head =
            std::string(tag) + ":" + std::to_string(a) + "@" + std::to_string(now_ms_) + ":";
        crypto_generichash_update(&trace_, reinterpret_cast<const uint8_t*>(head.data()),
                                  head.size());
        crypto_generichash_update(&trace_, reinterpret_cast<const uint8_t*>(bytes.data()),
                                  bytes.size());
        ++inputs_;
    }
    void violation(std::string what) {
        if (violations_.size() < 50) violations_.push_back(std::move(what));
    }

    // Byte streams: split into 1..3 chunks, each delayed, never reordered within a direction.
    void transmit(std::map<ConnId, int64_t>& last, ConnId conn, const std::string& bytes,
                  std::function<void(std::string)> deliver) {
        size_t pos = 0;
        int pieces = static_cast<int>(rng_.between(1, 3));
        for (int i = 0; i < pieces && pos < bytes.size(); ++i) {
            size_t n = i + 1 == pieces ? bytes.size() - pos
                                       : static_cast<size_t>(rng_.between(
                                             1, static_cast<int64_t>(bytes.size() - pos)));
            int64_t t = std::max(last[conn], now_ms_ + rng_.between(0, opt_.net_delay_max_ms));
            last[conn] = t;
            at(t, [deliver, chunk = bytes.substr(pos, n)] { deliver(chunk); });
            pos += n;
        }
    }

    void drain();
    void to_core(Client& c, const json& request);
    void client_bytes(Client& c, std::string chunk);
    void client_line(Client& c, const json& msg);
    void client_reply(Client& c, const json& msg, const Pending& p);
    void client_event(Client& c, const json& msg);
    void after_joins(Client& c);
    void send_some(Client& c);
    void maybe_finish(Client& c);
    void start_paging();
    void check_end();

    SimOptions opt_;
    Rng rng_;
    SeededEntropy entropy_;
    std::unique_ptr<Store> store_;
    std::unique_ptr<Server> core_;
    crypto_generichash_state trace_;
    std::priority_queue<Event, std::vector<Event>, std::greater<>> queue_;
    int64_t now_ms_ = 0;
    uint64_t seq_ = 0;
    uint64_t inputs_ = 0;
    int64_t store_free_ms_ = 0;
    std::map<ConnId, int64_t> c2s_last_, s2c_last_;
    std::map<ConnId, Client> clients_;
    std::map<int64_t, Acked> acked_;
    std::vector<std::string> violations_;
    uint64_t events_ = 0;
    uint64_t batches_ = 0;
    int clients_done_ = 0;
    bool paging_ = false;
};

void World::drain() {
    while (auto out = core_->poll()) {
        if (auto* s = std::get_if<Send>(&*out)) {
            trace("send", s->conn, *s->bytes);
            ConnId conn = s->conn;
            transmit(s2c_last_, conn, *s->bytes, [this, conn](std::string chunk) {
                size_t n = chunk.size();
                client_bytes(clients_.at(conn), std::move(chunk));
                trace("sent", conn);
                core_->sent(conn, n, now());
                drain();
            });
        } else if (auto* c = std::get_if<Close>(&*out)) {
            trace("close", c->conn, c->reason);
            ConnId conn = c->conn;
            at(s2c_last_[conn] + 1, [this, conn] { clients_.at(conn).closed = true; });
        } else if (auto* cm = std::get_if<Commit>(&*out)) {
            trace("commit", cm->batch, std::to_string(cm->mutations->size()));
            ++batches_;
            store_free_ms_ =
                std::max(store_free_ms_, now_ms_) + rng_.between(1, opt_.store_latency_max_ms);
            at(store_free_ms_, [this, batch = cm->batch, muts = cm->mutations] {
                Status st = store_->apply(*muts);
                trace("committed", batch, st.message());
                core_->committed(batch, st, now());
                drain();
            });
        } else if (auto* q = std::get_if<Query>(&*out)) {
            trace("query", q->query);
            store_free_ms_ =
                std::max(store_free_ms_, now_ms_) + rng_.between(1, opt_.store_latency_max_ms);
            at(store_free_ms_, [this, id = q->query, hq = q->history] {
                QueryRows rows = store_->history(hq);
                trace("answered", id, std::to_string(rows.rows.size()));
                core_->answered(id, std::move(rows), now());
                drain();
            });
        } else if (auto* h = std::get_if<Hash>(&*out)) {
            trace("hash", h->job);
            // A stand-in for argon2id: deterministic and cheap, with simulated latency.
            uint8_t d[16];
            crypto_generichash(d, sizeof d, reinterpret_cast<const uint8_t*>(h->password.data()),
                               h->password.size(), nullptr, 0);
            std::string phc = "$sim$" + std::string(reinterpret_cast<char*>(d), sizeof d);
            HashResult r;
            if (h->mode == HashMode::create) {
                r.ok = true;
                r.phc = phc;
            } else {
                r.ok = !h->phc.empty() && h->phc == phc;
            }
            at(now_ms_ + rng_.between(5, opt_.hash_latency_max_ms), [this, job = h->job, r] {
                trace("hashed", job, r.ok ? "1" : "0");
                core_->hashed(job, r, now());
                drain();
            });
        }
    }
}

void World::to_core(Client& c, const json& request) {
    std::string line = request.dump() + "\n";
    int64_t id = request.at("id").get<int64_t>();
    c.pending[id] =
        Pending{request.at("op").get<std::string>(), request.value("room", std::string()), now_ms_};
    c.reply_order.push_back(id);
    ConnId conn = c.conn;
    transmit(c2s_last_, conn, line, [this, conn](std::string chunk) {
        trace("receive", conn, chunk);
        core_->receive(conn, chunk, now());
        drain();
    });
}

void World::client_bytes(Client& c, std::string chunk) {
    c.framer.feed(chunk);
    std::string_view line;
    while (c.framer.next(line) == LineFramer::Status::line) {
        json msg = json::parse(line, nullptr, false);
        if (msg.is_discarded() || !msg.is_object()) {
            violation(c.name + " got a line that is not a JSON object");
            continue;
        }
        client_line(c, msg);
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
    Pending p = it->second;
    c.pending.erase(it);
    client_reply(c, msg, p);
}

void World::client_event(Client& c, const json& msg) {
    std::string ev = msg["ev"].get<std::string>();
    if (ev == "HELLO") {
        return to_core(c, {{"id", c.next_id++},
                           {"op", "REGISTER"},
                           {"username", c.name},
                           {"password", c.password}});
    }
    if (ev == "MESSAGE") {
        ++events_;
        const json& m = msg["message"];
        std::string room = m["room"].get<std::string>();
        if (!c.join_acked_ms.contains(room))
            violation(c.name + " received a MESSAGE of " + room + " without being a member");
        if (m["author"].get<std::string>() == c.name)
            violation(c.name + " received its own message as an event");
        c.seen[room].push_back(m["id"].get<int64_t>());
    }
}

void World::client_reply(Client& c, const json& msg, const Pending& p) {
    bool ok = msg.value("ok", false);
    std::string code = ok ? "" : msg["error"]["code"].get<std::string>();
    if (p.op == "REGISTER") {
        if (!ok) return violation(c.name + " could not register: " + msg.dump());
        for (const auto& room : c.want_rooms)
            to_core(c, {{"id", c.next_id++}, {"op", "CREATE_ROOM"}, {"room", room}});
    } else if (p.op == "CREATE_ROOM" || p.op == "JOIN_ROOM") {
        if (ok) {
            c.joined.insert(p.room);
            c.join_acked_ms[p.room] = now_ms_;
            if (c.joined.size() == c.want_rooms.size()) after_joins(c);
        } else if (p.op == "CREATE_ROOM" && code == "CONFLICT") {
            to_core(c, {{"id", c.next_id++}, {"op", "JOIN_ROOM"}, {"room", p.room}});
        } else {
            violation(c.name + " could not join " + p.room + ": " + msg.dump());
        }
    } else if (p.op == "SEND_MESSAGE") {
        if (!ok) return violation(c.name + " message refused: " + msg.dump());
        const json& m = msg["message"];
        int64_t id = m["id"].get<int64_t>();
        // Durability: the acknowledged message must already be in storage.
        bool stored = false;
        for (RoomId room = 1; room <= static_cast<RoomId>(opt_.rooms) && !stored; ++room) {
            QueryRows r = store_->history(HistoryQuery{room, std::nullopt, id - 1, 1});
            stored = r.ok && !r.rows.empty() && r.rows.front().id == id;
        }
        if (!stored) violation("message " + std::to_string(id) + " acknowledged before durable");
        acked_[id] = Acked{p.room, c.conn, p.issued_ms, m["text"].get<std::string>()};
        maybe_finish(c);
    } else if (p.op == "HISTORY") {
        if (!ok) return violation(c.name + " HISTORY refused: " + msg.dump());
        if (!paging_) return maybe_finish(c);
        auto& ids = c.paged[p.room];
        std::vector<int64_t> page;
        for (const auto& m : msg["messages"]) page.push_back(m["id"].get<int64_t>());
        for (size_t i = 1; i < page.size(); ++i)
            if (page[i - 1] >= page[i]) violation("HISTORY page not ascending");
        ids.insert(ids.begin(), page.begin(), page.end());
        if (msg["has_more"].get<bool>() && !page.empty()) {
            to_core(c, {{"id", c.next_id++},
                        {"op", "HISTORY"},
                        {"room", p.room},
                        {"before", page.front()},
                        {"limit", 7}});
        }
    } else if (!ok) {
        violation(c.name + " " + p.op + " refused: " + msg.dump());
    } else {
        maybe_finish(c);
    }
}

void World::after_joins(Client& c) {
    c.sending = true;
    at(now_ms_ + rng_.between(1, 50), [this, &c] { send_some(c); });
}

void World::send_some(Client& c) {
    // A burst of 1..3 pipelined requests, mostly messages, sometimes reads.
    int burst = static_cast<int>(rng_.between(1, 3));
    for (int i = 0; i < burst && c.to_send > 0; ++i) {
        std::vector<std::string> rooms(c.joined.begin(), c.joined.end());
        const std::string& room = rooms[rng_.below(rooms.size())];
        uint64_t pick = rng_.below(10);
        if (pick == 0) {
            to_core(c, {{"id", c.next_id++}, {"op", "PING"}});
        } else if (pick == 1) {
            to_core(c, {{"id", c.next_id++},
                        {"op", "HISTORY"},
                        {"room", room},
                        {"limit", rng_.between(1, 30)}});
        } else if (pick == 2) {
            to_core(c, {{"id", c.next_id++}, {"op", "LIST_ROOMS"}, {"limit", 2}});
        } else {
            --c.to_send;
            to_core(c, {{"id", c.next_id++},
                        {"op", "SEND_MESSAGE"},
                        {"room", room},
                        {"text", c.name + " says " + std::to_string(c.to_send) +
                                     (rng_.chance(0.2) ? " \"<b>\" \\ \xC3\xA9\n\t" : "")}});
        }
    }
    if (c.to_send > 0)
        at(now_ms_ + rng_.between(1, 60), [this, &c] { send_some(c); });
    else
        maybe_finish(c);
}

void World::maybe_finish(Client& c) {
    if (c.done || c.to_send > 0 || !c.pending.empty() || !c.sending) return;
    c.done = true;
    if (++clients_done_ == static_cast<int>(clients_.size())) start_paging();
}

// Once every client is done, each reads back every room it is in, page by page.
void World::start_paging() {
    paging_ = true;
    for (auto& [id, c] : clients_)
        for (const auto& room : c.joined)
            to_core(c, {{"id", c.next_id++}, {"op", "HISTORY"}, {"room", room}, {"limit", 7}});
}

void World::check_end() {
    if (clients_done_ != static_cast<int>(clients_.size()))
        violation("only " + std::to_string(clients_done_) + " clients finished");
    std::map<std::string, std::vector<int64_t>> by_room;
    for (const auto& [id, a] : acked_) by_room[a.room].push_back(id);
    for (const auto& [conn, c] : clients_) {
        for (const auto& room : c.joined) {
            // Every acknowledged message is in history, exactly once, in order.
            if (c.paged.at(room) != by_room[room])
                violation(c.name + " paged history of " + room + " differs from acknowledged");
            // Per-room order is the commit order for every member.
            const auto& seen = c.seen.contains(room) ? c.seen.at(room) : std::vector<int64_t>{};
            for (size_t i = 1; i < seen.size(); ++i)
                if (seen[i - 1] >= seen[i]) violation(c.name + " saw " + room + " out of order");
        }
    }
    // Every acknowledged message reached every other member that joined before it was sent.
    for (const auto& [id, a] : acked_) {
        for (const auto& [conn, c] : clients_) {
            if (conn == a.author || !c.join_acked_ms.contains(a.room)) continue;
            if (c.join_acked_ms.at(a.room) >= a.issued_ms) continue;
            const auto& seen = c.seen.contains(a.room) ? c.seen.at(a.room) : std::vector<int64_t>{};
            auto n = std::count(seen.begin(), seen.end(), id);
            if (n != 1)
                violation(c.name + " received message " + std::to_string(id) + " " +
                          std::to_string(n) + " times");
        }
    }
}

SimReport World::run() {
    for (int i = 0; i < opt_.clients; ++i) {
        ConnId conn = static_cast<ConnId>(i + 1);
        Client& c = clients_[conn];
        c.conn = conn;
        c.name = "user" + std::to_string(i);
        c.password = "password-" + std::to_string(i);
        c.to_send = opt_.messages_per_client;
        int nrooms = static_cast<int>(rng_.between(1, std::min(2, opt_.rooms)));
        std::set<std::string> rooms;
        while (static_cast<int>(rooms.size()) < nrooms)
            rooms.insert("room" + std::to_string(rng_.below(static_cast<uint64_t>(opt_.rooms))));
        c.want_rooms.assign(rooms.begin(), rooms.end());
        at(rng_.between(0, 100), [this, conn] {
            trace("connect", conn);
            core_->connect(conn, "127.0.0." + std::to_string(conn % 250 + 1), now());
            drain();
        });
    }
    while (!queue_.empty()) {
        Event e = queue_.top();
        queue_.pop();
        now_ms_ = e.t;
        e.fn();
    }
    check_end();
    SimReport rep;
    rep.seed = opt_.seed;
    uint8_t digest[32];
    crypto_generichash_final(&trace_, digest, sizeof digest);
    static constexpr char hex[] = "0123456789abcdef";
    for (uint8_t b : digest) {
        rep.trace_hash.push_back(hex[b >> 4]);
        rep.trace_hash.push_back(hex[b & 0xF]);
    }
    rep.inputs = inputs_;
    rep.acked_messages = acked_.size();
    rep.events_delivered = events_;
    rep.batches = batches_;
    rep.end_ms = now_ms_;
    rep.violations = violations_;
    return rep;
}

}  // namespace

SimReport run_simulation(const SimOptions& options) {
    World world(options);
    return world.run();
}

}  // namespace warren::sim
