// The simulated clients' JSON decoding, shared among the clients that receive the same line.
// The core encodes an event once and sends the same bytes to every member of a room, so a
// room of 50 clients would otherwise parse each event 50 times: decoding was a third of a
// scenario's run time, more under the sanitizers. Identical text parses to an identical
// value, so sharing it changes nothing a client sees.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <unordered_map>

namespace warren::sim {

class ParsedLines {
  public:
    // The value of `line`, or a discarded value if it is not JSON. The pointer keeps it alive
    // across the clearing of the cache that a handler may cause.
    std::shared_ptr<const nlohmann::json> get(std::string_view line) {
        if (auto it = cache_.find(line); it != cache_.end()) return it->second;
        if (cache_.size() >= max_entries) cache_.clear();  // a bound, not an eviction policy
        auto value = std::make_shared<const nlohmann::json>(
            nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false));
        cache_.emplace(std::string(line), value);
        return value;
    }

  private:
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
