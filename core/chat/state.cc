#include "core/chat/state.h"

#include <algorithm>
#include <utility>

#include "core/chaos.h"
#include "core/validate/rules.h"

namespace warren {

void ChatState::load(const Snapshot& snap) {
    auto discard = [](const Undo&) {};
    for (const auto& r : snap.users) discard(apply_user(r));
    for (const auto& r : snap.sessions) discard(apply_session(r));
    for (const auto& r : snap.rooms) discard(apply_room(r));
    for (const auto& r : snap.members) discard(apply_member(r));
    for (const auto& r : snap.recent_messages) discard(apply_message(r));
    for (RoomId id : snap.rooms_with_older)
        if (Room* r = room(id)) r->log.older_on_disk = true;
    for (const auto& [id, u] : users_) next_user_id_ = std::max(next_user_id_, id + 1);
    for (const auto& [id, r] : rooms_) next_room_id_ = std::max(next_room_id_, id + 1);
    next_message_id_ = std::max(next_message_id_, snap.max_message_id + 1);
    committed_through_ = snap.max_message_id;  // everything loaded is durable
    for (const auto& r : snap.invitations) discard(apply_invitation(r));
    for (const auto& r : snap.read_markers) discard(apply_read_marker(r));
    for (const auto& r : snap.certificates) discard(apply_certificate(r));
    next_invitation_id_ = std::max(next_invitation_id_, snap.max_invitation_id + 1);
}

Undo ChatState::apply(const Mutation& m) {
    WARREN_CHECK(!check_record(m).has_value());
    note_references(m);
    return std::visit(
        [this](const auto& r) -> Undo {
            using T = std::decay_t<decltype(r)>;
            if constexpr (std::is_same_v<T, UserRow>)
                return apply_user(r);
            else if constexpr (std::is_same_v<T, GuestRetire>)
                return apply_guest_retire(r);
            else if constexpr (std::is_same_v<T, CertificateRow>)
                return apply_certificate(r);
            else if constexpr (std::is_same_v<T, CertificateDelete>)
                return apply_certificate_delete(r);
            else if constexpr (std::is_same_v<T, SessionRow>)
                return apply_session(r);
            else if constexpr (std::is_same_v<T, SessionDelete>)
                return apply_session_delete(r);
            else if constexpr (std::is_same_v<T, RoomRow>)
                return apply_room(r);
            else if constexpr (std::is_same_v<T, MemberRow>)
                return apply_member(r);
            else if constexpr (std::is_same_v<T, MemberDelete>)
                return apply_member_delete(r);
            else if constexpr (std::is_same_v<T, RoomTopic>)
                return apply_topic(r);
            else if constexpr (std::is_same_v<T, InvitationRow>)
                return apply_invitation(r);
            else if constexpr (std::is_same_v<T, InvitationClose>)
                return apply_invitation_close(r);
            else if constexpr (std::is_same_v<T, MessageEdit>)
                return apply_edit(r);
            else if constexpr (std::is_same_v<T, MessageDelete>)
                return apply_delete(r);
            else if constexpr (std::is_same_v<T, ReactionAdd>)
                return apply_reaction_add(r);
            else if constexpr (std::is_same_v<T, ReactionRemove>)
                return apply_reaction_remove(r);
            else if constexpr (std::is_same_v<T, ReadMarkerRow>)
                return apply_read_marker(r);
            else if constexpr (std::is_same_v<T, MessageRow>)
                return apply_message(r);
            else
                return [] {};  // security rows: core/security keeps their memory state
        },
        m);
}

Undo ChatState::apply_user(const UserRow& r) {
    auto key = name_key(r.name);
    WARREN_CHECK(!users_.contains(r.id) && (r.retired || !user_by_key_.contains(key)));
    User& u = users_[r.id] = User{r.id, r.name, r.phc, r.created_ms, {}, {}};
    u.guest = r.guest;
    u.retired = r.retired;
    if (!r.retired) user_by_key_[key] = r.id;
    return [this, id = r.id, key, retired = r.retired] {
        users_.erase(id);
        if (!retired) user_by_key_.erase(key);
    };
}

Undo ChatState::apply_guest_retire(const GuestRetire& r) {
    auto it = users_.find(r.user);
    WARREN_CHECK(it != users_.end() && it->second.guest && !it->second.retired &&
                 it->second.rooms.empty());
    std::string key = name_key(it->second.name);
    user_by_key_.erase(key);
    if (r.forget) {
        User old = std::move(it->second);
        users_.erase(it);
        return [this, old = std::move(old), key] {
            user_by_key_[key] = old.id;
            users_.emplace(old.id, old);
        };
    }
    it->second.retired = true;
    return [this, id = r.user, key] {
        user(id)->retired = false;
        user_by_key_[key] = id;
    };
}

Undo ChatState::apply_certificate(const CertificateRow& r) {
    auto [it, fresh] = certificates_.try_emplace(r.fingerprint, r);
    WARREN_CHECK(fresh);
    return [this, fp = r.fingerprint] { certificates_.erase(fp); };
}

Undo ChatState::apply_certificate_delete(const CertificateDelete& r) {
    auto it = certificates_.find(r.fingerprint);
    WARREN_CHECK(it != certificates_.end());
    CertificateRow old = it->second;
    certificates_.erase(it);
    return [this, old = std::move(old)] { certificates_.emplace(old.fingerprint, old); };
}

const CertificateRow* ChatState::certificate(const std::string& fingerprint) const {
    auto it = certificates_.find(fingerprint);
    return it == certificates_.end() ? nullptr : &it->second;
}

std::vector<CertificateRow> ChatState::certificates_of(UserId user) const {
    std::vector<CertificateRow> out;
    for (const auto& [fp, row] : certificates_)
        if (row.user == user) out.push_back(row);
    return out;
}

Undo ChatState::apply_read_marker(const ReadMarkerRow& r) {
    auto key = std::tuple{r.user, r.room, r.peer};
    auto [it, fresh] = read_markers_.try_emplace(key, r.message);
    if (fresh) return [this, key] { read_markers_.erase(key); };
    MessageId old = it->second;
    it->second = std::max(old, r.message);  // as the store's upsert does
    return [this, key, old] { read_markers_[key] = old; };
}

MessageId ChatState::read_marker(UserId user, RoomId room, UserId peer) const {
    auto it = read_markers_.find(std::tuple{user, room, peer});
    return it == read_markers_.end() ? 0 : it->second;
}

void ChatState::note_references(const Mutation& m) {
    auto note = [this](UserId id) {
        if (User* u = user(id); u && u->guest) u->referenced = true;
    };
    if (const auto* msg = std::get_if<MessageRow>(&m)) {
        note(msg->author);
        note(msg->to);
    } else if (const auto* re = std::get_if<ReactionAdd>(&m)) {
        note(re->user);
    } else if (const auto* inv = std::get_if<InvitationRow>(&m)) {
        note(inv->from);
        note(inv->to);
    } else if (const auto* room = std::get_if<RoomRow>(&m)) {
        note(room->owner);
    } else if (const auto* mark = std::get_if<ReadMarkerRow>(&m)) {
        note(mark->user);
    }
}

Undo ChatState::apply_session(const SessionRow& r) {
    WARREN_CHECK(!sessions_.contains(r.token_hash));
    sessions_[r.token_hash] = r;
    sessions_by_user_[r.user].insert({r.expires_ms, r.token_hash});
    return [this, r] { forget_session(r); };
}

void ChatState::forget_session(const SessionRow& r) {
    sessions_.erase(r.token_hash);
    auto it = sessions_by_user_.find(r.user);
    if (it == sessions_by_user_.end()) return;
    it->second.erase({r.expires_ms, r.token_hash});
    if (it->second.empty()) sessions_by_user_.erase(it);
}

std::vector<SessionRow> ChatState::drop_expired_sessions(int64_t now_wall_ms) {
    std::vector<SessionRow> gone;
    for (const auto& [hash, row] : sessions_)
        if (row.expires_ms <= now_wall_ms) gone.push_back(row);
    for (const auto& row : gone) forget_session(row);
    return gone;
}

std::vector<std::string> ChatState::sessions_of(UserId user) const {
    std::vector<std::string> out;
    auto it = sessions_by_user_.find(user);
    if (it != sessions_by_user_.end())
        for (const auto& [expires, hash] : it->second) out.push_back(hash);
    return out;
}

Undo ChatState::apply_session_delete(const SessionDelete& r) {
    auto it = sessions_.find(r.token_hash);
    WARREN_CHECK(it != sessions_.end());
    SessionRow old = it->second;
    forget_session(old);
    return [this, old] { (void)apply_session(old); };
}

Undo ChatState::apply_room(const RoomRow& r) {
    auto key = name_key(r.name);
    WARREN_CHECK(!room_by_key_.contains(key) && !rooms_.contains(r.id));
    Room room;
    room.id = r.id;
    room.name = r.name;
    room.topic = r.topic;
    room.is_private = r.is_private;
    room.owner = r.owner;
    room.created_ms = r.created_ms;
    rooms_[r.id] = std::move(room);
    room_by_key_[key] = r.id;
    if (!r.is_private) public_by_key_[key] = r.id;
    ++rooms_owned_[r.owner];
    return [this, id = r.id, key, owner = r.owner] {
        rooms_.erase(id);
        room_by_key_.erase(key);
        public_by_key_.erase(key);
        if (--rooms_owned_[owner] == 0) rooms_owned_.erase(owner);
    };
}

Undo ChatState::apply_member(const MemberRow& r) {
    Room* rm = room(r.room);
    User* u = user(r.user);
    WARREN_CHECK(rm && u && !rm->members.contains(r.user));
    rm->members.insert(r.user);
    u->rooms.insert(r.room);
    return [this, r] {
        room(r.room)->members.erase(r.user);
        user(r.user)->rooms.erase(r.room);
    };
}

Undo ChatState::apply_member_delete(const MemberDelete& r) {
    Room* rm = room(r.room);
    User* u = user(r.user);
    WARREN_CHECK(rm && u && rm->members.contains(r.user));
    rm->members.erase(r.user);
    u->rooms.erase(r.room);
    return [this, r] {
        room(r.room)->members.insert(r.user);
        user(r.user)->rooms.insert(r.room);
    };
}

Undo ChatState::apply_message(const MessageRow& r) {
    MessageLog* log = nullptr;
    size_t cap = cache_max_;
    if (r.room > 0) {
        Room* rm = room(r.room);
        WARREN_CHECK(rm != nullptr);
        log = &rm->log;
    } else {
        log = &conversation(conversation_of(r));
        cap = conversation_cache_max_;
    }
    WARREN_CHECK(log->recent.empty() || log->recent.back().id < r.id);
    log->recent.push_back(r);
    where_[r.id] = log;
    std::optional<MessageId> evicted;
    bool older_before = log->older_on_disk;
    if (log->recent.size() > cap) {
        // The oldest leaves the log but stays reachable by id (edits, reactions, threads).
        MessageRow old = std::move(log->recent.front());
        log->recent.pop_front();
        log->older_on_disk = true;
        where_.erase(old.id);
        evicted = old.id;
        remember(std::move(old));
    }
    // The log outlives the undo: rooms are undone after their messages, and conversations
    // holding uncommitted messages are never evicted.
    return [this, log, id = r.id, evicted, older_before] {
        log->recent.pop_back();
        where_.erase(id);
        // A log must stay a contiguous run of the newest messages. An evicted message that is
        // not yet durable goes back in front (memory never drops those, and every message
        // newer than it is not durable either, so this keeps the run contiguous). A durable
        // one stays out: storage has it.
        if (evicted && *evicted > committed_through_) {
            auto it = old_.find(*evicted);
            WARREN_CHECK(it != old_.end());
            where_[*evicted] = log;
            log->recent.push_front(std::move(it->second.row));
            forget_old(it);
            log->older_on_disk = older_before;
        } else if (evicted) {
            log->older_on_disk = true;
        }
        // Without an eviction the insert did not change older_on_disk: leave it, since the
        // undo of a newer insert may have set it.
    };
}

MessageRow* ChatState::message(MessageId id) {
    if (auto w = where_.find(id); w != where_.end()) return w->second->find(id);
    auto it = old_.find(id);
    if (it == old_.end()) return nullptr;
    if (it->second.in_lru) old_lru_.splice(old_lru_.end(), old_lru_, it->second.lru);
    return &it->second.row;
}

void ChatState::remember(MessageRow row) {
    if (where_.contains(row.id) || old_.contains(row.id)) return;
    // Room first, so the one remembered stays (its caller reads it next).
    trim_old(old_messages_max_ > 0 ? old_messages_max_ - 1 : 0);
    MessageId id = row.id;
    auto it = old_.emplace(id, OldMessage{std::move(row), {}, false}).first;
    if (id > committed_through_) old_uncommitted_.insert(id);
    unpin_if_evictable(it);
}

void ChatState::unpin_if_evictable(std::map<MessageId, OldMessage>::iterator it) {
    if (it->second.in_lru || !evictable(it->first)) return;
    it->second.lru = old_lru_.insert(old_lru_.end(), it->first);
    it->second.in_lru = true;
}

void ChatState::forget_old(std::map<MessageId, OldMessage>::iterator it) {
    if (it->second.in_lru) old_lru_.erase(it->second.lru);
    old_uncommitted_.erase(it->first);
    old_.erase(it);
}

size_t ChatState::forget_expired(const std::vector<PruneScope>& scopes) {
    size_t n = 0;
    auto trim = [&](MessageLog& log, int64_t before_ms) {
        while (!log.recent.empty() && log.recent.front().ts_ms < before_ms &&
               evictable(log.recent.front().id)) {
            where_.erase(log.recent.front().id);
            log.recent.pop_front();
            log.older_on_disk = true;  // until the store has deleted them too
            ++n;
        }
    };
    std::map<RoomId, int64_t> before;
    for (const PruneScope& s : scopes) {
        before[s.room] = s.before_ms;
        if (s.room != 0) {
            if (auto r = rooms_.find(s.room); r != rooms_.end()) trim(r->second.log, s.before_ms);
        } else {
            for (auto& [peers, c] : conversations_) trim(c.log, s.before_ms);
        }
    }
    // One pass over the old messages (bounded by old_messages_max) for every scope.
    for (auto it = old_.begin(); it != old_.end();) {
        auto next = std::next(it);
        auto b = before.find(it->second.row.room);
        if (b != before.end() && it->second.row.ts_ms < b->second && it->second.in_lru) {
            forget_old(it);
            ++n;
        }
        it = next;
    }
    return n;
}

void ChatState::trim_old(size_t keep) {
    while (old_.size() > keep && !old_lru_.empty()) {
        auto it = old_.find(old_lru_.front());
        WARREN_CHECK(it != old_.end());
        forget_old(it);
    }
}

void ChatState::set_committed_through(MessageId id) {
    if (id <= committed_through_) return;
    committed_through_ = id;
    while (!old_uncommitted_.empty() && *old_uncommitted_.begin() <= id) {
        MessageId old_id = *old_uncommitted_.begin();
        old_uncommitted_.erase(old_uncommitted_.begin());
        if (auto it = old_.find(old_id); it != old_.end()) unpin_if_evictable(it);
    }
    trim_old(old_messages_max_);
}

void ChatState::settled(MessageId id) {
    auto it = pending_.find(id);
    if (it == pending_.end() || --it->second > 0) return;
    pending_.erase(it);
    if (auto old = old_.find(id); old != old_.end()) {
        unpin_if_evictable(old);
        trim_old(old_messages_max_);
    }
}

Undo ChatState::change_message(MessageId id, const std::function<void(MessageRow&)>& change) {
    MessageRow* m = message(id);
    WARREN_CHECK(m != nullptr);
    MessageRow before = *m;
    change(*m);
    ++pending_[id];
    if (auto old = old_.find(id); old != old_.end() && old->second.in_lru) {
        old_lru_.erase(old->second.lru);
        old->second.in_lru = false;
    }
    return [this, before = std::move(before)] {
        if (MessageRow* cur = message(before.id)) *cur = before;
        settled(before.id);
    };
}

Undo ChatState::apply_edit(const MessageEdit& r) {
    return change_message(r.id, [&](MessageRow& m) {
        m.text = r.text;
        m.edited_ms = r.edited_ms;
    });
}

Undo ChatState::apply_delete(const MessageDelete& r) {
    return change_message(r.id, [](MessageRow& m) {
        m.deleted = true;
        m.text.clear();
        m.reactions.clear();
    });
}

Undo ChatState::apply_reaction_add(const ReactionAdd& r) {
    return change_message(r.message,
                          [&](MessageRow& m) { m.reactions[r.emoji].push_back(r.user); });
}

Undo ChatState::apply_reaction_remove(const ReactionRemove& r) {
    return change_message(r.message, [&](MessageRow& m) {
        auto it = m.reactions.find(r.emoji);
        WARREN_CHECK(it != m.reactions.end());
        std::erase(it->second, r.user);
        if (it->second.empty()) m.reactions.erase(it);
    });
}

Undo ChatState::apply_topic(const RoomTopic& r) {
    Room* rm = room(r.room);
    WARREN_CHECK(rm != nullptr);
    std::string old = std::exchange(rm->topic, r.topic);
    return [rm, old] { rm->topic = old; };
}

Undo ChatState::apply_invitation(const InvitationRow& r) {
    WARREN_CHECK(!invitations_.contains(r.id) && !by_room_invitee_.contains({r.room, r.to}));
    invitations_[r.id] = r;
    by_expiry_.insert({r.expires_ms, r.id});
    by_room_invitee_[{r.room, r.to}] = r.id;
    by_invitee_.insert({r.to, r.id});
    ++sent_by_[r.from];
    return [this, r] {
        invitations_.erase(r.id);
        by_expiry_.erase({r.expires_ms, r.id});
        by_room_invitee_.erase({r.room, r.to});
        by_invitee_.erase({r.to, r.id});
        forget_sent(r.from);
    };
}

Undo ChatState::apply_invitation_close(const InvitationClose& c) {
    auto it = invitations_.find(c.id);
    WARREN_CHECK(it != invitations_.end());
    InvitationRow r = it->second;
    invitations_.erase(it);
    by_expiry_.erase({r.expires_ms, r.id});
    by_room_invitee_.erase({r.room, r.to});
    by_invitee_.erase({r.to, r.id});
    forget_sent(r.from);
    return [this, r] { (void)apply_invitation(r); };
}

void ChatState::forget_sent(UserId from) {
    auto it = sent_by_.find(from);
    if (it != sent_by_.end() && --it->second == 0) sent_by_.erase(it);
}

const InvitationRow* ChatState::invitation(InvitationId id) const {
    auto it = invitations_.find(id);
    return it == invitations_.end() ? nullptr : &it->second;
}

const InvitationRow* ChatState::invitation_to(RoomId room, UserId to) const {
    auto it = by_room_invitee_.find({room, to});
    return it == by_room_invitee_.end() ? nullptr : invitation(it->second);
}

std::vector<const InvitationRow*> ChatState::invitations_of(UserId to) const {
    std::vector<const InvitationRow*> out;
    for (auto it = by_invitee_.lower_bound({to, 0}); it != by_invitee_.end() && it->first == to;
         ++it)
        out.push_back(invitation(it->second));
    return out;
}

size_t ChatState::pending_invitations_by(UserId from) const {
    auto it = sent_by_.find(from);
    return it == sent_by_.end() ? 0 : it->second;
}

const InvitationRow* ChatState::next_to_expire() const {
    return by_expiry_.empty() ? nullptr : invitation(by_expiry_.begin()->second);
}

MessageLog& ChatState::conversation(PeerPair peers) {
    auto it = conversations_.find(peers);
    if (it == conversations_.end()) {
        if (conversations_.size() >= conversations_max_ ||
            (!conversations_.empty() && WARREN_CHAOS(evict_now)))
            evict_conversation();
        it = conversations_.emplace(peers, Conversation{}).first;
        it->second.log.older_on_disk = true;  // not loaded: storage may hold older messages
        it->second.lru = conversation_lru_.insert(conversation_lru_.end(), peers);
    } else {
        conversation_lru_.splice(conversation_lru_.end(), conversation_lru_, it->second.lru);
    }
    return it->second.log;
}

// The least recently used conversation whose messages are all durable leaves memory. Those
// that are not are the few written since the last commit, at the recent end of the order, so
// the walk from the old end stops at once in practice.
void ChatState::evict_conversation() {
    for (auto pos = conversation_lru_.begin(); pos != conversation_lru_.end(); ++pos) {
        auto it = conversations_.find(*pos);
        const auto& recent = it->second.log.recent;
        bool durable = recent.empty() || recent.back().id <= committed_through_;
        for (const auto& m : recent) durable = durable && !pending_.contains(m.id);
        if (!durable) continue;
        for (const auto& m : recent) where_.erase(m.id);
        conversation_lru_.erase(pos);
        conversations_.erase(it);
        return;
    }
}

const MessageRow* MessageLog::find(MessageId id) const {
    auto it = std::lower_bound(recent.begin(), recent.end(), id,
                               [](const MessageRow& m, MessageId v) { return m.id < v; });
    return it != recent.end() && it->id == id ? &*it : nullptr;
}

User* ChatState::find_user(std::string_view name) {
    return const_cast<User*>(std::as_const(*this).find_user(name));
}

const User* ChatState::find_user(std::string_view name) const {
    auto it = user_by_key_.find(name_key(name));
    return it == user_by_key_.end() ? nullptr : user(it->second);
}

User* ChatState::user(UserId id) {
    return const_cast<User*>(std::as_const(*this).user(id));
}

const User* ChatState::user(UserId id) const {
    auto it = users_.find(id);
    return it == users_.end() ? nullptr : &it->second;
}

Room* ChatState::find_room(std::string_view name) {
    return const_cast<Room*>(std::as_const(*this).find_room(name));
}

const Room* ChatState::find_room(std::string_view name) const {
    auto it = room_by_key_.find(name_key(name));
    return it == room_by_key_.end() ? nullptr : room(it->second);
}

Room* ChatState::room(RoomId id) {
    return const_cast<Room*>(std::as_const(*this).room(id));
}

const Room* ChatState::room(RoomId id) const {
    auto it = rooms_.find(id);
    return it == rooms_.end() ? nullptr : &it->second;
}

const SessionRow* ChatState::session(const std::string& token_hash) const {
    auto it = sessions_.find(token_hash);
    return it == sessions_.end() ? nullptr : &it->second;
}

size_t ChatState::rooms_owned_by(UserId user) const {
    auto it = rooms_owned_.find(user);
    return it == rooms_owned_.end() ? 0 : it->second;
}

bool ChatState::name_taken(std::string_view user_name) const {
    return user_by_key_.contains(name_key(user_name));
}

}  // namespace warren
