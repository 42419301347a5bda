// Named random streams: every actor of a simulated run draws from its own generator, derived
// from (seed, stream name) — "client/regulars/17", "net/client/regulars/17", "store",
// "attacker/message_flood#0", "fault/crash#0". Removing an actor then changes no other
// actor's draws (the precondition for shrinking a failing run), and each stream's draws are
// counted and folded into a digest, so a test or a report can say which streams diverged.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "sim/rng.h"

namespace warren::sim {

// One stream: an Rng whose draws are counted and digested.
class Stream {
  public:
    explicit Stream(uint64_t seed) : rng_(seed) {}
    uint64_t next() {
        uint64_t v = rng_.next();
        ++draws_;
        digest_ = (digest_ ^ v) * 0x100000001B3ULL;
        return v;
    }
    // Uniform in [0, n); n > 0.
    uint64_t below(uint64_t n) { return next() % n; }
    // Uniform in [lo, hi]; lo <= hi.
    int64_t between(int64_t lo, int64_t hi) {
        return lo + static_cast<int64_t>(below(static_cast<uint64_t>(hi - lo) + 1));
    }
    // Uniform in [0, 1).
    double unit() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
    bool chance(double p) { return unit() < p; }
    // A delay: uniform in [lo, hi] when mean <= 0, else lo plus an exponential of that mean,
    // at most hi (a long tail).
    int64_t delay(int64_t lo, int64_t mean, int64_t hi) {
        if (mean <= 0) return between(lo, hi);
        double e = -std::log1p(-unit()) * static_cast<double>(mean);
        return std::min(hi, lo + static_cast<int64_t>(e));
    }
    uint64_t draws() const { return draws_; }
    uint64_t digest() const { return digest_; }

  private:
    Rng rng_;
    uint64_t draws_ = 0;
    uint64_t digest_ = 0xCBF29CE484222325ULL;
};

class Streams {
  public:
    explicit Streams(uint64_t seed) : seed_(seed) {}
    // The stream called `name`, made on first use. References stay valid for the run.
    Stream& operator[](std::string_view name) {
        auto it = streams_.find(name);
        if (it == streams_.end())
            it = streams_.emplace(std::string(name), Stream(derive(seed_, name))).first;
        return it->second;
    }
    const std::map<std::string, Stream, std::less<>>& all() const { return streams_; }

    // FNV-1a of the name, mixed into the seed: nearby seeds and similar names give unrelated
    // streams (Rng's constructor runs splitmix64 over the result).
    static uint64_t derive(uint64_t seed, std::string_view name) {
        uint64_t h = 0xCBF29CE484222325ULL;
        for (char c : name) h = (h ^ static_cast<uint8_t>(c)) * 0x100000001B3ULL;
        return seed * 0x9E3779B97F4A7C15ULL ^ h;
    }

  private:
    uint64_t seed_;
    std::map<std::string, Stream, std::less<>> streams_;
};

}  // namespace warren::sim
