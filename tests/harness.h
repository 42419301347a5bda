// CoreHarness: drives the real core with the real store (SQLite :memory: or a file) for unit
// tests, like a tiny deterministic driver. Completions (commits, queries, hashes) are run
// after the outputs that asked for them, never from inside poll(). Commits can be held
// (hold_commits, hold_queries) to observe what the core does before durability, and failed on
// purpose (fail_commits) to observe rollback. The hasher is a fast stand-in for argon2id.
#pragma once

#include <sodium.h>

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "core/server.h"
#include "core/txn/commit_chain.h"
#include "sim/rng.h"
#include "store/store.h"

namespace warren::test {

using json = nlohmann::json;

class CoreHarness {
  public:
    // Each instance draws a new entropy seed, so a "restarted" harness on the same database
    // does not repeat the session tokens of the previous one.
    // Abuse limits (rate limits, connection caps, threat scoring) are off unless a test asks
    // for them: most tests drive many requests from one address on purpose.
    explicit CoreHarness(Config cfg = {},
                         const std::string& db = ":memory:", bool abuse_limits = false)
        : entropy_(42 + instances_++) {
        if (!abuse_limits) {
            cfg = without_abuse_limits(cfg);
            // Housekeeping and alert ticks far away, so next_deadline() is the feature's own.
            cfg.sweep_interval_ms = cfg.alert_eval_ms = 24LL * 3600 * 1000;
        }
        auto st = Store::open(db, Synchronous::normal);
        if (!st.is_ok()) throw std::runtime_error(st.status().message());
        store_ = std::move(st.value());
        auto snap = store_->load(cfg.room_cache_messages_max, now_.wall_ms);
        if (!snap.is_ok()) throw std::runtime_error(snap.status().message());
        core_ = std::make_unique<Server>(cfg, entropy_, snap.value());
        run();  // what the core says at start (notices)
    }

    Server& core() { return *core_; }
    Store& store() { return *store_; }
    Time now() const { return now_; }
    void advance(int64_t ms) { advance_us(ms * 1000); }
    // Wall time follows the monotonic clock, to the millisecond.
    void advance_us(int64_t us) {
        now_.mono_us += us;
        now_.wall_ms = wall_start_ms_ + (now_.mono_us - mono_start_us_) / 1000;
    }

    // The host's wall clock is set by `by_ms` (either way); monotonic time does not move.
    void step_wall(int64_t by_ms) {
        wall_start_ms_ += by_ms;
        now_.wall_ms += by_ms;
    }

    void connect(ConnId c, const std::string& ip = "127.0.0.1") {
        core_->connect(c, ip, now_);
        run();
    }
    // A connection accepted on the IRC listener.
    void connect_irc(ConnId c, const std::string& ip = "127.0.0.1") {
        core_->connect(c, ip, now_, Wire::irc);
        run();
    }
    // Everything the connection received since the last take, as it came.
    // With record_sends, the recipients of every Send output, in order.
    bool record_sends = false;
    std::vector<std::vector<ConnId>> sends;
    std::string take_raw(ConnId c) { return std::exchange(inbox_[c], {}); }
    void raw(ConnId c, std::string_view bytes) {
        core_->receive(c, bytes, now_);
        run();
    }
    void send(ConnId c, const json& req) { raw(c, req.dump() + "\n"); }
    void disconnect(ConnId c) {
        core_->disconnect(c, now_);
        run();
    }

    // Every complete line the connection received since the last take(), parsed.
    std::vector<json> take(ConnId c) {
        std::vector<json> out;
        std::string& buf = inbox_[c];
        size_t nl;
        while ((nl = buf.find('\n')) != std::string::npos) {
            out.push_back(json::parse(buf.substr(0, nl)));
            buf.erase(0, nl + 1);
        }
        return out;
    }
    // Sends a request and returns the reply to it (events are kept for take()).
    json call(ConnId c, json req) {
        int64_t id = next_id_++;
        req["id"] = id;
        send(c, req);
        std::vector<json> lines = take(c);
        json reply;
        for (auto& l : lines) {
            if (l.contains("re") && l["re"] == id)
                reply = l;
            else
                pending_events_[c].push_back(l);
        }
        return reply;
    }
    std::vector<json> events(ConnId c) {
        std::vector<json> out = std::move(pending_events_[c]);
        pending_events_[c].clear();
        for (auto& l : take(c)) out.push_back(std::move(l));
        return out;
    }
    json register_user(ConnId c, const std::string& name, const std::string& pw = "password1",
                       const std::string& ip = "127.0.0.1") {
        connect(c, ip);
        take(c);  // HELLO
        return call(c, {{"op", "REGISTER"}, {"username", name}, {"password", pw}});
    }

    bool closed(ConnId c) const { return closed_.contains(c); }
    // Bytes delivered to the connection and not yet taken (for a stalled one: all the bytes
    // the core counts as not yet sent since the last take()).
    size_t unread_bytes(ConnId c) const {
        auto it = inbox_.find(c);
        return it == inbox_.end() ? 0 : it->second.size();
    }
    std::string close_reason(ConnId c) const {
        auto it = closed_.find(c);
        return it == closed_.end() ? "" : it->second;
    }

    std::set<ConnId> stalled;   // connections whose peer never reads: no sent() reports
    bool hold_commits = false;  // keep Commit outputs in held_ until release()
    bool hold_queries = false;  // keep Query outputs in held_ until release() too
    int fail_commits = 0;       // the next N commits fail (Status::failed)
    int transient_commits = 0;  // the next N commits fail transiently (Status::transient)
    int corrupt_commits = 0;    // the next N commits find the database corrupt (Status::corrupt)
    size_t commits = 0;
    size_t queries = 0;

    // Advances time to the core's next deadline (if any) and ticks; false if none.
    // Ticks at the next deadline if there is one within `within_ms` (the core's periodic
    // housekeeping always has one, far away, while connections are open).
    bool tick_to_deadline(int64_t within_ms = 60'000) {
        auto d = core_->next_deadline();
        if (!d || *d > now_.mono_us + within_ms * 1000) return false;
        if (*d > now_.mono_us) advance_us(*d - now_.mono_us);
        core_->tick(now_);
        run();
        return true;
    }
    void tick() {
        core_->tick(now_);
        run();
    }
    // An admin request; its reply (reads answer at once, actions after their commit).
    std::optional<AdminReply> admin(const AdminRequest& q) {
        AdminId id = core_->admin(q, now_);
        run();
        for (auto it = admin_replies.begin(); it != admin_replies.end(); ++it)
            if (it->id == id) {
                AdminReply r = *it;
                admin_replies.erase(it);
                return r;
            }
        return std::nullopt;
    }
    std::vector<AdminReply> admin_replies;
    std::vector<Backup> backups;   // Backup outputs, in order (answer with backed_up())
    size_t prunes = 0;             // retention Prunes carried out
    std::vector<AuditRow> audits;  // Audit outputs, in order
    std::vector<Notice> notices;   // Notice outputs, in order

    void backed_up(AdminId id, const BackupResult& r) {
        core_->backed_up(id, r, now_);
        run();
    }

    // Completes the oldest held commit or query.
    void release_one() {
        if (held_.empty()) return;
        auto fn = std::move(held_.front());
        held_.pop_front();
        fn();
        run();
    }
    // Completes held commits and queries in order; commits sent meanwhile queue behind them
    // (storage carries commits out in the order they were sent).
    void release() {
        while (!held_.empty()) release_one();
    }

  private:
    void run() {
        for (;;) {
            while (auto out = core_->poll()) handle(*out);
            if (completions_.empty()) return;
            auto fn = std::move(completions_.front());
            completions_.pop_front();
            fn();
        }
    }
    void handle(Output& o) {
        if (auto* s = std::get_if<Send>(&o)) {
            if (record_sends) sends.push_back(s->to);
            for (ConnId to : s->to) {
                inbox_[to] += *s->bytes;
                if (!stalled.contains(to))
                    completions_.push_back(
                        [this, to, n = s->bytes->size()] { core_->sent(to, n, now_); });
            }
        } else if (auto* c = std::get_if<Close>(&o)) {
            // A reader that read everything: drop_unsent drops nothing here.
            if (c->last) inbox_[c->conn] += *c->last;
            closed_[c->conn] = std::string(c->reason);
        } else if (auto* cm = std::get_if<Commit>(&o)) {
            ++commits;
            auto fn = [this, c = *cm] {
                // A commit whose predecessor did not land is not tried (and fails no quota).
                Status st = chain_.carry_out(c, [&] {
                    return fail_commits > 0 ? (--fail_commits, Status::failed("injected"))
                           : transient_commits > 0
                               ? (--transient_commits, Status::transient("busy"))
                           : corrupt_commits > 0
                               ? (--corrupt_commits,
                                  Status::corrupt("database disk image is malformed"))
                               : store_->apply(*c.mutations);
                });
                core_->committed(c.batch, st, now_);
            };
            if (hold_commits || !held_.empty())
                held_.push_back(fn);
            else
                completions_.push_back(fn);
        } else if (auto* q = std::get_if<Query>(&o)) {
            ++queries;
            auto fn = [this, id = q->query, what = q->what] {
                core_->answered(id, store_->run(what), now_);
            };
            if (hold_queries)
                held_.push_back(fn);
            else
                completions_.push_back(fn);
        } else if (auto* a = std::get_if<AdminReply>(&o)) {
            admin_replies.push_back(*a);
        } else if (auto* au = std::get_if<Audit>(&o)) {
            audits.push_back(au->record);
        } else if (auto* n = std::get_if<Notice>(&o)) {
            notices.push_back(*n);
        } else if (auto* b = std::get_if<Backup>(&o)) {
            backups.push_back(*b);
        } else if (auto* p = std::get_if<Prune>(&o)) {
            ++prunes;
            auto fn = [this, id = p->id, scopes = p->scopes, limit = p->limit] {
                core_->pruned(id, store_->prune(scopes, limit), now_);
            };
            if (hold_commits || !held_.empty())  // after the commits sent before it
                held_.push_back(fn);
            else
                completions_.push_back(fn);
        } else if (auto* h = std::get_if<Hash>(&o)) {
            HashResult r;
            std::string phc = "$test$" + h->password;
            if (h->mode == HashMode::create)
                r.ok = true, r.phc = phc;
            else
                r.ok = !h->phc.empty() && h->phc == phc;
            completions_.push_back([this, job = h->job, r] { core_->hashed(job, r, now_); });
        }
    }

    static inline uint64_t instances_ = 0;
    sim::SeededEntropy entropy_;
    std::unique_ptr<Store> store_;
    CommitChain chain_;
    std::unique_ptr<Server> core_;
    static constexpr int64_t mono_start_us_ = 1'000'000;
    int64_t wall_start_ms_ = 1764000000000;  // moved by step_wall
    Time now_{mono_start_us_, wall_start_ms_};
    int64_t next_id_ = 1;
    std::map<ConnId, std::string> inbox_;
    std::map<ConnId, std::vector<json>> pending_events_;
    std::map<ConnId, std::string> closed_;
    std::deque<std::function<void()>> completions_;
    std::deque<std::function<void()>> held_;
};

}  // namespace warren::test
