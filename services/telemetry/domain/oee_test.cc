#include "services/telemetry/domain/oee.h"

#include <catch2/catch.hpp>
#include <limits>
#include <string>
#include <vector>

using namespace ptd::telemetry;

namespace {

constexpr double kRunning = 1;
constexpr double kStopped = 2;
constexpr double kIdle = 0;

// Microseconds of a time of day on the shift's day (day 0 of the epoch, UTC: the figures do not depend on the date).
int64_t At(int hour, int minute) { return hour * kMicrosPerHour + minute * kMicrosPerMinute; }

// The hand-computed shift (see the first test case).
OeeInput MorningShift() {
  OeeInput in;
  in.start_us = At(6, 0);
  in.end_us = At(14, 0);
  in.planned_us = 450 * kMicrosPerMinute;
  in.states = {{At(5, 50), kRunning}, {At(7, 0), kStopped},   {At(7, 30), kRunning},
               {At(10, 0), kIdle},    {At(10, 30), kRunning}, {At(13, 40), kStopped}};
  in.total_count = {{At(5, 0), 9840}, {At(6, 0), 9900}, {At(10, 0), 80}, {At(13, 0), 215}, {At(15, 0), 305}};
  in.good_count = {{At(6, 0), 500}, {At(10, 0), 671}, {At(14, 0), 842}};
  in.counter_wrap_at = 10000;
  in.ideal_rate_per_hour = 60;
  return in;
}

}  // namespace

TEST_CASE("oee: a shift computed by hand") {
  // Shift 06:00–14:00 (480 min) with a 30 min break: planned 450 min.
  // States: running since 05:50 → stopped 07:00 → running 07:30 → idle 10:00 → running 10:30 → stopped 13:40.
  //   Run time inside the shift: 06:00–07:00 (60) + 07:30–10:00 (150) + 10:30–13:40 (190) = 400 min.
  //   Availability = 400 / 450 = 0.8889.
  // Total counter (wraps at 10 000): 05:00 9840, 06:00 9900, 10:00 80, 13:00 215, 15:00 305.
  //   05:00–06:00 +60 lies before the shift; 06:00–10:00 +180 (100 to the wrap, then 80); 13:00–15:00 +90 of which
  //   half (13:00–14:00) is inside: 180 + 135 + 45 = 360 parts.
  //   Ideal at 60/h over 400 min of running: 400 parts. Performance = 360 / 400 = 0.9.
  // Good counter: 06:00 500, 10:00 671, 14:00 842 → 342 good. Quality = 342 / 360 = 0.95.
  // OEE = 0.8889 × 0.9 × 0.95 = 0.76 (= 342 good / 450 ideal in the planned time).
  const absl::StatusOr<Oee> got = ComputeOee(MorningShift());
  REQUIRE(got.ok());
  CHECK(got->run_us == 400 * kMicrosPerMinute);
  CHECK(got->planned_us == 450 * kMicrosPerMinute);
  CHECK(got->total == Approx(360));
  CHECK(got->good == Approx(342));
  CHECK(got->ideal_total == Approx(400));
  CHECK(got->availability == Approx(400.0 / 450));
  CHECK(got->performance == Approx(0.9));
  CHECK(got->quality == Approx(0.95));
  CHECK(got->oee == Approx(0.76));
}

TEST_CASE("oee: planned time zero means the whole shift") {
  OeeInput in = MorningShift();
  in.planned_us = 0;
  const absl::StatusOr<Oee> got = ComputeOee(in);
  REQUIRE(got.ok());
  CHECK(got->planned_us == 480 * kMicrosPerMinute);
  CHECK(got->availability == Approx(400.0 / 480));
}

TEST_CASE("oee: run time counts only inside the shift and from the first known state") {
  struct Case {
    const char* what;
    std::vector<Sample> states;
    int64_t run_minutes;
  };
  auto c = GENERATE(values<Case>({
      {"no states: never running", {}, 0},
      {"running all along from before the shift", {{At(4, 0), kRunning}}, 480},
      {"unknown until the first state inside the shift", {{At(8, 0), kRunning}}, 360},
      {"running past the end counts to the end only", {{At(13, 0), kRunning}, {At(15, 0), kStopped}}, 60},
      {"states after the shift are ignored", {{At(5, 0), kStopped}, {At(14, 0), kRunning}}, 0},
      {"running before the shift and stopped at its start", {{At(5, 0), kRunning}, {At(6, 0), kStopped}}, 0},
      {"repeated running points do not double count",
       {{At(6, 0), kRunning}, {At(7, 0), kRunning}, {At(8, 0), kStopped}},
       120},
      {"same timestamp: the later point holds", {{At(6, 0), kRunning}, {At(6, 0), kStopped}}, 0},
  }));
  INFO(c.what);
  OeeInput in = MorningShift();
  in.states = c.states;
  const absl::StatusOr<Oee> got = ComputeOee(in);
  REQUIRE(got.ok());
  CHECK(got->run_us == c.run_minutes * kMicrosPerMinute);
}

TEST_CASE("oee: the running state value is configurable") {
  OeeInput in = MorningShift();
  in.running_state = kIdle;  // only 10:00–10:30 is in state 0
  const absl::StatusOr<Oee> got = ComputeOee(in);
  REQUIRE(got.ok());
  CHECK(got->run_us == 30 * kMicrosPerMinute);
}

TEST_CASE("oee: a device that never ran has zero performance") {
  OeeInput in = MorningShift();
  in.states = {{At(5, 0), kStopped}};
  const absl::StatusOr<Oee> got = ComputeOee(in);
  REQUIRE(got.ok());
  CHECK(got->run_us == 0);
  CHECK(got->ideal_total == 0);
  CHECK(got->availability == 0);
  CHECK(got->performance == 0);
  CHECK(got->oee == 0);
}

TEST_CASE("oee: quality is one when nothing was made") {
  OeeInput in = MorningShift();
  in.total_count = {{At(6, 0), 10}, {At(14, 0), 10}};
  in.good_count = {};
  const absl::StatusOr<Oee> got = ComputeOee(in);
  REQUIRE(got.ok());
  CHECK(got->total == 0);
  CHECK(got->quality == 1);
  CHECK(got->performance == 0);
  CHECK(got->oee == 0);
}

TEST_CASE("oee: a counter reset is counted from zero") {
  // Counter replaced at 10:00: 06:00 1200 → 10:00 reads 40 (reset: +40) → 14:00 200 (+160) = 200 parts.
  OeeInput in = MorningShift();
  in.total_count = {{At(6, 0), 1200}, {At(10, 0), 40}, {At(14, 0), 200}};
  in.counter_wrap_at = 0;
  const absl::StatusOr<Oee> got = ComputeOee(in);
  REQUIRE(got.ok());
  CHECK(got->total == Approx(200));
}

TEST_CASE("oee: figures are not capped when the inputs are off") {
  // Running through the whole shift including its break: 480 min run in 450 planned.
  OeeInput in = MorningShift();
  in.states = {{At(6, 0), kRunning}};
  const absl::StatusOr<Oee> got = ComputeOee(in);
  REQUIRE(got.ok());
  CHECK(got->availability == Approx(480.0 / 450));
  CHECK(got->oee == Approx(342.0 / 450));  // still good / ideal output in the planned time
}

TEST_CASE("oee: bad input is refused naming the field") {
  struct Case {
    const char* what;
    void (*spoil)(OeeInput&);
    const char* message_part;
  };
  auto c = GENERATE(values<Case>({
      {"end equal to start", [](OeeInput& in) { in.end_us = in.start_us; }, "end_us must be after start_us"},
      {"end before start", [](OeeInput& in) { in.end_us = in.start_us - 1; }, "end_us must be after start_us"},
      {"planned longer than the shift", [](OeeInput& in) { in.planned_us = 481 * kMicrosPerMinute; },
       "planned_us must be in [0, end_us - start_us = 28800000000], got 28860000000"},
      {"negative planned", [](OeeInput& in) { in.planned_us = -1; }, "planned_us"},
      {"zero ideal rate", [](OeeInput& in) { in.ideal_rate_per_hour = 0; },
       "ideal_rate_per_hour must be a positive number, got 0"},
      {"negative ideal rate", [](OeeInput& in) { in.ideal_rate_per_hour = -5; }, "ideal_rate_per_hour"},
      {"NaN ideal rate", [](OeeInput& in) { in.ideal_rate_per_hour = std::numeric_limits<double>::quiet_NaN(); },
       "ideal_rate_per_hour"},
      {"negative wrap", [](OeeInput& in) { in.counter_wrap_at = -1; }, "counter_wrap_at"},
      {"states out of order", [](OeeInput& in) { std::swap(in.states[0], in.states[1]); }, "states"},
      {"total counter out of order", [](OeeInput& in) { std::swap(in.total_count[0], in.total_count[1]); },
       "total_count"},
      {"good counter out of order", [](OeeInput& in) { std::swap(in.good_count[0], in.good_count[1]); }, "good_count"},
  }));
  INFO(c.what);
  OeeInput in = MorningShift();
  c.spoil(in);
  const absl::StatusOr<Oee> got = ComputeOee(in);
  REQUIRE_FALSE(got.ok());
  CHECK(got.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK_THAT(std::string(got.status().message()), Catch::Contains(c.message_part));
}

TEST_CASE("oee: a line pools its devices") {
  // Device A: the hand-computed shift (run 400 min, planned 450, total 360, good 342, ideal 400).
  // Device B: run 300 min, planned 450, ideal rate 120/h → ideal 600 parts; total 540, all good.
  // Line: run 700 / planned 900 = 0.7778; performance (360 + 540) / (400 + 600) = 0.9;
  //       quality (342 + 540) / (360 + 540) = 0.98; OEE = 0.7778 × 0.9 × 0.98 = 0.686.
  const absl::StatusOr<Oee> a = ComputeOee(MorningShift());
  REQUIRE(a.ok());
  OeeInput b_in;
  b_in.start_us = At(6, 0);
  b_in.end_us = At(14, 0);
  b_in.planned_us = 450 * kMicrosPerMinute;
  b_in.states = {{At(6, 0), kStopped}, {At(8, 30), kRunning}, {At(13, 30), kStopped}};
  b_in.total_count = {{At(6, 0), 0}, {At(14, 0), 540}};
  b_in.good_count = {{At(6, 0), 0}, {At(14, 0), 540}};
  b_in.ideal_rate_per_hour = 120;
  const absl::StatusOr<Oee> b = ComputeOee(b_in);
  REQUIRE(b.ok());
  CHECK(b->performance == Approx(0.9));

  const std::vector<Oee> devices = {*a, *b};
  const Oee line = CombineLine(devices);
  CHECK(line.run_us == 700 * kMicrosPerMinute);
  CHECK(line.planned_us == 900 * kMicrosPerMinute);
  CHECK(line.total == Approx(900));
  CHECK(line.good == Approx(882));
  CHECK(line.ideal_total == Approx(1000));
  CHECK(line.availability == Approx(700.0 / 900));
  CHECK(line.performance == Approx(0.9));
  CHECK(line.quality == Approx(0.98));
  CHECK(line.oee == Approx(0.686));
}

TEST_CASE("oee: a line of one device has that device's figures") {
  const absl::StatusOr<Oee> a = ComputeOee(MorningShift());
  REQUIRE(a.ok());
  const Oee line = CombineLine(std::span(&*a, 1));
  CHECK(line.availability == Approx(a->availability));
  CHECK(line.performance == Approx(a->performance));
  CHECK(line.quality == Approx(a->quality));
  CHECK(line.oee == Approx(a->oee));
}

TEST_CASE("oee: an empty line has zero figures and quality one") {
  const Oee line = CombineLine({});
  CHECK(line.run_us == 0);
  CHECK(line.availability == 0);
  CHECK(line.performance == 0);
  CHECK(line.quality == 1);
  CHECK(line.oee == 0);
}

TEST_CASE("oee: a shift reads its states from a day before it and its counters a day either side") {
  const ReadRange states = ShiftStateRange(At(6, 0), At(14, 0));
  CHECK(states.from_us == At(6, 0) - kMicrosPerDay);
  CHECK(states.to_us == At(14, 0));
  const ReadRange counts = ShiftCountRange(At(6, 0), At(14, 0));
  CHECK(counts.from_us == At(6, 0) - kMicrosPerDay);
  CHECK(counts.to_us == At(14, 0) + kMicrosPerDay);
}

TEST_CASE("oee: the states of a shift are the last one before it and all from its start on") {
  const std::vector<Sample> states = {
      {At(4, 0), kIdle}, {At(5, 50), kRunning}, {At(6, 0), kStopped}, {At(7, 0), kRunning}};
  struct Case {
    const char* name;
    int64_t start_us;
    size_t first;  // index of the first state kept
  };
  for (const Case& c :
       {Case{"one before, one at the start", At(6, 0), 1}, Case{"one before, none at the start", At(5, 55), 1},
        Case{"none before", At(3, 0), 0}, Case{"all before: the last one", At(8, 0), 3}}) {
    DYNAMIC_SECTION(c.name) {
      std::span<const Sample> kept = ShiftStates(states, c.start_us);
      REQUIRE(kept.size() == states.size() - c.first);
      CHECK(kept.data() == states.data() + c.first);
    }
  }
  CHECK(ShiftStates({}, At(6, 0)).empty());
}
