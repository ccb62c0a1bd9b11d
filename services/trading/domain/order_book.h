#ifndef PTD_SERVICES_TRADING_DOMAIN_ORDER_BOOK_H_
#define PTD_SERVICES_TRADING_DOMAIN_ORDER_BOOK_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <vector>

#include "absl/container/flat_hash_map.h"

// A continuous limit order book for one standardised commodity: price-time priority, limit and market orders,
// partial fills, cancels, best bid/offer and depth. Pure computation, no I/O, not thread-safe: one book is
// driven by one thread (the service serialises the orders of a commodity).
//
// Prices are integer minor units per unit of the commodity; quantities integer milli-units.
namespace ptd::trading::book {

enum class Side { kBuy, kSell };
enum class OrderType { kLimit, kMarket };

struct OrderRequest {
  uint64_t order_id = 0;  // unique per book, assigned by the caller
  Side side = Side::kBuy;
  OrderType type = OrderType::kLimit;
  int64_t price_minor = 0;  // limit price; ignored for market orders
  int64_t quantity_milli = 0;
};

struct Fill {
  uint64_t taker_order_id;
  uint64_t maker_order_id;
  int64_t price_minor;  // always the resting (maker) order's price
  int64_t quantity_milli;
  bool maker_done;  // the maker order is completely filled
  bool operator==(const Fill&) const = default;
};

struct AddResult {
  int64_t filled_milli = 0;
  int64_t resting_milli = 0;    // left on the book (limit orders only)
  int64_t cancelled_milli = 0;  // the unfilled rest of a market order
};

struct Level {
  int64_t price_minor;
  int64_t quantity_milli;
  int order_count;
  bool operator==(const Level&) const = default;
};

class OrderBook {
 public:
  OrderBook();
  ~OrderBook();
  OrderBook(const OrderBook&) = delete;
  OrderBook& operator=(const OrderBook&) = delete;

  // Matches the order against the opposite side, appending trades to `fills`, then rests what remains of a
  // limit order. The caller validates input: positive quantity, positive limit price, an unused order id.
  AddResult Add(const OrderRequest& order, std::vector<Fill>& fills);

  // Removes a resting order; returns the quantity cancelled, or nullopt when the order is not resting
  // (never added, fully filled or already cancelled).
  std::optional<int64_t> Cancel(uint64_t order_id);

  // The remaining quantity of a resting order.
  std::optional<int64_t> Resting(uint64_t order_id) const;

  std::optional<Level> BestBid() const;
  std::optional<Level> BestAsk() const;
  // Up to `levels` price levels from the best price outwards.
  std::vector<Level> Depth(Side side, int levels) const;
  size_t order_count() const { return orders_.size(); }

 private:
  struct Order;
  struct PriceLevel {
    Order* head = nullptr;
    Order* tail = nullptr;
    int64_t quantity_milli = 0;
    int order_count = 0;
  };
  using Bids = std::map<int64_t, PriceLevel, std::greater<int64_t>>;
  using Asks = std::map<int64_t, PriceLevel, std::less<int64_t>>;

  template <typename Book>
  void Match(const OrderRequest& order, int64_t& remaining, Book& opposite, std::vector<Fill>& fills);
  template <typename Book>
  void Rest(const OrderRequest& order, int64_t remaining, Book& same);
  template <typename Book>
  void Unlink(Order* order, Book& book);

  Order* NewOrder();
  void FreeOrder(Order* order);

  Bids bids_;
  Asks asks_;
  absl::flat_hash_map<uint64_t, Order*> orders_;
  std::vector<std::unique_ptr<Order[]>> slabs_;
  Order* free_list_ = nullptr;
};

}  // namespace ptd::trading::book

#endif  // PTD_SERVICES_TRADING_DOMAIN_ORDER_BOOK_H_
