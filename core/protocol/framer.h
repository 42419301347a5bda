// LineFramer: splits one connection's inbound byte stream into protocol lines.
//
// Lines end with '\n'; one '\r' before it is dropped; empty lines are skipped. A line longer
// than max_frame_bytes (not counting "\r\n") is reported as too_large as soon as that is
// certain, before its end arrives, so an oversized line is never buffered whole: the buffer
// never holds more than max_frame_bytes + 1 unconsumed bytes of one unfinished line.
// With `resync` (IRC, where one oversized line is answered and the connection goes on), the
// rest of an oversized line is dropped as it arrives and reading resumes after its '\n'.
// A view returned by next() stays valid until the next call to feed() or next().
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace warren {

class LineFramer {
  public:
    enum class Status { line, need_more, too_large };

    explicit LineFramer(size_t max_frame_bytes, bool resync = false)
        : max_(max_frame_bytes), resync_(resync) {}

    void feed(std::string_view bytes) { buf_.append(bytes); }
    Status next(std::string_view& line);
    // Bytes received and not yet returned as lines.
    size_t buffered_bytes() const { return buf_.size() - pos_; }

  private:
    size_t max_;
    bool resync_;
    bool skipping_ = false;  // resync: inside an oversized line, dropping bytes up to its '\n'
    std::string buf_;
    size_t pos_ = 0;   // start of the first unconsumed byte
    size_t scan_ = 0;  // bytes before this offset are known not to be '\n'
};

}  // namespace warren
