// Records: the durable shape of chat data, shared by the core (which produces mutations and
// consumes snapshots and query rows) and store/ (which persists and loads them).
//
// A Mutation is one row-level change; a Commit batch is an ordered list of them that the store
// applies in one transaction. Every record is checked with check_record() before it leaves
// the core and again after the store loads it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "core/base.h"

namespace warren {

struct UserRow {
    UserId id = 0;
    std::string name;
    std::string phc;  // argon2id PHC string; the password itself is never stored
    int64_t created_ms = 0;
};

struct SessionRow {
    std::string token_hash;  // hex BLAKE2b-256 of the token; the token itself is never stored
    UserId user = 0;
    int64_t expires_ms = 0;
};

struct SessionDelete {
    std::string token_hash;
};

struct RoomRow {
    RoomId id = 0;
    std::string name;
    std::string topic;
    bool is_private = false;
    UserId owner = 0;
    int64_t created_ms = 0;
};

struct MemberRow {
    RoomId room = 0;
    UserId user = 0;
    int64_t joined_ms = 0;
};

struct MemberDelete {
    RoomId room = 0;
    UserId user = 0;
};

// A room message (room > 0, to == 0) or a direct message (room == 0, to > 0).
struct MessageRow {
    MessageId id = 0;
    RoomId room = 0;
    UserId author = 0;
    std::string text;
    int64_t ts_ms = 0;
    MessageId reply_to = 0;  // 0: not a reply
    UserId to = 0;
};

// The two parties of a direct conversation, lower id first.
struct PeerPair {
    UserId lo = 0;
    UserId hi = 0;
    auto operator<=>(const PeerPair&) const = default;
};
inline PeerPair peer_pair(UserId a, UserId b) { return a < b ? PeerPair{a, b} : PeerPair{b, a}; }
inline PeerPair conversation_of(const MessageRow& m) { return peer_pair(m.author, m.to); }

struct RoomTopic {
    RoomId room = 0;
    std::string topic;
};

// A user's read position in a room (room > 0) or in the conversation with `peer`.
struct ReadMarkerRow {
    UserId user = 0;
    RoomId room = 0;
    UserId peer = 0;
    MessageId message = 0;
};

struct InvitationRow {
    InvitationId id = 0;
    RoomId room = 0;
    UserId from = 0;
    UserId to = 0;
    int64_t ts_ms = 0;
    int64_t expires_ms = 0;
};

// An invitation stops being pending; the row stays, so ids are never reused.
struct InvitationClose {
    enum class Why { accepted = 1, declined = 2, expired = 3 };
    InvitationId id = 0;
    Why why = Why::accepted;
};

using Mutation = std::variant<UserRow, SessionRow, SessionDelete, RoomRow, MemberRow,
                              MemberDelete, MessageRow, RoomTopic, ReadMarkerRow, InvitationRow,
                              InvitationClose>;

// Everything the core keeps in memory, as loaded at start.
struct Snapshot {
    std::vector<UserRow> users;
    std::vector<SessionRow> sessions;  // unexpired ones
    std::vector<RoomRow> rooms;
    std::vector<MemberRow> members;
    // Per room, its newest messages (at most the cache size), ascending by id.
    std::vector<MessageRow> recent_messages;
    // Rooms that have stored messages older than those in recent_messages.
    std::vector<RoomId> rooms_with_older;
    MessageId max_message_id = 0;
    std::vector<InvitationRow> invitations;  // pending and unexpired
    InvitationId max_invitation_id = 0;
};

// A page of a room's (or a conversation's) stored messages: id < before (newest first) or id > after (oldest
// first), at most `limit` rows. The answer rows are always ascending by id.
struct HistoryQuery {
    RoomId room = 0;  // a room's messages, or, when 0, the conversation `peers`
    std::optional<MessageId> before;
    std::optional<MessageId> after;
    uint32_t limit = 0;
    PeerPair peers;
};

struct QueryRows {
    bool ok = true;
    std::vector<MessageRow> rows;
};

// Returns a description of the first broken invariant, or nullopt. Used before a record is
// committed and after it is loaded.
std::optional<std::string> check_record(const Mutation& m);

}  // namespace warren
