#include "core/monitor/histogram.h"

#include <algorithm>
#include <cmath>

namespace warren {

void Histogram::record(int64_t value) {
    value = std::max<int64_t>(0, value);
    size_t i =
        static_cast<size_t>(std::lower_bound(bounds.begin(), bounds.end(), value) - bounds.begin());
    ++counts_[i];
    ++count_;
    sum_ += value;
    max_ = std::max(max_, value);
}

void Histogram::merge(const Histogram& o) {
    for (size_t i = 0; i < counts_.size(); ++i) counts_[i] += o.counts_[i];
    count_ += o.count_;
    sum_ += o.sum_;
    max_ = std::max(max_, o.max_);
}

int64_t Histogram::percentile(double p) const {
    if (count_ == 0) return 0;
    // Nearest rank: the smallest value with at least p of the values at or below it.
    auto rank = static_cast<uint64_t>(std::ceil(p * static_cast<double>(count_)));
    rank = std::clamp<uint64_t>(rank, 1, count_);
    uint64_t seen = 0;
    for (size_t i = 0; i < counts_.size(); ++i) {
        seen += counts_[i];
        if (seen >= rank) return i < bounds.size() ? std::min(bounds[i], max_) : max_;
    }
    return max_;
}

uint64_t Histogram::cumulative(size_t i) const {
    uint64_t n = 0;
    for (size_t k = 0; k <= i && k < counts_.size(); ++k) n += counts_[k];
    return n;
}

}  // namespace warren
