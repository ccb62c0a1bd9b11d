#include "services/telemetry/maintenance.h"

#include "absl/time/clock.h"
#include "libs/core/log.h"
#include "services/telemetry/alarm_engine.h"
#include "services/telemetry/domain/ingest.h"
#include "services/telemetry/ingest.h"
#include "services/telemetry/live_feed.h"
#include "services/telemetry/store/sample_store.h"

namespace ptd::telemetry {

Maintenance::Maintenance(pg::Pool& pool, Ingestor& ingestor, AlarmEngine& alarms, LiveFeed& live, Retention retention,
                         absl::Duration sweep_interval, absl::Duration housekeeping_interval)
    : pool_(pool),
      ingestor_(ingestor),
      alarms_(alarms),
      live_(live),
      retention_(retention),
      sweep_interval_(sweep_interval),
      housekeeping_interval_(housekeeping_interval) {}

Maintenance::~Maintenance() { Stop(); }

void Maintenance::Start() {
  thread_ = std::thread([this] { Run(); });
}

void Maintenance::Stop() {
  if (!stop_.HasBeenNotified()) stop_.Notify();
  if (thread_.joinable()) thread_.join();
}

void Maintenance::Housekeeping() {
  if (absl::Status s = ingestor_.PreparePartitions(); !s.ok()) {
    log::Error("partitions not prepared", {{"status", s.ToString()}});
  }
  int64_t now = absl::ToUnixMicros(absl::Now());
  absl::Status s = pool_.InTransaction([&](pqxx::work& tx) {
    int dropped = SampleStore::DropPartitionsBefore(tx, DayOf(now - absl::ToInt64Microseconds(retention_.raw)));
    int64_t deleted =
        SampleStore::DeleteRollupsBefore(tx, "rollup_1m", now - absl::ToInt64Microseconds(retention_.minute));
    deleted += SampleStore::DeleteRollupsBefore(tx, "rollup_1h", now - absl::ToInt64Microseconds(retention_.hour));
    deleted += SampleStore::DeleteRollupsBefore(tx, "rollup_1d", now - absl::ToInt64Microseconds(retention_.day));
    if (dropped > 0 || deleted > 0) {
      log::Info("retention applied", {{"partitions_dropped", dropped}, {"rollup_rows_deleted", deleted}});
    }
    return absl::OkStatus();
  });
  if (!s.ok()) log::Error("retention not applied", {{"status", s.ToString()}});
}

void Maintenance::Run() {
  absl::Time next_housekeeping = absl::InfinitePast();
  while (!stop_.HasBeenNotified()) {
    if (absl::Now() >= next_housekeeping) {
      Housekeeping();
      next_housekeeping = absl::Now() + housekeeping_interval_;
    }
    auto raised = alarms_.SweepNoData(pool_, absl::ToUnixMicros(absl::Now()));
    if (!raised.ok()) {
      log::Error("no-data sweep failed", {{"status", raised.status().ToString()}});
    } else {
      for (const auto& [tenant, alarm] : *raised) {
        alarms_.CountRaised(tenant, {alarm});
        live_.Publish(tenant, {}, {alarm});
      }
    }
    stop_.WaitForNotificationWithTimeout(sweep_interval_);
  }
}

}  // namespace ptd::telemetry
