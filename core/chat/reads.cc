// Read markers: MARK_READ stores the caller's position in a room or a conversation and tells
// the caller's other connections. A marker never moves back: marking an older message (a
// client catching up late, a second device) is answered as done and changes nothing.
#include "core/chat/context.h"

namespace warren {

void mark_read(OpContext& ctx, MarkRead& r) {
    UserId me = ctx.me();
    ReadMarkerRow marker{me, 0, 0, r.message_id};
    event::ReadMarker moved{{}, {}, r.message_id};
    if (r.room) {
        Room* room = ctx.my_room_or_fail(*r.room);
        if (!room) return;
        marker.room = room->id;
        moved.room = room->name;
    } else {
        User* peer = ctx.user_or_fail(*r.with);
        if (!peer) return;
        marker.peer = peer->id;
        moved.with = peer->name;
    }
    if (r.message_id > ctx.state.last_message_id())
        return ctx.fail(ErrorCode::not_found, "no message " + std::to_string(r.message_id));
    if (r.message_id <= ctx.state.read_marker(me, marker.room, marker.peer))
        return ctx.ok(reply::Done{});
    if (ctx.refuse_write()) return;
    ctx.apply(marker);
    ctx.ok(reply::Done{});
    ctx.emit(user_conns(ctx.state, me, ctx.caller.conn), std::move(moved));
}

}  // namespace warren
