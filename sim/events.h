// The simulators' virtual time and trace: EventQueue runs scheduled work in time order (ties
// in the order scheduled), so a run is a pure function of its seed. Virtual time is in
// microseconds, like the core's monotonic clock; at() and now_ms() are conveniences for
// workloads written in milliseconds. TraceHash folds every input to and output of the core
// into one BLAKE2b digest that names the run.
#pragma once

#include <sodium.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace warren::sim {

class EventQueue {
  public:
    int64_t now_us() const { return now_us_; }
    int64_t now_ms() const { return now_us_ / 1000; }
    // Schedules `fn` at `t_us` (never in the past).
    void at_us(int64_t t_us, std::function<void()> fn) {
        uint32_t slot;
        if (free_.empty()) {
            slot = static_cast<uint32_t>(fns_.size());
            fns_.push_back(std::move(fn));
        } else {
            slot = free_.back();
            free_.pop_back();
            fns_[slot] = std::move(fn);
        }
        queue_.push_back(Event{std::max(t_us, now_us_), seq_++, slot});
        std::push_heap(queue_.begin(), queue_.end(), std::greater<>{});
    }
    // Schedules `fn` at millisecond `t_ms`.
    void at(int64_t t_ms, std::function<void()> fn) { at_us(t_ms * 1000, std::move(fn)); }
    // Runs events until none is left, the next one is later than until_ms, or stop().
    void run(int64_t until_ms = INT64_MAX / 1000) {
        stopped_ = false;
        while (!stopped_ && !queue_.empty() && queue_.front().t <= until_ms * 1000) {
            std::pop_heap(queue_.begin(), queue_.end(), std::greater<>{});
            Event e = queue_.back();
            queue_.pop_back();
            now_us_ = e.t;
            // Moved out, not copied (a copy of each closure was an allocation per event), and
            // its slot freed before it runs: it may schedule more.
            std::function<void()> fn = std::move(fns_[e.slot]);
            free_.push_back(e.slot);
            fn();
        }
    }

    // Ends the current run() after the event that calls it.
    void stop() { stopped_ = true; }

  private:
    // The heap holds small records; the closures stay put in slots (moving a std::function
    // at every heap step was a tenth of a run).
    struct Event {
        int64_t t;  // µs
        uint64_t seq;
        uint32_t slot;
        bool operator>(const Event& o) const { return t != o.t ? t > o.t : seq > o.seq; }
    };
    std::vector<Event> queue_;  // a binary heap, earliest first
    std::vector<std::function<void()>> fns_;
    std::vector<uint32_t> free_;
    uint64_t seq_ = 0;
    int64_t now_us_ = 0;
    bool stopped_ = false;
};

class TraceHash {
  public:
    TraceHash() { crypto_generichash_init(&state_, nullptr, 0, 32); }
    void add(std::string_view tag, uint64_t a, int64_t at, std::string_view bytes = {}) {
        // The tag, a zero byte, the two numbers as 8 bytes each (their text was a twentieth of
        // a run's time), then the bytes: one stream, the prefix put together on the stack, in
        // one update: every input and output of a run passes here.
        char head[48 + 1 + 16];
        size_t n = std::min(tag.size(), size_t{48});
        std::memcpy(head, tag.data(), n);
        head[n++] = '\0';
        std::memcpy(head + n, &a, sizeof a);
        n += sizeof a;
        std::memcpy(head + n, &at, sizeof at);
        n += sizeof at;
        update(std::string_view(head, n));
        if (!bytes.empty()) update(bytes);
    }
    // The digest in hex; call once, at the end of the run.
    std::string hex() {
        flush();
        uint8_t digest[32];
        crypto_generichash_final(&state_, digest, sizeof digest);
        static constexpr char digits[] = "0123456789abcdef";
        std::string out;
        for (uint8_t b : digest) {
            out.push_back(digits[b >> 4]);
            out.push_back(digits[b & 0xF]);
        }
        return out;
    }

  private:
    // The stream goes to BLAKE2b in blocks of a few KB: the digest of a stream does not depend
    // on how it is cut, and one update per input was a tenth of a run's time.
    void update(std::string_view s) {
        if (pending_.size() + s.size() > block_bytes) flush();
        if (s.size() >= block_bytes)
            crypto_generichash_update(&state_, reinterpret_cast<const uint8_t*>(s.data()),
                                      s.size());
        else
            pending_.append(s);
    }
    void flush() {
        crypto_generichash_update(&state_, reinterpret_cast<const uint8_t*>(pending_.data()),
                                  pending_.size());
        pending_.clear();
    }
    static constexpr size_t block_bytes = 8192;
    std::string pending_;
    crypto_generichash_state state_{};
};

}  // namespace warren::sim
