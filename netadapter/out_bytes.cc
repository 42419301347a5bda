#include "netadapter/out_bytes.h"

#include <utility>

namespace warren {

OutBytes::OutBytes(OutBytes&& o) noexcept
    : parts_(std::move(o.parts_)), size_(std::exchange(o.size_, 0)) {
    o.parts_.clear();
}

OutBytes& OutBytes::operator=(OutBytes&& o) noexcept {
    if (this != &o) {
        clear();
        parts_ = std::move(o.parts_);
        o.parts_.clear();
        size_ = std::exchange(o.size_, 0);
    }
    return *this;
}

void OutBytes::append(SharedBytes* bytes) {
    if (bytes->view().empty()) return;
    bytes->ref();
    parts_.push_back(bytes);
    size_ += bytes->view().size();
}

void OutBytes::clear() {
    for (SharedBytes* p : parts_) p->unref();
    parts_ = std::vector<SharedBytes*>();  // its storage too: an idle connection holds nothing
    size_ = 0;
}

size_t OutBytes::gather(Cursor at, iovec* iov, size_t max) const {
    size_t n = 0;
    for (size_t i = at.part; i < parts_.size() && n < max; ++i) {
        std::string_view v = parts_[i]->view();
        size_t skip = i == at.part ? at.offset : 0;
        iov[n++] = iovec{const_cast<char*>(v.data()) + skip, v.size() - skip};
    }
    return n;
}

OutBytes::Cursor OutBytes::advance(Cursor at, size_t n) const {
    while (n > 0 && at.part < parts_.size()) {
        size_t left = parts_[at.part]->view().size() - at.offset;
        if (n < left) {
            at.offset += n;
            return at;
        }
        n -= left;
        ++at.part;
        at.offset = 0;
    }
    return at;
}

}  // namespace warren
