// OpContext: what a chat handler works with while it runs one request, and the Outcome it
// fills. Handlers look things up (each lookup that fails answers for them: NOT_FOUND,
// FORBIDDEN), then refuse or change state through apply(), answer with ok() or fail(), and
// address events with emit(). Internal to core/chat/.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/chat/chat.h"
#include "core/chat/views.h"
#include "core/security/guard.h"

namespace warren {

class OpContext {
  public:
    OpContext(const Config& config, const Guard& guard, Entropy& entropy, ChatState& state,
              Sessions& sessions, const Caller& caller, const Gate& gate, Outcome& out,
              const Validated* request)
        : config(config),
          guard(guard),
          entropy(entropy),
          state(state),
          sessions(sessions),
          caller(caller),
          gate(gate),
          out(out),
          request_(request) {}

    const Config& config;
    const Guard& guard;
    Entropy& entropy;
    ChatState& state;
    Sessions& sessions;
    const Caller& caller;
    const Gate& gate;
    Outcome& out;

    UserId me() const {
        WARREN_CHECK(caller.user.has_value());
        return *caller.user;
    }
    const User& my_user() const;
    Time now() const { return caller.now; }

    // ---- answering ------------------------------------------------------------------------
    void ok(ReplyBody body) { out.reply = std::move(body); }
    void fail(ErrorCode code, std::string message, std::string field = {},
              std::optional<int64_t> retry_after_ms = {});
    void busy() { fail(ErrorCode::unavailable, "server busy", {}, config.retry_after_ms); }
    // Answers UNAVAILABLE and returns true when state changes are refused now; call it after
    // every other check and before the first apply().
    bool refuse_write();
    // Applies one mutation to memory and records it, with its undo, for the commit.
    void apply(Mutation m);
    void undo_with(Undo u) { out.undo.push_back(std::move(u)); }
    void emit(std::vector<ConnId> to, Event e);
    void emit(std::optional<PresenceChange> p);
    void signal(Signal s) { out.signals.push_back(std::move(s)); }
    // Asks storage; the continuation answers.
    void query(StoredQuery what, Continuation then, bool pause = false);

    // ---- lookups that answer when they fail -------------------------------------------------
    Room* room_or_fail(std::string_view name);
    // The room, if the caller is a member (FORBIDDEN otherwise).
    Room* my_room_or_fail(std::string_view name);
    User* user_or_fail(std::string_view name);
    // The message from memory; otherwise nullptr, after either answering (NOT_FOUND,
    // UNAVAILABLE) or asking storage for it, in which case the request runs again once the
    // message is in memory.
    MessageRow* message_or_fetch(MessageId id);
    // NOT_FOUND for someone else's direct message or a private room one is not in, FORBIDDEN
    // for a public room one is not in.
    bool visible_or_fail(const MessageRow& m);

    std::string name_of(UserId id) const;
    uint32_t page_limit(const std::optional<int64_t>& asked, uint32_t max) const;

  private:
    const Validated* request_;  // the request running (nullptr for a continuation)
};

// One handler per op (the op table names them), and the continuations of effects. A handler
// may move strings out of its request once every check has passed (a request that waits for
// a message from storage is copied before that).
#define WARREN_OP(id, wire, type, weight, access, effect, handler) \
    void handler(OpContext& ctx, type& r);  // NOLINT(bugprone-macro-parentheses): a type
#include "core/ops/ops.def"
#undef WARREN_OP

// Joins the invitee to the room (ACCEPT_INVITATION, or JOIN_ROOM of a private room).
void accept_pending(OpContext& ctx, const InvitationRow& pending);

void finish_register(OpContext& ctx, const after::Hash& job, const HashResult& result);
void finish_login(OpContext& ctx, const after::Hash& job, const HashResult& result);
void finish_history(OpContext& ctx, const after::History& job, std::vector<MessageRow> rows);
void finish_thread(OpContext& ctx, const after::Thread& job, std::vector<MessageRow> rows);
void finish_search(OpContext& ctx, const after::Search& job, std::vector<MessageRow> rows);

}  // namespace warren
