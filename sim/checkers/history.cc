// history.complete: after the run, an auditor logs in as the host (a member of every room)
// and pages each room's HISTORY from the newest message back to the first, the way a client
// scrolls up. Every message the store holds for the room must come back exactly once, in id
// order, with its stored text (a tombstone as deleted), and nothing else: history pages are
// what users see of everything the checkers verified in the store. A message past its room's
// retention age may be missing from either (the server hides it before a Prune removes it).
#include "sim/checkers/history.h"

#include <nlohmann/json.hpp>

namespace warren::sim {

namespace {

struct Audit {
    World* w = nullptr;
    ConnId conn = 0;
    size_t room = 0;  // index into rooms
    std::vector<std::string> rooms;
    std::vector<json> pages;  // the current room's pages, newest first, each oldest first
    int64_t newest = 0;       // the newest id when its paging began: later ones may be missing
    std::vector<std::pair<std::vector<json>, int64_t>> paged;  // per room: seen, newest
    int64_t next_id = 1;
    int attempts = 0;
    int requested = 0;  // pages asked for (past the burst they are paced)
};

// Every room's pages against the store, in one pass over it.
void check_rooms(Audit& a) {
    World& w = *a.w;
    std::map<RoomId, size_t> index;  // room id -> its index in a.rooms
    for (size_t i = 0; i < a.rooms.size(); ++i)
        if (const Room* room = w.core().state().find_room(a.rooms[i])) index[room->id] = i;
    std::vector<std::map<int64_t, const json*>> by_id(a.rooms.size());
    for (size_t i = 0; i < a.paged.size(); ++i) {
        auto fail = [&](std::string what) {
            w.violation("history.complete", a.rooms[i] + ": " + what);
        };
        int64_t previous = 0;
        for (const json& m : a.paged[i].first) {
            int64_t id = m.value("id", int64_t{0});
            if (id <= previous)
                fail("message " + std::to_string(id) + " after " + std::to_string(previous));
            previous = id;
            if (!by_id[i].emplace(id, &m).second) fail("message " + std::to_string(id) + " twice");
        }
    }
    const auto& rows = w.stored_rows();
    for (size_t id = 1; id < rows.size(); ++id) {
        const std::optional<MessageRow>& row = rows[id];
        if (!row) continue;
        auto room = index.find(row->room);
        if (room == index.end() || room->second >= a.paged.size()) continue;
        size_t i = room->second;
        if (static_cast<int64_t>(id) > a.paged[i].second) continue;  // stored after its paging
        auto fail = [&](std::string what) {
            w.violation("history.complete", a.rooms[i] + ": " + what);
        };
        auto p = by_id[i].find(static_cast<int64_t>(id));
        if (p == by_id[i].end()) {
            // Past its room's age, the server no longer shows it (retention).
            if (!w.may_have_expired(w.room_name(row->room), row->ts_ms))
                fail("stored message " + std::to_string(id) + " is on no history page");
            continue;
        }
        const json& m = *p->second;
        if (m.value("deleted", false) != row->deleted)
            fail("message " + std::to_string(id) + " is deleted in one and not the other");
        else if (!row->deleted && m.value("text", "") != row->text)
            fail("message " + std::to_string(id) + " reads \"" + m.value("text", "") +
                 "\" in history and \"" + row->text + "\" in the store");
    }
    for (size_t i = 0; i < a.paged.size(); ++i) {
        const Room* room = w.core().state().find_room(a.rooms[i]);
        for (const auto& [id, m] : by_id[i]) {
            const std::optional<MessageRow>* row =
                static_cast<size_t>(id) < rows.size() ? &rows[static_cast<size_t>(id)] : nullptr;
            if (row && *row && room && (*row)->room == room->id) continue;
            // Retention may have removed it after its page was read.
            if (w.may_have_expired(a.rooms[i], m->value("ts", int64_t{0}))) continue;
            w.violation("history.complete", a.rooms[i] + ": message " + std::to_string(id) +
                                                " is in history and not in the store");
        }
        w.probe("history.audited");
    }
}

void page(Audit& a, std::optional<int64_t> before);

// The auditor is a user like any other: past the burst, it keeps under the per-account rate
// limit (HISTORY weighs 2), or the server would throttle and then suspend it.
void next_page(Audit& a, std::optional<int64_t> before) {
    const Config& c = a.w->spec().config;
    if (++a.requested < static_cast<int>(c.rate_user_burst / 2)) return page(a, before);
    int64_t gap = 2 * 60'000 / std::max<int64_t>(c.rate_user_per_min, 1) + 50;
    a.w->at(a.w->now_ms() + gap, [&a, before] { page(a, before); });
}

void on_line(Audit& a, std::string_view line) {
    json m = json::parse(line, nullptr, false);
    if (!m.is_object()) return;
    World& w = *a.w;
    if (m.value("ev", "") == "HELLO") {
        json login = {{"id", a.next_id++},
                      {"op", "LOGIN"},
                      {"username", "host"},
                      {"password", "host-password"}};
        return w.send(a.conn, login.dump() + "\n");
    }
    if (!m.contains("re")) return;
    if (!m.value("ok", false)) {
        // Storage or rate limits: wait as asked and ask again, a bounded number of times in
        // a row.
        if (++a.attempts > 20) {
            w.violation("history.complete", "the auditor gave up: " + m.dump());
            return w.end_run();
        }
        int64_t wait = m["error"].value("retry_after_ms", int64_t{1000});
        std::optional<int64_t> before;
        if (!a.pages.empty()) before = a.pages.back()["messages"].front().value("id", int64_t{0});
        if (m.value("re", int64_t{0}) == 1) {  // it cannot log in: no audit
            w.hang_up(a.conn);
            return w.end_run();
        }
        w.at(w.now_ms() + wait, [&a, before] { page(a, before); });
        return;
    }
    a.attempts = 0;
    if (m.value("re", int64_t{0}) == 1) return page(a, std::nullopt);  // logged in
    const json& messages = m["messages"];
    if (a.pages.empty() && !messages.empty()) a.newest = messages.back().value("id", int64_t{0});
    bool more = m.value("has_more", false) && !messages.empty();
    int64_t oldest = more ? messages.front().value("id", int64_t{0}) : 0;
    if (!messages.empty()) a.pages.push_back(std::move(m));
    if (more) return next_page(a, oldest);
    // Scrolling back gave the newest page first: the room's messages, oldest first.
    std::vector<json> seen;
    for (auto p = a.pages.rbegin(); p != a.pages.rend(); ++p)
        for (json& x : (*p)["messages"]) seen.push_back(std::move(x));
    a.paged.emplace_back(std::move(seen), a.newest);
    a.pages.clear();
    a.newest = 0;
    if (++a.room < a.rooms.size()) return next_page(a, std::nullopt);
    check_rooms(a);
    w.end_run();
}

void page(Audit& a, std::optional<int64_t> before) {
    json req = {{"id", a.next_id++}, {"op", "HISTORY"}, {"room", a.rooms[a.room]}, {"limit", 100}};
    if (before) req["before"] = *before;
    a.w->send(a.conn, req.dump() + "\n");
}

}  // namespace

void audit_history(World& w) {
    std::vector<std::string> rooms;
    for (const auto& p : w.spec().populations)
        for (const auto& r : p.rooms)
            if (std::find(rooms.begin(), rooms.end(), r) == rooms.end()) rooms.push_back(r);
    if (rooms.empty() || !w.alive() || w.stopped()) return w.end_run();
    auto audit = std::make_shared<Audit>();
    w.hold(audit);  // lives as long as the world
    Audit& a = *audit;
    a.w = &w;
    a.rooms = rooms;
    a.conn = w.open("auditor", "10.1.0.2", {}, {});
    w.peer(a.conn).on_text = [&a](std::string_view line) { on_line(a, line); };
}

}  // namespace warren::sim
