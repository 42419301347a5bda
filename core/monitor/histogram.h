// Histogram: counts of millisecond values in fixed log-linear buckets, with percentiles.
// Recording is a binary search over ~40 bounds and three adds: a few nanoseconds. A
// percentile is reported as the upper bound of the bucket it falls in (max for the last).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

namespace warren {

class Histogram {
  public:
    static constexpr std::array<int64_t, 38> bounds = {
        0,   1,   2,    3,    4,    5,    6,    8,    10,    12,    15,    20,   25,
        30,  40,  50,   60,   80,   100,  120,  150,  200,   250,   300,   400,  500,
        600, 800, 1000, 1500, 2000, 3000, 5000, 7500, 10000, 20000, 30000, 60000};

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
