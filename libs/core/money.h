#ifndef PTD_LIBS_CORE_MONEY_H_
#define PTD_LIBS_CORE_MONEY_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

// Money and quantities as integers: no floating point anywhere.
namespace ptd {

// Minor units (fen, cents) of an ISO 4217 currency.
struct Money {
  std::string currency;
  int64_t amount_minor = 0;
  bool operator==(const Money&) const = default;
};

// Thousandths of a unit ("t", "kg", ...).
struct Quantity {
  int64_t milli = 0;
  std::string unit;
  bool operator==(const Quantity&) const = default;
};

// Three upper-case ASCII letters.
bool IsCurrencyCode(std::string_view code);

// Same-currency arithmetic; FAILED_PRECONDITION on a currency mismatch, OUT_OF_RANGE on overflow.
absl::StatusOr<Money> Add(const Money& a, const Money& b);
absl::StatusOr<Money> Subtract(const Money& a, const Money& b);

// The price of `quantity_milli` thousandths of a unit at `unit_price` per unit, rounded half away from zero
// to a minor unit. OUT_OF_RANGE on overflow.
absl::StatusOr<Money> PriceOf(const Money& unit_price, int64_t quantity_milli);

// "123.45 CNY" with `minor_digits` decimals (2 for most currencies).
std::string FormatMoney(const Money& money, int minor_digits = 2);
// "1.5 t"; trailing zeros trimmed.
std::string FormatQuantity(const Quantity& quantity);
// Exact decimal text → milli-units: "1.5" → 1500; more than three decimals or garbage is INVALID_ARGUMENT.
absl::StatusOr<int64_t> ParseMilli(std::string_view text);

}  // namespace ptd

#endif  // PTD_LIBS_CORE_MONEY_H_
