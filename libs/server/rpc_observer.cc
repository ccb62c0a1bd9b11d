#include "libs/server/rpc_observer.h"

#include <google/protobuf/descriptor.h>
#include <grpcpp/support/string_ref.h>

#include <chrono>
#include <cmath>
#include <map>
#include <optional>
#include <string>

#include "absl/strings/str_cat.h"
#include "libs/core/ids.h"
#include "libs/core/log.h"
#include "libs/server/caller.h"

namespace ptd::server_internal {
namespace {

using grpc::experimental::InterceptionHookPoints;
using grpc::experimental::ServerRpcInfo;

std::string_view FirstValue(const std::multimap<grpc::string_ref, grpc::string_ref>& metadata, std::string_view key) {
  auto it = metadata.find(grpc::string_ref(key.data(), key.size()));
  if (it == metadata.end()) return {};
  return {it->second.data(), it->second.size()};
}

class RpcObserver final : public grpc::experimental::Interceptor {
 public:
  RpcObserver(std::shared_ptr<RpcMetrics> metrics, std::shared_ptr<HealthWatches> watches, ServerRpcInfo* info)
      : metrics_(std::move(metrics)),
        watches_(std::move(watches)),
        call_(info->server_context()->c_call()),
        path_(info->method() != nullptr ? info->method() : ""),
        method_(SplitMethodPath(path_)),
        type_(TypeName(info->type())),
        open_(IsOpenMethod(path_)),
        health_watch_(path_ == "/grpc.health.v1.Health/Watch" && call_ != nullptr) {}

  ~RpcObserver() override {
    // Only for calls that end without sending a status, which a synchronous handler always sends.
    if (started_ && !finished_) Finish(grpc::StatusCode::CANCELLED, "the call ended without a status");
  }

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::POST_RECV_INITIAL_METADATA)) {
      Start(*methods->GetRecvInitialMetadata());
    }
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_INITIAL_METADATA) &&
        !request_id_.empty()) {
      methods->GetSendInitialMetadata()->emplace(kRequestIdKey, request_id_);
    }
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_STATUS)) {
      grpc::Status status = methods->GetSendStatus();
      Finish(status.error_code(), status.error_message());
    }
    methods->Proceed();
  }

 private:
  void Start(std::multimap<grpc::string_ref, grpc::string_ref>& metadata) {
    started_ = true;
    start_ = std::chrono::steady_clock::now();
    tenant_ = std::string(FirstValue(metadata, kTenantKey));
    request_id_ = std::string(FirstValue(metadata, kRequestIdKey));
    if (!IsUsableRequestId(request_id_)) {
      // Handlers (and CallerOf) read the id from the metadata, so the one made up here goes there too. The map
      // holds references: request_id_ lives as long as this observer, which lives as long as the call.
      request_id_ = NewId();
      metadata.erase(grpc::string_ref(kRequestIdKey));
      metadata.emplace(grpc::string_ref(kRequestIdKey), grpc::string_ref(request_id_));
    }
    metrics_->Started(method_, type_);
    if (health_watch_) watches_->Add(call_);
    // Synchronous handlers run on the thread that runs this hook and send their status from it (the Server
    // accepts only synchronous services). Health and reflection are gRPC's own callback services: skipped.
    if (!open_) request_id_scope_.emplace(request_id_);
  }

  void Finish(grpc::StatusCode code, const std::string& message) {
    finished_ = true;
    if (health_watch_) watches_->Remove(call_);
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    metrics_->Handled(method_, type_, code, seconds);
    request_id_scope_.reset();
    LogCall(path_, code, message, seconds * 1000, tenant_, request_id_);
  }

  std::shared_ptr<RpcMetrics> metrics_;
  std::shared_ptr<HealthWatches> watches_;
  grpc_call* call_;
  std::string path_;
  MethodName method_;
  std::string_view type_;
  bool open_;
  bool health_watch_;

  bool started_ = false;
  bool finished_ = false;
  std::chrono::steady_clock::time_point start_;
  std::string tenant_;
  std::string request_id_;
  std::optional<log::ScopedRequestId> request_id_scope_;
};

}  // namespace

std::string_view CodeName(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK:
      return "OK";
    case grpc::StatusCode::CANCELLED:
      return "Canceled";
    case grpc::StatusCode::UNKNOWN:
      return "Unknown";
    case grpc::StatusCode::INVALID_ARGUMENT:
      return "InvalidArgument";
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return "DeadlineExceeded";
    case grpc::StatusCode::NOT_FOUND:
      return "NotFound";
    case grpc::StatusCode::ALREADY_EXISTS:
      return "AlreadyExists";
    case grpc::StatusCode::PERMISSION_DENIED:
      return "PermissionDenied";
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return "ResourceExhausted";
    case grpc::StatusCode::FAILED_PRECONDITION:
      return "FailedPrecondition";
    case grpc::StatusCode::ABORTED:
      return "Aborted";
    case grpc::StatusCode::OUT_OF_RANGE:
      return "OutOfRange";
    case grpc::StatusCode::UNIMPLEMENTED:
      return "Unimplemented";
    case grpc::StatusCode::INTERNAL:
      return "Internal";
    case grpc::StatusCode::UNAVAILABLE:
      return "Unavailable";
    case grpc::StatusCode::DATA_LOSS:
      return "DataLoss";
    case grpc::StatusCode::UNAUTHENTICATED:
      return "Unauthenticated";
    default:
      return "Unknown";
  }
}

std::string_view TypeName(ServerRpcInfo::Type type) {
  switch (type) {
    case ServerRpcInfo::Type::UNARY:
      return "unary";
    case ServerRpcInfo::Type::CLIENT_STREAMING:
      return "client_stream";
    case ServerRpcInfo::Type::SERVER_STREAMING:
      return "server_stream";
    case ServerRpcInfo::Type::BIDI_STREAMING:
      return "bidi_stream";
  }
  return "unary";
}

std::string_view TypeNameOfPath(std::string_view path) {
  MethodName name = SplitMethodPath(path);
  const google::protobuf::MethodDescriptor* method =
      google::protobuf::DescriptorPool::generated_pool()->FindMethodByName(
          absl::StrCat(name.service, ".", name.method));
  if (method == nullptr) return "unary";
  if (method->client_streaming() && method->server_streaming()) return "bidi_stream";
  if (method->client_streaming()) return "client_stream";
  if (method->server_streaming()) return "server_stream";
  return "unary";
}

MethodName SplitMethodPath(std::string_view path) {
  if (path.size() > 1 && path[0] == '/') {
    std::string_view rest = path.substr(1);
    size_t slash = rest.find('/');
    if (slash != std::string_view::npos && slash > 0 && slash + 1 < rest.size()) {
      return {std::string(rest.substr(0, slash)), std::string(rest.substr(slash + 1))};
    }
  }
  return {"unknown", std::string(path)};
}

bool IsOpenMethod(std::string_view path) {
  return path.starts_with("/grpc.health.v1.Health/") || path.starts_with("/grpc.reflection.");
}

bool IsUsableRequestId(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  for (char c : id) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
              c == ':' || c == '-';
    if (!ok) return false;
  }
  return true;
}

RpcMetrics::RpcMetrics(prometheus::Registry& registry)
    : started_(prometheus::BuildCounter()
                   .Name("grpc_server_started_total")
                   .Help("Total number of RPCs started on the server.")
                   .Register(registry)),
      handled_(prometheus::BuildCounter()
                   .Name("grpc_server_handled_total")
                   .Help("Total number of RPCs completed on the server, regardless of success or failure.")
                   .Register(registry)),
      handling_seconds_(prometheus::BuildHistogram()
                            .Name("grpc_server_handling_seconds")
                            .Help("Histogram of response latency (seconds) of gRPC that had been application-level "
                                  "handled by the server.")
                            .Register(registry)) {}

void RpcMetrics::Started(const MethodName& method, std::string_view type) {
  started_.Add({{"grpc_service", method.service}, {"grpc_method", method.method}, {"grpc_type", std::string(type)}})
      .Increment();
}

void RpcMetrics::Handled(const MethodName& method, std::string_view type, grpc::StatusCode code, double seconds) {
  // From half a millisecond (a cache hit) to ten seconds (past any sane deadline).
  static const prometheus::Histogram::BucketBoundaries kBuckets = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                                   0.1,    0.25,  0.5,    1,     2.5,  5,     10};
  handled_
      .Add({{"grpc_service", method.service},
            {"grpc_method", method.method},
            {"grpc_type", std::string(type)},
            {"grpc_code", std::string(CodeName(code))}})
      .Increment();
  handling_seconds_
      .Add({{"grpc_service", method.service}, {"grpc_method", method.method}, {"grpc_type", std::string(type)}},
           kBuckets)
      .Observe(seconds);
}

void LogCall(std::string_view path, grpc::StatusCode code, std::string_view error_message, double duration_ms,
             std::string_view tenant, std::string_view request_id) {
  nlohmann::json fields = {{"method", std::string(path)},
                           {"code", std::string(CodeName(code))},
                           {"duration_ms", std::round(duration_ms * 1000) / 1000},
                           {"tenant", std::string(tenant)},
                           {"request_id", std::string(request_id)}};
  if (code != grpc::StatusCode::OK) fields["error"] = std::string(error_message);
  log::Level level = log::Level::kInfo;
  if (IsOpenMethod(path)) {
    level = log::Level::kDebug;  // probes every few seconds would drown everything else
  } else if (code == grpc::StatusCode::UNAUTHENTICATED) {
    level = log::Level::kWarn;
  } else if (code == grpc::StatusCode::INTERNAL || code == grpc::StatusCode::UNKNOWN ||
             code == grpc::StatusCode::DATA_LOSS) {
    level = log::Level::kError;
  }
  log::Write(level, "rpc", fields);
}

HealthWatches::~HealthWatches() {
  for (grpc_call* call : calls_) grpc_call_unref(call);
}

void HealthWatches::Add(grpc_call* call) {
  grpc_call_ref(call);
  absl::MutexLock lock(&mu_);
  calls_.insert(call);
}

void HealthWatches::Remove(grpc_call* call) {
  {
    absl::MutexLock lock(&mu_);
    if (calls_.erase(call) == 0) return;
  }
  grpc_call_unref(call);
}

void HealthWatches::CancelAll() {
  std::set<grpc_call*> calls;
  {
    absl::MutexLock lock(&mu_);
    calls.swap(calls_);
  }
  // Not under the lock: cancelling may run the call's callbacks, and with them Remove(), on this thread.
  for (grpc_call* call : calls) {
    grpc_call_cancel_with_status(call, GRPC_STATUS_UNAVAILABLE, "the server is stopping", nullptr);
    grpc_call_unref(call);
  }
}

grpc::experimental::Interceptor* RpcObserverFactory::CreateServerInterceptor(ServerRpcInfo* info) {
  return new RpcObserver(metrics_, watches_, info);
}

}  // namespace ptd::server_internal
