#ifndef PTD_LIBS_OUTBOX_RELAY_H_
#define PTD_LIBS_OUTBOX_RELAY_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "libs/pg/pool.h"
#include "libs/redis/client.h"

namespace prometheus {
class Registry;
}

namespace ptd::outbox {

struct RelayOptions {
  int batch_size = 100;  // rows per transaction
  // The background thread looks for new rows this often, and at once when a Write commits: woken directly by
  // writers of this process, by NOTIFY from those of others (see "Waking" below).
  absl::Duration interval = absl::Milliseconds(500);
  bool listen = true;  // false: no LISTEN (writers of this process still wake the relay)
  // After a round that was not full, the next one starts no sooner than this after it started, even when a
  // notification comes earlier. Under a steady flow of small commits (trading's spot orders commit hundreds
  // of times a second) a round then carries the events of several commits: fewer transactions, statements and
  // WAL flushes per event, for up to this much more delay of an event. Zero: each notification starts a round.
  absl::Duration min_round_gap = absl::Milliseconds(10);
  // > 0: XADD ... MAXLEN ~ N, so a stream keeps about the newest N entries. Consumers must keep up: an entry
  // trimmed before a group read it is lost to that group.
  int64_t max_stream_length = 0;
  // Published rows older than this are deleted (checked about once a minute).
  absl::Duration retain_published = absl::Hours(24 * 7);
  // The pending gauges (below) are counted at most this often while events flow.
  absl::Duration pending_metrics_interval = absl::Seconds(1);
  // While idle, Redis's counter is compared with what was sent at most this often ("Redis losing data").
  absl::Duration loss_check_interval = absl::Seconds(1);
};

// Publishes committed outbox rows of the pool's schema to their Redis Streams, each as an XADD with the
// fields id, type, aggregate_id, tenant_id, request_id, payload; then marks the rows published in the same
// transaction that locked them. A crash between the XADD and the commit publishes those events again later
// (at least once); consumers' inboxes absorb the duplicates.
//
// A round is one transaction: one statement takes the schema's lock and up to batch_size rows, one pipeline
// (a single round trip to Redis) carries their XADDs between MULTI and EXEC, one UPDATE marks them, and the
// commit. When Redis refuses an XADD, the rows before it are marked and the rest waits for the next round.
//
// Ordering: one relay per schema publishes at a time (a transaction-level advisory lock; other replicas'
// relays find the lock taken and try again on their next round), taking rows in id order, so each stream
// receives events in id order among the rows visible when the relay reads them. A round's XADDs run in Redis
// as one transaction (MULTI ... EXEC): no other client's command comes between them, and a refusal before
// they run (out of memory, a read-only replica, a busy script) refuses them all, so a stream never receives an
// event while an earlier one of its own failed. The rows after a failed XADD are sent again next round
// (duplicates of those that made it).
//
// Redis losing data: Redis acknowledges an XADD before it is on disk (appendfsync everysec) and before a replica
// has it, so a machine crash, a restart from an older copy or a failover can lose events whose rows were marked
// published. Each round therefore also counts its XADDs in a Redis counter, `ptd.outbox.sent:<db>.<schema>`,
// with INCRBY inside the same MULTI ... EXEC (persisted and replicated with them, so lost with them), and keeps
// the count in PostgreSQL (outbox_relay.sent, and each row's publish_seq). When the counter comes back below the
// count — seen in a round's EXEC reply, or while idle by a GET every loss_check_interval — the rows sent after
// what Redis kept are unmarked in the same transaction and published again by the next rounds; consumers'
// inboxes make the repeats harmless (events a consumer had already read come again, after newer ones). Counted
// in ptd_outbox_redis_losses_total and ptd_outbox_requeued_total. Rows deleted after retain_published cannot be
// sent again.
//
// Waking: a started relay is registered in this process under its pool's URL and schema, and writers of the
// same outbox in this process (outbox::Write, WakeLocalRelays) wake it directly after their commit instead of
// sending a NOTIFY, which would make their commits wait for each other (outbox.h). It still LISTENs, for the
// writers of other processes. With several replicas, the relay that a writer woke may find the lock taken by
// another process's relay, whose round may have begun before the commit; it then NOTIFYs in its own round,
// so that the lock holder, which was not woken, runs another round.
//
// Metrics, in `registry` (nullable; must outlive the relay): ptd_outbox_published_total{stream},
// ptd_outbox_redis_losses_total, ptd_outbox_requeued_total,
// ptd_outbox_pending{stream} (unpublished rows), ptd_outbox_oldest_pending_seconds and
// ptd_outbox_relay_rounds_total{trigger} (what started a background round: start, backlog, wake, notify,
// timer; with writers in the process, "wake" should lead). Counting the pending rows scans them, so the two gauges are refreshed at most once per pending_metrics_interval while events flow,
// and at once when the relay finds nothing left to publish after publishing, so that they drop to 0 soon
// after a backlog.
//
// Fault injection for tests: PTD_FAULT_RELAY_CRASH_AFTER_XADD=N in the environment makes the process kill
// itself (SIGKILL) right after Redis acknowledged its N-th XADD, before marking the row published: the
// round that reaches N sends only the XADDs up to the N-th.
class Relay {
 public:
  Relay(pg::Pool& pool, redis::Client& redis, RelayOptions options = {}, prometheus::Registry* registry = nullptr);
  ~Relay();  // Stop()
  Relay(const Relay&) = delete;
  Relay& operator=(const Relay&) = delete;

  // Publishes one batch (up to batch_size rows) and returns how many were published: 0 when there is nothing
  // to do or another relay holds the lock. When Redis refuses an XADD, the rows published before it are
  // still marked and the error is returned; when the connection fails, no row is marked. Thread-safe, but
  // meant for tests and tools; services use Start().
  absl::StatusOr<int> PublishOnce();

  // Runs PublishOnce on a background thread until Stop(): back to back while batches come out full, else
  // after `interval`, a wake by a writer of this process or a notification (but not before min_round_gap).
  // Errors are logged and retried after `interval`. From Start to Stop, writers of this process wake it
  // directly (see "Waking").
  void Start();
  void Stop();

 private:
  struct Metrics;
  class Listener;
  friend class LocalRelays;  // relay.cc: the started relays of this process, which call Wake()

  // A writer of this process committed rows: the next round starts without waiting for `interval`.
  void Wake();
  void SignalWakeFd();
  void DrainWakeFd();
  // PublishOnce; `woken`: the round follows a Wake(), so it passes the wake on (NOTIFY) when another relay
  // holds the lock.
  absl::StatusOr<int> Publish(bool woken);
  // One transaction of Publish; sets requeued_.
  absl::StatusOr<int> PublishRound(bool woken);
  // What started a background round (ptd_outbox_relay_rounds_total{trigger}).
  enum class Trigger { kStart, kBacklog, kWake, kNotify, kTimer };
  void Run();
  // Returns what ended the wait.
  Trigger WaitForWork();
  void RefreshPendingMetrics();
  // While idle: compares Redis's counter with the count sent and requeues what Redis lost; returns how many.
  int64_t CheckRedisKept(pqxx::work& tx);
  // Unmarks the rows sent after the first `kept` XADDs, to be published again; returns how many.
  int64_t Requeue(pqxx::work& tx, int64_t sent, int64_t kept);
  void DeleteOldPublished();

  pg::Pool& pool_;
  redis::Client& redis_;
  const RelayOptions options_;
  std::unique_ptr<Metrics> metrics_;
  std::string max_stream_length_;  // options_.max_stream_length as text, for XADD's MAXLEN
  int64_t crash_after_xadds_ = 0;  // PTD_FAULT_RELAY_CRASH_AFTER_XADD; 0: off
  int64_t xadds_ = 0;              // acknowledged, while crash_after_xadds_ > 0
  // The pending-rows gauges, guarded by run_mu_: when they are refreshed next, what they counted, and
  // whether this relay published since.
  absl::Time next_stats_ = absl::InfinitePast();
  int64_t last_pending_ = 0;
  bool published_since_stats_ = false;
  absl::Time next_cleanup_ = absl::InfinitePast();
  absl::Time next_loss_check_ = absl::InfinitePast();
  std::string counter_key_;  // ptd.outbox.sent:<db>.<schema>, read in the first round
  std::atomic<int64_t> requeued_{0};  // rows the last round put back to publish again
  std::mutex run_mu_;  // one PublishOnce at a time in this process

  std::unique_ptr<Listener> listener_;  // used by the background thread only
  bool listen_failed_ = false;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable wake_;
  bool stopping_ = false;
  bool woken_ = false;  // by Wake() since the last round began
  // Readable after Wake() or Stop(), so that a wait on the listener's socket ends at once (an eventfd).
  int wake_fd_ = -1;
};

}  // namespace ptd::outbox

#endif  // PTD_LIBS_OUTBOX_RELAY_H_
