#pragma once
// The bytes a connection is owed: references to lines the core encoded once for their whole
// audience, written by gathering them (sendmsg), never copied per connection.

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace warren {

// One of the core's `Send`s as the driver holds it: its bytes and how many connections still
// owe them. Counted by hand, on the core's thread only (a delivery costs an increment, not an
// atomic reference of its own); another thread may read the bytes while a write it was handed
// holds a reference. Freed with the last reference.
class SharedBytes {
  public:
    // The caller holds the first reference.
    static SharedBytes* make(std::shared_ptr<const std::string> bytes) {
        return new SharedBytes(std::move(bytes));
    }
    void ref() { ++refs_; }
    void unref() {
        if (--refs_ == 0) delete this;
    }
    std::string_view view() const { return *bytes_; }

  private:
    explicit SharedBytes(std::shared_ptr<const std::string> b) : bytes_(std::move(b)) {}
    std::shared_ptr<const std::string> bytes_;
    uint32_t refs_ = 1;
};

// A connection's outgoing bytes, in order: appended and cleared on the core's thread, read by
// whoever holds the connection's write (gather() only reads). Empty, it holds no memory.
class OutBytes {
  public:
    // Where a write has got to: a part and the bytes of it already written.
    struct Cursor {
        size_t part = 0;
        size_t offset = 0;
    };

    OutBytes() = default;
    OutBytes(const OutBytes&) = delete;
    OutBytes& operator=(const OutBytes&) = delete;
    OutBytes(OutBytes&& o) noexcept;
    OutBytes& operator=(OutBytes&& o) noexcept;
    ~OutBytes() { clear(); }

    // Takes a reference to `bytes` (nothing for empty bytes).
    void append(SharedBytes* bytes);
    // Every reference is dropped.
    void clear();
    size_t size() const { return size_; }
    bool empty() const { return size_ == 0; }
    size_t parts() const { return parts_.size(); }
    // Fills up to `max` iovecs with the bytes from `at` on; returns how many it filled.
    size_t gather(Cursor at, iovec* iov, size_t max) const;
    // `at` moved on by `n` bytes.
    Cursor advance(Cursor at, size_t n) const;
    // The cursor `n` bytes from the start.
    Cursor seek(size_t n) const { return advance({}, n); }

  private:
    std::vector<SharedBytes*> parts_;
    size_t size_ = 0;
};

}  // namespace warren
