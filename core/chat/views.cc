#include "core/chat/views.h"

#include <set>

namespace warren {

namespace {
std::optional<std::string> name_of(const User* u) {
    if (!u) return std::nullopt;
    return u->name;
}
}  // namespace

RoomView room_view(const ChatState& s, const Room& room) {
    const User* owner = s.user(room.owner);
    return RoomView{room.name, room.topic, room.is_private, owner ? owner->name : std::string(),
                    static_cast<int64_t>(room.members.size())};
}

MessageView message_view(const ChatState& s, const MessageRow& m) {
    MessageView v;
    v.id = m.id;
    if (const Room* room = m.room ? s.room(m.room) : nullptr) v.room = room->name;
    v.to = name_of(m.to ? s.user(m.to) : nullptr);
    const User* author = s.user(m.author);
    v.author = name_of(author);
    v.author_guest = author && author->guest;
    v.text = m.text;
    v.ts_ms = m.ts_ms;
    v.reply_to = m.reply_to;
    v.edited_ms = m.edited_ms;
    v.deleted = m.deleted;
    v.reactions.reserve(m.reactions.size());
    for (const auto& [emoji, users] : m.reactions) {
        auto& names = v.reactions.emplace_back(emoji, std::vector<std::string>{}).second;
        for (UserId u : users)
            if (const User* user = s.user(u)) names.push_back(user->name);
    }
    return v;
}

InvitationView invitation_view(const ChatState& s, const InvitationRow& inv) {
    const Room* room = s.room(inv.room);
    const User* from = s.user(inv.from);
    const User* to = s.user(inv.to);
    return InvitationView{inv.id,
                          room ? room->name : std::string(),
                          from ? from->name : std::string(),
                          to ? to->name : std::string(),
                          inv.ts_ms,
                          inv.expires_ms};
}

std::vector<ConnId> member_conns(const ChatState& s, const Room& room, ConnId except) {
    std::vector<ConnId> to;
    for (UserId uid : room.members)
        if (const User* u = s.user(uid))
            for (ConnId c : u->conns)
                if (c != except) to.push_back(c);
    return to;
}

std::vector<ConnId> user_conns(const ChatState& s, UserId user, ConnId except) {
    std::vector<ConnId> to;
    if (const User* u = s.user(user))
        for (ConnId c : u->conns)
            if (c != except) to.push_back(c);
    return to;
}

std::vector<ConnId> message_audience(const ChatState& s, const MessageRow& m, ConnId except) {
    if (m.room) {
        const Room* room = s.room(m.room);
        return room ? member_conns(s, *room, except) : std::vector<ConnId>{};
    }
    std::set<ConnId> to;
    for (UserId u : {m.author, m.to})
        if (const User* user = s.user(u)) to.insert(user->conns.begin(), user->conns.end());
    to.erase(except);
    return {to.begin(), to.end()};
}

}  // namespace warren
