// The facade's plumbing: connections, framing, reply ordering, batches and completions.
// Op handlers live in chat/ops.cc.
#include "core/server.h"

#include <algorithm>

#include "core/protocol/json_writer.h"
#include "core/security/address.h"
#include "core/validate/requests.h"
#include "core/validate/rules.h"

namespace warren {

namespace {

std::shared_ptr<const std::string> share(std::string s) {
    return std::make_shared<const std::string>(std::move(s));
}

std::shared_ptr<const std::string> disconnect_line(std::string_view reason,
                                                   std::optional<int64_t> retry_after_ms = {}) {
    JsonWriter w;
    w.begin_object().key("ev").value("DISCONNECT").key("reason").value(reason);
    if (retry_after_ms) w.key("retry_after_ms").value(*retry_after_ms);
    w.end_object();
    return share(w.take_line());
}

// The error code of a reply line the core wrote, if it is an error. Replies begin
// {"re":ID,"ok":..., so the marker is near the start.
std::optional<ErrorCode> reply_error_code(std::string_view line) {
    static constexpr std::string_view marker = "\"ok\":false,\"error\":{\"code\":\"";
    size_t at = line.substr(0, 48).find(marker);
    if (at == std::string_view::npos) return std::nullopt;
    std::string_view rest = line.substr(at + marker.size());
    return error_code_from_name(rest.substr(0, rest.find('"')));
}

}  // namespace

Server::Server(Config config, Entropy& entropy, const Snapshot& snapshot)
    : config_(config),
      entropy_(entropy),
      guard_(config_),
      monitor_(config_),
      breaker_(config.breaker_failures_max, config.breaker_open_ms),
      chat_(config.room_cache_messages_max, config.conversation_cache_messages_max,
            config.conversations_cached_max, config.old_messages_cached_max),
      batches_(config.batch_mutations_max, config.batches_queued_max) {
    chat_.load(snapshot);
    guard_.load(snapshot);
    next_audit_id_ = snapshot.max_audit_id + 1;
    JsonWriter w;
    w.begin_object().key("ev").value("HELLO").key("server").value("warren");
    w.key("version").value(WARREN_VERSION).key("protocol").value(int64_t{1});
    w.key("limits").begin_object();
    w.key("max_frame_bytes").value(static_cast<int64_t>(config_.max_frame_bytes));
    w.key("max_text_bytes").value(static_cast<int64_t>(config_.text_max_bytes));
    w.end_object().end_object();
    hello_ = share(w.take_line());
}

Server::~Server() = default;

// ---- inputs ---------------------------------------------------------------------------------

void Server::begin_input(Time now) {
    // Time never goes back for the core, whatever the driver's clock does.
    now_.mono_ms = std::max(now_.mono_ms, now.mono_ms);
    now_.wall_ms = std::max(now_.wall_ms, now.wall_ms);
    if (!clock_started_) {
        // Periodic work is scheduled from the first input, not from time zero.
        clock_started_ = true;
        next_sweep_ms_ = now_.mono_ms + config_.sweep_interval_ms;
        next_eval_ms_ = now_.mono_ms + config_.alert_eval_ms;
        next_housekeeping_ms_ = now_.mono_ms + 60'000;
    }
}

void Server::end_input() {
    carry_out_decisions();
    flush_security_backlog();
    maybe_send_batch();
    for (ConnId id : closed_) {
        auto it = conns_.find(id);
        if (it != conns_.end()) {
            forget_conn(it->second);
            conns_.erase(it);
        }
    }
    closed_.clear();
    finish_shutdown_if_idle();
}

void Server::connect(ConnId id, std::string_view peer_ip, Time now) {
    begin_input(now);
    WARREN_CHECK(!conns_.contains(id));
    if (shutting_down_) {
        outputs_.push_back(Send{id, disconnect_line("SHUTDOWN")});
        outputs_.push_back(Close{id, "SHUTDOWN"});
        return end_input();
    }
    std::string key = address_key(peer_ip);
    std::optional<Guard::ConnRefusal> refusal;
    if (conns_.size() >= config_.connections_max)
        refusal = Guard::ConnRefusal{"TOO_MANY_CONNECTIONS", config_.retry_after_ms};
    else
        refusal = guard_.admit_connection(key, now_);
    if (refusal) {
        // No state is kept for a refused connection: one line, then the close.
        monitor_.connection_refused(refusal->reason);
        outputs_.push_back(Send{id, disconnect_line(refusal->reason, refusal->retry_after_ms)});
        outputs_.push_back(Close{id, refusal->reason});
        return end_input();
    }
    monitor_.connection_accepted();
    auto [it, inserted] =
        conns_.try_emplace(id, id, peer_ip, std::move(key), config_.max_frame_bytes, now_.mono_ms);
    send_bytes(it->second, hello_);
    end_input();
}

void Server::receive(ConnId id, std::string_view bytes, Time now) {
    begin_input(now);
    if (Conn* c = conn(id); c && !shutting_down_) {
        c->framer.feed(bytes);
        process_lines(*c);
    }
    end_input();
}

void Server::sent(ConnId id, size_t n_bytes, Time now) {
    begin_input(now);
    if (Conn* c = conn(id)) c->outbound_bytes -= std::min(c->outbound_bytes, n_bytes);
    end_input();
}

void Server::disconnect(ConnId id, Time now) {
    begin_input(now);
    if (Conn* c = conn(id)) {
        c->closing = true;
        closed_.push_back(id);
    }
    end_input();
}

std::optional<int64_t> Server::next_deadline() const {
    std::optional<int64_t> at;
    auto earliest = [&](int64_t t) { at = at ? std::min(*at, t) : t; };
    if (const Batch* b = batches_.front(); b && b->retry_at_ms) earliest(*b->retry_at_ms);
    // Invitations expire in wall time; convert to the driver's monotonic clock.
    if (const InvitationRow* inv = chat_.next_to_expire())
        earliest(std::max(expiry_blocked_until_ms_,
                          now_.mono_ms + std::max<int64_t>(0, inv->expires_ms - now_.wall_ms)));
    // Timeouts are checked while connections are open; alerts are evaluated while there is
    // anything to watch (so an idle server with no alerts sleeps).
    if (!conns_.empty()) earliest(next_sweep_ms_);
    // Security rows waiting for storage: try again when the breaker lets a write through.
    if (!security_backlog_.empty())
        earliest(breaker_.deadline().value_or(now_.mono_ms + config_.retry_after_ms));
    if (!conns_.empty() || !batches_.empty() || !monitor_.active().empty()) earliest(next_eval_ms_);
    return at;
}

std::optional<Output> Server::poll() {
    if (outputs_.empty()) return std::nullopt;
    Output o = std::move(outputs_.front());
    outputs_.pop_front();
    return o;
}

// ---- framing and dispatch ---------------------------------------------------------------------

Server::Conn* Server::conn(ConnId id) {
    auto it = conns_.find(id);
    if (it == conns_.end() || it->second.closing) return nullptr;
    return &it->second;
}

void Server::process_lines(Conn& c) {
    std::string_view line;
    while (!c.paused && !c.closing) {
        switch (c.framer.next(line)) {
            case LineFramer::Status::need_more:
                return;
            case LineFramer::Status::too_large: {
                uint64_t slot = open_slot(c);
                auto err = error_line(
                    std::nullopt, ErrorCode::frame_too_large,
                    "line longer than " + std::to_string(config_.max_frame_bytes) + " bytes");
                guard_.offence(c.ip_key, c.user, Guard::Offence::bad_frame, now_);
                fill_slot(c.id, slot, err, "FRAME_TOO_LARGE");
                c.closing = true;  // no further input; the slot queue closes it in order
                return;
            }
            case LineFramer::Status::line:
                handle_line(c, line);
                break;
        }
    }
    // Lines that arrive while a hash runs stay in the framer; bound what it may hold.
    if (c.paused && c.framer.buffered_bytes() > config_.max_frame_bytes * 4) {
        close_with(c, "SLOW_CONSUMER");
    }
}

void Server::handle_bad_frame(Conn& c, std::string detail) {
    while (!c.bad_frame_ms.empty() &&
           c.bad_frame_ms.front() <= now_.mono_ms - config_.bad_frames_window_ms)
        c.bad_frame_ms.pop_front();
    c.bad_frame_ms.push_back(now_.mono_ms);
    guard_.offence(c.ip_key, c.user, Guard::Offence::bad_frame, now_);
    uint64_t slot = open_slot(c);
    auto err = error_line(std::nullopt, ErrorCode::bad_frame, detail);
    if (c.bad_frame_ms.size() >= config_.bad_frames_max) {
        fill_slot(c.id, slot, err, "BAD_FRAMES");
        c.closing = true;
        return;
    }
    fill_slot(c.id, slot, err);
}

void Server::handle_line(Conn& c, std::string_view line) {
    if (c.slots.size() >= config_.conn_pending_max) return close_with(c, "SLOW_CONSUMER");
    c.active_ms = now_.mono_ms;
    DecodedRequest d = decoder_.decode(line);
    if (d.kind == DecodedRequest::Kind::bad_frame) return handle_bad_frame(c, std::move(d.detail));
    Req r{&c, open_slot(c), d.id, line};
    if (d.kind == DecodedRequest::Kind::bad_id) {
        fill_slot(c.id, r.slot, error_line(std::nullopt, ErrorCode::bad_request, d.detail, "id"));
        return;
    }
    if (d.kind == DecodedRequest::Kind::bad_op)
        return reply_error(r, ErrorCode::bad_request, d.detail, "op");
    std::optional<Op> op = op_from_name(d.op);
    if (!op) return reply_error(r, ErrorCode::unknown_op, "unknown op '" + std::string(d.op) + "'");
    r.op = *op;
    c.slots[r.slot - c.slot_base].op = static_cast<int8_t>(*op);
    Args args(d.args);
    if (!admit_request(r, args)) return;
    dispatch(r, *op, args);
}

// PROTOCOL.md's check order after the op is known: blocked, rate limits, logged in,
// arguments. Only a request that passes reaches the chat logic.
bool Server::admit_request(Req& r, Args& args) {
    Conn& c = *r.conn;
    if (auto barred = guard_.ip_barred(c.ip_key, now_)) {
        reply_error(r, ErrorCode::blocked, "this address is blocked", {}, barred->retry_after_ms);
        return false;
    }
    if (c.user)
        if (auto barred = guard_.account_barred(*c.user, now_)) {
            reply_error(r, ErrorCode::blocked, "this account is suspended", {},
                        barred->retry_after_ms);
            return false;
        }
    const OpRule& rule = op_rule(r.op);
    if (auto wait = guard_.take_tokens(c.ip_key, c.user, rule.weight, now_)) {
        reply_error(r, ErrorCode::rate_limited, "too many requests; slow down", {}, *wait);
        return false;
    }
    if (op_needs_session(r.op) && !c.user) {
        reply_error(r, ErrorCode::unauthenticated, "log in first");
        return false;
    }
    if (auto bad = validate_request(r.op, args, config_)) {
        if (bad->signature) guard_.offence(c.ip_key, c.user, Guard::Offence::signature, now_);
        reply_error(r, ErrorCode::bad_request, bad->message, bad->field);
        return false;
    }
    return true;
}

void Server::dispatch(Req& r, Op op, Args& a) {
    switch (op) {
        case Op::register_:
            return op_register(r, a);
        case Op::login:
            return op_login(r, a);
        case Op::logout:
            return op_logout(r);
        case Op::ping: {
            JsonWriter w;
            w.begin_object().key("re").value(r.id).key("ok").value(true);
            w.key("pong").value(true).end_object();
            return reply(r, share(w.take_line()));
        }
        case Op::create_room:
            return op_create_room(r, a);
        case Op::join_room:
            return op_join_room(r, a);
        case Op::leave_room:
            return op_leave_room(r, a);
        case Op::list_rooms:
            return op_list_rooms(r, a);
        case Op::send_message:
            return op_send_message(r, a);
        case Op::history:
            return op_history(r, a);
        case Op::direct_message:
            return op_direct_message(r, a);
        case Op::set_topic:
            return op_set_topic(r, a);
        case Op::mark_read:
            return op_mark_read(r, a);
        case Op::request_user_list:
            return op_request_user_list(r, a);
        case Op::invite_user:
            return op_invite_user(r, a);
        case Op::accept_invitation:
            return op_answer_invitation(r, a, true);
        case Op::decline_invitation:
            return op_answer_invitation(r, a, false);
        case Op::list_invitations:
            return op_list_invitations(r);
        case Op::edit_message:
            return op_edit_message(r, a);
        case Op::delete_message:
            return op_delete_message(r, a);
        case Op::react:
            return op_react(r, a, true);
        case Op::unreact:
            return op_react(r, a, false);
        case Op::get_thread:
            return op_get_thread(r, a);
        case Op::search:
            return op_search(r, a);
    }
}

// ---- reply ordering ---------------------------------------------------------------------------

uint64_t Server::open_slot(Conn& c) {
    c.slots.emplace_back();
    c.slots.back().received_ms = now_.mono_ms;
    return c.slot_base + c.slots.size() - 1;
}

void Server::fill_slot(ConnId id, uint64_t slot, std::shared_ptr<const std::string> bytes,
                       std::string_view close_reason) {
    auto it = conns_.find(id);
    if (it == conns_.end()) return;  // closed meanwhile: nobody to answer
    Conn& c = it->second;
    WARREN_CHECK(slot >= c.slot_base && slot < c.slot_base + c.slots.size());
    Slot& s = c.slots[slot - c.slot_base];
    WARREN_CHECK(!s.ready);
    s.ready = true;
    s.bytes = std::move(bytes);
    s.close_reason = close_reason;
    flush_slots(c);
}

void Server::flush_slots(Conn& c) {
    while (!c.slots.empty() && c.slots.front().ready) {
        Slot s = std::move(c.slots.front());
        c.slots.pop_front();
        ++c.slot_base;
        monitor_.request_done(s.op >= 0 ? std::optional<Op>(static_cast<Op>(s.op)) : std::nullopt,
                              reply_error_code(*s.bytes), now_.mono_ms - s.received_ms,
                              now_.mono_ms);
        if (!closed_.empty() && std::find(closed_.begin(), closed_.end(), c.id) != closed_.end())
            return;
        send_bytes(c, std::move(s.bytes));
        if (!s.close_reason.empty()) return close_with(c, s.close_reason);
    }
}

void Server::send_bytes(Conn& c, std::shared_ptr<const std::string> bytes) {
    c.outbound_bytes += bytes->size();
    outputs_.push_back(Send{c.id, std::move(bytes)});
    if (c.outbound_bytes > config_.outbound_bytes_max) close_with(c, "SLOW_CONSUMER");
}

void Server::close_with(Conn& c, std::string_view reason, std::optional<int64_t> retry_after_ms) {
    if (std::find(closed_.begin(), closed_.end(), c.id) != closed_.end()) return;
    c.closing = true;
    monitor_.connection_closed(reason);
    outputs_.push_back(Send{c.id, disconnect_line(reason, retry_after_ms)});
    outputs_.push_back(Close{c.id, reason});
    closed_.push_back(c.id);
}

void Server::forget_conn(Conn& c) {
    guard_.connection_closed(c.ip_key);
    unbind_user(c);
}

void Server::reply(const Req& r, std::shared_ptr<const std::string> bytes) {
    if (Batch* b = batches_.newest()) {
        b->replies.push_back(PendingReply{r.conn->id, r.slot, std::move(bytes), r.id});
        return;
    }
    fill_slot(r.conn->id, r.slot, std::move(bytes));
}

std::shared_ptr<const std::string> Server::error_line(std::optional<int64_t> re, ErrorCode code,
                                                      std::string_view message,
                                                      std::string_view field,
                                                      std::optional<int64_t> retry_after_ms) {
    JsonWriter w;
    w.begin_object().key("re");
    if (re)
        w.value(*re);
    else
        w.null();
    w.key("ok").value(false).key("error").begin_object();
    w.key("code").value(error_code_name(code)).key("message").value(message);
    if (!field.empty()) w.key("field").value(field);
    if (retry_after_ms) w.key("retry_after_ms").value(*retry_after_ms);
    w.end_object().end_object();
    return share(w.take_line());
}

void Server::reply_error(const Req& r, ErrorCode code, std::string_view message,
                         std::string_view field, std::optional<int64_t> retry_after_ms) {
    reply(r, error_line(r.id, code, message, field, retry_after_ms));
}

// ---- write path and completions ---------------------------------------------------------------

bool Server::refuse_write(const Req& r) {
    std::optional<int64_t> wait = breaker_.refuse_for(now_.mono_ms, !batches_.empty());
    if (!wait && !batches_.full()) return false;
    ++storage_stats_.writes_refused;
    reply_error(r, ErrorCode::unavailable,
                wait ? "storage unavailable; nothing was changed" : "server busy; try again", {},
                wait ? std::max<int64_t>(*wait, 1) : config_.retry_after_ms);
    return true;
}

Batch& Server::write_batch() {
    return batches_.open();
}

void Server::apply(Batch& b, Mutation m) {
    b.undo.push_back(chat_.apply(m));
    b.mutations.push_back(std::move(m));
}

void Server::commit_reply(Batch& b, const Req& r, std::shared_ptr<const std::string> bytes) {
    b.replies.push_back(PendingReply{r.conn->id, r.slot, std::move(bytes), r.id});
}

void Server::bind_user(Conn& c, UserId user, std::string token_hash) {
    c.user = user;
    c.token_hash = std::move(token_hash);
    User* u = chat_.user(user);
    u->conns.insert(c.id);
    if (u->conns.size() == 1) announce_presence(*u, true);
    if (Batch* b = batches_.newest()) {
        b->undo.push_back([this, id = c.id, user] {
            if (Conn* cc = conn(id))
                unbind_user(*cc, false);
            else if (User* u = chat_.user(user))
                u->conns.erase(id);
        });
    }
}

void Server::unbind_user(Conn& c, bool announce) {
    if (!c.user) return;
    if (User* u = chat_.user(*c.user)) {
        u->conns.erase(c.id);
        if (u->conns.empty() && announce) announce_presence(*u, false);
    }
    c.user.reset();
    c.token_hash.clear();
}

void Server::emit_event(std::vector<ConnId> to, std::shared_ptr<const std::string> bytes) {
    if (to.empty()) return;
    if (Batch* b = batches_.newest()) {
        b->events.push_back(PendingEvent{std::move(to), std::move(bytes)});
        return;
    }
    for (ConnId id : to)
        if (Conn* c = conn(id)) send_bytes(*c, bytes);
}

// PRESENCE goes to the connections of every other user sharing a room with `u`.
void Server::announce_presence(const User& u, bool online) {
    std::set<ConnId> to;
    for (RoomId rid : u.rooms)
        if (const Room* room = chat_.room(rid))
            for (UserId m : room->members)
                if (m != u.id)
                    if (const User* other = chat_.user(m))
                        to.insert(other->conns.begin(), other->conns.end());
    JsonWriter w;
    w.begin_object().key("ev").value("PRESENCE").key("user").value(u.name);
    w.key("online").value(online).end_object();
    emit_event(std::vector<ConnId>(to.begin(), to.end()), share(w.take_line()));
}

void Server::maybe_send_batch() {
    Batch* b = batches_.sendable();
    if (!b) return;
    b->in_flight = true;
    b->sent = std::make_shared<const std::vector<Mutation>>(std::move(b->mutations));
    b->mutations.clear();
    send_batch(*b);
}

void Server::send_batch(Batch& b) {
    ++b.attempts;
    b.sent_ms = now_.mono_ms;
    b.retry_at_ms.reset();
    outputs_.push_back(Commit{b.id, b.sent});
}

void Server::tick(Time now) {
    begin_input(now);
    if (Batch* b = batches_.front(); b && b->retry_at_ms && *b->retry_at_ms <= now_.mono_ms)
        send_batch(*b);
    expire_invitations();
    if (now_.mono_ms >= next_sweep_ms_) sweep();
    if (now_.mono_ms >= next_eval_ms_) {
        next_eval_ms_ = now_.mono_ms + config_.alert_eval_ms;
        for (auto& n : monitor_.evaluate(gauges(), now_.mono_ms))
            outputs_.push_back(Notice{n.level, std::move(n.text)});
    }
    end_input();
}

void Server::committed(BatchId batch, const Status& status, Time now) {
    begin_input(now);
    Batch* front = batches_.front();
    WARREN_CHECK(front && front->id == batch && front->in_flight && !front->retry_at_ms);
    monitor_.commit_done(status.is_ok(), now_.mono_ms - front->sent_ms, front->sent->size(),
                         now_.mono_ms);
    if (status.is_ok()) {
        Batch b = batches_.pop_committed(batch);
        breaker_.on_success();
        ++storage_stats_.batches_committed;
        storage_stats_.mutations_committed += b.sent->size();
        for (const auto& m : *b.sent)
            std::visit(
                [this](const auto& r) {
                    using T = std::decay_t<decltype(r)>;
                    if constexpr (std::is_same_v<T, MessageRow>) chat_.set_committed_through(r.id);
                    if constexpr (std::is_same_v<T, MessageEdit> ||
                                  std::is_same_v<T, MessageDelete>)
                        chat_.settled(r.id);
                    if constexpr (std::is_same_v<T, ReactionAdd> ||
                                  std::is_same_v<T, ReactionRemove>)
                        chat_.settled(r.message);
                },
                m);
        for (auto& rep : b.replies) fill_slot(rep.conn, rep.slot, std::move(rep.bytes));
        for (auto& [id, body] : b.admin_replies) admin_reply(id, 200, std::move(body));
        for (auto& ev : b.events)
            for (ConnId to : ev.to)
                if (Conn* c = conn(to)) send_bytes(*c, ev.bytes);
    } else if (status.code() == Status::Code::transient &&
               front->attempts < config_.commit_attempts_max) {
        // Full jitter: uniform in [0, min(cap, base * 2^(attempt-1))].
        int64_t ceiling = std::min<int64_t>(
            config_.commit_backoff_cap_ms,
            config_.commit_backoff_base_ms << std::min<uint32_t>(front->attempts - 1, 20));
        uint64_t r = 0;
        entropy_.fill({reinterpret_cast<uint8_t*>(&r), sizeof r});
        front->retry_at_ms =
            now_.mono_ms + static_cast<int64_t>(r % static_cast<uint64_t>(ceiling + 1));
        ++storage_stats_.commit_retries;
    } else {
        batch_failed(batch);
    }
    end_input();
}

// The failed batch and every later one are undone newest first; their requests changed
// nothing, and their replies become UNAVAILABLE.
void Server::batch_failed(BatchId batch) {
    breaker_.on_failure(now_.mono_ms);
    std::deque<Batch> all = batches_.take_all();
    WARREN_CHECK(!all.empty() && all.front().id == batch);
    storage_stats_.batches_failed += all.size();
    for (auto it = all.rbegin(); it != all.rend(); ++it) {
        for (auto u = it->undo.rbegin(); u != it->undo.rend(); ++u) (*u)();
        // Newest batch first, each put in front: the backlog keeps the original order.
        security_backlog_.insert(security_backlog_.begin(), it->security_rows.begin(),
                                 it->security_rows.end());
    }
    int64_t retry_after = std::max<int64_t>(config_.retry_after_ms,
                                            breaker_.refuse_for(now_.mono_ms, false).value_or(0));
    for (auto& b : all) {
        for (auto& rep : b.replies)
            fill_slot(rep.conn, rep.slot,
                      error_line(rep.request_id, ErrorCode::unavailable,
                                 "storage unavailable; nothing was changed", {}, retry_after));
        for (auto& [id, body] : b.admin_replies)
            admin_error(id, 503, "storage unavailable; nothing was changed");
    }
}

// ---- shutdown ---------------------------------------------------------------------------------

void Server::shutdown(Time now) {
    begin_input(now);
    shutting_down_ = true;
    // Requests waiting for a hash will not be finished: answer them now.
    for (auto& [job, h] : hash_jobs_) {
        fill_slot(h.conn, h.slot,
                  error_line(h.request_id, ErrorCode::unavailable, "server shutting down", {},
                             config_.retry_after_ms));
        names_reserved_.erase(h.username);
        if (h.op == Op::login) guard_.login_finished(name_key(h.username));
    }
    hash_jobs_.clear();
    end_input();
}

void Server::finish_shutdown_if_idle() {
    if (!shutting_down_ || stopped_ || !batches_.empty() || !query_jobs_.empty()) return;
    for (auto& [id, c] : conns_)
        if (!c.closing) close_with(c, "SHUTDOWN");
    for (ConnId id : closed_) conns_.erase(id);
    closed_.clear();
    stopped_ = true;
}

}  // namespace warren
