#ifndef PTD_TOOLS_LOAD_HISTOGRAM_H_
#define PTD_TOOLS_LOAD_HISTOGRAM_H_

#include <cstdint>
#include <vector>

namespace ptd::load {

// A log-linear histogram of non-negative integers (latencies in microseconds), in the manner of HdrHistogram
// (which Debian does not package): values below 2^kSubBucketBits are counted exactly; above, each power of
// two is cut into 2^kSubBucketBits equal buckets, so a quantile is reported within 1/128 (0.8 %) of the value
// recorded. Values above kMaxTrackable are counted as kMaxTrackable. Recording is O(1) and allocation-free;
// one histogram per thread, merged at the end.
class Histogram {
 public:
  static constexpr int kSubBucketBits = 7;
  static constexpr int64_t kMaxTrackable = (int64_t{1} << 40) - 1;  // about 12.7 days in microseconds

  Histogram();

  // Negative values count as 0.
  void Record(int64_t value);
  void Merge(const Histogram& other);

  int64_t count() const { return count_; }
  int64_t min() const { return count_ == 0 ? 0 : min_; }
  int64_t max() const { return max_; }
  double mean() const { return count_ == 0 ? 0 : static_cast<double>(sum_) / static_cast<double>(count_); }

  // The smallest recorded value v such that at least a fraction q (0..1) of the values are <= v, as the
  // highest value of its bucket (never above max()); 0 when empty. q = 1 gives max() exactly.
  int64_t ValueAtQuantile(double q) const;

  // Bucket arithmetic, exposed for the test.
  static int BucketIndex(int64_t value);
  static int64_t BucketLowest(int index);
  static int64_t BucketHighest(int index);

 private:
  std::vector<int64_t> counts_;
  int64_t count_ = 0;
  int64_t sum_ = 0;
  int64_t min_ = 0;
  int64_t max_ = 0;
};

}  // namespace ptd::load

#endif  // PTD_TOOLS_LOAD_HISTOGRAM_H_
