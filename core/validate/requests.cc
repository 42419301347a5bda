#include "core/validate/requests.h"

#include <algorithm>
#include <type_traits>

#include "core/base.h"
#include "core/protocol/request.h"
#include "core/validate/rules.h"

namespace warren {

namespace {

using K = FieldKind;

bool is_structural(FieldKind k) {
    switch (k) {
        case K::username:
        case K::nick:
        case K::room:
        case K::emoji:
        case K::visibility:
        case K::token:
        case K::cursor:
        case K::message_id:
        case K::position:
        case K::invitation:
        case K::limit:
        case K::fingerprint:
            return true;
        case K::password:
        case K::text:
        case K::topic:
        case K::query:
        case K::flag:
            return false;
    }
    return false;
}

Refusal check_token(std::string_view s) {
    if (s.empty() || s.size() > 256) return "token must be 1 to 256 characters";
    for (char c : s)
        if (c <= 0x20 || c >= 0x7F) return "token must be printable ASCII";
    return std::nullopt;
}

Refusal check_value(FieldKind k, std::string_view name, std::string_view v, const Config& c) {
    switch (k) {
        case K::username:
            return check_username(v, c);
        case K::nick:
            return check_nick(v, c);
        case K::password:
            return check_password(v, c);
        case K::room:
        case K::cursor:
            return check_room_name(v, c);
        case K::text:
            return check_text(v, c);
        case K::topic:
            return check_topic(v, c);
        case K::emoji:
            return check_emoji(v, c);
        case K::visibility:
            if (v == "public" || v == "private") return std::nullopt;
            return std::string("visibility must be 'public' or 'private'");
        case K::token:
            return check_token(v);
        case K::fingerprint:
            if (canonical_fingerprint(v).empty())
                return std::string(
                    "fingerprint must be a SHA-256 in hex: 64 digits, or 32 pairs joined by ':'");
            return std::nullopt;
        case K::query:
            if (v.size() > c.search_query_max_bytes || !is_valid_utf8(v))
                return "query must be valid UTF-8 of at most " +
                       std::to_string(c.search_query_max_bytes) + " bytes";
            if (fts_match(v).empty()) return std::string("query has no words");
            return std::nullopt;
        default:
            return std::string(name) + " has the wrong type";
    }
}

Refusal check_value(FieldKind, std::string_view, bool, const Config&) {
    return std::nullopt;  // the type is the rule
}

Refusal check_value(FieldKind k, std::string_view name, int64_t v, const Config&) {
    switch (k) {
        case K::message_id:
        case K::invitation:
            if (v < 1) return std::string(name) + " must be an id (1 or more)";
            return std::nullopt;
        case K::position:
            if (v < 0) return std::string(name) + " must not be negative";
            return std::nullopt;
        case K::limit:
            if (v < 1) return std::string("limit must be at least 1");
            return std::nullopt;
        default:
            return std::string(name) + " has the wrong type";
    }
}

std::string lower(std::string_view s) {
    std::string out(s);
    for (auto& c : out)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    return out;
}

template <class M>
struct Member;  // what a member type says about its argument
template <>
struct Member<std::string> {
    using Value = std::string;
    static constexpr bool required = true;
};
template <>
struct Member<std::optional<std::string>> {
    using Value = std::string;
    static constexpr bool required = false;
};
template <>
struct Member<int64_t> {
    using Value = int64_t;
    static constexpr bool required = true;
};
template <>
struct Member<std::optional<int64_t>> {
    using Value = int64_t;
    static constexpr bool required = false;
};
template <>
struct Member<std::optional<bool>> {
    using Value = bool;
    static constexpr bool required = false;
};

template <class M>
const typename Member<M>::Value* present(const M& m) {
    if constexpr (Member<M>::required)
        return &m;
    else
        return m ? &*m : nullptr;
}

std::optional<Rejection> signature_rejection(std::string_view name) {
    return Rejection{std::string(name),
                     std::string(name) + " contains characters it may not contain", true};
}

// The rules every present value obeys, whichever front door filled it. Only a value that
// breaks its field's own grammar can be an attack: then a structural one carrying a
// signature scores (a name with "--" or an emoji "<3" obeys the grammar and is just data).
template <class V>
std::optional<Rejection> check_field(std::string_view name, FieldKind kind, const V& v,
                                     const Config& config) {
    Refusal why = check_value(kind, name, v, config);
    if (!why) return std::nullopt;
    if constexpr (std::is_same_v<V, std::string>)
        if (is_structural(kind) && has_attack_signature(v)) return signature_rejection(name);
    return Rejection{std::string(name), std::move(*why), false};
}

// Reads one JSON argument into its member. An integer sent as a string that carries a
// signature ("1; DROP TABLE") is a probe, not a plain type error.
template <class M>
std::optional<Rejection> read_field(Args& args, std::string_view name, M& out) {
    using V = typename Member<M>::Value;
    bool ok;
    if constexpr (std::is_same_v<V, int64_t>) {
        std::optional<int64_t> v;
        ok = args.opt_int(name, v);
        if (!ok) {
            auto s = args.string_of(name);
            if (s && has_attack_signature(*s)) return signature_rejection(name);
        }
        if (ok && v) out = *v;
        if (ok && !v && Member<M>::required)
            return Rejection{std::string(name), quoted_key(name, "is required")};
    } else if constexpr (std::is_same_v<V, bool>) {
        std::optional<bool> v;
        ok = args.opt_bool(name, v);
        if (ok && v) out = *v;
    } else {
        std::optional<std::string_view> v;
        ok = args.opt_string(name, v);
        if (ok && v) out = std::string(*v);
        if (ok && !v && Member<M>::required)
            return Rejection{std::string(name), quoted_key(name, "is required")};
    }
    if (!ok) return Rejection{args.error().field, args.error().message, false};
    return std::nullopt;
}

template <class T>
std::optional<Rejection> cross_check(const T& r) {
    if constexpr (requires { T::cross_check(r); }) {
        if (auto bad = T::cross_check(r))
            return Rejection{std::string(bad->field), std::string(bad->message), false};
    }
    return std::nullopt;
}

template <class T>
std::optional<Rejection> decode_fields(Args& args, T& r, const Config& config) {
    std::optional<Rejection> bad;
    auto one = [&](const auto& f) {
        if (bad) return;
        bad = read_field(args, f.name, r.*f.member);
        if (!bad)
            if (const auto* v = present(r.*f.member)) bad = check_field(f.name, f.kind, *v, config);
    };
    std::apply([&](const auto&... f) { (one(f), ...); }, T::fields);
    return bad ? bad : cross_check(r);
}

template <class T>
std::optional<Rejection> check_fields(const T& r, const Config& config) {
    std::optional<Rejection> bad;
    auto one = [&](const auto& f) {
        if (bad) return;
        if (const auto* v = present(r.*f.member)) bad = check_field(f.name, f.kind, *v, config);
    };
    std::apply([&](const auto&... f) { (one(f), ...); }, T::fields);
    return bad ? bad : cross_check(r);
}

}  // namespace

bool has_attack_signature(std::string_view value) {
    for (char ch : value) {
        auto c = static_cast<unsigned char>(ch);
        if (c < 0x20 || c == 0x7F) return true;
    }
    if (!is_valid_utf8(value)) return true;
    static constexpr std::string_view fragments[] = {
        "../",        "..\\",    "%2e%2e", "<script", "javascript:", "onerror=",
        "<img",       "<iframe", "' or ",  "\" or ",  "or 1=1",      "union select",
        "drop table", "--",      ";",      "/*",      "*/",          "xp_cmdshell",
        "sleep(",     "${",      "<",      ">",       "'",           "`"};
    // Structural values are short: lower-case them on the stack.
    char small[256];
    std::string large;
    std::string_view v;
    if (value.size() <= sizeof small) {
        for (size_t i = 0; i < value.size(); ++i) {
            char c = value[i];
            small[i] = c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
        }
        v = std::string_view(small, value.size());
    } else {
        large = lower(value);
        v = large;
    }
    return std::any_of(std::begin(fragments), std::end(fragments),
                       [&](std::string_view f) { return v.find(f) != std::string_view::npos; });
}

std::variant<Validated, Rejection> decode_request(Op op, Args& args, const Config& config) {
#ifdef WARREN_SLOWDOWN_VALIDATION
    // Only in warren-bench-instr-slow (bench/CMakeLists.txt): validation made deliberately
    // dearer, which the instruction budget check must reject and blame on validation.
    static volatile unsigned burn = 0;
    for (int i = 0; i < WARREN_SLOWDOWN_VALIDATION; ++i) burn = burn + 1;
#endif
    std::variant<Validated, Rejection> out(std::in_place_type<Validated>, Validated::Key(), op);
    std::optional<Rejection> bad =
        std::visit([&](auto& r) { return decode_fields(args, r, config); },
                   std::get<Validated>(out).request());
    if (bad) out = std::move(*bad);
    return out;
}

std::variant<Validated, Rejection> validate(Request request, const Config& config) {
    std::optional<Rejection> bad =
        std::visit([&](const auto& r) { return check_fields(r, config); }, request);
    if (bad) return std::move(*bad);
    return std::variant<Validated, Rejection>(std::in_place_type<Validated>, Validated::Key(),
                                              std::move(request));
}

}  // namespace warren
