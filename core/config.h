// Config: every tunable and every limit (`*_max`) of the core, in one place.
//
// Drivers build one Config (defaults below, overridden from TOML by app/) and pass it to the
// core by value. Each limit names the container or input it bounds and the action when full.
// The static_asserts record how the defaults relate to each other.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace warren {

// A short name held in place, so that Config stays a literal type (its static_asserts below
// evaluate Config{}), which a std::string member would prevent under some compilers.
class ShortName {
  public:
    static constexpr size_t max = 63;
    constexpr ShortName(std::string_view s) : size_(s.size() < max ? s.size() : max) {  // NOLINT
        for (size_t i = 0; i < size_; ++i) bytes_[i] = s[i];
    }
    constexpr std::string_view view() const { return {bytes_, size_}; }
    std::string str() const { return std::string(view()); }

  private:
    char bytes_[max] = {};
    size_t size_ = 0;
};

struct Config {
    // Framing. A line longer than this is refused (FRAME_TOO_LARGE, then close); it is never
    // buffered whole.
    size_t max_frame_bytes = 65536;
    // The IRC front door: the source of server lines (a name no user can take: it has a dot).
    ShortName irc_server_name{"warren.local"};
    // An IRC client without SASL or PASS chats as a guest under its nick (docs/IRC.md).
    bool irc_guests = true;
    // IRC keepalive: a logged-in IRC connection that sends nothing for irc_ping_interval_ms is
    // sent PING; if it still sends nothing for irc_ping_timeout_ms more, it is closed.
    int64_t irc_ping_interval_ms = 120'000;
    int64_t irc_ping_timeout_ms = 60'000;
    // IRC flood control: a line past the rate limit waits for its tokens (fakelag) instead of
    // being refused, and the connection is not read meanwhile; more than this much of its
    // input waiting (a paste of more than ~200 lines) closes it with ERROR :Excess Flood.
    size_t irc_flood_bytes_max = 16 * 1024;
    // IRCv3 STS (docs/IRC.md "TLS"): with a duration, plaintext IRC clients are told to come
    // back on irc_sts_port over TLS, and TLS clients to keep doing so for that many seconds.
    // 0: no policy is advertised.
    int64_t irc_sts_duration_s = 0;
    uint16_t irc_sts_port = 0;
    // The bad_frames_max-th malformed line within bad_frames_window_ms closes the connection.
    uint32_t bad_frames_max = 3;
    int64_t bad_frames_window_ms = 60'000;

    // Names and text (PROTOCOL.md "Names and limits").
    size_t username_min = 3, username_max = 32;
    size_t password_min = 8, password_max = 128;
    size_t room_name_max = 50;
    size_t text_max_bytes = 4000;
    size_t topic_max_bytes = 200;

    // Paging: larger requested limits are clamped to these.
    uint32_t history_page_max = 100;
    uint32_t rooms_page_max = 50;
    uint32_t page_default = 50;
    // SEARCH: query text length in bytes; results per page.
    size_t search_query_max_bytes = 200;
    uint32_t search_page_max = 50;
    // Distinct emoji on one message (past it REACT is CONFLICT).
    size_t emoji_per_message_max = 50;
    size_t emoji_max_bytes = 32;
    // Users who may delete any message (case-insensitive names). Bound to the accounts that
    // hold these names at start; a name no account holds is reserved (REGISTER: FORBIDDEN).
    std::vector<std::string> admin_usernames;
    // REQUEST_USER_LIST answers at most this many users (sorted by name).
    uint32_t user_list_max = 1000;

    // Sessions: lifetime, and sessions one account may hold (a new one past it ends the one
    // that expires first, closing its connections with DISCONNECT SESSION_REVOKED).
    int64_t session_ttl_ms = 30LL * 24 * 3600 * 1000;
    size_t sessions_per_user_max = 100;
    size_t certificates_per_user_max = 8;  // TLS client certificates bound to one account
    // Rooms one account may own (past it CREATE_ROOM is CONFLICT).
    size_t rooms_owned_max = 1000;

    // Invitations: lifetime, and pending ones per inviter (past it INVITE_USER is CONFLICT).
    int64_t invitation_ttl_ms = 7LL * 24 * 3600 * 1000;
    size_t invitations_pending_max = 100;
    size_t token_bytes = 32;  // 256 bits of entropy per session token

    // Per connection: replies not yet released (waiting for a commit, a hash or a query) plus
    // lines parked while a password hash runs. Past it the connection is closed
    // (DISCONNECT SLOW_CONSUMER): the client pipelines far more than it reads.
    size_t conn_pending_max = 1024;
    // Per connection: bytes handed to the driver and not yet reported `sent`. A slow
    // consumer (DISCONNECT SLOW_CONSUMER) is a member's connection that holds more than
    // outbound_bytes_stalled_max (or outbound_bytes_max if smaller) and has read nothing
    // for outbound_stall_ms, or one that holds more than outbound_bytes_max, reading or not
    // (the memory bound; a burst from a busy room to a reader that keeps reading stays
    // below it). A connection not logged in is closed past the smaller guest cap. All
    // connections together hold at most outbound_bytes_total_max: past it the ones holding
    // the most are closed first.
    size_t outbound_bytes_max = 16 * 1024 * 1024;
    size_t outbound_bytes_stalled_max = 1024 * 1024;
    int64_t outbound_stall_ms = 10'000;
    size_t outbound_bytes_guest_max = 64 * 1024;
    size_t outbound_bytes_total_max = 512 * 1024 * 1024;
    // Backpressure (see Connections): past this many bytes owed to all connections together
    // (queued for writing, and what the batches in flight will deliver) the senders adding to
    // them wait until it is down to half; a reading connection behind by more than its share
    // of it (at least outbound_hold_share_min, at most outbound_bytes_stalled_max) holds back
    // the sender it is behind on. Far below outbound_bytes_total_max: what is owed stays
    // small enough to be written from memory already in use, and nobody is shed for being
    // merely behind. Used up to half of outbound_bytes_total_max.
    size_t outbound_bytes_hold = 16 * 1024 * 1024;
    static constexpr size_t outbound_hold_share_min = 64 * 1024;

    // Memory: newest messages kept per room for HISTORY and reply checks; older pages are
    // read from storage through Query.
    size_t room_cache_messages_max = 256;
    // Direct conversations: newest messages kept per conversation, and conversations kept;
    // past conversations_cached_max the least recently used fully durable one is dropped
    // from memory (its messages stay in storage).
    size_t conversation_cache_messages_max = 32;
    size_t conversations_cached_max = 4096;
    // Messages older than the logs hold, kept after being read from storage for an edit,
    // deletion, reaction or thread (least recently used ones without pending changes leave).
    size_t old_messages_cached_max = 1024;

    // Transactions: mutations in one batch (group commit); batches pending in all, in flight
    // or filling. Past batches_queued_max, state-changing requests answer UNAVAILABLE.
    size_t batch_mutations_max = 4096;
    size_t batches_queued_max = 64;
    // Pipelined commits: up to commits_in_flight_max batches in storage's queue at once. The
    // open batch joins ones in flight only once it holds commit_pipeline_min changes: storage
    // works one commit after another, so sending small batches early would only queue them
    // (each paying a commit's fixed cost, a sync under synchronous = full) and add to every
    // reply's wait; a full one is worth sending, so storage never waits for the core.
    size_t commits_in_flight_max = 2;
    size_t commit_pipeline_min = 128;
    // At most one new batch per commit_coalesce_us while the previous ones are done: a batch
    // that would go less than that after the one before waits for the rest of the window (or
    // until it holds commit_pipeline_min changes), so a steady stream of single messages
    // shares commits instead of paying a transaction, a storage hand-off and a completion
    // each; a quiet server's batch goes at once. 0: every batch at once.
    int64_t commit_coalesce_us = 0;
    // Hash jobs (argon2id) waiting or running; past it REGISTER/LOGIN answer UNAVAILABLE.
    size_t hash_jobs_max = 256;
    // Storage reads in flight (history pages, old messages, threads, searches, audit pages),
    // in all and per account; past either the request answers UNAVAILABLE.
    size_t queries_max = 256;
    size_t queries_per_user_max = 4;
    int64_t retry_after_ms = 1000;

    // Storage faults. A batch that fails transiently (SQLITE_BUSY and the like) is retried up
    // to commit_attempts_max times in all, after a delay drawn uniformly from
    // [0, min(cap, base * 2^attempt)] ("full jitter"). A batch that fails permanently or runs
    // out of attempts is rolled back; breaker_failures_max such failures in a row open the
    // circuit breaker for breaker_open_ms, during which writes are refused at once.
    uint32_t commit_attempts_max = 4;
    int64_t commit_backoff_base_ms = 20;
    int64_t commit_backoff_cap_ms = 2000;
    uint32_t breaker_failures_max = 3;
    int64_t breaker_open_ms = 5000;

    // ---- security (core/security) ----
    // Token buckets: tokens refill at *_per_min, hold at most *_burst. A request takes as
    // many tokens as its op's weight in the op table (core/ops/ops.def).
    uint32_t rate_user_per_min = 60, rate_user_burst = 30;
    uint32_t rate_ip_per_min = 100, rate_ip_burst = 50;
    // Connections per IP (IPv6 per /64): open at once, and new ones per window.
    uint32_t conns_per_ip_max = 16;
    uint32_t connects_per_ip_window_max = 30;
    int64_t connects_window_ms = 10'000;
    // A connection must log in within login_timeout_ms; a logged-in one that sends no request
    // for idle_timeout_ms is closed (DISCONNECT IDLE_TIMEOUT).
    int64_t login_timeout_ms = 30'000;
    int64_t idle_timeout_ms = 15LL * 60 * 1000;
    // Login throttling: name_failures_max failures for one name (existing or not) within
    // name_failures_window_ms lock password logins for that name for name_lock_ms;
    // ip_login_failures_max failures from one IP within ip_login_failures_window_ms block it.
    uint32_t name_failures_max = 5;
    int64_t name_failures_window_ms = 15LL * 60 * 1000;
    int64_t name_lock_ms = 15LL * 60 * 1000;
    uint32_t ip_login_failures_max = 10;
    int64_t ip_login_failures_window_ms = 10LL * 60 * 1000;
    // Registration: open or closed; at most registrations_per_ip_max per IP per window.
    bool registration_open = true;
    uint32_t registrations_per_ip_max = 5;
    int64_t registrations_window_ms = 60LL * 60 * 1000;
    // Threat scores (per IP and per account) decay linearly; levels are thresholds on them.
    // Reaching the critical level blocks the IP or suspends the account for the next step of
    // the ladder (repeat offences within offence_memory_ms climb it).
    uint32_t threat_medium = 25, threat_high = 50, threat_critical = 100;
    uint32_t threat_decay_per_min = 10;
    uint32_t points_bad_frame = 10, points_signature = 25, points_rate_limited = 2,
             points_login_failure = 5, points_conn_refused = 5, points_repeated_text = 20,
             points_dm_spread = 15, points_churn = 10, points_invite_spam = 20;
    std::vector<int64_t> block_ladder_ms = {15LL * 60 * 1000, 60LL * 60 * 1000,
                                            4LL * 60 * 60 * 1000, 24LL * 60 * 60 * 1000};
    int64_t offence_memory_ms = 7LL * 24 * 60 * 60 * 1000;
    // Behaviour: the same text in repeated_text_rooms distinct rooms within behaviour_window_ms;
    // direct messages to more than dm_recipients_max distinct users within the window from an
    // account younger than new_account_ms; more than churn_max joins and leaves, or
    // invitations_max invitations, within the window.
    uint32_t repeated_text_rooms = 3;
    uint32_t dm_recipients_max = 10;
    int64_t new_account_ms = 24LL * 60 * 60 * 1000;
    uint32_t churn_max = 10;
    uint32_t invitations_max = 10;
    int64_t behaviour_window_ms = 10LL * 60 * 1000;
    // Longest block or suspension an admin may order with a duration (longer ones are refused;
    // omitting the duration means "until lifted").
    int64_t admin_duration_max_ms = 10LL * 366 * 24 * 3600 * 1000;
    // CIDRs never blocked or connection-capped (rate limits still apply). An IPv6 entry
    // narrower than /64 covers its whole /64, since security state is kept per /64.
    std::vector<std::string> allowlist;
    // Tracked security state: addresses and login names kept in memory. Past the limit the
    // least recently seen entry leaves (an address with open connections never does: the
    // table may exceed its bound by the addresses connected, at most 2 x connections_max).
    size_t security_ips_max = 65536;
    size_t security_names_max = 65536;
    // IPv6's second tier: every address also counts against its /ipv6_prefix_bits network,
    // whose limits (connections, new connections, requests, registrations, login failures)
    // are ipv6_prefix_factor times an address's.
    uint32_t ipv6_prefix_bits = 48;
    uint32_t ipv6_prefix_factor = 8;
    size_t blocks_max = 65536;
    // Audit log: rows older than audit_retention_ms, or beyond the newest audit_rows_max, are
    // pruned. Admin reads page at most audit_page_max rows.
    int64_t audit_retention_ms = 90LL * 24 * 60 * 60 * 1000;
    // Message retention (core/chat/retention.h): messages older than retention_ms (0: kept
    // for ever; direct messages follow it too), or than a room's own entry in
    // room_retention_ms (by room name; 0 there: that room keeps its messages for ever), are
    // deleted in transactions of their own between the clients' batches, each at most
    // retention_batch_max messages over at most retention_scopes_max rooms. A round over
    // every room that deleted nothing waits retention_interval_ms before the next. Reactions
    // and search entries go with their messages.
    int64_t retention_ms = 0;
    std::vector<std::pair<std::string, int64_t>> room_retention_ms;
    uint32_t retention_batch_max = 500;
    uint32_t retention_scopes_max = 64;
    int64_t retention_interval_ms = 60'000;
    // Automatic security rows waiting while storage refuses writes; past it the oldest are
    // dropped (counted as audit_unpersisted). They are written when storage takes writes again.
    size_t security_backlog_max = 10'000;
    int64_t audit_rows_max = 1'000'000;
    uint32_t audit_page_max = 500;
    // Security housekeeping (timeouts, pruning) runs this often while connections are open.
    int64_t sweep_interval_ms = 1000;
    // Connections open at once, from everyone; past it new ones get TOO_MANY_CONNECTIONS.
    size_t connections_max = 10'000;

    // ---- monitoring (core/monitor) ----
    // The alert rule table is evaluated this often (while there is anything to watch).
    int64_t alert_eval_ms = 5000;
    size_t alert_history_max = 256;
    // Per op, over the last minute, with at least alert_min_samples requests: p99 latency
    // (Warning, Critical) and the share of server-side errors (UNAVAILABLE, INTERNAL).
    int64_t alert_p99_warning_ms = 500;
    int64_t alert_p99_critical_ms = 5000;
    uint32_t alert_min_samples = 20;
    uint32_t alert_error_rate_pct = 5;
    // Open connections above this share of connections_max (Warning).
    uint32_t alert_connections_pct = 90;
    // Resident memory (Warning), blocks made in the last minute (Warning), breaker open for
    // this long (Emergency; Critical from the moment it opens).
    uint64_t alert_rss_bytes = 2ULL * 1024 * 1024 * 1024;
    uint32_t alert_block_surge = 10;
    int64_t alert_breaker_emergency_ms = 60'000;
};

// The same config with every abuse limit out of the way: rate limits and connection caps
// too large to reach, threat scoring off, every address allowlisted. For workloads that
// measure or check something else (fault simulations, the chat model, fuzzing the chat
// logic, throughput benchmarks); never for a deployed server.
inline Config without_abuse_limits(Config c) {
    constexpr uint32_t huge = 1'000'000'000;
    c.rate_user_per_min = c.rate_ip_per_min = huge;
    c.rate_user_burst = c.rate_ip_burst = huge;
    c.conns_per_ip_max = c.connects_per_ip_window_max = huge;
    c.registrations_per_ip_max = huge;
    c.name_failures_max = c.ip_login_failures_max = huge;
    c.points_bad_frame = c.points_signature = c.points_rate_limited = c.points_login_failure =
        c.points_conn_refused = c.points_repeated_text = c.points_dm_spread = c.points_churn =
            c.points_invite_spam = 0;
    c.allowlist = {"0.0.0.0/0", "::/0"};
    return c;
}

static_assert(Config{}.page_default <= Config{}.search_page_max);
static_assert(Config{}.page_default <= Config{}.rooms_page_max);
static_assert(Config{}.page_default <= Config{}.history_page_max);
static_assert(Config{}.text_max_bytes < Config{}.max_frame_bytes);
static_assert(Config{}.history_page_max <= Config{}.room_cache_messages_max);
static_assert(Config{}.commit_attempts_max >= 1);
static_assert(Config{}.commit_backoff_base_ms <= Config{}.commit_backoff_cap_ms);
static_assert(Config{}.threat_medium < Config{}.threat_high);
static_assert(Config{}.threat_high < Config{}.threat_critical);
static_assert(Config{}.rate_user_burst >= 1 && Config{}.rate_ip_burst >= 1);
static_assert(Config{}.outbound_bytes_guest_max <= Config{}.outbound_bytes_stalled_max);
static_assert(Config{}.outbound_bytes_stalled_max <= Config{}.outbound_bytes_max);
static_assert(Config{}.outbound_bytes_guest_max <= Config{}.outbound_bytes_max);
static_assert(Config{}.outbound_bytes_max <= Config{}.outbound_bytes_total_max);
static_assert(Config{}.outbound_bytes_hold <= Config{}.outbound_bytes_total_max / 2);

}  // namespace warren
