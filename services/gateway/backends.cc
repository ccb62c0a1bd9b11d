#include "services/gateway/backends.h"

#include "absl/strings/str_cat.h"
#include "grpc/health/v1/health.grpc.pb.h"

namespace ptd::gateway {
namespace {

// What the completion queue hands back: a unary call's end, or one step of a stream.
struct Completion {
  virtual void Run(bool ok) = 0;

 protected:
  ~Completion() = default;
};

}  // namespace

struct Backends::PendingCall final : Completion {
  std::unique_ptr<grpc::GenericClientAsyncResponseReader> reader;
  grpc::Status status;
  std::function<void(grpc::Status)> done;

  // Finish always completes (ok is true for unary calls): the status says how the call went.
  void Run(bool) override {
    std::unique_ptr<PendingCall> self(this);
    done(std::move(status));
  }
};

struct BackendStream::Op final : Completion {
  Op(BackendStream* stream, Step step) : stream(stream), step(step) {}
  void Run(bool ok) override { stream->Complete(step, ok); }
  BackendStream* stream;
  Step step;
};

BackendStream::BackendStream() = default;
BackendStream::~BackendStream() = default;

void BackendStream::Issue(Step step) {
  // At most one step of each kind is pending, so its slot is free.
  pending_[step] = shared_from_this();
  void* tag = static_cast<Completion*>(ops_[step].get());
  switch (step) {
    case kStart:
      call_->StartCall(tag);
      break;
    case kWrite:
      call_->WriteLast(request_, grpc::WriteOptions(), tag);  // the only request, and the half-close
      break;
    case kRead:
      call_->Read(&message_, tag);
      break;
    case kFinish:
      call_->Finish(&status_, tag);
      break;
    case kSteps:
      break;
  }
}

void BackendStream::Next() { Issue(kRead); }

void BackendStream::Complete(Step step, bool ok) {
  // Released when this completion has run (not before: a handler may be the last other owner).
  std::shared_ptr<BackendStream> keep = std::move(pending_[step]);
  switch (step) {
    case kStart:
      if (!ok) return Issue(kFinish);  // the call never started: Finish says why
      Issue(kWrite);
      Issue(kRead);
      return;
    case kWrite:
      return;  // a failed write shows as a failed read
    case kRead:
      if (!ok) return Issue(kFinish);  // no more messages: the stream ended, or failed
      handlers_.on_message(message_);
      return;
    case kFinish: {
      // Dropped after the call: the handlers usually hold their owner, which holds this stream.
      Handlers handlers = std::move(handlers_);
      handlers.on_finish(status_);
      return;
    }
    case kSteps:
      return;
  }
}

Backends::~Backends() {
  completions_.Shutdown();
  for (std::thread& t : completion_threads_) t.join();
}

void Backends::StartStream(const Backend& backend, const std::shared_ptr<BackendStream>& stream,
                           const std::string& method, grpc::ByteBuffer request, BackendStream::Handlers handlers) {
  stream->request_.Swap(&request);
  stream->handlers_ = std::move(handlers);
  for (int step = 0; step < BackendStream::kSteps; ++step) {
    stream->ops_[step] = std::make_unique<BackendStream::Op>(stream.get(), static_cast<BackendStream::Step>(step));
  }
  stream->call_ = backend.Stub().PrepareCall(&stream->context_, method, &completions_);
  stream->Issue(BackendStream::kStart);
}

void Backends::Call(const Backend& backend, grpc::ClientContext* context, const std::string& method,
                    const grpc::ByteBuffer& request, grpc::ByteBuffer* response,
                    std::function<void(grpc::Status)> done) {
  auto* call = new PendingCall;
  call->done = std::move(done);
  call->reader = backend.Stub().PrepareUnaryCall(context, method, request, &completions_);
  call->reader->StartCall();
  call->reader->Finish(response, &call->status, static_cast<Completion*>(call));
}

absl::StatusOr<std::unique_ptr<Backends>> Backends::Create(const std::vector<std::string>& specs,
                                                           int channels_per_backend, int completion_threads) {
  auto out = std::make_unique<Backends>();
  std::map<std::string, Backend*> by_address;
  for (const std::string& spec : specs) {
    size_t eq = spec.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == spec.size()) {
      return absl::InvalidArgumentError(absl::StrCat("backend \"", spec, "\" must be package=host:port"));
    }
    std::string package = spec.substr(0, eq);
    std::string address = spec.substr(eq + 1);
    if (out->by_package_.count(package)) {
      return absl::InvalidArgumentError(absl::StrCat("backend for ", package, " is given twice"));
    }
    Backend*& backend = by_address[address];
    if (backend == nullptr) {
      out->backends_.push_back(std::make_unique<Backend>());
      backend = out->backends_.back().get();
      backend->address = address;
      for (int i = 0; i < std::max(1, channels_per_backend); ++i) {
        grpc::ChannelArguments args;
        // Separate connections, not one shared subchannel.
        args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
        args.SetInt("ptd.gateway.channel_index", i);  // distinct args: distinct connections
        args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 30000);
        // A large list page must not fail as RESOURCE_EXHAUSTED (which apps would read as 429).
        args.SetMaxReceiveMessageSize(64 << 20);
        auto channel = grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
        backend->stubs.push_back(std::make_unique<grpc::GenericStub>(channel));
        backend->channels.push_back(std::move(channel));
      }
    }
    backend->packages.push_back(package);
    out->by_package_[package] = backend;
  }
  for (int i = 0; i < std::max(1, completion_threads); ++i) {
    out->completion_threads_.emplace_back([completions = &out->completions_] {
      void* tag = nullptr;
      bool ok = false;
      while (completions->Next(&tag, &ok)) static_cast<Completion*>(tag)->Run(ok);
    });
  }
  return out;
}

const Backends::Backend* Backends::For(std::string_view package) const {
  auto it = by_package_.find(package);
  return it == by_package_.end() ? nullptr : it->second;
}

std::map<std::string, absl::Status> Backends::CheckHealth(absl::Duration timeout) const {
  std::map<std::string, absl::Status> out;
  for (const auto& backend : backends_) {
    auto stub = grpc::health::v1::Health::NewStub(backend->channels[0]);
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + absl::ToChronoMilliseconds(timeout));
    grpc::health::v1::HealthCheckRequest request;
    grpc::health::v1::HealthCheckResponse response;
    grpc::Status status = stub->Check(&context, request, &response);
    if (!status.ok()) {
      out[backend->address] = absl::UnavailableError(status.error_message());
    } else if (response.status() != grpc::health::v1::HealthCheckResponse::SERVING) {
      out[backend->address] = absl::UnavailableError("not serving");
    } else {
      out[backend->address] = absl::OkStatus();
    }
  }
  return out;
}

}  // namespace ptd::gateway
