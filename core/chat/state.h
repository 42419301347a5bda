// ChatState: the in-memory model of users, sessions, rooms, memberships and recent messages.
//
// It holds both committed and in-flight (not yet durable) changes; core/txn keeps the undo
// actions that apply() returns so a failed batch can be rolled back exactly. Ordered
// containers are used wherever iteration order can reach an output (member lists, room
// lists), so that outputs are deterministic. Each room keeps at most `cache_max` newest
// messages; older ones live only in storage (`older_on_disk`).
#pragma once

#include <deque>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <unordered_map>

#include "core/chat/records.h"

namespace warren {

struct User {
    UserId id = 0;
    std::string name;
    std::string phc;
    int64_t created_ms = 0;
    std::set<ConnId> conns;  // logged-in connections
    std::set<RoomId> rooms;
};

struct Room {
    RoomId id = 0;
    std::string name;
    std::string topic;
    bool is_private = false;
    UserId owner = 0;
    int64_t created_ms = 0;
    std::set<UserId> members;
    std::deque<MessageRow> recent;  // newest messages, ascending by id
    bool older_on_disk = false;     // messages older than recent.front() exist in storage
};

using Undo = std::function<void()>;

class ChatState {
  public:
    explicit ChatState(size_t cache_max) : cache_max_(cache_max) {}

    void load(const Snapshot& snap);
    // Applies one mutation to memory and returns the action that reverts it exactly.
    [[nodiscard]] Undo apply(const Mutation& m);

    User* find_user(std::string_view name);
    User* user(UserId id);
    Room* find_room(std::string_view name);
    Room* room(RoomId id);
    const SessionRow* session(const std::string& token_hash) const;

    const std::map<std::string, RoomId>& rooms_by_key() const { return room_by_key_; }
    bool name_taken(std::string_view user_name) const;

    UserId take_user_id() { return next_user_id_++; }
    RoomId take_room_id() { return next_room_id_++; }
    MessageId take_message_id() { return next_message_id_++; }

    size_t user_count() const { return users_.size(); }
    size_t room_count() const { return rooms_.size(); }

  private:
    Undo apply_user(const UserRow& r);
    Undo apply_session(const SessionRow& r);
    Undo apply_session_delete(const SessionDelete& r);
    Undo apply_room(const RoomRow& r);
    Undo apply_member(const MemberRow& r);
    Undo apply_member_delete(const MemberDelete& r);
    Undo apply_message(const MessageRow& r);

    size_t cache_max_;
    std::map<UserId, User> users_;
    std::unordered_map<std::string, UserId> user_by_key_;
    std::map<RoomId, Room> rooms_;
    std::map<std::string, RoomId> room_by_key_;
    std::unordered_map<std::string, SessionRow> sessions_;
    UserId next_user_id_ = 1;
    RoomId next_room_id_ = 1;
    MessageId next_message_id_ = 1;
};

}  // namespace warren
