#include "sim/checkers/checkers.h"

#include <map>
#include <set>

#include "sim/actors/population.h"

namespace warren::sim {

namespace {

// What the store holds: text -> how many messages have it (tombstones have none).
std::map<std::string, int> stored_texts(World& w) {
    std::map<std::string, int> out;
    for (const std::optional<MessageRow>& m : w.stored_rows())
        if (m && !m->deleted) ++out[m->text];
    return out;
}

// A message's reactions: each acknowledged REACT of a legitimate client is there; none of a
// legitimate client is there that it never asked for (or was refused).
void check_reactions(World& w, const std::set<std::string>& legit, const std::string& which,
                     const World::Tracked& t, const MessageRow& row) {
    std::set<std::pair<std::string, std::string>> asked, acked;  // (user, emoji)
    for (const World::Reaction& r : t.reactions) {
        if (r.outcome != World::Outcome::refused) asked.emplace(r.user, r.emoji);
        if (r.outcome == World::Outcome::acked) acked.emplace(r.user, r.emoji);
    }
    std::set<std::pair<std::string, std::string>> stored;
    for (const auto& [emoji, users] : row.reactions)
        for (UserId id : users)
            if (const User* u = w.core().state().user(id)) stored.emplace(u->name, emoji);
    for (const auto& r : acked)
        if (!stored.contains(r))
            w.violation("durability.acked_stored", which + " lacks " + r.first + "'s " + r.second +
                                                       ", which was acknowledged");
    for (const auto& r : stored)
        if (legit.contains(r.first) && !asked.contains(r))
            w.violation("durability.acked_stored",
                        which + " has " + r.first + "'s " + r.second + ", never asked for");
}

// Every message acknowledged to a legitimate client is in the store, in a state its author's
// answers allow: deleted if a delete was acknowledged (either way if the only delete is in
// doubt, never if none); its text the last acknowledged edit's (or the original), or one of
// the edits asked after it whose answer was lost. Texts are unique, so none is stored twice;
// a message or edit answered with an error is nowhere.
void acked_stored(World& w, RunReport&) {
    if (!w.alive()) return;
    auto fail = [&w](std::string what) { w.violation("durability.acked_stored", std::move(what)); };
    std::set<std::string> legit;  // legitimate users' names
    for (const auto& c : w.legit()) legit.insert(c->name);
    for (const auto& [id, t] : w.tracked()) {
        const auto& rows = w.stored_rows();
        std::optional<MessageRow> row;
        if (id > 0 && static_cast<size_t>(id) < rows.size()) row = rows[static_cast<size_t>(id)];
        std::string which = t.author + "'s message " + std::to_string(id);
        if (t.author.empty()) {
            // Not acknowledged to a legitimate author (an attacker's, or its answer lost):
            // only the legitimate clients' reactions to it are judged.
            if (row && !row->deleted)
                check_reactions(w, legit, "message " + std::to_string(id), t, *row);
            continue;
        }
        if (!row) {
            if (w.may_have_expired(t.room, t.ts_ms)) {
                w.probe("retention.acked_removed");
                continue;
            }
            fail(which + " (\"" + t.original + "\") was acknowledged and is not stored");
            continue;
        }
        bool del_acked = false, del_doubt = false;
        std::set<std::string> allowed = {t.original};
        for (const World::Change& c : t.changes) {
            if (c.outcome == World::Outcome::refused) continue;
            if (c.del) {
                (c.outcome == World::Outcome::acked ? del_acked : del_doubt) = true;
                continue;
            }
            if (c.outcome == World::Outcome::acked) allowed.clear();  // earlier ones are past
            allowed.insert(c.text);
        }
        if (row->deleted && !del_acked && !del_doubt)
            fail(which + " is deleted, and no delete of it was asked or could have landed");
        if (!row->deleted && del_acked) fail(which + " was deleted (acknowledged) and is not");
        if (!row->deleted && !allowed.contains(row->text))
            fail(which + " reads \"" + row->text + "\", which its author's answers do not allow");
        if (!row->deleted) check_reactions(w, legit, which, t, *row);
    }
    auto stored = stored_texts(w);
    for (const auto& [text, n] : stored)
        if (n > 1 && text.find(" from ") != std::string::npos)
            fail("\"" + text + "\" is stored " + std::to_string(n) + " times");
    for (const std::string& t : w.refused_texts())
        if (stored.contains(t) && !w.in_doubt_texts().contains(t))
            w.violation("durability.refused_not_stored",
                        "\"" + t + "\" was answered with an error but is stored");
}

// What was owed to a connection still open at the end never came (sim/actors/population.cc
// says what is owed; skips are caught as they happen).
void delivery_complete(World& w, RunReport& r) {
    double owed = 0;
    for (const auto& c : w.legit()) {
        owed += static_cast<double>(c->owed_total);
        if (!w.is_open(c->conn)) continue;
        if (w.bytes_on_the_way(c->conn)) {  // a slow reader's backlog: not judged
            w.probe("delivery.unjudged");
            continue;
        }
        for (const Legit::RoomView& v : c->asked)
            for (int64_t id : v.owed)
                w.violation("delivery.complete", c->name + " never got message " +
                                                     std::to_string(id) + " of " + v.room +
                                                     ", stored while it was in the room");
    }
    r.metrics["delivery.owed"] = owed;
}

// Every connection the server still holds is one some client still holds: nothing leaks
// past a close, a block or a crash.
void no_leak(World& w, RunReport& r) {
    if (!w.alive()) return;
    size_t allowed = w.open_peers();
    // A client that vanished without a FIN is held until the server's timeouts notice: no
    // longer than the idle (or login) timeout and a sweep.
    const Config& cfg = w.spec().config;
    int64_t grace = std::max(cfg.idle_timeout_ms, cfg.login_timeout_ms) + cfg.sweep_interval_ms;
    for (auto [id, at] : w.vanished_unclosed()) {
        if (w.now_ms() - at < grace) {
            ++allowed;
            continue;
        }
        w.violation("sessions.no_leak", "connection " + std::to_string(id) +
                                            ", whose client vanished at " + std::to_string(at) +
                                            " ms, is still held " +
                                            std::to_string(w.now_ms() - at) + " ms later");
    }
    if (w.core().connection_count() > allowed)
        w.violation("sessions.no_leak", "the server holds " +
                                            std::to_string(w.core().connection_count()) +
                                            " connections, the clients " + std::to_string(allowed));
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

// Message timestamps (the server-time a client sees) never go back: in id order, each stored
// message's is at least the one before it, whatever the host's wall clock did, across
// restarts too.
void stamps_monotonic(World& w, RunReport&) {
    if (!w.alive()) return;
    const MessageRow* before = nullptr;
    for (const std::optional<MessageRow>& m : w.stored_rows()) {
        if (!m) continue;
        if (before && m->ts_ms < before->ts_ms) {
            w.violation("time.stamps_monotonic",
                        "message " + std::to_string(m->id) + " is stamped " +
                            std::to_string(m->ts_ms) + ", " +
                            std::to_string(before->ts_ms - m->ts_ms) + " ms before message " +
                            std::to_string(before->id));
            return;  // one is enough: the rest of the run follows from it
        }
        before = &*m;
    }
}

}  // namespace

const std::vector<Checker>& checkers() {
    static const std::vector<Checker> all = {
        {"durability.acked_stored",
         "every message acknowledged to a legitimate client is stored (already when it is told), "
         "once, edited and deleted "
         "as its author's acknowledged (or lost) answers allow; one whose answer a close or "
         "crash hid is stored at most once",
         acked_stored},
        {"durability.power_loss_full",
         "with synchronous = full, every message acknowledged before a power loss is stored "
         "after it (judged as the next process opens the database, sim/engine/world.cc)",
         nullptr},
        {"durability.power_loss_normal",
         "with synchronous = normal, a power loss takes only messages applied after the last "
         "checkpoint, and of those a suffix: none acknowledged before it, none below one that "
         "survived",
         nullptr},
        {"storage.integrity_after_power_loss",
         "after every power loss the database passes PRAGMA integrity_check", nullptr},
        {"storage.backup_intact",
         "every online backup the server reported done, and every backup file present after a "
         "crash or power loss, passes PRAGMA integrity_check (an interrupted one leaves at most "
         "its .partial file)",
         nullptr},
        {"storage.opens",
         "the database opens after every crash, power loss and restart (a violation ends the run)",
         nullptr},
        {"durability.refused_not_stored",
         "no message answered with an error is stored (checked with durability.acked_stored)",
         nullptr},
        {"order.room_monotonic",
         "each connection receives a room's messages in increasing id order", nullptr},
        {"order.replies_in_request_order",
         "a pipelining client's replies come in the order of its requests", nullptr},
        {"delivery.members_only",
         "a client receives messages only of rooms it joined, created or was invited to, and "
         "only its own invitations",
         nullptr},
        {"delivery.complete",
         "a connection receives every message of a room that was sent after its join (or "
         "login) was acknowledged and stored while it stayed in the room, logged in and "
         "connected",
         delivery_complete},
        {"closes.told_is_stored",
         "a pipelining client that the server closes was told OK for exactly the messages "
         "stored, and got nothing after its close",
         nullptr},
        {"history.complete",
         "after the run, paging each room's history back to its start returns every stored "
         "message once, in order, with its stored text (sim/checkers/history.cc)",
         nullptr},
        {"core.deadline_advances",
         "after a tick the core's next deadline is later than now (otherwise a driver's timer "
         "fires again at once, forever: a busy event loop)",
         nullptr},
        {"time.stamps_monotonic",
         "stored messages' timestamps (server-time) never decrease in id order, whatever the "
         "wall clock does, across restarts",
         stamps_monotonic},
        {"time.invitations_expire",
         "no invitation is accepted once its expiry has passed on the server's wall clock",
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
