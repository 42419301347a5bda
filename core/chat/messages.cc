// Messages: SEND_MESSAGE, DIRECT_MESSAGE, EDIT_MESSAGE, DELETE_MESSAGE, REACT, UNREACT.
// A message older than memory holds is read from storage first (message_or_fetch), and the
// request runs again once it is in memory.
#include <algorithm>

#include "core/chat/context.h"
#include "core/validate/rules.h"

namespace warren {

namespace {

// FNV-1a: a cheap fingerprint of message text for the repeated-text detector.
uint64_t text_fingerprint(std::string_view text) {
    uint64_t h = 1469598103934665603ULL;
    for (char c : text) {
        h ^= static_cast<unsigned char>(c);
        h *= 1099511628211ULL;
    }
    return h;
}

// reply_to must name a message of the same room (room > 0) or conversation. An old one may
// have to be read from storage first, in which case the request runs again (false, no reply).
// `optional` (IRC's reply tags): one that names no such message in memory is dropped, not
// refused (nor read from storage).
bool reply_to_ok(OpContext& ctx, std::optional<int64_t>& reply_to, bool optional, RoomId room,
                 PeerPair peers) {
    if (!reply_to) return true;
    auto refuse = [&](const char* why) {
        if (optional) {
            reply_to.reset();
            return true;
        }
        ctx.fail(ErrorCode::bad_request, why, "reply_to");
        return false;
    };
    if (*reply_to > ctx.state.last_message_id()) return refuse("reply_to names no message");
    // Optional ones are never fetched: only a message still in memory is linked.
    const MessageRow* m =
        optional ? ctx.state.message(*reply_to) : ctx.message_or_fetch(*reply_to);
    if (!m) return optional ? refuse("") : false;
    bool same = room ? m->room == room : (m->room == 0 && conversation_of(*m) == peers);
    if (same) return true;
    return refuse("reply_to must name a message of the same room or conversation");
}

// Every check has passed: the message goes to memory and the commit; the reply and the event
// share one view of it.
void post(OpContext& ctx, MessageRow m, std::vector<ConnId> to, bool notice) {
    bool direct = m.room == 0;
    auto view = std::make_shared<const SharedMessage>(message_view(ctx.state, m));
    ctx.apply(std::move(m));
    ctx.ok(reply::Message{view});
    ctx.emit(std::move(to), event::MessagePosted{std::move(view), direct, notice});
}

// The message a change names, if the caller may see it and it is not deleted.
MessageRow* changeable(OpContext& ctx, MessageId id) {
    MessageRow* m = ctx.message_or_fetch(id);
    if (!m || !ctx.visible_or_fail(*m)) return nullptr;
    if (m->deleted) {
        ctx.fail(ErrorCode::conflict, "the message was deleted");
        return nullptr;
    }
    return m;
}

bool is_admin(const OpContext& ctx) {
    return ctx.my_user().admin;
}

// MESSAGE_DELETED tells each side of a conversation the other party's name.
void announce_deleted_dm(OpContext& ctx, const MessageRow& m) {
    const User* recipient = ctx.state.user(m.to);
    for (auto [side, other] : {std::pair{m.author, m.to}, std::pair{m.to, m.author}}) {
        const User* o = ctx.state.user(other);
        if (!ctx.state.user(side) || !o) continue;
        ctx.emit(user_conns(ctx.state, side, ctx.caller.conn),
                 event::MessageDeleted{m.id, {}, o->name, ctx.my_user().name,
                                       recipient ? recipient->name : std::string()});
        if (side == other) break;  // a note to oneself: one audience
    }
}

void change_reaction(OpContext& ctx, const Reaction& r, bool add) {
    MessageRow* m = changeable(ctx, r.message_id);
    if (!m) return;
    UserId me = ctx.me();
    auto it = m->reactions.find(r.emoji);
    bool mine = it != m->reactions.end() &&
                std::find(it->second.begin(), it->second.end(), me) != it->second.end();
    if (add && mine) return ctx.fail(ErrorCode::conflict, "already reacted with that emoji");
    if (!add && !mine) return ctx.fail(ErrorCode::not_found, "no such reaction");
    if (add && it == m->reactions.end() && m->reactions.size() >= ctx.config.emoji_per_message_max)
        return ctx.fail(ErrorCode::conflict, "too many different reactions on this message");
    if (ctx.refuse_write()) return;
    if (add)
        ctx.apply(ReactionAdd{r.message_id, me, r.emoji});
    else
        ctx.apply(ReactionRemove{r.message_id, me, r.emoji});
    ctx.ok(reply::Done{});
    const MessageRow& now = *ctx.state.message(r.message_id);
    event::ReactionChanged changed{r.message_id, r.emoji, ctx.my_user().name, add, {}, {}};
    if (const Room* room = now.room ? ctx.state.room(now.room) : nullptr)
        changed.room = room->name;
    else if (const User* to = ctx.state.user(now.to))
        changed.to = to->name;
    ctx.emit(message_audience(ctx.state, now, ctx.caller.conn), std::move(changed));
}

}  // namespace

void send_message(OpContext& ctx, SendMessage& r) {
    Room* room = ctx.my_room_or_fail(r.room);
    if (!room || !reply_to_ok(ctx, r.reply_to, r.reply_optional, room->id, {}) ||
        ctx.refuse_write())
        return;
    ctx.signal(Signal{.kind = Signal::Kind::room_message,
                      .room = room->id,
                      .text_hash = text_fingerprint(r.text)});
    post(ctx,
         MessageRow{ctx.state.take_message_id(), room->id, ctx.me(), std::move(r.text),
                    ctx.now().wall_ms, r.reply_to.value_or(0), 0},
         member_conns(ctx.state, *room, ctx.caller.conn), r.notice);
}

void direct_message(OpContext& ctx, DirectMessage& r) {
    User* to = ctx.user_or_fail(r.to);
    if (!to) return;
    UserId me = ctx.me();
    if (!reply_to_ok(ctx, r.reply_to, r.reply_optional, 0, peer_pair(me, to->id)) ||
        ctx.refuse_write())
        return;
    Signal dm{Signal::Kind::direct_message};
    dm.to = to->id;
    dm.account_created_ms = ctx.my_user().created_ms;
    ctx.signal(std::move(dm));
    // The recipient's connections and the sender's other ones (one set if writing to oneself).
    std::set<ConnId> recipients(to->conns.begin(), to->conns.end());
    recipients.insert(ctx.my_user().conns.begin(), ctx.my_user().conns.end());
    recipients.erase(ctx.caller.conn);
    post(ctx,
         MessageRow{ctx.state.take_message_id(), 0, me, std::move(r.text), ctx.now().wall_ms,
                    r.reply_to.value_or(0), to->id},
         {recipients.begin(), recipients.end()}, r.notice);
}

void edit_message(OpContext& ctx, EditMessage& r) {
    MessageRow* m = ctx.message_or_fetch(r.message_id);
    if (!m || !ctx.visible_or_fail(*m)) return;
    if (m->author != ctx.me())
        return ctx.fail(ErrorCode::forbidden, "only the author may edit a message");
    if (m->deleted) return ctx.fail(ErrorCode::conflict, "the message was deleted");
    if (ctx.refuse_write()) return;
    ctx.apply(MessageEdit{r.message_id, r.text, ctx.now().wall_ms});
    m = ctx.state.message(r.message_id);
    auto view = std::make_shared<const SharedMessage>(message_view(ctx.state, *m));
    ctx.ok(reply::Message{view});
    ctx.emit(message_audience(ctx.state, *m, ctx.caller.conn),
             event::MessageEdited{std::move(view)});
}

void delete_message(OpContext& ctx, DeleteMessage& r) {
    MessageRow* m = ctx.message_or_fetch(r.message_id);
    if (!m || !ctx.visible_or_fail(*m)) return;
    const Room* room = m->room ? ctx.state.room(m->room) : nullptr;
    UserId me = ctx.me();
    if (m->author != me && !(room && room->owner == me) && !is_admin(ctx))
        return ctx.fail(ErrorCode::forbidden,
                        "only the author, the room owner or an admin may delete a message");
    if (m->deleted) return ctx.fail(ErrorCode::conflict, "the message was already deleted");
    if (ctx.refuse_write()) return;
    MessageRow before = *m;
    ctx.apply(MessageDelete{r.message_id});
    ctx.ok(reply::Done{});
    if (!room) return announce_deleted_dm(ctx, before);
    ctx.emit(member_conns(ctx.state, *room, ctx.caller.conn),
             event::MessageDeleted{r.message_id, room->name, {}, ctx.my_user().name, {}});
}

void react(OpContext& ctx, React& r) {
    change_reaction(ctx, r, true);
}

void unreact(OpContext& ctx, Unreact& r) {
    change_reaction(ctx, r, false);
}

}  // namespace warren
