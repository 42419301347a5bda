// Transactions: the write path from mutations in memory to durable storage. Owns the batch
// queue (group commit, up to commits_in_flight_max batches in flight, pipelined: each Commit
// names the one before it, and storage applies none whose predecessor did not land), the
// retry of transient failures with exponential backoff and full jitter, the rollback of
// failed batches (every later batch too, newest first), the circuit breaker, and the
// backlog of security rows that wait while
// storage refuses writes. It emits Commit outputs; what a durable or failed batch releases
// (replies, events, admin answers) goes back to the caller as values. Time in mono µs.
// A commit that finds the database corrupt stops every later write until the process is
// restarted (after an operator repairs or restores it): guessing on a corrupt file could only
// make it worse. Reads go on.
#pragma once

#include <cstdint>
#include <deque>
#include <optional>

#include "core/config.h"
#include "core/entropy.h"
#include "core/monitor/monitor.h"
#include "core/outputs.h"
#include "core/txn/batches.h"
#include "core/txn/breaker.h"

namespace warren {

class Transactions {
  public:
    struct Stats {
        uint64_t batches_committed = 0;
        uint64_t batches_failed = 0;  // rolled back (permanent failure or out of retries)
        uint64_t commit_retries = 0;
        uint64_t mutations_committed = 0;
        uint64_t writes_refused = 0;  // refused while the breaker was open or queues full
    };
    // What a commit completion settled.
    struct Settled {
        std::optional<Batch> durable;   // committed: release its replies and events
        std::deque<Batch> rolled_back;  // failed and undone: answer them UNAVAILABLE
        Error unavailable;              // the answer for rolled-back requests
    };

    Transactions(const Config& config, Entropy& entropy, Monitor& monitor, Outputs& outputs);

    // UNAVAILABLE with retry_after_ms when no state change may start now (breaker open,
    // queues full); nullopt when writes may go ahead.
    std::optional<Error> write_refusal(Time now) const;
    bool writable(Time now) const;
    void count_refused() { ++stats_.writes_refused; }
    // The batch the next change goes into (writable() must hold).
    Batch& open(Time now);
    // The newest pending batch (the read barrier), or nullptr when nothing is pending.
    Batch* newest() { return batches_.newest(); }
    bool idle() const { return batches_.empty(); }
    // The stamp of the oldest event waiting for its batch (UINT64_MAX: none).
    uint64_t first_event_stamp() const { return batches_.first_event_stamp(); }
    size_t queued() const { return batches_.size(); }

    // A security row (block, suspension, audit): persisted with the next batch, or kept in
    // the bounded backlog while storage refuses writes (the oldest dropped past its bound).
    void persist(Mutation m, Time now);
    void flush_backlog(Time now);
    // Sends, oldest first, the batches that may go now (see transactions.cc).
    void send_ready(Time now);

    Settled committed(BatchId batch, const Status& status, Time now);
    // A durable batch, once released, lends its vectors to a later one (BatchQueue::recycle).
    void recycle(Batch&& released) { batches_.recycle(std::move(released)); }
    // Sends again a batch whose retry time has come.
    void tick(Time now);
    // The next time tick() has work: a retry, or a backlog waiting for the breaker.
    std::optional<int64_t> deadline(Time now) const;

    const Stats& stats() const { return stats_; }
    bool corrupt() const { return corrupt_; }
    const Breaker& breaker() const { return breaker_; }
    uint64_t security_rows_dropped() const { return backlog_dropped_; }

  private:
    void send(Batch& b, BatchId after, Time now);
    // Whether the unsent batch `b`, with nothing in flight, waits for the commit window.
    bool held(const Batch& b, Time now) const;
    Settled fail_all(Time now);

    const Config& config_;
    Entropy& entropy_;
    Monitor& monitor_;
    Outputs& outputs_;
    BatchQueue batches_;
    Breaker breaker_;
    Stats stats_;
    std::deque<Mutation> backlog_;
    uint64_t backlog_dropped_ = 0;
    bool corrupt_ = false;
    std::optional<int64_t> last_new_us_;  // when a batch was last sent for the first time
};

}  // namespace warren
