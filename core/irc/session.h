// The IRC front door: one IRC connection's session (registration, capabilities, SASL, its
// nick), the translation of IRC commands into the core's typed requests, and the rendering
// of typed replies and events as IRC lines (docs/IRC.md). Sans-IO like the rest of the core:
// the facade feeds it lines and runs the requests it asks for; Connections renders with it.
//
// One IRC line becomes zero or more Steps, queued here in order. A Step either is a local
// answer (lines ready now: CAP, PING, NAMES from memory, errors) or asks the core for one
// request (JOIN -> JOIN_ROOM or CREATE_ROOM, PRIVMSG -> SEND_MESSAGE or DIRECT_MESSAGE, SASL
// -> LOGIN, ...), whose typed reply comes back to render(). Each Step gets its own reply
// slot, and slots leave in order: that is what makes PONG a barrier (everything caused by
// earlier lines on the connection is out before it). Events caused by a connection's own
// request are never addressed to that connection; the reply renders what it sees instead
// (its JOIN, its echo-message).
//
// The chat state is read (const) to choose between requests (JOIN of a room that does not
// exist creates it) and to render what IRC shows from memory (NAMES, the JOIN burst).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/base.h"
#include "core/chat/state.h"
#include "core/config.h"
#include "core/fifo.h"
#include "core/irc/message.h"
#include "core/ops/events.h"
#include "core/ops/replies.h"
#include "core/ops/requests.h"

namespace warren::irc {

// Capabilities offered (CAP LS), one bit each.
enum Cap : uint32_t {
    cap_message_tags = 1u << 0,
    cap_server_time = 1u << 1,
    cap_echo_message = 1u << 2,
    cap_sasl = 1u << 3,
    cap_account_tag = 1u << 4,
    cap_multi_prefix = 1u << 5,
    cap_cap_notify = 1u << 6,
    cap_standard_replies = 1u << 7,
    cap_invite_notify = 1u << 8,
    cap_message_redaction = 1u << 9,  // draft/message-redaction
    cap_userhost_in_names = 1u << 10,
    cap_batch = 1u << 11,
    cap_labeled_response = 1u << 12,
};
// The capabilities that change how an event's lines look (their tags, whether REDACT shows).
inline constexpr uint32_t event_caps_mask =
    cap_message_tags | cap_server_time | cap_account_tag | cap_message_redaction;

// How to render the core's reply to a Step's request.
struct Then {
    enum class Kind : uint8_t {
        sasl,
        pass_login,
        guest,
        join,
        part,
        privmsg,
        topic,
        invite,
        redact,
        react
    };
    Kind kind = Kind::privmsg;
    std::string target;   // the channel or nick as the client wrote it
    std::string command;  // the IRC command (NOTICE answers as NOTICE)
    std::string detail;   // redact: the msgid; react: the tags of the echo
};

struct Step {
    std::optional<Request> request;
    Then then;          // with a request: how to render its reply
    std::string lines;  // without: the answer, ready now (may be empty)
    bool hang_up = false;  // close after `lines` (QUIT, registration refused)
    // labeled-response: the client's label of the line this Step came from (escaped, as it
    // goes back on the wire), and whether it is that line's last Step.
    std::string label;
    bool last_of_label = false;
};

// What the server's lines say about it.
struct Identity {
    std::string_view name;     // the source of server lines
    std::string_view version;  // 002, 004
};

// What a session may ask about other connections (Connections answers).
class Peers {
  public:
    virtual bool secure(ConnId id) const = 0;

  protected:
    ~Peers() = default;
};

class Session {
  public:
    // `tls`: the connection came in over TLS. `peers`: outlives the session.
    Session(const Config& config, Identity id, bool tls, const Peers& peers)
        : config_(config), id_(id), peers_(&peers), tls_(tls) {}

    // The SHA-256 fingerprint (lowercase hex) of the client's TLS certificate, known after
    // the handshake and before the first line (WHOIS 276, SASL EXTERNAL).
    void set_certificate(std::string fingerprint) { certfp_ = std::move(fingerprint); }
    const std::string& certificate() const { return certfp_; }

    // One line from the client (without "\r\n"). `user`: the account the core has this
    // connection logged in as. The Steps it makes wait in next_step().
    void on_line(std::string_view line, const ChatState& state, std::optional<UserId> user);
    // A line too long for IRC (417).
    void too_long();
    bool has_step() const { return !steps_.empty(); }
    const Step& peek_step() const { return steps_.front(); }
    Step next_step();

    // labeled-response. The Step taken for `slot` (before its answer is asked for): its label,
    // if any, is remembered. labelled() then turns what the slot renders into what goes out:
    // the lines of one labelled line wait until all its slots are answered, and the last one
    // carries them all, labelled (ACK for none, the label on a single line, else a
    // labeled-response BATCH). Slots without a label pass through.
    void bind_slot(uint64_t slot, const Step& step);
    std::string labelled(uint64_t slot, std::string bytes);

    // The reply slot `slot` answers the Step whose `then` this is.
    void expect(uint64_t slot, Then then) { expected_.emplace(slot, std::move(then)); }
    struct Rendered {
        std::string bytes;
        bool hang_up = false;
    };
    // Renders the typed reply for slot `slot` (a slot without a Then renders nothing).
    Rendered render(uint64_t slot, const ReplyBody& body, const ChatState& state);

    // The capability bits that shape event lines for this connection (a key to share bytes).
    uint32_t event_caps() const { return caps_ & event_caps_mask; }
    bool registered() const { return registered_; }
    // A login that completes registration is asked for and not answered: later lines wait
    // for it (JOIN right after USER needs the nick's user).
    bool registering() const { return completing_; }
    const std::string& nick() const { return nick_; }
    // What the client's QUIT said (a guest's QUIT shows it to the rooms it leaves).
    const std::string& quit_reason() const { return quit_reason_; }

  private:
    void take_line(std::string_view line, const ChatState& state, std::optional<UserId> user);
    void registration_line(const Message& m, const ChatState& state,
                           std::optional<UserId> user);
    struct Command;
    static const Command commands_[];
    void command(const Message& m, const ChatState& state, UserId user);
    void cap(const Message& m, const ChatState& state, std::optional<UserId> user);
    std::string cap_ls(bool v302) const;  // CAP LS's list (with values for 302)
    void authenticate(const Message& m, std::optional<UserId> user);
    void try_complete(const ChatState& state, std::optional<UserId> user);
    // Registered commands (the table in session.cc).
    void nick_change(const Message& m, const ChatState& state, UserId user);
    void reregister(const Message& m, const ChatState& state, UserId user);
    void reauthenticate(const Message& m, const ChatState& state, UserId user);
    void join(const Message& m, const ChatState& state, UserId user);
    void part(const Message& m, const ChatState& state, UserId user);
    void privmsg(const Message& m, const ChatState& state, UserId user);
    void topic(const Message& m, const ChatState& state, UserId user);
    void names(const Message& m, const ChatState& state, UserId user);
    void list(const Message& m, const ChatState& state, UserId user);
    void whois(const Message& m, const ChatState& state, UserId user);
    void who(const Message& m, const ChatState& state, UserId user);
    void mode(const Message& m, const ChatState& state, UserId user);
    void invite(const Message& m, const ChatState& state, UserId user);
    void away(const Message& m, const ChatState& state, UserId user);
    void ison(const Message& m, const ChatState& state, UserId user);
    void redact(const Message& m, const ChatState& state, UserId user);
    void tagmsg(const Message& m, const ChatState& state, UserId user);

    std::string welcome(const ChatState& state, const User& user);
    std::string join_block(const ChatState& state, const Room& room);
    std::string names_lines(const ChatState& state, const Room& room);
    std::string error_lines(const Then& then, const Error& e);

    // ":server CODE nick " (a numeric's start; the nick is "*" before registration).
    std::string numeric(std::string_view code) const;
    // EXTERNAL only where the handshake showed a client certificate.
    std::string_view sasl_mechanisms() const { return certfp_.empty() ? "PLAIN" : "EXTERNAL,PLAIN"; }
    std::string self_prefix() const;
    void local(std::string lines, bool hang_up = false);
    void ask(Request request, Then then);

    const Config& config_;
    Identity id_;
    const Peers* peers_;
    bool tls_;
    std::string certfp_;
    uint32_t caps_ = 0;
    bool negotiating_ = false;  // CAP LS or REQ seen and no CAP END yet
    bool registered_ = false;
    bool sasl_started_ = false;  // AUTHENTICATE PLAIN accepted, waiting for the payload
    bool sasl_external_ = false;  // ... or EXTERNAL (the connection showed a certificate)
    bool completing_ = false;    // a PASS or guest login asked for, not answered yet
    std::string sasl_buffer_;
    std::string nick_, user_;
    std::string quit_reason_;
    std::optional<std::string> pass_;
    Fifo<Step> steps_;
    std::map<uint64_t, Then> expected_;
    std::string label_;  // the label of the line being taken (labeled-response on)
    // The slots of labelled lines not yet answered whole: each slot's label group and bytes.
    struct Labelled {
        std::string label;
        bool last = false;
        bool answered = false;
        std::string bytes;
    };
    std::map<uint64_t, Labelled> labelled_;
    uint32_t next_batch_ = 1;
};

// The bytes an event shows an IRC connection whose event_caps() is `caps` (empty: nothing
// to show). The same for every recipient with the same caps.
std::string render_event(const Event& e, uint32_t caps);
// The last line before the server closes an IRC connection; `output_dropped` when what was
// queued for it was dropped (a slow consumer).
std::string closing_line(DisconnectReason reason, bool output_dropped = false);

}  // namespace warren::irc
