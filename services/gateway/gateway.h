#ifndef PTD_SERVICES_GATEWAY_GATEWAY_H_
#define PTD_SERVICES_GATEWAY_GATEWAY_H_

#include <google/protobuf/dynamic_message.h>
#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
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

// The HTTP handler of the gateway. For each request:
//   request id (X-Request-Id if usable, else a new one; echoed) -> CORS -> built-in endpoints (/healthz,
//   /readyz, /metrics, /openapi.json) -> route -> authentication (bearer JWT or X-API-Key; anonymous only
//   where the method allows it) -> rate limit (tenant and API key buckets, or the client address for anonymous
//   calls) -> JSON to protobuf -> the backend over gRPC with the caller's identity, the internal token, a
//   deadline and the request id -> protobuf to JSON, or the error mapped to HTTP.
// A server-streaming method answers 200 with a chunked body of newline-delimited JSON (application/x-ndjson),
// as grpc-gateway does: {"result": <message>} a line per message, each read from the backend only once the
// previous line was written; an error before the first message is an ordinary error response, one after it
// a last line {"error": <the error body>}. The client hanging up cancels the backend call.
// It records http_requests_total{route,method,code} and http_request_duration_seconds{route} (for a stream,
// when it ends), gateway_streams_in_flight{route} and gateway_stream_messages_total{route}, and writes one JSON
// log line per request (for a stream, when it ends, with the number of messages).
namespace ptd::gateway {

struct GatewayOptions {
  TranscodeOptions transcode;
  absl::Duration backend_timeout = absl::Seconds(10);  // a shorter Grpc-Timeout header from the client wins
  // The deadline of a server-streaming call instead (a shorter Grpc-Timeout wins): streams live long.
  absl::Duration max_stream_duration = absl::Hours(1);
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

  void Handle(HttpRequest&& request, const Peer& peer, HttpResponder responder);
  // For requests the HTTP parser refused.
  HttpResponse Reject(int status, const std::string& message);

  // Ends every stream (cancels its backend call; a client that got messages gets a last line UNAVAILABLE, one
  // still waiting for the first a 503) and answers new ones 503: before stopping, since some never end.
  void StopStreams();

  void SetReadiness(Readiness readiness);

  // Writes the log lines still buffered (libs/core/log writes them within 10 ms anyway).
  void FlushLog();

 private:
  struct Exchange;  // one request in flight
  struct Stream;    // one server-streaming call in flight
  struct Prototypes {
    const google::protobuf::Message* request = nullptr;
    const google::protobuf::Message* response = nullptr;
  };
  struct StreamMetrics {
    prometheus::Gauge* in_flight = nullptr;
    prometheus::Counter* messages = nullptr;
  };

  // The request's method, path and query (without '?'), viewed in its target.
  struct Target {
    std::string_view method;
    std::string_view path;
    std::string_view query;
  };
  // What a stage of Handle did with the request: answered it (it goes no further), or passed it on.
  enum class Stage { kAnswered, kPassed };

  // The stages of Handle, in their order. Receive takes the request in (its start, request id and origin).
  std::shared_ptr<Exchange> Receive(HttpRequest&& request, const Peer& peer, HttpResponder responder);
  static Target TargetOf(const HttpRequest& request);
  // A CORS preflight (OPTIONS with Access-Control-Request-Method) is answered 204, with the allowances when the
  // origin is allowed.
  Stage CorsPreflight(const std::shared_ptr<Exchange>& exchange, const Target& target);
  // GET /healthz, /readyz, /metrics, /openapi.json.
  Stage BuiltInEndpoint(const std::shared_ptr<Exchange>& exchange, const Target& target);
  // The exchange's route from `lookup`; without one, 405 (with Allow) when the path has other methods, else 404.
  Stage MatchRoute(const std::shared_ptr<Exchange>& exchange, const RouteTable::Lookup& lookup, const Target& target);
  // Who is calling (bearer JWT or X-API-Key): 401 with WWW-Authenticate for a bad credential, or none where the
  // route does not allow anonymous calls; 503 when the credential could not be checked.
  Stage Authenticate(const std::shared_ptr<Exchange>& exchange);
  // The tenant's and API key's buckets, or the client address's for an anonymous call: 429 with Retry-After
  // when empty. Fails open when Redis cannot be asked (counted in gateway_rate_limit_errors_total).
  Stage ApplyRateLimits(const std::shared_ptr<Exchange>& exchange);
  // JSON -> protobuf: the exchange's request message from the path variables, the query and the body; 415 for
  // a body that is not JSON, 400 for one (or a query) that does not fit the message.
  Stage TranscodeRequest(const std::shared_ptr<Exchange>& exchange, const RouteTable::Match& match,
                         std::string_view query);

  // Answers `status` as the error body with `http_status`.
  void Fail(const std::shared_ptr<Exchange>& exchange, int http_status, const absl::Status& status);
  void Finish(std::shared_ptr<Exchange> exchange, HttpResponse response, std::string_view grpc_code = "");
  // The headers every answer to a request carries: X-Request-Id, Cache-Control on routes, CORS.
  void AddCommonHeaders(const Exchange& exchange, HttpResponse& response) const;
  // Counts the answer and writes its log line; `messages` of a stream, or -1.
  void Record(const Exchange& exchange, int status, std::string_view grpc_code, int64_t messages = -1);
  HttpResponse ErrorResponse(const Exchange& exchange, int http_status, const std::string& body);
  void AddCorsHeaders(const Exchange& exchange, HttpResponse& response) const;
  bool OriginAllowed(std::string_view origin) const;
  // Sets the deadline (`limit`, or the client's shorter Grpc-Timeout) and the caller's metadata.
  void PrepareContext(const Exchange& exchange, absl::Duration limit, grpc::ClientContext& context) const;
  void CallBackend(std::shared_ptr<Exchange> exchange);
  void CallStream(std::shared_ptr<Exchange> exchange, const Backends::Backend& backend);
  void OnStreamMessage(const std::shared_ptr<Stream>& stream, grpc::ByteBuffer& buffer);
  void EndStream(const std::shared_ptr<Stream>& stream, const grpc::Status& status);

  GatewayOptions options_;
  const RouteTable& routes_;
  std::unordered_map<const Route*, Prototypes> prototypes_;
  std::unordered_map<const Route*, StreamMetrics> stream_metrics_;  // of the server-streaming routes
  Backends& backends_;
  Authenticator& authenticator_;
  RateLimiter* rate_limiter_;
  std::shared_ptr<prometheus::Registry> registry_;
  std::string openapi_json_;
  std::function<void()> before_metrics_scrape_;
  bool log_requests_ = false;  // a line per request (RequestLog)

  prometheus::Family<prometheus::Counter>& requests_;
  prometheus::Family<prometheus::Histogram>& duration_;
  prometheus::Counter& rate_limit_errors_;
  prometheus::Family<prometheus::Gauge>& streams_in_flight_;
  prometheus::Family<prometheus::Counter>& stream_messages_;
  absl::Mutex metrics_mu_;
  // (route label, method, code) -> counter; route label -> histogram. Cached: Family::Add hashes labels.
  std::unordered_map<std::string, prometheus::Counter*> request_counters_ ABSL_GUARDED_BY(metrics_mu_);
  std::unordered_map<std::string, prometheus::Histogram*> duration_histograms_ ABSL_GUARDED_BY(metrics_mu_);

  absl::Mutex streams_mu_;
  std::unordered_set<Stream*> streams_ ABSL_GUARDED_BY(streams_mu_);
  bool streams_stopped_ ABSL_GUARDED_BY(streams_mu_) = false;

  absl::Mutex readiness_mu_;
  Readiness readiness_ ABSL_GUARDED_BY(readiness_mu_);
};

}  // namespace ptd::gateway

#endif  // PTD_SERVICES_GATEWAY_GATEWAY_H_
