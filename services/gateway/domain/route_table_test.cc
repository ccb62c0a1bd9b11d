#include "services/gateway/domain/route_table.h"

#include <google/protobuf/descriptor.pb.h>
#include <google/protobuf/text_format.h>

#include <catch2/catch.hpp>

#include "ptd/gateway/v1/identity.pb.h"
#include "ptd/trading/v1/trading.pb.h"

using ptd::gateway::RouteTable;

namespace {
const RouteTable& Table() {
  // Referencing the messages links their files into the generated pool.
  (void)ptd::trading::v1::Listing::descriptor();
  (void)ptd::gateway::v1::LoginRequest::descriptor();
  static const RouteTable table = *RouteTable::Build(*google::protobuf::DescriptorPool::generated_pool(),
                                                     ptd::gateway::GeneratedFileNames(), {"ptd."});
  return table;
}
}  // namespace

TEST_CASE("gateway: the route table holds every annotated method of ptd.* services") {
  const RouteTable& table = Table();
  auto get = table.Find("GET", "/v1/listings/abc");
  REQUIRE(get.match);
  CHECK(get.match->route->grpc_path == "/ptd.trading.v1.TradingService/GetListing");
  CHECK(get.match->route->package == "ptd.trading.v1");
  CHECK(get.match->values == std::vector<std::string>{"abc"});
  CHECK(!get.match->route->allow_anonymous);

  auto login = table.Find("POST", "/v1/auth/login");
  REQUIRE(login.match);
  CHECK(login.match->route->allow_anonymous);
  CHECK(login.match->route->body_is_whole);

  auto create_user = table.Find("POST", "/v1/enterprise/users");
  REQUIRE(create_user.match);
  CHECK(ptd::gateway::FieldPathName(create_user.match->route->body_field) == "user");

  auto revoke = table.Find("POST", "/v1/enterprise/api-keys/k1:revoke");
  REQUIRE(revoke.match);
  CHECK(revoke.match->route->method->name() == "RevokeApiKey");

  auto wrong_method = table.Find("DELETE", "/v1/listings/abc");
  CHECK(!wrong_method.match);
  CHECK(wrong_method.path_known);
  CHECK(!table.Find("GET", "/v2/nothing").path_known);
}

TEST_CASE("gateway: field paths resolve by proto or JSON names") {
  const auto* request = ptd::trading::v1::UpdateListingRequest::descriptor();
  auto by_proto = ptd::gateway::ResolveFieldPath(request, "unit_price.amount_minor");
  auto by_json = ptd::gateway::ResolveFieldPath(request, "unitPrice.amountMinor");
  REQUIRE(by_proto.ok());
  REQUIRE(by_json.ok());
  CHECK(*by_proto == *by_json);
  CHECK(!ptd::gateway::ResolveFieldPath(request, "unit_price.nope").ok());
  CHECK(!ptd::gateway::ResolveFieldPath(request, "title.text").ok());  // through a repeated field
  CHECK(!ptd::gateway::ResolveFieldPath(request, "listing_id.x").ok());
}

TEST_CASE("gateway: server-streaming methods are routed, client-streaming and bidirectional ones are not") {
  const RouteTable& table = Table();
  auto trades = table.Find("GET", "/v1/spot/books/01900000-0000-7000-8000-000000000001/trades:stream");
  REQUIRE(trades.match);
  CHECK(trades.match->route->grpc_path == "/ptd.trading.v1.SpotMarketService/StreamTrades");
  CHECK(trades.match->route->server_streaming);
  auto book = table.Find("GET", "/v1/spot/books/01900000-0000-7000-8000-000000000001");
  REQUIRE(book.match);
  CHECK(!book.match->route->server_streaming);

  // A contract with every kind of call, each with a rule.
  constexpr char kContract[] = R"(
    name: "ptd/streamtest/v1/streams.proto"
    package: "ptd.streamtest.v1"
    syntax: "proto3"
    dependency: "google/api/annotations.proto"
    message_type { name: "Message" field { name: "id" number: 1 type: TYPE_STRING json_name: "id" } }
    service {
      name: "Streams"
      method {
        name: "Unary" input_type: ".ptd.streamtest.v1.Message" output_type: ".ptd.streamtest.v1.Message"
        options { [google.api.http] { get: "/v1/unary/{id}" } }
      }
      method {
        name: "ServerStream" input_type: ".ptd.streamtest.v1.Message" output_type: ".ptd.streamtest.v1.Message"
        server_streaming: true
        options { [google.api.http] { get: "/v1/server/{id}" } }
      }
      method {
        name: "ClientStream" input_type: ".ptd.streamtest.v1.Message" output_type: ".ptd.streamtest.v1.Message"
        client_streaming: true
        options { [google.api.http] { post: "/v1/client" body: "*" } }
      }
      method {
        name: "Bidi" input_type: ".ptd.streamtest.v1.Message" output_type: ".ptd.streamtest.v1.Message"
        client_streaming: true server_streaming: true
        options { [google.api.http] { post: "/v1/bidi" body: "*" } }
      }
    })";
  google::protobuf::FileDescriptorProto file;
  REQUIRE(google::protobuf::TextFormat::ParseFromString(kContract, &file));
  google::protobuf::DescriptorPool pool(google::protobuf::DescriptorPool::generated_pool());
  REQUIRE(pool.BuildFile(file) != nullptr);
  absl::StatusOr<RouteTable> streams = RouteTable::Build(pool, {file.name()}, {"ptd."});
  REQUIRE(streams.ok());
  CHECK(streams->routes().size() == 2);
  auto unary = streams->Find("GET", "/v1/unary/a");
  REQUIRE(unary.match);
  CHECK(!unary.match->route->server_streaming);
  auto server = streams->Find("GET", "/v1/server/a");
  REQUIRE(server.match);
  CHECK(server.match->route->server_streaming);
  CHECK(!streams->Find("POST", "/v1/client").match);
  CHECK(!streams->Find("POST", "/v1/bidi").match);
}
