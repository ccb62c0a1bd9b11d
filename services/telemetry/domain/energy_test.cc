#include "services/telemetry/domain/energy.h"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "absl/time/civil_time.h"
#include "absl/time/time.h"

using namespace ptd::telemetry;

namespace {

constexpr int kUtc8 = 8 * 60;

// Microseconds since the epoch of a local wall-clock time at a fixed UTC offset.
int64_t LocalUs(int y, int mo, int d, int h, int mi, int offset_minutes = kUtc8) {
  return absl::ToUnixMicros(
      absl::FromCivil(absl::CivilSecond(y, mo, d, h, mi, 0), absl::FixedTimeZone(offset_minutes * 60)));
}

// Valley 00:00–08:00 and 22:00–24:00, peak 08:00–12:00 and 18:00–22:00, flat 12:00–18:00 (local, UTC+8).
// Prices: valley 0.30, flat 0.70, peak 1.20 CNY/kWh, i.e. 30000, 70000, 120000 fen per MWh.
Tariff ChinaTariff() {
  Tariff t;
  t.windows = {{0, 480, TouPeriod::kValley},
               {480, 720, TouPeriod::kPeak},
               {720, 1080, TouPeriod::kFlat},
               {1080, 1320, TouPeriod::kPeak},
               {1320, 1440, TouPeriod::kValley}};
  t.price_minor_per_mwh[static_cast<int>(TouPeriod::kValley)] = 30000;
  t.price_minor_per_mwh[static_cast<int>(TouPeriod::kFlat)] = 70000;
  t.price_minor_per_mwh[static_cast<int>(TouPeriod::kPeak)] = 120000;
  t.utc_offset_minutes = kUtc8;
  return t;
}

double Valley(const EnergyBucket& b) { return b.kwh_by_period[static_cast<int>(TouPeriod::kValley)]; }
double Flat(const EnergyBucket& b) { return b.kwh_by_period[static_cast<int>(TouPeriod::kFlat)]; }
double Peak(const EnergyBucket& b) { return b.kwh_by_period[static_cast<int>(TouPeriod::kPeak)]; }

}  // namespace

TEST_CASE("energy: counter increases between consecutive readings") {
  struct Case {
    const char* what;
    double prev;
    double cur;
    double wrap_at;
    double increase;
  };
  auto c = GENERATE(values<Case>({
      {"counting on", 100, 112.5, 0, 12.5},
      {"no consumption", 100, 100, 0, 0},
      {"reset to zero and counted on", 5000, 3, 0, 3},
      {"reset without a wrap point", 99990, 5, 0, 5},
      {"wrap of a 5-digit register", 99990, 5, 100000, 15},
      {"wrap from exactly the wrap point", 100000, 2, 100000, 2},
      {"wrap from the lowest plausible reading", 90000, 10000, 100000, 20000},
      {"drop from below 90 percent is a reset", 89999, 5, 100000, 5},
      {"drop to above 10 percent is a reset", 99990, 10001, 100000, 10001},
      {"reading above the wrap point cannot wrap", 100500, 5, 100000, 5},
      {"a negative reading after a reset counts as zero", 50, -1, 0, 0},
  }));
  INFO(c.what);
  const std::vector<Sample> readings = {{1000, c.prev}, {2000, c.cur}};
  const std::vector<Increase> got = CounterIncreases(readings, c.wrap_at);
  REQUIRE(got.size() == 1);
  CHECK(got[0].from_us == 1000);
  CHECK(got[0].to_us == 2000);
  CHECK(got[0].amount == Approx(c.increase).margin(1e-9));
}

TEST_CASE("energy: a meter series with a reset and a wrap") {
  // 99 980 → 99 995 (+15) → wraps at 100 000 → 7 (+12) → 20 (+13) → meter replaced, new one shows 4 (+4) → 9 (+5).
  const std::vector<Sample> readings = {{0, 99980}, {10, 99995}, {20, 7}, {30, 20}, {40, 4}, {50, 9}};
  const std::vector<Increase> got = CounterIncreases(readings, 100000);
  const std::vector<Increase> want = {{0, 10, 15}, {10, 20, 12}, {20, 30, 13}, {30, 40, 4}, {40, 50, 5}};
  CHECK(got == want);
  CHECK(Spread(got, 0, 50) == Approx(49));
}

TEST_CASE("energy: fewer than two readings give no increases") {
  CHECK(CounterIncreases({}, 0).empty());
  const std::vector<Sample> one = {{5, 42}};
  CHECK(CounterIncreases(one, 0).empty());
}

TEST_CASE("energy: spread splits an increase in proportion to time") {
  const std::vector<Increase> inc = {{0, 100, 10}};
  struct Case {
    int64_t start;
    int64_t end;
    double want;
  };
  auto c = GENERATE(values<Case>({
      {0, 100, 10},
      {0, 50, 5},
      {50, 100, 5},
      {25, 35, 1},
      {-100, 1000, 10},
      {100, 200, 0},
      {-50, 0, 0},
      {60, 60, 0},
      {80, 20, 0},
  }));
  INFO("range [" << c.start << ", " << c.end << ")");
  CHECK(Spread(inc, c.start, c.end) == Approx(c.want).margin(1e-12));
}

TEST_CASE("energy: an instantaneous increase counts where its instant lies") {
  const std::vector<Increase> inc = {{50, 50, 3}};
  CHECK(Spread(inc, 0, 50) == 0);
  CHECK(Spread(inc, 50, 51) == 3);
  CHECK(Spread(inc, 0, 100) == 3);
}

TEST_CASE("energy: spread is additive over concatenated meters") {
  const std::vector<Increase> a = {{0, 100, 10}};
  const std::vector<Increase> b = {{50, 150, 4}};
  std::vector<Increase> both = a;
  both.insert(both.end(), b.begin(), b.end());
  CHECK(Spread(both, 25, 125) == Approx(Spread(a, 25, 125) + Spread(b, 25, 125)));
  CHECK(Spread(both, 25, 125) == Approx(7.5 + 3));
}

TEST_CASE("energy: a good tariff is valid in any window order") {
  CHECK(ValidateTariff(ChinaTariff()).ok());
  Tariff t = ChinaTariff();
  std::swap(t.windows[0], t.windows[3]);
  CHECK(ValidateTariff(t).ok());
  Tariff one;
  one.windows = {{0, 1440, TouPeriod::kFlat}};
  CHECK(ValidateTariff(one).ok());
}

TEST_CASE("energy: bad tariffs are refused naming what is wrong") {
  struct Case {
    const char* what;
    void (*spoil)(Tariff&);
    const char* message_part;
  };
  auto c = GENERATE(values<Case>({
      {"no windows", [](Tariff& t) { t.windows.clear(); }, "got none"},
      {"negative start", [](Tariff& t) { t.windows[0].start_minute = -5; }, "windows[0].start_minute"},
      {"start past the day", [](Tariff& t) { t.windows[4].start_minute = 1440; }, "windows[4].start_minute"},
      {"empty window", [](Tariff& t) { t.windows[1].end_minute = 480; }, "windows[1].end_minute"},
      {"end past the day", [](Tariff& t) { t.windows[4].end_minute = 1441; }, "windows[4].end_minute"},
      {"unknown period", [](Tariff& t) { t.windows[2].period = static_cast<TouPeriod>(7); }, "windows[2].period"},
      {"gap", [](Tariff& t) { t.windows[1].end_minute = 700; }, "[700, 720) of the day uncovered"},
      {"day not finished", [](Tariff& t) { t.windows.pop_back(); }, "[1320, 1440) of the day uncovered"},
      {"day not started", [](Tariff& t) { t.windows[0].start_minute = 60; }, "[0, 60) of the day uncovered"},
      {"overlap", [](Tariff& t) { t.windows[1].end_minute = 750; }, "overlap in minutes [720, 750)"},
      {"negative price", [](Tariff& t) { t.price_minor_per_mwh[2] = -1; }, "price_minor_per_mwh[peak]"},
      {"offset beyond 14 hours", [](Tariff& t) { t.utc_offset_minutes = 900; }, "utc_offset_minutes"},
  }));
  INFO(c.what);
  Tariff t = ChinaTariff();
  c.spoil(t);
  const absl::Status s = ValidateTariff(t);
  CHECK(s.code() == absl::StatusCode::kInvalidArgument);
  CHECK_THAT(std::string(s.message()), Catch::Contains(c.message_part));
}

TEST_CASE("energy: a reading interval across the valley to peak boundary splits half and half") {
  // 10 kWh read over 07:30→08:30 local (UTC+8); valley ends at 08:00. By time: 5 kWh valley, 5 kWh peak.
  // Cost by hand: 5 kWh × 0.30 CNY + 5 kWh × 1.20 CNY = 1.50 + 6.00 = 7.50 CNY = 750 fen.
  const std::vector<Sample> readings = {{LocalUs(2026, 3, 10, 7, 30), 1000}, {LocalUs(2026, 3, 10, 8, 30), 1010}};
  const std::vector<Increase> inc = CounterIncreases(readings, 0);
  const Tariff tariff = ChinaTariff();

  SECTION("daily") {
    const auto day =
        EnergyReport(inc, tariff, Granularity::kDay, LocalUs(2026, 3, 10, 0, 0), LocalUs(2026, 3, 11, 0, 0));
    REQUIRE(day.size() == 1);
    CHECK(day[0].start_us == LocalUs(2026, 3, 10, 0, 0));
    CHECK(day[0].end_us == LocalUs(2026, 3, 11, 0, 0));
    CHECK(day[0].kwh == Approx(10));
    CHECK(Valley(day[0]) == Approx(5));
    CHECK(Peak(day[0]) == Approx(5));
    CHECK(Flat(day[0]) == 0);
    CHECK(day[0].cost_minor == 750);
  }
  SECTION("hourly") {
    const auto hours =
        EnergyReport(inc, tariff, Granularity::kHour, LocalUs(2026, 3, 10, 7, 0), LocalUs(2026, 3, 10, 9, 0));
    REQUIRE(hours.size() == 2);
    CHECK(hours[0].start_us == LocalUs(2026, 3, 10, 7, 0));
    CHECK(hours[0].end_us == LocalUs(2026, 3, 10, 8, 0));
    CHECK(hours[0].kwh == Approx(5));
    CHECK(Valley(hours[0]) == Approx(5));
    CHECK(hours[0].cost_minor == 150);  // 5 kWh × 30 fen
    CHECK(hours[1].start_us == LocalUs(2026, 3, 10, 8, 0));
    CHECK(hours[1].kwh == Approx(5));
    CHECK(Peak(hours[1]) == Approx(5));
    CHECK(hours[1].cost_minor == 600);  // 5 kWh × 120 fen
  }
}

TEST_CASE("energy: the split is exact at a tariff boundary off the quarter-hour grid") {
  // Flat until 08:07, peak after; 6 kWh over 08:00→08:12 gives 3.5 kWh flat and 2.5 kWh peak.
  Tariff t;
  t.windows = {{0, 487, TouPeriod::kFlat}, {487, 1440, TouPeriod::kPeak}};
  t.price_minor_per_mwh[static_cast<int>(TouPeriod::kFlat)] = 100000;
  t.price_minor_per_mwh[static_cast<int>(TouPeriod::kPeak)] = 200000;
  t.utc_offset_minutes = 0;
  REQUIRE(ValidateTariff(t).ok());
  const std::vector<Increase> inc = {{LocalUs(2026, 3, 10, 8, 0, 0), LocalUs(2026, 3, 10, 8, 12, 0), 6}};
  const auto r = EnergyReport(inc, t, Granularity::kDay, LocalUs(2026, 3, 10, 0, 0, 0), LocalUs(2026, 3, 11, 0, 0, 0));
  REQUIRE(r.size() == 1);
  CHECK(Flat(r[0]) == Approx(3.5));
  CHECK(Peak(r[0]) == Approx(2.5));
  CHECK(r[0].cost_minor == 850);  // 3.5 × 100 + 2.5 × 200
}

TEST_CASE("energy: cost is rounded to the nearest minor unit") {
  Tariff t;
  t.windows = {{0, 1440, TouPeriod::kFlat}};
  t.price_minor_per_mwh[static_cast<int>(TouPeriod::kFlat)] = 12345;  // 12.345 minor per kWh
  struct Case {
    double kwh;
    int64_t cost;
  };
  auto c = GENERATE(values<Case>({{1, 12}, {2, 25}, {0.1, 1}, {0, 0}, {4, 49}}));
  INFO(c.kwh << " kWh");
  const std::vector<Increase> inc = {{0, kMicrosPerHour, c.kwh}};
  const auto r = EnergyReport(inc, t, Granularity::kDay, 0, kMicrosPerDay);
  REQUIRE(r.size() == 1);
  CHECK(r[0].cost_minor == c.cost);
}

TEST_CASE("energy: month buckets follow the local calendar across a month boundary") {
  // 8 kWh evenly over 2026-01-31 20:00 → 2026-02-01 04:00 local (UTC+8). In UTC the interval lies wholly in
  // January (12:00Z–20:00Z), in local time half of it is February: 4 kWh each, all valley (night).
  const std::vector<Increase> inc = {{LocalUs(2026, 1, 31, 20, 0), LocalUs(2026, 2, 1, 4, 0), 8}};
  const auto months =
      EnergyReport(inc, ChinaTariff(), Granularity::kMonth, LocalUs(2026, 1, 1, 0, 0), LocalUs(2026, 3, 1, 0, 0));
  REQUIRE(months.size() == 2);
  CHECK(months[0].start_us == LocalUs(2026, 1, 1, 0, 0));
  CHECK(months[0].end_us == LocalUs(2026, 2, 1, 0, 0));
  CHECK(months[1].start_us == LocalUs(2026, 2, 1, 0, 0));
  CHECK(months[1].end_us == LocalUs(2026, 3, 1, 0, 0));
  // 20:00–22:00 is peak, 22:00–24:00 valley in January; 00:00–04:00 valley in February.
  CHECK(months[0].kwh == Approx(4));
  CHECK(Peak(months[0]) == Approx(2));
  CHECK(Valley(months[0]) == Approx(2));
  CHECK(months[0].cost_minor == 300);  // 2 × 120 + 2 × 30
  CHECK(months[1].kwh == Approx(4));
  CHECK(Valley(months[1]) == Approx(4));
  CHECK(months[1].cost_minor == 120);  // 4 × 30
}

TEST_CASE("energy: buckets are clipped to the report range") {
  const std::vector<Increase> inc = {{LocalUs(2026, 3, 10, 10, 0), LocalUs(2026, 3, 10, 12, 0), 4}};
  const auto r =
      EnergyReport(inc, ChinaTariff(), Granularity::kHour, LocalUs(2026, 3, 10, 10, 30), LocalUs(2026, 3, 10, 11, 45));
  REQUIRE(r.size() == 2);
  CHECK(r[0].start_us == LocalUs(2026, 3, 10, 10, 30));
  CHECK(r[0].end_us == LocalUs(2026, 3, 10, 11, 0));
  CHECK(r[0].kwh == Approx(1));
  CHECK(r[1].start_us == LocalUs(2026, 3, 10, 11, 0));
  CHECK(r[1].end_us == LocalUs(2026, 3, 10, 11, 45));
  CHECK(r[1].kwh == Approx(1.5));
}

TEST_CASE("energy: an empty or inverted range has no buckets") {
  const std::vector<Increase> inc = {{0, 100, 1}};
  CHECK(EnergyReport(inc, ChinaTariff(), Granularity::kHour, 100, 100).empty());
  CHECK(EnergyReport(inc, ChinaTariff(), Granularity::kHour, 200, 100).empty());
}

TEST_CASE("energy: peak demand is the largest quarter hour times four") {
  // Readings (kWh): 10:00 0, 10:10 1, 10:20 3, 10:30 4.5, 10:45 6, 11:00 6.5 (local).
  // Quarters: 10:00–10:15 = 1 + half of the 10:10–10:20 step (2) = 2 kWh → 8 kW;
  //           10:15–10:30 = the other half (1) + 1.5 = 2.5 kWh → 10 kW (the peak);
  //           10:30–10:45 = 1.5 kWh → 6 kW; 10:45–11:00 = 0.5 kWh → 2 kW.
  const std::vector<Sample> readings = {{LocalUs(2026, 3, 10, 10, 0), 0},  {LocalUs(2026, 3, 10, 10, 10), 1},
                                        {LocalUs(2026, 3, 10, 10, 20), 3}, {LocalUs(2026, 3, 10, 10, 30), 4.5},
                                        {LocalUs(2026, 3, 10, 10, 45), 6}, {LocalUs(2026, 3, 10, 11, 0), 6.5}};
  const std::vector<Increase> inc = CounterIncreases(readings, 0);
  const auto hours =
      EnergyReport(inc, ChinaTariff(), Granularity::kHour, LocalUs(2026, 3, 10, 9, 0), LocalUs(2026, 3, 10, 12, 0));
  REQUIRE(hours.size() == 3);
  CHECK(hours[0].kwh == 0);
  CHECK(hours[0].peak_demand_kw == 0);
  CHECK(hours[0].peak_demand_at_us == LocalUs(2026, 3, 10, 9, 0));
  CHECK(hours[1].kwh == Approx(6.5));
  CHECK(hours[1].peak_demand_kw == Approx(10));
  CHECK(hours[1].peak_demand_at_us == LocalUs(2026, 3, 10, 10, 15));
  CHECK(hours[2].peak_demand_kw == 0);

  const auto day =
      EnergyReport(inc, ChinaTariff(), Granularity::kDay, LocalUs(2026, 3, 10, 0, 0), LocalUs(2026, 3, 11, 0, 0));
  REQUIRE(day.size() == 1);
  CHECK(day[0].peak_demand_kw == Approx(10));
  CHECK(day[0].peak_demand_at_us == LocalUs(2026, 3, 10, 10, 15));
}

TEST_CASE("energy: the earliest quarter wins a tie for peak demand") {
  const std::vector<Increase> inc = {{LocalUs(2026, 3, 10, 10, 0), LocalUs(2026, 3, 10, 11, 0), 4}};
  const auto r =
      EnergyReport(inc, ChinaTariff(), Granularity::kHour, LocalUs(2026, 3, 10, 10, 0), LocalUs(2026, 3, 10, 11, 0));
  REQUIRE(r.size() == 1);
  CHECK(r[0].peak_demand_kw == Approx(4));
  CHECK(r[0].peak_demand_at_us == LocalUs(2026, 3, 10, 10, 0));
}

TEST_CASE("energy: the meters of a line add up, and so does their demand") {
  // Meter A uses 1 kWh in 10:00–10:15 and 1 kWh in 10:15–10:30; meter B uses 2 kWh in 10:15–10:30 only.
  // The line: 4 kWh, its peak 3 kWh in 10:15–10:30 → 12 kW (neither meter alone peaks above 8 kW).
  const std::vector<Sample> a = {
      {LocalUs(2026, 3, 10, 10, 0), 100}, {LocalUs(2026, 3, 10, 10, 15), 101}, {LocalUs(2026, 3, 10, 10, 30), 102}};
  const std::vector<Sample> b = {{LocalUs(2026, 3, 10, 10, 15), 7}, {LocalUs(2026, 3, 10, 10, 30), 9}};
  std::vector<Increase> line = CounterIncreases(a, 0);
  const std::vector<Increase> from_b = CounterIncreases(b, 0);
  line.insert(line.end(), from_b.begin(), from_b.end());
  const auto r =
      EnergyReport(line, ChinaTariff(), Granularity::kHour, LocalUs(2026, 3, 10, 10, 0), LocalUs(2026, 3, 10, 11, 0));
  REQUIRE(r.size() == 1);
  CHECK(r[0].kwh == Approx(4));
  CHECK(r[0].peak_demand_kw == Approx(12));
  CHECK(r[0].peak_demand_at_us == LocalUs(2026, 3, 10, 10, 15));
  CHECK(r[0].cost_minor == 480);  // 4 kWh peak × 120 fen
}

TEST_CASE("energy: a report agrees with spread over each bucket") {
  // Uneven readings over two local days, a reset in the middle: every bucket's kWh equals Spread over its range.
  std::vector<Sample> readings;
  double v = 0;
  for (int i = 0; i <= 60; ++i) {
    readings.push_back({LocalUs(2026, 3, 10, 0, 0) + i * 47 * kMicrosPerMinute, v});
    v = (i == 30) ? 2 : v + 0.5 + (i % 7) * 0.3;
  }
  const std::vector<Increase> inc = CounterIncreases(readings, 0);
  const int64_t start = LocalUs(2026, 3, 10, 0, 0);
  const int64_t end = LocalUs(2026, 3, 12, 0, 0);
  double total = 0;
  for (Granularity g : {Granularity::kHour, Granularity::kDay, Granularity::kMonth}) {
    total = 0;
    for (const EnergyBucket& b : EnergyReport(inc, ChinaTariff(), g, start, end)) {
      CHECK(b.kwh == Approx(Spread(inc, b.start_us, b.end_us)).margin(1e-9));
      CHECK(b.kwh == Approx(Valley(b) + Flat(b) + Peak(b)).margin(1e-9));
      total += b.kwh;
    }
    CHECK(total == Approx(Spread(inc, start, end)));
  }
}
