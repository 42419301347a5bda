// Records: the durable shape of chat data, shared by the core (which produces mutations and
// consumes snapshots and query rows) and store/ (which persists and loads them).
//
// A Mutation is one row-level change; a Commit batch is an ordered list of them that the store
// applies in one transaction. Every record is checked with check_record() before it leaves
// the core and again after the store loads it.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "core/base.h"

namespace warren {

struct UserRow {
    UserId id = 0;
    std::string name;
    std::string phc;  // argon2id PHC string; the password itself is never stored; "" for a guest
    int64_t created_ms = 0;
    // A guest (an IRC nick without an account) exists while its connection does; once
    // retired its name is free again and the row stays only for what it wrote.
    bool guest = false;
    bool retired = false;
};

// A guest's connection closed: its name is released (it left its rooms in the same batch).
// forget: nothing refers to it, so the row goes too.
struct GuestRetire {
    UserId user = 0;
    bool forget = false;
};

struct SessionRow {
    std::string token_hash;  // hex BLAKE2b-256 of the token; the token itself is never stored
    UserId user = 0;
    int64_t expires_ms = 0;
};

struct SessionDelete {
    std::string token_hash;
};

// Drops stored sessions that expired before before_ms (memory forgets them on its own).
struct SessionPrune {
    int64_t before_ms = 0;
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
    int64_t edited_ms = 0;  // 0: never edited
    bool deleted = false;   // a tombstone: text empty, reactions gone
    // emoji -> users, in the order they reacted. Filled when loaded; empty in an insert.
    std::map<std::string, std::vector<UserId>> reactions;
};

// The two parties of a direct conversation, lower id first.
struct PeerPair {
    UserId lo = 0;
    UserId hi = 0;
    auto operator<=>(const PeerPair&) const = default;  // NOLINT(modernize-use-nullptr)
};
inline PeerPair peer_pair(UserId a, UserId b) {
    return a < b ? PeerPair{a, b} : PeerPair{b, a};
}
inline PeerPair conversation_of(const MessageRow& m) {
    return peer_pair(m.author, m.to);
}

struct MessageEdit {
    MessageId id = 0;
    std::string text;
    int64_t edited_ms = 0;
};

struct MessageDelete {
    MessageId id = 0;
};

struct ReactionAdd {
    MessageId message = 0;
    UserId user = 0;
    std::string emoji;
};

struct ReactionRemove {
    MessageId message = 0;
    UserId user = 0;
    std::string emoji;
};

struct RoomTopic {
    RoomId room = 0;
    std::string topic;
};

// A TLS client certificate bound to an account (SASL EXTERNAL): its SHA-256, 64 lowercase hex.
struct CertificateRow {
    std::string fingerprint;
    UserId user = 0;
    int64_t added_ms = 0;
};
struct CertificateDelete {
    std::string fingerprint;
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

// Security state (core/security). A block or suspension row is upserted by key; lifting it
// writes until_ms = the lift time, so the offence count (the escalation ladder) survives.
struct BlockRow {
    std::string ip;        // an address key: IPv4 dotted, or an IPv6 /64 ("2001:db8:0:1::/64")
    int64_t since_ms = 0;  // wall ms
    int64_t until_ms = 0;  // wall ms; 0 = until lifted
    uint32_t offences = 0;
    std::string reason;
};

struct SuspensionRow {
    UserId user = 0;
    int64_t since_ms = 0;
    int64_t until_ms = 0;  // wall ms; 0 = until lifted
    uint32_t offences = 0;
    std::string reason;
};

// One security decision or admin action. Ids increase; the log is pruned by AuditPrune.
struct AuditRow {
    int64_t id = 0;
    int64_t ts_ms = 0;
    std::string actor;    // "system" or "admin"
    std::string ip;       // may be empty
    std::string account;  // may be empty
    std::string action;   // e.g. ip_blocked, account_suspended, name_locked
    std::string reason;
    std::string details;  // a JSON object, or empty
};

// Drops audit rows with ts_ms < before_ms, and all but the newest keep_rows.
struct AuditPrune {
    int64_t before_ms = 0;
    int64_t keep_rows = 0;
};

using Mutation =
    std::variant<UserRow, SessionRow, SessionDelete, RoomRow, MemberRow, MemberDelete, MessageRow,
                 RoomTopic, ReadMarkerRow, InvitationRow, InvitationClose, MessageEdit,
                 MessageDelete, ReactionAdd, ReactionRemove, BlockRow, SuspensionRow, AuditRow,
                 AuditPrune, SessionPrune, GuestRetire, CertificateRow, CertificateDelete>;

// Everything the core keeps in memory, as loaded at start.
struct Snapshot {
    std::vector<UserRow> users;        // guests among them retired (nobody is connected at start)
    std::vector<SessionRow> sessions;  // unexpired ones
    std::vector<RoomRow> rooms;
    std::vector<MemberRow> members;
    // Per room, its newest messages (at most the cache size), ascending by id.
    std::vector<MessageRow> recent_messages;
    // Rooms that have stored messages older than those in recent_messages.
    std::vector<RoomId> rooms_with_older;
    MessageId max_message_id = 0;
    int64_t newest_message_ms = 0;           // the stamp of the message with max_message_id
    std::vector<InvitationRow> invitations;  // pending and unexpired
    std::vector<ReadMarkerRow> read_markers;
    std::vector<CertificateRow> certificates;
    InvitationId max_invitation_id = 0;
    std::vector<BlockRow> blocks;  // every stored row, lifted or expired ones included
    std::vector<SuspensionRow> suspensions;
    int64_t max_audit_id = 0;
};

// A page of a room's (or a conversation's) stored messages: id < before (newest first) or id >
// after (oldest first), at most `limit` rows. The answer rows are always ascending by id.
struct HistoryQuery {
    RoomId room = 0;  // a room's messages, or, when 0, the conversation `peers`
    std::optional<MessageId> before;
    std::optional<MessageId> after;
    uint32_t limit = 0;
    PeerPair peers;
};

// Full-text search over the messages a user may read: the rooms listed and the user's own
// direct messages (or only `rooms` when dm_user is 0). `match` is already an FTS5 query.
struct SearchQuery {
    std::string match;
    std::vector<RoomId> rooms;
    UserId dm_user = 0;
    uint32_t limit = 0;
};

// What the core asks storage to read. Answers are QueryRows, messages ascending by id
// (search: newest first).
struct StoredQuery {
    enum class Kind { history, message, thread, search, audit };
    Kind kind = Kind::history;
    HistoryQuery history;  // history
    // message (one row or none; only if it is in search.rooms, in a public room, or a direct
    // message of search.dm_user), thread (replies to it)
    MessageId message = 0;
    uint32_t limit = 0;        // thread, audit
    SearchQuery search;        // search
    int64_t audit_before = 0;  // audit: rows with id < this (0: the newest), newest first
};

struct QueryRows {
    bool ok = true;
    bool too_costly = false;  // not ok because the query ran past its time budget
    std::vector<MessageRow> rows;
    std::vector<AuditRow> audit;  // audit
};

// Retention: delete the oldest messages of one room (0: of every direct conversation) that
// are older than before_ms, with their reactions and search entries.
struct PruneScope {
    RoomId room = 0;
    int64_t before_ms = 0;
};

struct PruneResult {
    bool ok = false;
    std::vector<uint32_t> deleted;  // per scope, in order
    std::string error;
};

// Returns a description of the first broken invariant, or nullopt. Used before a record is
// committed and after it is loaded.
std::optional<std::string> check_record(const Mutation& m);

}  // namespace warren
