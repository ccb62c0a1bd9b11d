#ifndef PTD_LIBS_REDIS_CLIENT_H_
#define PTD_LIBS_REDIS_CLIENT_H_

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

// A small, thread-safe Redis client over hiredis: a bounded pool of connections, binary-safe arguments
// and replies, timeouts, and reconnection.
//
//   absl::StatusOr<std::unique_ptr<Client>> redis = Client::Create({.url = "redis://127.0.0.1:6379/0"});
//   absl::StatusOr<Value> id = (*redis)->Command({"XADD", stream, "*", "type", type});
namespace ptd::redis {

struct Options {
  std::string url{};  // redis://[[user]:password@]host[:port][/db]; port 6379 and db 0 by default
  int pool_size = 4;  // at most this many connections, opened on demand
  // Connecting, waiting for a free connection, and waiting for a reply each give up after this long.
  absl::Duration timeout = absl::Seconds(2);
};

// One reply, deep-copied out of hiredis.
struct Value {
  enum class Type { kNil, kString, kInteger, kArray, kStatus, kError };

  Type type = Type::kNil;
  std::string str{};              // kString (binary-safe), kStatus ("OK"), kError (the message)
  int64_t integer = 0;            // kInteger
  std::vector<Value> elements{};  // kArray

  bool is_nil() const { return type == Type::kNil; }
  // "nil", "42", "\"text\"", "[1, \"a\"]", for logs and test failures.
  std::string DebugString() const;
};

struct CallOptions {
  // For a command that waits on the server (XREADGROUP ... BLOCK, BLPOP): the reply wait is this plus
  // Options::timeout.
  absl::Duration server_wait = absl::ZeroDuration();
  // Send the command again, once, on a new connection when the first connection broke before a reply came.
  // The first send may have been executed, so only for commands that are safe to repeat (GET, SET, XACK,
  // XADD with an explicit id ...). Either way an idle connection the server closed is noticed and replaced
  // before a command is sent on it.
  bool retry_if_broken = false;
};

// The status Command would have returned for `reply` to `command` (its name, e.g. "XADD"): OK unless the
// reply is an error, else the error's message with the code from its prefix. For Pipeline's replies.
absl::Status StatusOf(const Value& reply, absl::string_view command);

class Client {
 public:
  // Checks the URL; connections are opened on first use. INVALID_ARGUMENT for a bad URL or pool size.
  // Writing to a connection the server closed raises SIGPIPE, so Create ignores SIGPIPE for the process
  // unless a handler is already installed.
  static absl::StatusOr<std::unique_ptr<Client>> Create(Options options);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Runs one command, e.g. {"SET", key, value}; arguments may hold any bytes. The reply's error becomes the
  // status: a Redis error reply keeps its message, with the code from its prefix (BUSYGROUP →
  // ALREADY_EXISTS, NOGROUP/NOSCRIPT → NOT_FOUND, WRONGTYPE → FAILED_PRECONDITION, LOADING/BUSY/
  // MASTERDOWN/TRYAGAIN → UNAVAILABLE, OOM → RESOURCE_EXHAUSTED, NOAUTH/NOPERM/WRONGPASS →
  // PERMISSION_DENIED, others → INTERNAL). No reply in time: DEADLINE_EXCEEDED; server unreachable or
  // connection lost: UNAVAILABLE; no free connection in time: RESOURCE_EXHAUSTED. Nested error replies
  // (inside EXEC's array) stay in the Value as kError.
  absl::StatusOr<Value> Command(const std::vector<std::string>& args, const CallOptions& call = {});

  // Runs `commands` on one connection in one round trip: sends them all, then reads their replies, returned
  // in the same order. A Redis error reply does not fail the call: it stays in its place as a kError Value
  // (StatusOf turns it into Command's status), and the commands after it still run. A pipeline is not a
  // transaction: other clients' commands may run in between; MULTI ... EXEC around the commands makes
  // them run as one. The call fails as a whole as Command does (DEADLINE_EXCEEDED, UNAVAILABLE,
  // RESOURCE_EXHAUSTED, the connection discarded), and then any prefix of the commands may have run;
  // `call.retry_if_broken` sends them all again. No commands: an empty vector, no connection used. An empty
  // command is INVALID_ARGUMENT.
  //
  //   absl::StatusOr<std::vector<Value>> replies = redis->Pipeline({{"INCR", a}, {"INCR", b}});
  absl::StatusOr<std::vector<Value>> Pipeline(const std::vector<std::vector<std::string>>& commands,
                                              const CallOptions& call = {});

  const Options& options() const { return options_; }

 private:
  struct Address {
    std::string host;
    int port = 6379;
    int db = 0;
    std::string user;
    std::string password;
  };
  class Connection;

  Client(Options options, Address address);
  absl::StatusOr<std::unique_ptr<Connection>> Acquire();
  void Release(std::unique_ptr<Connection> connection);
  absl::StatusOr<std::unique_ptr<Connection>> Connect();
  // Runs `run` on a pooled connection, once more on a new one when it broke and `call.retry_if_broken`.
  template <typename T>
  absl::StatusOr<T> WithConnection(const CallOptions& call, const std::function<absl::StatusOr<T>(Connection&)>& run);

  Options options_;
  Address address_;

  std::mutex mu_;
  std::condition_variable freed_;
  std::vector<std::unique_ptr<Connection>> idle_;
  int open_ = 0;  // idle + in use + being opened
};

}  // namespace ptd::redis

#endif  // PTD_LIBS_REDIS_CLIENT_H_
