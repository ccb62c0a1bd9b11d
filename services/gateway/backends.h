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
// own (gRPC's callback API hands every completion between two more threads of its own); so do the steps of
// server-streaming calls (BackendStream), which hold no thread while they wait.
namespace ptd::gateway {

class Backends;

// One server-streaming call: one request, then messages one at a time, each read only when its owner asks
// for it (Next), so a slow consumer holds the backend back through gRPC's flow control instead of a buffer
// here. Make it with std::make_shared, set the deadline and metadata on context(), then Backends::StartStream.
class BackendStream : public std::enable_shared_from_this<BackendStream> {
 public:
  struct Handlers {
    // A message (the handler may consume it); the next one is read after Next(). Runs on a completion thread.
    std::function<void(grpc::ByteBuffer& message)> on_message;
    // The call's end, after every on_message; the last call of a handler (they are released after it).
    std::function<void(const grpc::Status& status)> on_finish;
  };

  BackendStream();
  ~BackendStream();
  BackendStream(const BackendStream&) = delete;
  BackendStream& operator=(const BackendStream&) = delete;

  grpc::ClientContext& context() { return context_; }
  // Asks for the next message: once after each on_message, when ready for it (after a Cancel too, to collect
  // the end). Any thread.
  void Next();
  // Asks gRPC to cancel the call (TryCancel): a pending read ends, and on_finish follows with CANCELLED
  // (or the status the call had already). Any thread, any number of times.
  void Cancel() { context_.TryCancel(); }

 private:
  friend class Backends;
  enum Step { kStart, kWrite, kRead, kFinish, kSteps };
  struct Op;  // a completion-queue tag of one step

  void Complete(Step step, bool ok);
  void Issue(Step step);

  // Declared before the call object, so it is destroyed after it: the call lives in the context's arena.
  grpc::ClientContext context_;
  std::unique_ptr<grpc::GenericClientAsyncReaderWriter> call_;
  grpc::ByteBuffer request_;
  grpc::ByteBuffer message_;
  grpc::Status status_;
  Handlers handlers_;
  std::unique_ptr<Op> ops_[kSteps];
  // Each pending step holds the call alive until its completion has run.
  std::shared_ptr<BackendStream> pending_[kSteps];
};

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
  // Waits for the calls in flight to end: cancel the streams first, which may never end on their own.
  ~Backends();
  Backends(const Backends&) = delete;
  Backends& operator=(const Backends&) = delete;

  // Starts a unary call of `method` ("/pkg.Service/Method") on `backend`; `done` runs on a completion thread
  // with its status (the response, when OK, in `response`). `context`, `request` and `response` must live
  // until then.
  void Call(const Backend& backend, grpc::ClientContext* context, const std::string& method,
            const grpc::ByteBuffer& request, grpc::ByteBuffer* response, std::function<void(grpc::Status)> done);

  // Starts `stream`, a server-streaming call of `method` on `backend` with `request`. The first message (or the
  // end) arrives through `handlers`.
  void StartStream(const Backend& backend, const std::shared_ptr<BackendStream>& stream, const std::string& method,
                   grpc::ByteBuffer request, BackendStream::Handlers handlers);

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
