// Views and audiences: the chat state as the typed values replies and events carry (every id
// resolved to a name), and who is told about what. Pure reads of ChatState.
#pragma once

#include <vector>

#include "core/chat/state.h"
#include "core/ops/replies.h"

namespace warren {

RoomView room_view(const ChatState& s, const Room& room);
MessageView message_view(const ChatState& s, const MessageRow& m);
InvitationView invitation_view(const ChatState& s, const InvitationRow& inv);

// Logged-in connections of the room's members, except `except`.
std::vector<ConnId> member_conns(const ChatState& s, const Room& room, ConnId except);
// Logged-in connections of a user, except `except`.
std::vector<ConnId> user_conns(const ChatState& s, UserId user, ConnId except = 0);
// Connections that see events about `m` (its room's members, or both parties of a direct
// message), except `except`.
std::vector<ConnId> message_audience(const ChatState& s, const MessageRow& m, ConnId except);

}  // namespace warren
