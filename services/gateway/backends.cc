#include "services/gateway/backends.h"

#include "absl/strings/str_cat.h"
#include "grpc/health/v1/health.grpc.pb.h"

namespace ptd::gateway {

struct Backends::PendingCall {
  std::unique_ptr<grpc::GenericClientAsyncResponseReader> reader;
  grpc::Status status;
  std::function<void(grpc::Status)> done;
};

Backends::~Backends() {
  completions_.Shutdown();
  for (std::thread& t : completion_threads_) t.join();
}

void Backends::Call(const Backend& backend, grpc::ClientContext* context, const std::string& method,
                    const grpc::ByteBuffer& request, grpc::ByteBuffer* response,
                    std::function<void(grpc::Status)> done) {
  auto* call = new PendingCall{.done = std::move(done)};
  call->reader = backend.Stub().PrepareUnaryCall(context, method, request, &completions_);
  call->reader->StartCall();
  call->reader->Finish(response, &call->status, call);
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
      while (completions->Next(&tag, &ok)) {
        // Finish always completes (ok is true for unary calls): the status says how the call went.
        std::unique_ptr<PendingCall> call(static_cast<PendingCall*>(tag));
        call->done(std::move(call->status));
      }
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
