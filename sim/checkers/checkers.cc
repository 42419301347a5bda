#include "sim/checkers/checkers.h"

#include <map>

#include "sim/actors/population.h"

namespace warren::sim {

namespace {

// What the store holds: text -> how many messages have it.
std::map<std::string, int> stored_texts(World& w) {
    std::map<std::string, int> out;
    if (!w.alive()) return out;
    for (MessageId id = 1; id <= w.core().state().committed_through(); ++id)
        if (std::optional<MessageRow> m = w.store().message(id)) ++out[m->text];
    return out;
}

void acked_stored(World& w, RunReport&) {
    auto stored = stored_texts(w);
    for (const World::Acked& a : w.acked()) {
        auto it = stored.find(a.text);
        if (it == stored.end())
            w.violation("durability.acked_stored",
                        a.author + "'s acknowledged message \"" + a.text + "\" is not stored");
        else if (it->second > 1)
            w.violation("durability.acked_stored", a.author + "'s message \"" + a.text +
                                                       "\" is stored " +
                                                       std::to_string(it->second) + " times");
    }
    for (const std::string& t : w.refused_texts())
        if (stored.contains(t) && !w.in_doubt_texts().contains(t))
            w.violation("durability.refused_not_stored",
                        "\"" + t + "\" was answered with an error but is stored");
    for (const std::string& t : w.in_doubt_texts())
        if (auto it = stored.find(t); it != stored.end() && it->second > 1)
            w.violation("durability.acked_stored",
                        "\"" + t + "\" (outcome hidden by a close) is stored twice");
}

// Every connection the server still holds is one some client still holds: nothing leaks
// past a close, a block or a crash.
void no_leak(World& w, RunReport& r) {
    if (!w.alive()) return;
    size_t open = w.open_peers();
    if (w.core().connection_count() > open)
        w.violation("sessions.no_leak", "the server holds " +
                                            std::to_string(w.core().connection_count()) +
                                            " connections, the clients " + std::to_string(open));
    (void)r;
}

// No connection ever had more unread output queued than the configured cap plus one frame.
void per_connection_bounded(World& w, RunReport& r) {
    double bound =
        static_cast<double>(w.spec().config.outbound_bytes_max + w.spec().config.max_frame_bytes);
    double peak = r.metrics["server.peak_unread_bytes"];
    if (peak > bound)
        w.violation("memory.per_connection_bounded",
                    "a connection had " + std::to_string(static_cast<uint64_t>(peak)) +
                        " bytes queued for it, over " +
                        std::to_string(static_cast<uint64_t>(bound)));
}

}  // namespace

const std::vector<Checker>& checkers() {
    static const std::vector<Checker> all = {
        {"durability.acked_stored",
         "every message acknowledged to a legitimate client is stored exactly once, with its "
         "text; one whose answer a close or crash hid is stored at most once",
         acked_stored},
        {"durability.refused_not_stored",
         "no message answered with an error is stored (checked with durability.acked_stored)",
         nullptr},
        {"order.room_monotonic",
         "each connection receives a room's messages in increasing id order", nullptr},
        {"order.replies_in_request_order",
         "a pipelining client's replies come in the order of its requests", nullptr},
        {"delivery.members_only", "a client receives messages only of rooms it joined or created",
         nullptr},
        {"closes.told_is_stored",
         "a pipelining client that the server closes was told OK for exactly the messages "
         "stored, and got nothing after its close",
         nullptr},
        {"sessions.no_leak",
         "at the end the server holds no connection that its client has given up", no_leak},
        {"memory.per_connection_bounded",
         "no connection ever has more output queued than limits.outbound_bytes_max plus one "
         "frame",
         per_connection_bounded},
    };
    return all;
}

void run_checkers(World& w, RunReport& r) {
    for (const Checker& c : checkers()) {
        r.checkers.emplace_back(c.name);
        if (c.at_end) c.at_end(w, r);
    }
}

}  // namespace warren::sim
