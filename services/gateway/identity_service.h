#ifndef PTD_SERVICES_GATEWAY_IDENTITY_SERVICE_H_
#define PTD_SERVICES_GATEWAY_IDENTITY_SERVICE_H_

#include <functional>
#include <string>

#include "absl/time/time.h"
#include "libs/pg/pool.h"
#include "ptd/gateway/v1/identity.grpc.pb.h"
#include "services/gateway/domain/password.h"
#include "services/gateway/domain/tokens.h"

namespace ptd::gateway {

struct IdentityOptions {
  absl::Duration access_token_ttl = absl::Minutes(15);
  absl::Duration refresh_token_ttl = absl::Hours(24 * 30);
  PasswordHashCost password_cost;
  // Told when an API key is revoked, so that the gateway's key cache forgets it at once.
  std::function<void(const std::string& api_key_id)> on_api_key_revoked;
};

// The gRPC handlers of ptd.gateway.v1.IdentityService: validate, apply the identity rules, one transaction,
// map errors. Register, Login, Refresh and Logout run without a caller (the gateway lets them through
// anonymously); the others act for the caller in x-ptd-tenant / x-ptd-subject / x-ptd-roles.
class IdentityService final : public v1::IdentityService::Service {
 public:
  IdentityService(pg::Pool& pool, const JwtCodec& jwt, IdentityOptions options)
      : pool_(pool), jwt_(jwt), options_(std::move(options)) {}

  grpc::Status Register(grpc::ServerContext* context, const v1::RegisterRequest* request,
                        v1::RegisterResponse* response) override;
  grpc::Status Login(grpc::ServerContext* context, const v1::LoginRequest* request, v1::TokenPair* response) override;
  grpc::Status Refresh(grpc::ServerContext* context, const v1::RefreshRequest* request,
                       v1::TokenPair* response) override;
  grpc::Status Logout(grpc::ServerContext* context, const v1::LogoutRequest* request,
                      v1::LogoutResponse* response) override;
  grpc::Status WhoAmI(grpc::ServerContext* context, const v1::WhoAmIRequest* request,
                      v1::WhoAmIResponse* response) override;
  grpc::Status CreateUser(grpc::ServerContext* context, const v1::CreateUserRequest* request,
                          v1::User* response) override;
  grpc::Status ListUsers(grpc::ServerContext* context, const v1::ListUsersRequest* request,
                         v1::ListUsersResponse* response) override;
  grpc::Status CreateApiKey(grpc::ServerContext* context, const v1::CreateApiKeyRequest* request,
                            v1::CreateApiKeyResponse* response) override;
  grpc::Status ListApiKeys(grpc::ServerContext* context, const v1::ListApiKeysRequest* request,
                           v1::ListApiKeysResponse* response) override;
  grpc::Status RevokeApiKey(grpc::ServerContext* context, const v1::RevokeApiKeyRequest* request,
                            v1::ApiKey* response) override;

 private:
  // A new access token and refresh token (in `family_id`) for `user_id`, inside `tx`.
  absl::Status IssueTokens(pqxx::work& tx, const std::string& user_id, const std::string& family_id,
                           v1::TokenPair* response);

  pg::Pool& pool_;
  const JwtCodec& jwt_;
  IdentityOptions options_;
};

}  // namespace ptd::gateway

#endif  // PTD_SERVICES_GATEWAY_IDENTITY_SERVICE_H_
