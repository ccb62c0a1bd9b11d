#ifndef PTD_SERVICES_TELEMETRY_DOMAIN_OEE_H_
#define PTD_SERVICES_TELEMETRY_DOMAIN_OEE_H_

#include <cstdint>
#include <span>
#include <vector>

#include "absl/status/statusor.h"
#include "services/telemetry/domain/sample.h"

// Overall equipment effectiveness of a device over a shift, from its state points and its part counters, and of a
// line from its devices' figures. Pure functions, no I/O.
namespace ptd::telemetry {

struct OeeInput {
  // The shift, [start_us, end_us).
  int64_t start_us = 0;
  int64_t end_us = 0;
  // Planned production time (the shift without its breaks), at most end_us - start_us; 0 means the whole shift.
  int64_t planned_us = 0;
  // The device's state points in time order; each holds until the next (the last until end_us). Include the last
  // point before start_us, if any: before the first point the state is unknown and counts as not running.
  std::vector<Sample> states;
  double running_state = 1;  // the state value that means "running"
  // Cumulative counters of all parts and of good parts, in time order (resets and wrap handled as CounterIncreases
  // does, with counter_wrap_at). Include the last reading before start_us and the first after end_us, if any: the
  // increase between two readings is spread over its interval, so the shift gets its share of those at its edges.
  std::vector<Sample> total_count;
  std::vector<Sample> good_count;
  double counter_wrap_at = 0;      // 0: the counters do not wrap
  double ideal_rate_per_hour = 0;  // parts per hour at the ideal (design) cycle time
};

struct Oee {
  int64_t run_us = 0;       // time in running_state inside the shift
  int64_t planned_us = 0;   // planned production time
  double total = 0;         // parts made in the shift
  double good = 0;          // good parts made in the shift
  double ideal_total = 0;   // parts the run time would have made at the ideal rate
  double availability = 0;  // run_us / planned_us
  double performance = 0;   // total / ideal_total; 0 when the device never ran
  double quality = 0;       // good / total; 1 when nothing was made (no bad parts either)
  double oee = 0;           // availability × performance × quality, i.e. good / (ideal rate × planned time)
};

// The OEE of one device over one shift:
//   availability = run_us / planned_us, with run time counted only inside [start_us, end_us);
//   performance  = total / (ideal_rate_per_hour × run hours), 0 when run_us is 0;
//   quality      = good / total, 1 when total is 0;
//   oee          = availability × performance × quality.
// Counts are the counters' increases spread over [start_us, end_us) (see Spread), so they may be fractional.
// The figures are not capped at 1: a device running during a break (planned time excludes breaks, but their times are
// not known here) shows an availability above 1, and a count above the ideal rate a performance above 1 — both say
// the inputs (planned time, ideal rate, counters) deserve a look.
// INVALID_ARGUMENT, naming the field, for end_us <= start_us, planned_us outside [0, end_us - start_us],
// ideal_rate_per_hour not positive, a negative counter_wrap_at, or states or counters out of time order.
absl::StatusOr<Oee> ComputeOee(const OeeInput& input);

// The figure of a line (or any group of devices) from its devices' figures over the same shift, as one pooled machine:
// run_us, planned_us, total, good and ideal_total are sums; availability = Σrun / Σplanned; performance =
// Σtotal / Σideal_total (each device weighted by its ideal output); quality = Σgood / Σtotal (1 when Σtotal is 0);
// oee = their product. Ratios over a zero sum are 0 (quality: 1). No devices: all zero, quality 1.
// This suits parallel machines; for a strictly serial line, the last device's figure is the line's output.
Oee CombineLine(std::span<const Oee> devices);

// What a shift [start_us, end_us) reads of a device's points, to make its OeeInput.
struct ReadRange {
  int64_t from_us = 0;
  int64_t to_us = 0;
};
// The states: from a day before the shift (the state it began in is the last one reported before it, within a day)
// to its end.
ReadRange ShiftStateRange(int64_t start_us, int64_t end_us);
// The counters: a day either side of the shift, so that the readings straddling its edges are found.
ReadRange ShiftCountRange(int64_t start_us, int64_t end_us);
// Of `states` in time order, those that bear on a shift starting at start_us: the last one before it, if any, and
// every one from start_us on.
std::span<const Sample> ShiftStates(std::span<const Sample> states, int64_t start_us);

}  // namespace ptd::telemetry

#endif  // PTD_SERVICES_TELEMETRY_DOMAIN_OEE_H_
