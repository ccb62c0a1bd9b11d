// buy_now_load: buy-now order placement end to end over gRPC against a running ptd-trading — each order one
// PostgreSQL transaction (the listing's quantity taken, the order, its audit row, its OrderPlaced outbox event)
// committed before the answer.
//
//   build/bench/buy_now_load --target=127.0.0.1:50051 --token=T [--clients=16] [--seconds=15] [--warmup=2]
//                            [--listings=1000] [--sellers=100] [--buyers=100000] [--hot-listings=0] [--seed=1]
//                            [--threads=2]
//
// First sets up the market through the real RPCs (ListCommodities, CreateListing): --listings listings of
// --sellers sellers, spread over every commodity of the catalogue, each with its own price and two volume
// tiers, and far more quantity than a run can buy. The listings' idempotency keys depend only on their
// number, so a second run on the same database finds the same listings again. Then --clients clients, each
// with its own channel (its own HTTP/2 connection) and one order in flight, buy as fast as answers come: a
// random listing (or one of the first --hot-listings only, to measure contention on a few rows), a random
// buyer tenant among --buyers, a quantity in a random one of the listing's tiers, a fresh idempotency key.
// Like pgbench -j, the clients are driven by a few threads (--threads) with asynchronous calls, so that the
// load generator takes little of the CPU it shares with the service. Prints one line: orders/s (after the
// warm-up), latency percentiles, orders, errors by code. bench/buy_now.sh runs it next to pgbench; see
// docs/benchmarks.md.
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "closed_loop.h"
#include "ptd/trading/v1/orders.grpc.pb.h"
#include "ptd/trading/v1/trading.grpc.pb.h"

using namespace ptd::trading::v1;

namespace {

// Quantity tiers of every listing, in lots: the base price from 1 lot, a lower one from kTier1Lots and
// another from kTier2Lots; an order is at most kMaxLots.
constexpr int64_t kTier1Lots = 10;
constexpr int64_t kTier2Lots = 50;
constexpr int64_t kMaxLots = 100;
// Enough for any run: at 10,000 orders/s of kMaxLots for an hour, 3.6e9 lots.
constexpr int64_t kAvailableLots = 10'000'000'000;

const char* CodeName(grpc::StatusCode code) {
  static constexpr const char* kNames[] = {
      "OK",        "CANCELLED",      "UNKNOWN",           "INVALID_ARGUMENT",   "DEADLINE_EXCEEDED",
      "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
      "ABORTED",   "OUT_OF_RANGE",   "UNIMPLEMENTED",     "INTERNAL",           "UNAVAILABLE",
      "DATA_LOSS", "UNAUTHENTICATED"};
  const int i = static_cast<int>(code);
  return i >= 0 && i < static_cast<int>(std::size(kNames)) ? kNames[i] : "?";
}

// How much one lot of a unit is, in thousandths: a 25 kg bag, 10 m² of glass, one t, one roll, ...
int64_t LotMilli(const std::string& unit) {
  if (unit == "kg") return 25'000;
  if (unit == "m2") return 10'000;
  return 1'000;
}

struct Offer {
  std::string listing_id;
  std::string unit;
  int64_t lot_milli = 1000;
};

void AddMetadata(grpc::ClientContext& context, const std::string& token, const std::string& tenant) {
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  context.AddMetadata("x-ptd-internal-token", token);
  context.AddMetadata("x-ptd-tenant", tenant);
  context.AddMetadata("x-ptd-subject", "buy_now_load");
}

CreateListingRequest ListingRequest(int i, int sellers, const Commodity& commodity) {
  const int64_t lot = LotMilli(commodity.unit());
  // Prices per unit between 2,000.00 and 9,990.00 CNY, tiers 3 % and 6 % below; different for each listing.
  const int64_t price = 200'000 + (static_cast<int64_t>(i) * 7919 % 800) * 1'000;
  CreateListingRequest r;
  r.set_idempotency_key("bench-listing-" + std::to_string(i));
  r.set_commodity_id(commodity.commodity_id());
  auto* title = r.add_title();
  title->set_lang("en");
  title->set_text((commodity.name_size() > 0 ? commodity.name(0).text() : commodity.code()) + ", seller " +
                  std::to_string(i % sellers) + " lot " + std::to_string(i));
  r.mutable_unit_price()->set_currency("CNY");
  r.mutable_unit_price()->set_amount_minor(price);
  r.mutable_available()->set_milli(kAvailableLots * lot);
  r.mutable_available()->set_unit(commodity.unit());
  r.mutable_min_order()->set_milli(lot);
  r.mutable_min_order()->set_unit(commodity.unit());
  const std::pair<int64_t, int64_t> tiers[] = {{kTier1Lots, price * 97 / 100}, {kTier2Lots, price * 94 / 100}};
  for (const auto& [lots, tier_price] : tiers) {
    auto* tier = r.add_price_tiers();
    tier->mutable_min_quantity()->set_milli(lots * lot);
    tier->mutable_min_quantity()->set_unit(commodity.unit());
    tier->mutable_unit_price()->set_currency("CNY");
    tier->mutable_unit_price()->set_amount_minor(tier_price);
  }
  r.mutable_delivery()->set_kind(i % 2 == 0 ? DeliveryTerms::EX_WORKS : DeliveryTerms::DELIVERED);
  r.mutable_delivery()->set_warehouse("Warehouse " + std::to_string(i % 40));
  r.mutable_delivery()->set_region("CN-" + std::to_string(11 + i % 50));
  r.mutable_payment()->set_kind(i % 3 == 0 ? PaymentTerms::NET_DAYS : PaymentTerms::PREPAID);
  if (i % 3 == 0) r.mutable_payment()->set_net_days(30);
  return r;
}

// Creates (or, on a database that has them, finds again) the listings, from `parallel` threads.
bool SetUpListings(const std::string& target, const std::string& token, int listings, int sellers, int parallel,
                   std::vector<Offer>& offers) {
  auto channel = grpc::CreateChannel(target, grpc::InsecureChannelCredentials());
  auto catalogue = TradingService::NewStub(channel);
  std::vector<Commodity> commodities;
  {
    grpc::ClientContext context;
    AddMetadata(context, token, "bench-seller-0");
    ListCommoditiesRequest request;
    request.set_page_size(500);
    ListCommoditiesResponse response;
    grpc::Status s = catalogue->ListCommodities(&context, request, &response);
    if (!s.ok() || response.commodities_size() == 0) {
      std::fprintf(stderr, "ListCommodities: %s\n", s.ok() ? "the catalogue is empty" : s.error_message().c_str());
      return false;
    }
    commodities.assign(response.commodities().begin(), response.commodities().end());
  }
  offers.assign(listings, Offer{});
  std::atomic<int> next{0};
  std::atomic<bool> failed{false};
  std::mutex mu;
  std::vector<std::thread> threads;
  for (int t = 0; t < parallel; ++t) {
    threads.emplace_back([&] {
      auto stub = TradingService::NewStub(channel);
      for (int i = next++; i < listings && !failed; i = next++) {
        const Commodity& commodity = commodities[i % commodities.size()];
        grpc::ClientContext context;
        AddMetadata(context, token, "bench-seller-" + std::to_string(i % sellers));
        Listing listing;
        grpc::Status s = stub->CreateListing(&context, ListingRequest(i, sellers, commodity), &listing);
        if (!s.ok()) {
          std::lock_guard lock(mu);
          if (!failed.exchange(true)) std::fprintf(stderr, "CreateListing %d: %s\n", i, s.error_message().c_str());
          return;
        }
        offers[i] = {listing.listing_id(), commodity.unit(), LotMilli(commodity.unit())};
      }
    });
  }
  for (auto& t : threads) t.join();
  return !failed;
}

struct ClientResult {
  std::vector<int64_t> latencies_us;  // measured orders only
  int64_t orders = 0;                 // measured
  int64_t acknowledged = 0;           // warm-up included
  std::map<grpc::StatusCode, int64_t> errors;
  std::string first_error;
};

using ptd::bench::Clock;
using ptd::bench::Flag;

// One client: its connection, its random stream, and the call it has in flight.
struct Client {
  int id = 0;
  std::string key_prefix;
  std::string token;
  const std::vector<Offer>* offers = nullptr;
  int choose_from = 1;  // the first `choose_from` offers
  int buyers = 1;
  std::unique_ptr<OrderService::Stub> stub;
  std::mt19937_64 rng;
  int64_t n = 0;
  ClientResult result;

  Clock::time_point started;
  std::unique_ptr<grpc::ClientContext> context;
  Order response;
  grpc::Status status;
  std::unique_ptr<grpc::ClientAsyncResponseReader<Order>> reader;

  // Sends the next order; its completion arrives on `cq` with this client as the tag.
  void Send(grpc::CompletionQueue* cq) {
    const Offer& offer = (*offers)[rng() % choose_from];
    // A tier at random, then a quantity inside it.
    int64_t lots = 0;
    switch (rng() % 3) {
      case 0:
        lots = 1 + static_cast<int64_t>(rng() % (kTier1Lots - 1));
        break;
      case 1:
        lots = kTier1Lots + static_cast<int64_t>(rng() % (kTier2Lots - kTier1Lots));
        break;
      default:
        lots = kTier2Lots + static_cast<int64_t>(rng() % (kMaxLots - kTier2Lots + 1));
        break;
    }
    PlaceOrderRequest request;
    request.set_idempotency_key(key_prefix + std::to_string(n++));
    request.set_listing_id(offer.listing_id);
    request.mutable_quantity()->set_milli(lots * offer.lot_milli);
    request.mutable_quantity()->set_unit(offer.unit);

    context = std::make_unique<grpc::ClientContext>();
    AddMetadata(*context, token, "bench-buyer-" + std::to_string(rng() % buyers));
    response.Clear();
    started = Clock::now();
    reader = stub->PrepareAsyncPlaceOrder(context.get(), request, cq);
    reader->StartCall();
    reader->Finish(&response, &status, this);
  }

  void Record(Clock::time_point measure_from) {
    if (status.ok()) ++result.acknowledged;
    if (started < measure_from) return;
    if (status.ok()) {
      ++result.orders;
      result.latencies_us.push_back(
          std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - started).count());
    } else if (result.errors[status.error_code()]++ == 0 && result.first_error.empty()) {
      result.first_error = std::string(CodeName(status.error_code())) + " " + status.error_message();
    }
  }
};

}  // namespace

int main(int argc, char** argv) {
  const std::string target = Flag(argc, argv, "target", "127.0.0.1:50051");
  const std::string token = Flag(argc, argv, "token", "");
  const int clients = std::atoi(Flag(argc, argv, "clients", "16").c_str());
  const double seconds = std::atof(Flag(argc, argv, "seconds", "15").c_str());
  const double warmup = std::atof(Flag(argc, argv, "warmup", "2").c_str());
  const int listings = std::atoi(Flag(argc, argv, "listings", "1000").c_str());
  const int sellers = std::max(1, std::atoi(Flag(argc, argv, "sellers", "100").c_str()));
  const int buyers = std::max(1, std::atoi(Flag(argc, argv, "buyers", "100000").c_str()));
  const int hot = std::atoi(Flag(argc, argv, "hot-listings", "0").c_str());
  const uint64_t seed = std::strtoull(Flag(argc, argv, "seed", "1").c_str(), nullptr, 10);
  const int threads = std::clamp(std::atoi(Flag(argc, argv, "threads", "2").c_str()), 1, std::max(clients, 1));
  if (token.empty() || clients <= 0 || seconds <= 0 || listings <= 0 || hot < 0 || hot > listings) {
    std::fprintf(stderr,
                 "usage: buy_now_load --target=HOST:PORT --token=T [--clients=16] [--seconds=15] [--warmup=2] "
                 "[--listings=1000] [--sellers=100] [--buyers=100000] [--hot-listings=0 (0 = all, at most "
                 "--listings)] [--seed=1] [--threads=2]\n");
    return 2;
  }

  std::vector<Offer> offers;
  const Clock::time_point setup_start = Clock::now();
  if (!SetUpListings(target, token, listings, sellers, clients, offers)) return 1;
  std::fprintf(stderr, "set up %d listings of %d sellers in %.1f s\n", listings, sellers,
               std::chrono::duration<double>(Clock::now() - setup_start).count());

  // Idempotency keys unique to this run, also when a seed is run again on the same database.
  const std::string run_id = std::to_string(seed) + "-" + std::to_string(std::random_device{}());
  const ptd::bench::RunClock run = ptd::bench::RunClock::Starting(warmup, seconds);
  std::vector<std::unique_ptr<Client>> all;
  for (int c = 0; c < clients; ++c) {
    auto client = std::make_unique<Client>();
    client->id = c;
    client->key_prefix = "bench-" + run_id + "-" + std::to_string(c) + "-";
    client->token = token;
    client->offers = &offers;
    client->choose_from = hot > 0 ? hot : listings;
    client->buyers = buyers;
    client->rng.seed(seed * 1000 + c);
    client->result.latencies_us.reserve(1 << 16);
    grpc::ChannelArguments args;
    args.SetInt("ptd.bench.client", c);  // a distinct argument: a channel of its own, not a shared one
    client->stub = OrderService::NewStub(grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args));
    all.push_back(std::move(client));
  }
  ptd::bench::DriveClosedLoop(all, threads, run);

  ClientResult total;
  for (auto& client : all) {
    ClientResult& r = client->result;
    total.orders += r.orders;
    total.acknowledged += r.acknowledged;
    for (const auto& [code, count] : r.errors) total.errors[code] += count;
    if (total.first_error.empty()) total.first_error = r.first_error;
    total.latencies_us.insert(total.latencies_us.end(), r.latencies_us.begin(), r.latencies_us.end());
  }
  std::sort(total.latencies_us.begin(), total.latencies_us.end());
  auto pct = [&](double p) { return ptd::bench::PercentileMs(total.latencies_us, p); };
  int64_t errors = 0;
  std::string by_code;
  for (const auto& [code, count] : total.errors) {
    errors += count;
    by_code += std::string(by_code.empty() ? " by_code=" : ",") + CodeName(code) + ":" + std::to_string(count);
  }
  std::printf(
      "orders_per_s=%.0f p50_ms=%.2f p99_ms=%.2f listings=%d hot_listings=%d orders=%lld errors=%lld%s "
      "acknowledged=%lld\n",
      total.orders / seconds, pct(0.50), pct(0.99), listings, hot, static_cast<long long>(total.orders),
      static_cast<long long>(errors), by_code.c_str(), static_cast<long long>(total.acknowledged));
  if (errors > 0) std::fprintf(stderr, "first error: %s\n", total.first_error.c_str());
  return errors > 0 ? 1 : 0;
}
