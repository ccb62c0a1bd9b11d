#ifndef PTD_SERVICES_TELEMETRY_ALARM_ENGINE_H_
#define PTD_SERVICES_TELEMETRY_ALARM_ENGINE_H_

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/registry.h>

#include <pqxx/pqxx>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "libs/pg/pool.h"
#include "ptd/telemetry/v1/telemetry.pb.h"
#include "services/telemetry/domain/sample.h"

// Runs the alarm rules (domain/alarms.h) against the database: the rules' state lives in their rows and
// changes in the same transaction as the samples that change it; every raise, acknowledgement and clear is an
// alarm row change with its history entry and an event on ptd.telemetry.events (outbox).
namespace ptd::telemetry {

inline constexpr char kEventStream[] = "ptd.telemetry.events";

class AlarmEngine {
 public:
  // `registry` (nullable) receives ptd_telemetry_alarms_raised_total{tenant}.
  explicit AlarmEngine(prometheus::Registry* registry);

  struct NewSamples {
    std::string device_id;
    std::vector<Sample> samples;  // in time order, all newer than what the point had
  };

  // Inside ingest's transaction: evaluates the rules of these points; returns the alarms that changed.
  absl::StatusOr<std::vector<v1::Alarm>> OnSamples(pqxx::work& tx, const std::string& tenant,
                                                   const absl::flat_hash_map<std::string, NewSamples>& samples);

  // One pass of the no-data sweeper over every tenant: raises the no-data alarms now due. Returns the raised
  // alarms with their tenants.
  absl::StatusOr<std::vector<std::pair<std::string, v1::Alarm>>> SweepNoData(pg::Pool& pool, int64_t now_us);

  // A user acknowledges an alarm: NOT_FOUND for another tenant's, FAILED_PRECONDITION when already acknowledged.
  // After the commit that made `changed`: counts the alarms among them that were raised.
  void CountRaised(const std::string& tenant, const std::vector<v1::Alarm>& changed);

  absl::StatusOr<v1::Alarm> Acknowledge(pqxx::work& tx, const std::string& tenant, const std::string& alarm_id,
                                        const std::string& by, const std::string& comment);

 private:
  prometheus::Family<prometheus::Counter>* raised_ = nullptr;
};

}  // namespace ptd::telemetry

#endif  // PTD_SERVICES_TELEMETRY_ALARM_ENGINE_H_
