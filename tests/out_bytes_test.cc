// OutBytes: a connection's outgoing bytes in pool chunks, read back by gather().
#include "netadapter/out_bytes.h"

#include <gtest/gtest.h>

#include <random>
#include <string>

namespace warren {
namespace {

std::string gathered(const OutBytes& b, size_t offset, size_t max_iov = 1024) {
    std::vector<iovec> iov(max_iov);
    size_t n = b.gather(offset, iov.data(), iov.size());
    std::string s;
    for (size_t i = 0; i < n; ++i) s.append(static_cast<const char*>(iov[i].iov_base), iov[i].iov_len);
    return s;
}

TEST(OutBytes, GathersExactlyWhatWasAppendedFromAnyOffset) {
    std::mt19937 rng(7);
    ChunkPool pool;
    OutBytes b;
    std::string want;
    // Lines of every size, some larger than a chunk, so lines straddle chunk boundaries.
    for (int i = 0; i < 200; ++i) {
        size_t len = rng() % (i % 17 == 0 ? 3 * ChunkPool::chunk_size : 700);
        std::string line(len, static_cast<char>('a' + i % 26));
        line += '\n';
        b.append(line, pool);
        want += line;
    }
    ASSERT_EQ(b.size(), want.size());
    for (size_t off : {size_t{0}, size_t{1}, ChunkPool::chunk_size - 1, ChunkPool::chunk_size,
                       ChunkPool::chunk_size + 5, want.size() - 1, want.size()})
        EXPECT_EQ(gathered(b, off), want.substr(off)) << "offset " << off;
}

TEST(OutBytes, GatherStopsAtTheIovecLimitAndResumesFromTheOffset) {
    ChunkPool pool;
    OutBytes b;
    std::string want(5 * ChunkPool::chunk_size + 123, 'x');
    for (size_t i = 0; i < want.size(); ++i) want[i] = static_cast<char>('0' + i % 10);
    b.append(want, pool);
    std::string got;
    while (got.size() < want.size()) {
        std::string part = gathered(b, got.size(), 2);
        ASSERT_FALSE(part.empty());
        ASSERT_LE(part.size(), 2 * ChunkPool::chunk_size);
        got += part;
    }
    EXPECT_EQ(got, want);
}

TEST(OutBytes, ClearGivesChunksBackAndThePoolKeepsAtMostItsBound) {
    ChunkPool pool(4 * ChunkPool::chunk_size);
    OutBytes a;
    a.append(std::string(10 * ChunkPool::chunk_size, 'z'), pool);
    EXPECT_EQ(pool.kept(), 0u);
    a.clear(pool);
    EXPECT_TRUE(a.empty());
    EXPECT_EQ(gathered(a, 0), "");
    EXPECT_EQ(pool.kept(), 4u);  // the other six were freed
    OutBytes b;
    b.append("hello\n", pool);  // reuses a kept chunk
    EXPECT_EQ(pool.kept(), 3u);
    EXPECT_EQ(gathered(b, 0), "hello\n");
}

}  // namespace
}  // namespace warren
