// BatchQueue: the atomic units on their way to storage, in commit order (group commit).
//
// Each state-changing request applies its mutations to memory at once, records the undo
// actions, and appends its reply and events to the newest batch; they are released only when
// that batch is reported durable. Read replies are appended to the newest batch too (a read
// barrier), so a client never sees state that is not yet durable. Up to
// commits_in_flight_max batches are in flight, oldest first; the newest fills behind them,
// which makes the batches grow under load and stay small when idle. Batches become durable
// in order, so each one's replies and events are released after those of every batch
// before it. On failure the failed batch and every later one are undone, newest first.
#pragma once

#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/chat/records.h"
#include "core/chat/state.h"
#include "core/ops/events.h"
#include "core/ops/replies.h"

namespace warren {

struct PendingReply {
    ConnId conn = 0;
    uint64_t slot = 0;       // the connection's reply slot, so replies keep request order
    int64_t request_id = 0;  // the id it answers
    ReplyBody body;
};

// An admin action's answer, released when its batch commits.
struct AdminAnswer {
    uint64_t id = 0;
    int status = 200;
    std::string body;
};

struct Batch {
    BatchId id = 0;
    std::vector<Mutation> mutations;
    std::vector<Undo> undo;
    std::vector<PendingReply> replies;
    std::vector<Addressed> events;
    size_t owed_bytes = 0;   // what its events were estimated to cost (Connections::owe)
    bool in_flight = false;  // sent, and its outcome not known yet
    // In flight, but an earlier batch failed: storage will report it aborted, and it is sent
    // again only then (so no two sends of one batch are ever in flight).
    bool doomed = false;
    // Once sent, the mutations move here so a retry can send the very same batch again; a
    // sent batch takes no more changes.
    std::shared_ptr<const std::vector<Mutation>> sent;
    uint32_t attempts = 0;  // commits tried so far
    int64_t sent_us = 0;    // mono time of the latest attempt (commit latency)
    // Admin actions answered once the batch is durable (or with 503 if it fails).
    std::vector<AdminAnswer> admin_replies;
    // Automatic security rows (blocks, suspensions, audit) in this batch: if it fails they go
    // back to the backlog instead of being lost.
    std::vector<Mutation> security_rows;
    std::optional<int64_t> retry_at_us;  // waiting to be retried (mono)
};

class BatchQueue {
  public:
    BatchQueue(size_t mutations_max, size_t queued_max)
        : mutations_max_(mutations_max), queued_max_(queued_max) {}

    // True when no more state-changing requests may be admitted (answer UNAVAILABLE).
    bool full() const;
    // The batch a new state-changing request goes into; starts a new one when needed.
    Batch& open();
    // The newest batch, or nullptr when nothing is pending (reads may answer at once).
    Batch* newest() { return batches_.empty() ? nullptr : &batches_.back(); }
    // The pending batch with this id, or nullptr (rolled back meanwhile).
    Batch* find(BatchId id);
    std::deque<Batch>::iterator begin() { return batches_.begin(); }
    std::deque<Batch>::iterator end() { return batches_.end(); }
    // Removes and returns the front batch, which must have id `id` (it is durable).
    Batch pop_committed(BatchId id);
    // A released batch back, its vectors cleared: the next new batch reuses their storage
    // instead of growing its own from nothing, element moves and all (one kept).
    void recycle(Batch&& done);
    // Removes and returns every batch (for rollback after a failure), oldest first.
    std::deque<Batch> take_all();
    bool empty() const { return batches_.empty(); }
    size_t size() const { return batches_.size(); }
    // The stamp of the oldest event waiting in a batch (UINT64_MAX: none waits).
    uint64_t first_event_stamp() const;
    // The oldest pending batch, if any.
    Batch* front() { return batches_.empty() ? nullptr : &batches_.front(); }
    const Batch* front() const { return batches_.empty() ? nullptr : &batches_.front(); }

  private:
    size_t mutations_max_;
    size_t queued_max_;
    BatchId next_id_ = 1;
    std::deque<Batch> batches_;
    std::optional<Batch> spare_;  // recycle()
};

}  // namespace warren
