#include "services/telemetry/domain/oee.h"

#include <algorithm>
#include <cmath>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "services/telemetry/domain/energy.h"

namespace ptd::telemetry {
namespace {

bool InTimeOrder(const std::vector<Sample>& samples) {
  return std::is_sorted(samples.begin(), samples.end(),
                        [](const Sample& a, const Sample& b) { return a.ts_us < b.ts_us; });
}

void FillRatios(Oee& o) {
  o.availability = o.planned_us > 0 ? static_cast<double>(o.run_us) / static_cast<double>(o.planned_us) : 0;
  o.performance = o.ideal_total > 0 ? o.total / o.ideal_total : 0;
  o.quality = o.total > 0 ? o.good / o.total : 1;
  o.oee = o.availability * o.performance * o.quality;
}

}  // namespace

absl::StatusOr<Oee> ComputeOee(const OeeInput& in) {
  if (in.end_us <= in.start_us) {
    return absl::InvalidArgumentError(
        absl::StrCat("end_us must be after start_us, got start_us ", in.start_us, ", end_us ", in.end_us));
  }
  const int64_t span_us = in.end_us - in.start_us;
  if (in.planned_us < 0 || in.planned_us > span_us) {
    return absl::InvalidArgumentError(
        absl::StrCat("planned_us must be in [0, end_us - start_us = ", span_us, "], got ", in.planned_us));
  }
  if (!(in.ideal_rate_per_hour > 0) || std::isinf(in.ideal_rate_per_hour)) {
    return absl::InvalidArgumentError(
        absl::StrCat("ideal_rate_per_hour must be a positive number, got ", in.ideal_rate_per_hour));
  }
  if (!(in.counter_wrap_at >= 0)) {
    return absl::InvalidArgumentError(absl::StrCat("counter_wrap_at must not be negative, got ", in.counter_wrap_at));
  }
  if (!InTimeOrder(in.states)) return absl::InvalidArgumentError("states must be in time order");
  if (!InTimeOrder(in.total_count)) return absl::InvalidArgumentError("total_count must be in time order");
  if (!InTimeOrder(in.good_count)) return absl::InvalidArgumentError("good_count must be in time order");

  Oee o;
  o.planned_us = in.planned_us == 0 ? span_us : in.planned_us;
  for (size_t i = 0; i < in.states.size(); ++i) {
    if (in.states[i].value != in.running_state) continue;
    const int64_t held_until = i + 1 < in.states.size() ? in.states[i + 1].ts_us : in.end_us;
    const int64_t from = std::max(in.states[i].ts_us, in.start_us);
    const int64_t to = std::min(held_until, in.end_us);
    if (to > from) o.run_us += to - from;
  }
  o.total = Spread(CounterIncreases(in.total_count, in.counter_wrap_at), in.start_us, in.end_us);
  o.good = Spread(CounterIncreases(in.good_count, in.counter_wrap_at), in.start_us, in.end_us);
  o.ideal_total = in.ideal_rate_per_hour * static_cast<double>(o.run_us) / static_cast<double>(kMicrosPerHour);
  FillRatios(o);
  return o;
}

Oee CombineLine(std::span<const Oee> devices) {
  Oee line;
  for (const Oee& d : devices) {
    line.run_us += d.run_us;
    line.planned_us += d.planned_us;
    line.total += d.total;
    line.good += d.good;
    line.ideal_total += d.ideal_total;
  }
  FillRatios(line);
  return line;
}

ReadRange ShiftStateRange(int64_t start_us, int64_t end_us) { return {start_us - kMicrosPerDay, end_us}; }

ReadRange ShiftCountRange(int64_t start_us, int64_t end_us) {
  return {start_us - kMicrosPerDay, end_us + kMicrosPerDay};
}

std::span<const Sample> ShiftStates(std::span<const Sample> states, int64_t start_us) {
  auto first_inside = std::find_if(states.begin(), states.end(), [&](const Sample& s) { return s.ts_us >= start_us; });
  if (first_inside != states.begin()) first_inside = std::prev(first_inside);
  return {first_inside, states.end()};
}

}  // namespace ptd::telemetry
