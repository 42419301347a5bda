#include "core/txn/batches.h"

#include "core/chaos.h"

namespace warren {

bool BatchQueue::full() const {
    if (batches_.size() < queued_max_) return false;
    const Batch& last = batches_.back();
    return last.sent || last.mutations.size() >= mutations_max_;
}

Batch& BatchQueue::open() {
    WARREN_CHECK(!full());
    if (batches_.empty() || batches_.back().sent ||
        batches_.back().mutations.size() >= mutations_max_ ||
        (!batches_.back().mutations.empty() && WARREN_CHAOS(split_batch))) {
        if (spare_) {
            batches_.push_back(std::move(*spare_));
            spare_.reset();
        } else {
            batches_.emplace_back();
        }
        batches_.back().id = next_id_++;
    }
    return batches_.back();
}

Batch* BatchQueue::find(BatchId id) {
    // Ids rise from front to back, and few batches are pending.
    for (Batch& b : batches_)
        if (b.id == id) return &b;
    return nullptr;
}

Batch BatchQueue::pop_committed(BatchId id) {
    WARREN_CHECK(!batches_.empty() && batches_.front().id == id);
    Batch b = std::move(batches_.front());
    batches_.pop_front();
    return b;
}

void BatchQueue::recycle(Batch&& done) {
    // What a batch holds is bounded by mutations_max_ and the connections' pending limits;
    // a spare far larger than usual is not worth keeping.
    constexpr size_t keep_max = 16384;
    if (spare_ || done.replies.capacity() > keep_max || done.events.capacity() > keep_max ||
        done.undo.capacity() > keep_max)
        return;
    Batch& s = spare_.emplace();
    auto take = [](auto& from, auto& to) {
        from.clear();
        to = std::move(from);
    };
    take(done.undo, s.undo);
    take(done.replies, s.replies);
    take(done.events, s.events);
}

std::deque<Batch> BatchQueue::take_all() {
    std::deque<Batch> all;
    all.swap(batches_);
    return all;
}

uint64_t BatchQueue::first_event_stamp() const {
    // Events go to the newest batch as they are made, so stamps rise from batch to batch.
    for (const Batch& b : batches_)
        if (!b.events.empty()) return b.events.front().stamp;
    return UINT64_MAX;
}

}  // namespace warren
