// The Server in its own process, stopped the way Kubernetes stops it.
#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <sys/wait.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <string>
#include <thread>

#include "grpc/health/v1/health.grpc.pb.h"
#include "libs/server/caller.h"
#include "libs/server/testdata/echo.grpc.pb.h"
#include "tests/testing/testing.h"

namespace ptd {
namespace {

using grpc::health::v1::HealthCheckResponse;

constexpr char kServerTestMain[] = PTD_SERVER_TEST_MAIN;

HealthCheckResponse::ServingStatus HealthOf(const std::shared_ptr<grpc::Channel>& channel) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
  grpc::health::v1::HealthCheckRequest request;
  HealthCheckResponse response;
  grpc::Status status = grpc::health::v1::Health::NewStub(channel)->Check(&context, request, &response);
  return status.ok() ? response.status() : HealthCheckResponse::UNKNOWN;
}

TEST_CASE("server: on SIGTERM the server says NOT_SERVING, finishes the calls in flight and exits 0") {
  int port = testing::FreePort();
  int metrics_port = testing::FreePort();
  testing::Process process("server_test_main",
                           {kServerTestMain, "--grpc-address=127.0.0.1:" + std::to_string(port),
                            "--metrics-address=127.0.0.1:" + std::to_string(metrics_port),
                            "--internal-token=signal-test-token", "--shutdown-grace=1s", "--drain-timeout=10s"});
  REQUIRE(testing::WaitForPort(port));
  auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(port), grpc::InsecureChannelCredentials());
  REQUIRE(HealthOf(channel) == HealthCheckResponse::SERVING);

  // A call that outlives the grace: it must still finish, during the drain.
  servertest::v1::EchoRequest request;
  request.set_text("in flight");
  request.set_sleep_ms(1500);
  servertest::v1::EchoResponse response;
  grpc::Status status;
  std::thread call([&] {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    AttachCaller(context, {.tenant_id = "t1", .request_id = "slow-call"}, "signal-test-token");
    status = servertest::v1::EchoService::NewStub(channel)->Echo(&context, request, &response);
  });
  REQUIRE(testing::WaitFor([&] {
    return testing::HttpGet(metrics_port, "/metrics").find("grpc_server_started_total{grpc_method=\"Echo\"") !=
           std::string::npos;
  }));

  process.Signal(SIGTERM);
  // Answered NOT_SERVING (not refused): health still served during the grace.
  CHECK(testing::WaitFor([&] { return HealthOf(channel) == HealthCheckResponse::NOT_SERVING; },
                         std::chrono::milliseconds(900)));

  call.join();
  INFO(status.error_message());
  CHECK(status.ok());
  CHECK(response.text() == "in flight");

  int exit_status = process.Wait(std::chrono::seconds(20));
  INFO(process.ReadLog());
  REQUIRE(exit_status != -1);
  CHECK(WIFEXITED(exit_status));
  CHECK(WEXITSTATUS(exit_status) == 0);
  std::string log = process.ReadLog();
  CHECK(log.find("\"msg\":\"rpc\"") != std::string::npos);
  CHECK(log.find("\"request_id\":\"slow-call\"") != std::string::npos);
  CHECK(log.find("\"method\":\"/ptd.servertest.v1.EchoService/Echo\"") != std::string::npos);
  CHECK(log.find("\"signal\":\"SIGTERM\"") != std::string::npos);
  CHECK(log.find("\"msg\":\"server stopped\"") != std::string::npos);
}

TEST_CASE("server: without an internal token the service process refuses to start") {
  testing::Process process("server_test_main_no_token", {kServerTestMain});
  int exit_status = process.Wait(std::chrono::seconds(20));
  INFO(process.ReadLog());
  REQUIRE(exit_status != -1);
  CHECK(WIFEXITED(exit_status));
  CHECK(WEXITSTATUS(exit_status) == 1);
  CHECK(process.ReadLog().find("internal_token is required") != std::string::npos);
}

}  // namespace
}  // namespace ptd
