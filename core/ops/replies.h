// Typed replies: what a handler answers, before any wire encoding. A ReplyBody is an Error or
// one ok payload; the front door's encoder renders it (protocol/json_codec.h for JSON lines)
// together with the request id it answers. The monitor, the logs and the audit read the error
// code from the value (error_of), never from bytes.
//
// Views are the objects of PROTOCOL.md "Objects" with every id already resolved to a name, so
// an encoder needs nothing but the value. They own their strings: a reply may wait for a
// commit while the state it was built from changes.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "core/base.h"
#include "core/ops/codes.h"

namespace warren {

struct UserView {
    std::string username;
    bool online = false;
};

struct RoomView {
    std::string name;
    std::string topic;
    bool is_private = false;
    std::string owner;
    int64_t members = 0;
};

struct MessageView {
    MessageId id = 0;
    std::optional<std::string> room;  // null for a direct message
    std::optional<std::string> to;    // null for a room message
    std::optional<std::string> author;
    bool author_guest = false;  // the author has no account (IRC shows no account tag)
    std::string text;
    int64_t ts_ms = 0;
    MessageId reply_to = 0;  // 0: null
    int64_t edited_ms = 0;   // 0: null
    bool deleted = false;
    // emoji -> names, in the order they reacted.
    std::vector<std::pair<std::string, std::vector<std::string>>> reactions;
};

// A message view shared by a reply and the event that announces it. An encoding renders the
// message object once and keeps the text for the next use of the same value (the core is
// single-threaded, and the view never changes once shared).
struct SharedMessage {
    explicit SharedMessage(MessageView v) : view(std::move(v)) {}
    MessageView view;
    mutable std::string json;  // the JSON-lines rendering of `view`, once made
};

struct InvitationView {
    InvitationId id = 0;
    std::string room, from, to;
    int64_t ts_ms = 0;
    int64_t expires_ms = 0;
};

struct SessionView {
    std::string token;
    int64_t expires_ms = 0;
};

struct Error {
    ErrorCode code = ErrorCode::internal;
    std::string message;
    std::string field;  // empty: no single argument is at fault
    std::optional<int64_t> retry_after_ms;
};

namespace reply {
struct Done {};  // ok, nothing more to say
struct Pong {};
struct LoggedIn {
    UserView user;
    SessionView session;
};
struct Room {
    RoomView room;
};
struct RoomPage {
    std::vector<RoomView> rooms;
    std::optional<std::string> next_cursor;
};
struct Message {
    std::shared_ptr<const SharedMessage> message;  // shared with the event announcing it
};
struct MessagePage {
    std::vector<MessageView> messages;
    bool has_more = false;
};
struct Thread {
    MessageView root;
    std::vector<MessageView> replies;
    bool has_more = false;
};
struct SearchResults {
    std::vector<MessageView> results;
};
struct Invitation {
    InvitationView invitation;
};
struct Invitations {
    std::vector<InvitationView> invitations;
};
struct Users {
    std::vector<UserView> users;
};
struct CertificateView {
    std::string fingerprint;
    int64_t added_ms = 0;
};
struct Certificates {
    std::vector<CertificateView> certificates;
};
}  // namespace reply

using ReplyBody =
    std::variant<Error, reply::Done, reply::Pong, reply::LoggedIn, reply::Room, reply::RoomPage,
                 reply::Message, reply::MessagePage, reply::Thread, reply::SearchResults,
                 reply::Invitation, reply::Invitations, reply::Users, reply::Certificates>;

inline std::optional<ErrorCode> error_of(const ReplyBody& body) {
    if (const Error* e = std::get_if<Error>(&body)) return e->code;
    return std::nullopt;
}

}  // namespace warren
