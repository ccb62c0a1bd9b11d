#include "services/telemetry/domain/alarms.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "libs/core/status.h"

namespace ptd::telemetry {
namespace {

std::string Seconds(int64_t us) { return absl::StrCat(static_cast<double>(us) / kMicrosPerSecond, " s"); }

std::string ThresholdClearReason(const AlarmRule& rule, double v) {
  const double lo = rule.low + rule.hysteresis;
  const double hi = rule.high - rule.hysteresis;
  if (std::isinf(rule.low)) return absl::StrCat("value ", v, " back at or below ", hi);
  if (std::isinf(rule.high)) return absl::StrCat("value ", v, " back at or above ", lo);
  return absl::StrCat("value ", v, " back within [", lo, ", ", hi, "]");
}

// Applies one sample to `state` given whether it meets the raise condition (a non-empty reason) or the clear
// condition, with the rule's debounce; appends the transition it causes, if any.
void Step(const AlarmRule& rule, RuleState& state, const Sample& s, const std::string& raise_reason, bool clears,
          const std::string& clear_reason, std::vector<AlarmTransition>& out) {
  if (state.active) {
    if (clears) {
      out.push_back({AlarmTransition::kClear, s.ts_us, s.value, clear_reason});
      state.active = false;
      state.condition_since_us = -1;
    }
    return;
  }
  if (raise_reason.empty()) {
    state.condition_since_us = -1;
    return;
  }
  if (state.condition_since_us < 0) state.condition_since_us = s.ts_us;
  if (s.ts_us - state.condition_since_us >= rule.raise_after_us) {
    out.push_back({AlarmTransition::kRaise, s.ts_us, s.value, raise_reason});
    state.active = true;
    state.condition_since_us = -1;
  }
}

}  // namespace

absl::Status ValidateRule(const AlarmRule& rule) {
  switch (rule.kind) {
    case RuleKind::kThreshold:
      if (std::isnan(rule.high)) return InvalidField("high", "must be a number, got NaN");
      if (std::isnan(rule.low)) return InvalidField("low", "must be a number, got NaN");
      if (std::isinf(rule.high) && std::isinf(rule.low)) {
        return InvalidField("high", "a threshold rule needs a finite high or low");
      }
      if (!(rule.high > rule.low)) {
        return InvalidField("high", absl::StrCat("must be above low, got high ", rule.high, ", low ", rule.low));
      }
      if (!(rule.hysteresis >= 0) || std::isinf(rule.hysteresis)) {
        return InvalidField("hysteresis", absl::StrCat("must be a non-negative number, got ", rule.hysteresis));
      }
      if (rule.low + rule.hysteresis > rule.high - rule.hysteresis) {
        return InvalidField("hysteresis", absl::StrCat(rule.hysteresis, " leaves no clear band between low ", rule.low,
                                                       " and high ", rule.high));
      }
      break;
    case RuleKind::kRateOfChange:
      if (!(rule.max_rate_per_s > 0) || std::isinf(rule.max_rate_per_s)) {
        return InvalidField("max_rate_per_s", absl::StrCat("must be a positive number, got ", rule.max_rate_per_s));
      }
      break;
    case RuleKind::kNoData:
      if (rule.expected_interval_us <= 0) {
        return InvalidField("expected_interval_us", absl::StrCat("must be positive, got ", rule.expected_interval_us));
      }
      if (rule.missed_intervals < 1) {
        return InvalidField("missed_intervals", absl::StrCat("must be at least 1, got ", rule.missed_intervals));
      }
      return absl::OkStatus();
    default:
      return InvalidField("kind", absl::StrCat("is unknown: ", static_cast<int>(rule.kind)));
  }
  if (rule.raise_after_us < 0) {
    return InvalidField("raise_after_us", absl::StrCat("must not be negative, got ", rule.raise_after_us));
  }
  return absl::OkStatus();
}

std::vector<AlarmTransition> Evaluate(const AlarmRule& rule, RuleState& state, std::span<const Sample> samples) {
  std::vector<AlarmTransition> out;
  for (const Sample& s : samples) {
    if (state.has_last && s.ts_us <= state.last.ts_us) continue;
    switch (rule.kind) {
      case RuleKind::kThreshold: {
        std::string raise_reason;
        if (s.value > rule.high) {
          raise_reason = absl::StrCat("value ", s.value, " above high ", rule.high);
        } else if (s.value < rule.low) {
          raise_reason = absl::StrCat("value ", s.value, " below low ", rule.low);
        }
        const bool clears = rule.low + rule.hysteresis <= s.value && s.value <= rule.high - rule.hysteresis;
        Step(rule, state, s, raise_reason, clears, clears ? ThresholdClearReason(rule, s.value) : "", out);
        break;
      }
      case RuleKind::kRateOfChange: {
        if (!state.has_last) break;
        const double rate =
            (s.value - state.last.value) / (static_cast<double>(s.ts_us - state.last.ts_us) / kMicrosPerSecond);
        std::string raise_reason;
        if (std::abs(rate) > rule.max_rate_per_s) {
          raise_reason = absl::StrCat(rate > 0 ? "rising " : "falling ", std::abs(rate), "/s, above max ",
                                      rule.max_rate_per_s, "/s");
        }
        const bool clears = std::abs(rate) <= rule.max_rate_per_s;
        const std::string clear_reason =
            clears ? absl::StrCat("rate ", rate, "/s back within max ", rule.max_rate_per_s, "/s") : "";
        Step(rule, state, s, raise_reason, clears, clear_reason, out);
        break;
      }
      case RuleKind::kNoData:
        if (state.active) {
          out.push_back({AlarmTransition::kClear, s.ts_us, s.value,
                         absl::StrCat("data again after ", Seconds(s.ts_us - state.last.ts_us), " without")});
          state.active = false;
        }
        break;
    }
    state.last = s;
    state.has_last = true;
  }
  return out;
}

std::optional<AlarmTransition> CheckNoData(const AlarmRule& rule, RuleState& state, int64_t now_us) {
  if (rule.kind != RuleKind::kNoData || state.active || !state.has_last) return std::nullopt;
  const int64_t silent_us = now_us - state.last.ts_us;
  if (silent_us <= static_cast<int64_t>(rule.missed_intervals) * rule.expected_interval_us) return std::nullopt;
  state.active = true;
  return AlarmTransition{
      AlarmTransition::kRaise, now_us, state.last.value,
      absl::StrCat("no data for ", Seconds(silent_us), " (expected every ", Seconds(rule.expected_interval_us), ", ",
                   rule.missed_intervals, " intervals allowed)")};
}

}  // namespace ptd::telemetry
