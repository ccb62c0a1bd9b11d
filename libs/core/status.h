#ifndef PTD_LIBS_CORE_STATUS_H_
#define PTD_LIBS_CORE_STATUS_H_

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"

namespace grpc {
class Status;
}

// absl::Status inside, grpc::Status at the edge. Invalid input carries google.rpc.BadRequest field violations:
// inside as an absl payload, on the wire in grpc-status-details-bin (a google.rpc.Status with the BadRequest detail).
namespace ptd {

struct FieldViolation {
  std::string field;        // "listing.unit_price.amount_minor", "title[0].text"
  std::string description;  // "must be positive, got -5"
  bool operator==(const FieldViolation&) const = default;
};

// Collects violations while validating a request; ToStatus() is OK when there are none.
class FieldViolations {
 public:
  void Add(std::string field, std::string description);
  bool empty() const { return violations_.empty(); }
  const std::vector<FieldViolation>& violations() const { return violations_; }
  // INVALID_ARGUMENT, message "field: description; field2: …", with the BadRequest payload.
  absl::Status ToStatus() const;

 private:
  std::vector<FieldViolation> violations_;
};

// A single-field INVALID_ARGUMENT.
absl::Status InvalidField(std::string_view field, std::string_view description);

// The field violations carried by a status (empty when none).
std::vector<FieldViolation> FieldViolationsOf(const absl::Status& status);

grpc::Status ToGrpcStatus(const absl::Status& status);

// A handler's answer: ToGrpcStatus(status), after logging failures on the service's own side (INTERNAL,
// UNKNOWN, UNAVAILABLE, DATA_LOSS, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED) with the rpc's name; the caller's
// mistakes (INVALID_ARGUMENT, NOT_FOUND, ...) are not logged here (the server logs every call's code).
grpc::Status Answer(const char* rpc, const absl::Status& status);
absl::Status FromGrpcStatus(const grpc::Status& status);

}  // namespace ptd

#endif  // PTD_LIBS_CORE_STATUS_H_
