#include "libs/redis/client.h"

#include <hiredis/hiredis.h>
#include <poll.h>
#include <signal.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
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
    if (reply_timeout != timeout_) {
      if (redisSetTimeout(context_, TimevalOf(reply_timeout)) != REDIS_OK) return IoError(args);
      timeout_ = reply_timeout;
    }
    std::vector<const char*> argv;
    std::vector<size_t> lengths;
    for (const std::string& arg : args) {
      argv.push_back(arg.data());
      lengths.push_back(arg.size());
    }
    errno = 0;
    auto* reply = static_cast<redisReply*>(
        redisCommandArgv(context_, static_cast<int>(args.size()), argv.data(), lengths.data()));
    if (reply == nullptr) return IoError(args);
    Value value = CopyReply(*reply);
    freeReplyObject(reply);
    if (value.type == Value::Type::kError) {
      return absl::Status(CodeOfRedisError(value.str), absl::StrCat("redis ", args.front(), ": ", value.str));
    }
    return value;
  }

 private:
  absl::Status IoError(const std::vector<std::string>& args) {
    const bool timed_out = context_->err == REDIS_ERR_IO && (errno == EAGAIN || errno == EWOULDBLOCK);
    if (context_->err == 0) context_->err = REDIS_ERR_OTHER;  // never reuse after a failure
    std::string what = absl::StrCat("redis ", args.empty() ? "" : args.front(), ": ");
    if (timed_out) {
      return absl::DeadlineExceededError(absl::StrCat(what, "no reply within ", absl::FormatDuration(timeout_)));
    }
    return absl::UnavailableError(absl::StrCat(what, "connection lost: ", context_->errstr));
  }

  redisContext* context_;
  absl::Duration timeout_ = absl::InfiniteDuration();  // what the socket is set to now
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

absl::StatusOr<Value> Client::Command(const std::vector<std::string>& args, const CallOptions& call) {
  if (args.empty()) return absl::InvalidArgumentError("redis command must not be empty");
  for (int attempt = 1;; ++attempt) {
    absl::StatusOr<std::unique_ptr<Connection>> connection = Acquire();
    if (!connection.ok()) return connection.status();
    absl::StatusOr<Value> result = (*connection)->Run(args, options_.timeout + call.server_wait);
    const bool broken = (*connection)->broken();
    Release(*std::move(connection));
    if (broken && call.retry_if_broken && attempt == 1 && absl::IsUnavailable(result.status())) continue;
    return result;
  }
}

}  // namespace ptd::redis
