#include "libs/outbox/outbox.h"

#include <prometheus/registry.h>
#include <signal.h>
#include <sys/wait.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "libs/core/ids.h"
#include "libs/outbox/consumer.h"
#include "libs/outbox/relay.h"
#include "tests/testing/testing.h"

namespace ptd::outbox {
namespace {

using ptd::testing::Process;
using ptd::testing::WaitFor;

// The value of a counter or gauge of `registry` with exactly these labels (0 when absent).
// The series of `name` with exactly `labels`, with its family's type; nullopt when it has none.
std::optional<std::pair<prometheus::MetricType, prometheus::ClientMetric>> FindSeries(
    prometheus::Registry& registry, const std::string& name, const std::map<std::string, std::string>& labels) {
  for (const auto& family : registry.Collect()) {
    if (family.name != name) continue;
    for (const auto& metric : family.metric) {
      std::map<std::string, std::string> have;
      for (const auto& label : metric.label) have[label.name] = label.value;
      if (have == labels) return std::make_pair(family.type, metric);
    }
  }
  return std::nullopt;
}

// The value of a counter or gauge series, 0 when it has none.
double MetricValue(prometheus::Registry& registry, const std::string& name,
                   const std::map<std::string, std::string>& labels = {}) {
  auto series = FindSeries(registry, name, labels);
  if (!series) return 0;
  return series->first == prometheus::MetricType::Counter ? series->second.counter.value : series->second.gauge.value;
}

bool HasSeries(prometheus::Registry& registry, const std::string& name,
               const std::map<std::string, std::string>& labels) {
  return FindSeries(registry, name, labels).has_value();
}

// The helper programs are built next to this test binary.
std::string HelperPath(const std::string& name) {
  return (std::filesystem::read_symlink("/proc/self/exe").parent_path() / name).string();
}

// A fresh database with the outbox tables in schema "svc", a table `applied` that counts how often each event
// was applied, a stream of the test's own, and clients for both servers.
class World {
 public:
  World() {
    auto pool = pg::Pool::Create({.url = url, .schema = schema, .size = 4, .name = "outbox_test"}, &registry);
    REQUIRE(pool.ok());
    pool_ = *std::move(pool);
    auto redis = redis::Client::Create({.url = ptd::testing::GetInfra().redis_url});
    REQUIRE(redis.ok());
    redis_ = *std::move(redis);
    Exec("CREATE SCHEMA svc");
    REQUIRE(pool_->InTransaction([](pqxx::work& tx) { return EnsureTables(tx); }).ok());
    Exec("CREATE TABLE applied (event_id text PRIMARY KEY, times int NOT NULL, consumer text NOT NULL)");
  }

  pg::Pool& pool() { return *pool_; }
  redis::Client& redis() { return *redis_; }

  void Exec(const std::string& sql) {
    absl::Status status = pool_->InTransaction([&](pqxx::work& tx) {
      tx.exec(sql);
      return absl::OkStatus();
    });
    INFO(status);
    REQUIRE(status.ok());
  }

  int64_t Scalar(const std::string& sql) {
    absl::StatusOr<int64_t> value = pool_->InTransaction([&](pqxx::work& tx) -> absl::StatusOr<int64_t> {
      pqxx::row row = tx.exec1(sql);
      return row[0].is_null() ? 0 : row[0].as<int64_t>();
    });
    REQUIRE(value.ok());
    return *value;
  }

  Event MakeEvent(int n) const {
    return {.stream = stream,
            .type = "ptd.test.v1.Thing",
            .aggregate_id = "thing-" + std::to_string(n),
            .tenant_id = "tenant-1",
            .payload = std::string("\0\xff payload ", 11) + std::to_string(n),
            .request_id = "req-" + std::to_string(n)};
  }

  // Writes `count` events in transactions of `per_transaction`; returns their ids in order.
  std::vector<std::string> WriteEvents(int count, int per_transaction = 10) {
    std::vector<std::string> ids;
    for (int first = 0; first < count; first += per_transaction) {
      absl::Status status = pool_->InTransaction([&](pqxx::work& tx) -> absl::Status {
        for (int n = first; n < std::min(count, first + per_transaction); ++n) {
          Event event = MakeEvent(n);
          event.id = NewId();
          if (absl::Status s = Write(tx, event); !s.ok()) return s;
          ids.push_back(event.id);
        }
        return absl::OkStatus();
      });
      REQUIRE(status.ok());
    }
    return ids;
  }

  int64_t StreamLength() { return Integer({"XLEN", stream}); }
  int64_t PendingInGroup(const std::string& group) {
    absl::StatusOr<redis::Value> summary = redis_->Command({"XPENDING", stream, group});
    REQUIRE(summary.ok());
    return summary->elements.empty() ? 0 : summary->elements[0].integer;
  }
  int64_t Integer(const std::vector<std::string>& command) {
    absl::StatusOr<redis::Value> reply = redis_->Command(command);
    INFO(reply.status());
    REQUIRE(reply.ok());
    return reply->integer;
  }

  // Arguments for the helper programs.
  std::vector<std::string> ConsumerArgs(const std::string& group, const std::string& consumer) const {
    return {HelperPath("outbox_test_consumer"),
            "--pg-url=" + url,
            "--schema=" + schema,
            "--redis-url=" + ptd::testing::GetInfra().redis_url,
            "--stream=" + stream,
            "--group=" + group,
            "--consumer=" + consumer,
            "--claim-min-idle=500ms"};
  }
  std::vector<std::string> RelayArgs() const {
    return {HelperPath("outbox_test_relay"), "--pg-url=" + url, "--schema=" + schema,
            "--redis-url=" + ptd::testing::GetInfra().redis_url};
  }

  const std::string url = ptd::testing::FreshDatabase("outbox");
  const std::string schema = "svc";
  const std::string stream = ptd::testing::UniqueName("ptd.test.events");
  prometheus::Registry registry;

 private:
  std::unique_ptr<pg::Pool> pool_;
  std::unique_ptr<redis::Client> redis_;
};

// Counts each applied event in `applied`, like the helper program does.
Handler CountingHandler(const std::string& consumer_name) {
  return [consumer_name](pqxx::work& tx, const Delivery& delivery) {
    tx.exec_params(
        "INSERT INTO applied (event_id, times, consumer) VALUES ($1, 1, $2) "
        "ON CONFLICT (event_id) DO UPDATE SET times = applied.times + 1",
        delivery.event_id, consumer_name);
    return absl::OkStatus();
  };
}

bool KilledBySigkill(int wait_status) { return WIFSIGNALED(wait_status) && WTERMSIG(wait_status) == SIGKILL; }

// Polls `consumer` until `done` (or a timeout); PollOnce errors fail the test.
bool PollUntil(Consumer& consumer, const std::function<bool()>& done,
               std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
  return WaitFor(
      [&] {
        absl::StatusOr<int> handled = consumer.PollOnce();
        INFO(handled.status());
        REQUIRE(handled.ok());
        return done();
      },
      timeout);
}

TEST_CASE("outbox: events written while no relay runs are published in id order once a relay starts") {
  World world;
  std::vector<std::string> ids = world.WriteEvents(30, 10);
  absl::Status rolled_back = world.pool().InTransaction([&](pqxx::work& tx) -> absl::Status {
    if (absl::Status s = Write(tx, world.MakeEvent(99)); !s.ok()) return s;
    return absl::AbortedError("changed my mind");
  });
  REQUIRE(rolled_back.code() == absl::StatusCode::kAborted);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  CHECK(world.StreamLength() == 0);

  Relay relay(world.pool(), world.redis(), {.batch_size = 7, .interval = absl::Milliseconds(50)}, &world.registry);
  relay.Start();
  REQUIRE(WaitFor([&] { return world.StreamLength() == 30; }));
  relay.Stop();

  CHECK(world.Scalar("SELECT count(*) FROM outbox WHERE published_at IS NULL") == 0);
  absl::StatusOr<redis::Value> entries = world.redis().Command({"XRANGE", world.stream, "-", "+"});
  REQUIRE(entries.ok());
  REQUIRE(entries->elements.size() == 30);
  for (size_t i = 0; i < 30; ++i) {
    const redis::Value& fields = entries->elements[i].elements[1];
    std::map<std::string, std::string> got;
    for (size_t f = 0; f + 1 < fields.elements.size(); f += 2) got[fields.elements[f].str] = fields.elements[f + 1].str;
    Event want = world.MakeEvent(static_cast<int>(i));
    CHECK(got["id"] == ids[i]);
    CHECK(got["type"] == want.type);
    CHECK(got["aggregate_id"] == want.aggregate_id);
    CHECK(got["tenant_id"] == want.tenant_id);
    CHECK(got["request_id"] == want.request_id);
    CHECK(got["payload"] == want.payload);
  }
  CHECK(MetricValue(world.registry, "ptd_outbox_published_total", {{"stream", world.stream}}) == 30);
}

TEST_CASE("outbox: a committed Write wakes a listening relay without waiting for the poll interval") {
  World world;
  Relay relay(world.pool(), world.redis(), {.interval = absl::Seconds(30), .listen = true});
  relay.Start();
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // past the first round, now listening

  auto start = std::chrono::steady_clock::now();
  world.WriteEvents(1);
  CHECK(WaitFor([&] { return world.StreamLength() == 1; }, std::chrono::seconds(5)));
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(5));
  relay.Stop();
}

// A session LISTENing on the outbox's channel, as the relay of another process does.
class ChannelListener {
 public:
  ChannelListener(const std::string& url, const std::string& schema)
      : connection_(url), receiver_(connection_, NotifyChannel(schema), &received_) {}

  // Whether a notification came (since the last call), waiting up to `timeout` for one.
  bool Notified(std::chrono::milliseconds timeout) {
    const auto until = std::chrono::steady_clock::now() + timeout;
    while (received_ == 0 && std::chrono::steady_clock::now() < until) {
      const auto us =
          std::chrono::duration_cast<std::chrono::microseconds>(until - std::chrono::steady_clock::now()).count();
      connection_.await_notification(std::max<int64_t>(0, us) / 1000000, std::max<int64_t>(0, us) % 1000000);
    }
    const bool notified = received_ > 0;
    received_ = 0;
    return notified;
  }

 private:
  struct Receiver : pqxx::notification_receiver {
    Receiver(pqxx::connection& connection, const std::string& channel, int* received)
        : pqxx::notification_receiver(connection, channel), received(received) {}
    void operator()(const std::string&, int) override { ++*received; }
    int* received;
  };

  int received_ = 0;
  pqxx::connection connection_;
  Receiver receiver_;
};

// Inserts an event with SQL of its own, which neither notifies nor wakes a relay (as trading's batches do,
// which then wake the relay themselves).
void InsertQuietly(World& world, int n) {
  world.Exec("INSERT INTO outbox (id, stream, type, payload) VALUES ('" + NewId() + "', '" + world.stream +
             "', 'ptd.test.v1.Thing', 'quiet " + std::to_string(n) + "')");
}

TEST_CASE("outbox: with a relay of the outbox in this process, a committed Write wakes it directly, without NOTIFY") {
  World world;
  ChannelListener other_process(world.url, world.schema);
  world.WriteEvents(1);
  CHECK(other_process.Notified(std::chrono::seconds(5)));  // no relay yet: notified
  // Polling every 10 s: only a wake explains an event published sooner.
  Relay relay(world.pool(), world.redis(), {.interval = absl::Seconds(10)}, &world.registry);
  relay.Start();
  REQUIRE(WaitFor([&] { return world.StreamLength() == 1; }));  // its first round read the outbox before...
  auto rounds = [&](const std::string& trigger) {
    return MetricValue(world.registry, "ptd_outbox_relay_rounds_total", {{"trigger", trigger}});
  };
  CHECK(rounds("start") == 1);

  const auto start = std::chrono::steady_clock::now();
  world.WriteEvents(3, 3);  // ... this commit
  REQUIRE(WaitFor([&] { return world.StreamLength() == 4; }, std::chrono::seconds(5)));
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(2));
  CHECK_FALSE(other_process.Notified(std::chrono::milliseconds(300)));
  CHECK(rounds("wake") >= 1);
  CHECK(rounds("notify") == 0);
  CHECK(rounds("timer") == 0);

  relay.Stop();
  world.WriteEvents(1);
  CHECK(other_process.Notified(std::chrono::seconds(5)));  // stopped: notified again
}

TEST_CASE("outbox: a relay of the same schema on another URL counts as another process's and is woken by NOTIFY") {
  World world;
  auto elsewhere = pg::Pool::Create(
      {.url = world.url + "?application_name=another_process", .schema = world.schema, .name = "elsewhere"}, nullptr);
  REQUIRE(elsewhere.ok());
  ChannelListener other_process(world.url, world.schema);
  InsertQuietly(world, 0);
  Relay relay(**elsewhere, world.redis(), {.interval = absl::Seconds(10)});
  relay.Start();
  REQUIRE(WaitFor([&] { return world.StreamLength() == 1; }));  // past its first round
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // now listening
  CHECK(LocalRelayRunning(**elsewhere));
  CHECK_FALSE(LocalRelayRunning(world.pool()));

  const auto start = std::chrono::steady_clock::now();
  world.WriteEvents(1);
  REQUIRE(WaitFor([&] { return world.StreamLength() == 2; }, std::chrono::seconds(5)));
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(2));
  CHECK(other_process.Notified(std::chrono::seconds(1)));
  relay.Stop();
}

TEST_CASE("outbox: WakeLocalRelays wakes the started relays of a pool's outbox, for rows written by SQL of one's own") {
  World world;
  auto same_outbox = pg::Pool::Create({.url = world.url, .schema = world.schema, .name = "second"}, nullptr);
  auto other_schema = pg::Pool::Create({.url = world.url, .schema = "public", .name = "public"}, nullptr);
  REQUIRE(same_outbox.ok());
  REQUIRE(other_schema.ok());
  Relay relay(world.pool(), world.redis(), {.interval = absl::Seconds(10), .listen = false});
  CHECK_FALSE(LocalRelayRunning(world.pool()));
  CHECK_FALSE(WakeLocalRelays(world.pool()));

  InsertQuietly(world, 0);
  relay.Start();
  REQUIRE(WaitFor([&] { return world.StreamLength() == 1; }));  // past its first round
  CHECK(LocalRelayRunning(world.pool()));
  CHECK(LocalRelayRunning(**same_outbox));
  CHECK_FALSE(LocalRelayRunning(**other_schema));

  InsertQuietly(world, 1);
  CHECK_FALSE(WaitFor([&] { return world.StreamLength() == 2; }, std::chrono::seconds(1)));  // nothing woke it
  CHECK_FALSE(WakeLocalRelays(**other_schema));
  CHECK_FALSE(WaitFor([&] { return world.StreamLength() == 2; }, std::chrono::milliseconds(300)));
  CHECK(WakeLocalRelays(**same_outbox));
  CHECK(WaitFor([&] { return world.StreamLength() == 2; }, std::chrono::seconds(2)));

  relay.Stop();
  CHECK_FALSE(LocalRelayRunning(world.pool()));
  CHECK_FALSE(WakeLocalRelays(world.pool()));
}

TEST_CASE("outbox: a woken relay that finds another relay holding the lock passes the wake on with a NOTIFY") {
  World world;
  ChannelListener lock_holder(world.url, world.schema);
  Relay relay(world.pool(), world.redis(), {.interval = absl::Seconds(10)});
  relay.Start();
  absl::StatusOr<std::unique_ptr<pqxx::connection>> connection = world.pool().OpenConnection();
  REQUIRE(connection.ok());
  pqxx::work other(**connection);
  other.exec("SELECT pg_advisory_xact_lock(hashtextextended('ptd.outbox.relay:' || current_schema(), 0))");

  world.WriteEvents(1);  // wakes the relay, which finds the lock taken

  CHECK(lock_holder.Notified(std::chrono::seconds(5)));
  CHECK(world.StreamLength() == 0);
  relay.Stop();
}

TEST_CASE("outbox: the relay reports published and pending events") {
  World world;
  world.WriteEvents(3, 3);
  Relay relay(world.pool(), world.redis(), {.batch_size = 2}, &world.registry);

  REQUIRE(*relay.PublishOnce() == 2);
  CHECK(MetricValue(world.registry, "ptd_outbox_pending", {{"stream", world.stream}}) == 1);
  CHECK(MetricValue(world.registry, "ptd_outbox_oldest_pending_seconds") >= 0);
  REQUIRE(*relay.PublishOnce() == 1);
  CHECK(*relay.PublishOnce() == 0);
  CHECK(MetricValue(world.registry, "ptd_outbox_pending", {{"stream", world.stream}}) == 0);
  CHECK(MetricValue(world.registry, "ptd_outbox_oldest_pending_seconds") == 0);
  CHECK(MetricValue(world.registry, "ptd_outbox_published_total", {{"stream", world.stream}}) == 3);
}

TEST_CASE("outbox: a stream's pending gauge has a series as soon as its first events are published") {
  World world;
  Relay relay(world.pool(), world.redis(), {.pending_metrics_interval = absl::Hours(1)}, &world.registry);
  REQUIRE(*relay.PublishOnce() == 0);  // the first round counts: nothing pending, no stream yet
  world.WriteEvents(3, 3);
  REQUIRE(*relay.PublishOnce() == 3);  // published before any count saw them pending
  CHECK(HasSeries(world.registry, "ptd_outbox_pending", {{"stream", world.stream}}));
  CHECK(MetricValue(world.registry, "ptd_outbox_pending", {{"stream", world.stream}}) == 0);
}

TEST_CASE("outbox: the pending gauges are counted once an interval while events flow, and at once after a drain") {
  World world;
  world.WriteEvents(3, 3);
  Relay relay(world.pool(), world.redis(), {.batch_size = 2, .pending_metrics_interval = absl::Hours(1)},
              &world.registry);
  auto pending = [&] { return MetricValue(world.registry, "ptd_outbox_pending", {{"stream", world.stream}}); };

  REQUIRE(*relay.PublishOnce() == 2);
  CHECK(pending() == 1);  // the first round counts
  world.WriteEvents(4, 4);
  REQUIRE(*relay.PublishOnce() == 2);
  REQUIRE(*relay.PublishOnce() == 2);
  CHECK(pending() == 1);  // not again within the interval
  world.WriteEvents(2, 2);
  {
    // Another relay's round holds the lock: this relay finds no rows, and counts once what it cannot publish.
    absl::StatusOr<std::unique_ptr<pqxx::connection>> connection = world.pool().OpenConnection();
    REQUIRE(connection.ok());
    pqxx::work other(**connection);
    other.exec("SELECT pg_advisory_xact_lock(hashtextextended('ptd.outbox.relay:' || current_schema(), 0))");
    REQUIRE(*relay.PublishOnce() == 0);
    CHECK(pending() == 3);
    world.WriteEvents(1, 1);
    REQUIRE(*relay.PublishOnce() == 0);
    CHECK(pending() == 3);
  }
  REQUIRE(*relay.PublishOnce() == 2);
  REQUIRE(*relay.PublishOnce() == 2);
  CHECK(pending() == 3);
  REQUIRE(*relay.PublishOnce() == 0);
  CHECK(pending() == 0);
  CHECK(MetricValue(world.registry, "ptd_outbox_oldest_pending_seconds") == 0);
  CHECK(MetricValue(world.registry, "ptd_outbox_published_total", {{"stream", world.stream}}) == 10);
}

// The ids of the events on `stream`, in stream order.
std::vector<std::string> EventIdsOn(redis::Client& redis, const std::string& stream) {
  absl::StatusOr<redis::Value> entries = redis.Command({"XRANGE", stream, "-", "+"});
  REQUIRE(entries.ok());
  std::vector<std::string> ids;
  for (const redis::Value& entry : entries->elements) {
    const redis::Value& fields = entry.elements[1];
    for (size_t f = 0; f + 1 < fields.elements.size(); f += 2) {
      if (fields.elements[f].str == "id") ids.push_back(fields.elements[f + 1].str);
    }
  }
  return ids;
}

TEST_CASE("outbox: when Redis refuses an XADD, the rows before it are marked published and the rest wait") {
  World world;
  const std::string not_a_stream = world.stream + ".string";
  REQUIRE(world.redis().Command({"SET", not_a_stream, "x"}).ok());
  std::vector<std::string> ids;
  REQUIRE(world.pool()
              .InTransaction([&](pqxx::work& tx) -> absl::Status {
                for (int n = 0; n < 6; ++n) {
                  Event event = world.MakeEvent(n);
                  event.id = NewId();
                  if (n == 3) event.stream = not_a_stream;
                  if (absl::Status s = Write(tx, event); !s.ok()) return s;
                  ids.push_back(event.id);
                }
                return absl::OkStatus();
              })
              .ok());
  Relay relay(world.pool(), world.redis(), {}, &world.registry);

  absl::StatusOr<int> refused = relay.PublishOnce();
  CHECK(refused.status().code() == absl::StatusCode::kFailedPrecondition);
  CHECK(absl::StrContains(refused.status().message(), "WRONGTYPE"));
  CHECK(world.Scalar("SELECT count(*) FROM outbox WHERE published_at IS NULL") == 3);
  CHECK(world.Scalar("SELECT count(*) FROM outbox WHERE published_at IS NOT NULL "
                     "AND id > (SELECT min(id) FROM outbox WHERE published_at IS NULL)") == 0);
  CHECK(MetricValue(world.registry, "ptd_outbox_published_total", {{"stream", world.stream}}) == 3);

  REQUIRE(world.redis().Command({"DEL", not_a_stream}).ok());
  REQUIRE(*relay.PublishOnce() == 3);
  CHECK(world.Scalar("SELECT count(*) FROM outbox WHERE published_at IS NULL") == 0);
  CHECK(EventIdsOn(world.redis(), not_a_stream) == std::vector<std::string>{ids[3]});
  // Events 4 and 5 went out with the refused one's round, unmarked, and again with the next.
  CHECK(EventIdsOn(world.redis(), world.stream) ==
        std::vector<std::string>{ids[0], ids[1], ids[2], ids[4], ids[5], ids[4], ids[5]});
  (void)world.redis().Command({"DEL", not_a_stream});
}

TEST_CASE("outbox: XADDs that Redis refuses before running them (out of memory) publish none of the round") {
  World world;
  const int port = ptd::testing::FreePort();
  Process server("outbox_test_redis_oom", {"/usr/bin/redis-server", "--port", std::to_string(port), "--bind",
                                           "127.0.0.1", "--save", "", "--appendonly", "no", "--maxmemory", "1"});
  REQUIRE(ptd::testing::WaitForPort(port));
  auto full = redis::Client::Create({.url = "redis://127.0.0.1:" + std::to_string(port)});
  REQUIRE(full.ok());
  world.WriteEvents(5, 5);
  Relay relay(world.pool(), **full);

  absl::StatusOr<int> refused = relay.PublishOnce();
  CHECK(refused.status().code() == absl::StatusCode::kResourceExhausted);
  CHECK(world.Scalar("SELECT count(*) FROM outbox WHERE published_at IS NULL") == 5);
  CHECK(EventIdsOn(**full, world.stream).empty());

  REQUIRE((*full)->Command({"CONFIG", "SET", "maxmemory", "0"}).ok());
  REQUIRE(*relay.PublishOnce() == 5);
  CHECK(EventIdsOn(**full, world.stream).size() == 5);
  CHECK(world.Scalar("SELECT count(*) FROM outbox WHERE published_at IS NULL") == 0);
}

TEST_CASE("outbox: Write checks the event and reports database errors as statuses") {
  World world;
  auto write = [&](const Event& event) {
    return world.pool().InTransaction([&](pqxx::work& tx) { return Write(tx, event); });
  };
  Event no_stream = world.MakeEvent(1);
  no_stream.stream = "";
  CHECK(write(no_stream).code() == absl::StatusCode::kInvalidArgument);
  Event no_type = world.MakeEvent(1);
  no_type.type = "";
  CHECK(write(no_type).code() == absl::StatusCode::kInvalidArgument);

  Event once = world.MakeEvent(1);
  once.id = NewId();
  REQUIRE(write(once).ok());
  CHECK(write(once).code() == absl::StatusCode::kAlreadyExists);
}

TEST_CASE("outbox: TablesSql is the text of outbox.sql") {
  std::ifstream file(PTD_OUTBOX_SQL);
  std::stringstream text;
  text << file.rdbuf();
  CHECK(TablesSql() == text.str());
}

TEST_CASE("outbox: a consumer applies each event once, in stream order, and acknowledges it") {
  World world;
  std::vector<std::string> ids = world.WriteEvents(20, 5);
  Relay relay(world.pool(), world.redis());
  REQUIRE(*relay.PublishOnce() == 20);

  std::vector<Delivery> seen;
  Consumer consumer(
      world.pool(), world.redis(), {.stream = world.stream, .group = "g", .block = absl::Milliseconds(100)},
      [&](pqxx::work& tx, const Delivery& delivery) {
        seen.push_back(delivery);
        return CountingHandler("c")(tx, delivery);
      },
      &world.registry);
  REQUIRE(PollUntil(consumer, [&] { return world.Scalar("SELECT count(*) FROM applied") == 20; }));

  REQUIRE(seen.size() == 20);
  for (size_t i = 0; i < seen.size(); ++i) {
    Event want = world.MakeEvent(static_cast<int>(i));
    CHECK(seen[i].event_id == ids[i]);
    CHECK(seen[i].type == want.type);
    CHECK(seen[i].aggregate_id == want.aggregate_id);
    CHECK(seen[i].tenant_id == want.tenant_id);
    CHECK(seen[i].request_id == want.request_id);
    CHECK(seen[i].payload == want.payload);
    CHECK(seen[i].delivery_count == 1);
  }
  CHECK(world.PendingInGroup("g") == 0);
  CHECK(world.Scalar("SELECT count(*) FROM inbox WHERE consumer_group = 'g'") == 20);
  CHECK(MetricValue(world.registry, "ptd_consumer_applied_total", {{"stream", world.stream}, {"group", "g"}}) == 20);
  CHECK(MetricValue(world.registry, "ptd_consumer_duplicates_total", {{"stream", world.stream}, {"group", "g"}}) == 0);
}

TEST_CASE("outbox: a failing handler's event is rolled back, retried, then parked in the dead-letter stream") {
  World world;
  std::vector<std::string> ids = world.WriteEvents(3, 3);
  Relay relay(world.pool(), world.redis());
  REQUIRE(*relay.PublishOnce() == 3);

  int attempts_on_poison = 0;
  Consumer consumer(
      world.pool(), world.redis(),
      {.stream = world.stream,
       .group = "g",
       .block = absl::Milliseconds(50),
       .claim_min_idle = absl::Milliseconds(100),
       .max_deliveries = 3},
      [&](pqxx::work& tx, const Delivery& delivery) -> absl::Status {
        absl::Status counted = CountingHandler("c")(tx, delivery);
        if (delivery.event_id != ids[1]) return counted;
        ++attempts_on_poison;
        return absl::FailedPreconditionError("thing 1 cannot be applied");
      },
      &world.registry);
  const std::string dead_letters = world.stream + ".dead.g";
  REQUIRE(PollUntil(consumer, [&] { return world.Integer({"XLEN", dead_letters}) == 1; }));

  CHECK(attempts_on_poison == 3);
  CHECK(world.Scalar("SELECT count(*) FROM applied") == 2);  // the poison's inserts were rolled back
  CHECK(world.Scalar("SELECT count(*) FROM inbox") == 2);
  CHECK(world.PendingInGroup("g") == 0);
  absl::StatusOr<redis::Value> parked = world.redis().Command({"XRANGE", dead_letters, "-", "+"});
  REQUIRE(parked.ok());
  CHECK(absl::StrContains(parked->DebugString(), ids[1]));
  CHECK(absl::StrContains(parked->DebugString(), "delivered 4 times"));
  CHECK(MetricValue(world.registry, "ptd_consumer_failures_total", {{"stream", world.stream}, {"group", "g"}}) == 3);
  CHECK(MetricValue(world.registry, "ptd_consumer_parked_total", {{"stream", world.stream}, {"group", "g"}}) == 1);
}

TEST_CASE("outbox: a consumer killed after applying but before acknowledging does not apply twice") {
  World world;
  world.WriteEvents(5, 5);
  Relay relay(world.pool(), world.redis());
  REQUIRE(*relay.PublishOnce() == 5);

  Process crashing("outbox_test_consumer_crash", world.ConsumerArgs("g", "a"), {{"PTD_FAULT_CRASH_AFTER_APPLY", "3"}});
  int status = crashing.Wait();
  INFO(crashing.ReadLog());
  REQUIRE(KilledBySigkill(status));
  CHECK(world.Scalar("SELECT count(*) FROM applied") == 3);
  CHECK(world.PendingInGroup("g") == 5);  // all delivered to the dead consumer, none acknowledged

  Consumer successor(world.pool(), world.redis(),
                     {.stream = world.stream,
                      .group = "g",
                      .consumer = "b",
                      .block = absl::Milliseconds(50),
                      .claim_min_idle = absl::Milliseconds(200)},
                     CountingHandler("b"), &world.registry);
  REQUIRE(PollUntil(successor, [&] { return world.PendingInGroup("g") == 0; }));

  CHECK(world.Scalar("SELECT count(*) FROM applied") == 5);
  CHECK(world.Scalar("SELECT max(times) FROM applied") == 1);
  CHECK(MetricValue(world.registry, "ptd_consumer_duplicates_total", {{"stream", world.stream}, {"group", "g"}}) == 3);
  CHECK(MetricValue(world.registry, "ptd_consumer_applied_total", {{"stream", world.stream}, {"group", "g"}}) == 2);
}

TEST_CASE("outbox: a relay killed between XADD and marking published leaves duplicates the inbox swallows") {
  // Killed in its first round (a batch of 100), or in its second (batches of 3: 3 rows marked, then 2 XADDs).
  auto [batch_size, marked] = GENERATE(table<int, int>({{100, 0}, {3, 3}}));
  INFO("batch size " << batch_size);
  World world;
  world.WriteEvents(20, 20);
  std::vector<std::string> args = world.RelayArgs();
  args.push_back("--batch-size=" + std::to_string(batch_size));
  Process crashing("outbox_test_relay_crash", args, {{"PTD_FAULT_RELAY_CRASH_AFTER_XADD", "5"}});
  int status = crashing.Wait();
  INFO(crashing.ReadLog());
  REQUIRE(KilledBySigkill(status));
  CHECK(world.StreamLength() == 5);
  CHECK(world.Scalar("SELECT count(*) FROM outbox WHERE published_at IS NULL") == 20 - marked);

  Relay relay(world.pool(), world.redis());
  REQUIRE(*relay.PublishOnce() == 20 - marked);
  CHECK(world.StreamLength() == 25 - marked);

  Consumer consumer(world.pool(), world.redis(),
                    {.stream = world.stream, .group = "g", .block = absl::Milliseconds(50)}, CountingHandler("c"),
                    &world.registry);
  REQUIRE(PollUntil(consumer, [&, marked = marked] {  // a copy: clang 14 cannot capture a structured binding
    return MetricValue(world.registry, "ptd_consumer_duplicates_total", {{"stream", world.stream}, {"group", "g"}}) ==
           5 - marked;
  }));
  CHECK(world.Scalar("SELECT count(*) FROM applied") == 20);
  CHECK(world.Scalar("SELECT max(times) FROM applied") == 1);
  CHECK(world.PendingInGroup("g") == 0);
}

// Sums a counter that the helper consumers log when they exit: {"msg":"consumer exiting","duplicates":N,...}.
double LoggedCount(const Process& process, const std::string& key) {
  double total = 0;
  for (absl::string_view line : absl::StrSplit(process.ReadLog(), '\n')) {
    if (!absl::StrContains(line, "consumer exiting")) continue;
    nlohmann::json fields = nlohmann::json::parse(std::string(line), nullptr, false);
    if (fields.is_object() && fields.contains(key)) total += fields[key].get<double>();
  }
  return total;
}

TEST_CASE("outbox: 10,000 events through a relay and two consumers, one killed midway, apply exactly once") {
  constexpr int kEvents = 10000;
  World world;
  Relay relay(world.pool(), world.redis(), {.batch_size = 500, .interval = absl::Milliseconds(100)});
  relay.Start();
  auto first_a = std::make_unique<Process>("outbox_test_consumer_a1", world.ConsumerArgs("g", "a"),
                                           std::map<std::string, std::string>{{"PTD_FAULT_CRASH_AFTER_APPLY", "2000"}});
  Process b("outbox_test_consumer_b", world.ConsumerArgs("g", "b"));

  world.WriteEvents(kEvents, 100);

  int status = first_a->Wait(std::chrono::seconds(300));
  INFO(first_a->ReadLog());
  REQUIRE(KilledBySigkill(status));
  Process second_a("outbox_test_consumer_a2", world.ConsumerArgs("g", "a"));

  const bool all_applied =
      WaitFor([&] { return world.Scalar("SELECT count(*) FROM applied") == kEvents && world.PendingInGroup("g") == 0; },
              std::chrono::seconds(600));
  relay.Stop();
  b.Signal(SIGTERM);
  second_a.Signal(SIGTERM);
  REQUIRE(b.Wait() == 0);
  REQUIRE(second_a.Wait() == 0);

  CHECK(all_applied);
  CHECK(world.Scalar("SELECT count(*) FROM applied") == kEvents);
  CHECK(world.Scalar("SELECT sum(times) FROM applied") == kEvents);
  CHECK(world.Scalar("SELECT max(times) FROM applied") == 1);
  CHECK(world.Scalar("SELECT count(*) FROM inbox WHERE consumer_group = 'g'") == kEvents);
  CHECK(world.Scalar("SELECT count(*) FROM outbox WHERE published_at IS NULL") == 0);
  CHECK(world.StreamLength() == kEvents);
  CHECK(world.Scalar("SELECT count(DISTINCT consumer) FROM applied") == 2);
  // The dead consumer's applied-but-unacknowledged entries came back and were recognised.
  CHECK(LoggedCount(b, "duplicates") + LoggedCount(second_a, "duplicates") >= 1);
}

}  // namespace
}  // namespace ptd::outbox
