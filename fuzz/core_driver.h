// CoreDriver: the smallest driver of a real Server for the fuzz targets. It carries out every
// output at once (commits succeed unless fail_commits; queries answer with no rows; hashing is
// a fake "$f$password" so that a target spends its time in Warren, not in argon2id; backups
// and prunes succeed) and keeps the admin replies it sees. It checks what holds for any
// input: every line sent to a JSON connection is one JSON object ending in '\n'; everything
// sent to an IRC connection is whole lines ending in "\r\n", with no CR, LF or NUL inside
// and no longer than IRC allows.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string_view>

#include "core/server.h"
#include "sim/rng.h"

namespace warren::fuzz {

// Small limits so the fuzzer reaches them, and abuse limits off: a block after a few bad
// lines would hide the chat logic from it. Validation stays on, with its always-on checks.
inline Config session_config() {
    Config cfg;
    cfg.max_frame_bytes = 2048;
    cfg.text_max_bytes = 1024;
    cfg.room_cache_messages_max = 128;
    return without_abuse_limits(cfg);
}

struct CoreDriver {
    sim::SeededEntropy entropy{1};
    Snapshot snap;
    std::unique_ptr<Server> core;
    Time now{1'000'000, 1764000000000};
    std::deque<std::function<void()>> done;
    std::map<AdminId, AdminReply> replies;
    std::map<ConnId, size_t> lines_to;  // lines sent to each connection
    std::map<ConnId, bool> closed;
    std::set<ConnId> irc;  // connections accepted on the IRC listener
    bool fail_commits = false;

    explicit CoreDriver(const Config& cfg) : core(std::make_unique<Server>(cfg, entropy, snap)) {}

    // Drains outputs and feeds their completions until nothing is left to do.
    void run() {
        for (;;) {
            while (auto o = core->poll()) handle(*o);
            if (done.empty()) return;
            auto fn = std::move(done.front());
            done.pop_front();
            fn();
        }
    }
    void connect_irc(ConnId c, std::string_view ip) {
        irc.insert(c);
        core->connect(c, ip, now, Wire::irc);
        run();
    }
    void say(ConnId c, std::string_view bytes) {
        core->receive(c, bytes, now);
        run();
    }
    // The fuzz input as connection c's byte stream: data[0] chooses the chunk size, data[1]
    // whether commits fail; chunks arrive 7 ms apart; a tick at the end. size >= 2.
    void play(ConnId c, const uint8_t* data, size_t size) {
        size_t chunk = 1 + data[0] % 128;
        fail_commits = data[1] % 8 == 0;
        std::string_view bytes(reinterpret_cast<const char*>(data + 2), size - 2);
        for (size_t pos = 0; pos < bytes.size(); pos += chunk) {
            now.mono_us += 7'000;
            now.wall_ms += 7;
            say(c, bytes.substr(pos, chunk));
        }
        core->tick(now);
        run();
    }

  private:
    static void check_irc(std::string_view bytes) {
        WARREN_CHECK(bytes.size() >= 2 && bytes.substr(bytes.size() - 2) == "\r\n");
        while (!bytes.empty()) {
            size_t end = bytes.find("\r\n");
            WARREN_CHECK(end != std::string_view::npos);
            std::string_view line = bytes.substr(0, end);
            WARREN_CHECK(!line.empty() && line.size() <= 8191 + 512);
            WARREN_CHECK(line.find_first_of(std::string_view("\r\n\0", 3)) ==
                         std::string_view::npos);
            bytes.remove_prefix(end + 2);
        }
    }
    void handle(Output& o) {
        if (auto* s = std::get_if<Send>(&o)) {
            for (ConnId to : s->to) {
                if (irc.contains(to))
                    check_irc(*s->bytes);
                else
                    WARREN_CHECK(!s->bytes->empty() && s->bytes->back() == '\n' &&
                                 (*s->bytes)[0] == '{');
                ++lines_to[to];
                done.push_back([this, to, n = s->bytes->size()] { core->sent(to, n, now); });
            }
        } else if (auto* cl = std::get_if<Close>(&o)) {
            closed[cl->conn] = true;
        } else if (auto* c = std::get_if<Commit>(&o)) {
            Status st = fail_commits ? Status::failed("fuzz") : Status::ok();
            done.push_back([this, b = c->batch, st] { core->committed(b, st, now); });
        } else if (auto* q = std::get_if<Query>(&o)) {
            done.push_back([this, id = q->query] { core->answered(id, {}, now); });
        } else if (auto* h = std::get_if<Hash>(&o)) {
            HashResult r;
            r.ok = h->mode == HashMode::create || h->phc == "$f$" + h->password;
            r.phc = "$f$" + h->password;
            done.push_back([this, j = h->job, r] { core->hashed(j, r, now); });
        } else if (auto* b = std::get_if<Backup>(&o)) {
            BackupResult r{true, "/backups/" + b->name, 4096, 1, {}};
            done.push_back([this, id = b->id, r] { core->backed_up(id, r, now); });
        } else if (auto* p = std::get_if<Prune>(&o)) {
            PruneResult r{true, std::vector<uint32_t>(p->scopes.size(), 0), {}};
            done.push_back([this, id = p->id, r] { core->pruned(id, r, now); });
        } else if (auto* a = std::get_if<AdminReply>(&o)) {
            replies[a->id] = *a;
        }
    }
};

}  // namespace warren::fuzz
