#include "core/protocol/json_writer.h"

#include <algorithm>
#include <array>
#include <charconv>

namespace warren {

namespace {

// Bytes a JSON string must escape: C0 controls, the quote and the backslash.
constexpr auto escapes = [] {
    std::array<bool, 256> t{};
    for (int c = 0; c < 0x20; ++c) t[c] = true;
    t['"'] = t['\\'] = true;
    return t;
}();

void append_escape(std::string& out, unsigned char c) {
    static constexpr char hex[] = "0123456789abcdef";
    switch (c) {
        case '"':
            out.append("\\\"");
            break;
        case '\\':
            out.append("\\\\");
            break;
        case '\n':
            out.append("\\n");
            break;
        case '\t':
            out.append("\\t");
            break;
        case '\r':
            out.append("\\r");
            break;
        default: {
            char u[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 0xF]};
            out.append(u, sizeof u);
        }
    }
}

}  // namespace

void append_json_string(std::string& out, std::string_view s) {
    out.push_back('"');
    size_t run = 0;  // start of the pending run of bytes that need no escape
    for (size_t i = 0; i < s.size(); ++i) {
        auto c = static_cast<unsigned char>(s[i]);
        if (!escapes[c]) continue;
        out.append(s.data() + run, i - run);
        run = i + 1;
        append_escape(out, c);
    }
    out.append(s.data() + run, s.size() - run);
    out.push_back('"');
}

void JsonWriter::separate() {
    if (need_comma_) out_.push_back(',');
}

JsonWriter& JsonWriter::begin_object() {
    separate();
    out_.push_back('{');
    need_comma_ = false;
    return *this;
}

JsonWriter& JsonWriter::end_object() {
    out_.push_back('}');
    need_comma_ = true;
    return *this;
}

JsonWriter& JsonWriter::begin_array() {
    separate();
    out_.push_back('[');
    need_comma_ = false;
    return *this;
}

JsonWriter& JsonWriter::end_array() {
    out_.push_back(']');
    need_comma_ = true;
    return *this;
}

JsonWriter& JsonWriter::key(std::string_view k) {
    separate();
    // Keys are nearly always the protocol's own plain names: one append when nothing needs
    // escaping.
    if (std::none_of(k.begin(), k.end(),
                     [](char c) { return escapes[static_cast<unsigned char>(c)]; })) {
        char quote = '"';
        out_.append(&quote, 1).append(k).append("\":", 2);
    } else {
        append_json_string(out_, k);
        out_.push_back(':');
    }
    need_comma_ = false;
    return *this;
}

JsonWriter& JsonWriter::value(std::string_view s) {
    separate();
    append_json_string(out_, s);
    need_comma_ = true;
    return *this;
}

JsonWriter& JsonWriter::value(int64_t n) {
    separate();
    char buf[24];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, n);
    out_.append(buf, end);
    need_comma_ = true;
    return *this;
}

JsonWriter& JsonWriter::value(bool b) {
    separate();
    out_.append(b ? "true" : "false");
    need_comma_ = true;
    return *this;
}

JsonWriter& JsonWriter::null() {
    separate();
    out_.append("null");
    need_comma_ = true;
    return *this;
}

JsonWriter& JsonWriter::value_or_null(const std::optional<std::string>& s) {
    return s ? value(std::string_view(*s)) : null();
}

JsonWriter& JsonWriter::value_or_null(int64_t n) {
    return n ? value(n) : null();
}

JsonWriter& JsonWriter::raw(std::string_view json) {
    separate();
    out_.append(json);
    need_comma_ = true;
    return *this;
}

std::string JsonWriter::take_line() {
    out_.push_back('\n');
    need_comma_ = false;
    return std::move(out_);
}

}  // namespace warren
