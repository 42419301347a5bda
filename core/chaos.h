// Chaos points: places where the core may take a rare but legal path on purpose, so that the
// simulator reaches it in ordinary runs (FoundationDB's BUGGIFY): split a commit batch early,
// miss the history cache, evict a conversation now, shrink a connection's outbound cap,
// report the password hash queue full. Each site is `WARREN_CHAOS(site)`, an expression that
// is true when the point fires.
//
// Like Entropy, the decision comes from outside the core: the simulator installs a Chaos for
// the thread that runs a world (ChaosScope) and decides from a seeded stream, so a run still
// replays from its seed. The shipped binaries are built without WARREN_CHAOS_POINTS
// (CMake option WARREN_CHAOS, on only where tests are built): there every site is the
// constant `false` and none of this exists.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

namespace warren {

enum class ChaosSite : uint8_t {
    split_batch,         // a state change starts a new commit batch though the open one has room
    history_cache_miss,  // a HISTORY page the cache could answer is read from storage
    evict_now,           // opening a conversation evicts the least recently used one first
    shrink_outbound,     // a connection's outbound cap is 4 KiB for this write
    hash_queue_full,     // a LOGIN or REGISTER finds the hash queue full (UNAVAILABLE)
    send_early,          // a small batch goes to storage while others are in flight
};
inline constexpr std::array<std::string_view, 6> chaos_site_names = {
    "split_batch",     "history_cache_miss", "evict_now",
    "shrink_outbound", "hash_queue_full",    "send_early"};

class Chaos {
  public:
    virtual ~Chaos() = default;
    virtual bool fire(ChaosSite site) = 0;
};

#ifdef WARREN_CHAOS_POINTS
namespace chaos_detail {
inline thread_local Chaos* installed = nullptr;
}
// Installs `c` for this thread while it lives (the simulator, around one world's run).
class ChaosScope {
  public:
    explicit ChaosScope(Chaos* c) : before_(chaos_detail::installed) {
        chaos_detail::installed = c;
    }
    ~ChaosScope() { chaos_detail::installed = before_; }
    ChaosScope(const ChaosScope&) = delete;
    ChaosScope& operator=(const ChaosScope&) = delete;

  private:
    Chaos* before_;
};
#define WARREN_CHAOS(site)                \
    (::warren::chaos_detail::installed && \
     ::warren::chaos_detail::installed->fire(::warren::ChaosSite::site))
#else
#define WARREN_CHAOS(site) false
#endif

}  // namespace warren
