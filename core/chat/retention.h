// Retention: messages older than the configured age ([retention] days, or a room's own entry)
// leave memory and storage. Every retention_interval_ms the core hands the store one Prune: up
// to retention_scopes_max rooms (visited round robin, direct conversations as one more scope)
// and at most retention_batch_max messages in all, one transaction between the clients'
// batches. While a Prune comes back having deleted anything, the next follows at once, so a
// backlog drains in bounded steps; when nothing is left the pace falls back to the interval.
// A message leaves memory when its room's turn comes in a round (so within about
// retention_interval_ms of its age), and rows read from storage before a Prune reached them
// are dropped on their way in.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/base.h"
#include "core/chat/records.h"
#include "core/chat/state.h"
#include "core/config.h"

namespace warren {

struct Prune;

class Retention {
  public:
    Retention(const Config& config, ChatState& state);

    bool enabled() const { return enabled_; }
    // Messages of `room` (0: direct messages) older than this are expired; nullopt: kept.
    std::optional<int64_t> cutoff(RoomId room, int64_t now_wall_ms) const;
    void drop_expired(std::vector<MessageRow>& rows, int64_t now_wall_ms) const;
    // The Prune to send now, if one is due and none is in flight. Expired messages held in
    // memory for its scopes are forgotten first.
    std::optional<Prune> next(Time now);
    void pruned(uint64_t id, const PruneResult& result, Time now);
    std::optional<int64_t> deadline() const;  // mono µs; nullopt when disabled
    uint64_t deleted_total() const { return deleted_total_; }
    uint64_t failures() const { return failures_; }

  private:
    std::optional<int64_t> age_ms(RoomId room) const;
    // The next Prune starts again at this scope (it may hold more).
    void revisit(const PruneScope& scope);

    const Config& config_;
    ChatState& state_;
    bool enabled_ = false;
    std::map<std::string, int64_t> by_key_;  // room name key -> age (0: kept for ever)
    std::optional<uint64_t> in_flight_;
    std::vector<PruneScope> flight_;  // the scopes of the Prune in flight
    uint64_t next_id_ = 1;
    int64_t next_us_ = 0;
    RoomId cursor_ = 0;          // rooms with ids above this come next
    bool dms_visited_ = false;  // direct messages were in the current round
    bool deleted_in_round_ = false;
    uint64_t deleted_total_ = 0;
    uint64_t failures_ = 0;
};

}  // namespace warren
