#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/util/time_util.h"
#include "libs/core/log.h"
#include "libs/core/request.h"
#include "libs/core/status.h"
#include "libs/server/caller.h"
#include "services/telemetry/checks.h"
#include "services/telemetry/domain/ingest.h"
#include "services/telemetry/live_feed.h"
#include "services/telemetry/store/registry_store.h"
#include "services/telemetry/store/sample_store.h"
#include "services/telemetry/telemetry_service.h"

// Reading: series at a resolution, the latest values, the live feed.
namespace ptd::telemetry {
namespace {

using google::protobuf::util::TimeUtil;

constexpr int64_t kMaxRawSamples = 200'000;

}  // namespace

grpc::Status TelemetryService::QuerySeries(grpc::ServerContext* context, const v1::QuerySeriesRequest* request,
                                           v1::QuerySeriesResponse* response) {
  auto caller = CallerOf(*context);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  FieldViolations v;
  CheckId("point_id", request->point_id(), v);
  bool range_ok = CheckRange(request->start_time(), request->has_start_time(), "start_time", request->end_time(),
                             request->has_end_time(), "end_time", v);
  if (!v1::Resolution_IsValid(request->resolution())) v.Add("resolution", "is not a Resolution");
  const int64_t start = range_ok ? Micros(request->start_time()) : 0;
  const int64_t end = range_ok ? Micros(request->end_time()) : 0;
  if (range_ok && request->resolution() == v1::RESOLUTION_RAW && end - start > kMicrosPerDay) {
    v.Add("resolution", "RAW is for ranges of at most one day; use MINUTE or AUTO for longer ones");
  }
  if (!v.empty()) return ToGrpcStatus(v.ToStatus());

  Resolution resolution = PickResolution(start, end);
  switch (request->resolution()) {
    case v1::RESOLUTION_RAW:
      resolution = Resolution::kRaw;
      break;
    case v1::RESOLUTION_MINUTE:
      resolution = Resolution::kMinute;
      break;
    case v1::RESOLUTION_HOUR:
      resolution = Resolution::kHour;
      break;
    case v1::RESOLUTION_DAY:
      resolution = Resolution::kDay;
      break;
    default:
      break;
  }
  if (resolution == Resolution::kMinute && end - start > 31 * kMicrosPerDay) {
    return ToGrpcStatus(InvalidField("resolution", "MINUTE is for ranges of at most 31 days; use HOUR or AUTO"));
  }
  absl::Status s = pool_.InTransaction([&](pqxx::work& tx) {
    if (!RegistryStore::GetPoint(tx, caller->tenant_id, request->point_id())) {
      return absl::NotFoundError(absl::StrCat("no data point ", request->point_id()));
    }
    response->Clear();
    if (resolution == Resolution::kRaw) {
      response->set_resolution(v1::RESOLUTION_RAW);
      absl::StatusOr<std::vector<SampleStore::RawRow>> rows =
          SampleStore::ReadRaw(tx, request->point_id(), start, end, kMaxRawSamples);
      if (!rows.ok()) return rows.status();
      for (const auto& r : *rows) {
        v1::RawSample* out = response->add_samples();
        out->set_time_unix_us(r.ts_us);
        out->set_value(r.value);
        out->set_quality(static_cast<v1::Quality>(r.quality));
      }
      return absl::OkStatus();
    }
    const char* table = resolution == Resolution::kMinute ? "rollup_1m"
                        : resolution == Resolution::kHour ? "rollup_1h"
                                                          : "rollup_1d";
    response->set_resolution(resolution == Resolution::kMinute ? v1::RESOLUTION_MINUTE
                             : resolution == Resolution::kHour ? v1::RESOLUTION_HOUR
                                                               : v1::RESOLUTION_DAY);
    for (const auto& b :
         SampleStore::ReadRollup(tx, table, request->point_id(), FloorTo(start, StepOf(resolution)), end)) {
      v1::Bucket* out = response->add_buckets();
      *out->mutable_start_time() = TimeUtil::MicrosecondsToTimestamp(b.bucket_us);
      out->set_min(b.aggregate.min);
      out->set_max(b.aggregate.max);
      out->set_avg(b.aggregate.avg());
      out->set_last(b.aggregate.last_value);
      out->set_count(b.aggregate.count);
    }
    return absl::OkStatus();
  });
  if (!s.ok()) return Answer("QuerySeries", s);
  return grpc::Status::OK;
}

grpc::Status TelemetryService::GetLatest(grpc::ServerContext* context, const v1::GetLatestRequest* request,
                                         v1::GetLatestResponse* response) {
  auto caller = CallerOf(*context);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  FieldViolations v;
  if (request->device_id().empty() == (request->point_ids_size() == 0)) {
    v.Add("device_id", "give either device_id or point_ids");
  } else if (!request->device_id().empty()) {
    CheckId("device_id", request->device_id(), v);
  } else {
    if (request->point_ids_size() > 1000) v.Add("point_ids", "at most 1000 points");
    for (int i = 0; i < request->point_ids_size() && i < 1000; ++i) {
      CheckId(absl::StrCat("point_ids[", i, "]"), request->point_ids(i), v);
    }
  }
  if (!v.empty()) return ToGrpcStatus(v.ToStatus());
  // The points must be the caller's: resolved in PostgreSQL first, so Redis is only asked for the tenant's own.
  auto points = pool_.InTransaction([&](pqxx::work& tx) -> absl::StatusOr<std::vector<PointRow>> {
    if (!request->device_id().empty()) {
      if (!RegistryStore::GetDevice(tx, caller->tenant_id, request->device_id())) {
        return absl::NotFoundError(absl::StrCat("no device ", request->device_id()));
      }
      return RegistryStore::PointsOfDevices(tx, caller->tenant_id, {request->device_id()});
    }
    return RegistryStore::PointsByIds(tx, caller->tenant_id,
                                      {request->point_ids().begin(), request->point_ids().end()});
  });
  if (!points.ok()) return Answer("GetLatest", points.status());
  std::vector<std::string> ids;
  for (const PointRow& p : *points) ids.push_back(p.point_id);
  absl::flat_hash_map<std::string, v1::LatestValue> found;
  if (auto cached = live_.Latest(caller->tenant_id, ids); cached.ok()) {
    for (auto& value : *cached) found[value.point_id()] = std::move(value);
  } else {
    log::Warn("latest values not read from Redis; reading PostgreSQL", {{"status", cached.status().ToString()}});
  }
  std::vector<std::string> missing;
  for (const std::string& id : ids) {
    if (!found.contains(id)) missing.push_back(id);
  }
  if (!missing.empty()) {
    auto states = pool_.InTransaction([&](pqxx::work& tx) -> absl::StatusOr<std::vector<PointState>> {
      return SampleStore::ReadStates(tx, missing);
    });
    if (!states.ok()) return Answer("GetLatest", states.status());
    for (const PointState& st : *states) {
      v1::LatestValue& value = found[st.point_id];
      value.set_point_id(st.point_id);
      value.set_time_unix_us(st.last_ts_us);
      value.set_value(st.last_value);
      value.set_quality(static_cast<v1::Quality>(st.last_quality));
    }
  }
  for (const PointRow& p : *points) {
    auto it = found.find(p.point_id);
    if (it == found.end()) continue;
    v1::LatestValue* out = response->add_values();
    *out = it->second;
    out->set_device_id(p.device_id);
    out->set_point(p.code);
  }
  return grpc::Status::OK;
}

grpc::Status TelemetryService::WatchLive(grpc::ServerContext* context, const v1::WatchLiveRequest* request,
                                         grpc::ServerWriter<v1::LiveUpdate>* writer) {
  auto caller = CallerOf(*context);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  FieldViolations v;
  CheckDeviceIds(request->device_ids(), "device_ids", v);
  if (!v.empty()) return ToGrpcStatus(v.ToStatus());
  if (request->device_ids_size() > 0) {
    absl::Status s = pool_.InTransaction(
        [&](pqxx::work& tx) { return CheckDevicesExist(tx, caller->tenant_id, request->device_ids(), "device_ids"); });
    // Another tenant's device is reported like a device that does not exist.
    if (!s.ok()) return Answer("WatchLive", s);
  }
  absl::flat_hash_set<std::string> devices(request->device_ids().begin(), request->device_ids().end());
  absl::Status s = live_.Watch(caller->tenant_id, devices, *context, *writer);
  if (!s.ok()) return Answer("WatchLive", s);
  return grpc::Status::OK;
}

}  // namespace ptd::telemetry
