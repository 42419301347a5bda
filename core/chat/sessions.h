// Sessions: which connection is logged in as which user, with which session token, and the
// usernames reserved while their REGISTER hashes. Presence lives here: a user's first
// connection to log in announces them online, the last one to leave announces offline, to
// the connections of every other user sharing a room with them.
//
// Every connection the core knows is registered here from opened() to closed(), logged in or
// not, so that an undo (a login or logout whose batch failed) never brings back a connection
// that has gone meanwhile. bind() and unbind() change ChatState's per-user connection sets and
// return the PRESENCE they caused, if anyone is there to see it.
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/chat/state.h"
#include "core/ops/events.h"

namespace warren {

struct PresenceChange {
    std::vector<ConnId> to;
    event::Presence presence;
};

class Sessions {
  public:
    explicit Sessions(ChatState& state) : state_(state) {}

    void opened(ConnId conn) { bindings_.try_emplace(conn); }
    // Logs the connection out (announcing it) and forgets it.
    std::optional<PresenceChange> closed(ConnId conn);

    std::optional<UserId> user_of(ConnId conn) const;
    // The session token hash the connection logged in with ("" when not logged in).
    const std::string& token_hash_of(ConnId conn) const;
    // The connections logged in as `user` with the session `token_hash`.
    std::vector<ConnId> connections_with(UserId user, const std::string& token_hash) const;
    std::optional<PresenceChange> bind(ConnId conn, UserId user, std::string token_hash);
    // announce = false when undoing a login whose PRESENCE was never sent.
    std::optional<PresenceChange> unbind(ConnId conn, bool announce = true);
    // Undo for bind(): logs the connection out again without a PRESENCE.
    Undo undo_bind(ConnId conn);
    // Undo for a logout: logs the connection back in with its old session, if it is still open.
    Undo undo_unbind(ConnId conn, UserId user, std::string token_hash);

    bool reserved(const std::string& name_key) const { return reserved_.contains(name_key); }
    void reserve(const std::string& name_key) { reserved_.insert(name_key); }
    void release(const std::string& name_key) { reserved_.erase(name_key); }

  private:
    struct Binding {
        UserId user = 0;  // 0: not logged in
        std::string token_hash;
    };
    std::optional<PresenceChange> presence(const User& u, bool online) const;

    ChatState& state_;
    std::map<ConnId, Binding> bindings_;  // every open connection
    std::set<std::string> reserved_;      // name keys with a REGISTER hash running
};

}  // namespace warren
