#include "libs/server/rpc_observer.h"

#include <catch2/catch.hpp>

#include "grpc/health/v1/health.pb.h"

namespace ptd::server_internal {
namespace {

TEST_CASE("server: status codes are named as go-grpc-prometheus names them") {
  auto [code, name] = GENERATE(table<grpc::StatusCode, std::string>({
      {grpc::StatusCode::OK, "OK"},
      {grpc::StatusCode::CANCELLED, "Canceled"},
      {grpc::StatusCode::UNKNOWN, "Unknown"},
      {grpc::StatusCode::INVALID_ARGUMENT, "InvalidArgument"},
      {grpc::StatusCode::DEADLINE_EXCEEDED, "DeadlineExceeded"},
      {grpc::StatusCode::NOT_FOUND, "NotFound"},
      {grpc::StatusCode::ALREADY_EXISTS, "AlreadyExists"},
      {grpc::StatusCode::PERMISSION_DENIED, "PermissionDenied"},
      {grpc::StatusCode::RESOURCE_EXHAUSTED, "ResourceExhausted"},
      {grpc::StatusCode::FAILED_PRECONDITION, "FailedPrecondition"},
      {grpc::StatusCode::ABORTED, "Aborted"},
      {grpc::StatusCode::OUT_OF_RANGE, "OutOfRange"},
      {grpc::StatusCode::UNIMPLEMENTED, "Unimplemented"},
      {grpc::StatusCode::INTERNAL, "Internal"},
      {grpc::StatusCode::UNAVAILABLE, "Unavailable"},
      {grpc::StatusCode::DATA_LOSS, "DataLoss"},
      {grpc::StatusCode::UNAUTHENTICATED, "Unauthenticated"},
  }));
  CHECK(CodeName(code) == name);
}

TEST_CASE("server: a method path splits into service and method") {
  MethodName name = SplitMethodPath("/ptd.trading.v1.TradingService/CreateListing");
  CHECK(name.service == "ptd.trading.v1.TradingService");
  CHECK(name.method == "CreateListing");

  for (std::string odd : {"", "/", "//", "/Service", "/Service/", "Service/Method"}) {
    MethodName unknown = SplitMethodPath(odd);
    CHECK(unknown.service == "unknown");
    CHECK(unknown.method == odd);
  }
}

TEST_CASE("server: the type of a method is read from the generated descriptors") {
  grpc::health::v1::HealthCheckRequest::descriptor();  // loads health.proto into the pool
  CHECK(TypeNameOfPath("/grpc.health.v1.Health/Check") == "unary");
  CHECK(TypeNameOfPath("/grpc.health.v1.Health/Watch") == "server_stream");
  CHECK(TypeNameOfPath("/no.such.Service/Method") == "unary");
}

TEST_CASE("server: only health and reflection are open to calls without the internal token") {
  CHECK(IsOpenMethod("/grpc.health.v1.Health/Check"));
  CHECK(IsOpenMethod("/grpc.health.v1.Health/Watch"));
  CHECK(IsOpenMethod("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"));
  CHECK(IsOpenMethod("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"));
  CHECK_FALSE(IsOpenMethod("/grpc.health.v1.HealthX/Check"));
  CHECK_FALSE(IsOpenMethod("/ptd.trading.v1.TradingService/CreateListing"));
  CHECK_FALSE(IsOpenMethod(""));
}

TEST_CASE("server: request ids are passed on only when they are short and plain") {
  CHECK(IsUsableRequestId("0190f3c2-7a1b-7c3d-8e4f-0123456789ab"));
  CHECK(IsUsableRequestId("gw:abc.DEF_123"));
  CHECK(IsUsableRequestId(std::string(128, 'a')));
  CHECK_FALSE(IsUsableRequestId(""));
  CHECK_FALSE(IsUsableRequestId(std::string(129, 'a')));
  CHECK_FALSE(IsUsableRequestId("has space"));
  CHECK_FALSE(IsUsableRequestId("quote\"injection"));
  CHECK_FALSE(IsUsableRequestId("new\nline"));
}

}  // namespace
}  // namespace ptd::server_internal
