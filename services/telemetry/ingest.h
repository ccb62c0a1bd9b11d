#ifndef PTD_SERVICES_TELEMETRY_INGEST_H_
#define PTD_SERVICES_TELEMETRY_INGEST_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "libs/pg/pool.h"
#include "libs/server/caller.h"
#include "ptd/telemetry/v1/telemetry.pb.h"
#include "services/telemetry/domain/ingest.h"

namespace prometheus {
class Registry;
}

namespace ptd::telemetry {

class AlarmEngine;
class LiveFeed;

struct IngestOptions {
  int64_t late_us = 7 * kMicrosPerDay;       // older samples are refused
  int64_t future_us = 5 * kMicrosPerMinute;  // newer samples are refused
  int64_t max_samples_per_batch = 200'000;
};

// Stores a batch of samples: checks who writes and every sample, drops what is already stored, and in one
// transaction writes the new samples as blocks (COPY), folds them into the 1 min / 1 h / 1 day rollups, moves
// each point's latest value, and evaluates the points' alarm rules. Only then answers; afterwards it updates the
// latest values in Redis and the live feed (both rebuildable, never the record).
class Ingestor {
 public:
  Ingestor(pg::Pool& pool, AlarmEngine& alarms, LiveFeed& live, IngestOptions options, prometheus::Registry* registry);
  ~Ingestor();

  // Check() and then IngestMany() of the one batch.
  absl::StatusOr<v1::IngestResponse> Ingest(const Caller& caller, const v1::IngestRequest& request);

  // What is wrong with a batch as a whole (too many samples, the caller may not write): then none of it is
  // stored. Otherwise OK; bad samples are the batch's answer, not an error.
  absl::Status Check(const Caller& caller, const v1::IngestRequest& request) const;

  // Stores several checked batches in one transaction (one commit, one row per point and day for all of them
  // together): one answer per batch, in order, as if they had been stored one after the other.
  absl::StatusOr<std::vector<v1::IngestResponse>> IngestMany(const Caller& caller,
                                                             const std::vector<const v1::IngestRequest*>& requests);

  // Makes the daily partitions of [now - late window - 1 day, now + 2 days]; called at start and periodically.
  absl::Status PreparePartitions();

 private:
  struct Metrics;
  absl::Status EnsurePartitions(int64_t first_day, int64_t last_day);

  pg::Pool& pool_;
  AlarmEngine& alarms_;
  LiveFeed& live_;
  IngestOptions options_;
  std::unique_ptr<Metrics> metrics_;

  absl::Mutex mu_;
  absl::flat_hash_set<int64_t> partition_days_ ABSL_GUARDED_BY(mu_);  // days known to have a partition
};

}  // namespace ptd::telemetry

#endif  // PTD_SERVICES_TELEMETRY_INGEST_H_
