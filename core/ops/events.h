// Typed events: what the server pushes, before any wire encoding (PROTOCOL.md "Events").
// The core addresses each event to a list of connections and keeps it as one shared value;
// every encoding (JSON lines now) renders it once and shares the bytes among the recipients
// that speak it.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "core/ops/codes.h"
#include "core/ops/replies.h"

namespace warren::event {

struct Hello {
    std::string_view server;
    std::string_view version;
    int64_t protocol = 1;
    int64_t max_frame_bytes = 0;
    int64_t max_text_bytes = 0;
};
// MESSAGE (room) or DIRECT_MESSAGE.
struct MessagePosted {
    std::shared_ptr<const SharedMessage> message;
    bool direct = false;
    bool notice = false;  // sent as an IRC NOTICE: IRC members see it as one (not stored)
};
struct MessageEdited {
    std::shared_ptr<const SharedMessage> message;
};
// In a room (room set) or a conversation (with: the other party, from the receiver's side).
struct MessageDeleted {
    MessageId message_id = 0;
    std::string room;
    std::string with;
    std::string by;  // who deleted it (IRC shows REDACT from them)
    std::string to;  // a direct message's recipient (IRC's target for it)
};
struct ReactionChanged {
    MessageId message_id = 0;
    std::string emoji;
    std::string user;
    bool added = true;
    // Where the message is, for IRC's TAGMSG: its room, or a direct message's recipient.
    std::string room, to;
};
struct MembershipChanged {
    std::string room;
    std::string user;
    bool joined = true;
    bool quit = false;   // a guest left every room as it went (IRC shows the QUIT instead)
    std::string reason;  // IRC's PART reason (JSON does not show it)
};
struct Presence {
    std::string user;
    bool online = true;
    bool quit = false;   // a guest went: its name is gone with it (IRC shows it as QUIT)
    std::string reason;  // the guest's QUIT reason, if it gave one (JSON does not show it)
};
struct InvitationChanged {
    enum class What { received, accepted, declined };
    What what = What::received;
    InvitationView invitation;
};
struct TopicChanged {
    std::string room, topic, by;
};
// In a room (room set) or a conversation (with set).
struct ReadMarker {
    std::string room, with;
    MessageId message_id = 0;
};
struct Disconnect {
    DisconnectReason reason = DisconnectReason::shutdown;
    std::optional<int64_t> retry_after_ms;
    bool output_dropped = false;  // replies and events queued for the client were dropped
};

}  // namespace warren::event

namespace warren {

using Event = std::variant<event::Hello, event::MessagePosted, event::MessageEdited,
                           event::MessageDeleted, event::ReactionChanged, event::MembershipChanged,
                           event::Presence, event::InvitationChanged, event::TopicChanged,
                           event::ReadMarker, event::Disconnect>;

// An event and the connections it goes to.
struct Addressed {
    std::vector<ConnId> to;
    Event event;
    ConnId cause = 0;  // the connection whose request caused it (0: none); for backpressure
    // When it was made (Connections::stamp): a connection the core decided to close still
    // gets the events made before that decision, and none made after.
    uint64_t stamp = 0;
};

}  // namespace warren
