// The chat ops of PROTOCOL.md as Server members: existence and permission checks, then
// mutations into the open batch with the reply and events held until durable. Arguments
// arrive checked by validate_request (validate/requests.h); the WARREN_CHECKs on them here
// are the always-on proof that nothing invalid got past it (the fuzzer relies on them).
// Each handler validates everything before its first mutation, so a refused request changes
// nothing.
#include <sodium.h>

#include <algorithm>

#include "core/protocol/json_writer.h"
#include "core/server.h"
#include "core/validate/rules.h"

namespace warren {

namespace {

std::shared_ptr<const std::string> share(std::string s) {
    return std::make_shared<const std::string>(std::move(s));
}

// Opens `{"re":id,"ok":true` so the caller appends the result fields and closes the object.
void begin_ok(JsonWriter& w, int64_t id) {
    w.begin_object().key("re").value(id).key("ok").value(true);
}

std::string to_hex(const uint8_t* p, size_t n) {
    static constexpr char hex[] = "0123456789abcdef";
    std::string s(n * 2, '0');
    for (size_t i = 0; i < n; ++i) {
        s[2 * i] = hex[p[i] >> 4];
        s[2 * i + 1] = hex[p[i] & 0xF];
    }
    return s;
}

// FNV-1a: a cheap fingerprint of message text for the repeated-text detector.
uint64_t text_fingerprint(std::string_view text) {
    uint64_t h = 1469598103934665603ULL;
    for (char c : text) {
        h ^= static_cast<unsigned char>(c);
        h *= 1099511628211ULL;
    }
    return h;
}

// Session tokens are stored only as this hash, so a leaked database grants no session.
std::string token_hash(std::string_view token) {
    uint8_t out[32];
    crypto_generichash(out, sizeof out, reinterpret_cast<const uint8_t*>(token.data()),
                       token.size(), nullptr, 0);
    return to_hex(out, sizeof out);
}

}  // namespace

void Server::write_room(JsonWriter& w, const Room& room) {
    w.begin_object().key("name").value(room.name).key("topic").value(room.topic);
    w.key("visibility").value(room.is_private ? "private" : "public");
    const User* owner = chat_.user(room.owner);
    w.key("owner").value(owner ? std::string_view(owner->name) : std::string_view());
    w.key("members").value(static_cast<int64_t>(room.members.size()));
    w.end_object();
}

void Server::write_message(JsonWriter& w, const MessageRow& m) {
    auto name_or_null = [&](const std::string* name) {
        if (name)
            w.value(*name);
        else
            w.null();
    };
    const Room* room = m.room ? chat_.room(m.room) : nullptr;
    const User* to = m.to ? chat_.user(m.to) : nullptr;
    const User* author = chat_.user(m.author);
    w.begin_object().key("id").value(m.id);
    w.key("room");
    name_or_null(room ? &room->name : nullptr);
    w.key("to");
    name_or_null(to ? &to->name : nullptr);
    w.key("author");
    name_or_null(author ? &author->name : nullptr);
    w.key("text").value(m.text).key("ts").value(m.ts_ms);
    w.key("reply_to");
    if (m.reply_to)
        w.value(m.reply_to);
    else
        w.null();
    w.key("edited_ts");
    if (m.edited_ms)
        w.value(m.edited_ms);
    else
        w.null();
    w.key("deleted").value(m.deleted);
    w.key("reactions").begin_object();
    for (const auto& [emoji, users] : m.reactions) {
        w.key(emoji).begin_array();
        for (UserId u : users)
            if (const User* user = chat_.user(u)) w.value(user->name);
        w.end_array();
    }
    w.end_object().end_object();
}

std::vector<ConnId> Server::member_conns(const Room& room, ConnId except) {
    std::vector<ConnId> to;
    for (UserId uid : room.members)
        if (const User* u = chat_.user(uid))
            for (ConnId c : u->conns)
                if (c != except) to.push_back(c);
    return to;
}

// The room named, or nullptr after answering NOT_FOUND.
Room* Server::room_or_reply(const Req& r, std::string_view name) {
    Room* room = chat_.find_room(name);
    if (!room) reply_error(r, ErrorCode::not_found, "no room named '" + std::string(name) + "'");
    return room;
}

// ---- accounts and sessions ------------------------------------------------------------------

void Server::op_register(Req& r, Args& a) {
    std::string_view name, password;
    WARREN_CHECK(a.req_string("username", name) && a.req_string("password", password));
    WARREN_CHECK(!check_username(name, config_));
    WARREN_CHECK(!check_password(password, config_));
    if (!config_.registration_open)
        return reply_error(r, ErrorCode::forbidden, "registration is closed on this server");
    if (auto wait = guard_.registration_refused_for(r.conn->ip_key, now_))
        return reply_error(r, ErrorCode::rate_limited, "too many registrations from this address",
                           {}, *wait);
    if (r.conn->user) return reply_error(r, ErrorCode::conflict, "already logged in");
    std::string key = name_key(name);
    if (chat_.name_taken(name) || names_reserved_.contains(key))
        return reply_error(r, ErrorCode::conflict, "username '" + std::string(name) + "' is taken");
    if (hash_jobs_.size() >= config_.hash_jobs_max)
        return reply_error(r, ErrorCode::unavailable, "server busy", {}, config_.retry_after_ms);
    names_reserved_.insert(key);
    guard_.registered(r.conn->ip_key, now_);
    JobId job = next_job_++;
    hash_jobs_[job] =
        HashJob{r.conn->id, r.slot, r.id, Op::register_, std::string(name), r.conn->ip_key};
    r.conn->paused = true;
    outputs_.push_back(Hash{job, HashMode::create, std::string(password), {}});
}

void Server::op_login(Req& r, Args& a) {
    std::optional<std::string_view> name, password, token;
    WARREN_CHECK(a.opt_string("username", name) && a.opt_string("password", password) &&
                 a.opt_string("token", token));
    if (!token && !name)
        return reply_error(r, ErrorCode::bad_request, "give username and password, or token",
                           "username");
    if (!token && !password)
        return reply_error(r, ErrorCode::bad_request, "'password' is required", "password");
    if (r.conn->user) return reply_error(r, ErrorCode::conflict, "already logged in");
    if (token) {
        std::string h = token_hash(*token);
        const SessionRow* s = chat_.session(h);
        User* u = s ? chat_.user(s->user) : nullptr;
        if (!u || s->expires_ms <= now_.wall_ms)
            return reply_error(r, ErrorCode::invalid_credentials, "invalid or expired token");
        if (auto barred = guard_.account_barred(u->id, now_))
            return reply_error(r, ErrorCode::blocked, "this account is suspended", {},
                               barred->retry_after_ms);
        int64_t expires = s->expires_ms;
        bind_user(*r.conn, u->id, h);
        JsonWriter w;
        begin_ok(w, r.id);
        w.key("user").begin_object().key("username").value(u->name);
        w.key("online").value(true).end_object();
        w.key("session").begin_object().key("token").value(*token);
        w.key("expires_ts").value(expires).end_object().end_object();
        return reply(r, share(w.take_line()));
    }
    // A locked name answers the same whether or not the account exists.
    if (auto wait = guard_.name_locked_for(name_key(*name), now_))
        return reply_error(r, ErrorCode::rate_limited,
                           "too many failed logins for this name; try again later", {}, *wait);
    if (hash_jobs_.size() >= config_.hash_jobs_max)
        return reply_error(r, ErrorCode::unavailable, "server busy", {}, config_.retry_after_ms);
    // Unknown names are verified against a dummy hash: same answer, same time.
    User* u = chat_.find_user(*name);
    guard_.login_started(name_key(*name));
    JobId job = next_job_++;
    hash_jobs_[job] =
        HashJob{r.conn->id, r.slot, r.id, Op::login, std::string(*name), r.conn->ip_key};
    r.conn->paused = true;
    outputs_.push_back(Hash{job, HashMode::verify, std::string(*password), u ? u->phc : ""});
}

void Server::hashed(JobId job_id, HashResult result, Time now) {
    begin_input(now);
    auto it = hash_jobs_.find(job_id);
    if (it != hash_jobs_.end()) {
        HashJob job = std::move(it->second);
        hash_jobs_.erase(it);
        if (job.op == Op::register_)
            finish_register(job, result);
        else
            finish_login(job, result);
        if (Conn* c = conn(job.conn)) {
            c->paused = false;
            process_lines(*c);
        }
    }
    end_input();
}

void Server::start_session(Batch& b, const Req& r, User& u) {
    std::vector<uint8_t> raw(config_.token_bytes);
    entropy_.fill(raw);
    std::string token = to_hex(raw.data(), raw.size());
    std::string h = token_hash(token);
    int64_t expires = now_.wall_ms + config_.session_ttl_ms;
    apply(b, SessionRow{h, u.id, expires});
    bind_user(*r.conn, u.id, h);
    JsonWriter w;
    begin_ok(w, r.id);
    w.key("user").begin_object().key("username").value(u.name);
    w.key("online").value(true).end_object();
    w.key("session").begin_object().key("token").value(token);
    w.key("expires_ts").value(expires).end_object().end_object();
    commit_reply(b, r, share(w.take_line()));
}

void Server::finish_register(HashJob& job, const HashResult& result) {
    names_reserved_.erase(name_key(job.username));
    Conn* c = conn(job.conn);
    if (!c) return;
    Req r{c, job.slot, job.request_id};
    if (!result.ok)
        return reply_error(r, ErrorCode::unavailable, "server busy; try again", {},
                           config_.retry_after_ms);
    if (refuse_write(r)) return;
    Batch& b = write_batch();
    UserId id = chat_.take_user_id();
    apply(b, UserRow{id, job.username, result.phc, now_.wall_ms});
    start_session(b, r, *chat_.user(id));
}

void Server::finish_login(HashJob& job, const HashResult& result) {
    guard_.login_finished(name_key(job.username));
    Conn* c = conn(job.conn);
    if (!c) return;
    Req r{c, job.slot, job.request_id};
    if (result.overloaded)
        return reply_error(r, ErrorCode::unavailable, "server busy; try again", {},
                           config_.retry_after_ms);
    User* u = chat_.find_user(job.username);
    if (!result.ok || !u) {
        guard_.login_failed(job.ip_key, name_key(job.username), now_);
        return reply_error(r, ErrorCode::invalid_credentials, "invalid username or password");
    }
    guard_.login_succeeded(name_key(job.username));
    if (auto barred = guard_.account_barred(u->id, now_))
        return reply_error(r, ErrorCode::blocked, "this account is suspended", {},
                           barred->retry_after_ms);
    if (refuse_write(r)) return;
    start_session(write_batch(), r, *u);
}

void Server::op_logout(Req& r) {
    if (refuse_write(r)) return;
    Conn& c = *r.conn;
    Batch& b = write_batch();
    if (chat_.session(c.token_hash)) apply(b, SessionDelete{c.token_hash});
    UserId user = *c.user;
    std::string h = c.token_hash;
    unbind_user(c);
    c.opened_ms = now_.mono_ms;  // the login deadline starts again
    b.undo.push_back([this, id = c.id, user, h] {
        if (Conn* cc = conn(id)) {
            cc->user = user;
            cc->token_hash = h;
            if (User* u = chat_.user(user)) u->conns.insert(id);
        }
    });
    JsonWriter w;
    begin_ok(w, r.id);
    w.end_object();
    commit_reply(b, r, share(w.take_line()));
}

// ---- rooms ------------------------------------------------------------------------------------

void Server::op_create_room(Req& r, Args& a) {
    std::string_view name;
    std::optional<std::string_view> visibility, topic;
    WARREN_CHECK(a.req_string("room", name) && a.opt_string("visibility", visibility) &&
                 a.opt_string("topic", topic));
    WARREN_CHECK(!check_room_name(name, config_));
    WARREN_CHECK(!visibility || *visibility == "public" || *visibility == "private");
    if (topic) WARREN_CHECK(!check_topic(*topic, config_));
    if (chat_.find_room(name))
        return reply_error(r, ErrorCode::conflict, "room '" + std::string(name) + "' exists");
    if (refuse_write(r)) return;
    Batch& b = write_batch();
    RoomId id = chat_.take_room_id();
    UserId owner = *r.conn->user;
    apply(b, RoomRow{id, std::string(name), std::string(topic.value_or("")),
                     visibility == "private", owner, now_.wall_ms});
    apply(b, MemberRow{id, owner, now_.wall_ms});
    JsonWriter w;
    begin_ok(w, r.id);
    w.key("room");
    write_room(w, *chat_.room(id));
    w.end_object();
    commit_reply(b, r, share(w.take_line()));
}

void Server::op_join_room(Req& r, Args& a) {
    std::string_view name;
    WARREN_CHECK(a.req_string("room", name));
    WARREN_CHECK(!check_room_name(name, config_));
    Room* room = room_or_reply(r, name);
    if (!room) return;
    UserId me = *r.conn->user;
    auto room_reply = [&] {
        JsonWriter w;
        begin_ok(w, r.id);
        w.key("room");
        write_room(w, *room);
        w.end_object();
        return share(w.take_line());
    };
    if (room->members.contains(me)) return reply(r, room_reply());  // idempotent
    // Joining accepts a pending invitation (the only way into a private room).
    const InvitationRow* inv = chat_.invitation_to(room->id, me);
    if (inv && inv->expires_ms > now_.wall_ms) {
        if (refuse_write(r)) return;
        return accept_invitation(r, *inv);
    }
    if (room->is_private)
        return reply_error(r, ErrorCode::forbidden, "room '" + room->name + "' is private");
    if (refuse_write(r)) return;
    guard_.membership_change(r.conn->ip_key, me, now_);
    Batch& b = write_batch();
    apply(b, MemberRow{room->id, me, now_.wall_ms});
    commit_reply(b, r, room_reply());
    JsonWriter ev;
    ev.begin_object().key("ev").value("MEMBER_JOINED").key("room").value(room->name);
    ev.key("user").value(chat_.user(me)->name).end_object();
    b.events.push_back(PendingEvent{member_conns(*room, r.conn->id), share(ev.take_line())});
}

void Server::op_leave_room(Req& r, Args& a) {
    std::string_view name;
    WARREN_CHECK(a.req_string("room", name));
    WARREN_CHECK(!check_room_name(name, config_));
    Room* room = room_or_reply(r, name);
    if (!room) return;
    UserId me = *r.conn->user;
    if (!room->members.contains(me))
        return reply_error(r, ErrorCode::conflict, "not a member of '" + room->name + "'");
    if (refuse_write(r)) return;
    guard_.membership_change(r.conn->ip_key, me, now_);
    Batch& b = write_batch();
    // Recipients include the leaver's other connections, computed before the removal.
    std::vector<ConnId> to = member_conns(*room, r.conn->id);
    apply(b, MemberDelete{room->id, me});
    JsonWriter w;
    begin_ok(w, r.id);
    w.end_object();
    commit_reply(b, r, share(w.take_line()));
    JsonWriter ev;
    ev.begin_object().key("ev").value("MEMBER_LEFT").key("room").value(room->name);
    ev.key("user").value(chat_.user(me)->name).end_object();
    b.events.push_back(PendingEvent{std::move(to), share(ev.take_line())});
}

void Server::op_list_rooms(Req& r, Args& a) {
    std::optional<std::string_view> cursor;
    std::optional<int64_t> limit;
    WARREN_CHECK(a.opt_string("cursor", cursor) && a.opt_int("limit", limit));
    WARREN_CHECK(!limit || *limit >= 1);
    size_t n = std::min<int64_t>(limit.value_or(config_.page_default), config_.rooms_page_max);
    UserId me = *r.conn->user;
    const auto& by_key = chat_.rooms_by_key();
    auto it = cursor ? by_key.upper_bound(name_key(*cursor)) : by_key.begin();
    std::vector<const Room*> page;
    bool more = false;
    for (; it != by_key.end(); ++it) {
        const Room* room = chat_.room(it->second);
        if (room->is_private && !room->members.contains(me)) continue;
        if (page.size() == n) {
            more = true;
            break;
        }
        page.push_back(room);
    }
    JsonWriter w;
    begin_ok(w, r.id);
    w.key("rooms").begin_array();
    for (const Room* room : page) write_room(w, *room);
    w.end_array().key("next_cursor");
    if (more)
        w.value(name_key(page.back()->name));
    else
        w.null();
    w.end_object();
    reply(r, share(w.take_line()));
}

// ---- messages ---------------------------------------------------------------------------------

// Shared by SEND_MESSAGE and DIRECT_MESSAGE once every check has passed: the message goes
// into the open batch; the reply and the event wait for its commit.
void Server::post_message(const Req& r, MessageRow m, std::string_view event,
                          std::vector<ConnId> to) {
    Batch& b = write_batch();
    JsonWriter msg;
    write_message(msg, m);
    apply(b, std::move(m));
    JsonWriter w;
    begin_ok(w, r.id);
    w.key("message").raw(msg.str()).end_object();
    commit_reply(b, r, share(w.take_line()));
    JsonWriter ev;
    ev.begin_object().key("ev").value(event).key("message").raw(msg.str()).end_object();
    b.events.push_back(PendingEvent{std::move(to), share(ev.take_line())});
}

// Common argument checks of SEND_MESSAGE / DIRECT_MESSAGE: text and reply_to.
bool Server::check_message_args(const Req& r, Args& a, std::string_view& text,
                                std::optional<int64_t>& reply_to) {
    // validate_request has checked every argument; these hold or the core is wrong.
    WARREN_CHECK(a.req_string("text", text) && a.opt_int("reply_to", reply_to));
    WARREN_CHECK(!check_text(text, config_));
    WARREN_CHECK(!reply_to || *reply_to > 0);
    (void)r;
    return true;
}

// reply_to must name a message of the same room or conversation. An old one may have to be
// read from storage first, in which case the request runs again later (false, no reply).
bool Server::check_reply_to(Req& r, RoomId room, PeerPair peers, std::optional<int64_t> reply_to) {
    if (!reply_to) return true;
    if (*reply_to > chat_.last_message_id()) {
        reply_error(r, ErrorCode::bad_request, "reply_to names no message", "reply_to");
        return false;
    }
    const MessageRow* m = message_or_fetch(r, *reply_to);
    if (!m) return false;
    bool same = room ? m->room == room : (m->room == 0 && conversation_of(*m) == peers);
    if (same) return true;
    reply_error(r, ErrorCode::bad_request,
                "reply_to must name a message of the same room or conversation", "reply_to");
    return false;
}

void Server::op_send_message(Req& r, Args& a) {
    std::string_view name, text;
    std::optional<int64_t> reply_to;
    WARREN_CHECK(a.req_string("room", name));
    WARREN_CHECK(!check_room_name(name, config_));
    if (!check_message_args(r, a, text, reply_to)) return;
    Room* room = room_or_reply(r, name);
    if (!room) return;
    UserId me = *r.conn->user;
    if (!room->members.contains(me))
        return reply_error(r, ErrorCode::forbidden, "not a member of '" + room->name + "'");
    if (!check_reply_to(r, room->id, {}, reply_to)) return;
    if (refuse_write(r)) return;
    guard_.room_message(r.conn->ip_key, me, room->id, text_fingerprint(text), now_);
    post_message(r,
                 MessageRow{chat_.take_message_id(), room->id, me, std::string(text), now_.wall_ms,
                            reply_to.value_or(0), 0},
                 "MESSAGE", member_conns(*room, r.conn->id));
}

void Server::op_direct_message(Req& r, Args& a) {
    std::string_view to_name, text;
    std::optional<int64_t> reply_to;
    WARREN_CHECK(a.req_string("to", to_name));
    WARREN_CHECK(!check_username(to_name, config_));
    if (!check_message_args(r, a, text, reply_to)) return;
    User* to = chat_.find_user(to_name);
    if (!to)
        return reply_error(r, ErrorCode::not_found, "no user named '" + std::string(to_name) + "'");
    UserId me = *r.conn->user;
    if (!check_reply_to(r, 0, peer_pair(me, to->id), reply_to)) return;
    if (refuse_write(r)) return;
    guard_.direct_message(r.conn->ip_key, me, to->id, chat_.user(me)->created_ms, now_);
    // The recipient's connections and the sender's other ones (one set if writing to oneself).
    std::set<ConnId> recipients(to->conns.begin(), to->conns.end());
    const User* self = chat_.user(me);
    recipients.insert(self->conns.begin(), self->conns.end());
    recipients.erase(r.conn->id);
    post_message(r,
                 MessageRow{chat_.take_message_id(), 0, me, std::string(text), now_.wall_ms,
                            reply_to.value_or(0), to->id},
                 "DIRECT_MESSAGE", std::vector<ConnId>(recipients.begin(), recipients.end()));
}

MessageLog& Server::log_for(const QueryJob& job) {
    if (job.spec.room > 0) return chat_.room(job.spec.room)->log;
    return chat_.conversation(job.spec.peers);
}

void Server::op_history(Req& r, Args& a) {
    std::optional<std::string_view> room_name, with;
    std::optional<int64_t> before, after, limit;
    WARREN_CHECK(a.opt_string("room", room_name) && a.opt_string("with", with) &&
                 a.opt_int("before", before) && a.opt_int("after", after) &&
                 a.opt_int("limit", limit));
    if (!room_name == !with)
        return reply_error(r, ErrorCode::bad_request, "give room or with (a username), not both",
                           "room");
    if (room_name) WARREN_CHECK(!check_room_name(*room_name, config_));
    if (with) WARREN_CHECK(!check_username(*with, config_));
    if (before && after)
        return reply_error(r, ErrorCode::bad_request, "give before or after, not both", "after");
    WARREN_CHECK((!before || *before >= 0) && (!after || *after >= 0));
    WARREN_CHECK(!limit || *limit >= 1);
    HistoryQuery q;
    q.before = before;
    q.after = after;
    q.limit = static_cast<uint32_t>(
        std::min<int64_t>(limit.value_or(config_.page_default), config_.history_page_max));
    UserId me = *r.conn->user;
    if (room_name) {
        Room* room = room_or_reply(r, *room_name);
        if (!room) return;
        if (!room->members.contains(me))
            return reply_error(r, ErrorCode::forbidden, "not a member of '" + room->name + "'");
        q.room = room->id;
    } else {
        User* peer = chat_.find_user(*with);
        if (!peer)
            return reply_error(r, ErrorCode::not_found,
                               "no user named '" + std::string(*with) + "'");
        q.peers = peer_pair(me, peer->id);
    }
    QueryJob job{r.conn->id, r.slot, r.id, StoredQuery::Kind::history, q};
    // The cache holds the newest messages; storage is needed only when the page reaches past
    // its oldest one.
    const MessageLog& log = log_for(job);
    bool need_disk = false;
    if (log.older_on_disk) {
        if (after) {
            need_disk = log.recent.empty() || *after + 1 < log.recent.front().id;
        } else {
            auto below =
                std::count_if(log.recent.begin(), log.recent.end(),
                              [&](const MessageRow& m) { return !before || m.id < *before; });
            need_disk = static_cast<size_t>(below) <= q.limit;
        }
    }
    if (!need_disk) return answer_history(job, {});
    if (query_jobs_.size() >= config_.queries_max)
        return reply_error(r, ErrorCode::unavailable, "server busy", {}, config_.retry_after_ms);
    QueryId id = next_query_++;
    query_jobs_[id] = job;
    StoredQuery disk;
    disk.history = q;
    disk.history.limit = q.limit + 1;  // one more tells whether more exist
    outputs_.push_back(Query{id, disk});
}

void Server::answered(QueryId query, QueryRows rows, Time now) {
    begin_input(now);
    auto it = query_jobs_.find(query);
    if (it != query_jobs_.end()) {
        QueryJob job = std::move(it->second);
        query_jobs_.erase(it);
        if (job.kind == StoredQuery::Kind::audit) {
            answer_audit(job, rows);
        } else if (Conn* c = conn(job.conn)) {
            Req r{c, job.slot, job.request_id};
            if (!rows.ok) {
                reply_error(r, ErrorCode::unavailable, "storage unavailable", {},
                            config_.retry_after_ms);
                if (job.kind == StoredQuery::Kind::message) {
                    c->paused = false;
                    process_lines(*c);
                }
            } else {
                switch (job.kind) {
                    case StoredQuery::Kind::history:
                        answer_history(job, std::move(rows.rows));
                        break;
                    case StoredQuery::Kind::message:
                        answer_lookup(job, std::move(rows.rows));
                        break;
                    case StoredQuery::Kind::thread:
                        answer_thread(job, std::move(rows.rows));
                        break;
                    case StoredQuery::Kind::search:
                        answer_search(job, std::move(rows.rows));
                        break;
                    case StoredQuery::Kind::audit:
                        break;  // answered above
                }
            }
        }
    }
    end_input();
}

// Merges stored rows with the cache (which holds the newest, possibly not yet stored,
// messages) and selects the page: newest `limit` below `before`, or oldest `limit` above
// `after`.
void Server::answer_history(const QueryJob& job, std::vector<MessageRow> rows) {
    Conn* c = conn(job.conn);
    if (!c) return;
    Req r{c, job.slot, job.request_id};
    const HistoryQuery& q = job.spec;
    if (q.room == 0 || chat_.room(q.room)) {
        for (const auto& m : log_for(job).recent)
            if ((!q.before || m.id < *q.before) && (!q.after || m.id > *q.after)) rows.push_back(m);
    }
    std::sort(rows.begin(), rows.end(),
              [](const MessageRow& x, const MessageRow& y) { return x.id < y.id; });
    rows.erase(std::unique(rows.begin(), rows.end(),
                           [](const MessageRow& x, const MessageRow& y) { return x.id == y.id; }),
               rows.end());
    prefer_memory(rows);
    // Stored rows were fetched with limit + 1, so one row past the page means more exist.
    bool has_more = rows.size() > q.limit;
    size_t from = 0, to = rows.size();
    if (q.after)
        to = std::min<size_t>(rows.size(), q.limit);
    else
        from = has_more ? rows.size() - q.limit : 0;
    JsonWriter w;
    begin_ok(w, r.id);
    w.key("messages").begin_array();
    for (size_t i = from; i < to; ++i) write_message(w, rows[i]);
    w.end_array().key("has_more").value(has_more).end_object();
    reply(r, share(w.take_line()));
}

}  // namespace warren

namespace warren {

// ---- topics, read markers, user lists ---------------------------------------------------------

void Server::op_set_topic(Req& r, Args& a) {
    std::string_view name, topic;
    WARREN_CHECK(a.req_string("room", name) && a.req_string("topic", topic));
    WARREN_CHECK(!check_room_name(name, config_));
    WARREN_CHECK(!check_topic(topic, config_));
    Room* room = room_or_reply(r, name);
    if (!room) return;
    UserId me = *r.conn->user;
    if (room->owner != me)
        return reply_error(r, ErrorCode::forbidden, "only the owner may set the topic");
    if (refuse_write(r)) return;
    Batch& b = write_batch();
    apply(b, RoomTopic{room->id, std::string(topic)});
    JsonWriter w;
    begin_ok(w, r.id);
    w.key("room");
    write_room(w, *room);
    w.end_object();
    commit_reply(b, r, share(w.take_line()));
    JsonWriter ev;
    ev.begin_object().key("ev").value("TOPIC_CHANGED").key("room").value(room->name);
    ev.key("topic").value(topic).key("by").value(chat_.user(me)->name).end_object();
    b.events.push_back(PendingEvent{member_conns(*room, r.conn->id), share(ev.take_line())});
}

void Server::op_mark_read(Req& r, Args& a) {
    std::optional<std::string_view> room_name, with;
    int64_t message_id = 0;
    WARREN_CHECK(a.opt_string("room", room_name) && a.opt_string("with", with) &&
                 a.req_int("message_id", message_id));
    if (!room_name == !with)
        return reply_error(r, ErrorCode::bad_request, "give room or with (a username), not both",
                           "room");
    if (room_name) WARREN_CHECK(!check_room_name(*room_name, config_));
    if (with) WARREN_CHECK(!check_username(*with, config_));
    WARREN_CHECK(message_id >= 1);
    UserId me = *r.conn->user;
    ReadMarkerRow marker{me, 0, 0, message_id};
    std::string where_key = room_name ? "room" : "with", where_name;
    if (room_name) {
        Room* room = room_or_reply(r, *room_name);
        if (!room) return;
        if (!room->members.contains(me))
            return reply_error(r, ErrorCode::forbidden, "not a member of '" + room->name + "'");
        marker.room = room->id;
        where_name = room->name;
    } else {
        User* peer = chat_.find_user(*with);
        if (!peer)
            return reply_error(r, ErrorCode::not_found,
                               "no user named '" + std::string(*with) + "'");
        marker.peer = peer->id;
        where_name = peer->name;
    }
    if (message_id > chat_.last_message_id())
        return reply_error(r, ErrorCode::not_found, "no message " + std::to_string(message_id));
    if (refuse_write(r)) return;
    Batch& b = write_batch();
    apply(b, marker);
    JsonWriter w;
    begin_ok(w, r.id);
    w.end_object();
    commit_reply(b, r, share(w.take_line()));
    JsonWriter ev;
    ev.begin_object().key("ev").value("READ_MARKER").key(where_key).value(where_name);
    ev.key("message_id").value(message_id).end_object();
    std::vector<ConnId> mine;
    for (ConnId c : chat_.user(me)->conns)
        if (c != r.conn->id) mine.push_back(c);
    b.events.push_back(PendingEvent{std::move(mine), share(ev.take_line())});
}

void Server::op_request_user_list(Req& r, Args& a) {
    std::optional<std::string_view> room_name;
    WARREN_CHECK(a.opt_string("room", room_name));
    if (room_name) WARREN_CHECK(!check_room_name(*room_name, config_));
    std::vector<const User*> users;
    if (room_name) {
        Room* room = room_or_reply(r, *room_name);
        if (!room) return;
        if (room->is_private && !room->members.contains(*r.conn->user))
            return reply_error(r, ErrorCode::forbidden, "room '" + room->name + "' is private");
        for (UserId id : room->members)
            if (const User* u = chat_.user(id)) users.push_back(u);
    } else {
        for (const auto& [id, u] : chat_.users())
            if (!u.conns.empty()) users.push_back(&u);
    }
    std::sort(users.begin(), users.end(),
              [](const User* x, const User* y) { return name_key(x->name) < name_key(y->name); });
    if (users.size() > config_.user_list_max) users.resize(config_.user_list_max);
    JsonWriter w;
    begin_ok(w, r.id);
    w.key("users").begin_array();
    for (const User* u : users) {
        w.begin_object().key("username").value(u->name);
        w.key("online").value(!u->conns.empty()).end_object();
    }
    w.end_array().end_object();
    reply(r, share(w.take_line()));
}

}  // namespace warren

namespace warren {

// ---- invitations ------------------------------------------------------------------------------

void Server::write_invitation(JsonWriter& w, const InvitationRow& inv) {
    const Room* room = chat_.room(inv.room);
    const User* from = chat_.user(inv.from);
    const User* to = chat_.user(inv.to);
    w.begin_object().key("id").value(inv.id);
    w.key("room").value(room ? std::string_view(room->name) : std::string_view());
    w.key("from").value(from ? std::string_view(from->name) : std::string_view());
    w.key("to").value(to ? std::string_view(to->name) : std::string_view());
    w.key("ts").value(inv.ts_ms).key("expires_ts").value(inv.expires_ms).end_object();
}

void Server::op_invite_user(Req& r, Args& a) {
    std::string_view room_name, user_name;
    WARREN_CHECK(a.req_string("room", room_name) && a.req_string("user", user_name));
    WARREN_CHECK(!check_room_name(room_name, config_));
    WARREN_CHECK(!check_username(user_name, config_));
    Room* room = room_or_reply(r, room_name);
    if (!room) return;
    User* invitee = chat_.find_user(user_name);
    if (!invitee)
        return reply_error(r, ErrorCode::not_found,
                           "no user named '" + std::string(user_name) + "'");
    UserId me = *r.conn->user;
    // Attempts count, refused ones too: spamming invitations is the behaviour scored.
    guard_.invitation_sent(r.conn->ip_key, me, now_);
    if (!room->members.contains(me))
        return reply_error(r, ErrorCode::forbidden, "not a member of '" + room->name + "'");
    if (room->members.contains(invitee->id))
        return reply_error(r, ErrorCode::conflict, invitee->name + " is already a member");
    if (chat_.invitation_to(room->id, invitee->id))
        return reply_error(r, ErrorCode::conflict, invitee->name + " is already invited");
    if (chat_.pending_invitations_of(invitee->id) >= config_.invitations_pending_max)
        return reply_error(r, ErrorCode::conflict, invitee->name + " has too many invitations");
    if (refuse_write(r)) return;
    Batch& b = write_batch();
    InvitationRow inv{chat_.take_invitation_id(),
                      room->id,
                      me,
                      invitee->id,
                      now_.wall_ms,
                      now_.wall_ms + config_.invitation_ttl_ms};
    apply(b, inv);
    JsonWriter obj;
    write_invitation(obj, inv);
    JsonWriter w;
    begin_ok(w, r.id);
    w.key("invitation").raw(obj.str()).end_object();
    commit_reply(b, r, share(w.take_line()));
    JsonWriter ev;
    ev.begin_object().key("ev").value("INVITATION").key("invitation").raw(obj.str()).end_object();
    std::vector<ConnId> to(invitee->conns.begin(), invitee->conns.end());
    std::erase(to, r.conn->id);
    b.events.push_back(PendingEvent{std::move(to), share(ev.take_line())});
}

void Server::accept_invitation(const Req& r, const InvitationRow& inv) {
    InvitationRow copy = inv;  // `inv` lives in state that the close below removes
    Room& room = *chat_.room(copy.room);
    UserId me = copy.to;
    // Already a member (joined since the invitation): accepting only closes it.
    bool joins = !room.members.contains(me);
    Batch& b = write_batch();
    apply(b, InvitationClose{copy.id, InvitationClose::Why::accepted});
    if (joins) apply(b, MemberRow{room.id, me, now_.wall_ms});
    JsonWriter w;
    begin_ok(w, r.id);
    w.key("room");
    write_room(w, room);
    w.end_object();
    commit_reply(b, r, share(w.take_line()));
    JsonWriter obj;
    write_invitation(obj, copy);
    JsonWriter accepted;
    accepted.begin_object().key("ev").value("INVITATION_ACCEPTED").key("invitation");
    accepted.raw(obj.str()).end_object();
    if (const User* inviter = chat_.user(copy.from))
        b.events.push_back(
            PendingEvent{std::vector<ConnId>(inviter->conns.begin(), inviter->conns.end()),
                         share(accepted.take_line())});
    if (!joins) return;
    JsonWriter joined;
    joined.begin_object().key("ev").value("MEMBER_JOINED").key("room").value(room.name);
    joined.key("user").value(chat_.user(me)->name).end_object();
    b.events.push_back(PendingEvent{member_conns(room, r.conn->id), share(joined.take_line())});
}

void Server::op_answer_invitation(Req& r, Args& a, bool accept) {
    std::optional<int64_t> id;
    std::optional<std::string_view> room_name;
    WARREN_CHECK(a.opt_int("invitation_id", id) && a.opt_string("room", room_name));
    if (!id == !room_name)
        return reply_error(r, ErrorCode::bad_request, "give invitation_id or room, not both",
                           "invitation_id");
    if (room_name) WARREN_CHECK(!check_room_name(*room_name, config_));
    UserId me = *r.conn->user;
    const InvitationRow* inv = nullptr;
    if (id) {
        inv = chat_.invitation(*id);
    } else if (Room* room = chat_.find_room(*room_name)) {
        inv = chat_.invitation_to(room->id, me);
    }
    // Someone else's invitation is as invisible as a missing one.
    if (!inv || inv->to != me || inv->expires_ms <= now_.wall_ms)
        return reply_error(r, ErrorCode::not_found, "no pending invitation");
    if (refuse_write(r)) return;
    if (accept) return accept_invitation(r, *inv);
    InvitationRow copy = *inv;
    Batch& b = write_batch();
    apply(b, InvitationClose{copy.id, InvitationClose::Why::declined});
    JsonWriter w;
    begin_ok(w, r.id);
    w.end_object();
    commit_reply(b, r, share(w.take_line()));
    JsonWriter obj;
    write_invitation(obj, copy);
    JsonWriter ev;
    ev.begin_object().key("ev").value("INVITATION_DECLINED").key("invitation").raw(obj.str());
    ev.end_object();
    if (const User* inviter = chat_.user(copy.from))
        b.events.push_back(
            PendingEvent{std::vector<ConnId>(inviter->conns.begin(), inviter->conns.end()),
                         share(ev.take_line())});
}

void Server::op_list_invitations(Req& r) {
    JsonWriter w;
    begin_ok(w, r.id);
    w.key("invitations").begin_array();
    for (const InvitationRow* inv : chat_.invitations_of(*r.conn->user))
        if (inv->expires_ms > now_.wall_ms) write_invitation(w, *inv);
    w.end_array().end_object();
    reply(r, share(w.take_line()));
}

// Expired invitations are closed durably on tick. While writes are refused (breaker open,
// queues full) they wait for a later tick; they are already invisible to every op.
void Server::expire_invitations() {
    while (const InvitationRow* inv = chat_.next_to_expire()) {
        if (inv->expires_ms > now_.wall_ms) return;
        if (breaker_.refuse_for(now_.mono_ms, !batches_.empty()) || batches_.full()) {
            expiry_blocked_until_ms_ = now_.mono_ms + config_.retry_after_ms;
            return;
        }
        InvitationId id = inv->id;
        apply(write_batch(), InvitationClose{id, InvitationClose::Why::expired});
    }
}

}  // namespace warren

namespace warren {

// ---- edits, deletions, reactions, threads, search ---------------------------------------------

void Server::emit_query(QueryJob job, StoredQuery what) {
    QueryId id = next_query_++;
    what.kind = job.kind;
    query_jobs_[id] = std::move(job);
    outputs_.push_back(Query{id, std::move(what)});
}

MessageRow* Server::message_or_fetch(Req& r, MessageId id) {
    if (MessageRow* m = chat_.message(id)) return m;
    if (id > chat_.last_message_id()) {
        reply_error(r, ErrorCode::not_found, "no message " + std::to_string(id));
        return nullptr;
    }
    if (query_jobs_.size() >= config_.queries_max || r.line.empty()) {
        reply_error(r, ErrorCode::unavailable, "server busy", {}, config_.retry_after_ms);
        return nullptr;
    }
    QueryJob job;
    job.conn = r.conn->id;
    job.slot = r.slot;
    job.request_id = r.id;
    job.kind = StoredQuery::Kind::message;
    job.line = std::string(r.line);
    StoredQuery what;
    what.message = id;
    // Later requests of this connection wait: they may depend on this one.
    r.conn->paused = true;
    emit_query(std::move(job), std::move(what));
    return nullptr;
}

void Server::answer_lookup(QueryJob& job, std::vector<MessageRow> rows) {
    Conn* c = conn(job.conn);
    if (!c) return;
    c->paused = false;
    if (rows.empty()) {
        reply_error(Req{c, job.slot, job.request_id}, ErrorCode::not_found, "no such message");
    } else {
        chat_.remember(std::move(rows.front()));
        // Run the request again, now that the message is in memory; it keeps its slot.
        DecodedRequest d = decoder_.decode(job.line);
        WARREN_CHECK(d.kind == DecodedRequest::Kind::ok);
        Req r{c, job.slot, d.id, job.line};
        Args args(d.args);
        dispatch(r, *op_from_name(d.op), args);
    }
    if (!c->paused) process_lines(*c);
}

bool Server::check_visible(const Req& r, const MessageRow& m) {
    UserId me = *r.conn->user;
    if (m.room == 0) {
        if (m.author == me || m.to == me) return true;
        reply_error(r, ErrorCode::not_found, "no message " + std::to_string(m.id));
        return false;
    }
    const Room* room = chat_.room(m.room);
    if (room && room->members.contains(me)) return true;
    reply_error(r, ErrorCode::forbidden,
                "not a member of '" + (room ? room->name : std::string()) + "'");
    return false;
}

std::vector<ConnId> Server::message_audience(const MessageRow& m, ConnId except) {
    if (m.room) {
        const Room* room = chat_.room(m.room);
        return room ? member_conns(*room, except) : std::vector<ConnId>{};
    }
    std::set<ConnId> to;
    for (UserId u : {m.author, m.to})
        if (const User* user = chat_.user(u)) to.insert(user->conns.begin(), user->conns.end());
    to.erase(except);
    return {to.begin(), to.end()};
}

void Server::prefer_memory(std::vector<MessageRow>& rows) {
    for (auto& row : rows)
        if (const MessageRow* m = chat_.message(row.id)) row = *m;
}

namespace {

// validate_request has checked message_id: present, an integer, 1 or more.
int64_t read_message_id(Args& a) {
    int64_t id = 0;
    WARREN_CHECK(a.req_int("message_id", id) && id >= 1);
    return id;
}

}  // namespace

void Server::op_edit_message(Req& r, Args& a) {
    int64_t id = read_message_id(a);
    std::string_view text;
    WARREN_CHECK(a.req_string("text", text));
    WARREN_CHECK(!check_text(text, config_));
    MessageRow* m = message_or_fetch(r, id);
    if (!m || !check_visible(r, *m)) return;
    if (m->author != *r.conn->user)
        return reply_error(r, ErrorCode::forbidden, "only the author may edit a message");
    if (m->deleted) return reply_error(r, ErrorCode::conflict, "the message was deleted");
    if (refuse_write(r)) return;
    Batch& b = write_batch();
    apply(b, MessageEdit{id, std::string(text), now_.wall_ms});
    m = chat_.message(id);
    JsonWriter msg;
    write_message(msg, *m);
    JsonWriter w;
    begin_ok(w, r.id);
    w.key("message").raw(msg.str()).end_object();
    commit_reply(b, r, share(w.take_line()));
    JsonWriter ev;
    ev.begin_object().key("ev").value("MESSAGE_EDITED").key("message").raw(msg.str()).end_object();
    b.events.push_back(PendingEvent{message_audience(*m, r.conn->id), share(ev.take_line())});
}

void Server::op_delete_message(Req& r, Args& a) {
    int64_t id = read_message_id(a);
    MessageRow* m = message_or_fetch(r, id);
    if (!m || !check_visible(r, *m)) return;
    UserId me = *r.conn->user;
    const Room* room = m->room ? chat_.room(m->room) : nullptr;
    const std::string& my_name = chat_.user(me)->name;
    bool admin =
        std::any_of(config_.admin_usernames.begin(), config_.admin_usernames.end(),
                    [&](const std::string& n) { return name_key(n) == name_key(my_name); });
    if (m->author != me && !(room && room->owner == me) && !admin)
        return reply_error(r, ErrorCode::forbidden,
                           "only the author, the room owner or an admin may delete a message");
    if (m->deleted) return reply_error(r, ErrorCode::conflict, "the message was already deleted");
    if (refuse_write(r)) return;
    MessageRow before = *m;
    Batch& b = write_batch();
    apply(b, MessageDelete{id});
    JsonWriter w;
    begin_ok(w, r.id);
    w.end_object();
    commit_reply(b, r, share(w.take_line()));
    auto event = [&](std::string_view key, std::string_view where) {
        JsonWriter ev;
        ev.begin_object().key("ev").value("MESSAGE_DELETED").key("message_id").value(id);
        ev.key(key).value(where).end_object();
        return share(ev.take_line());
    };
    if (room) {
        b.events.push_back(
            PendingEvent{member_conns(*room, r.conn->id), event("room", room->name)});
        return;
    }
    // In a conversation each side is told the other party's name.
    for (auto [side, other] :
         {std::pair{before.author, before.to}, std::pair{before.to, before.author}}) {
        const User* u = chat_.user(side);
        const User* o = chat_.user(other);
        if (!u || !o) continue;
        std::vector<ConnId> to;
        for (ConnId c : u->conns)
            if (c != r.conn->id) to.push_back(c);
        b.events.push_back(PendingEvent{std::move(to), event("with", o->name)});
        if (side == other) break;  // a note to oneself: one audience
    }
}

void Server::op_react(Req& r, Args& a, bool add) {
    int64_t id = read_message_id(a);
    std::string_view emoji;
    WARREN_CHECK(a.req_string("emoji", emoji));
    WARREN_CHECK(!check_emoji(emoji, config_));
    MessageRow* m = message_or_fetch(r, id);
    if (!m || !check_visible(r, *m)) return;
    UserId me = *r.conn->user;
    if (m->deleted) return reply_error(r, ErrorCode::conflict, "the message was deleted");
    auto it = m->reactions.find(std::string(emoji));
    bool mine = it != m->reactions.end() &&
                std::find(it->second.begin(), it->second.end(), me) != it->second.end();
    if (add && mine) return reply_error(r, ErrorCode::conflict, "already reacted with that emoji");
    if (!add && !mine) return reply_error(r, ErrorCode::not_found, "no such reaction");
    if (add && it == m->reactions.end() && m->reactions.size() >= config_.emoji_per_message_max)
        return reply_error(r, ErrorCode::conflict, "too many different reactions on this message");
    if (refuse_write(r)) return;
    Batch& b = write_batch();
    if (add)
        apply(b, ReactionAdd{id, me, std::string(emoji)});
    else
        apply(b, ReactionRemove{id, me, std::string(emoji)});
    JsonWriter w;
    begin_ok(w, r.id);
    w.end_object();
    commit_reply(b, r, share(w.take_line()));
    JsonWriter ev;
    ev.begin_object().key("ev").value(add ? "REACTION_ADDED" : "REACTION_REMOVED");
    ev.key("message_id").value(id).key("emoji").value(emoji);
    ev.key("user").value(chat_.user(me)->name).end_object();
    b.events.push_back(
        PendingEvent{message_audience(*chat_.message(id), r.conn->id), share(ev.take_line())});
}

void Server::op_get_thread(Req& r, Args& a) {
    int64_t id = read_message_id(a);
    std::optional<int64_t> limit;
    WARREN_CHECK(a.opt_int("limit", limit));
    WARREN_CHECK(!limit || *limit >= 1);
    MessageRow* m = message_or_fetch(r, id);
    if (!m || !check_visible(r, *m)) return;
    if (query_jobs_.size() >= config_.queries_max)
        return reply_error(r, ErrorCode::unavailable, "server busy", {}, config_.retry_after_ms);
    QueryJob job;
    job.conn = r.conn->id;
    job.slot = r.slot;
    job.request_id = r.id;
    job.kind = StoredQuery::Kind::thread;
    job.root = *m;
    job.limit = static_cast<uint32_t>(
        std::min<int64_t>(limit.value_or(config_.page_default), config_.history_page_max));
    StoredQuery what;
    what.message = id;
    what.limit = job.limit + 1;  // one more tells whether more exist
    emit_query(std::move(job), std::move(what));
}

void Server::answer_thread(const QueryJob& job, std::vector<MessageRow> rows) {
    Conn* c = conn(job.conn);
    if (!c) return;
    // Replies not yet durable are only in memory, in the root's log.
    const MessageLog& log = job.root.room ? chat_.room(job.root.room)->log
                                          : chat_.conversation(conversation_of(job.root));
    for (const auto& m : log.recent)
        if (m.reply_to == job.root.id) rows.push_back(m);
    std::sort(rows.begin(), rows.end(),
              [](const MessageRow& x, const MessageRow& y) { return x.id < y.id; });
    rows.erase(std::unique(rows.begin(), rows.end(),
                           [](const MessageRow& x, const MessageRow& y) { return x.id == y.id; }),
               rows.end());
    prefer_memory(rows);
    bool has_more = rows.size() > job.limit;
    if (has_more) rows.resize(job.limit);
    MessageRow root = job.root;
    if (const MessageRow* now = chat_.message(root.id)) root = *now;
    JsonWriter w;
    begin_ok(w, job.request_id);
    w.key("root");
    write_message(w, root);
    w.key("replies").begin_array();
    for (const auto& m : rows) write_message(w, m);
    w.end_array().key("has_more").value(has_more).end_object();
    reply(Req{c, job.slot, job.request_id}, share(w.take_line()));
}

void Server::op_search(Req& r, Args& a) {
    std::string_view text;
    std::optional<std::string_view> room_name;
    std::optional<int64_t> limit;
    WARREN_CHECK(a.req_string("query", text) && a.opt_string("room", room_name) &&
                 a.opt_int("limit", limit));
    WARREN_CHECK(text.size() <= config_.search_query_max_bytes && is_valid_utf8(text));
    std::string match = fts_match(text);
    WARREN_CHECK(!match.empty());
    if (room_name) WARREN_CHECK(!check_room_name(*room_name, config_));
    WARREN_CHECK(!limit || *limit >= 1);
    UserId me = *r.conn->user;
    SearchQuery q;
    q.match = std::move(match);
    q.limit = static_cast<uint32_t>(
        std::min<int64_t>(limit.value_or(config_.page_default), config_.search_page_max));
    if (room_name) {
        Room* room = room_or_reply(r, *room_name);
        if (!room) return;
        if (!room->members.contains(me))
            return reply_error(r, ErrorCode::forbidden, "not a member of '" + room->name + "'");
        q.rooms = {room->id};
    } else {
        const User* u = chat_.user(me);
        q.rooms.assign(u->rooms.begin(), u->rooms.end());
        q.dm_user = me;
    }
    if (query_jobs_.size() >= config_.queries_max)
        return reply_error(r, ErrorCode::unavailable, "server busy", {}, config_.retry_after_ms);
    QueryJob job;
    job.conn = r.conn->id;
    job.slot = r.slot;
    job.request_id = r.id;
    job.kind = StoredQuery::Kind::search;
    job.limit = q.limit;
    StoredQuery what;
    what.search = std::move(q);
    emit_query(std::move(job), std::move(what));
}

void Server::answer_search(const QueryJob& job, std::vector<MessageRow> rows) {
    Conn* c = conn(job.conn);
    if (!c) return;
    prefer_memory(rows);
    JsonWriter w;
    begin_ok(w, job.request_id);
    w.key("results").begin_array();
    for (const auto& m : rows)
        if (!m.deleted) write_message(w, m);
    w.end_array().end_object();
    reply(Req{c, job.slot, job.request_id}, share(w.take_line()));
}

}  // namespace warren
