#include <algorithm>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "libs/core/ids.h"
#include "libs/core/log.h"
#include "libs/core/request.h"
#include "libs/core/status.h"
#include "libs/server/caller.h"
#include "services/telemetry/checks.h"
#include "services/telemetry/domain/energy.h"
#include "services/telemetry/domain/ingest.h"
#include "services/telemetry/mapping.h"
#include "services/telemetry/store/registry_store.h"
#include "services/telemetry/telemetry_service.h"

// The registry: plants, lines, devices, data points, edge gateways.
namespace ptd::telemetry {
namespace {

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

}  // namespace

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

}  // namespace ptd::telemetry
