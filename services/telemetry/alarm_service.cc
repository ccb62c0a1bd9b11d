#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "libs/core/ids.h"
#include "libs/core/request.h"
#include "libs/core/status.h"
#include "libs/server/caller.h"
#include "services/telemetry/alarm_engine.h"
#include "services/telemetry/checks.h"
#include "services/telemetry/domain/alarms.h"
#include "services/telemetry/live_feed.h"
#include "services/telemetry/store/alarm_store.h"
#include "services/telemetry/store/registry_store.h"
#include "services/telemetry/telemetry_service.h"

// Alarms: rules, the alarms they raise, acknowledging one.
namespace ptd::telemetry {

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

}  // namespace ptd::telemetry
