#include "core/validate/requests.h"

#include <algorithm>
#include <array>

#include "core/base.h"
#include "core/validate/rules.h"

namespace warren {

namespace {

using K = FieldKind;
constexpr FieldRule register_f[] = {{"username", K::username, true},
                                    {"password", K::password, true}};
constexpr FieldRule login_f[] = {
    {"username", K::username}, {"password", K::password}, {"token", K::token}};
constexpr FieldRule create_room_f[] = {
    {"room", K::room, true}, {"visibility", K::visibility}, {"topic", K::topic}};
constexpr FieldRule room_f[] = {{"room", K::room, true}};
constexpr FieldRule list_rooms_f[] = {{"cursor", K::cursor}, {"limit", K::limit}};
constexpr FieldRule send_f[] = {
    {"room", K::room, true}, {"text", K::text, true}, {"reply_to", K::message_id}};
constexpr FieldRule direct_f[] = {
    {"to", K::username, true}, {"text", K::text, true}, {"reply_to", K::message_id}};
constexpr FieldRule history_f[] = {{"room", K::room},
                                   {"with", K::username},
                                   {"before", K::position},
                                   {"after", K::position},
                                   {"limit", K::limit}};
constexpr FieldRule topic_f[] = {{"room", K::room, true}, {"topic", K::topic, true}};
constexpr FieldRule mark_read_f[] = {
    {"room", K::room}, {"with", K::username}, {"message_id", K::message_id, true}};
constexpr FieldRule user_list_f[] = {{"room", K::room}};
constexpr FieldRule invite_f[] = {{"room", K::room, true}, {"user", K::username, true}};
constexpr FieldRule answer_f[] = {{"invitation_id", K::invitation}, {"room", K::room}};
constexpr FieldRule edit_f[] = {{"message_id", K::message_id, true}, {"text", K::text, true}};
constexpr FieldRule delete_f[] = {{"message_id", K::message_id, true}};
constexpr FieldRule react_f[] = {{"message_id", K::message_id, true}, {"emoji", K::emoji, true}};
constexpr FieldRule thread_f[] = {{"message_id", K::message_id, true}, {"limit", K::limit}};
constexpr FieldRule search_f[] = {
    {"query", K::query, true}, {"room", K::room}, {"limit", K::limit}};

// In the order of enum Op; checked below.
const std::array<OpRule, 24> rules = {{
    {Op::register_, register_f, 5},  // a password hash: expensive
    {Op::login, login_f, 1},
    {Op::logout, {}, 1},
    {Op::ping, {}, 1},
    {Op::create_room, create_room_f, 1},
    {Op::join_room, room_f, 1},
    {Op::leave_room, room_f, 1},
    {Op::list_rooms, list_rooms_f, 1},
    {Op::send_message, send_f, 1},
    {Op::history, history_f, 2},  // may read storage
    {Op::direct_message, direct_f, 1},
    {Op::set_topic, topic_f, 1},
    {Op::mark_read, mark_read_f, 1},
    {Op::request_user_list, user_list_f, 1},
    {Op::invite_user, invite_f, 1},
    {Op::accept_invitation, answer_f, 1},
    {Op::decline_invitation, answer_f, 1},
    {Op::list_invitations, {}, 1},
    {Op::edit_message, edit_f, 1},
    {Op::delete_message, delete_f, 1},
    {Op::react, react_f, 1},
    {Op::unreact, react_f, 1},
    {Op::get_thread, thread_f, 1},
    {Op::search, search_f, 5},  // full-text query in storage
}};

bool is_structural(FieldKind k) {
    switch (k) {
        case K::username:
        case K::room:
        case K::emoji:
        case K::visibility:
        case K::token:
        case K::cursor:
        case K::message_id:
        case K::position:
        case K::invitation:
        case K::limit:
            return true;
        case K::password:
        case K::text:
        case K::topic:
        case K::query:
            return false;
    }
    return false;
}

bool is_integer(FieldKind k) {
    return k == K::message_id || k == K::position || k == K::invitation || k == K::limit;
}

Refusal check_token(std::string_view s) {
    if (s.empty() || s.size() > 256) return "token must be 1 to 256 characters";
    for (char c : s)
        if (c <= 0x20 || c >= 0x7F) return "token must be printable ASCII";
    return std::nullopt;
}

Refusal check_string(FieldKind k, std::string_view name, std::string_view v, const Config& c) {
    switch (k) {
        case K::username:
            return check_username(v, c);
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

Refusal check_integer(FieldKind k, std::string_view name, int64_t v) {
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

}  // namespace

const OpRule& op_rule(Op op) {
    const OpRule& r = rules[static_cast<size_t>(op)];
    WARREN_CHECK(r.op == op);
    return r;
}

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

std::optional<Rejection> validate_request(Op op, Args& args, const Config& config) {
    auto signature = [](const FieldRule& f) {
        return Rejection{std::string(f.name),
                         std::string(f.name) + " contains characters it may not contain", true};
    };
    // Each argument is looked up once; only a wrongly typed integer is looked at again, to
    // tell a probe ("1; DROP TABLE") from a plain type error.
    for (const FieldRule& f : op_rule(op).fields) {
        Refusal why;
        if (is_integer(f.kind)) {
            std::optional<int64_t> v;
            if (!args.opt_int(f.name, v)) {
                auto s = args.string_of(f.name);
                if (s && has_attack_signature(*s)) return signature(f);
                return Rejection{args.error().field, args.error().message, false};
            }
            if (v)
                why = check_integer(f.kind, f.name, *v);
            else if (f.required)
                why = "'" + std::string(f.name) + "' is required";
        } else {
            std::optional<std::string_view> v;
            if (!args.opt_string(f.name, v))
                return Rejection{args.error().field, args.error().message, false};
            if (v && is_structural(f.kind) && has_attack_signature(*v)) return signature(f);
            if (v)
                why = check_string(f.kind, f.name, *v, config);
            else if (f.required)
                why = "'" + std::string(f.name) + "' is required";
        }
        if (why) return Rejection{std::string(f.name), std::move(*why), false};
    }
    return std::nullopt;
}

}  // namespace warren
