// Admission: the security checks every request passes once its op is known, in PROTOCOL.md's
// order (blocked address, suspended account, rate limits, logged in), and the hand-over of
// the chat machine's behaviour signals to the Guard. Both work on the Guard only; what the
// Guard decides on its own (blocks, suspensions) is carried out by Enforcement.
#pragma once

#include <optional>
#include <string>

#include "core/chat/signals.h"
#include "core/ops/ops.h"
#include "core/ops/replies.h"
#include "core/security/guard.h"

namespace warren {

// nullopt: the request may proceed to validation; otherwise the refusal to answer.
std::optional<Error> admit_request(Guard& guard, const std::string& ip_key,
                                   std::optional<UserId> user, Op op, Time now);

// Hands one behaviour signal to the Guard, for the request's address and account.
void observe(Guard& guard, const Signal& s, const std::string& ip_key, std::optional<UserId> user,
             Time now);

}  // namespace warren
