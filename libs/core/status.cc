#include "libs/core/status.h"

#include <grpcpp/support/status.h>

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "libs/core/log.h"

namespace ptd {
namespace {

constexpr char kBadRequestUrl[] = "type.googleapis.com/google.rpc.BadRequest";

google::rpc::BadRequest ToBadRequest(const std::vector<FieldViolation>& violations) {
  google::rpc::BadRequest bad_request;
  for (const FieldViolation& v : violations) {
    auto* fv = bad_request.add_field_violations();
    fv->set_field(v.field);
    fv->set_description(v.description);
  }
  return bad_request;
}

std::vector<FieldViolation> FromBadRequest(const google::rpc::BadRequest& bad_request) {
  std::vector<FieldViolation> out;
  for (const auto& fv : bad_request.field_violations()) out.push_back({fv.field(), fv.description()});
  return out;
}

}  // namespace

void FieldViolations::Add(std::string field, std::string description) {
  violations_.push_back({std::move(field), std::move(description)});
}

absl::Status FieldViolations::ToStatus() const {
  if (violations_.empty()) return absl::OkStatus();
  std::string message = absl::StrJoin(violations_, "; ", [](std::string* out, const FieldViolation& v) {
    absl::StrAppend(out, v.field, ": ", v.description);
  });
  absl::Status status = absl::InvalidArgumentError(message);
  status.SetPayload(kBadRequestUrl, absl::Cord(ToBadRequest(violations_).SerializeAsString()));
  return status;
}

absl::Status InvalidField(std::string_view field, std::string_view description) {
  FieldViolations violations;
  violations.Add(std::string(field), std::string(description));
  return violations.ToStatus();
}

std::vector<FieldViolation> FieldViolationsOf(const absl::Status& status) {
  absl::optional<absl::Cord> payload = status.GetPayload(kBadRequestUrl);
  if (!payload.has_value()) return {};
  google::rpc::BadRequest bad_request;
  if (!bad_request.ParseFromString(std::string(*payload))) return {};
  return FromBadRequest(bad_request);
}

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  auto code = static_cast<grpc::StatusCode>(status.code());
  std::string message(status.message());
  std::vector<FieldViolation> violations = FieldViolationsOf(status);
  if (violations.empty()) return grpc::Status(code, message);
  google::rpc::Status rpc_status;
  rpc_status.set_code(static_cast<int>(code));
  rpc_status.set_message(message);
  rpc_status.add_details()->PackFrom(ToBadRequest(violations));
  return grpc::Status(code, message, rpc_status.SerializeAsString());
}

absl::Status FromGrpcStatus(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  absl::Status out(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
  if (!status.error_details().empty()) {
    google::rpc::Status rpc_status;
    if (rpc_status.ParseFromString(status.error_details())) {
      for (const auto& any : rpc_status.details()) {
        google::rpc::BadRequest bad_request;
        if (any.UnpackTo(&bad_request)) {
          out.SetPayload(kBadRequestUrl, absl::Cord(bad_request.SerializeAsString()));
        }
      }
    }
  }
  return out;
}

grpc::Status Answer(const char* rpc, const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kInternal:
    case absl::StatusCode::kUnknown:
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDataLoss:
    case absl::StatusCode::kDeadlineExceeded:
    case absl::StatusCode::kResourceExhausted:
      log::Error("rpc failed", {{"rpc", rpc}, {"status", status.ToString()}});
      break;
    default:
      break;
  }
  return ToGrpcStatus(status);
}

}  // namespace ptd
