#include "core/txn/breaker.h"

namespace warren {

namespace {
// How long a write waits while the half-open probe is out.
constexpr int64_t probe_wait_us = 100'000;
}  // namespace

Breaker::State Breaker::state(int64_t now_us) const {
    if (!open_) return State::closed;
    return now_us < open_until_us_ ? State::open : State::half_open;
}

std::optional<int64_t> Breaker::refuse_for(int64_t now_us, bool batch_pending) const {
    switch (state(now_us)) {
        case State::closed:
            return std::nullopt;
        case State::open:
            return open_until_us_ - now_us;
        case State::half_open:
            // Only the probe batch may exist; others wait for its verdict.
            if (!batch_pending) return std::nullopt;
            return probe_wait_us;
    }
    return std::nullopt;
}

void Breaker::on_success() {
    consecutive_failures_ = 0;
    open_ = false;
}

void Breaker::on_failure(int64_t now_us) {
    ++consecutive_failures_;
    bool probe_failed = open_ && now_us >= open_until_us_;
    if (probe_failed || (!open_ && consecutive_failures_ >= failures_max_)) {
        open_ = true;
        open_until_us_ = now_us + open_us_;
        ++opened_;
    }
}

std::optional<int64_t> Breaker::deadline() const {
    if (!open_) return std::nullopt;
    return open_until_us_;
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
