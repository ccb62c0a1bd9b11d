#include "services/telemetry/domain/alarms.h"

#include <catch2/catch.hpp>
#include <limits>
#include <string>
#include <vector>

#include "libs/core/status.h"

using namespace ptd::telemetry;

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

AlarmRule Threshold(double high, double low, double hysteresis, int64_t raise_after_us = 0) {
  AlarmRule r;
  r.kind = RuleKind::kThreshold;
  r.high = high;
  r.low = low;
  r.hysteresis = hysteresis;
  r.raise_after_us = raise_after_us;
  return r;
}

AlarmRule Rate(double max_rate_per_s, int64_t raise_after_us = 0) {
  AlarmRule r;
  r.kind = RuleKind::kRateOfChange;
  r.max_rate_per_s = max_rate_per_s;
  r.raise_after_us = raise_after_us;
  return r;
}

AlarmRule NoData(int64_t expected_interval_us, int missed_intervals) {
  AlarmRule r;
  r.kind = RuleKind::kNoData;
  r.expected_interval_us = expected_interval_us;
  r.missed_intervals = missed_intervals;
  return r;
}

// One sample per second from t = 0 s.
std::vector<Sample> EverySecond(const std::vector<double>& values) {
  std::vector<Sample> out;
  for (size_t i = 0; i < values.size(); ++i) out.push_back({static_cast<int64_t>(i) * kMicrosPerSecond, values[i]});
  return out;
}

// "raise@3 clear@7": each transition and the second it happened at.
std::string Trace(const std::vector<AlarmTransition>& ts) {
  std::string out;
  for (const AlarmTransition& t : ts) {
    if (!out.empty()) out += ' ';
    out += (t.kind == AlarmTransition::kRaise ? "raise@" : "clear@") + std::to_string(t.at_us / kMicrosPerSecond);
  }
  return out;
}

}  // namespace

TEST_CASE("alarms: good rules are valid") {
  CHECK(ValidateRule(Threshold(90, -kInf, 2)).ok());
  CHECK(ValidateRule(Threshold(kInf, 10, 1)).ok());
  CHECK(ValidateRule(Threshold(90, 10, 40)).ok());  // clear band [50, 50]
  CHECK(ValidateRule(Rate(0.5, 10 * kMicrosPerSecond)).ok());
  CHECK(ValidateRule(NoData(kMicrosPerSecond, 1)).ok());
}

TEST_CASE("alarms: bad rules are refused naming the field") {
  struct Case {
    const char* what;
    AlarmRule rule;
    const char* message_part;
  };
  AlarmRule unknown;
  unknown.kind = static_cast<RuleKind>(9);
  auto c = GENERATE_COPY(values<Case>({
      {"high not above low", Threshold(10, 20, 0), "high: must be above low, got high 10, low 20"},
      {"high equal to low", Threshold(10, 10, 0), "high: must be above low"},
      {"no limit at all", Threshold(kInf, -kInf, 0), "needs a finite high or low"},
      {"NaN high", Threshold(kNaN, 0, 0), "high: must be a number"},
      {"NaN low", Threshold(10, kNaN, 0), "low: must be a number"},
      {"negative hysteresis", Threshold(90, 10, -1), "hysteresis: must be a non-negative number"},
      {"NaN hysteresis", Threshold(90, 10, kNaN), "hysteresis: must be a non-negative number"},
      {"hysteresis leaving no clear band", Threshold(90, 10, 41), "hysteresis: 41 leaves no clear band"},
      {"negative debounce", Threshold(90, -kInf, 0, -1), "raise_after_us: must not be negative"},
      {"zero rate", Rate(0), "max_rate_per_s: must be a positive number, got 0"},
      {"negative rate", Rate(-3), "max_rate_per_s"},
      {"infinite rate", Rate(kInf), "max_rate_per_s"},
      {"rate with negative debounce", Rate(1, -5), "raise_after_us"},
      {"no expected interval", NoData(0, 3), "expected_interval_us: must be positive, got 0"},
      {"no missed interval", NoData(kMicrosPerSecond, 0), "missed_intervals: must be at least 1, got 0"},
      {"unknown kind", unknown, "kind: is unknown: 9"},
  }));
  INFO(c.what);
  const absl::Status s = ValidateRule(c.rule);
  CHECK(s.code() == absl::StatusCode::kInvalidArgument);
  CHECK_THAT(std::string(s.message()), Catch::Contains(c.message_part));
  // The field is named as a BadRequest violation, which the handler passes on under its request's prefix.
  REQUIRE(ptd::FieldViolationsOf(s).size() == 1);
  CHECK_THAT(std::string(s.message()), Catch::StartsWith(ptd::FieldViolationsOf(s)[0].field + ": "));
}

TEST_CASE("alarms: threshold rules raise and clear with hysteresis") {
  struct Case {
    const char* what;
    AlarmRule rule;
    std::vector<double> values;  // one a second from 0 s
    const char* trace;
  };
  auto c = GENERATE_COPY(values<Case>({
      {"high side: no re-raise while inside the band, clear only below high - hysteresis",
       Threshold(90, -kInf, 2),
       {85, 91, 89.5, 92, 89, 88.5, 88, 89.5, 90, 90.5},
       "raise@1 clear@6 raise@9"},
      {"exactly at the limit is not above it", Threshold(90, -kInf, 2), {90, 90, 90}, ""},
      {"low side", Threshold(kInf, 10, 1), {12, 9, 10.5, 9.5, 11, 10, 9.9}, "raise@1 clear@4 raise@6"},
      {"both sides: from above high straight to below low", Threshold(90, 10, 2), {50, 95, 5, 50}, "raise@1 clear@3"},
      {"no hysteresis clears at the limit", Threshold(90, -kInf, 0), {91, 90, 91}, "raise@0 clear@1 raise@2"},
      {"never out of range", Threshold(90, 10, 2), {11, 89, 50, 10, 90}, ""},
  }));
  INFO(c.what);
  RuleState state;
  CHECK(Trace(Evaluate(c.rule, state, EverySecond(c.values))) == c.trace);
}

TEST_CASE("alarms: a threshold raise says why") {
  RuleState state;
  const std::vector<Sample> samples = {{1'000'000, 95.2}, {2'000'000, 80}};
  const auto got = Evaluate(Threshold(90, -kInf, 2), state, samples);
  REQUIRE(got.size() == 2);
  CHECK(got[0] == AlarmTransition{AlarmTransition::kRaise, 1'000'000, 95.2, "value 95.2 above high 90"});
  CHECK(got[1] == AlarmTransition{AlarmTransition::kClear, 2'000'000, 80, "value 80 back at or below 88"});

  RuleState low_state;
  const std::vector<Sample> low = {{0, 3}, {1, 50}};
  const auto low_got = Evaluate(Threshold(90, 5, 1), low_state, low);
  REQUIRE(low_got.size() == 2);
  CHECK(low_got[0].reason == "value 3 below low 5");
  CHECK(low_got[1].reason == "value 50 back within [6, 89]");
}

TEST_CASE("alarms: flapping is suppressed by raise_after_us") {
  // High 90, debounce 5 s, a sample a second.
  struct Case {
    const char* what;
    std::vector<double> values;
    const char* trace;
  };
  auto c = GENERATE(values<Case>({
      {"flapping every second never raises", {95, 80, 95, 80, 95, 80, 95, 80, 95, 80}, ""},
      {"4 s above is not enough", {80, 95, 95, 95, 95, 95, 80}, ""},
      {"5 s above raises at the sample 5 s after the first", {80, 95, 95, 95, 95, 95, 95, 80}, "raise@6 clear@7"},
      {"a dip restarts the count", {95, 95, 95, 95, 80, 95, 95, 95, 95, 95, 95}, "raise@10"},
      {"a dip into the hysteresis band restarts the count too",
       {95, 95, 95, 95, 89, 95, 95, 95, 95, 95, 95},
       "raise@10"},
  }));
  INFO(c.what);
  RuleState state;
  CHECK(Trace(Evaluate(Threshold(90, -kInf, 2, 5 * kMicrosPerSecond), state, EverySecond(c.values))) == c.trace);
}

TEST_CASE("alarms: debouncing is judged by sample times, not sample counts") {
  // Two samples 10 s apart both above: the condition held 10 s ≥ 5 s, so the second raises.
  RuleState state;
  const std::vector<Sample> samples = {{0, 95}, {10 * kMicrosPerSecond, 96}};
  CHECK(Trace(Evaluate(Threshold(90, -kInf, 0, 5 * kMicrosPerSecond), state, samples)) == "raise@10");
}

TEST_CASE("alarms: a pending condition survives between calls") {
  const AlarmRule rule = Threshold(90, -kInf, 2, 5 * kMicrosPerSecond);
  const std::vector<Sample> all = EverySecond({80, 95, 95, 95, 80, 95, 95, 95, 95, 95, 95, 95, 85, 91, 70});
  RuleState once;
  const std::string whole = Trace(Evaluate(rule, once, all));
  CHECK(whole == "raise@10 clear@12");
  for (size_t split = 0; split <= all.size(); ++split) {
    INFO("split at " << split);
    RuleState state;
    std::vector<AlarmTransition> got = Evaluate(rule, state, std::span(all).first(split));
    const std::vector<AlarmTransition> rest = Evaluate(rule, state, std::span(all).subspan(split));
    got.insert(got.end(), rest.begin(), rest.end());
    CHECK(Trace(got) == whole);
    CHECK(state == once);
  }
}

TEST_CASE("alarms: late and duplicate samples are ignored") {
  RuleState state;
  const AlarmRule rule = Threshold(90, -kInf, 2);
  const std::vector<Sample> first = {{5 * kMicrosPerSecond, 50}};
  CHECK(Evaluate(rule, state, first).empty());
  const std::vector<Sample> late = {{3 * kMicrosPerSecond, 99}, {5 * kMicrosPerSecond, 99}};
  CHECK(Evaluate(rule, state, late).empty());
  CHECK(state.last == Sample{5 * kMicrosPerSecond, 50});
  CHECK_FALSE(state.active);
}

TEST_CASE("alarms: rate of change between consecutive samples") {
  struct Case {
    const char* what;
    AlarmRule rule;
    std::vector<double> values;  // one a second
    const char* trace;
  };
  auto c = GENERATE_COPY(values<Case>({
      {"a jump raises, a calm step clears, a fall raises",
       Rate(2),
       {0, 1, 2, 5, 6, 3, 3},
       "raise@3 clear@4 raise@5 clear@6"},
      {"exactly the limit is allowed", Rate(2), {0, 2, 4, 2, 0}, ""},
      {"stays raised while it keeps changing fast", Rate(2), {0, 3, 6, 9, 10}, "raise@1 clear@4"},
      {"debounced: 2 s of fast change raise", Rate(2, 2 * kMicrosPerSecond), {0, 3, 6, 9, 10}, "raise@3 clear@4"},
      {"debounced: a single spike does not", Rate(2, 2 * kMicrosPerSecond), {0, 0, 5, 5, 5}, ""},
      {"one sample has no rate", Rate(2), {100}, ""},
  }));
  INFO(c.what);
  RuleState state;
  CHECK(Trace(Evaluate(c.rule, state, EverySecond(c.values))) == c.trace);
}

TEST_CASE("alarms: the rate uses the real time between samples") {
  // +30 over 10 s is 3/s: above 2/s. +15 over 10 s is 1.5/s: back within.
  RuleState state;
  const std::vector<Sample> samples = {
      {0, 0}, {10 * kMicrosPerSecond, 30}, {20 * kMicrosPerSecond, 45}, {20 * kMicrosPerSecond + 500'000, 43}};
  const auto got = Evaluate(Rate(2), state, samples);
  REQUIRE(got.size() == 3);
  CHECK(got[0].reason == "rising 3/s, above max 2/s");
  CHECK(got[1].reason == "rate 1.5/s back within max 2/s");
  CHECK(got[2].reason == "falling 4/s, above max 2/s");  // −2 in 0.5 s
}

TEST_CASE("alarms: no data raises after the missed intervals and clears on the next sample") {
  // Expected every 10 s, 3 intervals allowed: silent for more than 30 s raises.
  const AlarmRule rule = NoData(10 * kMicrosPerSecond, 3);
  RuleState state;
  const std::vector<Sample> first = {{0, 7.5}};
  CHECK(Evaluate(rule, state, first).empty());

  CHECK_FALSE(CheckNoData(rule, state, 20 * kMicrosPerSecond));
  CHECK_FALSE(CheckNoData(rule, state, 30 * kMicrosPerSecond));  // exactly the limit: not yet
  const auto raised = CheckNoData(rule, state, 31 * kMicrosPerSecond);
  REQUIRE(raised);
  CHECK(*raised == AlarmTransition{AlarmTransition::kRaise, 31 * kMicrosPerSecond, 7.5,
                                   "no data for 31 s (expected every 10 s, 3 intervals allowed)"});
  CHECK(state.active);
  CHECK_FALSE(CheckNoData(rule, state, 60 * kMicrosPerSecond));  // already raised: once only

  const std::vector<Sample> back = {{45 * kMicrosPerSecond, 8}, {55 * kMicrosPerSecond, 9}};
  const auto cleared = Evaluate(rule, state, back);
  REQUIRE(cleared.size() == 1);
  CHECK(cleared[0] ==
        AlarmTransition{AlarmTransition::kClear, 45 * kMicrosPerSecond, 8, "data again after 45 s without"});
  CHECK_FALSE(state.active);

  CHECK_FALSE(CheckNoData(rule, state, 85 * kMicrosPerSecond));
  CHECK(CheckNoData(rule, state, 86 * kMicrosPerSecond));
}

TEST_CASE("alarms: no data is not raised before the first sample") {
  const AlarmRule rule = NoData(kMicrosPerSecond, 3);
  RuleState state;
  CHECK_FALSE(CheckNoData(rule, state, 1'000 * kMicrosPerSecond));
  CHECK(state == RuleState{});
}

TEST_CASE("alarms: a gap that ends before the sweeper ran raises nothing") {
  const AlarmRule rule = NoData(kMicrosPerSecond, 3);
  RuleState state;
  const std::vector<Sample> samples = {{0, 1}, {100 * kMicrosPerSecond, 2}};
  CHECK(Evaluate(rule, state, samples).empty());
  CHECK_FALSE(CheckNoData(rule, state, 101 * kMicrosPerSecond));
}

TEST_CASE("alarms: the no-data sweep leaves other rule kinds alone") {
  auto rule = GENERATE(Threshold(90, -kInf, 0), Rate(1));
  RuleState state;
  state.has_last = true;
  state.last = {0, 1};
  CHECK_FALSE(CheckNoData(rule, state, 1'000 * kMicrosPerSecond));
  CHECK_FALSE(state.active);
}
