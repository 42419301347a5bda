// Signals: behaviour the chat machine reports and the security layer scores or counts
// (security/admission.h hands each one to the Guard with the request's address and account).
#pragma once

#include <cstdint>
#include <string>

#include "core/base.h"

namespace warren {

// Behaviour the security layer scores or counts; the caller hands each to the Guard with
// the request's address and account.
struct Signal {
    enum class Kind {
        registered,         // a REGISTER started hashing
        login_started,      // a password verification started for name_key
        login_finished,     // it ended (whatever the outcome)
        login_failed,       // wrong password or no such user
        login_succeeded,    // the password matched
        room_message,       // room, text_hash
        direct_message,     // to, account_created_ms
        membership_change,  // a join or a leave
        invitation_sent,    // attempted, refused ones too
    };
    Kind kind;
    std::string name_key;
    UserId account = 0;  // login_*: the account of that name, if one exists
    RoomId room = 0;
    uint64_t text_hash = 0;
    UserId to = 0;
    int64_t account_created_ms = 0;
};

}  // namespace warren
