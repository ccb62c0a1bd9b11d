#include "libs/redis/client.h"

#include <hiredis/hiredis.h>
#include <poll.h>
#include <signal.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <functional>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"

namespace ptd::redis {
namespace {

timeval TimevalOf(absl::Duration d) { return absl::ToTimeval(std::max(d, absl::Milliseconds(1))); }

Value CopyReply(const redisReply& reply) {
  Value value;
  switch (reply.type) {
    case REDIS_REPLY_STRING:
      value.type = Value::Type::kString;
      value.str.assign(reply.str, reply.len);
      break;
    case REDIS_REPLY_STATUS:
      value.type = Value::Type::kStatus;
      value.str.assign(reply.str, reply.len);
      break;
    case REDIS_REPLY_ERROR:
      value.type = Value::Type::kError;
      value.str.assign(reply.str, reply.len);
      break;
    case REDIS_REPLY_INTEGER:
      value.type = Value::Type::kInteger;
      value.integer = reply.integer;
      break;
    case REDIS_REPLY_ARRAY:
      value.type = Value::Type::kArray;
      value.elements.reserve(reply.elements);
      for (size_t i = 0; i < reply.elements; ++i) value.elements.push_back(CopyReply(*reply.element[i]));
      break;
    default:
      value.type = Value::Type::kNil;
  }
  return value;
}

absl::StatusCode CodeOfRedisError(absl::string_view message) {
  absl::string_view prefix = message.substr(0, message.find(' '));
  if (prefix == "BUSYGROUP") return absl::StatusCode::kAlreadyExists;
  if (prefix == "NOGROUP" || prefix == "NOSCRIPT") return absl::StatusCode::kNotFound;
  if (prefix == "WRONGTYPE") return absl::StatusCode::kFailedPrecondition;
  if (prefix == "LOADING" || prefix == "BUSY" || prefix == "MASTERDOWN" || prefix == "TRYAGAIN") {
    return absl::StatusCode::kUnavailable;
  }
  if (prefix == "OOM") return absl::StatusCode::kResourceExhausted;
  if (prefix == "NOAUTH" || prefix == "NOPERM" || prefix == "WRONGPASS") return absl::StatusCode::kPermissionDenied;
  return absl::StatusCode::kInternal;
}

// An idle connection should have nothing to read. Input (EOF, or an error the server sent before closing,
// as after CLIENT KILL or a restart) means it is dead. Checked without blocking.
bool LooksDead(const redisContext& context) {
  if (context.err != 0 || context.fd < 0) return true;
  pollfd fd{.fd = context.fd, .events = POLLIN, .revents = 0};
  return ::poll(&fd, 1, 0) != 0;
}

}  // namespace

absl::Status StatusOf(const Value& reply, absl::string_view command) {
  if (reply.type != Value::Type::kError) return absl::OkStatus();
  return absl::Status(CodeOfRedisError(reply.str), absl::StrCat("redis ", command, ": ", reply.str));
}

std::string Value::DebugString() const {
  switch (type) {
    case Type::kNil:
      return "nil";
    case Type::kString:
      return absl::StrCat("\"", str, "\"");
    case Type::kStatus:
      return str;
    case Type::kError:
      return absl::StrCat("(error) ", str);
    case Type::kInteger:
      return absl::StrCat(integer);
    case Type::kArray:
      return absl::StrCat(
          "[", absl::StrJoin(elements, ", ", [](std::string* out, const Value& v) { out->append(v.DebugString()); }),
          "]");
  }
  return "?";
}

// One hiredis connection. Not thread-safe: the pool lends it to one caller at a time.
class Client::Connection {
 public:
  explicit Connection(redisContext* context) : context_(context) {}
  ~Connection() { redisFree(context_); }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // A broken connection (I/O error, timeout, protocol error) cannot be used again.
  bool broken() const { return context_->err != 0; }
  bool LooksDead() const { return redis::LooksDead(*context_); }

  absl::StatusOr<Value> Run(const std::vector<std::string>& args, absl::Duration reply_timeout) {
    if (!SetReplyTimeout(reply_timeout) || !Append(args)) return IoError(args.front());
    absl::StatusOr<Value> value = ReadReply(args.front());
    if (!value.ok()) return value.status();
    if (absl::Status status = StatusOf(*value, args.front()); !status.ok()) return status;
    return value;
  }

  // Appends every command to the output buffer, then reads one reply each (the first read sends them all).
  // `what` names the call in errors.
  absl::StatusOr<std::vector<Value>> RunAll(const std::vector<std::vector<std::string>>& commands,
                                            absl::string_view what, absl::Duration reply_timeout) {
    if (!SetReplyTimeout(reply_timeout)) return IoError(what);
    for (const std::vector<std::string>& args : commands) {
      if (!Append(args)) return IoError(what);
    }
    std::vector<Value> replies;
    replies.reserve(commands.size());
    for (size_t i = 0; i < commands.size(); ++i) {
      absl::StatusOr<Value> reply = ReadReply(what);
      if (!reply.ok()) return reply.status();
      replies.push_back(*std::move(reply));
    }
    return replies;
  }

 private:
  bool SetReplyTimeout(absl::Duration reply_timeout) {
    if (reply_timeout == timeout_) return true;
    if (redisSetTimeout(context_, TimevalOf(reply_timeout)) != REDIS_OK) return false;
    timeout_ = reply_timeout;
    return true;
  }

  // Formats the command into hiredis' output buffer; nothing is sent yet.
  bool Append(const std::vector<std::string>& args) {
    argv_.clear();
    lengths_.clear();
    for (const std::string& arg : args) {
      argv_.push_back(arg.data());
      lengths_.push_back(arg.size());
    }
    return redisAppendCommandArgv(context_, static_cast<int>(args.size()), argv_.data(), lengths_.data()) == REDIS_OK;
  }

  // The next reply, after writing whatever is still buffered.
  absl::StatusOr<Value> ReadReply(absl::string_view what) {
    void* reply = nullptr;
    errno = 0;
    if (redisGetReply(context_, &reply) != REDIS_OK || reply == nullptr) return IoError(what);
    Value value = CopyReply(*static_cast<redisReply*>(reply));
    freeReplyObject(reply);
    return value;
  }

  absl::Status IoError(absl::string_view what) {
    const bool timed_out = context_->err == REDIS_ERR_IO && (errno == EAGAIN || errno == EWOULDBLOCK);
    if (context_->err == 0) context_->err = REDIS_ERR_OTHER;  // never reuse after a failure
    if (timed_out) {
      return absl::DeadlineExceededError(
          absl::StrCat("redis ", what, ": no reply within ", absl::FormatDuration(timeout_)));
    }
    return absl::UnavailableError(absl::StrCat("redis ", what, ": connection lost: ", context_->errstr));
  }

  redisContext* context_;
  absl::Duration timeout_ = absl::InfiniteDuration();  // what the socket is set to now
  std::vector<const char*> argv_;                      // Append's, kept for their capacity
  std::vector<size_t> lengths_;
};

absl::StatusOr<std::unique_ptr<Client>> Client::Create(Options options) {
  absl::string_view rest = options.url;
  if (!absl::ConsumePrefix(&rest, "redis://")) {
    return absl::InvalidArgumentError(absl::StrCat("redis url must start with redis://, got \"", options.url, "\""));
  }
  if (options.pool_size < 1) {
    return absl::InvalidArgumentError(absl::StrCat("redis pool_size must be positive, got ", options.pool_size));
  }
  Address address;
  if (size_t at = rest.rfind('@'); at != absl::string_view::npos) {
    absl::string_view credentials = rest.substr(0, at);
    rest.remove_prefix(at + 1);
    if (size_t colon = credentials.find(':'); colon != absl::string_view::npos) {
      address.user = std::string(credentials.substr(0, colon));
      address.password = std::string(credentials.substr(colon + 1));
    } else {
      address.password = std::string(credentials);
    }
  }
  absl::string_view host_port = rest.substr(0, rest.find('/'));
  absl::string_view db = rest.size() > host_port.size() ? rest.substr(host_port.size() + 1) : "";
  absl::string_view port;
  if (absl::ConsumePrefix(&host_port, "[")) {  // [::1]:6379
    size_t close = host_port.find(']');
    if (close == absl::string_view::npos) return absl::InvalidArgumentError("redis url: unclosed [ in host");
    address.host = std::string(host_port.substr(0, close));
    port = host_port.substr(close + 1);
    if (!port.empty() && !absl::ConsumePrefix(&port, ":")) return absl::InvalidArgumentError("redis url: bad port");
  } else {
    size_t colon = host_port.find(':');
    address.host = std::string(host_port.substr(0, colon));
    if (colon != absl::string_view::npos) port = host_port.substr(colon + 1);
  }
  if (address.host.empty()) return absl::InvalidArgumentError(absl::StrCat("redis url has no host: ", options.url));
  if (!port.empty() && (!absl::SimpleAtoi(port, &address.port) || address.port < 1 || address.port > 65535)) {
    return absl::InvalidArgumentError(absl::StrCat("redis url has a bad port: ", options.url));
  }
  if (!db.empty() && (!absl::SimpleAtoi(db, &address.db) || address.db < 0)) {
    return absl::InvalidArgumentError(absl::StrCat("redis url has a bad database number: ", options.url));
  }

  struct sigaction current {};
  if (sigaction(SIGPIPE, nullptr, &current) == 0 && current.sa_handler == SIG_DFL) signal(SIGPIPE, SIG_IGN);
  return std::unique_ptr<Client>(new Client(std::move(options), std::move(address)));
}

Client::Client(Options options, Address address) : options_(std::move(options)), address_(std::move(address)) {}

Client::~Client() = default;

absl::StatusOr<std::unique_ptr<Client::Connection>> Client::Connect() {
  redisContext* context = redisConnectWithTimeout(address_.host.c_str(), address_.port, TimevalOf(options_.timeout));
  if (context == nullptr) return absl::ResourceExhaustedError("redis: cannot allocate a connection");
  auto connection = std::make_unique<Connection>(context);
  if (context->err != 0) {
    return absl::UnavailableError(
        absl::StrCat("redis ", address_.host, ":", address_.port, ": cannot connect: ", context->errstr));
  }
  redisEnableKeepAlive(context);
  if (!address_.password.empty()) {
    std::vector<std::string> auth = {"AUTH"};
    if (!address_.user.empty()) auth.push_back(address_.user);
    auth.push_back(address_.password);
    if (auto ok = connection->Run(auth, options_.timeout); !ok.ok()) return ok.status();
  }
  if (address_.db != 0) {
    if (auto ok = connection->Run({"SELECT", absl::StrCat(address_.db)}, options_.timeout); !ok.ok()) {
      return ok.status();
    }
  }
  return connection;
}

absl::StatusOr<std::unique_ptr<Client::Connection>> Client::Acquire() {
  const auto deadline = std::chrono::steady_clock::now() + absl::ToChronoMilliseconds(options_.timeout);
  std::unique_lock lock(mu_);
  while (true) {
    if (!idle_.empty()) {
      std::unique_ptr<Connection> connection = std::move(idle_.back());
      idle_.pop_back();
      lock.unlock();
      if (!connection->LooksDead()) return connection;
      connection.reset();  // replaced below; the slot stays ours
    } else if (open_ < options_.pool_size) {
      ++open_;
      lock.unlock();
    } else {
      if (freed_.wait_until(lock, deadline) == std::cv_status::timeout && idle_.empty() &&
          open_ >= options_.pool_size) {
        return absl::ResourceExhaustedError(absl::StrCat("redis: no connection free within ",
                                                         absl::FormatDuration(options_.timeout), " (pool of ",
                                                         options_.pool_size, ")"));
      }
      continue;
    }
    absl::StatusOr<std::unique_ptr<Connection>> connection = Connect();
    if (!connection.ok()) {
      lock.lock();
      --open_;
      freed_.notify_one();
    }
    return connection;
  }
}

void Client::Release(std::unique_ptr<Connection> connection) {
  if (connection->broken()) connection.reset();
  std::lock_guard lock(mu_);
  if (connection) {
    idle_.push_back(std::move(connection));
  } else {
    --open_;
  }
  freed_.notify_one();
}

template <typename T>
absl::StatusOr<T> Client::WithConnection(const CallOptions& call,
                                         const std::function<absl::StatusOr<T>(Connection&)>& run) {
  for (int attempt = 1;; ++attempt) {
    absl::StatusOr<std::unique_ptr<Connection>> connection = Acquire();
    if (!connection.ok()) return connection.status();
    absl::StatusOr<T> result = run(**connection);
    const bool broken = (*connection)->broken();
    Release(*std::move(connection));
    if (broken && call.retry_if_broken && attempt == 1 && absl::IsUnavailable(result.status())) continue;
    return result;
  }
}

absl::StatusOr<Value> Client::Command(const std::vector<std::string>& args, const CallOptions& call) {
  if (args.empty()) return absl::InvalidArgumentError("redis command must not be empty");
  return WithConnection<Value>(
      call, [&](Connection& connection) { return connection.Run(args, options_.timeout + call.server_wait); });
}

absl::StatusOr<std::vector<Value>> Client::Pipeline(const std::vector<std::vector<std::string>>& commands,
                                                    const CallOptions& call) {
  if (commands.empty()) return std::vector<Value>{};
  for (const std::vector<std::string>& args : commands) {
    if (args.empty()) return absl::InvalidArgumentError("redis command in a pipeline must not be empty");
  }
  const std::string what = absl::StrCat(commands.front().front(), " and ", commands.size() - 1, " more, pipelined");
  return WithConnection<std::vector<Value>>(call, [&](Connection& connection) {
    return connection.RunAll(commands, what, options_.timeout + call.server_wait);
  });
}

}  // namespace ptd::redis
