#include "core/chat/context.h"

#include <algorithm>

namespace warren {

const User& OpContext::my_user() const {
    const User* u = state.user(me());
    WARREN_CHECK(u != nullptr);
    return *u;
}

void OpContext::fail(ErrorCode code, std::string message, std::string field,
                     std::optional<int64_t> retry_after_ms) {
    out.reply = Error{code, std::move(message), std::move(field), retry_after_ms};
}

bool OpContext::refuse_write() {
    if (!gate.write_refusal) return false;
    out.reply = *gate.write_refusal;
    out.write_refused = true;
    return true;
}

void OpContext::apply(Mutation m) {
    WARREN_CHECK(!gate.write_refusal);
    out.undo.push_back(state.apply(m));
    out.mutations.push_back(std::move(m));
}

void OpContext::emit(std::vector<ConnId> to, Event e) {
    if (to.empty()) return;
    out.events.push_back(Addressed{std::move(to), std::move(e)});
}

void OpContext::emit(std::optional<PresenceChange> p) {
    if (p) emit(std::move(p->to), std::move(p->presence));
}

void OpContext::query(StoredQuery what, Continuation then, bool pause) {
    if (gate.queries_full) return busy();
    out.effect = Effect{std::move(what), std::move(then), pause};
}

Room* OpContext::room_or_fail(std::string_view name) {
    Room* room = state.find_room(name);
    if (!room) fail(ErrorCode::not_found, "no room named '" + std::string(name) + "'");
    return room;
}

Room* OpContext::my_room_or_fail(std::string_view name) {
    Room* room = room_or_fail(name);
    if (room && !room->members.contains(me())) {
        fail(ErrorCode::forbidden, "not a member of '" + room->name + "'");
        return nullptr;
    }
    return room;
}

User* OpContext::user_or_fail(std::string_view name) {
    User* u = state.find_user(name);
    if (!u) fail(ErrorCode::not_found, "no user named '" + std::string(name) + "'");
    return u;
}

MessageRow* OpContext::message_or_fetch(MessageId id) {
    if (MessageRow* m = state.message(id)) return m;
    if (id > state.last_message_id()) {
        fail(ErrorCode::not_found, "no message " + std::to_string(id));
        return nullptr;
    }
    WARREN_CHECK(request_ != nullptr);
    // Storage answers only if the caller may see the message (one of their rooms, a public
    // room, or their own conversation), so a probe of other rooms' ids reads nothing more
    // than a probe of missing ones.
    StoredQuery what;
    what.kind = StoredQuery::Kind::message;
    what.message = id;
    const User& u = my_user();
    what.search.rooms.assign(u.rooms.begin(), u.rooms.end());
    what.search.dm_user = u.id;
    query(std::move(what), after::Rerun{std::make_shared<Validated>(*request_)}, true);
    return nullptr;
}

bool OpContext::visible_or_fail(const MessageRow& m) {
    if (m.room == 0) {
        if (m.author == me() || m.to == me()) return true;
        fail(ErrorCode::not_found, "no message " + std::to_string(m.id));
        return false;
    }
    const Room* room = state.room(m.room);
    if (room && room->members.contains(me())) return true;
    // A private room one is not in is not named: its messages do not exist for the caller.
    if (!room || room->is_private)
        fail(ErrorCode::not_found, "no message " + std::to_string(m.id));
    else
        fail(ErrorCode::forbidden, "not a member of '" + room->name + "'");
    return false;
}

std::string OpContext::name_of(UserId id) const {
    const User* u = state.user(id);
    return u ? u->name : std::string();
}

uint32_t OpContext::page_limit(const std::optional<int64_t>& asked, uint32_t max) const {
    return static_cast<uint32_t>(std::min<int64_t>(asked.value_or(config.page_default), max));
}

}  // namespace warren
