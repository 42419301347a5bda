#include "core/security/admission.h"

namespace warren {

std::optional<Error> admit_request(Guard& guard, const std::string& ip_key,
                                   std::optional<UserId> user, Op op, Time now) {
    if (auto barred = guard.ip_barred(ip_key, now))
        return Error{ErrorCode::blocked, "this address is blocked", {}, barred->retry_after_ms};
    if (user)
        if (auto barred = guard.account_barred(*user, now))
            return Error{
                ErrorCode::blocked, "this account is suspended", {}, barred->retry_after_ms};
    if (auto wait = guard.take_tokens(ip_key, user, op_info(op).weight, now))
        return Error{ErrorCode::rate_limited, "too many requests; slow down", {}, *wait};
    if (op_needs_session(op) && !user)
        return Error{ErrorCode::unauthenticated, "log in first", {}, {}};
    return std::nullopt;
}

namespace {
std::optional<UserId> account_of(const Signal& s) {
    if (s.account == 0) return std::nullopt;
    return s.account;
}
}  // namespace

void observe(Guard& guard, const Signal& s, const std::string& ip_key, std::optional<UserId> user,
             Time now) {
    using K = Signal::Kind;
    // Behaviour signals come only from ops that need a session.
    auto account = [&] {
        WARREN_CHECK(user.has_value());
        return *user;
    };
    switch (s.kind) {
        case K::registered:
            return guard.registered(ip_key, now);
        case K::login_started:
            return guard.login_started(s.name_key);
        case K::login_finished:
            return guard.login_finished(s.name_key);
        case K::login_failed:
            return guard.login_failed(ip_key, s.name_key, account_of(s), now);
        case K::login_succeeded:
            return guard.login_succeeded(s.name_key, account_of(s));
        case K::room_message:
            return guard.room_message(ip_key, account(), s.room, s.text_hash, now);
        case K::direct_message:
            return guard.direct_message(ip_key, account(), s.to, s.account_created_ms, now);
        case K::membership_change:
            return guard.membership_change(ip_key, account(), now);
        case K::invitation_sent:
            return guard.invitation_sent(ip_key, account(), now);
    }
}

}  // namespace warren
