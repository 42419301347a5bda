#include "core/irc/message.h"

#include <cstdio>

#include "core/civil.h"

namespace warren::irc {

namespace {

char fold(char c) {
    return (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : c;
}

}  // namespace

bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i)
        if (fold(a[i]) != fold(b[i])) return false;
    return true;
}

std::string upper(std::string_view s) {
    std::string out(s);
    for (char& c : out) c = fold(c);
    return out;
}

bool Message::command_is(std::string_view upper_name) const {
    return iequals(command, upper_name);
}

std::optional<std::string_view> Message::tag(std::string_view key) const {
    for (const auto& [k, v] : tags)
        if (k == key) return std::string_view(v);
    return std::nullopt;
}

std::optional<Message> parse(std::string_view line, ParseError* why) {
    auto fail = [&](ParseError e) -> std::optional<Message> {
        if (why) *why = e;
        return std::nullopt;
    };
    Message m;
    std::string_view rest = line;
    if (!rest.empty() && rest.front() == '@') {
        size_t sp = rest.find(' ');
        std::string_view tags = rest.substr(1, sp == std::string_view::npos ? rest.size() : sp - 1);
        // What is parsed comes from clients, whose tags are bounded tighter than a line's.
        if (tags.size() > client_tags_max_bytes) return fail(ParseError::too_long);
        while (!tags.empty()) {
            size_t semi = tags.find(';');
            std::string_view one = tags.substr(0, semi);
            tags = semi == std::string_view::npos ? std::string_view() : tags.substr(semi + 1);
            if (one.empty()) continue;
            size_t eq = one.find('=');
            std::string_view key = one.substr(0, eq);
            std::string value =
                eq == std::string_view::npos ? std::string() : unescape_tag_value(one.substr(eq + 1));
            m.tags.emplace_back(key, std::move(value));
        }
        rest = sp == std::string_view::npos ? std::string_view() : rest.substr(sp + 1);
    }
    while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
    // 512 with "\r\n", which the framer took off.
    if (rest.size() > line_max_bytes - 2) return fail(ParseError::too_long);
    if (!rest.empty() && rest.front() == ':') {
        size_t sp = rest.find(' ');
        m.source = rest.substr(1, sp == std::string_view::npos ? rest.size() : sp - 1);
        rest = sp == std::string_view::npos ? std::string_view() : rest.substr(sp + 1);
    }
    while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
    size_t sp = rest.find(' ');
    m.command = rest.substr(0, sp);
    if (m.command.empty()) return fail(ParseError::empty);
    rest = sp == std::string_view::npos ? std::string_view() : rest.substr(sp + 1);
    while (!rest.empty()) {
        if (rest.front() == ' ') {
            rest.remove_prefix(1);
            continue;
        }
        if (rest.front() == ':' || m.params.size() == params_max - 1) {
            if (rest.front() == ':') rest.remove_prefix(1);
            m.params.push_back(rest);
            break;
        }
        sp = rest.find(' ');
        m.params.push_back(rest.substr(0, sp));
        rest = sp == std::string_view::npos ? std::string_view() : rest.substr(sp + 1);
    }
    if (why) *why = ParseError::none;
    return m;
}

std::string escape_tag_value(std::string_view v) {
    std::string out;
    out.reserve(v.size());
    for (char c : v) {
        switch (c) {
            case ';': out += "\\:"; break;
            case ' ': out += "\\s"; break;
            case '\\': out += "\\\\"; break;
            case '\r': out += "\\r"; break;
            case '\n': out += "\\n"; break;
            default: out += c;
        }
    }
    return out;
}

std::string unescape_tag_value(std::string_view v) {
    std::string out;
    out.reserve(v.size());
    for (size_t i = 0; i < v.size(); ++i) {
        if (v[i] != '\\') {
            out += v[i];
            continue;
        }
        if (++i == v.size()) break;  // a lone trailing backslash is dropped
        switch (v[i]) {
            case ':': out += ';'; break;
            case 's': out += ' '; break;
            case 'r': out += '\r'; break;
            case 'n': out += '\n'; break;
            default: out += v[i];  // "\\" and any other escaped character: itself
        }
    }
    return out;
}

bool needs_trailing(std::string_view v) {
    return v.empty() || v.front() == ':' || v.find(' ') != std::string_view::npos;
}

std::string server_time(int64_t wall_ms) {
    CivilTime t = civil_utc(wall_ms);
    char buf[128];
    std::snprintf(buf, sizeof buf, "%04lld-%02lld-%02lldT%02lld:%02lld:%02lld.%03lldZ",
                  static_cast<long long>(t.year), static_cast<long long>(t.month),
                  static_cast<long long>(t.day), static_cast<long long>(t.hour),
                  static_cast<long long>(t.minute), static_cast<long long>(t.second),
                  static_cast<long long>(t.ms));
    return buf;
}

std::vector<std::string_view> split_utf8(std::string_view text, size_t max) {
    std::vector<std::string_view> out;
    while (text.size() > max) {
        size_t cut = max;
        // Back up over continuation bytes so the cut falls before a lead byte.
        while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
        if (cut == 0) cut = max;
        out.push_back(text.substr(0, cut));
        text.remove_prefix(cut);
    }
    out.push_back(text);
    return out;
}

}  // namespace warren::irc
