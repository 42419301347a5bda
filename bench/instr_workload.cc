// warren-bench-instr: a fixed, seeded workload through the real core and a real (in-memory)
// SQLite store, for counting instructions per request under callgrind (bench/instr_budget.py).
//
// Setup (not measured): 220 accounts on addresses of their own, a room of 10 and a room of
// 100, 600 older messages in the big room (so history pages reach storage), the search index
// brought up to date. Then warren_measured_workload() runs --requests requests drawn from a
// seeded mix (or only one kind with --only): sends to rooms of 10 and 100, direct messages,
// history pages from memory and from storage, edits, reactions, searches, logins, and
// refusals of each kind (not logged in, bad arguments, rate limited, no such room). Abuse
// limits are the defaults; virtual time advances 50 ms a request, so legitimate users stay
// under them while the one abuser does not. Every output is carried out at once: sends
// reported sent, commits applied to the store, queries run, hashes answered (a fake argon2id
// that is the same every run). Nothing depends on the real clock but the elapsed time it
// prints, so the instruction count is the same every run.
//
// Prints one JSON line: the requests by kind, commits, queries and the measured phase's
// wall time (for instructions per nanosecond).
#include <chrono>
#include <iterator>
#include <cstdio>
#include <cstring>
#include <map>
#include <set>
#include <stdexcept>
#include <memory>
#include <string>
#include <vector>

#include "core/server.h"
#include "sim/rng.h"
#include "store/store.h"

namespace warren::instr {

enum class Kind {
    send10,
    send100,
    dm,
    history_recent,
    history_stored,
    edit,
    react,
    search,
    login,
    refuse_unauthenticated,
    refuse_bad_request,
    refuse_rate_limited,
    refuse_not_found,
};

struct KindInfo {
    Kind kind;
    const char* name;
    int weight;  // in the mix
};

constexpr KindInfo kinds[] = {
    {Kind::send10, "send_room10", 25},
    {Kind::send100, "send_room100", 8},
    {Kind::dm, "direct_message", 10},
    {Kind::history_recent, "history_memory", 8},
    {Kind::history_stored, "history_storage", 4},
    {Kind::edit, "edit", 5},
    {Kind::react, "react", 8},
    {Kind::search, "search", 4},
    {Kind::login, "login", 3},
    {Kind::refuse_unauthenticated, "refused_unauthenticated", 5},
    {Kind::refuse_bad_request, "refused_bad_request", 8},
    {Kind::refuse_rate_limited, "refused_rate_limited", 6},
    {Kind::refuse_not_found, "refused_not_found", 6},
};

constexpr int users_in_room100 = 100;   // users 1..100; users 1..10 are also in room10
constexpr int login_users = 20;         // users 101..120 log in and out again
constexpr ConnId guest_conn = 1000;     // never logs in
constexpr int abuser = 121;             // far over the rate limit (its own connection 121)
constexpr ConnId login_conn_base = 2000;

std::string ip_of(int user) {
    return "10.1." + std::to_string(user / 250) + "." + std::to_string(user % 250 + 1);
}

class World {
  public:
    World() {
        Config c;  // default abuse limits
        c.allowlist = {"10.9.0.0/16"};  // the abuser: rate limited, never blocked
        auto st = Store::open(":memory:", Synchronous::normal);
        if (!st.is_ok()) throw std::runtime_error(st.status().message());
        store_ = std::move(st.value());
        core_ = std::make_unique<Server>(c, entropy_, Snapshot{});
    }

    void line(ConnId conn, const std::string& text) {
        core_->receive(conn, text + "\n", now_);
        drain();
    }
    void connect(ConnId conn, const std::string& ip) {
        core_->connect(conn, ip, now_);
        closed_.erase(conn);
        drain();
    }
    void disconnect(ConnId conn) {
        core_->disconnect(conn, now_);
        drain();
    }
    void advance_ms(int64_t ms) {
        now_.mono_us += ms * 1000;
        now_.wall_ms += ms;
        core_->tick(now_);
        drain();
    }
    bool closed(ConnId conn) const { return closed_.contains(conn); }
    MessageId last_message() const { return core_->state().last_message_id(); }
    Store& store() { return *store_; }
    uint64_t commits = 0, queries = 0;

  private:
    void drain() {
        while (auto o = core_->poll()) {
            if (auto* s = std::get_if<Send>(&*o)) {
                for (ConnId to : s->to) core_->sent(to, s->bytes->size(), now_);
            } else if (auto* c = std::get_if<Commit>(&*o)) {
                ++commits;
                core_->committed(c->batch, store_->apply(*c->mutations), now_);
            } else if (auto* q = std::get_if<Query>(&*o)) {
                ++queries;
                core_->answered(q->query, store_->run(q->what), now_);
            } else if (auto* h = std::get_if<Hash>(&*o)) {
                HashResult r;
                std::string phc = "$fake$" + h->password;
                r.ok = h->mode == HashMode::create || h->phc == phc;
                if (h->mode == HashMode::create) r.phc = phc;
                core_->hashed(h->job, r, now_);
            } else if (auto* cl = std::get_if<Close>(&*o)) {
                closed_.insert(cl->conn);
            }
        }
    }

    sim::SeededEntropy entropy_{42};
    std::unique_ptr<Store> store_;
    std::unique_ptr<Server> core_;
    Time now_{1'000'000, 1764000000000};
    std::set<ConnId> closed_;
};

struct Plan {
    std::vector<Kind> requests;
    std::map<int, std::vector<MessageId>> sent_by;  // messages each user sent, for edits
    std::vector<MessageId> stored_ids;               // old messages of room100
    uint64_t counter = 0;
    int next_login = 0;
    std::map<Kind, uint64_t> done;
};

std::string user_name(int u) {
    return "user" + std::to_string(u);
}

void setup(World& w) {
    for (int u = 1; u <= login_users + users_in_room100 + 1; ++u) {
        ConnId conn = static_cast<ConnId>(u);
        w.connect(conn, u == abuser ? "10.9.0.1" : ip_of(u));
        w.line(conn, R"({"id":1,"op":"REGISTER","username":")" + user_name(u) +
                         R"(","password":"password-)" + std::to_string(u) + "\"}");
    }
    w.line(1, R"({"id":2,"op":"CREATE_ROOM","room":"room10"})");
    w.line(1, R"({"id":3,"op":"CREATE_ROOM","room":"room100"})");
    for (int u = 2; u <= users_in_room100; ++u) {
        if (u <= 10) w.line(static_cast<ConnId>(u), R"({"id":4,"op":"JOIN_ROOM","room":"room10"})");
        w.line(static_cast<ConnId>(u), R"({"id":5,"op":"JOIN_ROOM","room":"room100"})");
    }
    // Older messages, beyond the room's memory, so some history pages come from storage.
    for (int i = 0; i < 600; ++i) {
        int u = 11 + i % 90;
        w.line(static_cast<ConnId>(u), R"({"id":6,"op":"SEND_MESSAGE","room":"room100","text":"older lorem ipsum message )" +
                                           std::to_string(i) + "\"}");
        if (i % 20 == 19) w.advance_ms(1000);
    }
    (void)w.store().index_pending(100'000);
    w.connect(guest_conn, "10.2.0.1");
    w.advance_ms(60'000);
}

std::string text_for(Plan& p) {
    return "message number " + std::to_string(++p.counter) + " with ordinary length for a chat";
}

// One request of `kind`, its outputs carried out.
void run_one(World& w, Plan& p, Kind kind, sim::Rng& rng) {
    auto user10 = [&] { return 1 + static_cast<int>(rng.below(10)); };
    auto user100 = [&] { return 1 + static_cast<int>(rng.below(users_in_room100)); };
    std::string id = R"({"id":)" + std::to_string(p.counter + 10);
    switch (kind) {
        case Kind::send10: {
            int u = user10();
            w.line(static_cast<ConnId>(u), id + R"(,"op":"SEND_MESSAGE","room":"room10","text":")" + text_for(p) + "\"}");
            p.sent_by[u].push_back(w.last_message());
            break;
        }
        case Kind::send100: {
            int u = user100();
            w.line(static_cast<ConnId>(u), id + R"(,"op":"SEND_MESSAGE","room":"room100","text":")" + text_for(p) + "\"}");
            p.sent_by[u].push_back(w.last_message());
            break;
        }
        case Kind::dm: {
            int from = user100(), to = user100();
            if (to == from) to = to % users_in_room100 + 1;
            w.line(static_cast<ConnId>(from), id + R"(,"op":"DIRECT_MESSAGE","to":")" + user_name(to) +
                                                  R"(","text":")" + text_for(p) + "\"}");
            break;
        }
        case Kind::history_recent:
            w.line(static_cast<ConnId>(user100()), id + R"(,"op":"HISTORY","room":"room100","limit":50})");
            break;
        case Kind::history_stored: {
            MessageId before = p.stored_ids[rng.below(p.stored_ids.size())];
            w.line(static_cast<ConnId>(user100()), id + R"(,"op":"HISTORY","room":"room100","limit":50,"before":)" +
                                                     std::to_string(before) + "}");
            break;
        }
        case Kind::edit: {
            int u = user10();
            if (p.sent_by[u].empty()) return run_one(w, p, Kind::send10, rng);
            MessageId m = p.sent_by[u][rng.below(p.sent_by[u].size())];
            w.line(static_cast<ConnId>(u), id + R"(,"op":"EDIT_MESSAGE","message_id":)" + std::to_string(m) +
                                              R"(,"text":")" + text_for(p) + " (edited)\"}");
            break;
        }
        case Kind::react: {
            int u = user100();
            MessageId m = p.stored_ids[p.stored_ids.size() - 1 - rng.below(100)];
            static constexpr const char* emoji[] = {"👍", "🎉", "❤️", "😂"};
            w.line(static_cast<ConnId>(u), id + R"(,"op":"REACT","message_id":)" + std::to_string(m) +
                                              R"(,"emoji":")" + emoji[rng.below(4)] + "\"}");
            break;
        }
        case Kind::search:
            w.line(static_cast<ConnId>(user100()), id + R"(,"op":"SEARCH","query":"lorem )" +
                                                     std::to_string(rng.below(600)) + R"(","limit":20})");
            break;
        case Kind::login: {
            int u = users_in_room100 + 1 + p.next_login++ % login_users;
            ConnId conn = login_conn_base + static_cast<ConnId>(u);
            if (p.done[Kind::login] >= login_users) w.disconnect(conn);
            w.connect(conn, ip_of(u));
            w.line(conn, id + R"(,"op":"LOGIN","username":")" + user_name(u) + R"(","password":"password-)" +
                             std::to_string(u) + "\"}");
            break;
        }
        case Kind::refuse_unauthenticated:
            if (w.closed(guest_conn)) w.connect(guest_conn, "10.2.0.1");  // the login timeout
            w.line(guest_conn, id + R"(,"op":"SEND_MESSAGE","room":"room10","text":"hello?"})");
            break;
        case Kind::refuse_bad_request:
            w.line(static_cast<ConnId>(user100()), id + R"(,"op":"SEND_MESSAGE","room":"room10","text":""})");
            break;
        case Kind::refuse_rate_limited:
            w.line(abuser, id + R"(,"op":"PING"})");
            break;
        case Kind::refuse_not_found:
            w.line(static_cast<ConnId>(user100()), id + R"(,"op":"HISTORY","room":"no-such-room"})");
            break;
    }
    ++p.done[kind];
}

}  // namespace warren::instr

using namespace warren;
using namespace warren::instr;

// The measured phase: callgrind counts only inside this function (--toggle-collect).
extern "C" __attribute__((noinline)) void warren_measured_workload(World* w, Plan* p, uint64_t seed) {
    sim::Rng rng(seed);
    for (Kind k : p->requests) {
        run_one(*w, *p, k, rng);
        w->advance_ms(50);
    }
}

int main(int argc, char** argv) {
    uint64_t requests = 2000, seed = 7, per_kind = 0;
    const char* only = nullptr;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!std::strcmp(argv[i], "--requests")) requests = std::stoull(argv[i + 1]);
        else if (!std::strcmp(argv[i], "--seed")) seed = std::stoull(argv[i + 1]);
        else if (!std::strcmp(argv[i], "--only")) only = argv[i + 1];
        else if (!std::strcmp(argv[i], "--per-kind")) per_kind = std::stoull(argv[i + 1]);
        else {
            std::fprintf(stderr,
                         "usage: warren-bench-instr [--requests N] [--seed S] [--only KIND] "
                         "[--per-kind N]\n");
            return 2;
        }
    }
    World w;
    setup(w);
    Plan p;
    for (MessageId id = 1; id <= w.last_message(); ++id) p.stored_ids.push_back(id);
    // The abuser spends its burst before the measured phase, so each of its requests in it
    // is refused.
    for (int i = 0; i < 200; ++i) w.line(abuser, R"({"id":1,"op":"PING"})");
    if (per_kind) {
        // One measured call per kind, in the order of `kinds` (callgrind dumps each apart).
        std::printf("{\"kinds_in_order\":[");
        std::string queries;
        for (size_t k = 0; k < std::size(kinds); ++k) {
            Plan one;
            one.stored_ids = p.stored_ids;
            one.requests.assign(per_kind, kinds[k].kind);
            one.done = p.done;
            uint64_t q0 = w.queries;
            warren_measured_workload(&w, &one, seed + k);
            p.done = one.done;
            std::printf("%s\"%s\"", k ? "," : "", kinds[k].name);
            queries += std::string(k ? "," : "") + "\"" + kinds[k].name +
                       "\":" + std::to_string(w.queries - q0);
        }
        std::printf("],\"queries_by_kind\":{%s}}\n", queries.c_str());
        return 0;
    }
    sim::Rng mix(seed ^ 0x5eed);
    int total_weight = 0;
    for (const KindInfo& k : kinds) total_weight += k.weight;
    bool known = only == nullptr;
    for (uint64_t i = 0; i < requests; ++i) {
        if (only) {
            for (const KindInfo& k : kinds)
                if (!std::strcmp(k.name, only)) {
                    p.requests.push_back(k.kind);
                    known = true;
                }
            continue;
        }
        int pick = static_cast<int>(mix.below(static_cast<uint64_t>(total_weight)));
        for (const KindInfo& k : kinds) {
            if (pick < k.weight) {
                p.requests.push_back(k.kind);
                break;
            }
            pick -= k.weight;
        }
    }
    if (!known) {
        std::fprintf(stderr, "unknown kind '%s'\n", only);
        return 2;
    }
    uint64_t commits_before = w.commits, queries_before = w.queries;
    auto t0 = std::chrono::steady_clock::now();
    warren_measured_workload(&w, &p, seed);
    auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                  std::chrono::steady_clock::now() - t0)
                  .count();
    std::printf("{\"requests\":%llu,\"commits\":%llu,\"queries\":%llu,\"elapsed_ns\":%lld,\"kinds\":{",
                static_cast<unsigned long long>(p.requests.size()),
                static_cast<unsigned long long>(w.commits - commits_before),
                static_cast<unsigned long long>(w.queries - queries_before),
                static_cast<long long>(ns));
    bool first = true;
    for (const KindInfo& k : kinds) {
        std::printf("%s\"%s\":%llu", first ? "" : ",", k.name,
                    static_cast<unsigned long long>(p.done[k.kind]));
        first = false;
    }
    std::printf("}}\n");
    return 0;
}
