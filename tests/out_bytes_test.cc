// OutBytes: a connection's outgoing bytes as references to shared lines, read back by gather().
#include "netadapter/out_bytes.h"

#include <gtest/gtest.h>

#include <random>
#include <string>

namespace warren {
namespace {

std::string gathered(const OutBytes& b, OutBytes::Cursor at, size_t max_iov = 1024) {
    std::vector<iovec> iov(max_iov);
    size_t n = b.gather(at, iov.data(), iov.size());
    std::string s;
    for (size_t i = 0; i < n; ++i)
        s.append(static_cast<const char*>(iov[i].iov_base), iov[i].iov_len);
    return s;
}

// Appends `text` as a Send would: the caller's reference is dropped once it is queued.
void append(OutBytes& b, std::string text) {
    SharedBytes* s = SharedBytes::make(std::make_shared<const std::string>(std::move(text)));
    b.append(s);
    s->unref();
}

TEST(OutBytes, GathersExactlyWhatWasAppendedFromAnyOffset) {
    std::mt19937 rng(7);
    OutBytes b;
    std::string want;
    for (int i = 0; i < 300; ++i) {
        std::string line(rng() % 700, static_cast<char>('a' + i % 26));  // some empty
        if (i % 3) line += '\n';
        append(b, line);
        want += line;
    }
    ASSERT_EQ(b.size(), want.size());
    for (size_t off = 0; off <= want.size(); off += 1 + rng() % 997)
        ASSERT_EQ(gathered(b, b.seek(off)), want.substr(off)) << "offset " << off;
    EXPECT_EQ(gathered(b, b.seek(want.size())), "");
}

// A writer that the socket takes a few bytes at a time from: the cursor moves on by what
// was written, at most `max` pieces at a time, and ends exactly at the end.
TEST(OutBytes, AWriteInPiecesResumesWhereTheLastOneStopped) {
    std::mt19937 rng(11);
    OutBytes b;
    std::string want;
    for (int i = 0; i < 100; ++i) {
        std::string line(1 + rng() % 300, static_cast<char>('A' + i % 26));
        append(b, line);
        want += line;
    }
    std::string got;
    OutBytes::Cursor at;
    while (got.size() < want.size()) {
        std::string part = gathered(b, at, 3);
        ASSERT_FALSE(part.empty());
        size_t taken = std::min(part.size(), size_t{1 + rng() % 500});
        got += part.substr(0, taken);
        at = b.advance(at, taken);
    }
    EXPECT_EQ(got, want);
    EXPECT_EQ(gathered(b, at), "");
}

// Lines are shared, not copied: each connection's queue holds a reference, and the bytes go
// with the last one (ASan checks the frees).
TEST(OutBytes, SharedLinesLiveUntilTheLastQueueLetsGo) {
    auto text = std::make_shared<const std::string>("shared line\n");
    std::weak_ptr<const std::string> alive = text;
    SharedBytes* s = SharedBytes::make(std::move(text));
    OutBytes a, b;
    a.append(s);
    b.append(s);
    s->unref();
    EXPECT_EQ(gathered(a, {}), "shared line\n");
    a.clear();
    EXPECT_TRUE(a.empty());
    EXPECT_FALSE(alive.expired());
    EXPECT_EQ(gathered(b, {}), "shared line\n");
    OutBytes moved = std::move(b);
    EXPECT_TRUE(b.empty());  // NOLINT(bugprone-use-after-move): moved-from is empty, by design
    EXPECT_FALSE(alive.expired());
    moved.clear();
    EXPECT_TRUE(alive.expired());
}

}  // namespace
}  // namespace warren
