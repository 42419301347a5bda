// The closed sets of the wire contract (PROTOCOL.md): error codes and DISCONNECT reasons.
// Each value maps to exactly one wire string. The counts are derived from the lists, so the
// monitor's per-code slots can never be indexed out of bounds.
#pragma once

#include <cstddef>
#include <cstdint>
#include <iterator>
#include <optional>
#include <string_view>

namespace warren {

#define WARREN_ERROR_CODES(X)                     \
    X(bad_frame, "BAD_FRAME")                     \
    X(frame_too_large, "FRAME_TOO_LARGE")         \
    X(bad_request, "BAD_REQUEST")                 \
    X(unknown_op, "UNKNOWN_OP")                   \
    X(unauthenticated, "UNAUTHENTICATED")         \
    X(invalid_credentials, "INVALID_CREDENTIALS") \
    X(forbidden, "FORBIDDEN")                     \
    X(not_found, "NOT_FOUND")                     \
    X(conflict, "CONFLICT")                       \
    X(rate_limited, "RATE_LIMITED")               \
    X(blocked, "BLOCKED")                         \
    X(unavailable, "UNAVAILABLE")                 \
    X(internal, "INTERNAL")

// Expanders for the lists: each entry is (id, wire name).
#define WARREN_ENUM_ID(id, wire) id,
#define WARREN_ENUM_WIRE(id, wire) wire,

enum class ErrorCode : uint8_t { WARREN_ERROR_CODES(WARREN_ENUM_ID) };
inline constexpr std::string_view error_code_names[] = {WARREN_ERROR_CODES(WARREN_ENUM_WIRE)};
inline constexpr size_t error_code_count = std::size(error_code_names);

constexpr std::string_view error_code_name(ErrorCode c) {
    return error_code_names[static_cast<size_t>(c)];
}
std::optional<ErrorCode> error_code_from_name(std::string_view name);

// Why the server closes a connection; sent as DISCONNECT {"reason": ...}.
#define WARREN_DISCONNECT_REASONS(X)                \
    X(idle_timeout, "IDLE_TIMEOUT")                 \
    X(slow_consumer, "SLOW_CONSUMER")               \
    X(frame_too_large, "FRAME_TOO_LARGE")           \
    X(bad_frames, "BAD_FRAMES")                     \
    X(blocked, "BLOCKED")                           \
    X(too_many_connections, "TOO_MANY_CONNECTIONS") \
    X(shutdown, "SHUTDOWN")                         \
    X(session_revoked, "SESSION_REVOKED")           \
    X(excess_flood, "EXCESS_FLOOD")

enum class DisconnectReason : uint8_t { WARREN_DISCONNECT_REASONS(WARREN_ENUM_ID) };
inline constexpr std::string_view disconnect_reason_names[] = {
    WARREN_DISCONNECT_REASONS(WARREN_ENUM_WIRE)};

constexpr std::string_view disconnect_reason_name(DisconnectReason r) {
    return disconnect_reason_names[static_cast<size_t>(r)];
}

}  // namespace warren
