#include "core/txn/transactions.h"

#include <algorithm>

#include "core/chaos.h"

namespace warren {

Transactions::Transactions(const Config& config, Entropy& entropy, Monitor& monitor,
                           Outputs& outputs)
    : config_(config),
      entropy_(entropy),
      monitor_(monitor),
      outputs_(outputs),
      batches_(config.batch_mutations_max, config.batches_queued_max),
      breaker_(config.breaker_failures_max, config.breaker_open_ms) {}

std::optional<Error> Transactions::write_refusal(Time now) const {
    if (corrupt_)
        return Error{ErrorCode::unavailable,
                     "storage is corrupt; writes are stopped until an operator repairs it",
                     {},
                     config_.breaker_open_ms};
    std::optional<int64_t> wait = breaker_.refuse_for(now.mono_us, !batches_.empty());
    if (!wait && !batches_.full()) return std::nullopt;
    if (wait)
        return Error{ErrorCode::unavailable,
                     "storage unavailable; nothing was changed",
                     {},
                     std::max<int64_t>(ms_ceil(*wait), 1)};
    return Error{ErrorCode::unavailable, "server busy; try again", {}, config_.retry_after_ms};
}

bool Transactions::writable(Time now) const {
    return !corrupt_ && !breaker_.refuse_for(now.mono_us, !batches_.empty()) && !batches_.full();
}

Batch& Transactions::open(Time now) {
    WARREN_CHECK(writable(now));
    return batches_.open();
}

// Security rows ride in the open batch without an undo: memory keeps the block whatever
// storage does (the server fails closed). A batch that fails hands its rows back.
void Transactions::persist(Mutation m, Time now) {
    WARREN_CHECK(!check_record(m).has_value());
    backlog_.push_back(std::move(m));
    while (backlog_.size() > config_.security_backlog_max) {
        backlog_.pop_front();
        ++backlog_dropped_;
    }
    flush_backlog(now);
}

void Transactions::flush_backlog(Time now) {
    if (backlog_.empty() || !writable(now)) return;
    Batch& b = batches_.open();
    for (auto& m : backlog_) {
        b.security_rows.push_back(m);
        b.mutations.push_back(std::move(m));
    }
    backlog_.clear();
}

// Up to commits_in_flight_max batches in flight, sent in order, each naming the one sent
// before it. Nothing is sent past a batch waiting for its retry, nor past one storage will
// report aborted (it goes again first, once that report is in, so a batch never has two
// sends in flight). The open batch goes at once when nothing is in flight, and beside ones
// in flight once it holds commit_pipeline_min changes (config.h says why); sent, it takes no
// more changes. With nothing in flight, a new batch that follows the one before by less than
// commit_coalesce_us waits for the rest of that window (held()).
void Transactions::send_ready(Time now) {
    size_t in_flight = 0;
    BatchId before = 0;
    for (Batch& b : batches_) {
        if (b.in_flight) {
            if (b.doomed) return;
            ++in_flight;
            before = b.id;
            continue;
        }
        if (b.retry_at_us || in_flight >= config_.commits_in_flight_max) return;
        if (!b.sent && in_flight > 0 && b.mutations.size() < config_.commit_pipeline_min &&
            !WARREN_CHAOS(send_early))
            return;
        if (!b.sent && in_flight == 0 && held(b, now)) return;
        if (!b.sent) {
            last_new_us_ = now.mono_us;
            b.sent = std::make_shared<const std::vector<Mutation>>(std::move(b.mutations));
            b.mutations.clear();
        }
        send(b, before, now);
        ++in_flight;
        before = b.id;
    }
}

bool Transactions::held(const Batch& b, Time now) const {
    return config_.commit_coalesce_us > 0 && last_new_us_ && !b.mutations.empty() &&
           b.mutations.size() < config_.commit_pipeline_min &&
           now.mono_us < *last_new_us_ + config_.commit_coalesce_us;
}

void Transactions::send(Batch& b, BatchId after, Time now) {
    ++b.attempts;
    b.sent_us = now.mono_us;
    b.retry_at_us.reset();
    b.in_flight = true;
    outputs_.emplace_back(Commit{b.id, b.sent, after});
}

void Transactions::tick(Time now) {
    // The oldest pending batch builds on nothing pending.
    if (Batch* b = batches_.front(); b && b->retry_at_us && *b->retry_at_us <= now.mono_us)
        send(*b, 0, now);
}

std::optional<int64_t> Transactions::deadline(Time now) const {
    std::optional<int64_t> at;
    if (const Batch* b = batches_.front(); b && b->retry_at_us) at = *b->retry_at_us;
    // The front batch unsent means nothing is in flight: it may wait for the commit window.
    if (const Batch* b = batches_.front(); b && !b->sent && !b->retry_at_us && held(*b, now))
        at = *last_new_us_ + config_.commit_coalesce_us;
    // Security rows waiting for storage: try again when the breaker lets a write through, or
    // a while after now if it let one through already (the half-open probe is in flight, or
    // the queue is full). Never at or before now: the driver's timer would fire again at
    // once, forever, since a tick changes none of that.
    if (!backlog_.empty()) {
        std::optional<int64_t> reopens = breaker_.deadline();
        int64_t t = reopens && *reopens > now.mono_us
                        ? *reopens
                        : now.mono_us + us_from_ms(config_.retry_after_ms);
        at = at ? std::min(*at, t) : t;
    }
    return at;
}

Transactions::Settled Transactions::committed(BatchId batch, const Status& status, Time now) {
    Batch* b = batches_.find(batch);
    // Rolled back while in flight (a batch before it failed): storage did not apply it.
    if (!b || !b->in_flight) return {};
    b->in_flight = false;
    if (status.code() == Status::Code::aborted) {
        // Not tried, since the batch before it failed: send_ready sends it again after that
        // one. An abort is no attempt of its own.
        b->doomed = false;
        --b->attempts;
        return {};
    }
    // Storage reports in the order it was sent: every batch before this one is durable.
    WARREN_CHECK(batches_.front() == b && !b->retry_at_us);
    monitor_.commit_done(status.is_ok(), now.mono_us - b->sent_us, b->sent->size(), now.mono_us);
    Settled out;
    if (status.is_ok()) {
        out.durable = batches_.pop_committed(batch);
        breaker_.on_success();
        ++stats_.batches_committed;
        stats_.mutations_committed += out.durable->sent->size();
        return out;
    }
    if (status.code() == Status::Code::corrupt) corrupt_ = true;
    if (status.code() == Status::Code::transient && b->attempts < config_.commit_attempts_max) {
        // Full jitter: uniform in [0, min(cap, base * 2^(attempt-1))].
        int64_t ceiling_us = us_from_ms(std::min<int64_t>(
            config_.commit_backoff_cap_ms,
            config_.commit_backoff_base_ms << std::min<uint32_t>(b->attempts - 1, 20)));
        uint64_t r = 0;
        entropy_.fill({reinterpret_cast<uint8_t*>(&r), sizeof r});
        b->retry_at_us =
            now.mono_us + static_cast<int64_t>(r % static_cast<uint64_t>(ceiling_us + 1));
        ++stats_.commit_retries;
        // The batches sent after it build on it: storage reports each aborted.
        for (Batch& later : batches_)
            if (later.in_flight) later.doomed = true;
        return out;
    }
    return fail_all(now);
}

// The failed batch and every later one are undone newest first; their requests changed
// nothing.
Transactions::Settled Transactions::fail_all(Time now) {
    breaker_.on_failure(now.mono_us);
    Settled out;
    out.rolled_back = batches_.take_all();
    stats_.batches_failed += out.rolled_back.size();
    for (auto it = out.rolled_back.rbegin(); it != out.rolled_back.rend(); ++it) {
        for (auto u = it->undo.rbegin(); u != it->undo.rend(); ++u) (*u)();
        // Newest batch first, each put in front: the backlog keeps the original order.
        backlog_.insert(backlog_.begin(), it->security_rows.begin(), it->security_rows.end());
    }
    int64_t retry_after = std::max<int64_t>(
        config_.retry_after_ms, ms_ceil(breaker_.refuse_for(now.mono_us, false).value_or(0)));
    out.unavailable =
        Error{ErrorCode::unavailable, "storage unavailable; nothing was changed", {}, retry_after};
    return out;
}

}  // namespace warren
