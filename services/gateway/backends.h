#ifndef PTD_SERVICES_GATEWAY_BACKENDS_H_
#define PTD_SERVICES_GATEWAY_BACKENDS_H_

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

// The gRPC services behind the gateway: one address per proto package ("ptd.trading.v1=127.0.0.1:50051"),
// a few long-lived channels to each (calls are spread over them, so one HTTP/2 connection is not the
// bottleneck), and a health check of each. Calls complete on a completion queue drained by a thread of its
// own (gRPC's callback API hands every completion between two more threads of its own).
namespace ptd::gateway {

class Backends {
 public:
  struct Backend {
    std::string address;
    std::vector<std::string> packages;
    std::vector<std::unique_ptr<grpc::GenericStub>> stubs;
    std::vector<std::shared_ptr<grpc::Channel>> channels;
    mutable std::atomic<uint64_t> next{0};

    grpc::GenericStub& Stub() const { return *stubs[next.fetch_add(1, std::memory_order_relaxed) % stubs.size()]; }
  };

  // `specs`: "package=host:port" each. INVALID_ARGUMENT for a malformed one or a package given twice.
  // `completion_threads` drain the completion queue of every call.
  static absl::StatusOr<std::unique_ptr<Backends>> Create(const std::vector<std::string>& specs,
                                                          int channels_per_backend, int completion_threads = 1);
  Backends() = default;
  // Waits for the calls in flight to end.
  ~Backends();
  Backends(const Backends&) = delete;
  Backends& operator=(const Backends&) = delete;

  // Starts a unary call of `method` ("/pkg.Service/Method") on `backend`; `done` runs on a completion thread
  // with its status (the response, when OK, in `response`). `context`, `request` and `response` must live
  // until then.
  void Call(const Backend& backend, grpc::ClientContext* context, const std::string& method,
            const grpc::ByteBuffer& request, grpc::ByteBuffer* response, std::function<void(grpc::Status)> done);

  // nullptr when no backend serves `package`.
  const Backend* For(std::string_view package) const;

  // grpc.health.v1.Health/Check("") on every backend: an entry per address, OK when SERVING.
  std::map<std::string, absl::Status> CheckHealth(absl::Duration timeout) const;

  const std::vector<std::unique_ptr<Backend>>& all() const { return backends_; }

 private:
  struct PendingCall;

  std::vector<std::unique_ptr<Backend>> backends_;
  grpc::CompletionQueue completions_;
  std::vector<std::thread> completion_threads_;
  std::map<std::string, const Backend*, std::less<>> by_package_;
};

}  // namespace ptd::gateway

#endif  // PTD_SERVICES_GATEWAY_BACKENDS_H_
