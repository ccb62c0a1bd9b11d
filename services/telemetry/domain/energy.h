#ifndef PTD_SERVICES_TELEMETRY_DOMAIN_ENERGY_H_
#define PTD_SERVICES_TELEMETRY_DOMAIN_ENERGY_H_

#include <cstdint>
#include <span>
#include <vector>

#include "absl/status/status.h"
#include "services/telemetry/domain/sample.h"

// Energy from cumulative meters: increases between readings (meter resets and counter wrap handled), their spreading
// over time, and hourly/daily/monthly reports in the plant's local time with time-of-use cost and peak demand.
// Pure functions, no I/O.
namespace ptd::telemetry {

// How much a cumulative counter grew over [from_us, to_us): the interval between two consecutive readings.
struct Increase {
  int64_t from_us = 0;
  int64_t to_us = 0;
  double amount = 0;
  bool operator==(const Increase&) const = default;
};

// The increases of a cumulative counter (a kWh meter, a part counter) between consecutive readings, one per pair of
// neighbours, in the order of `readings` (which must be sorted by time; equal timestamps give an instantaneous
// increase with from_us == to_us). For a reading `prev` followed by `cur`:
//   - cur >= prev: the counter counted on, the increase is cur - prev;
//   - cur < prev, wrap_at > 0, 0.9 × wrap_at <= prev <= wrap_at and cur <= 0.1 × wrap_at: the counter rolled over at
//     wrap_at (a 5-digit register wraps at 100000), the increase is (wrap_at - prev) + cur;
//   - any other cur < prev: the meter was reset (replaced, or restarted from zero), the increase is cur — what it
//     counted since the reset; what it counted between `prev` and the reset is unknown and lost.
// Readings are expected to be non-negative; a negative reading after a reset counts as zero, so no increase is ever
// negative. Fewer than two readings give no increases.
std::vector<Increase> CounterIncreases(std::span<const Sample> readings, double wrap_at);

// The part of `increases` that falls inside [start_us, end_us), each increase spread uniformly over its own interval
// (linear interpolation): an increase of 10 over 07:30–08:30 puts 5 before 08:00 and 5 after. An instantaneous
// increase (from_us == to_us) counts wholly if its instant lies in [start_us, end_us). Empty range: 0.
// Spreading is additive, so the increases of several counters may simply be concatenated.
double Spread(std::span<const Increase> increases, int64_t start_us, int64_t end_us);

// Time-of-use tariff periods; the numeric values index Tariff::price_minor_per_mwh and EnergyBucket::kwh_by_period.
enum class TouPeriod { kValley = 0, kFlat = 1, kPeak = 2 };

// A stretch of the plant's local day, [start_minute, end_minute) in minutes after local midnight, with one period.
struct TariffWindow {
  int start_minute = 0;
  int end_minute = 0;
  TouPeriod period = TouPeriod::kFlat;
};

// A plant's time-of-use tariff: windows covering the local day [0, 1440) without gap or overlap (in any order), the
// price of each period in minor currency units per MWh (indexed by TouPeriod), and the plant's fixed offset from UTC.
struct Tariff {
  std::vector<TariffWindow> windows;
  int64_t price_minor_per_mwh[3] = {0, 0, 0};
  int utc_offset_minutes = 0;
};

// OK, or INVALID_ARGUMENT naming what is wrong: a window outside [0, 1440) or empty, an unknown period, windows that
// overlap or leave part of the day uncovered, a negative price, an offset beyond ±14 hours.
absl::Status ValidateTariff(const Tariff& tariff);

enum class Granularity { kHour, kDay, kMonth };

// Consumption of one bucket of an energy report.
struct EnergyBucket {
  int64_t start_us = 0;
  int64_t end_us = 0;
  double kwh = 0;
  double kwh_by_period[3] = {0, 0, 0};  // indexed by TouPeriod
  int64_t cost_minor = 0;
  double peak_demand_kw = 0;
  int64_t peak_demand_at_us = 0;  // start of the 15-minute window of the peak
};

// The energy of `increases` (kWh, e.g. from CounterIncreases) inside [start_us, end_us), bucketed by local hour, day
// or calendar month of the plant (local time = UTC + tariff.utc_offset_minutes, fixed all year).
//
//   - Buckets: one per local hour/day/month that overlaps [start_us, end_us), in time order, each clipped to the
//     range (a report from 10:30 starts with a bucket [10:30, 11:00) at hourly granularity). Empty range: none.
//   - kWh: the increases are spread uniformly over their intervals (see Spread) and split exactly at every bucket,
//     tariff-window and quarter-hour boundary; kwh_by_period holds the split by tariff period and kwh their sum.
//   - cost_minor: Σ over periods of kwh_by_period × price_minor_per_mwh / 1000, rounded once per bucket to the nearest
//     minor unit (halves away from zero); the costs of hourly buckets may therefore differ by rounding from their
//     day's.
//   - Peak demand: the largest average power over the local-clock-aligned quarter hours (hh:00, hh:15, hh:30, hh:45)
//     in the bucket, kWh in the quarter × 4, with the quarter's start (the earliest on ties; the bucket's first
//     quarter when it used nothing). A quarter cut by the report's range counts only its energy inside the range.
//
// Several meters of a line or a plant: concatenate their increases — spreading is additive, so the sum of the meters'
// consumption and the peak of their combined demand come out. The tariff must pass ValidateTariff; local minutes that
// an invalid tariff leaves uncovered count as kFlat.
std::vector<EnergyBucket> EnergyReport(std::span<const Increase> increases, const Tariff& tariff,
                                       Granularity granularity, int64_t start_us, int64_t end_us);

}  // namespace ptd::telemetry

#endif  // PTD_SERVICES_TELEMETRY_DOMAIN_ENERGY_H_
