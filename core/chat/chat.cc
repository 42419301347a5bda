#include "core/chat/chat.h"

#include "core/chat/context.h"
#include "core/validate/rules.h"

namespace warren {

namespace {

// Dispatch, derived from the op table: the request's op names its handler.
void dispatch(OpContext& ctx, Request& r) {
    switch (op_of(r)) {
#define WARREN_OP(id, wire, type, weight, access, effect, handler) \
    case Op::id:                                                   \
        return handler(ctx, std::get<type>(r));
#include "core/ops/ops.def"
#undef WARREN_OP
    }
}

}  // namespace

Chat::Chat(const Config& config, const Guard& guard, Entropy& entropy, const Snapshot& snapshot)
    : config_(config),
      guard_(guard),
      entropy_(entropy),
      state_(config.room_cache_messages_max, config.conversation_cache_messages_max,
             config.conversations_cached_max, config.old_messages_cached_max),
      sessions_(state_) {
    state_.load(snapshot);
    // Rights go to the accounts holding the configured names now; a name nobody holds is
    // reserved, so that whoever registers it first cannot become an admin.
    for (const std::string& name : config.admin_usernames) {
        if (User* u = state_.find_user(name)) {
            u->admin = true;
        } else {
            state_.reserve_name(name_key(name));
            unbound_admins_.push_back(name);
        }
    }
}

std::vector<ConnId> Chat::drop_expired_sessions(int64_t now_wall_ms) {
    std::vector<ConnId> out;
    for (const SessionRow& s : state_.drop_expired_sessions(now_wall_ms)) {
        for (ConnId c : sessions_.connections_with(s.user, s.token_hash)) out.push_back(c);
    }
    return out;
}

Outcome Chat::revoke_sessions(UserId user) {
    Outcome out;
    for (const std::string& hash : state_.sessions_of(user)) {
        for (ConnId c : sessions_.connections_with(user, hash)) out.revoked.push_back(c);
        Mutation m = SessionDelete{hash};
        out.undo.push_back(state_.apply(m));
        out.mutations.push_back(std::move(m));
    }
    return out;
}

void Outcome::clear() {
    reply.reset();
    mutations.clear();
    undo.clear();
    events.clear();
    signals.clear();
    effect.reset();
    write_refused = false;
    logged_out = false;
    revoked.clear();
}

Outcome& Chat::execute(const Caller& caller, Validated& request, const Gate& gate) {
    OpContext ctx(config_, guard_, entropy_, state_, sessions_, caller, gate, fresh(), &request);
    WARREN_CHECK(caller.user || !op_needs_session(request.op()));
    dispatch(ctx, request.request());
    // Exactly one of: an answer, or an effect that will answer.
    WARREN_CHECK(ctx.out.reply.has_value() != ctx.out.effect.has_value());
    WARREN_CHECK(ctx.out.mutations.empty() || op_info(request.op()).writes);
    return ctx.out;
}

Outcome& Chat::resume(const Caller& caller, Continuation then, EffectResult result,
                      const Gate& gate) {
    if (!caller.connected) return scratch_ = abandon(then);
    if (auto* rerun = std::get_if<after::Rerun>(&then)) {
        const QueryRows& rows = std::get<QueryRows>(result);
        if (!rows.ok || rows.rows.empty()) {
            Outcome& out = fresh();
            out.reply = rows.ok ? Error{ErrorCode::not_found, "no such message", {}, {}}
                                : Error{ErrorCode::unavailable,
                                        "storage unavailable",
                                        {},
                                        config_.retry_after_ms};
            return out;
        }
        state_.remember(rows.rows.front());
        // The connection's session may have gone while the message was read (a login rolled
        // back with its failed commit): the request is refused as admission would refuse it now.
        if (!caller.user && op_needs_session(rerun->request->op())) {
            Outcome& out = fresh();
            out.reply = Error{ErrorCode::unauthenticated, "log in first", {}, {}};
            return out;
        }
        // Run the request again, now that the message is in memory.
        return execute(caller, *rerun->request, gate);
    }
    OpContext ctx(config_, guard_, entropy_, state_, sessions_, caller, gate, fresh(), nullptr);
    if (auto* job = std::get_if<after::Hash>(&then)) {
        const HashResult& r = std::get<HashResult>(result);
        if (job->op == Op::register_)
            finish_register(ctx, *job, r);
        else
            finish_login(ctx, *job, r);
        return ctx.out;
    }
    QueryRows& rows = std::get<QueryRows>(result);
    if (!rows.ok && rows.too_costly) {
        ctx.fail(ErrorCode::unavailable, "the search took too long; use more specific words", {},
                 config_.retry_after_ms);
    } else if (!rows.ok) {
        ctx.fail(ErrorCode::unavailable, "storage unavailable", {}, config_.retry_after_ms);
    } else if (auto* h = std::get_if<after::History>(&then)) {
        finish_history(ctx, *h, std::move(rows.rows));
    } else if (auto* t = std::get_if<after::Thread>(&then)) {
        finish_thread(ctx, *t, std::move(rows.rows));
    } else if (auto* s = std::get_if<after::Search>(&then)) {
        finish_search(ctx, *s, std::move(rows.rows));
    }
    return ctx.out;
}

Outcome Chat::abandon(const Continuation& then) {
    Outcome out;
    if (const auto* job = std::get_if<after::Hash>(&then)) {
        if (job->op == Op::register_)
            sessions_.release(name_key(job->username));
        else
            out.signals.push_back(Signal{Signal::Kind::login_finished, name_key(job->username)});
    }
    return out;
}

Outcome Chat::connection_closed(ConnId conn, bool end_session, bool can_write,
                                std::string_view quit_reason) {
    Outcome out;
    if (const std::string& h = sessions_.token_hash_of(conn);
        end_session && can_write && !h.empty() && state_.session(h)) {
        Mutation m = SessionDelete{h};
        out.undo.push_back(state_.apply(m));
        out.mutations.push_back(std::move(m));
    }
    std::optional<UserId> who = sessions_.user_of(conn);
    const User* guest = who ? state_.user(*who) : nullptr;
    if (guest && !guest->guest) guest = nullptr;
    // The presence goes out first: its audience is everyone sharing a room, before it leaves.
    if (auto p = sessions_.closed(conn)) {
        p->presence.quit = guest != nullptr;
        if (guest) p->presence.reason = quit_reason;
        // Built in place: GCC 12 at -O3 warns falsely (maybe-uninitialized) on moving a
        // temporary Addressed whose Event holds a Presence.
        Addressed& a = out.events.emplace_back();
        a.to = std::move(p->to);
        a.event = std::move(p->presence);
    }
    if (guest) guest_gone(*guest, conn, can_write, out);
    return out;
}

// A guest's only connection is the guest: it leaves its rooms and its name is freed. Memory
// does so whatever storage says, so these changes have no undo: a store left behind (writes
// refused, the batch failed) still holds the guest, and the next start retires every guest.
void Chat::guest_gone(const User& guest, ConnId conn, bool can_write, Outcome& out) {
    UserId id = guest.id;
    std::string name = guest.name;
    auto persist = [&](Mutation m) {
        (void)state_.apply(m);
        if (can_write) out.mutations.push_back(std::move(m));
    };
    std::vector<RoomId> rooms(guest.rooms.begin(), guest.rooms.end());
    for (RoomId r : rooms) {
        const Room& room = *state_.room(r);
        std::vector<ConnId> to = member_conns(state_, room, conn);
        std::string room_name = room.name;
        persist(MemberDelete{r, id});
        out.events.push_back(Addressed{
            std::move(to), event::MembershipChanged{std::move(room_name), name, false, true}});
    }
    persist(GuestRetire{id, !state_.user(id)->referenced});
}

Outcome Chat::expire_invitations(Time now) {
    Outcome out;
    while (const InvitationRow* inv = state_.next_to_expire()) {
        if (inv->expires_ms > now.wall_ms) break;
        Mutation m = InvitationClose{inv->id, InvitationClose::Why::expired};
        out.undo.push_back(state_.apply(m));
        out.mutations.push_back(std::move(m));
    }
    return out;
}

void Chat::committed(const std::vector<Mutation>& mutations) {
    for (const auto& m : mutations)
        std::visit(
            [this](const auto& r) {
                using T = std::decay_t<decltype(r)>;
                if constexpr (std::is_same_v<T, MessageRow>) state_.set_committed_through(r.id);
                if constexpr (std::is_same_v<T, MessageEdit> || std::is_same_v<T, MessageDelete>)
                    state_.settled(r.id);
                if constexpr (std::is_same_v<T, ReactionAdd> || std::is_same_v<T, ReactionRemove>)
                    state_.settled(r.message);
            },
            m);
}

std::optional<int64_t> Chat::next_expiry_wall_ms() const {
    const InvitationRow* inv = state_.next_to_expire();
    if (!inv) return std::nullopt;
    return inv->expires_ms;
}

std::string Chat::user_name(UserId id) const {
    const User* u = state_.user(id);
    return u ? u->name : std::string();
}

}  // namespace warren
