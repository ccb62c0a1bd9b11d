#ifndef PTD_LIBS_SERVER_RPC_OBSERVER_H_
#define PTD_LIBS_SERVER_RPC_OBSERVER_H_

#include <grpc/grpc.h>
#include <grpcpp/server_context.h>
#include <grpcpp/support/server_interceptor.h>
#include <grpcpp/support/status.h>
#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <memory>
#include <set>
#include <string>
#include <string_view>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

// Internal to libs/server: what the Server records for every call (metrics, one log line, the request id).
namespace ptd::server_internal {

// The go-grpc-prometheus name of a status code: "OK", "InvalidArgument", "NotFound", ...
std::string_view CodeName(grpc::StatusCode code);

// "unary", "client_stream", "server_stream", "bidi_stream".
std::string_view TypeName(grpc::experimental::ServerRpcInfo::Type type);

// The grpc_type of a method known to the generated descriptor pool ("unary" when unknown).
std::string_view TypeNameOfPath(std::string_view path);

// "/pkg.Service/Method" -> {"pkg.Service", "Method"}; anything else -> {"unknown", path}.
struct MethodName {
  std::string service;
  std::string method;
};
MethodName SplitMethodPath(std::string_view path);

// Health and reflection: served to anyone (probes, tools), logged at debug level only.
bool IsOpenMethod(std::string_view path);

// A request id we pass on as given: 1 to 128 characters of [A-Za-z0-9._:-]. Others are replaced.
bool IsUsableRequestId(std::string_view id);

// The go-grpc-prometheus server metrics.
class RpcMetrics {
 public:
  explicit RpcMetrics(prometheus::Registry& registry);

  void Started(const MethodName& method, std::string_view type);
  void Handled(const MethodName& method, std::string_view type, grpc::StatusCode code, double seconds);

 private:
  prometheus::Family<prometheus::Counter>& started_;
  prometheus::Family<prometheus::Counter>& handled_;
  prometheus::Family<prometheus::Histogram>& handling_seconds_;
};

// Writes the per-call log line.
void LogCall(std::string_view path, grpc::StatusCode code, std::string_view error_message, double duration_ms,
             std::string_view tenant, std::string_view request_id);

// The open grpc.health.v1.Health/Watch streams. They never end by themselves, so a graceful stop would wait the
// whole drain_timeout for them: the Server cancels them (UNAVAILABLE) when the drain starts, after they have
// heard NOT_SERVING. Holds a reference on each core call, so cancelling never touches a finished call's C++ state.
class HealthWatches {
 public:
  ~HealthWatches();
  void Add(grpc_call* call);
  void Remove(grpc_call* call);
  void CancelAll();

 private:
  absl::Mutex mu_;
  std::set<grpc_call*> calls_ ABSL_GUARDED_BY(mu_);
};

// Creates one RpcObserver per call: counts it, times it, logs it, and gives it a request id (taken from
// x-request-id or made up, set as the handler thread's log request id, and returned as initial metadata).
class RpcObserverFactory : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  RpcObserverFactory(std::shared_ptr<RpcMetrics> metrics, std::shared_ptr<HealthWatches> watches)
      : metrics_(std::move(metrics)), watches_(std::move(watches)) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(grpc::experimental::ServerRpcInfo* info) override;

 private:
  std::shared_ptr<RpcMetrics> metrics_;
  std::shared_ptr<HealthWatches> watches_;
};

}  // namespace ptd::server_internal

#endif  // PTD_LIBS_SERVER_RPC_OBSERVER_H_
