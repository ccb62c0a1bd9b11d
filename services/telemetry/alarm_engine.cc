#include "services/telemetry/alarm_engine.h"

#include "absl/strings/str_cat.h"
#include "google/protobuf/util/time_util.h"
#include "libs/core/ids.h"
#include "libs/core/log.h"
#include "libs/outbox/outbox.h"
#include "services/telemetry/domain/alarms.h"
#include "services/telemetry/store/alarm_store.h"

namespace ptd::telemetry {
namespace {

using google::protobuf::util::TimeUtil;

absl::Status Publish(pqxx::work& tx, const std::string& tenant, const v1::Alarm& alarm, const std::string& type,
                     const google::protobuf::Message& event) {
  return outbox::Write(tx, {.stream = kEventStream,
                            .type = absl::StrCat("ptd.telemetry.v1.", type),
                            .aggregate_id = alarm.alarm_id(),
                            .tenant_id = tenant,
                            .payload = event.SerializeAsString(),
                            .request_id = log::CurrentRequestId()});
}

// Applies one transition of `rule` to its alarm rows; returns the alarm as it is now.
absl::StatusOr<v1::Alarm> Apply(pqxx::work& tx, RuleRow& rule, const AlarmTransition& t) {
  v1::AlarmChange change;
  *change.mutable_time() = TimeUtil::MicrosecondsToTimestamp(t.at_us);
  change.set_reason(t.reason);
  if (t.kind == AlarmTransition::kRaise) {
    v1::Alarm alarm;
    alarm.set_alarm_id(NewId());
    alarm.set_rule_id(rule.proto.rule_id());
    alarm.set_point_id(rule.proto.point_id());
    alarm.set_device_id(rule.device_id);
    alarm.set_severity(rule.proto.severity());
    alarm.set_state(v1::ALARM_STATE_ACTIVE);
    *alarm.mutable_raise_time() = change.time();
    alarm.set_value(t.value);
    alarm.set_reason(t.reason);
    AlarmStore::InsertAlarm(tx, alarm, rule.tenant_id);
    change.set_state(v1::ALARM_STATE_ACTIVE);
    AlarmStore::AddChange(tx, alarm.alarm_id(), 1, change);
    *alarm.add_history() = change;
    rule.open_alarm_id = alarm.alarm_id();
    v1::AlarmRaised event;
    *event.mutable_alarm() = alarm;
    if (absl::Status s = Publish(tx, rule.tenant_id, alarm, "AlarmRaised", event); !s.ok()) return s;
    return alarm;
  }
  std::optional<v1::Alarm> alarm = AlarmStore::GetAlarm(tx, rule.tenant_id, rule.open_alarm_id);
  if (!alarm) return absl::InternalError(absl::StrCat("rule ", rule.proto.rule_id(), " lost its open alarm"));
  alarm->set_state(v1::ALARM_STATE_CLEARED);
  *alarm->mutable_clear_time() = change.time();
  AlarmStore::UpdateAlarm(tx, *alarm);
  change.set_state(v1::ALARM_STATE_CLEARED);
  AlarmStore::AddChange(tx, alarm->alarm_id(), alarm->history_size() + 1, change);
  *alarm->add_history() = change;
  rule.open_alarm_id.clear();
  v1::AlarmCleared event;
  *event.mutable_alarm() = *alarm;
  if (absl::Status s = Publish(tx, rule.tenant_id, *alarm, "AlarmCleared", event); !s.ok()) return s;
  return *alarm;
}

}  // namespace

AlarmEngine::AlarmEngine(prometheus::Registry* registry) {
  if (registry == nullptr) return;
  raised_ = &prometheus::BuildCounter()
                 .Name("ptd_telemetry_alarms_raised_total")
                 .Help("Alarms raised by alarm rules, per tenant")
                 .Register(*registry);
}

void AlarmEngine::CountRaised(const std::string& tenant, const std::vector<v1::Alarm>& changed) {
  if (raised_ == nullptr) return;
  for (const v1::Alarm& a : changed) {
    if (a.state() == v1::ALARM_STATE_ACTIVE && a.history_size() == 1) raised_->Add({{"tenant", tenant}}).Increment();
  }
}

absl::StatusOr<std::vector<v1::Alarm>> AlarmEngine::OnSamples(
    pqxx::work& tx, const std::string& tenant, const absl::flat_hash_map<std::string, NewSamples>& samples) {
  std::vector<std::string> point_ids;
  for (const auto& [point_id, s] : samples) point_ids.push_back(point_id);
  std::vector<v1::Alarm> changed;
  for (RuleRow& rule : AlarmStore::LockRulesOfPoints(tx, point_ids)) {
    if (rule.tenant_id != tenant) continue;  // cannot happen: points are the tenant's; never cross it anyway
    const NewSamples& fresh = samples.at(rule.proto.point_id());
    for (const AlarmTransition& t : Evaluate(rule.rule, rule.state, fresh.samples)) {
      absl::StatusOr<v1::Alarm> alarm = Apply(tx, rule, t);
      if (!alarm.ok()) return alarm.status();
      changed.push_back(*std::move(alarm));
    }
    AlarmStore::SaveState(tx, rule);
  }
  return changed;
}

absl::StatusOr<std::vector<std::pair<std::string, v1::Alarm>>> AlarmEngine::SweepNoData(pg::Pool& pool,
                                                                                        int64_t now_us) {
  using Raised = std::vector<std::pair<std::string, v1::Alarm>>;
  return pool.InTransaction([&](pqxx::work& tx) -> absl::StatusOr<Raised> {
    Raised raised;
    for (RuleRow& rule : AlarmStore::LockNoDataRules(tx)) {
      std::optional<AlarmTransition> t = CheckNoData(rule.rule, rule.state, now_us);
      if (!t) continue;
      absl::StatusOr<v1::Alarm> alarm = Apply(tx, rule, *t);
      if (!alarm.ok()) return alarm.status();
      raised.emplace_back(rule.tenant_id, *std::move(alarm));
      AlarmStore::SaveState(tx, rule);
    }
    return raised;
  });
}

absl::StatusOr<v1::Alarm> AlarmEngine::Acknowledge(pqxx::work& tx, const std::string& tenant,
                                                   const std::string& alarm_id, const std::string& by,
                                                   const std::string& comment) {
  std::optional<v1::Alarm> alarm = AlarmStore::GetAlarm(tx, tenant, alarm_id, /*for_update=*/true);
  if (!alarm) return absl::NotFoundError(absl::StrCat("no alarm ", alarm_id));
  if (alarm->acknowledged()) return absl::FailedPreconditionError("the alarm is already acknowledged");
  alarm->set_acknowledged(true);
  if (alarm->state() == v1::ALARM_STATE_ACTIVE) alarm->set_state(v1::ALARM_STATE_ACKNOWLEDGED);
  AlarmStore::UpdateAlarm(tx, *alarm);
  v1::AlarmChange change;
  change.set_state(v1::ALARM_STATE_ACKNOWLEDGED);
  *change.mutable_time() = TimeUtil::GetCurrentTime();
  change.set_by(by);
  change.set_reason(comment);
  AlarmStore::AddChange(tx, alarm->alarm_id(), alarm->history_size() + 1, change);
  *alarm->add_history() = change;
  v1::AlarmAcknowledged event;
  *event.mutable_alarm() = *alarm;
  if (absl::Status s = Publish(tx, tenant, *alarm, "AlarmAcknowledged", event); !s.ok()) return s;
  return *alarm;
}

}  // namespace ptd::telemetry
