#include "core/protocol/framer.h"

#include <cstring>

namespace warren {

LineFramer::Status LineFramer::next(std::string_view& line) {
    for (;;) {
        if (skipping_) {
            size_t nl = buf_.find('\n', pos_);
            if (nl == std::string::npos) {
                buf_.clear();
                pos_ = scan_ = 0;
                return Status::need_more;
            }
            pos_ = scan_ = nl + 1;
            skipping_ = false;
            continue;
        }
        const char* base = buf_.data();
        const void* nl =
            scan_ < buf_.size()
                ? std::memchr(base + scan_, '\n', buf_.size() - scan_)  // NOLINT: not a C string
                : nullptr;
        if (nl == nullptr) {
            scan_ = buf_.size();
            size_t pending = buf_.size() - pos_;
            // One byte more than the limit is allowed only if it may be the '\r' of "\r\n".
            if (pending > max_ + 1 || (pending == max_ + 1 && buf_.back() != '\r')) {
                if (resync_) {
                    skipping_ = true;
                    buf_.clear();
                    pos_ = scan_ = 0;
                }
                return Status::too_large;
            }
            if (pos_ > 0) {
                buf_.erase(0, pos_);
                scan_ -= pos_;
                pos_ = 0;
            }
            return Status::need_more;
        }
        size_t end = static_cast<size_t>(static_cast<const char*>(nl) - base);
        size_t start = pos_;
        pos_ = scan_ = end + 1;
        if (end > start && buf_[end - 1] == '\r') --end;
        if (end - start > max_) return Status::too_large;
        if (end == start) continue;  // empty line
        line = std::string_view(base + start, end - start);
        return Status::line;
    }
}

}  // namespace warren
