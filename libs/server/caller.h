#ifndef PTD_LIBS_SERVER_CALLER_H_
#define PTD_LIBS_SERVER_CALLER_H_

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace grpc {
class ClientContext;
class ServerContextBase;
}  // namespace grpc

// Who is calling: the gateway authenticates users and devices and passes the result to services as gRPC
// metadata; sibling services pass it on. Services trust that metadata only because the call also carries the
// shared internal token, which the Server checks before any handler runs (see server.h).
namespace ptd {

// Metadata keys (gRPC metadata keys are lower case).
inline constexpr char kTenantKey[] = "x-ptd-tenant";
inline constexpr char kSubjectKey[] = "x-ptd-subject";
inline constexpr char kRolesKey[] = "x-ptd-roles";  // comma-separated
inline constexpr char kRequestIdKey[] = "x-request-id";
inline constexpr char kInternalTokenKey[] = "x-ptd-internal-token";

struct Caller {
  std::string tenant_id;
  std::string subject;     // user id, API key id or service name
  std::string request_id;  // from x-request-id, or the one the server made up for this call
  std::vector<std::string> roles;

  bool HasRole(std::string_view role) const;
};

// The caller of the current call. UNAUTHENTICATED when x-ptd-tenant is missing or empty: every call that
// touches tenant data must come with a tenant.
absl::StatusOr<Caller> CallerOf(const grpc::ServerContextBase& context);

// Adds `caller` and the internal token to an outgoing call: for service-to-service calls (pass on the
// caller you got, so the request id follows the work) and for test clients. Empty fields (and an empty token)
// are left out.
void AttachCaller(grpc::ClientContext& context, const Caller& caller, std::string_view internal_token);

}  // namespace ptd

#endif  // PTD_LIBS_SERVER_CALLER_H_
