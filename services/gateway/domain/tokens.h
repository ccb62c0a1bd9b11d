#ifndef PTD_SERVICES_GATEWAY_DOMAIN_TOKENS_H_
#define PTD_SERVICES_GATEWAY_DOMAIN_TOKENS_H_

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

// Access tokens (JWT, HS256) and opaque secrets (refresh tokens, API keys).
namespace ptd::gateway {

struct AccessClaims {
  std::string subject;             // "sub": the user id
  std::string tenant;              // "tid": the enterprise id
  std::vector<std::string> roles;  // "roles": user roles and the enterprise's roles
  std::string token_id;            // "jti"
  absl::Time issued_at;            // "iat"
  absl::Time expires_at;           // "exp"
};

// Signs and verifies JWTs with HMAC-SHA-256 (RFC 7519 / 7518). Verification accepts exactly
// {"alg":"HS256"} headers — "none", other algorithms, a wrong key, a changed byte, a missing claim, another
// issuer or an expired token are all UNAUTHENTICATED, with a message saying which.
class JwtCodec {
 public:
  // `secret` should be at least 32 random bytes; `leeway` tolerates clock skew between gateway replicas.
  JwtCodec(std::string secret, std::string issuer, absl::Duration leeway = absl::Seconds(30));

  std::string Sign(const AccessClaims& claims) const;
  absl::StatusOr<AccessClaims> Verify(std::string_view token, absl::Time now) const;

 private:
  std::string secret_;
  std::string issuer_;
  absl::Duration leeway_;
};

// `bytes` random bytes from the OpenSSL CSPRNG, base64url without padding, after `prefix`
// ("ptdk_" for API keys, "ptdr_" for refresh tokens: secret scanners can spot them).
std::string NewSecret(std::string_view prefix, int bytes = 32);

// SHA-256 of `data`, raw bytes: how secrets are stored (they are high-entropy, so no salt is needed).
std::string Sha256(std::string_view data);

// HMAC-SHA-256, raw bytes.
std::string HmacSha256(std::string_view key, std::string_view data);

// Equal contents, in time that depends only on the lengths.
bool ConstantTimeEquals(std::string_view a, std::string_view b);

}  // namespace ptd::gateway

#endif  // PTD_SERVICES_GATEWAY_DOMAIN_TOKENS_H_
