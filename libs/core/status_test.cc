#include "libs/core/status.h"

#include <grpcpp/support/status.h>

#include <catch2/catch.hpp>

#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"

TEST_CASE("status: field violations become INVALID_ARGUMENT naming every field") {
  ptd::FieldViolations violations;
  CHECK(violations.ToStatus().ok());
  violations.Add("name", "must not be empty");
  violations.Add("unit_price.amount_minor", "must be positive, got -5");
  absl::Status status = violations.ToStatus();
  CHECK(status.code() == absl::StatusCode::kInvalidArgument);
  CHECK(status.message() == "name: must not be empty; unit_price.amount_minor: must be positive, got -5");
  CHECK(ptd::FieldViolationsOf(status) == violations.violations());
}

TEST_CASE("status: absl -> grpc carries google.rpc.BadRequest in the error details, and back") {
  absl::Status status = ptd::InvalidField("page_size", "must be at most 500, got 1000000000");
  grpc::Status g = ptd::ToGrpcStatus(status);
  CHECK(g.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  CHECK(g.error_message() == "page_size: must be at most 500, got 1000000000");
  google::rpc::Status rpc;
  REQUIRE(rpc.ParseFromString(g.error_details()));
  REQUIRE(rpc.details_size() == 1);
  google::rpc::BadRequest bad;
  REQUIRE(rpc.details(0).UnpackTo(&bad));
  CHECK(bad.field_violations(0).field() == "page_size");

  absl::Status back = ptd::FromGrpcStatus(g);
  CHECK(back.code() == absl::StatusCode::kInvalidArgument);
  REQUIRE(ptd::FieldViolationsOf(back).size() == 1);
  CHECK(ptd::FieldViolationsOf(back)[0].field == "page_size");
}

TEST_CASE("status: every code maps one to one") {
  for (int c = 0; c <= 16; ++c) {
    absl::Status s(static_cast<absl::StatusCode>(c), c == 0 ? "" : "boom");
    grpc::Status g = ptd::ToGrpcStatus(s);
    CHECK(static_cast<int>(g.error_code()) == c);
    CHECK(ptd::FromGrpcStatus(g).code() == s.code());
    CHECK(g.error_details().empty());
  }
}
