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
    if (ctx.state.rooms_owned_by(ctx.me()) >= ctx.config.rooms_owned_max)
        return ctx.fail(ErrorCode::conflict, "you own too many rooms");
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
    ctx.emit(std::move(to),
             event::MembershipChanged{room->name, ctx.my_user().name, false, false, r.reason});
}

// Public rooms (an index of them) merged in key order with the caller's own private rooms:
// the cost follows the page and the caller's memberships, never the number of rooms.
void list_rooms(OpContext& ctx, ListRooms& r) {
    size_t n = ctx.page_limit(r.limit, ctx.config.rooms_page_max);
    std::string after = r.cursor ? name_key(*r.cursor) : std::string();
    std::vector<std::pair<std::string, RoomId>> mine;
    for (RoomId id : ctx.my_user().rooms)
        if (const Room* room = ctx.state.room(id); room && room->is_private)
            if (std::string key = name_key(room->name); !r.cursor || key > after)
                mine.emplace_back(std::move(key), id);
    std::sort(mine.begin(), mine.end());
    const auto& pub = ctx.state.public_rooms_by_key();
    auto p = r.cursor ? pub.upper_bound(after) : pub.begin();
    auto m = mine.begin();
    reply::RoomPage page;
    while (p != pub.end() || m != mine.end()) {
        bool take_public = m == mine.end() || (p != pub.end() && p->first < m->first);
        RoomId id = take_public ? (p++)->second : (m++)->second;
        if (page.rooms.size() == n) {
            page.next_cursor = name_key(page.rooms.back().name);
            break;
        }
        page.rooms.push_back(room_view(ctx.state, *ctx.state.room(id)));
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
