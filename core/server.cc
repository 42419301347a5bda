// The facade: inputs in, parts called in PROTOCOL.md's order, their results routed, outputs
// out. Nothing here decides chat, security or storage matters; each part owns its own.
#include "core/server.h"

#include <algorithm>

#include "core/protocol/request.h"
#include "core/security/address.h"
#include "core/security/admission.h"
#include "core/validate/requests.h"

namespace warren {

Server::Server(Config config, Entropy& entropy, const Snapshot& snapshot)
    : config_(std::move(config)),
      entropy_(entropy),
      monitor_(config_),
      guard_(config_),
      chat_(config_, guard_, entropy_, snapshot),
      conns_(config_, monitor_, outputs_, chat_.state()),
      txn_(config_, entropy_, monitor_, outputs_),
      enforcement_(config_, guard_, txn_, conns_, chat_, outputs_, snapshot.max_audit_id),
      admin_(config_, guard_, chat_, txn_, enforcement_, monitor_, outputs_),
      retention_(config_, chat_.state()),
      decoder_(std::make_unique<RequestDecoder>()) {
    guard_.load(snapshot);
    // Stamps never go back, also across a restart with the host's clock set back: the core's
    // wall clock starts at the newest stored message's (server-time, history by time).
    now_.wall_ms = snapshot.newest_message_ms;
    for (const std::string& name : chat_.unbound_admin_names())
        outputs_.push_back(Notice{AlertLevel::warning,
                                  "[auth] admins names '" + name +
                                      "', which no account holds: the name is reserved and has "
                                      "no rights; register it (with the name left out of the "
                                      "list), then add it back and restart"});
}

Server::~Server() = default;

// ---- input plumbing ---------------------------------------------------------------------------

// Inlined into every input: one call per input costs a few percent of the facade's
// instructions (most inputs are sent reports).
[[gnu::always_inline]] inline void Server::begin_input(Time now) {
    // Time never goes back for the core, whatever the driver's clock does.
    now_.mono_us = std::max(now_.mono_us, now.mono_us);
    now_.wall_ms = std::max(now_.wall_ms, now.wall_ms);
    conns_.set_now(now_);
    if (!clock_started_) {
        // Periodic work is scheduled from the first input, not from time zero.
        clock_started_ = true;
        next_sweep_us_ = now_.mono_us + us_from_ms(config_.sweep_interval_ms);
        next_eval_us_ = now_.mono_us + us_from_ms(config_.alert_eval_ms);
        next_housekeeping_us_ = now_.mono_us + us_from_ms(60'000);
    }
}

void Server::end_input() {
    enforcement_.carry_out_decisions(now_);
    // Reading a released connection's waiting lines, and forgetting closed ones, may release
    // others (a closed reader holds nobody), and forgetting one may write (a guest leaves its
    // rooms), whose events may close a slow reader: until none of these is left.
    do {
        read_released();
        forget_closed();
        txn_.flush_backlog(now_);
        txn_.send_ready(now_);
    } while (conns_.any_released() || conns_.any_closed());
    finish_shutdown_if_idle();
    // Rare: most inputs close nothing, and they are most of the inputs (sent reports).
    if (conns_.any_closing()) [[unlikely]]
        conns_.finish_closing(txn_.first_event_stamp());
}

void Server::read_released() {
    for (std::vector<ConnId> ids = conns_.take_released(); !ids.empty();
         ids = conns_.take_released())
        for (ConnId id : ids)
            if (Connections::Conn* c = conns_.live(id); c && !shutting_down_) read_lines(*c);
}

bool Server::wants_input(ConnId id) const {
    auto it = conns_.all().find(id);
    return it == conns_.all().end() ||
           (it->second.held_by == 0 && it->second.fakelag_until_us == 0);
}

// IRC connections whose wait for tokens is over read on.
void Server::end_fakelags() {
    while (!fakelagged_.empty() && fakelagged_.begin()->first <= now_.mono_us) {
        ConnId id = fakelagged_.begin()->second;
        fakelagged_.erase(fakelagged_.begin());
        Connections::Conn* c = conns_.live(id);
        if (!c) continue;
        c->fakelag_until_us = 0;
        if (!shutting_down_) read_lines(*c);
    }
}

// Forgetting a connection may announce its user offline, which may close a slow reader: keep
// going until no closed connection is left. No container is iterated while it changes.
void Server::forget_closed() {
    for (std::vector<ConnId> ids = conns_.take_closed(); !ids.empty(); ids = conns_.take_closed()) {
        for (ConnId id : ids) {
            auto it = conns_.all().find(id);
            if (it == conns_.all().end()) continue;
            guard_.connection_closed(it->second.ip_key);
            // An IRC login's session ends with its connection (while writes are allowed; a
            // session left behind expires with its age).
            bool ends_session = it->second.irc != nullptr;
            bool can_write = !shutting_down_ && txn_.writable(now_);
            std::string quit = it->second.irc ? it->second.irc->quit_reason() : std::string();
            conns_.forget(id);
            Outcome out = chat_.connection_closed(id, ends_session, can_write, quit);
            hold_changes(out);
            for (auto& a : out.events) emit(std::move(a));
        }
    }
}

// ---- inputs -----------------------------------------------------------------------------------

void Server::connect(ConnId id, std::string_view peer_ip, Time now, Wire wire,
                     Transport transport) {
    begin_input(now);
    WARREN_CHECK(!conns_.all().contains(id));
    if (shutting_down_) {
        conns_.refuse(id, DisconnectReason::shutdown, std::nullopt, wire);
        return end_input();
    }
    std::string key = address_key(peer_ip);
    std::optional<Guard::ConnRefusal> refusal;
    if (conns_.size() >= config_.connections_max)
        refusal =
            Guard::ConnRefusal{DisconnectReason::too_many_connections, config_.retry_after_ms};
    else
        refusal = guard_.admit_connection(key, now_);
    if (refusal) {
        monitor_.connection_refused(disconnect_reason_name(refusal->reason));
        conns_.refuse(id, refusal->reason, refusal->retry_after_ms, wire);
        return end_input();
    }
    monitor_.connection_accepted();
    conns_.open(id, peer_ip, key, now_, wire, transport);
    chat_.connection_opened(id);
    end_input();
}

void Server::peer_certificate(ConnId id, std::string_view sha256_hex, Time now) {
    begin_input(now);
    if (Connections::Conn* c = conns_.live(id); c && c->irc)
        c->irc->set_certificate(std::string(sha256_hex));
    end_input();
}

void Server::receive(ConnId id, std::string_view bytes, Time now) {
    begin_input(now);
    if (Connections::Conn* c = conns_.live(id); c && !shutting_down_) {
        c->framer.feed(bytes);
        read_lines(*c);
    }
    end_input();
}

void Server::sent(ConnId id, size_t n_bytes, Time now) {
    begin_input(now);
    conns_.sent(id, n_bytes);
    end_input();
}

void Server::disconnect(ConnId id, Time now) {
    begin_input(now);
    conns_.dropped(id);
    end_input();
}

void Server::tick(Time now) {
    begin_input(now);
    txn_.tick(now_);
    end_fakelags();
    expire_invitations();
    prune_expired();
    if (now_.mono_us >= next_sweep_us_) housekeeping();
    if (now_.mono_us >= next_eval_us_) {
        next_eval_us_ = now_.mono_us + us_from_ms(config_.alert_eval_ms);
        for (auto& n : monitor_.evaluate(gauges(), now_.mono_us))
            outputs_.push_back(Notice{n.level, std::move(n.text)});
    }
    end_input();
}

void Server::committed(BatchId batch, const Status& status, Time now) {
    begin_input(now);
    Transactions::Settled s = txn_.committed(batch, status, now_);
    if (s.durable) {
        release(*s.durable);
        txn_.recycle(std::move(*s.durable));
    } else if (!s.rolled_back.empty())
        roll_back(s);
    end_input();
}

void Server::answered(QueryId query, QueryRows rows, Time now) {
    begin_input(now);
    // Rows a Prune has not reached yet are past their age all the same.
    retention_.drop_expired(rows.rows, now_.wall_ms);
    if (auto a = audit_reads_.find(query); a != audit_reads_.end()) {
        auto [admin, limit] = a->second;
        audit_reads_.erase(a);
        admin_.answer_audit(admin, limit, rows);
    } else if (auto it = query_jobs_.find(query); it != query_jobs_.end()) {
        Job job = std::move(it->second);
        query_jobs_.erase(it);
        if (auto q = queries_of_.find(job.user); q != queries_of_.end() && --q->second == 0)
            queries_of_.erase(q);
        resume(std::move(job), std::move(rows));
    }
    end_input();
}

void Server::hashed(JobId job_id, HashResult result, Time now) {
    begin_input(now);
    if (auto it = hash_jobs_.find(job_id); it != hash_jobs_.end()) {
        Job job = std::move(it->second);
        hash_jobs_.erase(it);
        resume(std::move(job), std::move(result));
    }
    end_input();
}

AdminId Server::admin(const AdminRequest& request, Time now) {
    begin_input(now);
    AdminId id = next_admin_++;
    Admin::View view{[this] { return gauges(); }, shutting_down_,
                     query_jobs_.size() + audit_reads_.size() >= config_.queries_max};
    if (std::optional<StoredQuery> read = admin_.handle(id, request, now_, view)) {
        QueryId q = next_query_++;
        audit_reads_[q] = {id, read->limit};
        outputs_.push_back(Query{q, std::move(*read)});
    }
    end_input();
    return id;
}

void Server::pruned(uint64_t id, const PruneResult& result, Time now) {
    begin_input(now);
    retention_.pruned(id, result, now_);
    prune_expired();
    end_input();
}

void Server::prune_expired() {
    if (shutting_down_ || !txn_.writable(now_)) return;
    if (std::optional<Prune> p = retention_.next(now_)) outputs_.push_back(std::move(*p));
}

void Server::backed_up(AdminId id, const BackupResult& result, Time now) {
    begin_input(now);
    admin_.backed_up(id, result, now_);
    end_input();
}

void Server::process_stats(const ProcessStats& stats, Time now) {
    begin_input(now);
    process_ = stats;
    end_input();
}

std::optional<Output> Server::poll() {
    if (outputs_.empty()) return std::nullopt;
    Output o = std::move(outputs_.front());
    outputs_.pop_front();
    return o;
}

std::optional<int64_t> Server::next_deadline() const {
    std::optional<int64_t> at = txn_.deadline(now_);
    auto earliest = [&](int64_t t) { at = at ? std::min(*at, t) : t; };
    if (!fakelagged_.empty()) earliest(fakelagged_.begin()->first);
    // Invitations expire in wall time; convert to the driver's monotonic clock.
    if (std::optional<int64_t> expires = chat_.next_expiry_wall_ms())
        earliest(
            std::max(expiry_blocked_until_us_,
                     now_.mono_us + us_from_ms(std::max<int64_t>(0, *expires - now_.wall_ms))));
    // Timeouts are checked while connections are open; alerts are evaluated while there is
    // anything to watch (so an idle server with no alerts sleeps).
    if (conns_.size() > 0) earliest(next_sweep_us_);
    if (std::optional<int64_t> prune = retention_.deadline()) earliest(*prune);
    if (conns_.size() > 0 || !txn_.idle() || !monitor_.active().empty()) earliest(next_eval_us_);
    return at;
}

// ---- requests ---------------------------------------------------------------------------------

void Server::read_lines(Connections::Conn& c) {
    std::string_view line;
    while (!c.paused && c.held_by == 0 && c.fakelag_until_us == 0 &&
           c.state == Connections::State::open) {
        if (c.irc && c.irc->has_step()) {
            run_irc_step(c);
            continue;
        }
        // Lines after NICK/USER wait for the registration they complete (Connections reads
        // on once its answer is out).
        if (c.irc && c.irc->registering()) break;
        switch (c.framer.next(line)) {
            case LineFramer::Status::need_more:
                return;
            case LineFramer::Status::too_large: {
                if (c.irc) {  // 417, and the connection goes on after the line
                    c.irc->too_long();
                    break;
                }
                uint64_t slot = conns_.open_slot(c, now_);
                guard_.offence(c.ip_key, chat_.user_of(c.id), Guard::Offence::bad_frame, now_);
                conns_.drain(c);  // no further input
                Error err{ErrorCode::frame_too_large,
                          "line longer than " + std::to_string(config_.max_frame_bytes) + " bytes",
                          {},
                          {}};
                return conns_.answer(c.id, slot, std::nullopt, err, now_,
                                     DisconnectReason::frame_too_large);
            }
            case LineFramer::Status::line:
                if (c.irc)
                    handle_irc_line(c, line);
                else
                    handle_line(c, line);
                break;
        }
    }
    // Lines that arrive while an effect runs, or while readers hold the connection back,
    // stay in the framer; bound what it may hold (a driver stops reading a held connection:
    // wants_input).
    if (c.fakelag_until_us != 0 && c.framer.buffered_bytes() > config_.irc_flood_bytes_max) {
        // A flood past what a paste may be: the address pays for it as for a refused line.
        guard_.offence(c.ip_key, chat_.user_of(c.id), Guard::Offence::flood, now_);
        return conns_.close(c, DisconnectReason::excess_flood);
    }
    bool waiting = c.paused || c.held_by > 0 || (c.irc && c.irc->registering());
    if (waiting && c.framer.buffered_bytes() > config_.max_frame_bytes * 4)
        conns_.close(c, DisconnectReason::slow_consumer);
}

// Frame, id and op, in PROTOCOL.md's order; then the request itself.
void Server::handle_line(Connections::Conn& c, std::string_view line) {
    if (c.slots.size() >= config_.conn_pending_max)
        return conns_.close(c, DisconnectReason::slow_consumer);
    c.active_us = now_.mono_us;
    DecodedRequest d = decoder_->decode(line);
    if (d.kind == DecodedRequest::Kind::bad_frame) {
        guard_.offence(c.ip_key, chat_.user_of(c.id), Guard::Offence::bad_frame, now_);
        return conns_.bad_frame(c, std::move(d.detail), now_);
    }
    uint64_t slot = conns_.open_slot(c, now_);
    if (d.kind == DecodedRequest::Kind::bad_id)
        return conns_.answer(c.id, slot, std::nullopt,
                             Error{ErrorCode::bad_request, std::move(d.detail), "id", {}}, now_);
    Route route{c.id, slot, d.id};
    if (d.kind == DecodedRequest::Kind::bad_op)
        return reply(route, Error{ErrorCode::bad_request, std::move(d.detail), "op", {}});
    std::optional<Op> op = op_from_name(d.op);
    if (!op)
        return reply(
            route, Error{ErrorCode::unknown_op, "unknown op '" + std::string(d.op) + "'", {}, {}});
    conns_.set_op(c, slot, *op);
    Args args(d.args);
    std::optional<UserId> user = chat_.user_of(c.id);
    if (std::optional<Error> refused = admit_request(guard_, c.ip_key, user, *op, now_))
        return reply(route, std::move(*refused));
    run_checked(c, route, user, decode_request(*op, args, config_));
}

// An IRC line becomes Steps in its session; they run in order, each in its own slot, until
// one has to wait (a password hash, a read from storage).
void Server::handle_irc_line(Connections::Conn& c, std::string_view line) {
    c.active_us = now_.mono_us;
    c.pinged = false;
    c.irc->on_line(line, chat_.state(), chat_.user_of(c.id));
}

void Server::run_irc_step(Connections::Conn& c) {
    if (c.slots.size() >= config_.conn_pending_max)
        return conns_.close(c, DisconnectReason::slow_consumer);
    // Flood control as IRC clients expect it: a line past the rate limit waits for its
    // tokens, and nothing more is read meanwhile; it is neither refused nor dropped.
    {
        const irc::Step& next = c.irc->peek_step();
        Op op = next.request ? op_of(*next.request) : Op::ping;
        if (std::optional<int64_t> wait =
                guard_.tokens_wait(c.ip_key, chat_.user_of(c.id), op_info(op).weight, now_)) {
            c.fakelag_until_us = now_.mono_us + us_from_ms(*wait);
            fakelagged_.emplace(c.fakelag_until_us, c.id);
            return;
        }
    }
    irc::Step step = c.irc->next_step();
    uint64_t slot = conns_.open_slot(c, now_);
    c.irc->bind_slot(slot, step);
    std::optional<UserId> user = chat_.user_of(c.id);
    if (!step.request) {
        // A line the session answers itself still spends a token: flooding CAP or PING is
        // flooding all the same.
        if (std::optional<Error> refused = admit_request(guard_, c.ip_key, user, Op::ping, now_))
            step.lines =
                ":" + config_.irc_server_name.str() + " NOTICE * :" + refused->message + "\r\n";
        if (step.hang_up) conns_.drain(c);  // QUIT: nothing after it is read
        return conns_.answer_lines(c, slot, std::move(step.lines), step.hang_up, now_);
    }
    Op op = op_of(*step.request);
    conns_.set_op(c, slot, op);
    c.irc->expect(slot, std::move(step.then));
    Route route{c.id, slot, 0};
    if (std::optional<Error> refused = admit_request(guard_, c.ip_key, user, op, now_))
        return reply(route, std::move(*refused));
    run_checked(c, route, user, validate(std::move(*step.request), config_));
}

// Validation's verdict, then the chat machine.
void Server::run_checked(Connections::Conn& c, const Route& route, std::optional<UserId> user,
                         std::variant<Validated, Rejection> checked) {
    if (auto* bad = std::get_if<Rejection>(&checked)) {
        if (bad->signature) guard_.offence(c.ip_key, user, Guard::Offence::signature, now_);
        return reply(
            route,
            Error{ErrorCode::bad_request, std::move(bad->message), std::move(bad->field), {}});
    }
    Caller caller{c.id, user, c.ip_key, now_};
    Validated& v = std::get<Validated>(checked);
    Outcome& out = chat_.execute(caller, v, gate(op_info(v.op()).writes, user));
    route_outcome(route, c.ip_key, user, out);
    c.logged_in = chat_.user_of(c.id).has_value();
}

Gate Server::gate(bool writes, std::optional<UserId> user) const {
    Gate g;
    if (writes) g.write_refusal = txn_.write_refusal(now_);
    g.hashes_full = hash_jobs_.size() >= config_.hash_jobs_max;
    g.queries_full = query_jobs_.size() + audit_reads_.size() >= config_.queries_max;
    if (user)
        if (auto it = queries_of_.find(*user); it != queries_of_.end())
            g.queries_full = g.queries_full || it->second >= config_.queries_per_user_max;
    return g;
}

// ---- routing what the chat machine returned
// ------------------------------------------------------

// Moves out what it keeps, leaving `out` empty with its capacity (it is the chat machine's).
void Server::route_outcome(const Route& route, const std::string& ip_key,
                           std::optional<UserId> user, Outcome& out) {
    for (const Signal& s : out.signals) observe(guard_, s, ip_key, user, now_);
    if (out.write_refused) txn_.count_refused();
    hold_changes(out);
    if (out.logged_out)
        if (Connections::Conn* c = conns_.live(route.conn)) c->opened_us = now_.mono_us;
    close_revoked(out.revoked);
    if (out.reply) reply(route, std::move(*out.reply));
    for (auto& a : out.events) {
        a.cause = route.conn;
        emit(std::move(a));
    }
    if (out.effect) start_effect(route, ip_key, std::move(*out.effect));
}

// Connections whose session ended are closed at once: closing changes nothing durable, and a
// client whose session survived a failed commit can simply log in again.
void Server::close_revoked(std::vector<ConnId>& ids) {
    for (ConnId id : ids)
        if (Connections::Conn* c = conns_.live(id))
            conns_.close(*c, DisconnectReason::session_revoked);
    ids.clear();
}

// Mutations go into the open batch with their undo. Undo without mutations (a token login's
// session binding) rides with the newest batch, whose failure must revert it too.
void Server::hold_changes(Outcome& out) {
    Batch* b = nullptr;
    if (!out.mutations.empty())
        b = &txn_.open(now_);
    else if (!out.undo.empty())
        b = txn_.newest();
    if (!b) return;
    std::move(out.mutations.begin(), out.mutations.end(), std::back_inserter(b->mutations));
    std::move(out.undo.begin(), out.undo.end(), std::back_inserter(b->undo));
    out.mutations.clear();
    out.undo.clear();
}

// A reply waits behind the newest batch (the read barrier), or goes out now.
void Server::reply(const Route& route, ReplyBody body) {
    if (Batch* b = txn_.newest()) {
        b->replies.push_back(
            PendingReply{route.conn, route.slot, route.request_id, std::move(body)});
        return;
    }
    conns_.answer(route.conn, route.slot, route.request_id, body, now_);
}

// Roughly what one receiver's copy of an event costs on the wire (JSON, the larger
// encoding), for the outbound budget before it is encoded.
static size_t event_bytes_estimate(const Event& e) {
    constexpr size_t envelope = 256;
    if (auto* m = std::get_if<event::MessagePosted>(&e))
        return envelope + m->message->view.text.size();
    if (auto* m = std::get_if<event::MessageEdited>(&e))
        return envelope + m->message->view.text.size();
    return envelope;
}

// An event waits with the newest batch (never ahead of state that is not yet durable).
void Server::emit(Addressed a) {
    if (a.to.empty()) return;
    a.stamp = conns_.stamp();
    if (Batch* b = txn_.newest()) {
        size_t owed = a.to.size() * event_bytes_estimate(a.event);
        b->owed_bytes += owed;
        conns_.owe(owed, a.cause);
        b->events.push_back(std::move(a));
        return;
    }
    conns_.deliver(a.to, a.event, a.cause, a.stamp);
}

void Server::start_effect(const Route& route, const std::string& ip_key, Effect effect) {
    if (effect.pause)
        if (Connections::Conn* c = conns_.live(route.conn)) c->paused = true;
    Job job{route, ip_key, std::move(effect.then), effect.pause};
    if (auto* h = std::get_if<HashSpec>(&effect.what)) {
        JobId id = next_job_++;
        outputs_.push_back(Hash{id, h->mode, std::move(h->password), std::move(h->phc)});
        hash_jobs_.emplace(id, std::move(job));
        return;
    }
    QueryId id = next_query_++;
    outputs_.push_back(Query{id, std::move(std::get<StoredQuery>(effect.what))});
    if (std::optional<UserId> user = chat_.user_of(route.conn)) {
        job.user = *user;
        ++queries_of_[*user];
    }
    query_jobs_.emplace(id, std::move(job));
}

void Server::resume(Job job, EffectResult result) {
    Connections::Conn* c = conns_.live(job.route.conn);
    if (c && job.paused) c->paused = false;
    std::optional<UserId> user = chat_.user_of(job.route.conn);
    Caller caller{job.route.conn, user, job.ip_key, now_, c != nullptr};
    Outcome& out = chat_.resume(caller, std::move(job.then), std::move(result), gate(true, user));
    route_outcome(job.route, job.ip_key, user, out);
    // The connection is being closed: its request was not carried out, and says so before
    // the closing line.
    if (!c && conns_.owes_replies(job.route.conn))
        conns_.answer(job.route.conn, job.route.slot, job.route.request_id,
                      Error{ErrorCode::unavailable,
                            "not carried out: the connection is closing",
                            {},
                            config_.retry_after_ms},
                      now_);
    if (c) c->logged_in = chat_.user_of(c->id).has_value();
    if (c && job.paused && !c->paused) read_lines(*c);
}

// ---- completions ------------------------------------------------------------------------------

void Server::release(Batch& b) {
    chat_.committed(*b.sent);
    for (auto& rep : b.replies) conns_.answer(rep.conn, rep.slot, rep.request_id, rep.body, now_);
    admin_.committed(b.admin_replies);
    for (auto& ev : b.events) conns_.deliver(ev.to, ev.event, ev.cause, ev.stamp);
    conns_.settle(b.owed_bytes);  // after: what was owed is now queued for writing
}

// Every undone request changed nothing; its reply becomes UNAVAILABLE.
void Server::roll_back(Transactions::Settled& s) {
    for (auto& b : s.rolled_back) {
        conns_.settle(b.owed_bytes);
        for (auto& rep : b.replies)
            conns_.answer(rep.conn, rep.slot, rep.request_id, s.unavailable, now_);
        admin_.failed(b.admin_replies);
    }
}

// ---- periodic work ----------------------------------------------------------------------------

// Expired invitations are closed durably on tick. While writes are refused they wait for a
// later tick; they are already invisible to every op.
void Server::expire_invitations() {
    std::optional<int64_t> expires = chat_.next_expiry_wall_ms();
    if (!expires || *expires > now_.wall_ms) return;
    if (!txn_.writable(now_)) {
        expiry_blocked_until_us_ = now_.mono_us + us_from_ms(config_.retry_after_ms);
        return;
    }
    Outcome out = chat_.expire_invitations(now_);
    hold_changes(out);
}

// Timeouts every sweep_interval_ms; Guard pruning and expired sessions every minute; audit
// pruning every hour.
void Server::housekeeping() {
    next_sweep_us_ = now_.mono_us + us_from_ms(config_.sweep_interval_ms);
    conns_.close_idle(now_, [this](ConnId id) { return chat_.user_of(id).has_value(); });
    conns_.close_stalled(now_);
    conns_.ping_quiet_irc(now_);
    if (now_.mono_us >= next_housekeeping_us_) {
        next_housekeeping_us_ = now_.mono_us + us_from_ms(60'000);
        guard_.sweep(now_);
        std::vector<ConnId> expired = chat_.drop_expired_sessions(now_.wall_ms);
        close_revoked(expired);
    }
    if (now_.mono_us >= next_prune_us_) {
        next_prune_us_ = now_.mono_us + us_from_ms(3'600'000);
        enforcement_.prune_audit(now_);
        txn_.persist(SessionPrune{now_.wall_ms}, now_);
    }
}

// ---- shutdown ---------------------------------------------------------------------------------

void Server::shutdown(Time now) {
    begin_input(now);
    shutting_down_ = true;
    // Requests waiting for a hash will not be finished: answer them now.
    for (auto& [id, job] : hash_jobs_) {
        conns_.answer(
            job.route.conn, job.route.slot, job.route.request_id,
            Error{ErrorCode::unavailable, "server shutting down", {}, config_.retry_after_ms},
            now_);
        Outcome out = chat_.abandon(job.then);
        for (const Signal& s : out.signals) observe(guard_, s, job.ip_key, std::nullopt, now_);
    }
    hash_jobs_.clear();
    end_input();
}

void Server::finish_shutdown_if_idle() {
    if (!shutting_down_ || stopped_ || !txn_.idle() || !query_jobs_.empty() ||
        !audit_reads_.empty())
        return;
    conns_.close_all(DisconnectReason::shutdown);
    forget_closed();
    stopped_ = true;
}

Gauges Server::gauges() const {
    Gauges g;
    const ChatState& s = chat_.state();
    g.wall_ms = now_.wall_ms;
    g.connections_open = conns_.size();
    g.connections_max = config_.connections_max;
    g.sessions = s.session_count();
    g.users = s.users().size();
    g.online_users = static_cast<uint64_t>(std::count_if(
        s.users().begin(), s.users().end(), [](auto& kv) { return !kv.second.conns.empty(); }));
    g.rooms = s.room_count();
    g.messages_stored = s.committed_through();
    g.batches_queued = txn_.queued();
    g.hash_jobs = hash_jobs_.size();
    g.queries = query_jobs_.size() + audit_reads_.size();
    const Transactions::Stats& st = txn_.stats();
    g.breaker = breaker_state_name(txn_.breaker().state(now_.mono_us));
    g.storage_corrupt = txn_.corrupt();
    g.breaker_opened = txn_.breaker().opened_count();
    g.batches_committed = st.batches_committed;
    g.batches_failed = st.batches_failed;
    g.retention_deleted = retention_.deleted_total();
    g.retention_failures = retention_.failures();
    g.commit_retries = st.commit_retries;
    g.writes_refused = st.writes_refused;
    g.active_blocks = guard_.active_blocks(now_).size();
    g.active_suspensions = guard_.active_suspensions(now_).size();
    const Guard::Counters& k = guard_.counters();
    g.login_failures = k.login_failures;
    g.rate_limited = k.rate_limited;
    g.bad_frames = k.bad_frames;
    g.signatures = k.signatures;
    g.blocks_total = k.blocks;
    g.suspensions_total = k.suspensions;
    g.name_locks = k.name_locks;
    g.audit_unpersisted = txn_.security_rows_dropped();
    g.rss_bytes = process_.rss_bytes;
    g.cpu_seconds = process_.cpu_seconds;
    g.open_files = process_.open_files;
    g.hash_queue_depth = process_.hash_queue_depth;
    g.storage_queue_depth = process_.storage_queue_depth;
    return g;
}

}  // namespace warren
