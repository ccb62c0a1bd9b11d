#include "services/gateway/authenticator.h"

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "services/gateway/domain/identity.h"
#include "services/gateway/store/identity_store.h"

namespace ptd::gateway {
namespace {

constexpr size_t kMaxCacheEntries = 100000;

}  // namespace

absl::StatusOr<std::optional<Identity>> Authenticator::Authenticate(std::string_view authorization,
                                                                    std::string_view api_key) {
  if (!authorization.empty()) {
    absl::string_view value(authorization.data(), authorization.size());
    value = absl::StripAsciiWhitespace(value);
    if (value.size() < 7 || !absl::EqualsIgnoreCase(value.substr(0, 7), "bearer ")) {
      return absl::UnauthenticatedError("Authorization must be \"Bearer <access token>\"");
    }
    absl::string_view token = absl::StripAsciiWhitespace(value.substr(7));
    const absl::Time now = absl::Now();
    // A token seen before is the same bytes with the same signature: only its expiry can have changed.
    {
      absl::MutexLock lock(&mu_);
      auto it = verified_.find(token);
      if (it != verified_.end() && now < it->second.expires) return it->second.identity;
    }
    absl::StatusOr<AccessClaims> claims = jwt_.Verify(std::string_view(token.data(), token.size()), now);
    if (!claims.ok()) return claims.status();
    Identity identity{.tenant = claims->tenant, .subject = claims->subject, .roles = claims->roles};
    {
      absl::MutexLock lock(&mu_);
      if (verified_.size() >= kMaxCacheEntries) verified_.clear();
      // Until "exp" itself: past it, Verify decides again (with its leeway).
      verified_[std::string(token)] = VerifiedToken{identity, claims->expires_at};
    }
    return identity;
  }
  if (api_key.empty()) return std::nullopt;
  if (api_key.size() > 256) return absl::UnauthenticatedError("API key not valid");
  std::string hash = absl::BytesToHexString(Sha256(api_key));
  absl::Time now = absl::Now();
  {
    absl::MutexLock lock(&mu_);
    auto it = cache_.find(hash);
    if (it != cache_.end() && it->second.expires > now) {
      if (!it->second.identity) return absl::UnauthenticatedError("API key not valid");
      return it->second.identity;
    }
  }
  absl::StatusOr<std::optional<Identity>> found = LookUpApiKey(hash);
  if (!found.ok()) return found.status();
  {
    absl::MutexLock lock(&mu_);
    if (cache_.size() >= kMaxCacheEntries) cache_.clear();
    cache_[hash] = Cached{*found, now + cache_ttl_};
  }
  if (!*found) return absl::UnauthenticatedError("API key not valid");
  return found;
}

absl::StatusOr<std::optional<Identity>> Authenticator::LookUpApiKey(const std::string& secret_sha256) {
  return pool_.InTransaction([&](pqxx::work& tx) -> absl::StatusOr<std::optional<Identity>> {
    std::optional<ApiKey> key = ApiKeyStore::FindBySecret(tx, secret_sha256);
    if (!key || key->revoked()) return std::optional<Identity>();
    absl::StatusOr<Enterprise> enterprise = EnterpriseStore::Get(tx, key->enterprise_id);
    if (!enterprise.ok()) return std::optional<Identity>();
    return std::optional<Identity>(Identity{.tenant = key->enterprise_id,
                                            .subject = absl::StrCat("apikey:", key->api_key_id),
                                            .roles = ServiceRoles(key->roles, enterprise->roles),
                                            .api_key_id = key->api_key_id});
  });
}

void Authenticator::ForgetApiKey(const std::string& api_key_id) {
  absl::MutexLock lock(&mu_);
  for (auto it = cache_.begin(); it != cache_.end();) {
    if (it->second.identity && it->second.identity->api_key_id == api_key_id) {
      it = cache_.erase(it);
    } else {
      ++it;
    }
  }
}

}  // namespace ptd::gateway
