// ptd-trading: the B2B marketplace service. Flags -> config -> server; nothing else.
#include <prometheus/registry.h>

#include <iostream>

#include "libs/core/config.h"
#include "libs/core/log.h"
#include "libs/outbox/relay.h"
#include "libs/pg/migrate.h"
#include "libs/pg/pool.h"
#include "libs/redis/client.h"
#include "libs/server/server.h"
#include "services/trading/group_buying.h"
#include "services/trading/order_service.h"
#include "services/trading/spot_service.h"
#include "services/trading/trading_service.h"

int main(int argc, char** argv) {
  ptd::Config config(
      "ptd-trading", "PTDCloud trading: commodity catalogue and sellers' listings over gRPC.",
      {{"grpc-address", "127.0.0.1:50051", "host:port to serve gRPC on"},
       {"metrics-address", "127.0.0.1:9151", "host:port to serve Prometheus /metrics on; empty for none"},
       {"pg-url", "postgresql://ptd@127.0.0.1:5432/postgres", "PostgreSQL connection URL"},
       {"pg-schema", "trading", "PostgreSQL schema owned by this service"},
       {"pg-pool-size", "16", "most PostgreSQL connections held"},
       {"redis-url", "redis://127.0.0.1:6379", "Redis URL for the event streams"},
       {"internal-token", "", "shared credential every caller must present (x-ptd-internal-token); required"},
       {"migrations-dir", "", "folder of numbered SQL migrations; empty = 'migrations' next to the binary"},
       {"relay-interval", "100ms", "how often the outbox relay looks for new events"},
       {"relay-round-gap", "10ms", "least time between two outbox relay rounds that were not full (events gather)"},
       {"group-sweep-interval", "500ms", "how often group offers past their deadline are closed"},
       {"shutdown-grace", "0s", "after SIGTERM, how long health says NOT_SERVING before draining"},
       {"drain-timeout", "15s", "after SIGTERM, how long in-flight calls may take to finish"},
       {"log-level", "info", "debug, info, warn or error"},
       {"migrate-only", "false", "apply the migrations and exit (for a deploy's migration job)"}});
  config.ParseOrExit(argc, argv);
  ptd::SetUpServiceOrExit(config, "trading");

  auto registry = std::make_shared<prometheus::Registry>();
  std::unique_ptr<ptd::pg::Pool> pool = ptd::pg::OpenMigratedPoolOrExit(config, "trading", registry.get());

  auto redis = ptd::redis::Client::Create({.url = config.Get("redis-url")});
  if (!redis.ok()) ptd::ExitWithError("cannot reach Redis", redis.status());
  ptd::outbox::Relay relay(*pool, **redis,
                           {.interval = config.DurationOrExit("relay-interval"),
                            .min_round_gap = config.DurationOrExit("relay-round-gap")},
                           registry.get());
  relay.Start();

  ptd::trading::TradingService service(*pool);
  ptd::trading::OrderService orders(*pool, {.registry = registry.get()});
  ptd::trading::GroupDeadlineSweeper group_sweeper(*pool, config.DurationOrExit("group-sweep-interval"));
  group_sweeper.Start();
  ptd::trading::SpotMarketService spot(*pool, {.registry = registry.get()});
  ptd::Server server(ptd::ServerOptionsFromFlags(config, "trading", registry));
  server.AddService(&service);
  server.AddService(&orders);
  server.AddService(&spot);
  if (absl::Status s = server.Start(); !s.ok()) ptd::ExitWithError("cannot start the server", s);
  ptd::log::Info("trading serving", {{"grpc_port", server.grpc_port()}, {"metrics_port", server.metrics_port()}});
  server.Wait();
  group_sweeper.Stop();
  relay.Stop();
  ptd::log::Info("trading stopped");
  return 0;
}
