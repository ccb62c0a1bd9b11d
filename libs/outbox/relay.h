#ifndef PTD_LIBS_OUTBOX_RELAY_H_
#define PTD_LIBS_OUTBOX_RELAY_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
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
  // The background thread looks for new rows this often, and at once when a Write commits (LISTEN/NOTIFY).
  absl::Duration interval = absl::Milliseconds(500);
  bool listen = true;  // false: polling only
  // > 0: XADD ... MAXLEN ~ N, so a stream keeps about the newest N entries. Consumers must keep up: an entry
  // trimmed before a group read it is lost to that group.
  int64_t max_stream_length = 0;
  // Published rows older than this are deleted (checked about once a minute).
  absl::Duration retain_published = absl::Hours(24 * 7);
};

// Publishes committed outbox rows of the pool's schema to their Redis Streams: each as one XADD with the
// fields id, type, aggregate_id, tenant_id, request_id, payload; then marks the rows published in the same
// transaction that locked them. A crash between the XADD and the commit publishes those events again later
// (at least once); consumers' inboxes absorb the duplicates.
//
// Ordering: one relay per schema publishes at a time (a transaction-level advisory lock; other replicas'
// relays wait their turn), taking rows in id order, so each stream receives events in id order among the
// rows visible when the relay reads them.
//
// Metrics, in `registry` (nullable; must outlive the relay): ptd_outbox_published_total{stream},
// ptd_outbox_pending{stream} (unpublished rows), ptd_outbox_oldest_pending_seconds.
//
// Fault injection for tests: PTD_FAULT_RELAY_CRASH_AFTER_XADD=N in the environment makes the process kill
// itself (SIGKILL) right after its N-th successful XADD, before marking the row published.
class Relay {
 public:
  Relay(pg::Pool& pool, redis::Client& redis, RelayOptions options = {}, prometheus::Registry* registry = nullptr);
  ~Relay();  // Stop()
  Relay(const Relay&) = delete;
  Relay& operator=(const Relay&) = delete;

  // Publishes one batch (up to batch_size rows) and returns how many were published: 0 when there is nothing
  // to do or another relay holds the lock. On a Redis error the rows published before it are still marked,
  // and the error is returned. Thread-safe, but meant for tests and tools; services use Start().
  absl::StatusOr<int> PublishOnce();

  // Runs PublishOnce on a background thread until Stop(): back to back while batches come out full, else
  // after `interval` or a notification. Errors are logged and retried after `interval`.
  void Start();
  void Stop();

 private:
  struct Metrics;
  class Listener;

  void Run();
  void WaitForWork();
  void RefreshPendingMetrics();
  void DeleteOldPublished();

  pg::Pool& pool_;
  redis::Client& redis_;
  const RelayOptions options_;
  std::unique_ptr<Metrics> metrics_;
  int64_t crash_after_xadds_ = 0;  // PTD_FAULT_RELAY_CRASH_AFTER_XADD; 0: off
  std::atomic<int64_t> xadds_ = 0;
  absl::Time next_stats_ = absl::InfinitePast();
  absl::Time next_cleanup_ = absl::InfinitePast();
  std::mutex run_mu_;  // one PublishOnce at a time in this process

  std::unique_ptr<Listener> listener_;  // used by the background thread only
  bool listen_failed_ = false;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable wake_;
  bool stopping_ = false;
};

}  // namespace ptd::outbox

#endif  // PTD_LIBS_OUTBOX_RELAY_H_
