#include "tools/load/histogram.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <random>
#include <vector>

using ptd::load::Histogram;

TEST_CASE("an empty histogram reports zeros") {
  Histogram h;
  CHECK(h.count() == 0);
  CHECK(h.ValueAtQuantile(0.5) == 0);
  CHECK(h.max() == 0);
  CHECK(h.min() == 0);
  CHECK(h.mean() == 0);
}

TEST_CASE("bucket indexes are contiguous and every value falls inside its bucket") {
  int previous = -1;
  for (int64_t v = 0; v < 100'000; ++v) {
    const int i = Histogram::BucketIndex(v);
    REQUIRE((i == previous || i == previous + 1));
    REQUIRE(Histogram::BucketLowest(i) <= v);
    REQUIRE(v <= Histogram::BucketHighest(i));
    previous = i;
  }
  for (int64_t v : {int64_t{1} << 20, (int64_t{1} << 33) + 12345, Histogram::kMaxTrackable}) {
    const int i = Histogram::BucketIndex(v);
    CHECK(Histogram::BucketLowest(i) <= v);
    CHECK(v <= Histogram::BucketHighest(i));
    // A bucket is at most 1/128 of its lowest value wide.
    CHECK(static_cast<double>(Histogram::BucketHighest(i) - Histogram::BucketLowest(i)) <=
          static_cast<double>(Histogram::BucketLowest(i)) / 128.0);
  }
}

TEST_CASE("small values are counted exactly") {
  Histogram h;
  for (int64_t v = 1; v <= 100; ++v) h.Record(v);
  CHECK(h.count() == 100);
  CHECK(h.min() == 1);
  CHECK(h.max() == 100);
  CHECK(h.ValueAtQuantile(0.5) == 50);
  CHECK(h.ValueAtQuantile(0.99) == 99);
  CHECK(h.ValueAtQuantile(0.999) == 100);
  CHECK(h.ValueAtQuantile(1.0) == 100);
  CHECK(h.ValueAtQuantile(0.0) == 1);
  CHECK(h.mean() == Approx(50.5));
}

TEST_CASE("quantiles of spread values are within 1 % of the exact ones") {
  std::mt19937_64 rng(42);
  std::lognormal_distribution<double> latency(std::log(2000.0), 1.0);  // microseconds, median 2 ms
  std::vector<int64_t> values;
  Histogram h;
  for (int i = 0; i < 200'000; ++i) {
    const auto v = static_cast<int64_t>(latency(rng));
    values.push_back(v);
    h.Record(v);
  }
  std::sort(values.begin(), values.end());
  for (double q : {0.5, 0.9, 0.99, 0.999}) {
    const int64_t exact = values[static_cast<size_t>(std::ceil(q * values.size())) - 1];
    const int64_t reported = h.ValueAtQuantile(q);
    CHECK(reported >= exact);
    CHECK(static_cast<double>(reported - exact) <= 0.01 * static_cast<double>(exact));
  }
  CHECK(h.ValueAtQuantile(1.0) == values.back());
  CHECK(h.min() == values.front());
}

TEST_CASE("merged histograms equal one that recorded everything") {
  Histogram a, b, all;
  for (int64_t v = 0; v < 5000; ++v) {
    (v % 3 == 0 ? a : b).Record(v * 37);
    all.Record(v * 37);
  }
  Histogram merged;
  merged.Merge(a);
  merged.Merge(b);
  CHECK(merged.count() == all.count());
  CHECK(merged.min() == all.min());
  CHECK(merged.max() == all.max());
  for (double q : {0.1, 0.5, 0.9, 0.99, 0.999, 1.0}) CHECK(merged.ValueAtQuantile(q) == all.ValueAtQuantile(q));
}

TEST_CASE("values out of range are clamped") {
  Histogram h;
  h.Record(-5);
  h.Record(Histogram::kMaxTrackable * 4);
  CHECK(h.count() == 2);
  CHECK(h.min() == 0);
  CHECK(h.max() == Histogram::kMaxTrackable);
}
