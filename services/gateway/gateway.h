#ifndef PTD_SERVICES_GATEWAY_GATEWAY_H_
#define PTD_SERVICES_GATEWAY_GATEWAY_H_

#include <google/protobuf/dynamic_message.h>
#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "libs/core/log.h"
#include "services/gateway/authenticator.h"
#include "services/gateway/backends.h"
#include "services/gateway/domain/route_table.h"
#include "services/gateway/domain/transcoder.h"
#include "services/gateway/http_server.h"
#include "services/gateway/rate_limiter.h"
#include "services/gateway/request_log.h"

// The HTTP handler of the gateway. For each request:
//   request id (X-Request-Id if usable, else a new one; echoed) -> CORS -> built-in endpoints (/healthz,
//   /readyz, /metrics, /openapi.json) -> route -> authentication (bearer JWT or X-API-Key; anonymous only
//   where the method allows it) -> rate limit (tenant and API key buckets, or the client address for anonymous
//   calls) -> JSON to protobuf -> the backend over gRPC with the caller's identity, the internal token, a
//   deadline and the request id -> protobuf to JSON, or the error mapped to HTTP.
// It records http_requests_total{route,method,code} and http_request_duration_seconds{route}, and writes one
// JSON log line per request.
namespace ptd::gateway {

struct GatewayOptions {
  TranscodeOptions transcode;
  absl::Duration backend_timeout = absl::Seconds(10);  // a shorter Grpc-Timeout header from the client wins
  std::string internal_token;
  std::vector<std::string> cors_origins;  // exact origins, or "*"; empty: no CORS headers
  RateLimit tenant_limit;
  RateLimit api_key_limit;
  RateLimit anonymous_limit;  // per client address, for methods that allow anonymous calls
  bool log_requests = true;
  log::Level log_level = log::Level::kInfo;  // request lines are info, or warn for 5xx
};

// What /readyz reports: every dependency and its state.
struct Readiness {
  bool ready = false;
  std::string json;  // {"ready": true, "checks": {"postgres": "ok", "redis": "ok", "127.0.0.1:50051": "ok"}}
};

class Gateway {
 public:
  // `rate_limiter` may be null (no limits). `message_factory` makes the request and response messages of
  // every route (generated classes where linked in, dynamic messages for descriptor sets loaded at start).
  Gateway(GatewayOptions options, const RouteTable& routes, google::protobuf::MessageFactory& message_factory,
          Backends& backends, Authenticator& authenticator, RateLimiter* rate_limiter,
          std::shared_ptr<prometheus::Registry> registry, std::string openapi_json,
          std::function<void()> before_metrics_scrape);

  void Handle(HttpRequest&& request, const Peer& peer, std::function<void(HttpResponse&&)> respond);
  // For requests the HTTP parser refused.
  HttpResponse Reject(int status, const std::string& message);

  void SetReadiness(Readiness readiness);

  // Writes the request log lines still buffered (they are written every 100 ms anyway).
  void FlushLog();

 private:
  struct Exchange;  // one request in flight
  struct Prototypes {
    const google::protobuf::Message* request = nullptr;
    const google::protobuf::Message* response = nullptr;
  };

  void Finish(std::shared_ptr<Exchange> exchange, HttpResponse response, std::string_view grpc_code = "");
  HttpResponse ErrorResponse(const Exchange& exchange, int http_status, const std::string& body);
  void AddCorsHeaders(const Exchange& exchange, HttpResponse& response) const;
  bool OriginAllowed(std::string_view origin) const;
  void CallBackend(std::shared_ptr<Exchange> exchange);

  GatewayOptions options_;
  const RouteTable& routes_;
  std::unordered_map<const Route*, Prototypes> prototypes_;
  Backends& backends_;
  Authenticator& authenticator_;
  RateLimiter* rate_limiter_;
  std::shared_ptr<prometheus::Registry> registry_;
  std::string openapi_json_;
  std::function<void()> before_metrics_scrape_;
  std::unique_ptr<RequestLog> request_log_;  // null when requests are not logged

  prometheus::Family<prometheus::Counter>& requests_;
  prometheus::Family<prometheus::Histogram>& duration_;
  prometheus::Counter& rate_limit_errors_;
  absl::Mutex metrics_mu_;
  // (route label, method, code) -> counter; route label -> histogram. Cached: Family::Add hashes labels.
  std::unordered_map<std::string, prometheus::Counter*> request_counters_ ABSL_GUARDED_BY(metrics_mu_);
  std::unordered_map<std::string, prometheus::Histogram*> duration_histograms_ ABSL_GUARDED_BY(metrics_mu_);

  absl::Mutex readiness_mu_;
  Readiness readiness_ ABSL_GUARDED_BY(readiness_mu_);
};

}  // namespace ptd::gateway

#endif  // PTD_SERVICES_GATEWAY_GATEWAY_H_
