// ptd-load: the platform's load generator. A weighted mix of real operations (mix.txt next to the binary,
// --mix to override), across --tenants enterprises, over gRPC to each service or over HTTP through the
// gateway, closed loop or at a fixed rate; per-operation throughput and latency percentiles as text and JSON;
// every acknowledged operation's ids in a JSON-lines file for a later audit. See tools/load/README.md.
//
// The record file (--record=FILE) has one JSON object a line, written as each answer arrives:
//   {"op": NAME, "ack": true|false, "tenant": TENANT_ID, "time_us": UNIX_MICROSECONDS, ...ids}
// "ack": true  the service answered OK: what it names must exist, exactly once.
// "ack": false the outcome is unknown (timeout, UNAVAILABLE, connection lost, 5xx): the idempotency key is
//              given, so an audit may find it or not, but never twice.
// The ids, by operation ("tenant" is the caller):
//   buy_now           key, order_id, listing_id, seller (tenant = the buyer)
//   spot_order        key, order_id, commodity_id, status (SPOT_ORDER_STATUS_…), trades (count)
//   spot_cancel       order_id (cancelled: its status is SPOT_ORDER_STATUS_CANCELLED)
//   rfq               rfq_key, quote_key, accept_key, rfq_id, quote_id, order_id, seller (tenant = the buyer)
//   telemetry_ingest  batch_id, device_id, point, first_time_us, step_us, count, accepted, duplicates, rejected
//                     (the samples at first_time_us + i * step_us, i < count, are stored for that point)
// listing_read writes nothing (a read acknowledges nothing).
#include <google/protobuf/util/json_util.h>
#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <deque>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "libs/core/config.h"
#include "ptd/telemetry/v1/telemetry.grpc.pb.h"
#include "ptd/trading/v1/orders.grpc.pb.h"
#include "ptd/trading/v1/spot.grpc.pb.h"
#include "ptd/trading/v1/trading.grpc.pb.h"
#include "tools/load/histogram.h"
#include "tools/load/http_connection.h"
#include "tools/load/mix.h"

namespace {

namespace http = boost::beast::http;
namespace tv1 = ptd::trading::v1;
namespace mv1 = ptd::telemetry::v1;
using Clock = std::chrono::steady_clock;
using ptd::load::Histogram;
using ptd::load::HttpAnswer;
using ptd::load::HttpConnection;

// The operations, in the order of the report.
const std::vector<std::string> kOperations = {"buy_now",      "spot_order", "spot_cancel",
                                              "listing_read", "rfq",        "telemetry_ingest"};
enum Op { kBuyNow, kSpotOrder, kSpotCancel, kListingRead, kRfq, kTelemetryIngest };

constexpr int64_t kSpotMid = 100000;  // 1,000.00 CNY per unit
constexpr int64_t kSpotTick = 100;
constexpr int64_t kAvailableLots = 10'000'000'000;  // more than any run buys
constexpr char kPassword[] = "ptd-load password, not secret";

int64_t UnixMicros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// How much one lot of a unit is, in thousandths (as bench/buy_now_load.cc).
int64_t LotMilli(const std::string& unit) {
  if (unit == "kg") return 25'000;
  if (unit == "m2") return 10'000;
  return 1'000;
}

const char* GrpcCodeName(grpc::StatusCode code) {
  static constexpr const char* kNames[] = {
      "OK",        "CANCELLED",      "UNKNOWN",           "INVALID_ARGUMENT",   "DEADLINE_EXCEEDED",
      "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
      "ABORTED",   "OUT_OF_RANGE",   "UNIMPLEMENTED",     "INTERNAL",           "UNAVAILABLE",
      "DATA_LOSS", "UNAUTHENTICATED"};
  const int i = static_cast<int>(code);
  return i >= 0 && i < static_cast<int>(std::size(kNames)) ? kNames[i] : "?";
}

// What one call (or one step of an operation) came to.
struct Outcome {
  bool ok = false;
  bool uncertain = false;  // the request may or may not have taken effect
  std::string code;        // "OK", a gRPC code ("FAILED_PRECONDITION"), or "HTTP 409 ALREADY_EXISTS"
  std::string message;

  static Outcome Ok() { return {true, false, "OK", ""}; }
};

Outcome FromGrpc(const grpc::Status& s) {
  if (s.ok()) return Outcome::Ok();
  const grpc::StatusCode c = s.error_code();
  const bool uncertain = c == grpc::StatusCode::UNAVAILABLE || c == grpc::StatusCode::DEADLINE_EXCEEDED ||
                         c == grpc::StatusCode::UNKNOWN || c == grpc::StatusCode::INTERNAL ||
                         c == grpc::StatusCode::CANCELLED;
  return {false, uncertain, GrpcCodeName(c), s.error_message()};
}

Outcome FromHttp(const HttpAnswer& a) {
  if (a.status == 200) return Outcome::Ok();
  if (a.status == 0) return {false, true, "HTTP no answer", "connection failed or timed out"};
  nlohmann::json body = nlohmann::json::parse(a.body, nullptr, false);
  std::string status = body.is_object() && body.contains("status") && body["status"].is_string()
                           ? body["status"].get<std::string>()
                           : "";
  std::string message = body.is_object() && body.contains("message") && body["message"].is_string()
                            ? body["message"].get<std::string>()
                            : a.body.substr(0, 200);
  return {false, a.status >= 500, "HTTP " + std::to_string(a.status) + (status.empty() ? "" : " " + status), message};
}

struct Listing {
  std::string listing_id;
  std::string unit;
};

struct Tenant {
  std::string id;       // x-ptd-tenant: the gateway's enterprise id, or a made-up id without a gateway
  std::string subject;  // x-ptd-subject: the admin user's id
  std::string email;
  std::string access_token;  // JWT; empty without a gateway
  std::vector<Listing> listings;
  std::string device_id;  // telemetry
};

struct Commodity {
  std::string commodity_id;
  std::string unit;
};

// JSON lines, one per answered write (format at the top of this file).
class Recorder {
 public:
  bool Open(const std::string& path) {
    out_.open(path, std::ios::out | std::ios::app);
    enabled_ = out_.is_open();
    return enabled_;
  }
  void Write(nlohmann::json line) {
    if (!enabled_) return;
    line["time_us"] = UnixMicros();
    std::string text = line.dump();
    std::lock_guard lock(mu_);
    out_ << text << '\n';
    out_.flush();  // an audit may read the file while the run goes on, or after the generator was killed
  }

 private:
  std::mutex mu_;
  std::ofstream out_;
  bool enabled_ = false;
};

// Everything the workers share; read-only once the run starts (but the recorder).
struct Platform {
  bool via_http = false;
  std::string gateway_host;
  int gateway_port = 0;
  std::string internal_token;
  std::string run_id;  // in every idempotency key of the run
  int telemetry_samples = 60;
  std::vector<Tenant> tenants;
  std::vector<Commodity> commodities;  // the catalogue
  std::vector<Commodity> spot_books;   // its standardised commodities, the first --spot-books
  std::vector<std::shared_ptr<grpc::Channel>> trading_channels;
  std::vector<std::shared_ptr<grpc::Channel>> telemetry_channels;
  Recorder recorder;
};

void Prepare(grpc::ClientContext& context, const Platform& p, const Tenant& t) {
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  context.AddMetadata("x-ptd-internal-token", p.internal_token);
  context.AddMetadata("x-ptd-tenant", t.id);
  context.AddMetadata("x-ptd-subject", t.subject);
  context.AddMetadata("x-ptd-roles", "admin,seller,buyer,factory");
}

std::string ToJson(const google::protobuf::Message& m) {
  std::string out;
  (void)google::protobuf::util::MessageToJsonString(m, &out);
  return out;
}

bool FromJson(const std::string& text, google::protobuf::Message* m) {
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = true;
  return google::protobuf::util::JsonStringToMessage(text, m, options).ok();
}

// Per operation, what a worker measured (after the warm-up).
struct OpStats {
  Histogram latency_us;  // of the operations answered OK
  int64_t ok = 0;
  std::map<std::string, int64_t> refused;  // expected refusals (FAILED_PRECONDITION of the spot book)
  std::map<std::string, int64_t> errors;
  std::string first_error;
};

// One client: its random stream, its HTTP connection, its stubs, its resting spot orders.
class Worker {
 public:
  Worker(Platform& p, int id, uint64_t seed) : p_(p), id_(id), rng_(seed * 7919 + id), stats_(kOperations.size()) {
    auto trading = p.trading_channels[id % p.trading_channels.size()];
    trading_ = tv1::TradingService::NewStub(trading);
    orders_ = tv1::OrderService::NewStub(trading);
    spot_ = tv1::SpotMarketService::NewStub(trading);
    if (!p.telemetry_channels.empty()) {
      telemetry_ = mv1::TelemetryService::NewStub(p.telemetry_channels[id % p.telemetry_channels.size()]);
    }
    if (p.gateway_port > 0) {
      http_ = std::make_unique<HttpConnection>(p.gateway_host, p.gateway_port, std::chrono::seconds(10));
    }
  }

  double Uniform() { return std::uniform_real_distribution<double>(0, 1)(rng_); }
  std::vector<OpStats>& stats() { return stats_; }

  // Runs one operation that was due at `intended`; counts it when `measured`.
  void Execute(int op, Clock::time_point intended, bool measured) {
    Outcome o = Run(op);
    if (!measured) return;
    OpStats& s = stats_[op];
    if (o.ok) {
      ++s.ok;
      s.latency_us.Record(std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - intended).count());
      return;
    }
    const bool refusal = (op == kSpotOrder || op == kSpotCancel) && o.code.ends_with("FAILED_PRECONDITION");
    if (refusal) {
      ++s.refused[o.code];
    } else if (s.errors[o.code]++ == 0 && s.first_error.empty()) {
      s.first_error = o.code + ": " + o.message;
    }
  }

 private:
  Outcome Run(int op) {
    switch (op) {
      case kBuyNow:
        return BuyNow();
      case kSpotOrder:
        return SpotOrder(/*resting_only=*/false);
      case kSpotCancel:
        return SpotCancel();
      case kListingRead:
        return ListingRead();
      case kRfq:
        return Rfq();
      case kTelemetryIngest:
        return TelemetryIngest();
    }
    return {false, false, "UNIMPLEMENTED", "unknown operation"};
  }

  std::string NextKey(const char* what) {
    return "load-" + p_.run_id + "-" + std::to_string(id_) + "-" + what + "-" + std::to_string(n_++);
  }
  size_t Random(size_t n) { return static_cast<size_t>(rng_() % n); }
  const Tenant& RandomTenant() { return p_.tenants[Random(p_.tenants.size())]; }
  // Another tenant than `index`'s (the platform refuses buying from oneself and quoting on one's own RFQ).
  size_t OtherTenant(size_t index) { return (index + 1 + Random(p_.tenants.size() - 1)) % p_.tenants.size(); }

  // One RPC over gRPC (`grpc_call`) or over HTTP through the gateway (`verb` `target`, the request as its
  // body unless `no_body`), as `tenant`.
  template <typename Request, typename Response>
  Outcome Call(const Tenant& tenant, const std::function<grpc::Status(grpc::ClientContext*)>& grpc_call,
               http::verb verb, const std::string& target, const Request& body, Response* response, bool via_http) {
    if (!via_http) {
      grpc::ClientContext context;
      Prepare(context, p_, tenant);
      return FromGrpc(grpc_call(&context));
    }
    HttpAnswer a = http_->Send(verb, target, verb == http::verb::get ? "" : ToJson(body), tenant.access_token);
    Outcome o = FromHttp(a);
    if (o.ok && !FromJson(a.body, response)) return {false, true, "HTTP bad body", a.body.substr(0, 200)};
    return o;
  }

  Outcome BuyNow() {
    const size_t buyer_index = Random(p_.tenants.size());
    const Tenant& buyer = p_.tenants[buyer_index];
    const Tenant& seller = p_.tenants[OtherTenant(buyer_index)];
    const Listing& listing = seller.listings[Random(seller.listings.size())];
    tv1::PlaceOrderRequest r;
    r.set_idempotency_key(NextKey("order"));
    r.set_listing_id(listing.listing_id);
    r.mutable_quantity()->set_milli((1 + static_cast<int64_t>(Random(10))) * LotMilli(listing.unit));
    r.mutable_quantity()->set_unit(listing.unit);
    tv1::Order order;
    Outcome o = Call(
        buyer, [&](grpc::ClientContext* c) { return orders_->PlaceOrder(c, r, &order); }, http::verb::post,
        "/v1/orders", r, &order, p_.via_http);
    if (o.ok || o.uncertain) {
      nlohmann::json line = {{"op", "buy_now"},
                             {"ack", o.ok},
                             {"tenant", buyer.id},
                             {"key", r.idempotency_key()},
                             {"listing_id", listing.listing_id},
                             {"seller", seller.id}};
      if (o.ok) line["order_id"] = order.order_id();
      p_.recorder.Write(std::move(line));
    }
    return o;
  }

  // A limit order: half rest 1-5 ticks away from the mid price, half cross 5 ticks through it (as
  // bench/spot_orders_load.cc); `resting_only` places one that rests (unless the book crossed meanwhile).
  Outcome SpotOrder(bool resting_only, std::string* resting_id = nullptr, const Tenant** owner = nullptr) {
    const Tenant& tenant = RandomTenant();
    const Commodity& book = p_.spot_books[Random(p_.spot_books.size())];
    tv1::PlaceSpotOrderRequest r;
    r.set_idempotency_key(NextKey("spot"));
    r.set_commodity_id(book.commodity_id);
    const bool buy = Random(2) == 0;
    const bool cross = !resting_only && Random(2) == 0;
    r.set_side(buy ? tv1::SPOT_SIDE_BUY : tv1::SPOT_SIDE_SELL);
    r.set_type(tv1::SPOT_ORDER_TYPE_LIMIT);
    const int64_t away = cross ? -5 : 1 + static_cast<int64_t>(Random(5));
    r.mutable_limit_price()->set_currency("CNY");
    r.mutable_limit_price()->set_amount_minor(buy ? kSpotMid - away * kSpotTick : kSpotMid + away * kSpotTick);
    r.mutable_quantity()->set_milli((1 + static_cast<int64_t>(Random(5))) * LotMilli(book.unit));
    r.mutable_quantity()->set_unit(book.unit);
    tv1::PlaceSpotOrderResponse response;
    Outcome o = Call(
        tenant, [&](grpc::ClientContext* c) { return spot_->PlaceSpotOrder(c, r, &response); }, http::verb::post,
        "/v1/spot/orders", r, &response, p_.via_http);
    if (o.ok || o.uncertain) {
      nlohmann::json line = {{"op", "spot_order"},
                             {"ack", o.ok},
                             {"tenant", tenant.id},
                             {"key", r.idempotency_key()},
                             {"commodity_id", book.commodity_id}};
      if (o.ok) {
        line["order_id"] = response.order().order_id();
        line["status"] = tv1::SpotOrderStatus_Name(response.order().status());
        line["trades"] = response.trades_size();
      }
      p_.recorder.Write(std::move(line));
    }
    if (o.ok && response.order().status() == tv1::SPOT_ORDER_STATUS_OPEN) {
      if (resting_id != nullptr) {
        *resting_id = response.order().order_id();
        *owner = &tenant;
      } else if (resting_.size() < 10'000) {
        resting_.emplace_back(response.order().order_id(), &tenant);
      }
    }
    return o;
  }

  // Cancels the latest of this client's orders that rested when placed (it may have filled since: then the
  // refusal, FAILED_PRECONDITION, is counted as such); with none, places a resting one first (in the latency).
  Outcome SpotCancel() {
    std::string order_id;
    const Tenant* owner = nullptr;
    if (!resting_.empty()) {
      std::tie(order_id, owner) = resting_.back();
      resting_.pop_back();
    } else {
      Outcome placed = SpotOrder(/*resting_only=*/true, &order_id, &owner);
      if (!placed.ok) return placed;
      if (order_id.empty()) return {false, false, "FAILED_PRECONDITION", "the resting order filled at once"};
    }
    tv1::CancelSpotOrderRequest r;
    r.set_order_id(order_id);
    tv1::SpotOrder cancelled;
    Outcome o = Call(
        *owner, [&](grpc::ClientContext* c) { return spot_->CancelSpotOrder(c, r, &cancelled); }, http::verb::post,
        "/v1/spot/orders/" + order_id + ":cancel", tv1::CancelSpotOrderRequest(), &cancelled, p_.via_http);
    if (o.ok || o.uncertain) {
      p_.recorder.Write({{"op", "spot_cancel"}, {"ack", o.ok}, {"tenant", owner->id}, {"order_id", order_id}});
    }
    return o;
  }

  // Always over HTTP through the gateway: a page of the tenant's own listings.
  Outcome ListingRead() {
    const Tenant& tenant = RandomTenant();
    tv1::ListListingsRequest none;
    tv1::ListListingsResponse response;
    return Call(tenant, nullptr, http::verb::get, "/v1/listings?pageSize=20", none, &response, /*via_http=*/true);
  }

  // RFQ -> quote -> accept: a buyer asks, another tenant quotes, the buyer accepts (an order).
  Outcome Rfq() {
    const size_t buyer_index = Random(p_.tenants.size());
    const Tenant& buyer = p_.tenants[buyer_index];
    const Tenant& seller = p_.tenants[OtherTenant(buyer_index)];
    const Commodity& commodity = p_.commodities[Random(p_.commodities.size())];
    tv1::CreateRfqRequest create;
    create.set_idempotency_key(NextKey("rfq"));
    create.set_commodity_id(commodity.commodity_id);
    create.set_spec("as the catalogue describes it");
    create.mutable_quantity()->set_milli(10 * LotMilli(commodity.unit));
    create.mutable_quantity()->set_unit(commodity.unit);
    create.set_delivery_place("Shanghai, Yangshan port");
    create.mutable_closes_at()->set_seconds(UnixMicros() / 1'000'000 + 3600);
    tv1::SubmitQuoteRequest quote;
    quote.set_idempotency_key(NextKey("quote"));
    tv1::AcceptQuoteRequest accept;
    accept.set_idempotency_key(NextKey("accept"));
    nlohmann::json line = {{"op", "rfq"},
                           {"tenant", buyer.id},
                           {"seller", seller.id},
                           {"rfq_key", create.idempotency_key()},
                           {"quote_key", quote.idempotency_key()},
                           {"accept_key", accept.idempotency_key()}};
    auto finish = [&](Outcome o, const char* step) {
      if (o.ok || o.uncertain) {
        line["ack"] = o.ok;
        p_.recorder.Write(line);
      }
      if (!o.ok) o.message = std::string(step) + ": " + o.message;
      return o;
    };

    tv1::Rfq rfq;
    Outcome o = Call(
        buyer, [&](grpc::ClientContext* c) { return orders_->CreateRfq(c, create, &rfq); }, http::verb::post,
        "/v1/rfqs", create, &rfq, p_.via_http);
    if (!o.ok) return finish(o, "CreateRfq");
    line["rfq_id"] = rfq.rfq_id();

    quote.set_rfq_id(rfq.rfq_id());
    quote.mutable_unit_price()->set_currency("CNY");
    quote.mutable_unit_price()->set_amount_minor(200'000 + static_cast<int64_t>(Random(1000)) * 100);
    *quote.mutable_quantity() = create.quantity();
    tv1::SubmitQuoteRequest quote_body = quote;
    quote_body.clear_rfq_id();  // in the path
    tv1::Quote submitted;
    o = Call(
        seller, [&](grpc::ClientContext* c) { return orders_->SubmitQuote(c, quote, &submitted); }, http::verb::post,
        "/v1/rfqs/" + rfq.rfq_id() + "/quotes", quote_body, &submitted, p_.via_http);
    if (!o.ok) return finish(o, "SubmitQuote");
    line["quote_id"] = submitted.quote_id();

    accept.set_rfq_id(rfq.rfq_id());
    accept.set_quote_id(submitted.quote_id());
    tv1::AcceptQuoteRequest accept_body;
    accept_body.set_idempotency_key(accept.idempotency_key());
    tv1::Order order;
    o = Call(
        buyer, [&](grpc::ClientContext* c) { return orders_->AcceptQuote(c, accept, &order); }, http::verb::post,
        "/v1/rfqs/" + rfq.rfq_id() + "/quotes/" + submitted.quote_id() + ":accept", accept_body, &order, p_.via_http);
    if (o.ok) line["order_id"] = order.order_id();
    return finish(o, "AcceptQuote");
  }

  // A batch of --telemetry-samples samples of the tenant's one sensor, one a second, ending now; the phase in
  // microseconds of "now" keeps batches of the same tenant from repeating each other's times.
  Outcome TelemetryIngest() {
    const Tenant& tenant = RandomTenant();
    mv1::IngestRequest r;
    r.set_batch_id(NextKey("batch"));
    mv1::SeriesSamples* series = r.add_series();
    series->set_device_id(tenant.device_id);
    series->set_point("temperature");
    constexpr int64_t kStepUs = 1'000'000;
    const int64_t first = UnixMicros() - (p_.telemetry_samples - 1) * kStepUs;
    for (int i = 0; i < p_.telemetry_samples; ++i) {
      series->add_time_unix_us(first + i * kStepUs);
      series->add_values(80 + 5 * Uniform());
    }
    mv1::IngestResponse response;
    Outcome o = Call(
        tenant, [&](grpc::ClientContext* c) { return telemetry_->Ingest(c, r, &response); }, http::verb::post,
        "/v1/telemetry/samples:ingest", r, &response, p_.via_http);
    if (o.ok || o.uncertain) {
      nlohmann::json line = {{"op", "telemetry_ingest"},      {"ack", o.ok},
                             {"tenant", tenant.id},           {"batch_id", r.batch_id()},
                             {"device_id", tenant.device_id}, {"point", "temperature"},
                             {"first_time_us", first},        {"step_us", kStepUs},
                             {"count", p_.telemetry_samples}};
      if (o.ok) {
        line["accepted"] = response.accepted();
        line["duplicates"] = response.duplicates();
        line["rejected"] = response.rejected_size();
      }
      p_.recorder.Write(std::move(line));
    }
    return o;
  }

  Platform& p_;
  int id_;
  std::mt19937_64 rng_;
  int64_t n_ = 0;
  std::vector<OpStats> stats_;
  std::unique_ptr<tv1::TradingService::Stub> trading_;
  std::unique_ptr<tv1::OrderService::Stub> orders_;
  std::unique_ptr<tv1::SpotMarketService::Stub> spot_;
  std::unique_ptr<mv1::TelemetryService::Stub> telemetry_;
  std::unique_ptr<HttpConnection> http_;
  std::deque<std::pair<std::string, const Tenant*>> resting_;
};

// ---- set-up -------------------------------------------------------------------------------------------------

// Runs `fn(i)` for i in [0, n) from `threads` threads; the first error stops the others and is returned.
std::string ForEachParallel(int n, int threads, const std::function<std::string(int)>& fn) {
  std::atomic<int> next{0};
  std::mutex mu;
  std::string error;
  std::vector<std::thread> pool;
  for (int t = 0; t < std::max(1, threads); ++t) {
    pool.emplace_back([&] {
      for (int i = next++; i < n; i = next++) {
        {
          std::lock_guard lock(mu);
          if (!error.empty()) return;
        }
        std::string e = fn(i);
        if (!e.empty()) {
          std::lock_guard lock(mu);
          if (error.empty()) error = e;
          return;
        }
      }
    });
  }
  for (auto& t : pool) t.join();
  return error;
}

// A gateway call of the set-up, waiting out rate limits (429) a bounded number of times.
HttpAnswer SetupHttp(HttpConnection& c, http::verb verb, const std::string& target, const std::string& body,
                     const std::string& bearer) {
  HttpAnswer a;
  for (int attempt = 0; attempt < 30; ++attempt) {
    a = c.Send(verb, target, body, bearer);
    if (a.status != 429 && a.status != 0 && a.status != 503) return a;
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  return a;
}

// The tenant's enterprise, user and access token through the gateway: logs in, registering the enterprise
// first when its email is unknown (so a second run on the same platform finds its tenants again).
std::string SetUpGatewayTenant(const Platform& p, const std::string& prefix, int i, Tenant& t) {
  HttpConnection c(p.gateway_host, p.gateway_port, std::chrono::seconds(30));
  t.email = prefix + "-" + std::to_string(i) + "@load.example";
  const std::string login = nlohmann::json{{"email", t.email}, {"password", kPassword}}.dump();
  HttpAnswer a = SetupHttp(c, http::verb::post, "/v1/auth/login", login, "");
  if (a.status == 401) {
    nlohmann::json registration = {
        {"enterpriseName", "Load tenant " + std::to_string(i)},
        {"enterpriseRoles", {"ENTERPRISE_ROLE_SELLER", "ENTERPRISE_ROLE_BUYER", "ENTERPRISE_ROLE_FACTORY"}},
        {"email", t.email},
        {"password", kPassword},
        {"displayName", "ptd-load"}};
    HttpAnswer r = SetupHttp(c, http::verb::post, "/v1/auth/register", registration.dump(), "");
    if (r.status != 200 && r.status != 409)
      return "register " + t.email + ": HTTP " + std::to_string(r.status) + " " + r.body;
    a = SetupHttp(c, http::verb::post, "/v1/auth/login", login, "");
  }
  if (a.status != 200) return "login " + t.email + ": HTTP " + std::to_string(a.status) + " " + a.body;
  nlohmann::json tokens = nlohmann::json::parse(a.body, nullptr, false);
  if (!tokens.is_object() || !tokens.contains("accessToken")) return "login " + t.email + ": no accessToken";
  t.access_token = tokens["accessToken"];
  HttpAnswer who = SetupHttp(c, http::verb::get, "/v1/auth/whoami", "", t.access_token);
  nlohmann::json me = nlohmann::json::parse(who.body, nullptr, false);
  if (who.status != 200 || !me.is_object() || !me.contains("tenantId")) {
    return "whoami " + t.email + ": HTTP " + std::to_string(who.status) + " " + who.body;
  }
  t.id = me["tenantId"];
  t.subject = me.value("subject", "ptd-load");
  return "";
}

std::string Failed(const std::string& what, const grpc::Status& s) {
  return what + ": " + GrpcCodeName(s.error_code()) + " " + s.error_message();
}

std::string LoadCatalogue(Platform& p, int spot_books) {
  auto stub = tv1::TradingService::NewStub(p.trading_channels[0]);
  grpc::ClientContext c;
  Prepare(c, p, p.tenants[0]);
  tv1::ListCommoditiesRequest r;
  r.set_page_size(500);
  tv1::ListCommoditiesResponse response;
  if (grpc::Status s = stub->ListCommodities(&c, r, &response); !s.ok()) return Failed("ListCommodities", s);
  for (const auto& commodity : response.commodities()) {
    p.commodities.push_back({commodity.commodity_id(), commodity.unit()});
    if (commodity.standardised()) p.spot_books.push_back({commodity.commodity_id(), commodity.unit()});
  }
  auto by_id = [](const Commodity& a, const Commodity& b) { return a.commodity_id < b.commodity_id; };
  std::sort(p.commodities.begin(), p.commodities.end(), by_id);
  std::sort(p.spot_books.begin(), p.spot_books.end(), by_id);
  if (static_cast<int>(p.spot_books.size()) > spot_books) p.spot_books.resize(spot_books);
  if (p.commodities.empty()) return "the catalogue is empty";
  return "";
}

// The tenant's listings; their idempotency keys depend only on their number and commodity, so a second run
// gets the same listings back.
std::string SetUpListings(const Platform& p, int i, int per_tenant, Tenant& t) {
  auto stub = tv1::TradingService::NewStub(p.trading_channels[i % p.trading_channels.size()]);
  for (int j = 0; j < per_tenant; ++j) {
    const Commodity& commodity = p.commodities[(static_cast<size_t>(i) * per_tenant + j) % p.commodities.size()];
    const int64_t lot = LotMilli(commodity.unit);
    tv1::CreateListingRequest r;
    r.set_idempotency_key("ptd-load-listing-" + std::to_string(j) + "-" + commodity.commodity_id);
    r.set_commodity_id(commodity.commodity_id);
    auto* title = r.add_title();
    title->set_lang("en");
    title->set_text("Load tenant " + std::to_string(i) + " lot " + std::to_string(j));
    r.mutable_unit_price()->set_currency("CNY");
    r.mutable_unit_price()->set_amount_minor(200'000 + (static_cast<int64_t>(i * per_tenant + j) * 7919 % 800) * 1'000);
    r.mutable_available()->set_milli(kAvailableLots * lot);
    r.mutable_available()->set_unit(commodity.unit);
    r.mutable_min_order()->set_milli(lot);
    r.mutable_min_order()->set_unit(commodity.unit);
    grpc::ClientContext c;
    Prepare(c, p, t);
    tv1::Listing listing;
    if (grpc::Status s = stub->CreateListing(&c, r, &listing); !s.ok()) return Failed("CreateListing of " + t.id, s);
    t.listings.push_back({listing.listing_id(), commodity.unit});
  }
  return "";
}

// The tenant's plant, line, device and its sensor "temperature", each with a fixed idempotency key.
std::string SetUpTelemetry(const Platform& p, int i, Tenant& t) {
  auto stub = mv1::TelemetryService::NewStub(p.telemetry_channels[i % p.telemetry_channels.size()]);
  auto call = [&](auto method, const auto& request, auto* response, const char* what) -> std::string {
    grpc::ClientContext c;
    Prepare(c, p, t);
    grpc::Status s = ((*stub).*method)(&c, request, response);
    return s.ok() ? "" : Failed(std::string(what) + " of " + t.id, s);
  };
  mv1::CreatePlantRequest plant_request;
  plant_request.set_idempotency_key("ptd-load-plant");
  plant_request.mutable_plant()->set_code("LOAD");
  plant_request.mutable_plant()->set_name("Load test plant");
  plant_request.mutable_plant()->set_utc_offset_minutes(480);
  mv1::Plant plant;
  if (auto e = call(&mv1::TelemetryService::Stub::CreatePlant, plant_request, &plant, "CreatePlant"); !e.empty())
    return e;
  mv1::CreateLineRequest line_request;
  line_request.set_idempotency_key("ptd-load-line");
  line_request.set_plant_id(plant.plant_id());
  line_request.mutable_line()->set_code("L1");
  line_request.mutable_line()->set_name("Load line 1");
  mv1::Line line;
  if (auto e = call(&mv1::TelemetryService::Stub::CreateLine, line_request, &line, "CreateLine"); !e.empty()) return e;
  mv1::CreateDeviceRequest device_request;
  device_request.set_idempotency_key("ptd-load-device");
  device_request.set_line_id(line.line_id());
  device_request.mutable_device()->set_code("load-1");
  device_request.mutable_device()->set_name("Load device 1");
  mv1::Device device;
  if (auto e = call(&mv1::TelemetryService::Stub::CreateDevice, device_request, &device, "CreateDevice"); !e.empty()) {
    return e;
  }
  mv1::CreateDataPointRequest point_request;
  point_request.set_idempotency_key("ptd-load-point");
  point_request.set_device_id(device.device_id());
  point_request.mutable_point()->set_code("temperature");
  point_request.mutable_point()->set_kind(mv1::POINT_KIND_SENSOR);
  point_request.mutable_point()->set_unit("°C");
  point_request.mutable_point()->set_expected_interval_ms(1000);
  mv1::DataPoint point;
  if (auto e = call(&mv1::TelemetryService::Stub::CreateDataPoint, point_request, &point, "CreateDataPoint");
      !e.empty()) {
    return e;
  }
  t.device_id = device.device_id();
  return "";
}

// ---- report -------------------------------------------------------------------------------------------------

struct Summary {
  std::string name;
  OpStats stats;
};

double Ms(int64_t us) { return static_cast<double>(us) / 1000.0; }

int64_t Sum(const std::map<std::string, int64_t>& m) {
  int64_t n = 0;
  for (const auto& [_, c] : m) n += c;
  return n;
}

nlohmann::json ToJson(const OpStats& s, double seconds) {
  const Histogram& h = s.latency_us;
  return {{"ok", s.ok},
          {"ok_per_s", static_cast<double>(s.ok) / seconds},
          {"latency_ms",
           {{"p50", Ms(h.ValueAtQuantile(0.50))},
            {"p90", Ms(h.ValueAtQuantile(0.90))},
            {"p99", Ms(h.ValueAtQuantile(0.99))},
            {"p99.9", Ms(h.ValueAtQuantile(0.999))},
            {"max", Ms(h.max())},
            {"mean", h.mean() / 1000.0}}},
          {"refused", s.refused},
          {"errors", s.errors}};
}

void PrintRow(const std::string& name, const OpStats& s, double seconds) {
  const Histogram& h = s.latency_us;
  std::printf("%-17s %9.1f %9lld %8lld %7lld %8.2f %8.2f %8.2f %9.2f %8.2f\n", name.c_str(),
              static_cast<double>(s.ok) / seconds, static_cast<long long>(s.ok), static_cast<long long>(Sum(s.refused)),
              static_cast<long long>(Sum(s.errors)), Ms(h.ValueAtQuantile(0.50)), Ms(h.ValueAtQuantile(0.90)),
              Ms(h.ValueAtQuantile(0.99)), Ms(h.ValueAtQuantile(0.999)), Ms(h.max()));
}

std::string ReadFile(const std::string& path, bool* ok) {
  std::ifstream in(path);
  *ok = in.is_open();
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string NextToBinary(const char* argv0, const std::string& file) {
  char self[4096];
  const ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
  std::string path = n > 0 ? std::string(self, static_cast<size_t>(n)) : std::string(argv0);
  return path.substr(0, path.rfind('/') + 1) + file;
}

}  // namespace

int main(int argc, char** argv) {
  ptd::Config config(
      "ptd-load", "The platform's load generator: a weighted mix of real operations across many tenants.",
      {{"trading", "127.0.0.1:50051", "trading's gRPC host:port"},
       {"telemetry", "127.0.0.1:50056", "telemetry's gRPC host:port (empty: no telemetry_ingest)"},
       {"gateway", "127.0.0.1:8080",
        "the gateway's HTTP host:port; tenants are its enterprises (empty: made-up tenant ids, no HTTP)"},
       {"internal-token", "", "the platform's internal credential (required)"},
       {"via", "grpc", "grpc: writes straight to each service; http: through the gateway (listing_read always is)"},
       {"mix-file", "", "the weights, `name weight` a line; empty: mix.txt next to the binary"},
       {"mix", "", "name=weight,... replacing the file's weights"},
       {"tenants", "100", "enterprises the load is spread over (at least 2 for buy_now and rfq)"},
       {"tenant-prefix", "ptd-load", "their emails are PREFIX-N@load.example (a second run finds them again)"},
       {"listings-per-tenant", "2", "buy-now listings of each tenant"},
       {"spot-books", "4", "standardised commodities whose books spot orders go to"},
       {"telemetry-samples", "60", "samples per telemetry batch, one a second"},
       {"clients", "16", "clients, each with one operation in flight (the most in flight with --rate)"},
       {"rate", "0", "operations/s in total, started on a fixed schedule (open loop); 0: closed loop"},
       {"duration", "20s", "how long to measure"},
       {"warmup", "2s", "run before measuring (not counted)"},
       {"max-ops", "0", "stop after this many operations in all (warm-up included); 0: no limit"},
       {"seed", "1", "of the random choices"},
       {"grpc-channels", "2", "gRPC connections to each service, shared by the clients"},
       {"setup-threads", "4", "parallel calls while setting up"},
       {"record", "", "JSON-lines file of every answered write's ids (appended to)"},
       {"json", "", "also write the report as JSON to this file"}});
  config.ParseOrExit(argc, argv);

  Platform p;
  p.internal_token = config.Get("internal-token");
  const std::string via = config.Get("via");
  const int tenants = static_cast<int>(config.IntOrExit("tenants"));
  const int clients = static_cast<int>(config.IntOrExit("clients"));
  const double rate = std::stod(config.Get("rate"));
  const double seconds = absl::ToDoubleSeconds(config.DurationOrExit("duration"));
  const double warmup = absl::ToDoubleSeconds(config.DurationOrExit("warmup"));
  const int64_t max_ops = config.IntOrExit("max-ops");
  const uint64_t seed = static_cast<uint64_t>(config.IntOrExit("seed"));
  const int listings_per_tenant = static_cast<int>(config.IntOrExit("listings-per-tenant"));
  const int setup_threads = static_cast<int>(config.IntOrExit("setup-threads"));
  p.telemetry_samples = static_cast<int>(config.IntOrExit("telemetry-samples"));
  auto usage = [](const std::string& why) {
    std::fprintf(stderr, "ptd-load: %s\n", why.c_str());
    return 2;
  };
  if (p.internal_token.empty()) return usage("--internal-token is required");
  if (via != "grpc" && via != "http") return usage("--via must be grpc or http, got '" + via + "'");
  p.via_http = via == "http";
  if (tenants < 1 || tenants > 100'000) return usage("--tenants must be 1 to 100000");
  if (clients < 1 || clients > 4096) return usage("--clients must be 1 to 4096");
  if (rate < 0) return usage("--rate must be >= 0");
  if (seconds <= 0 || seconds > 24 * 3600 || warmup < 0) return usage("--duration must be positive (at most 24h)");
  if (p.telemetry_samples < 1 || p.telemetry_samples > 10'000) return usage("--telemetry-samples must be 1 to 10000");
  if (listings_per_tenant < 1) return usage("--listings-per-tenant must be positive");

  const std::string mix_path =
      config.Get("mix-file").empty() ? NextToBinary(argv[0], "mix.txt") : config.Get("mix-file");
  bool read = false;
  const std::string mix_text = ReadFile(mix_path, &read);
  if (!read) return usage("cannot read the mix file " + mix_path);
  absl::StatusOr<ptd::load::Mix> mix = ptd::load::ParseMix(mix_text, kOperations);
  if (mix.ok()) mix = ptd::load::OverrideMix(*std::move(mix), config.Get("mix"));
  if (!mix.ok()) return usage(std::string(mix.status().message()));
  auto wants = [&](int op) { return mix->weights[op] > 0; };

  const std::string gateway = config.Get("gateway");
  if (!gateway.empty()) {
    p.gateway_host = gateway.substr(0, gateway.rfind(':'));
    p.gateway_port = std::atoi(gateway.substr(gateway.rfind(':') + 1).c_str());
  }
  if (p.gateway_port <= 0 && (p.via_http || wants(kListingRead))) {
    return usage("--via=http and listing_read go through the gateway: give --gateway");
  }
  if (tenants < 2 && (wants(kBuyNow) || wants(kRfq))) return usage("buy_now and rfq need --tenants >= 2");
  if (config.Get("telemetry").empty() && wants(kTelemetryIngest)) return usage("telemetry_ingest needs --telemetry");
  if (!config.Get("record").empty() && !p.recorder.Open(config.Get("record"))) {
    return usage("cannot open --record file " + config.Get("record"));
  }
  const int channels = std::clamp(static_cast<int>(config.IntOrExit("grpc-channels")), 1, 64);
  for (int c = 0; c < channels; ++c) {
    grpc::ChannelArguments args;
    args.SetInt("ptd.load.channel", c);  // a distinct argument: a connection of its own
    p.trading_channels.push_back(
        grpc::CreateCustomChannel(config.Get("trading"), grpc::InsecureChannelCredentials(), args));
    if (!config.Get("telemetry").empty()) {
      p.telemetry_channels.push_back(
          grpc::CreateCustomChannel(config.Get("telemetry"), grpc::InsecureChannelCredentials(), args));
    }
  }
  p.run_id = std::to_string(seed) + "-" + std::to_string(UnixMicros());

  // Set-up, through the services' own APIs, idempotently.
  const Clock::time_point setup_start = Clock::now();
  p.tenants.resize(tenants);
  std::string error;
  if (p.gateway_port > 0) {
    error = ForEachParallel(tenants, setup_threads,
                            [&](int i) { return SetUpGatewayTenant(p, config.Get("tenant-prefix"), i, p.tenants[i]); });
  } else {
    for (int i = 0; i < tenants; ++i) {
      p.tenants[i].id = config.Get("tenant-prefix") + "-tenant-" + std::to_string(i);
      p.tenants[i].subject = "ptd-load";
    }
  }
  if (error.empty()) error = LoadCatalogue(p, static_cast<int>(config.IntOrExit("spot-books")));
  if (error.empty() && p.spot_books.empty() && (wants(kSpotOrder) || wants(kSpotCancel))) {
    error = "the catalogue has no standardised commodity for spot orders";
  }
  if (error.empty() && (wants(kBuyNow) || wants(kListingRead))) {
    error = ForEachParallel(tenants, setup_threads,
                            [&](int i) { return SetUpListings(p, i, listings_per_tenant, p.tenants[i]); });
  }
  if (error.empty() && wants(kTelemetryIngest)) {
    error = ForEachParallel(tenants, setup_threads, [&](int i) { return SetUpTelemetry(p, i, p.tenants[i]); });
  }
  if (!error.empty()) {
    std::fprintf(stderr, "ptd-load: set-up failed: %s\n", error.c_str());
    return 1;
  }
  std::fprintf(stderr, "ptd-load: set up %d tenants (%s), %zu commodities, %zu spot books in %.1f s\n", tenants,
               p.gateway_port > 0 ? "gateway enterprises" : "made-up ids", p.commodities.size(), p.spot_books.size(),
               std::chrono::duration<double>(Clock::now() - setup_start).count());

  // The run: closed loop (each client starts its next operation when the last one answered), or open loop
  // (operation k is due at start + k / rate, whoever is free takes it; its latency counts from when it was
  // due, so a stall shows in the percentiles instead of hiding in fewer requests: no coordinated omission).
  std::vector<std::unique_ptr<Worker>> workers;
  for (int w = 0; w < clients; ++w) workers.push_back(std::make_unique<Worker>(p, w, seed));
  const auto to_duration = [](double s) {
    return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
  };
  const Clock::time_point start = Clock::now();
  const Clock::time_point measure_from = start + to_duration(warmup);
  const Clock::time_point stop = measure_from + to_duration(seconds);
  std::atomic<int64_t> next{0};
  std::atomic<int64_t> started{0};
  std::vector<std::thread> threads;
  for (auto& worker : workers) {
    threads.emplace_back([&, w = worker.get()] {
      while (true) {
        const int64_t k = next++;
        if (max_ops > 0 && k >= max_ops) return;
        Clock::time_point due = Clock::now();
        if (rate > 0) {
          due = start + to_duration(static_cast<double>(k) / rate);
          if (due >= stop) return;
          std::this_thread::sleep_until(due);
        }
        if (Clock::now() >= stop) return;  // a late schedule is cut off at the end (see "missed")
        ++started;
        w->Execute(static_cast<int>(mix->Pick(w->Uniform())), due, due >= measure_from);
      }
    });
  }
  for (auto& t : threads) t.join();
  const double run_seconds = std::chrono::duration<double>(Clock::now() - start).count();
  int64_t scheduled = rate > 0 ? static_cast<int64_t>(std::ceil((warmup + seconds) * rate)) : started.load();
  if (max_ops > 0) scheduled = std::min(scheduled, max_ops);
  const int64_t missed = std::max<int64_t>(0, scheduled - started.load());

  // Report.
  std::vector<Summary> summaries;
  OpStats overall;
  for (size_t op = 0; op < kOperations.size(); ++op) {
    Summary s{kOperations[op], {}};
    for (auto& w : workers) {
      OpStats& part = w->stats()[op];
      s.stats.latency_us.Merge(part.latency_us);
      s.stats.ok += part.ok;
      for (const auto& [code, n] : part.refused) s.stats.refused[code] += n;
      for (const auto& [code, n] : part.errors) s.stats.errors[code] += n;
      if (s.stats.first_error.empty()) s.stats.first_error = part.first_error;
    }
    overall.latency_us.Merge(s.stats.latency_us);
    overall.ok += s.stats.ok;
    for (const auto& [code, n] : s.stats.refused) overall.refused[kOperations[op] + " " + code] += n;
    for (const auto& [code, n] : s.stats.errors) overall.errors[kOperations[op] + " " + code] += n;
    summaries.push_back(std::move(s));
  }
  const double measured_seconds = std::min(seconds, std::max(1e-3, run_seconds - warmup));
  std::printf(
      "ptd-load: %s, %d clients, %d tenants, via %s, %.0f s measured after %.0f s warm-up\n",
      rate > 0 ? ("open loop at " + std::to_string(static_cast<int64_t>(rate)) + " ops/s").c_str() : "closed loop",
      clients, tenants, via.c_str(), measured_seconds, warmup);
  std::printf("%-17s %9s %9s %8s %7s %8s %8s %8s %9s %8s\n", "operation", "ok/s", "ok", "refused", "errors", "p50 ms",
              "p90 ms", "p99 ms", "p99.9 ms", "max ms");
  for (const Summary& s : summaries) {
    if (mix->weights[&s - summaries.data()] > 0) PrintRow(s.name, s.stats, measured_seconds);
  }
  PrintRow("all", overall, measured_seconds);
  if (rate > 0) {
    std::printf("schedule: %lld operations due, %lld started, %lld missed (not started by the end)\n",
                static_cast<long long>(scheduled), static_cast<long long>(started.load()),
                static_cast<long long>(missed));
  }
  for (const auto& [code, n] : overall.refused)
    std::printf("refused: %s %lld\n", code.c_str(), static_cast<long long>(n));
  for (const auto& [code, n] : overall.errors)
    std::printf("errors: %s %lld\n", code.c_str(), static_cast<long long>(n));
  for (const Summary& s : summaries) {
    if (!s.stats.first_error.empty())
      std::fprintf(stderr, "first %s error: %s\n", s.name.c_str(), s.stats.first_error.c_str());
  }

  if (!config.Get("json").empty()) {
    nlohmann::json report = {{"settings",
                              {{"mode", rate > 0 ? "open" : "closed"},
                               {"rate", rate},
                               {"clients", clients},
                               {"tenants", tenants},
                               {"via", via},
                               {"duration_s", seconds},
                               {"warmup_s", warmup},
                               {"measured_s", measured_seconds},
                               {"mix", nlohmann::json::object()}}},
                             {"operations", nlohmann::json::object()},
                             {"overall", ToJson(overall, measured_seconds)}};
    for (size_t op = 0; op < kOperations.size(); ++op) {
      report["settings"]["mix"][kOperations[op]] = mix->weights[op];
      if (mix->weights[op] > 0) report["operations"][kOperations[op]] = ToJson(summaries[op].stats, measured_seconds);
    }
    if (rate > 0) report["schedule"] = {{"due", scheduled}, {"started", started.load()}, {"missed", missed}};
    std::ofstream out(config.Get("json"));
    out << report.dump(2) << "\n";
    if (!out) {
      std::fprintf(stderr, "ptd-load: cannot write %s\n", config.Get("json").c_str());
      return 1;
    }
  }
  return Sum(overall.errors) > 0 ? 1 : 0;
}
