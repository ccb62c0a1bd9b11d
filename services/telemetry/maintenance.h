#ifndef PTD_SERVICES_TELEMETRY_MAINTENANCE_H_
#define PTD_SERVICES_TELEMETRY_MAINTENANCE_H_

#include <thread>

#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "libs/pg/pool.h"

namespace ptd::telemetry {

class AlarmEngine;
class Ingestor;
class LiveFeed;

struct Retention {
  absl::Duration raw = absl::Hours(24 * 90);
  absl::Duration minute = absl::Hours(24 * 400);
  absl::Duration hour = absl::Hours(24 * 365 * 5);
  absl::Duration day = absl::Hours(24 * 365 * 20);
};

// The background work of the service, on one thread: the no-data sweep of alarm rules (every `sweep_interval`),
// and every `housekeeping_interval` the daily partitions ahead of time and the retention of each resolution
// (whole raw partitions dropped, old rollup rows deleted). Several replicas may run it at once: partition work
// takes an advisory lock, the sweep skips rules another replica holds.
class Maintenance {
 public:
  Maintenance(pg::Pool& pool, Ingestor& ingestor, AlarmEngine& alarms, LiveFeed& live, Retention retention,
              absl::Duration sweep_interval, absl::Duration housekeeping_interval);
  ~Maintenance();
  void Start();
  void Stop();

 private:
  void Run();
  void Housekeeping();

  pg::Pool& pool_;
  Ingestor& ingestor_;
  AlarmEngine& alarms_;
  LiveFeed& live_;
  Retention retention_;
  absl::Duration sweep_interval_;
  absl::Duration housekeeping_interval_;
  absl::Notification stop_;
  std::thread thread_;
};

}  // namespace ptd::telemetry

#endif  // PTD_SERVICES_TELEMETRY_MAINTENANCE_H_
