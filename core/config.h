// Config: every tunable and every limit (`*_max`) of the core, in one place.
//
// Drivers build one Config (defaults below, overridden from TOML by app/) and pass it to the
// core by value. Each limit names the container or input it bounds and the action when full.
// The static_asserts record how the defaults relate to each other.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace warren {

struct Config {
    // Framing. A line longer than this is refused (FRAME_TOO_LARGE, then close); it is never
    // buffered whole.
    size_t max_frame_bytes = 65536;
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
    // Users who may delete any message (case-insensitive names).
    std::vector<std::string> admin_usernames;
    // REQUEST_USER_LIST answers at most this many users (sorted by name).
    uint32_t user_list_max = 1000;

    // Sessions.
    int64_t session_ttl_ms = 30LL * 24 * 3600 * 1000;

    // Invitations: lifetime, and pending ones per invitee (past it INVITE_USER is CONFLICT).
    int64_t invitation_ttl_ms = 7LL * 24 * 3600 * 1000;
    size_t invitations_pending_max = 100;
    size_t token_bytes = 32;  // 256 bits of entropy per session token

    // Per connection: replies not yet released (waiting for a commit, a hash or a query) plus
    // lines parked while a password hash runs. Past it the connection is closed
    // (DISCONNECT SLOW_CONSUMER): the client pipelines far more than it reads.
    size_t conn_pending_max = 1024;
    // Per connection: bytes handed to the driver and not yet reported `sent`. Past it the
    // connection is closed (DISCONNECT SLOW_CONSUMER).
    size_t outbound_bytes_max = 4 * 1024 * 1024;

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

    // Transactions: mutations in one batch (group commit), batches queued behind the one in
    // flight. Past batches_queued_max, state-changing requests answer UNAVAILABLE.
    size_t batch_mutations_max = 4096;
    size_t batches_queued_max = 64;
    // Hash jobs (argon2id) waiting or running; past it REGISTER/LOGIN answer UNAVAILABLE.
    size_t hash_jobs_max = 256;
    // Storage queries (HISTORY pages) in flight; past it HISTORY answers UNAVAILABLE.
    size_t queries_max = 256;
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
};

static_assert(Config{}.page_default <= Config{}.search_page_max);
static_assert(Config{}.page_default <= Config{}.rooms_page_max);
static_assert(Config{}.page_default <= Config{}.history_page_max);
static_assert(Config{}.text_max_bytes < Config{}.max_frame_bytes);
static_assert(Config{}.history_page_max <= Config{}.room_cache_messages_max);
static_assert(Config{}.commit_attempts_max >= 1);
static_assert(Config{}.commit_backoff_base_ms <= Config{}.commit_backoff_cap_ms);

}  // namespace warren
