// Fifo: a first-in, first-out sequence that holds no memory until something is pushed, and
// little once drained. The security tables keep several time windows per address and per
// account, and every connection its reply slots: with std::deque, which allocates a 512-byte
// block and its map as soon as it is made, those empty windows cost kilobytes per user and
// per connection. Here the items sit in a vector behind a head index; popping moves the
// head, and the vector is compacted once the head passes half of it (amortised constant
// time). Draining it keeps a small capacity (KeepCapacity items) for the next push and gives
// a larger one back; KeepCapacity = 0 gives everything back, for queues that are usually
// empty and whose items are large.
#pragma once

#include <cstddef>
#include <utility>
#include <vector>

namespace warren {

template <typename T, size_t KeepCapacity = 8>
class Fifo {
  public:
    bool empty() const { return head_ == items_.size(); }
    size_t size() const { return items_.size() - head_; }
    T& front() { return items_[head_]; }
    const T& front() const { return items_[head_]; }
    T& back() { return items_.back(); }
    const T& back() const { return items_.back(); }
    T& operator[](size_t i) { return items_[head_ + i]; }
    const T& operator[](size_t i) const { return items_[head_ + i]; }
    auto begin() { return items_.begin() + static_cast<std::ptrdiff_t>(head_); }
    auto end() { return items_.end(); }
    auto begin() const { return items_.begin() + static_cast<std::ptrdiff_t>(head_); }
    auto end() const { return items_.end(); }

    void push_back(T v) { items_.push_back(std::move(v)); }
    template <typename... Args>
    T& emplace_back(Args&&... args) {
        return items_.emplace_back(std::forward<Args>(args)...);
    }
    void pop_back() {
        items_.pop_back();
        if (empty()) clear();
    }
    void pop_front() {
        ++head_;
        if (head_ == items_.size()) {
            clear();
        } else if (head_ >= compact_at && head_ * 2 >= items_.size()) {
            items_.erase(items_.begin(), begin());
            head_ = 0;
        }
    }
    void clear() {
        if (items_.capacity() > keep_capacity)
            std::vector<T>().swap(items_);
        else
            items_.clear();
        head_ = 0;
    }

  private:
    static constexpr size_t compact_at = 16;
    static constexpr size_t keep_capacity = KeepCapacity;
    std::vector<T> items_;
    size_t head_ = 0;
};

}  // namespace warren
