// IRC commands to typed requests, typed replies and events to IRC lines (docs/IRC.md).
#include "core/irc/session.h"

#include <sodium.h>

#include <algorithm>

#include "core/validate/rules.h"

namespace warren::irc {

namespace {

// Targets one PRIVMSG, NOTICE or JOIN line may name (TARGMAX in 005).
constexpr size_t message_targets_max = 4;
constexpr size_t join_targets_max = 10;
// SASL: payload chunks are 400 bytes; a PLAIN payload for Warren's limits fits in far less.
constexpr size_t sasl_chunk = 400;
constexpr size_t sasl_payload_max = 1200;
// LIST answers at most this many rooms (the rest: a NOTICE saying so).
constexpr size_t list_max = 1000;
// labeled-response: a longer label is ignored (the spec's clients use short ones).
constexpr size_t label_max_bytes = 64;
// Names per 353 line, in bytes.
constexpr size_t names_line_bytes = 400;

constexpr std::string_view host = "warren";

std::string user_prefix(std::string_view name) {
    std::string p(name);
    p += '!';
    p += name;
    p += '@';
    p += host;
    return p;
}

std::string channel(std::string_view room) {
    std::string c = "#";
    c += room;
    return c;
}

// "#room" -> "room"; nullopt for anything that is not a channel name.
std::optional<std::string_view> room_of(std::string_view target) {
    if (target.size() < 2 || target.front() != '#') return std::nullopt;
    return target.substr(1);
}

std::vector<std::string_view> split_commas(std::string_view s) {
    std::vector<std::string_view> out;
    while (!s.empty()) {
        size_t c = s.find(',');
        if (std::string_view one = s.substr(0, c); !one.empty()) out.push_back(one);
        if (c == std::string_view::npos) break;
        s.remove_prefix(c + 1);
    }
    return out;
}

// IRC text to Warren text: CTCP ACTION becomes "/me ...", formatting codes are dropped
// (Warren text has no control characters but '\n' and '\t'). nullopt: a CTCP request other
// than ACTION, which is not a message.
std::optional<std::string> from_irc_text(std::string_view t) {
    std::string out;
    if (!t.empty() && t.front() == '\x01') {
        t.remove_prefix(1);
        if (!t.empty() && t.back() == '\x01') t.remove_suffix(1);
        if (t.substr(0, 7) != "ACTION ") return std::nullopt;
        out = "/me ";
        t.remove_prefix(7);
    }
    for (size_t i = 0; i < t.size(); ++i) {
        char c = t[i];
        if (c == '\x03') {  // colour: up to two digits, optionally ",NN"
            size_t n = 0;
            while (n < 2 && i + 1 < t.size() && t[i + 1] >= '0' && t[i + 1] <= '9') ++i, ++n;
            if (n > 0 && i + 2 < t.size() && t[i + 1] == ',' && t[i + 2] >= '0' &&
                t[i + 2] <= '9') {
                i += 2;
                if (i + 1 < t.size() && t[i + 1] >= '0' && t[i + 1] <= '9') ++i;
            }
            continue;
        }
        auto u = static_cast<unsigned char>(c);
        if ((u < 0x20 && c != '\t') || u == 0x7F) continue;  // bold, italic, reset, ...
        out += c;
    }
    return out;
}

std::string tags_of(const MessageView& v, uint32_t caps) {
    std::string t;
    auto add = [&](std::string_view kv) {
        t += t.empty() ? '@' : ';';
        t += kv;
    };
    if (caps & cap_server_time) add("time=" + server_time(v.ts_ms));
    if (caps & cap_message_tags) {
        add("msgid=" + std::to_string(v.id));
        if (v.reply_to) {
            add("+reply=" + std::to_string(v.reply_to));
            add("+draft/reply=" + std::to_string(v.reply_to));
        }
    }
    if ((caps & cap_account_tag) && v.author && !v.author_guest)
        add("account=" + escape_tag_value(*v.author));
    if (!t.empty()) t += ' ';
    return t;
}

// A message as IRC lines: one per line of its text, each cut to fit 512 bytes. Text that
// starts with "/me " is a CTCP ACTION.
std::string message_lines(const MessageView& v, uint32_t caps, std::string_view command,
                          std::string_view text_prefix = {}) {
    std::string target = v.room ? channel(*v.room) : v.to.value_or("*");
    std::string head = ":" + user_prefix(v.author.value_or("*")) + " " + std::string(command) +
                       " " + target + " :";
    std::string tags = tags_of(v, caps);
    std::string_view text = v.text;
    bool action = text.substr(0, 4) == "/me ";
    if (action) text.remove_prefix(4);
    size_t budget = line_max_bytes - 2 - head.size() - text_prefix.size() - (action ? 9 : 0);
    std::string out;
    bool first = true;
    while (true) {
        size_t nl = text.find('\n');
        std::string_view one = text.substr(0, nl);
        if (one.empty()) one = " ";  // IRC has no empty message line
        for (std::string_view piece : split_utf8(one, budget)) {
            out += tags;
            out += head;
            if (action) out += "\x01" "ACTION ";
            if (first) out += text_prefix;
            out += piece;
            if (action) out += '\x01';
            out += "\r\n";
            first = false;
        }
        if (nl == std::string_view::npos) break;
        text.remove_prefix(nl + 1);
    }
    return out;
}

std::string decode_base64(std::string_view b64, bool& ok) {
    std::string bin(b64.size(), '\0');
    size_t len = 0;
    ok = sodium_base642bin(reinterpret_cast<unsigned char*>(bin.data()), bin.size(), b64.data(),
                           b64.size(), nullptr, &len, nullptr,
                           sodium_base64_VARIANT_ORIGINAL) == 0;
    bin.resize(ok ? len : 0);
    return bin;
}

std::string_view reason_text(DisconnectReason r) {
    switch (r) {
        case DisconnectReason::idle_timeout: return "Ping timeout: idle for too long";
        case DisconnectReason::slow_consumer: return "Slow consumer: too far behind";
        case DisconnectReason::frame_too_large: return "Line too long";
        case DisconnectReason::bad_frames: return "Too many malformed lines";
        case DisconnectReason::blocked: return "This address is blocked";
        case DisconnectReason::too_many_connections: return "Too many connections";
        case DisconnectReason::shutdown: return "Server shutting down";
        case DisconnectReason::session_revoked: return "Session revoked";
        case DisconnectReason::excess_flood: return "Excess Flood";
    }
    return "Closing";
}

std::optional<int64_t> message_id_of(std::string_view s) {
    if (s.empty() || s.size() > 15 ||
        !std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; }))
        return std::nullopt;
    return std::stoll(std::string(s));
}

}  // namespace

// ---- plumbing ---------------------------------------------------------------------------------

std::string Session::numeric(std::string_view code) const {
    std::string s = ":";
    s += id_.name;
    s += ' ';
    s += code;
    s += ' ';
    s += nick_.empty() ? "*" : nick_;
    s += ' ';
    return s;
}

std::string Session::self_prefix() const {
    return ":" + user_prefix(nick_);
}

void Session::local(std::string lines, bool hang_up) {
    Step s;
    s.lines = std::move(lines);
    s.hang_up = hang_up;
    steps_.push_back(std::move(s));
}

void Session::ask(Request request, Then then) {
    Step s;
    s.request = std::move(request);
    s.then = std::move(then);
    steps_.push_back(std::move(s));
}

Step Session::next_step() {
    Step s = std::move(steps_.front());
    steps_.pop_front();
    return s;
}

void Session::too_long() {
    local(numeric("417") + ":Input line was too long\r\n");
}

// ---- lines in ---------------------------------------------------------------------------------

void Session::on_line(std::string_view line, const ChatState& state, std::optional<UserId> user) {
    size_t before = steps_.size();
    take_line(line, state, user);
    if (label_.empty()) return;
    std::string label = std::move(label_);
    label_.clear();
    if (steps_.size() == before) local("");  // nothing to say: the ACK
    for (size_t i = before; i < steps_.size(); ++i) {
        steps_[i].label = label;
        steps_[i].last_of_label = i + 1 == steps_.size();
    }
}

void Session::bind_slot(uint64_t slot, const Step& step) {
    if (!step.label.empty()) labelled_[slot] = Labelled{step.label, step.last_of_label, false, {}};
}

namespace {

// One server line with `tag` (key=value) added to its tags.
void add_tag(std::string& out, std::string_view line, std::string_view tag) {
    if (!line.empty() && line.front() == '@') {
        out += '@';
        out += tag;
        out += ';';
        out += line.substr(1);
    } else {
        out += '@';
        out += tag;
        out += ' ';
        out += line;
    }
}

}  // namespace

std::string Session::labelled(uint64_t slot, std::string bytes) {
    auto it = labelled_.find(slot);
    if (it == labelled_.end()) return bytes;
    it->second.answered = true;
    it->second.bytes = std::move(bytes);
    // The group of this slot: back to the slot after the previous group's last, on to its own
    // last. Slots of one line are consecutive.
    auto first = it;
    while (first != labelled_.begin() && !std::prev(first)->second.last &&
           std::prev(first)->first + 1 == first->first)
        --first;
    auto last = it;
    while (!last->second.last) {
        auto next = std::next(last);
        if (next == labelled_.end() || next->first != last->first + 1) return {};  // not taken yet
        last = next;
    }
    for (auto i = first;; ++i) {
        if (!i->second.answered) return {};
        if (i == last) break;
    }
    std::string all;
    for (auto i = first;; ++i) {
        all += i->second.bytes;
        if (i == last) break;
    }
    std::string label = "label=" + first->second.label;
    labelled_.erase(first, std::next(last));
    std::vector<std::string_view> lines;
    for (size_t pos = 0; pos < all.size();) {
        size_t end = all.find("\r\n", pos);
        if (end == std::string::npos) end = all.size();
        if (end > pos) lines.push_back(std::string_view(all).substr(pos, end - pos));
        pos = end + 2;
    }
    std::string out;
    if (lines.empty()) {
        add_tag(out, ":" + std::string(id_.name) + " ACK", label);
        return out + "\r\n";
    }
    if (lines.size() == 1 || !(caps_ & cap_batch)) {
        for (std::string_view l : lines) {
            add_tag(out, l, label);
            out += "\r\n";
        }
        return out;
    }
    std::string id = "L" + std::to_string(next_batch_++);
    add_tag(out, ":" + std::string(id_.name) + " BATCH +" + id + " labeled-response", label);
    out += "\r\n";
    for (std::string_view l : lines) {
        add_tag(out, l, "batch=" + id);
        out += "\r\n";
    }
    return out + ":" + std::string(id_.name) + " BATCH -" + id + "\r\n";
}

void Session::take_line(std::string_view line, const ChatState& state,
                        std::optional<UserId> user) {
    // A CR or NUL inside a line could only come back to the client as a broken line.
    if (line.find_first_of(std::string_view("\r\0", 2)) != std::string_view::npos)
        return local(":" + std::string(id_.name) + " NOTICE " + (nick_.empty() ? "*" : nick_) +
                     " :A line with a CR or NUL inside was ignored\r\n");
    ParseError why = ParseError::none;
    std::optional<Message> m = parse(line, &why);
    if (!m) {
        if (why == ParseError::too_long) too_long();
        return;  // a line with no command is ignored, as IRC servers do
    }
    if (caps_ & cap_labeled_response)
        if (std::optional<std::string_view> label = m->tag("label");
            label && !label->empty() && label->size() <= label_max_bytes)
            label_ = escape_tag_value(*label);
    // UTF8ONLY (005): a line that is not UTF-8 is refused whole, with the standard reply.
    if (!is_valid_utf8(line))
        return local("FAIL " + std::string(m->command) +
                     " INVALID_UTF8 :Message rejected, it is not valid UTF-8\r\n");
    if (m->command_is("PING")) {
        if (m->params.empty()) return local(numeric("409") + ":No origin specified\r\n");
        std::string pong = ":" + std::string(id_.name) + " PONG " + std::string(id_.name) + " :";
        pong += m->params[0];
        return local(pong + "\r\n");
    }
    if (m->command_is("PONG")) return;
    if (m->command_is("QUIT")) {
        quit_reason_ = std::string(m->param(0));
        return local("ERROR :Closing link: " + (nick_.empty() ? std::string("*") : nick_) +
                         " (Quit)\r\n",
                     true);
    }
    if (m->command_is("CAP")) return cap(*m, state, user);
    if (!registered_ || !user) return registration_line(*m, state, user);
    command(*m, state, *user);
}

void Session::registration_line(const Message& m, const ChatState& state,
                                std::optional<UserId> user) {
    if (m.command_is("NICK")) {
        if (m.params.empty()) return local(numeric("431") + ":No nickname given\r\n");
        std::string_view n = m.params[0];
        if (check_nick(n, config_))
            return local(numeric("432") + std::string(n) + " :Erroneous nickname\r\n");
        nick_ = n;
        return try_complete(state, user);
    }
    if (m.command_is("USER")) {
        if (m.params.size() < 4 || m.params[0].empty() || m.params[3].empty())
            return local(numeric("461") + "USER :Not enough parameters\r\n");
        user_ = m.params[0];
        return try_complete(state, user);
    }
    if (m.command_is("PASS")) {
        if (m.params.empty()) return local(numeric("461") + "PASS :Not enough parameters\r\n");
        pass_ = std::string(m.params[0]);
        return;
    }
    if (m.command_is("AUTHENTICATE")) return authenticate(m, user);
    if (registered_) return;  // logged out meanwhile (a revoked session closes the connection)
    local(numeric("451") + ":You have not registered\r\n");
}

namespace {

constexpr std::pair<std::string_view, Cap> offered_caps[] = {
    {"account-tag", cap_account_tag},
    {"batch", cap_batch},
    {"cap-notify", cap_cap_notify},
    {"echo-message", cap_echo_message},
    {"invite-notify", cap_invite_notify},
    {"labeled-response", cap_labeled_response},
    {"draft/message-redaction", cap_message_redaction},
    {"message-tags", cap_message_tags},
    {"multi-prefix", cap_multi_prefix},
    {"sasl", cap_sasl},
    {"server-time", cap_server_time},
    {"standard-replies", cap_standard_replies},
    {"userhost-in-names", cap_userhost_in_names},
};

// CAP REQ's list ("a -b c"): the bits to turn on and off; false if it names a capability
// that is not offered (the whole request is then refused).
bool parse_cap_req(std::string_view want, uint32_t& on, uint32_t& off) {
    size_t pos = 0;
    while (pos < want.size()) {
        size_t sp = want.find(' ', pos);
        std::string_view one = want.substr(pos, sp == std::string_view::npos ? sp : sp - pos);
        pos = sp == std::string_view::npos ? want.size() : sp + 1;
        if (one.empty()) continue;
        bool remove = one.front() == '-';
        if (remove) one.remove_prefix(1);
        auto it = std::find_if(std::begin(offered_caps), std::end(offered_caps),
                               [&](const auto& o) { return o.first == one; });
        if (it == std::end(offered_caps)) return false;
        (remove ? off : on) |= it->second;
    }
    return true;
}

}  // namespace

std::string Session::cap_ls(bool v302) const {
    std::string list;
    for (const auto& [name, bit] : offered_caps) {
        if (!list.empty()) list += ' ';
        list += name;
        if (v302 && bit == cap_sasl) list += "=" + std::string(sasl_mechanisms());
    }
    // STS needs cap values (302). It is a policy, never requested.
    if (v302 && config_.irc_sts_duration_s > 0) {
        if (tls_)
            list += " sts=duration=" + std::to_string(config_.irc_sts_duration_s);
        else if (config_.irc_sts_port != 0)
            list += " sts=port=" + std::to_string(config_.irc_sts_port);
    }
    return list;
}

void Session::cap(const Message& m, const ChatState& state, std::optional<UserId> user) {
    std::string_view sub = m.param(0);
    std::string head = ":" + std::string(id_.name) + " CAP " + (nick_.empty() ? "*" : nick_) + " ";
    if (iequals(sub, "LS")) {
        if (!registered_) negotiating_ = true;
        bool v302 = m.param(1) >= "302" && m.param(1).size() >= 3;
        if (v302) caps_ |= cap_cap_notify;  // implied by 302
        return local(head + "LS :" + cap_ls(v302) + "\r\n");
    }
    if (iequals(sub, "LIST")) {
        std::string list;
        for (const auto& [name, bit] : offered_caps)
            if (caps_ & bit) {
                if (!list.empty()) list += ' ';
                list += name;
            }
        return local(head + "LIST :" + list + "\r\n");
    }
    if (iequals(sub, "REQ")) {
        if (!registered_) negotiating_ = true;
        uint32_t on = 0, off = 0;
        std::string_view want = m.param(1);
        if (want.empty() || !parse_cap_req(want, on, off))
            return local(head + "NAK :" + std::string(want) + "\r\n");
        caps_ = (caps_ | on) & ~off;
        return local(head + "ACK :" + std::string(want) + "\r\n");
    }
    if (iequals(sub, "END")) {
        if (registered_) return;
        negotiating_ = false;
        return try_complete(state, user);
    }
    local(numeric("410") + std::string(sub) + " :Invalid CAP command\r\n");
}

void Session::authenticate(const Message& m, std::optional<UserId> user) {
    if (user) return local(numeric("907") + ":You have already authenticated using SASL\r\n");
    if (m.params.empty())
        return local(numeric("461") + "AUTHENTICATE :Not enough parameters\r\n");
    std::string_view p = m.params[0];
    auto reset = [&] {
        sasl_started_ = false;
        sasl_buffer_.clear();
    };
    if (p == "*") {
        reset();
        return local(numeric("906") + ":SASL authentication aborted\r\n");
    }
    if (!sasl_started_) {
        sasl_external_ = iequals(p, "EXTERNAL") && !certfp_.empty();
        if (iequals(p, "PLAIN") || sasl_external_) {
            sasl_started_ = true;
            return local("AUTHENTICATE +\r\n");
        }
        return local(numeric("908") + std::string(sasl_mechanisms()) +
                     " :are available SASL mechanisms\r\n" + numeric("904") +
                     ":SASL authentication failed\r\n");
    }
    if (p.size() > sasl_chunk || sasl_buffer_.size() + p.size() > sasl_payload_max) {
        reset();
        return local(numeric("905") + ":SASL message too long\r\n");
    }
    if (p != "+") sasl_buffer_ += p;
    if (p.size() == sasl_chunk) return;  // more follows
    bool ok = false;
    std::string plain = decode_base64(sasl_buffer_, ok);
    reset();
    if (sasl_external_) {
        // The payload is the authorization identity, or empty ("+"): the certificate the
        // handshake showed is the credential.
        if (!ok) return local(numeric("904") + ":SASL authentication failed\r\n");
        CertificateLogin login{certfp_, {}};
        if (!plain.empty()) login.username = std::move(plain);
        return ask(std::move(login), Then{Then::Kind::sasl, {}, "AUTHENTICATE"});
    }
    // authzid \0 authcid \0 password; an authzid, if given, must be the account itself.
    size_t a = plain.find('\0');
    size_t b = a == std::string::npos ? a : plain.find('\0', a + 1);
    if (!ok || b == std::string::npos)
        return local(numeric("904") + ":SASL authentication failed\r\n");
    std::string authzid = plain.substr(0, a), authcid = plain.substr(a + 1, b - a - 1);
    if (!authzid.empty() && !iequals(authzid, authcid))
        return local(numeric("904") + ":SASL authentication failed\r\n");
    Login login;
    login.username = std::move(authcid);
    login.password = plain.substr(b + 1);
    ask(std::move(login), Then{Then::Kind::sasl, {}, "AUTHENTICATE"});
}

// Registration ends once NICK and USER are in and capability negotiation is over: with the
// account SASL logged into, by logging in with PASS, or else as a guest under the nick (when
// the server allows guests; otherwise the connection is refused).
void Session::try_complete(const ChatState& state, std::optional<UserId> user) {
    if (registered_ || completing_ || nick_.empty() || user_.empty() || negotiating_ ||
        sasl_started_)
        return;
    if (user) {
        if (const User* u = state.user(*user)) return local(welcome(state, *u));
    }
    if (pass_) {
        // "account:password", or the nick as the account.
        std::string pass = std::move(*pass_);
        pass_.reset();
        Login login;
        size_t colon = pass.find(':');
        if (colon != std::string::npos && !check_username(pass.substr(0, colon), config_)) {
            login.username = pass.substr(0, colon);
            login.password = pass.substr(colon + 1);
        } else {
            login.username = nick_;
            login.password = std::move(pass);
        }
        completing_ = true;
        return ask(std::move(login), Then{Then::Kind::pass_login, {}, "PASS"});
    }
    if (config_.irc_guests) {
        completing_ = true;
        return ask(GuestLogin{nick_}, Then{Then::Kind::guest, nick_, "NICK"});
    }
    local(numeric("464") +
              ":An account is needed here: log in with SASL PLAIN or PASS account:password\r\n"
              "ERROR :Closing link: an account is needed\r\n",
          true);
}

// The commands of a registered connection: name, the parameters it needs (461 below that),
// and the handler.
struct Session::Command {
    std::string_view name;
    size_t params;
    void (Session::*run)(const Message&, const ChatState&, UserId);
};

const Session::Command Session::commands_[] = {
    {"NICK", 1, &Session::nick_change},
    {"USER", 0, &Session::reregister},
    {"PASS", 0, &Session::reregister},
    {"AUTHENTICATE", 0, &Session::reauthenticate},
    {"JOIN", 1, &Session::join},
    {"PART", 1, &Session::part},
    {"PRIVMSG", 0, &Session::privmsg},
    {"NOTICE", 0, &Session::privmsg},
    {"TOPIC", 1, &Session::topic},
    {"NAMES", 1, &Session::names},
    {"LIST", 0, &Session::list},
    {"WHOIS", 1, &Session::whois},
    {"WHO", 1, &Session::who},
    {"MODE", 1, &Session::mode},
    {"INVITE", 2, &Session::invite},
    {"AWAY", 0, &Session::away},
    {"ISON", 0, &Session::ison},
    {"REDACT", 2, &Session::redact},
    {"TAGMSG", 1, &Session::tagmsg},
};

void Session::command(const Message& m, const ChatState& state, UserId user) {
    for (const Command& c : commands_) {
        if (!m.command_is(c.name)) continue;
        if (m.params.size() < c.params)
            return local(numeric("461") + upper(m.command) + " :Not enough parameters\r\n");
        return (this->*c.run)(m, state, user);
    }
    local(numeric("421") + upper(m.command) + " :Unknown command\r\n");
}

void Session::nick_change(const Message& m, const ChatState&, UserId) {
    if (iequals(m.params[0], nick_)) return;
    local(numeric("432") + std::string(m.params[0]) + " :Your nick is your account name here\r\n");
}

void Session::reregister(const Message&, const ChatState&, UserId) {
    local(numeric("462") + ":You may not reregister\r\n");
}

void Session::reauthenticate(const Message&, const ChatState&, UserId) {
    local(numeric("907") + ":You have already authenticated using SASL\r\n");
}

void Session::part(const Message& m, const ChatState&, UserId) {
    for (std::string_view target : split_commas(m.params[0])) {
        std::optional<std::string_view> room = room_of(target);
        if (!room) {
            local(numeric("403") + std::string(target) + " :No such channel\r\n");
            continue;
        }
        LeaveRoom r;
        r.room = std::string(*room);
        r.reason = std::string(m.param(1));
        std::string said = r.reason.empty() ? std::string() : " :" + r.reason;
        ask(std::move(r), Then{Then::Kind::part, std::string(target), "PART", std::move(said)});
    }
}

void Session::invite(const Message& m, const ChatState& state, UserId user) {
    std::optional<std::string_view> room = room_of(m.params[1]);
    if (!room) return local(numeric("403") + std::string(m.params[1]) + " :No such channel\r\n");
    const Room* r_now = state.find_room(*room);
    if (!r_now) return local(numeric("403") + std::string(m.params[1]) + " :No such channel\r\n");
    if (!r_now->members.contains(user))
        return local(numeric("442") + channel(r_now->name) + " :You're not on that channel\r\n");
    const User* who = state.find_user(m.params[0]);
    if (who && r_now->members.contains(who->id))
        return local(numeric("443") + who->name + " " + channel(r_now->name) +
                     " :is already on channel\r\n");
    InviteUser r;
    r.room = std::string(*room);
    r.user = std::string(m.params[0]);
    ask(std::move(r), Then{Then::Kind::invite, std::string(m.params[0]), "INVITE"});
}

// Warren has no away state: the answer says what the client asked for.
void Session::away(const Message& m, const ChatState&, UserId) {
    if (m.param(0).empty())
        return local(numeric("305") + ":You are no longer marked as being away\r\n");
    local(numeric("306") + ":You have been marked as being away\r\n");
}

void Session::ison(const Message& m, const ChatState& state, UserId) {
    std::string on;
    for (std::string_view p : m.params) {
        size_t pos = 0;
        while (pos < p.size()) {
            size_t sp = p.find(' ', pos);
            std::string_view n = p.substr(pos, sp == std::string_view::npos ? sp : sp - pos);
            pos = sp == std::string_view::npos ? p.size() : sp + 1;
            const User* u = n.empty() ? nullptr : state.find_user(n);
            if (u && !u->conns.empty()) on += (on.empty() ? "" : " ") + u->name;
        }
    }
    local(numeric("303") + ":" + on + "\r\n");
}

// draft/message-redaction: REDACT <target> <msgid> [:reason] deletes a message.
void Session::redact(const Message& m, const ChatState&, UserId) {
    std::optional<int64_t> id = message_id_of(m.params[1]);
    if (!id)
        return local("FAIL REDACT UNKNOWN_MSGID " + std::string(m.params[0]) + " " +
                     std::string(m.params[1]) + " :No message with that id\r\n");
    DeleteMessage d;
    d.message_id = *id;
    ask(d, Then{Then::Kind::redact, std::string(m.params[0]), "REDACT",
                           std::to_string(*id)});
}

// TAGMSG with +draft/react (or +draft/unreact) and the message's id in +reply or
// +draft/reply is a reaction; other TAGMSGs (typing notices) are not kept.
void Session::tagmsg(const Message& m, const ChatState&, UserId) {
    std::optional<std::string_view> react = m.tag("+draft/react");
    std::optional<std::string_view> unreact = m.tag("+draft/unreact");
    std::optional<std::string_view> reply = m.tag("+reply");
    if (!reply) reply = m.tag("+draft/reply");
    if ((!react && !unreact) || !reply) return;
    std::optional<int64_t> id = message_id_of(*reply);
    if (!id)
        return local("FAIL TAGMSG UNKNOWN_MSGID " + std::string(m.params[0]) +
                     " :No message with that id\r\n");
    std::string emoji(react ? *react : *unreact);
    std::string tags = std::string(react ? "+draft/react=" : "+draft/unreact=") +
                       escape_tag_value(emoji) + ";+draft/reply=" + std::to_string(*id);
    Then then{Then::Kind::react, std::string(m.params[0]), "TAGMSG", std::move(tags)};
    if (react) {
        React r;
        r.message_id = *id;
        r.emoji = std::move(emoji);
        return ask(std::move(r), std::move(then));
    }
    Unreact u;
    u.message_id = *id;
    u.emoji = std::move(emoji);
    ask(std::move(u), std::move(then));
}

void Session::join(const Message& m, const ChatState& state, UserId user) {
    std::vector<std::string_view> targets = split_commas(m.params[0]);
    if (targets.size() > join_targets_max)
        return local(numeric("407") + std::string(m.params[0]) + " :Too many targets\r\n");
    for (std::string_view target : targets) {
        std::optional<std::string_view> room = room_of(target);
        if (!room || check_room_name(*room, config_)) {
            local(numeric("479") + std::string(target) + " :Illegal channel name\r\n");
            continue;
        }
        const Room* r = state.find_room(*room);
        if (r && r->members.contains(user)) continue;  // already there: nothing to say
        Then then{Then::Kind::join, std::string(target), "JOIN"};
        if (r) {
            JoinRoom j;
            j.room = std::string(*room);
            ask(std::move(j), std::move(then));
        } else {
            CreateRoom c;
            c.room = std::string(*room);
            ask(std::move(c), std::move(then));
        }
    }
}

void Session::privmsg(const Message& m, const ChatState&, UserId) {
    std::string command = upper(m.command);
    if (m.params.empty())
        return local(numeric("411") + ":No recipient given (" + command + ")\r\n");
    if (m.params.size() < 2 || m.params[1].empty())
        return local(numeric("412") + ":No text to send\r\n");
    std::vector<std::string_view> targets = split_commas(m.params[0]);
    if (targets.size() > message_targets_max)
        return local(numeric("407") + std::string(m.params[0]) + " :Too many targets\r\n");
    std::optional<std::string> text = from_irc_text(m.params[1]);
    if (!text) return;  // a CTCP request: not a message
    std::optional<int64_t> reply_to;
    std::optional<std::string_view> tag = m.tag("+reply");
    if (!tag) tag = m.tag("+draft/reply");
    if (tag) reply_to = message_id_of(*tag);
    for (std::string_view target : targets) {
        Then then{Then::Kind::privmsg, std::string(target), command};
        if (std::optional<std::string_view> room = room_of(target)) {
            SendMessage s;
            s.room = std::string(*room);
            s.text = *text;
            s.reply_to = reply_to;
            s.reply_optional = true;
            s.notice = command == "NOTICE";
            ask(std::move(s), std::move(then));
        } else {
            DirectMessage d;
            d.to = std::string(target);
            d.text = *text;
            d.reply_to = reply_to;
            d.reply_optional = true;
            d.notice = command == "NOTICE";
            ask(std::move(d), std::move(then));
        }
    }
}

void Session::topic(const Message& m, const ChatState& state, UserId user) {
    std::string target(m.params[0]);
    std::optional<std::string_view> name = room_of(target);
    const Room* room = name ? state.find_room(*name) : nullptr;
    if (!room) return local(numeric("403") + target + " :No such channel\r\n");
    if (m.params.size() >= 2) {
        SetTopic t;
        t.room = room->name;
        t.topic = std::string(m.params[1]);
        return ask(std::move(t), Then{Then::Kind::topic, target, "TOPIC"});
    }
    if (room->is_private && !room->members.contains(user))
        return local(numeric("442") + target + " :You're not on that channel\r\n");
    if (room->topic.empty()) return local(numeric("331") + channel(room->name) + " :No topic is set\r\n");
    local(numeric("332") + channel(room->name) + " :" + room->topic + "\r\n");
}

void Session::names(const Message& m, const ChatState& state, UserId user) {
    std::string out;
    for (std::string_view target : split_commas(m.params[0])) {
        std::optional<std::string_view> name = room_of(target);
        const Room* room = name ? state.find_room(*name) : nullptr;
        if (room && (!room->is_private || room->members.contains(user)))
            out += names_lines(state, *room);
        else
            out += numeric("366") + std::string(target) + " :End of /NAMES list\r\n";
    }
    local(std::move(out));
}

void Session::list(const Message&, const ChatState& state, UserId user) {
    std::string out = numeric("321") + "Channel :Users  Name\r\n";
    size_t n = 0;
    for (const auto& [key, id] : state.rooms_by_key()) {
        const Room* room = state.room(id);
        if (!room || (room->is_private && !room->members.contains(user))) continue;
        if (++n > list_max) {
            out += ":" + std::string(id_.name) + " NOTICE " + nick_ + " :LIST shows the first " +
                   std::to_string(list_max) + " rooms\r\n";
            break;
        }
        out += numeric("322") + channel(room->name) + " " + std::to_string(room->members.size()) +
               " :" + room->topic + "\r\n";
    }
    local(out + numeric("323") + ":End of /LIST\r\n");
}

void Session::whois(const Message& m, const ChatState& state, UserId user) {
    std::string_view n = m.params.back();
    const User* u = state.find_user(n);
    if (!u)
        return local(numeric("401") + std::string(n) + " :No such nick/channel\r\n" +
                     numeric("318") + std::string(n) + " :End of /WHOIS list\r\n");
    std::string out = numeric("311") + u->name + " " + u->name + " " + std::string(host) + " * :" +
                      u->name + "\r\n";
    out += numeric("312") + u->name + " " + std::string(id_.name) + " :Warren\r\n";
    if (!u->guest) out += numeric("330") + u->name + " " + u->name + " :is logged in as\r\n";
    if (u->conns.empty()) out += numeric("301") + u->name + " :offline\r\n";
    // 671 when every connection of the user came in over TLS; the certificate's fingerprint
    // identifies a client across nicks, so only the user itself sees its own (276).
    bool all_secure = !u->conns.empty() && std::all_of(u->conns.begin(), u->conns.end(),
                                                        [&](ConnId c) { return peers_->secure(c); });
    if (all_secure) out += numeric("671") + u->name + " :is using a secure connection\r\n";
    if (u->id == user && !certfp_.empty())
        out += numeric("276") + u->name + " :has client certificate fingerprint " + certfp_ +
               "\r\n";
    local(out + numeric("318") + u->name + " :End of /WHOIS list\r\n");
}

void Session::who(const Message& m, const ChatState& state, UserId) {
    std::string mask(m.params[0]);
    std::string out;
    auto row = [&](const std::string& chan, const User& u, bool op) {
        out += numeric("352") + chan + " " + u.name + " " + std::string(host) + " " +
               std::string(id_.name) + " " + u.name + " " + (u.conns.empty() ? "G" : "H") +
               (op ? "@" : "") + " :0 " + u.name + "\r\n";
    };
    if (std::optional<std::string_view> name = room_of(mask)) {
        if (const Room* room = state.find_room(*name); room && !room->is_private)
            for (UserId id : room->members)
                if (const User* u = state.user(id)) row(channel(room->name), *u, id == room->owner);
    } else if (const User* u = state.find_user(mask)) {
        row("*", *u, false);
    }
    local(out + numeric("315") + mask + " :End of /WHO list\r\n");
}

void Session::mode(const Message& m, const ChatState& state, UserId) {
    std::string target(m.params[0]);
    if (std::optional<std::string_view> name = room_of(target)) {
        const Room* room = state.find_room(*name);
        if (!room) return local(numeric("403") + target + " :No such channel\r\n");
        if (m.params.size() == 1)
            return local(numeric("324") + channel(room->name) + (room->is_private ? " +int" : " +nt") +
                         "\r\n");
        if (m.params[1] == "b" || m.params[1] == "+b")
            return local(numeric("368") + channel(room->name) + " :End of channel ban list\r\n");
        return local(numeric("472") + std::string(m.params[1]) +
                     " :Channel modes are set through Warren's own room settings\r\n");
    }
    if (!iequals(target, nick_))
        return local(numeric("502") + ":Can't change mode for other users\r\n");
    local(numeric("221") + "+i\r\n");
}

// ---- replies out ------------------------------------------------------------------------------

std::string Session::welcome(const ChatState& state, const User& user) {
    registered_ = true;
    nick_ = user.name;
    std::string n(id_.name);
    std::string out = numeric("001") + ":Welcome to Warren, " + nick_ + "\r\n";
    out += numeric("002") + ":Your host is " + n + ", running version " +
           std::string(id_.version) + "\r\n";
    out += numeric("003") + ":This server keeps every message it acknowledges\r\n";
    out += numeric("004") + n + " warren-" + std::string(id_.version) + " i int\r\n";
    out += numeric("005") + "CASEMAPPING=ascii CHANTYPES=# CHANMODES=,,,int CHANNELLEN=" +
           std::to_string(config_.room_name_max + 1) +
           " NICKLEN=" + std::to_string(config_.username_max) +
           " TOPICLEN=" + std::to_string(config_.topic_max_bytes) +
           " PREFIX=(o)@ NETWORK=Warren UTF8ONLY :are supported by this server\r\n";
    out += numeric("005") + "TARGMAX=PRIVMSG:" + std::to_string(message_targets_max) +
           ",NOTICE:" + std::to_string(message_targets_max) +
           ",JOIN:" + std::to_string(join_targets_max) +
           " MSGREFTYPES=msgid :are supported by this server\r\n";
    out += numeric("422") + ":MOTD File is missing\r\n";
    // The JOIN burst: every room the account is in, by name.
    std::vector<const Room*> rooms;
    for (RoomId id : user.rooms)
        if (const Room* r = state.room(id)) rooms.push_back(r);
    std::sort(rooms.begin(), rooms.end(),
              [](const Room* a, const Room* b) { return a->name < b->name; });
    for (const Room* r : rooms) out += join_block(state, *r);
    return out;
}

std::string Session::join_block(const ChatState& state, const Room& room) {
    std::string out = self_prefix() + " JOIN " + channel(room.name) + "\r\n";
    if (!room.topic.empty())
        out += numeric("332") + channel(room.name) + " :" + room.topic + "\r\n";
    return out + names_lines(state, room);
}

std::string Session::names_lines(const ChatState& state, const Room& room) {
    // A private room is a secret one (+i, hidden from LIST): "@" in RFC 2812's terms.
    std::string head = numeric("353") + (room.is_private ? "@ " : "= ") + channel(room.name) + " :";
    std::string out, names;
    std::vector<std::string_view> sorted;
    for (UserId id : room.members)
        if (const User* u = state.user(id)) sorted.push_back(u->name);
    std::sort(sorted.begin(), sorted.end());
    const User* owner = state.user(room.owner);
    for (std::string_view n : sorted) {
        if (names.size() + n.size() + 2 > names_line_bytes) {
            out += head + names + "\r\n";
            names.clear();
        }
        if (!names.empty()) names += ' ';
        if (owner && owner->name == n) names += '@';
        names += n;
        if (caps_ & cap_userhost_in_names) {
            names += '!';
            names += n;
            names += '@';
            names += host;
        }
    }
    if (!names.empty()) out += head + names + "\r\n";
    return out + numeric("366") + channel(room.name) + " :End of /NAMES list\r\n";
}

std::string Session::error_lines(const Then& then, const Error& e) {
    const std::string& t = then.target;
    bool chan = room_of(t).has_value();
    switch (then.kind) {
        case Then::Kind::sasl:
            return numeric("904") + ":SASL authentication failed\r\n";
        case Then::Kind::pass_login:
            return numeric("464") + ":Password incorrect\r\n" +
                   "ERROR :Closing link: password incorrect\r\n";
        case Then::Kind::guest:
            // The nick is an account's (or another guest's, or reserved): pick another.
            if (e.code == ErrorCode::conflict || e.code == ErrorCode::forbidden)
                return ":" + std::string(id_.name) + " 433 " + (registered_ ? nick_ : "*") + " " +
                       t + " :Nickname is already in use\r\n";
            break;
        case Then::Kind::privmsg:
            if (e.code == ErrorCode::not_found)
                return numeric(chan ? "403" : "401") + t +
                       (chan ? " :No such channel\r\n" : " :No such nick/channel\r\n");
            if (e.code == ErrorCode::forbidden)
                return numeric("404") + t + " :Cannot send to channel (" + e.message + ")\r\n";
            break;
        case Then::Kind::join:
            if (e.code == ErrorCode::forbidden)
                return numeric("473") + t + " :Cannot join channel (+i)\r\n";
            if (e.code == ErrorCode::not_found)
                return numeric("403") + t + " :No such channel\r\n";
            break;
        case Then::Kind::part:
            if (e.code == ErrorCode::conflict)
                return numeric("442") + t + " :You're not on that channel\r\n";
            if (e.code == ErrorCode::not_found)
                return numeric("403") + t + " :No such channel\r\n";
            break;
        case Then::Kind::topic:
            if (e.code == ErrorCode::forbidden)
                return numeric("482") + t + " :You're not channel operator\r\n";
            break;
        case Then::Kind::redact:
            // draft/message-redaction's own codes.
            if (e.code == ErrorCode::not_found)
                return "FAIL REDACT UNKNOWN_MSGID " + t + " " + then.detail + " :" + e.message +
                       "\r\n";
            if (e.code == ErrorCode::forbidden)
                return "FAIL REDACT REDACT_FORBIDDEN " + t + " " + then.detail + " :" + e.message +
                       "\r\n";
            break;
        case Then::Kind::react:
            break;
        case Then::Kind::invite:
            if (e.code == ErrorCode::not_found)
                return e.message.rfind("no user", 0) == 0
                           ? numeric("401") + t + " :No such nick/channel\r\n"
                           : numeric("403") + t + " :No such channel\r\n";
            if (e.code == ErrorCode::forbidden)
                return numeric("482") + t + " :You're not channel operator\r\n";
            break;
    }
    std::string why = e.message;
    if (e.retry_after_ms) why += " (retry in " + std::to_string(*e.retry_after_ms) + " ms)";
    if (caps_ & cap_standard_replies)
        return "FAIL " + then.command + " " + std::string(error_code_name(e.code)) +
               (t.empty() ? "" : " " + t) + " :" + why + "\r\n";
    return ":" + std::string(id_.name) + " NOTICE " + (nick_.empty() ? "*" : nick_) + " :" +
           then.command + (t.empty() ? "" : " " + t) + ": " + why + "\r\n";
}

Session::Rendered Session::render(uint64_t slot, const ReplyBody& body, const ChatState& state) {
    auto it = expected_.find(slot);
    if (it == expected_.end()) return {};
    Then then = std::move(it->second);
    expected_.erase(it);
    if (then.kind == Then::Kind::guest || then.kind == Then::Kind::pass_login) completing_ = false;
    if (const Error* e = std::get_if<Error>(&body)) {
        // RFC 1459: a NOTICE is never answered automatically, errors included.
        if (then.kind == Then::Kind::privmsg && then.command == "NOTICE") return {};
        return {error_lines(then, *e), then.kind == Then::Kind::pass_login};
    }
    switch (then.kind) {
        case Then::Kind::sasl: {
            const auto* in = std::get_if<reply::LoggedIn>(&body);
            if (!in) return {};
            const std::string& a = in->user.username;
            return {numeric("900") + user_prefix(nick_.empty() ? a : nick_) + " " + a +
                        " :You are now logged in as " + a + "\r\n" + numeric("903") +
                        ":SASL authentication successful\r\n",
                    false};
        }
        case Then::Kind::pass_login:
        case Then::Kind::guest: {
            const auto* in = std::get_if<reply::LoggedIn>(&body);
            const User* u = in ? state.find_user(in->user.username) : nullptr;
            if (!u) return {"ERROR :Closing link: login failed\r\n", true};
            return {welcome(state, *u), false};
        }
        case Then::Kind::join: {
            const auto* r = std::get_if<reply::Room>(&body);
            const Room* room = r ? state.find_room(r->room.name) : nullptr;
            if (!room) return {self_prefix() + " JOIN " + then.target + "\r\n", false};
            return {join_block(state, *room), false};
        }
        case Then::Kind::part:
            return {self_prefix() + " PART " + then.target + then.detail + "\r\n", false};
        case Then::Kind::privmsg: {
            const auto* msg = std::get_if<reply::Message>(&body);
            if (!msg || !(caps_ & cap_echo_message)) return {};
            return {message_lines(msg->message->view, caps_, then.command), false};
        }
        case Then::Kind::topic: {
            const auto* r = std::get_if<reply::Room>(&body);
            if (!r) return {};
            return {self_prefix() + " TOPIC " + channel(r->room.name) + " :" + r->room.topic + "\r\n",
                    false};
        }
        case Then::Kind::redact:
            if (!(caps_ & cap_message_redaction)) return {};
            return {self_prefix() + " REDACT " + then.target + " " + then.detail + "\r\n", false};
        case Then::Kind::react:
            if (!(caps_ & cap_echo_message) || !(caps_ & cap_message_tags)) return {};
            return {"@" + then.detail + " " + self_prefix() + " TAGMSG " + then.target + "\r\n",
                    false};
        case Then::Kind::invite: {
            const auto* r = std::get_if<reply::Invitation>(&body);
            if (!r) return {};
            return {numeric("341") + r->invitation.to + " " + channel(r->invitation.room) + "\r\n",
                    false};
        }
    }
    return {};
}

// ---- events out -------------------------------------------------------------------------------

std::string render_event(const Event& e, uint32_t caps) {
    struct Visitor {
        uint32_t caps;
        std::string operator()(const event::Hello&) const { return {}; }
        std::string operator()(const event::MessagePosted& p) const {
            return message_lines(p.message->view, caps, p.notice ? "NOTICE" : "PRIVMSG");
        }
        std::string operator()(const event::MessageEdited& p) const {
            // No IRC spec for edits: plain clients see the new text, marked.
            return message_lines(p.message->view, caps, "NOTICE", "(edited) ");
        }
        std::string operator()(const event::MessageDeleted& d) const {
            if (!(caps & cap_message_redaction) || d.by.empty()) return {};
            std::string target = d.room.empty() ? d.to : channel(d.room);
            return ":" + user_prefix(d.by) + " REDACT " + target + " " +
                   std::to_string(d.message_id) + "\r\n";
        }
        std::string operator()(const event::ReactionChanged& r) const {
            if (!(caps & cap_message_tags)) return {};
            std::string target = r.room.empty() ? r.to : channel(r.room);
            return std::string(r.added ? "@+draft/react=" : "@+draft/unreact=") +
                   escape_tag_value(r.emoji) + ";+draft/reply=" + std::to_string(r.message_id) +
                   " :" + user_prefix(r.user) + " TAGMSG " + target + "\r\n";
        }
        std::string operator()(const event::MembershipChanged& m) const {
            if (m.quit) return {};  // the QUIT (below) says it once
            if (!m.joined && !m.reason.empty())
                return ":" + user_prefix(m.user) + " PART " + channel(m.room) + " :" + m.reason +
                       "\r\n";
            return ":" + user_prefix(m.user) + (m.joined ? " JOIN " : " PART ") + channel(m.room) +
                   "\r\n";
        }
        // An account going offline stays in its rooms; a guest going is IRC's QUIT.
        std::string operator()(const event::Presence& p) const {
            if (!p.quit) return {};
            return ":" + user_prefix(p.user) + " QUIT :" + (p.reason.empty() ? "Quit" : p.reason) +
                   "\r\n";
        }
        std::string operator()(const event::InvitationChanged& i) const {
            if (i.what != event::InvitationChanged::What::received) return {};
            return ":" + user_prefix(i.invitation.from) + " INVITE " + i.invitation.to + " " +
                   channel(i.invitation.room) + "\r\n";
        }
        std::string operator()(const event::TopicChanged& t) const {
            return ":" + user_prefix(t.by) + " TOPIC " + channel(t.room) + " :" + t.topic + "\r\n";
        }
        std::string operator()(const event::ReadMarker&) const { return {}; }
        std::string operator()(const event::Disconnect& d) const {
            return "ERROR :Closing link: " + std::string(reason_text(d.reason)) + "\r\n";
        }
    };
    return std::visit(Visitor{caps}, e);
}

std::string closing_line(DisconnectReason reason, bool output_dropped) {
    return "ERROR :Closing link: " + std::string(reason_text(reason)) +
           (output_dropped ? " (unsent replies dropped)" : "") + "\r\n";
}

}  // namespace warren::irc
