// Chat: the chat machine. It owns the chat state (users, sessions, rooms, messages,
// invitations, which connection is logged in as whom) and runs the ops on it:
//
//   execute(caller, validated request, gate) -> Outcome&
//
// An Outcome is everything the request did, as values: the typed reply, the mutations
// (already applied to memory, with the undo actions that revert them exactly), the events
// with their audiences, behaviour signals for the security layer, and at most one effect
// (a password hash, a storage read) whose completion resume() continues. Chat never sees a
// connection, a batch, a byte or an output queue, and never reads a clock: the caller's Time
// comes in. What the rest of the core allows right now (writes, hashes, queries) comes in as
// a Gate, so each handler refuses in PROTOCOL.md's order: existence and permission first,
// then UNAVAILABLE, then the change.
//
// Handlers (one per op, named in the op table, grouped by domain in accounts.cc, rooms.cc,
// messages.cc, history.cc, invitations.cc, reads.cc) validate everything before their first
// mutation, so a refused request changes nothing.
#pragma once

#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "core/base.h"
#include "core/chat/records.h"
#include "core/chat/sessions.h"
#include "core/chat/signals.h"
#include "core/chat/state.h"
#include "core/config.h"
#include "core/effects.h"
#include "core/entropy.h"
#include "core/ops/events.h"
#include "core/ops/replies.h"
#include "core/validate/requests.h"

namespace warren {

class Guard;

// Who sent the request.
struct Caller {
    ConnId conn = 0;
    std::optional<UserId> user;  // logged in as
    std::string_view ip_key;     // whose security state applies (guard reads)
    Time now;
    bool connected = true;  // false: the connection went away while an effect ran
};

// What the rest of the core allows right now.
struct Gate {
    std::optional<Error> write_refusal;  // set: state changes are refused (UNAVAILABLE)
    bool hashes_full = false;            // no password hash may start
    bool queries_full = false;           // no storage read may start
};

// What to do when an effect completes.
namespace after {
struct Hash {  // REGISTER or LOGIN
    Op op = Op::login;
    std::string username;
};
struct History {
    HistoryQuery query;
};
struct Thread {
    MessageRow root;
    uint32_t limit = 0;
};
struct Search {
    uint32_t limit = 0;
};
// A message older than memory holds was read for this request: run it again.
struct Rerun {
    std::shared_ptr<Validated> request;
};
}  // namespace after
using Continuation =
    std::variant<after::Hash, after::History, after::Thread, after::Search, after::Rerun>;

struct Effect {
    std::variant<HashSpec, StoredQuery> what;
    Continuation then;
    // Later requests of the connection wait until it completes (they may depend on it).
    bool pause = false;
};

struct Outcome {
    // nullopt while an effect runs; its completion answers.
    std::optional<ReplyBody> reply;
    std::vector<Mutation> mutations;  // applied to memory, to be committed in this order
    std::vector<Undo> undo;           // reverts the mutations and session changes; run newest first
    std::vector<Addressed> events;
    std::vector<Signal> signals;
    std::optional<Effect> effect;
    bool write_refused = false;  // answered UNAVAILABLE because writes are refused
    bool logged_out = false;     // the connection's login deadline starts again
    // Connections whose session this request ended: closed with DISCONNECT SESSION_REVOKED.
    std::vector<ConnId> revoked;

    // Empties it, keeping the vectors' capacity.
    void clear();
};

class Chat {
  public:
    Chat(const Config& config, const Guard& guard, Entropy& entropy, const Snapshot& snapshot);
    Chat(const Chat&) = delete;
    Chat& operator=(const Chat&) = delete;

    // The Outcome returned by execute() and resume() is the chat machine's own scratch value,
    // valid until the next call into Chat: the caller moves out what it keeps, so its vectors
    // keep their capacity and a request allocates nothing for them.
    Outcome& execute(const Caller& caller, Validated& request, const Gate& gate);
    // An effect of an earlier Outcome completed.
    Outcome& resume(const Caller& caller, Continuation then, EffectResult result, const Gate& gate);
    // An effect will not complete (shutdown) or nobody waits for it: release what it held.
    Outcome abandon(const Continuation& then);
    // A new connection (not logged in yet).
    void connection_opened(ConnId conn) { sessions_.opened(conn); }
    // The connection is gone: it is logged out; the user's last connection announces offline.
    // With `end_session` its session ends too (durably): an IRC login's session was never
    // given to the client as a token, so nothing could resume it. A guest leaves its rooms
    // and is retired. `can_write`: storage takes writes now (else memory alone changes).
    // `quit_reason`: what an IRC guest's QUIT said, for the QUIT the others see.
    Outcome connection_closed(ConnId conn, bool end_session, bool can_write,
                              std::string_view quit_reason = {});
    // Closes the pending invitations whose time has passed (writes must be allowed).
    Outcome expire_invitations(Time now);
    // A batch with these mutations is durable.
    void committed(const std::vector<Mutation>& mutations);

    // Wall time at which the next pending invitation expires, if any.
    std::optional<int64_t> next_expiry_wall_ms() const;
    std::optional<UserId> user_of(ConnId conn) const { return sessions_.user_of(conn); }
    // Names for logs and admin answers ("" for an unknown id).
    std::string user_name(UserId id) const;
    // Configured admin names that no account held at start: reserved, and without rights.
    const std::vector<std::string>& unbound_admin_names() const { return unbound_admins_; }
    const ChatState& state() const { return state_; }
    ChatState& state() { return state_; }
    const Sessions& sessions() const { return sessions_; }
    // Forgets expired sessions; returns the connections that were using them (to close).
    std::vector<ConnId> drop_expired_sessions(int64_t now_wall_ms);
    // Ends every session of `user` now (an admin action): the mutations and their undo, and
    // the connections to close.
    Outcome revoke_sessions(UserId user);

  private:
    void guest_gone(const User& guest, ConnId conn, bool can_write, Outcome& out);
    Outcome& fresh() {
        scratch_.clear();
        return scratch_;
    }

    const Config& config_;
    const Guard& guard_;
    Entropy& entropy_;
    ChatState state_;
    Sessions sessions_;
    Outcome scratch_;
    std::vector<std::string> unbound_admins_;
};

}  // namespace warren
