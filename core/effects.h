// Effects: work the core hands to its driver because it must not run on the event loop
// (argon2id password hashing) or touches storage (reads of stored messages and audit rows),
// and the results the driver brings back. The Output variant (server.h) carries them out.
#pragma once

#include <string>
#include <variant>

#include "core/chat/records.h"

namespace warren {

enum class HashMode { create, verify };

struct HashSpec {
    HashMode mode = HashMode::create;
    std::string password;
    // verify: the PHC string to check against; empty means "no such user": the hasher
    // verifies against a dummy hash so that the answer takes the same time, and fails.
    std::string phc;
};

struct HashResult {
    bool ok = false;          // create: hashed; verify: the password matches
    bool overloaded = false;  // the hashing pool was full: nothing was computed
    std::string phc;          // create: the new PHC string
};

// What an effect brought back.
using EffectResult = std::variant<HashResult, QueryRows>;

}  // namespace warren
