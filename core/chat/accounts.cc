// Accounts and sessions: REGISTER, LOGIN (password or token), LOGOUT, PING, and the
// completions of the password hashes they start. A password never stays in the core beyond
// the Hash effect; session tokens are stored only as their BLAKE2b hash.
#include <sodium.h>

#include "core/chaos.h"
#include "core/chat/context.h"
#include "core/validate/rules.h"

namespace warren {

namespace {

std::string to_hex(const uint8_t* p, size_t n) {
    static constexpr char hex[] = "0123456789abcdef";
    std::string s(n * 2, '0');
    for (size_t i = 0; i < n; ++i) {
        s[2 * i] = hex[p[i] >> 4];
        s[2 * i + 1] = hex[p[i] & 0xF];
    }
    return s;
}

// Session tokens are stored only as this hash, so a leaked database grants no session.
std::string token_hash(std::string_view token) {
    uint8_t out[32];
    crypto_generichash(out, sizeof out, reinterpret_cast<const uint8_t*>(token.data()),
                       token.size(), nullptr, 0);
    return to_hex(out, sizeof out);
}

void hash(OpContext& ctx, HashSpec spec, Op op, std::string username) {
    ctx.out.effect = Effect{std::move(spec), after::Hash{op, std::move(username)}, true};
}

Signal name_signal(Signal::Kind kind, std::string_view name, const User* account = nullptr) {
    return Signal{kind, name_key(name), account ? account->id : 0};
}

std::optional<UserId> id_of(const User* u) {
    if (!u) return std::nullopt;
    return u->id;
}

bool suspended(OpContext& ctx, UserId user) {
    auto barred = ctx.guard.account_barred(user, ctx.now());
    if (!barred) return false;
    ctx.fail(ErrorCode::blocked, "this account is suspended", {}, barred->retry_after_ms);
    return true;
}

// Logs the connection in as `u` with `token`; the reply says so.
void logged_in(OpContext& ctx, const User& u, std::string token, std::string hash,
               int64_t expires_ms) {
    ctx.emit(ctx.sessions.bind(ctx.caller.conn, u.id, std::move(hash)));
    ctx.undo_with(ctx.sessions.undo_bind(ctx.caller.conn));
    ctx.ok(reply::LoggedIn{UserView{u.name, true}, SessionView{std::move(token), expires_ms}});
}

// Ends the session `hash` of `user` in this request: its row goes, and the other connections
// using it are closed.
void end_session(OpContext& ctx, UserId user, const std::string& hash) {
    for (ConnId c : ctx.sessions.connections_with(user, hash))
        if (c != ctx.caller.conn) ctx.out.revoked.push_back(c);
    ctx.apply(SessionDelete{hash});
}

void start_session(OpContext& ctx, const User& u) {
    // Past the cap, the session that expires first gives way.
    std::vector<std::string> held = ctx.state.sessions_of(u.id);
    for (size_t i = 0; i + ctx.config.sessions_per_user_max <= held.size(); ++i)
        end_session(ctx, u.id, held[i]);
    std::vector<uint8_t> raw(ctx.config.token_bytes);
    ctx.entropy.fill(raw);
    std::string token = to_hex(raw.data(), raw.size());
    std::string h = token_hash(token);
    int64_t expires = ctx.now().wall_ms + ctx.config.session_ttl_ms;
    ctx.apply(SessionRow{h, u.id, expires});
    logged_in(ctx, u, std::move(token), std::move(h), expires);
}

void token_login(OpContext& ctx, const std::string& token) {
    std::string h = token_hash(token);
    const SessionRow* s = ctx.state.session(h);
    const User* u = s ? ctx.state.user(s->user) : nullptr;
    if (!u || s->expires_ms <= ctx.now().wall_ms)
        return ctx.fail(ErrorCode::invalid_credentials, "invalid or expired token");
    if (suspended(ctx, u->id)) return;
    logged_in(ctx, *u, token, std::move(h), s->expires_ms);
}

// A name a new account or guest may not take (it answers why): the caller is logged in
// already, or the name is reserved, held, or being registered.
bool name_refused(OpContext& ctx, const std::string& username) {
    if (ctx.caller.user) {
        ctx.fail(ErrorCode::conflict, "already logged in");
        return true;
    }
    std::string key = name_key(username);
    if (ctx.state.name_reserved(key)) {
        ctx.fail(ErrorCode::forbidden, "username '" + username + "' is reserved");
        return true;
    }
    if (ctx.state.name_taken(username) || ctx.sessions.reserved(key)) {
        ctx.fail(ErrorCode::conflict, "username '" + username + "' is taken");
        return true;
    }
    return false;
}

}  // namespace

void register_account(OpContext& ctx, Register& r) {
    if (!ctx.config.registration_open)
        return ctx.fail(ErrorCode::forbidden, "registration is closed on this server");
    if (auto wait = ctx.guard.registration_refused_for(std::string(ctx.caller.ip_key), ctx.now()))
        return ctx.fail(ErrorCode::rate_limited, "too many registrations from this address", {},
                        *wait);
    if (name_refused(ctx, r.username)) return;
    std::string key = name_key(r.username);
    if (ctx.gate.hashes_full || WARREN_CHAOS(hash_queue_full)) return ctx.busy();
    ctx.sessions.reserve(key);
    ctx.signal(Signal{Signal::Kind::registered});
    hash(ctx, HashSpec{HashMode::create, r.password, {}}, Op::register_, r.username);
}

void login(OpContext& ctx, Login& r) {
    if (ctx.caller.user) return ctx.fail(ErrorCode::conflict, "already logged in");
    if (r.token) return token_login(ctx, *r.token);
    const User* u = ctx.state.find_user(*r.username);
    // A locked name answers the same whether or not the account exists.
    if (auto wait = ctx.guard.name_locked_for(name_key(*r.username), id_of(u), ctx.now()))
        return ctx.fail(ErrorCode::rate_limited,
                        "too many failed logins for this name; try again later", {}, *wait);
    if (ctx.gate.hashes_full || WARREN_CHAOS(hash_queue_full)) return ctx.busy();
    // Unknown names are verified against a dummy hash: same answer, same time.
    ctx.signal(name_signal(Signal::Kind::login_started, *r.username));
    hash(ctx, HashSpec{HashMode::verify, *r.password, u ? u->phc : ""}, Op::login, *r.username);
}

void finish_register(OpContext& ctx, const after::Hash& job, const HashResult& result) {
    ctx.sessions.release(name_key(job.username));
    if (!ctx.caller.connected) return;
    if (!result.ok)
        return ctx.fail(ErrorCode::unavailable, "server busy; try again", {},
                        ctx.config.retry_after_ms);
    if (ctx.refuse_write()) return;
    UserId id = ctx.state.take_user_id();
    ctx.apply(UserRow{id, job.username, result.phc, ctx.now().wall_ms});
    start_session(ctx, *ctx.state.user(id));
}

void finish_login(OpContext& ctx, const after::Hash& job, const HashResult& result) {
    ctx.signal(name_signal(Signal::Kind::login_finished, job.username));
    if (!ctx.caller.connected) return;
    if (result.overloaded)
        return ctx.fail(ErrorCode::unavailable, "server busy; try again", {},
                        ctx.config.retry_after_ms);
    const User* u = ctx.state.find_user(job.username);
    if (!result.ok || !u) {
        ctx.signal(name_signal(Signal::Kind::login_failed, job.username, u));
        return ctx.fail(ErrorCode::invalid_credentials, "invalid username or password");
    }
    ctx.signal(name_signal(Signal::Kind::login_succeeded, job.username, u));
    if (suspended(ctx, u->id) || ctx.refuse_write()) return;
    start_session(ctx, *u);
}

void logout(OpContext& ctx, Logout& r) {
    if (ctx.refuse_write()) return;
    ConnId conn = ctx.caller.conn;
    std::string h = ctx.sessions.token_hash_of(conn);
    if (r.all.value_or(false)) {
        for (const std::string& held : ctx.state.sessions_of(ctx.me()))
            end_session(ctx, ctx.me(), held);
    } else if (ctx.state.session(h)) {
        end_session(ctx, ctx.me(), h);
    }
    ctx.emit(ctx.sessions.unbind(conn));
    ctx.undo_with(ctx.sessions.undo_unbind(conn, ctx.me(), std::move(h)));
    ctx.out.logged_out = true;
    ctx.ok(reply::Done{});
}

// A guest holds its name while connected: not a registered username, not another guest's, not
// a reserved admin name. No password, no session token: the connection is the guest.
void guest_login(OpContext& ctx, GuestLogin& r) {
    if (!ctx.config.irc_guests)
        return ctx.fail(ErrorCode::forbidden, "guests are not allowed on this server");
    if (name_refused(ctx, r.username) || ctx.refuse_write()) return;
    UserId id = ctx.state.take_user_id();
    ctx.apply(UserRow{id, r.username, "", ctx.now().wall_ms, true, false});
    logged_in(ctx, *ctx.state.user(id), "", "", 0);
}

// Certificates: an account binds the SHA-256 of a TLS client certificate; a client that shows
// it in its handshake may then log in with it (IRC's SASL EXTERNAL) without a password.
void add_certificate(OpContext& ctx, AddCertificate& r) {
    const User* me = ctx.state.user(ctx.me());
    if (me->guest) return ctx.fail(ErrorCode::forbidden, "a guest has no account to bind it to");
    std::string fp = canonical_fingerprint(r.fingerprint);
    if (const CertificateRow* held = ctx.state.certificate(fp)) {
        if (held->user == me->id) return ctx.ok(reply::Done{});  // already bound: nothing to do
        return ctx.fail(ErrorCode::conflict, "this certificate is bound to another account",
                        "fingerprint");
    }
    if (ctx.state.certificates_of(me->id).size() >= ctx.config.certificates_per_user_max)
        return ctx.fail(ErrorCode::bad_request,
                        "an account binds at most " +
                            std::to_string(ctx.config.certificates_per_user_max) +
                            " certificates; remove one first",
                        "fingerprint");
    if (ctx.refuse_write()) return;
    ctx.apply(CertificateRow{fp, me->id, ctx.now().wall_ms});
    ctx.ok(reply::Done{});
}

void remove_certificate(OpContext& ctx, RemoveCertificate& r) {
    std::string fp = canonical_fingerprint(r.fingerprint);
    const CertificateRow* held = ctx.state.certificate(fp);
    if (!held || held->user != ctx.me())
        return ctx.fail(ErrorCode::not_found, "no such certificate on this account", "fingerprint");
    if (ctx.refuse_write()) return;
    ctx.apply(CertificateDelete{fp});
    ctx.ok(reply::Done{});
}

void list_certificates(OpContext& ctx, ListCertificates&) {
    reply::Certificates out;
    for (const CertificateRow& c : ctx.state.certificates_of(ctx.me()))
        out.certificates.push_back({c.fingerprint, c.added_ms});
    ctx.ok(std::move(out));
}

// The fingerprint comes from the TLS layer (the IRC session fills it), never from the client:
// holding the certificate's private key is the credential, so no throttling or hash applies.
void certificate_login(OpContext& ctx, CertificateLogin& r) {
    if (ctx.caller.user) return ctx.fail(ErrorCode::conflict, "already logged in");
    const CertificateRow* held = ctx.state.certificate(canonical_fingerprint(r.fingerprint));
    const User* u = held ? ctx.state.user(held->user) : nullptr;
    if (!u || (r.username && name_key(*r.username) != name_key(u->name)))
        return ctx.fail(ErrorCode::invalid_credentials, "no account has this certificate");
    if (suspended(ctx, u->id) || ctx.refuse_write()) return;
    start_session(ctx, *u);
}

void ping(OpContext& ctx, Ping&) {
    ctx.ok(reply::Pong{});
}

}  // namespace warren
