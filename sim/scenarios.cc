#include "sim/scenarios.h"

#include <sodium.h>

#include <algorithm>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <queue>
#include <set>
#include <stdexcept>

#include "core/server.h"
#include "sim/events.h"
#include "sim/parsed_lines.h"
#include "sim/rng.h"
#include "store/store.h"

namespace warren::sim {

namespace {

using json = nlohmann::json;
constexpr int64_t wall_base_ms = 1764000000000;

const std::pair<Scenario, std::string_view> names[] = {
    {Scenario::none, "none"},
    {Scenario::brute_force, "brute_force"},
    {Scenario::credential_stuffing, "credential_stuffing"},
    {Scenario::connection_flood, "connection_flood"},
    {Scenario::message_flood, "message_flood"},
    {Scenario::slowloris, "slowloris"},
    {Scenario::bad_frames, "bad_frames"},
    {Scenario::invitation_spam, "invitation_spam"},
    {Scenario::dm_spam, "dm_spam"},
    {Scenario::storage_outage, "storage_outage"},
    {Scenario::slow_storage, "slow_storage"},
    {Scenario::pipelined_flood, "pipelined_flood"},
    {Scenario::operator_suspend, "operator_suspend"},
    {Scenario::shutdown_pipelined, "shutdown_pipelined"},
    {Scenario::irc_flood, "irc_flood"},
};

bool closes_a_pipeline(Scenario s) {
    return s == Scenario::pipelined_flood || s == Scenario::operator_suspend ||
           s == Scenario::shutdown_pipelined || s == Scenario::irc_flood;
}

// The close scenarios' messages: their text marks them in the store.
constexpr std::string_view pipelined_text = "PIPE ";

// A simulated TCP peer as the world sees it: bytes in, lines out, a close.
struct Peer {
    std::string ip;
    bool open = true;
    LineFramer framer{1 << 22};
    std::function<void(const json&)> on_line;
    std::function<void(std::string_view)> on_text;  // an IRC peer: its lines, as text
    std::function<void(const std::string& reason)> on_close;
    std::string close_reason;
    int64_t arrive_ms = 0;  // when the last bytes sent to it arrive: one stream, in order
    int64_t depart_ms = 0;  // when the last bytes it wrote reach the server
    size_t chunk_max = 0;  // what it writes reaches the server in pieces of 1..chunk_max (0: whole)
    int64_t read_bytes_per_s = 0;  // a slow reader: it reads at this pace (0: at once)
};

struct Legit {
    int index = 0;
    std::string name, password, ip;
    ConnId conn = 0;
    int64_t next_id = 1;
    std::map<int64_t, std::pair<int64_t, std::string>> pending;  // id -> (sent ms, op)
    bool ready = false;
};

class World {
  public:
    explicit World(const ScenarioOptions& o) : opt_(o), rng_(o.seed), entropy_(o.seed ^ 0x5eed) {
        auto st = Store::open(":memory:", Synchronous::normal);
        WARREN_CHECK(st.is_ok());
        store_ = std::move(st.value());
        auto snap = store_->load(config_.room_cache_messages_max, wall_base_ms);
        WARREN_CHECK(snap.is_ok());
        core_ = std::make_unique<Server>(config_, entropy_, snap.value());
    }

    ScenarioReport run();

  private:
    Time now() const { return Time{clock_.now_us(), wall_base_ms + now_ms()}; }
    int64_t now_ms() const { return clock_.now_ms(); }
    void at(int64_t t, std::function<void()> fn) { clock_.at(t, std::move(fn)); }
    void trace(std::string_view tag, uint64_t a, std::string_view bytes = {}) {
        trace_.add(tag, a, clock_.now_us(), bytes);
    }
    int64_t net_delay() { return rng_.between(1, 5); }

    // Network and core plumbing.
    ConnId open(std::string ip, std::function<void(const json&)> on_line,
                std::function<void(const std::string&)> on_close, Wire wire = Wire::json);
    void send(ConnId id, std::string bytes);
    void hang_up(ConnId id);
    void drain();
    // Bytes from the server reach the peer in order, each write 1-5 ms after it was made.
    void to_peer(ConnId id, std::shared_ptr<const std::string> bytes);
    void on_commit(const Commit& c);
    void observe_alerts();

    // Participants.
    void start_host();
    void start_legit(Legit& c);
    void legit_request(Legit& c, json req);
    void legit_line(Legit& c, const json& msg);
    void legit_loop(Legit& c);
    void start_attack();
    void attack_brute_force();
    void attack_stuffing();
    void attack_connection_flood();
    void attack_message_flood();
    void attack_slowloris();
    void attack_bad_frames();
    void attack_spam(bool invitations);
    // The close scenarios: pipelines `n` messages, then `cue` (the operator or the shutdown).
    void pipeline(int n, std::function<void()> cue);
    void pipelined_line(const json& m);
    void pipeline_irc(int n);
    void pipelined_irc_line(std::string_view line);
    void check_pipeline();
    void attacker_refused(std::string_view code);
    // Logs in a fresh account from `ip` and calls `then(conn)`.
    void attacker_account(const std::string& ip, const std::string& name,
                          std::function<void(ConnId)> then);

    ScenarioOptions opt_;
    Config config_;
    Rng rng_;
    ParsedLines parsed_{ParsedLines::Keep::top_level_and_error};
    SeededEntropy entropy_;
    TraceHash trace_;
    std::unique_ptr<Store> store_;
    std::unique_ptr<Server> core_;
    EventQueue clock_;
    int64_t tick_at_ = INT64_MAX;
    std::map<ConnId, Peer> peers_;
    // A step that schedules itself again (an attacker's loop) lives here, so the closures
    // that call it hold a plain pointer instead of a shared_ptr to themselves (a cycle that
    // was never freed).
    std::function<void()>* loop() {
        return loops_.emplace_back(std::make_unique<std::function<void()>>()).get();
    }
    std::vector<std::unique_ptr<std::function<void()>>> loops_;
    ConnId next_conn_ = 1;
    std::vector<Legit> legit_;
    std::vector<int64_t> latencies_;
    ScenarioReport rep_;
    std::map<std::string, uint64_t> name_failures_;
    std::set<std::pair<std::string, std::string>> active_alerts_;
    int64_t fault_from_ = -1, fault_to_ = -1;
    bool slow_ = false;
    bool attacker_done_ = false;
    int64_t next_reply_ = 10;  // the pipelining client's next reply id
};

ConnId World::open(std::string ip, std::function<void(const json&)> on_line,
                   std::function<void(const std::string&)> on_close, Wire wire) {
    ConnId id = next_conn_++;
    Peer& p = peers_[id];
    p.ip = ip;
    p.on_line = std::move(on_line);
    p.on_close = std::move(on_close);
    trace("connect", id, ip);
    core_->connect(id, ip, now(), wire);
    drain();
    return id;
}

// One stream: what a peer writes reaches the server in order, each write (or piece of it)
// 1-5 ms after it was written.
void World::send(ConnId id, std::string bytes) {
    auto found = peers_.find(id);
    if (found == peers_.end()) return;
    Peer& peer = found->second;
    for (size_t pos = 0; pos < bytes.size();) {
        size_t n = bytes.size() - pos;
        if (peer.chunk_max > 0)
            n = std::min(
                n, static_cast<size_t>(rng_.between(1, static_cast<int64_t>(peer.chunk_max))));
        peer.depart_ms = std::max(peer.depart_ms, now_ms() + net_delay());
        at(peer.depart_ms, [this, id, piece = bytes.substr(pos, n)] {
            auto it = peers_.find(id);
            if (it == peers_.end() || !it->second.open) return;
            trace("receive", id, piece);
            core_->receive(id, piece, now());
            drain();
        });
        pos += n;
    }
}

void World::hang_up(ConnId id) {
    auto it = peers_.find(id);
    if (it == peers_.end() || !it->second.open) return;
    it->second.open = false;
    core_->disconnect(id, now());
    drain();
}

void World::on_commit(const Commit& c) {
    bool faulty = now_ms() >= fault_from_ && now_ms() < fault_to_;
    int64_t latency = slow_ && faulty ? rng_.between(700, 900) : rng_.between(1, 8);
    at(now_ms() + latency, [this, c, faulty] {
        Status st =
            faulty && !slow_ ? Status::transient("simulated outage") : store_->apply(*c.mutations);
        core_->committed(c.batch, st, now());
        drain();
    });
}

void World::drain() {
    while (auto out = core_->poll()) {
        if (auto* s = std::get_if<Send>(&*out)) {
            trace("send", s->conn, *s->bytes);
            auto it = peers_.find(s->conn);
            if (it == peers_.end() || !it->second.open) continue;
            if (it->second.read_bytes_per_s == 0)
                core_->sent(s->conn, s->bytes->size(), now());  // a prompt reader
            to_peer(s->conn, s->bytes);
        } else if (auto* c = std::get_if<Close>(&*out)) {
            auto it = peers_.find(c->conn);
            if (it == peers_.end()) continue;
            it->second.open = false;
            if (c->last) to_peer(c->conn, c->last);
            // After the bytes already on their way.
            at(std::max(it->second.arrive_ms, now_ms()) + 1, [this, id = c->conn] {
                Peer& p = peers_[id];
                if (p.on_close) p.on_close(p.close_reason);
            });
        } else if (auto* cm = std::get_if<Commit>(&*out)) {
            on_commit(*cm);
        } else if (auto* q = std::get_if<Query>(&*out)) {
            at(now_ms() + rng_.between(1, 8), [this, id = q->query, what = q->what] {
                core_->answered(id, store_->run(what), now());
                drain();
            });
        } else if (auto* h = std::get_if<Hash>(&*out)) {
            at(now_ms() + rng_.between(20, 40),
               [this, job = h->job, mode = h->mode, pw = h->password, phc = h->phc] {
                   HashResult r;
                   r.ok = mode == HashMode::create || (!phc.empty() && phc == "sim$" + pw);
                   if (mode == HashMode::create) r.phc = "sim$" + pw;
                   core_->hashed(job, r, now());
                   drain();
               });
        } else if (std::holds_alternative<Audit>(*out)) {
            ++rep_.audit_records;
        }
    }
    rep_.peak_connections = std::max(rep_.peak_connections, core_->connection_count());
    rep_.peak_tracked_ips = std::max(rep_.peak_tracked_ips, core_->guard().tracked_ips());
    observe_alerts();
    if (auto d = core_->next_deadline(); d && *d < tick_at_) {
        tick_at_ = std::max(*d, clock_.now_us());
        clock_.at_us(tick_at_, [this] {
            tick_at_ = INT64_MAX;
            core_->tick(now());
            drain();
        });
    }
}

void World::to_peer(ConnId id, std::shared_ptr<const std::string> bytes) {
    Peer& peer = peers_[id];
    peer.arrive_ms = std::max(peer.arrive_ms, now_ms() + net_delay());
    // A slow reader takes its time over each write, and only then has it read (sent()).
    if (peer.read_bytes_per_s > 0)
        peer.arrive_ms += static_cast<int64_t>(bytes->size()) * 1000 / peer.read_bytes_per_s;
    at(peer.arrive_ms, [this, id, bytes = std::move(bytes)] {
        auto p = peers_.find(id);
        if (p == peers_.end()) return;
        if (p->second.read_bytes_per_s > 0) {
            core_->sent(id, bytes->size(), now());
            drain();
        }
        p->second.framer.feed(*bytes);
        std::string_view line;
        while (p->second.framer.next(line) == LineFramer::Status::line) {
            if (auto text_handler = p->second.on_text) {
                text_handler(line);
                continue;
            }
            std::shared_ptr<const json> parsed = parsed_.get(line);
            if (parsed->is_discarded())
                throw std::runtime_error("the server sent a line that is not JSON: " +
                                         std::string(line));
            const json& msg = *parsed;
            if (msg.value("ev", "") == "DISCONNECT")
                p->second.close_reason = msg.value("reason", "");
            // A handler may replace itself (an attacker's next phase): run a copy, so the
            // closure it is running lives until it returns.
            if (auto handler = p->second.on_line) handler(msg);
        }
    });
}

void World::observe_alerts() {
    std::set<std::pair<std::string, std::string>> now_active;
    for (const auto& [key, a] : core_->monitor().active()) {
        now_active.insert(key);
        if (!active_alerts_.contains(key))
            rep_.alerts.push_back(
                {now_ms(), true, a.rule, a.subject, std::string(alert_level_name(a.level))});
    }
    for (const auto& key : active_alerts_)
        if (!now_active.contains(key))
            rep_.alerts.push_back({now_ms(), false, key.first, key.second, ""});
    active_alerts_ = std::move(now_active);
}

// ---- legitimate clients -------------------------------------------------------------------

// The host registers first and creates the room everyone joins.
void World::start_host() {
    Legit& h = legit_.emplace_back();
    h.index = -1;
    h.name = "host";
    h.password = "host-password";
    h.ip = "10.1.0.1";
    start_legit(h);
}

void World::start_legit(Legit& c) {
    size_t i = static_cast<size_t>(&c - legit_.data());
    c.conn = open(
        c.ip, [this, i](const json& m) { legit_line(legit_[i], m); },
        [this, i](const std::string& reason) {
            if (reason != "SHUTDOWN") {
                ++rep_.legit_disconnects;
                rep_.violations.push_back("legitimate " + legit_[i].name +
                                          " was disconnected: " + reason);
            }
        });
}

void World::legit_request(Legit& c, json req) {
    int64_t id = c.next_id++;
    req["id"] = id;
    c.pending[id] = {now_ms(), req.value("op", "")};
    send(c.conn, req.dump() + "\n");
}

void World::legit_line(Legit& c, const json& m) {
    if (m.value("ev", "") == "HELLO")
        return legit_request(c,
                             {{"op", "REGISTER"}, {"username", c.name}, {"password", c.password}});
    if (!m.contains("re") || m["re"].is_null()) return;
    auto it = c.pending.find(m["re"].get<int64_t>());
    if (it == c.pending.end()) return;
    auto [sent, op] = it->second;
    c.pending.erase(it);
    int64_t latency = now_ms() - sent;
    if (c.index >= 0) {
        ++rep_.legit_requests;
        latencies_.push_back(latency);
        if (!m.value("ok", false)) {
            ++rep_.legit_errors;
            if (rep_.legit_error_samples.size() < 5)
                rep_.legit_error_samples.push_back(op + " " + m["error"].value("code", "?"));
        }
    }
    if (op == "REGISTER" && m.value("ok", false)) {
        if (c.index < 0) return legit_request(c, {{"op", "CREATE_ROOM"}, {"room", "lobby"}});
        return legit_request(c, {{"op", "JOIN_ROOM"}, {"room", "lobby"}});
    }
    if (op == "JOIN_ROOM" && m.value("ok", false) && !c.ready) {
        c.ready = true;
        at(now_ms() + rng_.between(2000, 6000),
           [this, i = &c - legit_.data()] { legit_loop(legit_[i]); });
    }
}

void World::legit_loop(Legit& c) {
    if (!peers_[c.conn].open || now_ms() >= opt_.duration_ms - 2000) return;
    uint64_t roll = rng_.below(100);
    if (roll < 70)
        legit_request(c, {{"op", "SEND_MESSAGE"},
                          {"room", "lobby"},
                          {"text", "hello from " + c.name + " #" + std::to_string(c.next_id)}});
    else if (roll < 85)
        legit_request(c, {{"op", "HISTORY"}, {"room", "lobby"}, {"limit", 20}});
    else if (roll < 95)
        legit_request(c, {{"op", "PING"}});
    else
        legit_request(c, {{"op", "LIST_ROOMS"}});
    at(now_ms() + rng_.between(2000, 6000),
       [this, i = &c - legit_.data()] { legit_loop(legit_[i]); });
}

// ---- attackers ----------------------------------------------------------------------------

void World::attacker_refused(std::string_view code) {
    if ((code == "RATE_LIMITED" || code == "TOO_MANY_CONNECTIONS") && !rep_.throttled_at)
        rep_.throttled_at = rep_.attempts;
    if (code == "BLOCKED" && !rep_.blocked_at) {
        rep_.blocked_at = rep_.attempts;
        if (!rep_.throttled_at) rep_.throttled_at = rep_.attempts;
    }
}

void World::attack_brute_force() {
    // Guesses one legitimate account's password, one LOGIN at a time, reconnecting when
    // closed, until blocked for good or 400 attempts.
    std::string victim = legit_[1].name;
    auto conn = std::make_shared<ConnId>(0);
    auto guess = loop();
    auto connect = loop();
    *guess = [this, conn, victim] {
        if (rep_.attempts >= 400) return;
        ++rep_.attempts;
        json req = {{"id", rep_.attempts},
                    {"op", "LOGIN"},
                    {"username", victim},
                    {"password", "guess-" + std::to_string(100000 + rep_.attempts)}};
        send(*conn, req.dump() + "\n");
    };
    *connect = [this, conn, guess, connect] {
        if (rep_.attempts >= 400 || now_ms() > opt_.duration_ms - 5000) return;
        *conn = open(
            "203.0.113.66",
            [this, guess](const json& m) {
                if (m.value("ev", "") == "HELLO") return (*guess)();
                if (!m.contains("re")) return;
                if (m.value("ok", false))
                    ++rep_.attacker_successes;
                else
                    attacker_refused(m["error"].value("code", ""));
                (*guess)();
            },
            [this, connect](const std::string& reason) {
                if (reason == "BLOCKED" || reason == "TOO_MANY_CONNECTIONS") {
                    ++rep_.attempts;
                    attacker_refused(reason == "BLOCKED" ? "BLOCKED" : "RATE_LIMITED");
                }
                at(now_ms() + 1000, *connect);
            });
    };
    (*connect)();
}

void World::attack_stuffing() {
    // 200 addresses, 3 attempts each, over 10 real names and 10 that do not exist.
    std::vector<std::string> targets;
    for (int i = 0; i < 10; ++i) targets.push_back(legit_[static_cast<size_t>(i + 1)].name);
    for (int i = 0; i < 10; ++i) targets.push_back("ghost" + std::to_string(i));
    for (int k = 0; k < 200; ++k) {
        std::string ip =
            "198.51." + std::to_string(100 + k / 250) + "." + std::to_string(k % 250 + 1);
        at(now_ms() + rng_.between(0, 20000), [this, ip, targets] {
            auto left = std::make_shared<int>(3);
            auto conn = std::make_shared<ConnId>(0);
            auto next = loop();
            auto names = std::make_shared<std::map<int64_t, std::string>>();
            *next = [this, conn, left, targets, names] {
                if ((*left)-- <= 0) return hang_up(*conn);
                ++rep_.attempts;
                std::string name = targets[rng_.below(targets.size())];
                (*names)[static_cast<int64_t>(rep_.attempts)] = name;
                json req = {{"id", rep_.attempts},
                            {"op", "LOGIN"},
                            {"username", name},
                            {"password", "leaked-" + std::to_string(rng_.below(1000))}};
                send(*conn, req.dump() + "\n");
            };
            *conn = open(ip,
                         [this, next, names](const json& m) {
                             if (m.value("ev", "") == "HELLO") return (*next)();
                             if (!m.contains("re") || m["re"].is_null()) return;
                             std::string code =
                                 m.value("ok", false) ? "" : m["error"].value("code", "");
                             if (m.value("ok", false)) ++rep_.attacker_successes;
                             if (code == "INVALID_CREDENTIALS")
                                 ++name_failures_[(*names)[m["re"].get<int64_t>()]];
                             if (!code.empty()) attacker_refused(code);
                             at(now_ms() + 1000, *next);
                         },
                         {});
        });
    }
}

void World::attack_connection_flood() {
    auto step = loop();
    *step = [this, step] {
        if (rep_.attempts >= 500) return;
        ++rep_.attempts;
        // Refusals are counted at the attempt they answer, blocks when they land (a block
        // also closes the connections opened before it).
        uint64_t attempt = rep_.attempts;
        open("203.0.113.77", {}, [this, attempt](const std::string& reason) {
            if (reason == "TOO_MANY_CONNECTIONS" && !rep_.throttled_at) rep_.throttled_at = attempt;
            if (reason == "BLOCKED" && !rep_.blocked_at) rep_.blocked_at = rep_.attempts;
        });
        at(now_ms() + 10, *step);
    };
    (*step)();
}

void World::attacker_account(const std::string& ip, const std::string& name,
                             std::function<void(ConnId)> then) {
    auto conn = std::make_shared<ConnId>(0);
    auto done = std::make_shared<bool>(false);
    *conn = open(
        ip,
        [this, conn, name, then, done](const json& m) {
            if (m.value("ev", "") == "HELLO") {
                json req = {{"id", 1},
                            {"op", "REGISTER"},
                            {"username", name},
                            {"password", "attacker-pass"}};
                return send(*conn, req.dump() + "\n");
            }
            if (*done || !m.contains("re") || m["re"].is_null()) return;
            if (m["re"].get<int64_t>() == 1 && m.value("ok", false)) {
                *done = true;
                then(*conn);
            }
        },
        [this](const std::string& reason) {
            if (reason == "BLOCKED") attacker_refused("BLOCKED");
            attacker_done_ = true;
        });
}

void World::attack_message_flood() {
    attacker_account("203.0.113.88", "flooder", [this](ConnId conn) {
        json join = {{"id", 2}, {"op", "JOIN_ROOM"}, {"room", "lobby"}};
        send(conn, join.dump() + "\n");
        peers_[conn].on_line = [this](const json& m) {
            if (m.contains("re") && !m["re"].is_null() && !m.value("ok", false))
                attacker_refused(m["error"].value("code", ""));
        };
        auto step = loop();
        *step = [this, conn, step] {
            if (attacker_done_ || rep_.attempts >= 1000 || !peers_[conn].open) return;
            ++rep_.attempts;
            json req = {{"id", 10 + rep_.attempts},
                        {"op", "SEND_MESSAGE"},
                        {"room", "lobby"},
                        {"text", "BUY NOW " + std::to_string(rep_.attempts)}};
            send(conn, req.dump() + "\n");
            at(now_ms() + 10, *step);
        };
        at(now_ms() + 100, *step);
    });
}

void World::attack_slowloris() {
    for (int k = 0; k < 10; ++k) {
        auto opened = std::make_shared<int64_t>(now_ms());
        auto conn = std::make_shared<ConnId>(0);
        auto drip = loop();
        *drip = [this, conn, drip] {
            if (!peers_[*conn].open) return;
            ++rep_.attempts;
            send(*conn, rep_.attempts % 7 == 1 ? "{" : "a");  // a line that never ends
            at(now_ms() + 1000, *drip);
        };
        *conn = open("203.0.113.99", {}, [this, opened](const std::string&) {
            rep_.slowest_close_ms = std::max(rep_.slowest_close_ms, now_ms() - *opened);
        });
        at(now_ms() + 1000, *drip);
    }
}

void World::attack_bad_frames() {
    auto connect = loop();
    *connect = [this, connect] {
        if (rep_.attempts >= 200 || now_ms() > opt_.duration_ms - 5000) return;
        auto conn = std::make_shared<ConnId>(0);
        *conn = open(
            "203.0.113.111",
            [this, conn](const json& m) {
                if (m.value("ev", "") != "HELLO") return;
                // Every fourth connection sends an oversized line, the others junk.
                for (int i = 0; i < 3; ++i) {
                    ++rep_.attempts;
                    if (rep_.attempts % 4 == 0)
                        send(*conn, std::string(70 * 1024, 'x') + "\n");
                    else
                        send(*conn, "<script>alert(1)</script>\n");
                }
            },
            [this, connect](const std::string& reason) {
                if (reason == "BLOCKED") {
                    ++rep_.attempts;
                    attacker_refused("BLOCKED");
                }
                at(now_ms() + 200, *connect);
            });
    };
    (*connect)();
}

void World::attack_spam(bool invitations) {
    std::string name = invitations ? "inviter" : "dmspammer";
    attacker_account("203.0.113.122", name, [this, invitations](ConnId conn) {
        if (invitations) {
            json room = {{"id", 2},
                         {"op", "CREATE_ROOM"},
                         {"room", "free-prizes"},
                         {"visibility", "private"}};
            send(conn, room.dump() + "\n");
        }
        peers_[conn].on_line = [this](const json& m) {
            if (m.contains("re") && !m["re"].is_null() && !m.value("ok", false))
                attacker_refused(m["error"].value("code", ""));
        };
        auto step = loop();
        *step = [this, conn, step, invitations] {
            if (attacker_done_ || !peers_[conn].open) return;
            size_t target = 1 + rep_.attempts % (legit_.size() - 1);
            ++rep_.attempts;
            json req = invitations ? json{{"id", 10 + rep_.attempts},
                                          {"op", "INVITE_USER"},
                                          {"room", "free-prizes"},
                                          {"user", legit_[target].name}}
                                   : json{{"id", 10 + rep_.attempts},
                                          {"op", "DIRECT_MESSAGE"},
                                          {"to", legit_[target].name},
                                          {"text", "click my link"}};
            send(conn, req.dump() + "\n");
            at(now_ms() + 200, *step);
        };
        at(now_ms() + 100, *step);
    });
}

void World::pipeline(int n, std::function<void()> cue) {
    attacker_account("203.0.113.77", "piper", [this, n, cue](ConnId conn) {
        json join = {{"id", 2}, {"op", "JOIN_ROOM"}, {"room", "lobby"}};
        send(conn, join.dump() + "\n");
        peers_[conn].on_line = [this, conn, n, cue](const json& m) {
            if (!m.contains("re") || m["re"] != 2) return;
            Peer& p = peers_[conn];
            p.chunk_max = 512;
            p.read_bytes_per_s = 8 * 1024;
            p.on_line = [this](const json& line) { pipelined_line(line); };
            std::string bytes;
            for (int i = 0; i < n; ++i)
                bytes += json{{"id", 10 + i},
                              {"op", "SEND_MESSAGE"},
                              {"room", "lobby"},
                              {"text", std::string(pipelined_text) + std::to_string(i)}}
                             .dump() +
                         "\n";
            rep_.attempts = static_cast<uint64_t>(n);
            send(conn, std::move(bytes));
            if (cue) cue();
        };
    });
}

// Replies in request order until the DISCONNECT, and nothing after it.
void World::pipelined_line(const json& m) {
    if (!rep_.close_reason.empty()) {
        ++rep_.lines_after_close;
        return;
    }
    if (m.value("ev", "") == "DISCONNECT") {
        rep_.close_reason = m.value("reason", "");
        return;
    }
    if (!m.contains("re") || !m["re"].is_number()) return;
    int64_t re = m["re"].get<int64_t>();
    if (re != next_reply_)
        rep_.violations.push_back("the reply to " + std::to_string(re) + " came where " +
                                  std::to_string(next_reply_) + "'s was due");
    next_reply_ = re + 1;
    if (m.value("ok", false)) ++rep_.acknowledged;
}

// The same over IRC: registered over JSON, the account logs in with PASS on the IRC listener,
// asks for echo-message, joins #lobby, then writes its PRIVMSGs at once.
void World::pipeline_irc(int n) {
    const std::string ip = "203.0.113.78";
    attacker_account(ip, "ircpiper", [this, n, ip](ConnId json_conn) {
        hang_up(json_conn);
        ConnId conn = open(
            ip, {}, [this](const std::string&) { attacker_done_ = true; }, Wire::irc);
        peers_[conn].on_text = [this, conn, n](std::string_view line) {
            if (line.find(" 366 ") == std::string_view::npos) return;  // end of the JOIN burst
            Peer& p = peers_[conn];
            p.chunk_max = 512;
            p.read_bytes_per_s = 8 * 1024;
            p.on_text = [this](std::string_view l) { pipelined_irc_line(l); };
            std::string bytes;
            for (int i = 0; i < n; ++i)
                bytes +=
                    "PRIVMSG #lobby :" + std::string(pipelined_text) + std::to_string(i) + "\r\n";
            rep_.attempts = static_cast<uint64_t>(n);
            send(conn, std::move(bytes));
        };
        send(conn,
             "CAP LS 302\r\nCAP REQ :echo-message\r\nPASS ircpiper:attacker-pass\r\n"
             "NICK ircpiper\r\nUSER u 0 * :u\r\nCAP END\r\nJOIN #lobby\r\n");
    });
}

// Its own messages echoed in order until the ERROR, and nothing after it.
void World::pipelined_irc_line(std::string_view line) {
    if (!rep_.close_reason.empty()) {
        ++rep_.lines_after_close;
        return;
    }
    if (line.starts_with("ERROR :")) {
        rep_.close_reason =
            line.find("blocked") != std::string_view::npos ? "BLOCKED" : std::string(line);
        return;
    }
    std::string echo = " PRIVMSG #lobby :" + std::string(pipelined_text);
    size_t at = line.find(echo);
    if (at == std::string_view::npos) return;
    int64_t k = std::stoll(std::string(line.substr(at + echo.size())));
    if (k != next_reply_ - 10)
        rep_.violations.push_back("the echo of " + std::to_string(k) + " came where " +
                                  std::to_string(next_reply_ - 10) + "'s was due");
    next_reply_ = k + 11;
    ++rep_.acknowledged;
}

// What the store holds of the pipelined messages, against what their author was told.
void World::check_pipeline() {
    for (MessageId id = 1; id <= core_->state().committed_through(); ++id)
        if (std::optional<MessageRow> m = store_->message(id);
            m && m->text.starts_with(pipelined_text))
            ++rep_.stored;
    auto fail = [this](std::string what) { rep_.violations.push_back(std::move(what)); };
    if (rep_.close_reason.empty()) fail("the pipelining client was never closed");
    if (rep_.acknowledged != rep_.stored)
        fail(std::to_string(rep_.stored) + " pipelined messages stored, " +
             std::to_string(rep_.acknowledged) + " acknowledged to their author");
    if (rep_.lines_after_close > 0)
        fail(std::to_string(rep_.lines_after_close) + " lines after the DISCONNECT");
}

void World::start_attack() {
    switch (opt_.scenario) {
        case Scenario::brute_force:
            return attack_brute_force();
        case Scenario::credential_stuffing:
            return attack_stuffing();
        case Scenario::connection_flood:
            return attack_connection_flood();
        case Scenario::message_flood:
            return attack_message_flood();
        case Scenario::slowloris:
            return attack_slowloris();
        case Scenario::bad_frames:
            return attack_bad_frames();
        case Scenario::invitation_spam:
            return attack_spam(true);
        case Scenario::dm_spam:
            return attack_spam(false);
        case Scenario::pipelined_flood:
            return pipeline(200, {});
        case Scenario::operator_suspend:
            return pipeline(25, [this] {
                at(now_ms() + rng_.between(0, 20), [this] {
                    AdminRequest q;
                    q.kind = AdminRequest::Kind::suspend;
                    q.username = "piper";
                    q.duration_ms = 3'600'000;
                    q.reason = "operator";
                    core_->admin(q, now());
                    drain();
                });
            });
        case Scenario::shutdown_pipelined:
            return pipeline(25, [this] {
                at(now_ms() + rng_.between(0, 20), [this] {
                    core_->shutdown(now());
                    drain();
                });
            });
        case Scenario::irc_flood:
            return pipeline_irc(200);
        case Scenario::none:
        case Scenario::storage_outage:
        case Scenario::slow_storage:
            return;
    }
}

ScenarioReport World::run() {
    rep_.seed = opt_.seed;
    if (opt_.duration_ms == 0)
        opt_.duration_ms = opt_.scenario == Scenario::storage_outage ? 180'000
                           : opt_.scenario == Scenario::slow_storage ? 200'000
                           : closes_a_pipeline(opt_.scenario)        ? 20'000
                                                                     : 120'000;
    if (opt_.scenario == Scenario::storage_outage) fault_from_ = 30'000, fault_to_ = 60'000;
    if (opt_.scenario == Scenario::slow_storage)
        fault_from_ = 30'000, fault_to_ = 90'000, slow_ = true;
    legit_.reserve(static_cast<size_t>(opt_.legit_clients) + 1);
    start_host();
    for (int i = 0; i < opt_.legit_clients; ++i) {
        Legit& c = legit_.emplace_back();
        c.index = i;
        c.name = "user" + std::to_string(i);
        c.password = "password-" + std::to_string(i);
        c.ip = "10.2." + std::to_string(i / 200) + "." + std::to_string(i % 200 + 1);
        at(rng_.between(500, 5000), [this, k = legit_.size() - 1] { start_legit(legit_[k]); });
    }
    at(10'000, [this] { start_attack(); });
    if (opt_.scenario == Scenario::slow_storage)
        at(60'000, [this] {
            AdminRequest q;
            q.kind = AdminRequest::Kind::clear_alerts;
            core_->admin(q, now());
            drain();
        });
    clock_.run(opt_.duration_ms);
    std::sort(latencies_.begin(), latencies_.end());
    if (!latencies_.empty()) {
        rep_.legit_p99_ms = latencies_[(latencies_.size() - 1) * 99 / 100];
        rep_.legit_max_ms = latencies_.back();
    }
    for (auto& [name, n] : name_failures_)
        rep_.worst_name_failures = std::max(rep_.worst_name_failures, n);
    rep_.end_connections = core_->connection_count();
    if (closes_a_pipeline(opt_.scenario)) check_pipeline();
    std::set<std::pair<std::string, std::string>> open_alerts;
    for (const auto& a : rep_.alerts) {
        auto key = std::make_pair(a.rule, a.subject);
        if (a.raised && !open_alerts.insert(key).second) ++rep_.duplicate_raises;
        if (!a.raised) open_alerts.erase(key);
    }
    rep_.trace_hash = trace_.hex();
    return rep_;
}

}  // namespace

std::optional<Scenario> scenario_from_name(std::string_view name) {
    for (const auto& [s, n] : names)
        if (n == name) return s;
    return std::nullopt;
}

std::string_view scenario_name(Scenario s) {
    for (const auto& [v, n] : names)
        if (v == s) return n;
    return "?";
}

std::vector<Scenario> close_scenarios() {
    return {Scenario::pipelined_flood, Scenario::operator_suspend, Scenario::shutdown_pipelined,
            Scenario::irc_flood};
}

std::vector<Scenario> attack_scenarios() {
    return {Scenario::brute_force,      Scenario::credential_stuffing,
            Scenario::connection_flood, Scenario::message_flood,
            Scenario::slowloris,        Scenario::bad_frames,
            Scenario::invitation_spam,  Scenario::dm_spam};
}

ScenarioReport run_scenario(const ScenarioOptions& options) {
    World w(options);
    return w.run();
}

}  // namespace warren::sim
