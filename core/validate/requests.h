// Request validation: a decoded request becomes a `Validated` one, or a Rejection.
//
// The rules per argument come from the request structs' field lists (core/ops/requests.h):
// each argument's kind names its rule (rules.h: usernames, room names, text, ...); a plain
// member is required; cross-field rules run last. PROTOCOL.md's order holds: validation runs
// after the blocked / rate-limit / logged-in checks, before existence and permission.
// A structural value (names, ids, emoji, cursors, tokens) that breaks its field's grammar is
// also scanned for attack signatures, which makes the Rejection score against the sender; a
// value that obeys its grammar never scores, and message text, topics, passwords and search
// queries are data and never do.
//
// A `Validated` can only be made here, so a handler never sees an argument that broke a rule:
// the type is the check at the boundary. Pure; limits come from Config.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "core/config.h"
#include "core/ops/requests.h"

namespace warren {

// Declared in core/protocol/request.h, which brings simdjson: only the files that decode JSON
// include it, so a change here or there rebuilds less and most of core/ compiles without it.
class Args;

struct Rejection {
    std::string field;
    std::string message;
    bool signature = false;
};

class Validated {
  public:
    // Only this file's functions can make a Key, so only they can make a Validated.
    class Key {
        Key() = default;
        friend std::variant<Validated, Rejection> decode_request(Op op, Args& args,
                                                                 const Config& config);
        friend std::variant<Validated, Rejection> validate(Request request, const Config& config);
    };

    Validated(Key, Op op) : request_(empty_request(op)) {}
    Validated(Key, Request r) : request_(std::move(r)) {}
    const Request& request() const { return request_; }
    // The handler that runs it may move strings out once every check has passed.
    Request& request() { return request_; }
    Op op() const { return op_of(request_); }

  private:
    Request request_;
};

// JSON front door: reads the op's arguments from `args` into its struct, checking each one as
// it is read (the first bad argument answers).
std::variant<Validated, Rejection> decode_request(Op op, Args& args, const Config& config);
// Typed front doors (a request struct already filled): the same value and cross-field rules.
std::variant<Validated, Rejection> validate(Request request, const Config& config);

// NUL or other controls, path traversal, SQL or script fragments: never part of a valid
// structural value, typical of probes.
bool has_attack_signature(std::string_view value);

}  // namespace warren
