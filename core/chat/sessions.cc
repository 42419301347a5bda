#include "core/chat/sessions.h"

namespace warren {

std::optional<UserId> Sessions::user_of(ConnId conn) const {
    auto it = bindings_.find(conn);
    if (it == bindings_.end() || it->second.user == 0) return std::nullopt;
    return it->second.user;
}

const std::string& Sessions::token_hash_of(ConnId conn) const {
    static const std::string none;
    auto it = bindings_.find(conn);
    return it == bindings_.end() ? none : it->second.token_hash;
}

std::vector<ConnId> Sessions::connections_with(UserId user, const std::string& token_hash) const {
    std::vector<ConnId> out;
    if (const User* u = state_.user(user))
        for (ConnId c : u->conns)
            if (token_hash_of(c) == token_hash) out.push_back(c);
    return out;
}

std::optional<PresenceChange> Sessions::closed(ConnId conn) {
    std::optional<PresenceChange> p = unbind(conn);
    bindings_.erase(conn);
    return p;
}

std::optional<PresenceChange> Sessions::bind(ConnId conn, UserId user, std::string token_hash) {
    Binding& b = bindings_[conn];
    b.user = user;
    b.token_hash = std::move(token_hash);
    User* u = state_.user(user);
    WARREN_CHECK(u != nullptr);
    u->conns.insert(conn);
    if (u->conns.size() == 1) return presence(*u, true);
    return std::nullopt;
}

std::optional<PresenceChange> Sessions::unbind(ConnId conn, bool announce) {
    auto it = bindings_.find(conn);
    if (it == bindings_.end() || it->second.user == 0) return std::nullopt;
    UserId user = std::exchange(it->second.user, 0);
    it->second.token_hash.clear();
    User* u = state_.user(user);
    if (!u) return std::nullopt;
    u->conns.erase(conn);
    if (u->conns.empty() && announce) return presence(*u, false);
    return std::nullopt;
}

Undo Sessions::undo_bind(ConnId conn) {
    return [this, conn] { (void)unbind(conn, false); };
}

Undo Sessions::undo_unbind(ConnId conn, UserId user, std::string token_hash) {
    return [this, conn, user, h = std::move(token_hash)] {
        auto it = bindings_.find(conn);
        User* u = state_.user(user);
        if (it == bindings_.end() || !u) return;  // the connection has gone meanwhile
        it->second = Binding{user, h};
        u->conns.insert(conn);
    };
}

// PRESENCE goes to the connections of every other user sharing a room with `u`.
std::optional<PresenceChange> Sessions::presence(const User& u, bool online) const {
    std::set<ConnId> to;
    for (RoomId rid : u.rooms)
        if (const Room* room = state_.room(rid))
            for (UserId m : room->members)
                if (m != u.id)
                    if (const User* other = state_.user(m))
                        to.insert(other->conns.begin(), other->conns.end());
    if (to.empty()) return std::nullopt;
    return PresenceChange{{to.begin(), to.end()}, event::Presence{u.name, online}};
}

}  // namespace warren
