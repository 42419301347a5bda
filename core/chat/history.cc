// Reading stored messages: HISTORY pages, GET_THREAD, SEARCH. Memory holds the newest
// messages of each room and conversation (some not yet durable); storage holds everything
// durable. Pages that reach past memory ask storage, and answers merge the two, preferring
// memory's newer state of a message (edits, deletions, reactions not yet durable, which the
// read barrier covers).
#include <algorithm>
#include <deque>

#include "core/chaos.h"
#include "core/chat/context.h"
#include "core/validate/rules.h"

namespace warren {

namespace {

MessageLog& log_of(ChatState& s, const HistoryQuery& q) {
    if (q.room > 0) return s.room(q.room)->log;
    return s.conversation(q.peers);
}

// Sorted by id, one row per id, each with memory's state where memory has it.
void merge(ChatState& s, std::vector<MessageRow>& rows) {
    auto by_id = [](const MessageRow& x, const MessageRow& y) { return x.id < y.id; };
    std::sort(rows.begin(), rows.end(), by_id);
    rows.erase(std::unique(rows.begin(), rows.end(),
                           [](const MessageRow& x, const MessageRow& y) { return x.id == y.id; }),
               rows.end());
    for (auto& row : rows)
        if (const MessageRow* m = s.message(row.id)) row = *m;
}

std::vector<MessageView> views(const ChatState& s, const std::vector<MessageRow>& rows, size_t from,
                               size_t to) {
    std::vector<MessageView> out;
    out.reserve(to - from);
    for (size_t i = from; i < to; ++i) out.push_back(message_view(s, rows[i]));
    return out;
}

// The cache holds the newest messages; storage is needed only when the page reaches past its
// oldest one.
bool page_needs_storage(const MessageLog& log, const HistoryQuery& q) {
    if (!log.older_on_disk) return false;
    if (q.after) return log.recent.empty() || *q.after + 1 < log.recent.front().id;
    auto below = std::count_if(log.recent.begin(), log.recent.end(),
                               [&](const MessageRow& m) { return !q.before || m.id < *q.before; });
    return static_cast<size_t>(below) <= q.limit;
}

}  // namespace

void history(OpContext& ctx, History& r) {
    HistoryQuery q;
    q.before = r.before;
    q.after = r.after;
    q.limit = ctx.page_limit(r.limit, ctx.config.history_page_max);
    if (r.room) {
        Room* room = ctx.my_room_or_fail(*r.room);
        if (!room) return;
        q.room = room->id;
    } else {
        User* peer = ctx.user_or_fail(*r.with);
        if (!peer) return;
        q.peers = peer_pair(ctx.me(), peer->id);
    }
    if (!page_needs_storage(log_of(ctx.state, q), q) && !WARREN_CHAOS(history_cache_miss))
        return finish_history(ctx, after::History{q}, {});
    StoredQuery disk;
    disk.kind = StoredQuery::Kind::history;
    disk.history = q;
    disk.history.limit = q.limit + 1;  // one more tells whether more exist
    ctx.query(std::move(disk), after::History{q});
}

// Merges stored rows with the cache and selects the page: newest `limit` below `before`, or
// oldest `limit` above `after`.
void finish_history(OpContext& ctx, const after::History& job, std::vector<MessageRow> rows) {
    const HistoryQuery& q = job.query;
    const MessageLog* log = q.room == 0 || ctx.state.room(q.room) ? &log_of(ctx.state, q) : nullptr;
    // The log is ascending by id, so the messages between after and before are one slice
    // (none when the room is gone).
    static const std::deque<MessageRow> none;
    const auto& recent = log ? log->recent : none;
    auto lo = recent.begin();
    auto hi = recent.end();
    if (q.after)
        lo = std::partition_point(lo, hi, [&](const MessageRow& m) { return m.id <= *q.after; });
    if (q.before)
        hi = std::partition_point(lo, hi, [&](const MessageRow& m) { return m.id < *q.before; });
    if (log && rows.empty()) {
        // Memory alone answers (the common case): the log holds memory's state of each
        // message, so the page is part of that slice, viewed in place.
        auto count = static_cast<size_t>(hi - lo);
        auto take = static_cast<std::ptrdiff_t>(std::min<size_t>(count, q.limit));
        if (q.after)
            hi = lo + take;
        else
            lo = hi - take;
        reply::MessagePage page;
        page.messages.reserve(static_cast<size_t>(take));
        for (auto it = lo; it != hi; ++it) page.messages.push_back(message_view(ctx.state, *it));
        page.has_more = count > q.limit;
        return ctx.ok(std::move(page));
    }
    rows.insert(rows.end(), lo, hi);
    merge(ctx.state, rows);
    // Stored rows were fetched with limit + 1, so one row past the page means more exist.
    bool has_more = rows.size() > q.limit;
    size_t from = 0, to = rows.size();
    if (q.after)
        to = std::min<size_t>(rows.size(), q.limit);
    else
        from = has_more ? rows.size() - q.limit : 0;
    ctx.ok(reply::MessagePage{views(ctx.state, rows, from, to), has_more});
}

void get_thread(OpContext& ctx, GetThread& r) {
    MessageRow* m = ctx.message_or_fetch(r.message_id);
    if (!m || !ctx.visible_or_fail(*m)) return;
    uint32_t limit = ctx.page_limit(r.limit, ctx.config.history_page_max);
    StoredQuery what;
    what.kind = StoredQuery::Kind::thread;
    what.message = r.message_id;
    what.limit = limit + 1;  // one more tells whether more exist
    ctx.query(std::move(what), after::Thread{*m, limit});
}

void finish_thread(OpContext& ctx, const after::Thread& job, std::vector<MessageRow> rows) {
    // Replies not yet durable are only in memory, in the root's log.
    const MessageRow& root = job.root;
    const Room* room = root.room ? ctx.state.room(root.room) : nullptr;
    const MessageLog* log =
        root.room ? (room ? &room->log : nullptr) : &ctx.state.conversation(conversation_of(root));
    if (log)
        for (const auto& m : log->recent)
            if (m.reply_to == root.id) rows.push_back(m);
    merge(ctx.state, rows);
    bool has_more = rows.size() > job.limit;
    if (has_more) rows.resize(job.limit);
    const MessageRow* now = ctx.state.message(root.id);
    ctx.ok(reply::Thread{message_view(ctx.state, now ? *now : root),
                         views(ctx.state, rows, 0, rows.size()), has_more});
}

void search(OpContext& ctx, Search& r) {
    SearchQuery q;
    q.match = fts_match(r.query);
    q.limit = ctx.page_limit(r.limit, ctx.config.search_page_max);
    if (r.room) {
        Room* room = ctx.my_room_or_fail(*r.room);
        if (!room) return;
        q.rooms = {room->id};
    } else {
        const User& u = ctx.my_user();
        q.rooms.assign(u.rooms.begin(), u.rooms.end());
        q.dm_user = u.id;
    }
    uint32_t limit = q.limit;
    StoredQuery what;
    what.kind = StoredQuery::Kind::search;
    what.search = std::move(q);
    ctx.query(std::move(what), after::Search{limit});
}

void finish_search(OpContext& ctx, const after::Search&, std::vector<MessageRow> rows) {
    reply::SearchResults out;
    for (auto& row : rows) {
        if (const MessageRow* m = ctx.state.message(row.id)) row = *m;
        if (!row.deleted) out.results.push_back(message_view(ctx.state, row));
    }
    ctx.ok(std::move(out));
}

}  // namespace warren
