// Guard: the server's security state and decisions, in injected time. Token buckets per IP and
// per account, connection caps, login throttling, registration caps, threat scores with
// levels, behaviour detectors, IP blocks and account suspensions with an escalation ladder,
// and an allowlist.
//
// The Guard never talks to connections or storage. It answers questions ("may this
// connection open?", "may this request run?") and records what it decided to do on its own
// (a block, a suspension, a name lock, a threat level reached) as SecurityDecisions, which the
// server drains after every input to persist them, audit them and close connections. Every
// container is bounded (Config security_*_max) without ever sharing state between strangers:
// past the bound the least recently seen idle entry leaves (an address with open connections
// never does), and sweep() drops idle state. IPv6 addresses have a second tier: besides its
// /64, each counts against its /48 (ipv6_prefix_bits), whose caps, bucket, registration and
// login-failure limits are ipv6_prefix_factor times an address's, so /64s rotated inside one
// /48 cannot escape the limits. An existing account's login failures are kept on the account,
// so its lock holds however many other names fail.
//
// Time: buckets, windows, name locks and scores use mono_us; blocks and suspensions use
// wall_ms because they are stored and outlive the process. Waits are answered in whole
// milliseconds, rounded up (retry_after_ms).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/base.h"
#include "core/fifo.h"
#include "core/chat/records.h"
#include "core/config.h"
#include "core/ops/codes.h"
#include "core/security/address.h"
#include "core/security/lru_map.h"

namespace warren {

enum class ThreatLevel { low, medium, high, critical };
std::string_view threat_level_name(ThreatLevel l);

struct SecurityDecision {
    enum class Kind { ip_blocked, account_suspended, name_locked, threat_level };
    Kind kind = Kind::ip_blocked;
    std::string ip;            // ip_blocked, threat_level (IP); the request's IP otherwise
    UserId user = 0;           // account_suspended, threat_level (account)
    std::string name;          // name_locked: the locked name key
    BlockRow block;            // ip_blocked
    SuspensionRow suspension;  // account_suspended
    ThreatLevel level = ThreatLevel::low;
    std::string reason;
};

// A block or suspension in force. retry_after_ms is absent when it lasts until lifted.
struct Barred {
    std::optional<int64_t> retry_after_ms;
};

class Guard {
  public:
    explicit Guard(const Config& config);
    void load(const Snapshot& snapshot);

    // ---- connections -------------------------------------------------------------------
    struct ConnRefusal {
        DisconnectReason reason;  // blocked or too_many_connections
        std::optional<int64_t> retry_after_ms;
    };
    // Counts the connection when it is admitted.
    std::optional<ConnRefusal> admit_connection(const std::string& ip, Time now);
    void connection_closed(const std::string& ip);

    // ---- requests ----------------------------------------------------------------------
    std::optional<Barred> ip_barred(const std::string& ip, Time now) const;
    std::optional<Barred> account_barred(UserId user, Time now) const;
    // Takes `weight` tokens from the IP's bucket and the account's (when logged in), or none
    // and returns how long until they would be there.
    std::optional<int64_t> take_tokens(const std::string& ip, std::optional<UserId> user,
                                       uint32_t weight, Time now);
    // How long until take_tokens would take them (nullopt: now), in ms; takes and counts
    // nothing. An IRC connection waits that long before its next line (fakelag) instead of
    // being refused.
    std::optional<int64_t> tokens_wait(const std::string& ip, std::optional<UserId> user,
                                       uint32_t weight, Time now);

    // ---- logins and registration ---------------------------------------------------------
    // How long password logins for the name must wait: it is locked, or its failures in the
    // window plus the verifications still running would reach the lock.
    // `account` is the account of that name, if one exists.
    std::optional<int64_t> name_locked_for(const std::string& name_key,
                                           std::optional<UserId> account, Time now) const;
    // A password verification for the name started or ended (bounded by the hash jobs).
    void login_started(const std::string& name_key) { ++logins_running_[name_key]; }
    void login_finished(const std::string& name_key);
    void login_failed(const std::string& ip, const std::string& name_key,
                      std::optional<UserId> account, Time now);
    void login_succeeded(const std::string& name_key, std::optional<UserId> account);
    std::optional<int64_t> registration_refused_for(const std::string& ip, Time now) const;
    void registered(const std::string& ip, Time now);

    // ---- threat scoring ----------------------------------------------------------------
    // flood: an IRC connection's input went past what flood control holds (Excess Flood);
    // like a refused request, it counts on the account only.
    enum class Offence { bad_frame, signature, conn_refused, flood };
    void offence(const std::string& ip, std::optional<UserId> user, Offence what, Time now);
    void room_message(const std::string& ip, UserId user, RoomId room, uint64_t text_hash,
                      Time now);
    void direct_message(const std::string& ip, UserId user, UserId to, int64_t account_created_ms,
                        Time now);
    void membership_change(const std::string& ip, UserId user, Time now);
    void invitation_sent(const std::string& ip, UserId user, Time now);
    ThreatLevel ip_level(const std::string& ip, Time now) const;
    ThreatLevel account_level(UserId user, Time now) const;

    // ---- blocks and suspensions (also the admin actions) ---------------------------------
    bool allowlisted(const std::string& ip) const;
    // The row to store. duration_ms absent: until lifted; otherwise the given duration.
    BlockRow block(const std::string& ip_key, std::optional<int64_t> duration_ms,
                   std::string reason, Time now);
    std::optional<BlockRow> unblock(const std::string& ip_key, Time now);
    SuspensionRow suspend(UserId user, std::optional<int64_t> duration_ms, std::string reason,
                          Time now);
    std::optional<SuspensionRow> unsuspend(UserId user, Time now);
    // Undo of an admin action whose commit failed: the previous row (or none) comes back.
    void restore_block(const std::string& ip_key, std::optional<BlockRow> previous);
    void restore_suspension(UserId user, std::optional<SuspensionRow> previous);
    std::optional<BlockRow> block_row(const std::string& ip_key) const;
    std::optional<SuspensionRow> suspension_row(UserId user) const;
    std::vector<BlockRow> active_blocks(Time now) const;
    std::vector<SuspensionRow> active_suspensions(Time now) const;

    std::vector<SecurityDecision> take_decisions();
    // Drops idle state (full buckets, no recent failures, low score, no connections) and
    // blocks past offence memory.
    void sweep(Time now);

    struct Counters {
        uint64_t rate_limited = 0;
        uint64_t login_failures = 0;
        uint64_t bad_frames = 0;
        uint64_t signatures = 0;
        uint64_t conns_refused_blocked = 0;
        uint64_t conns_refused_too_many = 0;
        uint64_t blocks = 0;
        uint64_t suspensions = 0;
        uint64_t name_locks = 0;
    };
    const Counters& counters() const { return counters_; }
    size_t tracked_ips() const { return ips_.size(); }
    size_t tracked_names() const { return names_.size(); }
    size_t tracked_accounts() const { return accounts_.size(); }

  private:
    // Tokens are counted in units of 1/60,000,000 token, so that refilling `per_min` tokens
    // a minute adds exactly `per_min` units a microsecond: integer arithmetic, no drift.
    struct Bucket {
        int64_t units = -1;  // -1: never used (full)
        int64_t last_us = 0;
    };
    struct Score {
        int64_t units = 0;  // points * 60,000,000
        int64_t last_us = 0;
        ThreatLevel reported = ThreatLevel::low;
    };
    struct IpState {
        std::string prefix;  // an IPv6 /64's /48 key ("" for IPv4 and for the /48 itself)
        Bucket bucket;
        uint32_t conns = 0;
        Fifo<int64_t> connects;        // mono µs of recent accepted connects
        Fifo<int64_t> login_failures;  // mono µs
        Fifo<int64_t> registrations;   // mono µs
        Score score;
        int64_t seen_us = 0;
    };
    // Failed password logins for a name, and its lock.
    struct Lock {
        Fifo<int64_t> failures;
        int64_t locked_until_us = 0;  // mono
    };
    struct NameState {
        Lock lock;
        int64_t seen_us = 0;
    };
    struct AccountState {
        Bucket bucket;
        Score score;
        struct Said {
            uint64_t hash;
            RoomId room;
            int64_t at_us;
        };
        Fifo<Said> said;
        Fifo<std::pair<UserId, int64_t>> dm_to;
        Fifo<int64_t> churn;
        Fifo<int64_t> invitations;
        Lock lock;  // the account's name
        int64_t seen_us = 0;
    };

    IpState& ip_state(const std::string& ip, Time now);
    // The /48 tier of an IPv6 address's entry (nullptr for IPv4), marked seen.
    IpState* prefix_state(const IpState& s, Time now);
    const IpState* prefix_state(const std::string& ip) const;
    // How long a new connection must wait under `s`'s caps (limits times `factor`).
    std::optional<int64_t> connection_wait(IpState& s, uint32_t factor, Time now) const;
    void admit(IpState& s, const std::string& key, Time now);
    void release(const std::string& key);
    std::optional<int64_t> registration_wait(const IpState& s, uint32_t factor, Time now) const;
    // Counts a failed login under a lock; true when it locks.
    bool lock_failure(Lock& l, Time now);
    std::optional<int64_t> lock_wait(const Lock* l, const std::string& name_key, Time now) const;
    void login_failed_at(const std::string& key, uint32_t factor, Time now);
    AccountState& account_state(UserId user, Time now);
    // µs until `weight` tokens are there (nullopt: now), after refilling.
    std::optional<int64_t> bucket_wait(Bucket& b, uint32_t per_min, uint32_t burst, uint32_t weight,
                                       int64_t now_us) const;
    static void take(Bucket& b, uint32_t weight);
    // µs until the address's, its /48's (if any) and the account's (if any) buckets all hold
    // `weight` tokens (nullopt: now), after refilling them.
    std::optional<int64_t> wait_all(IpState& s, IpState* p, AccountState* a, uint32_t weight,
                                    int64_t now_us) const;
    void trim(Fifo<int64_t>& d, int64_t window_ms, int64_t now_us) const;
    int64_t points_now(const Score& s, int64_t now_us) const;
    ThreatLevel level_of(int64_t units) const;
    void add_ip_points(const std::string& ip, uint32_t points, std::string_view reason, Time now);
    void add_account_points(const std::string& ip, UserId user, uint32_t points,
                            std::string_view reason, Time now);
    // Adds points to a score; returns the level newly reached, if it went up.
    std::optional<ThreatLevel> add_points(Score& s, uint32_t points, int64_t now_us);
    void auto_block(const std::string& ip, std::string reason, Time now);
    void count_behaviour(const std::string& ip, UserId user,
                         Fifo<int64_t> AccountState::*events, uint32_t free, uint32_t points,
                         std::string_view reason, Time now);
    int64_t ladder_ms(uint32_t offences) const;

    const Config& config_;
    Cidrs allowlist_;
    LruMap<IpState> ips_;
    LruMap<NameState> names_;
    std::unordered_map<std::string, uint32_t> logins_running_;
    std::unordered_map<UserId, AccountState> accounts_;
    std::map<std::string, BlockRow> blocks_;
    std::map<UserId, SuspensionRow> suspensions_;
    std::vector<SecurityDecision> decisions_;
    Counters counters_;
    int64_t swept_us_ = -1'000'000'000;
};

}  // namespace warren
