#include "core/security/guard.h"

#include <algorithm>

namespace warren {

namespace {
// A limit times the /48 tier's factor, saturating (limits may be set huge to switch them off).
uint32_t scaled(uint32_t limit, uint32_t factor) {
    return static_cast<uint32_t>(std::min<uint64_t>(uint64_t{limit} * factor, UINT32_MAX));
}
constexpr int64_t unit = 60'000'000;         // units per token (and per point)
constexpr int64_t sweep_gap_us = 1'000'000;  // a full table is swept at most this often
}  // namespace

std::string_view threat_level_name(ThreatLevel l) {
    switch (l) {
        case ThreatLevel::low:
            return "low";
        case ThreatLevel::medium:
            return "medium";
        case ThreatLevel::high:
            return "high";
        case ThreatLevel::critical:
            return "critical";
    }
    return "low";
}

Guard::Guard(const Config& config)
    : config_(config), ips_(config.security_ips_max), names_(config.security_names_max) {
    for (const auto& cidr : config.allowlist) WARREN_CHECK(allowlist_.add(cidr));
}

void Guard::load(const Snapshot& snapshot) {
    for (const BlockRow& b : snapshot.blocks) blocks_[b.ip] = b;
    for (const SuspensionRow& s : snapshot.suspensions) suspensions_[s.user] = s;
}

// ---- state lookup -------------------------------------------------------------------------

Guard::IpState& Guard::ip_state(const std::string& ip, Time now) {
    IpState& s = ips_.get(ip);
    if (s.seen_us == 0) s.prefix = prefix_key(ip, config_.ipv6_prefix_bits);
    s.seen_us = now.mono_us;
    return s;
}

Guard::IpState* Guard::prefix_state(const IpState& s, Time now) {
    if (s.prefix.empty()) return nullptr;
    std::string key = s.prefix;  // s may move nowhere, but get() may evict: copy the key first
    IpState& p = ips_.get(key);
    p.seen_us = now.mono_us;
    return &p;
}

const Guard::IpState* Guard::prefix_state(const std::string& ip) const {
    const IpState* s = ips_.find(ip);
    std::string key = s ? s->prefix : prefix_key(ip, config_.ipv6_prefix_bits);
    return key.empty() ? nullptr : ips_.find(key);
}

Guard::AccountState& Guard::account_state(UserId user, Time now) {
    AccountState& a = accounts_[user];  // bounded by the number of accounts
    a.seen_us = now.mono_us;
    return a;
}

// ---- buckets and windows ------------------------------------------------------------------

std::optional<int64_t> Guard::bucket_wait(Bucket& b, uint32_t per_min, uint32_t burst,
                                          uint32_t weight, int64_t now_us) const {
    int64_t cap = int64_t{burst} * unit;
    if (b.units < 0) {
        b.units = cap;
    } else if (per_min > 0) {
        // Saturate before multiplying: a long-idle bucket is simply full.
        int64_t elapsed = std::max<int64_t>(0, now_us - b.last_us);
        int64_t to_full = (cap - b.units) / per_min + 1;
        b.units = elapsed >= to_full ? cap : std::min(cap, b.units + elapsed * int64_t{per_min});
    }
    b.last_us = now_us;
    int64_t need = int64_t{weight} * unit;
    if (b.units >= need) return std::nullopt;
    if (per_min == 0) return us_from_ms(config_.retry_after_ms);
    return (need - b.units + per_min - 1) / per_min;  // µs until the tokens are there
}

void Guard::take(Bucket& b, uint32_t weight) {
    b.units -= int64_t{weight} * unit;
}

void Guard::trim(Fifo<int64_t>& d, int64_t window_ms, int64_t now_us) const {
    int64_t since = now_us - us_from_ms(window_ms);
    while (!d.empty() && d.front() <= since) d.pop_front();
}

// ---- connections --------------------------------------------------------------------------

std::optional<int64_t> Guard::connection_wait(IpState& s, uint32_t factor, Time now) const {
    trim(s.connects, config_.connects_window_ms, now.mono_us);
    std::optional<int64_t> wait;
    if (s.conns >= scaled(config_.conns_per_ip_max, factor)) wait = config_.retry_after_ms;
    if (s.connects.size() >= scaled(config_.connects_per_ip_window_max, factor))
        wait = ms_ceil(s.connects.front() + us_from_ms(config_.connects_window_ms) - now.mono_us);
    return wait;
}

// Counts an open connection; an entry with open connections never leaves the table.
void Guard::admit(IpState& s, const std::string& key, Time now) {
    if (s.conns++ == 0) ips_.pin(key, true);
    s.connects.push_back(now.mono_us);
}

void Guard::release(const std::string& key) {
    IpState* s = ips_.find(key);
    if (!s || s->conns == 0) return;
    if (--s->conns == 0) ips_.pin(key, false);
}

std::optional<Guard::ConnRefusal> Guard::admit_connection(const std::string& ip, Time now) {
    if (auto barred = ip_barred(ip, now)) {
        ++counters_.conns_refused_blocked;
        return ConnRefusal{DisconnectReason::blocked, barred->retry_after_ms};
    }
    IpState& s = ip_state(ip, now);
    IpState* p = prefix_state(s, now);
    if (!allowlisted(ip)) {
        std::optional<int64_t> wait = connection_wait(s, 1, now);
        if (!wait && p) wait = connection_wait(*p, config_.ipv6_prefix_factor, now);
        if (wait) {
            // A capacity refusal, not hostility: shared addresses (offices, CGNAT) meet it.
            ++counters_.conns_refused_too_many;
            return ConnRefusal{DisconnectReason::too_many_connections, std::max<int64_t>(*wait, 1)};
        }
    }
    admit(s, ip, now);
    if (p) admit(*p, s.prefix, now);
    return std::nullopt;
}

void Guard::connection_closed(const std::string& ip) {
    const IpState* s = ips_.find(ip);
    std::string prefix = s ? s->prefix : std::string();
    release(ip);
    if (!prefix.empty()) release(prefix);
}

// ---- requests -----------------------------------------------------------------------------

// A block of the address itself or, for IPv6, of its /48.
std::optional<Barred> Guard::ip_barred(const std::string& ip, Time now) const {
    if (blocks_.empty() || allowlisted(ip)) return std::nullopt;
    auto barred = [&](const std::string& key) -> std::optional<Barred> {
        auto it = blocks_.find(key);
        if (it == blocks_.end()) return std::nullopt;
        const BlockRow& b = it->second;
        if (b.until_ms == 0) return Barred{};
        if (b.until_ms <= now.wall_ms) return std::nullopt;
        return Barred{b.until_ms - now.wall_ms};
    };
    if (auto b = barred(ip)) return b;
    if (ip.find(':') == std::string::npos) return std::nullopt;
    const IpState* s = ips_.find(ip);
    std::string prefix = s ? s->prefix : prefix_key(ip, config_.ipv6_prefix_bits);
    return prefix.empty() ? std::nullopt : barred(prefix);
}

std::optional<Barred> Guard::account_barred(UserId user, Time now) const {
    auto it = suspensions_.find(user);
    if (it == suspensions_.end()) return std::nullopt;
    const SuspensionRow& s = it->second;
    if (s.until_ms == 0) return Barred{};
    if (s.until_ms <= now.wall_ms) return std::nullopt;
    return Barred{s.until_ms - now.wall_ms};
}

std::optional<int64_t> Guard::wait_all(IpState& s, IpState* p, AccountState* a, uint32_t weight,
                                       int64_t now_us) const {
    auto wait =
        bucket_wait(s.bucket, config_.rate_ip_per_min, config_.rate_ip_burst, weight, now_us);
    if (p) {
        uint32_t f = config_.ipv6_prefix_factor;
        auto wait_p = bucket_wait(p->bucket, scaled(config_.rate_ip_per_min, f),
                                  scaled(config_.rate_ip_burst, f), weight, now_us);
        if (wait_p) wait = std::max(wait.value_or(0), *wait_p);
    }
    if (a) {
        auto wait_user = bucket_wait(a->bucket, config_.rate_user_per_min, config_.rate_user_burst,
                                     weight, now_us);
        if (wait_user) wait = std::max(wait.value_or(0), *wait_user);
    }
    return wait;
}

std::optional<int64_t> Guard::tokens_wait(const std::string& ip, std::optional<UserId> user,
                                          uint32_t weight, Time now) {
    IpState& s = ip_state(ip, now);
    IpState* p = prefix_state(s, now);
    AccountState* a = user ? &account_state(*user, now) : nullptr;
    std::optional<int64_t> wait = wait_all(s, p, a, weight, now.mono_us);
    if (!wait) return std::nullopt;
    return std::max<int64_t>(ms_ceil(*wait), 1);
}

std::optional<int64_t> Guard::take_tokens(const std::string& ip, std::optional<UserId> user,
                                          uint32_t weight, Time now) {
    IpState& s = ip_state(ip, now);
    IpState* p = prefix_state(s, now);
    AccountState* a = user ? &account_state(*user, now) : nullptr;
    std::optional<int64_t> wait = wait_all(s, p, a, weight, now.mono_us);
    if (wait) {
        ++counters_.rate_limited;
        // Sustained flooding escalates on the account (throttle, then suspend); the address,
        // which others may share, only ever throttles.
        if (user) add_account_points(ip, *user, config_.points_rate_limited, "rate limited", now);
        return std::max<int64_t>(ms_ceil(*wait), 1);
    }
    take(s.bucket, weight);
    if (p) take(p->bucket, weight);
    if (a) take(a->bucket, weight);
    return std::nullopt;
}

// ---- logins and registration --------------------------------------------------------------

std::optional<int64_t> Guard::lock_wait(const Lock* l, const std::string& name_key,
                                        Time now) const {
    size_t failures = 0;
    if (l) {
        if (l->locked_until_us > now.mono_us) return ms_ceil(l->locked_until_us - now.mono_us);
        int64_t since = now.mono_us - us_from_ms(config_.name_failures_window_ms);
        failures = static_cast<size_t>(std::count_if(l->failures.begin(), l->failures.end(),
                                                     [&](int64_t t) { return t > since; }));
    }
    auto running = logins_running_.find(name_key);
    size_t in_flight = running == logins_running_.end() ? 0 : running->second;
    // Guesses running in parallel must not add up to more failures than the lock allows.
    if (in_flight > 0 && failures + in_flight >= config_.name_failures_max)
        return config_.retry_after_ms;
    return std::nullopt;
}

// An existing account's lock lives on the account (never evicted); other names' in the
// bounded name table.
std::optional<int64_t> Guard::name_locked_for(const std::string& name_key,
                                              std::optional<UserId> account, Time now) const {
    const Lock* l = nullptr;
    if (account) {
        auto it = accounts_.find(*account);
        if (it != accounts_.end()) l = &it->second.lock;
    } else if (const NameState* n = names_.find(name_key)) {
        l = &n->lock;
    }
    return lock_wait(l, name_key, now);
}

void Guard::login_finished(const std::string& name_key) {
    auto it = logins_running_.find(name_key);
    if (it != logins_running_.end() && --it->second == 0) logins_running_.erase(it);
}

bool Guard::lock_failure(Lock& l, Time now) {
    trim(l.failures, config_.name_failures_window_ms, now.mono_us);
    l.failures.push_back(now.mono_us);
    if (l.failures.size() < config_.name_failures_max) return false;
    l.failures.clear();
    l.locked_until_us = now.mono_us + us_from_ms(config_.name_lock_ms);
    return true;
}

// Failed logins from one address (and, for IPv6, its /48) block it.
void Guard::login_failed_at(const std::string& key, uint32_t factor, Time now) {
    IpState& s = ip_state(key, now);
    trim(s.login_failures, config_.ip_login_failures_window_ms, now.mono_us);
    s.login_failures.push_back(now.mono_us);
    uint32_t max = scaled(config_.ip_login_failures_max, factor);
    if (s.login_failures.size() < max) return;
    s.login_failures.clear();
    auto_block(key, std::to_string(max) + " failed logins", now);
}

void Guard::login_failed(const std::string& ip, const std::string& name_key,
                         std::optional<UserId> account, Time now) {
    ++counters_.login_failures;
    NameState* n = account ? nullptr : &names_.get(name_key);
    if (n) n->seen_us = now.mono_us;
    if (lock_failure(account ? account_state(*account, now).lock : n->lock, now)) {
        ++counters_.name_locks;
        SecurityDecision d;
        d.kind = SecurityDecision::Kind::name_locked;
        d.ip = ip;
        d.name = name_key;
        d.reason = std::to_string(config_.name_failures_max) + " failed logins";
        decisions_.push_back(std::move(d));
    }
    std::string prefix = ip_state(ip, now).prefix;
    bool blocked_before = ip_barred(ip, now).has_value();
    login_failed_at(ip, 1, now);
    if (!prefix.empty()) login_failed_at(prefix, config_.ipv6_prefix_factor, now);
    if (!blocked_before && !ip_barred(ip, now))
        add_ip_points(ip, config_.points_login_failure, "failed login", now);
}

void Guard::login_succeeded(const std::string& name_key, std::optional<UserId> account) {
    Lock* l = nullptr;
    if (account) {
        auto it = accounts_.find(*account);
        if (it != accounts_.end()) l = &it->second.lock;
    } else if (NameState* n = names_.find(name_key)) {
        l = &n->lock;
    }
    if (l && l->locked_until_us == 0) l->failures.clear();
}

std::optional<int64_t> Guard::registration_wait(const IpState& s, uint32_t factor, Time now) const {
    const auto& regs = s.registrations;
    int64_t window = us_from_ms(config_.registrations_window_ms);
    size_t recent = static_cast<size_t>(std::count_if(
        regs.begin(), regs.end(), [&](int64_t t) { return t > now.mono_us - window; }));
    if (recent < scaled(config_.registrations_per_ip_max, factor)) return std::nullopt;
    return std::max<int64_t>(1, ms_ceil(regs[regs.size() - recent] + window - now.mono_us));
}

std::optional<int64_t> Guard::registration_refused_for(const std::string& ip, Time now) const {
    if (allowlisted(ip)) return std::nullopt;
    std::optional<int64_t> wait;
    if (const IpState* s = ips_.find(ip)) wait = registration_wait(*s, 1, now);
    if (const IpState* p = prefix_state(ip); p && !wait)
        wait = registration_wait(*p, config_.ipv6_prefix_factor, now);
    return wait;
}

void Guard::registered(const std::string& ip, Time now) {
    IpState& s = ip_state(ip, now);
    trim(s.registrations, config_.registrations_window_ms, now.mono_us);
    s.registrations.push_back(now.mono_us);
    if (IpState* p = prefix_state(s, now)) {
        trim(p->registrations, config_.registrations_window_ms, now.mono_us);
        p->registrations.push_back(now.mono_us);
    }
}

// ---- threat scoring -----------------------------------------------------------------------

int64_t Guard::points_now(const Score& s, int64_t now_us) const {
    int64_t decay = config_.threat_decay_per_min;
    if (decay == 0) return s.units;
    int64_t elapsed = std::max<int64_t>(0, now_us - s.last_us);
    if (elapsed >= s.units / decay + 1) return 0;  // saturate before multiplying
    return std::max<int64_t>(0, s.units - elapsed * decay);
}

ThreatLevel Guard::level_of(int64_t units) const {
    if (units >= int64_t{config_.threat_critical} * unit) return ThreatLevel::critical;
    if (units >= int64_t{config_.threat_high} * unit) return ThreatLevel::high;
    if (units >= int64_t{config_.threat_medium} * unit) return ThreatLevel::medium;
    return ThreatLevel::low;
}

std::optional<ThreatLevel> Guard::add_points(Score& s, uint32_t points, int64_t now_us) {
    s.units = points_now(s, now_us) + int64_t{points} * unit;
    s.last_us = now_us;
    ThreatLevel l = level_of(s.units);
    if (l < s.reported || l == ThreatLevel::low) s.reported = l;
    if (l <= s.reported) return std::nullopt;
    s.reported = l;
    return l;
}

void Guard::add_ip_points(const std::string& ip, uint32_t points, std::string_view reason,
                          Time now) {
    if (points == 0 || allowlisted(ip)) return;
    IpState& s = ip_state(ip, now);
    auto reached = add_points(s.score, points, now.mono_us);
    if (!reached) return;
    if (*reached == ThreatLevel::critical) {
        s.score = Score{};
        return auto_block(ip, "threat score critical (last: " + std::string(reason) + ")", now);
    }
    if (*reached < ThreatLevel::high) return;  // medium is counted, not audited
    SecurityDecision d;
    d.kind = SecurityDecision::Kind::threat_level;
    d.ip = ip;
    d.level = *reached;
    d.reason = std::string(reason);
    decisions_.push_back(std::move(d));
}

void Guard::add_account_points(const std::string& ip, UserId user, uint32_t points,
                               std::string_view reason, Time now) {
    if (points == 0) return;
    AccountState& a = account_state(user, now);
    auto reached = add_points(a.score, points, now.mono_us);
    if (!reached) return;
    SecurityDecision d;
    d.ip = ip;
    d.user = user;
    d.reason = std::string(reason);
    d.level = *reached;
    if (*reached == ThreatLevel::critical) {
        a.score = Score{};
        d.kind = SecurityDecision::Kind::account_suspended;
        d.suspension = suspend(user, std::nullopt,
                               "threat score critical (last: " + std::string(reason) + ")", now);
        d.reason = d.suspension.reason;
        // suspend() with no duration means "until lifted"; automatic ones climb the ladder.
        d.suspension.until_ms = now.wall_ms + ladder_ms(d.suspension.offences);
        suspensions_[user] = d.suspension;
        ++counters_.suspensions;
    } else if (*reached < ThreatLevel::high) {
        return;
    } else {
        d.kind = SecurityDecision::Kind::threat_level;
    }
    decisions_.push_back(std::move(d));
}

void Guard::offence(const std::string& ip, std::optional<UserId> user, Offence what, Time now) {
    uint32_t points = 0;
    std::string_view reason;
    switch (what) {
        case Offence::bad_frame:
            ++counters_.bad_frames;
            points = config_.points_bad_frame;
            reason = "malformed frame";
            break;
        case Offence::signature:
            ++counters_.signatures;
            points = config_.points_signature;
            reason = "attack signature in a request";
            break;
        case Offence::conn_refused:
            points = config_.points_conn_refused;
            reason = "connection refused";
            break;
        case Offence::flood:
            ++counters_.rate_limited;
            if (user)
                add_account_points(ip, *user, config_.points_rate_limited, "excess flood", now);
            return;
    }
    add_ip_points(ip, points, reason, now);
    if (user) add_account_points(ip, *user, points, reason, now);
}

void Guard::room_message(const std::string& ip, UserId user, RoomId room, uint64_t text_hash,
                         Time now) {
    AccountState& a = account_state(user, now);
    int64_t since = now.mono_us - us_from_ms(config_.behaviour_window_ms);
    while (!a.said.empty() && (a.said.front().at_us <= since ||
                               a.said.size() >= 4 * size_t{config_.repeated_text_rooms}))
        a.said.pop_front();
    a.said.push_back({text_hash, room, now.mono_us});
    std::vector<RoomId> rooms;
    for (const auto& s : a.said)
        if (s.hash == text_hash && std::find(rooms.begin(), rooms.end(), s.room) == rooms.end())
            rooms.push_back(s.room);
    if (rooms.size() >= config_.repeated_text_rooms)
        add_account_points(ip, user, config_.points_repeated_text, "same text in many rooms", now);
}

void Guard::direct_message(const std::string& ip, UserId user, UserId to,
                           int64_t account_created_ms, Time now) {
    if (now.wall_ms - account_created_ms >= config_.new_account_ms) return;
    AccountState& a = account_state(user, now);
    int64_t since = now.mono_us - us_from_ms(config_.behaviour_window_ms);
    while (!a.dm_to.empty() && a.dm_to.front().second <= since) a.dm_to.pop_front();
    auto it = std::find_if(a.dm_to.begin(), a.dm_to.end(), [&](auto& p) { return p.first == to; });
    if (it != a.dm_to.end()) return;  // already counted in this window
    a.dm_to.emplace_back(to, now.mono_us);
    if (a.dm_to.size() > config_.dm_recipients_max) {
        a.dm_to.pop_front();  // keep the deque bounded; the score remembers
        add_account_points(ip, user, config_.points_dm_spread, "new account messaging many users",
                           now);
    }
}

// Counts one event in the behaviour window; each one past `free` scores `points`. The deque
// never holds more than free + 1 entries: the score remembers the rest.
void Guard::count_behaviour(const std::string& ip, UserId user,
                            Fifo<int64_t> AccountState::*events, uint32_t free,
                            uint32_t points, std::string_view reason, Time now) {
    Fifo<int64_t>& d = account_state(user, now).*events;
    trim(d, config_.behaviour_window_ms, now.mono_us);
    d.push_back(now.mono_us);
    if (d.size() <= free) return;
    d.pop_front();
    add_account_points(ip, user, points, reason, now);
}

void Guard::membership_change(const std::string& ip, UserId user, Time now) {
    count_behaviour(ip, user, &AccountState::churn, config_.churn_max, config_.points_churn,
                    "join/leave churn", now);
}

void Guard::invitation_sent(const std::string& ip, UserId user, Time now) {
    count_behaviour(ip, user, &AccountState::invitations, config_.invitations_max,
                    config_.points_invite_spam, "invitation spam", now);
}

ThreatLevel Guard::ip_level(const std::string& ip, Time now) const {
    const IpState* s = ips_.find(ip);
    return s ? level_of(points_now(s->score, now.mono_us)) : ThreatLevel::low;
}

ThreatLevel Guard::account_level(UserId user, Time now) const {
    auto it = accounts_.find(user);
    return it == accounts_.end() ? ThreatLevel::low
                                 : level_of(points_now(it->second.score, now.mono_us));
}

// ---- blocks and suspensions ---------------------------------------------------------------

bool Guard::allowlisted(const std::string& ip) const {
    return !allowlist_.empty() && allowlist_.contains(ip);
}

int64_t Guard::ladder_ms(uint32_t offences) const {
    const auto& l = config_.block_ladder_ms;
    if (l.empty()) return 15LL * 60 * 1000;
    return l[std::min<size_t>(offences == 0 ? 0 : offences - 1, l.size() - 1)];
}

BlockRow Guard::block(const std::string& ip_key, std::optional<int64_t> duration_ms,
                      std::string reason, Time now) {
    BlockRow row{ip_key, now.wall_ms, 0, 1, std::move(reason)};
    if (auto it = blocks_.find(ip_key);
        it != blocks_.end() && now.wall_ms - it->second.since_ms < config_.offence_memory_ms)
        row.offences = it->second.offences + 1;
    if (duration_ms) row.until_ms = now.wall_ms + std::max<int64_t>(1, *duration_ms);
    blocks_[ip_key] = row;  // admin blocks may exceed blocks_max; automatic ones check first
    return row;
}

void Guard::auto_block(const std::string& ip, std::string reason, Time now) {
    if (allowlisted(ip) || ip_barred(ip, now)) return;
    if (blocks_.size() >= config_.blocks_max && !blocks_.contains(ip) &&
        now.mono_us - swept_us_ >= sweep_gap_us)
        sweep(now);
    if (blocks_.size() >= config_.blocks_max && !blocks_.contains(ip)) return;
    BlockRow row = block(ip, std::nullopt, std::move(reason), now);
    row.until_ms = now.wall_ms + ladder_ms(row.offences);
    blocks_[ip] = row;
    ++counters_.blocks;
    SecurityDecision d;
    d.kind = SecurityDecision::Kind::ip_blocked;
    d.ip = ip;
    d.block = row;
    d.reason = row.reason;
    d.level = ThreatLevel::critical;
    decisions_.push_back(std::move(d));
}

std::optional<BlockRow> Guard::unblock(const std::string& ip_key, Time now) {
    auto it = blocks_.find(ip_key);
    if (it == blocks_.end() || !ip_barred(ip_key, now)) return std::nullopt;
    it->second.until_ms = now.wall_ms;
    if (IpState* s = ips_.find(ip_key)) {
        s->score = Score{};
        s->login_failures.clear();
    }
    return it->second;
}

SuspensionRow Guard::suspend(UserId user, std::optional<int64_t> duration_ms, std::string reason,
                             Time now) {
    SuspensionRow row{user, now.wall_ms, 0, 1, std::move(reason)};
    if (auto it = suspensions_.find(user);
        it != suspensions_.end() && now.wall_ms - it->second.since_ms < config_.offence_memory_ms)
        row.offences = it->second.offences + 1;
    if (duration_ms) row.until_ms = now.wall_ms + std::max<int64_t>(1, *duration_ms);
    suspensions_[user] = row;
    return row;
}

std::optional<SuspensionRow> Guard::unsuspend(UserId user, Time now) {
    auto it = suspensions_.find(user);
    if (it == suspensions_.end() || !account_barred(user, now)) return std::nullopt;
    it->second.until_ms = now.wall_ms;
    if (auto a = accounts_.find(user); a != accounts_.end()) a->second.score = Score{};
    return it->second;
}

void Guard::restore_block(const std::string& ip_key, std::optional<BlockRow> previous) {
    if (previous)
        blocks_[ip_key] = *previous;
    else
        blocks_.erase(ip_key);
}

void Guard::restore_suspension(UserId user, std::optional<SuspensionRow> previous) {
    if (previous)
        suspensions_[user] = *previous;
    else
        suspensions_.erase(user);
}

std::optional<BlockRow> Guard::block_row(const std::string& ip_key) const {
    auto it = blocks_.find(ip_key);
    if (it == blocks_.end()) return std::nullopt;
    return it->second;
}

std::optional<SuspensionRow> Guard::suspension_row(UserId user) const {
    auto it = suspensions_.find(user);
    if (it == suspensions_.end()) return std::nullopt;
    return it->second;
}

std::vector<BlockRow> Guard::active_blocks(Time now) const {
    std::vector<BlockRow> out;
    for (const auto& [ip, b] : blocks_)
        if (b.until_ms == 0 || b.until_ms > now.wall_ms) out.push_back(b);
    return out;
}

std::vector<SuspensionRow> Guard::active_suspensions(Time now) const {
    std::vector<SuspensionRow> out;
    for (const auto& [user, s] : suspensions_)
        if (s.until_ms == 0 || s.until_ms > now.wall_ms) out.push_back(s);
    return out;
}

std::vector<SecurityDecision> Guard::take_decisions() {
    std::vector<SecurityDecision> out;
    out.swap(decisions_);
    return out;
}

void Guard::sweep(Time now) {
    swept_us_ = now.mono_us;
    int64_t quiet =
        us_from_ms(std::max({config_.name_failures_window_ms, config_.ip_login_failures_window_ms,
                             config_.registrations_window_ms, config_.connects_window_ms}));
    auto idle = [&](int64_t seen_us) { return seen_us <= now.mono_us - quiet; };
    ips_.erase_if([&](const std::string&, const IpState& s) {
        return s.conns == 0 && idle(s.seen_us) && points_now(s.score, now.mono_us) == 0;
    });
    names_.erase_if([&](const std::string&, const NameState& n) {
        return idle(n.seen_us) && n.lock.locked_until_us <= now.mono_us;
    });
    std::erase_if(accounts_, [&](const auto& kv) {
        const AccountState& a = kv.second;
        return idle(a.seen_us) && points_now(a.score, now.mono_us) == 0 &&
               a.lock.locked_until_us <= now.mono_us;
    });
    std::erase_if(blocks_, [&](const auto& kv) {
        const BlockRow& b = kv.second;
        return b.until_ms != 0 && b.until_ms <= now.wall_ms &&
               now.wall_ms - b.since_ms >= config_.offence_memory_ms;
    });
}

}  // namespace warren
