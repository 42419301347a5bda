#include "core/protocol/codes.h"

#include <array>
#include <utility>

namespace warren {

namespace {
constexpr std::array<std::pair<Op, std::string_view>, 24> op_names{{
    {Op::register_, "REGISTER"},
    {Op::login, "LOGIN"},
    {Op::logout, "LOGOUT"},
    {Op::ping, "PING"},
    {Op::create_room, "CREATE_ROOM"},
    {Op::join_room, "JOIN_ROOM"},
    {Op::leave_room, "LEAVE_ROOM"},
    {Op::list_rooms, "LIST_ROOMS"},
    {Op::send_message, "SEND_MESSAGE"},
    {Op::history, "HISTORY"},
    {Op::direct_message, "DIRECT_MESSAGE"},
    {Op::set_topic, "SET_TOPIC"},
    {Op::mark_read, "MARK_READ"},
    {Op::request_user_list, "REQUEST_USER_LIST"},
    {Op::invite_user, "INVITE_USER"},
    {Op::accept_invitation, "ACCEPT_INVITATION"},
    {Op::decline_invitation, "DECLINE_INVITATION"},
    {Op::list_invitations, "LIST_INVITATIONS"},
    {Op::edit_message, "EDIT_MESSAGE"},
    {Op::delete_message, "DELETE_MESSAGE"},
    {Op::react, "REACT"},
    {Op::unreact, "UNREACT"},
    {Op::get_thread, "GET_THREAD"},
    {Op::search, "SEARCH"},
}};
}  // namespace

std::string_view error_code_name(ErrorCode c) {
    switch (c) {
        case ErrorCode::bad_frame:
            return "BAD_FRAME";
        case ErrorCode::frame_too_large:
            return "FRAME_TOO_LARGE";
        case ErrorCode::bad_request:
            return "BAD_REQUEST";
        case ErrorCode::unknown_op:
            return "UNKNOWN_OP";
        case ErrorCode::unauthenticated:
            return "UNAUTHENTICATED";
        case ErrorCode::invalid_credentials:
            return "INVALID_CREDENTIALS";
        case ErrorCode::forbidden:
            return "FORBIDDEN";
        case ErrorCode::not_found:
            return "NOT_FOUND";
        case ErrorCode::conflict:
            return "CONFLICT";
        case ErrorCode::rate_limited:
            return "RATE_LIMITED";
        case ErrorCode::blocked:
            return "BLOCKED";
        case ErrorCode::unavailable:
            return "UNAVAILABLE";
        case ErrorCode::internal:
            return "INTERNAL";
    }
    return "INTERNAL";
}

std::string_view op_name(Op op) {
    for (const auto& [o, n] : op_names)
        if (o == op) return n;
    return "?";
}

std::optional<ErrorCode> error_code_from_name(std::string_view name) {
    for (int i = 0; i <= static_cast<int>(ErrorCode::internal); ++i)
        if (error_code_name(static_cast<ErrorCode>(i)) == name) return static_cast<ErrorCode>(i);
    return std::nullopt;
}

std::optional<Op> op_from_name(std::string_view name) {
    for (const auto& [o, n] : op_names)
        if (n == name) return o;
    return std::nullopt;
}

bool op_needs_session(Op op) {
    return op != Op::register_ && op != Op::login && op != Op::ping;
}

}  // namespace warren
