// spot_orders_load: order placement end to end over gRPC against a running ptd-trading — each order one
// PostgreSQL transaction (order, fills, trades, outbox events) committed before the answer.
//
//   build/bench/spot_orders_load --target=127.0.0.1:50051 --token=T [--clients=16] [--seconds=15]
//                                [--warmup=2] [--commodities=4] [--seed=1] [--threads=2] [--cancel-percent=0]
//
// Each client has its own channel (its own HTTP/2 connection) and places one order at a time, as fast as
// answers come. Like pgbench -j, the clients are driven by a few threads (--threads, default 2) with
// asynchronous calls, so that the load generator takes little of the CPU it shares with the service. The
// mix, per order: a commodity among the first --commodities standardised ones, a tenant among 100,000 (so
// that self-trade refusals stay rare even after many resting orders), buy or sell; half are limit orders that
// rest (1-5 ticks away from the mid price), half limit orders that cross (5 ticks through the mid price), each
// 1-5 t. With --cancel-percent=P, P % of the requests instead cancel the client's latest order that was still
// resting when placed (it may have been filled since: then the cancel is refused, and counted as such).
// Prints one line: requests/s (placements and cancels answered OK, after the warm-up) as orders_per_s, latency
// percentiles, trades per order, cancels, refusals.
// bench/spot_orders.sh runs it next to pgbench; see docs/benchmarks.md.
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "closed_loop.h"
#include "ptd/trading/v1/spot.grpc.pb.h"

using namespace ptd::trading::v1;

namespace {

constexpr const char* kBooks[] = {"01900000-0000-7000-8000-000000000001", "01900000-0000-7000-8000-000000000002",
                                  "01900000-0000-7000-8000-000000000003", "01900000-0000-7000-8000-00000000000a",
                                  "01900000-0000-7000-8000-00000000000b", "01900000-0000-7000-8000-00000000000d",
                                  "01900000-0000-7000-8000-00000000000f", "01900000-0000-7000-8000-000000000010"};
constexpr int64_t kMid = 100000;  // 1,000.00 CNY per t
constexpr int64_t kTick = 100;

struct ClientResult {
  std::vector<int64_t> latencies_us;  // measured orders only
  int64_t orders = 0;
  int64_t trades = 0;
  int64_t cancels = 0;  // of `orders`
  int64_t refused = 0;  // self-trade refusals and cancels of orders no longer open (FAILED_PRECONDITION)
  int64_t errors = 0;
  std::string first_error;
};

using ptd::bench::Clock;
using ptd::bench::Flag;

// One client: its connection, its random stream, and the call it has in flight.
struct Client {
  int id = 0;
  uint64_t seed = 0;
  std::string token;
  int commodities = 1;
  int cancel_percent = 0;
  std::unique_ptr<SpotMarketService::Stub> stub;
  std::vector<std::pair<std::string, std::string>> resting;  // (order id, tenant) of its orders placed resting
  std::mt19937_64 rng;
  int64_t n = 0;
  ClientResult result;
  std::string tenant_;  // of the order in flight

  Clock::time_point started;
  std::unique_ptr<grpc::ClientContext> context;
  PlaceSpotOrderResponse response;
  SpotOrder cancelled;
  grpc::Status status;
  bool cancelling = false;
  std::unique_ptr<grpc::ClientAsyncResponseReader<PlaceSpotOrderResponse>> reader;
  std::unique_ptr<grpc::ClientAsyncResponseReader<SpotOrder>> cancel_reader;

  // Sends the next request; its completion arrives on `cq` with this client as the tag.
  void Send(grpc::CompletionQueue* cq) {
    cancelling = !resting.empty() && static_cast<int>(rng() % 100) < cancel_percent;
    if (cancelling) {
      auto [order_id, tenant] = std::move(resting.back());
      resting.pop_back();
      CancelSpotOrderRequest request;
      request.set_order_id(order_id);
      NewCall(tenant);
      cancelled.Clear();
      cancel_reader = stub->PrepareAsyncCancelSpotOrder(context.get(), request, cq);
      cancel_reader->StartCall();
      cancel_reader->Finish(&cancelled, &status, this);
      return;
    }
    PlaceSpotOrderRequest request;
    request.set_idempotency_key("bench-" + std::to_string(seed) + "-" + std::to_string(id) + "-" + std::to_string(n++));
    request.set_commodity_id(kBooks[rng() % commodities]);
    const bool buy = rng() % 2 == 0;
    const bool cross = rng() % 2 == 0;
    request.set_side(buy ? SPOT_SIDE_BUY : SPOT_SIDE_SELL);
    request.set_type(SPOT_ORDER_TYPE_LIMIT);
    const int64_t away = cross ? -5 : 1 + static_cast<int64_t>(rng() % 5);  // ticks from the mid, outwards
    request.mutable_limit_price()->set_currency("CNY");
    request.mutable_limit_price()->set_amount_minor(buy ? kMid - away * kTick : kMid + away * kTick);
    request.mutable_quantity()->set_milli(1000 * (1 + static_cast<int64_t>(rng() % 5)));
    request.mutable_quantity()->set_unit("t");

    tenant_ = "bench-tenant-" + std::to_string(rng() % 100000);
    NewCall(tenant_);
    response.Clear();
    reader = stub->PrepareAsyncPlaceSpotOrder(context.get(), request, cq);
    reader->StartCall();
    reader->Finish(&response, &status, this);
  }

  // A fresh context for the next call, as `tenant`, and its start time.
  void NewCall(const std::string& tenant) {
    context = std::make_unique<grpc::ClientContext>();
    context->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    context->AddMetadata("x-ptd-internal-token", token);
    context->AddMetadata("x-ptd-tenant", tenant);
    context->AddMetadata("x-ptd-subject", "spot_orders_load");
    started = Clock::now();
  }

  void Record(Clock::time_point measure_from) {
    if (status.ok() && !cancelling && response.order().status() == SPOT_ORDER_STATUS_OPEN) {
      resting.emplace_back(response.order().order_id(), tenant_);
    }
    if (started < measure_from) return;
    if (status.ok()) {
      ++result.orders;
      if (cancelling) ++result.cancels;
      if (!cancelling) result.trades += response.trades_size();
      result.latencies_us.push_back(
          std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - started).count());
    } else if (status.error_code() == grpc::StatusCode::FAILED_PRECONDITION) {
      ++result.refused;
    } else if (result.errors++ == 0) {
      result.first_error = std::to_string(status.error_code()) + " " + status.error_message();
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
  const int commodities = std::clamp(std::atoi(Flag(argc, argv, "commodities", "4").c_str()), 1, 8);
  const uint64_t seed = std::strtoull(Flag(argc, argv, "seed", "1").c_str(), nullptr, 10);
  const int threads = std::clamp(std::atoi(Flag(argc, argv, "threads", "2").c_str()), 1, std::max(clients, 1));
  const int cancel_percent = std::clamp(std::atoi(Flag(argc, argv, "cancel-percent", "0").c_str()), 0, 90);
  if (token.empty() || clients <= 0 || seconds <= 0) {
    std::fprintf(stderr,
                 "usage: spot_orders_load --target=HOST:PORT --token=T [--clients=16] [--seconds=15] "
                 "[--warmup=2] [--commodities=4] [--seed=1] [--threads=2] [--cancel-percent=0]\n");
    return 2;
  }

  const ptd::bench::RunClock run = ptd::bench::RunClock::Starting(warmup, seconds);
  std::vector<std::unique_ptr<Client>> all;
  for (int c = 0; c < clients; ++c) {
    auto client = std::make_unique<Client>();
    client->id = c;
    client->seed = seed;
    client->token = token;
    client->commodities = commodities;
    client->cancel_percent = cancel_percent;
    client->rng.seed(seed * 1000 + c);
    client->result.latencies_us.reserve(1 << 16);
    grpc::ChannelArguments args;
    args.SetInt("ptd.bench.client", c);  // a distinct argument: a channel of its own, not a shared one
    client->stub =
        SpotMarketService::NewStub(grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args));
    all.push_back(std::move(client));
  }
  ptd::bench::DriveClosedLoop(all, threads, run);
  std::vector<ClientResult> results;
  for (auto& client : all) results.push_back(std::move(client->result));

  ClientResult total;
  for (ClientResult& r : results) {
    total.orders += r.orders;
    total.trades += r.trades;
    total.cancels += r.cancels;
    total.refused += r.refused;
    total.errors += r.errors;
    if (total.first_error.empty()) total.first_error = r.first_error;
    total.latencies_us.insert(total.latencies_us.end(), r.latencies_us.begin(), r.latencies_us.end());
  }
  std::sort(total.latencies_us.begin(), total.latencies_us.end());
  auto pct = [&](double p) { return ptd::bench::PercentileMs(total.latencies_us, p); };
  const int64_t placed = total.orders - total.cancels;
  std::printf(
      "orders_per_s=%.0f p50_ms=%.2f p99_ms=%.2f trades_per_order=%.2f orders=%lld cancels=%lld refused=%lld "
      "errors=%lld\n",
      total.orders / seconds, pct(0.50), pct(0.99), placed > 0 ? static_cast<double>(total.trades) / placed : 0.0,
      static_cast<long long>(total.orders), static_cast<long long>(total.cancels),
      static_cast<long long>(total.refused), static_cast<long long>(total.errors));
  if (total.errors > 0) std::fprintf(stderr, "first error: %s\n", total.first_error.c_str());
  return total.errors > 0 ? 1 : 0;
}
