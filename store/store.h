// Store: Warren's SQLite database. Schema and migrations, applying a Commit batch in one
// transaction, loading the start-up Snapshot, and history pages. The only code that includes
// <sqlite3.h>.
//
// Threading: a Store is used by one thread at a time (the storage thread in production, the
// simulator's loop in tests). apply() is all-or-nothing: on any error the transaction is
// rolled back and the database is as before. Status codes: transient for SQLITE_BUSY/LOCKED
// (retry later), corrupt for a damaged file, failed for everything else (I/O, full disk,
// constraint).
//
// A database file can be opened twice: once to write (commits, migrations, indexing) and
// once read-only for queries on a thread of their own. WAL lets the reader work on the last
// committed state while the writer commits, so a costly read never delays a commit. A
// search runs at most query_time_max (then it stops, answering too_costly).
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "core/base.h"
#include "core/chat/records.h"

struct sqlite3;
struct sqlite3_stmt;

namespace warren {

enum class Synchronous { normal, full };
enum class Access { read_write, read_only };

class Store {
  public:
    // Opens (creating if needed) the database at `path` (":memory:" for a private in-memory
    // one) and migrates its schema to the current version. `vfs`: the SQLite VFS the file
    // lives on, by name (nullptr: the operating system's; the simulator passes its disk's).
    static Result<std::unique_ptr<Store>> open(const std::string& path, Synchronous sync,
                                               Access access = Access::read_write,
                                               const char* vfs = nullptr);
    // How long one search may run before it stops (too_costly).
    void set_query_time_max(std::chrono::milliseconds t) { query_time_max_ = t; }
    ~Store();
    Store(const Store&) = delete;
    Store& operator=(const Store&) = delete;

    Status apply(const std::vector<Mutation>& mutations);
    // Everything the core keeps in memory; sessions that expired before now_wall_ms are
    // left out. `cache_per_room` newest messages of each room are included.
    Result<Snapshot> load(size_t cache_per_room, int64_t now_wall_ms);
    // Brings the full-text index up to date by up to max_items queued changes (edits,
    // deletions, retention) and max_items new messages, in one transaction. Commits only
    // queue changes; the storage thread calls this when idle, and search first catches up,
    // so search always sees every committed message.
    Status index_pending(uint32_t max_items = 4096);
    // Committed changes or messages the index has not taken in yet.
    bool index_behind();
    // Retention: deletes, in one transaction, the oldest messages of each scope in order that
    // are older than its before_ms (with their reactions, and queued for removal from the
    // search index), at most `limit` in all.
    PruneResult prune(const std::vector<PruneScope>& scopes, uint32_t limit);
    // Answers any StoredQuery (history pages, one message, thread replies, search).
    QueryRows run(const StoredQuery& q);
    QueryRows history(const HistoryQuery& q);
    // One stored message by id, or nullopt (also on error).
    std::optional<MessageRow> message(MessageId id);
    int schema_version() const;
    // Stored session rows, expired ones included (for tests and checks).
    size_t session_rows();

    // The schema version this build writes; older databases are migrated forward.
    static constexpr int current_schema_version = 7;

  private:
    Store(sqlite3* db, bool writable) : db_(db), writable_(writable) {}
    Status exec(const char* sql);
    // The first column of the first row a pragma answers ("" on error).
    std::string pragma_text(const char* sql);
    Status migrate();
    Status retire_guests();
    Status prepare_all();
    Status step_mutation(const Mutation& m);
    Status step_message_change(const Mutation& m);
    static bool handled_message_change(const Mutation& m);
    // Attaches stored reactions to rows just read.
    bool fill_reactions(std::vector<MessageRow>& rows);
    QueryRows thread(MessageId root, uint32_t limit);
    // One message, only if `reader` (its rooms and dm_user) may see it.
    QueryRows visible_message(MessageId id, const SearchQuery& reader);
    QueryRows search(const SearchQuery& q);
    // Audit rows with id < before (before <= 0: the newest), newest first.
    QueryRows audit(int64_t before, uint32_t limit);
    sqlite3_stmt* stmt(int which) { return stmts_[which]; }

    sqlite3* db_ = nullptr;
    bool writable_ = true;
    std::chrono::milliseconds query_time_max_{250};
    std::vector<sqlite3_stmt*> stmts_;
};

}  // namespace warren
