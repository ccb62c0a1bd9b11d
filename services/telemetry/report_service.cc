#include <span>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/util/time_util.h"
#include "libs/core/request.h"
#include "libs/core/status.h"
#include "libs/server/caller.h"
#include "services/telemetry/checks.h"
#include "services/telemetry/domain/energy.h"
#include "services/telemetry/domain/oee.h"
#include "services/telemetry/mapping.h"
#include "services/telemetry/store/registry_store.h"
#include "services/telemetry/store/sample_store.h"
#include "services/telemetry/telemetry_service.h"

// Reports: energy by tariff period, OEE of a device or a line over a shift.
namespace ptd::telemetry {
namespace {

using google::protobuf::util::TimeUtil;

constexpr int64_t kMaxReadSamplesPerPoint = 5'000'000;

}  // namespace

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
      const ReadRange state_range = ShiftStateRange(start, end);
      const ReadRange count_range = ShiftCountRange(start, end);
      std::vector<Sample> states = read(d.state_point(), state_range.from_us, state_range.to_us);
      std::span<const Sample> shift_states = ShiftStates(states, start);
      in.states.assign(shift_states.begin(), shift_states.end());
      in.total_count = read(d.total_count_point(), count_range.from_us, count_range.to_us);
      in.good_count = d.good_count_point().empty() ? in.total_count
                                                   : read(d.good_count_point(), count_range.from_us, count_range.to_us);
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

}  // namespace ptd::telemetry
