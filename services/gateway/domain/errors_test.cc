#include "services/gateway/domain/errors.h"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "libs/core/status.h"

using ptd::gateway::ErrorBody;
using ptd::gateway::HttpStatusOf;

TEST_CASE("gateway: gRPC codes map to the standard HTTP statuses") {
  auto [code, http] = GENERATE(table<absl::StatusCode, int>({{absl::StatusCode::kOk, 200},
                                                             {absl::StatusCode::kCancelled, 499},
                                                             {absl::StatusCode::kUnknown, 500},
                                                             {absl::StatusCode::kInvalidArgument, 400},
                                                             {absl::StatusCode::kDeadlineExceeded, 504},
                                                             {absl::StatusCode::kNotFound, 404},
                                                             {absl::StatusCode::kAlreadyExists, 409},
                                                             {absl::StatusCode::kPermissionDenied, 403},
                                                             {absl::StatusCode::kResourceExhausted, 429},
                                                             {absl::StatusCode::kFailedPrecondition, 400},
                                                             {absl::StatusCode::kAborted, 409},
                                                             {absl::StatusCode::kOutOfRange, 400},
                                                             {absl::StatusCode::kUnimplemented, 501},
                                                             {absl::StatusCode::kInternal, 500},
                                                             {absl::StatusCode::kUnavailable, 503},
                                                             {absl::StatusCode::kDataLoss, 500},
                                                             {absl::StatusCode::kUnauthenticated, 401}}));
  CHECK(HttpStatusOf(code) == http);
}

TEST_CASE("gateway: error bodies carry code, status, message and the field violations") {
  ptd::FieldViolations violations;
  violations.Add("unit_price.amount_minor", "must be positive, got -5");
  nlohmann::json body = nlohmann::json::parse(ErrorBody(violations.ToStatus()));
  CHECK(body["code"] == 3);
  CHECK(body["status"] == "INVALID_ARGUMENT");
  CHECK(body["details"][0]["@type"] == "type.googleapis.com/google.rpc.BadRequest");
  CHECK(body["details"][0]["fieldViolations"][0]["field"] == "unit_price.amount_minor");

  nlohmann::json plain = nlohmann::json::parse(ErrorBody(absl::NotFoundError("listing not found")));
  CHECK(plain["code"] == 5);
  CHECK(plain["message"] == "listing not found");
  CHECK(plain["details"].empty());
  // Undecodable details are skipped, not fatal.
  nlohmann::json junk = nlohmann::json::parse(ErrorBody(absl::StatusCode::kInternal, "x", "\xff\xff\xff"));
  CHECK(junk["code"] == 13);
}
