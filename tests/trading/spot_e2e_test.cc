// End to end: the spot market of the real ptd-trading binary against the test run's PostgreSQL and Redis,
// called as a client would — matching, durability across a SIGKILL, two processes on one book, events, the
// trade stream, bad input and tenant isolation.
#include <grpcpp/grpcpp.h>
#include <signal.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <functional>
#include <map>
#include <mutex>
#include <pqxx/pqxx>
#include <random>
#include <set>
#include <thread>

#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "libs/redis/client.h"
#include "ptd/trading/v1/spot.grpc.pb.h"
#include "tests/testing/testing.h"

namespace {

using namespace ptd::trading::v1;
using ptd::testing::Process;

constexpr char kToken[] = "test-internal-token";
// Standardised commodities seeded by migration 0003 (all traded in tonnes).
constexpr const char* kBooks[] = {"01900000-0000-7000-8000-000000000001", "01900000-0000-7000-8000-000000000002",
                                  "01900000-0000-7000-8000-000000000003", "01900000-0000-7000-8000-00000000000a",
                                  "01900000-0000-7000-8000-00000000000b", "01900000-0000-7000-8000-00000000000d",
                                  "01900000-0000-7000-8000-00000000000f", "01900000-0000-7000-8000-000000000010"};
constexpr char kPvc[] = "01900000-0000-7000-8000-000000000001";
constexpr char kEthanol[] = "01900000-0000-7000-8000-000000000002";
constexpr char kTitaniumDioxide[] = "01900000-0000-7000-8000-000000000004";  // not standardised

// A ptd-trading process; a second one may share the first one's database.
class SpotServer {
 public:
  explicit SpotServer(std::string db_url = "")
      : db_url_(db_url.empty() ? ptd::testing::FreshDatabase("spot") : std::move(db_url)) {
    Start();
  }

  void Start() {
    int port = ptd::testing::FreePort();
    metrics_port_ = ptd::testing::FreePort();
    std::vector<std::string> argv = {ptd::testing::BuildPath("services/trading/ptd-trading"),
                                     "--grpc-address=127.0.0.1:" + std::to_string(port),
                                     "--metrics-address=127.0.0.1:" + std::to_string(metrics_port_),
                                     "--pg-url=" + db_url_,
                                     "--redis-url=" + ptd::testing::GetInfra().redis_url,
                                     "--internal-token=" + std::string(kToken),
                                     "--relay-interval=20ms"};
    process_ = std::make_unique<Process>("ptd-trading-spot", argv);
    REQUIRE(ptd::testing::WaitForPort(port));
    channel_ = grpc::CreateChannel("127.0.0.1:" + std::to_string(port), grpc::InsecureChannelCredentials());
    stub_ = SpotMarketService::NewStub(channel_);
  }

  void Kill() {
    process_->Signal(SIGKILL);
    process_->Wait();
  }

  SpotMarketService::Stub& stub() { return *stub_; }
  const std::string& db_url() const { return db_url_; }
  std::string Metrics() { return ptd::testing::HttpGet(metrics_port_, "/metrics"); }

  int64_t Query(const std::string& sql) {
    pqxx::connection conn(db_url_);
    pqxx::work tx(conn);
    return tx.exec1(sql)[0].as<int64_t>();
  }
  int64_t Count(const std::string& table) { return Query("SELECT count(*) FROM trading." + table); }
  void Exec(const std::string& sql) {
    pqxx::connection conn(db_url_);
    pqxx::work tx(conn);
    tx.exec(sql);
    tx.commit();
  }

 private:
  std::string db_url_;
  int metrics_port_ = 0;
  std::unique_ptr<Process> process_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<SpotMarketService::Stub> stub_;
};

struct Call {
  grpc::ClientContext context;
  explicit Call(const std::string& tenant, std::chrono::seconds deadline = std::chrono::seconds(10)) {
    context.set_deadline(std::chrono::system_clock::now() + deadline);
    context.AddMetadata("x-ptd-internal-token", kToken);
    context.AddMetadata("x-ptd-tenant", tenant);
    context.AddMetadata("x-ptd-subject", "trader@" + tenant);
  }
};

std::atomic<int> next_key{0};

PlaceSpotOrderRequest Limit(const char* commodity, SpotSide side, int64_t price_minor, int64_t quantity_milli) {
  PlaceSpotOrderRequest r;
  r.set_idempotency_key("k" + std::to_string(next_key++));
  r.set_commodity_id(commodity);
  r.set_side(side);
  r.set_type(SPOT_ORDER_TYPE_LIMIT);
  r.mutable_limit_price()->set_currency("CNY");
  r.mutable_limit_price()->set_amount_minor(price_minor);
  r.mutable_quantity()->set_milli(quantity_milli);
  r.mutable_quantity()->set_unit("t");
  return r;
}

PlaceSpotOrderRequest Market(const char* commodity, SpotSide side, int64_t quantity_milli) {
  PlaceSpotOrderRequest r = Limit(commodity, side, 1, quantity_milli);
  r.set_type(SPOT_ORDER_TYPE_MARKET);
  r.clear_limit_price();
  return r;
}

PlaceSpotOrderResponse Place(SpotServer& server, const std::string& tenant, const PlaceSpotOrderRequest& request) {
  Call call(tenant);
  PlaceSpotOrderResponse out;
  grpc::Status status = server.stub().PlaceSpotOrder(&call.context, request, &out);
  INFO(status.error_message());
  REQUIRE(status.ok());
  return out;
}

SpotBook BookOf(SpotServer& server, const std::string& commodity, int depth = 100) {
  Call call("market-data-reader");
  GetBookRequest r;
  r.set_commodity_id(commodity);
  r.set_depth(depth);
  SpotBook out;
  REQUIRE(server.stub().GetBook(&call.context, r, &out).ok());
  return out;
}

// "price:quantity:orders" per level, best first, for readable comparisons.
std::vector<std::string> Levels(const google::protobuf::RepeatedPtrField<SpotBookLevel>& levels) {
  std::vector<std::string> out;
  for (const auto& l : levels) {
    out.push_back(std::to_string(l.price().amount_minor()) + ":" + std::to_string(l.quantity().milli()) + ":" +
                  std::to_string(l.order_count()));
  }
  return out;
}

std::vector<std::string> ViolatedFields(const grpc::Status& status) {
  std::vector<std::string> out;
  google::rpc::Status rpc;
  if (!rpc.ParseFromString(status.error_details())) return out;
  for (const auto& any : rpc.details()) {
    google::rpc::BadRequest bad;
    if (any.UnpackTo(&bad)) {
      for (const auto& v : bad.field_violations()) out.push_back(v.field());
    }
  }
  return out;
}

// The trading events on the shared Redis stream whose aggregate is one of `ids`, by type.
std::multimap<std::string, std::string> EventsFor(const std::set<std::string>& ids) {
  std::multimap<std::string, std::string> out;  // type -> payload
  auto redis = ptd::redis::Client::Create({.url = ptd::testing::GetInfra().redis_url});
  REQUIRE(redis.ok());
  auto reply = (*redis)->Command({"XRANGE", "ptd.trading.events", "-", "+"});
  REQUIRE(reply.ok());
  for (const auto& entry : reply->elements) {
    std::map<std::string, std::string> fields;
    const auto& f = entry.elements[1].elements;
    for (size_t i = 0; i + 1 < f.size(); i += 2) fields[f[i].str] = f[i + 1].str;
    if (ids.count(fields["aggregate_id"]) > 0) out.emplace(fields["type"], fields["payload"]);
  }
  return out;
}

// What one request sent by SendAsOneBatch got back.
struct Outcome {
  grpc::Status status;
  PlaceSpotOrderResponse placed;
  SpotOrder cancelled;
};
using Request = std::function<Outcome()>;

std::string Describe(const std::vector<Outcome>& outcomes) {
  std::string out;
  for (size_t i = 0; i < outcomes.size(); ++i) {
    out += "request " + std::to_string(i) + ": " + std::to_string(outcomes[i].status.error_code()) + " " +
           outcomes[i].status.error_message() + "\n";
  }
  return out;
}

Request PlaceRequest(SpotServer& server, const std::string& tenant, const PlaceSpotOrderRequest& r) {
  return [&server, tenant, r] {
    Outcome o;
    Call call(tenant);
    o.status = server.stub().PlaceSpotOrder(&call.context, r, &o.placed);
    return o;
  };
}

Request CancelRequest(SpotServer& server, const std::string& tenant, const std::string& order_id) {
  return [&server, tenant, order_id] {
    Outcome o;
    Call call(tenant);
    CancelSpotOrderRequest r;
    r.set_order_id(order_id);
    o.status = server.stub().CancelSpotOrder(&call.context, r, &o.cancelled);
    return o;
  };
}

int64_t BookVersion(SpotServer& server, const std::string& commodity) {
  return server.Query("SELECT version FROM trading.spot_books WHERE commodity_id = '" + commodity + "'");
}

// Sends `requests` so that the service commits them together: a test transaction holds the book's row
// lock while a "blocker" order commits (and waits for that lock), the requests are sent meanwhile and
// queue behind it; once the lock is released, the blocker commits alone and the queue as one batch.
// The book row must exist. Returns the outcomes in the order of `requests`.
std::vector<Outcome> SendAsOneBatch(SpotServer& server, const std::string& commodity,
                                    const std::vector<Request>& requests) {
  pqxx::connection conn(server.db_url());
  pqxx::work lock(conn);
  lock.exec_params("SELECT 1 FROM trading.spot_books WHERE commodity_id = $1 FOR UPDATE", commodity);
  Outcome blocked;
  std::thread blocker(
      [&] { blocked = PlaceRequest(server, "blocker", Limit(commodity.c_str(), SPOT_SIDE_BUY, 1, 1000))(); });
  REQUIRE(ptd::testing::WaitFor([&] {
    return server.Query(
               "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
               "AND wait_event_type = 'Lock'") > 0;
  }));
  std::vector<Outcome> out(requests.size());
  std::vector<std::thread> threads;
  for (size_t i = 0; i < requests.size(); ++i) threads.emplace_back([&, i] { out[i] = requests[i](); });
  std::this_thread::sleep_for(std::chrono::seconds(2));  // every request reaches the queue, even on a busy machine
  lock.commit();
  blocker.join();
  for (auto& t : threads) t.join();
  INFO(blocked.status.error_message());
  REQUIRE(blocked.status.ok());
  return out;
}

// Every order's fills add up to its filled quantity; the book is not crossed and matches the open orders.
void CheckConsistent(SpotServer& server, const char* commodity) {
  CHECK(server.Query("SELECT count(*) FROM trading.spot_orders o WHERE o.filled_milli <> "
                     "(SELECT coalesce(sum(quantity_milli), 0) FROM trading.spot_trades t "
                     " WHERE t.buy_order_id = o.order_id OR t.sell_order_id = o.order_id)") == 0);
  CHECK(server.Query("SELECT count(*) FROM trading.spot_orders WHERE (status = 2) <> (filled_milli = quantity_milli) "
                     "AND status <> 3") == 0);
  SpotBook book = BookOf(server, commodity);
  if (book.has_best_bid() && book.has_best_ask())
    CHECK(book.best_bid().price().amount_minor() < book.best_ask().price().amount_minor());
  int64_t resting = 0;
  for (const auto& l : book.bids()) resting += l.quantity().milli();
  for (const auto& l : book.asks()) resting += l.quantity().milli();
  CHECK(resting == server.Query(std::string("SELECT coalesce(sum(quantity_milli - filled_milli), 0) FROM "
                                            "trading.spot_orders WHERE status = 1 AND commodity_id = '") +
                                commodity + "'"));
}

}  // namespace

TEST_CASE("spot: a table of matching cases through gRPC") {
  SpotServer server;
  struct Resting {
    SpotSide side;
    int64_t price;
    int64_t quantity;
  };
  struct Case {
    const char* what;
    std::vector<Resting> resting;  // each from its own tenant, in this order
    PlaceSpotOrderRequest incoming;
    std::vector<std::string> trades;  // "price x quantity from resting[i]"
    SpotOrderStatus status;
    int64_t filled;
    std::vector<std::string> bids, asks;  // the book after
  };
  const SpotSide kBuy = SPOT_SIDE_BUY, kSell = SPOT_SIDE_SELL;
  std::vector<Case> cases = {
      {"a buy below the best offer rests",
       {{kSell, 100, 10}},
       Limit(kBooks[0], kBuy, 99, 5),
       {},
       SPOT_ORDER_STATUS_OPEN,
       0,
       {"99:5:1"},
       {"100:10:1"}},
      {"a buy above the offer trades at the resting order's price",
       {{kSell, 100, 10}},
       Limit(kBooks[1], kBuy, 105, 4),
       {"100x4 from 0"},
       SPOT_ORDER_STATUS_FILLED,
       4,
       {},
       {"100:6:1"}},
      {"a crossing buy sweeps two levels and rests the rest at its limit",
       {{kSell, 100, 3}, {kSell, 101, 3}, {kSell, 102, 3}},
       Limit(kBooks[2], kBuy, 101, 10),
       {"100x3 from 0", "101x3 from 1"},
       SPOT_ORDER_STATUS_OPEN,
       6,
       {"101:4:1"},
       {"102:3:1"}},
      {"time priority at one price: the earlier order fills first",
       {{kSell, 100, 2}, {kSell, 100, 2}},
       Limit(kBooks[3], kBuy, 100, 3),
       {"100x2 from 0", "100x1 from 1"},
       SPOT_ORDER_STATUS_FILLED,
       3,
       {},
       {"100:1:1"}},
      {"a sell hits the highest bid first",
       {{kBuy, 99, 2}, {kBuy, 100, 2}},
       Limit(kBooks[4], kSell, 98, 3),
       {"100x2 from 1", "99x1 from 0"},
       SPOT_ORDER_STATUS_FILLED,
       3,
       {"99:1:1"},
       {}},
      {"a market order against an empty book is cancelled, nothing traded",
       {},
       Market(kBooks[5], kBuy, 5000),
       {},
       SPOT_ORDER_STATUS_CANCELLED,
       0,
       {},
       {}},
      {"a market sell fills what there is; its rest is cancelled",
       {{kBuy, 100, 2}, {kBuy, 90, 1}},
       Market(kBooks[6], kSell, 5),
       {"100x2 from 0", "90x1 from 1"},
       SPOT_ORDER_STATUS_CANCELLED,
       3,
       {},
       {}},
      {"a limit sell partly filled rests the rest",
       {{kBuy, 100, 2}},
       Limit(kBooks[7], kSell, 100, 5),
       {"100x2 from 0"},
       SPOT_ORDER_STATUS_OPEN,
       2,
       {},
       {"100:3:1"}},
  };
  for (const Case& c : cases) {
    INFO(c.what);
    std::vector<std::string> resting_ids;
    for (size_t i = 0; i < c.resting.size(); ++i) {
      const Resting& r = c.resting[i];
      PlaceSpotOrderResponse placed = Place(server, "maker-" + std::to_string(i),
                                            Limit(c.incoming.commodity_id().c_str(), r.side, r.price, r.quantity));
      REQUIRE(placed.trades_size() == 0);
      resting_ids.push_back(placed.order().order_id());
    }
    PlaceSpotOrderResponse taken = Place(server, "taker", c.incoming);
    std::vector<std::string> trades;
    for (const SpotTrade& t : taken.trades()) {
      CHECK(t.order_id() == taken.order().order_id());
      CHECK(t.aggressor());
      CHECK(t.side() == c.incoming.side());
      CHECK(t.amount().amount_minor() == t.price().amount_minor() * t.quantity().milli() / 1000);
      std::string from = "?";
      for (size_t i = 0; i < resting_ids.size(); ++i) {
        if (t.counterparty_tenant_id() == "maker-" + std::to_string(i)) from = std::to_string(i);
      }
      trades.push_back(std::to_string(t.price().amount_minor()) + "x" + std::to_string(t.quantity().milli()) +
                       " from " + from);
    }
    CHECK(trades == c.trades);
    CHECK(taken.order().status() == c.status);
    CHECK(taken.order().filled().milli() == c.filled);
    if (c.incoming.type() == SPOT_ORDER_TYPE_MARKET) {
      CHECK(taken.order().cancel_reason() == SPOT_CANCEL_REASON_NO_LIQUIDITY);
      CHECK_FALSE(taken.order().has_limit_price());
    }
    SpotBook book = BookOf(server, c.incoming.commodity_id());
    CHECK(Levels(book.bids()) == c.bids);
    CHECK(Levels(book.asks()) == c.asks);
    CHECK(book.has_best_bid() == !c.bids.empty());
    CHECK(book.has_best_ask() == !c.asks.empty());

    // What the taker was told is what the database holds.
    Call get("taker");
    GetSpotOrderRequest g;
    g.set_order_id(taken.order().order_id());
    SpotOrder stored;
    REQUIRE(server.stub().GetSpotOrder(&get.context, g, &stored).ok());
    CHECK(stored.SerializeAsString() == taken.order().SerializeAsString());
  }
}

TEST_CASE("spot: cancel takes the rest off the book, and a filled or cancelled order cannot be cancelled") {
  SpotServer server;
  SpotOrder resting = Place(server, "seller", Limit(kPvc, SPOT_SIDE_SELL, 580000, 10000)).order();
  SpotOrder filled = Place(server, "seller", Limit(kPvc, SPOT_SIDE_SELL, 590000, 2000)).order();
  REQUIRE(Place(server, "buyer", Limit(kPvc, SPOT_SIDE_BUY, 590000, 14000)).trades_size() == 2);
  // `resting` was filled 10 t at 5800.00, `filled` 2 t at 5900.00; the buyer rests 2 t.
  SpotOrder partly = Place(server, "seller2", Limit(kPvc, SPOT_SIDE_SELL, 600000, 5000)).order();
  REQUIRE(Place(server, "buyer2", Limit(kPvc, SPOT_SIDE_BUY, 600000, 1000)).trades_size() == 1);

  Call c1("seller2");
  CancelSpotOrderRequest cancel;
  cancel.set_order_id(partly.order_id());
  SpotOrder cancelled;
  REQUIRE(server.stub().CancelSpotOrder(&c1.context, cancel, &cancelled).ok());
  CHECK(cancelled.status() == SPOT_ORDER_STATUS_CANCELLED);
  CHECK(cancelled.cancel_reason() == SPOT_CANCEL_REASON_BY_OWNER);
  CHECK(cancelled.filled().milli() == 1000);
  CHECK(cancelled.remaining().milli() == 0);
  CHECK(BookOf(server, kPvc).asks_size() == 0);

  for (const SpotOrder& done : {cancelled, filled, resting}) {
    Call again("seller2");
    cancel.set_order_id(done.order_id());
    SpotOrder out;
    // The first two belong to other tenants' view: seller2 owns only `cancelled`.
    grpc::Status status = server.stub().CancelSpotOrder(&again.context, cancel, &out);
    if (done.order_id() == cancelled.order_id())
      CHECK(status.error_code() == grpc::StatusCode::FAILED_PRECONDITION);
    else
      CHECK(status.error_code() == grpc::StatusCode::NOT_FOUND);
  }
  for (const SpotOrder& done : {filled, resting}) {
    Call owner("seller");
    cancel.set_order_id(done.order_id());
    SpotOrder out;
    grpc::Status status = server.stub().CancelSpotOrder(&owner.context, cancel, &out);
    CHECK(status.error_code() == grpc::StatusCode::FAILED_PRECONDITION);
    CHECK(status.error_message().find("filled") != std::string::npos);
  }

  auto events = EventsFor({partly.order_id()});
  REQUIRE(ptd::testing::WaitFor([&] {
    events = EventsFor({partly.order_id()});
    return events.count("ptd.trading.v1.SpotOrderCancelled") == 1;
  }));
  SpotOrderCancelled event;
  REQUIRE(event.ParseFromString(events.find("ptd.trading.v1.SpotOrderCancelled")->second));
  CHECK(event.cancelled().milli() == 4000);
  CHECK(event.order().status() == SPOT_ORDER_STATUS_CANCELLED);
}

// The value of a sample of `metrics` (Prometheus text), 0 when absent.
double SampleValue(const std::string& metrics, const std::string& sample) {
  const size_t at = metrics.find("\n" + sample + " ");  // a sample's line, not its family's # HELP
  return at == std::string::npos ? 0 : std::stod(metrics.substr(at + sample.size() + 2));
}

TEST_CASE("spot: a cancel of a resting order is one statement, answered as stored, and the rebuilt book agrees") {
  SpotServer server;
  SpotOrder resting = Place(server, "seller", Limit(kPvc, SPOT_SIDE_SELL, 580000, 5000)).order();
  REQUIRE(Place(server, "buyer", Limit(kPvc, SPOT_SIDE_BUY, 580000, 1000)).trades_size() == 1);
  const std::string statement = R"(ptd_trading_spot_batches_total{path="statement"})";
  const std::string transaction = R"(ptd_trading_spot_batches_total{path="transaction"})";
  const std::string before = server.Metrics();

  Call call("seller");
  CancelSpotOrderRequest cancel;
  cancel.set_order_id(resting.order_id());
  SpotOrder cancelled;
  REQUIRE(server.stub().CancelSpotOrder(&call.context, cancel, &cancelled).ok());
  CHECK(cancelled.status() == SPOT_ORDER_STATUS_CANCELLED);
  CHECK(cancelled.cancel_reason() == SPOT_CANCEL_REASON_BY_OWNER);
  CHECK(cancelled.filled().milli() == 1000);
  CHECK(cancelled.remaining().milli() == 0);
  const std::string after = server.Metrics();
  CHECK(SampleValue(after, statement) == SampleValue(before, statement) + 1);
  CHECK(SampleValue(after, transaction) == SampleValue(before, transaction));

  // As stored: a read gives the same order, time included.
  Call get("seller");
  GetSpotOrderRequest g;
  g.set_order_id(resting.order_id());
  SpotOrder stored;
  REQUIRE(server.stub().GetSpotOrder(&get.context, g, &stored).ok());
  CHECK(stored.SerializeAsString() == cancelled.SerializeAsString());
  CHECK(BookOf(server, kPvc).asks_size() == 0);
  std::multimap<std::string, std::string> events;
  REQUIRE(ptd::testing::WaitFor([&] {
    events = EventsFor({resting.order_id()});
    return events.count("ptd.trading.v1.SpotOrderCancelled") == 1;
  }));
  SpotOrderCancelled event;
  REQUIRE(event.ParseFromString(events.find("ptd.trading.v1.SpotOrderCancelled")->second));
  CHECK(event.cancelled().milli() == 4000);

  // Cancelled twice: refused from memory (no transaction), nothing changes.
  Call again("seller");
  SpotOrder out;
  grpc::Status twice = server.stub().CancelSpotOrder(&again.context, cancel, &out);
  CHECK(twice.error_code() == grpc::StatusCode::FAILED_PRECONDITION);
  CHECK(twice.error_message().find("is cancelled") != std::string::npos);
  CHECK(SampleValue(server.Metrics(), transaction) == SampleValue(before, transaction));
  CHECK(server.Query("SELECT count(*) FROM trading.outbox WHERE type = 'ptd.trading.v1.SpotOrderCancelled'") == 1);

  // A new process rebuilds the book from the database: the cancelled order is not in it.
  server.Kill();
  server.Start();
  CHECK(BookOf(server, kPvc).asks_size() == 0);
  CHECK(Place(server, "buyer2", Limit(kPvc, SPOT_SIDE_BUY, 580000, 1000)).trades_size() == 0);
}

TEST_CASE(
    "spot: a repeated place returns the first order and its trades, and a reused key with another order is refused") {
  SpotServer server;
  Place(server, "seller", Limit(kPvc, SPOT_SIDE_SELL, 100, 3000));
  PlaceSpotOrderRequest buy = Limit(kPvc, SPOT_SIDE_BUY, 100, 5000);
  PlaceSpotOrderResponse first = Place(server, "buyer", buy);
  PlaceSpotOrderResponse again = Place(server, "buyer", buy);
  CHECK(again.SerializeAsString() == first.SerializeAsString());
  CHECK(server.Count("spot_orders") == 2);
  CHECK(server.Count("spot_trades") == 1);

  Call reuse("buyer");
  buy.mutable_quantity()->set_milli(1000);
  PlaceSpotOrderResponse out;
  CHECK(server.stub().PlaceSpotOrder(&reuse.context, buy, &out).error_code() == grpc::StatusCode::ALREADY_EXISTS);
  // The same key is another tenant's own.
  CHECK(Place(server, "other", buy).order().order_id() != first.order().order_id());
  // The repeats were recognised before writing: no one-statement batch failed on the key (which would have
  // cost a rebuild of the book).
  const std::string metrics = server.Metrics();
  INFO(metrics);
  CHECK(metrics.find("ptd_trading_spot_statement_fallbacks_total 0\n") != std::string::npos);
}

TEST_CASE("spot: an order that would trade with the same tenant's resting order is refused") {
  SpotServer server;
  Place(server, "tenant-a", Limit(kPvc, SPOT_SIDE_SELL, 100, 1000));
  Place(server, "tenant-a", Limit(kPvc, SPOT_SIDE_BUY, 90, 1000));
  for (const PlaceSpotOrderRequest& r : {Limit(kPvc, SPOT_SIDE_BUY, 100, 1000), Market(kPvc, SPOT_SIDE_BUY, 1000),
                                         Limit(kPvc, SPOT_SIDE_SELL, 90, 1000), Market(kPvc, SPOT_SIDE_SELL, 1000)}) {
    Call call("tenant-a");
    PlaceSpotOrderResponse out;
    grpc::Status status = server.stub().PlaceSpotOrder(&call.context, r, &out);
    CHECK(status.error_code() == grpc::StatusCode::FAILED_PRECONDITION);
    CHECK(status.error_message().find("self-trade") != std::string::npos);
  }
  CHECK(server.Count("spot_orders") == 2);
  CHECK(server.Count("spot_trades") == 0);
  // Inside its own spread the tenant may still quote, and others trade with it.
  Place(server, "tenant-a", Limit(kPvc, SPOT_SIDE_BUY, 95, 1000));
  CHECK(Place(server, "tenant-b", Market(kPvc, SPOT_SIDE_BUY, 1000)).trades_size() == 1);
}

TEST_CASE("spot: in one batch, refused requests get their own answers and the others commit together") {
  SpotServer server;
  Place(server, "batch-a", Limit(kPvc, SPOT_SIDE_BUY, 900, 100000));
  const PlaceSpotOrderRequest f_request = Limit(kPvc, SPOT_SIDE_SELL, 2000, 5000);
  const SpotOrder f = Place(server, "batch-f", f_request).order();
  PlaceSpotOrderRequest f_reused = f_request;
  f_reused.mutable_quantity()->set_milli(6000);
  const SpotOrder g = Place(server, "batch-g", Limit(kPvc, SPOT_SIDE_SELL, 3000, 1000)).order();
  const SpotOrder h = Place(server, "batch-h", Limit(kPvc, SPOT_SIDE_SELL, 3100, 1000)).order();
  {
    Call call("batch-h");
    CancelSpotOrderRequest cancel;
    cancel.set_order_id(h.order_id());
    SpotOrder out;
    REQUIRE(server.stub().CancelSpotOrder(&call.context, cancel, &out).ok());
  }
  const PlaceSpotOrderRequest j_request = Limit(kPvc, SPOT_SIDE_BUY, 800, 1000);
  const int64_t version_before = BookVersion(server, kPvc);

  // In whatever order they arrive, each request's answer is the same.
  std::vector<Outcome> out =
      SendAsOneBatch(server, kPvc,
                     {PlaceRequest(server, "batch-a", Limit(kPvc, SPOT_SIDE_SELL, 900, 1000)),  // 0: self-trade
                      PlaceRequest(server, "batch-b", Limit(kPvc, SPOT_SIDE_SELL, 900, 2000)),  // 1: fills
                      PlaceRequest(server, "batch-c", Limit(kPvc, SPOT_SIDE_SELL, 1100, 1000)),
                      PlaceRequest(server, "batch-e", Limit(kPvc, SPOT_SIDE_BUY, 1100, 1000)),
                      PlaceRequest(server, "batch-f", f_request),      // 4: a repeat of an earlier order
                      PlaceRequest(server, "batch-f", f_reused),       // 5: its key, another order
                      CancelRequest(server, "batch-g", g.order_id()),  // 6
                      CancelRequest(server, "batch-h", h.order_id()),  // 7: already cancelled
                      PlaceRequest(server, "batch-j", j_request),      // 8, 9: the same order twice
                      PlaceRequest(server, "batch-j", j_request)});

  INFO(Describe(out));
  CHECK(out[0].status.error_code() == grpc::StatusCode::FAILED_PRECONDITION);
  CHECK(out[0].status.error_message().find("self-trade") != std::string::npos);
  REQUIRE(out[1].status.ok());
  CHECK(out[1].placed.order().status() == SPOT_ORDER_STATUS_FILLED);
  CHECK(out[1].placed.order().filled().milli() == 2000);
  REQUIRE(out[2].status.ok());
  REQUIRE(out[3].status.ok());
  REQUIRE(out[4].status.ok());
  CHECK(out[4].placed.order().order_id() == f.order_id());
  CHECK(out[5].status.error_code() == grpc::StatusCode::ALREADY_EXISTS);
  REQUIRE(out[6].status.ok());
  CHECK(out[6].cancelled.status() == SPOT_ORDER_STATUS_CANCELLED);
  CHECK(out[6].cancelled.remaining().milli() == 0);
  CHECK(out[7].status.error_code() == grpc::StatusCode::FAILED_PRECONDITION);
  REQUIRE(out[8].status.ok());
  REQUIRE(out[9].status.ok());
  CHECK(out[8].placed.SerializeAsString() == out[9].placed.SerializeAsString());
  CHECK(server.Query("SELECT count(*) FROM trading.spot_orders WHERE tenant_id = 'batch-j'") == 1);
  CHECK(server.Query("SELECT count(*) FROM trading.spot_orders WHERE tenant_id = 'batch-f'") == 1);

  // One transaction for the blocker, one for all of these: the new orders and the cancel share it.
  CHECK(BookVersion(server, kPvc) - version_before == 2);
  const std::string placed = "'" + out[1].placed.order().order_id() + "','" + out[2].placed.order().order_id() + "','" +
                             out[3].placed.order().order_id() + "','" + out[8].placed.order().order_id() + "'";
  const std::string ids = placed + ",'" + g.order_id() + "'";
  CHECK(server.Query("SELECT count(DISTINCT xmin::text) FROM trading.spot_orders WHERE order_id IN (" + ids + ")") ==
        1);
  // Each new order's acceptance and each of its trades went into the outbox with it.
  CHECK(server.Query("SELECT count(*) FROM trading.outbox WHERE type = 'ptd.trading.v1.SpotOrderAccepted' "
                     "AND aggregate_id IN (" +
                     placed + ")") == 4);
  CHECK(server.Query("SELECT count(*) FROM trading.spot_trades t JOIN trading.outbox o ON o.aggregate_id = "
                     "t.trade_id AND o.type = 'ptd.trading.v1.TradeExecuted'") == server.Count("spot_trades"));
  CHECK(server.Query("SELECT count(*) FROM trading.outbox WHERE type = 'ptd.trading.v1.SpotOrderCancelled' "
                     "AND aggregate_id = '" +
                     g.order_id() + "'") == 1);
  CheckConsistent(server, kPvc);
}

TEST_CASE("spot: a batch of placements and cancels is one statement, but not a cancel of an order the batch filled") {
  SpotServer server;
  const SpotOrder x = Place(server, "mix-x", Limit(kPvc, SPOT_SIDE_SELL, 2000, 3000)).order();
  const SpotOrder y = Place(server, "mix-y", Limit(kPvc, SPOT_SIDE_SELL, 2100, 2000)).order();
  const std::string statement = R"(ptd_trading_spot_batches_total{path="statement"})";
  const std::string transaction = R"(ptd_trading_spot_batches_total{path="transaction"})";
  const std::string fallbacks = "ptd_trading_spot_statement_fallbacks_total";
  std::string before = server.Metrics();

  std::vector<Outcome> out =
      SendAsOneBatch(server, kPvc,
                     {CancelRequest(server, "mix-x", x.order_id()), CancelRequest(server, "mix-y", y.order_id()),
                      PlaceRequest(server, "mix-z", Limit(kPvc, SPOT_SIDE_SELL, 2500, 1000))});
  INFO(Describe(out));
  REQUIRE(out[0].status.ok());
  CHECK(out[0].cancelled.status() == SPOT_ORDER_STATUS_CANCELLED);
  CHECK(out[0].cancelled.filled().milli() == 0);
  REQUIRE(out[1].status.ok());
  REQUIRE(out[2].status.ok());
  std::string after = server.Metrics();
  CHECK(SampleValue(after, statement) == SampleValue(before, statement) + 2);  // the blocker's and this batch
  CHECK(SampleValue(after, transaction) == SampleValue(before, transaction));
  SpotBook book = BookOf(server, kPvc);
  REQUIRE(book.asks_size() == 1);
  CHECK(book.asks(0).price().amount_minor() == 2500);
  CheckConsistent(server, kPvc);

  // A buy fills part of x2, then (queued after it) x2's owner cancels it: the statement would update x2's
  // row twice, so the batch goes the transaction's way, with the same answers.
  const SpotOrder x2 = Place(server, "mix-x", Limit(kPvc, SPOT_SIDE_SELL, 2000, 3000)).order();
  before = server.Metrics();
  const Request cancel_x2 = CancelRequest(server, "mix-x", x2.order_id());
  out = SendAsOneBatch(server, kPvc,
                       {PlaceRequest(server, "mix-b", Limit(kPvc, SPOT_SIDE_BUY, 2000, 2000)), [cancel_x2] {
                          std::this_thread::sleep_for(std::chrono::milliseconds(500));  // queued after the buy
                          return cancel_x2();
                        }});
  INFO(Describe(out));
  REQUIRE(out[0].status.ok());
  CHECK(out[0].placed.trades_size() == 1);
  REQUIRE(out[1].status.ok());
  CHECK(out[1].cancelled.status() == SPOT_ORDER_STATUS_CANCELLED);
  CHECK(out[1].cancelled.filled().milli() == 2000);
  after = server.Metrics();
  CHECK(SampleValue(after, fallbacks) == SampleValue(before, fallbacks) + 1);
  CHECK(SampleValue(after, transaction) == SampleValue(before, transaction) + 1);
  CHECK(BookOf(server, kPvc).asks_size() == 1);  // 2500 only
  CheckConsistent(server, kPvc);

  // A buy fills all of x3, then its owner's cancel comes: refused from memory ("filled"), in the statement.
  const SpotOrder x3 = Place(server, "mix-x", Limit(kPvc, SPOT_SIDE_SELL, 2000, 1000)).order();
  before = server.Metrics();
  const Request cancel_x3 = CancelRequest(server, "mix-x", x3.order_id());
  out = SendAsOneBatch(server, kPvc,
                       {PlaceRequest(server, "mix-c", Limit(kPvc, SPOT_SIDE_BUY, 2000, 1000)), [cancel_x3] {
                          std::this_thread::sleep_for(std::chrono::milliseconds(500));  // queued after the buy
                          return cancel_x3();
                        }});
  INFO(Describe(out));
  REQUIRE(out[0].status.ok());
  CHECK(out[0].placed.trades_size() == 1);
  CHECK(out[1].status.error_code() == grpc::StatusCode::FAILED_PRECONDITION);
  CHECK(out[1].status.error_message().find("is filled") != std::string::npos);
  after = server.Metrics();
  CHECK(SampleValue(after, fallbacks) == SampleValue(before, fallbacks));
  CHECK(SampleValue(after, transaction) == SampleValue(before, transaction));
  CheckConsistent(server, kPvc);
}

TEST_CASE("spot: when a batch's transaction fails, each request is committed alone and gets its own answer") {
  SpotServer server;
  Place(server, "fallback-s", Limit(kEthanol, SPOT_SIDE_SELL, 1000, 2000));
  // An order the database refuses, but only when it is written: the batch's transaction fails as a whole.
  server.Exec(
      "CREATE FUNCTION trading.refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
      "IF NEW.idempotency_key = 'poison' THEN RAISE EXCEPTION 'poisoned order' USING ERRCODE = 'check_violation'; "
      "END IF; RETURN NEW; END $$; "
      "CREATE TRIGGER refuse_poison BEFORE INSERT ON trading.spot_orders FOR EACH ROW "
      "EXECUTE FUNCTION trading.refuse_poison()");
  PlaceSpotOrderRequest poison = Limit(kEthanol, SPOT_SIDE_BUY, 1000, 1000);
  poison.set_idempotency_key("poison");

  std::vector<Outcome> out =
      SendAsOneBatch(server, kEthanol,
                     {PlaceRequest(server, "fallback-p", poison),
                      PlaceRequest(server, "fallback-k", Limit(kEthanol, SPOT_SIDE_BUY, 1000, 1000)),
                      PlaceRequest(server, "fallback-l", Limit(kEthanol, SPOT_SIDE_SELL, 1500, 1000)),
                      PlaceRequest(server, "fallback-m", Limit(kEthanol, SPOT_SIDE_BUY, 500, 1000))});

  INFO(Describe(out));
  CHECK(out[0].status.error_code() == grpc::StatusCode::FAILED_PRECONDITION);
  REQUIRE(out[1].status.ok());
  CHECK(out[1].placed.order().status() == SPOT_ORDER_STATUS_FILLED);
  REQUIRE(out[1].placed.trades_size() == 1);
  CHECK(out[1].placed.trades(0).price().amount_minor() == 1000);
  REQUIRE(out[2].status.ok());
  CHECK(out[2].placed.order().status() == SPOT_ORDER_STATUS_OPEN);
  REQUIRE(out[3].status.ok());
  CHECK(out[3].placed.order().status() == SPOT_ORDER_STATUS_OPEN);
  CHECK(server.Query("SELECT count(*) FROM trading.spot_orders WHERE tenant_id = 'fallback-p'") == 0);

  // The memory the failed batch had changed was thrown away: the book is the committed one.
  SpotBook book = BookOf(server, kEthanol);
  CHECK(Levels(book.asks()) == std::vector<std::string>{"1000:1000:1", "1500:1000:1"});
  CHECK(Levels(book.bids()) == std::vector<std::string>{"500:1000:1", "1:1000:1"});
  CheckConsistent(server, kEthanol);
  server.Exec("DROP TRIGGER refuse_poison ON trading.spot_orders");
  CHECK(Place(server, "fallback-p", poison).trades_size() == 1);
}

TEST_CASE("spot: when a one-statement batch loses its connection, the batch is committed once by the fallback") {
  SpotServer server;
  Place(server, "lost-s", Limit(kPvc, SPOT_SIDE_SELL, 1000, 2000));  // the book is built: batches are one statement
  Place(server, "lost-t", Limit(kPvc, SPOT_SIDE_SELL, 1100, 1000));

  // Hold the book's row, so that the next batch's statement waits for it, and end that statement's backend.
  pqxx::connection holder_connection(server.db_url());
  pqxx::work holder(holder_connection);
  holder.exec(std::string("SELECT 1 FROM trading.spot_books WHERE commodity_id = '") + kPvc + "' FOR UPDATE");
  grpc::Status status;
  PlaceSpotOrderResponse placed;
  std::thread buyer([&] {
    Call call("lost-b");
    status = server.stub().PlaceSpotOrder(&call.context, Limit(kPvc, SPOT_SIDE_BUY, 1100, 3500), &placed);
  });
  pqxx::connection admin(server.db_url());
  int terminated = 0;
  for (int i = 0; i < 200 && terminated == 0; ++i) {
    pqxx::nontransaction q(admin);
    terminated = q.exec(
                      "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() "
                      "AND wait_event_type = 'Lock' "
                      "AND query LIKE 'WITH wanted AS%' AND pid <> pg_backend_pid()")
                     .size();
    if (terminated == 0) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  CHECK(terminated == 1);
  holder.commit();
  buyer.join();

  INFO(status.error_message());
  REQUIRE(status.ok());
  CHECK(placed.order().status() == SPOT_ORDER_STATUS_OPEN);
  REQUIRE(placed.trades_size() == 2);
  CHECK(placed.trades(1).sequence() == placed.trades(0).sequence() + 1);
  CHECK(server.Count("spot_orders") == 3);
  CHECK(server.Count("spot_trades") == 2);
  CHECK(server.Query("SELECT count(*) FROM trading.outbox WHERE type = 'ptd.trading.v1.TradeExecuted'") == 2);
  CheckConsistent(server, kPvc);
  // And the batches after it are one statement again, on a new connection.
  CHECK(Place(server, "lost-s", Limit(kPvc, SPOT_SIDE_SELL, 1100, 1000)).trades_size() == 1);
  CheckConsistent(server, kPvc);
  const std::string metrics = server.Metrics();
  INFO(metrics);
  CHECK(metrics.find("ptd_trading_spot_statement_fallbacks_total 1\n") != std::string::npos);
  // The first order (its book not yet in memory) and the lost one went through a transaction, the others not.
  CHECK(metrics.find("ptd_trading_spot_batches_total{path=\"transaction\"} 2\n") != std::string::npos);
  CHECK(metrics.find("ptd_trading_spot_batches_total{path=\"statement\"} 2\n") != std::string::npos);
  CHECK(metrics.find("ptd_trading_spot_batch_requests_count 4\n") != std::string::npos);
}

TEST_CASE("spot: a SIGKILL while many clients place orders loses no acknowledged order") {
  SpotServer server;
  std::mutex mu;
  std::vector<std::pair<std::string, std::string>> acknowledged;  // tenant, order id
  std::atomic<bool> stop{false};
  auto client = [&](int id) {
    std::mt19937_64 rng(100 + id);
    while (!stop) {
      const std::string tenant = "kill-" + std::to_string(rng() % 30);
      SpotSide side = rng() % 2 ? SPOT_SIDE_BUY : SPOT_SIDE_SELL;
      PlaceSpotOrderRequest r = Limit(rng() % 2 ? kPvc : kEthanol, side, 1000 + rng() % 20, 1000 + rng() % 5000);
      Call call(tenant, std::chrono::seconds(5));
      PlaceSpotOrderResponse out;
      if (server.stub().PlaceSpotOrder(&call.context, r, &out).ok()) {
        std::lock_guard lock(mu);
        acknowledged.emplace_back(tenant, out.order().order_id());
      }
    }
  };
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) threads.emplace_back(client, i);
  REQUIRE(ptd::testing::WaitFor([&] {
    std::lock_guard lock(mu);
    return acknowledged.size() > 200;
  }));
  server.Kill();
  stop = true;
  for (auto& t : threads) t.join();

  server.Start();
  INFO(acknowledged.size() << " orders acknowledged before the kill");
  int64_t missing = 0;
  for (const auto& [tenant, id] : acknowledged) {
    Call call(tenant);
    GetSpotOrderRequest g;
    g.set_order_id(id);
    SpotOrder out;
    if (!server.stub().GetSpotOrder(&call.context, g, &out).ok()) ++missing;
  }
  CHECK(missing == 0);
  CheckConsistent(server, kPvc);
  CheckConsistent(server, kEthanol);
}

TEST_CASE("spot: a SIGKILL in the middle loses no acknowledged order, and the new process rebuilds the same book") {
  SpotServer server;
  std::mt19937_64 rng(7);
  std::vector<std::pair<std::string, std::string>> acknowledged;  // tenant, order id
  auto trade_a_while = [&](int n) {
    for (int i = 0; i < n; ++i) {
      std::string tenant = "t" + std::to_string(rng() % 6);
      const char* book = rng() % 2 ? kPvc : kEthanol;
      SpotSide side = rng() % 2 ? SPOT_SIDE_BUY : SPOT_SIDE_SELL;
      PlaceSpotOrderRequest r = rng() % 10 == 0 ? Market(book, side, 1000 + rng() % 5000)
                                                : Limit(book, side, 1000 + rng() % 40, 1000 + rng() % 9000);
      Call call(tenant);
      PlaceSpotOrderResponse out;
      grpc::Status status = server.stub().PlaceSpotOrder(&call.context, r, &out);
      if (status.error_code() == grpc::StatusCode::FAILED_PRECONDITION) continue;  // self-trade
      INFO(status.error_code() << " " << status.error_message());
      REQUIRE(status.ok());
      acknowledged.emplace_back(tenant, out.order().order_id());
      if (out.order().status() == SPOT_ORDER_STATUS_OPEN && rng() % 5 == 0) {
        Call c(tenant);
        CancelSpotOrderRequest cancel;
        cancel.set_order_id(out.order().order_id());
        SpotOrder ignored;
        REQUIRE(server.stub().CancelSpotOrder(&c.context, cancel, &ignored).ok());
      }
    }
  };
  trade_a_while(300);
  SpotBook pvc = BookOf(server, kPvc), ethanol = BookOf(server, kEthanol);
  REQUIRE(pvc.bids_size() + pvc.asks_size() > 0);

  server.Kill();
  server.Start();
  CHECK(BookOf(server, kPvc).SerializeAsString() == pvc.SerializeAsString());
  CHECK(BookOf(server, kEthanol).SerializeAsString() == ethanol.SerializeAsString());
  for (const auto& [tenant, id] : acknowledged) {
    Call call(tenant);
    GetSpotOrderRequest g;
    g.set_order_id(id);
    SpotOrder out;
    REQUIRE(server.stub().GetSpotOrder(&call.context, g, &out).ok());
  }
  CHECK(server.Count("spot_orders") == static_cast<int64_t>(acknowledged.size()));

  // The rebuilt book trades exactly where the old one would have: a market buy of the best offer's quantity
  // takes that level and nothing more.
  if (pvc.has_best_ask()) {
    PlaceSpotOrderResponse sweep =
        Place(server, "newcomer", Market(kPvc, SPOT_SIDE_BUY, pvc.best_ask().quantity().milli()));
    int64_t traded = 0;
    for (const SpotTrade& t : sweep.trades()) {
      CHECK(t.price().amount_minor() == pvc.best_ask().price().amount_minor());
      traded += t.quantity().milli();
    }
    CHECK(traded == pvc.best_ask().quantity().milli());
    CHECK(sweep.trades_size() == pvc.best_ask().order_count());
  }
  trade_a_while(100);  // and it goes on trading
}

TEST_CASE("spot: two processes and four clients hammering one book never over-fill or cross it") {
  SpotServer first;
  SpotServer second(first.db_url());
  std::atomic<int> accepted{0}, refused{0};
  std::mutex mu;
  std::vector<std::string> failures;  // Catch2 assertions are not thread-safe: collected, checked after
  auto fail = [&](const std::string& what) {
    std::lock_guard lock(mu);
    failures.push_back(what);
  };
  auto client = [&](SpotServer* server, int id) {
    std::mt19937_64 rng(id);
    std::vector<std::pair<std::string, std::string>> open;  // tenant, order id
    for (int i = 0; i < 150; ++i) {
      if (!open.empty() && rng() % 6 == 0) {
        const auto& [owner, order_id] = open[rng() % open.size()];
        Call call(owner);
        CancelSpotOrderRequest cancel;
        cancel.set_order_id(order_id);
        SpotOrder out;
        grpc::Status status = server->stub().CancelSpotOrder(&call.context, cancel, &out);
        if (!status.ok() && status.error_code() != grpc::StatusCode::FAILED_PRECONDITION) {
          fail("cancel: " + status.error_message());
        }
        continue;
      }
      const std::string tenant = "hammer-" + std::to_string(rng() % 20);  // tenants shared by the clients
      SpotSide side = rng() % 2 ? SPOT_SIDE_BUY : SPOT_SIDE_SELL;
      PlaceSpotOrderRequest r = rng() % 8 == 0 ? Market(kPvc, side, 1000 + rng() % 8000)
                                               : Limit(kPvc, side, 500 + rng() % 20, 1000 + rng() % 8000);
      Call call(tenant);
      PlaceSpotOrderResponse out;
      grpc::Status status = server->stub().PlaceSpotOrder(&call.context, r, &out);
      if (status.error_code() == grpc::StatusCode::FAILED_PRECONDITION) {
        ++refused;
        continue;
      }
      if (!status.ok()) {
        fail("place: " + status.error_message());
        continue;
      }
      ++accepted;
      if (out.order().status() == SPOT_ORDER_STATUS_OPEN) open.emplace_back(tenant, out.order().order_id());
    }
  };
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) threads.emplace_back(client, i % 2 == 0 ? &first : &second, i);
  for (auto& t : threads) t.join();
  CHECK(failures == std::vector<std::string>{});
  INFO("accepted " << accepted << ", refused as self-trades " << refused);
  REQUIRE(accepted > 300);
  REQUIRE(first.Count("spot_trades") > 50);

  // Every order's fills add up to its filled quantity, never above what it asked for.
  CHECK(first.Query("SELECT count(*) FROM trading.spot_orders o WHERE o.filled_milli <> "
                    "(SELECT coalesce(sum(quantity_milli), 0) FROM trading.spot_trades t "
                    " WHERE t.buy_order_id = o.order_id OR t.sell_order_id = o.order_id)") == 0);
  CHECK(first.Query("SELECT count(*) FROM trading.spot_orders WHERE filled_milli > quantity_milli") == 0);
  // Every trade pairs a buy with a sell of its two tenants, at a price both limits allow.
  CHECK(first.Query("SELECT count(*) FROM trading.spot_trades t "
                    "JOIN trading.spot_orders b ON b.order_id = t.buy_order_id "
                    "JOIN trading.spot_orders s ON s.order_id = t.sell_order_id "
                    "WHERE b.side <> 1 OR s.side <> 2 OR b.tenant_id <> t.buyer_tenant_id "
                    "OR s.tenant_id <> t.seller_tenant_id OR (b.type = 1 AND t.price_minor > b.price_minor) "
                    "OR (s.type = 1 AND t.price_minor < s.price_minor)") == 0);
  // Only what is open rests, and the book is not crossed.
  CHECK(first.Query("SELECT count(*) FROM trading.spot_orders WHERE status = 2 AND filled_milli <> quantity_milli") ==
        0);
  SpotBook a = BookOf(first, kPvc), b = BookOf(second, kPvc);
  CHECK(a.SerializeAsString() == b.SerializeAsString());
  if (a.has_best_bid() && a.has_best_ask())
    CHECK(a.best_bid().price().amount_minor() < a.best_ask().price().amount_minor());
  int64_t resting = 0;
  for (const auto& l : a.bids()) resting += l.quantity().milli();
  for (const auto& l : a.asks()) resting += l.quantity().milli();
  CHECK(resting == first.Query("SELECT coalesce(sum(quantity_milli - filled_milli), 0) FROM trading.spot_orders "
                               "WHERE status = 1"));
}

TEST_CASE("spot: two processes whose batches span two books lock them in one order: no deadlock, nothing lost") {
  SpotServer first;
  SpotServer second(first.db_url());
  std::mutex mu;
  std::vector<std::string> failures;  // Catch2 assertions are not thread-safe: collected, checked after
  std::vector<std::pair<std::string, std::string>> acknowledged;  // tenant, order id
  auto client = [&](SpotServer* server, int id) {
    std::mt19937_64 rng(200 + id);
    for (int i = 0; i < 120; ++i) {
      const std::string tenant = "span-" + std::to_string(rng() % 40);
      SpotSide side = rng() % 2 ? SPOT_SIDE_BUY : SPOT_SIDE_SELL;
      PlaceSpotOrderRequest r = Limit(rng() % 2 ? kPvc : kEthanol, side, 700 + rng() % 10, 1000 + rng() % 4000);
      Call call(tenant);
      PlaceSpotOrderResponse out;
      grpc::Status status = server->stub().PlaceSpotOrder(&call.context, r, &out);
      std::lock_guard lock(mu);
      if (status.ok()) {
        acknowledged.emplace_back(tenant, out.order().order_id());
      } else if (status.error_code() != grpc::StatusCode::FAILED_PRECONDITION) {
        failures.push_back(status.error_message());
      }
    }
  };
  std::vector<std::thread> threads;
  for (int i = 0; i < 6; ++i) threads.emplace_back(client, i % 2 == 0 ? &first : &second, i);
  for (auto& t : threads) t.join();
  CHECK(failures == std::vector<std::string>{});
  REQUIRE(acknowledged.size() > 300);
  CHECK(first.Query("SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()") == 0);
  for (const auto& [tenant, id] : acknowledged) {
    Call call(tenant);
    GetSpotOrderRequest g;
    g.set_order_id(id);
    SpotOrder out;
    CHECK(second.stub().GetSpotOrder(&call.context, g, &out).ok());
  }
  for (SpotServer* server : {&first, &second}) {
    CheckConsistent(*server, kPvc);
    CheckConsistent(*server, kEthanol);
  }
  CHECK(BookOf(first, kPvc).SerializeAsString() == BookOf(second, kPvc).SerializeAsString());
  CHECK(BookOf(first, kEthanol).SerializeAsString() == BookOf(second, kEthanol).SerializeAsString());
}

TEST_CASE("spot: every trade is a TradeExecuted event on ptd.trading.events, with both parties") {
  SpotServer server;
  SpotOrder sell = Place(server, "seller-ev", Limit(kEthanol, SPOT_SIDE_SELL, 650000, 3000)).order();
  PlaceSpotOrderResponse buy = Place(server, "buyer-ev", Limit(kEthanol, SPOT_SIDE_BUY, 660000, 2500));
  REQUIRE(buy.trades_size() == 1);
  const SpotTrade& trade = buy.trades(0);
  std::multimap<std::string, std::string> events;
  REQUIRE(ptd::testing::WaitFor([&] {
    events = EventsFor({trade.trade_id(), sell.order_id(), buy.order().order_id()});
    return events.size() == 3;
  }));
  CHECK(events.count("ptd.trading.v1.SpotOrderAccepted") == 2);
  REQUIRE(events.count("ptd.trading.v1.TradeExecuted") == 1);
  TradeExecuted e;
  REQUIRE(e.ParseFromString(events.find("ptd.trading.v1.TradeExecuted")->second));
  CHECK(e.trade_id() == trade.trade_id());
  CHECK(e.buyer_tenant_id() == "buyer-ev");
  CHECK(e.seller_tenant_id() == "seller-ev");
  CHECK(e.buy_order_id() == buy.order().order_id());
  CHECK(e.sell_order_id() == sell.order_id());
  CHECK(e.commodity_id() == kEthanol);
  CHECK(e.commodity_code() == "ETHANOL-95");
  CHECK(e.price().amount_minor() == 650000);
  CHECK(e.quantity().milli() == 2500);
  CHECK(e.quantity().unit() == "t");
  CHECK(e.amount().amount_minor() == 1625000);
  CHECK(e.aggressor_side() == SPOT_SIDE_BUY);
  CHECK(e.sequence() == trade.sequence());
  CHECK(e.has_execute_time());
}

TEST_CASE("spot: StreamTrades replays from a sequence, then delivers live trades, also another process's") {
  SpotServer server;
  SpotServer other(server.db_url());
  Place(server, "s1", Limit(kPvc, SPOT_SIDE_SELL, 700, 5000));
  int64_t first_seq = Place(server, "b1", Limit(kPvc, SPOT_SIDE_BUY, 700, 1000)).trades(0).sequence();

  Call call("watcher", std::chrono::seconds(20));
  StreamTradesRequest r;
  r.set_commodity_id(kPvc);
  r.set_after_sequence(0);
  auto reader = server.stub().StreamTrades(&call.context, r);
  std::vector<PublicTrade> seen;
  std::thread reading([&] {
    PublicTrade t;
    while (seen.size() < 3 && reader->Read(&t)) seen.push_back(t);
    call.context.TryCancel();
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  Place(server, "b2", Limit(kPvc, SPOT_SIDE_BUY, 700, 2000));  // this process: woken at once
  Place(other, "b3", Market(kPvc, SPOT_SIDE_BUY, 500));        // the other one: found by polling
  reading.join();
  REQUIRE(seen.size() == 3);
  CHECK(seen[0].sequence() == first_seq);
  CHECK(seen[0].quantity().milli() == 1000);
  CHECK(seen[1].quantity().milli() == 2000);
  CHECK(seen[2].quantity().milli() == 500);
  CHECK(seen[2].aggressor_side() == SPOT_SIDE_BUY);
  CHECK(seen[1].sequence() > seen[0].sequence());
  CHECK(seen[2].sequence() > seen[1].sequence());
  for (const PublicTrade& t : seen) {
    CHECK(t.price().amount_minor() == 700);
    CHECK(t.commodity_id() == kPvc);
  }
  // A stream without a start point begins at the live end.
  Call live("watcher");
  StreamTradesRequest from_now;
  from_now.set_commodity_id(kPvc);
  auto live_reader = server.stub().StreamTrades(&live.context, from_now);
  PublicTrade next;
  grpc::Status later_status;
  std::thread later([&] {  // no Catch2 assertions off the main thread
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    Call call("b4");
    PlaceSpotOrderResponse out;
    later_status = server.stub().PlaceSpotOrder(&call.context, Limit(kPvc, SPOT_SIDE_BUY, 700, 1500), &out);
  });
  REQUIRE(live_reader->Read(&next));
  CHECK(next.quantity().milli() == 1500);
  live.context.TryCancel();
  later.join();
  CHECK(later_status.ok());
}

TEST_CASE("spot: bad input is INVALID_ARGUMENT naming the field, and writes nothing") {
  SpotServer server;
  struct PlaceCase {
    const char* what;
    void (*spoil)(PlaceSpotOrderRequest&);
    const char* field;
  };
  std::vector<PlaceCase> place_cases = {
      {"no idempotency key", [](PlaceSpotOrderRequest& r) { r.clear_idempotency_key(); }, "idempotency_key"},
      {"ill-formed commodity id", [](PlaceSpotOrderRequest& r) { r.set_commodity_id("pvc"); }, "commodity_id"},
      {"unknown commodity",
       [](PlaceSpotOrderRequest& r) { r.set_commodity_id("01900000-0000-7000-8000-0000000000ff"); }, "commodity_id"},
      {"commodity without a spot book", [](PlaceSpotOrderRequest& r) { r.set_commodity_id(kTitaniumDioxide); },
       "commodity_id"},
      {"no side", [](PlaceSpotOrderRequest& r) { r.set_side(SPOT_SIDE_UNSPECIFIED); }, "side"},
      {"unknown side", [](PlaceSpotOrderRequest& r) { r.set_side(static_cast<SpotSide>(7)); }, "side"},
      {"no type", [](PlaceSpotOrderRequest& r) { r.set_type(SPOT_ORDER_TYPE_UNSPECIFIED); }, "type"},
      {"limit without price", [](PlaceSpotOrderRequest& r) { r.clear_limit_price(); }, "limit_price"},
      {"zero price", [](PlaceSpotOrderRequest& r) { r.mutable_limit_price()->set_amount_minor(0); },
       "limit_price.amount_minor"},
      {"negative price", [](PlaceSpotOrderRequest& r) { r.mutable_limit_price()->set_amount_minor(-5); },
       "limit_price.amount_minor"},
      {"absurd price", [](PlaceSpotOrderRequest& r) { r.mutable_limit_price()->set_amount_minor(INT64_MAX); },
       "limit_price.amount_minor"},
      {"another currency", [](PlaceSpotOrderRequest& r) { r.mutable_limit_price()->set_currency("USD"); },
       "limit_price.currency"},
      {"market order with a price", [](PlaceSpotOrderRequest& r) { r.set_type(SPOT_ORDER_TYPE_MARKET); },
       "limit_price"},
      {"no quantity", [](PlaceSpotOrderRequest& r) { r.clear_quantity(); }, "quantity"},
      {"zero quantity", [](PlaceSpotOrderRequest& r) { r.mutable_quantity()->set_milli(0); }, "quantity.milli"},
      {"negative quantity", [](PlaceSpotOrderRequest& r) { r.mutable_quantity()->set_milli(-1000); }, "quantity.milli"},
      {"not the commodity's unit", [](PlaceSpotOrderRequest& r) { r.mutable_quantity()->set_unit("kg"); },
       "quantity.unit"},
  };
  for (const PlaceCase& c : place_cases) {
    INFO(c.what);
    PlaceSpotOrderRequest r = Limit(kPvc, SPOT_SIDE_BUY, 100, 1000);
    c.spoil(r);
    Call call("tenant-a");
    PlaceSpotOrderResponse out;
    grpc::Status status = server.stub().PlaceSpotOrder(&call.context, r, &out);
    CHECK(status.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
    CHECK(ViolatedFields(status) == std::vector<std::string>{c.field});
    CHECK(status.error_message().find(c.field) != std::string::npos);
  }

  auto expect_field = [](const grpc::Status& status, const std::string& field) {
    INFO(field << ": " << status.error_message());
    CHECK(status.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
    CHECK(ViolatedFields(status) == std::vector<std::string>{field});
  };
  {
    Call call("tenant-a");
    CancelSpotOrderRequest r;
    r.set_order_id("42");
    SpotOrder out;
    expect_field(server.stub().CancelSpotOrder(&call.context, r, &out), "order_id");
  }
  {
    Call call("tenant-a");
    GetSpotOrderRequest r;
    SpotOrder out;
    expect_field(server.stub().GetSpotOrder(&call.context, r, &out), "order_id");
  }
  struct ListCase {
    void (*spoil)(ListSpotOrdersRequest&);
    const char* field;
  };
  for (const ListCase& c : std::vector<ListCase>{
           {[](ListSpotOrdersRequest& r) { r.set_page_size(-1); }, "page_size"},
           {[](ListSpotOrdersRequest& r) { r.set_page_size(100000); }, "page_size"},
           {[](ListSpotOrdersRequest& r) { r.set_page_token("!!"); }, "page_token"},
           {[](ListSpotOrdersRequest& r) { r.set_commodity_id("x"); }, "commodity_id"},
           {[](ListSpotOrdersRequest& r) { r.set_side(static_cast<SpotSide>(9)); }, "side"},
           {[](ListSpotOrdersRequest& r) { r.set_status(static_cast<SpotOrderStatus>(9)); }, "status"}}) {
    ListSpotOrdersRequest r;
    c.spoil(r);
    Call call("tenant-a");
    ListSpotOrdersResponse out;
    expect_field(server.stub().ListSpotOrders(&call.context, r, &out), c.field);
  }
  {
    Call call("tenant-a");
    GetBookRequest r;
    r.set_commodity_id("PVC");
    SpotBook out;
    expect_field(server.stub().GetBook(&call.context, r, &out), "commodity_id");
    Call call2("tenant-a");
    r.set_commodity_id(kPvc);
    r.set_depth(1000);
    expect_field(server.stub().GetBook(&call2.context, r, &out), "depth");
    Call call3("tenant-a");
    r.set_depth(-1);
    expect_field(server.stub().GetBook(&call3.context, r, &out), "depth");
  }
  {
    Call call("tenant-a");
    ListSpotTradesRequest r;
    r.set_page_token("not base64 of an id");
    ListSpotTradesResponse out;
    expect_field(server.stub().ListTrades(&call.context, r, &out), "page_token");
    Call call2("tenant-a");
    r.clear_page_token();
    r.set_page_size(-3);
    expect_field(server.stub().ListTrades(&call2.context, r, &out), "page_size");
  }
  for (auto spoil :
       std::vector<void (*)(StreamTradesRequest&)>{[](StreamTradesRequest& r) { r.set_commodity_id(""); },
                                                   [](StreamTradesRequest& r) { r.set_after_sequence(-1); }}) {
    StreamTradesRequest r;
    r.set_commodity_id(kPvc);
    spoil(r);
    Call call("tenant-a");
    auto reader = server.stub().StreamTrades(&call.context, r);
    PublicTrade t;
    CHECK_FALSE(reader->Read(&t));
    grpc::Status status = reader->Finish();
    expect_field(status, r.commodity_id().empty() ? "commodity_id" : "after_sequence");
  }
  CHECK(server.Count("spot_books") == 0);
  CHECK(server.Count("spot_orders") == 0);
  CHECK(server.Count("spot_trades") == 0);
  CHECK(server.Count("outbox") == 0);

  // A commodity that is not on the spot market has no book to read either.
  Call call("tenant-a");
  GetBookRequest r;
  r.set_commodity_id(kTitaniumDioxide);
  SpotBook out;
  CHECK(server.stub().GetBook(&call.context, r, &out).error_code() == grpc::StatusCode::NOT_FOUND);
}

TEST_CASE("spot: a tenant sees only its own orders and trades, and the book and the tape show no owners") {
  SpotServer server;
  SpotOrder a_sell = Place(server, "tenant-a", Limit(kPvc, SPOT_SIDE_SELL, 100, 5000)).order();
  PlaceSpotOrderResponse b_buy = Place(server, "tenant-b", Limit(kPvc, SPOT_SIDE_BUY, 100, 2000));
  REQUIRE(b_buy.trades_size() == 1);

  Call get("tenant-c");
  GetSpotOrderRequest g;
  g.set_order_id(a_sell.order_id());
  SpotOrder out;
  CHECK(server.stub().GetSpotOrder(&get.context, g, &out).error_code() == grpc::StatusCode::NOT_FOUND);
  Call cancel("tenant-b");
  CancelSpotOrderRequest c;
  c.set_order_id(a_sell.order_id());
  CHECK(server.stub().CancelSpotOrder(&cancel.context, c, &out).error_code() == grpc::StatusCode::NOT_FOUND);

  Call list_c("tenant-c");
  ListSpotOrdersResponse orders;
  REQUIRE(server.stub().ListSpotOrders(&list_c.context, ListSpotOrdersRequest(), &orders).ok());
  CHECK(orders.orders_size() == 0);
  Call list_b("tenant-b");
  REQUIRE(server.stub().ListSpotOrders(&list_b.context, ListSpotOrdersRequest(), &orders).ok());
  REQUIRE(orders.orders_size() == 1);
  CHECK(orders.orders(0).order_id() == b_buy.order().order_id());

  Call trades_c("tenant-c");
  ListSpotTradesResponse trades;
  REQUIRE(server.stub().ListTrades(&trades_c.context, ListSpotTradesRequest(), &trades).ok());
  CHECK(trades.trades_size() == 0);
  for (const char* party : {"tenant-a", "tenant-b"}) {
    Call call(party);
    REQUIRE(server.stub().ListTrades(&call.context, ListSpotTradesRequest(), &trades).ok());
    REQUIRE(trades.trades_size() == 1);
    CHECK(trades.trades(0).trade_id() == b_buy.trades(0).trade_id());
    CHECK(trades.trades(0).side() == (std::string(party) == "tenant-a" ? SPOT_SIDE_SELL : SPOT_SIDE_BUY));
    CHECK(trades.trades(0).counterparty_tenant_id() == (std::string(party) == "tenant-a" ? "tenant-b" : "tenant-a"));
  }

  std::string book = BookOf(server, kPvc).SerializeAsString();
  CHECK(book.find("tenant-a") == std::string::npos);
  CHECK(book.find(a_sell.order_id()) == std::string::npos);
}

TEST_CASE("spot: the caller's orders and trades page newest first") {
  SpotServer server;
  std::vector<std::string> ids;
  for (int i = 0; i < 7; ++i) {
    // Each offer cheaper than the last, so that the market buy after it takes half of it.
    ids.push_back(Place(server, "pager", Limit(kPvc, SPOT_SIDE_SELL, 200 - i, 1000)).order().order_id());
    Place(server, "taker", Market(kPvc, SPOT_SIDE_BUY, 500));
  }
  std::vector<std::string> seen, seen_trades;
  std::string token, trade_token;
  do {
    Call call("pager");
    ListSpotOrdersRequest r;
    r.set_page_size(3);
    r.set_page_token(token);
    r.set_side(SPOT_SIDE_SELL);
    ListSpotOrdersResponse out;
    REQUIRE(server.stub().ListSpotOrders(&call.context, r, &out).ok());
    for (const auto& o : out.orders()) seen.push_back(o.order_id());
    token = out.next_page_token();
  } while (!token.empty());
  CHECK(seen == std::vector<std::string>(ids.rbegin(), ids.rend()));
  do {
    Call call("pager");
    ListSpotTradesRequest r;
    r.set_page_size(2);
    r.set_page_token(trade_token);
    ListSpotTradesResponse out;
    REQUIRE(server.stub().ListTrades(&call.context, r, &out).ok());
    for (const auto& t : out.trades()) seen_trades.push_back(t.order_id());
    trade_token = out.next_page_token();
  } while (!trade_token.empty());
  CHECK(seen_trades == std::vector<std::string>(ids.rbegin(), ids.rend()));

  Call open("pager");
  ListSpotOrdersRequest only_open;
  only_open.set_status(SPOT_ORDER_STATUS_OPEN);
  ListSpotOrdersResponse out;
  REQUIRE(server.stub().ListSpotOrders(&open.context, only_open, &out).ok());
  CHECK(out.orders_size() == 7);  // each sold 0.5 t of 1 t
}
