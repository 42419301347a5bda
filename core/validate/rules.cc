#include "core/validate/rules.h"

#include <cstdint>

namespace warren {

namespace {

bool is_name_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
}

Refusal check_name(std::string_view s, size_t min, size_t max, const char* what) {
    if (s.size() < min || s.size() > max)
        return std::string(what) + " must be " + std::to_string(min) + " to " +
               std::to_string(max) + " characters";
    for (char c : s)
        if (!is_name_char(c))
            return std::string(what) + " may contain only letters, digits, '_' and '-'";
    return std::nullopt;
}

// Checks C0 controls other than \n and \t, and DEL.
bool has_forbidden_control(std::string_view s) {
    for (char ch : s) {
        auto c = static_cast<unsigned char>(ch);
        if ((c < 0x20 && c != '\n' && c != '\t') || c == 0x7F) return true;
    }
    return false;
}

}  // namespace

bool is_valid_utf8(std::string_view s) {
    const auto* p = reinterpret_cast<const uint8_t*>(s.data());
    const auto* end = p + s.size();
    while (p < end) {
        uint8_t c = *p;
        if (c < 0x80) {
            ++p;
            continue;
        }
        int n = 0;
        uint32_t cp = 0;
        if ((c & 0xE0) == 0xC0)
            n = 1, cp = c & 0x1F;
        else if ((c & 0xF0) == 0xE0)
            n = 2, cp = c & 0x0F;
        else if ((c & 0xF8) == 0xF0)
            n = 3, cp = c & 0x07;
        else
            return false;
        if (end - p <= n) return false;
        for (int i = 1; i <= n; ++i) {
            if ((p[i] & 0xC0) != 0x80) return false;
            cp = (cp << 6) | (p[i] & 0x3F);
        }
        static constexpr uint32_t min_for_len[] = {0, 0x80, 0x800, 0x10000};
        if (cp < min_for_len[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
        p += n + 1;
    }
    return true;
}

Refusal check_username(std::string_view s, const Config& c) {
    return check_name(s, c.username_min, c.username_max, "username");
}

std::string canonical_fingerprint(std::string_view s) {
    bool paired = s.size() == 95;
    if (!paired && s.size() != 64) return {};
    std::string out;
    out.reserve(64);
    for (size_t i = 0; i < s.size(); ++i) {
        char c = s[i];
        if (paired && i % 3 == 2) {
            if (c != ':') return {};
            continue;
        }
        if (c >= 'A' && c <= 'F') c = static_cast<char>(c - 'A' + 'a');
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return {};
        out += c;
    }
    return out;
}

Refusal check_nick(std::string_view s, const Config& c) {
    return check_name(s, 1, c.username_max, "nick");
}

Refusal check_room_name(std::string_view s, const Config& c) {
    return check_name(s, 1, c.room_name_max, "room name");
}

Refusal check_password(std::string_view s, const Config& c) {
    if (s.size() < c.password_min || s.size() > c.password_max)
        return "password must be " + std::to_string(c.password_min) + " to " +
               std::to_string(c.password_max) + " bytes";
    if (s.find('\0') != std::string_view::npos) return "password must not contain NUL";
    return std::nullopt;
}

Refusal check_text(std::string_view s, const Config& c) {
    if (s.empty() || s.size() > c.text_max_bytes)
        return "text must be 1 to " + std::to_string(c.text_max_bytes) + " bytes";
    if (!is_valid_utf8(s)) return "text must be valid UTF-8";
    if (has_forbidden_control(s))
        return "text must not contain control characters other "
               "than newline and tab";
    return std::nullopt;
}

Refusal check_topic(std::string_view s, const Config& c) {
    if (s.size() > c.topic_max_bytes)
        return "topic must be at most " + std::to_string(c.topic_max_bytes) + " bytes";
    if (!is_valid_utf8(s)) return "topic must be valid UTF-8";
    if (has_forbidden_control(s)) return "topic must not contain control characters";
    return std::nullopt;
}

// C1 controls (U+0080..U+009F) and the bidirectional marks and overrides (U+061C, U+200E,
// U+200F, U+202A..U+202E, U+2066..U+2069): invisible, and able to reorder what a terminal or a
// page shows around them. `i` indexes the start of a sequence of valid UTF-8 `s`.
namespace {
bool is_invisible_control(std::string_view s, size_t i) {
    auto b = [&](size_t k) { return i + k < s.size() ? static_cast<unsigned char>(s[i + k]) : 0; };
    if (b(0) == 0xC2) return b(1) >= 0x80 && b(1) <= 0x9F;
    if (b(0) == 0xD8) return b(1) == 0x9C;
    if (b(0) == 0xE2 && b(1) == 0x80)
        return b(2) == 0x8E || b(2) == 0x8F || (b(2) >= 0xAA && b(2) <= 0xAE);
    if (b(0) == 0xE2 && b(1) == 0x81) return b(2) >= 0xA6 && b(2) <= 0xA9;
    return false;
}
}  // namespace

Refusal check_emoji(std::string_view s, const Config& c) {
    if (s.empty() || s.size() > c.emoji_max_bytes)
        return "emoji must be 1 to " + std::to_string(c.emoji_max_bytes) + " bytes";
    if (!is_valid_utf8(s)) return "emoji must be valid UTF-8";
    for (size_t i = 0; i < s.size(); ++i) {
        auto b = static_cast<unsigned char>(s[i]);
        if (b <= 0x20 || b == 0x7F) return "emoji must not contain whitespace or controls";
        if (is_invisible_control(s, i))
            return "emoji must not contain control characters or direction overrides";
    }
    return std::nullopt;
}

std::string fts_match(std::string_view text) {
    std::string out;
    size_t i = 0;
    while (i < text.size()) {
        while (i < text.size() && static_cast<unsigned char>(text[i]) <= 0x20) ++i;
        size_t start = i;
        while (i < text.size() && static_cast<unsigned char>(text[i]) > 0x20) ++i;
        if (i == start) break;
        if (!out.empty()) out.push_back(' ');
        out.push_back('"');
        for (char ch : text.substr(start, i - start)) {
            if (ch == '"') out.push_back('"');
            out.push_back(ch);
        }
        out.push_back('"');
    }
    return out;
}

std::string name_key(std::string_view name) {
    std::string k(name);
    for (auto& c : k)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    return k;
}

}  // namespace warren
