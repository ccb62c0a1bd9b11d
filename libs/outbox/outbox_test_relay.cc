// outbox_test_relay: a relay process for outbox_test; runs until SIGTERM. With
// PTD_FAULT_RELAY_CRASH_AFTER_XADD=N it kills itself after its N-th XADD, before marking rows published.
#include <signal.h>

#include "libs/core/config.h"
#include "libs/core/log.h"
#include "libs/outbox/relay.h"

int main(int argc, char** argv) {
  ptd::Config config("outbox_test_relay", "Publishes a schema's outbox to Redis.",
                     {{"pg-url", "", "PostgreSQL URL"},
                      {"schema", "", "schema holding the outbox"},
                      {"redis-url", "", "Redis URL"},
                      {"batch-size", "100", "rows per transaction"}});
  config.ParseOrExit(argc, argv);
  ptd::log::SetService("outbox_test_relay");

  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  auto pool = ptd::pg::Pool::Create({.url = config.Get("pg-url"), .schema = config.Get("schema"), .size = 2}, nullptr);
  auto redis = ptd::redis::Client::Create({.url = config.Get("redis-url")});
  if (!pool.ok() || !redis.ok()) {
    ptd::log::Error("cannot start", {{"pool", pool.status().ToString()}, {"redis", redis.status().ToString()}});
    return 1;
  }
  ptd::outbox::Relay relay(
      **pool, **redis,
      {.batch_size = static_cast<int>(config.IntOrExit("batch-size")), .interval = absl::Milliseconds(100)});
  relay.Start();
  int signal_number = 0;
  sigwait(&signals, &signal_number);
  relay.Stop();
  return 0;
}
