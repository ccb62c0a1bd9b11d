#include "libs/pg/pool.h"

#include <prometheus/registry.h>

#include <atomic>
#include <barrier>
#include <catch2/catch.hpp>
#include <chrono>
#include <map>
#include <thread>

#include "absl/strings/match.h"
#include "tests/testing/testing.h"

namespace ptd::pg {
namespace {

using ptd::testing::FreshDatabase;

// The value of one counter, gauge or (sample count of a) histogram with exactly these labels.
double MetricValue(prometheus::Registry& registry, const std::string& name,
                   const std::map<std::string, std::string>& labels) {
  for (const auto& family : registry.Collect()) {
    if (family.name != name) continue;
    for (const auto& metric : family.metric) {
      std::map<std::string, std::string> have;
      for (const auto& label : metric.label) have[label.name] = label.value;
      if (have != labels) continue;
      switch (family.type) {
        case prometheus::MetricType::Counter:
          return metric.counter.value;
        case prometheus::MetricType::Gauge:
          return metric.gauge.value;
        case prometheus::MetricType::Histogram:
          return static_cast<double>(metric.histogram.sample_count);
        default:
          return -1;
      }
    }
  }
  return -1;
}

std::unique_ptr<Pool> MakePool(PoolOptions options, prometheus::Registry* registry = nullptr) {
  if (options.url.empty()) options.url = FreshDatabase("pg");
  auto pool = Pool::Create(std::move(options), registry);
  REQUIRE(pool.ok());
  return *std::move(pool);
}

absl::Status Exec(Pool& pool, const std::string& sql) {
  return pool.InTransaction([&](pqxx::work& tx) {
    tx.exec(sql);
    return absl::OkStatus();
  });
}

int64_t Count(Pool& pool, const std::string& table) {
  absl::StatusOr<int64_t> n = pool.InTransaction([&](pqxx::work& tx) -> absl::StatusOr<int64_t> {
    return tx.exec1("SELECT count(*) FROM " + table)[0].as<int64_t>();
  });
  REQUIRE(n.ok());
  return *n;
}

TEST_CASE("pg: a transaction commits when its function returns OK and rolls back otherwise") {
  prometheus::Registry registry;
  auto pool = MakePool({.name = "commit"}, &registry);
  REQUIRE(Exec(*pool, "CREATE TABLE item (id int PRIMARY KEY)").ok());

  REQUIRE(pool->InTransaction([](pqxx::work& tx) {
                tx.exec_params("INSERT INTO item VALUES ($1)", 1);
                return absl::OkStatus();
              })
              .ok());
  absl::Status rejected = pool->InTransaction([](pqxx::work& tx) {
    tx.exec_params("INSERT INTO item VALUES ($1)", 2);
    return absl::FailedPreconditionError("item 2 is not wanted");
  });

  CHECK(rejected == absl::FailedPreconditionError("item 2 is not wanted"));
  CHECK(Count(*pool, "item") == 1);
  CHECK(MetricValue(registry, "ptd_db_transactions_total", {{"pool", "commit"}, {"result", "rollback"}}) == 1);
  CHECK(MetricValue(registry, "ptd_db_transactions_total", {{"pool", "commit"}, {"result", "commit"}}) >= 2);
  CHECK(MetricValue(registry, "ptd_db_pool_size", {{"pool", "commit"}}) == 8);
  CHECK(MetricValue(registry, "ptd_db_pool_wait_seconds", {{"pool", "commit"}}) >= 3);
}

TEST_CASE("pg: the StatusOr form returns the value of the committed attempt") {
  auto pool = MakePool({});
  absl::StatusOr<std::string> answer = pool->InTransaction([](pqxx::work& tx) -> absl::StatusOr<std::string> {
    return tx.exec1("SELECT 'forty-two'")[0].as<std::string>();
  });
  REQUIRE(answer.ok());
  CHECK(*answer == "forty-two");

  absl::StatusOr<int> refused =
      pool->InTransaction([](pqxx::work&) -> absl::StatusOr<int> { return absl::NotFoundError("no such listing"); });
  CHECK(refused.status() == absl::NotFoundError("no such listing"));
}

TEST_CASE("pg: each connection searches the pool's schema, then public") {
  std::string url = FreshDatabase("pg");
  auto setup = MakePool({.url = url});
  REQUIRE(Exec(*setup,
               "CREATE SCHEMA trading; CREATE TABLE public.shared (x int); "
               "CREATE TABLE trading.listing (x int); INSERT INTO trading.listing VALUES (7)")
              .ok());

  auto pool = MakePool({.url = url, .schema = "trading"});
  absl::StatusOr<int> x = pool->InTransaction([](pqxx::work& tx) -> absl::StatusOr<int> {
    tx.exec("SELECT * FROM shared");  // found in public
    return tx.exec1("SELECT x FROM listing")[0].as<int>();
  });
  REQUIRE(x.ok());
  CHECK(*x == 7);
}

struct ErrorCase {
  std::string setup;
  std::string sql;
  absl::StatusCode code;
  std::string message_part;
};

TEST_CASE("pg: SQL errors become statuses with the server's message") {
  auto [setup, sql, code, message_part] = GENERATE(values<ErrorCase>({
      {"CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1)", "INSERT INTO t VALUES (1)",
       absl::StatusCode::kAlreadyExists, "duplicate key value violates unique constraint \"t_pkey\""},
      {"CREATE TABLE t (qty int CHECK (qty > 0))", "INSERT INTO t VALUES (-5)", absl::StatusCode::kFailedPrecondition,
       "violates check constraint"},
      {"CREATE TABLE t (qty int NOT NULL)", "INSERT INTO t VALUES (NULL)", absl::StatusCode::kFailedPrecondition,
       "not-null constraint"},
      {"CREATE TABLE p (id int PRIMARY KEY); CREATE TABLE t (p int REFERENCES p)", "INSERT INTO t VALUES (1)",
       absl::StatusCode::kFailedPrecondition, "foreign key constraint"},
      {"", "SELECT 'not-a-uuid'::uuid", absl::StatusCode::kInvalidArgument, "invalid input syntax for type uuid"},
      {"", "SELEKT 1", absl::StatusCode::kInternal, "syntax error"},
      {"", "SELECT * FROM missing_table", absl::StatusCode::kInternal, "\"missing_table\" does not exist"},
      {"", "SET LOCAL statement_timeout = 50; SELECT pg_sleep(2)", absl::StatusCode::kDeadlineExceeded,
       "statement timeout"},
  }));
  auto pool = MakePool({});
  if (!setup.empty()) REQUIRE(Exec(*pool, setup).ok());

  absl::Status status = Exec(*pool, sql);

  INFO(status);
  CHECK(status.code() == code);
  CHECK(absl::StrContains(status.message(), message_part));
  CHECK(absl::StrContains(status.message(), "SQLSTATE"));
}

TEST_CASE("pg: an exception thrown by the function is caught and rolls back") {
  auto pool = MakePool({});
  REQUIRE(Exec(*pool, "CREATE TABLE t (x int)").ok());
  absl::Status status = pool->InTransaction([](pqxx::work& tx) -> absl::Status {
    tx.exec("INSERT INTO t VALUES (1)");
    throw std::runtime_error("oops in the handler");
  });
  CHECK(status.code() == absl::StatusCode::kInternal);
  CHECK(absl::StrContains(status.message(), "oops in the handler"));
  CHECK(Count(*pool, "t") == 0);
}

TEST_CASE("pg: conflicting serializable transactions are retried until both apply") {
  prometheus::Registry registry;
  auto pool = MakePool({.name = "serial"}, &registry);
  REQUIRE(
      Exec(*pool, "CREATE TABLE counter (id int PRIMARY KEY, n int NOT NULL); INSERT INTO counter VALUES (1, 0)").ok());

  // Both read n before either writes; without the retry one increment would be lost or fail.
  std::barrier both_have_read(2);
  auto increment = [&] {
    bool first_attempt = true;
    return pool->InTransaction(
        [&](pqxx::work& tx) {
          int n = tx.exec1("SELECT n FROM counter WHERE id = 1")[0].as<int>();
          if (first_attempt) {
            first_attempt = false;
            both_have_read.arrive_and_wait();
          }
          tx.exec_params("UPDATE counter SET n = $1 WHERE id = 1", n + 1);
          return absl::OkStatus();
        },
        Isolation::kSerializable);
  };
  absl::Status a, b;
  std::thread ta([&] { a = increment(); });
  std::thread tb([&] { b = increment(); });
  ta.join();
  tb.join();

  CHECK(a.ok());
  CHECK(b.ok());
  absl::StatusOr<int> n = pool->InTransaction(
      [](pqxx::work& tx) -> absl::StatusOr<int> { return tx.exec1("SELECT n FROM counter")[0].as<int>(); });
  CHECK(*n == 2);
  CHECK(MetricValue(registry, "ptd_db_transactions_total", {{"pool", "serial"}, {"result", "retry"}}) >= 1);
}

TEST_CASE("pg: a transaction that keeps failing to serialize gives up with ABORTED after max_attempts") {
  auto pool = MakePool({.max_attempts = 3});
  int calls = 0;
  absl::Status status = pool->InTransaction([&](pqxx::work&) -> absl::Status {
    ++calls;
    throw pqxx::serialization_failure("could not serialize access (simulated)");
  });
  CHECK(calls == 3);
  CHECK(status.code() == absl::StatusCode::kAborted);
  CHECK(absl::StrContains(status.message(), "3 attempts"));
}

TEST_CASE("pg: after-commit callbacks run in order once the commit succeeded, with the connection back in the pool") {
  // One connection: a callback that runs a transaction of its own gets it only if it was given back.
  auto pool = MakePool({.size = 1, .acquire_timeout = absl::Milliseconds(500)});
  REQUIRE(Exec(*pool, "CREATE TABLE item (id int PRIMARY KEY)").ok());
  const std::thread::id caller = std::this_thread::get_id();
  std::vector<std::string> ran;

  absl::Status status = pool->InTransaction([&](pqxx::work& tx) {
    tx.exec("INSERT INTO item VALUES (1)");
    CHECK(AfterCommit(tx, [&] {
      ran.push_back("first, sees " + std::to_string(Count(*pool, "item")) + " item");
      CHECK(std::this_thread::get_id() == caller);
    }));
    CHECK(AfterCommit(tx, [&] { ran.push_back("second"); }));
    CHECK(ran.empty());
    return absl::OkStatus();
  });

  REQUIRE(status.ok());
  CHECK(ran == std::vector<std::string>{"first, sees 1 item", "second"});
}

TEST_CASE("pg: after-commit callbacks are dropped when the transaction rolls back, fails to commit or is retried") {
  auto pool = MakePool({.max_attempts = 3});
  REQUIRE(
      Exec(*pool, "CREATE TABLE item (id int, CONSTRAINT one_each UNIQUE (id) DEFERRABLE INITIALLY DEFERRED)").ok());
  std::vector<std::string> ran;

  absl::Status refused = pool->InTransaction([&](pqxx::work& tx) {
    REQUIRE(AfterCommit(tx, [&] { ran.push_back("refused"); }));
    return absl::FailedPreconditionError("not today");
  });
  CHECK(refused.code() == absl::StatusCode::kFailedPrecondition);

  absl::Status threw = pool->InTransaction([&](pqxx::work& tx) -> absl::Status {
    REQUIRE(AfterCommit(tx, [&] { ran.push_back("threw"); }));
    throw std::runtime_error("oops in the handler");
  });
  CHECK(threw.code() == absl::StatusCode::kInternal);

  absl::Status commit_failed = pool->InTransaction([&](pqxx::work& tx) {
    tx.exec("INSERT INTO item VALUES (1), (1)");  // checked at commit
    REQUIRE(AfterCommit(tx, [&] { ran.push_back("commit failed"); }));
    return absl::OkStatus();
  });
  CHECK(commit_failed.code() == absl::StatusCode::kAlreadyExists);
  CHECK(ran.empty());

  int attempt = 0;
  absl::Status retried = pool->InTransaction([&](pqxx::work& tx) -> absl::Status {
    ++attempt;
    REQUIRE(AfterCommit(tx, [&, attempt] { ran.push_back("attempt " + std::to_string(attempt)); }));
    if (attempt < 3) throw pqxx::serialization_failure("could not serialize access (simulated)");
    return absl::OkStatus();
  });
  CHECK(retried.ok());
  CHECK(ran == std::vector<std::string>{"attempt 3"});
}

TEST_CASE("pg: AfterCommit knows only the transactions that pools run on this thread, nested ones included") {
  const std::string url = FreshDatabase("pg");
  auto outer_pool = MakePool({.url = url, .name = "outer"});
  auto inner_pool = MakePool({.url = url, .name = "inner"});
  static const char kKey = 0;
  std::vector<std::string> ran;

  {
    pqxx::connection own(url);
    pqxx::work own_tx(own);
    CHECK_FALSE(AfterCommit(own_tx, [&] { ran.push_back("own"); }));
    CHECK_FALSE(AfterCommitOnce(own_tx, &kKey, [&] { ran.push_back("own"); }));
    CHECK(PoolOf(own_tx) == nullptr);
    own_tx.commit();
  }

  absl::Status status = outer_pool->InTransaction([&](pqxx::work& outer) {
    CHECK(PoolOf(outer) == outer_pool.get());
    CHECK(AfterCommitOnce(outer, &kKey, [&] { ran.push_back("outer, once"); }));
    CHECK(AfterCommitOnce(outer, &kKey, [&] { ran.push_back("outer, twice"); }));
    absl::Status inner_status = inner_pool->InTransaction([&](pqxx::work& inner) {
      CHECK(PoolOf(inner) == inner_pool.get());
      CHECK(PoolOf(outer) == outer_pool.get());
      CHECK(AfterCommitOnce(inner, &kKey, [&] { ran.push_back("inner, once"); }));  // its own keys
      CHECK(AfterCommit(outer, [&] { ran.push_back("outer, from inner"); }));
      return absl::OkStatus();
    });
    CHECK(inner_status.ok());
    CHECK(ran == std::vector<std::string>{"inner, once"});
    return absl::OkStatus();
  });

  REQUIRE(status.ok());
  CHECK(ran == std::vector<std::string>{"inner, once", "outer, once", "outer, from inner"});
}

TEST_CASE("pg: a pool of two makes a third caller wait, then time out with RESOURCE_EXHAUSTED") {
  prometheus::Registry registry;
  auto pool = MakePool({.size = 2, .acquire_timeout = absl::Milliseconds(300), .name = "small"}, &registry);
  std::atomic<int> holding = 0;
  std::atomic<bool> release = false;
  auto hold = [&] {
    return pool->InTransaction([&](pqxx::work& tx) {
      tx.exec("SELECT 1");
      ++holding;
      while (!release) std::this_thread::sleep_for(std::chrono::milliseconds(5));
      return absl::OkStatus();
    });
  };
  std::thread first(hold), second(hold);
  REQUIRE(ptd::testing::WaitFor([&] { return holding == 2; }));
  CHECK(MetricValue(registry, "ptd_db_pool_connections", {{"pool", "small"}, {"state", "in_use"}}) == 2);

  auto start = std::chrono::steady_clock::now();
  absl::Status third = Exec(*pool, "SELECT 1");
  auto waited = std::chrono::steady_clock::now() - start;
  CHECK(third.code() == absl::StatusCode::kResourceExhausted);
  CHECK(waited >= std::chrono::milliseconds(250));

  // A caller that waits long enough gets the connection the first holder gives back.
  absl::Status patient;
  std::thread waiter([&] { patient = Exec(*pool, "SELECT 1"); });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  release = true;
  first.join();
  second.join();
  waiter.join();
  CHECK(patient.ok());
  CHECK(MetricValue(registry, "ptd_db_pool_connections", {{"pool", "small"}, {"state", "in_use"}}) == 0);
  CHECK(MetricValue(registry, "ptd_db_pool_connections", {{"pool", "small"}, {"state", "idle"}}) == 2);
}

TEST_CASE("pg: a connection the server closed is replaced without failing the caller") {
  std::string url = FreshDatabase("pg");
  auto pool = MakePool({.url = url, .size = 1});
  auto backend_pid = [&] {
    absl::StatusOr<int> pid = pool->InTransaction(
        [](pqxx::work& tx) -> absl::StatusOr<int> { return tx.exec1("SELECT pg_backend_pid()")[0].as<int>(); });
    REQUIRE(pid.ok());
    return *pid;
  };
  int before = backend_pid();

  auto admin = MakePool({.url = url});
  REQUIRE(admin
              ->InTransaction([&](pqxx::work& tx) {
                tx.exec_params("SELECT pg_terminate_backend($1)", before);
                return absl::OkStatus();
              })
              .ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(100));

  CHECK(backend_pid() != before);
}

TEST_CASE("pg: an unreachable server is UNAVAILABLE") {
  int port = ptd::testing::FreePort();
  auto pool = MakePool({.url = "postgresql://ptd@127.0.0.1:" + std::to_string(port) + "/postgres"});
  absl::Status status = Exec(*pool, "SELECT 1");
  CHECK(status.code() == absl::StatusCode::kUnavailable);
}

TEST_CASE("pg: bad pool options are INVALID_ARGUMENT") {
  CHECK(Pool::Create({.url = ""}, nullptr).status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(Pool::Create({.url = "postgresql://x", .size = 0}, nullptr).status().code() ==
        absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace ptd::pg
