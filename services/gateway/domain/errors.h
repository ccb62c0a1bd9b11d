#ifndef PTD_SERVICES_GATEWAY_DOMAIN_ERRORS_H_
#define PTD_SERVICES_GATEWAY_DOMAIN_ERRORS_H_

#include <string>
#include <string_view>

#include "absl/status/status.h"

// Errors as apps see them: an HTTP status from the gRPC code (the standard mapping of
// google/rpc/code.proto) and a JSON body
//   {"code": 3, "status": "INVALID_ARGUMENT", "message": "...",
//    "details": [{"@type": "type.googleapis.com/google.rpc.BadRequest", "fieldViolations": [...]}]}
// where code is the gRPC code number (as in google.rpc.Status).
namespace ptd::gateway {

// INVALID_ARGUMENT, FAILED_PRECONDITION, OUT_OF_RANGE 400; UNAUTHENTICATED 401; PERMISSION_DENIED 403;
// NOT_FOUND 404; ALREADY_EXISTS, ABORTED 409; RESOURCE_EXHAUSTED 429; CANCELLED 499; UNIMPLEMENTED 501;
// UNAVAILABLE 503; DEADLINE_EXCEEDED 504; OK 200; anything else 500.
int HttpStatusOf(absl::StatusCode code);

// "INVALID_ARGUMENT", "NOT_FOUND", ...
std::string_view CodeName(absl::StatusCode code);

// The body for a backend's error: `details_bin` is the serialized google.rpc.Status from the call's
// grpc-status-details-bin (may be empty). Details that cannot be printed are shown by their type only.
std::string ErrorBody(absl::StatusCode code, std::string_view message, std::string_view details_bin);

// The body for an error the gateway itself decided (its field violations become a BadRequest).
std::string ErrorBody(const absl::Status& status);

}  // namespace ptd::gateway

#endif  // PTD_SERVICES_GATEWAY_DOMAIN_ERRORS_H_
