#include "services/gateway/domain/openapi.h"

#include <catch2/catch.hpp>

#include "ptd/gateway/v1/identity.pb.h"
#include "ptd/trading/v1/trading.pb.h"

TEST_CASE("gateway: the OpenAPI document follows the JSON mapping") {
  (void)ptd::trading::v1::Listing::descriptor();
  (void)ptd::gateway::v1::LoginRequest::descriptor();
  auto table = ptd::gateway::RouteTable::Build(*google::protobuf::DescriptorPool::generated_pool(),
                                               ptd::gateway::GeneratedFileNames(), {"ptd."});
  REQUIRE(table.ok());
  nlohmann::json doc = ptd::gateway::OpenApiDocument(*table);
  CHECK(doc["openapi"] == "3.0.3");
  auto money = doc["components"]["schemas"]["ptd.common.v1.Money"]["properties"];
  CHECK(money["amountMinor"] == nlohmann::json({{"type", "string"}, {"format", "int64"}}));
  auto patch = doc["paths"]["/v1/listings/{listing_id}"]["patch"];
  CHECK(patch["requestBody"]["content"]["application/json"]["schema"]["$ref"] ==
        "#/components/schemas/ptd.trading.v1.UpdateListingRequest");
  auto users = doc["paths"]["/v1/enterprise/users"]["post"];
  CHECK(users["requestBody"]["content"]["application/json"]["schema"]["$ref"] ==
        "#/components/schemas/ptd.gateway.v1.User");
  CHECK(users["parameters"][0]["name"] == "idempotencyKey");
  CHECK(doc["paths"]["/v1/enterprise/api-keys/{api_key_id}:revoke"].contains("post"));
  CHECK(doc["paths"]["/v1/auth/register"]["post"]["security"].empty());
}

TEST_CASE("gateway: a server-streaming route is described as newline-delimited JSON") {
  auto table = ptd::gateway::RouteTable::Build(*google::protobuf::DescriptorPool::generated_pool(),
                                               ptd::gateway::GeneratedFileNames(), {"ptd."});
  REQUIRE(table.ok());
  nlohmann::json doc = ptd::gateway::OpenApiDocument(*table);
  auto stream = doc["paths"]["/v1/spot/books/{commodity_id}/trades:stream"]["get"];
  REQUIRE(stream.is_object());
  CHECK(stream["operationId"] == "SpotMarketService_StreamTrades");
  auto ok = stream["responses"]["200"]["content"];
  CHECK(!ok.contains("application/json"));
  auto line = ok["application/x-ndjson"]["schema"]["properties"];
  CHECK(line["result"]["$ref"] == "#/components/schemas/ptd.trading.v1.PublicTrade");
  CHECK(line["error"]["$ref"] == "#/components/schemas/ptd.gateway.Error");
  CHECK(doc["components"]["schemas"].contains("ptd.trading.v1.PublicTrade"));
  bool has_after_sequence = false;
  for (const auto& p : stream["parameters"]) has_after_sequence |= p["name"] == "afterSequence";
  CHECK(has_after_sequence);
  CHECK(doc["paths"]["/v1/telemetry/live"]["get"]["responses"]["200"]["content"].contains("application/x-ndjson"));
}
