#ifndef PTD_SERVICES_GATEWAY_DOMAIN_PASSWORD_H_
#define PTD_SERVICES_GATEWAY_DOMAIN_PASSWORD_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

// Password hashing with Argon2id (RFC 9106) from Debian's libargon2, stored in the PHC string format
// ("$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>"), which carries its own parameters: raising the cost later
// keeps old hashes verifiable.
namespace ptd::gateway {

struct PasswordHashCost {
  uint32_t memory_kib = 19456;  // OWASP's Argon2id minimum: 19 MiB, 2 passes, 1 lane
  uint32_t passes = 2;
  uint32_t lanes = 1;
};

// INTERNAL only when libargon2 fails (out of memory).
absl::StatusOr<std::string> HashPassword(std::string_view password, const PasswordHashCost& cost = {});

// True when `password` matches `encoded`; false for a wrong password or an unreadable hash.
bool VerifyPassword(std::string_view password, const std::string& encoded);

// A valid hash of a password nobody knows: verified against when the email is unknown, so that a wrong email
// takes as long as a wrong password.
const std::string& DecoyPasswordHash();

}  // namespace ptd::gateway

#endif  // PTD_SERVICES_GATEWAY_DOMAIN_PASSWORD_H_
