#include "services/telemetry/store/alarm_store.h"

#include <limits>

#include "google/protobuf/util/time_util.h"
#include "services/telemetry/store/registry_store.h"

namespace ptd::telemetry {
namespace {

using google::protobuf::util::TimeUtil;

constexpr char kRuleColumns[] =
    "r.rule_id, r.point_id, r.name, r.kind, r.severity, r.high::text, r.low::text, r.hysteresis, r.max_rate_per_s, "
    "r.raise_after_ms, r.missed_intervals, (extract(epoch from r.create_time) * 1000000)::bigint, r.tenant_id, "
    "p.device_id, p.expected_interval_ms, r.active, r.condition_since_us, r.has_last, r.last_ts_us, r.last_value, "
    "coalesce(r.open_alarm_id::text, '')";

RuleRow RuleFromRow(const pqxx::row& r) {
  RuleRow out;
  v1::AlarmRule& p = out.proto;
  p.set_rule_id(r[0].as<std::string>());
  p.set_point_id(r[1].as<std::string>());
  p.set_name(r[2].as<std::string>());
  p.set_kind(static_cast<v1::AlarmRuleKind>(r[3].as<int>()));
  p.set_severity(static_cast<v1::Severity>(r[4].as<int>()));
  if (!r[5].is_null()) p.set_high(std::stod(r[5].as<std::string>()));
  if (!r[6].is_null()) p.set_low(std::stod(r[6].as<std::string>()));
  p.set_hysteresis(r[7].as<double>());
  p.set_max_rate_per_s(r[8].as<double>());
  p.set_raise_after_ms(r[9].as<int64_t>());
  p.set_missed_intervals(r[10].as<int>());
  *p.mutable_create_time() = TimeUtil::MicrosecondsToTimestamp(r[11].as<int64_t>());
  out.tenant_id = r[12].as<std::string>();
  out.device_id = r[13].as<std::string>();
  out.rule = AlarmRule{.kind = KindOf(p.kind()),
                       .high = p.has_high() ? p.high() : std::numeric_limits<double>::infinity(),
                       .low = p.has_low() ? p.low() : -std::numeric_limits<double>::infinity(),
                       .hysteresis = p.hysteresis(),
                       .max_rate_per_s = p.max_rate_per_s(),
                       .raise_after_us = p.raise_after_ms() * 1000,
                       .expected_interval_us = r[14].as<int64_t>() * 1000,
                       .missed_intervals = p.missed_intervals()};
  out.state = RuleState{.active = r[15].as<bool>(),
                        .condition_since_us = r[16].as<int64_t>(),
                        .has_last = r[17].as<bool>(),
                        .last = Sample{r[18].as<int64_t>(), r[19].as<double>()}};
  out.open_alarm_id = r[20].as<std::string>();
  return out;
}

constexpr char kAlarmColumns[] =
    "alarm_id, rule_id, point_id, device_id, severity, state, acknowledged, "
    "(extract(epoch from raise_time) * 1000000)::bigint, (extract(epoch from clear_time) * 1000000)::bigint, value, "
    "reason";

v1::Alarm AlarmFromRow(const pqxx::row& r) {
  v1::Alarm a;
  a.set_alarm_id(r[0].as<std::string>());
  a.set_rule_id(r[1].as<std::string>());
  a.set_point_id(r[2].as<std::string>());
  a.set_device_id(r[3].as<std::string>());
  a.set_severity(static_cast<v1::Severity>(r[4].as<int>()));
  a.set_state(static_cast<v1::AlarmState>(r[5].as<int>()));
  a.set_acknowledged(r[6].as<bool>());
  *a.mutable_raise_time() = TimeUtil::MicrosecondsToTimestamp(r[7].as<int64_t>());
  if (!r[8].is_null()) *a.mutable_clear_time() = TimeUtil::MicrosecondsToTimestamp(r[8].as<int64_t>());
  a.set_value(r[9].as<double>());
  a.set_reason(r[10].as<std::string>());
  return a;
}

void LoadHistory(pqxx::work& tx, v1::Alarm& alarm) {
  static constexpr char kSql[] =
      "SELECT state, (extract(epoch from time) * 1000000)::bigint, by_whom, reason FROM alarm_change "
      "WHERE alarm_id = $1 ORDER BY seq";
  for (const auto& row : tx.exec_params(kSql, alarm.alarm_id())) {
    v1::AlarmChange* c = alarm.add_history();
    c->set_state(static_cast<v1::AlarmState>(row[0].as<int>()));
    *c->mutable_time() = TimeUtil::MicrosecondsToTimestamp(row[1].as<int64_t>());
    c->set_by(row[2].as<std::string>());
    c->set_reason(row[3].as<std::string>());
  }
}

std::string Micros(const google::protobuf::Timestamp& t) {
  return std::to_string(TimeUtil::TimestampToMicroseconds(t));
}

}  // namespace

RuleKind KindOf(v1::AlarmRuleKind kind) {
  switch (kind) {
    case v1::ALARM_RULE_KIND_RATE_OF_CHANGE:
      return RuleKind::kRateOfChange;
    case v1::ALARM_RULE_KIND_NO_DATA:
      return RuleKind::kNoData;
    default:
      return RuleKind::kThreshold;
  }
}

void AlarmStore::InsertRule(pqxx::work& tx, const std::string& tenant, const v1::AlarmRule& r) {
  static constexpr char kSql[] =
      "INSERT INTO alarm_rule (rule_id, tenant_id, point_id, name, kind, severity, high, low, hysteresis, "
      "max_rate_per_s, raise_after_ms, missed_intervals) VALUES ($1, $2, $3, $4, $5, $6, NULLIF($7, '')::float8, "
      "NULLIF($8, '')::float8, $9, $10, $11, $12)";
  tx.exec_params(kSql, r.rule_id(), tenant, r.point_id(), r.name(), static_cast<int>(r.kind()),
                 static_cast<int>(r.severity()), r.has_high() ? DoubleText(r.high()) : "",
                 r.has_low() ? DoubleText(r.low()) : "", r.hysteresis(), r.max_rate_per_s(), r.raise_after_ms(),
                 r.missed_intervals());
}

std::vector<RuleRow> AlarmStore::ListRules(pqxx::work& tx, const std::string& tenant, const std::string& point_id) {
  static const std::string kSql = std::string("SELECT ") + kRuleColumns +
                                  " FROM alarm_rule r JOIN data_point p ON p.point_id = r.point_id "
                                  "WHERE r.tenant_id = $1 AND ($2 = '' OR r.point_id = $2::uuid) ORDER BY r.rule_id";
  std::vector<RuleRow> out;
  for (const auto& row : tx.exec_params(kSql, tenant, point_id)) out.push_back(RuleFromRow(row));
  return out;
}

std::vector<RuleRow> AlarmStore::LockRulesOfPoints(pqxx::work& tx, const std::vector<std::string>& point_ids) {
  static const std::string kSql = std::string("SELECT ") + kRuleColumns +
                                  " FROM alarm_rule r JOIN data_point p ON p.point_id = r.point_id "
                                  "WHERE r.point_id = ANY($1::uuid[]) ORDER BY r.rule_id FOR UPDATE OF r";
  std::vector<RuleRow> out;
  for (const auto& row : tx.exec_params(kSql, TextArray(point_ids))) out.push_back(RuleFromRow(row));
  return out;
}

std::vector<RuleRow> AlarmStore::LockNoDataRules(pqxx::work& tx) {
  static const std::string kSql = std::string("SELECT ") + kRuleColumns +
                                  " FROM alarm_rule r JOIN data_point p ON p.point_id = r.point_id "
                                  "WHERE r.kind = 3 AND NOT r.active AND r.has_last ORDER BY r.rule_id "
                                  "FOR UPDATE OF r SKIP LOCKED";
  std::vector<RuleRow> out;
  for (const auto& row : tx.exec(kSql)) out.push_back(RuleFromRow(row));
  return out;
}

void AlarmStore::SaveState(pqxx::work& tx, const RuleRow& r) {
  static constexpr char kSql[] =
      "UPDATE alarm_rule SET active = $2, condition_since_us = $3, has_last = $4, last_ts_us = $5, last_value = $6, "
      "open_alarm_id = NULLIF($7, '')::uuid WHERE rule_id = $1";
  tx.exec_params(kSql, r.proto.rule_id(), r.state.active, r.state.condition_since_us, r.state.has_last,
                 r.state.last.ts_us, r.state.last.value, r.open_alarm_id);
}

void AlarmStore::InsertAlarm(pqxx::work& tx, const v1::Alarm& a, const std::string& tenant) {
  static constexpr char kSql[] =
      "INSERT INTO alarm (alarm_id, tenant_id, rule_id, point_id, device_id, severity, state, acknowledged, "
      "raise_time, value, reason) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, to_timestamp($9::bigint / 1000000.0), "
      "$10, $11)";
  tx.exec_params(kSql, a.alarm_id(), tenant, a.rule_id(), a.point_id(), a.device_id(), static_cast<int>(a.severity()),
                 static_cast<int>(a.state()), a.acknowledged(), Micros(a.raise_time()), a.value(), a.reason());
}

void AlarmStore::UpdateAlarm(pqxx::work& tx, const v1::Alarm& a) {
  static constexpr char kSql[] =
      "UPDATE alarm SET state = $2, acknowledged = $3, clear_time = CASE WHEN $4 = '' THEN NULL ELSE "
      "to_timestamp($4::bigint / 1000000.0) END WHERE alarm_id = $1";
  tx.exec_params(kSql, a.alarm_id(), static_cast<int>(a.state()), a.acknowledged(),
                 a.has_clear_time() ? Micros(a.clear_time()) : "");
}

void AlarmStore::AddChange(pqxx::work& tx, const std::string& alarm_id, int seq, const v1::AlarmChange& c) {
  static constexpr char kSql[] =
      "INSERT INTO alarm_change (alarm_id, seq, state, time, by_whom, reason) "
      "VALUES ($1, $2, $3, to_timestamp($4::bigint / 1000000.0), $5, $6)";
  tx.exec_params(kSql, alarm_id, seq, static_cast<int>(c.state()), Micros(c.time()), c.by(), c.reason());
}

std::optional<v1::Alarm> AlarmStore::GetAlarm(pqxx::work& tx, const std::string& tenant, const std::string& alarm_id,
                                              bool for_update) {
  static const std::string kSql =
      std::string("SELECT ") + kAlarmColumns + " FROM alarm WHERE tenant_id = $1 AND alarm_id = $2";
  static const std::string kSqlForUpdate = kSql + " FOR UPDATE";
  pqxx::result r = tx.exec_params(for_update ? kSqlForUpdate : kSql, tenant, alarm_id);
  if (r.empty()) return std::nullopt;
  v1::Alarm a = AlarmFromRow(r[0]);
  LoadHistory(tx, a);
  return a;
}

std::vector<v1::Alarm> AlarmStore::ListAlarms(pqxx::work& tx, const std::string& tenant, bool include_cleared,
                                              const std::string& device_id, const std::string& after, int limit) {
  static const std::string kSql = std::string("SELECT ") + kAlarmColumns +
                                  " FROM alarm WHERE tenant_id = $1 AND ($2 OR state <> 3) AND ($3 = '' OR "
                                  "device_id = $3::uuid) AND ($4 = '' OR alarm_id < $4::uuid) "
                                  "ORDER BY alarm_id DESC LIMIT $5";
  std::vector<v1::Alarm> out;
  for (const auto& row : tx.exec_params(kSql, tenant, include_cleared, device_id, after, limit)) {
    out.push_back(AlarmFromRow(row));
    LoadHistory(tx, out.back());
  }
  return out;
}

}  // namespace ptd::telemetry
