#include "tools/load/histogram.h"

#include <algorithm>
#include <bit>
#include <cmath>

namespace ptd::load {
namespace {

constexpr int64_t kSubBuckets = int64_t{1} << Histogram::kSubBucketBits;

}  // namespace

// Index of v: v itself below kSubBuckets; above, with shift = bit_width(v) - kSubBucketBits - 1, the bucket
// (v >> shift) - kSubBuckets of the (shift + 1)-th group of kSubBuckets buckets. Indexes are contiguous.
int Histogram::BucketIndex(int64_t value) {
  value = std::clamp<int64_t>(value, 0, kMaxTrackable);
  if (value < kSubBuckets) return static_cast<int>(value);
  const int shift = std::bit_width(static_cast<uint64_t>(value)) - kSubBucketBits - 1;
  return static_cast<int>(kSubBuckets * (shift + 1) + ((value >> shift) - kSubBuckets));
}

int64_t Histogram::BucketLowest(int index) {
  if (index < kSubBuckets) return index;
  const int shift = static_cast<int>(index / kSubBuckets) - 1;
  return (kSubBuckets + index % kSubBuckets) << shift;
}

int64_t Histogram::BucketHighest(int index) {
  if (index < kSubBuckets) return index;
  const int shift = static_cast<int>(index / kSubBuckets) - 1;
  return BucketLowest(index) + (int64_t{1} << shift) - 1;
}

Histogram::Histogram() : counts_(BucketIndex(kMaxTrackable) + 1, 0) {}

void Histogram::Record(int64_t value) {
  value = std::clamp<int64_t>(value, 0, kMaxTrackable);
  ++counts_[BucketIndex(value)];
  if (count_ == 0 || value < min_) min_ = value;
  max_ = std::max(max_, value);
  ++count_;
  sum_ += value;
}

void Histogram::Merge(const Histogram& other) {
  if (other.count_ == 0) return;
  for (size_t i = 0; i < counts_.size(); ++i) counts_[i] += other.counts_[i];
  min_ = count_ == 0 ? other.min_ : std::min(min_, other.min_);
  max_ = std::max(max_, other.max_);
  count_ += other.count_;
  sum_ += other.sum_;
}

int64_t Histogram::ValueAtQuantile(double q) const {
  if (count_ == 0) return 0;
  if (q >= 1) return max_;
  const int64_t rank =
      std::max<int64_t>(1, static_cast<int64_t>(std::ceil(std::max(q, 0.0) * static_cast<double>(count_))));
  int64_t seen = 0;
  for (size_t i = 0; i < counts_.size(); ++i) {
    seen += counts_[i];
    if (seen >= rank) return std::clamp(BucketHighest(static_cast<int>(i)), min_, max_);
  }
  return max_;
}

}  // namespace ptd::load
