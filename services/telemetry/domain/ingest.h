#ifndef PTD_SERVICES_TELEMETRY_DOMAIN_INGEST_H_
#define PTD_SERVICES_TELEMETRY_DOMAIN_INGEST_H_

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "services/telemetry/domain/sample.h"

// The pure part of ingest: which samples of a batch are acceptable, how the accepted ones are laid out in
// storage (one block per point and UTC day: parallel arrays of times, values and qualities, sorted by time)
// and how they change the rollups. No I/O.
namespace ptd::telemetry {

// What ingest needs to know of a data point.
struct PointLimits {
  std::optional<double> min_value;
  std::optional<double> max_value;
};

struct IngestWindow {
  int64_t now_us = 0;
  int64_t late_us = 7 * kMicrosPerDay;       // samples older than now - late_us are refused
  int64_t future_us = 5 * kMicrosPerMinute;  // samples newer than now + future_us are refused
};

// Why one sample is refused, or nullopt when it is acceptable.
std::optional<std::string> CheckSample(const Sample& sample, const PointLimits& limits, const IngestWindow& window);

// Quality codes as stored: 1 good (also for 0, unspecified), 2 uncertain, 3 bad.
inline int NormalizeQuality(int q) { return q == 0 ? 1 : q; }

// A point's accepted samples of one UTC day, sorted by time, without repeated times.
struct Block {
  int64_t day = 0;  // days since 1970-01-01
  std::vector<int64_t> ts_us;
  std::vector<double> values;
  std::vector<int16_t> quality;  // empty when every sample is good
  int64_t t_min_us() const { return ts_us.front(); }
  int64_t t_max_us() const { return ts_us.back(); }
};

struct TimedSample {
  int64_t ts_us;
  double value;
  int16_t quality;
  int32_t origin = 0;  // which of the batches stored together sent it (for their answers)
};

// Sorts `samples` by time and drops repeated times, keeping the first one sent (a resent sample is the same
// measurement; the first write wins, as in storage); samples of a lower origin count as sent first. Returns how
// many were dropped; when `dropped_by_origin` is given, also adds each dropped sample to its origin's count there.
int64_t SortAndDropRepeats(std::vector<TimedSample>& samples, std::vector<int64_t>* dropped_by_origin = nullptr);

// Splits sorted, distinct samples into blocks per UTC day.
std::vector<Block> SplitByDay(std::span<const TimedSample> samples);

// Days since the epoch of a time (floor, also before 1970).
inline int64_t FloorTo(int64_t ts_us, int64_t step_us) { return ts_us - ((ts_us % step_us) + step_us) % step_us; }
inline int64_t DayOf(int64_t ts_us) { return FloorTo(ts_us, kMicrosPerDay) / kMicrosPerDay; }

// The aggregate of a rollup bucket. Merging two aggregates of disjoint samples gives the aggregate of the
// union (min, max, sum, count add up; last is the one with the later time), which is how late data folds in.
struct Aggregate {
  double min = 0;
  double max = 0;
  double sum = 0;
  int64_t count = 0;
  int64_t last_ts_us = 0;
  double last_value = 0;

  void Add(int64_t ts_us, double value);
  void Merge(const Aggregate& other);
  double avg() const { return count == 0 ? 0 : sum / static_cast<double>(count); }
};

// Aggregates of sorted samples per bucket start (bucket = floor(ts / step) * step).
absl::flat_hash_map<int64_t, Aggregate> Rollup(std::span<const TimedSample> samples, int64_t step_us);

// Resolution picked for a range when the caller asks for AUTO.
enum class Resolution { kRaw, kMinute, kHour, kDay };
Resolution PickResolution(int64_t start_us, int64_t end_us);
int64_t StepOf(Resolution r);

}  // namespace ptd::telemetry

#endif  // PTD_SERVICES_TELEMETRY_DOMAIN_INGEST_H_
