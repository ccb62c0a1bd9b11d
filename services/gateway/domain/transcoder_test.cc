#include "services/gateway/domain/transcoder.h"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "ptd/gateway/v1/identity.pb.h"
#include "ptd/trading/v1/trading.pb.h"

using namespace ptd::gateway;

namespace {
const RouteTable& Table() {
  (void)ptd::trading::v1::Listing::descriptor();
  (void)ptd::gateway::v1::LoginRequest::descriptor();
  static const RouteTable table =
      *RouteTable::Build(*google::protobuf::DescriptorPool::generated_pool(), GeneratedFileNames(), {"ptd."});
  return table;
}
}  // namespace

TEST_CASE("gateway: a path variable, query parameters and a body fill the request") {
  auto lookup = Table().Find("PATCH", "/v1/listings/L1");
  REQUIRE(lookup.match);
  ptd::trading::v1::UpdateListingRequest request;
  REQUIRE(BuildRequest(*lookup.match, "", R"({"status":"LISTING_STATUS_PAUSED","expected_version":"7",
                       "unitPrice":{"currency":"CNY","amountMinor":12}})",
                       {}, &request)
              .ok());
  CHECK(request.listing_id() == "L1");
  CHECK(request.status() == ptd::trading::v1::LISTING_STATUS_PAUSED);
  CHECK(request.expected_version() == 7);
  CHECK(request.unit_price().amount_minor() == 12);

  auto list = Table().Find("GET", "/v1/listings");
  ptd::trading::v1::ListListingsRequest query;
  REQUIRE(BuildRequest(*list.match, "status=LISTING_STATUS_ACTIVE&pageSize=20&query=PVC+spot%21", "", {}, &query).ok());
  CHECK(query.status() == ptd::trading::v1::LISTING_STATUS_ACTIVE);
  CHECK(query.page_size() == 20);
  CHECK(query.query() == "PVC spot!");

  auto create_user = Table().Find("POST", "/v1/enterprise/users");
  ptd::gateway::v1::CreateUserRequest user;
  REQUIRE(BuildRequest(*create_user.match, "idempotencyKey=k", R"({"email":"a@b.c","roles":["USER_ROLE_CLERK"]})", {},
                       &user)
              .ok());
  CHECK(user.idempotency_key() == "k");
  CHECK(user.user().email() == "a@b.c");
  CHECK(user.user().roles(0) == ptd::gateway::v1::USER_ROLE_CLERK);
}

TEST_CASE("gateway: bad input is INVALID_ARGUMENT and leaves no partial call") {
  auto create = Table().Find("POST", "/v1/listings");
  auto list = Table().Find("GET", "/v1/listings");
  auto [name, match, query, body] = GENERATE_COPY(table<std::string, RouteTable::Match, std::string, std::string>({
      {"malformed", *create.match, "", "{"},
      {"unknown field", *create.match, "", R"({"nope":1})"},
      {"wrong type", *create.match, "", R"({"title":"x"})"},
      {"too deep", *create.match, "", std::string(40, '[') + std::string(40, ']')},
      {"bad utf-8", *create.match, "", "{\"idempotencyKey\":\"\xc3\x28\"}"},
      {"query with body *", *create.match, "x=1", "{}"},
      {"unknown query parameter", *list.match, "nope=1", ""},
      {"bad enum", *list.match, "status=SOLD", ""},
      {"bad integer", *list.match, "pageSize=many", ""},
      {"repeated singular", *list.match, "pageSize=1&pageSize=2", ""},
      {"bad escape", *list.match, "query=%zz", ""},
      {"body without a body rule", *list.match, "", "{}"},
  }));
  INFO(name);
  std::unique_ptr<google::protobuf::Message> request(
      google::protobuf::MessageFactory::generated_factory()->GetPrototype(match.route->method->input_type())->New());
  CHECK(BuildRequest(match, query, body, {.max_json_depth = 32}, request.get()).code() ==
        absl::StatusCode::kInvalidArgument);
}

TEST_CASE("gateway: responses print in lowerCamelCase with int64 as strings and enums by name") {
  auto get = Table().Find("GET", "/v1/listings/x");
  ptd::trading::v1::Listing listing;
  listing.set_listing_id("L1");
  listing.set_version(9007199254740993);
  listing.set_status(ptd::trading::v1::LISTING_STATUS_ACTIVE);
  listing.mutable_create_time()->set_seconds(1700000000);
  auto json = RenderResponse(*get.match->route, listing, {});
  REQUIRE(json.ok());
  auto parsed = nlohmann::json::parse(*json);
  CHECK(parsed["listingId"] == "L1");
  CHECK(parsed["version"] == "9007199254740993");
  CHECK(parsed["status"] == "LISTING_STATUS_ACTIVE");
  CHECK(parsed["createTime"] == "2023-11-14T22:13:20Z");
  CHECK(parsed["tenantId"] == "");  // defaults printed: apps see a stable shape
}

TEST_CASE("gateway: JSON depth counts only structure outside strings") {
  CHECK(JsonDepth(R"({"a":[{"b":"[[[[{{{{"}]})", 100) == 3);
  CHECK(JsonDepth("1", 10) == 0);
  CHECK(JsonDepth(std::string(1000, '['), 10) == 11);  // stops early
}
