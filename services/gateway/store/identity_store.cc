#include "services/gateway/store/identity_store.h"

#include "absl/status/status.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace ptd::gateway {
namespace {

// Roles travel as comma-joined text: libpqxx 6 has no array parameters.
std::string JoinRoles(const std::vector<std::string>& roles) { return absl::StrJoin(roles, ","); }
std::vector<std::string> SplitRoles(const pqxx::field& f) {
  std::vector<std::string> out;
  for (absl::string_view r : absl::StrSplit(f.as<std::string>(), ',', absl::SkipEmpty())) out.emplace_back(r);
  return out;
}
absl::Time TimeOf(const pqxx::field& f) {
  return f.is_null() ? absl::InfiniteFuture() : absl::FromUnixMicros(f.as<int64_t>());
}
int64_t MicrosOf(absl::Time t) { return absl::ToUnixMicros(t); }

constexpr char kEnterpriseColumns[] =
    "enterprise_id, name, array_to_string(roles, ','), is_platform, "
    "(extract(epoch FROM created_at) * 1000000)::bigint";

Enterprise EnterpriseFrom(const pqxx::row& r) {
  return {.enterprise_id = r[0].as<std::string>(),
          .name = r[1].as<std::string>(),
          .roles = SplitRoles(r[2]),
          .is_platform = r[3].as<bool>(),
          .create_time = TimeOf(r[4])};
}

constexpr char kUserColumns[] =
    "user_id, enterprise_id, email, display_name, password_hash, array_to_string(roles, ','), disabled, "
    "(extract(epoch FROM created_at) * 1000000)::bigint";

User UserFrom(const pqxx::row& r) {
  return {.user_id = r[0].as<std::string>(),
          .enterprise_id = r[1].as<std::string>(),
          .email = r[2].as<std::string>(),
          .display_name = r[3].as<std::string>(),
          .password_hash = r[4].as<std::string>(),
          .roles = SplitRoles(r[5]),
          .disabled = r[6].as<bool>(),
          .create_time = TimeOf(r[7])};
}

constexpr char kApiKeyColumns[] =
    "api_key_id, enterprise_id, name, array_to_string(roles, ','), created_by, "
    "(extract(epoch FROM created_at) * 1000000)::bigint, (extract(epoch FROM revoked_at) * 1000000)::bigint";

ApiKey ApiKeyFrom(const pqxx::row& r) {
  return {.api_key_id = r[0].as<std::string>(),
          .enterprise_id = r[1].as<std::string>(),
          .name = r[2].as<std::string>(),
          .roles = SplitRoles(r[3]),
          .created_by = r[4].as<std::string>(),
          .create_time = TimeOf(r[5]),
          .revoke_time = TimeOf(r[6])};
}

}  // namespace

// ---- enterprises ----

void EnterpriseStore::Insert(pqxx::work& tx, const Enterprise& e) {
  static const std::string kSql =
      "INSERT INTO enterprises (enterprise_id, name, roles, is_platform, created_at) "
      "VALUES ($1, $2, string_to_array($3, ','), $4, to_timestamp($5::float8 / 1000000))";
  tx.exec_params(kSql, e.enterprise_id, e.name, JoinRoles(e.roles), e.is_platform, MicrosOf(e.create_time));
}

absl::StatusOr<Enterprise> EnterpriseStore::Get(pqxx::work& tx, const std::string& enterprise_id) {
  static const std::string kSql =
      std::string("SELECT ") + kEnterpriseColumns + " FROM enterprises WHERE enterprise_id = $1";
  pqxx::result r = tx.exec_params(kSql, enterprise_id);
  if (r.empty()) return absl::NotFoundError("enterprise not found");
  return EnterpriseFrom(r[0]);
}

// ---- users ----

absl::Status UserStore::Insert(pqxx::work& tx, const User& u, const std::string& idempotency_key) {
  static const std::string kSql =
      "INSERT INTO users (user_id, enterprise_id, email, display_name, password_hash, roles, idempotency_key, "
      "created_at) VALUES ($1, $2, $3, $4, $5, string_to_array($6, ','), NULLIF($7, ''), "
      "to_timestamp($8::float8 / 1000000)) ON CONFLICT (email) DO NOTHING RETURNING user_id";
  pqxx::result r = tx.exec_params(kSql, u.user_id, u.enterprise_id, u.email, u.display_name, u.password_hash,
                                  JoinRoles(u.roles), idempotency_key, MicrosOf(u.create_time));
  if (r.empty()) return absl::AlreadyExistsError("this email is already registered");
  return absl::OkStatus();
}

std::optional<User> UserStore::FindByEmail(pqxx::work& tx, const std::string& email) {
  static const std::string kSql = std::string("SELECT ") + kUserColumns + " FROM users WHERE email = $1";
  pqxx::result r = tx.exec_params(kSql, email);
  if (r.empty()) return std::nullopt;
  return UserFrom(r[0]);
}

std::optional<User> UserStore::FindByIdempotencyKey(pqxx::work& tx, const std::string& enterprise_id,
                                                    const std::string& key) {
  static const std::string kSql =
      std::string("SELECT ") + kUserColumns + " FROM users WHERE enterprise_id = $1 AND idempotency_key = $2";
  pqxx::result r = tx.exec_params(kSql, enterprise_id, key);
  if (r.empty()) return std::nullopt;
  return UserFrom(r[0]);
}

absl::StatusOr<User> UserStore::Get(pqxx::work& tx, const std::string& user_id) {
  static const std::string kSql = std::string("SELECT ") + kUserColumns + " FROM users WHERE user_id = $1";
  pqxx::result r = tx.exec_params(kSql, user_id);
  if (r.empty()) return absl::NotFoundError("user not found");
  return UserFrom(r[0]);
}

std::vector<User> UserStore::List(pqxx::work& tx, const std::string& enterprise_id, const std::string& after_id,
                                  int limit) {
  static const std::string kSql = std::string("SELECT ") + kUserColumns +
                                  " FROM users WHERE enterprise_id = $1 AND user_id > $2 ORDER BY user_id LIMIT $3";
  std::vector<User> out;
  for (const auto& row : tx.exec_params(kSql, enterprise_id, after_id, limit + 1)) out.push_back(UserFrom(row));
  return out;
}

// ---- API keys ----

void ApiKeyStore::Insert(pqxx::work& tx, const ApiKey& k, const std::string& secret_sha256,
                         const std::string& idempotency_key) {
  static const std::string kSql =
      "INSERT INTO api_keys (api_key_id, enterprise_id, name, roles, secret_sha256, idempotency_key, created_by, "
      "created_at) VALUES ($1, $2, $3, string_to_array($4, ','), $5, $6, $7, to_timestamp($8::float8 / 1000000))";
  tx.exec_params(kSql, k.api_key_id, k.enterprise_id, k.name, JoinRoles(k.roles), secret_sha256, idempotency_key,
                 k.created_by, MicrosOf(k.create_time));
}

std::optional<ApiKey> ApiKeyStore::FindBySecret(pqxx::work& tx, const std::string& secret_sha256) {
  static const std::string kSql = std::string("SELECT ") + kApiKeyColumns + " FROM api_keys WHERE secret_sha256 = $1";
  pqxx::result r = tx.exec_params(kSql, secret_sha256);
  if (r.empty()) return std::nullopt;
  return ApiKeyFrom(r[0]);
}

std::optional<ApiKey> ApiKeyStore::FindByIdempotencyKey(pqxx::work& tx, const std::string& enterprise_id,
                                                        const std::string& key) {
  static const std::string kSql =
      std::string("SELECT ") + kApiKeyColumns + " FROM api_keys WHERE enterprise_id = $1 AND idempotency_key = $2";
  pqxx::result r = tx.exec_params(kSql, enterprise_id, key);
  if (r.empty()) return std::nullopt;
  return ApiKeyFrom(r[0]);
}

absl::StatusOr<ApiKey> ApiKeyStore::Get(pqxx::work& tx, const std::string& enterprise_id,
                                        const std::string& api_key_id) {
  static const std::string kSql =
      std::string("SELECT ") + kApiKeyColumns + " FROM api_keys WHERE enterprise_id = $1 AND api_key_id = $2";
  pqxx::result r = tx.exec_params(kSql, enterprise_id, api_key_id);
  if (r.empty()) return absl::NotFoundError("API key not found");
  return ApiKeyFrom(r[0]);
}

void ApiKeyStore::Revoke(pqxx::work& tx, const std::string& enterprise_id, const std::string& api_key_id) {
  static const std::string kSql =
      "UPDATE api_keys SET revoked_at = now() WHERE enterprise_id = $1 AND api_key_id = $2 AND revoked_at IS NULL";
  tx.exec_params(kSql, enterprise_id, api_key_id);
}

std::vector<ApiKey> ApiKeyStore::List(pqxx::work& tx, const std::string& enterprise_id, bool include_revoked,
                                      const std::string& after_id, int limit) {
  static const std::string kSql = std::string("SELECT ") + kApiKeyColumns +
                                  " FROM api_keys WHERE enterprise_id = $1 AND api_key_id > $2 "
                                  "AND ($3 OR revoked_at IS NULL) ORDER BY api_key_id LIMIT $4";
  std::vector<ApiKey> out;
  for (const auto& row : tx.exec_params(kSql, enterprise_id, after_id, include_revoked, limit + 1)) {
    out.push_back(ApiKeyFrom(row));
  }
  return out;
}

// ---- refresh tokens ----

void RefreshTokenStore::Insert(pqxx::work& tx, const RefreshToken& t) {
  static const std::string kSql =
      "INSERT INTO refresh_tokens (token_sha256, family_id, user_id, expires_at) "
      "VALUES ($1, $2, $3, to_timestamp($4::float8 / 1000000))";
  tx.exec_params(kSql, t.token_sha256, t.family_id, t.user_id, MicrosOf(t.expire_time));
}

std::optional<RefreshToken> RefreshTokenStore::FindForUpdate(pqxx::work& tx, const std::string& token_sha256) {
  static const std::string kSql =
      "SELECT token_sha256, family_id, user_id, (extract(epoch FROM expires_at) * 1000000)::bigint, "
      "spent_at IS NOT NULL, revoked_at IS NOT NULL FROM refresh_tokens WHERE token_sha256 = $1 FOR UPDATE";
  pqxx::result r = tx.exec_params(kSql, token_sha256);
  if (r.empty()) return std::nullopt;
  return RefreshToken{.token_sha256 = r[0][0].as<std::string>(),
                      .family_id = r[0][1].as<std::string>(),
                      .user_id = r[0][2].as<std::string>(),
                      .expire_time = TimeOf(r[0][3]),
                      .spent = r[0][4].as<bool>(),
                      .revoked = r[0][5].as<bool>()};
}

void RefreshTokenStore::MarkSpent(pqxx::work& tx, const std::string& token_sha256) {
  static const std::string kSql = "UPDATE refresh_tokens SET spent_at = now() WHERE token_sha256 = $1";
  tx.exec_params(kSql, token_sha256);
}

void RefreshTokenStore::RevokeFamily(pqxx::work& tx, const std::string& family_id) {
  static const std::string kSql =
      "UPDATE refresh_tokens SET revoked_at = now() WHERE family_id = $1 AND revoked_at IS NULL";
  tx.exec_params(kSql, family_id);
}

}  // namespace ptd::gateway
