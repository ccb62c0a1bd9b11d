// order_book_bench: the spot matching core alone, one thread, over a realistic mix of operations.
//
//   build/bench/order_book_bench [--ops=N] [--runs=R] [--seed=S]
//
// The mix: limit orders near the touch (most rest, some cross), aggressive limit orders that cross several
// levels, market orders, and cancels (of resting or already filled orders). Cancels are 30% of operations
// until about 10,000 orders rest; past that the next operation is a cancel, which holds the book at a
// steady size. The program prints the mix it really ran. Reports operations per second (median and spread over
// runs) and per-operation latency percentiles (timed in batches of 64 to keep clock overhead out).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "services/trading/domain/order_book.h"

using namespace ptd::trading::book;

namespace {

struct Op {
  enum Kind { kAdd, kCancel } kind;
  OrderRequest order;
  uint64_t cancel_id;
};

std::vector<Op> MakeOps(size_t n, uint64_t seed, uint64_t first_id) {
  std::mt19937_64 rng(seed);
  std::vector<Op> ops;
  ops.reserve(n);
  std::vector<uint64_t> live;
  uint64_t id = first_id;
  const int64_t mid = 100000;
  for (size_t i = 0; i < n; ++i) {
    int r = static_cast<int>(rng() % 100);
    Side side = rng() & 1 ? Side::kBuy : Side::kSell;
    if ((r < 30 || live.size() > 10000) && !live.empty()) {
      size_t k = rng() % live.size();
      ops.push_back({Op::kCancel, {}, live[k]});
      live[k] = live.back();
      live.pop_back();
      continue;
    }
    OrderRequest o{id++, side, OrderType::kLimit, 0, static_cast<int64_t>(1000 + rng() % 20000)};
    if (r < 85) {
      // Passive: 1..50 ticks behind the touch, occasionally at it.
      int64_t offset = static_cast<int64_t>(rng() % 50);
      o.price_minor = side == Side::kBuy ? mid - 1 - offset : mid + 1 + offset;
      live.push_back(o.order_id);
    } else if (r < 95) {
      int64_t through = static_cast<int64_t>(rng() % 5);
      o.price_minor = side == Side::kBuy ? mid + through : mid - through;
      live.push_back(o.order_id);
    } else {
      o.type = OrderType::kMarket;
    }
    ops.push_back({Op::kAdd, o, 0});
  }
  return ops;
}

int64_t Flag(int argc, char** argv, const char* name, int64_t fallback) {
  std::string prefix = std::string("--") + name + "=";
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], prefix.c_str(), prefix.size()) == 0) return std::atoll(argv[i] + prefix.size());
  }
  return fallback;
}

}  // namespace

int main(int argc, char** argv) {
  const size_t n = static_cast<size_t>(Flag(argc, argv, "ops", 2000000));
  const int runs = static_cast<int>(Flag(argc, argv, "runs", 7));
  const uint64_t seed = static_cast<uint64_t>(Flag(argc, argv, "seed", 42));
  constexpr size_t kBatch = 64;

  std::vector<double> rates;
  std::vector<double> batch_ns;  // per-operation time of each batch, all runs
  for (int run = 0; run < runs; ++run) {
    OrderBook book;
    std::vector<Fill> fills;
    fills.reserve(1024);
    // Warm-up fill: resting orders on both sides, ids below the measured ones.
    for (const Op& op : MakeOps(20000, seed + 1000 + run, 1)) {
      if (op.kind == Op::kAdd && op.order.type == OrderType::kLimit) {
        OrderRequest o = op.order;
        o.price_minor = o.side == Side::kBuy ? std::min<int64_t>(o.price_minor, 99999)
                                             : std::max<int64_t>(o.price_minor, 100001);
        book.Add(o, fills);
      }
      fills.clear();
    }
    std::vector<Op> ops = MakeOps(n, seed + run, 1'000'000);
    size_t trades = 0, cancels = 0, markets = 0;
    for (const Op& op : ops) {
      cancels += op.kind == Op::kCancel;
      markets += op.kind == Op::kAdd && op.order.type == OrderType::kMarket;
    }
    if (run == 0) {
      std::printf("mix: %.1f%% cancels, %.1f%% market orders, %.1f%% limit orders\n", 100.0 * cancels / n,
                  100.0 * markets / n, 100.0 * (n - cancels - markets) / n);
    }
    auto start = std::chrono::steady_clock::now();
    auto batch_start = start;
    for (size_t i = 0; i < ops.size(); ++i) {
      const Op& op = ops[i];
      if (op.kind == Op::kAdd) {
        book.Add(op.order, fills);
        trades += fills.size();
        fills.clear();
      } else {
        book.Cancel(op.cancel_id);
      }
      if ((i + 1) % kBatch == 0) {
        auto now = std::chrono::steady_clock::now();
        batch_ns.push_back(std::chrono::duration<double, std::nano>(now - batch_start).count() / kBatch);
        batch_start = now;
      }
    }
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    rates.push_back(static_cast<double>(n) / seconds);
    std::printf("run %d: %.0f ops/s, %zu trades, %zu resting at end\n", run + 1, rates.back(), trades,
                book.order_count());
  }
  std::sort(rates.begin(), rates.end());
  std::sort(batch_ns.begin(), batch_ns.end());
  auto pct = [&](double p) { return batch_ns[static_cast<size_t>(p * (batch_ns.size() - 1))]; };
  std::printf("\nops/s over %d runs of %zu ops: median %.0f, min %.0f, max %.0f\n", runs, n, rates[rates.size() / 2],
              rates.front(), rates.back());
  std::printf("per-operation latency (batches of %zu): p50 %.0f ns, p99 %.0f ns, p99.9 %.0f ns\n", kBatch, pct(0.50),
              pct(0.99), pct(0.999));
  return 0;
}
