#include "services/telemetry/telemetry_service.h"

#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <deque>
#include <limits>
#include <mutex>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "google/protobuf/util/time_util.h"
#include "libs/core/ids.h"
#include "libs/core/log.h"
#include "libs/core/request.h"
#include "libs/core/status.h"
#include "libs/server/caller.h"
#include "services/telemetry/alarm_engine.h"
#include "services/telemetry/domain/alarms.h"
#include "services/telemetry/domain/energy.h"
#include "services/telemetry/domain/ingest.h"
#include "services/telemetry/domain/oee.h"
#include "services/telemetry/ingest.h"
#include "services/telemetry/live_feed.h"
#include "services/telemetry/store/alarm_store.h"
#include "services/telemetry/store/registry_store.h"
#include "services/telemetry/store/sample_store.h"

namespace ptd::telemetry {
namespace {

using google::protobuf::util::TimeUtil;

constexpr char kAdminRole[] = "admin";
constexpr int64_t kMaxRawSamples = 200'000;
constexpr int64_t kMaxReadSamplesPerPoint = 5'000'000;
constexpr int64_t kMaxSamplesPerCommit = 200'000;  // StreamIngest: batches stored together, at most this many samples

// ---- validation helpers ----

bool IsCode(const std::string& s) {
  if (s.empty() || s.size() > 64) return false;
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return absl::ascii_isalnum(c) || c == '_' || c == '-' || c == '.'; });
}

void CheckCode(const std::string& field, const std::string& value, FieldViolations& v) {
  if (!IsCode(value)) v.Add(field, "must be 1 to 64 letters, digits, '_', '-' or '.'");
}

void CheckName(const std::string& field, const std::string& value, FieldViolations& v) {
  if (value.empty() || value.size() > 200) v.Add(field, "must be 1 to 200 bytes");
}

bool CheckFinite(const std::string& field, double value, FieldViolations& v) {
  if (std::isfinite(value)) return true;
  v.Add(field, "must be a finite number");
  return false;
}

bool ValidTimestamp(const google::protobuf::Timestamp& t) {
  return t.seconds() >= TimeUtil::kTimestampMinSeconds && t.seconds() <= TimeUtil::kTimestampMaxSeconds &&
         t.nanos() >= 0 && t.nanos() <= 999'999'999;
}

// A [start, end) range of timestamps, both required.
bool CheckRange(const google::protobuf::Timestamp& start, bool has_start, const char* start_field,
                const google::protobuf::Timestamp& end, bool has_end, const char* end_field, FieldViolations& v) {
  if (!has_start) v.Add(start_field, "is required");
  if (!has_end) v.Add(end_field, "is required");
  if (!has_start || !has_end) return false;
  if (!ValidTimestamp(start)) v.Add(start_field, "is not a valid timestamp (years 0001 to 9999)");
  if (!ValidTimestamp(end)) v.Add(end_field, "is not a valid timestamp (years 0001 to 9999)");
  if (!v.empty()) return false;
  if (end <= start) {
    v.Add(end_field, "must be after the start");
    return false;
  }
  return true;
}

int64_t Micros(const google::protobuf::Timestamp& t) { return TimeUtil::TimestampToMicroseconds(t); }

absl::Status NeedsAdmin(const Caller& caller) {
  if (caller.HasRole(kAdminRole)) return absl::OkStatus();
  return absl::PermissionDeniedError("changing the registry and alarm rules needs the role admin");
}

// Creates an object once per idempotency key: `make` inserts it (inside the transaction) and returns its id,
// `load` reads it back; a retry with the same key and request returns the first object.
template <typename Obj, typename Make, typename Load>
absl::StatusOr<Obj> CreateOnce(pg::Pool& pool, const Caller& caller, const char* method, const std::string& key,
                               const google::protobuf::Message& request, Make make, Load load) {
  const std::string hash = RequestHash(request);
  return pool.InTransaction([&](pqxx::work& tx) -> absl::StatusOr<Obj> {
    if (auto earlier = RegistryStore::FindCreate(tx, caller.tenant_id, method, key)) {
      if (earlier->request_sha256 != hash) return ReusedKeyError();
      std::optional<Obj> obj = load(tx, earlier->object_id);
      if (!obj) return absl::InternalError("the object of an earlier create is gone");
      return *obj;
    }
    absl::StatusOr<std::string> id = make(tx);
    if (!id.ok()) return id.status();
    RegistryStore::RecordCreate(tx, caller.tenant_id, method, key, hash, *id);
    std::optional<Obj> obj = load(tx, *id);
    if (!obj) return absl::InternalError("the object just made is gone");
    return *obj;
  });
}

Tariff TariffOf(const v1::Plant& plant) {
  Tariff t;
  t.utc_offset_minutes = plant.utc_offset_minutes();
  if (!plant.has_tariff()) {
    t.windows = {{0, 24 * 60, TouPeriod::kFlat}};
    return t;
  }
  for (const auto& w : plant.tariff().windows()) {
    TouPeriod p = w.period() == v1::TOU_PERIOD_VALLEY ? TouPeriod::kValley
                  : w.period() == v1::TOU_PERIOD_PEAK ? TouPeriod::kPeak
                                                      : TouPeriod::kFlat;
    t.windows.push_back({w.start_minute(), w.end_minute(), p});
  }
  t.price_minor_per_mwh[static_cast<int>(TouPeriod::kValley)] = plant.tariff().valley_price_minor_per_mwh();
  t.price_minor_per_mwh[static_cast<int>(TouPeriod::kFlat)] = plant.tariff().flat_price_minor_per_mwh();
  t.price_minor_per_mwh[static_cast<int>(TouPeriod::kPeak)] = plant.tariff().peak_price_minor_per_mwh();
  return t;
}

void ValidatePlant(const v1::Plant& p, FieldViolations& v) {
  CheckCode("plant.code", p.code(), v);
  CheckName("plant.name", p.name(), v);
  if (p.utc_offset_minutes() < -14 * 60 || p.utc_offset_minutes() > 14 * 60) {
    v.Add("plant.utc_offset_minutes", "must be within ±840 minutes");
  }
  if (!p.has_tariff()) return;
  const v1::Tariff& t = p.tariff();
  if (t.currency().size() != 3 || !std::all_of(t.currency().begin(), t.currency().end(), absl::ascii_isupper)) {
    v.Add("plant.tariff.currency", "must be an ISO 4217 code such as CNY");
  }
  for (int i = 0; i < t.windows_size(); ++i) {
    if (t.windows(i).period() == v1::TOU_PERIOD_UNSPECIFIED) {
      v.Add(absl::StrCat("plant.tariff.windows[", i, "].period"), "must be VALLEY, FLAT or PEAK");
    }
  }
  if (absl::Status s = ValidateTariff(TariffOf(p)); !s.ok()) v.Add("plant.tariff", std::string(s.message()));
}

void ToProto(const Oee& o, const std::string& device_id, v1::Oee* out) {
  out->set_device_id(device_id);
  out->set_run_seconds(o.run_us / kMicrosPerSecond);
  out->set_planned_seconds(o.planned_us / kMicrosPerSecond);
  out->set_total_count(o.total);
  out->set_good_count(o.good);
  out->set_availability(o.availability);
  out->set_performance(o.performance);
  out->set_quality(o.quality);
  out->set_oee(o.oee);
}

std::vector<Sample> ToSamples(const std::vector<SampleStore::RawRow>& rows) {
  std::vector<Sample> out;
  out.reserve(rows.size());
  for (const auto& r : rows) out.push_back({r.ts_us, r.value});
  return out;
}

}  // namespace

// ---- registry ----

grpc::Status TelemetryService::CreatePlant(grpc::ServerContext* context, const v1::CreatePlantRequest* request,
                                           v1::Plant* response) {
  auto caller = CallerOf(*context);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  FieldViolations v;
  CheckIdempotencyKey(request->idempotency_key(), v);
  if (!request->has_plant())
    v.Add("plant", "is required");
  else
    ValidatePlant(request->plant(), v);
  if (!v.empty()) return ToGrpcStatus(v.ToStatus());
  if (absl::Status s = NeedsAdmin(*caller); !s.ok()) return ToGrpcStatus(s);
  auto plant = CreateOnce<v1::Plant>(
      pool_, *caller, "CreatePlant", request->idempotency_key(), *request,
      [&](pqxx::work& tx) -> absl::StatusOr<std::string> {
        v1::Plant p = request->plant();
        p.set_plant_id(NewId());
        RegistryStore::InsertPlant(tx, caller->tenant_id, p);
        return p.plant_id();
      },
      [&](pqxx::work& tx, const std::string& id) { return RegistryStore::GetPlant(tx, caller->tenant_id, id); });
  if (!plant.ok()) return Answer("CreatePlant", plant.status());
  *response = *plant;
  log::Info("plant created", {{"plant_id", plant->plant_id()}, {"code", plant->code()}});
  return grpc::Status::OK;
}

grpc::Status TelemetryService::GetPlant(grpc::ServerContext* context, const v1::GetPlantRequest* request,
                                        v1::Plant* response) {
  auto caller = CallerOf(*context);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  FieldViolations v;
  CheckId("plant_id", request->plant_id(), v);
  if (!v.empty()) return ToGrpcStatus(v.ToStatus());
  auto plant = pool_.InTransaction([&](pqxx::work& tx) -> absl::StatusOr<v1::Plant> {
    auto p = RegistryStore::GetPlant(tx, caller->tenant_id, request->plant_id());
    if (!p) return absl::NotFoundError(absl::StrCat("no plant ", request->plant_id()));
    return *p;
  });
  if (!plant.ok()) return Answer("GetPlant", plant.status());
  *response = *plant;
  return grpc::Status::OK;
}

grpc::Status TelemetryService::ListPlants(grpc::ServerContext* context, const v1::ListPlantsRequest* request,
                                          v1::ListPlantsResponse* response) {
  auto caller = CallerOf(*context);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  FieldViolations v;
  int limit = PageSize(request->page_size(), v);
  std::string after = AfterId(request->page_token(), v);
  if (!v.empty()) return ToGrpcStatus(v.ToStatus());
  absl::Status s = pool_.InTransaction([&](pqxx::work& tx) {
    for (auto& p : RegistryStore::ListPlants(tx, caller->tenant_id, after, limit + 1)) *response->add_plants() = p;
    return absl::OkStatus();
  });
  if (!s.ok()) return Answer("ListPlants", s);
  if (response->plants_size() > limit) {
    response->mutable_plants()->RemoveLast();
    response->set_next_page_token(PageToken(response->plants(limit - 1).plant_id()));
  }
  return grpc::Status::OK;
}

grpc::Status TelemetryService::CreateLine(grpc::ServerContext* context, const v1::CreateLineRequest* request,
                                          v1::Line* response) {
  auto caller = CallerOf(*context);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  FieldViolations v;
  CheckIdempotencyKey(request->idempotency_key(), v);
  CheckId("plant_id", request->plant_id(), v);
  if (!request->has_line()) {
    v.Add("line", "is required");
  } else {
    CheckCode("line.code", request->line().code(), v);
    CheckName("line.name", request->line().name(), v);
  }
  if (!v.empty()) return ToGrpcStatus(v.ToStatus());
  if (absl::Status s = NeedsAdmin(*caller); !s.ok()) return ToGrpcStatus(s);
  auto line = CreateOnce<v1::Line>(
      pool_, *caller, "CreateLine", request->idempotency_key(), *request,
      [&](pqxx::work& tx) -> absl::StatusOr<std::string> {
        if (!RegistryStore::GetPlant(tx, caller->tenant_id, request->plant_id())) {
          return absl::NotFoundError(absl::StrCat("no plant ", request->plant_id()));
        }
        v1::Line l = request->line();
        l.set_line_id(NewId());
        l.set_plant_id(request->plant_id());
        RegistryStore::InsertLine(tx, caller->tenant_id, l);
        return l.line_id();
      },
      [&](pqxx::work& tx, const std::string& id) { return RegistryStore::GetLine(tx, caller->tenant_id, id); });
  if (!line.ok()) return Answer("CreateLine", line.status());
  *response = *line;
  return grpc::Status::OK;
}

grpc::Status TelemetryService::ListLines(grpc::ServerContext* context, const v1::ListLinesRequest* request,
                                         v1::ListLinesResponse* response) {
  auto caller = CallerOf(*context);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  FieldViolations v;
  CheckId("plant_id", request->plant_id(), v);
  int limit = PageSize(request->page_size(), v);
  std::string after = AfterId(request->page_token(), v);
  if (!v.empty()) return ToGrpcStatus(v.ToStatus());
  absl::Status s = pool_.InTransaction([&](pqxx::work& tx) {
    if (!RegistryStore::GetPlant(tx, caller->tenant_id, request->plant_id())) {
      return absl::NotFoundError(absl::StrCat("no plant ", request->plant_id()));
    }
    for (auto& l : RegistryStore::ListLines(tx, caller->tenant_id, request->plant_id(), after, limit + 1)) {
      *response->add_lines() = l;
    }
    return absl::OkStatus();
  });
  if (!s.ok()) return Answer("ListLines", s);
  if (response->lines_size() > limit) {
    response->mutable_lines()->RemoveLast();
    response->set_next_page_token(PageToken(response->lines(limit - 1).line_id()));
  }
  return grpc::Status::OK;
}

grpc::Status TelemetryService::CreateDevice(grpc::ServerContext* context, const v1::CreateDeviceRequest* request,
                                            v1::Device* response) {
  auto caller = CallerOf(*context);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  FieldViolations v;
  CheckIdempotencyKey(request->idempotency_key(), v);
  CheckId("line_id", request->line_id(), v);
  if (!request->has_device()) {
    v.Add("device", "is required");
  } else {
    const v1::Device& d = request->device();
    CheckCode("device.code", d.code(), v);
    CheckName("device.name", d.name(), v);
    for (const auto& [field, code] : {std::pair{"device.state_point", d.state_point()},
                                      {"device.total_count_point", d.total_count_point()},
                                      {"device.good_count_point", d.good_count_point()}}) {
      if (!code.empty()) CheckCode(field, code, v);
    }
    CheckFinite("device.running_state", d.running_state(), v);
    if (CheckFinite("device.ideal_rate_per_hour", d.ideal_rate_per_hour(), v) && d.ideal_rate_per_hour() < 0) {
      v.Add("device.ideal_rate_per_hour", "must not be negative");
    }
  }
  if (!v.empty()) return ToGrpcStatus(v.ToStatus());
  if (absl::Status s = NeedsAdmin(*caller); !s.ok()) return ToGrpcStatus(s);
  auto device = CreateOnce<v1::Device>(
      pool_, *caller, "CreateDevice", request->idempotency_key(), *request,
      [&](pqxx::work& tx) -> absl::StatusOr<std::string> {
        auto line = RegistryStore::GetLine(tx, caller->tenant_id, request->line_id());
        if (!line) return absl::NotFoundError(absl::StrCat("no line ", request->line_id()));
        v1::Device d = request->device();
        d.set_device_id(NewId());
        d.set_line_id(line->line_id());
        d.set_plant_id(line->plant_id());
        RegistryStore::InsertDevice(tx, caller->tenant_id, d);
        return d.device_id();
      },
      [&](pqxx::work& tx, const std::string& id) { return RegistryStore::GetDevice(tx, caller->tenant_id, id); });
  if (!device.ok()) return Answer("CreateDevice", device.status());
  *response = *device;
  log::Info("device created", {{"device_id", device->device_id()}, {"code", device->code()}});
  return grpc::Status::OK;
}

grpc::Status TelemetryService::GetDevice(grpc::ServerContext* context, const v1::GetDeviceRequest* request,
                                         v1::Device* response) {
  auto caller = CallerOf(*context);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  FieldViolations v;
  CheckId("device_id", request->device_id(), v);
  if (!v.empty()) return ToGrpcStatus(v.ToStatus());
  auto device = pool_.InTransaction([&](pqxx::work& tx) -> absl::StatusOr<v1::Device> {
    auto d = RegistryStore::GetDevice(tx, caller->tenant_id, request->device_id());
    if (!d) return absl::NotFoundError(absl::StrCat("no device ", request->device_id()));
    return *d;
  });
  if (!device.ok()) return Answer("GetDevice", device.status());
  *response = *device;
  return grpc::Status::OK;
}

grpc::Status TelemetryService::ListDevices(grpc::ServerContext* context, const v1::ListDevicesRequest* request,
                                           v1::ListDevicesResponse* response) {
  auto caller = CallerOf(*context);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  FieldViolations v;
  if (!request->line_id().empty()) CheckId("line_id", request->line_id(), v);
  int limit = PageSize(request->page_size(), v);
  std::string after = AfterId(request->page_token(), v);
  if (!v.empty()) return ToGrpcStatus(v.ToStatus());
  absl::Status s = pool_.InTransaction([&](pqxx::work& tx) {
    for (auto& d : RegistryStore::ListDevices(tx, caller->tenant_id, request->line_id(), after, limit + 1)) {
      *response->add_devices() = d;
    }
    return absl::OkStatus();
  });
  if (!s.ok()) return Answer("ListDevices", s);
  if (response->devices_size() > limit) {
    response->mutable_devices()->RemoveLast();
    response->set_next_page_token(PageToken(response->devices(limit - 1).device_id()));
  }
  return grpc::Status::OK;
}

grpc::Status TelemetryService::CreateDataPoint(grpc::ServerContext* context, const v1::CreateDataPointRequest* request,
                                               v1::DataPoint* response) {
  auto caller = CallerOf(*context);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  FieldViolations v;
  CheckIdempotencyKey(request->idempotency_key(), v);
  CheckId("device_id", request->device_id(), v);
  if (!request->has_point()) {
    v.Add("point", "is required");
  } else {
    const v1::DataPoint& p = request->point();
    CheckCode("point.code", p.code(), v);
    if (p.kind() == v1::POINT_KIND_UNSPECIFIED || !v1::PointKind_IsValid(p.kind())) {
      v.Add("point.kind", "must be SENSOR, METER, STATE or COUNTER");
    }
    if (p.unit().empty() || p.unit().size() > 32) v.Add("point.unit", "must be 1 to 32 bytes");
    if (p.expected_interval_ms() <= 0 || p.expected_interval_ms() > kMicrosPerDay / 1000) {
      v.Add("point.expected_interval_ms", "must be between 1 ms and one day");
    }
    bool finite = (!p.has_min_value() || CheckFinite("point.min_value", p.min_value(), v)) &&
                  (!p.has_max_value() || CheckFinite("point.max_value", p.max_value(), v));
    if (finite && p.has_min_value() && p.has_max_value() && p.min_value() >= p.max_value()) {
      v.Add("point.max_value", "must be above min_value");
    }
    if (CheckFinite("point.counter_wrap_at", p.counter_wrap_at(), v) && p.counter_wrap_at() < 0) {
      v.Add("point.counter_wrap_at", "must not be negative");
    } else if (p.counter_wrap_at() > 0 && p.kind() != v1::POINT_KIND_METER && p.kind() != v1::POINT_KIND_COUNTER) {
      v.Add("point.counter_wrap_at", "is for meters and counters only");
    }
  }
  if (!v.empty()) return ToGrpcStatus(v.ToStatus());
  if (absl::Status s = NeedsAdmin(*caller); !s.ok()) return ToGrpcStatus(s);
  auto point = CreateOnce<v1::DataPoint>(
      pool_, *caller, "CreateDataPoint", request->idempotency_key(), *request,
      [&](pqxx::work& tx) -> absl::StatusOr<std::string> {
        if (!RegistryStore::GetDevice(tx, caller->tenant_id, request->device_id())) {
          return absl::NotFoundError(absl::StrCat("no device ", request->device_id()));
        }
        v1::DataPoint p = request->point();
        p.set_point_id(NewId());
        p.set_device_id(request->device_id());
        RegistryStore::InsertPoint(tx, caller->tenant_id, p);
        return p.point_id();
      },
      [&](pqxx::work& tx, const std::string& id) -> std::optional<v1::DataPoint> {
        auto p = RegistryStore::GetPoint(tx, caller->tenant_id, id);
        if (!p) return std::nullopt;
        return p->proto;
      });
  if (!point.ok()) return Answer("CreateDataPoint", point.status());
  *response = *point;
  return grpc::Status::OK;
}

grpc::Status TelemetryService::ListDataPoints(grpc::ServerContext* context, const v1::ListDataPointsRequest* request,
                                              v1::ListDataPointsResponse* response) {
  auto caller = CallerOf(*context);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  FieldViolations v;
  CheckId("device_id", request->device_id(), v);
  if (!v.empty()) return ToGrpcStatus(v.ToStatus());
  absl::Status s = pool_.InTransaction([&](pqxx::work& tx) {
    if (!RegistryStore::GetDevice(tx, caller->tenant_id, request->device_id())) {
      return absl::NotFoundError(absl::StrCat("no device ", request->device_id()));
    }
    for (auto& p : RegistryStore::PointsOfDevices(tx, caller->tenant_id, {request->device_id()})) {
      *response->add_points() = p.proto;
    }
    return absl::OkStatus();
  });
  if (!s.ok()) return Answer("ListDataPoints", s);
  return grpc::Status::OK;
}

namespace {
void CheckDeviceIds(const google::protobuf::RepeatedPtrField<std::string>& ids, const std::string& field,
                    FieldViolations& v) {
  if (ids.size() > 10'000) v.Add(field, "at most 10000 devices");
  for (int i = 0; i < ids.size() && i < 10'000; ++i) CheckId(absl::StrCat(field, "[", i, "]"), ids[i], v);
}

absl::Status CheckDevicesExist(pqxx::work& tx, const std::string& tenant,
                               const google::protobuf::RepeatedPtrField<std::string>& ids, const std::string& field) {
  std::vector<std::string> list(ids.begin(), ids.end());
  absl::flat_hash_set<std::string> existing = RegistryStore::ExistingDevices(tx, tenant, list);
  FieldViolations v;
  for (int i = 0; i < ids.size(); ++i) {
    if (!existing.contains(ids[i])) v.Add(absl::StrCat(field, "[", i, "]"), "no such device in this enterprise");
  }
  return v.ToStatus();
}
}  // namespace

grpc::Status TelemetryService::CreateEdgeGateway(grpc::ServerContext* context,
                                                 const v1::CreateEdgeGatewayRequest* request,
                                                 v1::EdgeGateway* response) {
  auto caller = CallerOf(*context);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  FieldViolations v;
  CheckIdempotencyKey(request->idempotency_key(), v);
  const v1::EdgeGateway& g = request->edge_gateway();
  if (!request->has_edge_gateway()) {
    v.Add("edge_gateway", "is required");
  } else {
    CheckName("edge_gateway.name", g.name(), v);
    if (g.api_key_id().empty() || g.api_key_id().size() > 128) {
      v.Add("edge_gateway.api_key_id", "must be the id of one of the enterprise's API keys");
    }
    CheckDeviceIds(g.device_ids(), "edge_gateway.device_ids", v);
  }
  if (!v.empty()) return ToGrpcStatus(v.ToStatus());
  if (absl::Status s = NeedsAdmin(*caller); !s.ok()) return ToGrpcStatus(s);
  auto gateway = CreateOnce<v1::EdgeGateway>(
      pool_, *caller, "CreateEdgeGateway", request->idempotency_key(), *request,
      [&](pqxx::work& tx) -> absl::StatusOr<std::string> {
        if (absl::Status s = CheckDevicesExist(tx, caller->tenant_id, g.device_ids(), "edge_gateway.device_ids");
            !s.ok()) {
          return s;
        }
        v1::EdgeGateway made = g;
        made.set_edge_gateway_id(NewId());
        RegistryStore::InsertEdgeGateway(tx, caller->tenant_id, made);
        return made.edge_gateway_id();
      },
      [&](pqxx::work& tx, const std::string& id) { return RegistryStore::GetEdgeGateway(tx, caller->tenant_id, id); });
  if (!gateway.ok()) return Answer("CreateEdgeGateway", gateway.status());
  *response = *gateway;
  log::Info("edge gateway created", {{"edge_gateway_id", gateway->edge_gateway_id()}});
  return grpc::Status::OK;
}

grpc::Status TelemetryService::GetEdgeGateway(grpc::ServerContext* context, const v1::GetEdgeGatewayRequest* request,
                                              v1::EdgeGateway* response) {
  auto caller = CallerOf(*context);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  FieldViolations v;
  CheckId("edge_gateway_id", request->edge_gateway_id(), v);
  if (!v.empty()) return ToGrpcStatus(v.ToStatus());
  auto gateway = pool_.InTransaction([&](pqxx::work& tx) -> absl::StatusOr<v1::EdgeGateway> {
    auto g = RegistryStore::GetEdgeGateway(tx, caller->tenant_id, request->edge_gateway_id());
    if (!g) return absl::NotFoundError(absl::StrCat("no edge gateway ", request->edge_gateway_id()));
    return *g;
  });
  if (!gateway.ok()) return Answer("GetEdgeGateway", gateway.status());
  *response = *gateway;
  return grpc::Status::OK;
}

grpc::Status TelemetryService::SetEdgeGatewayDevices(grpc::ServerContext* context,
                                                     const v1::SetEdgeGatewayDevicesRequest* request,
                                                     v1::EdgeGateway* response) {
  auto caller = CallerOf(*context);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  FieldViolations v;
  CheckId("edge_gateway_id", request->edge_gateway_id(), v);
  CheckDeviceIds(request->device_ids(), "device_ids", v);
  if (!v.empty()) return ToGrpcStatus(v.ToStatus());
  if (absl::Status s = NeedsAdmin(*caller); !s.ok()) return ToGrpcStatus(s);
  auto gateway = pool_.InTransaction([&](pqxx::work& tx) -> absl::StatusOr<v1::EdgeGateway> {
    if (!RegistryStore::GetEdgeGateway(tx, caller->tenant_id, request->edge_gateway_id())) {
      return absl::NotFoundError(absl::StrCat("no edge gateway ", request->edge_gateway_id()));
    }
    if (absl::Status s = CheckDevicesExist(tx, caller->tenant_id, request->device_ids(), "device_ids"); !s.ok()) {
      return s;
    }
    RegistryStore::SetEdgeGatewayDevices(tx, request->edge_gateway_id(),
                                         {request->device_ids().begin(), request->device_ids().end()});
    return *RegistryStore::GetEdgeGateway(tx, caller->tenant_id, request->edge_gateway_id());
  });
  if (!gateway.ok()) return Answer("SetEdgeGatewayDevices", gateway.status());
  *response = *gateway;
  return grpc::Status::OK;
}

// ---- ingest ----

grpc::Status TelemetryService::Ingest(grpc::ServerContext* context, const v1::IngestRequest* request,
                                      v1::IngestResponse* response) {
  auto caller = CallerOf(*context);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  absl::StatusOr<v1::IngestResponse> result = ingestor_.Ingest(*caller, *request);
  if (!result.ok()) return Answer("Ingest", result.status());
  *response = *std::move(result);
  return grpc::Status::OK;
}

grpc::Status TelemetryService::StreamIngest(grpc::ServerContext* context,
                                            grpc::ServerReaderWriter<v1::IngestResponse, v1::IngestRequest>* stream) {
  auto caller = CallerOf(*context);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  // A reader thread queues the batches as they arrive; this thread stores everything queued so far in one
  // transaction (an edge gateway with several batches in flight shares one commit among them) and then answers
  // each batch, in order. Every answer still follows the commit of its batch.
  std::mutex mu;
  std::condition_variable arrived;
  std::deque<v1::IngestRequest> queue;
  bool reading = true;
  std::thread reader([&] {
    v1::IngestRequest request;
    while (stream->Read(&request)) {
      std::lock_guard<std::mutex> lock(mu);
      queue.push_back(std::move(request));
      arrived.notify_one();
    }
    std::lock_guard<std::mutex> lock(mu);
    reading = false;
    arrived.notify_one();
  });
  auto finish = [&](const grpc::Status& status) {
    if (!status.ok()) context->TryCancel();  // ends the reader's Read
    reader.join();
    return status;
  };
  while (true) {
    std::vector<v1::IngestRequest> taken;
    {
      std::unique_lock<std::mutex> lock(mu);
      arrived.wait(lock, [&] { return !queue.empty() || !reading; });
      if (queue.empty()) break;
      int64_t samples = 0;
      while (!queue.empty()) {
        int64_t next = 0;
        for (const auto& series : queue.front().series()) next += series.time_unix_us_size();
        if (!taken.empty() && samples + next > kMaxSamplesPerCommit) break;
        samples += next;
        taken.push_back(std::move(queue.front()));
        queue.pop_front();
      }
    }
    // A batch wrong as a whole ends the stream with its status, after the good batches before it are stored and
    // answered: everything acknowledged is durable, the rest is to be sent again.
    absl::Status refused;
    std::vector<const v1::IngestRequest*> batch;
    for (const v1::IngestRequest& request : taken) {
      refused = ingestor_.Check(*caller, request);
      if (!refused.ok()) break;
      batch.push_back(&request);
    }
    if (!batch.empty()) {
      absl::StatusOr<std::vector<v1::IngestResponse>> responses = ingestor_.IngestMany(*caller, batch);
      if (!responses.ok()) return finish(Answer("StreamIngest", responses.status()));
      for (const v1::IngestResponse& response : *responses) {
        if (!stream->Write(response)) return finish(grpc::Status::OK);  // the client went away
      }
    }
    if (!refused.ok()) return finish(Answer("StreamIngest", refused));
  }
  return finish(grpc::Status::OK);
}

// ---- reading ----

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

// ---- energy and production ----

grpc::Status TelemetryService::GetEnergy(grpc::ServerContext* context, const v1::GetEnergyRequest* request,
                                         v1::GetEnergyResponse* response) {
  auto caller = CallerOf(*context);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  FieldViolations v;
  int scopes = !request->point_id().empty() + !request->line_id().empty() + !request->plant_id().empty();
  if (scopes != 1) v.Add("point_id", "give exactly one of point_id, line_id, plant_id");
  if (!request->point_id().empty()) CheckId("point_id", request->point_id(), v);
  if (!request->line_id().empty()) CheckId("line_id", request->line_id(), v);
  if (!request->plant_id().empty()) CheckId("plant_id", request->plant_id(), v);
  bool range_ok = CheckRange(request->start_time(), request->has_start_time(), "start_time", request->end_time(),
                             request->has_end_time(), "end_time", v);
  if (request->granularity() == v1::GRANULARITY_UNSPECIFIED || !v1::Granularity_IsValid(request->granularity())) {
    v.Add("granularity", "must be HOUR, DAY or MONTH");
  }
  const int64_t start = range_ok ? Micros(request->start_time()) : 0;
  const int64_t end = range_ok ? Micros(request->end_time()) : 0;
  if (range_ok && end - start > 400 * kMicrosPerDay) v.Add("end_time", "the range is at most 400 days");
  if (range_ok && request->granularity() == v1::GRANULARITY_HOUR && end - start > 31 * kMicrosPerDay) {
    v.Add("granularity", "HOUR is for ranges of at most 31 days");
  }
  if (!v.empty()) return ToGrpcStatus(v.ToStatus());
  Granularity granularity = request->granularity() == v1::GRANULARITY_HOUR  ? Granularity::kHour
                            : request->granularity() == v1::GRANULARITY_DAY ? Granularity::kDay
                                                                            : Granularity::kMonth;
  struct Found {
    v1::Plant plant;
    std::vector<Increase> increases;
  };
  auto found = pool_.InTransaction([&](pqxx::work& tx) -> absl::StatusOr<Found> {
    Found out;
    std::vector<PointRow> meters;
    std::string plant_id = request->plant_id();
    if (!request->point_id().empty()) {
      auto p = RegistryStore::GetPoint(tx, caller->tenant_id, request->point_id());
      if (!p) return absl::NotFoundError(absl::StrCat("no data point ", request->point_id()));
      if (p->proto.kind() != v1::POINT_KIND_METER) {
        return InvalidField("point_id", "must be a data point of kind METER (a cumulative kWh meter)");
      }
      plant_id = RegistryStore::GetDevice(tx, caller->tenant_id, p->device_id)->plant_id();
      meters.push_back(*p);
    } else if (!request->line_id().empty()) {
      auto line = RegistryStore::GetLine(tx, caller->tenant_id, request->line_id());
      if (!line) return absl::NotFoundError(absl::StrCat("no line ", request->line_id()));
      plant_id = line->plant_id();
      meters = RegistryStore::MetersOf(tx, caller->tenant_id, request->line_id(), "");
    } else {
      meters = RegistryStore::MetersOf(tx, caller->tenant_id, "", plant_id);
    }
    auto plant = RegistryStore::GetPlant(tx, caller->tenant_id, plant_id);
    if (!plant) return absl::NotFoundError(absl::StrCat("no plant ", plant_id));
    out.plant = *plant;
    // Readings a day either side of the range attribute the consumption between two readings that straddle
    // its edges.
    for (const PointRow& m : meters) {
      absl::StatusOr<std::vector<SampleStore::RawRow>> readings =
          SampleStore::ReadRaw(tx, m.point_id, start - kMicrosPerDay, end + kMicrosPerDay, kMaxReadSamplesPerPoint);
      if (!readings.ok()) return readings.status();
      std::vector<Increase> inc = CounterIncreases(ToSamples(*readings), m.proto.counter_wrap_at());
      out.increases.insert(out.increases.end(), inc.begin(), inc.end());
    }
    return out;
  });
  if (!found.ok()) return Answer("GetEnergy", found.status());
  Tariff tariff = TariffOf(found->plant);
  response->set_currency(found->plant.tariff().currency());
  double total_kwh = 0;
  int64_t total_cost = 0;
  for (const EnergyBucket& b : EnergyReport(found->increases, tariff, granularity, start, end)) {
    v1::EnergyBucket* out = response->add_buckets();
    *out->mutable_start_time() = TimeUtil::MicrosecondsToTimestamp(b.start_us);
    *out->mutable_end_time() = TimeUtil::MicrosecondsToTimestamp(b.end_us);
    out->set_kwh(b.kwh);
    out->set_valley_kwh(b.kwh_by_period[static_cast<int>(TouPeriod::kValley)]);
    out->set_flat_kwh(b.kwh_by_period[static_cast<int>(TouPeriod::kFlat)]);
    out->set_peak_kwh(b.kwh_by_period[static_cast<int>(TouPeriod::kPeak)]);
    out->set_cost_minor(b.cost_minor);
    out->set_peak_demand_kw(b.peak_demand_kw);
    *out->mutable_peak_demand_time() = TimeUtil::MicrosecondsToTimestamp(b.peak_demand_at_us);
    total_kwh += b.kwh;
    total_cost += b.cost_minor;
  }
  response->set_total_kwh(total_kwh);
  response->set_total_cost_minor(total_cost);
  return grpc::Status::OK;
}

grpc::Status TelemetryService::GetOee(grpc::ServerContext* context, const v1::GetOeeRequest* request,
                                      v1::GetOeeResponse* response) {
  auto caller = CallerOf(*context);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  FieldViolations v;
  if (request->device_id().empty() == request->line_id().empty()) {
    v.Add("device_id", "give exactly one of device_id, line_id");
  } else if (!request->device_id().empty()) {
    CheckId("device_id", request->device_id(), v);
  } else {
    CheckId("line_id", request->line_id(), v);
  }
  bool range_ok = CheckRange(request->shift_start(), request->has_shift_start(), "shift_start", request->shift_end(),
                             request->has_shift_end(), "shift_end", v);
  const int64_t start = range_ok ? Micros(request->shift_start()) : 0;
  const int64_t end = range_ok ? Micros(request->shift_end()) : 0;
  if (range_ok && end - start > kMicrosPerDay) v.Add("shift_end", "a shift is at most 24 hours");
  if (request->planned_minutes() < 0 || (range_ok && request->planned_minutes() * kMicrosPerMinute > end - start)) {
    v.Add("planned_minutes", "must be between 0 and the shift's length");
  }
  if (!v.empty()) return ToGrpcStatus(v.ToStatus());

  auto result = pool_.InTransaction([&](pqxx::work& tx) -> absl::StatusOr<v1::GetOeeResponse> {
    std::vector<v1::Device> devices;
    if (!request->device_id().empty()) {
      auto d = RegistryStore::GetDevice(tx, caller->tenant_id, request->device_id());
      if (!d) return absl::NotFoundError(absl::StrCat("no device ", request->device_id()));
      devices.push_back(*d);
    } else {
      if (!RegistryStore::GetLine(tx, caller->tenant_id, request->line_id())) {
        return absl::NotFoundError(absl::StrCat("no line ", request->line_id()));
      }
      devices = RegistryStore::ListDevices(tx, caller->tenant_id, request->line_id(), "", 10'000);
    }
    v1::GetOeeResponse out;
    std::vector<Oee> figures;
    for (const v1::Device& d : devices) {
      if (d.state_point().empty() || d.total_count_point().empty() || d.ideal_rate_per_hour() <= 0) {
        if (!request->device_id().empty()) {
          return absl::FailedPreconditionError(
              "the device has no OEE set-up: state_point, total_count_point and ideal_rate_per_hour are needed");
        }
        continue;  // a line's devices without OEE set-up (conveyors, compressors) do not count
      }
      absl::flat_hash_map<std::string, const PointRow*> by_code;
      std::vector<PointRow> points = RegistryStore::PointsOfDevices(tx, caller->tenant_id, {d.device_id()});
      for (const PointRow& p : points) by_code[p.code] = &p;
      absl::Status read_status;
      auto read = [&](const std::string& code, int64_t from, int64_t to) -> std::vector<Sample> {
        auto it = by_code.find(code);
        if (code.empty() || it == by_code.end()) return {};
        auto rows = SampleStore::ReadRaw(tx, it->second->point_id, from, to, kMaxReadSamplesPerPoint);
        if (!rows.ok()) {
          read_status.Update(rows.status());
          return {};
        }
        return ToSamples(*rows);
      };
      OeeInput in{.start_us = start,
                  .end_us = end,
                  .planned_us = request->planned_minutes() * kMicrosPerMinute,
                  .running_state = d.running_state(),
                  .ideal_rate_per_hour = d.ideal_rate_per_hour()};
      // The state before the shift began is the last one reported before it (within a day).
      std::vector<Sample> states = read(d.state_point(), start - kMicrosPerDay, end);
      auto first_inside = std::find_if(states.begin(), states.end(), [&](const Sample& s) { return s.ts_us >= start; });
      if (first_inside != states.begin()) first_inside = std::prev(first_inside);
      in.states.assign(first_inside, states.end());
      in.total_count = read(d.total_count_point(), start - kMicrosPerDay, end + kMicrosPerDay);
      in.good_count = d.good_count_point().empty()
                          ? in.total_count
                          : read(d.good_count_point(), start - kMicrosPerDay, end + kMicrosPerDay);
      if (auto it = by_code.find(d.total_count_point()); it != by_code.end()) {
        in.counter_wrap_at = it->second->proto.counter_wrap_at();
      }
      if (!read_status.ok()) return read_status;
      absl::StatusOr<Oee> oee = ComputeOee(in);
      if (!oee.ok()) return oee.status();
      ToProto(*oee, d.device_id(), out.add_devices());
      figures.push_back(*oee);
    }
    if (!request->device_id().empty()) {
      *out.mutable_oee() = out.devices(0);
      out.clear_devices();
    } else {
      ToProto(CombineLine(figures), "", out.mutable_oee());
    }
    return out;
  });
  if (!result.ok()) return Answer("GetOee", result.status());
  *response = *std::move(result);
  return grpc::Status::OK;
}

// ---- alarms ----

grpc::Status TelemetryService::CreateAlarmRule(grpc::ServerContext* context, const v1::CreateAlarmRuleRequest* request,
                                               v1::AlarmRule* response) {
  auto caller = CallerOf(*context);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  FieldViolations v;
  CheckIdempotencyKey(request->idempotency_key(), v);
  CheckId("point_id", request->point_id(), v);
  const v1::AlarmRule& r = request->rule();
  if (!request->has_rule()) {
    v.Add("rule", "is required");
  } else {
    CheckName("rule.name", r.name(), v);
    if (r.kind() == v1::ALARM_RULE_KIND_UNSPECIFIED || !v1::AlarmRuleKind_IsValid(r.kind())) {
      v.Add("rule.kind", "must be THRESHOLD, RATE_OF_CHANGE or NO_DATA");
    }
    if (r.severity() == v1::SEVERITY_UNSPECIFIED || !v1::Severity_IsValid(r.severity())) {
      v.Add("rule.severity", "must be INFO, WARNING or CRITICAL");
    }
    if (r.missed_intervals() < 0) v.Add("rule.missed_intervals", "must not be negative");
    if (v.empty()) {
      // The expected interval is the point's; a positive stand-in lets the rule's own fields be checked here.
      AlarmRule domain{.kind = KindOf(r.kind()),
                       .high = r.has_high() ? r.high() : std::numeric_limits<double>::infinity(),
                       .low = r.has_low() ? r.low() : -std::numeric_limits<double>::infinity(),
                       .hysteresis = r.hysteresis(),
                       .max_rate_per_s = r.max_rate_per_s(),
                       .raise_after_us = r.raise_after_ms() * 1000,
                       .expected_interval_us = 1,
                       .missed_intervals = r.missed_intervals() == 0 ? 3 : r.missed_intervals()};
      if (absl::Status s = ValidateRule(domain); !s.ok()) {
        std::vector<FieldViolation> fields = FieldViolationsOf(s);
        if (fields.empty()) v.Add("rule", std::string(s.message()));
        for (const FieldViolation& f : fields) {
          v.Add(f.field == "raise_after_us" ? "rule.raise_after_ms" : absl::StrCat("rule.", f.field), f.description);
        }
      }
    }
  }
  if (!v.empty()) return ToGrpcStatus(v.ToStatus());
  if (absl::Status s = NeedsAdmin(*caller); !s.ok()) return ToGrpcStatus(s);
  auto load = [&](pqxx::work& tx, const std::string& id) -> std::optional<v1::AlarmRule> {
    for (RuleRow& row : AlarmStore::ListRules(tx, caller->tenant_id, request->point_id())) {
      if (row.proto.rule_id() == id) return row.proto;
    }
    return std::nullopt;
  };
  auto rule = CreateOnce<v1::AlarmRule>(
      pool_, *caller, "CreateAlarmRule", request->idempotency_key(), *request,
      [&](pqxx::work& tx) -> absl::StatusOr<std::string> {
        if (!RegistryStore::GetPoint(tx, caller->tenant_id, request->point_id())) {
          return absl::NotFoundError(absl::StrCat("no data point ", request->point_id()));
        }
        v1::AlarmRule made = r;
        made.set_rule_id(NewId());
        made.set_point_id(request->point_id());
        if (made.missed_intervals() == 0) made.set_missed_intervals(3);
        AlarmStore::InsertRule(tx, caller->tenant_id, made);
        return made.rule_id();
      },
      load);
  if (!rule.ok()) return Answer("CreateAlarmRule", rule.status());
  *response = *rule;
  return grpc::Status::OK;
}

grpc::Status TelemetryService::ListAlarmRules(grpc::ServerContext* context, const v1::ListAlarmRulesRequest* request,
                                              v1::ListAlarmRulesResponse* response) {
  auto caller = CallerOf(*context);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  FieldViolations v;
  if (!request->point_id().empty()) CheckId("point_id", request->point_id(), v);
  if (!v.empty()) return ToGrpcStatus(v.ToStatus());
  absl::Status s = pool_.InTransaction([&](pqxx::work& tx) {
    for (RuleRow& row : AlarmStore::ListRules(tx, caller->tenant_id, request->point_id())) {
      *response->add_rules() = row.proto;
    }
    return absl::OkStatus();
  });
  if (!s.ok()) return Answer("ListAlarmRules", s);
  return grpc::Status::OK;
}

grpc::Status TelemetryService::ListAlarms(grpc::ServerContext* context, const v1::ListAlarmsRequest* request,
                                          v1::ListAlarmsResponse* response) {
  auto caller = CallerOf(*context);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  FieldViolations v;
  if (!request->device_id().empty()) CheckId("device_id", request->device_id(), v);
  int limit = PageSize(request->page_size(), v);
  std::string after = AfterId(request->page_token(), v);
  if (!v.empty()) return ToGrpcStatus(v.ToStatus());
  absl::Status s = pool_.InTransaction([&](pqxx::work& tx) {
    for (auto& a : AlarmStore::ListAlarms(tx, caller->tenant_id, request->include_cleared(), request->device_id(),
                                          after, limit + 1)) {
      *response->add_alarms() = a;
    }
    return absl::OkStatus();
  });
  if (!s.ok()) return Answer("ListAlarms", s);
  if (response->alarms_size() > limit) {
    response->mutable_alarms()->RemoveLast();
    response->set_next_page_token(PageToken(response->alarms(limit - 1).alarm_id()));
  }
  return grpc::Status::OK;
}

grpc::Status TelemetryService::AcknowledgeAlarm(grpc::ServerContext* context,
                                                const v1::AcknowledgeAlarmRequest* request, v1::Alarm* response) {
  auto caller = CallerOf(*context);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  FieldViolations v;
  CheckId("alarm_id", request->alarm_id(), v);
  if (request->comment().size() > 1000) v.Add("comment", "must be at most 1000 bytes");
  if (!v.empty()) return ToGrpcStatus(v.ToStatus());
  auto alarm = pool_.InTransaction([&](pqxx::work& tx) {
    return alarms_.Acknowledge(tx, caller->tenant_id, request->alarm_id(), caller->subject, request->comment());
  });
  if (!alarm.ok()) return Answer("AcknowledgeAlarm", alarm.status());
  live_.Publish(caller->tenant_id, {}, {*alarm});
  *response = *std::move(alarm);
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
