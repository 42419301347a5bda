// Outputs: what the core asks its driver to do, drained with Server::poll() after every input
// (server.h has the call order). Parts of the core append to one shared queue, in the order
// the driver must carry them out.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "core/base.h"
#include "core/chat/records.h"
#include "core/effects.h"
#include "core/ops/ops.h"
#include "core/ops/replies.h"

namespace warren {

enum class AlertLevel { info, warning, critical, emergency };

using AdminId = uint64_t;

// Write these bytes to each connection in `to` (an event goes to its audience as one Send;
// the bytes may be shared by other Sends too). Report progress per connection with
// sent(conn, n).
struct Send {
    std::vector<ConnId> to;
    std::shared_ptr<const std::string> bytes;
};

// Write `last` after everything sent to the connection, then shut it down for writing and
// close it once the peer has read (a bounded linger that discards what the peer still sends,
// so the kernel answers no unread input with a reset that would throw away what the peer has
// not read yet). With `drop_unsent` (only a slow consumer: the memory bound wins) the bytes
// not yet written are dropped and `last` goes right after the write in flight. The core has
// already forgotten the connection; a later disconnect() for it is ignored.
struct Close {
    ConnId conn = 0;
    std::string_view reason;                  // the DISCONNECT reason, for logs
    std::shared_ptr<const std::string> last;  // DISCONNECT (IRC: ERROR); null after a QUIT
    bool drop_unsent = false;
    // False for a connection refused at accept: it has sent nothing worth waiting for, and a
    // flood of them must not hold descriptors.
    bool linger = true;
};

// Apply these mutations in one storage transaction, in the order the Commits were sent, and
// report committed(batch, status) in that order. Several may be in flight; each builds on the
// one sent just before it (`after`, 0: on nothing pending), and must not be applied if that
// one did not land: it is reported aborted instead (core/txn/commit_chain.h does that).
struct Commit {
    BatchId batch = 0;
    std::shared_ptr<const std::vector<Mutation>> mutations;
    BatchId after = 0;
};

// Read stored messages (a history page, one message, a thread, a search) or audit rows, and
// report answered(query, rows).
struct Query {
    QueryId query = 0;
    StoredQuery what;
};

// Hash (create) or verify a password with argon2id off the event loop, and report
// hashed(job, result).
struct Hash {
    JobId job = 0;
    HashMode mode = HashMode::create;
    std::string password;
    std::string phc;  // verify: the PHC string; empty: no such user (verify a dummy, fail)
};

// A request answered with an error, for the log (the reply itself goes out as a Send). The
// code comes from the typed reply, never from its bytes.
struct Refused {
    ConnId conn = 0;
    std::optional<Op> op;  // unknown when the op name was not known
    Error error;
};

// A security decision or admin action, for the log (it is also committed).
struct Audit {
    AuditRow record;
};

// A line for the operator's log: an alert raised, changed or resolved.
struct Notice {
    AlertLevel level = AlertLevel::info;
    std::string text;
};

// The answer to an admin() request: an HTTP status and a JSON (or text) body.
struct AdminReply {
    AdminId id = 0;
    int status = 200;
    std::string body;
    std::string_view content_type = "application/json";
};

// Copy the database, consistently and off the event loop, into the file `name` (a plain file
// name, already checked) of the backup directory, and report backed_up(id, result). At most
// one is in flight.
struct Backup {
    AdminId id = 0;
    std::string name;
};

// What a Backup did.
struct BackupResult {
    bool ok = false;
    std::string path;  // where the copy is
    uint64_t bytes = 0;
    int64_t duration_ms = 0;
    std::string error;  // !ok: why
};

// Delete expired messages (retention): for each scope in order, its oldest messages older
// than its before_ms, at most `limit` in all, in one storage transaction of its own, after
// every batch sent before it; report pruned(id, result). At most one is in flight.
struct Prune {
    uint64_t id = 0;
    std::vector<PruneScope> scopes;
    uint32_t limit = 0;
};

using Output = std::variant<Send, Close, Commit, Query, Hash, Refused, Audit, Notice, AdminReply,
                            Backup, Prune>;
using Outputs = std::deque<Output>;

}  // namespace warren
