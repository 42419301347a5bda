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

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <unordered_map>

namespace warren::sim {

class ParsedLines {
  public:
    enum class Keep { everything, top_level_error_and_message };
    explicit ParsedLines(Keep keep = Keep::everything) : keep_(keep) {}

    // The value of `line`, or a discarded value if it is not JSON. The pointer keeps it alive
    // across the clearing of the cache that a handler may cause.
    std::shared_ptr<const nlohmann::json> get(std::string_view line) {
        if (auto it = cache_.find(line); it != cache_.end()) return it->second;
        if (cache_.size() >= max_entries) cache_.clear();  // a bound, not an eviction policy
        auto value = std::make_shared<const nlohmann::json>(parse(line));
        cache_.emplace(std::string(line), value);
        return value;
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
    std::unordered_map<std::string, std::shared_ptr<const nlohmann::json>, Hash, std::equal_to<>>
        cache_;
};

}  // namespace warren::sim
