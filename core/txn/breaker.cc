#include "core/txn/breaker.h"

namespace warren {

Breaker::State Breaker::state(int64_t now_ms) const {
    if (!open_) return State::closed;
    return now_ms < open_until_ms_ ? State::open : State::half_open;
}

std::optional<int64_t> Breaker::refuse_for(int64_t now_ms, bool batch_pending) const {
    switch (state(now_ms)) {
        case State::closed:
            return std::nullopt;
        case State::open:
            return open_until_ms_ - now_ms;
        case State::half_open:
            // Only the probe batch may exist; others wait for its verdict.
            if (!batch_pending) return std::nullopt;
            return int64_t{100};
    }
    return std::nullopt;
}

void Breaker::on_success() {
    consecutive_failures_ = 0;
    open_ = false;
}

void Breaker::on_failure(int64_t now_ms) {
    ++consecutive_failures_;
    bool probe_failed = open_ && now_ms >= open_until_ms_;
    if (probe_failed || (!open_ && consecutive_failures_ >= failures_max_)) {
        open_ = true;
        open_until_ms_ = now_ms + open_ms_;
        ++opened_;
    }
}

std::optional<int64_t> Breaker::deadline() const {
    if (!open_) return std::nullopt;
    return open_until_ms_;
}

std::string_view breaker_state_name(Breaker::State s) {
    switch (s) {
        case Breaker::State::closed:
            return "closed";
        case Breaker::State::open:
            return "open";
        case Breaker::State::half_open:
            return "half_open";
    }
    return "closed";
}

}  // namespace warren
