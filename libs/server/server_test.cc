#include "libs/server/server.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/descriptor.pb.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/impl/client_unary_call.h>
#include <grpcpp/support/sync_stream.h>
#include <prometheus/counter.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "grpc/health/v1/health.grpc.pb.h"
#include "grpc/reflection/v1/reflection.pb.h"
#include "libs/core/ids.h"
#include "libs/server/caller.h"
#include "libs/server/testdata/echo_service.h"
#include "tests/testing/testing.h"

namespace ptd {
namespace {

using grpc::health::v1::HealthCheckRequest;
using grpc::health::v1::HealthCheckResponse;
using servertest::v1::EchoRequest;
using servertest::v1::EchoResponse;

constexpr char kToken[] = "test-internal-token";
constexpr char kEchoService[] = "ptd.servertest.v1.EchoService";

std::shared_ptr<grpc::Channel> Connect(int port) {
  return grpc::CreateChannel("127.0.0.1:" + std::to_string(port), grpc::InsecureChannelCredentials());
}

void SetDeadline(grpc::ClientContext& context) {
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
}

// A Server with the echo service on a free port (and /metrics when asked: stopping it takes civetweb 2 s).
struct Fixture {
  explicit Fixture(ServerOptions options = {}) {
    if (options.internal_token.empty()) options.internal_token = kToken;
    options.service_name = "server_test";
    server = std::make_unique<Server>(std::move(options));
    server->AddService(&echo);
    absl::Status started = server->Start();
    INFO(started.ToString());
    REQUIRE(started.ok());
    channel = Connect(server->grpc_port());
  }

  // Echo as `caller` with `token` (none when empty); the response's initial metadata into *response_metadata.
  grpc::Status Echo(const EchoRequest& request, EchoResponse* response, const Caller& caller = {.tenant_id = "t1"},
                    const std::string& token = kToken,
                    std::multimap<std::string, std::string>* response_metadata = nullptr) {
    grpc::ClientContext context;
    SetDeadline(context);
    AttachCaller(context, caller, token);
    grpc::Status status = servertest::v1::EchoService::NewStub(channel)->Echo(&context, request, response);
    if (response_metadata != nullptr) {
      for (const auto& [key, value] : context.GetServerInitialMetadata()) {
        response_metadata->emplace(std::string(key.data(), key.size()), std::string(value.data(), value.size()));
      }
    }
    return status;
  }

  servertest::EchoService echo;
  std::unique_ptr<Server> server;
  std::shared_ptr<grpc::Channel> channel;
};

// The health of `service`, or UNKNOWN with the status in *status when the call fails.
HealthCheckResponse::ServingStatus HealthOf(const std::shared_ptr<grpc::Channel>& channel, const std::string& service,
                                            grpc::Status* status = nullptr) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
  HealthCheckRequest request;
  request.set_service(service);
  HealthCheckResponse response;
  grpc::Status s = grpc::health::v1::Health::NewStub(channel)->Check(&context, request, &response);
  if (status != nullptr) *status = s;
  return s.ok() ? response.status() : HealthCheckResponse::UNKNOWN;
}

// One reflection conversation. gRPC 1.51 serves grpc.reflection.v1alpha, whose messages are v1's on the wire.
std::vector<grpc::reflection::v1::ServerReflectionResponse> Reflect(
    const std::shared_ptr<grpc::Channel>& channel,
    const std::vector<grpc::reflection::v1::ServerReflectionRequest>& requests) {
  using Request = grpc::reflection::v1::ServerReflectionRequest;
  using Response = grpc::reflection::v1::ServerReflectionResponse;
  grpc::ClientContext context;
  SetDeadline(context);
  grpc::internal::RpcMethod method("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
                                   grpc::internal::RpcMethod::BIDI_STREAMING);
  std::unique_ptr<grpc::ClientReaderWriter<Request, Response>> stream(
      grpc::internal::ClientReaderWriterFactory<Request, Response>::Create(channel.get(), method, &context));
  for (const Request& request : requests) REQUIRE(stream->Write(request));
  stream->WritesDone();
  std::vector<Response> responses;
  Response response;
  while (stream->Read(&response)) responses.push_back(response);
  grpc::Status status = stream->Finish();
  INFO(status.error_message());
  REQUIRE(status.ok());
  return responses;
}

// The value of the sample `name{labels}` in a Prometheus text page, -1 when absent. Labels in alphabetical order.
double MetricValue(const std::string& page, const std::string& name, const std::map<std::string, std::string>& labels) {
  std::string prefix = name + "{";
  bool first = true;
  for (const auto& [key, value] : labels) {
    prefix += (first ? "" : ",") + key + "=\"" + value + "\"";
    first = false;
  }
  prefix += "} ";
  std::istringstream lines(page);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind(prefix, 0) == 0) return std::stod(line.substr(prefix.size()));
  }
  return -1;
}

TEST_CASE("server: health says SERVING for the server and for each of its services") {
  Fixture f;
  CHECK(HealthOf(f.channel, "") == HealthCheckResponse::SERVING);
  CHECK(HealthOf(f.channel, kEchoService) == HealthCheckResponse::SERVING);
  grpc::Status status;
  HealthOf(f.channel, "no.such.Service", &status);
  CHECK(status.error_code() == grpc::StatusCode::NOT_FOUND);
}

TEST_CASE("server: SetServing(false) makes every service NOT_SERVING until SetServing(true)") {
  Fixture f;
  f.server->SetServing(false);
  CHECK(HealthOf(f.channel, "") == HealthCheckResponse::NOT_SERVING);
  CHECK(HealthOf(f.channel, kEchoService) == HealthCheckResponse::NOT_SERVING);
  f.server->SetServing(true);
  CHECK(HealthOf(f.channel, "") == HealthCheckResponse::SERVING);
  CHECK(HealthOf(f.channel, kEchoService) == HealthCheckResponse::SERVING);
}

TEST_CASE("server: a call without the right internal token is refused before its handler runs") {
  Fixture f;
  EchoRequest request;
  request.set_text("hi");
  EchoResponse response;

  SECTION("no token") {
    grpc::Status status = f.Echo(request, &response, {.tenant_id = "t1"}, /*token=*/"");
    CHECK(status.error_code() == grpc::StatusCode::UNAUTHENTICATED);
    CHECK(status.error_message().find(kInternalTokenKey) != std::string::npos);
    CHECK(f.echo.calls() == 0);
  }
  SECTION("a wrong token") {
    CHECK(f.Echo(request, &response, {.tenant_id = "t1"}, "not-the-token").error_code() ==
          grpc::StatusCode::UNAUTHENTICATED);
    CHECK(f.Echo(request, &response, {.tenant_id = "t1"}, std::string(kToken) + "x").error_code() ==
          grpc::StatusCode::UNAUTHENTICATED);
    CHECK(f.echo.calls() == 0);
  }
  SECTION("also for methods the server does not have") {
    grpc::ClientContext context;
    SetDeadline(context);
    grpc::health::v1::HealthCheckRequest health_request;
    HealthCheckResponse health_response;
    // Same messages, another service name: no such method.
    grpc::internal::RpcMethod method("/ptd.servertest.v1.Nothing/Here", grpc::internal::RpcMethod::NORMAL_RPC);
    grpc::Status status =
        grpc::internal::BlockingUnaryCall(f.channel.get(), method, &context, health_request, &health_response);
    CHECK(status.error_code() == grpc::StatusCode::UNAUTHENTICATED);
  }
  SECTION("the right token; handlers never see it") {
    grpc::Status status = f.Echo(request, &response);
    INFO(status.error_message());
    REQUIRE(status.ok());
    CHECK(response.text() == "hi");
    CHECK_FALSE(response.saw_internal_token());
    CHECK(f.echo.calls() == 1);
  }
}

TEST_CASE("server: the caller's identity reaches the handler") {
  Fixture f;
  EchoRequest request;
  request.set_require_caller(true);
  EchoResponse response;

  SECTION("tenant, subject, roles and request id") {
    Caller caller{.tenant_id = "tenant-1", .subject = "user-7", .request_id = "req-42", .roles = {"buyer", "admin"}};
    REQUIRE(f.Echo(request, &response, caller).ok());
    CHECK(response.tenant_id() == "tenant-1");
    CHECK(response.subject() == "user-7");
    CHECK(std::vector<std::string>(response.roles().begin(), response.roles().end()) ==
          std::vector<std::string>{"buyer", "admin"});
    CHECK(response.request_id() == "req-42");
  }
  SECTION("roles are trimmed and empty ones dropped") {
    grpc::ClientContext context;
    SetDeadline(context);
    context.AddMetadata(kInternalTokenKey, kToken);
    context.AddMetadata(kTenantKey, "t1");
    context.AddMetadata(kRolesKey, " buyer ,, seller,");
    REQUIRE(servertest::v1::EchoService::NewStub(f.channel)->Echo(&context, request, &response).ok());
    CHECK(std::vector<std::string>(response.roles().begin(), response.roles().end()) ==
          std::vector<std::string>{"buyer", "seller"});
  }
  SECTION("CallerOf is UNAUTHENTICATED without a tenant") {
    grpc::Status status = f.Echo(request, &response, Caller{.subject = "user-7"});
    CHECK(status.error_code() == grpc::StatusCode::UNAUTHENTICATED);
    CHECK(status.error_message().find(kTenantKey) != std::string::npos);
  }
}

TEST_CASE("server: Caller::HasRole") {
  Caller caller{.tenant_id = "t", .roles = {"buyer", "catalog-admin"}};
  CHECK(caller.HasRole("buyer"));
  CHECK(caller.HasRole("catalog-admin"));
  CHECK_FALSE(caller.HasRole("admin"));
  CHECK_FALSE(caller.HasRole(""));
}

TEST_CASE("server: the request id is passed on, or made up, and returned to the caller") {
  Fixture f;
  EchoRequest request;
  EchoResponse response;
  std::multimap<std::string, std::string> metadata;

  SECTION("given by the caller") {
    REQUIRE(f.Echo(request, &response, {.tenant_id = "t1", .request_id = "gw-123"}, kToken, &metadata).ok());
    CHECK(response.request_id() == "gw-123");
    CHECK(response.log_request_id() == "gw-123");
    REQUIRE(metadata.count(kRequestIdKey) == 1);
    CHECK(metadata.find(kRequestIdKey)->second == "gw-123");
  }
  SECTION("missing: a new id, the same for the handler, its logs and the caller") {
    REQUIRE(f.Echo(request, &response, {.tenant_id = "t1"}, kToken, &metadata).ok());
    CHECK(IsValidId(response.request_id()));
    CHECK(response.log_request_id() == response.request_id());
    REQUIRE(metadata.count(kRequestIdKey) == 1);
    CHECK(metadata.find(kRequestIdKey)->second == response.request_id());
  }
  SECTION("unusable (spaces, quotes): replaced") {
    REQUIRE(f.Echo(request, &response, {.tenant_id = "t1", .request_id = "a b\"c"}, kToken, &metadata).ok());
    CHECK(IsValidId(response.request_id()));
    CHECK(metadata.find(kRequestIdKey)->second == response.request_id());
  }
  SECTION("also on a failed call") {
    request.set_fail_code(static_cast<int>(grpc::StatusCode::NOT_FOUND));
    grpc::Status status = f.Echo(request, &response, {.tenant_id = "t1", .request_id = "gw-404"}, kToken, &metadata);
    CHECK(status.error_code() == grpc::StatusCode::NOT_FOUND);
    REQUIRE(metadata.count(kRequestIdKey) == 1);
    CHECK(metadata.find(kRequestIdKey)->second == "gw-404");
  }
}

TEST_CASE("server: the handler thread's log request id is cleared after the call") {
  // Two calls without ids on a one-thread-at-a-time server: each gets its own id, never the previous one.
  Fixture f;
  EchoRequest request;
  EchoResponse first, second;
  REQUIRE(f.Echo(request, &first).ok());
  REQUIRE(f.Echo(request, &second).ok());
  CHECK(first.log_request_id() != second.log_request_id());
  CHECK(second.log_request_id() == second.request_id());
}

TEST_CASE("server: reflection lists the services and describes grpc.health.v1.Health") {
  Fixture f;
  grpc::reflection::v1::ServerReflectionRequest list;
  list.set_list_services("*");
  grpc::reflection::v1::ServerReflectionRequest health;
  health.set_file_containing_symbol("grpc.health.v1.Health");
  grpc::reflection::v1::ServerReflectionRequest echo;
  echo.set_file_containing_symbol(kEchoService);
  std::vector<grpc::reflection::v1::ServerReflectionResponse> responses = Reflect(f.channel, {list, health, echo});
  REQUIRE(responses.size() == 3);

  std::set<std::string> services;
  for (const auto& service : responses[0].list_services_response().service()) services.insert(service.name());
  CHECK(services.count(kEchoService) == 1);
  CHECK(services.count("grpc.health.v1.Health") == 1);
  CHECK(services.count("grpc.reflection.v1alpha.ServerReflection") == 1);

  // What a reflection client (grpcurl, Postman) does: build a pool from the returned files and call from it.
  for (int i : {1, 2}) {
    INFO(responses[i].error_response().error_message());
    REQUIRE(responses[i].has_file_descriptor_response());
  }
  google::protobuf::DescriptorPool pool;
  for (int i : {1, 2}) {
    for (const std::string& bytes : responses[i].file_descriptor_response().file_descriptor_proto()) {
      google::protobuf::FileDescriptorProto file;
      REQUIRE(file.ParseFromString(bytes));
      pool.BuildFile(file);
    }
  }
  const google::protobuf::ServiceDescriptor* health_service = pool.FindServiceByName("grpc.health.v1.Health");
  REQUIRE(health_service != nullptr);
  const google::protobuf::MethodDescriptor* check = health_service->FindMethodByName("Check");
  REQUIRE(check != nullptr);
  CHECK(check->input_type()->full_name() == "grpc.health.v1.HealthCheckRequest");
  CHECK(check->output_type()->FindFieldByName("status") != nullptr);
  REQUIRE(health_service->FindMethodByName("Watch") != nullptr);
  CHECK(health_service->FindMethodByName("Watch")->server_streaming());
  CHECK(pool.FindMethodByName("ptd.servertest.v1.EchoService.Echo") != nullptr);
}

TEST_CASE("server: /metrics counts calls by service, method, type and code") {
  Fixture f({.metrics_address = "127.0.0.1:0"});
  EchoRequest ok, invalid;
  invalid.set_fail_code(static_cast<int>(grpc::StatusCode::INVALID_ARGUMENT));
  EchoResponse response;
  REQUIRE(f.Echo(ok, &response).ok());
  REQUIRE(f.Echo(ok, &response).ok());
  REQUIRE(f.Echo(invalid, &response).error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  REQUIRE(f.Echo(ok, &response, {.tenant_id = "t1"}, "wrong").error_code() == grpc::StatusCode::UNAUTHENTICATED);
  {
    grpc::ClientContext context;
    SetDeadline(context);
    AttachCaller(context, {.tenant_id = "t1"}, kToken);
    servertest::v1::CountRequest request;
    request.set_count(3);
    auto reader = servertest::v1::EchoService::NewStub(f.channel)->Count(&context, request);
    servertest::v1::CountResponse item;
    int n = 0;
    while (reader->Read(&item)) ++n;
    REQUIRE(reader->Finish().ok());
    REQUIRE(n == 3);
  }
  REQUIRE(HealthOf(f.channel, "") == HealthCheckResponse::SERVING);

  std::string page = testing::HttpGet(f.server->metrics_port(), "/metrics");
  INFO(page);
  auto echo = [](std::string code) {
    std::map<std::string, std::string> labels = {
        {"grpc_service", kEchoService}, {"grpc_method", "Echo"}, {"grpc_type", "unary"}};
    if (!code.empty()) labels["grpc_code"] = code;
    return labels;
  };
  CHECK(MetricValue(page, "grpc_server_started_total", echo("")) == 4);
  CHECK(MetricValue(page, "grpc_server_handled_total", echo("OK")) == 2);
  CHECK(MetricValue(page, "grpc_server_handled_total", echo("InvalidArgument")) == 1);
  CHECK(MetricValue(page, "grpc_server_handled_total", echo("Unauthenticated")) == 1);
  CHECK(MetricValue(page, "grpc_server_handling_seconds_count", echo("")) == 4);
  auto bucket = echo("");
  bucket["le"] = "10";
  CHECK(MetricValue(page, "grpc_server_handling_seconds_bucket", bucket) == 4);
  bucket["le"] = "0.0005";
  CHECK(MetricValue(page, "grpc_server_handling_seconds_bucket", bucket) >= 0);
  CHECK(MetricValue(page, "grpc_server_handled_total",
                    {{"grpc_service", kEchoService},
                     {"grpc_method", "Count"},
                     {"grpc_type", "server_stream"},
                     {"grpc_code", "OK"}}) == 1);
  CHECK(MetricValue(page, "grpc_server_handled_total",
                    {{"grpc_service", "grpc.health.v1.Health"},
                     {"grpc_method", "Check"},
                     {"grpc_type", "unary"},
                     {"grpc_code", "OK"}}) == 1);
}

TEST_CASE("server: the service's own metrics are served on the same page") {
  Fixture f({.metrics_address = "127.0.0.1:0"});
  prometheus::BuildCounter()
      .Name("ptd_test_things_total")
      .Help("Things.")
      .Register(f.server->registry())
      .Add({})
      .Increment(3);
  std::string page = testing::HttpGet(f.server->metrics_port(), "/metrics");
  CHECK(page.find("ptd_test_things_total 3") != std::string::npos);
}

TEST_CASE("server: Start refuses to run without an internal token") {
  Server server({.service_name = "no_token"});
  servertest::EchoService echo;
  server.AddService(&echo);
  absl::Status status = server.Start();
  CHECK(status.code() == absl::StatusCode::kInvalidArgument);
  CHECK(server.grpc_port() == 0);
}

TEST_CASE("server: Start fails when a port is taken") {
  Fixture first({.metrics_address = "127.0.0.1:0"});
  SECTION("gRPC") {
    Server second({.grpc_address = "127.0.0.1:" + std::to_string(first.server->grpc_port()), .internal_token = kToken});
    CHECK(second.Start().code() == absl::StatusCode::kUnavailable);
  }
  SECTION("metrics") {
    Server second(
        {.metrics_address = "127.0.0.1:" + std::to_string(first.server->metrics_port()), .internal_token = kToken});
    CHECK(second.Start().code() == absl::StatusCode::kUnavailable);
  }
}

TEST_CASE("server: Start refuses asynchronous services") {
  Server server({.internal_token = kToken});
  servertest::v1::EchoService::AsyncService async;
  server.AddService(&async);
  CHECK(server.Start().code() == absl::StatusCode::kInvalidArgument);
}

TEST_CASE("server: Shutdown: NOT_SERVING during the grace, calls in flight finish, then new calls are refused") {
  Fixture f({.metrics_address = "127.0.0.1:0",
             .shutdown_grace = absl::Milliseconds(500),
             .drain_timeout = absl::Seconds(10)});
  EchoRequest slow;
  slow.set_sleep_ms(1000);
  slow.set_text("slow");
  EchoResponse slow_response;
  grpc::Status slow_status;
  std::thread slow_call([&] { slow_status = f.Echo(slow, &slow_response); });
  // Started means the handler is running.
  REQUIRE(testing::WaitFor([&] {
    std::string page = testing::HttpGet(f.server->metrics_port(), "/metrics");
    return MetricValue(page, "grpc_server_started_total",
                       {{"grpc_service", kEchoService}, {"grpc_method", "Echo"}, {"grpc_type", "unary"}}) == 1;
  }));

  auto begin = std::chrono::steady_clock::now();
  std::thread stopper([&] { f.server->Shutdown(); });
  CHECK(testing::WaitFor([&] { return HealthOf(f.channel, "") == HealthCheckResponse::NOT_SERVING; },
                         std::chrono::milliseconds(400)));
  CHECK(HealthOf(f.channel, kEchoService) == HealthCheckResponse::NOT_SERVING);
  f.server->SetServing(true);  // ignored once stopping
  CHECK(HealthOf(f.channel, "") == HealthCheckResponse::NOT_SERVING);

  f.server->Wait();
  auto stopped_after = std::chrono::steady_clock::now() - begin;
  stopper.join();
  slow_call.join();
  INFO(slow_status.error_message());
  CHECK(slow_status.ok());
  CHECK(slow_response.text() == "slow");
  CHECK(stopped_after >= std::chrono::milliseconds(500));

  EchoResponse late;
  CHECK_FALSE(f.Echo(EchoRequest(), &late).ok());
  f.server->Shutdown();  // again: nothing happens
}

TEST_CASE("server: calls still running at the end of the drain are cancelled") {
  Fixture f({.metrics_address = "127.0.0.1:0", .drain_timeout = absl::Milliseconds(200)});
  EchoRequest slow;
  slow.set_sleep_ms(3000);
  EchoResponse response;
  grpc::Status status;
  std::thread call([&] { status = f.Echo(slow, &response); });
  REQUIRE(testing::WaitFor([&] {
    std::string page = testing::HttpGet(f.server->metrics_port(), "/metrics");
    return MetricValue(page, "grpc_server_started_total",
                       {{"grpc_service", kEchoService}, {"grpc_method", "Echo"}, {"grpc_type", "unary"}}) == 1;
  }));
  f.server->Shutdown();
  call.join();
  CHECK_FALSE(status.ok());
}

TEST_CASE("server: a health Watch hears NOT_SERVING during the grace and does not hold up the stop") {
  Fixture f({.shutdown_grace = absl::Milliseconds(300), .drain_timeout = absl::Seconds(5)});
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  HealthCheckRequest request;
  auto watch = grpc::health::v1::Health::NewStub(f.channel)->Watch(&context, request);
  HealthCheckResponse response;
  REQUIRE(watch->Read(&response));
  CHECK(response.status() == HealthCheckResponse::SERVING);

  auto begin = std::chrono::steady_clock::now();
  std::thread stopper([&] { f.server->Shutdown(); });
  REQUIRE(watch->Read(&response));
  CHECK(response.status() == HealthCheckResponse::NOT_SERVING);
  stopper.join();
  CHECK(std::chrono::steady_clock::now() - begin < std::chrono::seconds(2));
  while (watch->Read(&response)) {
  }
  CHECK(watch->Finish().error_code() == grpc::StatusCode::UNAVAILABLE);
}

}  // namespace
}  // namespace ptd
