// Typed requests: one struct per op of the op table (ops.def), and the Request variant of them
// in table order.
//
// Each struct lists its arguments in `fields`: the wire name, the member it fills, and the
// kind of value (FieldKind), which names the rule validate/ checks it against. A plain member
// is a required argument; a std::optional one may be absent (JSON null counts as absent).
// Rules between arguments ("room or with, not both") are the struct's `cross_check`, run
// after every argument passed. The front doors (the JSON-lines decoder, later IRC) fill these
// structs; validate/ checks them; only a checked request (a `Validated`, validate/requests.h)
// reaches a handler. Strings are owned, so a request can wait (for a message read from
// storage) and run again.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <variant>

#include "core/ops/ops.h"

namespace warren {

enum class FieldKind : uint8_t {
    username,
    nick,  // a guest's IRC nick: a username's characters, from 1 character (IRC allows it)
    password,
    room,
    text,
    topic,
    emoji,
    visibility,
    token,
    query,
    cursor,      // a room name key
    message_id,  // >= 1
    position,    // a message id bound for paging, >= 0
    invitation,  // >= 1
    limit,       // >= 1; clamped later
    flag,        // true or false
    fingerprint,  // a certificate's SHA-256: 64 hex digits, optionally in ':'-separated pairs
};

template <class T, class M>
struct Field {
    std::string_view name;
    M T::*member;
    FieldKind kind;
};
template <class T, class M>
constexpr Field<T, M> field(std::string_view name, M T::*member, FieldKind kind) {
    return {name, member, kind};
}

// A broken rule between arguments: the field to name and why.
struct CrossFieldError {
    std::string_view field;
    std::string_view message;
};
using CrossCheck = std::optional<CrossFieldError>;

namespace requests {
using K = FieldKind;
using OptString = std::optional<std::string>;
using OptInt = std::optional<int64_t>;

inline CrossCheck room_or_with(const OptString& room, const OptString& with) {
    if (!room == !with) return CrossFieldError{"room", "give room or with (a username), not both"};
    return std::nullopt;
}
}  // namespace requests

struct Register {
    std::string username, password;
    static constexpr auto fields =
        std::tuple{field("username", &Register::username, FieldKind::username),
                   field("password", &Register::password, FieldKind::password)};
};

struct Login {
    requests::OptString username, password, token;
    static constexpr auto fields =
        std::tuple{field("username", &Login::username, FieldKind::username),
                   field("password", &Login::password, FieldKind::password),
                   field("token", &Login::token, FieldKind::token)};
    static CrossCheck cross_check(const Login& r) {
        if (!r.token && !r.username)
            return CrossFieldError{"username", "give username and password, or token"};
        if (!r.token && !r.password) return CrossFieldError{"password", "'password' is required"};
        return std::nullopt;
    }
};

struct NoArguments {
    static constexpr std::tuple<> fields{};
};
// LOGOUT ends this connection's session, or with all: every session of the account.
struct Logout {
    std::optional<bool> all;
    static constexpr auto fields = std::tuple{field("all", &Logout::all, FieldKind::flag)};
};
struct Ping : NoArguments {};
// A guest: chats under `username` without an account while its connection lasts (IRC only).
struct GuestLogin {
    std::string username;
    static constexpr auto fields =
        std::tuple{field("username", &GuestLogin::username, FieldKind::nick)};
};
struct ListInvitations : NoArguments {};

// TLS client certificates bound to the caller's account (SASL EXTERNAL on IRC).
struct FingerprintArgument {
    std::string fingerprint;
    static constexpr auto fields = std::tuple{
        field("fingerprint", &FingerprintArgument::fingerprint, FieldKind::fingerprint)};
};
struct AddCertificate : FingerprintArgument {};
struct RemoveCertificate : FingerprintArgument {};
struct ListCertificates : NoArguments {};
// A login by the certificate the connection's TLS handshake showed (IRC's SASL EXTERNAL).
// Not on the JSON wire: only the IRC session fills it, from the driver's fingerprint.
// `username`: SASL's authorization identity, if the client gave one: it must be the account
// the certificate is bound to.
struct CertificateLogin {
    std::string fingerprint;
    requests::OptString username;
    static constexpr auto fields =
        std::tuple{field("fingerprint", &CertificateLogin::fingerprint, FieldKind::fingerprint),
                   field("username", &CertificateLogin::username, FieldKind::username)};
};

struct CreateRoom {
    std::string room;
    requests::OptString visibility, topic;
    static constexpr auto fields =
        std::tuple{field("room", &CreateRoom::room, FieldKind::room),
                   field("visibility", &CreateRoom::visibility, FieldKind::visibility),
                   field("topic", &CreateRoom::topic, FieldKind::topic)};
};

struct RoomArgument {
    std::string room;
    static constexpr auto fields = std::tuple{field("room", &RoomArgument::room, FieldKind::room)};
};
struct JoinRoom : RoomArgument {};
struct LeaveRoom : RoomArgument {
    // IRC's PART reason, shown to IRC members. Not a wire argument (not in `fields`): only the
    // IRC session fills it, from a line already checked as UTF-8 within 512 bytes.
    std::string reason;
};

struct ListRooms {
    requests::OptString cursor;
    requests::OptInt limit;
    static constexpr auto fields =
        std::tuple{field("cursor", &ListRooms::cursor, FieldKind::cursor),
                   field("limit", &ListRooms::limit, FieldKind::limit)};
};

struct SendMessage {
    std::string room, text;
    requests::OptInt reply_to;
    static constexpr auto fields =
        std::tuple{field("room", &SendMessage::room, FieldKind::room),
                   field("text", &SendMessage::text, FieldKind::text),
                   field("reply_to", &SendMessage::reply_to, FieldKind::message_id)};
    // Not a wire argument: IRC's reply tags name messages the client saw, maybe elsewhere or
    // long gone; one that names no message of this room is dropped instead of refused.
    bool reply_optional = false;
    bool notice = false;  // not a wire argument either: IRC's NOTICE (shown as one on IRC)
};

struct DirectMessage {
    std::string to, text;
    requests::OptInt reply_to;
    static constexpr auto fields =
        std::tuple{field("to", &DirectMessage::to, FieldKind::username),
                   field("text", &DirectMessage::text, FieldKind::text),
                   field("reply_to", &DirectMessage::reply_to, FieldKind::message_id)};
    bool reply_optional = false;  // as SendMessage's
    bool notice = false;          // as SendMessage's
};

struct History {
    requests::OptString room, with;
    requests::OptInt before, after, limit;
    static constexpr auto fields =
        std::tuple{field("room", &History::room, FieldKind::room),
                   field("with", &History::with, FieldKind::username),
                   field("before", &History::before, FieldKind::position),
                   field("after", &History::after, FieldKind::position),
                   field("limit", &History::limit, FieldKind::limit)};
    static CrossCheck cross_check(const History& r) {
        if (auto bad = requests::room_or_with(r.room, r.with)) return bad;
        if (r.before && r.after) return CrossFieldError{"after", "give before or after, not both"};
        return std::nullopt;
    }
};

struct SetTopic {
    std::string room, topic;
    static constexpr auto fields = std::tuple{field("room", &SetTopic::room, FieldKind::room),
                                              field("topic", &SetTopic::topic, FieldKind::topic)};
};

struct MarkRead {
    requests::OptString room, with;
    int64_t message_id = 0;
    static constexpr auto fields =
        std::tuple{field("room", &MarkRead::room, FieldKind::room),
                   field("with", &MarkRead::with, FieldKind::username),
                   field("message_id", &MarkRead::message_id, FieldKind::message_id)};
    static CrossCheck cross_check(const MarkRead& r) {
        return requests::room_or_with(r.room, r.with);
    }
};

struct RequestUserList {
    requests::OptString room;
    static constexpr auto fields =
        std::tuple{field("room", &RequestUserList::room, FieldKind::room)};
};

struct InviteUser {
    std::string room, user;
    static constexpr auto fields =
        std::tuple{field("room", &InviteUser::room, FieldKind::room),
                   field("user", &InviteUser::user, FieldKind::username)};
};

// ACCEPT_INVITATION and DECLINE_INVITATION name the invitation by id or by room.
struct InvitationAnswer {
    requests::OptInt invitation_id;
    requests::OptString room;
    static constexpr auto fields =
        std::tuple{field("invitation_id", &InvitationAnswer::invitation_id, FieldKind::invitation),
                   field("room", &InvitationAnswer::room, FieldKind::room)};
    static CrossCheck cross_check(const InvitationAnswer& r) {
        if (!r.invitation_id == !r.room)
            return CrossFieldError{"invitation_id", "give invitation_id or room, not both"};
        return std::nullopt;
    }
};
struct AcceptInvitation : InvitationAnswer {};
struct DeclineInvitation : InvitationAnswer {};

struct EditMessage {
    int64_t message_id = 0;
    std::string text;
    static constexpr auto fields =
        std::tuple{field("message_id", &EditMessage::message_id, FieldKind::message_id),
                   field("text", &EditMessage::text, FieldKind::text)};
};

struct DeleteMessage {
    int64_t message_id = 0;
    static constexpr auto fields =
        std::tuple{field("message_id", &DeleteMessage::message_id, FieldKind::message_id)};
};

struct Reaction {
    int64_t message_id = 0;
    std::string emoji;
    static constexpr auto fields =
        std::tuple{field("message_id", &Reaction::message_id, FieldKind::message_id),
                   field("emoji", &Reaction::emoji, FieldKind::emoji)};
};
struct React : Reaction {};
struct Unreact : Reaction {};

struct GetThread {
    int64_t message_id = 0;
    requests::OptInt limit;
    static constexpr auto fields =
        std::tuple{field("message_id", &GetThread::message_id, FieldKind::message_id),
                   field("limit", &GetThread::limit, FieldKind::limit)};
};

struct Search {
    std::string query;
    requests::OptString room;
    requests::OptInt limit;
    static constexpr auto fields = std::tuple{field("query", &Search::query, FieldKind::query),
                                              field("room", &Search::room, FieldKind::room),
                                              field("limit", &Search::limit, FieldKind::limit)};
};

namespace requests {
template <class First, class... Rest>
struct VariantOfRest {
    using type = std::variant<Rest...>;
};
}  // namespace requests

// One alternative per op, in op table order.
using Request = requests::VariantOfRest<void
#define WARREN_OP(id, wire, type, ...) , type
#include "core/ops/ops.def"
#undef WARREN_OP
                                        >::type;

static_assert(std::variant_size_v<Request> == op_count);
#define WARREN_OP(id, wire, type, ...) \
    static_assert(                     \
        std::is_same_v<std::variant_alternative_t<static_cast<size_t>(Op::id), Request>, type>);
#include "core/ops/ops.def"
#undef WARREN_OP

constexpr Op op_of(const Request& r) {
    return static_cast<Op>(r.index());
}

// The request struct of an op, default-filled, for a front door to fill in.
Request empty_request(Op op);

}  // namespace warren
