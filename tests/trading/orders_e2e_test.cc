// End to end: orders, their life cycle and contract, concurrent buying, RFQs and quotes — the real ptd-trading
// binary against the test run's PostgreSQL and Redis.
#include <atomic>
#include <map>
#include <mutex>
#include <thread>

#include "google/protobuf/util/message_differencer.h"
#include "google/protobuf/util/time_util.h"
#include "libs/redis/client.h"
#include "ptd/trading/v1/orders.grpc.pb.h"
#include "tests/trading/trading_fixture.h"

namespace {

using namespace ptd::trading::v1;
using namespace ptd::testing::trading;
using google::protobuf::util::MessageDifferencer;
using google::protobuf::util::TimeUtil;

constexpr char kSeller[] = "seller-co";
constexpr char kBuyer[] = "buyer-co";

CreateListingRequest TieredListing(const std::string& key, int64_t available_milli) {
  CreateListingRequest r;
  r.set_idempotency_key(key);
  r.set_commodity_id(kPvc);
  auto* t = r.add_title();
  t->set_lang("en");
  t->set_text("PVC SG-5 " + key);
  r.mutable_unit_price()->set_currency("CNY");
  r.mutable_unit_price()->set_amount_minor(600000);
  r.mutable_available()->set_milli(available_milli);
  r.mutable_available()->set_unit("t");
  auto* tier = r.add_price_tiers();
  tier->mutable_min_quantity()->set_milli(10000);
  tier->mutable_min_quantity()->set_unit("t");
  tier->mutable_unit_price()->set_currency("CNY");
  tier->mutable_unit_price()->set_amount_minor(580000);
  r.mutable_delivery()->set_kind(DeliveryTerms::EX_WORKS);
  r.mutable_delivery()->set_warehouse("Tianjin port WH-3");
  r.mutable_payment()->set_kind(PaymentTerms::PREPAID);
  return r;
}

class Market {
 public:
  Market() : orders_(OrderService::NewStub(server_.channel())) {}

  TradingServer& server() { return server_; }
  OrderService::Stub& orders() { return *orders_; }

  Listing MakeListing(const std::string& key, int64_t available_milli) {
    Call call(kSeller);
    Listing l;
    grpc::Status s = server_.stub().CreateListing(&call.context, TieredListing(key, available_milli), &l);
    INFO(s.error_message());
    REQUIRE(s.ok());
    return l;
  }

  grpc::Status Place(const std::string& tenant, const std::string& key, const std::string& listing_id,
                     int64_t milli, Order* out) {
    Call call(tenant);
    PlaceOrderRequest r;
    r.set_idempotency_key(key);
    r.set_listing_id(listing_id);
    r.mutable_quantity()->set_milli(milli);
    r.mutable_quantity()->set_unit("t");
    return orders_->PlaceOrder(&call.context, r, out);
  }

  grpc::Status Act(const std::string& tenant, const std::string& order_id, OrderAction action, Order* out,
                   const std::string& payment_reference = "") {
    Call call(tenant);
    ActOnOrderRequest r;
    r.set_order_id(order_id);
    r.set_action(action);
    r.set_payment_reference(payment_reference);
    return orders_->ActOnOrder(&call.context, r, out);
  }

  int64_t Available(const std::string& listing_id) {
    Call call(kSeller);
    GetListingRequest g;
    g.set_listing_id(listing_id);
    Listing l;
    REQUIRE(server_.stub().GetListing(&call.context, g, &l).ok());
    return l.available().milli();
  }

  // Event types on the stream for one aggregate, in stream order.
  std::vector<std::string> EventTypes(const std::string& aggregate_id, size_t expect) {
    auto redis = ptd::redis::Client::Create({.url = ptd::testing::GetInfra().redis_url});
    REQUIRE(redis.ok());
    std::vector<std::string> types;
    ptd::testing::WaitFor([&] {
      types.clear();
      auto reply = (*redis)->Command({"XRANGE", "ptd.trading.events", "-", "+"});
      if (!reply.ok()) return false;
      for (const auto& entry : reply->elements) {
        const auto& fields = entry.elements[1].elements;
        std::string type, aggregate;
        for (size_t i = 0; i + 1 < fields.size(); i += 2) {
          if (fields[i].str == "aggregate_id") aggregate = fields[i + 1].str;
          if (fields[i].str == "type") type = fields[i + 1].str;
        }
        if (aggregate == aggregate_id) types.push_back(type);
      }
      return types.size() >= expect;
    });
    return types;
  }

 private:
  TradingServer server_;
  std::unique_ptr<OrderService::Stub> orders_;
};

}  // namespace

TEST_CASE("orders: the whole life cycle, each transition recorded, evented, with a contract fixed at confirmation") {
  Market m;
  Listing listing = m.MakeListing("l1", 100000);
  Order o;
  REQUIRE(m.Place(kBuyer, "o1", listing.listing_id(), 20000, &o).ok());
  CHECK(o.state() == PLACED);
  CHECK(o.unit_price().amount_minor() == 580000);      // the 10 t tier
  CHECK(o.total().amount_minor() == 580000 * 20);
  CHECK(o.seller_tenant_id() == kSeller);
  CHECK(o.delivery().warehouse() == "Tianjin port WH-3");
  CHECK(m.Available(listing.listing_id()) == 80000);

  Order x;
  CHECK(m.Act(kBuyer, o.order_id(), CONFIRM, &x).error_code() == grpc::StatusCode::PERMISSION_DENIED);
  CHECK(m.Act(kSeller, o.order_id(), SHIP, &x).error_code() == grpc::StatusCode::FAILED_PRECONDITION);
  REQUIRE(m.Act(kSeller, o.order_id(), CONFIRM, &o).ok());
  REQUIRE(o.has_contract());
  const std::string contract = o.contract().SerializeAsString();
  CHECK(o.contract().total().amount_minor() == 580000 * 20);
  CHECK(o.contract().sha256().size() == 64);
  CHECK(m.Act(kBuyer, o.order_id(), PAY, &x).error_code() == grpc::StatusCode::INVALID_ARGUMENT);  // no reference
  REQUIRE(m.Act(kBuyer, o.order_id(), PAY, &o, "BANK-2026-0001").ok());
  REQUIRE(m.Act(kSeller, o.order_id(), SHIP, &o).ok());
  CHECK(m.Act(kBuyer, o.order_id(), CANCEL, &x).error_code() == grpc::StatusCode::FAILED_PRECONDITION);
  REQUIRE(m.Act(kBuyer, o.order_id(), DELIVER, &o).ok());
  REQUIRE(m.Act(kBuyer, o.order_id(), COMPLETE, &o).ok());
  CHECK(o.state() == COMPLETED);
  CHECK(o.contract().SerializeAsString() == contract);
  CHECK(o.payment_reference() == "BANK-2026-0001");
  REQUIRE(o.history_size() == 6);
  CHECK(o.history(1).action() == CONFIRM);
  CHECK(o.history(1).tenant_id() == kSeller);
  CHECK(o.history(5).to() == COMPLETED);
  CHECK(m.Act(kBuyer, o.order_id(), DISPUTE, &x).error_code() == grpc::StatusCode::FAILED_PRECONDITION);

  CHECK(m.EventTypes(o.order_id(), 6) ==
        std::vector<std::string>{"ptd.trading.v1.OrderPlaced", "ptd.trading.v1.OrderConfirmed",
                                 "ptd.trading.v1.OrderPaid", "ptd.trading.v1.OrderShipped",
                                 "ptd.trading.v1.OrderDelivered", "ptd.trading.v1.OrderCompleted"});

  // Not even a direct UPDATE changes a signed contract.
  pqxx::connection conn(m.server().db_url());
  pqxx::work tx(conn);
  CHECK_THROWS(tx.exec_params("UPDATE trading.orders SET contract = '{}'::jsonb WHERE order_id = $1", o.order_id()));
}

TEST_CASE("orders: cancel before shipping returns the quantity, disputes resolve either way") {
  Market m;
  Listing listing = m.MakeListing("l1", 50000);
  Order a, b, x;
  REQUIRE(m.Place(kBuyer, "a", listing.listing_id(), 5000, &a).ok());
  REQUIRE(m.Place(kBuyer, "b", listing.listing_id(), 5000, &b).ok());
  CHECK(m.Available(listing.listing_id()) == 40000);
  REQUIRE(m.Act(kSeller, a.order_id(), CANCEL, &a).ok());
  CHECK(a.state() == CANCELLED);
  CHECK(m.Available(listing.listing_id()) == 45000);
  CHECK(m.Act(kSeller, a.order_id(), CANCEL, &x).error_code() == grpc::StatusCode::FAILED_PRECONDITION);

  REQUIRE(m.Act(kSeller, b.order_id(), CONFIRM, &b).ok());
  REQUIRE(m.Act(kBuyer, b.order_id(), PAY, &b, "P-1").ok());
  REQUIRE(m.Act(kSeller, b.order_id(), SHIP, &b).ok());
  REQUIRE(m.Act(kBuyer, b.order_id(), DISPUTE, &b).ok());
  CHECK(m.Act(kBuyer, b.order_id(), REFUND, &x).error_code() == grpc::StatusCode::PERMISSION_DENIED);
  REQUIRE(m.Act(kSeller, b.order_id(), REFUND, &b).ok());
  CHECK(b.state() == REFUNDED);
  CHECK(m.Available(listing.listing_id()) == 45000);  // shipped goods do not come back to the listing
}

TEST_CASE("orders: 64 buyers taking 1 t twice each from 100 t sell exactly 100 t, never more") {
  Market m;
  Listing listing = m.MakeListing("hot", 100000);
  std::atomic<int> sold{0}, refused{0}, other{0};
  std::vector<std::thread> buyers;
  for (int b = 0; b < 64; ++b) {
    buyers.emplace_back([&, b] {
      auto stub = OrderService::NewStub(m.server().channel());
      for (int i = 0; i < 2; ++i) {
        Call call("buyer-" + std::to_string(b));
        PlaceOrderRequest r;
        r.set_idempotency_key("k" + std::to_string(i));
        r.set_listing_id(listing.listing_id());
        r.mutable_quantity()->set_milli(1000);
        r.mutable_quantity()->set_unit("t");
        Order o;
        grpc::Status s = stub->PlaceOrder(&call.context, r, &o);
        if (s.ok()) ++sold;
        else if (s.error_code() == grpc::StatusCode::FAILED_PRECONDITION) ++refused;
        else ++other;
      }
    });
  }
  for (auto& t : buyers) t.join();
  CHECK(other == 0);
  CHECK(sold == 100);
  CHECK(refused == 28);
  CHECK(m.Available(listing.listing_id()) == 0);
  pqxx::connection conn(m.server().db_url());
  pqxx::work tx(conn);
  CHECK(tx.exec1("SELECT sum(quantity_milli) FROM trading.orders")[0].as<int64_t>() == 100000);
}

TEST_CASE("orders: buy-now orders placed together are answered as stored, evented once each, and batched") {
  Market m;
  std::vector<std::string> listings;
  for (int i = 0; i < 4; ++i) listings.push_back(m.MakeListing("batch-" + std::to_string(i), 1000000).listing_id());
  std::mutex mu;
  std::vector<std::pair<std::string, Order>> placed;  // buyer, answer
  std::atomic<int> failed{0};
  std::vector<std::thread> buyers;
  for (int b = 0; b < 16; ++b) {
    buyers.emplace_back([&, b] {
      auto stub = OrderService::NewStub(m.server().channel());
      for (int i = 0; i < 10; ++i) {
        const std::string buyer = "batch-buyer-" + std::to_string(b);
        Call call(buyer);
        PlaceOrderRequest r;
        r.set_idempotency_key("k" + std::to_string(i));
        r.set_listing_id(listings[(b + i) % listings.size()]);
        r.mutable_quantity()->set_milli(1000 + 1000 * (i % 12));  // 10 t and more: the tier price
        r.mutable_quantity()->set_unit("t");
        Order o;
        if (!stub->PlaceOrder(&call.context, r, &o).ok()) {
          ++failed;
          continue;
        }
        std::lock_guard lock(mu);
        placed.emplace_back(buyer, o);
      }
    });
  }
  for (auto& t : buyers) t.join();
  REQUIRE(failed == 0);
  REQUIRE(placed.size() == 160);

  // Each answer is the order as a later read returns it, to the last field, at the price of its tier.
  int64_t total_milli = 0;
  for (const auto& [buyer, o] : placed) {
    Call call(buyer);
    GetOrderRequest g;
    g.set_order_id(o.order_id());
    Order read;
    REQUIRE(m.orders().GetOrder(&call.context, g, &read).ok());
    CHECK(MessageDifferencer::Equals(read, o));
    CHECK(o.unit_price().amount_minor() == (o.quantity().milli() >= 10000 ? 580000 : 600000));
    CHECK(o.total().amount_minor() == o.unit_price().amount_minor() * o.quantity().milli() / 1000);
    total_milli += o.quantity().milli();
  }
  int64_t left = 0;
  for (const std::string& id : listings) left += m.Available(id);
  CHECK(left + total_milli == 4 * 1000000);

  pqxx::connection conn(m.server().db_url());
  pqxx::work tx(conn);
  CHECK(tx.exec1("SELECT count(*) FROM trading.orders")[0].as<int64_t>() == 160);
  CHECK(tx.exec1("SELECT count(*) FROM trading.order_transitions")[0].as<int64_t>() == 160);
  // One OrderPlaced per order, whose payload is the answer.
  pqxx::result events = tx.exec(
      "SELECT aggregate_id, payload FROM trading.outbox WHERE type = 'ptd.trading.v1.OrderPlaced' ORDER BY id");
  REQUIRE(events.size() == 160);
  std::map<std::string, Order> by_id;
  for (const auto& [buyer, o] : placed) by_id[o.order_id()] = o;
  for (const auto& row : events) {
    OrderPlaced event;
    REQUIRE(event.ParseFromString(std::string(pqxx::binarystring(row[1]).str())));
    CHECK(event.order().order_id() == row[0].as<std::string>());
    CHECK(MessageDifferencer::Equals(event.order(), by_id[row[0].as<std::string>()]));
  }
  const std::string metrics = m.server().Metrics();
  INFO(metrics);
  CHECK(metrics.find("ptd_trading_buy_now_transactions_total{reason=\"fallback\"} 0\n") != std::string::npos);
  CHECK(metrics.find("ptd_trading_buy_now_transactions_total{reason=\"repeat\"} 0\n") != std::string::npos);
  CHECK(metrics.find("ptd_trading_buy_now_batch_requests_sum 160\n") != std::string::npos);
  CHECK(metrics.find("ptd_trading_buy_now_batches_total 0\n") == std::string::npos);
}

TEST_CASE("orders: a buy-now batch whose listing changed, or whose connection broke, is placed once by transactions") {
  for (const bool terminate : {false, true}) {
    DYNAMIC_SECTION((terminate ? "the statement's backend ends" : "the listing changes under the statement")) {
      Market m;
      Listing listing = m.MakeListing("moved", 50000);
      Order first;
      REQUIRE(m.Place(kBuyer, "first", listing.listing_id(), 1000, &first).ok());

      // Hold the listing's row, so that the next batch's statement waits for it; then change the listing (as a
      // seller's update would) or end that statement's backend.
      pqxx::connection holder_connection(m.server().db_url());
      pqxx::work holder(holder_connection);
      holder.exec("SELECT 1 FROM trading.listings WHERE listing_id = '" + listing.listing_id() + "' FOR UPDATE");
      grpc::Status status;
      Order placed;
      std::thread buyer([&] { status = m.Place(kBuyer, "second", listing.listing_id(), 2000, &placed); });
      pqxx::connection admin(m.server().db_url());
      int waiting = 0;
      for (int i = 0; i < 250 && waiting == 0; ++i) {
        pqxx::nontransaction q(admin);
        waiting = q.exec(std::string("SELECT ") + (terminate ? "pg_terminate_backend(pid)" : "pid") +
                         " FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' "
                         "AND query LIKE 'WITH wanted AS%' "
                         "AND pid <> pg_backend_pid()")
                      .size();
        if (waiting == 0) std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
      CHECK(waiting == 1);
      if (!terminate) {
        holder.exec("UPDATE trading.listings SET version = version + 1 WHERE listing_id = '" + listing.listing_id() +
                    "'");
      }
      holder.commit();
      buyer.join();

      INFO(status.error_message());
      REQUIRE(status.ok());
      CHECK(placed.quantity().milli() == 2000);
      CHECK(m.Available(listing.listing_id()) == 47000);
      CHECK(m.server().Count("orders") == 2);
      pqxx::connection conn(m.server().db_url());
      pqxx::work tx(conn);
      CHECK(tx.exec1("SELECT count(*) FROM trading.outbox WHERE type = 'ptd.trading.v1.OrderPlaced'")[0]
                .as<int64_t>() == 2);
      // The order placed by the fallback is the one a later read finds.
      Call call(kBuyer);
      GetOrderRequest g;
      g.set_order_id(placed.order_id());
      Order read;
      REQUIRE(m.orders().GetOrder(&call.context, g, &read).ok());
      CHECK(MessageDifferencer::Equals(read, placed));
      const std::string metrics = m.server().Metrics();
      INFO(metrics);
      CHECK(metrics.find("ptd_trading_buy_now_transactions_total{reason=\"fallback\"} 1\n") != std::string::npos);
      CHECK(metrics.find("ptd_trading_buy_now_batches_total 1\n") != std::string::npos);
      // The batches after it are one statement again (on a new connection after a broken one).
      REQUIRE(m.Place(kBuyer, "third", listing.listing_id(), 1000, &read).ok());
      CHECK(m.server().Metrics().find("ptd_trading_buy_now_batches_total 2\n") != std::string::npos);
    }
  }
}

TEST_CASE("orders: a SIGKILL while many buyers place orders loses no acknowledged order and no quantity") {
  TradingServer server;
  std::vector<std::string> listings;
  for (int i = 0; i < 5; ++i) {
    Call call(kSeller);
    Listing l;
    REQUIRE(server.stub().CreateListing(&call.context, TieredListing("kill-" + std::to_string(i), 10000000), &l).ok());
    listings.push_back(l.listing_id());
  }
  std::mutex mu;
  std::vector<std::pair<std::string, std::string>> acknowledged;  // buyer, order id
  std::atomic<bool> stop{false};
  auto channel = server.channel();
  auto client = [&](int id) {
    auto stub = OrderService::NewStub(channel);
    for (int i = 0; !stop; ++i) {
      const std::string buyer = "kill-buyer-" + std::to_string(id);
      Call call(buyer);
      PlaceOrderRequest r;
      r.set_idempotency_key("k" + std::to_string(i));
      r.set_listing_id(listings[(id + i) % listings.size()]);
      r.mutable_quantity()->set_milli(1000);
      r.mutable_quantity()->set_unit("t");
      Order o;
      if (stub->PlaceOrder(&call.context, r, &o).ok()) {
        std::lock_guard lock(mu);
        acknowledged.emplace_back(buyer, o.order_id());
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
  auto stub = OrderService::NewStub(server.channel());
  int missing = 0;
  for (const auto& [buyer, id] : acknowledged) {
    Call call(buyer);
    GetOrderRequest g;
    g.set_order_id(id);
    Order out;
    if (!stub->GetOrder(&call.context, g, &out).ok()) ++missing;
  }
  CHECK(missing == 0);
  // Nothing half-written: every order has its transition and its event, and the quantity taken from each
  // listing is the sum of its orders.
  pqxx::connection conn(server.db_url());
  pqxx::work tx(conn);
  const int64_t orders = tx.exec1("SELECT count(*) FROM trading.orders")[0].as<int64_t>();
  CHECK(orders >= static_cast<int64_t>(acknowledged.size()));
  CHECK(tx.exec1("SELECT count(*) FROM trading.order_transitions")[0].as<int64_t>() == orders);
  CHECK(tx.exec1("SELECT count(*) FROM trading.outbox WHERE type = 'ptd.trading.v1.OrderPlaced'")[0].as<int64_t>() ==
        orders);
  CHECK(tx.exec1("SELECT count(*) FROM trading.listings l WHERE l.available_milli + (SELECT coalesce(sum("
                 "quantity_milli), 0) FROM trading.orders o WHERE o.listing_id = l.listing_id) <> 10000000")[0]
            .as<int64_t>() == 0);
}

TEST_CASE("orders: a retried order is the same order, and only its two parties see it") {
  Market m;
  Listing listing = m.MakeListing("l1", 50000);
  Order o, again, x;
  REQUIRE(m.Place(kBuyer, "same", listing.listing_id(), 1000, &o).ok());
  REQUIRE(m.Place(kBuyer, "same", listing.listing_id(), 1000, &again).ok());
  CHECK(again.order_id() == o.order_id());
  // The first answer is the order as stored: the retry and GetOrder read it back, equal to the last field.
  CHECK(o.history_size() == 1);
  CHECK(MessageDifferencer::Equals(again, o));
  CHECK(m.Available(listing.listing_id()) == 49000);
  CHECK(m.Place(kBuyer, "same", listing.listing_id(), 2000, &x).error_code() == grpc::StatusCode::ALREADY_EXISTS);
  CHECK(m.Place(kSeller, "own", listing.listing_id(), 1000, &x).error_code() == grpc::StatusCode::FAILED_PRECONDITION);

  for (const char* tenant : {kBuyer, kSeller}) {
    Call call(tenant);
    GetOrderRequest g;
    g.set_order_id(o.order_id());
    CHECK(m.orders().GetOrder(&call.context, g, &x).ok());
    CHECK(MessageDifferencer::Equals(x, o));
  }
  Call stranger("stranger-co");
  GetOrderRequest g;
  g.set_order_id(o.order_id());
  CHECK(m.orders().GetOrder(&stranger.context, g, &x).error_code() == grpc::StatusCode::NOT_FOUND);
  CHECK(m.Act("stranger-co", o.order_id(), CANCEL, &x).error_code() == grpc::StatusCode::NOT_FOUND);
  Call list("stranger-co");
  ListOrdersResponse listed;
  REQUIRE(m.orders().ListOrders(&list.context, ListOrdersRequest(), &listed).ok());
  CHECK(listed.orders_size() == 0);
  Call seller_list(kSeller);
  ListOrdersRequest as_seller;
  as_seller.set_role(ListOrdersRequest::SELLER);
  REQUIRE(m.orders().ListOrders(&seller_list.context, as_seller, &listed).ok());
  CHECK(listed.orders_size() == 1);
}

TEST_CASE("orders: offers show every seller's active listings, and paused ones cannot be bought") {
  Market m;
  Listing listing = m.MakeListing("l1", 50000);
  Call c(kBuyer);
  ListOffersResponse offers;
  REQUIRE(m.orders().ListOffers(&c.context, ListOffersRequest(), &offers).ok());
  REQUIRE(offers.offers_size() == 1);
  CHECK(offers.offers(0).tenant_id() == kSeller);
  Call pause(kSeller);
  UpdateListingRequest u;
  u.set_listing_id(listing.listing_id());
  u.set_status(LISTING_STATUS_PAUSED);
  Listing l;
  REQUIRE(m.server().stub().UpdateListing(&pause.context, u, &l).ok());
  Order x;
  CHECK(m.Place(kBuyer, "p", listing.listing_id(), 1000, &x).error_code() == grpc::StatusCode::FAILED_PRECONDITION);
  Call c2(kBuyer);
  REQUIRE(m.orders().ListOffers(&c2.context, ListOffersRequest(), &offers).ok());
  CHECK(offers.offers_size() == 0);
}

TEST_CASE("orders: bad input is INVALID_ARGUMENT naming the field and writes nothing") {
  Market m;
  Listing listing = m.MakeListing("l1", 50000);
  struct Case {
    const char* what;
    std::function<grpc::Status()> call;
    const char* field;
  };
  auto place = [&](std::function<void(PlaceOrderRequest&)> spoil) {
    return [&, spoil] {
      Call call(kBuyer);
      PlaceOrderRequest r;
      r.set_idempotency_key("bad");
      r.set_listing_id(listing.listing_id());
      r.mutable_quantity()->set_milli(1000);
      r.mutable_quantity()->set_unit("t");
      spoil(r);
      Order o;
      return m.orders().PlaceOrder(&call.context, r, &o);
    };
  };
  auto act = [&](std::function<void(ActOnOrderRequest&)> spoil) {
    return [&, spoil] {
      Call call(kBuyer);
      ActOnOrderRequest r;
      r.set_order_id(listing.listing_id());
      r.set_action(CANCEL);
      spoil(r);
      Order o;
      return m.orders().ActOnOrder(&call.context, r, &o);
    };
  };
  auto rfq = [&](std::function<void(CreateRfqRequest&)> spoil) {
    return [&, spoil] {
      Call call(kBuyer);
      CreateRfqRequest r;
      r.set_idempotency_key("bad");
      r.set_commodity_id(kPvc);
      r.mutable_quantity()->set_milli(1000);
      r.mutable_quantity()->set_unit("t");
      r.set_delivery_place("Ningbo");
      *r.mutable_closes_at() = TimeUtil::GetCurrentTime() + TimeUtil::SecondsToDuration(3600);
      spoil(r);
      Rfq out;
      return m.orders().CreateRfq(&call.context, r, &out);
    };
  };
  std::vector<Case> cases = {
      {"negative quantity", place([](auto& r) { r.mutable_quantity()->set_milli(-1); }), "quantity.milli"},
      {"unknown unit", place([](auto& r) { r.mutable_quantity()->set_unit("furlong"); }), "quantity.unit"},
      {"wrong unit", place([](auto& r) { r.mutable_quantity()->set_unit("kg"); }), "quantity.unit"},
      {"no key", place([](auto& r) { r.clear_idempotency_key(); }), "idempotency_key"},
      {"bad listing id", place([](auto& r) { r.set_listing_id("nope"); }), "listing_id"},
      {"no action", act([](auto& r) { r.clear_action(); }), "action"},
      {"unknown action", act([](auto& r) { r.set_action(static_cast<OrderAction>(99)); }), "action"},
      {"bad order id", act([](auto& r) { r.set_order_id(""); }), "order_id"},
      {"rfq closes in the past",
       rfq([](auto& r) { *r.mutable_closes_at() = TimeUtil::GetCurrentTime() - TimeUtil::SecondsToDuration(1); }),
       "closes_at"},
      {"rfq without place", rfq([](auto& r) { r.clear_delivery_place(); }), "delivery_place"},
      {"rfq zero quantity", rfq([](auto& r) { r.mutable_quantity()->set_milli(0); }), "quantity.milli"},
  };
  for (const Case& c : cases) {
    INFO(c.what);
    grpc::Status s = c.call();
    CHECK(s.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
    CHECK(ViolatedFields(s) == std::vector<std::string>{c.field});
  }
  CHECK(m.server().Count("orders") == 0);
  CHECK(m.server().Count("rfqs") == 0);
  CHECK(m.Available(listing.listing_id()) == 50000);
}

TEST_CASE("rfq: sellers quote, the buyer accepts one which becomes an order, the others are rejected") {
  Market m;
  Call create(kBuyer);
  CreateRfqRequest r;
  r.set_idempotency_key("rfq1");
  r.set_commodity_id(kEthanol);
  r.set_spec("95% vol, tank truck");
  r.mutable_quantity()->set_milli(300000);
  r.mutable_quantity()->set_unit("t");
  r.set_delivery_place("Zhangjiagang port");
  *r.mutable_closes_at() = TimeUtil::GetCurrentTime() + TimeUtil::SecondsToDuration(5);
  Rfq rfq;
  REQUIRE(m.orders().CreateRfq(&create.context, r, &rfq).ok());

  std::vector<std::string> quote_ids;
  for (int i = 0; i < 3; ++i) {
    Call call("seller-" + std::to_string(i));
    SubmitQuoteRequest q;
    q.set_idempotency_key("q");
    q.set_rfq_id(rfq.rfq_id());
    q.mutable_unit_price()->set_currency("CNY");
    q.mutable_unit_price()->set_amount_minor(610000 - i * 1000);
    q.mutable_quantity()->set_milli(300000);
    q.mutable_quantity()->set_unit("t");
    Quote out;
    grpc::Status s = m.orders().SubmitQuote(&call.context, q, &out);
    INFO(s.error_message());
    REQUIRE(s.ok());
    quote_ids.push_back(out.quote_id());
  }
  Call own(kBuyer);
  SubmitQuoteRequest self;
  self.set_idempotency_key("self");
  self.set_rfq_id(rfq.rfq_id());
  self.mutable_unit_price()->set_currency("CNY");
  self.mutable_unit_price()->set_amount_minor(1);
  self.mutable_quantity()->set_milli(1);
  self.mutable_quantity()->set_unit("t");
  Quote ignored;
  CHECK(m.orders().SubmitQuote(&own.context, self, &ignored).error_code() == grpc::StatusCode::FAILED_PRECONDITION);

  Call all(kBuyer);
  ListQuotesRequest lq;
  lq.set_rfq_id(rfq.rfq_id());
  ListQuotesResponse quotes;
  REQUIRE(m.orders().ListQuotes(&all.context, lq, &quotes).ok());
  CHECK(quotes.quotes_size() == 3);
  Call one("seller-1");
  REQUIRE(m.orders().ListQuotes(&one.context, lq, &quotes).ok());
  REQUIRE(quotes.quotes_size() == 1);
  CHECK(quotes.quotes(0).seller_tenant_id() == "seller-1");

  // Past its closing time the RFQ takes no quote.
  std::this_thread::sleep_for(std::chrono::milliseconds(5100));
  Call late("seller-9");
  SubmitQuoteRequest lateq = self;
  lateq.set_idempotency_key("late");
  lateq.mutable_unit_price()->set_amount_minor(500000);
  CHECK(m.orders().SubmitQuote(&late.context, lateq, &ignored).error_code() == grpc::StatusCode::FAILED_PRECONDITION);

  Call accept(kBuyer);
  AcceptQuoteRequest a;
  a.set_rfq_id(rfq.rfq_id());
  a.set_quote_id(quote_ids[2]);
  a.set_idempotency_key("accept");
  Order order;
  REQUIRE(m.orders().AcceptQuote(&accept.context, a, &order).ok());
  CHECK(order.state() == PLACED);
  CHECK(order.seller_tenant_id() == "seller-2");
  CHECK(order.quote_id() == quote_ids[2]);
  CHECK(order.total().amount_minor() == 608000LL * 300);
  Call again(kBuyer);
  Order dup;
  REQUIRE(m.orders().AcceptQuote(&again.context, a, &dup).ok());
  CHECK(dup.order_id() == order.order_id());
  Call other(kBuyer);
  a.set_quote_id(quote_ids[0]);
  a.set_idempotency_key("accept-2");
  CHECK(m.orders().AcceptQuote(&other.context, a, &dup).error_code() == grpc::StatusCode::FAILED_PRECONDITION);

  Call after(kBuyer);
  REQUIRE(m.orders().ListQuotes(&after.context, lq, &quotes).ok());
  int accepted = 0, rejected = 0;
  for (const auto& q : quotes.quotes()) {
    accepted += q.state() == QUOTE_ACCEPTED;
    rejected += q.state() == QUOTE_REJECTED;
  }
  CHECK(accepted == 1);
  CHECK(rejected == 2);
  CHECK(m.EventTypes(quote_ids[0], 1) == std::vector<std::string>{"ptd.trading.v1.QuoteRejected"});
  CHECK(m.EventTypes(quote_ids[2], 1) == std::vector<std::string>{"ptd.trading.v1.QuoteAccepted"});

  // An awarded RFQ is its buyer's alone.
  Call stranger("seller-0");
  GetRfqRequest g;
  g.set_rfq_id(rfq.rfq_id());
  Rfq seen;
  CHECK(m.orders().GetRfq(&stranger.context, g, &seen).error_code() == grpc::StatusCode::NOT_FOUND);
}

namespace {

OpenGroupOfferRequest GroupRequest(const std::string& key, double seconds_to_deadline) {
  OpenGroupOfferRequest r;
  r.set_idempotency_key(key);
  r.set_commodity_id("01900000-0000-7000-8000-00000000000d");  // urea, in t
  auto* t = r.add_title();
  t->set_lang("zh");
  t->set_text("尿素百团拼购");
  for (auto [min_t, price] : {std::pair{10, 230000}, {30, 225000}, {60, 220000}}) {
    auto* tier = r.add_tiers();
    tier->mutable_min_quantity()->set_milli(min_t * 1000);
    tier->mutable_min_quantity()->set_unit("t");
    tier->mutable_unit_price()->set_currency("CNY");
    tier->mutable_unit_price()->set_amount_minor(price);
  }
  *r.mutable_deadline() =
      TimeUtil::GetCurrentTime() + TimeUtil::MillisecondsToDuration(static_cast<int64_t>(seconds_to_deadline * 1000));
  return r;
}

grpc::Status Join(Market& m, const std::string& tenant, const std::string& group_id, int64_t milli,
                  GroupMembership* out) {
  Call call(tenant);
  JoinGroupOfferRequest j;
  j.set_group_id(group_id);
  j.set_idempotency_key("join");
  j.mutable_quantity()->set_milli(milli);
  j.mutable_quantity()->set_unit("t");
  return m.orders().JoinGroupOffer(&call.context, j, out);
}

GroupOffer WaitForGroupEnd(Market& m, const std::string& group_id) {
  GroupOffer g;
  REQUIRE(ptd::testing::WaitFor([&] {
    Call call(kSeller);
    GetGroupOfferRequest r;
    r.set_group_id(group_id);
    return m.orders().GetGroupOffer(&call.context, r, &g).ok() && g.state() != GROUP_OPEN;
  }));
  return g;
}

GroupOffer Open(Market& m, const OpenGroupOfferRequest& r) {
  Call call(kSeller);
  GroupOffer g;
  grpc::Status s = m.orders().OpenGroupOffer(&call.context, r, &g);
  INFO(s.error_message());
  REQUIRE(s.ok());
  return g;
}

}  // namespace

TEST_CASE("group buying: at the deadline every member pays the tier reached, one order each") {
  Market m;
  GroupOffer g = Open(m, GroupRequest("g1", 5.0));
  GroupMembership member;
  for (int i = 0; i < 3; ++i) REQUIRE(Join(m, "farm-" + std::to_string(i), g.group_id(), 12000, &member).ok());
  CHECK(Join(m, "farm-0", g.group_id(), 12000, &member).ok());  // a retried join is the same membership
  g = WaitForGroupEnd(m, g.group_id());
  CHECK(g.state() == GROUP_CLOSED);
  CHECK(g.joined().milli() == 36000);
  CHECK(g.reached_price().amount_minor() == 225000);  // 36 t reached the 30 t tier
  for (int i = 0; i < 3; ++i) {
    Call call("farm-" + std::to_string(i));
    ListOrdersResponse orders;
    REQUIRE(m.orders().ListOrders(&call.context, ListOrdersRequest(), &orders).ok());
    REQUIRE(orders.orders_size() == 1);
    CHECK(orders.orders(0).unit_price().amount_minor() == 225000);
    CHECK(orders.orders(0).total().amount_minor() == 225000LL * 12);
    CHECK(orders.orders(0).seller_tenant_id() == kSeller);
  }
  CHECK(m.EventTypes(g.group_id(), 5).back() == "ptd.trading.v1.GroupOfferClosed");
  CHECK(Join(m, "late-farm", g.group_id(), 1000, &member).error_code() == grpc::StatusCode::FAILED_PRECONDITION);
}

TEST_CASE("group buying: filling the top tier closes the group at once") {
  Market m;
  GroupOffer g = Open(m, GroupRequest("g1", 3600));
  GroupMembership member;
  REQUIRE(Join(m, "a", g.group_id(), 30000, &member).ok());
  CHECK(member.order_id().empty());
  REQUIRE(Join(m, "b", g.group_id(), 30000, &member).ok());
  CHECK_FALSE(member.order_id().empty());
  Call call(kSeller);
  GetGroupOfferRequest r;
  r.set_group_id(g.group_id());
  REQUIRE(m.orders().GetGroupOffer(&call.context, r, &g).ok());
  CHECK(g.state() == GROUP_CLOSED);
  CHECK(g.reached_price().amount_minor() == 220000);
}

TEST_CASE("group buying: a group below its first tier at the deadline is cancelled, with no orders") {
  Market m;
  GroupOffer g = Open(m, GroupRequest("g1", 4.0));
  GroupMembership member;
  REQUIRE(Join(m, "small-farm", g.group_id(), 5000, &member).ok());
  g = WaitForGroupEnd(m, g.group_id());
  CHECK(g.state() == GROUP_CANCELLED);
  CHECK(m.server().Count("orders") == 0);
  CHECK(m.EventTypes(g.group_id(), 3).back() == "ptd.trading.v1.GroupOfferCancelled");
  // The member still sees the group it was in; a stranger does not.
  Call member_call("small-farm"), stranger("stranger");
  GetGroupOfferRequest r;
  r.set_group_id(g.group_id());
  CHECK(m.orders().GetGroupOffer(&member_call.context, r, &g).ok());
  CHECK(m.orders().GetGroupOffer(&stranger.context, r, &g).error_code() == grpc::StatusCode::NOT_FOUND);
}

TEST_CASE("group buying: buyers joining while the deadline passes are either in, with an order, or refused") {
  Market m;
  GroupOffer g = Open(m, GroupRequest("g1", 1.5));
  std::mutex mu;
  std::vector<std::string> in, refused;
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0;; ++i) {
        std::string tenant = "buyer-" + std::to_string(t) + "-" + std::to_string(i);
        GroupMembership member;
        grpc::Status s = Join(m, tenant, g.group_id(), 100, &member);
        std::lock_guard<std::mutex> lock(mu);
        if (s.ok()) {
          in.push_back(tenant);
        } else {
          REQUIRE(s.error_code() == grpc::StatusCode::FAILED_PRECONDITION);
          refused.push_back(tenant);
          return;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  g = WaitForGroupEnd(m, g.group_id());
  CHECK(refused.size() == 8);
  CHECK(g.member_count() == static_cast<int>(in.size()));
  CHECK(g.joined().milli() == 100 * static_cast<int64_t>(in.size()));
  int64_t orders = m.server().Count("orders");
  if (g.state() == GROUP_CLOSED) CHECK(orders == static_cast<int64_t>(in.size()));
  else CHECK(orders == 0);
  pqxx::connection conn(m.server().db_url());
  pqxx::work tx(conn);
  for (const std::string& tenant : refused) {
    CHECK(tx.exec_params("SELECT 1 FROM trading.group_members WHERE buyer_tenant_id = $1", tenant).empty());
  }
}
