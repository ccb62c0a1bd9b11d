#ifndef PTD_SERVICES_TELEMETRY_DOMAIN_ALARMS_H_
#define PTD_SERVICES_TELEMETRY_DOMAIN_ALARMS_H_

#include <cstdint>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "services/telemetry/domain/sample.h"

// Alarm rules of one data point, evaluated as its values arrive: threshold with hysteresis, rate of change, and no
// data. The rule's state is plain data the caller persists between calls. Pure functions, no I/O.
namespace ptd::telemetry {

enum class RuleKind { kThreshold, kRateOfChange, kNoData };

struct AlarmRule {
  RuleKind kind = RuleKind::kThreshold;

  // kThreshold: raise when value > high or value < low; once raised, clear only when
  // low + hysteresis <= value <= high - hysteresis, so a value wavering around a limit does not raise again and again.
  // One of high and low may stay infinite (a one-sided limit).
  double high = std::numeric_limits<double>::infinity();
  double low = -std::numeric_limits<double>::infinity();
  double hysteresis = 0;

  // kRateOfChange: raise when |Δvalue / Δt| between consecutive samples exceeds max_rate_per_s (units per second);
  // clear at the first pair whose rate is back at or below it.
  double max_rate_per_s = 0;

  // kThreshold and kRateOfChange, debounce against flapping: the raise condition must hold at every sample over at
  // least this long, judged by sample times (from the first sample that met it to the current one), before raising.
  // 0 raises at the first sample that meets it.
  int64_t raise_after_us = 0;

  // kNoData: raise when more than missed_intervals × expected_interval_us passed since the last sample (see
  // CheckNoData); clear at the next sample.
  int64_t expected_interval_us = 0;
  int missed_intervals = 3;
};

// OK, or INVALID_ARGUMENT naming the field (a google.rpc.BadRequest field violation, see libs/core/status.h): an unknown kind; a threshold with neither limit, a NaN limit, high not
// above low, a negative hysteresis or one so large that the clear band [low + hysteresis, high - hysteresis] is empty;
// a rate limit that is not positive; a negative raise_after_us; a no-data rule without a positive expected interval or
// with fewer than one missed interval. Only the fields of the rule's kind are checked.
absl::Status ValidateRule(const AlarmRule& rule);

// What a rule remembers between evaluations; the caller persists it (plain columns) and passes it back.
struct RuleState {
  bool active = false;              // the alarm is raised and not yet cleared
  int64_t condition_since_us = -1;  // time of the first sample of a pending (debounced, not yet raised) condition
  bool has_last = false;            // whether `last` holds a sample
  Sample last;                      // the latest sample evaluated
  bool operator==(const RuleState&) const = default;
};

struct AlarmTransition {
  enum Kind { kRaise, kClear };
  Kind kind = kRaise;
  int64_t at_us = 0;   // the time of the sample that caused it (CheckNoData: its now_us)
  double value = 0;    // that sample's value (CheckNoData: the last value seen)
  std::string reason;  // for people: "value 95.2 above high 90"
  bool operator==(const AlarmTransition&) const = default;
};

// Runs `rule` over `samples` (of its point, in time order) from `state`, updates `state`, and returns the raises and
// clears they cause, in order. Evaluating in several calls gives the same transitions as in one.
//
// A sample at or before state.last (a late or duplicate point) is ignored: alarms move forward in time only.
// kRateOfChange needs two samples, so the first sample ever only becomes `last`. kNoData: any sample clears an active
// no-data alarm; raising is CheckNoData's job, so a gap that ends before the sweeper noticed it raises nothing.
// Debouncing is judged at sample arrivals only: a condition that holds until a sample later than raise_after_us
// after its start raises at that later sample.
std::vector<AlarmTransition> Evaluate(const AlarmRule& rule, RuleState& state, std::span<const Sample> samples);

// For the periodic sweeper: raises a kNoData rule's alarm when now_us - state.last.ts_us exceeds
// missed_intervals × expected_interval_us, at now_us with the last value seen, and updates `state`. Nothing happens
// for other kinds, for an alarm already active, or before the point's first sample (has_last false): a point that
// never reported is not a point that stopped reporting.
std::optional<AlarmTransition> CheckNoData(const AlarmRule& rule, RuleState& state, int64_t now_us);

}  // namespace ptd::telemetry

#endif  // PTD_SERVICES_TELEMETRY_DOMAIN_ALARMS_H_
