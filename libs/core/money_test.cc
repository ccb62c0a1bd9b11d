#include "libs/core/money.h"

#include <catch2/catch.hpp>

TEST_CASE("money: price of a quantity rounds half away from zero to a minor unit") {
  ptd::Money per_tonne{"CNY", 650000};  // 6,500.00 CNY/t
  CHECK(*ptd::PriceOf(per_tonne, 1500) == ptd::Money{"CNY", 975000});
  CHECK(ptd::PriceOf({"CNY", 3}, 500)->amount_minor == 2);    // 1.5 -> 2
  CHECK(ptd::PriceOf({"CNY", 3}, 499)->amount_minor == 1);    // 1.497 -> 1
  CHECK(ptd::PriceOf({"CNY", -3}, 500)->amount_minor == -2);
  CHECK(ptd::PriceOf({"CNY", INT64_MAX}, 2000).status().code() == absl::StatusCode::kOutOfRange);
}

TEST_CASE("money: arithmetic refuses mixed currencies and overflow") {
  CHECK(ptd::Add({"CNY", 1}, {"USD", 1}).status().code() == absl::StatusCode::kFailedPrecondition);
  CHECK(ptd::Add({"CNY", INT64_MAX}, {"CNY", 1}).status().code() == absl::StatusCode::kOutOfRange);
  CHECK(*ptd::Subtract({"CNY", 5}, {"CNY", 7}) == ptd::Money{"CNY", -2});
}

TEST_CASE("money: formatting and parsing are exact") {
  CHECK(ptd::FormatMoney({"CNY", 12345}) == "123.45 CNY");
  CHECK(ptd::FormatMoney({"CNY", -5}) == "-0.05 CNY");
  CHECK(ptd::FormatQuantity({1500, "t"}) == "1.5 t");
  CHECK(ptd::FormatQuantity({2000, "kg"}) == "2 kg");
  CHECK(*ptd::ParseMilli("1.5") == 1500);
  CHECK(*ptd::ParseMilli("-0.001") == -1);
  CHECK(*ptd::ParseMilli("42") == 42000);
  for (const char* bad : {"", "1.", ".5", "1.2345", "1e3", "abc", "99999999999999999999"}) {
    CHECK_FALSE(ptd::ParseMilli(bad).ok());
  }
}

TEST_CASE("money: currency codes") {
  CHECK(ptd::IsCurrencyCode("CNY"));
  CHECK_FALSE(ptd::IsCurrencyCode("cny"));
  CHECK_FALSE(ptd::IsCurrencyCode("CN"));
}
