#ifndef PTD_SERVICES_GATEWAY_READINESS_H_
#define PTD_SERVICES_GATEWAY_READINESS_H_

#include <functional>
#include <thread>

#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "libs/pg/pool.h"
#include "libs/redis/client.h"
#include "services/gateway/backends.h"
#include "services/gateway/gateway.h"

namespace ptd::gateway {

// One round of checks: PostgreSQL (a SELECT), Redis (a PING) and every backend's health, each "ok" or its
// error; ready when all are ok.
Readiness CheckReadiness(pg::Pool& pool, redis::Client& redis, const Backends& backends);

// Runs CheckReadiness every `interval` in a thread of its own, from construction until Stop, and hands each
// round to `report`: /readyz answers from the last round, so that probes cost nothing.
class ReadinessChecker {
 public:
  ReadinessChecker(pg::Pool& pool, redis::Client& redis, const Backends& backends, absl::Duration interval,
                   std::function<void(Readiness)> report);
  ReadinessChecker(const ReadinessChecker&) = delete;
  ReadinessChecker& operator=(const ReadinessChecker&) = delete;
  ~ReadinessChecker() { Stop(); }

  // Ends the thread (a round under way finishes first). Idempotent.
  void Stop();

 private:
  absl::Notification stop_;
  std::thread thread_;
};

}  // namespace ptd::gateway

#endif  // PTD_SERVICES_GATEWAY_READINESS_H_
