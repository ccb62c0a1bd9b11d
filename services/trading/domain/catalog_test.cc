#include "services/trading/domain/catalog.h"

#include <catch2/catch.hpp>

#include "libs/core/ids.h"
#include "libs/core/request.h"

using namespace ptd::trading;

namespace {

NewListing GoodListing() {
  NewListing l;
  l.idempotency_key = "k-1";
  l.commodity_id = ptd::NewId();
  l.title = {{"zh", "PVC SG-5 现货"}, {"en", "PVC SG-5 spot"}};
  l.unit_price = {"CNY", 580000};
  l.available = {100000, "t"};
  return l;
}

std::vector<std::string> FieldsOf(const ptd::FieldViolations& v) {
  std::vector<std::string> out;
  for (const auto& x : v.violations()) out.push_back(x.field);
  return out;
}

}  // namespace

TEST_CASE("catalog: a good listing has no violations") {
  ptd::FieldViolations v;
  ValidateNewListing(GoodListing(), v);
  CHECK(v.empty());
}

TEST_CASE("catalog: each bad listing field is named") {
  struct Case {
    const char* what;
    void (*spoil)(NewListing&);
    const char* field;
  };
  auto c = GENERATE(
      Case{"empty title text", [](NewListing& l) { l.title[1].text = "  "; }, "title[1].text"},
      Case{"no title", [](NewListing& l) { l.title.clear(); }, "title"},
      Case{"bad language", [](NewListing& l) { l.title[0].lang = "chinese!"; }, "title[0].lang"},
      Case{"duplicate language", [](NewListing& l) { l.title[1].lang = "zh"; }, "title[1].lang"},
      Case{"invalid UTF-8", [](NewListing& l) { l.title[0].text = "\xc3\x28"; }, "title[0].text"},
      Case{"overlong UTF-8", [](NewListing& l) { l.title[0].text = "\xc0\xaf"; }, "title[0].text"},
      Case{"control character", [](NewListing& l) { l.title[0].text = std::string("a\0b", 3); }, "title[0].text"},
      Case{"huge text", [](NewListing& l) { l.title[0].text = std::string(600, 'x'); }, "title[0].text"},
      Case{"negative price", [](NewListing& l) { l.unit_price.amount_minor = -5; }, "unit_price.amount_minor"},
      Case{"zero price", [](NewListing& l) { l.unit_price.amount_minor = 0; }, "unit_price.amount_minor"},
      Case{"bad currency", [](NewListing& l) { l.unit_price.currency = "yuan"; }, "unit_price.currency"},
      Case{"unknown unit", [](NewListing& l) { l.available.unit = "furlong"; }, "available.unit"},
      Case{"zero quantity", [](NewListing& l) { l.available.milli = 0; }, "available.milli"},
      Case{"no idempotency key", [](NewListing& l) { l.idempotency_key.clear(); }, "idempotency_key"},
      Case{"bad commodity id", [](NewListing& l) { l.commodity_id = "x"; }, "commodity_id"},
      Case{"min order above available",
           [](NewListing& l) { l.min_order = ptd::Quantity{200000, "t"}; }, "min_order.milli"},
      Case{"min order in another unit", [](NewListing& l) { l.min_order = ptd::Quantity{1, "kg"}; },
           "min_order.unit"});
  INFO(c.what);
  NewListing l = GoodListing();
  c.spoil(l);
  ptd::FieldViolations v;
  ValidateNewListing(l, v);
  REQUIRE(FieldsOf(v) == std::vector<std::string>{c.field});
  CHECK(v.ToStatus().code() == absl::StatusCode::kInvalidArgument);
}

TEST_CASE("catalog: page size defaults, and refuses out-of-range values") {
  ptd::FieldViolations ok;
  CHECK(ptd::PageSize(0, ok) == ptd::kDefaultPageSize);
  CHECK(ptd::PageSize(500, ok) == 500);
  CHECK(ok.empty());
  ptd::FieldViolations big;
  ptd::PageSize(1000000000, big);
  CHECK(FieldsOf(big) == std::vector<std::string>{"page_size"});
  ptd::FieldViolations negative;
  ptd::PageSize(-1, negative);
  CHECK_FALSE(negative.empty());
}

TEST_CASE("catalog: commodities need a known vertical, a code, names and a known unit") {
  Commodity c{.vertical = "glass", .code = "FLOAT-5MM", .name = {{"en", "Float glass 5 mm"}}, .unit = "m2"};
  ptd::FieldViolations v;
  ValidateCommodity(c, "commodity", v);
  CHECK(v.empty());
  c.vertical = "toys";
  c.code = "bad code!";
  c.unit = "parsec";
  c.name.clear();
  ptd::FieldViolations bad;
  ValidateCommodity(c, "commodity", bad);
  CHECK(FieldsOf(bad) ==
        std::vector<std::string>{"commodity.vertical", "commodity.code", "commodity.name", "commodity.unit"});
}

TEST_CASE("catalog: changes apply to a listing, bump its version and respect its rules") {
  Listing l{.unit_price = {"CNY", 100}, .available = {5000, "t"}, .version = 3};
  ListingChange change{.unit_price = ptd::Money{"CNY", 90}, .expected_version = 3};
  REQUIRE(ApplyChange(change, l).ok());
  CHECK(l.unit_price.amount_minor == 90);
  CHECK(l.version == 4);
  CHECK(ApplyChange(change, l).code() == absl::StatusCode::kAborted);  // version moved on
  CHECK(ApplyChange({.available = ptd::Quantity{1, "kg"}}, l).code() == absl::StatusCode::kFailedPrecondition);
  CHECK(ApplyChange({.unit_price = ptd::Money{"USD", 1}}, l).code() == absl::StatusCode::kFailedPrecondition);
  REQUIRE(ApplyChange({.status = ListingStatus::kClosed}, l).ok());
  CHECK(ApplyChange({.unit_price = ptd::Money{"CNY", 1}}, l).code() == absl::StatusCode::kFailedPrecondition);
}
