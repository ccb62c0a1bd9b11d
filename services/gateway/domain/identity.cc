#include "services/gateway/domain/identity.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace ptd::gateway {
namespace {

bool Contains(const std::vector<std::string>& list, std::string_view item) {
  return std::find(list.begin(), list.end(), item) != list.end();
}

bool HasDuplicates(std::vector<std::string> list) {
  std::sort(list.begin(), list.end());
  return std::adjacent_find(list.begin(), list.end()) != list.end();
}

}  // namespace

std::string NormalizeEmail(std::string_view email) {
  return absl::AsciiStrToLower(absl::StripAsciiWhitespace(absl::string_view(email.data(), email.size())));
}

void CheckEmail(std::string_view email, const std::string& field, FieldViolations& violations) {
  size_t at = email.find('@');
  bool ok = !email.empty() && email.size() <= 254 && at != std::string_view::npos && at > 0 &&
            email.find('@', at + 1) == std::string_view::npos && email.find('.', at) != std::string_view::npos &&
            email.back() != '.' && email.back() != '@' &&
            std::none_of(email.begin(), email.end(), [](char c) { return c <= ' ' || c == 0x7f; });
  if (!ok) violations.Add(field, "must be an email address like name@example.com");
}

void CheckPassword(std::string_view password, const std::string& field, FieldViolations& violations) {
  if (password.size() < kMinPasswordLength || password.size() > kMaxPasswordLength) {
    violations.Add(field, absl::StrCat("must be ", kMinPasswordLength, " to ", kMaxPasswordLength,
                                       " characters long, got ", password.size()));
  }
}

void CheckName(std::string_view name, const std::string& field, bool required, FieldViolations& violations) {
  if (name.empty()) {
    if (required) violations.Add(field, "is required");
    return;
  }
  if (name.size() > 200) violations.Add(field, absl::StrCat("must be at most 200 characters, got ", name.size()));
  if (std::any_of(name.begin(), name.end(), [](char c) { return static_cast<unsigned char>(c) < ' '; })) {
    violations.Add(field, "must not contain control characters");
  }
}

void CheckEnterpriseRoles(const std::vector<std::string>& roles, const std::string& field,
                          FieldViolations& violations) {
  if (roles.empty()) {
    violations.Add(field, "needs at least one role (buyer, seller, carrier, warehouse_operator, financier, factory)");
    return;
  }
  for (const std::string& r : roles) {
    if (!Contains(EnterpriseRoleNames(), r)) violations.Add(field, absl::StrCat("unknown enterprise role \"", r, "\""));
  }
  if (HasDuplicates(roles)) violations.Add(field, "lists a role twice");
}

void CheckUserRoles(const std::vector<std::string>& roles, bool platform_enterprise, bool for_api_key,
                    const std::string& field, FieldViolations& violations) {
  if (roles.empty()) {
    violations.Add(field, "needs at least one role");
    return;
  }
  for (const std::string& r : roles) {
    if (!Contains(UserRoleNames(), r)) {
      violations.Add(field, absl::StrCat("unknown role \"", r, "\""));
    } else if (r == kCatalogAdminRole && !platform_enterprise) {
      violations.Add(field, "catalog_admin is for the platform's own staff");
    } else if (r == kAdminRole && for_api_key) {
      violations.Add(field, "an API key cannot be an admin");
    }
  }
  if (HasDuplicates(roles)) violations.Add(field, "lists a role twice");
}

std::vector<std::string> ServiceRoles(const std::vector<std::string>& user_roles,
                                      const std::vector<std::string>& enterprise_roles) {
  std::vector<std::string> out;
  for (const auto* list : {&user_roles, &enterprise_roles}) {
    for (const std::string& r : *list) {
      if (!Contains(out, r)) out.push_back(r);
    }
  }
  return out;
}

}  // namespace ptd::gateway
