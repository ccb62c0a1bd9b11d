// The relay against a Redis that comes back with less than it acknowledged (relay.h, "Redis losing data"): a
// private redis-server of the test's own, restarted from an older copy of its data.
#include <prometheus/registry.h>
#include <signal.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "libs/core/ids.h"
#include "libs/outbox/outbox.h"
#include "libs/outbox/relay.h"
#include "libs/redis/client.h"
#include "tests/testing/testing.h"

namespace ptd::outbox {
namespace {

namespace fs = std::filesystem;
using ptd::testing::Process;
using ptd::testing::WaitFor;

// A redis-server on a free port keeping its data in `dir` as an RDB file written by SAVE (no AOF, no automatic
// snapshots), so that the test decides which copy of the data a restart comes back with.
class PrivateRedis {
 public:
  PrivateRedis() : port_(ptd::testing::FreePort()) {
    fs::create_directories(dir_);
    Start();
  }

  std::string url() const { return "redis://127.0.0.1:" + std::to_string(port_); }

  void Start() {
    process_ = std::make_unique<Process>(
        "redis", std::vector<std::string>{"/usr/bin/redis-server", "--bind", "127.0.0.1", "--port",
                                          std::to_string(port_), "--dir", dir_.string(), "--dbfilename",
                                          "dump.rdb", "--save", "", "--appendonly", "no"});
    REQUIRE(ptd::testing::WaitForPort(port_));
  }

  // SAVE, and a copy of the snapshot beside it.
  void Snapshot(redis::Client& client) {
    REQUIRE(client.Command({"SAVE"}).ok());
    fs::copy_file(dir_ / "dump.rdb", dir_ / "older.rdb", fs::copy_options::overwrite_existing);
  }

  // SIGKILL, then a start from the copy Snapshot made: what came after it is gone.
  void KillAndRestartFromSnapshot() {
    process_->Signal(SIGKILL);
    process_->Wait();
    fs::copy_file(dir_ / "older.rdb", dir_ / "dump.rdb", fs::copy_options::overwrite_existing);
    Start();
  }

 private:
  int port_;
  fs::path dir_ = ptd::testing::BuildPath("test-logs/" + ptd::testing::UniqueName("redis-loss"));
  std::unique_ptr<Process> process_;
};

class World {
 public:
  World() {
    auto pool = pg::Pool::Create({.url = url, .schema = "svc", .size = 2, .name = "relay_loss_test"}, nullptr);
    REQUIRE(pool.ok());
    pool_ = *std::move(pool);
    auto client = redis::Client::Create({.url = redis.url()});
    REQUIRE(client.ok());
    client_ = *std::move(client);
    REQUIRE(pool_->InTransaction([](pqxx::work& tx) {
                   tx.exec("CREATE SCHEMA svc");
                   return EnsureTables(tx);
                 })
                .ok());
  }

  std::vector<std::string> WriteEvents(int count) {
    std::vector<std::string> ids;
    REQUIRE(pool_->InTransaction([&](pqxx::work& tx) -> absl::Status {
                   for (int n = 0; n < count; ++n) {
                     Event event{.id = NewId(), .stream = stream, .type = "ptd.test.v1.Thing", .payload = "p"};
                     if (absl::Status s = Write(tx, event); !s.ok()) return s;
                     ids.push_back(event.id);
                   }
                   return absl::OkStatus();
                 })
                .ok());
    return ids;
  }

  // PublishOnce until a round publishes nothing; Redis errors (it is coming back) are retried.
  void Drain(Relay& relay) {
    bool drained = WaitFor([&] {
      absl::StatusOr<int> n = relay.PublishOnce();
      return n.ok() && *n == 0;
    });
    REQUIRE(drained);
  }

  // The event ids on the stream, with how often each is there.
  std::multiset<std::string> OnStream() {
    absl::StatusOr<redis::Value> entries = client_->Command({"XRANGE", stream, "-", "+"});
    REQUIRE(entries.ok());
    std::multiset<std::string> ids;
    for (const redis::Value& entry : entries->elements) {
      const auto& fields = entry.elements[1].elements;
      for (size_t i = 0; i + 1 < fields.size(); i += 2) {
        if (fields[i].str == "id") ids.insert(fields[i + 1].str);
      }
    }
    return ids;
  }

  double Counter(const std::string& name) {
    for (const auto& family : registry.Collect()) {
      if (family.name == name && !family.metric.empty()) return family.metric[0].counter.value;
    }
    return 0;
  }

  PrivateRedis redis;
  const std::string url = ptd::testing::FreshDatabase("relayloss");
  const std::string stream = ptd::testing::UniqueName("ptd.test.events");
  prometheus::Registry registry;
  std::unique_ptr<pg::Pool> pool_;
  std::unique_ptr<redis::Client> client_;
};

void RequireAllThere(const std::multiset<std::string>& on_stream, const std::vector<std::vector<std::string>>& sets) {
  for (const auto& ids : sets) {
    for (const std::string& id : ids) {
      INFO(id);
      CHECK(on_stream.count(id) >= 1);
    }
  }
}

TEST_CASE("relay: events Redis lost in a restart from older data are published again with the next round's") {
  World w;
  Relay relay(*w.pool_, *w.client_, {.listen = false}, &w.registry);
  const std::vector<std::string> before = w.WriteEvents(30);
  w.Drain(relay);
  w.redis.Snapshot(*w.client_);
  const std::vector<std::string> lost = w.WriteEvents(25);  // acknowledged by Redis, then lost with it
  w.Drain(relay);
  REQUIRE(w.OnStream().size() == 55);

  w.redis.KillAndRestartFromSnapshot();
  REQUIRE(w.OnStream().size() == 30);
  const std::vector<std::string> after = w.WriteEvents(5);
  w.Drain(relay);

  const std::multiset<std::string> on_stream = w.OnStream();
  RequireAllThere(on_stream, {before, lost, after});
  CHECK(on_stream.size() == 60);  // the 5 new ones and the 25 lost ones, each once
  CHECK(w.Counter("ptd_outbox_redis_losses_total") == 1);
  CHECK(w.Counter("ptd_outbox_requeued_total") == 25);

  // Nothing more happens once Redis has it all again.
  w.Drain(relay);
  CHECK(w.OnStream().size() == 60);
  CHECK(w.Counter("ptd_outbox_redis_losses_total") == 1);
}

TEST_CASE("relay: while idle, the relay notices that Redis lost events and publishes them again") {
  World w;
  Relay relay(*w.pool_, *w.client_, {.listen = false, .loss_check_interval = absl::ZeroDuration()}, &w.registry);
  const std::vector<std::string> before = w.WriteEvents(10);
  w.Drain(relay);
  w.redis.Snapshot(*w.client_);
  const std::vector<std::string> lost = w.WriteEvents(7);
  w.Drain(relay);

  w.redis.KillAndRestartFromSnapshot();
  w.Drain(relay);  // no new event: the idle check finds the loss, the next round sends them again

  const std::multiset<std::string> on_stream = w.OnStream();
  RequireAllThere(on_stream, {before, lost});
  CHECK(on_stream.size() == 17);
  CHECK(w.Counter("ptd_outbox_requeued_total") == 7);
}

TEST_CASE("relay: a relay whose rounds committed nothing after Redis took them does not count that as a loss") {
  // Rounds whose EXEC ran but whose commit did not leave Redis's counter ahead of the count: at least once,
  // no requeue. Simulated by a counter pushed ahead by hand.
  World w;
  Relay relay(*w.pool_, *w.client_, {.listen = false, .loss_check_interval = absl::ZeroDuration()}, &w.registry);
  w.WriteEvents(4);
  w.Drain(relay);
  absl::StatusOr<redis::Value> key = w.client_->Command({"KEYS", "ptd.outbox.sent:*"});
  REQUIRE(key.ok());
  REQUIRE(key->elements.size() == 1);
  REQUIRE(w.client_->Command({"INCRBY", key->elements[0].str, "3"}).ok());
  w.WriteEvents(2);
  w.Drain(relay);
  CHECK(w.OnStream().size() == 6);
  CHECK(w.Counter("ptd_outbox_redis_losses_total") == 0);
}

}  // namespace
}  // namespace ptd::outbox
