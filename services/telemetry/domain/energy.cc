#include "services/telemetry/domain/energy.h"

#include <algorithm>
#include <array>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"

namespace ptd::telemetry {
namespace {

constexpr int kMinutesPerDay = 1440;
constexpr int64_t kMicrosPerQuarter = 15 * kMicrosPerMinute;

// Division rounding towards minus infinity, so instants before the epoch fall in the right hour and day.
int64_t FloorDiv(int64_t a, int64_t b) {
  int64_t q = a / b;
  return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

const char* PeriodName(int period) {
  switch (period) {
    case 0:
      return "valley";
    case 1:
      return "flat";
    case 2:
      return "peak";
  }
  return "?";
}

int64_t NextBucketStart(int64_t t_us, Granularity granularity, absl::TimeZone tz) {
  absl::Time t = absl::FromUnixMicros(t_us);
  switch (granularity) {
    case Granularity::kHour:
      return absl::ToUnixMicros(absl::FromCivil(absl::ToCivilHour(t, tz) + 1, tz));
    case Granularity::kDay:
      return absl::ToUnixMicros(absl::FromCivil(absl::ToCivilDay(t, tz) + 1, tz));
    case Granularity::kMonth:
      return absl::ToUnixMicros(absl::FromCivil(absl::ToCivilMonth(t, tz) + 1, tz));
  }
  return absl::ToUnixMicros(absl::FromCivil(absl::ToCivilDay(t, tz) + 1, tz));
}

}  // namespace

std::vector<Increase> CounterIncreases(std::span<const Sample> readings, double wrap_at) {
  std::vector<Increase> out;
  if (readings.size() < 2) return out;
  out.reserve(readings.size() - 1);
  for (size_t i = 1; i < readings.size(); ++i) {
    const double prev = readings[i - 1].value;
    const double cur = readings[i].value;
    double amount;
    if (cur >= prev) {
      amount = cur - prev;
    } else if (wrap_at > 0 && prev >= 0.9 * wrap_at && prev <= wrap_at && cur <= 0.1 * wrap_at) {
      amount = (wrap_at - prev) + std::max(cur, 0.0);
    } else {
      amount = std::max(cur, 0.0);
    }
    out.push_back({readings[i - 1].ts_us, readings[i].ts_us, amount});
  }
  return out;
}

double Spread(std::span<const Increase> increases, int64_t start_us, int64_t end_us) {
  double total = 0;
  if (end_us <= start_us) return total;
  for (const Increase& inc : increases) {
    if (inc.to_us <= inc.from_us) {
      if (inc.from_us >= start_us && inc.from_us < end_us) total += inc.amount;
      continue;
    }
    const int64_t lo = std::max(inc.from_us, start_us);
    const int64_t hi = std::min(inc.to_us, end_us);
    if (lo >= hi) continue;
    total += inc.amount * (static_cast<double>(hi - lo) / static_cast<double>(inc.to_us - inc.from_us));
  }
  return total;
}

absl::Status ValidateTariff(const Tariff& tariff) {
  if (tariff.windows.empty()) return absl::InvalidArgumentError("windows must cover the day [0, 1440), got none");
  for (size_t i = 0; i < tariff.windows.size(); ++i) {
    const TariffWindow& w = tariff.windows[i];
    if (w.start_minute < 0 || w.start_minute >= kMinutesPerDay) {
      return absl::InvalidArgumentError(
          absl::StrCat("windows[", i, "].start_minute must be in [0, 1440), got ", w.start_minute));
    }
    if (w.end_minute <= w.start_minute || w.end_minute > kMinutesPerDay) {
      return absl::InvalidArgumentError(absl::StrCat("windows[", i, "].end_minute must be in (start_minute ",
                                                     w.start_minute, ", 1440], got ", w.end_minute));
    }
    const int period = static_cast<int>(w.period);
    if (period < 0 || period > 2) {
      return absl::InvalidArgumentError(absl::StrCat("windows[", i, "].period is unknown: ", period));
    }
  }
  std::vector<TariffWindow> sorted = tariff.windows;
  std::sort(sorted.begin(), sorted.end(),
            [](const TariffWindow& a, const TariffWindow& b) { return a.start_minute < b.start_minute; });
  int covered_to = 0;
  for (const TariffWindow& w : sorted) {
    if (w.start_minute > covered_to) {
      return absl::InvalidArgumentError(
          absl::StrCat("windows leave minutes [", covered_to, ", ", w.start_minute, ") of the day uncovered"));
    }
    if (w.start_minute < covered_to) {
      return absl::InvalidArgumentError(
          absl::StrCat("windows overlap in minutes [", w.start_minute, ", ", std::min(covered_to, w.end_minute), ")"));
    }
    covered_to = w.end_minute;
  }
  if (covered_to != kMinutesPerDay) {
    return absl::InvalidArgumentError(
        absl::StrCat("windows leave minutes [", covered_to, ", 1440) of the day uncovered"));
  }
  for (int p = 0; p < 3; ++p) {
    if (tariff.price_minor_per_mwh[p] < 0) {
      return absl::InvalidArgumentError(absl::StrCat("price_minor_per_mwh[", PeriodName(p),
                                                     "] must not be negative, got ", tariff.price_minor_per_mwh[p]));
    }
  }
  if (tariff.utc_offset_minutes < -14 * 60 || tariff.utc_offset_minutes > 14 * 60) {
    return absl::InvalidArgumentError(
        absl::StrCat("utc_offset_minutes must be within [-840, 840], got ", tariff.utc_offset_minutes));
  }
  return absl::OkStatus();
}

std::vector<EnergyBucket> EnergyReport(std::span<const Increase> increases, const Tariff& tariff,
                                       Granularity granularity, int64_t start_us, int64_t end_us) {
  std::vector<EnergyBucket> buckets;
  if (end_us <= start_us) return buckets;
  const int64_t offset_us = static_cast<int64_t>(tariff.utc_offset_minutes) * kMicrosPerMinute;
  const absl::TimeZone tz = absl::FixedTimeZone(tariff.utc_offset_minutes * 60);

  std::vector<int64_t> bucket_starts;
  for (int64_t t = start_us; t < end_us;) {
    const int64_t next = NextBucketStart(t, granularity, tz);
    EnergyBucket b;
    b.start_us = t;
    b.end_us = std::min(next, end_us);
    buckets.push_back(b);
    bucket_starts.push_back(t);
    t = next;
  }

  // The tariff period of every local minute, and the local times of day (µs after midnight) where a piece of an
  // increase must end: every quarter hour and every tariff-window edge. Local hours, days and months start on a
  // quarter hour, so pieces never straddle a bucket either.
  std::array<int, kMinutesPerDay> period_of_minute;
  period_of_minute.fill(static_cast<int>(TouPeriod::kFlat));
  std::vector<int64_t> cuts_in_day;
  for (int m = 0; m <= kMinutesPerDay; m += 15) cuts_in_day.push_back(m * kMicrosPerMinute);
  for (const TariffWindow& w : tariff.windows) {
    const int from = std::clamp(w.start_minute, 0, kMinutesPerDay);
    const int to = std::clamp(w.end_minute, 0, kMinutesPerDay);
    const int period = static_cast<int>(w.period);
    if (period < 0 || period > 2) continue;
    for (int m = from; m < to; ++m) period_of_minute[m] = period;
    cuts_in_day.push_back(from * kMicrosPerMinute);
    cuts_in_day.push_back(to * kMicrosPerMinute);
  }
  std::sort(cuts_in_day.begin(), cuts_in_day.end());
  cuts_in_day.erase(std::unique(cuts_in_day.begin(), cuts_in_day.end()), cuts_in_day.end());

  const int64_t first_quarter = FloorDiv(start_us + offset_us, kMicrosPerQuarter);
  const int64_t last_quarter = FloorDiv(end_us - 1 + offset_us, kMicrosPerQuarter);
  std::vector<double> quarter_kwh(static_cast<size_t>(last_quarter - first_quarter + 1), 0.0);

  auto next_cut = [&](int64_t t_us) {
    const int64_t local = t_us + offset_us;
    const int64_t day_start = FloorDiv(local, kMicrosPerDay) * kMicrosPerDay;
    // The last cut is midnight (1440 minutes), which lies after any time of day.
    const auto it = std::upper_bound(cuts_in_day.begin(), cuts_in_day.end(), local - day_start);
    return day_start + *it - offset_us;
  };
  auto add = [&](int64_t t_us, double kwh) {
    const int64_t local = t_us + offset_us;
    const int64_t minute = (local - FloorDiv(local, kMicrosPerDay) * kMicrosPerDay) / kMicrosPerMinute;
    const size_t bucket =
        std::upper_bound(bucket_starts.begin(), bucket_starts.end(), t_us) - bucket_starts.begin() - 1;
    buckets[bucket].kwh_by_period[period_of_minute[minute]] += kwh;
    quarter_kwh[FloorDiv(local, kMicrosPerQuarter) - first_quarter] += kwh;
  };

  for (const Increase& inc : increases) {
    if (inc.to_us <= inc.from_us) {
      if (inc.from_us >= start_us && inc.from_us < end_us) add(inc.from_us, inc.amount);
      continue;
    }
    const int64_t lo = std::max(inc.from_us, start_us);
    const int64_t hi = std::min(inc.to_us, end_us);
    const double duration = static_cast<double>(inc.to_us - inc.from_us);
    for (int64_t t = lo; t < hi;) {
      const int64_t next = std::min(next_cut(t), hi);
      add(t, inc.amount * (static_cast<double>(next - t) / duration));
      t = next;
    }
  }

  for (EnergyBucket& b : buckets) {
    double cost = 0;
    for (int p = 0; p < 3; ++p) {
      b.kwh += b.kwh_by_period[p];
      cost += b.kwh_by_period[p] * static_cast<double>(tariff.price_minor_per_mwh[p]) / 1000.0;
    }
    b.cost_minor = std::llround(cost);
    const int64_t from_quarter = FloorDiv(b.start_us + offset_us, kMicrosPerQuarter);
    const int64_t to_quarter = FloorDiv(b.end_us - 1 + offset_us, kMicrosPerQuarter);
    b.peak_demand_kw = quarter_kwh[from_quarter - first_quarter] * 4;
    b.peak_demand_at_us = from_quarter * kMicrosPerQuarter - offset_us;
    for (int64_t q = from_quarter + 1; q <= to_quarter; ++q) {
      const double kw = quarter_kwh[q - first_quarter] * 4;
      if (kw > b.peak_demand_kw) {
        b.peak_demand_kw = kw;
        b.peak_demand_at_us = q * kMicrosPerQuarter - offset_us;
      }
    }
  }
  return buckets;
}

}  // namespace ptd::telemetry
