// The simulated clients' JSON decoding, shared among the clients that receive the same line.
// The core encodes an event once and sends the same bytes to every member of a room, so a
// room of 50 clients would otherwise parse each event 50 times: decoding was a third of a
// scenario's run time, more under the sanitizers. Identical text parses to an identical
// value, so sharing it changes nothing a client sees.
// A world whose clients read only a line's top-level fields and its "error", "message",
// "session" and "invitation" objects (the scenario world: "ev", "re", "ok", "reason", a
// MESSAGE's id and room, a session token, an invitation's room) keeps only those: the lexer
// still checks all of the line, but the history pages and room lists nobody reads are never
// built, which was most of the decoding's allocations.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace warren::sim {

// A line as clients read it: its value, and the fields nearly every client looks at, found
// once per distinct line rather than by every receiver (a room's event reaches all of its
// members; looking them up again in the value's maps was an eighth of a run's time).
struct Line {
    nlohmann::json value;
    std::string_view ev;            // an event's name ("" for a reply)
    std::optional<int64_t> re;      // the request a reply answers
    bool ok = false;                // a reply's "ok"
    int64_t message_id = 0;         // "message": its "id" (0: none)
    std::string_view message_room;  // "message": its "room" ("" if none or not a string)

    // Views into `value`: filled where the line stays, never copied or moved after.
    Line() = default;
    Line(const Line&) = delete;
    Line& operator=(const Line&) = delete;
    void find_facts() {
        if (!value.is_object()) return;
        auto text = [](const nlohmann::json& o, const char* key) {
            auto it = o.find(key);
            return it != o.end() && it->is_string()
                       ? std::string_view(it->get_ref<const std::string&>())
                       : std::string_view();
        };
        ev = text(value, "ev");
        if (auto r = value.find("re"); r != value.end() && r->is_number_integer())
            re = r->get<int64_t>();
        if (auto o = value.find("ok"); o != value.end() && o->is_boolean()) ok = o->get<bool>();
        if (auto m = value.find("message"); m != value.end() && m->is_object()) {
            if (auto id = m->find("id"); id != m->end() && id->is_number_integer())
                message_id = id->get<int64_t>();
            message_room = text(*m, "room");
        }
    }
    // Handlers that read only the value take a line as its value.
    operator const nlohmann::json&() const { return value; }  // NOLINT(google-explicit-constructor)
    bool is_discarded() const { return value.is_discarded(); }
};

class ParsedLines {
  public:
    enum class Keep { everything, top_level_error_and_message };
    explicit ParsedLines(Keep keep = Keep::everything) : keep_(keep) {}

    // The value of `line`, or a discarded value if it is not JSON. The pointer keeps it alive
    // across the clearing of the cache that a handler may cause.
    std::shared_ptr<const Line> get(std::string_view line) {
        if (auto it = cache_.find(line); it != cache_.end()) return it->second;
        if (cache_.size() >= max_entries) cache_.clear();  // a bound, not an eviction policy
        auto parsed = std::make_shared<Line>();
        parsed->value = parse(line);
        parsed->find_facts();
        cache_.emplace(std::string(line), parsed);
        return parsed;
    }

  private:
    nlohmann::json parse(std::string_view line) const {
        if (keep_ == Keep::everything)
            return nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
        // Depth 1 is the top-level object's: its keys, and the containers that are its values.
        bool keep_next = true;
        auto filter = [&keep_next](int depth, nlohmann::json::parse_event_t event,
                                   nlohmann::json& value) {
            using E = nlohmann::json::parse_event_t;
            if (depth != 1) return true;
            if (event == E::key)
                keep_next = value == "error" || value == "message" || value == "session" ||
                            value == "invitation";
            return (event != E::object_start && event != E::array_start) || keep_next;
        };
        nlohmann::json value = nlohmann::json::parse(line, filter, /*allow_exceptions=*/false);
        // A dropped container leaves its key behind holding a discarded value (the library
        // removes only some of them): the keys go too.
        if (value.is_object())
            for (auto it = value.begin(); it != value.end();)
                it = it->is_discarded() ? value.erase(it) : std::next(it);
        return value;
    }

    Keep keep_;
    // Enough for the lines in flight to a room at once (one per event, not per receiver).
    static constexpr size_t max_entries = 1024;
    struct Hash {
        using is_transparent = void;
        size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
    };
    std::unordered_map<std::string, std::shared_ptr<const Line>, Hash, std::equal_to<>> cache_;
};

}  // namespace warren::sim
