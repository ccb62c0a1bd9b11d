#include "libs/server/caller.h"

#include <grpcpp/client_context.h>
#include <grpcpp/server_context.h>

#include <algorithm>
#include <map>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace ptd {
namespace {

// The first value of `key`, or "".
std::string_view FirstValue(const std::multimap<grpc::string_ref, grpc::string_ref>& metadata, std::string_view key) {
  auto it = metadata.find(grpc::string_ref(key.data(), key.size()));
  if (it == metadata.end()) return {};
  return {it->second.data(), it->second.size()};
}

}  // namespace

bool Caller::HasRole(std::string_view role) const { return std::find(roles.begin(), roles.end(), role) != roles.end(); }

absl::StatusOr<Caller> CallerOf(const grpc::ServerContextBase& context) {
  const auto& metadata = context.client_metadata();
  Caller caller;
  caller.tenant_id = std::string(FirstValue(metadata, kTenantKey));
  if (caller.tenant_id.empty()) {
    return absl::UnauthenticatedError(absl::StrCat(kTenantKey, " is missing: calls must name their tenant"));
  }
  caller.subject = std::string(FirstValue(metadata, kSubjectKey));
  caller.request_id = std::string(FirstValue(metadata, kRequestIdKey));
  std::string_view roles = FirstValue(metadata, kRolesKey);
  // Debian's Abseil has its own string_view type.
  for (absl::string_view role : absl::StrSplit(absl::string_view(roles.data(), roles.size()), ',')) {
    role = absl::StripAsciiWhitespace(role);
    if (!role.empty()) caller.roles.emplace_back(role);
  }
  return caller;
}

void AttachCaller(grpc::ClientContext& context, const Caller& caller, std::string_view internal_token) {
  if (!internal_token.empty()) context.AddMetadata(kInternalTokenKey, std::string(internal_token));
  if (!caller.tenant_id.empty()) context.AddMetadata(kTenantKey, caller.tenant_id);
  if (!caller.subject.empty()) context.AddMetadata(kSubjectKey, caller.subject);
  if (!caller.roles.empty()) context.AddMetadata(kRolesKey, absl::StrJoin(caller.roles, ","));
  if (!caller.request_id.empty()) context.AddMetadata(kRequestIdKey, caller.request_id);
}

}  // namespace ptd
