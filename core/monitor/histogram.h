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

// A histogram of the last `slots * slot_ms` milliseconds, kept as a ring of slots; old
// slots are cleared lazily when the ring comes round to them.
class WindowHistogram {
  public:
    static constexpr int slots = 6;
    static constexpr int64_t slot_ms = 10'000;

    void record(int64_t value, int64_t now_ms);
    Histogram window(int64_t now_ms) const;

  private:
    std::array<Histogram, slots> ring_{};
    std::array<int64_t, slots> epoch_{};  // which slot-period each slot holds (-1: none)
    bool init_ = false;
};

}  // namespace warren
