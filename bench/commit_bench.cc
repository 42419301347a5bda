// Commit throughput through the core and a real SQLite file (WAL): SEND_MESSAGE in a room of
// 10 members, each request acknowledged only after its batch is committed. One thread does
// both the core's work and the commits, so this is a floor for the server, whose storage
// thread overlaps commits with the event loop.
//   BM_CommitThroughput/sync:0|1/per_turn:N
//     sync 0 = synchronous=NORMAL, 1 = FULL; per_turn = requests arriving together (1 =
//     every request is its own commit; 64 = group commit). items_per_second = acknowledged
//     messages per second.
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <filesystem>

#include "core/server.h"
#include "sim/rng.h"
#include "store/store.h"

namespace {

using namespace warren;

class FileRoom {
  public:
    FileRoom(Synchronous sync) {
        dir_ = std::filesystem::temp_directory_path() /
               ("warren-bench-" + std::to_string(::getpid()) + "-" + std::to_string(counter_++));
        std::filesystem::remove_all(dir_);
        std::filesystem::create_directories(dir_);
        auto st = Store::open((dir_ / "w.db").string(), sync);
        WARREN_CHECK(st.is_ok());
        store_ = std::move(st.value());
        auto snap = store_->load(256, 0);
        WARREN_CHECK(snap.is_ok());
        core_ = std::make_unique<Server>(without_abuse_limits(Config{}), entropy_, snap.value());
        for (int i = 1; i <= 10; ++i) {
            core_->connect(i, "127.0.0.1", now_);
            core_->receive(i,
                           "{\"id\":1,\"op\":\"REGISTER\",\"username\":\"user" + std::to_string(i) +
                               "\",\"password\":\"password\"}\n",
                           now_);
            drain();
            core_->receive(i,
                           std::string("{\"id\":2,\"op\":\"") +
                               (i == 1 ? "CREATE_ROOM" : "JOIN_ROOM") +
                               "\",\"room\":\"general\"}\n",
                           now_);
            drain();
        }
    }
    ~FileRoom() {
        core_.reset();
        store_.reset();
        std::filesystem::remove_all(dir_);
    }
    void drain() {
        for (;;) {
            std::vector<std::function<void()>> done;
            while (auto o = core_->poll()) {
                if (auto* s = std::get_if<Send>(&*o)) {
                    for (ConnId to : s->to)
                        done.push_back(
                            [this, to, n = s->bytes->size()] { core_->sent(to, n, now_); });
                } else if (auto* c = std::get_if<Commit>(&*o)) {
                    done.push_back([this, b = c->batch, m = c->mutations] {
                        Status st = store_->apply(*m);
                        WARREN_CHECK(st.is_ok());
                        core_->committed(b, st, now_);
                    });
                } else if (auto* h = std::get_if<Hash>(&*o)) {
                    done.push_back([this, j = h->job] {
                        core_->hashed(j, HashResult{true, false, "$b$"}, now_);
                    });
                }
            }
            if (done.empty()) return;
            for (auto& fn : done) fn();
        }
    }
    Server& core() { return *core_; }
    Time now_{1'000'000, 1764000000000};

  private:
    static inline int counter_ = 0;
    std::filesystem::path dir_;
    sim::SeededEntropy entropy_{3};
    std::unique_ptr<Store> store_;
    std::unique_ptr<Server> core_;
};

void BM_CommitThroughput(benchmark::State& state) {
    FileRoom room(state.range(0) ? Synchronous::full : Synchronous::normal);
    int per_turn = static_cast<int>(state.range(1));
    std::string lines;
    for (int i = 0; i < per_turn; ++i)
        lines +=
            "{\"id\":7,\"op\":\"SEND_MESSAGE\",\"room\":\"general\",\"text\":\"a message "
            "of ordinary length for a busy chat room\"}\n";
    for (auto _ : state) {
        room.core().receive(1, lines, room.now_);
        room.drain();
    }
    state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * per_turn);
}
BENCHMARK(BM_CommitThroughput)
    ->ArgNames({"sync", "per_turn"})
    ->Args({0, 1})
    ->Args({0, 64})
    ->Args({1, 1})
    ->Args({1, 64})
    ->UseRealTime()
    ->MinTime(1.0);

}  // namespace

BENCHMARK_MAIN();
