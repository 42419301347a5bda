// Do searches delay commits? One large room in a real SQLite file (WAL); one thread commits
// one message at a time, as warrend's storage thread does, while `searchers` threads keep a
// search each in flight: two words that are each in half the room and never together, so
// every search walks both posting lists (the costliest kind a member can send).
//
// Three shapes, each for `seconds`:
//   alone    commits only: the floor
//   shared   searches and commits in one queue on the writing connection, no time budget
//            (how warrend served reads before it had a reader connection)
//   reader   searches on a read-only connection and thread of their own, each stopped at
//            the time budget (how warrend serves them now)
// Prints commit latency percentiles and searches answered per shape.
//   warren-bench-search [--messages N] [--seconds S] [--searchers K] [--sync normal|full]
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <functional>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "store/store.h"

namespace {

using namespace warren;
using Clock = std::chrono::steady_clock;

// One worker thread draining a FIFO of jobs: a storage thread.
class Worker {
  public:
    Worker() : thread_([this] { run(); }) {}
    ~Worker() {
        {
            std::lock_guard lock(mu_);
            stop_ = true;
        }
        cv_.notify_one();
        thread_.join();
    }
    void push(std::function<void()> job) {
        {
            std::lock_guard lock(mu_);
            jobs_.push_back(std::move(job));
        }
        cv_.notify_one();
    }

  private:
    void run() {
        for (;;) {
            std::function<void()> job;
            {
                std::unique_lock lock(mu_);
                cv_.wait(lock, [this] { return stop_ || !jobs_.empty(); });
                if (jobs_.empty()) return;
                job = std::move(jobs_.front());
                jobs_.pop_front();
            }
            job();
        }
    }
    std::mutex mu_;
    std::condition_variable cv_;
    std::deque<std::function<void()>> jobs_;
    bool stop_ = false;
    std::thread thread_;
};

struct Options {
    int messages = 200'000;
    double seconds = 3;
    int searchers = 4;
    Synchronous sync = Synchronous::normal;
};

struct Outcome {
    std::vector<double> commit_us;
    int searches = 0;
    int too_costly = 0;
};

std::unique_ptr<Store> open_store(const std::string& path, Synchronous sync, Access access) {
    auto st = Store::open(path, sync, access);
    if (!st.is_ok()) {
        std::fprintf(stderr, "open %s: %s\n", path.c_str(), st.status().message().c_str());
        std::exit(1);
    }
    return std::move(st.value());
}

void fill(Store& s, int messages) {
    std::vector<Mutation> m = {UserRow{1, "writer", "$p", 1}, RoomRow{1, "big", "", false, 1, 1},
                               MemberRow{1, 1, 1}};
    for (MessageId id = 1; id <= messages; ++id) {
        m.push_back(MessageRow{id, 1, 1,
                               std::string(id % 2 ? "apple" : "banana") +
                                   " an ordinary message number " + std::to_string(id),
                               id, 0, 0});
        if (m.size() >= 5000) {
            if (!s.apply(m).is_ok()) std::exit(1);
            m.clear();
        }
    }
    if (!m.empty() && !s.apply(m).is_ok()) std::exit(1);
    if (!s.index_pending(UINT32_MAX).is_ok()) std::exit(1);
}

double percentile(std::vector<double> v, double p) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    return v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())))];
}

enum class Shape { alone, shared, reader };

Outcome run(Shape shape, Store& writer, Store& reader, const Options& o, MessageId& next_id) {
    Outcome out;
    SearchQuery q;
    q.match = "\"apple\" \"banana\"";
    q.rooms = {1};
    q.limit = 50;
    StoredQuery sq;
    sq.kind = StoredQuery::Kind::search;
    sq.search = q;
    std::atomic<bool> stop{false};
    std::atomic<int> searches{0}, costly{0};
    {
        Worker storage;
        std::unique_ptr<Worker> reads;
        if (shape == Shape::reader) reads = std::make_unique<Worker>();
        Store& searched = shape == Shape::reader ? reader : writer;
        Worker& search_queue = shape == Shape::reader ? *reads : storage;
        std::vector<std::thread> searchers;
        if (shape != Shape::alone)
            for (int i = 0; i < o.searchers; ++i)
                searchers.emplace_back([&] {
                    while (!stop) {
                        std::promise<void> done;
                        search_queue.push([&] {
                            QueryRows r = searched.run(sq);
                            ++searches;
                            if (r.too_costly) ++costly;
                            done.set_value();
                        });
                        done.get_future().wait();
                    }
                });
        auto end = Clock::now() + std::chrono::duration<double>(o.seconds);
        while (Clock::now() < end) {
            MessageId id = next_id++;
            std::promise<void> done;
            auto t0 = Clock::now();
            storage.push([&] {
                std::vector<Mutation> m = {MessageRow{id, 1, 1, "a fresh message", id, 0, 0}};
                if (!writer.apply(m).is_ok()) std::exit(1);
                done.set_value();
            });
            done.get_future().wait();
            out.commit_us.push_back(
                std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
        }
        stop = true;
        for (auto& t : searchers) t.join();
    }
    out.searches = searches;
    out.too_costly = costly;
    return out;
}

}  // namespace

int main(int argc, char** argv) {
    Options o;
    for (int i = 1; i + 1 < argc; i += 2) {
        std::string k = argv[i], v = argv[i + 1];
        if (k == "--messages")
            o.messages = std::stoi(v);
        else if (k == "--seconds")
            o.seconds = std::stod(v);
        else if (k == "--searchers")
            o.searchers = std::stoi(v);
        else if (k == "--sync")
            o.sync = v == "full" ? Synchronous::full : Synchronous::normal;
        else {
            std::fprintf(stderr, "unknown option %s\n", k.c_str());
            return 2;
        }
    }
    auto dir = std::filesystem::temp_directory_path() /
               ("warren-bench-search-" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    std::string path = (dir / "w.db").string();
    auto writer = open_store(path, o.sync, Access::read_write);
    auto t0 = Clock::now();
    fill(*writer, o.messages);
    auto reader = open_store(path, o.sync, Access::read_only);
    std::printf("room of %d messages filled in %.1f s; %d searchers; sync=%s\n", o.messages,
                std::chrono::duration<double>(Clock::now() - t0).count(), o.searchers,
                o.sync == Synchronous::full ? "full" : "normal");
    std::printf("%-8s %9s %10s %10s %10s %10s %9s %10s\n", "shape", "commits", "p50_us", "p99_us",
                "max_us", "searches", "costly", "search/s");
    MessageId next_id = o.messages + 1;
    for (auto [shape, name] : {std::pair{Shape::alone, "alone"}, std::pair{Shape::shared, "shared"},
                               std::pair{Shape::reader, "reader"}}) {
        // "shared" is the shape without a budget; the others run with the default one.
        writer->set_query_time_max(shape == Shape::shared ? std::chrono::milliseconds(3'600'000)
                                                          : std::chrono::milliseconds(250));
        Outcome r = run(shape, *writer, *reader, o, next_id);
        std::printf("%-8s %9zu %10.0f %10.0f %10.0f %10d %9d %10.1f\n", name, r.commit_us.size(),
                    percentile(r.commit_us, 0.5), percentile(r.commit_us, 0.99),
                    percentile(r.commit_us, 1.0), r.searches, r.too_costly, r.searches / o.seconds);
    }
    writer.reset();
    reader.reset();
    std::filesystem::remove_all(dir);
    return 0;
}
