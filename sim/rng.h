// Rng: the simulator's one source of randomness (xoshiro256**, seeded with splitmix64), and
// SeededEntropy, the core's Entropy for simulated runs. Same seed, same sequence, on every
// platform: nothing here reads a device or a clock.
#pragma once

#include <cstdint>
#include <span>

#include "core/entropy.h"

namespace warren::sim {

class Rng {
  public:
    explicit Rng(uint64_t seed) {
        for (auto& s : s_) {
            seed += 0x9E3779B97F4A7C15ULL;
            uint64_t z = seed;
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
            s = z ^ (z >> 31);
        }
    }
    uint64_t next() {
        uint64_t result = rotl(s_[1] * 5, 7) * 9;
        uint64_t t = s_[1] << 17;
        s_[2] ^= s_[0];
        s_[3] ^= s_[1];
        s_[1] ^= s_[2];
        s_[0] ^= s_[3];
        s_[2] ^= t;
        s_[3] = rotl(s_[3], 45);
        return result;
    }
    // Uniform in [0, n); n > 0.
    uint64_t below(uint64_t n) { return next() % n; }
    // Uniform in [lo, hi].
    int64_t between(int64_t lo, int64_t hi) {
        return lo + static_cast<int64_t>(below(static_cast<uint64_t>(hi - lo + 1)));
    }
    bool chance(double p) { return static_cast<double>(next() >> 11) * 0x1.0p-53 < p; }

  private:
    static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
    uint64_t s_[4];
};

class SeededEntropy final : public Entropy {
  public:
    explicit SeededEntropy(uint64_t seed) : rng_(seed) {}
    void fill(std::span<uint8_t> out) override {
        for (auto& b : out) b = static_cast<uint8_t>(rng_.next());
    }

  private:
    Rng rng_;
};

}  // namespace warren::sim
