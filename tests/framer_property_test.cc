// Property tests (rapidcheck): framing does not depend on how the byte stream is split, and
// an oversized line is refused with bounded buffering, whatever the split. Failures print
// rapidcheck's seed; replay with RC_PARAMS="reproduce=...".
#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include "core/protocol/framer.h"

namespace warren {
namespace {

std::vector<std::string> frame_all(const std::string& stream, const std::vector<size_t>& cuts,
                                   size_t max, bool* too_large) {
    LineFramer f(max);
    std::vector<std::string> out;
    size_t pos = 0;
    *too_large = false;
    auto pump = [&] {
        std::string_view line;
        for (;;) {
            auto st = f.next(line);
            if (st == LineFramer::Status::line)
                out.emplace_back(line);
            else {
                if (st == LineFramer::Status::too_large) *too_large = true;
                return;
            }
        }
    };
    for (size_t cut : cuts) {
        if (*too_large) break;
        size_t n = std::min(cut, stream.size() - pos);
        f.feed(std::string_view(stream).substr(pos, n));
        pos += n;
        pump();
        RC_ASSERT(f.buffered_bytes() <= max + 1 || *too_large);
    }
    if (!*too_large && pos < stream.size()) {
        f.feed(std::string_view(stream).substr(pos));
        pump();
    }
    return out;
}

RC_GTEST_PROP(FramerProperty, SplitPointsDoNotChangeLines, ()) {
    auto lines = *rc::gen::container<std::vector<std::string>>(
        rc::gen::container<std::string>(rc::gen::distinctFrom(rc::gen::character<char>(), '\n')));
    std::string stream;
    std::vector<std::string> expected;
    for (const auto& l : lines) {
        std::string end = *rc::gen::element<std::string>("\n", "\r\n");
        stream += l + end;
        // Exactly one '\r' before the '\n' is dropped: the terminator's, or else the line's.
        std::string trimmed = l;
        if (end == "\n" && !trimmed.empty() && trimmed.back() == '\r') trimmed.pop_back();
        if (!trimmed.empty()) expected.push_back(trimmed);
    }
    auto cuts = *rc::gen::container<std::vector<size_t>>(rc::gen::inRange<size_t>(1, 8));
    bool too_large = false;
    auto got = frame_all(stream, cuts, 1 << 20, &too_large);
    RC_ASSERT(!too_large);
    RC_ASSERT(got == expected);
}

RC_GTEST_PROP(FramerProperty, OversizedLineAlwaysDetected, ()) {
    size_t max = *rc::gen::inRange<size_t>(1, 64);
    size_t len = *rc::gen::inRange<size_t>(max + 1, max * 4 + 2);
    std::string stream(len, 'x');
    if (*rc::gen::arbitrary<bool>()) stream += "\n";
    auto cuts = *rc::gen::nonEmpty(
        rc::gen::container<std::vector<size_t>>(rc::gen::inRange<size_t>(1, 16)));
    bool too_large = false;
    frame_all(stream, cuts, max, &too_large);
    // Only a complete oversized line or one whose unfinished part exceeds max+1 is
    // certain; without a newline and with len == max + 1, the last byte may still be '\r'.
    if (stream.back() == '\n' || len > max + 1) RC_ASSERT(too_large);
}

}  // namespace
}  // namespace warren
