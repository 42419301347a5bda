// IRC lines: a client's line parsed (RFC 1459 framing with IRCv3 message tags), and the
// pieces a server line is built from. Pure; no state.
//
// A parsed Message holds views into the line it came from (tag values are unescaped into
// owned strings): it is valid only while that line is.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace warren::irc {

// RFC 1459: 512 bytes with "\r\n"; IRCv3 message-tags: up to 8191 more for the tags.
inline constexpr size_t line_max_bytes = 512;
inline constexpr size_t tags_max_bytes = 8191;
// A client's own tags may take at most 4094 of those (message-tags: "Size limit").
inline constexpr size_t client_tags_max_bytes = 4094;
// At most this many parameters (RFC 2812: 15).
inline constexpr size_t params_max = 15;

struct Message {
    std::vector<std::pair<std::string_view, std::string>> tags;  // key, unescaped value
    std::string_view source;
    std::string_view command;  // as sent; compare with command_is()
    std::vector<std::string_view> params;

    bool command_is(std::string_view upper) const;
    // The tag's value ("" for a tag without one), if the line has it.
    std::optional<std::string_view> tag(std::string_view key) const;
    // The i-th parameter, or "" when there are fewer.
    std::string_view param(size_t i) const { return i < params.size() ? params[i] : ""; }
};

enum class ParseError { none, empty, too_long };

// One line, without its "\r\n". Fails when there is no command, or when the tags or the rest
// are longer than IRC allows (417 ERR_INPUTTOOLONG).
std::optional<Message> parse(std::string_view line, ParseError* why = nullptr);

// IRCv3 tag value escaping (';' '\s' '\\' '\r' '\n').
std::string escape_tag_value(std::string_view v);
std::string unescape_tag_value(std::string_view v);

// ASCII case folding (CASEMAPPING=ascii), as Warren compares names.
bool iequals(std::string_view a, std::string_view b);
std::string upper(std::string_view s);

// A middle parameter may not be empty, start with ':' or hold a space; such a value can only
// be the trailing one.
bool needs_trailing(std::string_view v);

// Milliseconds since the epoch as IRCv3 server-time: 2026-12-01T21:30:00.123Z.
std::string server_time(int64_t wall_ms);

// Splits text into pieces of at most `max` bytes, never inside a UTF-8 sequence.
std::vector<std::string_view> split_utf8(std::string_view text, size_t max);

}  // namespace warren::irc
