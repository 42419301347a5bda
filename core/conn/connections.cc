#include "core/conn/connections.h"

#include <algorithm>

#include "core/chaos.h"
#include "core/protocol/json_codec.h"

namespace warren {

namespace {

// A reader counts as reading if it read something this recently: only such a reader holds
// senders back, so one that stopped never stalls its room.
constexpr int64_t reading_window_us = 1'000'000;

std::shared_ptr<const std::string> share(std::string s) {
    return std::make_shared<const std::string>(std::move(s));
}

// The last line before a close: DISCONNECT on JSON lines, ERROR on IRC.
std::shared_ptr<const std::string> closing_bytes(Wire wire, DisconnectReason reason,
                                                 std::optional<int64_t> retry_after_ms,
                                                 bool output_dropped = false) {
    if (wire == Wire::irc) return share(irc::closing_line(reason, output_dropped));
    return share(encode_json_event(event::Disconnect{reason, retry_after_ms, output_dropped}));
}

// The closing line on the connection's own wire.
std::shared_ptr<const std::string> closing_bytes(const Connections::Conn& c,
                                                 DisconnectReason reason,
                                                 std::optional<int64_t> retry_after_ms,
                                                 bool output_dropped = false) {
    return closing_bytes(c.irc ? Wire::irc : Wire::json, reason, retry_after_ms, output_dropped);
}

// An IRC line may carry 8191 bytes of tags before its 512.
constexpr size_t irc_frame_max = irc::tags_max_bytes + irc::line_max_bytes;

}  // namespace

Connections::Connections(const Config& config, Monitor& monitor, Outputs& outputs,
                         const ChatState& state)
    : config_(config),
      monitor_(monitor),
      outputs_(outputs),
      state_(state),
      irc_id_{config.irc_server_name.view(), WARREN_VERSION} {
    hello_ = share(encode_json_event(event::Hello{"warren", WARREN_VERSION, 1,
                                                  static_cast<int64_t>(config.max_frame_bytes),
                                                  static_cast<int64_t>(config.text_max_bytes)}));
}

Connections::Conn& Connections::open(ConnId id, std::string_view peer_ip, const std::string& ip_key,
                                     Time now, Wire wire, Transport transport) {
    bool irc = wire == Wire::irc;
    auto [it, inserted] = conns_.try_emplace(
        id, id, peer_ip, ip_key, irc ? irc_frame_max : config_.max_frame_bytes, now.mono_us, irc);
    WARREN_CHECK(inserted);
    Conn& c = it->second;
    c.tls = transport == Transport::tls;
    if (irc)
        c.irc = std::make_unique<irc::Session>(config_, irc_id_, c.tls, *this);
    else
        send(c, hello_);
    return c;
}

void Connections::refuse(ConnId id, DisconnectReason reason, std::optional<int64_t> retry_after_ms,
                         Wire wire) {
    outputs_.push_back(Close{id, disconnect_reason_name(reason),
                             closing_bytes(wire, reason, retry_after_ms), false, false});
}

bool Connections::secure(ConnId id) const {
    auto it = conns_.find(id);
    return it != conns_.end() && it->second.tls;
}

bool Connections::owes_replies(ConnId id) const {
    auto it = conns_.find(id);
    return it != conns_.end() &&
           (it->second.state == State::draining || it->second.state == State::closing);
}

Connections::Conn* Connections::live(ConnId id) {
    auto it = conns_.find(id);
    if (it == conns_.end() || it->second.state != State::open) return nullptr;
    return &it->second;
}

uint64_t Connections::open_slot(Conn& c, Time now) {
    c.slots.emplace_back();
    c.slots.back().received_us = now.mono_us;
    return c.slot_base + c.slots.size() - 1;
}

void Connections::answer(ConnId id, uint64_t slot, std::optional<int64_t> re, const ReplyBody& body,
                         Time now, std::optional<DisconnectReason> close_after) {
    auto it = conns_.find(id);
    if (it == conns_.end()) return;  // gone meanwhile: nobody to answer
    Conn& c = it->second;
    WARREN_CHECK(slot >= c.slot_base && slot < c.slot_base + c.slots.size());
    Slot& s = c.slots[slot - c.slot_base];
    WARREN_CHECK(!s.ready);
    s.ready = true;
    if (const Error* e = std::get_if<Error>(&body)) s.error = *e;
    if (c.irc) {
        bool registering = c.irc->registering();
        irc::Session::Rendered r = c.irc->render(slot, body, state_);
        s.bytes = share(c.irc->labelled(slot, std::move(r.bytes)));
        s.hang_up = r.hang_up;
        if (registering && !c.irc->registering()) released_.push_back(c.id);  // lines waited
    } else {
        s.bytes = share(encode_json_reply(re, body));
    }
    s.close_after = close_after;
    flush(c, now);
}

void Connections::answer_lines(Conn& c, uint64_t slot, std::string lines, bool hang_up, Time now) {
    WARREN_CHECK(slot >= c.slot_base && slot < c.slot_base + c.slots.size());
    Slot& s = c.slots[slot - c.slot_base];
    WARREN_CHECK(!s.ready);
    s.ready = true;
    s.local = true;
    s.bytes = share(c.irc ? c.irc->labelled(slot, std::move(lines)) : std::move(lines));
    s.hang_up = hang_up;
    flush(c, now);
}

void Connections::flush(Conn& c, Time now) {
    while (!c.slots.empty() && c.slots.front().ready) {
        Slot s = std::move(c.slots.front());
        c.slots.pop_front();
        ++c.slot_base;
        std::optional<ErrorCode> code;
        if (s.error) code = s.error->code;
        if (!s.local) monitor_.request_done(s.op, code, now.mono_us - s.received_us, now.mono_us);
        if (c.state == State::closed) return;
        if (s.error) outputs_.push_back(Refused{c.id, s.op, std::move(*s.error)});
        send(c, s.bytes);
        if (s.close_after) return close(c, *s.close_after);
        if (s.hang_up) return hang_up(c);
    }
}

// The same bytes to the connection after the last output's joins that Send: an event's
// audience becomes one output, not one per receiver (nothing else came between, so the order
// every connection sees is the same).
void Connections::send(Conn& c, const std::shared_ptr<const std::string>& bytes) {
    if (bytes->empty()) return;  // an IRC rendering with nothing to show
    if (c.outbound_bytes == 0) c.progress_us = now_us_;
    c.outbound_bytes += bytes->size();
    outbound_total_ += bytes->size();
    Send* last = outputs_.empty() ? nullptr : std::get_if<Send>(&outputs_.back());
    if (last && last->bytes == bytes)
        last->to.push_back(c.id);
    else
        outputs_.push_back(Send{{c.id}, bytes});
    size_t cap = c.logged_in ? config_.outbound_bytes_max : config_.outbound_bytes_guest_max;
    if (c.outbound_bytes > 4096 && WARREN_CHAOS(shrink_outbound)) cap = 4096;
    if (c.outbound_bytes > cap) close_slow_reader(c);
    if (outbound_total_ > config_.outbound_bytes_total_max) shed();
}

void Connections::ping_quiet_irc(Time now) {
    int64_t ping_after = us_from_ms(config_.irc_ping_interval_ms);
    int64_t close_after = ping_after + us_from_ms(config_.irc_ping_timeout_ms);
    for (auto& [id, c] : conns_) {
        if (!c.irc || c.state != State::open || !c.logged_in || c.paused) continue;
        int64_t quiet = now.mono_us - c.active_us;
        if (quiet >= close_after) {
            close(c, DisconnectReason::idle_timeout);
        } else if (quiet >= ping_after && !c.pinged) {
            c.pinged = true;
            send(c, share("PING :" + config_.irc_server_name.str() + "\r\n"));
        }
    }
}

// Rare (the budget is far above what readers that read leave unsent), so a scan is fine.
void Connections::shed() {
    while (outbound_total_ > config_.outbound_bytes_total_max) {
        Conn* largest = nullptr;
        for (auto& [id, c] : conns_)
            if (c.state != State::closed &&
                (!largest || c.outbound_bytes > largest->outbound_bytes))
                largest = &c;
        if (!largest || largest->outbound_bytes == 0) return;
        close_slow_reader(*largest);
    }
}

void Connections::deliver(const std::vector<ConnId>& to, const Event& event, ConnId cause,
                          uint64_t stamp) {
    std::shared_ptr<const std::string> json;  // encoded for the first recipient, then shared
    // IRC: one encoding per set of tag capabilities met so far (few: most clients ask alike).
    std::vector<std::pair<uint32_t, std::shared_ptr<const std::string>>> irc;
    size_t high = hold_mark();
    for (ConnId id : to) {
        auto found = conns_.find(id);
        if (found == conns_.end()) continue;
        Conn* c = &found->second;
        // Open, or closing and the event was made before the decision.
        if (c->state == State::closed || (c->state != State::open && stamp > c->events_through))
            continue;
        if (c->irc) {
            uint32_t caps = c->irc->event_caps();
            auto it = std::find_if(irc.begin(), irc.end(),
                                   [&](const auto& e) { return e.first == caps; });
            if (it == irc.end())
                it = irc.emplace(irc.end(), caps, share(irc::render_event(event, caps)));
            send(*c, it->second);
        } else {
            if (!json) json = share(encode_json_event(event));
            send(*c, json);
        }
        if (cause != 0 && cause != id && c->state == State::open && c->outbound_bytes > high &&
            now_us_ - c->progress_us < reading_window_us)
            hold(*c, cause);
    }
}

// Each connection's share of what may be owed before senders are held (hold_total(), far
// below the memory bound, so nobody is shed for being merely behind), at least 64 KiB so a
// big room's readers are not held at every few lines.
size_t Connections::hold_mark() const {
    size_t share = hold_total() / std::max<size_t>(1, conns_.size());
    return std::min(stalled_threshold(), std::max(share, Config::outbound_hold_share_min));
}

void Connections::hold(Conn& reader, ConnId sender) {
    if (std::find(reader.holding.begin(), reader.holding.end(), sender) != reader.holding.end())
        return;
    Conn* s = live(sender);
    if (!s) return;
    reader.holding.push_back(sender);
    ++s->held_by;
}

void Connections::release_holds(Conn& reader) {
    for (ConnId id : std::exchange(reader.holding, {})) {
        auto it = conns_.find(id);
        if (it == conns_.end() || it->second.held_by == 0) continue;
        if (--it->second.held_by == 0) released_.push_back(id);
    }
}

void Connections::let_go(Conn& c) {
    release_holds(c);
    c.events_through = std::min(c.events_through, events_made_);
    closed_.push_back(c.id);
}

void Connections::finish(Conn& c, std::string_view reason, std::shared_ptr<const std::string> last,
                         bool drop_unsent) {
    c.state = State::closed;
    // What it holds leaves with it: the driver writes it (or drops it: drop_unsent) and closes.
    outbound_total_ -= std::min(outbound_total_, c.outbound_bytes);
    c.outbound_bytes = 0;
    outputs_.push_back(Close{c.id, reason, std::move(last), drop_unsent});
    if (c.forgotten) finished_.push_back(c.id);
}

void Connections::drain(Conn& c) const {
    if (c.state != State::open) return;
    c.state = State::draining;
    c.events_through = events_made_;
}

void Connections::close(Conn& c, DisconnectReason reason, std::optional<int64_t> retry_after_ms) {
    if (c.state == State::closed || c.state == State::closing) return;
    monitor_.connection_closed(disconnect_reason_name(reason));
    let_go(c);
    c.state = State::closing;
    c.closing_reason = reason;
    c.closing_retry_ms = retry_after_ms;
    closing_.push_back(c.id);
}

void Connections::finish_closing(uint64_t first_waiting_stamp) {
    std::erase_if(closing_, [&](ConnId id) {
        auto it = conns_.find(id);
        if (it == conns_.end() || it->second.state != State::closing) return true;
        Conn& c = it->second;
        if (!c.slots.empty() || c.events_through >= first_waiting_stamp) return false;
        finish(c, disconnect_reason_name(c.closing_reason),
               closing_bytes(c, c.closing_reason, c.closing_retry_ms), false);
        return true;
    });
    for (ConnId id : std::exchange(finished_, {})) conns_.erase(id);
}

void Connections::close_slow_reader(Conn& c) {
    if (c.state == State::closed) return;
    if (c.state != State::closing) {
        monitor_.connection_closed(disconnect_reason_name(DisconnectReason::slow_consumer));
        let_go(c);
    }
    finish(c, disconnect_reason_name(DisconnectReason::slow_consumer),
           closing_bytes(c, DisconnectReason::slow_consumer, std::nullopt, true), true);
}

void Connections::hang_up(Conn& c) {
    if (c.state == State::closed) return;
    if (c.state != State::closing) {
        monitor_.connection_closed("QUIT");
        let_go(c);
    }
    finish(c, "QUIT", nullptr, false);
}

void Connections::forget(ConnId id) {
    auto it = conns_.find(id);
    if (it == conns_.end()) return;
    if (it->second.state == State::closing)
        it->second.forgotten = true;
    else
        conns_.erase(it);
}

void Connections::sent(ConnId id, size_t n_bytes) {
    auto it = conns_.find(id);
    if (it == conns_.end() || it->second.state == State::closed) return;
    Conn* c = &it->second;
    size_t n = std::min(c->outbound_bytes, n_bytes);
    if (n > 0) c->progress_us = written_us_ = now_us_;
    c->outbound_bytes -= n;
    outbound_total_ -= std::min(outbound_total_, n);
    if (!c->holding.empty() && c->outbound_bytes <= hold_mark() / 2) release_holds(*c);
    release_budget_holds();
}

void Connections::owe(size_t bytes, ConnId cause) {
    owed_ += bytes;
    if (cause == 0 || outbound_total_ + owed_ <= hold_total()) return;
    Conn* s = live(cause);
    if (!s || s->budget_held) return;
    s->budget_held = true;
    ++s->held_by;
    budget_held_.push_back(cause);
}

void Connections::settle(size_t bytes) {
    owed_ -= std::min(owed_, bytes);
    release_budget_holds();
}

void Connections::release_budget_holds(bool anyway) {
    if (budget_held_.empty() ||
        (!anyway && outbound_total_ + owed_ > hold_total() / 2))
        return;
    for (ConnId id : std::exchange(budget_held_, {})) {
        auto it = conns_.find(id);
        if (it == conns_.end() || !it->second.budget_held) continue;
        it->second.budget_held = false;
        if (--it->second.held_by == 0) released_.push_back(id);
    }
}

void Connections::close_stalled(Time now) {
    // Nothing written anywhere for a while: what fills the budget are readers that do not
    // read. The held senders go on; past the budget, shed() closes the largest of those.
    if (now.mono_us - written_us_ >= reading_window_us) release_budget_holds(/*anyway=*/true);
    for (auto& [id, c] : conns_)
        if (!c.holding.empty() && now.mono_us - c.progress_us >= reading_window_us)
            release_holds(c);
    size_t threshold = stalled_threshold();
    for (auto& [id, c] : conns_)
        if (c.state != State::closed && c.outbound_bytes > threshold &&
            now.mono_us - c.progress_us >= us_from_ms(config_.outbound_stall_ms))
            close_slow_reader(c);
}

void Connections::dropped(ConnId id) {
    auto it = conns_.find(id);
    if (it == conns_.end() || it->second.state == State::closed) return;
    Conn& c = it->second;
    if (c.state != State::closing) let_go(c);
    // Nobody to write to: no Close either (the driver closed it).
    c.state = State::closed;
    outbound_total_ -= std::min(outbound_total_, c.outbound_bytes);
    c.outbound_bytes = 0;
    if (c.forgotten) finished_.push_back(c.id);
}

void Connections::close_all(DisconnectReason reason) {
    for (auto& [id, c] : conns_)
        if (c.state == State::open || c.state == State::draining) close(c, reason);
}

void Connections::bad_frame(Conn& c, std::string detail, Time now) {
    int64_t window = us_from_ms(config_.bad_frames_window_ms);
    while (!c.bad_frame_us.empty() && c.bad_frame_us.front() <= now.mono_us - window)
        c.bad_frame_us.pop_front();
    c.bad_frame_us.push_back(now.mono_us);
    uint64_t slot = open_slot(c, now);
    Error err{ErrorCode::bad_frame, std::move(detail), {}, {}};
    if (c.bad_frame_us.size() < config_.bad_frames_max) return answer(c.id, slot, {}, err, now);
    drain(c);
    answer(c.id, slot, {}, err, now, DisconnectReason::bad_frames);
}

}  // namespace warren
