// End to end: the real ptd-telemetry binary against the test run's PostgreSQL and Redis, called as edge
// gateways, dashboards and admins would — registry, ingest (unary and streaming, across a SIGKILL), rollups
// against a recomputation, latest values, energy, OEE, alarms with events, the live feed, bad input and
// isolation between tenants and between edge gateways.
#include <algorithm>
#include <cmath>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <thread>

#include "google/protobuf/util/time_util.h"
#include "libs/redis/client.h"
#include "tests/telemetry/telemetry_fixture.h"

namespace {

using namespace ptd::telemetry::v1;
using ptd::testing::telemetry::Call;
using ptd::testing::telemetry::NextKey;
using ptd::testing::telemetry::NowMicros;
using ptd::testing::telemetry::TelemetryServer;
using ptd::testing::telemetry::ViolatedFields;

constexpr int64_t kSecond = 1'000'000;
constexpr int64_t kMinute = 60 * kSecond;
constexpr int64_t kHour = 60 * kMinute;

// A plant with one line, one device and its points, made through the API as an admin.
struct Factory {
  std::string tenant;
  Plant plant;
  Line line;
  Device device;
  std::map<std::string, DataPoint> points;  // by code

  Factory(TelemetryServer& server, std::string tenant_id, const Device& device_spec = Device(),
          const Plant& plant_spec = Plant())
      : tenant(std::move(tenant_id)) {
    {
      Call call(tenant);
      CreatePlantRequest r;
      r.set_idempotency_key(NextKey());
      *r.mutable_plant() = plant_spec;
      r.mutable_plant()->set_code("SH-01");
      r.mutable_plant()->set_name("Shanghai works");
      r.mutable_plant()->set_utc_offset_minutes(480);
      grpc::Status s = server.stub().CreatePlant(&call.context, r, &plant);
      INFO(s.error_message());
      REQUIRE(s.ok());
    }
    {
      Call call(tenant);
      CreateLineRequest r;
      r.set_idempotency_key(NextKey());
      r.set_plant_id(plant.plant_id());
      r.mutable_line()->set_code("L1");
      r.mutable_line()->set_name("Press line 1");
      REQUIRE(server.stub().CreateLine(&call.context, r, &line).ok());
    }
    device = AddDevice(server, "press-07", device_spec);
    AddPoint(server, "temperature", POINT_KIND_SENSOR, "°C", 1000, -40.0, 400.0);
    AddPoint(server, "kwh", POINT_KIND_METER, "kWh", 60'000, std::nullopt, std::nullopt, 100000);
  }

  Device AddDevice(TelemetryServer& server, const std::string& code, const Device& spec = Device()) {
    Call call(tenant);
    CreateDeviceRequest r;
    r.set_idempotency_key(NextKey());
    r.set_line_id(line.line_id());
    *r.mutable_device() = spec;
    r.mutable_device()->set_code(code);
    r.mutable_device()->set_name("Device " + code);
    Device out;
    grpc::Status s = server.stub().CreateDevice(&call.context, r, &out);
    INFO(s.error_message());
    REQUIRE(s.ok());
    return out;
  }

  DataPoint AddPoint(TelemetryServer& server, const std::string& code, PointKind kind, const std::string& unit,
                     int64_t interval_ms, std::optional<double> min = std::nullopt,
                     std::optional<double> max = std::nullopt, double wrap_at = 0, const std::string& device_id = "") {
    Call call(tenant);
    CreateDataPointRequest r;
    r.set_idempotency_key(NextKey());
    r.set_device_id(device_id.empty() ? device.device_id() : device_id);
    DataPoint* p = r.mutable_point();
    p->set_code(code);
    p->set_kind(kind);
    p->set_unit(unit);
    p->set_expected_interval_ms(interval_ms);
    if (min) p->set_min_value(*min);
    if (max) p->set_max_value(*max);
    p->set_counter_wrap_at(wrap_at);
    DataPoint out;
    grpc::Status s = server.stub().CreateDataPoint(&call.context, r, &out);
    INFO(s.error_message());
    REQUIRE(s.ok());
    if (device_id.empty()) points[code] = out;
    return out;
  }
};

SeriesSamples Series(const std::string& device_id, const std::string& point,
                     const std::vector<std::pair<int64_t, double>>& samples) {
  SeriesSamples s;
  s.set_device_id(device_id);
  s.set_point(point);
  for (const auto& [t, v] : samples) {
    s.add_time_unix_us(t);
    s.add_values(v);
  }
  return s;
}

IngestResponse IngestOk(TelemetryServer& server, const std::string& tenant, const IngestRequest& request,
                        const std::string& roles = "operator", const std::string& subject = "") {
  Call call(tenant, roles, subject);
  IngestResponse out;
  grpc::Status s = server.stub().Ingest(&call.context, request, &out);
  INFO(s.error_message());
  REQUIRE(s.ok());
  return out;
}

std::vector<RawSample> Raw(TelemetryServer& server, const std::string& tenant, const std::string& point_id,
                           int64_t start, int64_t end) {
  Call call(tenant, "analyst");
  QuerySeriesRequest r;
  r.set_point_id(point_id);
  *r.mutable_start_time() = google::protobuf::util::TimeUtil::MicrosecondsToTimestamp(start);
  *r.mutable_end_time() = google::protobuf::util::TimeUtil::MicrosecondsToTimestamp(end);
  r.set_resolution(RESOLUTION_RAW);
  QuerySeriesResponse out;
  grpc::Status s = server.stub().QuerySeries(&call.context, r, &out);
  INFO(s.error_message());
  REQUIRE(s.ok());
  return {out.samples().begin(), out.samples().end()};
}

QuerySeriesResponse Buckets(TelemetryServer& server, const std::string& tenant, const std::string& point_id,
                            int64_t start, int64_t end, Resolution resolution) {
  Call call(tenant, "analyst");
  QuerySeriesRequest r;
  r.set_point_id(point_id);
  *r.mutable_start_time() = google::protobuf::util::TimeUtil::MicrosecondsToTimestamp(start);
  *r.mutable_end_time() = google::protobuf::util::TimeUtil::MicrosecondsToTimestamp(end);
  r.set_resolution(resolution);
  QuerySeriesResponse out;
  grpc::Status s = server.stub().QuerySeries(&call.context, r, &out);
  INFO(s.error_message());
  REQUIRE(s.ok());
  return out;
}

TEST_CASE("registry: creates are idempotent, a reused key with another request is refused") {
  TelemetryServer server;
  Factory f(server, "tenant-reg");
  CreatePlantRequest r;
  r.set_idempotency_key("plant-once");
  r.mutable_plant()->set_code("BJ-02");
  r.mutable_plant()->set_name("Beijing works");
  Plant first, second;
  {
    Call call(f.tenant);
    REQUIRE(server.stub().CreatePlant(&call.context, r, &first).ok());
  }
  {
    Call call(f.tenant);
    REQUIRE(server.stub().CreatePlant(&call.context, r, &second).ok());
  }
  CHECK(first.plant_id() == second.plant_id());
  r.mutable_plant()->set_name("Another name");
  Call call(f.tenant);
  CHECK(server.stub().CreatePlant(&call.context, r, &second).error_code() == grpc::StatusCode::ALREADY_EXISTS);
  CHECK(server.Query("SELECT count(*) FROM telemetry.plant WHERE code = 'BJ-02'") == 1);

  ListDataPointsRequest lr;
  lr.set_device_id(f.device.device_id());
  ListDataPointsResponse points;
  Call list(f.tenant, "clerk");
  REQUIRE(server.stub().ListDataPoints(&list.context, lr, &points).ok());
  CHECK(points.points_size() == 2);
}

TEST_CASE("registry: changes need the role admin") {
  TelemetryServer server;
  Call call("tenant-roles", "clerk");
  CreatePlantRequest r;
  r.set_idempotency_key("k");
  r.mutable_plant()->set_code("X");
  r.mutable_plant()->set_name("X");
  Plant out;
  CHECK(server.stub().CreatePlant(&call.context, r, &out).error_code() == grpc::StatusCode::PERMISSION_DENIED);
}

TEST_CASE("bad input is refused naming the field and changes nothing") {
  TelemetryServer server;
  Factory f(server, "tenant-bad");
  const int64_t plants_before = server.Query("SELECT count(*) FROM telemetry.plant");
  struct Case {
    std::string name;
    std::function<grpc::Status(Call&)> call;
    std::string field;
  };
  auto& stub = server.stub();
  std::vector<Case> cases = {
      {"plant without key",
       [&](Call& c) {
         CreatePlantRequest r;
         r.mutable_plant()->set_code("A");
         r.mutable_plant()->set_name("A");
         Plant out;
         return stub.CreatePlant(&c.context, r, &out);
       },
       "idempotency_key"},
      {"plant code with spaces",
       [&](Call& c) {
         CreatePlantRequest r;
         r.set_idempotency_key(NextKey());
         r.mutable_plant()->set_code("a b");
         r.mutable_plant()->set_name("A");
         Plant out;
         return stub.CreatePlant(&c.context, r, &out);
       },
       "plant.code"},
      {"plant offset beyond 14 h",
       [&](Call& c) {
         CreatePlantRequest r;
         r.set_idempotency_key(NextKey());
         r.mutable_plant()->set_code("A");
         r.mutable_plant()->set_name("A");
         r.mutable_plant()->set_utc_offset_minutes(900);
         Plant out;
         return stub.CreatePlant(&c.context, r, &out);
       },
       "plant.utc_offset_minutes"},
      {"tariff leaving hours uncovered",
       [&](Call& c) {
         CreatePlantRequest r;
         r.set_idempotency_key(NextKey());
         r.mutable_plant()->set_code("A");
         r.mutable_plant()->set_name("A");
         Tariff* t = r.mutable_plant()->mutable_tariff();
         t->set_currency("CNY");
         TariffWindow* w = t->add_windows();
         w->set_start_minute(0);
         w->set_end_minute(600);
         w->set_period(TOU_PERIOD_FLAT);
         Plant out;
         return stub.CreatePlant(&c.context, r, &out);
       },
       "plant.tariff"},
      {"point without kind",
       [&](Call& c) {
         CreateDataPointRequest r;
         r.set_idempotency_key(NextKey());
         r.set_device_id(f.device.device_id());
         r.mutable_point()->set_code("p");
         r.mutable_point()->set_unit("bar");
         r.mutable_point()->set_expected_interval_ms(1000);
         DataPoint out;
         return stub.CreateDataPoint(&c.context, r, &out);
       },
       "point.kind"},
      {"point with min above max",
       [&](Call& c) {
         CreateDataPointRequest r;
         r.set_idempotency_key(NextKey());
         r.set_device_id(f.device.device_id());
         r.mutable_point()->set_code("p");
         r.mutable_point()->set_kind(POINT_KIND_SENSOR);
         r.mutable_point()->set_unit("bar");
         r.mutable_point()->set_expected_interval_ms(1000);
         r.mutable_point()->set_min_value(10);
         r.mutable_point()->set_max_value(5);
         DataPoint out;
         return stub.CreateDataPoint(&c.context, r, &out);
       },
       "point.max_value"},
      {"device id that is not an id",
       [&](Call& c) {
         GetDeviceRequest r;
         r.set_device_id("press-07");
         Device out;
         return stub.GetDevice(&c.context, r, &out);
       },
       "device_id"},
      {"series query without end",
       [&](Call& c) {
         QuerySeriesRequest r;
         r.set_point_id(f.points["temperature"].point_id());
         r.mutable_start_time()->set_seconds(1);
         QuerySeriesResponse out;
         return stub.QuerySeries(&c.context, r, &out);
       },
       "end_time"},
      {"series query ending before it starts",
       [&](Call& c) {
         QuerySeriesRequest r;
         r.set_point_id(f.points["temperature"].point_id());
         r.mutable_start_time()->set_seconds(100);
         r.mutable_end_time()->set_seconds(50);
         QuerySeriesResponse out;
         return stub.QuerySeries(&c.context, r, &out);
       },
       "end_time"},
      {"raw query over a month",
       [&](Call& c) {
         QuerySeriesRequest r;
         r.set_point_id(f.points["temperature"].point_id());
         r.mutable_start_time()->set_seconds(0);
         r.mutable_end_time()->set_seconds(31 * 86400);
         r.set_resolution(RESOLUTION_RAW);
         QuerySeriesResponse out;
         return stub.QuerySeries(&c.context, r, &out);
       },
       "resolution"},
      {"energy with two scopes",
       [&](Call& c) {
         GetEnergyRequest r;
         r.set_line_id(f.line.line_id());
         r.set_plant_id(f.plant.plant_id());
         r.mutable_start_time()->set_seconds(0);
         r.mutable_end_time()->set_seconds(3600);
         r.set_granularity(GRANULARITY_HOUR);
         GetEnergyResponse out;
         return stub.GetEnergy(&c.context, r, &out);
       },
       "point_id"},
      {"energy without granularity",
       [&](Call& c) {
         GetEnergyRequest r;
         r.set_plant_id(f.plant.plant_id());
         r.mutable_start_time()->set_seconds(0);
         r.mutable_end_time()->set_seconds(3600);
         GetEnergyResponse out;
         return stub.GetEnergy(&c.context, r, &out);
       },
       "granularity"},
      {"OEE planned time longer than the shift",
       [&](Call& c) {
         GetOeeRequest r;
         r.set_device_id(f.device.device_id());
         r.mutable_shift_start()->set_seconds(0);
         r.mutable_shift_end()->set_seconds(3600);
         r.set_planned_minutes(61);
         GetOeeResponse out;
         return stub.GetOee(&c.context, r, &out);
       },
       "planned_minutes"},
      {"alarm rule with high below low",
       [&](Call& c) {
         CreateAlarmRuleRequest r;
         r.set_idempotency_key(NextKey());
         r.set_point_id(f.points["temperature"].point_id());
         r.mutable_rule()->set_name("too hot");
         r.mutable_rule()->set_kind(ALARM_RULE_KIND_THRESHOLD);
         r.mutable_rule()->set_severity(SEVERITY_WARNING);
         r.mutable_rule()->set_high(10);
         r.mutable_rule()->set_low(20);
         AlarmRule out;
         return stub.CreateAlarmRule(&c.context, r, &out);
       },
       "rule.high"},
      {"latest with neither device nor points",
       [&](Call& c) {
         GetLatestRequest r;
         GetLatestResponse out;
         return stub.GetLatest(&c.context, r, &out);
       },
       "device_id"},
      {"page size too large",
       [&](Call& c) {
         ListPlantsRequest r;
         r.set_page_size(501);
         ListPlantsResponse out;
         return stub.ListPlants(&c.context, r, &out);
       },
       "page_size"},
      {"page token not ours",
       [&](Call& c) {
         ListAlarmsRequest r;
         r.set_page_token("not-a-token");
         ListAlarmsResponse out;
         return stub.ListAlarms(&c.context, r, &out);
       },
       "page_token"},
  };
  for (Case& c : cases) {
    DYNAMIC_SECTION(c.name) {
      Call call(f.tenant);
      grpc::Status s = c.call(call);
      INFO(s.error_message());
      CHECK(s.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
      std::vector<std::string> fields = ViolatedFields(s);
      CHECK(std::find(fields.begin(), fields.end(), c.field) != fields.end());
    }
  }
  CHECK(server.Query("SELECT count(*) FROM telemetry.plant") == plants_before);
  CHECK(server.Query("SELECT count(*) FROM telemetry.alarm_rule") == 0);
}

TEST_CASE("bad samples are rejected one by one while the good ones of the batch are stored") {
  TelemetryServer server({"--late-window=1h", "--future-tolerance=1m"});
  Factory f(server, "tenant-points");
  const int64_t now = NowMicros();
  IngestRequest r;
  r.set_batch_id("batch-1");
  *r.add_series() = Series(f.device.device_id(), "temperature",
                           {{now - 3 * kSecond, 20.5},
                            {now - 2 * kSecond, std::nan("")},
                            {now - 1 * kSecond, 401},  // above max_value 400
                            {now, -41},                // below min_value -40
                            {now + 2 * kMinute, 21},   // far future
                            {now - 2 * kHour, 22},     // before the late window
                            {now - 4 * kSecond, 19.5}});
  *r.add_series() = Series("01900000-0000-7000-8000-0000000000aa", "temperature", {{now, 1}});  // unknown device
  *r.add_series() = Series(f.device.device_id(), "pressure", {{now, 1}});                       // unknown point
  SeriesSamples ragged = Series(f.device.device_id(), "temperature", {{now - 9 * kSecond, 1}});
  ragged.add_values(2);
  *r.add_series() = ragged;
  IngestResponse out = IngestOk(server, f.tenant, r);
  CHECK(out.batch_id() == "batch-1");
  CHECK(out.accepted() == 2);
  CHECK(out.duplicates() == 0);
  std::map<std::pair<int, int>, std::string> rejected;
  for (const auto& x : out.rejected()) rejected[{x.series_index(), x.sample_index()}] = x.reason();
  CHECK(rejected.size() == 8);
  CHECK_THAT(rejected[std::make_pair(0, 1)], Catch::Contains("NaN"));
  CHECK_THAT(rejected[std::make_pair(0, 2)], Catch::Contains("above max_value"));
  CHECK_THAT(rejected[std::make_pair(0, 3)], Catch::Contains("below min_value"));
  CHECK_THAT(rejected[std::make_pair(0, 4)], Catch::Contains("future"));
  CHECK_THAT(rejected[std::make_pair(0, 5)], Catch::Contains("late window"));
  CHECK_THAT(rejected[std::make_pair(1, -1)], Catch::Contains("unknown device"));
  CHECK_THAT(rejected[std::make_pair(2, -1)], Catch::Contains("no data point 'pressure'"));
  CHECK_THAT(rejected[std::make_pair(3, -1)], Catch::Contains("parallel"));
  std::vector<RawSample> stored = Raw(server, f.tenant, f.points["temperature"].point_id(), now - kHour, now + kHour);
  REQUIRE(stored.size() == 2);
  CHECK(stored[0].value() == 19.5);
  CHECK(stored[1].value() == 20.5);
}

TEST_CASE("a batch sent twice is stored once: the second time every sample is a duplicate") {
  TelemetryServer server;
  Factory f(server, "tenant-dup");
  const int64_t now = NowMicros();
  IngestRequest r;
  std::vector<std::pair<int64_t, double>> samples;
  for (int i = 0; i < 100; ++i) samples.push_back({now - (100 - i) * kSecond, i * 0.5});
  *r.add_series() = Series(f.device.device_id(), "temperature", samples);
  CHECK(IngestOk(server, f.tenant, r).accepted() == 100);
  IngestResponse again = IngestOk(server, f.tenant, r);
  CHECK(again.accepted() == 0);
  CHECK(again.duplicates() == 100);
  // Late repeats with another value do not replace the first one either: the first write wins.
  IngestRequest changed;
  *changed.add_series() = Series(f.device.device_id(), "temperature", {{now - 50 * kSecond, 99}});
  CHECK(IngestOk(server, f.tenant, changed).duplicates() == 1);
  std::vector<RawSample> stored = Raw(server, f.tenant, f.points["temperature"].point_id(), now - kHour, now);
  CHECK(stored.size() == 100);
  CHECK(server.Query("SELECT sum(count) FROM telemetry.rollup_1m") == 100);
  CHECK(server.Query("SELECT sum(count) FROM telemetry.rollup_1d") == 100);
}

TEST_CASE("rollups equal a recomputation from the raw samples after random late and duplicate samples") {
  TelemetryServer server;
  Factory f(server, "tenant-rollup");
  const std::string point = f.points["temperature"].point_id();
  std::mt19937_64 rng(42);
  // Two and a half hours of 1-second samples ending now, sent in shuffled batches, 20 % of them sent again.
  const int64_t end = NowMicros() / kSecond * kSecond;
  const int64_t start = end - 9000 * kSecond;
  std::map<int64_t, double> truth;  // first value sent per time
  std::vector<std::pair<int64_t, double>> all;
  for (int64_t t = start; t < end; t += kSecond) {
    double v = std::round(std::uniform_real_distribution<double>(-20, 120)(rng) * 100) / 100;
    all.push_back({t, v});
    truth[t] = v;
  }
  std::vector<std::pair<int64_t, double>> sends = all;
  for (size_t i = 0; i < all.size() / 5; ++i) {
    auto original = all[rng() % all.size()];
    sends.push_back({original.first, rng() % 2 ? original.second : original.second + 100});
  }
  // The originals go first in random order; every repeat afterwards (a repeat may carry another value: ignored).
  std::shuffle(sends.begin(), sends.begin() + static_cast<long>(all.size()), rng);
  std::shuffle(sends.begin() + static_cast<long>(all.size()), sends.end(), rng);
  int64_t accepted = 0, duplicates = 0;
  for (size_t at = 0; at < sends.size(); at += 700) {
    IngestRequest r;
    std::vector<std::pair<int64_t, double>> part(sends.begin() + static_cast<long>(at),
                                                 sends.begin() + static_cast<long>(std::min(sends.size(), at + 700)));
    *r.add_series() = Series(f.device.device_id(), "temperature", part);
    IngestResponse out = IngestOk(server, f.tenant, r);
    accepted += out.accepted();
    duplicates += out.duplicates();
  }
  CHECK(accepted == static_cast<int64_t>(all.size()));
  CHECK(duplicates == static_cast<int64_t>(sends.size() - all.size()));

  for (auto [resolution, step] : {std::pair{RESOLUTION_MINUTE, kMinute}, std::pair{RESOLUTION_HOUR, kHour}}) {
    std::map<int64_t, std::vector<std::pair<int64_t, double>>> expected;
    for (const auto& [t, v] : truth) expected[t - ((t % step) + step) % step].push_back({t, v});
    QuerySeriesResponse got = Buckets(server, f.tenant, point, start, end, resolution);
    REQUIRE(got.buckets_size() == static_cast<int>(expected.size()));
    int i = 0;
    for (const auto& [bucket, samples] : expected) {
      const Bucket& b = got.buckets(i++);
      INFO("bucket " << bucket);
      CHECK(google::protobuf::util::TimeUtil::TimestampToMicroseconds(b.start_time()) == bucket);
      double mn = samples[0].second, mx = samples[0].second, sum = 0;
      for (const auto& [t, v] : samples) {
        mn = std::min(mn, v);
        mx = std::max(mx, v);
        sum += v;
      }
      CHECK(b.count() == static_cast<int64_t>(samples.size()));
      CHECK(b.min() == mn);
      CHECK(b.max() == mx);
      CHECK(b.last() == samples.back().second);
      CHECK(b.avg() == Approx(sum / static_cast<double>(samples.size())).epsilon(1e-12));
    }
  }
  // And the raw series is exactly the first values sent.
  std::vector<RawSample> raw = Raw(server, f.tenant, point, end - 3600 * kSecond, end);
  REQUIRE(raw.size() == 3600);
  for (const RawSample& s : raw) CHECK(s.value() == truth.at(s.time_unix_us()));
}

TEST_CASE("ingest durability: a SIGKILL mid-stream loses no acknowledged sample and stores none twice") {
  TelemetryServer server;
  Factory f(server, "tenant-kill");
  const std::string point = f.points["temperature"].point_id();
  const int64_t base = NowMicros() - 3 * kHour;
  constexpr int kBatches = 300;
  constexpr int kPerBatch = 500;
  auto batch = [&](int b) {
    IngestRequest r;
    r.set_batch_id(std::to_string(b));
    std::vector<std::pair<int64_t, double>> samples;
    for (int i = 0; i < kPerBatch; ++i) {
      int64_t n = static_cast<int64_t>(b) * kPerBatch + i;
      samples.push_back({base + n * 10'000, static_cast<double>(n % 400)});
    }
    *r.add_series() = Series(f.device.device_id(), "temperature", samples);
    return r;
  };
  std::atomic<int> acked{0};
  std::atomic<bool> stream_ended{false};
  std::thread streamer([&] {
    Call call(f.tenant, "operator", "", std::chrono::seconds(60));
    auto stream = server.stub().StreamIngest(&call.context);
    // Keep up to 8 batches in flight, as an edge gateway would.
    std::thread reader([&] {
      IngestResponse response;
      while (stream->Read(&response)) {
        CHECK(response.batch_id() == std::to_string(acked.load()));
        CHECK(response.accepted() == kPerBatch);
        acked++;
      }
      stream_ended = true;
    });
    for (int b = 0; b < kBatches; ++b) {
      while (b - acked.load() >= 8 && !stream_ended) std::this_thread::sleep_for(std::chrono::milliseconds(1));
      if (stream_ended || !stream->Write(batch(b))) break;
    }
    stream->WritesDone();
    reader.join();
    (void)stream->Finish();
  });
  REQUIRE(ptd::testing::WaitFor([&] { return acked.load() >= 40; }, std::chrono::seconds(60)));
  server.Kill();
  streamer.join();
  const int acknowledged = acked.load();
  INFO("acknowledged batches: " << acknowledged);
  CHECK(acknowledged < kBatches);

  server.Start();
  const int64_t stored_rows = server.Query("SELECT coalesce(sum(n), 0) FROM telemetry.sample_block");
  std::vector<RawSample> stored = Raw(server, f.tenant, point, base, base + kHour);
  std::set<int64_t> distinct;
  for (const RawSample& s : stored) distinct.insert(s.time_unix_us());
  CHECK(static_cast<int64_t>(stored.size()) == stored_rows);
  CHECK(static_cast<int64_t>(distinct.size()) == stored_rows);           // none twice
  CHECK(stored_rows >= static_cast<int64_t>(acknowledged) * kPerBatch);  // every acknowledged one
  CHECK(stored_rows % kPerBatch == 0);                                   // whole batches or nothing

  // The edge gateway sends again everything it was not told was stored (here: all of it, as a simple one would).
  int64_t accepted = 0, duplicates = 0;
  for (int b = 0; b < kBatches; ++b) {
    IngestResponse out = IngestOk(server, f.tenant, batch(b));
    accepted += out.accepted();
    duplicates += out.duplicates();
  }
  CHECK(duplicates == stored_rows);
  CHECK(accepted + duplicates == int64_t{kBatches} * kPerBatch);
  CHECK(server.Query("SELECT coalesce(sum(n), 0) FROM telemetry.sample_block") == int64_t{kBatches} * kPerBatch);
  CHECK(server.Query("SELECT sum(count) FROM telemetry.rollup_1m") == int64_t{kBatches} * kPerBatch);
}

TEST_CASE("latest values move forward only and survive the loss of Redis") {
  TelemetryServer server;
  Factory f(server, "tenant-latest");
  const int64_t now = NowMicros();
  IngestRequest r;
  *r.add_series() = Series(f.device.device_id(), "temperature", {{now - 10 * kSecond, 50}, {now - 5 * kSecond, 55}});
  IngestOk(server, f.tenant, r);
  IngestRequest late;
  *late.add_series() = Series(f.device.device_id(), "temperature", {{now - 60 * kSecond, 10}});
  IngestOk(server, f.tenant, late);
  auto latest = [&] {
    Call call(f.tenant, "analyst");
    GetLatestRequest q;
    q.set_device_id(f.device.device_id());
    GetLatestResponse out;
    REQUIRE(server.stub().GetLatest(&call.context, q, &out).ok());
    return out;
  };
  GetLatestResponse got = latest();
  REQUIRE(got.values_size() == 1);  // the meter has no sample yet
  CHECK(got.values(0).point() == "temperature");
  CHECK(got.values(0).value() == 55);
  CHECK(got.values(0).time_unix_us() == now - 5 * kSecond);
  // Redis forgets; PostgreSQL still knows.
  auto redis = ptd::redis::Client::Create({.url = ptd::testing::GetInfra().redis_url});
  REQUIRE(redis.ok());
  REQUIRE((*redis)->Command({"DEL", "ptd.telemetry.latest." + f.tenant}).ok());
  got = latest();
  REQUIRE(got.values_size() == 1);
  CHECK(got.values(0).value() == 55);
}

TEST_CASE("tenant isolation: another tenant's plants, devices, points and alarms are not found") {
  TelemetryServer server;
  Factory a(server, "tenant-a");
  Factory b(server, "tenant-b");
  const int64_t now = NowMicros();
  IngestRequest own;
  *own.add_series() = Series(a.device.device_id(), "temperature", {{now - kSecond, 42}});
  IngestOk(server, a.tenant, own);
  {
    Call call(b.tenant);
    GetPlantRequest r;
    r.set_plant_id(a.plant.plant_id());
    Plant out;
    CHECK(server.stub().GetPlant(&call.context, r, &out).error_code() == grpc::StatusCode::NOT_FOUND);
  }
  {
    Call call(b.tenant);
    GetDeviceRequest r;
    r.set_device_id(a.device.device_id());
    Device out;
    CHECK(server.stub().GetDevice(&call.context, r, &out).error_code() == grpc::StatusCode::NOT_FOUND);
  }
  {
    Call call(b.tenant);
    QuerySeriesRequest r;
    r.set_point_id(a.points["temperature"].point_id());
    r.mutable_start_time()->set_seconds(now / kSecond - 60);
    r.mutable_end_time()->set_seconds(now / kSecond + 60);
    QuerySeriesResponse out;
    CHECK(server.stub().QuerySeries(&call.context, r, &out).error_code() == grpc::StatusCode::NOT_FOUND);
  }
  {
    Call call(b.tenant);
    GetLatestRequest r;
    r.add_point_ids(a.points["temperature"].point_id());
    GetLatestResponse out;
    REQUIRE(server.stub().GetLatest(&call.context, r, &out).ok());
    CHECK(out.values_size() == 0);
  }
  {
    Call call(b.tenant);
    GetEnergyRequest r;
    r.set_point_id(a.points["kwh"].point_id());
    r.mutable_start_time()->set_seconds(0);
    r.mutable_end_time()->set_seconds(3600);
    r.set_granularity(GRANULARITY_HOUR);
    GetEnergyResponse out;
    CHECK(server.stub().GetEnergy(&call.context, r, &out).error_code() == grpc::StatusCode::NOT_FOUND);
  }
  {
    Call call(b.tenant);
    ListDevicesRequest r;
    ListDevicesResponse out;
    REQUIRE(server.stub().ListDevices(&call.context, r, &out).ok());
    REQUIRE(out.devices_size() == 1);
    CHECK(out.devices(0).device_id() == b.device.device_id());
  }
  // B writing for A's device: an unknown device to B, nothing stored.
  IngestRequest cross;
  *cross.add_series() = Series(a.device.device_id(), "temperature", {{now, 1}});
  IngestResponse out = IngestOk(server, b.tenant, cross);
  CHECK(out.accepted() == 0);
  REQUIRE(out.rejected_size() == 1);
  CHECK_THAT(out.rejected(0).reason(), Catch::Contains("unknown device"));
  CHECK(Raw(server, a.tenant, a.points["temperature"].point_id(), now - kMinute, now + kMinute).size() == 1);
}

TEST_CASE("edge gateways write only for their own devices, and only registered API keys write at all") {
  TelemetryServer server;
  Factory f(server, "tenant-edge");
  Device other = f.AddDevice(server, "press-08");
  f.AddPoint(server, "temperature", POINT_KIND_SENSOR, "°C", 1000, std::nullopt, std::nullopt, 0, other.device_id());
  EdgeGateway gateway;
  {
    Call call(f.tenant);
    CreateEdgeGatewayRequest r;
    r.set_idempotency_key(NextKey());
    r.mutable_edge_gateway()->set_name("gate north");
    r.mutable_edge_gateway()->set_api_key_id("key-north");
    r.mutable_edge_gateway()->add_device_ids(f.device.device_id());
    grpc::Status s = server.stub().CreateEdgeGateway(&call.context, r, &gateway);
    INFO(s.error_message());
    REQUIRE(s.ok());
  }
  const int64_t now = NowMicros();
  IngestRequest r;
  *r.add_series() = Series(f.device.device_id(), "temperature", {{now, 30}});
  *r.add_series() = Series(other.device_id(), "temperature", {{now, 31}});
  IngestResponse out = IngestOk(server, f.tenant, r, "clerk", "apikey:key-north");
  CHECK(out.accepted() == 1);
  REQUIRE(out.rejected_size() == 1);
  CHECK(out.rejected(0).series_index() == 1);
  CHECK_THAT(out.rejected(0).reason(), Catch::Contains("not assigned to edge gateway 'gate north'"));

  // An API key that is no edge gateway of this enterprise, and a user who is neither admin nor operator.
  for (auto [roles, subject] : {std::pair{"clerk", "apikey:key-south"}, std::pair{"clerk", ""}}) {
    Call call(f.tenant, roles, subject);
    IngestResponse refused;
    CHECK(server.stub().Ingest(&call.context, r, &refused).error_code() == grpc::StatusCode::PERMISSION_DENIED);
  }
  // The same API key id under another tenant is another tenant's key: refused.
  Factory g(server, "tenant-edge-2");
  Call call(g.tenant, "clerk", "apikey:key-north");
  IngestResponse refused;
  CHECK(server.stub().Ingest(&call.context, r, &refused).error_code() == grpc::StatusCode::PERMISSION_DENIED);

  // Reassigned: now it may write for the other device.
  {
    Call set(f.tenant);
    SetEdgeGatewayDevicesRequest req;
    req.set_edge_gateway_id(gateway.edge_gateway_id());
    req.add_device_ids(other.device_id());
    EdgeGateway updated;
    REQUIRE(server.stub().SetEdgeGatewayDevices(&set.context, req, &updated).ok());
    CHECK(updated.device_ids_size() == 1);
  }
  IngestRequest later;
  *later.add_series() = Series(other.device_id(), "temperature", {{now + 1, 32}});
  CHECK(IngestOk(server, f.tenant, later, "clerk", "apikey:key-north").accepted() == 1);
}

TEST_CASE("energy through the service: a meter reset and a wrap are handled, and the tariff prices the use") {
  TelemetryServer server;
  // All day flat at 0.60 CNY/kWh = 60000 fen/MWh.
  Plant tariffed;
  Tariff* t = tariffed.mutable_tariff();
  t->set_currency("CNY");
  TariffWindow* w = t->add_windows();
  w->set_start_minute(0);
  w->set_end_minute(1440);
  w->set_period(TOU_PERIOD_FLAT);
  t->set_flat_price_minor_per_mwh(60000);
  Factory f(server, "tenant-energy", Device(), tariffed);
  CHECK(f.plant.tariff().flat_price_minor_per_mwh() == 60000);
  // Readings every 10 minutes over an hour: 100 → 130, reset to 0 → 10, a jump to 99990, wrap at 100000 → 20.
  const int64_t hour = (NowMicros() - 3 * kHour) / kHour * kHour;
  std::vector<std::pair<int64_t, double>> readings = {{hour, 100},
                                                      {hour + 10 * kMinute, 130},
                                                      {hour + 20 * kMinute, 0},
                                                      {hour + 30 * kMinute, 10},
                                                      {hour + 40 * kMinute, 99990},
                                                      {hour + 50 * kMinute, 20}};
  IngestRequest r;
  *r.add_series() = Series(f.device.device_id(), "kwh", readings);
  IngestOk(server, f.tenant, r);
  Call call(f.tenant, "analyst");
  GetEnergyRequest q;
  q.set_point_id(f.points["kwh"].point_id());
  *q.mutable_start_time() = google::protobuf::util::TimeUtil::MicrosecondsToTimestamp(hour);
  *q.mutable_end_time() = google::protobuf::util::TimeUtil::MicrosecondsToTimestamp(hour + kHour);
  q.set_granularity(GRANULARITY_HOUR);
  GetEnergyResponse out;
  grpc::Status s = server.stub().GetEnergy(&call.context, q, &out);
  INFO(s.error_message());
  REQUIRE(s.ok());
  // 30 (counting) + 0 (the reset: what it counted since, 0) + 10 + 99980 (jump up, counted) + 30 (wrap at 100000).
  REQUIRE(out.buckets_size() == 1);
  CHECK(out.total_kwh() == Approx(30 + 0 + 10 + 99980 + 30));
  CHECK(out.currency() == "CNY");
  CHECK(out.total_cost_minor() == 6'003'000);  // 100050 kWh × 60 fen
  CHECK(out.buckets(0).flat_kwh() == Approx(100050));
}

TEST_CASE("OEE of a device over a shift from its state and counters") {
  TelemetryServer server;
  Device spec;
  spec.set_state_point("state");
  spec.set_total_count_point("made");
  spec.set_good_count_point("good");
  spec.set_running_state(1);
  spec.set_ideal_rate_per_hour(120);
  Factory f(server, "tenant-oee", spec);
  f.AddPoint(server, "state", POINT_KIND_STATE, "code", 1000);
  f.AddPoint(server, "made", POINT_KIND_COUNTER, "pcs", 1000);
  f.AddPoint(server, "good", POINT_KIND_COUNTER, "pcs", 1000);
  // A two-hour shift: running the first 90 minutes, stopped the last 30; 150 made, 135 good.
  const int64_t start = (NowMicros() - 4 * kHour) / kHour * kHour;
  IngestRequest r;
  *r.add_series() = Series(f.device.device_id(), "state", {{start, 1}, {start + 90 * kMinute, 0}});
  *r.add_series() = Series(f.device.device_id(), "made", {{start, 0}, {start + 90 * kMinute, 150}});
  *r.add_series() = Series(f.device.device_id(), "good", {{start, 0}, {start + 90 * kMinute, 135}});
  IngestOk(server, f.tenant, r);
  Call call(f.tenant, "analyst");
  GetOeeRequest q;
  q.set_device_id(f.device.device_id());
  *q.mutable_shift_start() = google::protobuf::util::TimeUtil::MicrosecondsToTimestamp(start);
  *q.mutable_shift_end() = google::protobuf::util::TimeUtil::MicrosecondsToTimestamp(start + 2 * kHour);
  GetOeeResponse out;
  grpc::Status s = server.stub().GetOee(&call.context, q, &out);
  INFO(s.error_message());
  REQUIRE(s.ok());
  // availability 90/120 = 0.75; performance 150 / (120/h × 1.5 h) = 0.8333; quality 135/150 = 0.9.
  CHECK(out.oee().availability() == Approx(0.75));
  CHECK(out.oee().performance() == Approx(150.0 / 180.0));
  CHECK(out.oee().quality() == Approx(0.9));
  CHECK(out.oee().oee() == Approx(0.75 * 150.0 / 180.0 * 0.9));
}

TEST_CASE("alarms: raised by samples, acknowledged, cleared, with events, history and the live feed") {
  TelemetryServer server;
  Factory f(server, "tenant-alarm");
  const std::string point = f.points["temperature"].point_id();
  AlarmRule rule;
  {
    Call call(f.tenant);
    CreateAlarmRuleRequest r;
    r.set_idempotency_key(NextKey());
    r.set_point_id(point);
    r.mutable_rule()->set_name("oil too hot");
    r.mutable_rule()->set_kind(ALARM_RULE_KIND_THRESHOLD);
    r.mutable_rule()->set_severity(SEVERITY_CRITICAL);
    r.mutable_rule()->set_high(90);
    r.mutable_rule()->set_hysteresis(5);
    grpc::Status s = server.stub().CreateAlarmRule(&call.context, r, &rule);
    INFO(s.error_message());
    REQUIRE(s.ok());
  }
  // A dashboard watching the device.
  std::vector<LiveUpdate> seen;
  std::mutex seen_mu;
  Call watch(f.tenant, "analyst", "", std::chrono::seconds(8));
  WatchLiveRequest wr;
  wr.add_device_ids(f.device.device_id());
  auto reader = server.stub().WatchLive(&watch.context, wr);
  std::thread watcher([&] {
    LiveUpdate u;
    while (reader->Read(&u)) {
      std::lock_guard<std::mutex> lock(seen_mu);
      seen.push_back(u);
    }
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(700));  // the watch is reading before samples come

  const int64_t now = NowMicros();
  auto send = [&](int64_t t, double v) {
    IngestRequest r;
    *r.add_series() = Series(f.device.device_id(), "temperature", {{t, v}});
    IngestOk(server, f.tenant, r);
  };
  send(now - 50 * kSecond, 80);
  send(now - 40 * kSecond, 95);  // raised
  send(now - 30 * kSecond, 88);  // inside the hysteresis band: still raised
  auto list = [&](bool include_cleared) {
    Call call(f.tenant, "analyst");
    ListAlarmsRequest r;
    r.set_include_cleared(include_cleared);
    ListAlarmsResponse out;
    REQUIRE(server.stub().ListAlarms(&call.context, r, &out).ok());
    return out;
  };
  ListAlarmsResponse open = list(false);
  REQUIRE(open.alarms_size() == 1);
  const Alarm raised = open.alarms(0);
  CHECK(raised.state() == ALARM_STATE_ACTIVE);
  CHECK(raised.value() == 95);
  CHECK(raised.severity() == SEVERITY_CRITICAL);
  {
    Call call(f.tenant, "clerk");
    AcknowledgeAlarmRequest r;
    r.set_alarm_id(raised.alarm_id());
    r.set_comment("cooling pump checked");
    Alarm acked;
    REQUIRE(server.stub().AcknowledgeAlarm(&call.context, r, &acked).ok());
    CHECK(acked.state() == ALARM_STATE_ACKNOWLEDGED);
    Call again(f.tenant, "clerk");
    CHECK(server.stub().AcknowledgeAlarm(&again.context, r, &acked).error_code() ==
          grpc::StatusCode::FAILED_PRECONDITION);
    Call other("tenant-alarm-other", "clerk");
    CHECK(server.stub().AcknowledgeAlarm(&other.context, r, &acked).error_code() == grpc::StatusCode::NOT_FOUND);
  }
  send(now - 20 * kSecond, 84);  // below high - hysteresis: cleared
  CHECK(list(false).alarms_size() == 0);
  ListAlarmsResponse all = list(true);
  REQUIRE(all.alarms_size() == 1);
  CHECK(all.alarms(0).state() == ALARM_STATE_CLEARED);
  REQUIRE(all.alarms(0).history_size() == 3);
  CHECK(all.alarms(0).history(1).by() == "user@" + f.tenant);

  // The events, through the outbox, on ptd.telemetry.events.
  auto redis = ptd::redis::Client::Create({.url = ptd::testing::GetInfra().redis_url});
  REQUIRE(redis.ok());
  std::vector<std::string> types;
  REQUIRE(ptd::testing::WaitFor([&] {
    types.clear();
    auto entries = (*redis)->Command({"XRANGE", "ptd.telemetry.events", "-", "+"});
    if (!entries.ok()) return false;
    for (const auto& e : entries->elements) {
      const auto& fields = e.elements[1].elements;
      std::string type, aggregate;
      for (size_t i = 0; i + 1 < fields.size(); i += 2) {
        if (fields[i].str == "type") type = fields[i + 1].str;
        if (fields[i].str == "aggregate_id") aggregate = fields[i + 1].str;
      }
      if (aggregate == raised.alarm_id()) types.push_back(type);
    }
    return types.size() == 3;
  }));
  CHECK(types == std::vector<std::string>{"ptd.telemetry.v1.AlarmRaised", "ptd.telemetry.v1.AlarmAcknowledged",
                                          "ptd.telemetry.v1.AlarmCleared"});

  // The dashboard saw the values and the alarm's three changes.
  REQUIRE(ptd::testing::WaitFor(
      [&] {
        std::lock_guard<std::mutex> lock(seen_mu);
        int values = 0, alarms = 0;
        for (const auto& u : seen) {
          values += u.values_size();
          alarms += u.alarms_size();
        }
        return values == 4 && alarms == 3;
      },
      std::chrono::seconds(5)));
  watch.context.TryCancel();
  watcher.join();
}

TEST_CASE("a no-data rule raises when a point stops reporting and clears when it reports again") {
  TelemetryServer server;
  Factory f(server, "tenant-nodata");
  // A point expected every 100 ms; no data for 3 intervals raises.
  DataPoint fast = f.AddPoint(server, "vibration", POINT_KIND_SENSOR, "mm/s", 100);
  {
    Call call(f.tenant);
    CreateAlarmRuleRequest r;
    r.set_idempotency_key(NextKey());
    r.set_point_id(fast.point_id());
    r.mutable_rule()->set_name("vibration sensor silent");
    r.mutable_rule()->set_kind(ALARM_RULE_KIND_NO_DATA);
    r.mutable_rule()->set_severity(SEVERITY_WARNING);
    AlarmRule out;
    grpc::Status s = server.stub().CreateAlarmRule(&call.context, r, &out);
    INFO(s.error_message());
    REQUIRE(s.ok());
    CHECK(out.missed_intervals() == 3);
  }
  auto open = [&] {
    Call call(f.tenant, "analyst");
    ListAlarmsRequest r;
    ListAlarmsResponse out;
    REQUIRE(server.stub().ListAlarms(&call.context, r, &out).ok());
    return out.alarms_size();
  };
  IngestRequest r;
  *r.add_series() = Series(f.device.device_id(), "vibration", {{NowMicros(), 2.5}});
  IngestOk(server, f.tenant, r);
  CHECK(ptd::testing::WaitFor([&] { return open() == 1; }, std::chrono::seconds(10)));
  IngestRequest again;
  *again.add_series() = Series(f.device.device_id(), "vibration", {{NowMicros(), 2.6}});
  IngestOk(server, f.tenant, again);
  CHECK(open() == 0);
}

TEST_CASE("retention: raw days past --raw-retention are dropped whole, rollups kept as long as theirs") {
  const std::string db = ptd::testing::FreshDatabase("retention");
  const int64_t now = NowMicros();
  const int64_t old_time = now - 50 * kHour;  // two days back
  std::string point;
  std::string tenant = "tenant-retention";
  {
    TelemetryServer server({"--late-window=72h"}, db);
    Factory f(server, tenant);
    point = f.points["temperature"].point_id();
    IngestRequest r;
    *r.add_series() = Series(f.device.device_id(), "temperature", {{old_time, 20}, {now - kSecond, 21}});
    CHECK(IngestOk(server, tenant, r).accepted() == 2);
    CHECK(Raw(server, tenant, point, old_time - kHour, old_time + kHour).size() == 1);
  }
  TelemetryServer server({"--late-window=12h", "--raw-retention=24h", "--hour-retention=24h"}, db);
  // Housekeeping runs at start: the day of the old sample goes, today's stays.
  CHECK(ptd::testing::WaitFor([&] { return Raw(server, tenant, point, old_time - kHour, old_time + kHour).empty(); }));
  CHECK(Raw(server, tenant, point, now - kHour, now).size() == 1);
  // Its minute rollup is still there (400 days by default); its hourly one is gone.
  CHECK(Buckets(server, tenant, point, old_time - kHour, old_time + kHour, RESOLUTION_MINUTE).buckets_size() == 1);
  CHECK(Buckets(server, tenant, point, old_time - kHour, old_time + kHour, RESOLUTION_HOUR).buckets_size() == 0);
}

TEST_CASE("batches in flight on one stream are answered each as if stored one after the other") {
  TelemetryServer server;
  Factory f(server, "tenant-inflight");
  const int64_t t0 = NowMicros() - kHour;
  auto samples = [&](int from, int to) {
    std::vector<std::pair<int64_t, double>> out;
    for (int i = from; i <= to; ++i) out.push_back({t0 + i * kSecond, static_cast<double>(i)});
    return out;
  };
  std::vector<IngestRequest> batches(4);
  *batches[0].add_series() = Series(f.device.device_id(), "temperature", samples(1, 10));
  *batches[1].add_series() = Series(f.device.device_id(), "temperature", samples(6, 15));  // 6..10 sent before
  *batches[2].add_series() = Series(f.device.device_id(), "temperature", {{t0 + 16 * kSecond, 16}, {t0, 9999}});
  batches[3] = batches[1];  // all of it stored already
  for (size_t i = 0; i < batches.size(); ++i) batches[i].set_batch_id("b" + std::to_string(i));

  Call call(f.tenant, "operator");
  auto stream = server.stub().StreamIngest(&call.context);
  for (const IngestRequest& b : batches) REQUIRE(stream->Write(b));  // all in flight before any answer is read
  stream->WritesDone();
  std::vector<IngestResponse> answers;
  IngestResponse r;
  while (stream->Read(&r)) answers.push_back(r);
  grpc::Status status = stream->Finish();
  INFO(status.error_message());
  REQUIRE(status.ok());
  REQUIRE(answers.size() == 4);
  struct Expected {
    int64_t accepted, duplicates;
    int rejected;
  };
  std::vector<Expected> expected = {{10, 0, 0}, {5, 5, 0}, {1, 0, 1}, {0, 10, 0}};
  for (size_t i = 0; i < answers.size(); ++i) {
    INFO("batch " << i);
    CHECK(answers[i].batch_id() == "b" + std::to_string(i));
    CHECK(answers[i].accepted() == expected[i].accepted);
    CHECK(answers[i].duplicates() == expected[i].duplicates);
    CHECK(answers[i].rejected_size() == expected[i].rejected);
  }
  std::vector<RawSample> stored = Raw(server, f.tenant, f.points["temperature"].point_id(), t0, t0 + kHour);
  REQUIRE(stored.size() == 16);
  CHECK(stored[5].value() == 6);  // the first value sent for t0 + 6 s, from batch 0
}

}  // namespace
