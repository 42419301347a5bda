// The closed sets of the wire contract (PROTOCOL.md): error codes, ops, disconnect reasons.
// Each enum value maps to exactly one wire string; name lookups return nullopt when unknown.
#pragma once

#include <optional>
#include <string_view>

namespace warren {

enum class ErrorCode {
    bad_frame,
    frame_too_large,
    bad_request,
    unknown_op,
    unauthenticated,
    invalid_credentials,
    forbidden,
    not_found,
    conflict,
    rate_limited,
    blocked,
    unavailable,
    internal,
};

enum class Op {
    register_,
    login,
    logout,
    ping,
    create_room,
    join_room,
    leave_room,
    list_rooms,
    send_message,
    history,
    direct_message,
    set_topic,
    mark_read,
    request_user_list,
    invite_user,
    accept_invitation,
    decline_invitation,
    list_invitations,
    edit_message,
    delete_message,
    react,
    unreact,
    get_thread,
    search,
};

std::string_view error_code_name(ErrorCode c);
std::string_view op_name(Op op);
std::optional<Op> op_from_name(std::string_view name);
std::optional<ErrorCode> error_code_from_name(std::string_view name);

// Ops that need a logged-in session (all but REGISTER, LOGIN, PING).
bool op_needs_session(Op op);

}  // namespace warren
