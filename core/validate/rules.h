// Argument rules of PROTOCOL.md "Names and limits", one pure function per kind of value.
//
// Each returns std::nullopt when the value is acceptable, or a human-readable reason the
// caller puts in a BAD_REQUEST error with the field's name. Limits come from Config. Message
// text is never rewritten here: it is either accepted exactly or refused.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "core/config.h"

namespace warren {

using Refusal = std::optional<std::string>;

Refusal check_username(std::string_view s, const Config& c);
// A guest's nick: a username's characters and maximum, from one character.
Refusal check_nick(std::string_view s, const Config& c);
Refusal check_password(std::string_view s, const Config& c);
Refusal check_room_name(std::string_view s, const Config& c);
Refusal check_text(std::string_view s, const Config& c);
Refusal check_topic(std::string_view s, const Config& c);
Refusal check_emoji(std::string_view s, const Config& c);
// Turns user search text into an FTS5 query matching every word (each one quoted, so FTS5
// syntax in the text is just text). Empty when the text has no words.
std::string fts_match(std::string_view text);

// A certificate fingerprint as stored: 64 lowercase hex digits. Accepts them in either case,
// bare or as 32 pairs joined by ':' (as clients show them); empty when it is neither.
std::string canonical_fingerprint(std::string_view s);

// Case-insensitive identity of user and room names (ASCII only, by the name rules).
std::string name_key(std::string_view name);

// True when every byte sequence in s is well-formed UTF-8 (no overlongs, no surrogates).
bool is_valid_utf8(std::string_view s);

}  // namespace warren
