#include "core/security/address.h"

#include <algorithm>
#include <charconv>

namespace warren {

namespace {

std::optional<uint32_t> parse_uint(std::string_view s, int base, uint32_t max) {
    if (s.empty() || s.size() > 5) return std::nullopt;
    uint32_t v = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v, base);
    if (ec != std::errc() || end != s.data() + s.size() || v > max) return std::nullopt;
    return v;
}

bool parse_v4(std::string_view s, uint8_t out[4]) {
    for (int i = 0; i < 4; ++i) {
        size_t dot = i < 3 ? s.find('.') : s.size();
        if (dot == std::string_view::npos) return false;
        std::string_view part = s.substr(0, dot);
        if (part.size() > 1 && part[0] == '0') return false;  // no octal look-alikes
        auto v = parse_uint(part, 10, 255);
        if (!v) return false;
        out[i] = static_cast<uint8_t>(*v);
        s.remove_prefix(std::min(s.size(), dot + (i < 3 ? 1 : 0)));
    }
    return s.empty();
}

// Parses colon-separated hex groups (and a trailing dotted IPv4) into `out`, returning how
// many bytes were written, or nullopt.
std::optional<size_t> parse_groups(std::string_view s, uint8_t* out, size_t room) {
    size_t n = 0;
    while (!s.empty()) {
        size_t colon = s.find(':');
        std::string_view g = s.substr(0, colon);
        if (colon == std::string_view::npos && g.find('.') != std::string_view::npos) {
            if (n + 4 > room || !parse_v4(g, out + n)) return std::nullopt;
            return n + 4;
        }
        auto v = parse_uint(g, 16, 0xFFFF);
        if (!v || g.size() > 4 || n + 2 > room) return std::nullopt;
        out[n++] = static_cast<uint8_t>(*v >> 8);
        out[n++] = static_cast<uint8_t>(*v & 0xFF);
        if (colon == std::string_view::npos) break;
        s.remove_prefix(colon + 1);
        if (s.empty()) return std::nullopt;  // trailing single colon
    }
    return n;
}

bool parse_v6(std::string_view s, uint8_t out[16]) {
    size_t gap = s.find("::");
    if (gap == std::string_view::npos) {
        auto n = parse_groups(s, out, 16);
        return n && *n == 16;
    }
    if (s.find("::", gap + 1) != std::string_view::npos) return false;
    uint8_t head[16]{}, tail[16]{};
    auto h = parse_groups(s.substr(0, gap), head, 16);
    auto t = parse_groups(s.substr(gap + 2), tail, 16);
    if (!h || !t || *h + *t > 14) return false;
    std::fill(out, out + 16, 0);
    std::copy(head, head + *h, out);
    std::copy(tail, tail + *t, out + 16 - *t);
    return true;
}

bool is_v4_mapped(const uint8_t b[16]) {
    for (int i = 0; i < 10; ++i)
        if (b[i] != 0) return false;
    return b[10] == 0xFF && b[11] == 0xFF;
}

// One IPv6 group in its short hex form (no leading zeros), then ':'.
void append_group(std::string& key, unsigned v) {
    static constexpr char hex[] = "0123456789abcdef";
    char digits[4];
    int n = 0;
    do {
        digits[n++] = hex[v & 0xF];
        v >>= 4;
    } while (v && n < 4);
    while (n > 0) key += digits[--n];
    key += ':';
}

}  // namespace

std::optional<IpAddress> parse_ip(std::string_view text) {
    if (text.size() > 45) return std::nullopt;
    IpAddress a;
    if (text.find(':') == std::string_view::npos) {
        if (!parse_v4(text, a.bytes.data())) return std::nullopt;
        a.v4 = true;
        return a;
    }
    if (!parse_v6(text, a.bytes.data())) return std::nullopt;
    if (is_v4_mapped(a.bytes.data())) {
        std::copy(a.bytes.begin() + 12, a.bytes.end(), a.bytes.begin());
        std::fill(a.bytes.begin() + 4, a.bytes.end(), 0);
        a.v4 = true;
    }
    return a;
}

std::string address_key(std::string_view peer_ip) {
    auto a = parse_ip(peer_ip);
    if (!a) return std::string(peer_ip);
    const auto& b = a->bytes;
    if (a->v4)
        return std::to_string(b[0]) + "." + std::to_string(b[1]) + "." + std::to_string(b[2]) +
               "." + std::to_string(b[3]);
    std::string key;
    for (int g = 0; g < 4; ++g) append_group(key, (b[2 * g] << 8) | b[2 * g + 1]);
    return key + ":/64";
}

std::string prefix_key(std::string_view ip_or_key, uint32_t bits) {
    if (ip_or_key.ends_with("/64")) ip_or_key.remove_suffix(3);
    auto a = parse_ip(ip_or_key);
    if (!a || a->v4 || bits < 16 || bits > 64) return {};
    std::string key;
    for (uint32_t g = 0; g * 16 < bits; ++g) {
        unsigned v = (a->bytes[2 * g] << 8) | a->bytes[2 * g + 1];
        uint32_t keep = std::min<uint32_t>(16, bits - g * 16);
        append_group(key, v & (0xFFFFu << (16 - keep)));
    }
    return key + ":/" + std::to_string(bits);
}

bool Cidrs::add(std::string_view cidr) {
    size_t slash = cidr.find('/');
    auto base = parse_ip(cidr.substr(0, slash));
    if (!base) return false;
    uint32_t max = base->v4 ? 32 : 128;
    uint32_t prefix = max;
    if (slash != std::string_view::npos) {
        auto p = parse_uint(cidr.substr(slash + 1), 10, max);
        if (!p) return false;
        prefix = *p;
    }
    ranges_.push_back(Range{*base, prefix});
    return true;
}

bool Cidrs::contains(std::string_view ip) const {
    // An address key of a /64 ("2001:db8:0:1::/64") stands for its whole network: a range
    // narrower than /64 matches when it lies inside it.
    bool network = ip.ends_with("/64");
    auto a = parse_ip(network ? ip.substr(0, ip.size() - 3) : ip);
    if (!a) return false;
    for (const Range& r : ranges_) {
        if (r.base.v4 != a->v4) continue;
        uint32_t prefix = network ? std::min<uint32_t>(r.prefix, 64) : r.prefix;
        uint32_t full = prefix / 8, rest = prefix % 8;
        bool match =
            std::equal(r.base.bytes.begin(), r.base.bytes.begin() + full, a->bytes.begin());
        if (match && rest) {
            uint8_t mask = static_cast<uint8_t>(0xFF << (8 - rest));
            match = (r.base.bytes[full] & mask) == (a->bytes[full] & mask);
        }
        if (match) return true;
    }
    return false;
}

}  // namespace warren
