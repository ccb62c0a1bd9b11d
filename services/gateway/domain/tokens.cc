#include "services/gateway/domain/tokens.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <cstdlib>
#include <nlohmann/json.hpp>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace ptd::gateway {
namespace {

std::string Base64Url(std::string_view data) {
  return absl::WebSafeBase64Escape(absl::string_view(data.data(), data.size()));
}

// Strict: no padding, only the URL-safe alphabet.
bool FromBase64Url(std::string_view text, std::string* out) {
  for (char c : text) {
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
    if (!ok) return false;
  }
  return absl::WebSafeBase64Unescape(absl::string_view(text.data(), text.size()), out);
}

absl::Status Reject(std::string_view why) {
  return absl::UnauthenticatedError(absl::StrCat("access token rejected: ", std::string(why)));
}

}  // namespace

std::string Sha256(std::string_view data) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest);
  return std::string(reinterpret_cast<const char*>(digest), sizeof(digest));
}

std::string HmacSha256(std::string_view key, std::string_view data) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(data.data()),
       data.size(), mac, &length);
  return std::string(reinterpret_cast<const char*>(mac), length);
}

bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string NewSecret(std::string_view prefix, int bytes) {
  std::string raw(bytes, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(raw.data()), bytes) != 1) {
    // Without randomness no secret is safe to hand out; this does not happen on a working system.
    std::abort();
  }
  return absl::StrCat(std::string(prefix), Base64Url(raw));
}

JwtCodec::JwtCodec(std::string secret, std::string issuer, absl::Duration leeway)
    : secret_(std::move(secret)), issuer_(std::move(issuer)), leeway_(leeway) {}

std::string JwtCodec::Sign(const AccessClaims& claims) const {
  static const std::string kHeader = Base64Url(R"({"alg":"HS256","typ":"JWT"})");
  nlohmann::json payload = {{"iss", issuer_},
                            {"sub", claims.subject},
                            {"tid", claims.tenant},
                            {"roles", claims.roles},
                            {"jti", claims.token_id},
                            {"iat", absl::ToUnixSeconds(claims.issued_at)},
                            {"exp", absl::ToUnixSeconds(claims.expires_at)}};
  std::string signing_input = absl::StrCat(kHeader, ".", Base64Url(payload.dump()));
  return absl::StrCat(signing_input, ".", Base64Url(HmacSha256(secret_, signing_input)));
}

absl::StatusOr<AccessClaims> JwtCodec::Verify(std::string_view token, absl::Time now) const {
  if (token.size() > 8192) return Reject("too long");
  size_t dot1 = token.find('.');
  size_t dot2 = dot1 == std::string_view::npos ? dot1 : token.find('.', dot1 + 1);
  if (dot2 == std::string_view::npos || token.find('.', dot2 + 1) != std::string_view::npos) {
    return Reject("not a JWT (three dot-separated parts)");
  }
  std::string header_json, payload_json, signature;
  if (!FromBase64Url(token.substr(0, dot1), &header_json) ||
      !FromBase64Url(token.substr(dot1 + 1, dot2 - dot1 - 1), &payload_json) ||
      !FromBase64Url(token.substr(dot2 + 1), &signature)) {
    return Reject("malformed base64url");
  }
  nlohmann::json header = nlohmann::json::parse(header_json, nullptr, false);
  if (!header.is_object() || !header.contains("alg") || header["alg"] != "HS256") {
    return Reject("the algorithm must be HS256");
  }
  if (header.contains("crit")) return Reject("unsupported critical header");
  std::string expected = HmacSha256(secret_, token.substr(0, dot2));
  if (!ConstantTimeEquals(expected, signature)) return Reject("bad signature");

  nlohmann::json payload = nlohmann::json::parse(payload_json, nullptr, false);
  if (!payload.is_object()) return Reject("the payload is not a JSON object");
  auto string_claim = [&](const char* name) -> std::string {
    auto it = payload.find(name);
    return it != payload.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  auto time_claim = [&](const char* name) -> std::optional<absl::Time> {
    auto it = payload.find(name);
    if (it == payload.end() || !it->is_number_integer()) return std::nullopt;
    return absl::FromUnixSeconds(it->get<int64_t>());
  };
  if (string_claim("iss") != issuer_) return Reject("wrong issuer");
  AccessClaims claims;
  claims.subject = string_claim("sub");
  claims.tenant = string_claim("tid");
  claims.token_id = string_claim("jti");
  std::optional<absl::Time> exp = time_claim("exp");
  std::optional<absl::Time> iat = time_claim("iat");
  if (claims.subject.empty() || claims.tenant.empty() || !exp || !iat) return Reject("missing claims");
  if (now >= *exp + leeway_) return Reject("expired");
  if (*iat > now + leeway_) return Reject("issued in the future");
  if (auto nbf = time_claim("nbf"); nbf && *nbf > now + leeway_) return Reject("not valid yet");
  claims.issued_at = *iat;
  claims.expires_at = *exp;
  if (auto it = payload.find("roles"); it != payload.end() && it->is_array()) {
    for (const auto& r : *it) {
      if (r.is_string()) claims.roles.push_back(r.get<std::string>());
    }
  }
  return claims;
}

}  // namespace ptd::gateway
