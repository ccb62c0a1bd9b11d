#ifndef PTD_SERVICES_GATEWAY_AUTHENTICATOR_H_
#define PTD_SERVICES_GATEWAY_AUTHENTICATOR_H_

#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "libs/pg/pool.h"
#include "services/gateway/domain/tokens.h"

// Who sent an HTTP request: a user with a bearer JWT (checked locally: signature, expiry; a token once
// verified is remembered until its expiry) or a machine
// with an API key (looked up by its SHA-256, cached for a short time; a revocation through this process
// takes effect at once, through another replica within the cache TTL).
namespace ptd::gateway {

struct Identity {
  std::string tenant;
  std::string subject;  // user id, or "apikey:<id>"
  std::vector<std::string> roles;
  std::string api_key_id;  // set for API keys
};

class Authenticator {
 public:
  Authenticator(const JwtCodec& jwt, pg::Pool& pool, absl::Duration api_key_cache_ttl)
      : jwt_(jwt), pool_(pool), cache_ttl_(api_key_cache_ttl) {}

  // From the Authorization ("Bearer <jwt>") and X-API-Key headers: nullopt when both are empty,
  // UNAUTHENTICATED for a credential that does not hold (with the reason), UNAVAILABLE when the database
  // cannot be asked about an API key.
  absl::StatusOr<std::optional<Identity>> Authenticate(std::string_view authorization, std::string_view api_key);

  void ForgetApiKey(const std::string& api_key_id);

 private:
  struct Cached {
    std::optional<Identity> identity;  // nullopt: unknown or revoked key
    absl::Time expires;
  };
  struct VerifiedToken {
    Identity identity;
    absl::Time expires;
  };
  absl::StatusOr<std::optional<Identity>> LookUpApiKey(const std::string& secret_sha256);

  const JwtCodec& jwt_;
  pg::Pool& pool_;
  absl::Duration cache_ttl_;
  absl::Mutex mu_;
  std::unordered_map<std::string, Cached> cache_ ABSL_GUARDED_BY(mu_);
  // Access tokens already verified (saves the HMAC and the JSON parse on every request).
  absl::flat_hash_map<std::string, VerifiedToken> verified_ ABSL_GUARDED_BY(mu_);
};

}  // namespace ptd::gateway

#endif  // PTD_SERVICES_GATEWAY_AUTHENTICATOR_H_
