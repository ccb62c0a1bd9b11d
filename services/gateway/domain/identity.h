#ifndef PTD_SERVICES_GATEWAY_DOMAIN_IDENTITY_H_
#define PTD_SERVICES_GATEWAY_DOMAIN_IDENTITY_H_

#include <string>
#include <string_view>
#include <vector>

#include "absl/time/time.h"
#include "libs/core/status.h"

// The rules of identity: which roles exist, what a valid email, password and name are, who may hold which role.
namespace ptd::gateway {

// What an enterprise does on the platform.
inline const std::vector<std::string>& EnterpriseRoleNames() {
  static const std::vector<std::string> names = {"buyer",     "seller", "carrier", "warehouse_operator",
                                                 "financier", "factory"};
  return names;
}

// What a user (or an API key) may do inside its enterprise. catalog_admin: platform staff only.
inline constexpr char kAdminRole[] = "admin";
inline constexpr char kCatalogAdminRole[] = "catalog_admin";
inline const std::vector<std::string>& UserRoleNames() {
  static const std::vector<std::string> names = {"admin", "clerk", "driver", "analyst", "catalog_admin"};
  return names;
}

inline constexpr size_t kMinPasswordLength = 12;
inline constexpr size_t kMaxPasswordLength = 256;

struct Enterprise {
  std::string enterprise_id;
  std::string name;
  std::vector<std::string> roles;
  bool is_platform = false;
  absl::Time create_time;
};

struct User {
  std::string user_id;
  std::string enterprise_id;
  std::string email;
  std::string display_name;
  std::string password_hash;
  std::vector<std::string> roles;
  bool disabled = false;
  absl::Time create_time;
};

struct ApiKey {
  std::string api_key_id;
  std::string enterprise_id;
  std::string name;
  std::vector<std::string> roles;
  std::string created_by;
  absl::Time create_time;
  absl::Time revoke_time = absl::InfiniteFuture();  // InfiniteFuture while valid

  bool revoked() const { return revoke_time != absl::InfiniteFuture(); }
};

struct RefreshToken {
  std::string token_sha256;  // hex
  std::string family_id;
  std::string user_id;
  absl::Time expire_time;
  bool spent = false;
  bool revoked = false;
};

// Lower case, surrounding spaces removed.
std::string NormalizeEmail(std::string_view email);

void CheckEmail(std::string_view email, const std::string& field, FieldViolations& violations);
// 12 to 256 characters (bytes of UTF-8); nothing else is imposed (NIST SP 800-63B).
void CheckPassword(std::string_view password, const std::string& field, FieldViolations& violations);
// 1 to 200 characters, no control characters.
void CheckName(std::string_view name, const std::string& field, bool required, FieldViolations& violations);

void CheckEnterpriseRoles(const std::vector<std::string>& roles, const std::string& field, FieldViolations& violations);
// At least one; catalog_admin only inside the platform's own enterprise; an API key never gets admin.
void CheckUserRoles(const std::vector<std::string>& roles, bool platform_enterprise, bool for_api_key,
                    const std::string& field, FieldViolations& violations);

// x-ptd-roles as services see it: the user's roles, then the enterprise's, without repeats.
std::vector<std::string> ServiceRoles(const std::vector<std::string>& user_roles,
                                      const std::vector<std::string>& enterprise_roles);

}  // namespace ptd::gateway

#endif  // PTD_SERVICES_GATEWAY_DOMAIN_IDENTITY_H_
