#ifndef PTD_LIBS_SERVER_SERVER_H_
#define PTD_LIBS_SERVER_SERVER_H_

#include <grpcpp/server.h>
#include <prometheus/registry.h>

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace prometheus {
class Exposer;
}
namespace ptd {
class Config;
}
namespace ptd::server_internal {
class HealthWatches;
}

// The gRPC server every service runs. Besides the service's own handlers it serves
//   - grpc.health.v1.Health (gRPC's default service): SERVING for "" and for each service while running,
//     NOT_SERVING once stopping;
//   - server reflection (grpc.reflection.v1alpha), which can also describe grpc.health.v1.Health;
//   - Prometheus /metrics on a second port: grpc_server_started_total, grpc_server_handled_total (with
//     grpc_code) and the grpc_server_handling_seconds histogram, labelled by grpc_service, grpc_method, grpc_type,
//     plus whatever the service registers in registry().
// For every call it
//   - refuses it with UNAUTHENTICATED, before any handler runs, unless it carries x-ptd-internal-token equal to
//     ServerOptions::internal_token (health and reflection excepted); handlers never see the token;
//   - takes the request id from x-request-id or makes one up, makes it the handler thread's log request id
//     (ptd::log), and returns it in the response's initial metadata x-request-id;
//   - writes one log line: method, code, duration_ms, tenant, request_id (health and reflection at debug level).
// Handlers read the caller with CallerOf() (caller.h).
namespace ptd {

struct ServerOptions {
  std::string service_name;                  // RunServer makes it the log's "service"
  std::string grpc_address = "127.0.0.1:0";  // port 0: any free port, see grpc_port()
  std::string metrics_address;               // e.g. "127.0.0.1:9100"; empty = no /metrics
  std::string internal_token;                // required
  // After SIGTERM (or Shutdown()): how long health says NOT_SERVING while calls are still served, so that load
  // balancers notice before the port closes.
  absl::Duration shutdown_grace = absl::Seconds(0);
  // Then: how long in-flight calls may take to finish before they are cancelled. New calls are refused. A handler
  // that ignores cancellation (context->IsCancelled()) still holds the stop until it returns.
  absl::Duration drain_timeout = absl::Seconds(15);
  std::shared_ptr<prometheus::Registry> registry;  // created when null
  // Handler threads kept waiting for calls once their call is done. A synchronous handler blocks its thread
  // (on PostgreSQL, on a group commit), so a call that finds no idle thread starts one; gRPC's default (2)
  // then ends each such thread after its call, and under load the server spends more CPU creating and ending
  // threads than serving calls (measured on trading's spot orders, docs/benchmarks.md). Keeping as many as
  // there are calls in flight costs only their stacks while idle. 0: gRPC's default.
  int max_pollers = 64;
};

class Server {
 public:
  explicit Server(ServerOptions options);
  // Shuts down (as Shutdown()) if still running.
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Before Start(). Not owned; must outlive the Server. Synchronous services only (generated `Service` classes
  // without Async/Callback/Streamed variants): Start() refuses others.
  void AddService(grpc::Service* service);

  // For the service's own metrics, exposed on the same /metrics.
  prometheus::Registry& registry() { return *options_.registry; }

  // Binds both ports and starts serving. From then on SIGTERM and SIGINT stop the server gracefully (see
  // Shutdown()), whether or not someone is in Wait(). Fails for a missing internal token, a port that cannot be
  // bound, or an unsupported service.
  absl::Status Start();

  // The bound ports (0 before Start(); metrics 0 when not served).
  int grpc_port() const { return grpc_port_; }
  int metrics_port() const { return metrics_port_; }

  // After Start(): blocks until the server has stopped, after SIGTERM/SIGINT or a Shutdown() from another thread.
  void Wait();

  // Stops gracefully and returns when stopped: health NOT_SERVING for all services, shutdown_grace during which
  // calls are still served, then no new calls and up to drain_timeout for in-flight ones to finish (open health
  // Watch streams are ended with UNAVAILABLE). Idempotent; a concurrent call waits for the first one.
  void Shutdown();

  // Health of "" and every service, e.g. NOT_SERVING while a dependency is down. Ignored once stopping.
  void SetServing(bool serving);

 private:
  enum class State { kNew, kRunning, kStopping, kStopped };

  void WatchSignals(int signal_fd);

  ServerOptions options_;
  std::vector<grpc::Service*> services_;
  std::vector<std::string> service_names_;
  int grpc_port_ = 0;
  int metrics_port_ = 0;

  std::shared_ptr<server_internal::HealthWatches> health_watches_;
  std::unique_ptr<prometheus::Exposer> exposer_;
  std::unique_ptr<grpc::Server> server_;

  absl::Mutex mu_;
  State state_ ABSL_GUARDED_BY(mu_) = State::kNew;
  int wake_pipe_[2] = {-1, -1};  // written by Shutdown() to stop the signal watcher
  std::thread watcher_;
};

// For main(): sets the log's service name (call it before starting threads that log: ptd::log's settings are
// not synchronised), starts a Server with `services` and waits until it has stopped. Returns the exit code: 0
// after a graceful stop, 1 when the server could not start (logged).
int RunServer(ServerOptions options, const std::vector<grpc::Service*>& services);

// For main(): the options from the flags every service has — --grpc-address, --metrics-address,
// --internal-token, --shutdown-grace, --drain-timeout — with the service's name and metrics registry.
ServerOptions ServerOptionsFromFlags(const Config& config, std::string service_name,
                                     std::shared_ptr<prometheus::Registry> registry);

}  // namespace ptd

#endif  // PTD_LIBS_SERVER_SERVER_H_
