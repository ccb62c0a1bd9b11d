// End to end: the real ptd-trading binary against the test run's PostgreSQL and Redis, called as a client would.
#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <sys/wait.h>

#include <catch2/catch.hpp>
#include <pqxx/pqxx>

#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "libs/redis/client.h"
#include "ptd/trading/v1/trading.grpc.pb.h"
#include "tests/testing/testing.h"
#include "tests/trading/trading_fixture.h"

namespace {

using namespace ptd::trading::v1;
using ptd::testing::Process;
using namespace ptd::testing::trading;

CreateListingRequest PvcListing(const std::string& key) {
  CreateListingRequest r;
  r.set_idempotency_key(key);
  r.set_commodity_id(kPvc);
  auto* zh = r.add_title();
  zh->set_lang("zh");
  zh->set_text("聚氯乙烯现货 " + key);
  auto* en = r.add_title();
  en->set_lang("en");
  en->set_text("PVC spot " + key);
  r.mutable_unit_price()->set_currency("CNY");
  r.mutable_unit_price()->set_amount_minor(580000);
  r.mutable_available()->set_milli(100000);
  r.mutable_available()->set_unit("t");
  return r;
}

Listing MustCreate(TradingServer& server, const std::string& tenant, const CreateListingRequest& request) {
  Call call(tenant);
  Listing listing;
  grpc::Status status = server.stub().CreateListing(&call.context, request, &listing);
  INFO(status.error_message());
  REQUIRE(status.ok());
  return listing;
}

}  // namespace

TEST_CASE("trading: create, get and list a listing, and a retried create returns the first listing") {
  TradingServer server;
  Listing created = MustCreate(server, "tenant-a", PvcListing("k1"));
  CHECK(created.tenant_id() == "tenant-a");
  CHECK(created.vertical() == "port_commodities");
  CHECK(created.status() == LISTING_STATUS_ACTIVE);
  CHECK(created.version() == 1);

  Listing again = MustCreate(server, "tenant-a", PvcListing("k1"));
  CHECK(again.listing_id() == created.listing_id());
  CHECK(server.Count("listings") == 1);

  Call reuse("tenant-a");
  CreateListingRequest other = PvcListing("k1");
  other.mutable_unit_price()->set_amount_minor(1);
  Listing ignored;
  CHECK(server.stub().CreateListing(&reuse.context, other, &ignored).error_code() == grpc::StatusCode::ALREADY_EXISTS);

  Call get("tenant-a");
  GetListingRequest g;
  g.set_listing_id(created.listing_id());
  Listing fetched;
  REQUIRE(server.stub().GetListing(&get.context, g, &fetched).ok());
  CHECK(fetched.SerializeAsString() == created.SerializeAsString());
}

TEST_CASE("trading: tenant B cannot see, list or change tenant A's listing") {
  TradingServer server;
  Listing a = MustCreate(server, "tenant-a", PvcListing("k1"));

  Call get("tenant-b");
  GetListingRequest g;
  g.set_listing_id(a.listing_id());
  Listing out;
  CHECK(server.stub().GetListing(&get.context, g, &out).error_code() == grpc::StatusCode::NOT_FOUND);

  Call update("tenant-b");
  UpdateListingRequest u;
  u.set_listing_id(a.listing_id());
  u.set_status(LISTING_STATUS_CLOSED);
  CHECK(server.stub().UpdateListing(&update.context, u, &out).error_code() == grpc::StatusCode::NOT_FOUND);

  Call list("tenant-b");
  ListListingsResponse listed;
  REQUIRE(server.stub().ListListings(&list.context, ListListingsRequest(), &listed).ok());
  CHECK(listed.listings_size() == 0);

  // The same idempotency key in another tenant is another listing.
  Listing b = MustCreate(server, "tenant-b", PvcListing("k1"));
  CHECK(b.listing_id() != a.listing_id());
}

TEST_CASE("trading: calls without the internal credential or without a tenant are refused") {
  TradingServer server;
  Call no_token("tenant-a", "clerk", /*with_token=*/false);
  ListListingsResponse out;
  CHECK(server.stub().ListListings(&no_token.context, ListListingsRequest(), &out).error_code() ==
        grpc::StatusCode::UNAUTHENTICATED);

  Call wrong_token("tenant-a", "clerk", /*with_token=*/false);
  wrong_token.context.AddMetadata("x-ptd-internal-token", "guess");
  CHECK(server.stub().ListListings(&wrong_token.context, ListListingsRequest(), &out).error_code() ==
        grpc::StatusCode::UNAUTHENTICATED);

  Call no_tenant("");
  CHECK(server.stub().ListListings(&no_tenant.context, ListListingsRequest(), &out).error_code() ==
        grpc::StatusCode::UNAUTHENTICATED);
  CHECK(server.Count("listings") == 0);
}

TEST_CASE("trading: bad input is INVALID_ARGUMENT naming the field, and writes nothing") {
  TradingServer server;
  struct Case {
    const char* what;
    void (*spoil)(CreateListingRequest&);
    const char* field;
  };
  auto c = GENERATE(
      Case{"empty title", [](CreateListingRequest& r) { r.mutable_title(0)->set_text(""); }, "title[0].text"},
      Case{"no titles", [](CreateListingRequest& r) { r.clear_title(); }, "title"},
      Case{"negative price", [](CreateListingRequest& r) { r.mutable_unit_price()->set_amount_minor(-5); },
           "unit_price.amount_minor"},
      Case{"unknown unit", [](CreateListingRequest& r) { r.mutable_available()->set_unit("furlong"); },
           "available.unit"},
      Case{"unit not the commodity's", [](CreateListingRequest& r) { r.mutable_available()->set_unit("kg"); },
           "available.unit"},
      Case{"unknown commodity",
           [](CreateListingRequest& r) { r.set_commodity_id("01900000-0000-7000-8000-0000000000ff"); },
           "commodity_id"},
      Case{"control characters", [](CreateListingRequest& r) { r.mutable_title(1)->set_text(std::string("a\x01")); },
           "title[1].text"},
      Case{"missing idempotency key", [](CreateListingRequest& r) { r.clear_idempotency_key(); }, "idempotency_key"});
  INFO(c.what);
  CreateListingRequest request = PvcListing("bad");
  c.spoil(request);
  Call call("tenant-a");
  Listing out;
  grpc::Status status = server.stub().CreateListing(&call.context, request, &out);
  CHECK(status.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  CHECK(ViolatedFields(status) == std::vector<std::string>{c.field});
  CHECK(status.error_message().find(c.field) != std::string::npos);
  CHECK(server.Count("listings") == 0);
  CHECK(server.Count("outbox") == 0);
}

TEST_CASE("trading: invalid UTF-8 on the wire is refused and writes nothing") {
  // Protobuf itself refuses a proto3 string that is not UTF-8 before any handler runs; the gateway and
  // every in-process caller meet the service's own check (tested in the domain tests).
  TradingServer server;
  CreateListingRequest request = PvcListing("utf8");
  request.mutable_title(0)->set_text("\xc3\x28");
  Call call("tenant-a");
  Listing out;
  grpc::Status status = server.stub().CreateListing(&call.context, request, &out);
  CHECK_FALSE(status.ok());
  CHECK(server.Count("listings") == 0);
}

TEST_CASE("trading: page_size out of range, bad ids and bad page tokens are INVALID_ARGUMENT") {
  TradingServer server;
  Call c1("tenant-a");
  ListListingsRequest huge;
  huge.set_page_size(1000000000);
  ListListingsResponse out;
  grpc::Status s1 = server.stub().ListListings(&c1.context, huge, &out);
  CHECK(s1.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  CHECK(ViolatedFields(s1) == std::vector<std::string>{"page_size"});

  Call c2("tenant-a");
  ListListingsRequest token;
  token.set_page_token("!!not-a-token!!");
  CHECK(ViolatedFields(server.stub().ListListings(&c2.context, token, &out)) == std::vector<std::string>{"page_token"});

  Call c3("tenant-a");
  GetListingRequest g;
  g.set_listing_id("x");
  Listing l;
  CHECK(ViolatedFields(server.stub().GetListing(&c3.context, g, &l)) == std::vector<std::string>{"listing_id"});
}

TEST_CASE("trading: listings page newest first and are found by a title in any language") {
  TradingServer server;
  std::vector<std::string> ids;
  for (int i = 0; i < 7; ++i) ids.push_back(MustCreate(server, "tenant-a", PvcListing("p" + std::to_string(i))).listing_id());
  std::vector<std::string> seen;
  std::string token;
  int pages = 0;
  do {
    Call call("tenant-a");
    ListListingsRequest r;
    r.set_page_size(3);
    r.set_page_token(token);
    ListListingsResponse out;
    REQUIRE(server.stub().ListListings(&call.context, r, &out).ok());
    for (const auto& l : out.listings()) seen.push_back(l.listing_id());
    token = out.next_page_token();
    ++pages;
  } while (!token.empty());
  CHECK(pages == 3);
  std::vector<std::string> newest_first(ids.rbegin(), ids.rend());
  CHECK(seen == newest_first);

  for (const char* query : {"聚氯乙烯现货 p3", "pvc SPOT p3"}) {
    Call call("tenant-a");
    ListListingsRequest r;
    r.set_query(query);
    ListListingsResponse out;
    REQUIRE(server.stub().ListListings(&call.context, r, &out).ok());
    REQUIRE(out.listings_size() == 1);
    CHECK(out.listings(0).listing_id() == ids[3]);
  }
}

TEST_CASE("trading: the catalogue lists the verticals and finds commodities by any language") {
  TradingServer server;
  Call v("tenant-a");
  ListVerticalsResponse verticals;
  REQUIRE(server.stub().ListVerticals(&v.context, ListVerticalsRequest(), &verticals).ok());
  CHECK(verticals.verticals_size() == 8);

  for (const char* query : {"乙醇", "ethanol", "إيثانول", "इथेनॉल"}) {
    Call call("tenant-a");
    ListCommoditiesRequest r;
    r.set_query(query);
    ListCommoditiesResponse out;
    REQUIRE(server.stub().ListCommodities(&call.context, r, &out).ok());
    REQUIRE(out.commodities_size() == 1);
    CHECK(out.commodities(0).commodity_id() == kEthanol);
  }

  Call glass("tenant-a");
  ListCommoditiesRequest by_vertical;
  by_vertical.set_vertical("glass");
  ListCommoditiesResponse out;
  REQUIRE(server.stub().ListCommodities(&glass.context, by_vertical, &out).ok());
  CHECK(out.commodities_size() == 2);
}

TEST_CASE("trading: only a catalog_admin adds commodities, once per idempotency key") {
  TradingServer server;
  CreateCommodityRequest r;
  r.set_idempotency_key("c1");
  auto* c = r.mutable_commodity();
  c->set_vertical("paper");
  c->set_code("KRAFTLINER-175");
  auto* n = c->add_name();
  n->set_lang("en");
  n->set_text("Kraftliner 175 gsm");
  c->set_unit("t");
  Commodity out;
  Call clerk("platform", "clerk");
  CHECK(server.stub().CreateCommodity(&clerk.context, r, &out).error_code() == grpc::StatusCode::PERMISSION_DENIED);
  Call admin("platform", "catalog_admin");
  REQUIRE(server.stub().CreateCommodity(&admin.context, r, &out).ok());
  Call again("platform", "catalog_admin");
  Commodity out2;
  REQUIRE(server.stub().CreateCommodity(&again.context, r, &out2).ok());
  CHECK(out2.commodity_id() == out.commodity_id());
  Call dup("platform", "catalog_admin");
  r.set_idempotency_key("c2");
  CHECK(server.stub().CreateCommodity(&dup.context, r, &out2).error_code() == grpc::StatusCode::ALREADY_EXISTS);
}

TEST_CASE("trading: updates bump the version, stale versions are ABORTED, and every change is an event") {
  TradingServer server;
  Listing l = MustCreate(server, "tenant-a", PvcListing("u1"));
  Call c1("tenant-a");
  UpdateListingRequest u;
  u.set_listing_id(l.listing_id());
  u.mutable_unit_price()->set_currency("CNY");
  u.mutable_unit_price()->set_amount_minor(570000);
  u.set_expected_version(1);
  Listing updated;
  REQUIRE(server.stub().UpdateListing(&c1.context, u, &updated).ok());
  CHECK(updated.version() == 2);
  CHECK(updated.unit_price().amount_minor() == 570000);
  Call c2("tenant-a");
  CHECK(server.stub().UpdateListing(&c2.context, u, &updated).error_code() == grpc::StatusCode::ABORTED);

  // Both events reach the stream through the relay, with the listing in the payload.
  auto redis = ptd::redis::Client::Create({.url = ptd::testing::GetInfra().redis_url});
  REQUIRE(redis.ok());
  std::vector<std::string> types;
  REQUIRE(ptd::testing::WaitFor([&] {
    types.clear();
    auto reply = (*redis)->Command({"XRANGE", "ptd.trading.events", "-", "+"});
    if (!reply.ok()) return false;
    for (const auto& entry : reply->elements) {
      const auto& fields = entry.elements[1].elements;
      bool ours = false;
      std::string type;
      for (size_t i = 0; i + 1 < fields.size(); i += 2) {
        if (fields[i].str == "aggregate_id" && fields[i + 1].str == l.listing_id()) ours = true;
        if (fields[i].str == "type") type = fields[i + 1].str;
      }
      if (ours) types.push_back(type);
    }
    return types.size() == 2;
  }));
  CHECK(types == std::vector<std::string>{"ptd.trading.v1.ListingCreated", "ptd.trading.v1.ListingUpdated"});
}

TEST_CASE("trading: /metrics serves the gRPC server metrics after a few calls") {
  TradingServer server;
  for (int i = 0; i < 3; ++i) {
    Call call("tenant-a");
    ListListingsResponse out;
    REQUIRE(server.stub().ListListings(&call.context, ListListingsRequest(), &out).ok());
  }
  Call bad("tenant-a");
  GetListingRequest g;
  Listing l;
  server.stub().GetListing(&bad.context, g, &l);
  std::string metrics = ptd::testing::HttpGet(server.metrics_port(), "/metrics");
  CHECK(metrics.find("grpc_server_handled_total{") != std::string::npos);
  CHECK(metrics.find("grpc_method=\"ListListings\"") != std::string::npos);
  CHECK(metrics.find("grpc_code=\"InvalidArgument\"") != std::string::npos);
  CHECK(metrics.find("grpc_server_handling_seconds_bucket") != std::string::npos);
  CHECK(metrics.find("grpc_server_started_total") != std::string::npos);
  CHECK(metrics.find("ptd_db_pool") != std::string::npos);
  CHECK(metrics.find("ptd_outbox") != std::string::npos);
}

TEST_CASE("trading: health is SERVING, then NOT_SERVING after SIGTERM, and the process exits cleanly") {
  TradingServer server({"--shutdown-grace=3s"});
  auto health = grpc::health::v1::Health::NewStub(server.channel());
  auto check = [&] {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
    grpc::health::v1::HealthCheckRequest request;
    request.set_service("ptd.trading.v1.TradingService");
    grpc::health::v1::HealthCheckResponse response;
    grpc::Status status = health->Check(&context, request, &response);
    return status.ok() ? response.status() : grpc::health::v1::HealthCheckResponse::UNKNOWN;
  };
  CHECK(check() == grpc::health::v1::HealthCheckResponse::SERVING);
  server.process().Signal(SIGTERM);
  CHECK(ptd::testing::WaitFor([&] { return check() == grpc::health::v1::HealthCheckResponse::NOT_SERVING; },
                              std::chrono::seconds(3)));
  int status = server.process().Wait(std::chrono::seconds(20));
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
}
