#include "services/telemetry/domain/ingest.h"

#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <random>

namespace ptd::telemetry {
namespace {

constexpr int64_t kNow = 1'780'000'000LL * kMicrosPerSecond;

TEST_CASE("bad samples are refused with a reason, good ones pass") {
  PointLimits limits{.min_value = -20.0, .max_value = 150.0};
  IngestWindow window{.now_us = kNow, .late_us = kMicrosPerDay, .future_us = kMicrosPerMinute};
  struct Case {
    Sample sample;
    std::string reason;  // empty: accepted
  };
  auto c = GENERATE(Case{{kNow, 20.5}, ""}, Case{{kNow, std::nan("")}, "NaN"},
                    Case{{kNow, std::numeric_limits<double>::infinity()}, "infinite"},
                    Case{{kNow, -20.5}, "below min_value"}, Case{{kNow, 150.01}, "above max_value"},
                    Case{{kNow, 150.0}, ""}, Case{{kNow, -20.0}, ""},
                    Case{{kNow + 2 * kMicrosPerMinute, 1}, "in the future"}, Case{{kNow + kMicrosPerMinute, 1}, ""},
                    Case{{kNow - kMicrosPerDay - 1, 1}, "late window"}, Case{{kNow - kMicrosPerDay, 1}, ""});
  std::optional<std::string> why = CheckSample(c.sample, limits, window);
  if (c.reason.empty()) {
    CHECK_FALSE(why.has_value());
  } else {
    REQUIRE(why.has_value());
    CHECK_THAT(*why, Catch::Contains(c.reason));
  }
}

TEST_CASE("repeated times in a batch keep the first sample sent") {
  std::vector<TimedSample> s = {{30, 3, 1}, {10, 1, 1}, {30, 99, 1}, {20, 2, 1}, {10, 98, 3}};
  CHECK(SortAndDropRepeats(s) == 2);
  REQUIRE(s.size() == 3);
  CHECK(s[0].ts_us == 10);
  CHECK(s[0].value == 1);
  CHECK(s[2].value == 3);
}

TEST_CASE("repeats across batches stored together count against the later batch") {
  std::vector<TimedSample> s = {{10, 1, 1, 0}, {20, 2, 1, 0}, {20, 5, 1, 1}, {10, 9, 1, 1}, {30, 3, 1, 1}};
  std::vector<int64_t> dropped(2, 0);
  CHECK(SortAndDropRepeats(s, &dropped) == 2);
  CHECK(dropped == std::vector<int64_t>{0, 2});
  REQUIRE(s.size() == 3);
  CHECK(s[0].value == 1);
  CHECK(s[1].value == 2);
  CHECK(s[2].origin == 1);
}

TEST_CASE("blocks split at UTC midnight and keep qualities only when some are not good") {
  int64_t midnight = 20'000 * kMicrosPerDay;
  std::vector<TimedSample> s = {{midnight - 2, 1, 0}, {midnight - 1, 2, 1}, {midnight, 3, 1}, {midnight + 5, 4, 3}};
  std::vector<Block> blocks = SplitByDay(s);
  REQUIRE(blocks.size() == 2);
  CHECK(blocks[0].day == 19'999);
  CHECK(blocks[0].ts_us == std::vector<int64_t>{midnight - 2, midnight - 1});
  CHECK(blocks[0].quality.empty());
  CHECK(blocks[1].day == 20'000);
  CHECK(blocks[1].quality == std::vector<int16_t>{1, 3});
}

TEST_CASE("floor and day are correct before the epoch too") {
  CHECK(FloorTo(-1, 60) == -60);
  CHECK(FloorTo(-60, 60) == -60);
  CHECK(FloorTo(59, 60) == 0);
  CHECK(DayOf(-1) == -1);
  CHECK(DayOf(0) == 0);
}

TEST_CASE("rollups merged from late pieces equal the rollup of everything at once") {
  std::mt19937_64 rng(7);
  std::vector<TimedSample> all;
  for (int i = 0; i < 5000; ++i) {
    all.push_back({static_cast<int64_t>(rng() % (3 * kMicrosPerHour)), static_cast<double>(rng() % 1000) / 7, 1});
  }
  SortAndDropRepeats(all);
  auto whole = Rollup(all, kMicrosPerMinute);
  // The same samples arriving in 10 random pieces, each folded into the running aggregates.
  std::vector<TimedSample> shuffled = all;
  std::shuffle(shuffled.begin(), shuffled.end(), rng);
  absl::flat_hash_map<int64_t, Aggregate> folded;
  for (size_t start = 0; start < shuffled.size(); start += 500) {
    std::vector<TimedSample> piece(shuffled.begin() + start, shuffled.begin() + std::min(shuffled.size(), start + 500));
    SortAndDropRepeats(piece);
    for (const auto& [bucket, agg] : Rollup(piece, kMicrosPerMinute)) folded[bucket].Merge(agg);
  }
  REQUIRE(folded.size() == whole.size());
  for (const auto& [bucket, agg] : whole) {
    const Aggregate& f = folded.at(bucket);
    CHECK(f.count == agg.count);
    CHECK(f.min == agg.min);
    CHECK(f.max == agg.max);
    CHECK(f.last_ts_us == agg.last_ts_us);
    CHECK(f.last_value == agg.last_value);
    CHECK(f.sum == Approx(agg.sum).epsilon(1e-12));
  }
}

TEST_CASE("resolution follows the range") {
  CHECK(PickResolution(0, 2 * kMicrosPerHour) == Resolution::kRaw);
  CHECK(PickResolution(0, kMicrosPerDay) == Resolution::kMinute);
  CHECK(PickResolution(0, 30 * kMicrosPerDay) == Resolution::kHour);
  CHECK(PickResolution(0, 365 * kMicrosPerDay) == Resolution::kDay);
}

}  // namespace
}  // namespace ptd::telemetry
