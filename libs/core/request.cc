#include "libs/core/request.h"

#include <array>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "libs/core/digest.h"
#include "libs/core/ids.h"

namespace ptd {

bool IsCleanText(std::string_view text) {
  size_t i = 0;
  while (i < text.size()) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    if (c < 0x80) {
      if ((c < 0x20 && c != '\t' && c != '\n') || c == 0x7F) return false;
      ++i;
      continue;
    }
    int extra;
    uint32_t cp;
    if ((c & 0xE0) == 0xC0) {
      extra = 1;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      extra = 2;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      extra = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + static_cast<size_t>(extra) >= text.size()) return false;
    for (int k = 1; k <= extra; ++k) {
      unsigned char cc = static_cast<unsigned char>(text[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    // Overlong encodings, surrogates and code points past U+10FFFF are not UTF-8.
    static constexpr std::array<uint32_t, 4> kMin = {0, 0x80, 0x800, 0x10000};
    if (cp < kMin[extra] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += extra + 1;
  }
  return true;
}

int PageSize(int32_t requested, FieldViolations& violations) {
  if (requested < 0 || requested > kMaxPageSize) {
    violations.Add("page_size", absl::StrCat("must be between 0 and ", kMaxPageSize, ", got ", requested));
    return kDefaultPageSize;
  }
  return requested == 0 ? kDefaultPageSize : requested;
}

std::string PageToken(std::string_view last_key) {
  return absl::WebSafeBase64Escape(absl::string_view(last_key.data(), last_key.size()));
}

namespace {

// The key inside a token; nullopt-like "" with a violation for anything not handed out.
template <typename Valid>
std::string KeyOf(std::string_view token, FieldViolations& violations, Valid valid) {
  if (token.empty()) return "";
  std::string key;
  if (token.size() > kMaxPageTokenBytes ||
      !absl::WebSafeBase64Unescape(absl::string_view(token.data(), token.size()), &key) || !valid(key)) {
    violations.Add("page_token", "is not a token this service returned");
    return "";
  }
  return key;
}

}  // namespace

std::string AfterId(std::string_view token, FieldViolations& violations) {
  return KeyOf(token, violations, [](const std::string& key) { return IsValidId(key); });
}

std::string AfterKey(std::string_view token, FieldViolations& violations) {
  return KeyOf(token, violations, [](const std::string& key) { return !key.empty() && IsCleanText(key); });
}

void CheckId(std::string_view field, std::string_view value, FieldViolations& violations) {
  if (value.empty()) {
    violations.Add(std::string(field), "must not be empty");
  } else if (!IsValidId(value)) {
    violations.Add(std::string(field), "must be an id as returned by the service");
  }
}

void CheckIdempotencyKey(std::string_view key, FieldViolations& violations) {
  if (key.empty()) {
    violations.Add("idempotency_key", "must not be empty: a retried create must not create twice");
  } else if (key.size() > kMaxIdempotencyKeyBytes || !IsCleanText(key)) {
    violations.Add("idempotency_key",
                   absl::StrCat("must be printable UTF-8 of at most ", kMaxIdempotencyKeyBytes, " bytes"));
  }
}

std::string RequestHash(const google::protobuf::Message& request) { return Sha256OfMessage(request); }

absl::Status ReusedKeyError() {
  return absl::AlreadyExistsError("idempotency_key was already used for a different request");
}

}  // namespace ptd
