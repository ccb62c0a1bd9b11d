// outbox_test_consumer: a consumer process for outbox_test. It applies each event by counting it in the table
// `applied(event_id, times, consumer)`, so an event applied twice shows as times = 2. Runs until SIGTERM,
// then logs its counters. With PTD_FAULT_CRASH_AFTER_APPLY=N it kills itself after its N-th applied event.
#include <prometheus/registry.h>
#include <signal.h>

#include "libs/core/config.h"
#include "libs/core/log.h"
#include "libs/outbox/consumer.h"

namespace {

constexpr char kApplySql[] = R"sql(
INSERT INTO applied (event_id, times, consumer) VALUES ($1, 1, $2)
ON CONFLICT (event_id) DO UPDATE SET times = applied.times + 1)sql";

double CounterValue(prometheus::Registry& registry, const std::string& name) {
  for (const auto& family : registry.Collect()) {
    if (family.name == name && !family.metric.empty()) return family.metric[0].counter.value;
  }
  return 0;
}

[[noreturn]] void Die(const std::string& what, const absl::Status& status) {
  ptd::log::Error(what, {{"error", status.ToString()}});
  std::exit(1);
}

}  // namespace

int main(int argc, char** argv) {
  ptd::Config config("outbox_test_consumer", "Applies a stream's events into the table `applied`.",
                     {{"pg-url", "", "PostgreSQL URL"},
                      {"schema", "", "schema holding inbox and applied"},
                      {"redis-url", "", "Redis URL"},
                      {"stream", "", "stream key"},
                      {"group", "", "consumer group"},
                      {"consumer", "", "consumer name"},
                      {"claim-min-idle", "1s", "claim pending entries idle this long"}});
  config.ParseOrExit(argc, argv);
  ptd::log::SetService("outbox_test_consumer");

  // SIGTERM is taken by sigwait below, in this thread only.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  auto pool = ptd::pg::Pool::Create({.url = config.Get("pg-url"), .schema = config.Get("schema"), .size = 2}, nullptr);
  if (!pool.ok()) Die("pool", pool.status());
  auto redis = ptd::redis::Client::Create({.url = config.Get("redis-url")});
  if (!redis.ok()) Die("redis", redis.status());

  const std::string consumer_name = config.Get("consumer");
  prometheus::Registry registry;
  ptd::outbox::Consumer consumer(
      **pool, **redis,
      {.stream = config.Get("stream"),
       .group = config.Get("group"),
       .consumer = consumer_name,
       .batch_size = 100,
       .block = absl::Milliseconds(200),
       .claim_min_idle = config.DurationOrExit("claim-min-idle")},
      [&](pqxx::work& tx, const ptd::outbox::Delivery& delivery) {
        tx.exec_params(kApplySql, delivery.event_id, consumer_name);
        return absl::OkStatus();
      },
      &registry);
  consumer.Start();
  int signal_number = 0;
  sigwait(&signals, &signal_number);
  consumer.Stop();
  ptd::log::Info("consumer exiting", {{"applied", CounterValue(registry, "ptd_consumer_applied_total")},
                                      {"duplicates", CounterValue(registry, "ptd_consumer_duplicates_total")}});
  return 0;
}
