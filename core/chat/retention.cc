#include "core/chat/retention.h"

#include <algorithm>

#include "core/outputs.h"
#include "core/validate/rules.h"

namespace warren {

Retention::Retention(const Config& config, ChatState& state) : config_(config), state_(state) {
    enabled_ = config.retention_ms > 0;
    for (const auto& [name, ms] : config.room_retention_ms) {
        by_key_[name_key(name)] = ms;
        enabled_ = enabled_ || ms > 0;
    }
}

std::optional<int64_t> Retention::age_ms(RoomId room) const {
    if (room != 0 && !by_key_.empty()) {
        if (const Room* r = state_.room(room)) {
            if (auto it = by_key_.find(name_key(r->name)); it != by_key_.end()) {
                if (it->second > 0) return it->second;
                return std::nullopt;
            }
        }
    }
    if (config_.retention_ms > 0) return config_.retention_ms;
    return std::nullopt;
}

std::optional<int64_t> Retention::cutoff(RoomId room, int64_t now_wall_ms) const {
    if (!enabled_) return std::nullopt;
    std::optional<int64_t> age = age_ms(room);
    if (!age) return std::nullopt;
    return now_wall_ms - *age;
}

void Retention::drop_expired(std::vector<MessageRow>& rows, int64_t now_wall_ms) const {
    if (!enabled_) return;
    std::erase_if(rows, [&](const MessageRow& m) {
        std::optional<int64_t> before = cutoff(m.room, now_wall_ms);
        return before && m.ts_ms < *before;
    });
}

std::optional<Prune> Retention::next(Time now) {
    if (!enabled_ || in_flight_ || now.mono_us < next_us_) return std::nullopt;
    Prune p;
    const auto& rooms = state_.rooms();
    for (auto it = rooms.upper_bound(cursor_);
         it != rooms.end() && p.scopes.size() < config_.retention_scopes_max; ++it) {
        cursor_ = it->first;
        if (auto before = cutoff(it->first, now.wall_ms)) p.scopes.push_back({it->first, *before});
    }
    bool rooms_done = rooms.upper_bound(cursor_) == rooms.end();
    if (rooms_done && !dms_visited_ && p.scopes.size() < config_.retention_scopes_max) {
        dms_visited_ = true;
        if (auto before = cutoff(0, now.wall_ms)) p.scopes.push_back({0, *before});
    }
    if (rooms_done && dms_visited_) {
        // The round is over: the next starts at once if this one found anything.
        cursor_ = 0;
        dms_visited_ = false;
        if (!deleted_in_round_) next_us_ = now.mono_us + us_from_ms(config_.retention_interval_ms);
        deleted_in_round_ = false;
    }
    if (p.scopes.empty()) return std::nullopt;
    state_.forget_expired(p.scopes);
    p.id = next_id_++;
    p.limit = config_.retention_batch_max;
    in_flight_ = p.id;
    flight_ = p.scopes;
    return p;
}

void Retention::pruned(uint64_t id, const PruneResult& result, Time now) {
    if (in_flight_ != id) return;
    in_flight_.reset();
    if (!result.ok) {
        // Storage refused: try the same scopes again after a pause.
        ++failures_;
        next_us_ = now.mono_us + us_from_ms(std::min<int64_t>(config_.retention_interval_ms, 5000));
        if (!flight_.empty()) revisit(flight_.front());
        if (!flight_.empty() && flight_.back().room == 0) dms_visited_ = false;
        return;
    }
    uint64_t total = 0;
    for (size_t i = 0; i < result.deleted.size() && i < flight_.size(); ++i) {
        total += result.deleted[i];
        if (total >= config_.retention_batch_max) {
            // The limit stopped it here: this scope may hold more, so it comes first next.
            revisit(flight_[i]);
            break;
        }
    }
    deleted_total_ += total;
    if (total > 0) {
        deleted_in_round_ = true;
        next_us_ = now.mono_us;  // drain the backlog without waiting
    }
}

void Retention::revisit(const PruneScope& scope) {
    if (scope.room == 0)
        dms_visited_ = false;
    else
        cursor_ = scope.room - 1;
}

std::optional<int64_t> Retention::deadline() const {
    if (!enabled_ || in_flight_) return std::nullopt;
    return next_us_;
}

}  // namespace warren
