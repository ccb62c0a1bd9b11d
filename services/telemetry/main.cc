// ptd-telemetry: the digital factory's devices. Flags -> config -> server; nothing else.
#include <prometheus/registry.h>

#include <iostream>

#include "libs/core/config.h"
#include "libs/core/log.h"
#include "libs/outbox/relay.h"
#include "libs/pg/migrate.h"
#include "libs/pg/pool.h"
#include "libs/redis/client.h"
#include "libs/server/server.h"
#include "services/telemetry/alarm_engine.h"
#include "services/telemetry/ingest.h"
#include "services/telemetry/live_feed.h"
#include "services/telemetry/maintenance.h"
#include "services/telemetry/telemetry_service.h"

int main(int argc, char** argv) {
  ptd::Config config(
      "ptd-telemetry",
      "PTDCloud telemetry: device registry, ingest, time series with rollups, energy, OEE, alarms, live feed.",
      {{"grpc-address", "127.0.0.1:50056", "host:port to serve gRPC on"},
       {"metrics-address", "127.0.0.1:9156", "host:port to serve Prometheus /metrics on; empty for none"},
       {"pg-url", "postgresql://ptd@127.0.0.1:5432/postgres", "PostgreSQL connection URL"},
       {"pg-schema", "telemetry", "PostgreSQL schema owned by this service"},
       {"pg-pool-size", "16", "most PostgreSQL connections held"},
       {"redis-url", "redis://127.0.0.1:6379", "Redis URL for events, latest values and the live feed"},
       {"internal-token", "", "shared credential every caller must present (x-ptd-internal-token); required"},
       {"migrations-dir", "", "folder of numbered SQL migrations; empty = 'migrations' next to the binary"},
       {"relay-interval", "100ms", "how often the outbox relay looks for new events"},
       {"late-window", "168h", "samples older than this are refused"},
       {"future-tolerance", "5m", "samples further in the future than this are refused"},
       {"max-batch-samples", "200000", "most samples in one ingest batch"},
       {"raw-retention", "2160h", "how long raw samples are kept (whole days)"},
       {"minute-retention", "9600h", "how long 1-minute rollups are kept"},
       {"hour-retention", "43800h", "how long 1-hour rollups are kept"},
       {"day-retention", "175200h", "how long 1-day rollups are kept"},
       {"no-data-sweep-interval", "5s", "how often no-data alarm rules are checked"},
       {"housekeeping-interval", "1h", "how often partitions are made ahead and retention applied"},
       {"max-watchers", "64", "most WatchLive streams at once (each holds a Redis connection)"},
       {"shutdown-grace", "0s", "after SIGTERM, how long health says NOT_SERVING before draining"},
       {"drain-timeout", "15s", "after SIGTERM, how long in-flight calls may take to finish"},
       {"log-level", "info", "debug, info, warn or error"},
       {"migrate-only", "false", "apply the migrations and exit (for a deploy's migration job)"}});
  config.ParseOrExit(argc, argv);
  ptd::SetUpServiceOrExit(config, "telemetry");
  if (config.DurationOrExit("late-window") >= config.DurationOrExit("raw-retention")) {
    std::cerr << "--late-window must be shorter than --raw-retention: a late sample would land in a day already "
                 "dropped\n";
    return 2;
  }

  auto registry = std::make_shared<prometheus::Registry>();
  std::unique_ptr<ptd::pg::Pool> pool = ptd::pg::OpenMigratedPoolOrExit(config, "telemetry", registry.get());

  auto redis = ptd::redis::Client::Create({.url = config.Get("redis-url"), .pool_size = 8});
  if (!redis.ok()) ptd::ExitWithError("cannot reach Redis", redis.status());
  auto watch_redis = ptd::redis::Client::Create(
      {.url = config.Get("redis-url"), .pool_size = static_cast<int>(config.IntOrExit("max-watchers"))});
  if (!watch_redis.ok()) ptd::ExitWithError("cannot reach Redis", watch_redis.status());
  ptd::outbox::Relay relay(*pool, **redis, {.interval = config.DurationOrExit("relay-interval")}, registry.get());
  relay.Start();

  ptd::telemetry::AlarmEngine alarms(registry.get());
  ptd::telemetry::LiveFeed live(**redis, **watch_redis, registry.get());
  ptd::telemetry::Ingestor ingestor(*pool, alarms, live,
                                    {.late_us = absl::ToInt64Microseconds(config.DurationOrExit("late-window")),
                                     .future_us = absl::ToInt64Microseconds(config.DurationOrExit("future-tolerance")),
                                     .max_samples_per_batch = config.IntOrExit("max-batch-samples")},
                                    registry.get());
  if (absl::Status s = ingestor.PreparePartitions(); !s.ok())
    ptd::ExitWithError("cannot make the sample partitions", s);
  ptd::telemetry::Maintenance maintenance(*pool, ingestor, alarms, live,
                                          {.raw = config.DurationOrExit("raw-retention"),
                                           .minute = config.DurationOrExit("minute-retention"),
                                           .hour = config.DurationOrExit("hour-retention"),
                                           .day = config.DurationOrExit("day-retention")},
                                          config.DurationOrExit("no-data-sweep-interval"),
                                          config.DurationOrExit("housekeeping-interval"));
  maintenance.Start();

  ptd::telemetry::TelemetryService service(*pool, ingestor, alarms, live);
  ptd::Server server(ptd::ServerOptionsFromFlags(config, "telemetry", registry));
  server.AddService(&service);
  if (absl::Status s = server.Start(); !s.ok()) ptd::ExitWithError("cannot start the server", s);
  ptd::log::Info("telemetry serving", {{"grpc_port", server.grpc_port()}, {"metrics_port", server.metrics_port()}});
  server.Wait();
  maintenance.Stop();
  relay.Stop();
  ptd::log::Info("telemetry stopped");
  return 0;
}
