#ifndef PTD_SERVICES_GATEWAY_STORE_IDENTITY_STORE_H_
#define PTD_SERVICES_GATEWAY_STORE_IDENTITY_STORE_H_

#include <optional>
#include <pqxx/pqxx>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "services/gateway/domain/identity.h"

// SQL for identity. Every method runs inside the caller's transaction; every query about an enterprise's
// users and keys filters on the enterprise.
namespace ptd::gateway {

class EnterpriseStore {
 public:
  static void Insert(pqxx::work& tx, const Enterprise& enterprise);
  // NOT_FOUND when absent.
  static absl::StatusOr<Enterprise> Get(pqxx::work& tx, const std::string& enterprise_id);
};

class UserStore {
 public:
  // ALREADY_EXISTS when the email is registered.
  static absl::Status Insert(pqxx::work& tx, const User& user, const std::string& idempotency_key);
  static std::optional<User> FindByEmail(pqxx::work& tx, const std::string& email);
  static std::optional<User> FindByIdempotencyKey(pqxx::work& tx, const std::string& enterprise_id,
                                                  const std::string& key);
  static absl::StatusOr<User> Get(pqxx::work& tx, const std::string& user_id);
  // Ordered by id; after_id "" for the first page; one row more than `limit` tells whether there is more.
  static std::vector<User> List(pqxx::work& tx, const std::string& enterprise_id, const std::string& after_id,
                                int limit);
};

class ApiKeyStore {
 public:
  static void Insert(pqxx::work& tx, const ApiKey& key, const std::string& secret_sha256,
                     const std::string& idempotency_key);
  static std::optional<ApiKey> FindBySecret(pqxx::work& tx, const std::string& secret_sha256);
  static std::optional<ApiKey> FindByIdempotencyKey(pqxx::work& tx, const std::string& enterprise_id,
                                                    const std::string& key);
  // NOT_FOUND when absent or another enterprise's.
  static absl::StatusOr<ApiKey> Get(pqxx::work& tx, const std::string& enterprise_id, const std::string& api_key_id);
  // Sets revoke_time unless already set.
  static void Revoke(pqxx::work& tx, const std::string& enterprise_id, const std::string& api_key_id);
  static std::vector<ApiKey> List(pqxx::work& tx, const std::string& enterprise_id, bool include_revoked,
                                  const std::string& after_id, int limit);
};

class RefreshTokenStore {
 public:
  static void Insert(pqxx::work& tx, const RefreshToken& token);
  // Locks the row.
  static std::optional<RefreshToken> FindForUpdate(pqxx::work& tx, const std::string& token_sha256);
  static void MarkSpent(pqxx::work& tx, const std::string& token_sha256);
  static void RevokeFamily(pqxx::work& tx, const std::string& family_id);
};

}  // namespace ptd::gateway

#endif  // PTD_SERVICES_GATEWAY_STORE_IDENTITY_STORE_H_
