// Core-only benchmarks (no sockets, no disk): the cost of the protocol path per request.
//   BM_DecodeSendMessage       - JSON decode of one SEND_MESSAGE line.
//   BM_SendMessageRoom10       - decode -> validate -> apply -> commit ack -> encode the reply
//                                and 9 MESSAGE events, in a room of 10 members.
//   BM_SendMessageRoom10Security/limits:0|1 - the same, abuse limits off and on.
//   BM_SendMessageRoom10Batch64 - the same with 64 requests per commit (group commit), per
//                                request.
//   BM_ValidateSendMessage     - a decoded SEND_MESSAGE into its typed, checked request (types,
//                                lengths, UTF-8, controls, signatures, the strings copied).
//   BM_RateLimitAndScore       - the IP and account token buckets plus the repeated-text
//                                detector, with default limits (never reached: time advances).
//   BM_SecurityPerRequest      - the two above together: what every request pays for issue 5.
//   BM_MonitorRecord           - one request into the per-op counters and latency histograms.
//   BM_DirectMessageEvictingAConversation - a DM that opens a conversation while the
//                                conversation cache is full, so the least recently used one
//                                leaves (constant time, whatever the cache holds).
//   BM_PipelinedFanout/M:N     - 50 members of a room each send N messages before any commit
//                                completes; per acknowledged message (must stay flat in N).
// Budgets for these live in bench/budgets and are checked by bench/check_budgets.py.
#include <benchmark/benchmark.h>

#include "core/monitor/monitor.h"
#include "core/protocol/request.h"
#include "core/security/guard.h"
#include "core/server.h"
#include "core/validate/requests.h"
#include "sim/rng.h"

namespace {

using namespace warren;

const std::string send_line =
    "{\"id\":12345,\"op\":\"SEND_MESSAGE\",\"room\":\"general\",\"text\":\"hello everyone, this "
    "is a message of ordinary length for a chat room\"}\n";

// A core with `members` logged-in users (one connection each) in room "general".
class Room10 {
  public:
    // join = false: the users only register (no room, so no fan-out while setting up).
    // limits = true: the abuse limits stay on (rate buckets, scoring, guard), as in production.
    explicit Room10(int members, Config config = Config{}, bool join = true, bool limits = false) {
        core_ = std::make_unique<Server>(limits ? config : without_abuse_limits(config), entropy_,
                                         Snapshot{});
        for (int i = 1; i <= members; ++i) {
            // One address each, as real users have: registrations per address are limited.
            core_->connect(i, "10.1." + std::to_string(i / 256) + "." + std::to_string(i % 256),
                           now_);
            std::string reg = "{\"id\":1,\"op\":\"REGISTER\",\"username\":\"user" +
                              std::to_string(i) + "\",\"password\":\"password\"}\n";
            core_->receive(i, reg, now_);
            drain();
            if (!join) continue;
            std::string join_line = std::string("{\"id\":2,\"op\":\"") +
                                    (i == 1 ? "CREATE_ROOM" : "JOIN_ROOM") +
                                    "\",\"room\":\"general\"}\n";
            core_->receive(i, join_line, now_);
            drain();
        }
    }
    // Feeds every output's completion back until the core is quiet; returns bytes sent.
    size_t drain() {
        size_t bytes = 0;
        for (;;) {
            bool any = false;
            while (auto o = core_->poll()) {
                any = true;
                if (auto* s = std::get_if<Send>(&*o)) {
                    for (ConnId to : s->to) {
                        bytes += s->bytes->size();
                        sent_.emplace_back(to, s->bytes->size());
                    }
                } else if (auto* c = std::get_if<Commit>(&*o)) {
                    commits_.push_back(c->batch);
                } else if (auto* h = std::get_if<Hash>(&*o)) {
                    hashes_.push_back(h->job);
                }
            }
            for (auto [c, n] : sent_) core_->sent(c, n, now_);
            for (auto b : commits_) core_->committed(b, Status::ok(), now_);
            for (auto j : hashes_) core_->hashed(j, HashResult{true, false, "$b$"}, now_);
            any = any || !sent_.empty() || !commits_.empty() || !hashes_.empty();
            sent_.clear();
            commits_.clear();
            hashes_.clear();
            if (!any) return bytes;
        }
    }
    Server& core() { return *core_; }
    Time now_{1'000'000, 1764000000000};

  private:
    sim::SeededEntropy entropy_{9};
    std::unique_ptr<Server> core_;
    std::vector<std::pair<ConnId, size_t>> sent_;
    std::vector<BatchId> commits_;
    std::vector<JobId> hashes_;
};

void BM_DecodeSendMessage(benchmark::State& state) {
    RequestDecoder d;
    std::string_view line(send_line.data(), send_line.size() - 1);
    for (auto _ : state) {
        auto r = d.decode(line);
        benchmark::DoNotOptimize(r.id);
    }
}
BENCHMARK(BM_DecodeSendMessage);

void BM_SendMessageRoom10(benchmark::State& state) {
    Room10 room(10);
    size_t bytes = 0;
    for (auto _ : state) {
        room.core().receive(1, send_line, room.now_);
        bytes += room.drain();
    }
    state.SetBytesProcessed(static_cast<int64_t>(bytes));
    state.counters["deliveries/s"] = benchmark::Counter(static_cast<double>(state.iterations()) * 9,
                                                        benchmark::Counter::kIsRate);
}
BENCHMARK(BM_SendMessageRoom10);

// The same SEND_MESSAGE with the abuse limits off (0) and on (1), the clock moving a second per
// message so that no bucket runs dry: the ratio of the two, taken in one run, is what the
// security layer costs a request (bench/budgets holds it to the "< 5 % CPU" claim).
void BM_SendMessageRoom10Security(benchmark::State& state) {
    Room10 room(10, Config{}, true, state.range(0) != 0);
    size_t bytes = 0;
    for (auto _ : state) {
        room.now_.mono_us += 1'000'000;
        room.now_.wall_ms += 1'000;
        room.core().receive(1, send_line, room.now_);
        bytes += room.drain();
    }
    // Bytes out per message: the two variants must do the same work (no refusals).
    state.counters["bytes/msg"] =
        static_cast<double>(bytes) / static_cast<double>(state.iterations());
}
BENCHMARK(BM_SendMessageRoom10Security)->ArgName("limits")->Arg(0)->Arg(1);

void BM_SendMessageRoom10Batch64(benchmark::State& state) {
    Room10 room(10);
    std::string many;
    for (int i = 0; i < 64; ++i) many += send_line;
    for (auto _ : state) {
        room.core().receive(1, many, room.now_);
        room.drain();
    }
    state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * 64);
}
BENCHMARK(BM_SendMessageRoom10Batch64);

void BM_ValidateSendMessage(benchmark::State& state) {
    RequestDecoder d;
    Config config;
    std::string_view line(send_line.data(), send_line.size() - 1);
    auto r = d.decode(line);
    for (auto _ : state) {
        Args args(r.args);
        auto bad = decode_request(Op::send_message, args, config);
        benchmark::DoNotOptimize(bad);
    }
}
BENCHMARK(BM_ValidateSendMessage);

// Default limits; each iteration is one second later, so the buckets never run dry and the
// measured path is the common one (admitted).
void BM_RateLimitAndScore(benchmark::State& state) {
    Config config;
    Guard guard(config);
    Time now{1'000'000, 1764000000000};
    std::string ip = "203.0.113.7";
    uint64_t n = 0;
    for (auto _ : state) {
        now.mono_us += 1'000'000;
        now.wall_ms += 1000;
        auto wait = guard.take_tokens(ip, UserId{7}, 1, now);
        guard.room_message(ip, 7, 1, ++n, now);
        benchmark::DoNotOptimize(wait);
    }
}
BENCHMARK(BM_RateLimitAndScore);

void BM_SecurityPerRequest(benchmark::State& state) {
    Config config;
    Guard guard(config);
    RequestDecoder d;
    std::string_view line(send_line.data(), send_line.size() - 1);
    auto r = d.decode(line);
    Time now{1'000'000, 1764000000000};
    std::string ip = "203.0.113.7";
    uint64_t n = 0;
    for (auto _ : state) {
        now.mono_us += 1'000'000;
        now.wall_ms += 1000;
        Args args(r.args);
        auto barred = guard.ip_barred(ip, now);
        auto wait = guard.take_tokens(ip, UserId{7}, op_info(Op::send_message).weight, now);
        auto bad = decode_request(Op::send_message, args, config);
        guard.room_message(ip, 7, 1, ++n, now);
        benchmark::DoNotOptimize(barred);
        benchmark::DoNotOptimize(wait);
        benchmark::DoNotOptimize(bad);
    }
}
BENCHMARK(BM_SecurityPerRequest);

void BM_MonitorRecord(benchmark::State& state) {
    Config config;
    Monitor monitor(config);
    int64_t now = 1000;
    for (auto _ : state) {
        ++now;
        monitor.request_done(Op::send_message, std::nullopt, now % 7000, now * 1000);
    }
    benchmark::DoNotOptimize(monitor.requests());
}
BENCHMARK(BM_MonitorRecord);

// 1 + 5000 users, the cache full of 4096 conversations of user 1; each iteration writes to
// the next peer in turn, which is never cached, so every DM evicts one conversation.
void BM_DirectMessageEvictingAConversation(benchmark::State& state) {
    Config c;
    c.conversations_cached_max = 4096;
    Room10 users(5001, c, /*join=*/false);
    int peer = 2;
    auto dm = [&] {
        std::string line = "{\"id\":7,\"op\":\"DIRECT_MESSAGE\",\"to\":\"user" +
                           std::to_string(peer) + "\",\"text\":\"hello\"}\n";
        peer = peer == 5001 ? 2 : peer + 1;
        users.core().receive(1, line, users.now_);
        users.drain();
    };
    for (int i = 0; i < 4096; ++i) dm();
    for (auto _ : state) dm();
    state.counters["conversations"] =
        static_cast<double>(users.core().state().conversation_count());
}
BENCHMARK(BM_DirectMessageEvictingAConversation);

// 50 members of one room each pipeline M messages before any batch is committed (the shape
// of a load generator whose senders write everything at once while one batch is on disk):
// the cost per acknowledged message must not grow with M.
void BM_PipelinedFanout(benchmark::State& state) {
    const int members = 50;
    const int per_sender = static_cast<int>(state.range(0));
    Room10 room(members);
    std::string lines;
    for (int i = 0; i < per_sender; ++i) lines += send_line;
    for (auto _ : state) {
        for (int c = 1; c <= members; ++c) room.core().receive(c, lines, room.now_);
        room.drain();
    }
    state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * members * per_sender);
}
BENCHMARK(BM_PipelinedFanout)
    ->ArgName("M")
    ->Arg(100)
    ->Arg(200)
    ->Arg(400)
    ->Arg(800)
    ->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
