// Invitations: INVITE_USER, ACCEPT_INVITATION, DECLINE_INVITATION, LIST_INVITATIONS, and
// accepting by JOIN_ROOM. An expired invitation is invisible at once and closed durably by
// Chat::expire_invitations on the next tick that may write.
#include "core/chat/context.h"

namespace warren {

namespace {

// The caller's pending, unexpired invitation named by id or by room; someone else's is as
// invisible as a missing one.
const InvitationRow* my_invitation_or_fail(OpContext& ctx, const InvitationAnswer& r) {
    const InvitationRow* inv = nullptr;
    if (r.invitation_id) {
        inv = ctx.state.invitation(*r.invitation_id);
    } else if (const Room* room = ctx.state.find_room(*r.room)) {
        inv = ctx.state.invitation_to(room->id, ctx.me());
    }
    if (!inv || inv->to != ctx.me() || inv->expires_ms <= ctx.now().wall_ms) {
        ctx.fail(ErrorCode::not_found, "no pending invitation");
        return nullptr;
    }
    return inv;
}

void tell_inviter(OpContext& ctx, const InvitationRow& inv, event::InvitationChanged::What what) {
    ctx.emit(user_conns(ctx.state, inv.from),
             event::InvitationChanged{what, invitation_view(ctx.state, inv)});
}

}  // namespace

void invite_user(OpContext& ctx, InviteUser& r) {
    Room* room = ctx.room_or_fail(r.room);
    if (!room) return;
    User* invitee = ctx.user_or_fail(r.user);
    if (!invitee) return;
    UserId me = ctx.me();
    // Attempts count, refused ones too: spamming invitations is the behaviour scored.
    ctx.signal(Signal{Signal::Kind::invitation_sent});
    if (!room->members.contains(me))
        return ctx.fail(ErrorCode::forbidden, "not a member of '" + room->name + "'");
    if (room->members.contains(invitee->id))
        return ctx.fail(ErrorCode::conflict, invitee->name + " is already a member");
    if (ctx.state.invitation_to(room->id, invitee->id))
        return ctx.fail(ErrorCode::conflict, invitee->name + " is already invited");
    if (ctx.state.pending_invitations_by(me) >= ctx.config.invitations_pending_max)
        return ctx.fail(ErrorCode::conflict, "you have too many pending invitations");
    if (ctx.refuse_write()) return;
    int64_t now = ctx.now().wall_ms;
    InvitationRow inv{ctx.state.take_invitation_id(),    room->id, me, invitee->id, now,
                      now + ctx.config.invitation_ttl_ms};
    ctx.apply(inv);
    InvitationView view = invitation_view(ctx.state, inv);
    ctx.ok(reply::Invitation{view});
    ctx.emit(user_conns(ctx.state, invitee->id, ctx.caller.conn),
             event::InvitationChanged{event::InvitationChanged::What::received, view});
}

void accept_pending(OpContext& ctx, const InvitationRow& pending) {
    InvitationRow inv = pending;  // `pending` lives in state that the close below removes
    Room& room = *ctx.state.room(inv.room);
    UserId me = inv.to;
    // Already a member (joined since the invitation): accepting only closes it.
    bool joins = !room.members.contains(me);
    int64_t now = ctx.now().wall_ms;
    ctx.apply(InvitationClose{inv.id, InvitationClose::Why::accepted});
    if (joins) ctx.apply(MemberRow{room.id, me, now});
    ctx.ok(reply::Room{room_view(ctx.state, room)});
    tell_inviter(ctx, inv, event::InvitationChanged::What::accepted);
    if (!joins) return;
    ctx.emit(member_conns(ctx.state, room, ctx.caller.conn),
             event::MembershipChanged{room.name, ctx.name_of(me), true});
}

void accept_invitation(OpContext& ctx, AcceptInvitation& r) {
    const InvitationRow* inv = my_invitation_or_fail(ctx, r);
    if (!inv || ctx.refuse_write()) return;
    accept_pending(ctx, *inv);
}

void decline_invitation(OpContext& ctx, DeclineInvitation& r) {
    const InvitationRow* pending = my_invitation_or_fail(ctx, r);
    if (!pending || ctx.refuse_write()) return;
    InvitationRow inv = *pending;
    ctx.apply(InvitationClose{inv.id, InvitationClose::Why::declined});
    ctx.ok(reply::Done{});
    tell_inviter(ctx, inv, event::InvitationChanged::What::declined);
}

void list_invitations(OpContext& ctx, ListInvitations&) {
    reply::Invitations out;
    for (const InvitationRow* inv : ctx.state.invitations_of(ctx.me()))
        if (inv->expires_ms > ctx.now().wall_ms)
            out.invitations.push_back(invitation_view(ctx.state, *inv));
    ctx.ok(std::move(out));
}

}  // namespace warren
