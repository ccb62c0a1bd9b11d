#ifndef PTD_SERVICES_TELEMETRY_STORE_ALARM_STORE_H_
#define PTD_SERVICES_TELEMETRY_STORE_ALARM_STORE_H_

#include <optional>
#include <pqxx/pqxx>
#include <string>
#include <vector>

#include "ptd/telemetry/v1/telemetry.pb.h"
#include "services/telemetry/domain/alarms.h"

// SQL of alarm rules (with their evaluation state), alarms and their history (migrations/0003_alarms.sql).
namespace ptd::telemetry {

struct RuleRow {
  v1::AlarmRule proto;
  std::string tenant_id;
  std::string device_id;
  AlarmRule rule;  // the domain's view, with the point's expected interval
  RuleState state;
  std::string open_alarm_id;  // the alarm this rule raised and that is not cleared yet
};

class AlarmStore {
 public:
  static void InsertRule(pqxx::work& tx, const std::string& tenant, const v1::AlarmRule& rule);
  static std::vector<RuleRow> ListRules(pqxx::work& tx, const std::string& tenant, const std::string& point_id);
  // The rules of these points, locked for this transaction (ordered by rule id).
  static std::vector<RuleRow> LockRulesOfPoints(pqxx::work& tx, const std::vector<std::string>& point_ids);
  // Every no-data rule of every tenant, locked, skipping rules another process holds.
  static std::vector<RuleRow> LockNoDataRules(pqxx::work& tx);
  static void SaveState(pqxx::work& tx, const RuleRow& rule);

  static void InsertAlarm(pqxx::work& tx, const v1::Alarm& alarm, const std::string& tenant);
  static void UpdateAlarm(pqxx::work& tx, const v1::Alarm& alarm);
  static void AddChange(pqxx::work& tx, const std::string& alarm_id, int seq, const v1::AlarmChange& change);
  static std::optional<v1::Alarm> GetAlarm(pqxx::work& tx, const std::string& tenant, const std::string& alarm_id,
                                           bool for_update = false);
  static std::vector<v1::Alarm> ListAlarms(pqxx::work& tx, const std::string& tenant, bool include_cleared,
                                           const std::string& device_id, const std::string& after, int limit);
};

RuleKind KindOf(v1::AlarmRuleKind kind);

}  // namespace ptd::telemetry

#endif  // PTD_SERVICES_TELEMETRY_STORE_ALARM_STORE_H_
