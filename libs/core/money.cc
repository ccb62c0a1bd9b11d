#include "libs/core/money.h"

#include <cstdlib>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace ptd {

bool IsCurrencyCode(std::string_view code) {
  if (code.size() != 3) return false;
  for (char c : code) {
    if (c < 'A' || c > 'Z') return false;
  }
  return true;
}

namespace {
absl::Status SameCurrency(const Money& a, const Money& b) {
  if (a.currency != b.currency) {
    return absl::FailedPreconditionError(absl::StrCat("currency mismatch: ", a.currency, " vs ", b.currency));
  }
  return absl::OkStatus();
}
}  // namespace

absl::StatusOr<Money> Add(const Money& a, const Money& b) {
  if (absl::Status s = SameCurrency(a, b); !s.ok()) return s;
  int64_t sum;
  if (__builtin_add_overflow(a.amount_minor, b.amount_minor, &sum)) return absl::OutOfRangeError("money overflow");
  return Money{a.currency, sum};
}

absl::StatusOr<Money> Subtract(const Money& a, const Money& b) {
  if (absl::Status s = SameCurrency(a, b); !s.ok()) return s;
  int64_t diff;
  if (__builtin_sub_overflow(a.amount_minor, b.amount_minor, &diff)) return absl::OutOfRangeError("money overflow");
  return Money{a.currency, diff};
}

absl::StatusOr<Money> PriceOf(const Money& unit_price, int64_t quantity_milli) {
  __int128 product = static_cast<__int128>(unit_price.amount_minor) * quantity_milli;
  __int128 q = product / 1000;
  __int128 r = product % 1000;
  if (r >= 500) ++q;
  if (r <= -500) --q;
  if (q > INT64_MAX || q < INT64_MIN) return absl::OutOfRangeError("price overflow");
  return Money{unit_price.currency, static_cast<int64_t>(q)};
}

namespace {
// |v| as decimal text with `digits` decimals, trailing zeros kept or trimmed.
std::string Decimal(int64_t v, int digits, bool trim) {
  bool negative = v < 0;
  unsigned __int128 magnitude = negative ? -static_cast<__int128>(v) : v;
  unsigned __int128 scale = 1;
  for (int i = 0; i < digits; ++i) scale *= 10;
  std::string whole = std::to_string(static_cast<uint64_t>(magnitude / scale));
  std::string frac = std::to_string(static_cast<uint64_t>(magnitude % scale));
  frac.insert(0, digits - frac.size(), '0');
  if (trim) {
    while (!frac.empty() && frac.back() == '0') frac.pop_back();
  }
  return absl::StrCat(negative ? "-" : "", whole, frac.empty() ? "" : ".", frac);
}
}  // namespace

std::string FormatMoney(const Money& money, int minor_digits) {
  return absl::StrCat(Decimal(money.amount_minor, minor_digits, false), " ", money.currency);
}

std::string FormatQuantity(const Quantity& quantity) {
  return absl::StrCat(Decimal(quantity.milli, 3, true), " ", quantity.unit);
}

absl::StatusOr<int64_t> ParseMilli(std::string_view text) {
  auto bad = [&] { return absl::InvalidArgumentError(absl::StrCat("not a decimal with at most 3 decimals: '", std::string(text), "'")); };
  if (text.empty()) return bad();
  bool negative = false;
  if (text[0] == '-' || text[0] == '+') {
    negative = text[0] == '-';
    text.remove_prefix(1);
  }
  size_t dot = text.find('.');
  std::string_view whole = text.substr(0, dot);
  std::string_view frac = dot == std::string_view::npos ? std::string_view() : text.substr(dot + 1);
  if (whole.empty() || frac.size() > 3 || (dot != std::string_view::npos && frac.empty())) return bad();
  __int128 v = 0;
  for (char c : whole) {
    if (!absl::ascii_isdigit(c)) return bad();
    v = v * 10 + (c - '0');
    if (v > INT64_MAX) return bad();
  }
  int64_t f = 0;
  for (size_t i = 0; i < 3; ++i) {
    char c = i < frac.size() ? frac[i] : '0';
    if (!absl::ascii_isdigit(c)) return bad();
    f = f * 10 + (c - '0');
  }
  v = v * 1000 + f;
  if (v > INT64_MAX) return bad();
  return negative ? -static_cast<int64_t>(v) : static_cast<int64_t>(v);
}

}  // namespace ptd
