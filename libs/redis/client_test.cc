#include "libs/redis/client.h"

#include <signal.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "tests/testing/testing.h"

namespace ptd::redis {
namespace {

using ptd::testing::UniqueName;

std::unique_ptr<Client> MakeClient(Options options = {}) {
  if (options.url.empty()) options.url = ptd::testing::GetInfra().redis_url;
  auto client = Client::Create(std::move(options));
  REQUIRE(client.ok());
  return *std::move(client);
}

Value Must(absl::StatusOr<Value> value) {
  INFO(value.status());
  REQUIRE(value.ok());
  return *std::move(value);
}

// A Redis server of the test's own, so that the test may stop and restart it.
class OwnRedis {
 public:
  OwnRedis() : port_(ptd::testing::FreePort()) { Start(); }

  void Start() {
    server_ = std::make_unique<ptd::testing::Process>(
        "redis_client_test_server",
        std::vector<std::string>{"/usr/bin/redis-server", "--port", std::to_string(port_), "--bind", "127.0.0.1",
                                 "--save", "", "--appendonly", "no"});
    REQUIRE(ptd::testing::WaitForPort(port_));
  }
  void Stop() {
    server_->Signal(SIGTERM);
    server_->Wait();
  }
  std::string url() const { return "redis://127.0.0.1:" + std::to_string(port_); }

 private:
  int port_;
  std::unique_ptr<ptd::testing::Process> server_;
};

TEST_CASE("redis: commands return strings, integers, statuses, arrays and nil") {
  auto redis = MakeClient();
  std::string key = UniqueName("redis-test");

  CHECK(Must(redis->Command({"SET", key, "hello"})).type == Value::Type::kStatus);
  Value got = Must(redis->Command({"GET", key}));
  CHECK(got.type == Value::Type::kString);
  CHECK(got.str == "hello");
  CHECK(Must(redis->Command({"GET", key + "-missing"})).is_nil());
  CHECK(Must(redis->Command({"INCRBY", key + "-n", "41"})).integer == 41);
  CHECK(Must(redis->Command({"INCR", key + "-n"})).integer == 42);

  REQUIRE(Must(redis->Command({"RPUSH", key + "-list", "a", "b", "c"})).integer == 3);
  Value list = Must(redis->Command({"LRANGE", key + "-list", "0", "-1"}));
  CHECK(list.DebugString() == "[\"a\", \"b\", \"c\"]");
}

TEST_CASE("redis: keys and values are binary-safe") {
  auto redis = MakeClient();
  std::string key = UniqueName("redis-test") + std::string("\0\r\n key", 8);
  std::string value;
  for (int i = 0; i < 256; ++i) value.push_back(static_cast<char>(i));
  value += std::string("\r\n$3\r\n\0end", 11);

  REQUIRE(Must(redis->Command({"SET", key, value})).str == "OK");
  Value got = Must(redis->Command({"GET", key}));
  CHECK(got.str.size() == value.size());
  CHECK(got.str == value);
}

TEST_CASE("redis: an error reply becomes a status carrying the server's message") {
  auto redis = MakeClient();
  std::string key = UniqueName("redis-test");
  REQUIRE(Must(redis->Command({"SET", key, "not a list"})).str == "OK");

  absl::StatusOr<Value> wrong_type = redis->Command({"LPUSH", key, "x"});
  CHECK(wrong_type.status().code() == absl::StatusCode::kFailedPrecondition);
  CHECK(absl::StrContains(wrong_type.status().message(), "WRONGTYPE"));

  absl::StatusOr<Value> unknown = redis->Command({"NOSUCHCOMMAND"});
  CHECK(unknown.status().code() == absl::StatusCode::kInternal);
  CHECK(absl::StrContains(unknown.status().message(), "unknown command"));

  std::string stream = UniqueName("redis-test-stream");
  REQUIRE(Must(redis->Command({"XGROUP", "CREATE", stream, "g", "$", "MKSTREAM"})).str == "OK");
  CHECK(redis->Command({"XGROUP", "CREATE", stream, "g", "$"}).status().code() == absl::StatusCode::kAlreadyExists);
  CHECK(redis->Command({"XREADGROUP", "GROUP", "nogroup", "c", "STREAMS", stream, ">"}).status().code() ==
        absl::StatusCode::kNotFound);

  // The connection is still good after error replies.
  CHECK(Must(redis->Command({"PING"})).str == "PONG");
}

TEST_CASE("redis: a reply that does not come in time is DEADLINE_EXCEEDED, and the client recovers") {
  auto redis = MakeClient({.pool_size = 1, .timeout = absl::Milliseconds(300)});
  std::string key = UniqueName("redis-test-empty-list");

  auto start = std::chrono::steady_clock::now();
  absl::StatusOr<Value> blocked = redis->Command({"BLPOP", key, "5"});
  auto waited = std::chrono::steady_clock::now() - start;
  INFO(blocked.status());
  CHECK(blocked.status().code() == absl::StatusCode::kDeadlineExceeded);
  CHECK(waited < std::chrono::seconds(2));

  // A command that is meant to wait says so.
  Value nothing = Must(redis->Command({"BLPOP", key, "0.5"}, {.server_wait = absl::Seconds(1)}));
  CHECK(nothing.is_nil());
  CHECK(Must(redis->Command({"PING"})).str == "PONG");
}

TEST_CASE("redis: a connection killed by the server is replaced before the next command") {
  auto redis = MakeClient({.pool_size = 1});
  auto admin = MakeClient();
  int64_t id = Must(redis->Command({"CLIENT", "ID"})).integer;

  REQUIRE(Must(admin->Command({"CLIENT", "KILL", "ID", std::to_string(id)})).integer == 1);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));

  Value again = Must(redis->Command({"CLIENT", "ID"}));
  CHECK(again.integer != id);
}

// The id of the connection currently running `command` ("blpop"), from CLIENT LIST; -1 when none.
int64_t ClientRunning(Client& admin, const std::string& command) {
  std::string list = Must(admin.Command({"CLIENT", "LIST"})).str;
  for (absl::string_view line : absl::StrSplit(list, '\n')) {
    if (!absl::StrContains(line, " cmd=" + command + " ")) continue;
    int64_t id = -1;
    absl::string_view first = line.substr(0, line.find(' '));
    if (absl::ConsumePrefix(&first, "id=") && absl::SimpleAtoi(first, &id)) return id;
  }
  return -1;
}

TEST_CASE("redis: a command whose connection breaks is sent again only when the caller allows it") {
  bool retry = GENERATE(false, true);
  OwnRedis server;  // alone on it, so that the one blocked client is ours
  auto admin = MakeClient({.url = server.url()});
  auto redis = MakeClient({.url = server.url(), .pool_size = 1});
  std::string key = UniqueName("redis-test-empty-list");
  absl::StatusOr<Value> result;
  std::thread waiter([&] {
    result = redis->Command({"BLPOP", key, "1"}, {.server_wait = absl::Seconds(2), .retry_if_broken = retry});
  });
  int64_t id = -1;
  REQUIRE(ptd::testing::WaitFor([&] { return (id = ClientRunning(*admin, "blpop")) >= 0; }));
  REQUIRE(Must(admin->Command({"CLIENT", "KILL", "ID", std::to_string(id)})).integer == 1);
  waiter.join();

  if (retry) {
    INFO(result.status());
    REQUIRE(result.ok());
    CHECK(result->is_nil());  // the second BLPOP waited its second and found nothing
  } else {
    CHECK(result.status().code() == absl::StatusCode::kUnavailable);
  }
}

TEST_CASE("redis: the client reconnects after the server restarts") {
  OwnRedis server;
  auto redis = MakeClient({.url = server.url(), .pool_size = 2, .timeout = absl::Milliseconds(500)});
  REQUIRE(Must(redis->Command({"SET", "k", "before"})).str == "OK");

  server.Stop();
  absl::StatusOr<Value> down = redis->Command({"GET", "k"});
  CHECK(down.status().code() == absl::StatusCode::kUnavailable);

  server.Start();
  CHECK(Must(redis->Command({"SET", "k", "after"})).str == "OK");
  CHECK(Must(redis->Command({"GET", "k"})).str == "after");
}

TEST_CASE("redis: callers wait for a free connection up to the timeout") {
  auto redis = MakeClient({.pool_size = 1, .timeout = absl::Milliseconds(300)});
  std::string key = UniqueName("redis-test-empty-list");
  std::thread holder([&] { (void)redis->Command({"BLPOP", key, "1"}, {.server_wait = absl::Seconds(2)}); });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));

  absl::StatusOr<Value> starved = redis->Command({"PING"});
  INFO(starved.status());
  CHECK(starved.status().code() == absl::StatusCode::kResourceExhausted);
  holder.join();
  CHECK(Must(redis->Command({"PING"})).str == "PONG");
}

std::vector<Value> MustAll(absl::StatusOr<std::vector<Value>> values) {
  INFO(values.status());
  REQUIRE(values.ok());
  return *std::move(values);
}

TEST_CASE("redis: a pipeline returns each command's reply, in order") {
  auto redis = MakeClient({.pool_size = 1});
  std::string key = UniqueName("redis-test");

  std::vector<Value> replies = MustAll(redis->Pipeline({{"SET", key, "hello"},
                                                        {"GET", key},
                                                        {"GET", key + "-missing"},
                                                        {"INCRBY", key + "-n", "41"},
                                                        {"RPUSH", key + "-list", "a", "b"},
                                                        {"LRANGE", key + "-list", "0", "-1"}}));
  REQUIRE(replies.size() == 6);
  CHECK(replies[0].DebugString() == "OK");
  CHECK(replies[1].DebugString() == "\"hello\"");
  CHECK(replies[2].is_nil());
  CHECK(replies[3].integer == 41);
  CHECK(replies[4].integer == 2);
  CHECK(replies[5].DebugString() == "[\"a\", \"b\"]");

  // More than fits in one socket buffer either way.
  std::vector<std::vector<std::string>> increments(20000, {"INCR", key + "-many"});
  replies = MustAll(redis->Pipeline(increments));
  REQUIRE(replies.size() == 20000);
  bool counted = true;
  for (size_t i = 0; i < replies.size(); ++i) counted = counted && replies[i].integer == static_cast<int64_t>(i) + 1;
  CHECK(counted);
}

TEST_CASE("redis: an error reply in a pipeline stays in its place and the commands after it run") {
  auto redis = MakeClient({.pool_size = 1});
  std::string key = UniqueName("redis-test");
  REQUIRE(Must(redis->Command({"SET", key, "not a list"})).str == "OK");

  std::vector<Value> replies =
      MustAll(redis->Pipeline({{"INCR", key + "-n"}, {"LPUSH", key, "x"}, {"NOSUCHCOMMAND"}, {"INCR", key + "-n"}}));
  REQUIRE(replies.size() == 4);
  CHECK(replies[0].integer == 1);
  CHECK(replies[1].type == Value::Type::kError);
  CHECK(absl::StrContains(replies[1].str, "WRONGTYPE"));
  CHECK(StatusOf(replies[1], "LPUSH").code() == absl::StatusCode::kFailedPrecondition);
  CHECK(replies[2].type == Value::Type::kError);
  CHECK(StatusOf(replies[2], "NOSUCHCOMMAND").code() == absl::StatusCode::kInternal);
  CHECK(replies[3].integer == 2);
  CHECK(StatusOf(replies[3], "INCR").ok());

  // MULTI ... EXEC in a pipeline: the replies of the queued commands come in EXEC's array.
  replies = MustAll(redis->Pipeline({{"MULTI"}, {"INCR", key + "-n"}, {"LPUSH", key, "x"}, {"EXEC"}}));
  REQUIRE(replies.size() == 4);
  CHECK(replies[1].str == "QUEUED");
  CHECK(replies[3].elements.size() == 2);
  CHECK(replies[3].elements[0].integer == 3);
  CHECK(replies[3].elements[1].type == Value::Type::kError);

  CHECK(Must(redis->Command({"PING"})).str == "PONG");
}

TEST_CASE("redis: pipelined arguments and replies are binary-safe") {
  auto redis = MakeClient();
  std::string key = UniqueName("redis-test") + std::string("\0\r\n key", 8);
  std::string value;
  for (int i = 0; i < 256; ++i) value.push_back(static_cast<char>(i));
  value += std::string("\r\n*2\r\n$3\r\n\0end", 14);

  std::vector<Value> replies = MustAll(redis->Pipeline({{"SET", key, value}, {"GET", key}, {"STRLEN", key}}));
  REQUIRE(replies.size() == 3);
  CHECK(replies[0].str == "OK");
  CHECK(replies[1].str == value);
  CHECK(replies[2].integer == static_cast<int64_t>(value.size()));
}

TEST_CASE("redis: an empty pipeline returns no replies, and an empty command in one is refused") {
  auto redis = MakeClient();
  CHECK(MustAll(redis->Pipeline({})).empty());
  CHECK(redis->Pipeline({{"PING"}, {}}).status().code() == absl::StatusCode::kInvalidArgument);
}

TEST_CASE("redis: a pipeline whose replies do not all come in time fails whole, and the client recovers") {
  auto redis = MakeClient({.pool_size = 1, .timeout = absl::Milliseconds(300)});
  std::string key = UniqueName("redis-test-empty-list");
  int64_t id = Must(redis->Command({"CLIENT", "ID"})).integer;

  absl::StatusOr<std::vector<Value>> blocked = redis->Pipeline({{"PING"}, {"BLPOP", key, "5"}, {"PING"}});
  INFO(blocked.status());
  CHECK(blocked.status().code() == absl::StatusCode::kDeadlineExceeded);
  CHECK(absl::StrContains(blocked.status().message(), "PING and 2 more"));

  // The connection, with replies still to come on it, was dropped.
  CHECK(Must(redis->Command({"CLIENT", "ID"})).integer != id);
  std::vector<Value> waited =
      MustAll(redis->Pipeline({{"BLPOP", key, "0.5"}, {"PING"}}, {.server_wait = absl::Seconds(1)}));
  REQUIRE(waited.size() == 2);
  CHECK(waited[0].is_nil());
  CHECK(waited[1].str == "PONG");
}

TEST_CASE("redis: a pipeline whose connection breaks is sent again only when the caller allows it") {
  bool retry = GENERATE(false, true);
  OwnRedis server;
  auto admin = MakeClient({.url = server.url()});
  auto redis = MakeClient({.url = server.url(), .pool_size = 1});
  std::string key = UniqueName("redis-test-empty-list");
  absl::StatusOr<std::vector<Value>> result;
  std::thread waiter([&] {
    result = redis->Pipeline({{"INCR", key + "-n"}, {"BLPOP", key, "1"}},
                             {.server_wait = absl::Seconds(2), .retry_if_broken = retry});
  });
  int64_t id = -1;
  REQUIRE(ptd::testing::WaitFor([&] { return (id = ClientRunning(*admin, "blpop")) >= 0; }));
  REQUIRE(Must(admin->Command({"CLIENT", "KILL", "ID", std::to_string(id)})).integer == 1);
  waiter.join();

  if (retry) {
    INFO(result.status());
    REQUIRE(result.ok());
    CHECK((*result)[0].integer == 2);  // the first INCR ran before the connection broke
    CHECK((*result)[1].is_nil());
  } else {
    CHECK(result.status().code() == absl::StatusCode::kUnavailable);
    CHECK(Must(admin->Command({"GET", key + "-n"})).str == "1");
  }
}

TEST_CASE("redis: urls are checked") {
  struct Case {
    std::string url;
    bool ok;
  };
  auto [url, ok] = GENERATE(values<Case>({
      {"redis://127.0.0.1:6379", true},
      {"redis://localhost", true},
      {"redis://:secret@127.0.0.1:6379/2", true},
      {"redis://user:secret@[::1]:6379/0", true},
      {"http://127.0.0.1:6379", false},
      {"redis://", false},
      {"redis://127.0.0.1:notaport", false},
      {"redis://127.0.0.1:6379/x", false},
  }));
  INFO(url);
  CHECK(Client::Create({.url = url}).ok() == ok);
}

TEST_CASE("redis: the url's database is selected") {
  auto db0 = MakeClient();
  auto db3 = MakeClient({.url = ptd::testing::GetInfra().redis_url + "/3"});
  std::string key = UniqueName("redis-test");
  REQUIRE(Must(db3->Command({"SET", key, "in 3"})).str == "OK");
  CHECK(Must(db0->Command({"EXISTS", key})).integer == 0);
  CHECK(Must(db3->Command({"EXISTS", key})).integer == 1);
}

}  // namespace
}  // namespace ptd::redis
