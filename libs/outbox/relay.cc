#include "libs/outbox/relay.h"

#include <poll.h>
#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
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
// `sent` (outbox_relay) is an uncorrelated subquery too: read once, for the round's loss check.
constexpr char kLockAndSelectSql[] = R"sql(
SELECT id, stream, type, aggregate_id, tenant_id, payload, request_id, (SELECT sent FROM outbox_relay)
FROM outbox
WHERE published_at IS NULL
  AND (SELECT pg_try_advisory_xact_lock(hashtextextended('ptd.outbox.relay:' || current_schema(), 0)))
ORDER BY id
LIMIT $1
FOR UPDATE SKIP LOCKED)sql";
enum Column { kId, kStream, kType, kAggregateId, kTenantId, kPayload, kRequestId, kSent };
// After a wake by a writer of this process found no rows: when another relay (another replica's) holds the lock,
// its round may have read the rows before that writer committed, and nothing else wakes it; a notification
// does, once its round ends. Notifies no one when this relay holds the lock; nor when the other relay let it go
// in between, which leaves the rows to a later round (at most `interval` later): rare, the gap is one round trip.
constexpr char kPassOnWakeSql[] = R"sql(
SELECT pg_notify('ptd_outbox.' || current_schema(), '')
WHERE NOT pg_try_advisory_xact_lock(hashtextextended('ptd.outbox.relay:' || current_schema(), 0)))sql";
// Marks a round's rows with their place in the count of XADDs ($2 + 1, $2 + 2, ...) and keeps the count ($3).
constexpr char kMarkPublishedSql[] = R"sql(
WITH marked AS (
  UPDATE outbox SET published_at = now(), publish_seq = $2::bigint + u.n
  FROM unnest($1::text[]) WITH ORDINALITY AS u (id, n)
  WHERE outbox.id = u.id)
INSERT INTO outbox_relay (singleton, sent) VALUES (true, $3)
ON CONFLICT (singleton) DO UPDATE SET sent = excluded.sent)sql";
constexpr char kMarkPublishedUncountedSql[] = "UPDATE outbox SET published_at = now() WHERE id = ANY($1::text[])";
// Rows sent after what Redis still has ($1): published again, in id order, by the next rounds.
constexpr char kRequeueSql[] = R"sql(
UPDATE outbox SET published_at = NULL, publish_seq = NULL
WHERE publish_seq > $1 AND published_at IS NOT NULL)sql";
constexpr char kKeepSentSql[] = R"sql(
INSERT INTO outbox_relay (singleton, sent) VALUES (true, $1)
ON CONFLICT (singleton) DO UPDATE SET sent = excluded.sent)sql";
// The idle check: the count, if this relay gets the schema's lock (re-entrant when it has it already).
constexpr char kLockAndReadSentSql[] = R"sql(
SELECT coalesce((SELECT sent FROM outbox_relay), 0)
WHERE pg_try_advisory_xact_lock(hashtextextended('ptd.outbox.relay:' || current_schema(), 0)))sql";
constexpr char kCounterKeySql[] = "SELECT 'ptd.outbox.sent:' || current_database() || '.' || current_schema()";
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

// How many of the XADDs that a pipeline sent between MULTI and EXEC made it, the error that stopped the rest,
// and the counter after the round (INCRBY of the XADDs sent, after them in the same EXEC). EXEC runs the queued
// commands as one, so that no other client's command comes between them, and Redis persists and replicates them
// as one: the counter and the streams are lost together or not at all. A command refused while queued (OOM, a
// write to a replica, a busy script) makes EXEC discard them all. `commands` and `replies` are MULTI, the
// XADDs, INCRBY, EXEC.
struct Added {
  size_t count = 0;
  absl::Status error;
  std::optional<int64_t> counter;  // after the round; nullopt when EXEC did not run or INCRBY failed
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
  const size_t xadds = commands.size() - 3;
  Added added{.count = xadds};
  if (exec.elements.size() > xadds && exec.elements[xadds].type == redis::Value::Type::kInteger) {
    added.counter = exec.elements[xadds].integer;
  }
  for (size_t i = 0; i < exec.elements.size() && i < xadds; ++i) {
    if (absl::Status status = redis::StatusOf(exec.elements[i], "XADD"); !status.ok()) {
      added.count = i;
      added.error = status;
      return added;
    }
  }
  if (exec.elements.size() < xadds) {
    added.count = exec.elements.size();
    added.error = absl::InternalError(
        absl::StrCat("redis EXEC: ", exec.elements.size(), " replies for ", xadds, " commands"));
  }
  return added;
}

int64_t FaultFromEnvironment(const char* name) {
  const char* value = std::getenv(name);
  int64_t n = 0;
  if (value == nullptr || !absl::SimpleAtoi(value, &n) || n < 0) return 0;
  return n;
}

}  // namespace

// The relays of this process between Start and Stop, by their pool's URL and schema, for the writers of this
// process to wake (outbox.h). Typically one; so a list, scanned without allocating.
class LocalRelays {
 public:
  static void Add(Relay* relay) {
    State& state = Get();
    std::lock_guard lock(state.mu);
    const pg::PoolOptions& options = relay->pool_.options();
    state.relays.push_back({.url = options.url, .schema = options.schema, .relay = relay});
    state.count.store(state.relays.size(), std::memory_order_release);
  }

  static void Remove(Relay* relay) {
    State& state = Get();
    std::lock_guard lock(state.mu);
    std::erase_if(state.relays, [&](const Entry& e) { return e.relay == relay; });
    state.count.store(state.relays.size(), std::memory_order_release);
  }

  // Wakes the relays of this outbox when `wake`; whether there is one.
  static bool Find(const pg::PoolOptions& options, bool wake) {
    State& state = Get();
    if (state.count.load(std::memory_order_acquire) == 0) return false;  // no lock taken in processes without one
    std::lock_guard lock(state.mu);
    bool found = false;
    for (const Entry& e : state.relays) {
      if (e.url != options.url || e.schema != options.schema) continue;
      found = true;
      if (!wake) break;
      e.relay->Wake();  // under state.mu: Remove, so Stop, waits for it
    }
    return found;
  }

 private:
  struct Entry {
    std::string url;
    std::string schema;
    Relay* relay;
  };
  struct State {
    std::mutex mu;
    std::vector<Entry> relays;
    std::atomic<size_t> count{0};
  };
  // Never destroyed: a relay may stop during static destruction.
  static State& Get() {
    static State* state = new State;
    return *state;
  }
};

bool LocalRelayRunning(const pg::Pool& pool) { return LocalRelays::Find(pool.options(), /*wake=*/false); }

bool WakeLocalRelays(const pg::Pool& pool) { return LocalRelays::Find(pool.options(), /*wake=*/true); }

bool WakeLocalRelaysAfterCommit(const pqxx::transaction_base& tx) {
  const pg::Pool* pool = pg::PoolOf(tx);
  if (pool == nullptr || !LocalRelayRunning(*pool)) return false;
  static const char kWakeKey = 0;  // one wake per transaction, however many events it writes
  return pg::AfterCommitOnce(tx, &kWakeKey, [pool] { WakeLocalRelays(*pool); });
}

struct Relay::Metrics {
  std::shared_ptr<prometheus::Registry> own_registry;  // when the caller gave none
  prometheus::Family<prometheus::Counter>* published;
  prometheus::Family<prometheus::Gauge>* pending;
  prometheus::Gauge* oldest_pending_seconds;
  prometheus::Counter* redis_losses;
  prometheus::Counter* requeued;
  // Background rounds by what started them, indexed by Relay::Trigger.
  std::vector<prometheus::Counter*> rounds;
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
    redis_losses = &prometheus::BuildCounter()
                        .Name("ptd_outbox_redis_losses_total")
                        .Help("Times the relay found Redis holding fewer events than it had sent (Redis restarted "
                              "from older data, or failed over to a replica behind it)")
                        .Register(*registry)
                        .Add({});
    requeued = &prometheus::BuildCounter()
                    .Name("ptd_outbox_requeued_total")
                    .Help("Published events put back to be published again after Redis lost them")
                    .Register(*registry)
                    .Add({});
    auto& by_trigger = prometheus::BuildCounter()
                           .Name("ptd_outbox_relay_rounds_total")
                           .Help(
                               "Background relay rounds by what started them: start, backlog (the round before "
                               "was full), wake (a writer of this process), notify (a NOTIFY), timer")
                           .Register(*registry);
    for (const char* trigger : {"start", "backlog", "wake", "notify", "timer"}) {
      rounds.push_back(&by_trigger.Add({{"trigger", trigger}}));
    }
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

  // Waits up to `timeout` for a notification; returns false without one after the timeout or when `wake_fd`
  // became readable. Throws pqxx::broken_connection when the connection is lost.
  bool Wait(absl::Duration timeout, int wake_fd) {
    if (connection_->get_notifs() > 0) return true;  // already read from the socket
    // Never negative: poll(..., -1) is a wait without end. The caller's remainder is negative when the thread
    // lost the CPU between its check and this call; the relay then slept until the next event, and Stop() (so
    // the service's shutdown after SIGTERM) waited with it. Rounded up, so as not to spin before the deadline.
    const int64_t ms = std::clamp<int64_t>((absl::ToInt64Microseconds(timeout) + 999) / 1000, 0, INT_MAX);
    pollfd fds[] = {{.fd = connection_->sock(), .events = POLLIN, .revents = 0},
                    {.fd = wake_fd, .events = POLLIN, .revents = 0}};  // poll skips a negative fd
    ::poll(fds, 2, static_cast<int>(ms));
    if (connection_->get_notifs() > 0) return true;
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
  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd_ < 0) log::Warn("outbox relay has no eventfd, waits in slices", {{"errno", errno}});
}

Relay::~Relay() {
  Stop();
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

absl::StatusOr<int> Relay::PublishOnce() { return Publish(/*woken=*/false); }

absl::StatusOr<int> Relay::Publish(bool woken) {
  std::lock_guard run(run_mu_);
  absl::StatusOr<int> published = PublishRound(woken);
  // An idle round that found Redis missing events it had sent put them back: they go now, not a round later.
  if (published.ok() && *published == 0 && requeued_ > 0) published = PublishRound(/*woken=*/false);
  return published;
}

absl::StatusOr<int> Relay::PublishRound(bool woken) {
  std::map<std::string, int> published_by_stream;
  absl::Status redis_error;
  int batch_rows = 0;
  int64_t requeued = 0;
  absl::Status status = pool_.InTransaction([&](pqxx::work& tx) -> absl::Status {
    published_by_stream.clear();
    redis_error = absl::OkStatus();
    requeued = 0;
    if (counter_key_.empty()) counter_key_ = tx.exec(kCounterKeySql)[0][0].as<std::string>();
    const pqxx::result rows = tx.exec_params(kLockAndSelectSql, options_.batch_size);
    batch_rows = static_cast<int>(rows.size());
    if (rows.empty() && woken) tx.exec(kPassOnWakeSql);
    if (rows.empty() && absl::Now() >= next_loss_check_) requeued = CheckRedisKept(tx);
    size_t to_send = rows.size();
    if (crash_after_xadds_ > 0) to_send = std::min<size_t>(to_send, crash_after_xadds_ - xadds_);
    if (to_send == 0) return absl::OkStatus();
    const int64_t sent_before = rows[0][kSent].is_null() ? 0 : rows[0][kSent].as<int64_t>();

    std::vector<std::vector<std::string>> commands;
    commands.reserve(to_send + 3);
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
    commands.push_back({"INCRBY", counter_key_, absl::StrCat(to_send)});
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
    if (!added.counter) {
      // The XADDs ran but the counter did not (its key holds something else): these rows cannot be checked
      // against a loss of Redis's data, and counting them would requeue them every round.
      log::Error("outbox relay cannot count its XADDs in Redis: a loss of Redis's data would go unnoticed",
                 {{"key", counter_key_}});
      tx.exec_params(kMarkPublishedUncountedSql, pg::TextArray(published_ids));
      return absl::OkStatus();
    }
    // What Redis held before this round's XADDs. Less than this relay had sent: Redis lost some of them.
    // More: rounds whose EXEC ran but whose commit did not (a crash, a lost connection), published again since.
    const int64_t kept = *added.counter - static_cast<int64_t>(to_send);
    if (kept < sent_before) requeued = Requeue(tx, sent_before, kept);
    tx.exec_params(kMarkPublishedSql, pg::TextArray(published_ids), kept, *added.counter);
    return absl::OkStatus();
  });
  requeued_.store(status.ok() ? requeued : 0, std::memory_order_relaxed);
  if (!status.ok()) return status;
  if (requeued > 0) {
    metrics_->redis_losses->Increment();
    metrics_->requeued->Increment(static_cast<double>(requeued));
  }

  int published = 0;
  for (const auto& [stream, n] : published_by_stream) {
    metrics_->published->Add({{"stream", stream}}).Increment(n);
    // A stream's first events: its pending gauge is counted now, so that it has a series at once (a relay
    // woken right after each commit may otherwise publish everything before any count sees it pending).
    if (metrics_->streams_seen.insert(stream).second) next_stats_ = absl::InfinitePast();
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

int64_t Relay::CheckRedisKept(pqxx::work& tx) {
  next_loss_check_ = absl::Now() + options_.loss_check_interval;
  const pqxx::result sent = tx.exec(kLockAndReadSentSql);
  if (sent.empty() || sent[0][0].as<int64_t>() == 0) return 0;  // another relay's turn, or nothing sent yet
  absl::StatusOr<redis::Value> counter = redis_.Command({"GET", counter_key_});
  if (!counter.ok()) return 0;  // Redis away: the next check, or the next round's EXEC, will tell
  int64_t kept = 0;
  if (!counter->is_nil() && !absl::SimpleAtoi(counter->str, &kept)) return 0;  // not our counter: see Publish
  const int64_t sent_before = sent[0][0].as<int64_t>();
  if (kept >= sent_before) return 0;
  const int64_t requeued = Requeue(tx, sent_before, kept);
  tx.exec_params(kKeepSentSql, kept);
  return requeued;
}

int64_t Relay::Requeue(pqxx::work& tx, int64_t sent, int64_t kept) {
  const pqxx::result requeued = tx.exec_params(kRequeueSql, kept);
  log::Warn("Redis holds fewer outbox events than the relay sent (restarted from older data, or failed over): "
            "publishing the missing ones again",
            {{"key", counter_key_}, {"sent", sent}, {"kept", kept}, {"requeued", requeued.affected_rows()}});
  return static_cast<int64_t>(requeued.affected_rows());
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
  {
    std::lock_guard lock(mu_);
    if (thread_.joinable()) return;
    stopping_ = false;
    thread_ = std::thread([this] { Run(); });
  }
  LocalRelays::Add(this);  // outside mu_: LocalRelays' lock comes first (it calls Wake under it)
}

void Relay::Stop() {
  LocalRelays::Remove(this);  // first: once it returns, no writer calls Wake() any more
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  SignalWakeFd();
  if (thread_.joinable()) thread_.join();
}

void Relay::Wake() {
  {
    std::lock_guard lock(mu_);
    // Already woken: signalled by that wake, so under a steady flow of commits about once a round.
    if (std::exchange(woken_, true)) return;
  }
  wake_.notify_all();
  SignalWakeFd();
}

void Relay::SignalWakeFd() {
  const uint64_t one = 1;
  // Fails only when the counter is full, which leaves the eventfd readable: as good.
  if (wake_fd_ >= 0 && ::write(wake_fd_, &one, sizeof one) < 0) return;
}

void Relay::DrainWakeFd() {
  uint64_t count = 0;
  if (wake_fd_ >= 0 && ::read(wake_fd_, &count, sizeof count) < 0) return;  // EAGAIN: nothing to drain
}

void Relay::Run() {
  log::Info("outbox relay started", {{"schema", pool_.options().schema}});
  absl::Status last_error;
  Trigger trigger = Trigger::kStart;
  while (true) {
    bool woken = false;
    {
      std::lock_guard lock(mu_);
      if (stopping_) break;
      woken = std::exchange(woken_, false);  // a wake from now on is for the next round
    }
    metrics_->rounds[static_cast<size_t>(trigger)]->Increment();
    const absl::Time started = absl::Now();
    absl::StatusOr<int> published = Publish(woken);
    if (!published.ok() && published.status() != last_error) {
      log::Warn("outbox relay failed, will retry", {{"error", published.status().ToString()}});
    }
    last_error = published.status();
    if (absl::Now() >= next_cleanup_) DeleteOldPublished();
    if (published.ok() && (*published >= options_.batch_size || requeued_ > 0)) {
      trigger = Trigger::kBacklog;  // no pause
      continue;
    }
    trigger = WaitForWork();
    // Let the events of a few more commits gather before the next round (see RelayOptions::min_round_gap).
    std::unique_lock lock(mu_);
    wake_.wait_until(lock, absl::ToChronoTime(started + options_.min_round_gap), [&] { return stopping_; });
  }
  listener_.reset();
  log::Info("outbox relay stopped", {{"schema", pool_.options().schema}});
}

// Sleeps up to `interval`; Wake(), a NOTIFY from a committed Write of another process, or Stop() ends it early.
Relay::Trigger Relay::WaitForWork() {
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
  while (!stopping_ && !woken_ && absl::Now() < until) {
    if (listener_ == nullptr) {
      wake_.wait_for(lock, absl::ToChronoMilliseconds(until - absl::Now()));
      continue;
    }
    lock.unlock();
    bool notified = false;
    try {
      // Wake() and Stop() make wake_fd_ readable; without it, short slices, so that they are noticed soon.
      const absl::Duration left = until - absl::Now();
      notified = listener_->Wait(wake_fd_ >= 0 ? left : std::min(left, absl::Milliseconds(100)), wake_fd_);
    } catch (const std::exception& e) {
      log::Warn("outbox relay listener lost", {{"error", e.what()}});
      listener_.reset();
    }
    // Before looking at woken_: Wake() sets it before it signals, so a signal drained here is never lost.
    DrainWakeFd();
    lock.lock();
    if (notified) return Trigger::kNotify;
  }
  return woken_ ? Trigger::kWake : Trigger::kTimer;
}

}  // namespace ptd::outbox
