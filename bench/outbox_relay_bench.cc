// outbox_relay_bench: the transactional-outbox relay's cost per event (libs/outbox/relay.h), against a running
// PostgreSQL and Redis (e.g. tests/infra/start.sh BUILD, which prints both URLs).
//
//   build/bench/outbox_relay_bench --pg-url=PG_URL --redis-url=REDIS_URL [--backlog=100000] [--rounds=2000]
//                                  [--per-round=20] [--batch-size=100] [--payload-bytes=200]
//
// Two figures, one line each, calling Relay::PublishOnce on this thread (no background thread, no LISTEN):
//  - backlog: --backlog pending rows written up front, then published round after round until none is left;
//    rounds/s, events/s, and CPU per event: the relay's own (this thread: the loop, libpq, hiredis) and the
//    servers' (this program's PostgreSQL backend and the Redis server, from /proc, so both must be local).
//  - steady:  after a VACUUM ANALYZE of the outbox, --rounds rounds of --per-round new rows each (written
//    between rounds, not timed), as under a steady load where batches come out smaller than --batch-size;
//    wall time per round (median, p99) and CPU per round (the relay's median, the servers' mean).
// Works in a schema and a stream of its own, dropped at the end.
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "libs/core/config.h"
#include "libs/core/log.h"
#include "libs/outbox/outbox.h"
#include "libs/outbox/relay.h"
#include "libs/pg/pool.h"
#include "libs/redis/client.h"

namespace {

// Rows $1 .. $1+$2-1 of the outbox, ids zero-padded so that text order is numeric order.
constexpr char kInsertSql[] = R"sql(
INSERT INTO outbox (id, stream, type, aggregate_id, tenant_id, payload, request_id)
SELECT lpad(n::text, 12, '0'), $3, 'ptd.bench.v1.Thing', 'agg-' || n, 'tenant-1',
       convert_to(repeat('x', $4), 'UTF8'), 'req-' || n
FROM generate_series($1::bigint, $1::bigint + $2 - 1) AS n)sql";

double ThreadCpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// User + system CPU of a process, from /proc (clock-tick resolution).
double ProcessCpuSeconds(int64_t pid) {
  std::ifstream file("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  // Fields after the command name, which is in parentheses: state is the 3rd field, utime the 14th.
  std::istringstream rest(stat.substr(std::min(stat.size(), stat.rfind(')') + 2)));
  std::string field;
  double ticks = 0;
  for (int n = 3; n <= 15 && rest >> field; ++n) {
    if (n >= 14) ticks += std::stod(field);
  }
  return ticks / static_cast<double>(sysconf(_SC_CLK_TCK));
}

double Percentile(std::vector<double> values, double p) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  return values[std::min(values.size() - 1, static_cast<size_t>(p * static_cast<double>(values.size())))];
}

}  // namespace

int main(int argc, char** argv) {
  ptd::Config config("outbox_relay_bench", "The outbox relay's cost per event.",
                     {{"pg-url", "", "PostgreSQL URL"},
                      {"redis-url", "", "Redis URL"},
                      {"backlog", "100000", "pending rows published in the backlog figure"},
                      {"rounds", "2000", "rounds of the steady figure"},
                      {"per-round", "20", "new rows per round in the steady figure"},
                      {"batch-size", "100", "the relay's batch_size"},
                      {"payload-bytes", "200", "payload size of each event"}});
  config.ParseOrExit(argc, argv);
  ptd::log::SetService("outbox_relay_bench");
  const int64_t backlog = config.IntOrExit("backlog");
  const int64_t rounds = config.IntOrExit("rounds");
  const int64_t per_round = config.IntOrExit("per-round");
  const int batch_size = static_cast<int>(config.IntOrExit("batch-size"));
  const int64_t payload_bytes = config.IntOrExit("payload-bytes");

  const std::string schema = absl::StrCat("outbox_relay_bench_", getpid());
  const std::string stream = absl::StrCat("ptd.bench.relay.", getpid());
  // One connection, so that its backend is the one whose CPU is counted.
  auto pool = ptd::pg::Pool::Create({.url = config.Get("pg-url"), .schema = schema, .size = 1}, nullptr);
  if (!pool.ok()) ptd::ExitWithError("cannot open the pool", pool.status());
  auto redis = ptd::redis::Client::Create({.url = config.Get("redis-url")});
  if (!redis.ok()) ptd::ExitWithError("cannot use redis", redis.status());
  auto exec = [&](const std::string& sql) {
    absl::Status status = (*pool)->InTransaction([&](pqxx::work& tx) {
      tx.exec(sql);
      return absl::OkStatus();
    });
    if (!status.ok()) ptd::ExitWithError(sql, status);
  };
  exec(absl::StrCat("CREATE SCHEMA ", schema));
  absl::Status tables = (*pool)->InTransaction([](pqxx::work& tx) { return ptd::outbox::EnsureTables(tx); });
  if (!tables.ok()) ptd::ExitWithError("cannot create the outbox", tables);
  absl::StatusOr<int64_t> backend = (*pool)->InTransaction(
      [](pqxx::work& tx) -> absl::StatusOr<int64_t> { return tx.exec1("SELECT pg_backend_pid()")[0].as<int64_t>(); });
  if (!backend.ok()) ptd::ExitWithError("cannot find the backend", backend.status());
  int64_t redis_pid = 0;
  if (absl::StatusOr<ptd::redis::Value> info = (*redis)->Command({"INFO", "server"}); info.ok()) {
    for (absl::string_view line : absl::StrSplit(info->str, "\r\n")) {
      if (absl::ConsumePrefix(&line, "process_id:")) (void)absl::SimpleAtoi(line, &redis_pid);
    }
  }
  if (redis_pid == 0) ptd::ExitWithError("cannot find the Redis server's pid", absl::NotFoundError("INFO server"));
  auto servers_cpu = [&] { return ProcessCpuSeconds(*backend) + ProcessCpuSeconds(redis_pid); };
  int64_t next_row = 1;
  auto write_rows = [&](int64_t count) {
    absl::Status status = (*pool)->InTransaction([&](pqxx::work& tx) {
      tx.exec_params(kInsertSql, next_row, count, stream, payload_bytes);
      return absl::OkStatus();
    });
    if (!status.ok()) ptd::ExitWithError("cannot write outbox rows", status);
    next_row += count;
  };
  ptd::outbox::Relay relay(**pool, **redis, {.batch_size = batch_size, .listen = false});
  auto publish = [&] {
    absl::StatusOr<int> published = relay.PublishOnce();
    if (!published.ok()) ptd::ExitWithError("PublishOnce failed", published.status());
    return *published;
  };

  if (backlog > 0) {
    write_rows(backlog);
    exec("ANALYZE outbox");
    int64_t published = 0;
    int64_t backlog_rounds = 0;
    const double servers_start = servers_cpu();
    const double cpu_start = ThreadCpuSeconds();
    const auto start = std::chrono::steady_clock::now();
    while (published < backlog) {
      const int n = publish();
      if (n == 0) break;
      published += n;
      ++backlog_rounds;
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const double cpu = ThreadCpuSeconds() - cpu_start;
    const double servers = servers_cpu() - servers_start;
    const double per_event_us = 1e6 / static_cast<double>(std::max<int64_t>(published, 1));
    std::printf(
        "backlog: %lld events in %lld rounds of up to %d, %.2f s: %.0f rounds/s, %.0f events/s; CPU per event: "
        "relay %.1f us, servers %.1f us\n",
        static_cast<long long>(published), static_cast<long long>(backlog_rounds), batch_size, seconds,
        static_cast<double>(backlog_rounds) / seconds, static_cast<double>(published) / seconds, cpu * per_event_us,
        servers * per_event_us);
  }

  if (rounds > 0) {
    // As autovacuum would, in time: fresh statistics and no dead index entries left by the backlog.
    absl::StatusOr<std::unique_ptr<pqxx::connection>> connection = (*pool)->OpenConnection();
    if (!connection.ok()) ptd::ExitWithError("cannot connect", connection.status());
    pqxx::nontransaction(**connection).exec("VACUUM ANALYZE outbox");
    connection->reset();
    std::vector<double> wall_us;
    std::vector<double> cpu_us;
    double servers = 0;  // summed round by round: each reading is off by up to a tick, either way
    int64_t published = 0;
    for (int64_t round = 0; round < rounds; ++round) {
      write_rows(per_round);
      const double servers_start = servers_cpu();
      const double cpu_start = ThreadCpuSeconds();
      const auto start = std::chrono::steady_clock::now();
      published += publish();
      wall_us.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count());
      cpu_us.push_back((ThreadCpuSeconds() - cpu_start) * 1e6);
      servers += servers_cpu() - servers_start;
    }
    double total_wall_us = 0;
    for (double us : wall_us) total_wall_us += us;
    std::printf(
        "steady: %lld rounds of %lld new rows (%lld published): round median %.0f us, p99 %.0f us, "
        "%.0f rounds/s of relay time; CPU per round: relay %.0f us (median), servers %.0f us (mean)\n",
        static_cast<long long>(rounds), static_cast<long long>(per_round), static_cast<long long>(published),
        Percentile(wall_us, 0.5), Percentile(wall_us, 0.99), static_cast<double>(rounds) / (total_wall_us * 1e-6),
        Percentile(cpu_us, 0.5), servers / static_cast<double>(rounds) * 1e6);
  }

  exec(absl::StrCat("DROP SCHEMA ", schema, " CASCADE"));
  (void)(*redis)->Command({"DEL", stream});
  return 0;
}
