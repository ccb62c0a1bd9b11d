#ifndef PTD_LIBS_PG_POOL_H_
#define PTD_LIBS_PG_POOL_H_

#include <condition_variable>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <pqxx/pqxx>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace prometheus {
class Registry;
}

// A bounded pool of PostgreSQL connections and the one way services run SQL: InTransaction.
//
//   absl::StatusOr<std::unique_ptr<Pool>> pool = Pool::Create({.url = url, .schema = "trading"}, &registry);
//   absl::Status s = (*pool)->InTransaction([&](pqxx::work& tx) {
//     tx.exec_params("UPDATE listing SET state = $2 WHERE id = $1", id, "open");
//     return absl::OkStatus();   // commit; any error status rolls back
//   });
//
// Work that must wait for the commit (waking a relay, say) is registered from inside with AfterCommit.
namespace ptd::pg {

struct PoolOptions {
  std::string url{};     // "postgresql://user@host:port/db" or a libpq key=value string
  std::string schema{};  // each connection's search_path is "<schema>, public"; empty leaves the server default
  int size = 8;          // at most this many connections, opened on demand
  // How long a caller waits for a free connection before RESOURCE_EXHAUSTED.
  absl::Duration acquire_timeout = absl::Seconds(5);
  std::string name = "default";  // the `pool` label of the metrics; unique per registry
  // Attempts of a transaction that fails with a serialization failure or a deadlock (the first one included).
  int max_attempts = 5;
};

enum class Isolation { kReadCommitted, kRepeatableRead, kSerializable };

// A transaction function that returns absl::StatusOr<T> (rather than absl::Status).
template <typename F>
concept ReturnsStatusOr =
    std::is_invocable_v<F&, pqxx::work&> && !std::is_convertible_v<std::invoke_result_t<F&, pqxx::work&>, absl::Status>;

// Thread-safe. Never throws: libpqxx exceptions become statuses (see ToStatus).
class Pool {
 public:
  // Checks the options; connections are opened on first use. `registry` (nullable) receives the metrics
  //   ptd_db_pool_connections{pool,state="idle|in_use"}, ptd_db_pool_size{pool},
  //   ptd_db_pool_wait_seconds{pool}, ptd_db_transactions_total{pool,result="commit|rollback|retry|error"}
  // and must outlive the pool.
  static absl::StatusOr<std::unique_ptr<Pool>> Create(PoolOptions options, prometheus::Registry* registry);
  ~Pool();
  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;

  // Runs `fn` in a transaction on a pooled connection; commits only when `fn` returns OK, and then returns
  // the commit's status. Otherwise rolls back and returns `fn`'s status (or the mapped exception it threw).
  //  - Serialization failures and deadlocks (thrown, or returned as a status for which IsRetryable() holds)
  //    run `fn` again in a new transaction, up to `max_attempts`, after a short jittered pause; so `fn` must
  //    have no effects outside the transaction, or only repeatable ones. When attempts run out: ABORTED.
  //  - A connection found broken when the transaction begins is dropped and the call retried once on a
  //    new one. A connection that breaks later is dropped and the call fails with UNAVAILABLE; a commit
  //    whose outcome is unknown is UNKNOWN.
  //  - No free connection within acquire_timeout: RESOURCE_EXHAUSTED; server unreachable: UNAVAILABLE.
  absl::Status InTransaction(const std::function<absl::Status(pqxx::work&)>& fn,
                             Isolation isolation = Isolation::kReadCommitted);

  // The same for a function returning absl::StatusOr<T>; the value of the attempt that committed.
  template <ReturnsStatusOr F>
  std::invoke_result_t<F&, pqxx::work&> InTransaction(F&& fn, Isolation isolation = Isolation::kReadCommitted);

  // A new connection outside the pool (same URL and search_path), for sessions that outlive one
  // transaction: LISTEN, session advisory locks. The caller owns it. UNAVAILABLE when it cannot connect.
  absl::StatusOr<std::unique_ptr<pqxx::connection>> OpenConnection() const;

  const PoolOptions& options() const { return options_; }

 private:
  struct Metrics;
  class Lease;
  struct Attempt {
    enum Outcome { kCommitted, kRolledBack, kFailed, kBrokenAtBegin } outcome;
    absl::Status status;
    std::vector<std::function<void()>> after_commit{};  // when committed: what AfterCommit registered
  };

  Attempt RunOnce(const std::function<absl::Status(pqxx::work&)>& fn, Isolation isolation);

  Pool(PoolOptions options, prometheus::Registry* registry);
  absl::StatusOr<std::unique_ptr<pqxx::connection>> Acquire();
  void Release(std::unique_ptr<pqxx::connection> connection, bool broken);
  void UpdateGauges();  // with mu_ held

  PoolOptions options_;
  std::unique_ptr<Metrics> metrics_;

  std::mutex mu_;
  std::condition_variable freed_;
  std::vector<std::unique_ptr<pqxx::connection>> idle_;
  int open_ = 0;  // idle + in use + being opened
};

// Maps a libpqxx (or other) exception to a status with the server's message and SQLSTATE:
// unique violation → ALREADY_EXISTS; check, foreign-key and not-null violations → FAILED_PRECONDITION;
// bad data (22xxx, e.g. an ill-formed uuid) → INVALID_ARGUMENT; serialization failure, deadlock → ABORTED
// (retryable); broken connection → UNAVAILABLE; commit outcome unknown → UNKNOWN; statement timeout →
// DEADLINE_EXCEEDED; out of resources → RESOURCE_EXHAUSTED; anything else → INTERNAL.
absl::Status ToStatus(const std::exception& e);

// True for the statuses of serialization failures and deadlocks, which InTransaction retries.
bool IsRetryable(const absl::Status& status);

// Runs `fn` right after `tx` commits, when `tx` is the transaction of a Pool::InTransaction call running on
// this thread (the function it was given, or anything that function calls). Callbacks run on the same thread,
// in the order they were registered, after a successful commit and once the connection is back in the pool,
// before InTransaction returns. They are dropped when the attempt rolls back, fails (its commit included) or
// is retried; a retried attempt runs the function again, which registers them again. A callback must not
// throw: one that does is logged and the others still run. A transaction that registers none allocates
// nothing for them.
//
// Returns false, and registers nothing, when `tx` is no such transaction (one the caller began on a
// connection of its own): there is no commit to wait for, and the caller must do without.
bool AfterCommit(const pqxx::transaction_base& tx, std::function<void()> fn);

// AfterCommit, at most once per transaction for each `key` (any address the caller owns): when a callback
// with this key is already registered for `tx`, registers nothing and returns true.
bool AfterCommitOnce(const pqxx::transaction_base& tx, const void* key, std::function<void()> fn);

// The pool running `tx` (as for AfterCommit), or nullptr: for code that is handed only a transaction and
// needs the pool's options, e.g. its schema, without asking the server.
const Pool* PoolOf(const pqxx::transaction_base& tx);

// ---- implementation details ----

template <ReturnsStatusOr F>
std::invoke_result_t<F&, pqxx::work&> Pool::InTransaction(F&& fn, Isolation isolation) {
  std::optional<std::invoke_result_t<F&, pqxx::work&>> result;
  absl::Status status = InTransaction(
      [&](pqxx::work& tx) -> absl::Status {
        result.emplace(fn(tx));
        return result->status();
      },
      isolation);
  if (!status.ok()) return status;
  return *std::move(result);
}

}  // namespace ptd::pg

#endif  // PTD_LIBS_PG_POOL_H_
