#include "services/gateway/gateway.h"

#include <grpcpp/impl/codegen/proto_utils.h>
#include <grpcpp/support/proto_buffer_reader.h>
#include <grpcpp/support/proto_buffer_writer.h>
#include <prometheus/text_serializer.h>

#include <chrono>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "libs/core/ids.h"
#include "libs/core/log.h"
#include "libs/server/caller.h"
#include "services/gateway/domain/errors.h"
#include "services/gateway/request_log.h"

namespace ptd::gateway {

namespace http = boost::beast::http;

struct Gateway::Exchange {
  HttpRequest request;
  Peer peer;
  HttpResponder responder;
  std::chrono::steady_clock::time_point start;
  std::string request_id;
  std::string origin;
  std::string route_label = "unmatched";
  const Route* route = nullptr;
  std::optional<Identity> identity;
  std::unique_ptr<google::protobuf::Message> message;  // the request, then the response
  grpc::ClientContext context;
  grpc::ByteBuffer request_buffer;
  grpc::ByteBuffer response_buffer;
};

// The handlers below run one after another, never at once: a message (completion thread), its line written
// (connection thread) and the next read asked for, ..., the end (completion thread). Only the client's hanging
// up and StopStreams come at any time, and they only set a flag and cancel the call.
struct Gateway::Stream {
  std::shared_ptr<Exchange> exchange;
  std::shared_ptr<BackendStream> backend;
  std::shared_ptr<HttpResponseStream> body;
  std::unique_ptr<google::protobuf::Message> message;  // each message in turn
  StreamMetrics metrics;
  bool began = false;  // the 200 and its headers are on their way
  int64_t messages = 0;
  absl::Status failure;  // the gateway's own reason to end the stream early
  int failure_http_status = 500;
  std::atomic<bool> client_gone{false};
  std::atomic<bool> stopping{false};
};

namespace {

constexpr char kJson[] = "application/json";
constexpr char kNdjson[] = "application/x-ndjson";

// 1 to 128 characters of [A-Za-z0-9._:-], as the services accept (libs/server).
bool IsUsableRequestId(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == ':' || c == '-';
  });
}

// gRPC's timeout header syntax: up to 8 digits and a unit (H, M, S, m, u, n). nullopt when malformed.
std::optional<absl::Duration> ParseGrpcTimeout(std::string_view text) {
  if (text.size() < 2 || text.size() > 9) return std::nullopt;
  int64_t value = 0;
  if (!absl::SimpleAtoi(absl::string_view(text.data(), text.size() - 1), &value) || value < 0) return std::nullopt;
  switch (text.back()) {
    case 'H':
      return absl::Hours(value);
    case 'M':
      return absl::Minutes(value);
    case 'S':
      return absl::Seconds(value);
    case 'm':
      return absl::Milliseconds(value);
    case 'u':
      return absl::Microseconds(value);
    case 'n':
      return absl::Nanoseconds(value);
    default:
      return std::nullopt;
  }
}

std::string_view HeaderOf(const HttpRequest& request, http::field field) {
  auto it = request.find(field);
  if (it == request.end()) return {};
  return std::string_view(it->value().data(), it->value().size());
}

std::string_view HeaderOf(const HttpRequest& request, std::string_view name) {
  auto it = request.find(boost::beast::string_view(name.data(), name.size()));
  if (it == request.end()) return {};
  return std::string_view(it->value().data(), it->value().size());
}

// A 200 with `body`, for the built-in endpoints.
HttpResponse OkResponse(unsigned version, std::string body, std::string_view content_type = kJson) {
  HttpResponse response{http::status::ok, version};
  response.set(http::field::content_type, boost::beast::string_view(content_type.data(), content_type.size()));
  response.body() = std::move(body);
  return response;
}

}  // namespace

Gateway::Gateway(GatewayOptions options, const RouteTable& routes, google::protobuf::MessageFactory& message_factory,
                 Backends& backends, Authenticator& authenticator, RateLimiter* rate_limiter,
                 std::shared_ptr<prometheus::Registry> registry, std::string openapi_json,
                 std::function<void()> before_metrics_scrape)
    : options_(std::move(options)),
      routes_(routes),
      backends_(backends),
      authenticator_(authenticator),
      rate_limiter_(rate_limiter),
      registry_(std::move(registry)),
      openapi_json_(std::move(openapi_json)),
      before_metrics_scrape_(std::move(before_metrics_scrape)),
      requests_(prometheus::BuildCounter()
                    .Name("http_requests_total")
                    .Help("HTTP requests answered, by route template, method and status code")
                    .Register(*registry_)),
      duration_(prometheus::BuildHistogram()
                    .Name("http_request_duration_seconds")
                    .Help("Time from a complete request to its response being handed to the connection, by route")
                    .Register(*registry_)),
      rate_limit_errors_(prometheus::BuildCounter()
                             .Name("gateway_rate_limit_errors_total")
                             .Help("Requests let through because Redis could not be asked about the rate limit")
                             .Register(*registry_)
                             .Add({})),
      streams_in_flight_(prometheus::BuildGauge()
                             .Name("gateway_streams_in_flight")
                             .Help("Server-streaming calls open now, by route template")
                             .Register(*registry_)),
      stream_messages_(prometheus::BuildCounter()
                           .Name("gateway_stream_messages_total")
                           .Help("Messages of server-streaming calls written to clients, by route template")
                           .Register(*registry_)) {
  log_requests_ = options_.log_requests && options_.log_level <= log::Level::kWarn;
  for (const auto& route : routes_.routes()) {
    prototypes_[route.get()] = {message_factory.GetPrototype(route->method->input_type()),
                                message_factory.GetPrototype(route->method->output_type())};
    if (route->server_streaming) {
      stream_metrics_[route.get()] = {&streams_in_flight_.Add({{"route", route->path.text()}}),
                                      &stream_messages_.Add({{"route", route->path.text()}})};
    }
  }
}

void Gateway::FlushLog() { log::Flush(); }

void Gateway::SetReadiness(Readiness readiness) {
  absl::MutexLock lock(&readiness_mu_);
  readiness_ = std::move(readiness);
}

bool Gateway::OriginAllowed(std::string_view origin) const {
  for (const std::string& allowed : options_.cors_origins) {
    if (allowed == "*" || allowed == origin) return true;
  }
  return false;
}

void Gateway::AddCorsHeaders(const Exchange& exchange, HttpResponse& response) const {
  if (exchange.origin.empty() || !OriginAllowed(exchange.origin)) return;
  response.set(http::field::access_control_allow_origin, exchange.origin);
  response.set(http::field::vary, "Origin");
  response.set(http::field::access_control_expose_headers, "X-Request-Id, Retry-After");
}

HttpResponse Gateway::ErrorResponse(const Exchange& exchange, int http_status, const std::string& body) {
  HttpResponse response{static_cast<http::status>(http_status), exchange.request.version()};
  response.set(http::field::content_type, kJson);
  response.body() = body;
  return response;
}

HttpResponse Gateway::Reject(int status, const std::string& message) {
  absl::StatusCode code =
      status == 413 || status == 431 ? absl::StatusCode::kResourceExhausted : absl::StatusCode::kInvalidArgument;
  HttpResponse response{static_cast<http::status>(status), 11};
  response.set(http::field::content_type, kJson);
  std::string request_id = NewId();
  response.set("X-Request-Id", request_id);
  response.body() = ErrorBody(code, message, "");
  std::string code_text = std::to_string(status);
  {
    absl::MutexLock lock(&metrics_mu_);
    requests_.Add({{"route", "unparsed"}, {"method", ""}, {"code", code_text}}).Increment();
  }
  if (options_.log_requests) {
    log::ScopedRequestId scoped(request_id);
    log::Info("http request refused", {{"status", status}, {"error", message}});
  }
  return response;
}

void Gateway::AddCommonHeaders(const Exchange& exchange, HttpResponse& response) const {
  response.set("X-Request-Id", exchange.request_id);
  if (exchange.route != nullptr) response.set(http::field::cache_control, "no-store");
  AddCorsHeaders(exchange, response);
}

void Gateway::Record(const Exchange& exchange, int status, std::string_view grpc_code, int64_t messages) {
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - exchange.start).count();
  std::string method(exchange.request.method_string().data(), exchange.request.method_string().size());
  {
    std::string counter_key = absl::StrCat(exchange.route_label, "|", method, "|", status);
    absl::MutexLock lock(&metrics_mu_);
    prometheus::Counter*& counter = request_counters_[counter_key];
    if (counter == nullptr) {
      counter = &requests_.Add({{"route", exchange.route_label}, {"method", method}, {"code", std::to_string(status)}});
    }
    counter->Increment();
    prometheus::Histogram*& histogram = duration_histograms_[exchange.route_label];
    if (histogram == nullptr) {
      histogram = &duration_.Add({{"route", exchange.route_label}},
                                 prometheus::Histogram::BucketBoundaries{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                                                         0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10});
    }
    histogram->Observe(seconds);
  }
  const bool warn = status >= 500;
  if (log_requests_ && (warn || options_.log_level <= log::Level::kInfo)) {
    std::string_view target(exchange.request.target().data(), exchange.request.target().size());
    RequestLog::Entry entry{.warn = warn,
                            .request_id = exchange.request_id,
                            .method = method,
                            .path = target.substr(0, target.find('?')),
                            .route = exchange.route_label,
                            .status = status,
                            .duration_ms = seconds * 1000,
                            .remote = exchange.peer.address,
                            .grpc_code = grpc_code,
                            .messages = messages};
    if (exchange.identity) {
      entry.tenant = &exchange.identity->tenant;
      entry.subject = &exchange.identity->subject;
    }
    RequestLog::Add(entry);
  }
}

void Gateway::Finish(std::shared_ptr<Exchange> exchange, HttpResponse response, std::string_view grpc_code) {
  AddCommonHeaders(*exchange, response);
  Record(*exchange, static_cast<int>(response.result_int()), grpc_code);
  exchange->responder.Respond(std::move(response));
}

void Gateway::Handle(HttpRequest&& request, const Peer& peer, HttpResponder responder) {
  std::shared_ptr<Exchange> exchange = Receive(std::move(request), peer, std::move(responder));
  const Target target = TargetOf(exchange->request);
  if (CorsPreflight(exchange, target) == Stage::kAnswered) return;
  if (BuiltInEndpoint(exchange, target) == Stage::kAnswered) return;
  const RouteTable::Lookup lookup = routes_.Find(target.method, target.path);
  if (MatchRoute(exchange, lookup, target) == Stage::kAnswered) return;
  if (Authenticate(exchange) == Stage::kAnswered) return;
  if (ApplyRateLimits(exchange) == Stage::kAnswered) return;
  if (TranscodeRequest(exchange, *lookup.match, target.query) == Stage::kAnswered) return;
  CallBackend(std::move(exchange));
}

std::shared_ptr<Gateway::Exchange> Gateway::Receive(HttpRequest&& request, const Peer& peer, HttpResponder responder) {
  auto exchange = std::make_shared<Exchange>();
  exchange->start = std::chrono::steady_clock::now();
  exchange->request = std::move(request);
  exchange->peer = peer;
  exchange->responder = std::move(responder);
  const HttpRequest& req = exchange->request;
  std::string_view given_id = HeaderOf(req, "x-request-id");
  exchange->request_id = IsUsableRequestId(given_id) ? std::string(given_id) : NewId();
  exchange->origin = std::string(HeaderOf(req, http::field::origin));
  return exchange;
}

Gateway::Target Gateway::TargetOf(const HttpRequest& request) {
  std::string_view target(request.target().data(), request.target().size());
  size_t question = target.find('?');
  return {.method = std::string_view(request.method_string().data(), request.method_string().size()),
          .path = target.substr(0, question),
          .query = question == std::string_view::npos ? std::string_view() : target.substr(question + 1)};
}

void Gateway::Fail(const std::shared_ptr<Exchange>& exchange, int http_status, const absl::Status& status) {
  Finish(exchange, ErrorResponse(*exchange, http_status, ErrorBody(status)));
}

Gateway::Stage Gateway::CorsPreflight(const std::shared_ptr<Exchange>& exchange, const Target& target) {
  const HttpRequest& req = exchange->request;
  if (target.method != "OPTIONS" || HeaderOf(req, http::field::access_control_request_method).empty()) {
    return Stage::kPassed;
  }
  exchange->route_label = "preflight";
  HttpResponse response{http::status::no_content, req.version()};
  if (OriginAllowed(exchange->origin)) {
    response.set(http::field::access_control_allow_methods, "GET, POST, PUT, PATCH, DELETE, OPTIONS");
    response.set(http::field::access_control_allow_headers,
                 "Authorization, Content-Type, X-API-Key, X-Request-Id, Grpc-Timeout");
    response.set(http::field::access_control_max_age, "600");
  }
  Finish(exchange, std::move(response));
  return Stage::kAnswered;
}

Gateway::Stage Gateway::BuiltInEndpoint(const std::shared_ptr<Exchange>& exchange, const Target& target) {
  if (target.method != "GET") return Stage::kPassed;
  const unsigned version = exchange->request.version();
  if (target.path == "/healthz") {
    exchange->route_label = "/healthz";
    Finish(exchange, OkResponse(version, R"({"status":"ok"})"));
    return Stage::kAnswered;
  }
  if (target.path == "/readyz") {
    exchange->route_label = "/readyz";
    Readiness readiness;
    {
      absl::MutexLock lock(&readiness_mu_);
      readiness = readiness_;
    }
    HttpResponse response = OkResponse(version, readiness.json.empty() ? R"({"ready":false})" : readiness.json);
    if (!readiness.ready) response.result(http::status::service_unavailable);
    Finish(exchange, std::move(response));
    return Stage::kAnswered;
  }
  if (target.path == "/metrics") {
    exchange->route_label = "/metrics";
    if (before_metrics_scrape_) before_metrics_scrape_();
    Finish(exchange, OkResponse(version, prometheus::TextSerializer().Serialize(registry_->Collect()),
                                "text/plain; version=0.0.4"));
    return Stage::kAnswered;
  }
  if (target.path == "/openapi.json") {
    exchange->route_label = "/openapi.json";
    Finish(exchange, OkResponse(version, openapi_json_));
    return Stage::kAnswered;
  }
  return Stage::kPassed;
}

Gateway::Stage Gateway::MatchRoute(const std::shared_ptr<Exchange>& exchange, const RouteTable::Lookup& lookup,
                                   const Target& target) {
  if (!lookup.match) {
    const std::string method(target.method);
    const std::string path(target.path);
    if (lookup.path_known) {
      HttpResponse response = ErrorResponse(
          *exchange, 405, ErrorBody(absl::UnimplementedError(absl::StrCat(method, " is not allowed on ", path))));
      response.set(http::field::allow, absl::StrJoin(lookup.allowed_methods, ", "));
      Finish(exchange, std::move(response));
    } else {
      Fail(exchange, 404, absl::NotFoundError(absl::StrCat("no API at ", method, " ", path)));
    }
    return Stage::kAnswered;
  }
  const Route& route = *lookup.match->route;
  exchange->route = &route;
  exchange->route_label = route.path.text();
  return Stage::kPassed;
}

Gateway::Stage Gateway::Authenticate(const std::shared_ptr<Exchange>& exchange) {
  const HttpRequest& req = exchange->request;
  auto unauthorized = [&](const absl::Status& status) {
    HttpResponse response = ErrorResponse(*exchange, 401, ErrorBody(status));
    response.set(http::field::www_authenticate, "Bearer");
    Finish(exchange, std::move(response));
    return Stage::kAnswered;
  };
  absl::StatusOr<std::optional<Identity>> identity =
      authenticator_.Authenticate(HeaderOf(req, http::field::authorization), HeaderOf(req, "x-api-key"));
  if (!identity.ok()) {
    if (identity.status().code() != absl::StatusCode::kUnauthenticated) {
      Fail(exchange, 503, identity.status());
      return Stage::kAnswered;
    }
    return unauthorized(identity.status());
  }
  exchange->identity = *std::move(identity);
  if (!exchange->identity && !exchange->route->allow_anonymous) {
    return unauthorized(absl::UnauthenticatedError("send an access token (Authorization: Bearer ...) or an X-API-Key"));
  }
  return Stage::kPassed;
}

Gateway::Stage Gateway::ApplyRateLimits(const std::shared_ptr<Exchange>& exchange) {
  if (rate_limiter_ == nullptr) return Stage::kPassed;
  std::vector<Bucket> buckets;
  if (exchange->identity) {
    const Identity& who = *exchange->identity;
    // One hash tag per tenant keeps a request's buckets in one Redis Cluster slot.
    buckets.push_back({absl::StrCat("ptd:gateway:rate:{", who.tenant, "}:tenant"), options_.tenant_limit});
    if (!who.api_key_id.empty()) {
      buckets.push_back(
          {absl::StrCat("ptd:gateway:rate:{", who.tenant, "}:key:", who.api_key_id), options_.api_key_limit});
    }
  } else {
    buckets.push_back({absl::StrCat("ptd:gateway:rate:{ip:", exchange->peer.address, "}"), options_.anonymous_limit});
  }
  absl::StatusOr<RateDecision> decision = rate_limiter_->Take(buckets);
  if (!decision.ok()) {
    // Fail open: losing Redis must not take the API down; the limit is protection, not accounting.
    rate_limit_errors_.Increment();
    return Stage::kPassed;
  }
  if (decision->allowed) return Stage::kPassed;
  int64_t seconds = std::max<int64_t>(1, absl::ToInt64Seconds(absl::Ceil(decision->retry_after, absl::Seconds(1))));
  HttpResponse response =
      ErrorResponse(*exchange, 429, ErrorBody(absl::ResourceExhaustedError("rate limit exceeded; retry later")));
  response.set(http::field::retry_after, std::to_string(seconds));
  Finish(exchange, std::move(response));
  return Stage::kAnswered;
}

Gateway::Stage Gateway::TranscodeRequest(const std::shared_ptr<Exchange>& exchange, const RouteTable::Match& match,
                                         std::string_view query) {
  const HttpRequest& req = exchange->request;
  if (!req.body().empty()) {
    std::string_view content_type = HeaderOf(req, http::field::content_type);
    if (!content_type.empty() &&
        !absl::StartsWithIgnoreCase(absl::string_view(content_type.data(), content_type.size()), "application/json")) {
      Fail(exchange, 415, absl::InvalidArgumentError("the body must be JSON (Content-Type: application/json)"));
      return Stage::kAnswered;
    }
  }
  exchange->message.reset(prototypes_.at(match.route).request->New());
  if (absl::Status s = BuildRequest(match, query, req.body(), options_.transcode, exchange->message.get()); !s.ok()) {
    Fail(exchange, 400, s);
    return Stage::kAnswered;
  }
  return Stage::kPassed;
}

void Gateway::PrepareContext(const Exchange& exchange, absl::Duration limit, grpc::ClientContext& context) const {
  absl::Duration timeout = limit;
  if (auto client = ParseGrpcTimeout(HeaderOf(exchange.request, "grpc-timeout")); client && *client < timeout) {
    timeout = *client;
  }
  context.set_deadline(std::chrono::system_clock::now() + absl::ToChronoNanoseconds(timeout));
  Caller caller;
  caller.request_id = exchange.request_id;
  if (exchange.identity) {
    caller.tenant_id = exchange.identity->tenant;
    caller.subject = exchange.identity->subject;
    caller.roles = exchange.identity->roles;
  }
  AttachCaller(context, caller, options_.internal_token);
}

void Gateway::CallBackend(std::shared_ptr<Exchange> exchange) {
  const Route& route = *exchange->route;
  const Backends::Backend* backend = backends_.For(route.package);
  if (backend == nullptr) {
    return Finish(
        exchange,
        ErrorResponse(*exchange, 503,
                      ErrorBody(absl::UnavailableError(absl::StrCat("no backend is configured for ", route.package)))));
  }
  if (route.server_streaming) return CallStream(std::move(exchange), *backend);
  PrepareContext(*exchange, options_.backend_timeout, exchange->context);

  bool own_buffer = false;
  grpc::Status serialized = grpc::SerializationTraits<google::protobuf::Message>::Serialize(
      *exchange->message, &exchange->request_buffer, &own_buffer);
  if (!serialized.ok()) {
    return Finish(exchange,
                  ErrorResponse(*exchange, 500, ErrorBody(absl::InternalError("cannot serialize the request"))));
  }
  Exchange* raw = exchange.get();
  backends_.Call(*backend, &raw->context, route.grpc_path, raw->request_buffer, &raw->response_buffer,
                 [this, exchange = std::move(exchange)](grpc::Status status) mutable {
                   const absl::StatusCode code = static_cast<absl::StatusCode>(status.error_code());
                   std::string_view code_name = CodeName(code);
                   if (!status.ok()) {
                     return Finish(exchange,
                                   ErrorResponse(*exchange, HttpStatusOf(code),
                                                 ErrorBody(code, status.error_message(), status.error_details())),
                                   code_name);
                   }
                   const Route& route = *exchange->route;
                   exchange->message.reset(prototypes_.at(&route).response->New());
                   grpc::Status parsed = grpc::SerializationTraits<google::protobuf::Message>::Deserialize(
                       &exchange->response_buffer, exchange->message.get());
                   if (!parsed.ok()) {
                     return Finish(
                         exchange,
                         ErrorResponse(*exchange, 502,
                                       ErrorBody(absl::InternalError("the service's response could not be parsed"))),
                         code_name);
                   }
                   absl::StatusOr<std::string> json = RenderResponse(route, *exchange->message, options_.transcode);
                   if (!json.ok())
                     return Finish(exchange, ErrorResponse(*exchange, 500, ErrorBody(json.status())), code_name);
                   HttpResponse response{http::status::ok, exchange->request.version()};
                   response.set(http::field::content_type, kJson);
                   response.body() = *std::move(json);
                   Finish(exchange, std::move(response), code_name);
                 });
}

void Gateway::CallStream(std::shared_ptr<Exchange> exchange, const Backends::Backend& backend) {
  const Route& route = *exchange->route;
  auto stream = std::make_shared<Stream>();
  stream->backend = std::make_shared<BackendStream>();
  // A stream lives long (the trade tape runs until the client hangs up), so --max-stream-duration bounds it,
  // not --backend-timeout; a shorter Grpc-Timeout wins (it is how long a WatchLive watches).
  PrepareContext(*exchange, options_.max_stream_duration, stream->backend->context());
  grpc::ByteBuffer request;
  bool own_buffer = false;
  if (!grpc::SerializationTraits<google::protobuf::Message>::Serialize(*exchange->message, &request, &own_buffer)
           .ok()) {
    return Finish(exchange,
                  ErrorResponse(*exchange, 500, ErrorBody(absl::InternalError("cannot serialize the request"))));
  }
  exchange->message.reset();
  stream->message.reset(prototypes_.at(&route).response->New());
  stream->metrics = stream_metrics_.at(&route);
  {
    absl::MutexLock lock(&streams_mu_);
    if (streams_stopped_) {
      return Finish(exchange, ErrorResponse(*exchange, 503,
                                            ErrorBody(absl::UnavailableError("the gateway is stopping; call again"))));
    }
    streams_.insert(stream.get());
  }
  stream->metrics.in_flight->Increment();
  std::weak_ptr<Stream> weak = stream;
  stream->body = exchange->responder.OpenStream([weak] {
    if (std::shared_ptr<Stream> s = weak.lock()) {
      s->client_gone = true;
      s->backend->Cancel();
    }
  });
  stream->exchange = std::move(exchange);
  backends_.StartStream(backend, stream->backend, route.grpc_path, std::move(request),
                        {.on_message = [this, stream](grpc::ByteBuffer& message) { OnStreamMessage(stream, message); },
                         .on_finish = [this, stream](const grpc::Status& status) { EndStream(stream, status); }});
}

void Gateway::OnStreamMessage(const std::shared_ptr<Stream>& stream, grpc::ByteBuffer& buffer) {
  const Exchange& exchange = *stream->exchange;
  stream->message->Clear();
  absl::StatusOr<std::string> json = absl::InternalError("the service's response could not be parsed");
  if (grpc::SerializationTraits<google::protobuf::Message>::Deserialize(&buffer, stream->message.get()).ok()) {
    json = RenderResponse(*exchange.route, *stream->message, options_.transcode);
  } else {
    stream->failure_http_status = 502;
  }
  if (!json.ok()) {
    // Ends the stream: EndStream reports this instead of the cancellation.
    stream->failure = json.status();
    stream->backend->Cancel();
    stream->backend->Next();
    return;
  }
  if (!stream->began) {
    stream->began = true;
    HttpResponse head{http::status::ok, exchange.request.version()};
    head.set(http::field::content_type, kNdjson);
    head.set("X-Accel-Buffering", "no");  // a proxy (nginx) in front must pass each line on at once
    AddCommonHeaders(exchange, head);
    stream->body->Begin(std::move(head));
  }
  std::string line;
  line.reserve(json->size() + 12);
  line.append("{\"result\":").append(*json).append("}\n");
  // Backpressure: the next message is read only once this line is in the socket.
  stream->body->Write(std::move(line), [stream](bool written) {
    if (written) {
      ++stream->messages;
      stream->metrics.messages->Increment();
    } else {
      stream->client_gone = true;
      stream->backend->Cancel();
    }
    stream->backend->Next();
  });
}

void Gateway::EndStream(const std::shared_ptr<Stream>& stream, const grpc::Status& status) {
  {
    absl::MutexLock lock(&streams_mu_);
    streams_.erase(stream.get());
  }
  stream->metrics.in_flight->Decrement();
  const Exchange& exchange = *stream->exchange;
  auto code = static_cast<absl::StatusCode>(status.error_code());
  std::string message = status.error_message();
  std::string details = status.error_details();
  int error_http_status = HttpStatusOf(code);
  if (!stream->failure.ok()) {
    code = stream->failure.code();
    message = std::string(stream->failure.message());
    details.clear();
    error_http_status = stream->failure_http_status;
  } else if (stream->stopping && code == absl::StatusCode::kCancelled) {
    code = absl::StatusCode::kUnavailable;
    message = "the gateway is stopping; call again";
    details.clear();
    error_http_status = 503;
  }
  const std::string_view code_name = CodeName(code);

  if (stream->client_gone) {
    // Nobody is listening: 499 (client closed request) unless the 200 had been sent.
    Record(exchange, stream->began ? 200 : 499, code_name, stream->messages);
    return stream->body->End();
  }
  if (code == absl::StatusCode::kOk) {
    if (!stream->began) {  // a stream without messages: an empty body
      HttpResponse head{http::status::ok, exchange.request.version()};
      head.set(http::field::content_type, kNdjson);
      AddCommonHeaders(exchange, head);
      stream->body->Begin(std::move(head));
    }
    Record(exchange, 200, code_name, stream->messages);
    return stream->body->End();
  }
  std::string error = ErrorBody(code, message, details);
  if (!stream->began) {
    // Nothing was sent yet: the error answers as it would a unary call.
    HttpResponse response = ErrorResponse(exchange, error_http_status, error);
    AddCommonHeaders(exchange, response);
    Record(exchange, error_http_status, code_name, stream->messages);
    return stream->body->Respond(std::move(response));
  }
  stream->body->Write(absl::StrCat("{\"error\":", error, "}\n"), [](bool) {});
  Record(exchange, 200, code_name, stream->messages);
  stream->body->End();
}

void Gateway::StopStreams() {
  absl::MutexLock lock(&streams_mu_);
  streams_stopped_ = true;
  for (Stream* stream : streams_) {
    stream->stopping = true;
    stream->backend->Cancel();
  }
}

}  // namespace ptd::gateway
