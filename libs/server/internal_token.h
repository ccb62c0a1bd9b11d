#ifndef PTD_LIBS_SERVER_INTERNAL_TOKEN_H_
#define PTD_LIBS_SERVER_INTERNAL_TOKEN_H_

#include <grpcpp/security/server_credentials.h>

#include <functional>
#include <memory>
#include <string>
#include <string_view>

// Internal to libs/server: the check that refuses calls without the shared internal token.
namespace ptd::server_internal {

// Equal contents, in time that depends only on the lengths.
bool ConstantTimeEquals(std::string_view a, std::string_view b);

// Told about each refused call (for its metrics and log line): method path, x-ptd-tenant, x-request-id.
using RefusedCallback =
    std::function<void(std::string_view path, std::string_view tenant, std::string_view request_id)>;

// Plaintext server credentials (like grpc::InsecureServerCredentials()) with a gRPC auth metadata processor:
// every call except grpc.health.v1.Health/* and grpc.reflection.* must carry x-ptd-internal-token equal to
// `token`, or gRPC core fails it with UNAUTHENTICATED before the call reaches any handler or interceptor.
// The token is removed from the metadata that handlers see.
std::shared_ptr<grpc::ServerCredentials> InternalTokenServerCredentials(std::string token, RefusedCallback on_refused);

}  // namespace ptd::server_internal

#endif  // PTD_LIBS_SERVER_INTERNAL_TOKEN_H_
