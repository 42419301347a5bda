// LruMap: a map of security state bounded by `max` entries that never shares an entry between
// keys. When a new key arrives and the map is full, the least recently used unpinned entry
// leaves. A pinned entry (an address with open connections) never leaves and is kept out of
// the eviction order, so eviction is O(1); if every entry is pinned the map grows past `max`
// by at most the number of pins, which the caller bounds (connections_max).
//
// find() does not count as a use; get() does. References stay valid until the entry leaves
// (std::unordered_map keeps its nodes in place).
#pragma once

#include <cstddef>
#include <list>
#include <string>
#include <unordered_map>

namespace warren {

template <class V>
class LruMap {
  public:
    explicit LruMap(size_t max) : max_(max) {}

    V* find(const std::string& key) {
        auto it = map_.find(key);
        return it == map_.end() ? nullptr : &it->second.value;
    }
    const V* find(const std::string& key) const {
        auto it = map_.find(key);
        return it == map_.end() ? nullptr : &it->second.value;
    }
    // The entry for `key`, created (default) if needed; marks it most recently used.
    V& get(const std::string& key) {
        auto it = map_.find(key);
        if (it != map_.end()) {
            touch(it->second);
            return it->second.value;
        }
        if (map_.size() >= max_ && !order_.empty()) {
            map_.erase(*order_.front());
            order_.pop_front();
        }
        it = map_.try_emplace(key).first;
        it->second.pos = order_.insert(order_.end(), &it->first);
        return it->second.value;
    }
    // Pins or unpins an existing entry; an unpinned one rejoins as most recently used.
    void pin(const std::string& key, bool pinned) {
        auto it = map_.find(key);
        if (it == map_.end() || it->second.pinned == pinned) return;
        Node& n = it->second;
        n.pinned = pinned;
        if (pinned)
            order_.erase(n.pos);
        else
            n.pos = order_.insert(order_.end(), &it->first);
    }
    // Removes the unpinned entries for which pred(key, value) holds.
    template <class Pred>
    void erase_if(Pred pred) {
        for (auto it = map_.begin(); it != map_.end();) {
            if (!it->second.pinned && pred(it->first, it->second.value)) {
                order_.erase(it->second.pos);
                it = map_.erase(it);
            } else {
                ++it;
            }
        }
    }
    size_t size() const { return map_.size(); }

  private:
    struct Node {
        V value{};
        bool pinned = false;
        typename std::list<const std::string*>::iterator pos;  // in order_, when unpinned
    };
    void touch(Node& n) {
        if (!n.pinned) order_.splice(order_.end(), order_, n.pos);
    }

    size_t max_;
    std::unordered_map<std::string, Node> map_;
    std::list<const std::string*> order_;  // unpinned keys, least recently used first
};

}  // namespace warren
