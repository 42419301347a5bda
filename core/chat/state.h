// ChatState: the in-memory model of users, sessions, rooms, memberships and recent messages.
//
// It holds both committed and in-flight (not yet durable) changes; core/txn keeps the undo
// actions that apply() returns so a failed batch can be rolled back exactly. Ordered
// containers are used wherever iteration order can reach an output (member lists, room
// lists), so that outputs are deterministic. Each room keeps at most `cache_max` newest
// messages; older ones live only in storage (`older_on_disk`).
#pragma once

#include <algorithm>
#include <deque>
#include <functional>
#include <list>
#include <map>
#include <set>
#include <string>
#include <tuple>
#include <unordered_map>
#include <utility>

#include "core/chat/records.h"

namespace warren {

struct User {
    UserId id = 0;
    std::string name;
    std::string phc;
    int64_t created_ms = 0;
    std::set<ConnId> conns;  // logged-in connections
    std::set<RoomId> rooms;
    bool admin = false;  // an operator-named admin account (Chat binds the names at start)
    bool guest = false;  // no account: exists while its connection does (UserRow::guest)
    bool retired = false;     // a guest that has gone: its name is free, its id stays
    bool referenced = false;  // a guest that other rows name (it wrote, reacted, invited...)
};

// The newest messages of a room or conversation, ascending by id. Older ones live only in
// storage (older_on_disk). It always holds every message not yet committed.
struct MessageLog {
    std::deque<MessageRow> recent;
    bool older_on_disk = false;
    const MessageRow* find(MessageId id) const;
    MessageRow* find(MessageId id) {
        return const_cast<MessageRow*>(std::as_const(*this).find(id));
    }
};

struct Conversation {
    MessageLog log;
    std::list<PeerPair>::iterator lru;  // position in the use order (least recent first)
};

struct Room {
    RoomId id = 0;
    std::string name;
    std::string topic;
    bool is_private = false;
    UserId owner = 0;
    int64_t created_ms = 0;
    std::set<UserId> members;
    MessageLog log;
};

using Undo = std::function<void()>;

class ChatState {
  public:
    ChatState(size_t room_cache_max, size_t conversation_cache_max, size_t conversations_max,
              size_t old_messages_max)
        : cache_max_(room_cache_max),
          conversation_cache_max_(conversation_cache_max),
          conversations_max_(conversations_max),
          old_messages_max_(old_messages_max) {}

    void load(const Snapshot& snap);
    // Applies one mutation to memory and returns the action that reverts it exactly.
    [[nodiscard]] Undo apply(const Mutation& m);

    User* find_user(std::string_view name);
    const User* find_user(std::string_view name) const;
    User* user(UserId id);
    const User* user(UserId id) const;
    Room* find_room(std::string_view name);
    const Room* find_room(std::string_view name) const;
    Room* room(RoomId id);
    const Room* room(RoomId id) const;
    const SessionRow* session(const std::string& token_hash) const;
    // The cached log of a conversation, created empty (older_on_disk) on first use. Creating
    // one may evict the least recently used conversation whose messages are all committed.
    MessageLog& conversation(PeerPair peers);
    // Messages with ids up to this are durable; conversations holding only those may be
    // evicted from memory.
    MessageId committed_through() const { return committed_through_; }
    void set_committed_through(MessageId id);
    size_t conversation_count() const { return conversations_.size(); }
    const std::map<UserId, User>& users() const { return users_; }
    size_t room_count() const { return rooms_.size(); }
    size_t session_count() const { return sessions_.size(); }
    // The session token hashes of a user, the one that expires first first.
    std::vector<std::string> sessions_of(UserId user) const;
    // Forgets sessions that expired (storage prunes their rows on its own); returns them.
    std::vector<SessionRow> drop_expired_sessions(int64_t now_wall_ms);
    size_t rooms_owned_by(UserId user) const;
    // Public rooms by name key (LIST_ROOMS pages through these and the caller's own private
    // rooms, never through every room).
    const std::map<std::string, RoomId>& public_rooms_by_key() const { return public_by_key_; }

    // Any message held in memory: in a room's or conversation's log, or an older one fetched
    // from storage (or pushed out of a log). nullptr: only storage knows.
    MessageRow* message(MessageId id);
    // Keeps a message read from storage, unless memory already has it. Bounded: the least
    // recently used one without uncommitted changes makes room.
    void remember(MessageRow row);
    // A batch changing message `id` (edit, delete, reaction) was committed.
    void settled(MessageId id);
    // Messages held outside the logs (fetched, or pushed out of a log); at most
    // old_messages_max once everything is committed.
    size_t old_message_count() const { return old_.size(); }

    const InvitationRow* invitation(InvitationId id) const;
    // The pending invitation of `to` into `room`, if any.
    const InvitationRow* invitation_to(RoomId room, UserId to) const;
    // Pending invitations addressed to `to`, by id.
    std::vector<const InvitationRow*> invitations_of(UserId to) const;
    // Pending invitations `from` has sent.
    size_t pending_invitations_by(UserId from) const;
    // The pending invitation that expires first, if any.
    const InvitationRow* next_to_expire() const;
    InvitationId take_invitation_id() { return next_invitation_id_++; }
    MessageId last_message_id() const { return next_message_id_ - 1; }

    const std::map<std::string, RoomId>& rooms_by_key() const { return room_by_key_; }
    const std::map<RoomId, Room>& rooms() const { return rooms_; }
    // Retention: for each scope, forgets the durable messages of its room (0: of every
    // direct conversation) older than its before_ms that have no change in flight, from the
    // log and from the old messages held; returns how many.
    size_t forget_expired(const std::vector<PruneScope>& scopes);
    // Held by an account or a connected guest (retired guests hold no name).
    bool name_taken(std::string_view user_name) const;
    // Names nobody may register (configured admin names that no account holds yet).
    void reserve_name(std::string key) { reserved_names_.insert(std::move(key)); }
    bool name_reserved(const std::string& key) const { return reserved_names_.contains(key); }

    // The user's read marker in a room (peer 0) or in the conversation with `peer` (room 0);
    // 0 when none. Markers only move forward.
    MessageId read_marker(UserId user, RoomId room, UserId peer) const;
    // The account a certificate fingerprint is bound to, if any; an account's certificates.
    const CertificateRow* certificate(const std::string& fingerprint) const;
    std::vector<CertificateRow> certificates_of(UserId user) const;

    UserId take_user_id() { return next_user_id_++; }
    RoomId take_room_id() { return next_room_id_++; }
    MessageId take_message_id() { return next_message_id_++; }

  private:
    Undo apply_user(const UserRow& r);
    Undo apply_guest_retire(const GuestRetire& r);
    Undo apply_certificate(const CertificateRow& r);
    Undo apply_certificate_delete(const CertificateDelete& r);
    Undo apply_read_marker(const ReadMarkerRow& r);
    // Marks the guests a row names, so that retiring one keeps its row.
    void note_references(const Mutation& m);
    Undo apply_session(const SessionRow& r);
    Undo apply_session_delete(const SessionDelete& r);
    void forget_session(const SessionRow& r);
    Undo apply_room(const RoomRow& r);
    Undo apply_member(const MemberRow& r);
    Undo apply_member_delete(const MemberDelete& r);
    Undo apply_message(const MessageRow& r);
    void evict_conversation();
    Undo apply_topic(const RoomTopic& r);
    Undo apply_invitation(const InvitationRow& r);
    Undo apply_invitation_close(const InvitationClose& c);
    void forget_sent(UserId from);
    Undo apply_edit(const MessageEdit& r);
    Undo apply_delete(const MessageDelete& r);
    Undo apply_reaction_add(const ReactionAdd& r);
    Undo apply_reaction_remove(const ReactionRemove& r);
    // Runs `change` on message `id` (which must be in memory) and returns an undo that
    // restores its previous value, counting the change as pending until settled().
    Undo change_message(MessageId id, const std::function<void(MessageRow&)>& change);
    void index_push(MessageLog* log, const MessageRow& m) { where_[m.id] = log; }

    size_t cache_max_;
    size_t conversation_cache_max_;
    size_t conversations_max_;
    std::map<PeerPair, Conversation> conversations_;
    std::list<PeerPair> conversation_lru_;  // least recently used first
    MessageId committed_through_ = 0;
    std::map<InvitationId, InvitationRow> invitations_;  // pending only
    std::set<std::pair<int64_t, InvitationId>> by_expiry_;
    std::map<std::pair<RoomId, UserId>, InvitationId> by_room_invitee_;
    std::set<std::pair<UserId, InvitationId>> by_invitee_;
    std::map<UserId, size_t> sent_by_;  // pending invitations per inviter
    InvitationId next_invitation_id_ = 1;
    size_t old_messages_max_;
    // Messages outside the logs. Only those that may leave memory (durable, no uncommitted
    // change) are in old_lru_, so making room takes its front in constant time however many
    // are pinned; pinned ones join it when their last batch commits. Pinned ones are bounded
    // by the batches in flight.
    struct OldMessage {
        MessageRow row;
        std::list<MessageId>::iterator lru;  // position in old_lru_, if in_lru
        bool in_lru = false;
    };
    std::map<MessageId, OldMessage> old_;
    std::list<MessageId> old_lru_;         // evictable ones, least recently used first
    std::set<MessageId> old_uncommitted_;  // pinned ones newer than committed_through_
    bool evictable(MessageId id) const {
        return id <= committed_through_ && !pending_.contains(id);
    }
    // Puts an old message in the LRU (at its back) if it may leave memory.
    void unpin_if_evictable(std::map<MessageId, OldMessage>::iterator it);
    void forget_old(std::map<MessageId, OldMessage>::iterator it);
    // Evicts least recently used old messages down to `keep` (pinned ones stay).
    void trim_old(size_t keep);
    std::unordered_map<MessageId, MessageLog*> where_;  // messages held in some log
    std::unordered_map<MessageId, int> pending_;        // uncommitted changes per message
    std::map<UserId, User> users_;
    std::unordered_map<std::string, UserId> user_by_key_;
    std::map<RoomId, Room> rooms_;
    std::map<std::string, RoomId> room_by_key_;
    std::unordered_map<std::string, SessionRow> sessions_;
    std::map<UserId, std::set<std::pair<int64_t, std::string>>>
        sessions_by_user_;  // (expiry, hash)
    std::map<UserId, size_t> rooms_owned_;
    std::map<std::string, RoomId> public_by_key_;
    std::set<std::string> reserved_names_;
    // (user, room, peer) -> message id: one entry per marker set (about 80 bytes each).
    std::map<std::tuple<UserId, RoomId, UserId>, MessageId> read_markers_;
    std::map<std::string, CertificateRow> certificates_;  // by fingerprint
    UserId next_user_id_ = 1;
    RoomId next_room_id_ = 1;
    MessageId next_message_id_ = 1;
};

}  // namespace warren
