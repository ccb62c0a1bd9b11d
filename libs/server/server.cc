#include "libs/server/server.h"

#include <fcntl.h>
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/impl/server_builder_option.h>
#include <grpcpp/impl/server_builder_plugin.h>
#include <grpcpp/impl/server_initializer.h>
#include <grpcpp/impl/service_type.h>
#include <grpcpp/server_builder.h>
#include <poll.h>
#include <prometheus/exposer.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <exception>
#include <mutex>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "grpc/health/v1/health.pb.h"
#include "libs/core/config.h"
#include "libs/core/log.h"
#include "libs/server/internal_token.h"
#include "libs/server/rpc_observer.h"

namespace ptd {
namespace {

using server_internal::RpcMetrics;

// --- SIGTERM / SIGINT: the handler only writes to a pipe; each running Server's watcher thread polls it. The
// pipe is not drained while any Server runs, so every watcher wakes.

std::atomic<int> g_signal_write_fd{-1};
std::atomic<int> g_last_signal{0};

extern "C" void OnTerminationSignal(int signo) {
  int saved_errno = errno;
  g_last_signal.store(signo);
  unsigned char byte = static_cast<unsigned char>(signo);
  int fd = g_signal_write_fd.load();
  if (fd >= 0) {
    ssize_t ignored = write(fd, &byte, 1);
    (void)ignored;
  }
  errno = saved_errno;
}

struct SignalState {
  std::mutex mu;
  int users = 0;
  int pipe[2] = {-1, -1};
  struct sigaction old_term {};
  struct sigaction old_int {};
};

SignalState& Signals() {
  static auto* state = new SignalState;  // never destroyed: a signal may come during exit
  return *state;
}

void DrainPipe(int fd) {
  char buffer[64];
  while (read(fd, buffer, sizeof buffer) > 0) {
  }
}

// Installs the handlers for the first user. Returns the pipe to poll, or -1.
int AcquireSignals() {
  SignalState& s = Signals();
  std::lock_guard<std::mutex> lock(s.mu);
  if (s.pipe[0] < 0) {
    if (pipe2(s.pipe, O_CLOEXEC | O_NONBLOCK) != 0) return -1;
    g_signal_write_fd.store(s.pipe[1]);
  }
  if (s.users++ == 0) {
    DrainPipe(s.pipe[0]);
    struct sigaction action {};
    action.sa_handler = &OnTerminationSignal;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_RESTART;
    sigaction(SIGTERM, &action, &s.old_term);
    sigaction(SIGINT, &action, &s.old_int);
  }
  return s.pipe[0];
}

// Restores the previous handlers after the last user.
void ReleaseSignals() {
  SignalState& s = Signals();
  std::lock_guard<std::mutex> lock(s.mu);
  if (--s.users == 0) {
    sigaction(SIGTERM, &s.old_term, nullptr);
    sigaction(SIGINT, &s.old_int, nullptr);
    DrainPipe(s.pipe[0]);
  }
}

// --- The names of the services a grpc::Server ended up with (ours, health, reflection): gRPC tells plugins only.

class ServiceListPlugin final : public grpc::ServerBuilderPlugin {
 public:
  explicit ServiceListPlugin(std::vector<std::string>* names) : names_(names) {}
  std::string name() override { return "ptd_service_list"; }
  void InitServer(grpc::ServerInitializer* /*si*/) override {}
  void Finish(grpc::ServerInitializer* si) override { *names_ = *si->GetServiceList(); }
  void ChangeArguments(const std::string& /*name*/, void* /*value*/) override {}

 private:
  std::vector<std::string>* names_;
};

class ServiceListOption final : public grpc::ServerBuilderOption {
 public:
  explicit ServiceListOption(std::vector<std::string>* names) : names_(names) {}
  void UpdateArguments(grpc::ChannelArguments* /*args*/) override {}
  void UpdatePlugins(std::vector<std::unique_ptr<grpc::ServerBuilderPlugin>>* plugins) override {
    plugins->push_back(std::make_unique<ServiceListPlugin>(names_));
  }

 private:
  std::vector<std::string>* names_;
};

}  // namespace

Server::Server(ServerOptions options) : options_(std::move(options)) {
  if (options_.registry == nullptr) options_.registry = std::make_shared<prometheus::Registry>();
}

Server::~Server() {
  Shutdown();
  if (watcher_.joinable()) {
    watcher_.join();
    ReleaseSignals();
  }
  for (int fd : wake_pipe_) {
    if (fd >= 0) close(fd);
  }
}

void Server::AddService(grpc::Service* service) { services_.push_back(service); }

absl::Status Server::Start() {
  {
    absl::MutexLock lock(&mu_);
    if (state_ != State::kNew) return absl::FailedPreconditionError("Server::Start() may be called once");
  }
  if (options_.internal_token.empty()) {
    return absl::InvalidArgumentError("ServerOptions.internal_token is required: services refuse calls without it");
  }
  for (grpc::Service* service : services_) {
    if (service->has_async_methods() || service->has_callback_methods() || service->has_generic_methods()) {
      return absl::InvalidArgumentError(
          "only synchronous services are supported (request ids are per handler thread, drain waits for handlers)");
    }
  }

  // Reflection describes what the generated descriptor pool holds. gRPC's health service is not generated C++
  // code, so it would be missing: load the generated health.proto (from ptd_proto) into the pool.
  static std::once_flag grpc_setup;
  std::call_once(grpc_setup, [] {
    grpc::health::v1::HealthCheckRequest::descriptor();
    grpc::EnableDefaultHealthCheckService(true);                 // process-wide
    grpc::reflection::InitProtoReflectionServerBuilderPlugin();  // process-wide, and not thread-safe
  });

  auto metrics = std::make_shared<RpcMetrics>(*options_.registry);
  health_watches_ = std::make_shared<server_internal::HealthWatches>();
  if (!options_.metrics_address.empty()) {
    try {
      exposer_ = std::make_unique<prometheus::Exposer>(options_.metrics_address, /*num_threads=*/2);
    } catch (const std::exception& e) {
      return absl::UnavailableError(
          absl::StrCat("cannot serve /metrics on ", options_.metrics_address, ": ", e.what()));
    }
    exposer_->RegisterCollectable(options_.registry);
    std::vector<int> ports = exposer_->GetListeningPorts();
    metrics_port_ = ports.empty() ? 0 : ports.front();
  }

  // Calls refused for the token never reach the interceptor: count and log them here.
  auto on_refused = [metrics](std::string_view path, std::string_view tenant, std::string_view request_id) {
    server_internal::MethodName name = server_internal::SplitMethodPath(path);
    std::string_view type = server_internal::TypeNameOfPath(path);
    metrics->Started(name, type);
    metrics->Handled(name, type, grpc::StatusCode::UNAUTHENTICATED, 0);
    server_internal::LogCall(path, grpc::StatusCode::UNAUTHENTICATED, "x-ptd-internal-token missing or wrong", 0,
                             tenant, request_id);
  };

  grpc::ServerBuilder builder;
  // Without this, a second server on the same port would bind too and silently share its traffic.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.AddListeningPort(options_.grpc_address,
                           server_internal::InternalTokenServerCredentials(options_.internal_token, on_refused),
                           &grpc_port_);
  for (grpc::Service* service : services_) builder.RegisterService(service);
  builder.SetOption(std::make_unique<ServiceListOption>(&service_names_));
  if (options_.max_pollers > 0) {
    builder.SetSyncServerOption(grpc::ServerBuilder::SyncServerOption::MAX_POLLERS, options_.max_pollers);
  }
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> interceptors;
  interceptors.push_back(std::make_unique<server_internal::RpcObserverFactory>(metrics, health_watches_));
  builder.experimental().SetInterceptorCreators(std::move(interceptors));
  server_ = builder.BuildAndStart();
  if (server_ == nullptr || grpc_port_ == 0) {
    server_.reset();
    exposer_.reset();
    metrics_port_ = 0;
    grpc_port_ = 0;
    return absl::UnavailableError(absl::StrCat("cannot serve gRPC on ", options_.grpc_address));
  }

  grpc::HealthCheckServiceInterface* health = server_->GetHealthCheckService();
  health->SetServingStatus("", true);
  for (const std::string& name : service_names_) health->SetServingStatus(name, true);

  int signal_fd = AcquireSignals();
  if (signal_fd < 0 || pipe2(wake_pipe_, O_CLOEXEC) != 0) {
    if (signal_fd >= 0) ReleaseSignals();
    server_->Shutdown();
    server_->Wait();
    server_.reset();
    exposer_.reset();
    return absl::InternalError("cannot create a pipe for signal handling");
  }
  {
    absl::MutexLock lock(&mu_);
    state_ = State::kRunning;
  }
  watcher_ = std::thread([this, signal_fd] { WatchSignals(signal_fd); });
  log::Info("server started",
            {{"grpc_port", grpc_port_}, {"metrics_port", metrics_port_}, {"services", service_names_}});
  return absl::OkStatus();
}

void Server::WatchSignals(int signal_fd) {
  pollfd fds[2] = {{signal_fd, POLLIN, 0}, {wake_pipe_[0], POLLIN, 0}};
  while (true) {
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      log::Error("cannot wait for signals", {{"errno", errno}});
      return;
    }
    if (fds[1].revents != 0) return;  // Shutdown() under way elsewhere
    if (fds[0].revents != 0) {
      log::Info("stop requested by signal", {{"signal", g_last_signal.load() == SIGINT ? "SIGINT" : "SIGTERM"}});
      Shutdown();
      return;
    }
  }
}

void Server::Wait() {
  absl::MutexLock lock(&mu_);
  mu_.Await(absl::Condition(
      +[](State* state) { return *state == State::kStopped; }, &state_));
}

void Server::Shutdown() {
  {
    absl::MutexLock lock(&mu_);
    if (state_ == State::kNew) {
      state_ = State::kStopped;
      return;
    }
    if (state_ != State::kRunning) {
      mu_.Await(absl::Condition(
          +[](State* state) { return *state == State::kStopped; }, &state_));
      return;
    }
    state_ = State::kStopping;
  }
  char byte = 0;
  ssize_t ignored = write(wake_pipe_[1], &byte, 1);
  (void)ignored;

  // NOT_SERVING for "" and every service; later SetServingStatus calls are ignored.
  server_->GetHealthCheckService()->Shutdown();
  log::Info("server stopping", {{"grace_ms", absl::ToInt64Milliseconds(options_.shutdown_grace)},
                                {"drain_timeout_ms", absl::ToInt64Milliseconds(options_.drain_timeout)}});
  absl::SleepFor(options_.shutdown_grace);
  // civetweb takes up to two seconds to stop: stop /metrics while the calls drain, not after.
  std::thread stop_metrics([this] { exposer_.reset(); });
  // No new calls from here; calls in flight get until the deadline, then are cancelled.
  absl::Notification drained;
  std::thread drain([this, &drained] {
    server_->Shutdown(absl::ToChronoTime(absl::Now() + options_.drain_timeout));
    drained.Notify();
  });
  // Health watches never finish by themselves and would hold the drain to its deadline. Cancel them, and again
  // until the drain is over, for any that slipped in before the server stopped taking calls.
  do {
    health_watches_->CancelAll();
  } while (!drained.WaitForNotificationWithTimeout(absl::Milliseconds(50)));
  drain.join();
  server_->Wait();
  stop_metrics.join();
  log::Info("server stopped");

  absl::MutexLock lock(&mu_);
  state_ = State::kStopped;
}

void Server::SetServing(bool serving) {
  absl::MutexLock lock(&mu_);
  if (state_ != State::kRunning) return;
  server_->GetHealthCheckService()->SetServingStatus(serving);
}

int RunServer(ServerOptions options, const std::vector<grpc::Service*>& services) {
  if (!options.service_name.empty()) log::SetService(options.service_name);
  Server server(std::move(options));
  for (grpc::Service* service : services) server.AddService(service);
  if (absl::Status status = server.Start(); !status.ok()) {
    log::Error("cannot start the server", {{"status", status.ToString()}});
    return 1;
  }
  server.Wait();
  return 0;
}

ServerOptions ServerOptionsFromFlags(const Config& config, std::string service_name,
                                     std::shared_ptr<prometheus::Registry> registry) {
  return {.service_name = std::move(service_name),
          .grpc_address = config.Get("grpc-address"),
          .metrics_address = config.Get("metrics-address"),
          .internal_token = config.Get("internal-token"),
          .shutdown_grace = config.DurationOrExit("shutdown-grace"),
          .drain_timeout = config.DurationOrExit("drain-timeout"),
          .registry = std::move(registry)};
}

}  // namespace ptd
