// telemetry_ingest_load: ingest end to end against a running ptd-telemetry — samples streamed by edge-gateway
// style clients (StreamIngest, several batches in flight per stream), each batch acknowledged only after it is
// durable in PostgreSQL — then the query of one day of 1-second data of one point at 1-minute resolution.
//
//   build/bench/telemetry/telemetry_ingest_load --target=127.0.0.1:50056 --token=T [--samples=2000000]
//       [--devices=10] [--points=10] [--batch=10000] [--streams=2] [--in-flight=4] [--queries=200]
//       [--csv=FILE]
//
// Registers a plant, a line, --devices devices with --points data points each (one series per point), then
// sends --samples samples: 1-second data of every series, ending an hour ago, in batches of --batch samples
// (every series' next batch/series samples), spread over --streams streams. --csv writes the same samples as
// CSV rows "device_id,point,time_us,value", one row per sample, for the comparison with psql \copy.
// Prints one line per phase: ingest points/s, and query latency percentiles.
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "google/protobuf/util/time_util.h"
#include "ptd/telemetry/v1/telemetry.grpc.pb.h"

using namespace ptd::telemetry::v1;
using Clock = std::chrono::steady_clock;

namespace {

std::string Flag(int argc, char** argv, const char* name, const char* fallback) {
  std::string prefix = std::string("--") + name + "=";
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], prefix.c_str(), prefix.size()) == 0) return argv[i] + prefix.size();
  }
  return fallback;
}

[[noreturn]] void Die(const std::string& what, const grpc::Status& s) {
  std::fprintf(stderr, "%s: %d %s\n", what.c_str(), static_cast<int>(s.error_code()), s.error_message().c_str());
  std::exit(1);
}

struct Ctx {
  grpc::ClientContext context;
  Ctx(const std::string& token, const std::string& tenant, int seconds = 30) {
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(seconds));
    context.AddMetadata("x-ptd-internal-token", token);
    context.AddMetadata("x-ptd-tenant", tenant);
    context.AddMetadata("x-ptd-subject", "bench");
    context.AddMetadata("x-ptd-roles", "admin");
  }
};

int64_t NowMicros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

double Value(int64_t series, int64_t i) { return static_cast<double>((series * 7919 + i * 31) % 100000) / 100.0; }

}  // namespace

int main(int argc, char** argv) {
  const std::string target = Flag(argc, argv, "target", "127.0.0.1:50056");
  const std::string token = Flag(argc, argv, "token", "bench");
  const int64_t samples = std::atoll(Flag(argc, argv, "samples", "2000000").c_str());
  const int devices = std::atoi(Flag(argc, argv, "devices", "10").c_str());
  const int points = std::atoi(Flag(argc, argv, "points", "10").c_str());
  const int64_t batch = std::atoll(Flag(argc, argv, "batch", "10000").c_str());
  const int streams = std::atoi(Flag(argc, argv, "streams", "2").c_str());
  const int in_flight = std::atoi(Flag(argc, argv, "in-flight", "4").c_str());
  const int queries = std::atoi(Flag(argc, argv, "queries", "200").c_str());
  const std::string csv = Flag(argc, argv, "csv", "");
  const std::string tenant = "bench-" + std::to_string(NowMicros());
  const int64_t series_count = int64_t{devices} * points;
  const int64_t per_series = samples / series_count;
  const int64_t per_batch_per_series = std::max<int64_t>(1, batch / series_count);
  const int64_t batches = (per_series + per_batch_per_series - 1) / per_batch_per_series;

  auto channel = grpc::CreateChannel(target, grpc::InsecureChannelCredentials());
  auto stub = TelemetryService::NewStub(channel);

  // ---- registry ----
  Plant plant;
  {
    Ctx c(token, tenant);
    CreatePlantRequest r;
    r.set_idempotency_key("plant");
    r.mutable_plant()->set_code("BENCH");
    r.mutable_plant()->set_name("bench plant");
    if (auto s = stub->CreatePlant(&c.context, r, &plant); !s.ok()) Die("CreatePlant", s);
  }
  Line line;
  {
    Ctx c(token, tenant);
    CreateLineRequest r;
    r.set_idempotency_key("line");
    r.set_plant_id(plant.plant_id());
    r.mutable_line()->set_code("L");
    r.mutable_line()->set_name("bench line");
    if (auto s = stub->CreateLine(&c.context, r, &line); !s.ok()) Die("CreateLine", s);
  }
  std::vector<std::string> device_ids;
  for (int d = 0; d <= devices; ++d) {  // the last one holds the query point
    Ctx c(token, tenant);
    CreateDeviceRequest r;
    r.set_idempotency_key("device-" + std::to_string(d));
    r.set_line_id(line.line_id());
    r.mutable_device()->set_code("dev-" + std::to_string(d));
    r.mutable_device()->set_name("device " + std::to_string(d));
    Device out;
    if (auto s = stub->CreateDevice(&c.context, r, &out); !s.ok()) Die("CreateDevice", s);
    device_ids.push_back(out.device_id());
    for (int p = 0; p < (d == devices ? 1 : points); ++p) {
      Ctx pc(token, tenant);
      CreateDataPointRequest pr;
      pr.set_idempotency_key("point-" + std::to_string(d) + "-" + std::to_string(p));
      pr.set_device_id(out.device_id());
      pr.mutable_point()->set_code("p" + std::to_string(p));
      pr.mutable_point()->set_kind(POINT_KIND_SENSOR);
      pr.mutable_point()->set_unit("bar");
      pr.mutable_point()->set_expected_interval_ms(1000);
      DataPoint dp;
      if (auto s = stub->CreateDataPoint(&pc.context, pr, &dp); !s.ok()) Die("CreateDataPoint", s);
    }
  }

  const int64_t start_us = (NowMicros() - 3600 * 1'000'000LL) / 1'000'000 * 1'000'000 - per_series * 1'000'000;
  auto make_batch = [&](int64_t b) {
    IngestRequest r;
    r.set_batch_id(std::to_string(b));
    const int64_t first = b * per_batch_per_series;
    const int64_t last = std::min(per_series, first + per_batch_per_series);
    for (int64_t s = 0; s < series_count; ++s) {
      SeriesSamples* out = r.add_series();
      out->set_device_id(device_ids[s / points]);
      out->set_point("p" + std::to_string(s % points));
      for (int64_t i = first; i < last; ++i) {
        out->add_time_unix_us(start_us + i * 1'000'000);
        out->add_values(Value(s, i));
      }
    }
    return r;
  };

  if (!csv.empty()) {
    FILE* f = std::fopen(csv.c_str(), "w");
    if (f == nullptr) {
      std::perror(csv.c_str());
      return 1;
    }
    char buf[64];
    for (int64_t s = 0; s < series_count; ++s) {
      for (int64_t i = 0; i < per_series; ++i) {
        auto [end, ec] = std::to_chars(buf, buf + sizeof buf, Value(s, i));
        *end = '\0';
        std::fprintf(f, "%s,p%lld,%lld,%s\n", device_ids[s / points].c_str(), static_cast<long long>(s % points),
                     static_cast<long long>(start_us + i * 1'000'000), buf);
      }
    }
    std::fclose(f);
  }

  if (samples > 0) {
    // ---- ingest: batches spread over the streams, each stream keeping up to --in-flight unacknowledged ----
    std::atomic<int64_t> next{0}, accepted{0}, duplicates{0}, rejected{0};
    std::atomic<bool> failed{false};
    std::vector<std::thread> threads;
    auto started = Clock::now();
    for (int t = 0; t < streams; ++t) {
      threads.emplace_back([&] {
        Ctx c(token, tenant, 3600);
        c.context.set_deadline(std::chrono::system_clock::now() + std::chrono::hours(1));
        auto stream = stub->StreamIngest(&c.context);
        std::atomic<int64_t> sent{0}, acked{0};
        std::atomic<bool> ended{false};
        std::thread reader([&] {
          IngestResponse response;
          while (stream->Read(&response)) {
            accepted += response.accepted();
            duplicates += response.duplicates();
            rejected += response.rejected_size();
            acked++;
          }
          ended = true;
        });
        while (true) {
          int64_t b = next++;
          if (b >= batches) break;
          IngestRequest r = make_batch(b);
          while (sent - acked >= in_flight && !ended) std::this_thread::sleep_for(std::chrono::microseconds(200));
          if (ended || !stream->Write(r)) break;
          sent++;
        }
        stream->WritesDone();
        reader.join();
        grpc::Status s = stream->Finish();
        if (!s.ok()) {
          std::fprintf(stderr, "stream: %s\n", s.error_message().c_str());
          failed = true;
        }
      });
    }
    for (auto& t : threads) t.join();
    double seconds = std::chrono::duration<double>(Clock::now() - started).count();
    if (failed) return 1;
    std::printf(
        "ingest: points_per_s=%.0f samples=%lld seconds=%.2f duplicates=%lld rejected=%lld series=%lld "
        "batch=%lld streams=%d in_flight=%d\n",
        static_cast<double>(accepted) / seconds, static_cast<long long>(accepted.load()), seconds,
        static_cast<long long>(duplicates.load()), static_cast<long long>(rejected.load()),
        static_cast<long long>(series_count), static_cast<long long>(per_batch_per_series * series_count), streams,
        in_flight);
    std::fflush(stdout);
  }
  if (queries == 0) return 0;

  // ---- query: one day of 1-second data of one point, at 1-minute resolution ----
  const int64_t day_end = (NowMicros() - 3600 * 1'000'000LL) / 60'000'000 * 60'000'000;
  const int64_t day_start = day_end - 86400LL * 1'000'000;
  std::string query_point;
  {
    Ctx c(token, tenant);
    ListDataPointsRequest r;
    r.set_device_id(device_ids.back());
    ListDataPointsResponse out;
    if (auto s = stub->ListDataPoints(&c.context, r, &out); !s.ok()) Die("ListDataPoints", s);
    query_point = out.points(0).point_id();
  }
  for (int64_t t0 = day_start; t0 < day_end; t0 += 10000 * 1'000'000LL) {
    IngestRequest r;
    SeriesSamples* s = r.add_series();
    s->set_device_id(device_ids.back());
    s->set_point("p0");
    for (int64_t t = t0; t < std::min<int64_t>(day_end, t0 + 10000 * 1'000'000LL); t += 1'000'000) {
      s->add_time_unix_us(t);
      s->add_values(Value(0, t / 1'000'000));
    }
    Ctx c(token, tenant);
    IngestResponse out;
    if (auto st = stub->Ingest(&c.context, r, &out); !st.ok()) Die("Ingest", st);
  }
  std::vector<double> latencies_ms;
  int buckets = 0;
  for (int q = 0; q < queries; ++q) {
    Ctx c(token, tenant);
    QuerySeriesRequest r;
    r.set_point_id(query_point);
    *r.mutable_start_time() = google::protobuf::util::TimeUtil::MicrosecondsToTimestamp(day_start);
    *r.mutable_end_time() = google::protobuf::util::TimeUtil::MicrosecondsToTimestamp(day_end);
    r.set_resolution(RESOLUTION_MINUTE);
    QuerySeriesResponse out;
    auto t0 = Clock::now();
    if (auto s = stub->QuerySeries(&c.context, r, &out); !s.ok()) Die("QuerySeries", s);
    latencies_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
    buckets = out.buckets_size();
  }
  std::sort(latencies_ms.begin(), latencies_ms.end());
  auto pct = [&](double p) { return latencies_ms[static_cast<size_t>(p * (latencies_ms.size() - 1))]; };
  std::printf("query: one day of 1 s data at 1 min: buckets=%d queries=%d p50_ms=%.2f p99_ms=%.2f max_ms=%.2f\n",
              buckets, queries, pct(0.5), pct(0.99), latencies_ms.back());
  return 0;
}
