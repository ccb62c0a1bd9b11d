#include "libs/core/request.h"

#include <catch2/catch.hpp>
#include <string>

#include "absl/strings/escaping.h"
#include "google/rpc/error_details.pb.h"
#include "libs/core/ids.h"

namespace ptd {
namespace {

std::vector<std::string> Fields(const FieldViolations& violations) {
  std::vector<std::string> out;
  for (const FieldViolation& v : violations.violations()) out.push_back(v.field);
  return out;
}

TEST_CASE("UTF-8 check accepts every script the platform serves") {
  for (const char* text : {"钛精矿", "Ethanol", "إيثانول", "에탄올", "इथेनॉल", "エタノール", "tab\tok", "😀"}) {
    CHECK(IsCleanText(text));
  }
  for (std::string text :
       {std::string("\xed\xa0\x80"), std::string("\xf4\x90\x80\x80"), std::string("\xe4\xb8"), std::string("\x7f")}) {
    CHECK_FALSE(IsCleanText(text));
  }
}

TEST_CASE("UTF-8 check refuses control characters, NUL and overlong encodings") {
  CHECK_FALSE(IsCleanText(std::string("a\0b", 3)));
  CHECK_FALSE(IsCleanText("bell\a"));
  CHECK_FALSE(IsCleanText("\xc0\xaf"));  // '/' in two bytes
  CHECK_FALSE(IsCleanText("\xff"));
  CHECK(IsCleanText("line\nbreak"));
  CHECK(IsCleanText(""));
}

TEST_CASE("page size: 0 is the default, 1 to the maximum as asked, anything else names page_size") {
  auto [requested, expected, bad] = GENERATE(table<int32_t, int, bool>({
      {0, kDefaultPageSize, false},
      {1, 1, false},
      {kMaxPageSize, kMaxPageSize, false},
      {kMaxPageSize + 1, kDefaultPageSize, true},
      {-1, kDefaultPageSize, true},
      {INT32_MIN, kDefaultPageSize, true},
  }));
  CAPTURE(requested);
  FieldViolations violations;
  CHECK(PageSize(requested, violations) == expected);
  CHECK(Fields(violations) == (bad ? std::vector<std::string>{"page_size"} : std::vector<std::string>{}));
}

TEST_CASE("a page token gives back the id it was made from") {
  const std::string id = NewId();
  FieldViolations violations;
  CHECK(AfterId(PageToken(id), violations) == id);
  CHECK(AfterId("", violations).empty());
  CHECK(violations.empty());
}

TEST_CASE("a page token this service did not hand out names page_token") {
  const std::string bad = GENERATE(std::string("not base64!"), absl::WebSafeBase64Escape("not-an-id"),
                                   std::string(kMaxPageTokenBytes + 1, 'A'), std::string("%%%"));
  CAPTURE(bad);
  FieldViolations violations;
  CHECK(AfterId(bad, violations).empty());
  CHECK(Fields(violations) == std::vector<std::string>{"page_token"});
}

TEST_CASE("a key page token holds any clean text, and refuses what is not") {
  FieldViolations violations;
  CHECK(AfterKey(PageToken("PVC-SG5|2026-12-04"), violations) == "PVC-SG5|2026-12-04");
  CHECK(violations.empty());
  CHECK(AfterKey(PageToken(std::string("a\0b", 3)), violations).empty());
  CHECK(AfterKey(absl::WebSafeBase64Escape(""), violations).empty());  // "" is no token, not a bad one
  CHECK(AfterKey("!!", violations).empty());
  CHECK(Fields(violations) == std::vector<std::string>{"page_token", "page_token"});
}

TEST_CASE("an id field is required and must be an id") {
  FieldViolations violations;
  CheckId("order_id", NewId(), violations);
  CHECK(violations.empty());
  CheckId("order_id", "", violations);
  CheckId("listing_id", "42", violations);
  REQUIRE(violations.violations().size() == 2);
  CHECK(violations.violations()[0] == FieldViolation{"order_id", "must not be empty"});
  CHECK(violations.violations()[1] == FieldViolation{"listing_id", "must be an id as returned by the service"});
}

TEST_CASE("an idempotency key is required, clean and at most 128 bytes") {
  auto [key, ok] = GENERATE(table<std::string, bool>({
      {"k", true},
      {std::string(kMaxIdempotencyKeyBytes, 'k'), true},
      {"订单-2026-12-04", true},
      {"", false},
      {std::string(kMaxIdempotencyKeyBytes + 1, 'k'), false},
      {std::string("k\x01"), false},
  }));
  CAPTURE(key);
  FieldViolations violations;
  CheckIdempotencyKey(key, violations);
  CHECK(Fields(violations) == (ok ? std::vector<std::string>{} : std::vector<std::string>{"idempotency_key"}));
}

TEST_CASE("the request hash tells equal requests from different ones") {
  google::rpc::BadRequest a, b;
  a.add_field_violations()->set_field("x");
  b.add_field_violations()->set_field("x");
  CHECK(RequestHash(a) == RequestHash(b));
  CHECK(RequestHash(a).size() == 64);
  b.mutable_field_violations(0)->set_description("y");
  CHECK(RequestHash(a) != RequestHash(b));
}

TEST_CASE("a reused idempotency key is ALREADY_EXISTS and says so") {
  absl::Status status = ReusedKeyError();
  CHECK(status.code() == absl::StatusCode::kAlreadyExists);
  CHECK(status.message().find("idempotency_key") != std::string_view::npos);
}

}  // namespace
}  // namespace ptd
