#pragma once
// The bytes a connection is owed, kept in fixed-size chunks drawn from a pool.

#include <sys/uio.h>

#include <cstddef>
#include <memory>
#include <string_view>
#include <vector>

namespace warren {

// Chunks for outgoing bytes, kept for reuse up to a bound. A busy server copies each line
// once, into memory it already touched: no buffer is grown by reallocating and copying what it
// held, and no fresh pages are faulted in for every burst. What the pool keeps is bounded;
// what is in use is bounded by the core's outbound budget.
class ChunkPool {
  public:
    static constexpr size_t chunk_size = 16 * 1024;
    explicit ChunkPool(size_t keep_bytes_max = 16 << 20) : keep_max_(keep_bytes_max / chunk_size) {}
    std::unique_ptr<char[]> take();
    void give(std::unique_ptr<char[]> chunk);
    size_t kept() const { return free_.size(); }

  private:
    std::vector<std::unique_ptr<char[]>> free_;
    size_t keep_max_;
};

// A connection's outgoing bytes, in order: appended on the core's thread, written by whoever
// holds the connection's write (gather() only reads). Empty, it holds no memory.
class OutBytes {
  public:
    void append(std::string_view bytes, ChunkPool& pool);
    // Every chunk goes back to the pool.
    void clear(ChunkPool& pool);
    size_t size() const { return size_; }
    bool empty() const { return size_ == 0; }
    // Fills up to `max` iovecs with the bytes from `offset` on; returns how many it filled.
    size_t gather(size_t offset, iovec* iov, size_t max) const;

  private:
    struct Chunk {
        std::unique_ptr<char[]> data;
        size_t used = 0;
    };
    std::vector<Chunk> chunks_;
    size_t size_ = 0;
};

}  // namespace warren
