#include "services/telemetry/domain/ingest.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"

namespace ptd::telemetry {

std::optional<std::string> CheckSample(const Sample& sample, const PointLimits& limits, const IngestWindow& window) {
  if (std::isnan(sample.value)) return "value is NaN";
  if (std::isinf(sample.value)) return "value is infinite";
  if (limits.min_value && sample.value < *limits.min_value) {
    return absl::StrCat("value ", sample.value, " below min_value ", *limits.min_value);
  }
  if (limits.max_value && sample.value > *limits.max_value) {
    return absl::StrCat("value ", sample.value, " above max_value ", *limits.max_value);
  }
  if (sample.ts_us > window.now_us + window.future_us) {
    return absl::StrCat("time is ", (sample.ts_us - window.now_us) / kMicrosPerSecond, " s in the future (at most ",
                        window.future_us / kMicrosPerSecond, " s accepted)");
  }
  if (sample.ts_us < window.now_us - window.late_us) {
    return absl::StrCat("time is older than the late window of ", window.late_us / kMicrosPerSecond, " s");
  }
  return std::nullopt;
}

int64_t SortAndDropRepeats(std::vector<TimedSample>& samples, std::vector<int64_t>* dropped_by_origin) {
  // Stable: of samples with the same time, the first one sent stays first and is kept.
  std::stable_sort(samples.begin(), samples.end(), [](const TimedSample& a, const TimedSample& b) {
    return a.ts_us < b.ts_us || (a.ts_us == b.ts_us && a.origin < b.origin);
  });
  size_t kept = 0;
  for (size_t i = 0; i < samples.size(); ++i) {
    if (kept > 0 && samples[kept - 1].ts_us == samples[i].ts_us) {
      if (dropped_by_origin != nullptr) ++(*dropped_by_origin)[samples[i].origin];
      continue;
    }
    samples[kept++] = samples[i];
  }
  int64_t dropped = static_cast<int64_t>(samples.size() - kept);
  samples.resize(kept);
  return dropped;
}

std::vector<Block> SplitByDay(std::span<const TimedSample> samples) {
  std::vector<Block> blocks;
  for (const TimedSample& s : samples) {
    int64_t day = DayOf(s.ts_us);
    if (blocks.empty() || blocks.back().day != day) blocks.push_back(Block{.day = day});
    Block& b = blocks.back();
    b.ts_us.push_back(s.ts_us);
    b.values.push_back(s.value);
    b.quality.push_back(static_cast<int16_t>(NormalizeQuality(s.quality)));
  }
  for (Block& b : blocks) {
    if (std::all_of(b.quality.begin(), b.quality.end(), [](int16_t q) { return q == 1; })) b.quality.clear();
  }
  return blocks;
}

void Aggregate::Add(int64_t ts_us, double value) {
  if (count == 0) {
    min = max = value;
  } else {
    min = std::min(min, value);
    max = std::max(max, value);
  }
  sum += value;
  if (count == 0 || ts_us >= last_ts_us) {
    last_ts_us = ts_us;
    last_value = value;
  }
  ++count;
}

void Aggregate::Merge(const Aggregate& other) {
  if (other.count == 0) return;
  if (count == 0) {
    *this = other;
    return;
  }
  min = std::min(min, other.min);
  max = std::max(max, other.max);
  sum += other.sum;
  count += other.count;
  if (other.last_ts_us >= last_ts_us) {
    last_ts_us = other.last_ts_us;
    last_value = other.last_value;
  }
}

absl::flat_hash_map<int64_t, Aggregate> Rollup(std::span<const TimedSample> samples, int64_t step_us) {
  absl::flat_hash_map<int64_t, Aggregate> out;
  for (const TimedSample& s : samples) out[FloorTo(s.ts_us, step_us)].Add(s.ts_us, s.value);
  return out;
}

Resolution PickResolution(int64_t start_us, int64_t end_us) {
  int64_t span = end_us - start_us;
  if (span <= 2 * kMicrosPerHour) return Resolution::kRaw;
  if (span <= 2 * kMicrosPerDay) return Resolution::kMinute;
  if (span <= 90 * kMicrosPerDay) return Resolution::kHour;
  return Resolution::kDay;
}

int64_t StepOf(Resolution r) {
  switch (r) {
    case Resolution::kMinute:
      return kMicrosPerMinute;
    case Resolution::kHour:
      return kMicrosPerHour;
    case Resolution::kDay:
      return kMicrosPerDay;
    case Resolution::kRaw:
      break;
  }
  return 0;
}

}  // namespace ptd::telemetry
