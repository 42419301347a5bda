// Rooms: CREATE_ROOM, JOIN_ROOM, LEAVE_ROOM, LIST_ROOMS, SET_TOPIC, REQUEST_USER_LIST.
// Rooms are not secret: an op on an existing room one may not use is FORBIDDEN, but
// LIST_ROOMS hides private rooms the caller does not belong to.
#include <algorithm>

#include "core/chat/context.h"
#include "core/validate/rules.h"

namespace warren {

void create_room(OpContext& ctx, CreateRoom& r) {
    if (ctx.state.find_room(r.room))
        return ctx.fail(ErrorCode::conflict, "room '" + r.room + "' exists");
    if (ctx.refuse_write()) return;
    RoomId id = ctx.state.take_room_id();
    int64_t now = ctx.now().wall_ms;
    ctx.apply(RoomRow{id, r.room, r.topic.value_or(""), r.visibility == "private", ctx.me(), now});
    ctx.apply(MemberRow{id, ctx.me(), now});
    ctx.ok(reply::Room{room_view(ctx.state, *ctx.state.room(id))});
}

void join_room(OpContext& ctx, JoinRoom& r) {
    Room* room = ctx.room_or_fail(r.room);
    if (!room) return;
    UserId me = ctx.me();
    if (room->members.contains(me)) return ctx.ok(reply::Room{room_view(ctx.state, *room)});
    // Joining accepts a pending invitation (the only way into a private room).
    const InvitationRow* inv = ctx.state.invitation_to(room->id, me);
    if (inv && inv->expires_ms > ctx.now().wall_ms) {
        if (ctx.refuse_write()) return;
        return accept_pending(ctx, *inv);
    }
    if (room->is_private)
        return ctx.fail(ErrorCode::forbidden, "room '" + room->name + "' is private");
    if (ctx.refuse_write()) return;
    ctx.signal(Signal{Signal::Kind::membership_change});
    ctx.apply(MemberRow{room->id, me, ctx.now().wall_ms});
    ctx.ok(reply::Room{room_view(ctx.state, *room)});
    ctx.emit(member_conns(ctx.state, *room, ctx.caller.conn),
             event::MembershipChanged{room->name, ctx.my_user().name, true});
}

void leave_room(OpContext& ctx, LeaveRoom& r) {
    Room* room = ctx.room_or_fail(r.room);
    if (!room) return;
    UserId me = ctx.me();
    if (!room->members.contains(me))
        return ctx.fail(ErrorCode::conflict, "not a member of '" + room->name + "'");
    if (ctx.refuse_write()) return;
    ctx.signal(Signal{Signal::Kind::membership_change});
    // Recipients include the leaver's other connections, computed before the removal.
    std::vector<ConnId> to = member_conns(ctx.state, *room, ctx.caller.conn);
    ctx.apply(MemberDelete{room->id, me});
    ctx.ok(reply::Done{});
    ctx.emit(std::move(to), event::MembershipChanged{room->name, ctx.my_user().name, false});
}

void list_rooms(OpContext& ctx, ListRooms& r) {
    size_t n = ctx.page_limit(r.limit, ctx.config.rooms_page_max);
    UserId me = ctx.me();
    const auto& by_key = ctx.state.rooms_by_key();
    auto it = r.cursor ? by_key.upper_bound(name_key(*r.cursor)) : by_key.begin();
    reply::RoomPage page;
    for (; it != by_key.end(); ++it) {
        const Room* room = ctx.state.room(it->second);
        if (room->is_private && !room->members.contains(me)) continue;
        if (page.rooms.size() == n) {
            page.next_cursor = name_key(page.rooms.back().name);
            break;
        }
        page.rooms.push_back(room_view(ctx.state, *room));
    }
    ctx.ok(std::move(page));
}

void set_topic(OpContext& ctx, SetTopic& r) {
    Room* room = ctx.room_or_fail(r.room);
    if (!room) return;
    if (room->owner != ctx.me() || !room->members.contains(ctx.me()))
        return ctx.fail(ErrorCode::forbidden, "only the owner, while a member, may set the topic");
    if (ctx.refuse_write()) return;
    ctx.apply(RoomTopic{room->id, r.topic});
    ctx.ok(reply::Room{room_view(ctx.state, *room)});
    ctx.emit(member_conns(ctx.state, *room, ctx.caller.conn),
             event::TopicChanged{room->name, r.topic, ctx.my_user().name});
}

void request_user_list(OpContext& ctx, RequestUserList& r) {
    std::vector<const User*> users;
    if (r.room) {
        Room* room = ctx.room_or_fail(*r.room);
        if (!room) return;
        if (room->is_private && !room->members.contains(ctx.me()))
            return ctx.fail(ErrorCode::forbidden, "room '" + room->name + "' is private");
        for (UserId id : room->members)
            if (const User* u = ctx.state.user(id)) users.push_back(u);
    } else {
        for (const auto& [id, u] : ctx.state.users())
            if (!u.conns.empty()) users.push_back(&u);
    }
    std::sort(users.begin(), users.end(),
              [](const User* x, const User* y) { return name_key(x->name) < name_key(y->name); });
    if (users.size() > ctx.config.user_list_max) users.resize(ctx.config.user_list_max);
    reply::Users out;
    out.users.reserve(users.size());
    for (const User* u : users) out.users.push_back(UserView{u->name, !u->conns.empty()});
    ctx.ok(std::move(out));
}

}  // namespace warren
