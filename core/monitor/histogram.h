// Histogram: counts of non-negative values (latencies in microseconds, batch sizes) in fixed
// log-linear buckets from 1 to 60,000,000, with percentiles. Recording is a binary search
// over ~70 bounds and three adds: a few nanoseconds. A percentile is reported as the upper
// bound of the bucket it falls in, or the largest value seen if that is smaller.
//
// MinuteRing and the window types keep the last minute in six 10 s slots; their time
// arguments are mono milliseconds (a slot is far coarser than a millisecond).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

namespace warren {

class Histogram {
  public:
    static constexpr std::array<int64_t, 69> bounds = {
        1,        2,        3,        4,        5,        6,       8,       10,      12,
        15,       20,       25,       30,       40,       50,      60,      80,      100,
        120,      150,      200,      250,      300,      400,     500,     600,     800,
        1000,     1200,     1500,     2000,     2500,     3000,    4000,    5000,    6000,
        8000,     10000,    12000,    15000,    20000,    25000,   30000,   40000,   50000,
        60000,    80000,    100000,   150000,   200000,   250000,  300000,  400000,  500000,
        750000,   1000000,  1500000,  2000000,  2500000,  3000000, 5000000, 7500000, 10000000,
        15000000, 20000000, 25000000, 30000000, 45000000, 60000000};
    // Whether bounds[i] is one of the buckets Prometheus is shown (a 1-2.5-5 ladder).
    static constexpr bool exposed(int64_t bound) {
        for (int64_t decade = 1; decade <= 10'000'000; decade *= 10)
            if (bound == decade || bound == 5 * decade || bound == 25 * decade / 10) return true;
        return bound == 30'000'000 || bound == 60'000'000;
    }

    void record(int64_t value);
    void merge(const Histogram& other);
    void clear() { *this = Histogram{}; }
    // p in [0, 1]; 0 when empty.
    int64_t percentile(double p) const;
    uint64_t count() const { return count_; }
    int64_t sum() const { return sum_; }
    int64_t max() const { return max_; }
    // Count of values <= bounds[i] (cumulative), for the Prometheus exposition.
    uint64_t cumulative(size_t i) const;

  private:
    std::array<uint64_t, bounds.size() + 1> counts_{};  // the last one: above every bound
    uint64_t count_ = 0;
    int64_t sum_ = 0;
    int64_t max_ = 0;
};

// The last minute of something (a histogram, a count) as a ring of six 10 s slots; a slot
// is reset lazily when the ring comes round to it.
template <typename T>
class MinuteRing {
  public:
    static constexpr int slots = 6;
    static constexpr int64_t slot_ms = 10'000;

    MinuteRing() { epoch_.fill(-1); }
    // The slot for `now_ms`, reset if it last held an older period.
    T& current(int64_t now_ms) {
        int64_t period = now_ms / slot_ms;
        auto i = static_cast<size_t>(period % slots);
        if (epoch_[i] != period) {
            ring_[i] = T{};
            epoch_[i] = period;
        }
        return ring_[i];
    }
    // Calls f on every slot within the last minute of `now_ms`.
    template <typename F>
    void each(int64_t now_ms, F&& f) const {
        int64_t period = now_ms / slot_ms;
        for (size_t i = 0; i < ring_.size(); ++i)
            if (epoch_[i] > period - slots && epoch_[i] <= period) f(ring_[i]);
    }

  private:
    std::array<T, slots> ring_{};
    std::array<int64_t, slots> epoch_{};  // which period each slot holds (-1: none)
};

class WindowHistogram {
  public:
    void record(int64_t value, int64_t now_ms) { ring_.current(now_ms).record(value); }
    Histogram window(int64_t now_ms) const {
        Histogram h;
        ring_.each(now_ms, [&](const Histogram& slot) { h.merge(slot); });
        return h;
    }

  private:
    MinuteRing<Histogram> ring_;
};

class WindowCounter {
  public:
    void add(uint64_t n, int64_t now_ms) { ring_.current(now_ms) += n; }
    uint64_t sum(int64_t now_ms) const {
        uint64_t n = 0;
        ring_.each(now_ms, [&](uint64_t slot) { n += slot; });
        return n;
    }

  private:
    MinuteRing<uint64_t> ring_;
};

}  // namespace warren
