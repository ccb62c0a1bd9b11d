#include "libs/pg/pool.h"

#include <poll.h>
#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <algorithm>
#include <chrono>
#include <random>
#include <thread>

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "libs/core/log.h"

namespace ptd::pg {
namespace {

constexpr char kRetryablePayload[] = "type.googleapis.com/ptd.pg.Retryable";

// Server messages read "ERROR:  text\nDETAIL:  more\n"; a status message reads better on one line.
std::string CleanMessage(absl::string_view what) {
  std::string text(absl::StripAsciiWhitespace(absl::StripPrefix(absl::StripAsciiWhitespace(what), "ERROR:  ")));
  return absl::StrReplaceAll(text, {{"\n", "; "}, {":  ", ": "}});
}

absl::Status WithSqlState(absl::StatusCode code, absl::string_view what, absl::string_view sqlstate) {
  std::string message = CleanMessage(what);
  if (!sqlstate.empty()) absl::StrAppend(&message, " (SQLSTATE ", sqlstate, ")");
  return absl::Status(code, message);
}

absl::Status Retryable(absl::string_view what, absl::string_view sqlstate) {
  absl::Status status = WithSqlState(absl::StatusCode::kAborted, what, sqlstate);
  status.SetPayload(kRetryablePayload, absl::Cord("1"));
  return status;
}

absl::StatusCode CodeOfSqlState(absl::string_view state) {
  if (state == "23505") return absl::StatusCode::kAlreadyExists;                 // unique_violation
  if (state.substr(0, 2) == "23") return absl::StatusCode::kFailedPrecondition;  // check, fk, not null
  if (state.substr(0, 2) == "22") return absl::StatusCode::kInvalidArgument;     // data exception
  if (state == "57014") return absl::StatusCode::kDeadlineExceeded;              // query_canceled (timeout)
  if (state.substr(0, 2) == "53") return absl::StatusCode::kResourceExhausted;   // insufficient resources
  if (state.substr(0, 2) == "08" || state == "57P01" || state == "57P02" || state == "57P03") {
    return absl::StatusCode::kUnavailable;  // connection exceptions, admin/crash shutdown
  }
  return absl::StatusCode::kInternal;
}

// A pooled connection with unread input is dead or in an unknown state: the server closed it (restart,
// pg_terminate_backend) and left a farewell message or EOF on the socket. Checked without blocking.
bool LooksDead(const pqxx::connection& connection) {
  if (!connection.is_open()) return true;
  pollfd fd{.fd = connection.sock(), .events = POLLIN, .revents = 0};
  if (fd.fd < 0) return true;
  return ::poll(&fd, 1, 0) != 0;
}

void PauseBeforeRetry(int attempt) {
  thread_local std::mt19937 rng{std::random_device{}()};
  const int cap_ms = std::min(100, 5 << std::min(attempt, 5));
  std::this_thread::sleep_for(std::chrono::milliseconds(std::uniform_int_distribution<int>(1, cap_ms)(rng)));
}

const char* SetIsolationSql(Isolation isolation) {
  switch (isolation) {
    case Isolation::kReadCommitted:
      return nullptr;
    case Isolation::kRepeatableRead:
      return "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ";
    case Isolation::kSerializable:
      return "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE";
  }
  return nullptr;
}

absl::StatusOr<std::unique_ptr<pqxx::connection>> Connect(const PoolOptions& options) {
  try {
    auto connection = std::make_unique<pqxx::connection>(options.url);
    if (!options.schema.empty()) {
      // set_variable (not a plain SET) so that libpqxx restores it if it ever reconnects by itself.
      connection->set_variable("search_path", connection->quote_name(options.schema) + ", public");
    }
    return connection;
  } catch (const std::exception& e) {
    return absl::UnavailableError(
        absl::StrCat("pool '", options.name, "': cannot connect to PostgreSQL: ", CleanMessage(e.what())));
  }
}

// The transaction that Pool::InTransaction is running on this thread, while its function runs; `outer` is the
// one it interrupted (a function may run a transaction of another pool), so AfterCommit finds any of them.
class CurrentTransaction {
 public:
  CurrentTransaction(const pqxx::transaction_base& tx, const Pool& pool) : tx_(&tx), pool_(&pool), outer_(current_) {
    current_ = this;
  }
  ~CurrentTransaction() { current_ = outer_; }
  CurrentTransaction(const CurrentTransaction&) = delete;
  CurrentTransaction& operator=(const CurrentTransaction&) = delete;

  static CurrentTransaction* Find(const pqxx::transaction_base& tx) {
    CurrentTransaction* t = current_;
    while (t != nullptr && t->tx_ != &tx) t = t->outer_;
    return t;
  }

  const Pool& pool() const { return *pool_; }
  bool Has(const void* key) const { return std::find(keys_.begin(), keys_.end(), key) != keys_.end(); }
  void Add(const void* key, std::function<void()> fn) {
    if (key != nullptr) keys_.push_back(key);
    after_commit_.push_back(std::move(fn));
  }
  std::vector<std::function<void()>> TakeAfterCommit() { return std::move(after_commit_); }

 private:
  static thread_local CurrentTransaction* current_;

  const pqxx::transaction_base* tx_;
  const Pool* pool_;
  CurrentTransaction* outer_;
  std::vector<std::function<void()>> after_commit_;  // empty vectors allocate nothing
  std::vector<const void*> keys_;                    // of AfterCommitOnce
};

thread_local CurrentTransaction* CurrentTransaction::current_ = nullptr;

void RunAfterCommit(std::vector<std::function<void()>>& callbacks, const std::string& pool_name) {
  for (std::function<void()>& fn : callbacks) {
    try {
      fn();
    } catch (const std::exception& e) {
      log::Error("after-commit callback threw", {{"pool", pool_name}, {"error", e.what()}});
    } catch (...) {
      log::Error("after-commit callback threw", {{"pool", pool_name}, {"error", "a non-standard exception"}});
    }
  }
}

}  // namespace

bool AfterCommit(const pqxx::transaction_base& tx, std::function<void()> fn) {
  CurrentTransaction* current = CurrentTransaction::Find(tx);
  if (current == nullptr) return false;
  current->Add(nullptr, std::move(fn));
  return true;
}

bool AfterCommitOnce(const pqxx::transaction_base& tx, const void* key, std::function<void()> fn) {
  CurrentTransaction* current = CurrentTransaction::Find(tx);
  if (current == nullptr) return false;
  if (!current->Has(key)) current->Add(key, std::move(fn));
  return true;
}

const Pool* PoolOf(const pqxx::transaction_base& tx) {
  const CurrentTransaction* current = CurrentTransaction::Find(tx);
  return current == nullptr ? nullptr : &current->pool();
}

absl::Status ToStatus(const std::exception& e) {
  if (const auto* sql = dynamic_cast<const pqxx::sql_error*>(&e)) {
    if (sql->sqlstate() == "40001" || sql->sqlstate() == "40P01") return Retryable(e.what(), sql->sqlstate());
    return WithSqlState(CodeOfSqlState(sql->sqlstate()), e.what(), sql->sqlstate());
  }
  if (dynamic_cast<const pqxx::serialization_failure*>(&e)) return Retryable(e.what(), "40001");
  if (dynamic_cast<const pqxx::deadlock_detected*>(&e)) return Retryable(e.what(), "40P01");
  if (dynamic_cast<const pqxx::in_doubt_error*>(&e) || dynamic_cast<const pqxx::statement_completion_unknown*>(&e)) {
    return absl::UnknownError(absl::StrCat("outcome unknown, the connection broke: ", CleanMessage(e.what())));
  }
  if (dynamic_cast<const pqxx::broken_connection*>(&e)) {
    return absl::UnavailableError(absl::StrCat("connection to PostgreSQL lost: ", CleanMessage(e.what())));
  }
  return absl::InternalError(CleanMessage(e.what()));
}

bool IsRetryable(const absl::Status& status) {
  return status.code() == absl::StatusCode::kAborted && status.GetPayload(kRetryablePayload).has_value();
}

struct Pool::Metrics {
  std::shared_ptr<prometheus::Registry> own_registry;  // when the caller gave none
  prometheus::Gauge* idle;
  prometheus::Gauge* in_use;
  prometheus::Gauge* size;
  prometheus::Histogram* wait_seconds;
  prometheus::Counter* commit;
  prometheus::Counter* rollback;
  prometheus::Counter* retry;
  prometheus::Counter* error;

  Metrics(prometheus::Registry* registry, const std::string& pool) {
    if (registry == nullptr) {
      own_registry = std::make_shared<prometheus::Registry>();
      registry = own_registry.get();
    }
    auto& connections = prometheus::BuildGauge()
                            .Name("ptd_db_pool_connections")
                            .Help("Open database connections of the pool, by state")
                            .Register(*registry);
    idle = &connections.Add({{"pool", pool}, {"state", "idle"}});
    in_use = &connections.Add({{"pool", pool}, {"state", "in_use"}});
    size = &prometheus::BuildGauge()
                .Name("ptd_db_pool_size")
                .Help("Most connections the pool opens")
                .Register(*registry)
                .Add({{"pool", pool}});
    wait_seconds = &prometheus::BuildHistogram()
                        .Name("ptd_db_pool_wait_seconds")
                        .Help("Time callers waited for a connection (opening one included)")
                        .Register(*registry)
                        .Add({{"pool", pool}}, prometheus::Histogram::BucketBoundaries{0.0005, 0.001, 0.005, 0.01, 0.05,
                                                                                       0.1, 0.25, 0.5, 1, 2.5, 5, 10});
    auto& transactions = prometheus::BuildCounter()
                             .Name("ptd_db_transactions_total")
                             .Help("Transactions run by InTransaction, by result")
                             .Register(*registry);
    commit = &transactions.Add({{"pool", pool}, {"result", "commit"}});
    rollback = &transactions.Add({{"pool", pool}, {"result", "rollback"}});
    retry = &transactions.Add({{"pool", pool}, {"result", "retry"}});
    error = &transactions.Add({{"pool", pool}, {"result", "error"}});
  }
};

// A connection taken from the pool; goes back (or is dropped, if broken) when the lease ends.
class Pool::Lease {
 public:
  Lease(Pool* pool, std::unique_ptr<pqxx::connection> connection) : pool_(pool), connection_(std::move(connection)) {}
  ~Lease() { pool_->Release(std::move(connection_), broken_); }
  Lease(const Lease&) = delete;
  Lease& operator=(const Lease&) = delete;

  pqxx::connection& connection() { return *connection_; }
  void MarkBroken() { broken_ = true; }

 private:
  Pool* pool_;
  std::unique_ptr<pqxx::connection> connection_;
  bool broken_ = false;
};

absl::StatusOr<std::unique_ptr<Pool>> Pool::Create(PoolOptions options, prometheus::Registry* registry) {
  if (options.url.empty()) return absl::InvalidArgumentError("pool url must not be empty");
  if (options.size < 1)
    return absl::InvalidArgumentError(absl::StrCat("pool size must be positive, got ", options.size));
  if (options.max_attempts < 1) {
    return absl::InvalidArgumentError(absl::StrCat("max_attempts must be positive, got ", options.max_attempts));
  }
  if (options.acquire_timeout < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("acquire_timeout must not be negative");
  }
  try {
    return std::unique_ptr<Pool>(new Pool(std::move(options), registry));
  } catch (const std::exception& e) {  // prometheus rejects a clashing metric family
    return absl::InvalidArgumentError(absl::StrCat("pool metrics: ", e.what()));
  }
}

Pool::Pool(PoolOptions options, prometheus::Registry* registry)
    : options_(std::move(options)), metrics_(std::make_unique<Metrics>(registry, options_.name)) {
  metrics_->size->Set(options_.size);
}

Pool::~Pool() {
  std::lock_guard lock(mu_);
  idle_.clear();
  open_ = 0;
  UpdateGauges();
}

void Pool::UpdateGauges() {
  metrics_->idle->Set(static_cast<double>(idle_.size()));
  metrics_->in_use->Set(static_cast<double>(open_ - static_cast<int>(idle_.size())));
}

absl::StatusOr<std::unique_ptr<pqxx::connection>> Pool::Acquire() {
  const auto start = std::chrono::steady_clock::now();
  const auto deadline = start + absl::ToChronoMilliseconds(options_.acquire_timeout);
  auto observe_wait = [&] {
    metrics_->wait_seconds->Observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  };
  std::unique_lock lock(mu_);
  while (true) {
    if (!idle_.empty()) {
      std::unique_ptr<pqxx::connection> connection = std::move(idle_.back());
      idle_.pop_back();
      UpdateGauges();
      lock.unlock();
      if (!LooksDead(*connection)) {
        observe_wait();
        return connection;
      }
      connection.reset();  // reopened below, the slot stays ours
    } else if (open_ < options_.size) {
      ++open_;
      UpdateGauges();
      lock.unlock();
    } else {
      if (freed_.wait_until(lock, deadline) == std::cv_status::timeout && idle_.empty() && open_ >= options_.size) {
        observe_wait();
        return absl::ResourceExhaustedError(absl::StrCat("pool '", options_.name, "': no connection free within ",
                                                         absl::FormatDuration(options_.acquire_timeout), " (size ",
                                                         options_.size, ")"));
      }
      continue;
    }
    // Here the caller owns one slot in open_ and no connection: open one.
    absl::StatusOr<std::unique_ptr<pqxx::connection>> connection = Connect(options_);
    observe_wait();
    if (!connection.ok()) {
      lock.lock();
      --open_;
      UpdateGauges();
      freed_.notify_one();
    }
    return connection;
  }
}

void Pool::Release(std::unique_ptr<pqxx::connection> connection, bool broken) {
  if (broken || !connection->is_open()) connection.reset();  // closed outside the lock
  std::lock_guard lock(mu_);
  if (connection) {
    idle_.push_back(std::move(connection));
  } else {
    --open_;
  }
  UpdateGauges();
  freed_.notify_one();
}

absl::StatusOr<std::unique_ptr<pqxx::connection>> Pool::OpenConnection() const { return Connect(options_); }

Pool::Attempt Pool::RunOnce(const std::function<absl::Status(pqxx::work&)>& fn, Isolation isolation) {
  absl::StatusOr<std::unique_ptr<pqxx::connection>> connection = Acquire();
  if (!connection.ok()) return {Attempt::kFailed, connection.status()};
  Lease lease(this, *std::move(connection));
  bool began = false;
  try {
    pqxx::work tx(lease.connection());
    if (const char* set_isolation = SetIsolationSql(isolation)) tx.exec(set_isolation);
    began = true;
    CurrentTransaction current(tx, *this);  // gone, with what AfterCommit registered, unless committed
    absl::Status status = fn(tx);
    if (!status.ok()) return {Attempt::kRolledBack, status};  // ~work rolls back
    tx.commit();
    return {Attempt::kCommitted, absl::OkStatus(), current.TakeAfterCommit()};
  } catch (const pqxx::broken_connection& e) {
    lease.MarkBroken();
    return {began ? Attempt::kFailed : Attempt::kBrokenAtBegin, ToStatus(e)};
  } catch (const pqxx::in_doubt_error& e) {
    lease.MarkBroken();
    return {Attempt::kFailed, ToStatus(e)};
  } catch (const std::exception& e) {
    return {Attempt::kFailed, ToStatus(e)};
  } catch (...) {
    return {Attempt::kFailed, absl::InternalError("transaction function threw a non-standard exception")};
  }
}

absl::Status Pool::InTransaction(const std::function<absl::Status(pqxx::work&)>& fn, Isolation isolation) {
  bool reconnected = false;
  int attempt = 1;
  while (true) {
    Attempt result = RunOnce(fn, isolation);
    if (result.outcome == Attempt::kCommitted) {
      metrics_->commit->Increment();
      RunAfterCommit(result.after_commit, options_.name);  // the connection is back in the pool by now
      return absl::OkStatus();
    }
    if (result.outcome == Attempt::kBrokenAtBegin && !reconnected) {
      // Most likely a connection the server had dropped while it sat idle: one retry on a fresh one.
      log::Warn("database connection broken at begin, retrying",
                {{"pool", options_.name}, {"error", result.status.ToString()}});
      reconnected = true;
      continue;
    }
    if (IsRetryable(result.status)) {
      if (attempt < options_.max_attempts) {
        metrics_->retry->Increment();
        PauseBeforeRetry(attempt++);
        continue;
      }
      metrics_->error->Increment();
      return absl::AbortedError(absl::StrCat("gave up after ", attempt, " attempts: ", result.status.message()));
    }
    (result.outcome == Attempt::kRolledBack ? metrics_->rollback : metrics_->error)->Increment();
    return result.status;
  }
}

}  // namespace ptd::pg
