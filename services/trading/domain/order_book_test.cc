#include "services/trading/domain/order_book.h"

#include <algorithm>
#include <random>

#include <catch2/catch.hpp>

using namespace ptd::trading::book;

namespace {

OrderRequest Limit(uint64_t id, Side side, int64_t price, int64_t qty) {
  return {id, side, OrderType::kLimit, price, qty};
}
OrderRequest Market(uint64_t id, Side side, int64_t qty) { return {id, side, OrderType::kMarket, 0, qty}; }

// The simplest possible book: a list scanned for the best price, then the earliest arrival.
class ReferenceBook {
 public:
  AddResult Add(const OrderRequest& o, std::vector<Fill>& fills) {
    int64_t remaining = o.quantity_milli;
    while (remaining > 0) {
      auto best = resting_.end();
      for (auto it = resting_.begin(); it != resting_.end(); ++it) {
        if (it->side == o.side) continue;
        if (o.type == OrderType::kLimit &&
            (o.side == Side::kBuy ? it->price > o.price_minor : it->price < o.price_minor)) {
          continue;
        }
        if (best == resting_.end() ||
            (o.side == Side::kBuy ? it->price < best->price : it->price > best->price) ||
            (it->price == best->price && it->seq < best->seq)) {
          best = it;
        }
      }
      if (best == resting_.end()) break;
      int64_t traded = std::min(remaining, best->remaining);
      remaining -= traded;
      best->remaining -= traded;
      fills.push_back({o.order_id, best->id, best->price, traded, best->remaining == 0});
      if (best->remaining == 0) resting_.erase(best);
    }
    AddResult r{o.quantity_milli - remaining, 0, 0};
    if (remaining > 0) {
      if (o.type == OrderType::kMarket) {
        r.cancelled_milli = remaining;
      } else {
        resting_.push_back({o.order_id, o.side, o.price_minor, remaining, seq_++});
        r.resting_milli = remaining;
      }
    }
    return r;
  }
  std::optional<int64_t> Cancel(uint64_t id) {
    auto it = std::find_if(resting_.begin(), resting_.end(), [&](const R& r) { return r.id == id; });
    if (it == resting_.end()) return std::nullopt;
    int64_t q = it->remaining;
    resting_.erase(it);
    return q;
  }
  std::vector<Level> Depth(Side side, int levels) const {
    std::map<int64_t, Level> by_price;
    for (const R& r : resting_) {
      if (r.side != side) continue;
      Level& l = by_price.try_emplace(r.price, Level{r.price, 0, 0}).first->second;
      l.quantity_milli += r.remaining;
      ++l.order_count;
    }
    std::vector<Level> out;
    for (auto& [p, l] : by_price) out.push_back(l);
    if (side == Side::kBuy) std::reverse(out.begin(), out.end());
    if (static_cast<int>(out.size()) > levels) out.resize(levels);
    return out;
  }

 private:
  struct R {
    uint64_t id;
    Side side;
    int64_t price;
    int64_t remaining;
    uint64_t seq;
  };
  std::vector<R> resting_;
  uint64_t seq_ = 0;
};

}  // namespace

TEST_CASE("order book: a crossing limit order trades at the resting price") {
  OrderBook book;
  std::vector<Fill> fills;
  book.Add(Limit(1, Side::kSell, 100, 5000), fills);
  AddResult r = book.Add(Limit(2, Side::kBuy, 105, 5000), fills);
  REQUIRE(fills == std::vector<Fill>{{2, 1, 100, 5000, true}});
  CHECK(r.filled_milli == 5000);
  CHECK(r.resting_milli == 0);
  CHECK_FALSE(book.BestBid());
  CHECK_FALSE(book.BestAsk());
}

TEST_CASE("order book: partial fills leave the rest resting, on either side") {
  OrderBook book;
  std::vector<Fill> fills;
  book.Add(Limit(1, Side::kSell, 100, 3000), fills);
  AddResult r = book.Add(Limit(2, Side::kBuy, 100, 5000), fills);
  CHECK(fills == std::vector<Fill>{{2, 1, 100, 3000, true}});
  CHECK(r.resting_milli == 2000);
  CHECK(*book.BestBid() == Level{100, 2000, 1});
  fills.clear();
  book.Add(Limit(3, Side::kSell, 99, 500), fills);
  CHECK(fills == std::vector<Fill>{{3, 2, 100, 500, false}});
  CHECK(*book.Resting(2) == 1500);
}

TEST_CASE("order book: same price fills in arrival order, better prices first") {
  OrderBook book;
  std::vector<Fill> fills;
  book.Add(Limit(1, Side::kSell, 101, 1000), fills);
  book.Add(Limit(2, Side::kSell, 100, 1000), fills);
  book.Add(Limit(3, Side::kSell, 100, 1000), fills);
  book.Add(Limit(4, Side::kBuy, 101, 2500), fills);
  CHECK(fills == std::vector<Fill>{{4, 2, 100, 1000, true}, {4, 3, 100, 1000, true}, {4, 1, 101, 500, false}});
}

TEST_CASE("order book: a limit order does not trade through its price") {
  OrderBook book;
  std::vector<Fill> fills;
  book.Add(Limit(1, Side::kSell, 101, 1000), fills);
  AddResult r = book.Add(Limit(2, Side::kBuy, 100, 1000), fills);
  CHECK(fills.empty());
  CHECK(r.resting_milli == 1000);
  CHECK(*book.BestBid() == Level{100, 1000, 1});
  CHECK(*book.BestAsk() == Level{101, 1000, 1});
}

TEST_CASE("order book: a market order against an empty book is cancelled, never rests") {
  OrderBook book;
  std::vector<Fill> fills;
  AddResult r = book.Add(Market(1, Side::kBuy, 1000), fills);
  CHECK(fills.empty());
  CHECK(r.cancelled_milli == 1000);
  CHECK(book.order_count() == 0);
}

TEST_CASE("order book: a market order sweeps levels and cancels what the book cannot fill") {
  OrderBook book;
  std::vector<Fill> fills;
  book.Add(Limit(1, Side::kBuy, 100, 1000), fills);
  book.Add(Limit(2, Side::kBuy, 90, 1000), fills);
  AddResult r = book.Add(Market(3, Side::kSell, 2500), fills);
  CHECK(fills == std::vector<Fill>{{3, 1, 100, 1000, true}, {3, 2, 90, 1000, true}});
  CHECK(r.filled_milli == 2000);
  CHECK(r.cancelled_milli == 500);
}

TEST_CASE("order book: cancel removes a resting order, and cancelling a filled or unknown order finds nothing") {
  OrderBook book;
  std::vector<Fill> fills;
  book.Add(Limit(1, Side::kSell, 100, 1000), fills);
  book.Add(Limit(2, Side::kSell, 100, 2000), fills);
  CHECK(*book.Cancel(1) == 1000);
  CHECK(*book.BestAsk() == Level{100, 2000, 1});
  book.Add(Limit(3, Side::kBuy, 100, 2000), fills);  // fills order 2 completely
  CHECK_FALSE(book.Cancel(2));
  CHECK_FALSE(book.Cancel(1));
  CHECK_FALSE(book.Cancel(42));
  CHECK(book.order_count() == 0);
}

TEST_CASE("order book: depth aggregates levels from the best price outwards") {
  OrderBook book;
  std::vector<Fill> fills;
  book.Add(Limit(1, Side::kBuy, 100, 1000), fills);
  book.Add(Limit(2, Side::kBuy, 100, 500), fills);
  book.Add(Limit(3, Side::kBuy, 98, 700), fills);
  book.Add(Limit(4, Side::kBuy, 99, 300), fills);
  CHECK(book.Depth(Side::kBuy, 2) == std::vector<Level>{{100, 1500, 2}, {99, 300, 1}});
  CHECK(book.Depth(Side::kSell, 5).empty());
}

TEST_CASE("order book: 100,000 random operations agree with a reference model") {
  std::mt19937_64 rng(GENERATE(1u, 2u, 3u));
  OrderBook book;
  ReferenceBook reference;
  std::vector<uint64_t> ids;
  uint64_t next_id = 1;
  for (int op = 0; op < 100000; ++op) {
    int kind = static_cast<int>(rng() % 100);
    if (kind < 25 && !ids.empty()) {
      uint64_t id = ids[rng() % ids.size()];
      REQUIRE(book.Cancel(id) == reference.Cancel(id));
    } else {
      Side side = rng() % 2 ? Side::kBuy : Side::kSell;
      OrderRequest o = kind < 30 ? Market(next_id, side, 1 + rng() % 5000)
                                 : Limit(next_id, side, 95 + static_cast<int64_t>(rng() % 11), 1 + rng() % 5000);
      ids.push_back(next_id++);
      std::vector<Fill> got, want;
      AddResult a = book.Add(o, got);
      AddResult b = reference.Add(o, want);
      REQUIRE(got == want);
      REQUIRE(a.filled_milli == b.filled_milli);
      REQUIRE(a.resting_milli == b.resting_milli);
      REQUIRE(a.cancelled_milli == b.cancelled_milli);
    }
    if (op % 97 == 0) {
      REQUIRE(book.Depth(Side::kBuy, 20) == reference.Depth(Side::kBuy, 20));
      REQUIRE(book.Depth(Side::kSell, 20) == reference.Depth(Side::kSell, 20));
    }
  }
}
