#include "services/gateway/domain/password.h"

#include <argon2.h>
#include <openssl/rand.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace ptd::gateway {

absl::StatusOr<std::string> HashPassword(std::string_view password, const PasswordHashCost& cost) {
  unsigned char salt[16];
  if (RAND_bytes(salt, sizeof(salt)) != 1) return absl::InternalError("no randomness for a password salt");
  constexpr size_t kHashLength = 32;
  size_t encoded_length =
      argon2_encodedlen(cost.passes, cost.memory_kib, cost.lanes, sizeof(salt), kHashLength, Argon2_id);
  std::string encoded(encoded_length, '\0');
  int rc = argon2id_hash_encoded(cost.passes, cost.memory_kib, cost.lanes, password.data(), password.size(), salt,
                                 sizeof(salt), kHashLength, encoded.data(), encoded.size());
  if (rc != ARGON2_OK) return absl::InternalError(absl::StrCat("argon2id: ", argon2_error_message(rc)));
  encoded.resize(encoded.find('\0') == std::string::npos ? encoded.size() : encoded.find('\0'));
  return encoded;
}

bool VerifyPassword(std::string_view password, const std::string& encoded) {
  if (encoded.rfind("$argon2id$", 0) != 0) return false;
  return argon2id_verify(encoded.c_str(), password.data(), password.size()) == ARGON2_OK;
}

const std::string& DecoyPasswordHash() {
  static const std::string* decoy = [] {
    absl::StatusOr<std::string> h = HashPassword("decoy password that is never accepted");
    return new std::string(h.ok() ? *h : std::string());
  }();
  return *decoy;
}

}  // namespace ptd::gateway
