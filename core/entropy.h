// Entropy: the only source of unpredictability the core sees (session tokens, jitter).
//
// Production passes a CSPRNG (libsodium randombytes, netadapter/); the simulator passes a
// seeded generator so that a run replays from its seed. fill() must fill the whole span and
// cannot fail.
#pragma once

#include <cstdint>
#include <span>

namespace warren {

class Entropy {
  public:
    virtual ~Entropy() = default;
    virtual void fill(std::span<uint8_t> out) = 0;
};

}  // namespace warren
