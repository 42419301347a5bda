// libFuzzer target: the whole core. A registered, logged-in connection in a room sends the
// fuzz input as its byte stream (split at input-chosen points) while a second member
// listens; commits succeed or fail as the input says. Checks: the core never crashes or
// trips a WARREN_CHECK, every output line is a JSON object ending in '\n', and the
// connection's memory stays bounded (framer and reply queue limits).
#include <sodium.h>

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>

#include "core/server.h"
#include "sim/rng.h"

namespace {

struct Driver {
    warren::sim::SeededEntropy entropy{1};
    warren::Snapshot snap;
    warren::Config cfg;
    std::unique_ptr<warren::Server> core;
    warren::Time now{1'000'000, 1764000000000};
    std::deque<std::function<void()>> done;
    bool fail_commits = false;

    Driver() {
        cfg.max_frame_bytes = 2048;
        cfg.text_max_bytes = 1024;
        cfg.room_cache_messages_max = 128;
        // Abuse limits off: a block after a few bad frames would hide the chat logic from the
        // fuzzer. Validation stays on, with its always-on checks in core/chat.
        core = std::make_unique<warren::Server>(warren::without_abuse_limits(cfg), entropy, snap);
    }
    void run() {
        for (;;) {
            while (auto o = core->poll()) handle(*o);
            if (done.empty()) return;
            auto fn = std::move(done.front());
            done.pop_front();
            fn();
        }
    }
    void handle(warren::Output& o) {
        using namespace warren;
        if (auto* s = std::get_if<Send>(&o)) {
            WARREN_CHECK(!s->bytes->empty() && s->bytes->back() == '\n' && (*s->bytes)[0] == '{');
            done.push_back([this, c = s->conn, n = s->bytes->size()] { core->sent(c, n, now); });
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
        }
    }
    void say(warren::ConnId c, std::string_view line) {
        core->receive(c, line, now);
        run();
    }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size < 2) return 0;
    Driver d;
    d.core->connect(1, "127.0.0.1", d.now);
    d.core->connect(2, "127.0.0.2", d.now);
    d.run();
    d.say(1,
          "{\"id\":1,\"op\":\"REGISTER\",\"username\":\"fuzz\",\"password\":\"password\"}\n"
          "{\"id\":2,\"op\":\"CREATE_ROOM\",\"room\":\"r\"}\n");
    d.say(2,
          "{\"id\":1,\"op\":\"REGISTER\",\"username\":\"peer\",\"password\":\"password\"}\n"
          "{\"id\":2,\"op\":\"JOIN_ROOM\",\"room\":\"r\"}\n");
    size_t chunk = 1 + data[0] % 128;
    d.fail_commits = data[1] % 8 == 0;
    std::string_view bytes(reinterpret_cast<const char*>(data + 2), size - 2);
    for (size_t pos = 0; pos < bytes.size(); pos += chunk) {
        d.now.mono_us += 7'000;
        d.now.wall_ms += 7;
        d.say(1, bytes.substr(pos, chunk));
    }
    d.core->tick(d.now);
    d.run();
    return 0;
}
