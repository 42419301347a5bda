#include "store/store.h"

#include <sqlite3.h>

#include <algorithm>
#include <chrono>

#include "core/validate/rules.h"

namespace warren {

namespace {

// Each entry migrates from version i to i + 1. Append only; never edit a shipped entry.
const char* const migrations[] = {
    R"sql(
    CREATE TABLE users(
      id INTEGER PRIMARY KEY,
      name TEXT NOT NULL,
      name_key TEXT NOT NULL UNIQUE,
      phc TEXT NOT NULL,
      created_ms INTEGER NOT NULL);
    CREATE TABLE sessions(
      token_hash TEXT PRIMARY KEY,
      user_id INTEGER NOT NULL,
      expires_ms INTEGER NOT NULL) WITHOUT ROWID;
    CREATE TABLE rooms(
      id INTEGER PRIMARY KEY,
      name TEXT NOT NULL,
      name_key TEXT NOT NULL UNIQUE,
      topic TEXT NOT NULL,
      is_private INTEGER NOT NULL,
      owner_id INTEGER NOT NULL,
      created_ms INTEGER NOT NULL);
    CREATE TABLE members(
      room_id INTEGER NOT NULL,
      user_id INTEGER NOT NULL,
      joined_ms INTEGER NOT NULL,
      PRIMARY KEY(room_id, user_id)) WITHOUT ROWID;
    CREATE TABLE messages(
      id INTEGER PRIMARY KEY,
      room_id INTEGER NOT NULL,
      author_id INTEGER NOT NULL,
      text TEXT NOT NULL,
      ts_ms INTEGER NOT NULL,
      reply_to INTEGER NOT NULL DEFAULT 0);
    CREATE INDEX messages_by_room ON messages(room_id, id);
    )sql",
    // 2: direct messages, read markers, invitations, edits, deletions, reactions, threads and
    // full-text search. A message belongs to a room (room_id > 0) or to the conversation
    // of conv_lo < conv_hi (the two user ids), to_id naming the recipient.
    R"sql(
    ALTER TABLE messages ADD COLUMN to_id INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE messages ADD COLUMN conv_lo INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE messages ADD COLUMN conv_hi INTEGER NOT NULL DEFAULT 0;
    CREATE INDEX messages_by_conversation ON messages(conv_lo, conv_hi, id) WHERE room_id = 0;
    CREATE TABLE read_markers(
      user_id INTEGER NOT NULL,
      room_id INTEGER NOT NULL,
      peer_id INTEGER NOT NULL,
      message_id INTEGER NOT NULL,
      PRIMARY KEY(user_id, room_id, peer_id)) WITHOUT ROWID;
    CREATE TABLE invitations(
      id INTEGER PRIMARY KEY,
      room_id INTEGER NOT NULL,
      from_id INTEGER NOT NULL,
      to_id INTEGER NOT NULL,
      ts_ms INTEGER NOT NULL,
      expires_ms INTEGER NOT NULL,
      closed INTEGER NOT NULL DEFAULT 0);  -- 0 pending, 1 accepted, 2 declined, 3 expired
    CREATE INDEX invitations_pending ON invitations(closed, expires_ms);
    ALTER TABLE messages ADD COLUMN edited_ms INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE messages ADD COLUMN deleted INTEGER NOT NULL DEFAULT 0;
    CREATE INDEX messages_by_reply ON messages(reply_to, id) WHERE reply_to > 0;
    CREATE TABLE reactions(
      message_id INTEGER NOT NULL,
      user_id INTEGER NOT NULL,
      emoji TEXT NOT NULL,
      seq INTEGER PRIMARY KEY AUTOINCREMENT);  -- keeps the order users reacted in
    CREATE UNIQUE INDEX reactions_unique ON reactions(message_id, user_id, emoji);
    -- Full-text index of live message text; rowid = message id. Commits only append to
    -- fts_queue (cheap); index_pending() folds the queue into the index in its own
    -- transaction, off the commit path. Both are durable, so a crash loses no indexing.
    CREATE VIRTUAL TABLE messages_fts USING fts5(text, tokenize = 'unicode61 remove_diacritics 2');
    CREATE TABLE fts_queue(
      seq INTEGER PRIMARY KEY AUTOINCREMENT,
      message_id INTEGER NOT NULL,
      kind INTEGER NOT NULL,  -- 0 add, 1 replace (edit), 2 remove (delete)
      text TEXT);
    )sql",
    // v3: security state and the audit log.
    R"sql(
    CREATE TABLE blocks(
      ip TEXT PRIMARY KEY,
      since_ms INTEGER NOT NULL,
      until_ms INTEGER NOT NULL,  -- 0: until lifted
      offences INTEGER NOT NULL,
      reason TEXT NOT NULL);
    CREATE TABLE suspensions(
      user_id INTEGER PRIMARY KEY REFERENCES users(id),
      since_ms INTEGER NOT NULL,
      until_ms INTEGER NOT NULL,
      offences INTEGER NOT NULL,
      reason TEXT NOT NULL);
    CREATE TABLE audit(
      id INTEGER PRIMARY KEY,
      ts_ms INTEGER NOT NULL,
      actor TEXT NOT NULL,
      ip TEXT NOT NULL,
      account TEXT NOT NULL,
      action TEXT NOT NULL,
      reason TEXT NOT NULL,
      details TEXT NOT NULL);
    CREATE INDEX audit_by_ts ON audit(ts_ms);
    )sql",
    // v4: the full-text index also holds each message's scope ("r<room>", or "d<author>
    // d<recipient>" for a direct message), so a search is narrowed to the reader's rooms and
    // conversations inside the index, and walks it newest first, stopping at its limit. The
    // index is rebuilt through the queue, off the commit path.
    R"sql(
    DROP TABLE messages_fts;
    CREATE VIRTUAL TABLE messages_fts USING fts5(text, scope,
                                                 tokenize = 'unicode61 remove_diacritics 2');
    DELETE FROM fts_queue;
    INSERT INTO fts_queue(message_id, kind, text)
      SELECT id, 0, text FROM messages WHERE deleted = 0 ORDER BY id;
    )sql",
    // v5: guests (IRC nicks without an account). A retired guest's name_key is '~<id>', a key
    // no name can have, so its name is free for anyone while its messages keep their author.
    R"sql(
    ALTER TABLE users ADD COLUMN guest INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE users ADD COLUMN retired INTEGER NOT NULL DEFAULT 0;
    )sql",
    // v6: TLS client certificates bound to accounts (SASL EXTERNAL), by SHA-256 fingerprint.
    R"sql(
    CREATE TABLE certificates(
      fingerprint TEXT PRIMARY KEY,
      user_id INTEGER NOT NULL REFERENCES users(id),
      added_ms INTEGER NOT NULL);
    )sql",
    // v7: a cheaper full-text index. It holds only the index (contentless, no column sizes:
    // search reads the text from messages and orders by id), and a new message costs the
    // commit nothing: index_pending() takes the messages past fts_state.indexed_through
    // straight from the messages table. fts_queue now holds only changes to messages the
    // index already has, each with the text and scope it was indexed with (a contentless
    // index removes a row by its values) and its new text (NULL: deleted or pruned). The
    // index is rebuilt from messages, off the commit path.
    R"sql(
    DROP TABLE messages_fts;
    CREATE VIRTUAL TABLE messages_fts USING fts5(text, scope, content = '', columnsize = 0,
                                                 tokenize = 'unicode61 remove_diacritics 2');
    DROP TABLE fts_queue;
    CREATE TABLE fts_queue(
      seq INTEGER PRIMARY KEY,
      message_id INTEGER NOT NULL,
      old_text TEXT NOT NULL,
      scope TEXT NOT NULL,
      new_text TEXT);
    CREATE TABLE fts_state(
      one INTEGER PRIMARY KEY CHECK (one = 1),
      indexed_through INTEGER NOT NULL);
    INSERT INTO fts_state VALUES(1, 0);
    )sql",
};
static_assert(std::size(migrations) == Store::current_schema_version);

#define MESSAGE_COLUMNS "id, room_id, author_id, text, ts_ms, reply_to, to_id, edited_ms, deleted"
// A message's scope in the full-text index: "r<room>", or "d<author> d<recipient>" for a
// direct message (a search names the reader's rooms and "d<reader>").
#define FTS_SCOPE_SQL \
    "CASE WHEN room_id > 0 THEN 'r' || room_id ELSE 'd' || author_id || ' d' || to_id END"
// A change to message ?1 the index must follow (?2: its new text, NULL when it goes), queued
// before the change is made, with what the index holds: nothing for a message the index has
// not reached yet (index_pending will read it as it is then) or no longer holds.
#define FTS_ENQUEUE_SQL                                                                   \
    "INSERT INTO fts_queue(message_id, old_text, scope, new_text) SELECT id, text, " \
    FTS_SCOPE_SQL                                                                         \
    ", ?2 FROM messages WHERE id = ?1 AND deleted = 0 "                                  \
    "AND id <= (SELECT indexed_through FROM fts_state)"

enum Stmt {
    put_user,
    put_session,
    delete_session,
    put_room,
    put_member,
    delete_member,
    put_message,
    history_before,
    history_after,
    conv_before,
    conv_after,
    message_by_id,
    search_scoped,
    message_visible,
    set_topic,
    put_read_marker,
    put_invitation,
    close_invitation,
    edit_message,
    delete_message,
    delete_reactions,
    put_reaction,
    delete_reaction,
    fts_enqueue,
    fts_pending,
    fts_add,
    fts_remove,
    fts_dequeue,
    fts_through,
    fts_new,
    fts_advance,
    thread_replies,
    reactions_of,
    put_block,
    put_suspension,
    put_audit,
    prune_audit,
    prune_sessions,
    audit_page,
    retire_guest,
    forget_guest,
    put_certificate,
    delete_certificate,
    stmt_count
};

const char* const stmt_sql[stmt_count] = {
    "INSERT INTO users(id, name, name_key, phc, created_ms, guest, retired) VALUES(?,?,?,?,?,?,?)",
    "INSERT INTO sessions(token_hash, user_id, expires_ms) VALUES(?,?,?)",
    "DELETE FROM sessions WHERE token_hash = ?",
    "INSERT INTO rooms(id, name, name_key, topic, is_private, owner_id, created_ms) "
    "VALUES(?,?,?,?,?,?,?)",
    "INSERT INTO members(room_id, user_id, joined_ms) VALUES(?,?,?)",
    "DELETE FROM members WHERE room_id = ? AND user_id = ?",
    "INSERT INTO messages(id, room_id, author_id, text, ts_ms, reply_to, to_id, conv_lo, conv_hi) "
    "VALUES(?,?,?,?,?,?,?,?,?)",
    "SELECT " MESSAGE_COLUMNS
    " FROM messages "
    "WHERE room_id = ? AND id < ? ORDER BY id DESC LIMIT ?",
    "SELECT " MESSAGE_COLUMNS
    " FROM messages "
    "WHERE room_id = ? AND id > ? ORDER BY id ASC LIMIT ?",
    "SELECT " MESSAGE_COLUMNS
    " FROM messages "
    "WHERE room_id = 0 AND conv_lo = ? AND conv_hi = ? AND id < ? ORDER BY id DESC LIMIT ?",
    "SELECT " MESSAGE_COLUMNS
    " FROM messages "
    "WHERE room_id = 0 AND conv_lo = ? AND conv_hi = ? AND id > ? ORDER BY id ASC LIMIT ?",
    "SELECT " MESSAGE_COLUMNS " FROM messages WHERE id = ?",
    // ?1: an FTS5 query with the reader's scope; the index yields rowids newest first.
    "SELECT m.id, m.room_id, m.author_id, m.text, m.ts_ms, m.reply_to, m.to_id, m.edited_ms, "
    "m.deleted FROM messages_fts JOIN messages m ON m.id = messages_fts.rowid "
    "WHERE messages_fts MATCH ?1 AND m.deleted = 0 ORDER BY messages_fts.rowid DESC LIMIT ?2",
    // A message the reader may see: in a public room, or in the rooms listed (as a JSON
    // array, one bound value), or a direct message of theirs.
    "SELECT " MESSAGE_COLUMNS
    " FROM messages WHERE id = ?1 AND ("
    "(room_id > 0 AND (room_id IN (SELECT value FROM json_each(?2))"
    " OR room_id IN (SELECT id FROM rooms WHERE is_private = 0)))"
    " OR (room_id = 0 AND (author_id = ?3 OR to_id = ?3)))",
    "UPDATE rooms SET topic = ? WHERE id = ?",
    "INSERT INTO read_markers(user_id, room_id, peer_id, message_id) VALUES(?,?,?,?) "
    "ON CONFLICT(user_id, room_id, peer_id) DO UPDATE SET message_id = "
    "max(message_id, excluded.message_id)",  // a marker never moves back
    "INSERT INTO invitations(id, room_id, from_id, to_id, ts_ms, expires_ms) VALUES(?,?,?,?,?,?)",
    "UPDATE invitations SET closed = ? WHERE id = ? AND closed = 0",
    "UPDATE messages SET text = ?, edited_ms = ? WHERE id = ? AND deleted = 0",
    "UPDATE messages SET text = '', deleted = 1 WHERE id = ?",
    "DELETE FROM reactions WHERE message_id = ?",
    "INSERT INTO reactions(message_id, user_id, emoji) VALUES(?,?,?)",
    "DELETE FROM reactions WHERE message_id = ? AND user_id = ? AND emoji = ?",
    FTS_ENQUEUE_SQL,
    "SELECT seq, message_id, old_text, scope, new_text FROM fts_queue ORDER BY seq LIMIT ?",
    "INSERT INTO messages_fts(rowid, text, scope) VALUES(?, ?, ?)",
    "INSERT INTO messages_fts(messages_fts, rowid, text, scope) VALUES('delete', ?, ?, ?)",
    "DELETE FROM fts_queue WHERE seq <= ?",
    "SELECT indexed_through FROM fts_state",
    "SELECT id, text, " FTS_SCOPE_SQL " FROM messages WHERE id > ?1 AND deleted = 0 "
    "ORDER BY id LIMIT ?2",
    "UPDATE fts_state SET indexed_through = ?",
    // "reply_to > 0" lets SQLite use the partial index messages_by_reply.
    "SELECT " MESSAGE_COLUMNS
    " FROM messages WHERE reply_to = ?1 AND reply_to > 0 "
    "ORDER BY id LIMIT ?2",
    "SELECT user_id, emoji FROM reactions WHERE message_id = ? ORDER BY seq",
    "INSERT OR REPLACE INTO blocks(ip, since_ms, until_ms, offences, reason) VALUES(?,?,?,?,?)",
    "INSERT OR REPLACE INTO suspensions(user_id, since_ms, until_ms, offences, reason) "
    "VALUES(?,?,?,?,?)",
    "INSERT INTO audit(id, ts_ms, actor, ip, account, action, reason, details) "
    "VALUES(?,?,?,?,?,?,?,?)",
    "DELETE FROM audit WHERE ts_ms < ?1 OR id <= (SELECT COALESCE(MAX(id), 0) FROM audit) - ?2",
    "DELETE FROM sessions WHERE expires_ms <= ?",
    "SELECT id, ts_ms, actor, ip, account, action, reason, details FROM audit "
    "WHERE id < ?1 ORDER BY id DESC LIMIT ?2",
    "UPDATE users SET retired = 1, name_key = '~' || id WHERE id = ? AND guest = 1",
    "DELETE FROM users WHERE id = ? AND guest = 1",
    "INSERT INTO certificates(fingerprint, user_id, added_ms) VALUES(?,?,?)",
    "DELETE FROM certificates WHERE fingerprint = ?",
};

// The name_key of a retired guest: '~' cannot be in a name, so it frees the name.
std::string retired_key(UserId id) {
    std::string key(1, '~');
    key += std::to_string(id);
    return key;
}

Status status_from(sqlite3* db, int rc, const char* what) {
    std::string msg = std::string(what) + ": " + sqlite3_errmsg(db);
    int primary = rc & 0xFF;
    if (primary == SQLITE_BUSY || primary == SQLITE_LOCKED) return Status::transient(msg);
    if (primary == SQLITE_CORRUPT || primary == SQLITE_NOTADB) return Status::corrupt(msg);
    return Status::failed(msg);
}

void bind_text(sqlite3_stmt* s, int i, std::string_view v) {
    sqlite3_bind_text(s, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
}

std::string column_text(sqlite3_stmt* s, int i) {
    const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(s, i));
    return p ? std::string(p, static_cast<size_t>(sqlite3_column_bytes(s, i))) : std::string();
}

MessageRow read_message(sqlite3_stmt* s) {
    MessageRow m;
    m.id = sqlite3_column_int64(s, 0);
    m.room = sqlite3_column_int64(s, 1);
    m.author = sqlite3_column_int64(s, 2);
    m.text = column_text(s, 3);
    m.ts_ms = sqlite3_column_int64(s, 4);
    m.reply_to = sqlite3_column_int64(s, 5);
    m.to = sqlite3_column_int64(s, 6);
    m.edited_ms = sqlite3_column_int64(s, 7);
    m.deleted = sqlite3_column_int(s, 8) != 0;
    return m;
}

// Runs `s` (already bound) to completion and resets it.
int step_once(sqlite3_stmt* s) {
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return rc;
}

}  // namespace

Result<std::unique_ptr<Store>> Store::open(const std::string& path, Synchronous sync, Access access,
                                           const char* vfs) {
    sqlite3* db = nullptr;
    bool writable = access == Access::read_write;
    int flags = writable ? SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE : SQLITE_OPEN_READONLY;
    int rc = sqlite3_open_v2(path.c_str(), &db, flags | SQLITE_OPEN_NOMUTEX, vfs);
    if (rc != SQLITE_OK) {
        Status st = Status::failed("cannot open database " + path + ": " +
                                   (db ? sqlite3_errmsg(db) : sqlite3_errstr(rc)));
        sqlite3_close(db);
        return st;
    }
    std::unique_ptr<Store> store(new Store(db, writable));
    sqlite3_busy_timeout(db, 0);  // never block: busy is reported and retried by the caller
    if (!writable) {
        // The writer made the file (migrated, in WAL mode) before any reader opens it.
        if (std::string mode = store->pragma_text("PRAGMA journal_mode"); mode != "wal")
            return Status::failed("a reader needs " + path + " in WAL mode, not '" + mode + "'");
        if (Status st = store->prepare_all(); !st.is_ok()) return st;
        return store;
    }
    if (path != ":memory:") {
        // The pragma answers the mode in force, which is not WAL when the file system cannot
        // share memory between connections: refuse to run with weaker guarantees than stated.
        std::string mode = store->pragma_text("PRAGMA journal_mode=WAL");
        if (mode != "wal")
            return Status::failed("cannot put " + path + " in WAL mode (journal_mode is '" + mode +
                                  "')");
    }
    if (Status st = store->exec(sync == Synchronous::full ? "PRAGMA synchronous=FULL"
                                                          : "PRAGMA synchronous=NORMAL");
        !st.is_ok())
        return st;
    if (Status st = store->migrate(); !st.is_ok()) return st;
    if (Status st = store->retire_guests(); !st.is_ok()) return st;
    if (Status st = store->prepare_all(); !st.is_ok()) return st;
    return store;
}

// Guests exist while their connections do, and the writer opens the file before anyone
// connects: guests left by a crash (or by writes refused when they went) leave their rooms and
// free their names, as they would have on the way out.
Status Store::retire_guests() {
    if (Status st = exec("BEGIN IMMEDIATE"); !st.is_ok()) return st;
    Status st = exec(
        "DELETE FROM members WHERE user_id IN (SELECT id FROM users WHERE guest = 1 AND retired = "
        "0);"
        "UPDATE users SET retired = 1, name_key = '~' || id WHERE guest = 1 AND retired = 0;");
    if (!st.is_ok()) {
        (void)exec("ROLLBACK");
        return st;
    }
    return exec("COMMIT");
}

Store::~Store() {
    for (auto* s : stmts_) sqlite3_finalize(s);
    sqlite3_close(db_);
}

std::string Store::pragma_text(const char* sql) {
    sqlite3_stmt* s = nullptr;
    std::string out;
    if (sqlite3_prepare_v2(db_, sql, -1, &s, nullptr) == SQLITE_OK && sqlite3_step(s) == SQLITE_ROW)
        out = column_text(s, 0);
    sqlite3_finalize(s);
    return out;
}

Status Store::exec(const char* sql) {
    char* err = nullptr;
    int rc = sqlite3_exec(db_, sql, nullptr, nullptr, &err);
    if (rc == SQLITE_OK) return Status::ok();
    std::string msg = err ? err : sqlite3_errstr(rc);
    sqlite3_free(err);
    int primary = rc & 0xFF;
    if (primary == SQLITE_BUSY || primary == SQLITE_LOCKED) return Status::transient(msg);
    return Status::failed(msg);
}

size_t Store::session_rows() {
    std::string n = pragma_text("SELECT COUNT(*) FROM sessions");
    return n.empty() ? 0 : std::stoull(n);
}

int Store::schema_version() const {
    sqlite3_stmt* s = nullptr;
    sqlite3_prepare_v2(db_, "PRAGMA user_version", -1, &s, nullptr);
    int v = sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int(s, 0) : -1;
    sqlite3_finalize(s);
    return v;
}

Status Store::migrate() {
    int version = schema_version();
    if (version < 0 || version > current_schema_version)
        return Status::corrupt("database schema version " + std::to_string(version) +
                               " is newer than this build understands (" +
                               std::to_string(current_schema_version) + ")");
    for (int v = version; v < current_schema_version; ++v) {
        if (Status st = exec("BEGIN IMMEDIATE"); !st.is_ok()) return st;
        Status st = exec(migrations[v]);
        if (st.is_ok()) st = exec(("PRAGMA user_version=" + std::to_string(v + 1)).c_str());
        if (!st.is_ok()) {
            (void)exec("ROLLBACK");
            return st;
        }
        if (Status c = exec("COMMIT"); !c.is_ok()) return c;
    }
    return Status::ok();
}

Status Store::prepare_all() {
    stmts_.assign(stmt_count, nullptr);
    for (int i = 0; i < stmt_count; ++i) {
        int rc = sqlite3_prepare_v3(db_, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &stmts_[i],
                                    nullptr);
        if (rc != SQLITE_OK) return status_from(db_, rc, "prepare");
    }
    return Status::ok();
}

bool Store::handled_message_change(const Mutation& m) {
    return std::holds_alternative<MessageEdit>(m) || std::holds_alternative<MessageDelete>(m) ||
           std::holds_alternative<ReactionAdd>(m) || std::holds_alternative<ReactionRemove>(m);
}

// Edits, deletions and reactions; each may touch several tables and the text index. An edit
// or reaction that changes no row (the message is gone) is an error: the core believed it
// existed.
Status Store::step_message_change(const Mutation& m) {
    std::vector<sqlite3_stmt*> steps;
    size_t must_change = 0;  // the step that changing no row makes an error
    if (const auto* e = std::get_if<MessageEdit>(&m)) {
        // Queued first: it records the text the index holds, before the update replaces it.
        sqlite3_stmt* f = stmt(fts_enqueue);
        sqlite3_bind_int64(f, 1, e->id);
        bind_text(f, 2, e->text);
        sqlite3_stmt* u = stmt(edit_message);
        bind_text(u, 1, e->text);
        sqlite3_bind_int64(u, 2, e->edited_ms);
        sqlite3_bind_int64(u, 3, e->id);
        steps = {f, u};
        must_change = 1;
    } else if (const auto* del = std::get_if<MessageDelete>(&m)) {
        sqlite3_stmt* f = stmt(fts_enqueue);
        sqlite3_bind_int64(f, 1, del->id);
        sqlite3_bind_null(f, 2);
        sqlite3_stmt* u = stmt(delete_message);
        sqlite3_bind_int64(u, 1, del->id);
        sqlite3_stmt* r = stmt(delete_reactions);
        sqlite3_bind_int64(r, 1, del->id);
        steps = {f, u, r};
        must_change = 1;
    } else if (const auto* add = std::get_if<ReactionAdd>(&m)) {
        sqlite3_stmt* u = stmt(put_reaction);
        sqlite3_bind_int64(u, 1, add->message);
        sqlite3_bind_int64(u, 2, add->user);
        bind_text(u, 3, add->emoji);
        steps = {u};
    } else if (const auto* rem = std::get_if<ReactionRemove>(&m)) {
        sqlite3_stmt* u = stmt(delete_reaction);
        sqlite3_bind_int64(u, 1, rem->message);
        sqlite3_bind_int64(u, 2, rem->user);
        bind_text(u, 3, rem->emoji);
        steps = {u};
    }
    for (size_t k = 0; k < steps.size(); ++k) {
        int rc = step_once(steps[k]);
        bool changed_nothing =
            k == must_change && rc == SQLITE_DONE && sqlite3_changes(db_) == 0;
        if (rc != SQLITE_DONE || changed_nothing) {
            for (size_t rest = k + 1; rest < steps.size(); ++rest) {
                sqlite3_reset(steps[rest]);
                sqlite3_clear_bindings(steps[rest]);
            }
            if (changed_nothing) return Status::failed("message change matched no row");
            return status_from(db_, rc, "apply");
        }
    }
    return Status::ok();
}

Status Store::step_mutation(const Mutation& m) {
    if (auto bad = check_record(m)) return Status::failed("refusing to store: " + *bad);
    if (handled_message_change(m)) return step_message_change(m);
    sqlite3_stmt* s = nullptr;
    std::visit(
        [&](const auto& r) {
            using T = std::decay_t<decltype(r)>;
            if constexpr (std::is_same_v<T, UserRow>) {
                s = stmt(put_user);
                sqlite3_bind_int64(s, 1, r.id);
                bind_text(s, 2, r.name);
                std::string key = name_key(r.name);
                if (r.retired) key = retired_key(r.id);
                bind_text(s, 3, key);
                bind_text(s, 4, r.phc);
                sqlite3_bind_int64(s, 5, r.created_ms);
                sqlite3_bind_int(s, 6, r.guest ? 1 : 0);
                sqlite3_bind_int(s, 7, r.retired ? 1 : 0);
            } else if constexpr (std::is_same_v<T, GuestRetire>) {
                s = stmt(r.forget ? forget_guest : retire_guest);
                sqlite3_bind_int64(s, 1, r.user);
            } else if constexpr (std::is_same_v<T, CertificateRow>) {
                s = stmt(put_certificate);
                bind_text(s, 1, r.fingerprint);
                sqlite3_bind_int64(s, 2, r.user);
                sqlite3_bind_int64(s, 3, r.added_ms);
            } else if constexpr (std::is_same_v<T, CertificateDelete>) {
                s = stmt(delete_certificate);
                bind_text(s, 1, r.fingerprint);
            } else if constexpr (std::is_same_v<T, SessionRow>) {
                s = stmt(put_session);
                bind_text(s, 1, r.token_hash);
                sqlite3_bind_int64(s, 2, r.user);
                sqlite3_bind_int64(s, 3, r.expires_ms);
            } else if constexpr (std::is_same_v<T, SessionDelete>) {
                s = stmt(delete_session);
                bind_text(s, 1, r.token_hash);
            } else if constexpr (std::is_same_v<T, RoomRow>) {
                s = stmt(put_room);
                sqlite3_bind_int64(s, 1, r.id);
                bind_text(s, 2, r.name);
                bind_text(s, 3, name_key(r.name));
                bind_text(s, 4, r.topic);
                sqlite3_bind_int(s, 5, r.is_private ? 1 : 0);
                sqlite3_bind_int64(s, 6, r.owner);
                sqlite3_bind_int64(s, 7, r.created_ms);
            } else if constexpr (std::is_same_v<T, MemberRow>) {
                s = stmt(put_member);
                sqlite3_bind_int64(s, 1, r.room);
                sqlite3_bind_int64(s, 2, r.user);
                sqlite3_bind_int64(s, 3, r.joined_ms);
            } else if constexpr (std::is_same_v<T, MemberDelete>) {
                s = stmt(delete_member);
                sqlite3_bind_int64(s, 1, r.room);
                sqlite3_bind_int64(s, 2, r.user);
            } else if constexpr (std::is_same_v<T, RoomTopic>) {
                s = stmt(set_topic);
                bind_text(s, 1, r.topic);
                sqlite3_bind_int64(s, 2, r.room);
            } else if constexpr (std::is_same_v<T, InvitationRow>) {
                s = stmt(put_invitation);
                sqlite3_bind_int64(s, 1, r.id);
                sqlite3_bind_int64(s, 2, r.room);
                sqlite3_bind_int64(s, 3, r.from);
                sqlite3_bind_int64(s, 4, r.to);
                sqlite3_bind_int64(s, 5, r.ts_ms);
                sqlite3_bind_int64(s, 6, r.expires_ms);
            } else if constexpr (std::is_same_v<T, InvitationClose>) {
                s = stmt(close_invitation);
                sqlite3_bind_int(s, 1, static_cast<int>(r.why));
                sqlite3_bind_int64(s, 2, r.id);
            } else if constexpr (std::is_same_v<T, ReadMarkerRow>) {
                s = stmt(put_read_marker);
                sqlite3_bind_int64(s, 1, r.user);
                sqlite3_bind_int64(s, 2, r.room);
                sqlite3_bind_int64(s, 3, r.peer);
                sqlite3_bind_int64(s, 4, r.message);
            } else if constexpr (std::is_same_v<T, BlockRow>) {
                s = stmt(put_block);
                bind_text(s, 1, r.ip);
                sqlite3_bind_int64(s, 2, r.since_ms);
                sqlite3_bind_int64(s, 3, r.until_ms);
                sqlite3_bind_int64(s, 4, r.offences);
                bind_text(s, 5, r.reason);
            } else if constexpr (std::is_same_v<T, SuspensionRow>) {
                s = stmt(put_suspension);
                sqlite3_bind_int64(s, 1, r.user);
                sqlite3_bind_int64(s, 2, r.since_ms);
                sqlite3_bind_int64(s, 3, r.until_ms);
                sqlite3_bind_int64(s, 4, r.offences);
                bind_text(s, 5, r.reason);
            } else if constexpr (std::is_same_v<T, AuditRow>) {
                s = stmt(put_audit);
                sqlite3_bind_int64(s, 1, r.id);
                sqlite3_bind_int64(s, 2, r.ts_ms);
                bind_text(s, 3, r.actor);
                bind_text(s, 4, r.ip);
                bind_text(s, 5, r.account);
                bind_text(s, 6, r.action);
                bind_text(s, 7, r.reason);
                bind_text(s, 8, r.details);
            } else if constexpr (std::is_same_v<T, AuditPrune>) {
                s = stmt(prune_audit);
                sqlite3_bind_int64(s, 1, r.before_ms);
                sqlite3_bind_int64(s, 2, r.keep_rows);
            } else if constexpr (std::is_same_v<T, SessionPrune>) {
                s = stmt(prune_sessions);
                sqlite3_bind_int64(s, 1, r.before_ms);
            } else if constexpr (std::is_same_v<T, MessageRow>) {
                s = stmt(put_message);
                sqlite3_bind_int64(s, 1, r.id);
                sqlite3_bind_int64(s, 2, r.room);
                sqlite3_bind_int64(s, 3, r.author);
                bind_text(s, 4, r.text);
                sqlite3_bind_int64(s, 5, r.ts_ms);
                sqlite3_bind_int64(s, 6, r.reply_to);
                sqlite3_bind_int64(s, 7, r.to);
                PeerPair conv = r.room ? PeerPair{} : conversation_of(r);
                sqlite3_bind_int64(s, 8, conv.lo);
                sqlite3_bind_int64(s, 9, conv.hi);
            }
        },
        m);
    WARREN_CHECK(s != nullptr);
    int rc = step_once(s);
    if (rc != SQLITE_DONE) return status_from(db_, rc, "apply");
    // A new message costs the index nothing here: index_pending reads it from messages.
    return Status::ok();
}

Status Store::apply(const std::vector<Mutation>& mutations) {
    if (Status st = exec("BEGIN IMMEDIATE"); !st.is_ok()) return st;
    for (const auto& m : mutations) {
        if (Status st = step_mutation(m); !st.is_ok()) {
            (void)exec("ROLLBACK");
            return st;
        }
    }
    if (Status st = exec("COMMIT"); !st.is_ok()) {
        (void)exec("ROLLBACK");
        return st;
    }
    return Status::ok();
}

PruneResult Store::prune(const std::vector<PruneScope>& scopes, uint32_t limit) {
    PruneResult out;
    auto fail = [&](const char* what) {
        out.error = std::string(what) + ": " + sqlite3_errmsg(db_);
        out.deleted.clear();
        (void)exec("ROLLBACK");
        return out;
    };
    if (!exec("BEGIN IMMEDIATE").is_ok()) return fail("begin");
    // Oldest first through messages_by_room(room_id, id): a room with nothing expired costs
    // one index probe. Ids grow with time, so the first unexpired message ends the scope.
    // The index is told first, while the row still says what it holds.
    const char* sql[] = {
        "SELECT id, ts_ms FROM messages WHERE room_id = ?1 ORDER BY id LIMIT ?2",
        FTS_ENQUEUE_SQL,
        "DELETE FROM messages WHERE id = ?1",
        "DELETE FROM reactions WHERE message_id = ?1",
    };
    sqlite3_stmt* st[4] = {};
    auto finalize = [&] {
        for (auto* x : st) sqlite3_finalize(x);
    };
    for (int i = 0; i < 4; ++i)
        if (sqlite3_prepare_v2(db_, sql[i], -1, &st[i], nullptr) != SQLITE_OK) {
            finalize();
            return fail("prepare");
        }
    uint32_t left = limit;
    for (const PruneScope& scope : scopes) {
        std::vector<int64_t> ids;
        sqlite3_bind_int64(st[0], 1, scope.room);
        sqlite3_bind_int64(st[0], 2, left);
        int rc;
        while ((rc = sqlite3_step(st[0])) == SQLITE_ROW) {
            if (sqlite3_column_int64(st[0], 1) >= scope.before_ms) break;
            ids.push_back(sqlite3_column_int64(st[0], 0));
        }
        sqlite3_reset(st[0]);
        if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
            finalize();
            return fail("prune");
        }
        for (int64_t id : ids)
            for (int k = 1; k < 4; ++k) {
                sqlite3_bind_int64(st[k], 1, id);
                rc = sqlite3_step(st[k]);
                sqlite3_reset(st[k]);
                if (rc != SQLITE_DONE) {
                    finalize();
                    return fail("prune");
                }
            }
        out.deleted.push_back(static_cast<uint32_t>(ids.size()));
        left -= static_cast<uint32_t>(ids.size());
        if (left == 0) break;
    }
    finalize();
    while (out.deleted.size() < scopes.size()) out.deleted.push_back(0);
    if (!exec("COMMIT").is_ok()) return fail("commit");
    out.ok = true;
    return out;
}

Result<Snapshot> Store::load(size_t cache_per_room, int64_t now_wall_ms) {
    Snapshot snap;
    auto query = [&](const char* sql, auto&& row) -> Status {
        sqlite3_stmt* s = nullptr;
        int rc = sqlite3_prepare_v2(db_, sql, -1, &s, nullptr);
        if (rc != SQLITE_OK) return status_from(db_, rc, "load");
        while ((rc = sqlite3_step(s)) == SQLITE_ROW) row(s);
        sqlite3_finalize(s);
        return rc == SQLITE_DONE ? Status::ok() : status_from(db_, rc, "load");
    };
    Status st = query(
        "SELECT id, name, phc, created_ms, guest, retired FROM users ORDER BY id", [&](auto* s) {
            snap.users.push_back({sqlite3_column_int64(s, 0), column_text(s, 1), column_text(s, 2),
                                  sqlite3_column_int64(s, 3), sqlite3_column_int(s, 4) != 0,
                                  sqlite3_column_int(s, 5) != 0});
        });
    if (st.is_ok())
        st = query("SELECT token_hash, user_id, expires_ms FROM sessions ORDER BY token_hash",
                   [&](auto* s) {
                       SessionRow r{column_text(s, 0), sqlite3_column_int64(s, 1),
                                    sqlite3_column_int64(s, 2)};
                       if (r.expires_ms > now_wall_ms) snap.sessions.push_back(std::move(r));
                   });
    if (st.is_ok())
        st = query(
            "SELECT id, name, topic, is_private, owner_id, created_ms FROM rooms ORDER BY id",
            [&](auto* s) {
                snap.rooms.push_back({sqlite3_column_int64(s, 0), column_text(s, 1),
                                      column_text(s, 2), sqlite3_column_int(s, 3) != 0,
                                      sqlite3_column_int64(s, 4), sqlite3_column_int64(s, 5)});
            });
    if (st.is_ok())
        st = query(
            "SELECT room_id, user_id, joined_ms FROM members ORDER BY room_id, user_id",
            [&](auto* s) {
                snap.members.push_back({sqlite3_column_int64(s, 0), sqlite3_column_int64(s, 1),
                                        sqlite3_column_int64(s, 2)});
            });
    if (st.is_ok())
        st = query(
            "SELECT COALESCE(MAX(id), 0), "
            "COALESCE((SELECT ts_ms FROM messages ORDER BY id DESC LIMIT 1), 0) "
            "FROM messages",
            [&](auto* s) {
                snap.max_message_id = sqlite3_column_int64(s, 0);
                snap.newest_message_ms = sqlite3_column_int64(s, 1);
            });
    if (st.is_ok())
        st = query(
            "SELECT user_id, room_id, peer_id, message_id FROM read_markers "
            "ORDER BY user_id, room_id, peer_id",
            [&](auto* s) {
                snap.read_markers.push_back({sqlite3_column_int64(s, 0), sqlite3_column_int64(s, 1),
                                             sqlite3_column_int64(s, 2),
                                             sqlite3_column_int64(s, 3)});
            });
    if (st.is_ok())
        st = query("SELECT fingerprint, user_id, added_ms FROM certificates ORDER BY fingerprint",
                   [&](auto* s) {
                       snap.certificates.push_back(
                           {reinterpret_cast<const char*>(sqlite3_column_text(s, 0)),
                            sqlite3_column_int64(s, 1), sqlite3_column_int64(s, 2)});
                   });
    if (st.is_ok())
        st = query("SELECT COALESCE(MAX(id), 0) FROM invitations",
                   [&](auto* s) { snap.max_invitation_id = sqlite3_column_int64(s, 0); });
    if (st.is_ok())
        st = query(("SELECT id, room_id, from_id, to_id, ts_ms, expires_ms FROM invitations "
                    "WHERE closed = 0 AND expires_ms > " +
                    std::to_string(now_wall_ms) + " ORDER BY id")
                       .c_str(),
                   [&](auto* s) {
                       snap.invitations.push_back(
                           {sqlite3_column_int64(s, 0), sqlite3_column_int64(s, 1),
                            sqlite3_column_int64(s, 2), sqlite3_column_int64(s, 3),
                            sqlite3_column_int64(s, 4), sqlite3_column_int64(s, 5)});
                   });
    if (st.is_ok())
        st = query("SELECT ip, since_ms, until_ms, offences, reason FROM blocks ORDER BY ip",
                   [&](auto* s) {
                       snap.blocks.push_back({column_text(s, 0), sqlite3_column_int64(s, 1),
                                              sqlite3_column_int64(s, 2),
                                              static_cast<uint32_t>(sqlite3_column_int64(s, 3)),
                                              column_text(s, 4)});
                   });
    if (st.is_ok())
        st = query(
            "SELECT user_id, since_ms, until_ms, offences, reason FROM suspensions ORDER BY "
            "user_id",
            [&](auto* s) {
                snap.suspensions.push_back({sqlite3_column_int64(s, 0), sqlite3_column_int64(s, 1),
                                            sqlite3_column_int64(s, 2),
                                            static_cast<uint32_t>(sqlite3_column_int64(s, 3)),
                                            column_text(s, 4)});
            });
    if (st.is_ok())
        st = query("SELECT COALESCE(MAX(id), 0) FROM audit",
                   [&](auto* s) { snap.max_audit_id = sqlite3_column_int64(s, 0); });
    if (!st.is_ok()) return st;
    for (const auto& room : snap.rooms) {
        QueryRows page = history(HistoryQuery{room.id, std::nullopt, std::nullopt,
                                              static_cast<uint32_t>(cache_per_room + 1)});
        if (!page.ok || !fill_reactions(page.rows))
            return Status::failed("cannot load messages of room " + room.name);
        if (page.rows.size() > cache_per_room) {
            page.rows.erase(page.rows.begin());
            snap.rooms_with_older.push_back(room.id);
        }
        for (auto& m : page.rows) snap.recent_messages.push_back(std::move(m));
    }
    // Every loaded record is checked again: a broken row must stop the start, not be served.
    auto check_all = [](const auto& rows) -> Status {
        for (const auto& r : rows)
            if (auto bad = check_record(Mutation{r})) return Status::corrupt(*bad);
        return Status::ok();
    };
    for (Status c :
         {check_all(snap.users), check_all(snap.sessions), check_all(snap.rooms),
          check_all(snap.members), check_all(snap.recent_messages), check_all(snap.invitations),
          check_all(snap.blocks), check_all(snap.suspensions)})
        if (!c.is_ok()) return c;
    return snap;
}

QueryRows Store::run(const StoredQuery& q) {
    QueryRows out;
    switch (q.kind) {
        case StoredQuery::Kind::history:
            out = history(q.history);
            break;
        case StoredQuery::Kind::message:
            if (q.search.dm_user > 0) return visible_message(q.message, q.search);
            if (auto m = message(q.message)) out.rows.push_back(std::move(*m));
            return out;  // message() attached its reactions
        case StoredQuery::Kind::thread:
            out = thread(q.message, q.limit);
            break;
        case StoredQuery::Kind::search:
            out = search(q.search);
            break;
        case StoredQuery::Kind::audit:
            return audit(q.audit_before, q.limit);
    }
    if (out.ok && !fill_reactions(out.rows)) {
        out.ok = false;
        out.rows.clear();
    }
    return out;
}

bool Store::fill_reactions(std::vector<MessageRow>& rows) {
    sqlite3_stmt* s = stmt(reactions_of);
    for (auto& m : rows) {
        sqlite3_bind_int64(s, 1, m.id);
        int rc;
        while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
            UserId user = sqlite3_column_int64(s, 0);
            m.reactions[column_text(s, 1)].push_back(user);
        }
        sqlite3_reset(s);
        sqlite3_clear_bindings(s);
        if (rc != SQLITE_DONE) return false;
    }
    return true;
}

QueryRows Store::thread(MessageId root, uint32_t limit) {
    QueryRows out;
    sqlite3_stmt* s = stmt(thread_replies);
    sqlite3_bind_int64(s, 1, root);
    sqlite3_bind_int64(s, 2, limit);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) out.rows.push_back(read_message(s));
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    if (rc != SQLITE_DONE) {
        out.ok = false;
        out.rows.clear();
    }
    return out;
}

// Brings the index up to date, up to `max_items` changes and `max_items` new messages, in
// one transaction. The queued changes concern only messages the index held when they were
// queued, and the new messages only those past indexed_through, so the two never overlap and
// their order does not matter.
Status Store::index_pending(uint32_t max_items) {
    if (!writable_) return Status::ok();
    // Read first (this connection is the only writer), so a call with nothing to do, as
    // most from an idle storage thread are, takes no write lock.
    auto fail = [&](const char* what) {
        Status st = status_from(db_, sqlite3_errcode(db_), what);
        (void)exec("ROLLBACK");
        return st;
    };
    // (rowid, text, scope) into an insert or a 'delete' of the index.
    auto index_row = [&](Stmt which, int64_t id, std::string_view text, std::string_view scope) {
        sqlite3_stmt* q = stmt(which);
        sqlite3_bind_int64(q, 1, id);
        bind_text(q, 2, text);
        bind_text(q, 3, scope);
        return step_once(q) == SQLITE_DONE;
    };
    struct Change {
        int64_t seq, id;
        std::string old_text, scope;
        std::optional<std::string> new_text;
    };
    std::vector<Change> changes;
    sqlite3_stmt* s = stmt(fts_pending);
    sqlite3_bind_int64(s, 1, max_items);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        Change c{sqlite3_column_int64(s, 0), sqlite3_column_int64(s, 1), column_text(s, 2),
                 column_text(s, 3), std::nullopt};
        if (sqlite3_column_type(s, 4) != SQLITE_NULL) c.new_text = column_text(s, 4);
        changes.push_back(std::move(c));
    }
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    if (rc != SQLITE_DONE) return status_from(db_, rc, "index queue");
    int64_t through = 0;
    s = stmt(fts_through);
    if ((rc = sqlite3_step(s)) == SQLITE_ROW) through = sqlite3_column_int64(s, 0);
    sqlite3_reset(s);
    if (rc != SQLITE_ROW) return status_from(db_, rc, "index state");
    struct Fresh {
        int64_t id;
        std::string text, scope;
    };
    std::vector<Fresh> fresh;
    s = stmt(fts_new);
    sqlite3_bind_int64(s, 1, through);
    sqlite3_bind_int64(s, 2, max_items);
    while ((rc = sqlite3_step(s)) == SQLITE_ROW)
        fresh.push_back({sqlite3_column_int64(s, 0), column_text(s, 1), column_text(s, 2)});
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    if (rc != SQLITE_DONE) return status_from(db_, rc, "index new messages");
    if (changes.empty() && fresh.empty()) return Status::ok();
    if (Status st = exec("BEGIN IMMEDIATE"); !st.is_ok()) return st;
    for (const Change& c : changes) {
        if (!index_row(fts_remove, c.id, c.old_text, c.scope)) return fail("index");
        if (c.new_text && !index_row(fts_add, c.id, *c.new_text, c.scope)) return fail("index");
    }
    if (!changes.empty()) {
        sqlite3_stmt* dq = stmt(fts_dequeue);
        sqlite3_bind_int64(dq, 1, changes.back().seq);
        if (step_once(dq) != SQLITE_DONE) return fail("index queue");
    }
    for (const Fresh& f : fresh)
        if (!index_row(fts_add, f.id, f.text, f.scope)) return fail("index");
    if (!fresh.empty()) {
        sqlite3_stmt* up = stmt(fts_advance);
        sqlite3_bind_int64(up, 1, fresh.back().id);
        if (step_once(up) != SQLITE_DONE) return fail("index state");
    }
    return exec("COMMIT");
}

bool Store::index_behind() {
    if (!writable_) return false;
    sqlite3_stmt* s = stmt(fts_pending);
    sqlite3_bind_int64(s, 1, 1);
    bool behind = sqlite3_step(s) == SQLITE_ROW;
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    if (behind) return true;
    int64_t through = INT64_MAX;
    s = stmt(fts_through);
    if (sqlite3_step(s) == SQLITE_ROW) through = sqlite3_column_int64(s, 0);
    sqlite3_reset(s);
    s = stmt(fts_new);
    sqlite3_bind_int64(s, 1, through);
    sqlite3_bind_int64(s, 2, 1);
    behind = sqlite3_step(s) == SQLITE_ROW;
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return behind;
}

namespace {
// Steady-clock deadline checked by SQLite's progress handler: past it the statement stops
// with SQLITE_INTERRUPT.
int past_deadline(void* deadline) {
    return std::chrono::steady_clock::now() >
           *static_cast<std::chrono::steady_clock::time_point*>(deadline);
}
}  // namespace

// The reader's scope is part of the full-text query, so the index yields only messages the
// reader may see, newest first (FTS5 walks rowids in order), and the statement stops at the
// limit. The time budget bounds what a common word can cost.
QueryRows Store::search(const SearchQuery& q) {
    QueryRows out;
    // On the writing connection, search sees every committed message: fold what is still
    // queued into the index first. A reader sees what the writer has indexed (within a moment
    // of the commit).
    for (int rounds = 0; writable_ && rounds < 1000; ++rounds) {
        if (!index_behind()) break;
        if (!index_pending(4096).is_ok()) {
            out.ok = false;
            return out;
        }
    }
    // Scope tokens are built from integers, the query from quoted words: nothing to escape.
    std::string scope;
    for (RoomId r : q.rooms) {
        scope += scope.empty() ? "r" : " OR r";
        scope += std::to_string(r);
    }
    if (q.dm_user > 0) {
        scope += scope.empty() ? "d" : " OR d";
        scope += std::to_string(q.dm_user);
    }
    if (scope.empty()) return out;
    std::string match = "text : (" + q.match + ") AND scope : (" + scope + ")";
    sqlite3_stmt* s = stmt(search_scoped);
    bind_text(s, 1, match);
    sqlite3_bind_int64(s, 2, q.limit);
    auto deadline = std::chrono::steady_clock::now() + query_time_max_;
    sqlite3_progress_handler(db_, 1000, past_deadline, &deadline);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) out.rows.push_back(read_message(s));
    sqlite3_progress_handler(db_, 0, nullptr, nullptr);
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    if (rc != SQLITE_DONE) {
        out.ok = false;
        out.too_costly = (rc & 0xFF) == SQLITE_INTERRUPT;
        out.rows.clear();
    }
    return out;
}

QueryRows Store::audit(int64_t before, uint32_t limit) {
    QueryRows out;
    sqlite3_stmt* s = stmt(audit_page);
    sqlite3_bind_int64(s, 1, before > 0 ? before : INT64_MAX);
    sqlite3_bind_int64(s, 2, limit);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW)
        out.audit.push_back({sqlite3_column_int64(s, 0), sqlite3_column_int64(s, 1),
                             column_text(s, 2), column_text(s, 3), column_text(s, 4),
                             column_text(s, 5), column_text(s, 6), column_text(s, 7)});
    out.ok = rc == SQLITE_DONE;
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    if (!out.ok) out.audit.clear();
    return out;
}

std::optional<MessageRow> Store::message(MessageId id) {
    sqlite3_stmt* s = stmt(message_by_id);
    sqlite3_bind_int64(s, 1, id);
    std::vector<MessageRow> rows;
    if (sqlite3_step(s) == SQLITE_ROW) rows.push_back(read_message(s));
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    if (rows.empty() || !fill_reactions(rows)) return std::nullopt;
    return std::move(rows.front());
}

QueryRows Store::visible_message(MessageId id, const SearchQuery& reader) {
    QueryRows out;
    std::string rooms = "[";
    for (RoomId r : reader.rooms) {
        if (rooms.size() > 1) rooms += ',';
        rooms += std::to_string(r);
    }
    rooms += "]";
    sqlite3_stmt* s = stmt(message_visible);
    sqlite3_bind_int64(s, 1, id);
    bind_text(s, 2, rooms);
    sqlite3_bind_int64(s, 3, reader.dm_user);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) out.rows.push_back(read_message(s));
    out.ok = rc == SQLITE_ROW || rc == SQLITE_DONE;
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    if (out.ok && !fill_reactions(out.rows)) out.ok = false;
    if (!out.ok) out.rows.clear();
    return out;
}

QueryRows Store::history(const HistoryQuery& q) {
    QueryRows out;
    bool ascending = q.after.has_value();
    int64_t bound = ascending ? *q.after : q.before.value_or(INT64_MAX);
    sqlite3_stmt* s = nullptr;
    int i = 1;
    if (q.room > 0) {
        s = stmt(ascending ? history_after : history_before);
        sqlite3_bind_int64(s, i++, q.room);
    } else {
        s = stmt(ascending ? conv_after : conv_before);
        sqlite3_bind_int64(s, i++, q.peers.lo);
        sqlite3_bind_int64(s, i++, q.peers.hi);
    }
    sqlite3_bind_int64(s, i++, bound);
    sqlite3_bind_int64(s, i++, q.limit);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) out.rows.push_back(read_message(s));
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    if (rc != SQLITE_DONE) {
        out.ok = false;
        out.rows.clear();
        return out;
    }
    if (!ascending) std::reverse(out.rows.begin(), out.rows.end());
    return out;
}

}  // namespace warren
