// Access tokens: any text offered as a JWT is verified without a crash, and only a token this key signed passes.
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/time/time.h"
#include "services/gateway/domain/tokens.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const ptd::gateway::JwtCodec codec("fuzz-secret-fuzz-secret-fuzz-secret!", "ptdcloud");
  const std::string_view token(reinterpret_cast<const char*>(data), size);
  const absl::Time now = absl::FromUnixSeconds(1'780'000'000);
  absl::StatusOr<ptd::gateway::AccessClaims> claims = codec.Verify(token, now);
  if (claims.ok()) {
    // Only a signature by this key verifies: signing the claims again gives a token that verifies too.
    if (!codec.Verify(codec.Sign(*claims), now).ok()) __builtin_trap();
  }
  return 0;
}
