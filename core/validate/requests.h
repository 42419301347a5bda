// The request rule table: for every op, its arguments, each with a kind (username, room
// name, text, message id, ...), whether it is required, and the op's rate-limit weight.
//
// validate_request() runs before an op reaches the chat logic (PROTOCOL.md check order:
// after login, before existence and permission). It returns the first refusal: the field,
// a message for the BAD_REQUEST answer, and whether the value carries an attack signature
// (which adds to the sender's threat score). Only structural fields (names, ids, emoji,
// cursors, tokens) are inspected for signatures; message text, topics, passwords and search
// queries are data and never are. Pure; limits come from Config.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "core/config.h"
#include "core/protocol/codes.h"
#include "core/protocol/request.h"

namespace warren {

enum class FieldKind {
    username,
    password,
    room,
    text,
    topic,
    emoji,
    visibility,
    token,
    query,
    cursor,      // a room name key
    message_id,  // >= 1
    position,    // a message id bound for paging, >= 0
    invitation,  // >= 1
    limit,       // >= 1; clamped later
};

struct FieldRule {
    std::string_view name;
    FieldKind kind;
    bool required = false;
};

struct OpRule {
    Op op;
    std::span<const FieldRule> fields;
    uint32_t weight = 1;  // tokens a request takes from the rate-limit buckets
};

const OpRule& op_rule(Op op);

struct Rejection {
    std::string field;
    std::string message;
    bool signature = false;
};

std::optional<Rejection> validate_request(Op op, Args& args, const Config& config);

// NUL or other controls, path traversal, SQL or script fragments: never part of a valid
// structural value, typical of probes.
bool has_attack_signature(std::string_view value);

}  // namespace warren
