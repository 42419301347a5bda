// Connections: every connection the core knows, its inbound framing, the reply slots that
// keep its replies in request order, and the bounds on what it may hold (pending replies,
// outbound bytes not yet reported sent, bad frames). Replies and events are typed here and
// encoded for the connection's wire protocol on the way out — JSON lines, or IRC through the
// connection's irc::Session (core/irc/) — and an event is encoded once per wire (and, for IRC,
// per set of tag capabilities) and its bytes shared by every recipient of that encoding.
//
// A connection is open (reads and answers), draining (reads nothing more; its last pending
// reply carries the close: FRAME_TOO_LARGE, BAD_FRAMES, an IRC QUIT), closing (the core
// decided to close it and has let go of it; it reads nothing more and stays here only until
// the replies it is owed are out) or closed (its closing line and Close emitted).
//
// What a close owes the client: every reply to a request read before the decision, in
// order, and every event made before it (Addressed::stamp), then the closing line. Requests
// whose effect had not run are answered UNAVAILABLE (Server::resume) and were not applied;
// lines read after the decision are never read. Only close_slow_reader() drops what is owed
// (the client stopped reading and the memory bound wins); its DISCONNECT says so.
//
// close() only marks and records: nothing here is erased while a caller may be iterating.
// take_closed() hands over the ids the core is done with since the last call, which the
// caller forgets one by one (forgetting one may close another: the caller loops until none
// is left); a closing connection outlives forget(). At the end of each input the caller
// finishes the closing connections owed nothing more (finish_closing: closing line and Close;
// it also erases them). Single-threaded; outputs go to the core's output queue.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/base.h"
#include "core/config.h"
#include "core/fifo.h"
#include "core/irc/session.h"
#include "core/monitor/monitor.h"
#include "core/ops/events.h"
#include "core/ops/ops.h"
#include "core/ops/replies.h"
#include "core/outputs.h"
#include "core/protocol/framer.h"

namespace warren {

// The protocol a listener speaks.
enum class Wire : uint8_t { json, irc };
// Whether the listener that accepted a connection speaks TLS (the driver terminates it).
enum class Transport : uint8_t { plain, tls };

class Connections : public irc::Peers {
  public:
    struct Slot {
        int64_t received_us = 0;
        std::optional<Op> op;  // unknown while (or if) the op name is not known
        bool ready = false;
        std::optional<Error> error;  // the refusal, for the monitor and the log
        std::shared_ptr<const std::string> bytes;
        std::optional<DisconnectReason> close_after;  // close once this line is out
        bool hang_up = false;  // close once this is out, without a further line (IRC QUIT)
        bool local = false;    // an IRC answer made without a request: not an op to count
    };
    enum class State { open, draining, closing, closed };
    struct Conn {
        Conn(ConnId i, std::string_view peer, std::string key, size_t max_frame, int64_t now_us,
             bool resync = false)
            : id(i),
              ip(peer),
              ip_key(std::move(key)),
              framer(max_frame, resync),
              opened_us(now_us),
              active_us(now_us) {}
        ConnId id;
        std::string ip;
        std::string ip_key;  // what security state is tracked under (IPv6: the /64)
        LineFramer framer;
        State state = State::open;
        // Replies in request order. Empty between requests on almost every connection, and a
        // Slot is ~136 bytes: an idle connection keeps no storage for them.
        Fifo<Slot, 0> slots;
        uint64_t slot_base = 0;  // sequence number of slots.front()
        bool paused = false;     // an effect this connection waits for runs; lines wait
        bool logged_in = false;  // chooses the outbound cap (the facade keeps it current)
        bool pinged = false;     // IRC: a keepalive PING went out since its last line
        bool tls = false;        // accepted by a TLS listener
        size_t outbound_bytes = 0;
        // Since when the outbound queue has been waiting on the reader: the last time it
        // read (sent), or when the queue last started from empty. Within reading_window_us
        // of it the reader counts as reading (it may hold senders back); a stall past
        // outbound_stall_ms closes it.
        int64_t progress_us = 0;
        // IRC flood control (fakelag): its next line waits for the rate limit's tokens until
        // then (mono µs; 0: it does not wait), and nothing more is read from it meanwhile.
        int64_t fakelag_until_us = 0;
        // Backpressure. Senders whose events this reader is behind on (it holds each once),
        // and how many readers hold this connection: while any does, its lines wait.
        std::vector<ConnId> holding;
        uint32_t held_by = 0;
        bool budget_held = false;  // one of held_by: the global budget's (owe)
        Fifo<int64_t> bad_frame_us;
        // Set when the core decided to close it (draining or closing): the events stamped up
        // to here still reach it, and how it closes once its replies are out.
        uint64_t events_through = UINT64_MAX;
        DisconnectReason closing_reason = DisconnectReason::shutdown;
        std::optional<int64_t> closing_retry_ms;
        bool forgotten = false;             // the core let go of it while it was closing
        int64_t opened_us = 0;              // also reset by LOGOUT: the login deadline starts again
        int64_t active_us = 0;              // the last complete request (idle timeout)
        std::unique_ptr<irc::Session> irc;  // set on IRC connections: its wire and its state
    };

    // `state` is read when IRC replies are rendered (names, the JOIN burst).
    Connections(const Config& config, Monitor& monitor, Outputs& outputs, const ChatState& state);

    // A new connection: on JSON greeted with HELLO; on IRC silent until the client speaks.
    Conn& open(ConnId id, std::string_view peer_ip, const std::string& ip_key, Time now,
               Wire wire = Wire::json, Transport transport = Transport::plain);
    // irc::Peers: whether the connection came in over TLS (WHOIS 671).
    bool secure(ConnId id) const override;
    // A connection refused at accept: one DISCONNECT line (IRC: ERROR), then the close; no
    // state is kept.
    void refuse(ConnId id, DisconnectReason reason, std::optional<int64_t> retry_after_ms,
                Wire wire = Wire::json);
    // The connection if it is open (nullptr if unknown, draining, closing or closed).
    Conn* live(ConnId id);
    // Whether the core decided to close the connection while it may still owe it replies
    // (draining or closing).
    bool owes_replies(ConnId id) const;
    size_t size() const { return conns_.size(); }
    const std::map<ConnId, Conn>& all() const { return conns_; }

    // ---- replies in request order --------------------------------------------------------
    uint64_t open_slot(Conn& c, Time now);
    void set_op(Conn& c, uint64_t slot, Op op) { c.slots[slot - c.slot_base].op = op; }
    // Fills a slot (if the connection is still there) and sends what is ready in order.
    void answer(ConnId id, uint64_t slot, std::optional<int64_t> re, const ReplyBody& body,
                Time now, std::optional<DisconnectReason> close_after = {});
    // Fills a slot with lines made without a request (IRC), closing after them if `hang_up`.
    void answer_lines(Conn& c, uint64_t slot, std::string lines, bool hang_up, Time now);

    // ---- events and closes ------------------------------------------------------------------
    // Sends an event to each of `to`. A recipient that is reading but is more than
    // hold_mark() behind holds `cause` (its lines wait) until it has read down to half of
    // that: the sender slows to the pace of its readers instead of the readers being
    // dropped.
    // `stamp` is the event's (stamp()); a connection the core decided to close gets only the
    // events made before that.
    void deliver(const std::vector<ConnId>& to, const Event& event, ConnId cause = 0,
                 uint64_t stamp = 0);
    // A new event's stamp: events are numbered in the order they are made.
    uint64_t stamp() { return ++events_made_; }
    // Connections whose last hold ended since the last call (their lines may be read again).
    std::vector<ConnId> take_released() { return std::exchange(released_, {}); }
    bool any_released() const { return !released_.empty(); }
    // Decides to close: nothing more is read; the replies owed go out first (closing), then
    // the closing line and Close.
    void close(Conn& c, DisconnectReason reason, std::optional<int64_t> retry_after_ms = {});
    // A client that stopped reading: closes now, dropping what it was owed and what the driver
    // has not written (SLOW_CONSUMER with output_dropped).
    void close_slow_reader(Conn& c);
    // Reads nothing more from `c`; its pending last reply carries the close (close_after or
    // hang_up).
    void drain(Conn& c) const;
    // Closes without a last line of its own (the connection's last answer said goodbye).
    void hang_up(Conn& c);
    // Closes the open connections matching `pred`.
    template <class Pred>
    void close_if(Pred pred, DisconnectReason reason, std::optional<int64_t> retry_after_ms) {
        for (auto& [id, c] : conns_)
            if (c.state == State::open && pred(c)) close(c, reason, retry_after_ms);
    }
    // Bytes the driver reported written.
    void sent(ConnId id, size_t n_bytes);
    // What events waiting in batches will cost when they are delivered (an estimate, made as
    // each is queued), counted with the bytes queued for writing: past hold_total(), the
    // sender whose event it is (`cause`) is held back — before a commit's burst lands, not
    // after, when only shedding readers would be left. Settled when the batch is released or
    // rolled back; the senders go on once all of it is under half of hold_total(), or when
    // nothing has been written for a second (the budget is then held by readers that do not
    // read: shed() is for them).
    void owe(size_t bytes, ConnId cause);
    void settle(size_t bytes);
    // The peer went away: closed without a word, forgotten at the end of the input.
    void dropped(ConnId id);
    // Closes every connection not closed yet (shutdown).
    void close_all(DisconnectReason reason);
    // Ids closed since the last call; the caller forgets each with forget().
    std::vector<ConnId> take_closed() { return std::exchange(closed_, {}); }
    bool any_closed() const { return !closed_.empty(); }
    // Erases a closed connection; a closing one stays until its Close is out.
    void forget(ConnId id);
    // Closes the closing connections owed nothing more: no reply pending, and no event made
    // before the decision still waiting (`first_waiting_stamp`: the oldest event waiting for
    // its batch), and erases those whose Close is out. Only while any_closing().
    void finish_closing(uint64_t first_waiting_stamp);
    bool any_closing() const { return !closing_.empty() || !finished_.empty(); }

    // A malformed line: answers BAD_FRAME and closes on the bad_frames_max-th in the window.
    void bad_frame(Conn& c, std::string detail, Time now);
    // The time the next sends and sent reports happen at (set with every input).
    void set_now(Time now) { now_us_ = now.mono_us; }
    // Closes members' connections that hold more than outbound_bytes_stalled_max and have
    // read nothing for outbound_stall_ms (SLOW_CONSUMER); a reader that has read nothing
    // for a second no longer holds its senders back.
    void close_stalled(Time now);
    // Closes connections past the login deadline or idle too long.
    template <class LoggedIn>
    void close_idle(Time now, LoggedIn logged_in) {
        close_if(
            [&](const Conn& c) {
                if (c.paused) return false;
                int64_t since_open = now.mono_us - c.opened_us;
                int64_t since_active = now.mono_us - c.active_us;
                bool user = logged_in(c.id);
                return (!user && since_open >= us_from_ms(config_.login_timeout_ms)) ||
                       (user && since_active >= us_from_ms(config_.idle_timeout_ms));
            },
            DisconnectReason::idle_timeout, std::nullopt);
    }

    // IRC keepalive (Config::irc_ping_interval_ms): PINGs logged-in IRC connections quiet for
    // the interval, closes those quiet for the interval and the timeout (ping timeout).
    void ping_quiet_irc(Time now);

    size_t outbound_total() const { return outbound_total_; }

  private:
    void flush(Conn& c, Time now);
    void send(Conn& c, const std::shared_ptr<const std::string>& bytes);
    // The core is done with `c`: it reads nothing more, holds no sender back, and the caller
    // forgets it (close, close_slow_reader, hang_up, dropped).
    void let_go(Conn& c);
    // Emits the closing line (if any) and Close, and gives back what it holds.
    void finish(Conn& c, std::string_view reason, std::shared_ptr<const std::string> last,
                bool drop_unsent);

    // Closes the connections holding the most until the total fits the global budget.
    void shed();
    void release_budget_holds(bool anyway = false);
    // How far behind a reader may be before it holds its senders back.
    size_t hold_mark() const;
    // Past this, what all connections are owed holds the senders adding to it (owe).
    size_t hold_total() const {
        return std::min(config_.outbound_bytes_hold, config_.outbound_bytes_total_max / 2);
    }
    // Past this, a connection that reads nothing for outbound_stall_ms is a slow consumer.
    size_t stalled_threshold() const {
        return std::min(config_.outbound_bytes_stalled_max, config_.outbound_bytes_max);
    }
    void hold(Conn& reader, ConnId sender);
    // Ends every hold `reader` has on senders.
    void release_holds(Conn& reader);

    const Config& config_;
    Monitor& monitor_;
    Outputs& outputs_;
    const ChatState& state_;
    irc::Identity irc_id_;
    std::map<ConnId, Conn> conns_;
    std::vector<ConnId> closed_;    // let go during the current input, not yet forgotten
    std::vector<ConnId> closing_;   // in State::closing (or since closed): finish_closing's
    std::vector<ConnId> finished_;  // closing, forgotten, and now closed: to erase
    uint64_t events_made_ = 0;      // the last stamp()
    size_t outbound_total_ = 0;     // outbound_bytes summed over the connections not closed
    size_t owed_ = 0;               // owe() not yet settled
    int64_t written_us_ = 0;        // the last sent() of any bytes
    std::vector<ConnId> budget_held_;
    int64_t now_us_ = 0;
    std::vector<ConnId> released_;
    std::shared_ptr<const std::string> hello_;
};

}  // namespace warren
