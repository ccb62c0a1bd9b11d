// ptd-gateway: the single door for apps. Flags -> config -> identity service, route table, HTTP server.
#include <google/protobuf/dynamic_message.h>
#include <prometheus/registry.h>

#include <iostream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "libs/core/config.h"
#include "libs/core/log.h"
#include "libs/pg/migrate.h"
#include "libs/pg/pool.h"
#include "libs/redis/client.h"
#include "libs/server/server.h"
#include "services/gateway/authenticator.h"
#include "services/gateway/backends.h"
#include "services/gateway/descriptors.h"
#include "services/gateway/domain/openapi.h"
#include "services/gateway/domain/route_table.h"
#include "services/gateway/gateway.h"
#include "services/gateway/http_server.h"
#include "services/gateway/identity_service.h"
#include "services/gateway/process_metrics.h"
#include "services/gateway/rate_limiter.h"
#include "services/gateway/readiness.h"

namespace {

std::vector<std::string> SplitList(const std::string& text) {
  std::vector<std::string> out;
  for (absl::string_view part : absl::StrSplit(text, ',', absl::SkipWhitespace())) {
    out.emplace_back(absl::StripAsciiWhitespace(part));
  }
  return out;
}

ptd::gateway::RateLimit RateLimitOrExit(const ptd::Config& config, std::string_view name) {
  absl::StatusOr<ptd::gateway::RateLimit> limit = ptd::gateway::ParseRateLimit(config.Get(name));
  if (!limit.ok()) {
    std::cerr << "--" << name << ": " << limit.status().message() << "\n";
    std::exit(2);
  }
  return *limit;
}

}  // namespace

int main(int argc, char** argv) {
  // Debian's Abseil checks every Mutex acquisition for lock-order cycles (a debug aid that costs on each lock).
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  ptd::Config config(
      "ptd-gateway",
      "PTDCloud gateway: HTTP/JSON for apps onto every service's gRPC API (from the google.api.http annotations), "
      "identity (enterprises, users, API keys, tokens), rate limits, OpenAPI.",
      {{"http-address", "127.0.0.1:8080", "host:port to serve HTTP (or HTTPS) on"},
       {"http-threads", "2", "threads serving HTTP connections, each with its own event loop (one per core is plenty)"},
       {"grpc-address", "127.0.0.1:50050", "host:port to serve ptd.gateway.v1.IdentityService over gRPC on"},
       {"metrics-address", "", "host:port for a separate Prometheus /metrics; the HTTP port serves /metrics anyway"},
       {"backends", "", "comma-separated package=host:port, e.g. ptd.trading.v1=127.0.0.1:50051"},
       {"backend-channels", "2", "gRPC connections to each backend address"},
       {"backend-threads", "1", "threads completing backend calls (and writing their responses)"},
       {"backend-timeout", "10s", "deadline of a backend call (a shorter Grpc-Timeout request header wins)"},
       {"max-stream-duration", "1h",
        "deadline of a server-streaming call (e.g. the trade tape), instead of --backend-timeout; a shorter "
        "Grpc-Timeout request header wins"},
       {"descriptor-sets", "", "comma-separated FileDescriptorSet files with more services to serve"},
       {"pg-url", "postgresql://ptd@127.0.0.1:5432/postgres", "PostgreSQL connection URL"},
       {"pg-schema", "gateway", "PostgreSQL schema owned by the gateway"},
       {"pg-pool-size", "8", "most PostgreSQL connections held"},
       {"redis-url", "redis://127.0.0.1:6379", "Redis URL for the rate-limit buckets"},
       {"internal-token", "", "shared credential for calls to services (x-ptd-internal-token); required"},
       {"migrations-dir", "", "folder of numbered SQL migrations; empty = 'migrations' next to the binary"},
       {"jwt-secret", "", "HMAC key of the access tokens, at least 32 bytes; the same on every replica; required"},
       {"jwt-issuer", "ptd-gateway", "the iss claim of access tokens"},
       {"access-token-ttl", "15m", "lifetime of an access token"},
       {"refresh-token-ttl", "720h", "lifetime of a refresh token"},
       {"api-key-cache-ttl", "10s",
        "how long an API key lookup is remembered (a revocation through another "
        "replica takes up to this long)"},
       {"tenant-rate-limit", "100:200", "RATE:BURST requests per second per tenant; 0 = unlimited"},
       {"api-key-rate-limit", "50:100", "RATE:BURST requests per second per API key; 0 = unlimited"},
       {"anonymous-rate-limit", "5:20", "RATE:BURST per client address for login, register, refresh; 0 = unlimited"},
       {"rate-limit-take-ahead", "16",
        "tokens a process may take from a far-from-empty bucket at once and spend "
        "without asking Redis (0 = ask on every request)"},
       {"max-body-bytes", "1048576", "larger request bodies are refused with 413"},
       {"max-header-bytes", "16384", "larger request headers are refused with 431"},
       {"max-json-depth", "32", "deeper nesting of objects and arrays in a body is refused with 400"},
       {"json-emit-defaults", "true", "print fields that hold their default value"},
       {"idle-timeout", "60s", "close a connection that sends nothing for this long"},
       {"tls-cert", "", "PEM certificate chain: serve HTTPS (with --tls-key)"},
       {"tls-key", "", "PEM private key"},
       {"cors-origins", "", "comma-separated origins allowed by CORS, or *; empty = no CORS"},
       {"readiness-interval", "2s", "how often /readyz re-checks PostgreSQL, Redis and the backends"},
       {"log-requests", "true", "one log line per HTTP request"},
       {"shutdown-grace", "0s", "after SIGTERM, how long health says NOT_SERVING before draining"},
       {"drain-timeout", "15s", "after SIGTERM, how long in-flight calls may take to finish"},
       {"log-level", "info", "debug, info, warn or error"},
       {"migrate-only", "false", "apply the migrations and exit (for a deploy's migration job)"}});
  config.ParseOrExit(argc, argv);
  const bool migrate_only = ptd::SetUpServiceOrExit(config, "gateway");
  ptd::log::Level level;  // checked by SetUpServiceOrExit; the request log writes at it too
  ptd::log::ParseLevel(config.Get("log-level"), &level);
  if (!migrate_only && config.Get("jwt-secret").size() < 32) {
    std::cerr << "--jwt-secret (PTD_JWT_SECRET) is required, at least 32 bytes\n";
    return 2;
  }

  auto registry = std::make_shared<prometheus::Registry>();
  std::unique_ptr<ptd::pg::Pool> pool = ptd::pg::OpenMigratedPoolOrExit(config, "gateway", registry.get());

  auto redis = ptd::redis::Client::Create({.url = config.Get("redis-url"), .pool_size = 8});
  if (!redis.ok()) ptd::ExitWithError("bad Redis URL", redis.status());

  // Routes from every compiled-in descriptor, plus any descriptor sets given.
  google::protobuf::DescriptorPool descriptor_pool(google::protobuf::DescriptorPool::generated_pool());
  absl::StatusOr<std::vector<std::string>> files =
      ptd::gateway::ServedFiles(SplitList(config.Get("descriptor-sets")), descriptor_pool);
  if (!files.ok()) ptd::ExitWithError("cannot load the descriptor sets", files.status());
  absl::StatusOr<ptd::gateway::RouteTable> routes = ptd::gateway::RouteTable::Build(descriptor_pool, *files, {"ptd."});
  if (!routes.ok()) ptd::ExitWithError("bad google.api.http rules", routes.status());
  google::protobuf::DynamicMessageFactory message_factory(&descriptor_pool);
  message_factory.SetDelegateToGeneratedFactory(true);
  std::string openapi = ptd::gateway::OpenApiDocument(*routes).dump();

  // Identity, served over gRPC by this process and reached through the same routes as every service.
  ptd::gateway::JwtCodec jwt(config.Get("jwt-secret"), config.Get("jwt-issuer"));
  ptd::gateway::Authenticator authenticator(jwt, *pool, config.DurationOrExit("api-key-cache-ttl"));
  ptd::gateway::IdentityService identity(
      *pool, jwt,
      {.access_token_ttl = config.DurationOrExit("access-token-ttl"),
       .refresh_token_ttl = config.DurationOrExit("refresh-token-ttl"),
       .on_api_key_revoked = [&](const std::string& id) { authenticator.ForgetApiKey(id); }});
  ptd::Server server(ptd::ServerOptionsFromFlags(config, "gateway", registry));
  server.AddService(&identity);
  if (absl::Status s = server.Start(); !s.ok()) ptd::ExitWithError("cannot start the identity gRPC server", s);

  std::vector<std::string> backend_specs = SplitList(config.Get("backends"));
  backend_specs.push_back(absl::StrCat("ptd.gateway.v1=127.0.0.1:", server.grpc_port()));
  auto backends = ptd::gateway::Backends::Create(backend_specs, static_cast<int>(config.IntOrExit("backend-channels")),
                                                 static_cast<int>(config.IntOrExit("backend-threads")));
  if (!backends.ok()) ptd::ExitWithError("bad --backends", backends.status());

  ptd::gateway::RateLimiter rate_limiter(**redis, static_cast<int>(config.IntOrExit("rate-limit-take-ahead")));
  ptd::gateway::ProcessMetrics process_metrics(*registry);
  ptd::gateway::GatewayOptions options{
      .transcode = {.max_json_depth = static_cast<int>(config.IntOrExit("max-json-depth")),
                    .emit_defaults = config.BoolOrExit("json-emit-defaults")},
      .backend_timeout = config.DurationOrExit("backend-timeout"),
      .max_stream_duration = config.DurationOrExit("max-stream-duration"),
      .internal_token = config.Get("internal-token"),
      .cors_origins = SplitList(config.Get("cors-origins")),
      .tenant_limit = RateLimitOrExit(config, "tenant-rate-limit"),
      .api_key_limit = RateLimitOrExit(config, "api-key-rate-limit"),
      .anonymous_limit = RateLimitOrExit(config, "anonymous-rate-limit"),
      .log_requests = config.BoolOrExit("log-requests"),
      .log_level = level};
  ptd::gateway::Gateway gateway(options, *routes, message_factory, **backends, authenticator, &rate_limiter, registry,
                                openapi, [&] { process_metrics.Update(); });

  ptd::gateway::HttpServer http(
      {.address = config.Get("http-address"),
       .threads = static_cast<int>(config.IntOrExit("http-threads")),
       .max_body_bytes = static_cast<uint64_t>(config.IntOrExit("max-body-bytes")),
       .max_header_bytes = static_cast<uint32_t>(config.IntOrExit("max-header-bytes")),
       .idle_timeout = config.DurationOrExit("idle-timeout"),
       .tls_cert_file = config.Get("tls-cert"),
       .tls_key_file = config.Get("tls-key")},
      [&](ptd::gateway::HttpRequest&& request, const ptd::gateway::Peer& peer, ptd::gateway::HttpResponder responder) {
        gateway.Handle(std::move(request), peer, std::move(responder));
      },
      [&](int status, const std::string& message) { return gateway.Reject(status, message); });
  if (absl::Status s = http.Start(); !s.ok()) ptd::ExitWithError("cannot start the HTTP server", s);

  // Readiness: PostgreSQL, Redis and every backend, checked in the background so probes cost nothing.
  ptd::gateway::ReadinessChecker readiness(*pool, **redis, **backends, config.DurationOrExit("readiness-interval"),
                                           [&](ptd::gateway::Readiness r) {
                                             gateway.SetReadiness(std::move(r));
                                             process_metrics.Update();
                                           });

  ptd::log::Info("gateway serving", {{"http_port", http.port()},
                                     {"grpc_port", server.grpc_port()},
                                     {"routes", routes->routes().size()},
                                     {"tls", !config.Get("tls-cert").empty()}});
  server.Wait();
  // Streams would hold the drain (and the backend calls the exit) for as long as they run: end them first.
  gateway.StopStreams();
  http.Stop(config.DurationOrExit("drain-timeout"));
  gateway.FlushLog();
  readiness.Stop();
  ptd::log::Info("gateway stopped");
  return 0;
}
