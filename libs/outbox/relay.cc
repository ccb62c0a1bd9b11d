#include "libs/outbox/relay.h"

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>
#include <signal.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "libs/core/log.h"
#include "libs/outbox/outbox.h"
#include "libs/pg/array.h"

namespace ptd::outbox {
namespace {

// Takes the next rows in id order, if this relay gets the schema's lock: only one relay per schema works at a
// time, so that rows reach their streams in id order. The try-lock is an uncorrelated subquery, so an InitPlan
// run once before the scan ("One-Time Filter"), and a relay that does not get the lock reads no row at all. (A
// CTE joined to outbox is also run once, but the join then scans every pending row only to filter it out.)
constexpr char kLockAndSelectSql[] = R"sql(
SELECT id, stream, type, aggregate_id, tenant_id, payload, request_id
FROM outbox
WHERE published_at IS NULL
  AND (SELECT pg_try_advisory_xact_lock(hashtextextended('ptd.outbox.relay:' || current_schema(), 0)))
ORDER BY id
LIMIT $1
FOR UPDATE SKIP LOCKED)sql";
enum Column { kId, kStream, kType, kAggregateId, kTenantId, kPayload, kRequestId };
constexpr char kMarkPublishedSql[] = "UPDATE outbox SET published_at = now() WHERE id = ANY($1::text[])";
constexpr char kPendingSql[] = R"sql(
SELECT stream, count(*), extract(epoch FROM now() - min(created_at))::float8
FROM outbox
WHERE published_at IS NULL
GROUP BY stream)sql";
constexpr char kDeletePublishedSql[] = R"sql(
DELETE FROM outbox
WHERE id IN (SELECT id FROM outbox WHERE published_at < now() - make_interval(secs => $1) LIMIT 10000))sql";

constexpr absl::Duration kCleanupInterval = absl::Minutes(1);

std::string Text(const pqxx::field& field) { return std::string(field.c_str(), field.size()); }

// How many of the XADDs that a pipeline sent between MULTI and EXEC made it, and the error that stopped the
// rest. EXEC runs the queued commands as one, so that no other client's command comes between them; a
// command refused while queued (OOM, a write to a replica, a busy script) makes EXEC discard them all.
// `commands` and `replies` are MULTI, the XADDs, EXEC.
struct Added {
  size_t count = 0;
  absl::Status error;
};
Added ReadExec(const std::vector<std::vector<std::string>>& commands, const std::vector<redis::Value>& replies) {
  for (size_t i = 0; i + 1 < replies.size(); ++i) {
    if (absl::Status queued = redis::StatusOf(replies[i], commands[i].front()); !queued.ok()) return {0, queued};
  }
  const redis::Value& exec = replies.back();
  if (absl::Status status = redis::StatusOf(exec, "EXEC"); !status.ok()) return {0, status};
  if (exec.type != redis::Value::Type::kArray) {
    return {0, absl::InternalError(absl::StrCat("redis EXEC: unexpected reply ", exec.DebugString()))};
  }
  const size_t xadds = commands.size() - 2;
  for (size_t i = 0; i < exec.elements.size() && i < xadds; ++i) {
    if (absl::Status added = redis::StatusOf(exec.elements[i], "XADD"); !added.ok()) return {i, added};
  }
  if (exec.elements.size() < xadds) {
    return {exec.elements.size(), absl::InternalError(absl::StrCat("redis EXEC: ", exec.elements.size(),
                                                                   " replies for ", xadds, " commands"))};
  }
  return {xadds, absl::OkStatus()};
}

int64_t FaultFromEnvironment(const char* name) {
  const char* value = std::getenv(name);
  int64_t n = 0;
  if (value == nullptr || !absl::SimpleAtoi(value, &n) || n < 0) return 0;
  return n;
}

}  // namespace

struct Relay::Metrics {
  std::shared_ptr<prometheus::Registry> own_registry;  // when the caller gave none
  prometheus::Family<prometheus::Counter>* published;
  prometheus::Family<prometheus::Gauge>* pending;
  prometheus::Gauge* oldest_pending_seconds;
  std::set<std::string> streams_seen;  // to zero their pending gauge once drained

  explicit Metrics(prometheus::Registry* registry) {
    if (registry == nullptr) {
      own_registry = std::make_shared<prometheus::Registry>();
      registry = own_registry.get();
    }
    published = &prometheus::BuildCounter()
                     .Name("ptd_outbox_published_total")
                     .Help("Outbox events published to their Redis Stream")
                     .Register(*registry);
    pending = &prometheus::BuildGauge()
                   .Name("ptd_outbox_pending")
                   .Help("Outbox events not yet published")
                   .Register(*registry);
    oldest_pending_seconds = &prometheus::BuildGauge()
                                  .Name("ptd_outbox_oldest_pending_seconds")
                                  .Help("Age of the oldest unpublished outbox event (0 when none)")
                                  .Register(*registry)
                                  .Add({});
  }
};

// A dedicated connection LISTENing on the outbox's channel.
class Relay::Listener {
 public:
  static absl::StatusOr<std::unique_ptr<Listener>> Open(const pg::Pool& pool) {
    absl::StatusOr<std::unique_ptr<pqxx::connection>> connection = pool.OpenConnection();
    if (!connection.ok()) return connection.status();
    const std::string& schema = pool.options().schema;
    auto listener = std::unique_ptr<Listener>(new Listener(*std::move(connection)));
    try {
      listener->receiver_ =
          std::make_unique<Receiver>(*listener->connection_, NotifyChannel(schema.empty() ? "public" : schema));
    } catch (const std::exception& e) {
      return pg::ToStatus(e);
    }
    return listener;
  }

  // Waits up to `timeout` for a notification. Throws pqxx::broken_connection when the connection is lost.
  bool Wait(absl::Duration timeout) {
    // Never negative: libpqxx 6.4 turns (0 s, -1,500 us) into poll(..., -1), a wait without end. The caller's
    // remainder is negative when the thread lost the CPU between its check and this call; the relay then
    // slept until the next event, and Stop() (so the service's shutdown after SIGTERM) waited with it.
    const int64_t us = std::max<int64_t>(0, absl::ToInt64Microseconds(timeout));
    if (connection_->await_notification(us / 1000000, us % 1000000) > 0) return true;
    if (!connection_->is_open()) throw pqxx::broken_connection("listener connection lost");
    return false;
  }

 private:
  struct Receiver : pqxx::notification_receiver {
    using pqxx::notification_receiver::notification_receiver;
    void operator()(const std::string&, int) override {}
  };

  explicit Listener(std::unique_ptr<pqxx::connection> connection) : connection_(std::move(connection)) {}

  std::unique_ptr<pqxx::connection> connection_;
  std::unique_ptr<Receiver> receiver_;  // declared after connection_: unregisters before it closes
};

Relay::Relay(pg::Pool& pool, redis::Client& redis, RelayOptions options, prometheus::Registry* registry)
    : pool_(pool), redis_(redis), options_(std::move(options)) {
  try {
    metrics_ = std::make_unique<Metrics>(registry);
  } catch (const std::exception& e) {  // a clashing metric family: keep relaying, say so
    log::Error("outbox relay metrics not registered", {{"error", e.what()}});
    metrics_ = std::make_unique<Metrics>(nullptr);
  }
  crash_after_xadds_ = FaultFromEnvironment("PTD_FAULT_RELAY_CRASH_AFTER_XADD");
  if (options_.max_stream_length > 0) max_stream_length_ = absl::StrCat(options_.max_stream_length);
}

Relay::~Relay() { Stop(); }

absl::StatusOr<int> Relay::PublishOnce() {
  std::lock_guard run(run_mu_);
  std::map<std::string, int> published_by_stream;
  absl::Status redis_error;
  int batch_rows = 0;
  absl::Status status = pool_.InTransaction([&](pqxx::work& tx) -> absl::Status {
    published_by_stream.clear();
    redis_error = absl::OkStatus();
    const pqxx::result rows = tx.exec_params(kLockAndSelectSql, options_.batch_size);
    batch_rows = static_cast<int>(rows.size());
    size_t to_send = rows.size();
    if (crash_after_xadds_ > 0) to_send = std::min<size_t>(to_send, crash_after_xadds_ - xadds_);
    if (to_send == 0) return absl::OkStatus();

    std::vector<std::vector<std::string>> commands;
    commands.reserve(to_send + 2);
    commands.push_back({"MULTI"});
    for (size_t i = 0; i < to_send; ++i) {
      const pqxx::row& row = rows[static_cast<pqxx::result::size_type>(i)];
      std::vector<std::string>& xadd = commands.emplace_back();
      xadd.reserve(16);
      xadd.insert(xadd.end(), {"XADD", Text(row[kStream])});
      if (options_.max_stream_length > 0) xadd.insert(xadd.end(), {"MAXLEN", "~", max_stream_length_});
      // clang-format off
      xadd.insert(xadd.end(), {"*",
                               "id", Text(row[kId]),
                               "type", Text(row[kType]),
                               "aggregate_id", Text(row[kAggregateId]),
                               "tenant_id", Text(row[kTenantId]),
                               "request_id", Text(row[kRequestId]),
                               "payload", pqxx::binarystring(row[kPayload]).str()});
      // clang-format on
    }
    commands.push_back({"EXEC"});
    Added added;
    if (absl::StatusOr<std::vector<redis::Value>> replies = redis_.Pipeline(commands); replies.ok()) {
      added = ReadExec(commands, *replies);
    } else {
      added.error = replies.status();  // whatever made it is published again next round
    }
    redis_error = added.error;  // mark what made it; the rest waits for the next round
    if (crash_after_xadds_ > 0 && (xadds_ += static_cast<int64_t>(added.count)) == crash_after_xadds_) {
      raise(SIGKILL);
    }
    if (added.count == 0) return absl::OkStatus();
    std::vector<std::string> published_ids;
    published_ids.reserve(added.count);
    for (size_t i = 0; i < added.count; ++i) {
      const pqxx::row& row = rows[static_cast<pqxx::result::size_type>(i)];
      published_ids.push_back(Text(row[kId]));
      ++published_by_stream[Text(row[kStream])];
    }
    tx.exec_params(kMarkPublishedSql, pg::TextArray(published_ids));
    return absl::OkStatus();
  });
  if (!status.ok()) return status;

  int published = 0;
  for (const auto& [stream, n] : published_by_stream) {
    metrics_->published->Add({{"stream", stream}}).Increment(n);
    metrics_->streams_seen.insert(stream);
    published += n;
  }
  if (published > 0) published_since_stats_ = true;
  // Counting pending rows scans them: once an interval while events flow, and at once when this relay, having
  // published, finds none left while the gauges still show some, so that they drop to 0 soon after a drain. A
  // relay that finds the lock taken (a standby replica) also finds no rows; it counts at once only once.
  const bool drained = batch_rows == 0 && published_since_stats_ && last_pending_ > 0;
  if (drained || absl::Now() >= next_stats_) RefreshPendingMetrics();
  if (!redis_error.ok()) return redis_error;
  return published;
}

void Relay::RefreshPendingMetrics() {
  next_stats_ = absl::Now() + options_.pending_metrics_interval;
  published_since_stats_ = false;
  absl::Status status = pool_.InTransaction([&](pqxx::work& tx) {
    std::set<std::string> zero = metrics_->streams_seen;
    double oldest_seconds = 0;
    int64_t pending = 0;
    for (const pqxx::row& row : tx.exec(kPendingSql)) {
      const std::string stream = row[0].as<std::string>();
      metrics_->pending->Add({{"stream", stream}}).Set(row[1].as<double>());
      pending += row[1].as<int64_t>();
      oldest_seconds = std::max(oldest_seconds, row[2].as<double>());
      metrics_->streams_seen.insert(stream);
      zero.erase(stream);
    }
    for (const std::string& stream : zero) metrics_->pending->Add({{"stream", stream}}).Set(0);
    metrics_->oldest_pending_seconds->Set(oldest_seconds);
    last_pending_ = pending;
    return absl::OkStatus();
  });
  if (!status.ok()) log::Warn("outbox pending metrics not refreshed", {{"error", status.ToString()}});
}

void Relay::DeleteOldPublished() {
  next_cleanup_ = absl::Now() + kCleanupInterval;
  absl::Status status = pool_.InTransaction([&](pqxx::work& tx) {
    tx.exec_params(kDeletePublishedSql, absl::ToDoubleSeconds(options_.retain_published));
    return absl::OkStatus();
  });
  if (!status.ok()) log::Warn("old outbox rows not deleted", {{"error", status.ToString()}});
}

void Relay::Start() {
  std::lock_guard lock(mu_);
  if (thread_.joinable()) return;
  stopping_ = false;
  thread_ = std::thread([this] { Run(); });
}

void Relay::Stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Relay::Run() {
  log::Info("outbox relay started", {{"schema", pool_.options().schema}});
  absl::Status last_error;
  while (true) {
    {
      std::lock_guard lock(mu_);
      if (stopping_) break;
    }
    const absl::Time started = absl::Now();
    absl::StatusOr<int> published = PublishOnce();
    if (!published.ok() && published.status() != last_error) {
      log::Warn("outbox relay failed, will retry", {{"error", published.status().ToString()}});
    }
    last_error = published.status();
    if (absl::Now() >= next_cleanup_) DeleteOldPublished();
    if (published.ok() && *published >= options_.batch_size) continue;  // a backlog: no pause
    WaitForWork();
    // Let the events of a few more commits gather before the next round (see RelayOptions::min_round_gap).
    std::unique_lock lock(mu_);
    wake_.wait_until(lock, absl::ToChronoTime(started + options_.min_round_gap), [&] { return stopping_; });
  }
  listener_.reset();
  log::Info("outbox relay stopped", {{"schema", pool_.options().schema}});
}

// Sleeps up to `interval`; a NOTIFY from a committed Write, or Stop(), ends it early.
void Relay::WaitForWork() {
  const absl::Time until = absl::Now() + options_.interval;
  if (options_.listen && listener_ == nullptr) {
    absl::StatusOr<std::unique_ptr<Listener>> listener = Listener::Open(pool_);
    if (listener.ok()) {
      listener_ = *std::move(listener);
    } else if (!listen_failed_) {
      log::Warn("outbox relay cannot LISTEN, polling", {{"error", listener.status().ToString()}});
    }
    listen_failed_ = !listener.ok();
  }
  std::unique_lock lock(mu_);
  while (!stopping_ && absl::Now() < until) {
    if (listener_ == nullptr) {
      wake_.wait_for(lock, absl::ToChronoMilliseconds(until - absl::Now()));
      continue;
    }
    // Short slices, so that Stop() is noticed soon.
    lock.unlock();
    bool notified = false;
    try {
      notified = listener_->Wait(std::min(until - absl::Now(), absl::Milliseconds(100)));
    } catch (const std::exception& e) {
      log::Warn("outbox relay listener lost", {{"error", e.what()}});
      listener_.reset();
    }
    lock.lock();
    if (notified) return;
  }
}

}  // namespace ptd::outbox
