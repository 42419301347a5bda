// Breaker: the storage circuit breaker, in injected time (mono microseconds).
//
// closed    -> writes flow; `failures_max` consecutive failed batches open it.
// open      -> writes are refused at once (UNAVAILABLE, retry_after = time left open);
//              reads go on. After `open_ms` it becomes half-open.
// half_open -> one probe batch may be in flight; its success closes the breaker, its failure
//              opens it again for another `open_ms`.
// A failed batch is one that failed permanently or ran out of retries.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace warren {

class Breaker {
  public:
    enum class State { closed, open, half_open };

    Breaker(uint32_t failures_max, int64_t open_ms)
        : failures_max_(failures_max), open_us_(open_ms * 1000) {}

    // nullopt if a write may start now; else how long to wait (µs). `batch_pending`: a batch
    // exists (in flight or queued), which in half-open state is the probe.
    std::optional<int64_t> refuse_for(int64_t now_us, bool batch_pending) const;
    void on_success();
    void on_failure(int64_t now_us);

    State state(int64_t now_us) const;
    uint64_t opened_count() const { return opened_; }
    // When the breaker may next change state by itself (open -> half-open), if it is open.
    std::optional<int64_t> deadline() const;

  private:
    uint32_t failures_max_;
    int64_t open_us_;
    uint32_t consecutive_failures_ = 0;
    bool open_ = false;
    int64_t open_until_us_ = 0;
    uint64_t opened_ = 0;
};

std::string_view breaker_state_name(Breaker::State s);

}  // namespace warren
