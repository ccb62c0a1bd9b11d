#ifndef PTD_LIBS_OUTBOX_CONSUMER_H_
#define PTD_LIBS_OUTBOX_CONSUMER_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <pqxx/pqxx>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "libs/pg/pool.h"
#include "libs/redis/client.h"

namespace prometheus {
class Registry;
}

namespace ptd::outbox {

// One stream entry handed to a handler.
struct Delivery {
  std::string stream;
  std::string entry_id;  // the Redis entry id, "1732541234567-0"
  std::string event_id;  // outbox::Event::id
  std::string type;
  std::string aggregate_id;
  std::string tenant_id;
  std::string request_id;
  std::string payload;
  int64_t delivery_count = 1;  // 1 on first delivery; more after a failure or a crash
};

// Applies `delivery` inside `tx`. OK commits; an error rolls back and the entry is retried later.
using Handler = std::function<absl::Status(pqxx::work& tx, const Delivery& delivery)>;

struct ConsumerOptions {
  std::string stream{};    // required
  std::string group{};     // required: the consuming service, e.g. "warehouse"
  std::string consumer{};  // this process in the group; empty: "<hostname>-<pid>"
  int batch_size = 50;
  absl::Duration block = absl::Seconds(1);  // how long one read waits for new entries
  // A pending entry (its consumer crashed, or its handler failed) idle this long is claimed by a consumer of
  // the group and delivered again: also the pause before a failed event is retried.
  absl::Duration claim_min_idle = absl::Seconds(30);
  // An entry delivered this many times without success is parked: copied to the stream
  // "<stream>.dead.<group>" with its fields plus entry_id and reason, acknowledged, and logged as an error.
  int max_deliveries = 10;
};

// Reads a Redis Stream as a member of a consumer group and applies each entry exactly once in effect:
// one PostgreSQL transaction inserts (group, event id) into the `inbox` table (outbox.sql) and, only if that
// row is new, runs the handler in the same transaction; after the commit the entry is acknowledged (XACK).
// A redelivered entry finds its inbox row and is acknowledged without running the handler again.
//
// The group is created (XGROUP CREATE ... 0 MKSTREAM) when missing, reading the stream from its start.
// While it waits for new entries, a consumer holds one of the Redis client's connections.
//
// Metrics, in `registry` (nullable; must outlive the consumer), labelled {stream,group}:
// ptd_consumer_applied_total, ptd_consumer_duplicates_total, ptd_consumer_failures_total (handler errors),
// ptd_consumer_parked_total, ptd_consumer_pending (delivered, not acknowledged), ptd_consumer_lag
// (XINFO GROUPS lag, entries not yet delivered, plus pending; refreshed about once a second).
//
// Fault injection for tests: PTD_FAULT_CRASH_AFTER_APPLY=N in the environment makes the process kill itself
// (raise(SIGKILL)) right after the transaction of its N-th applied (not duplicate) event commits, before the
// XACK.
class Consumer {
 public:
  Consumer(pg::Pool& pool, redis::Client& redis, ConsumerOptions options, Handler handler,
           prometheus::Registry* registry = nullptr);
  ~Consumer();  // Stop()
  Consumer(const Consumer&) = delete;
  Consumer& operator=(const Consumer&) = delete;

  // One round: claims pending entries idle for claim_min_idle, or else reads new ones (waiting up to
  // `block`), and handles them. Returns how many entries were acknowledged (applied, duplicate or parked).
  // A database or Redis failure is returned after acknowledging what was done; handler errors are not
  // failures of the round (logged, left pending). INVALID_ARGUMENT for missing stream or group.
  absl::StatusOr<int> PollOnce();

  // Runs PollOnce on a background thread until Stop(); errors are logged and retried after a second.
  void Start();
  void Stop();

 private:
  struct Metrics;
  enum class Outcome { kApplied, kDuplicate, kHandlerFailed, kFailed };

  absl::Status EnsureGroup();
  absl::StatusOr<std::vector<Delivery>> Claim();
  absl::StatusOr<std::vector<Delivery>> ReadNew();
  Outcome Apply(const Delivery& delivery, absl::Status* status);
  absl::Status Park(const Delivery& delivery, const std::string& reason);
  void RefreshLagMetrics();
  void Run();

  pg::Pool& pool_;
  redis::Client& redis_;
  ConsumerOptions options_;
  Handler handler_;
  std::unique_ptr<Metrics> metrics_;
  int64_t crash_after_applied_ = 0;  // PTD_FAULT_CRASH_AFTER_APPLY; 0: off
  int64_t applied_ = 0;

  std::mutex poll_mu_;  // one PollOnce at a time; guards the fields below
  bool group_ready_ = false;
  std::string claim_cursor_ = "0-0";
  absl::Time next_lag_refresh_ = absl::InfinitePast();

  std::thread thread_;
  std::atomic<bool> stopping_ = false;
};

}  // namespace ptd::outbox

#endif  // PTD_LIBS_OUTBOX_CONSUMER_H_
