#include "netadapter/out_bytes.h"

#include <algorithm>
#include <cstring>

namespace warren {

std::unique_ptr<char[]> ChunkPool::take() {
    if (free_.empty()) return std::make_unique_for_overwrite<char[]>(chunk_size);
    std::unique_ptr<char[]> c = std::move(free_.back());
    free_.pop_back();
    return c;
}

void ChunkPool::give(std::unique_ptr<char[]> chunk) {
    if (free_.size() < keep_max_) free_.push_back(std::move(chunk));
}

void OutBytes::append(std::string_view bytes, ChunkPool& pool) {
    size_ += bytes.size();
    while (!bytes.empty()) {
        if (chunks_.empty() || chunks_.back().used == ChunkPool::chunk_size)
            chunks_.push_back(Chunk{pool.take(), 0});
        Chunk& c = chunks_.back();
        size_t n = std::min(bytes.size(), ChunkPool::chunk_size - c.used);
        std::memcpy(c.data.get() + c.used, bytes.data(), n);
        c.used += n;
        bytes.remove_prefix(n);
    }
}

void OutBytes::clear(ChunkPool& pool) {
    for (Chunk& c : chunks_) pool.give(std::move(c.data));
    chunks_ = std::vector<Chunk>();  // its storage too: an idle connection holds nothing
    size_ = 0;
}

size_t OutBytes::gather(size_t offset, iovec* iov, size_t max) const {
    size_t n = 0;
    for (const Chunk& c : chunks_) {
        if (n == max) break;
        if (offset >= c.used) {
            offset -= c.used;
            continue;
        }
        iov[n++] = iovec{c.data.get() + offset, c.used - offset};
        offset = 0;
    }
    return n;
}

}  // namespace warren
