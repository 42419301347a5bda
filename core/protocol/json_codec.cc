#include "core/protocol/json_codec.h"

#include <type_traits>

#include "core/protocol/json_writer.h"

namespace warren {

namespace {

void write(JsonWriter& w, const UserView& u) {
    w.begin_object().key("username").value(u.username).key("online").value(u.online);
    w.end_object();
}

void write(JsonWriter& w, const RoomView& r) {
    w.begin_object().key("name").value(r.name).key("topic").value(r.topic);
    w.key("visibility").value(r.is_private ? "private" : "public");
    w.key("owner").value(r.owner).key("members").value(r.members).end_object();
}

void write(JsonWriter& w, const MessageView& m) {
    w.begin_object().key("id").value(m.id);
    w.key("room").value_or_null(m.room).key("to").value_or_null(m.to);
    w.key("author").value_or_null(m.author);
    w.key("text").value(m.text).key("ts").value(m.ts_ms);
    w.key("reply_to").value_or_null(m.reply_to).key("edited_ts").value_or_null(m.edited_ms);
    w.key("deleted").value(m.deleted);
    w.key("reactions").begin_object();
    for (const auto& [emoji, users] : m.reactions) {
        w.key(emoji).begin_array();
        for (const auto& u : users) w.value(u);
        w.end_array();
    }
    w.end_object().end_object();
}

void write(JsonWriter& w, const SharedMessage& m) {
    if (m.json.empty()) {
        JsonWriter obj;
        write(obj, m.view);
        m.json = obj.take();
    }
    w.raw(m.json);
}

void write(JsonWriter& w, const InvitationView& i) {
    w.begin_object().key("id").value(i.id).key("room").value(i.room);
    w.key("from").value(i.from).key("to").value(i.to);
    w.key("ts").value(i.ts_ms).key("expires_ts").value(i.expires_ms).end_object();
}

template <class T>
void write_array(JsonWriter& w, std::string_view key, const std::vector<T>& items) {
    w.key(key).begin_array();
    for (const auto& item : items) write(w, item);
    w.end_array();
}

// The fields after "ok":true of each payload.
struct OkFields {
    JsonWriter& w;
    void operator()(const reply::Done&) const {}
    void operator()(const reply::Pong&) const { w.key("pong").value(true); }
    void operator()(const reply::LoggedIn& r) const {
        w.key("user");
        write(w, r.user);
        w.key("session").begin_object().key("token").value(r.session.token);
        w.key("expires_ts").value(r.session.expires_ms).end_object();
    }
    void operator()(const reply::Room& r) const {
        w.key("room");
        write(w, r.room);
    }
    void operator()(const reply::RoomPage& r) const {
        write_array(w, "rooms", r.rooms);
        w.key("next_cursor").value_or_null(r.next_cursor);
    }
    void operator()(const reply::Message& r) const {
        w.key("message");
        write(w, *r.message);
    }
    void operator()(const reply::MessagePage& r) const {
        write_array(w, "messages", r.messages);
        w.key("has_more").value(r.has_more);
    }
    void operator()(const reply::Thread& r) const {
        w.key("root");
        write(w, r.root);
        write_array(w, "replies", r.replies);
        w.key("has_more").value(r.has_more);
    }
    void operator()(const reply::SearchResults& r) const { write_array(w, "results", r.results); }
    void operator()(const reply::Invitation& r) const {
        w.key("invitation");
        write(w, r.invitation);
    }
    void operator()(const reply::Invitations& r) const {
        write_array(w, "invitations", r.invitations);
    }
    void operator()(const reply::Users& r) const { write_array(w, "users", r.users); }
    void operator()(const reply::Certificates& r) const {
        w.key("certificates").begin_array();
        for (const auto& c : r.certificates)
            w.begin_object()
                .key("fingerprint")
                .value(c.fingerprint)
                .key("added_ts")
                .value(c.added_ms)
                .end_object();
        w.end_array();
    }
    void operator()(const Error& e) const {
        w.key("error").begin_object();
        w.key("code").value(error_code_name(e.code)).key("message").value(e.message);
        if (!e.field.empty()) w.key("field").value(e.field);
        if (e.retry_after_ms) w.key("retry_after_ms").value(*e.retry_after_ms);
        w.end_object();
    }
};

struct EventFields {
    JsonWriter& w;
    void ev(std::string_view name) const { w.key("ev").value(name); }
    void operator()(const event::Hello& e) const {
        ev("HELLO");
        w.key("server").value(e.server).key("version").value(e.version);
        w.key("protocol").value(e.protocol).key("limits").begin_object();
        w.key("max_frame_bytes").value(e.max_frame_bytes);
        w.key("max_text_bytes").value(e.max_text_bytes).end_object();
    }
    void operator()(const event::MessagePosted& e) const {
        ev(e.direct ? "DIRECT_MESSAGE" : "MESSAGE");
        w.key("message");
        write(w, *e.message);
    }
    void operator()(const event::MessageEdited& e) const {
        ev("MESSAGE_EDITED");
        w.key("message");
        write(w, *e.message);
    }
    void operator()(const event::MessageDeleted& e) const {
        ev("MESSAGE_DELETED");
        w.key("message_id").value(e.message_id);
        if (!e.room.empty())
            w.key("room").value(e.room);
        else
            w.key("with").value(e.with);
    }
    void operator()(const event::ReactionChanged& e) const {
        ev(e.added ? "REACTION_ADDED" : "REACTION_REMOVED");
        w.key("message_id").value(e.message_id).key("emoji").value(e.emoji);
        w.key("user").value(e.user);
    }
    void operator()(const event::MembershipChanged& e) const {
        ev(e.joined ? "MEMBER_JOINED" : "MEMBER_LEFT");
        w.key("room").value(e.room).key("user").value(e.user);
    }
    void operator()(const event::Presence& e) const {
        ev("PRESENCE");
        w.key("user").value(e.user).key("online").value(e.online);
    }
    void operator()(const event::InvitationChanged& e) const {
        using W = event::InvitationChanged::What;
        ev(e.what == W::received   ? "INVITATION"
           : e.what == W::accepted ? "INVITATION_ACCEPTED"
                                   : "INVITATION_DECLINED");
        w.key("invitation");
        write(w, e.invitation);
    }
    void operator()(const event::TopicChanged& e) const {
        ev("TOPIC_CHANGED");
        w.key("room").value(e.room).key("topic").value(e.topic).key("by").value(e.by);
    }
    void operator()(const event::ReadMarker& e) const {
        ev("READ_MARKER");
        if (!e.room.empty())
            w.key("room").value(e.room);
        else
            w.key("with").value(e.with);
        w.key("message_id").value(e.message_id);
    }
    void operator()(const event::Disconnect& e) const {
        ev("DISCONNECT");
        w.key("reason").value(disconnect_reason_name(e.reason));
        if (e.retry_after_ms) w.key("retry_after_ms").value(*e.retry_after_ms);
        if (e.output_dropped) w.key("output_dropped").value(true);
    }
};

}  // namespace

std::string encode_json_reply(std::optional<int64_t> re, const ReplyBody& body) {
    JsonWriter w;
    w.begin_object().key("re");
    if (re)
        w.value(*re);
    else
        w.null();
    w.key("ok").value(!std::holds_alternative<Error>(body));
    std::visit(OkFields{w}, body);
    w.end_object();
    return w.take_line();
}

std::string encode_json_event(const Event& event) {
    JsonWriter w;
    w.begin_object();
    std::visit(EventFields{w}, event);
    w.end_object();
    return w.take_line();
}

}  // namespace warren
