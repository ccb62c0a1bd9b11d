#include "services/gateway/identity_service.h"

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "google/protobuf/util/time_util.h"
#include "libs/core/ids.h"
#include "libs/core/log.h"
#include "libs/core/request.h"
#include "libs/core/status.h"
#include "libs/server/caller.h"
#include "services/gateway/domain/identity.h"
#include "services/gateway/store/identity_store.h"

namespace ptd::gateway {
namespace {

constexpr char kEnterpriseRolePrefix[] = "ENTERPRISE_ROLE_";
constexpr char kUserRolePrefix[] = "USER_ROLE_";

// ---- proto <-> domain: a role's name is its enum value's name without the prefix, in lower case ----

template <typename Enum, typename NameFn>
std::vector<std::string> RoleNames(const google::protobuf::RepeatedField<int>& roles, NameFn name_of,
                                   std::string_view prefix) {
  std::vector<std::string> out;
  for (int r : roles) {
    std::string name = name_of(static_cast<Enum>(r));
    if (name.rfind(prefix, 0) == 0) name = name.substr(prefix.size());
    out.push_back(name.empty() ? absl::StrCat("#", r) : absl::AsciiStrToLower(name));
  }
  return out;
}

std::vector<std::string> EnterpriseRolesFrom(const google::protobuf::RepeatedField<int>& roles) {
  return RoleNames<v1::EnterpriseRole>(
      roles, [](v1::EnterpriseRole r) { return v1::EnterpriseRole_Name(r); }, kEnterpriseRolePrefix);
}
std::vector<std::string> UserRolesFrom(const google::protobuf::RepeatedField<int>& roles) {
  return RoleNames<v1::UserRole>(
      roles, [](v1::UserRole r) { return v1::UserRole_Name(r); }, kUserRolePrefix);
}

void ToProto(absl::Time t, google::protobuf::Timestamp* out) {
  *out = google::protobuf::util::TimeUtil::MicrosecondsToTimestamp(absl::ToUnixMicros(t));
}

void ToProto(const Enterprise& e, v1::Enterprise* out) {
  out->set_enterprise_id(e.enterprise_id);
  out->set_name(e.name);
  for (const std::string& r : e.roles) {
    v1::EnterpriseRole role;
    if (v1::EnterpriseRole_Parse(absl::StrCat(kEnterpriseRolePrefix, absl::AsciiStrToUpper(r)), &role)) {
      out->add_roles(role);
    }
  }
  ToProto(e.create_time, out->mutable_create_time());
}

void AddUserRoles(const std::vector<std::string>& roles, google::protobuf::RepeatedField<int>* out) {
  for (const std::string& r : roles) {
    v1::UserRole role;
    if (v1::UserRole_Parse(absl::StrCat(kUserRolePrefix, absl::AsciiStrToUpper(r)), &role)) out->Add(role);
  }
}

void ToProto(const User& u, v1::User* out) {
  out->set_user_id(u.user_id);
  out->set_enterprise_id(u.enterprise_id);
  out->set_email(u.email);
  out->set_display_name(u.display_name);
  AddUserRoles(u.roles, out->mutable_roles());
  ToProto(u.create_time, out->mutable_create_time());
}

void ToProto(const ApiKey& k, v1::ApiKey* out) {
  out->set_api_key_id(k.api_key_id);
  out->set_enterprise_id(k.enterprise_id);
  out->set_name(k.name);
  AddUserRoles(k.roles, out->mutable_roles());
  ToProto(k.create_time, out->mutable_create_time());
  if (k.revoked()) ToProto(k.revoke_time, out->mutable_revoke_time());
  out->set_created_by(k.created_by);
}

// ---- errors ----

absl::Status WrongCredentials() { return absl::UnauthenticatedError("email or password is wrong"); }
absl::Status BadRefreshToken() { return absl::UnauthenticatedError("the refresh token is not valid; log in again"); }

absl::StatusOr<Caller> AdminCaller(const grpc::ServerContext& context) {
  absl::StatusOr<Caller> caller = CallerOf(context);
  if (!caller.ok()) return caller.status();
  if (!caller->HasRole(kAdminRole)) return absl::PermissionDeniedError("only an admin of the enterprise may do this");
  return caller;
}

std::string Hex(const std::string& bytes) { return absl::BytesToHexString(bytes); }

}  // namespace

absl::Status IdentityService::IssueTokens(pqxx::work& tx, const std::string& user_id, const std::string& family_id,
                                          v1::TokenPair* response) {
  absl::StatusOr<User> user = UserStore::Get(tx, user_id);
  if (!user.ok()) return user.status();
  if (user->disabled) return BadRefreshToken();
  absl::StatusOr<Enterprise> enterprise = EnterpriseStore::Get(tx, user->enterprise_id);
  if (!enterprise.ok()) return enterprise.status();
  absl::Time now = absl::Now();
  AccessClaims claims{.subject = user->user_id,
                      .tenant = user->enterprise_id,
                      .roles = ServiceRoles(user->roles, enterprise->roles),
                      .token_id = NewId(),
                      .issued_at = now,
                      .expires_at = now + options_.access_token_ttl};
  std::string refresh = NewSecret("ptdr_");
  RefreshTokenStore::Insert(tx, {.token_sha256 = Hex(Sha256(refresh)),
                                 .family_id = family_id,
                                 .user_id = user->user_id,
                                 .expire_time = now + options_.refresh_token_ttl});
  response->set_access_token(jwt_.Sign(claims));
  ToProto(claims.expires_at, response->mutable_access_token_expire_time());
  response->set_refresh_token(refresh);
  ToProto(now + options_.refresh_token_ttl, response->mutable_refresh_token_expire_time());
  response->set_token_type("Bearer");
  return absl::OkStatus();
}

grpc::Status IdentityService::Register(grpc::ServerContext*, const v1::RegisterRequest* request,
                                       v1::RegisterResponse* response) {
  FieldViolations violations;
  std::vector<std::string> enterprise_roles = EnterpriseRolesFrom(request->enterprise_roles());
  CheckName(request->enterprise_name(), "enterprise_name", /*required=*/true, violations);
  CheckEnterpriseRoles(enterprise_roles, "enterprise_roles", violations);
  std::string email = NormalizeEmail(request->email());
  CheckEmail(email, "email", violations);
  CheckPassword(request->password(), "password", violations);
  CheckName(request->display_name(), "display_name", /*required=*/false, violations);
  if (!violations.empty()) return Answer("Register", violations.ToStatus());

  absl::StatusOr<std::string> hash = HashPassword(request->password(), options_.password_cost);
  if (!hash.ok()) return Answer("Register", hash.status());
  absl::Time now = absl::Now();
  Enterprise enterprise{
      .enterprise_id = NewId(), .name = request->enterprise_name(), .roles = enterprise_roles, .create_time = now};
  User admin{.user_id = NewId(),
             .enterprise_id = enterprise.enterprise_id,
             .email = email,
             .display_name = request->display_name(),
             .password_hash = *hash,
             .roles = {kAdminRole},
             .create_time = now};
  absl::Status status = pool_.InTransaction([&](pqxx::work& tx) -> absl::Status {
    EnterpriseStore::Insert(tx, enterprise);
    return UserStore::Insert(tx, admin, "");
  });
  if (!status.ok()) return Answer("Register", status);
  ToProto(enterprise, response->mutable_enterprise());
  ToProto(admin, response->mutable_admin());
  log::Info("enterprise registered", {{"enterprise_id", enterprise.enterprise_id}, {"user_id", admin.user_id}});
  return grpc::Status::OK;
}

grpc::Status IdentityService::Login(grpc::ServerContext*, const v1::LoginRequest* request, v1::TokenPair* response) {
  std::string email = NormalizeEmail(request->email());
  if (email.empty() || request->password().empty() || request->password().size() > kMaxPasswordLength) {
    return Answer("Login", WrongCredentials());
  }
  absl::StatusOr<std::optional<User>> user = pool_.InTransaction(
      [&](pqxx::work& tx) -> absl::StatusOr<std::optional<User>> { return UserStore::FindByEmail(tx, email); });
  if (!user.ok()) return Answer("Login", user.status());
  // Verify against a decoy when the email is unknown: the answer takes as long either way.
  bool ok = VerifyPassword(request->password(), *user ? (*user)->password_hash : DecoyPasswordHash());
  if (!*user || !ok || (*user)->disabled) return Answer("Login", WrongCredentials());
  absl::Status status =
      pool_.InTransaction([&](pqxx::work& tx) { return IssueTokens(tx, (*user)->user_id, NewId(), response); });
  return Answer("Login", status);
}

grpc::Status IdentityService::Refresh(grpc::ServerContext*, const v1::RefreshRequest* request,
                                      v1::TokenPair* response) {
  if (request->refresh_token().empty() || request->refresh_token().size() > 256) {
    return Answer("Refresh", BadRefreshToken());
  }
  std::string hash = Hex(Sha256(request->refresh_token()));
  bool reused = false;
  absl::Status status = pool_.InTransaction([&](pqxx::work& tx) -> absl::Status {
    reused = false;
    std::optional<RefreshToken> token = RefreshTokenStore::FindForUpdate(tx, hash);
    if (!token || token->revoked || token->expire_time <= absl::Now()) return BadRefreshToken();
    if (token->spent) {
      // A spent token came back: someone holds a copy. Revoke everything from that login (committed).
      RefreshTokenStore::RevokeFamily(tx, token->family_id);
      reused = true;
      return absl::OkStatus();
    }
    RefreshTokenStore::MarkSpent(tx, hash);
    return IssueTokens(tx, token->user_id, token->family_id, response);
  });
  if (status.ok() && reused) {
    log::Warn("refresh token reused: its family is revoked");
    response->Clear();
    return Answer("Refresh", BadRefreshToken());
  }
  return Answer("Refresh", status);
}

grpc::Status IdentityService::Logout(grpc::ServerContext*, const v1::LogoutRequest* request, v1::LogoutResponse*) {
  if (request->refresh_token().empty() || request->refresh_token().size() > 256) return grpc::Status::OK;
  std::string hash = Hex(Sha256(request->refresh_token()));
  absl::Status status = pool_.InTransaction([&](pqxx::work& tx) -> absl::Status {
    if (std::optional<RefreshToken> token = RefreshTokenStore::FindForUpdate(tx, hash)) {
      RefreshTokenStore::RevokeFamily(tx, token->family_id);
    }
    return absl::OkStatus();
  });
  return Answer("Logout", status);
}

grpc::Status IdentityService::WhoAmI(grpc::ServerContext* context, const v1::WhoAmIRequest*,
                                     v1::WhoAmIResponse* response) {
  absl::StatusOr<Caller> caller = CallerOf(*context);
  if (!caller.ok()) return Answer("WhoAmI", caller.status());
  response->set_tenant_id(caller->tenant_id);
  response->set_subject(caller->subject);
  for (const std::string& r : caller->roles) response->add_roles(r);
  return grpc::Status::OK;
}

grpc::Status IdentityService::CreateUser(grpc::ServerContext* context, const v1::CreateUserRequest* request,
                                         v1::User* response) {
  absl::StatusOr<Caller> caller = AdminCaller(*context);
  if (!caller.ok()) return Answer("CreateUser", caller.status());
  const v1::User& in = request->user();
  std::vector<std::string> roles = UserRolesFrom(in.roles());
  std::string email = NormalizeEmail(in.email());
  FieldViolations violations;
  CheckIdempotencyKey(request->idempotency_key(), violations);
  CheckEmail(email, "user.email", violations);
  CheckPassword(in.password(), "user.password", violations);
  CheckName(in.display_name(), "user.display_name", /*required=*/false, violations);
  absl::StatusOr<Enterprise> enterprise =
      pool_.InTransaction([&](pqxx::work& tx) { return EnterpriseStore::Get(tx, caller->tenant_id); });
  if (!enterprise.ok()) return Answer("CreateUser", enterprise.status());
  CheckUserRoles(roles, enterprise->is_platform, /*for_api_key=*/false, "user.roles", violations);
  if (!violations.empty()) return Answer("CreateUser", violations.ToStatus());

  absl::StatusOr<std::string> hash = HashPassword(in.password(), options_.password_cost);
  if (!hash.ok()) return Answer("CreateUser", hash.status());
  User user{.user_id = NewId(),
            .enterprise_id = caller->tenant_id,
            .email = email,
            .display_name = in.display_name(),
            .password_hash = *hash,
            .roles = roles,
            .create_time = absl::Now()};
  absl::Status status = pool_.InTransaction([&](pqxx::work& tx) -> absl::Status {
    if (std::optional<User> earlier =
            UserStore::FindByIdempotencyKey(tx, caller->tenant_id, request->idempotency_key())) {
      if (earlier->email != email) return ReusedKeyError();
      user = *earlier;
      return absl::OkStatus();
    }
    return UserStore::Insert(tx, user, request->idempotency_key());
  });
  if (!status.ok()) return Answer("CreateUser", status);
  ToProto(user, response);
  return grpc::Status::OK;
}

grpc::Status IdentityService::ListUsers(grpc::ServerContext* context, const v1::ListUsersRequest* request,
                                        v1::ListUsersResponse* response) {
  absl::StatusOr<Caller> caller = AdminCaller(*context);
  if (!caller.ok()) return Answer("ListUsers", caller.status());
  FieldViolations violations;
  int size = PageSize(request->page_size(), violations);
  std::string after = AfterId(request->page_token(), violations);
  if (!violations.empty()) return Answer("ListUsers", violations.ToStatus());
  absl::StatusOr<std::vector<User>> users =
      pool_.InTransaction([&](pqxx::work& tx) -> absl::StatusOr<std::vector<User>> {
        return UserStore::List(tx, caller->tenant_id, after, size);
      });
  if (!users.ok()) return Answer("ListUsers", users.status());
  for (int i = 0; i < static_cast<int>(users->size()) && i < size; ++i) ToProto((*users)[i], response->add_users());
  if (static_cast<int>(users->size()) > size) response->set_next_page_token(PageToken((*users)[size - 1].user_id));
  return grpc::Status::OK;
}

grpc::Status IdentityService::CreateApiKey(grpc::ServerContext* context, const v1::CreateApiKeyRequest* request,
                                           v1::CreateApiKeyResponse* response) {
  absl::StatusOr<Caller> caller = AdminCaller(*context);
  if (!caller.ok()) return Answer("CreateApiKey", caller.status());
  std::vector<std::string> roles = UserRolesFrom(request->roles());
  FieldViolations violations;
  CheckIdempotencyKey(request->idempotency_key(), violations);
  CheckName(request->name(), "name", /*required=*/true, violations);
  absl::StatusOr<Enterprise> enterprise =
      pool_.InTransaction([&](pqxx::work& tx) { return EnterpriseStore::Get(tx, caller->tenant_id); });
  if (!enterprise.ok()) return Answer("CreateApiKey", enterprise.status());
  CheckUserRoles(roles, enterprise->is_platform, /*for_api_key=*/true, "roles", violations);
  if (!violations.empty()) return Answer("CreateApiKey", violations.ToStatus());

  std::string secret = NewSecret("ptdk_");
  ApiKey key{.api_key_id = NewId(),
             .enterprise_id = caller->tenant_id,
             .name = request->name(),
             .roles = roles,
             .created_by = caller->subject,
             .create_time = absl::Now()};
  absl::Status status = pool_.InTransaction([&](pqxx::work& tx) -> absl::Status {
    // The secret was shown once and is not kept: even a retry of the same request cannot get it back.
    if (ApiKeyStore::FindByIdempotencyKey(tx, caller->tenant_id, request->idempotency_key())) return ReusedKeyError();
    ApiKeyStore::Insert(tx, key, Hex(Sha256(secret)), request->idempotency_key());
    return absl::OkStatus();
  });
  if (!status.ok()) return Answer("CreateApiKey", status);
  ToProto(key, response->mutable_api_key());
  response->set_secret(secret);
  log::Info("api key created", {{"api_key_id", key.api_key_id}, {"enterprise_id", key.enterprise_id}});
  return grpc::Status::OK;
}

grpc::Status IdentityService::ListApiKeys(grpc::ServerContext* context, const v1::ListApiKeysRequest* request,
                                          v1::ListApiKeysResponse* response) {
  absl::StatusOr<Caller> caller = AdminCaller(*context);
  if (!caller.ok()) return Answer("ListApiKeys", caller.status());
  FieldViolations violations;
  int size = PageSize(request->page_size(), violations);
  std::string after = AfterId(request->page_token(), violations);
  if (!violations.empty()) return Answer("ListApiKeys", violations.ToStatus());
  absl::StatusOr<std::vector<ApiKey>> keys =
      pool_.InTransaction([&](pqxx::work& tx) -> absl::StatusOr<std::vector<ApiKey>> {
        return ApiKeyStore::List(tx, caller->tenant_id, request->include_revoked(), after, size);
      });
  if (!keys.ok()) return Answer("ListApiKeys", keys.status());
  for (int i = 0; i < static_cast<int>(keys->size()) && i < size; ++i) ToProto((*keys)[i], response->add_api_keys());
  if (static_cast<int>(keys->size()) > size) response->set_next_page_token(PageToken((*keys)[size - 1].api_key_id));
  return grpc::Status::OK;
}

grpc::Status IdentityService::RevokeApiKey(grpc::ServerContext* context, const v1::RevokeApiKeyRequest* request,
                                           v1::ApiKey* response) {
  absl::StatusOr<Caller> caller = AdminCaller(*context);
  if (!caller.ok()) return Answer("RevokeApiKey", caller.status());
  FieldViolations violations;
  CheckId("api_key_id", request->api_key_id(), violations);
  if (!violations.empty()) return Answer("RevokeApiKey", violations.ToStatus());
  absl::StatusOr<ApiKey> key = pool_.InTransaction([&](pqxx::work& tx) -> absl::StatusOr<ApiKey> {
    ApiKeyStore::Revoke(tx, caller->tenant_id, request->api_key_id());
    return ApiKeyStore::Get(tx, caller->tenant_id, request->api_key_id());
  });
  if (!key.ok()) return Answer("RevokeApiKey", key.status());
  if (options_.on_api_key_revoked) options_.on_api_key_revoked(key->api_key_id);
  ToProto(*key, response);
  log::Info("api key revoked", {{"api_key_id", key->api_key_id}, {"enterprise_id", key->enterprise_id}});
  return grpc::Status::OK;
}

}  // namespace ptd::gateway
