#include "services/trading/domain/order_book.h"

#include <algorithm>

namespace ptd::trading::book {

// A resting order, in its price level's FIFO list. Orders come from slabs and are recycled through a free
// list, so the hot path allocates only when a book grows past its largest size so far.
struct OrderBook::Order {
  uint64_t order_id;
  int64_t price_minor;
  int64_t remaining_milli;
  Side side;
  Order* prev;
  Order* next;
};

namespace {
constexpr size_t kSlabSize = 4096;
}  // namespace

OrderBook::OrderBook() { orders_.reserve(kSlabSize); }
OrderBook::~OrderBook() = default;

OrderBook::Order* OrderBook::NewOrder() {
  if (free_list_ == nullptr) {
    slabs_.push_back(std::make_unique<Order[]>(kSlabSize));
    Order* slab = slabs_.back().get();
    for (size_t i = 0; i < kSlabSize; ++i) {
      slab[i].next = free_list_;
      free_list_ = &slab[i];
    }
  }
  Order* o = free_list_;
  free_list_ = o->next;
  return o;
}

void OrderBook::FreeOrder(Order* order) {
  order->next = free_list_;
  free_list_ = order;
}

template <typename Book>
void OrderBook::Unlink(Order* order, Book& book) {
  auto it = book.find(order->price_minor);
  PriceLevel& level = it->second;
  if (order->prev != nullptr) order->prev->next = order->next;
  else level.head = order->next;
  if (order->next != nullptr) order->next->prev = order->prev;
  else level.tail = order->prev;
  level.quantity_milli -= order->remaining_milli;
  if (--level.order_count == 0) book.erase(it);
}

template <typename Book>
void OrderBook::Match(const OrderRequest& order, int64_t& remaining, Book& opposite, std::vector<Fill>& fills) {
  const bool market = order.type == OrderType::kMarket;
  while (remaining > 0 && !opposite.empty()) {
    auto level_it = opposite.begin();
    const int64_t price = level_it->first;
    // A limit order crosses only at its price or better.
    if (!market) {
      if (order.side == Side::kBuy ? price > order.price_minor : price < order.price_minor) break;
    }
    PriceLevel& level = level_it->second;
    while (remaining > 0 && level.head != nullptr) {
      Order* maker = level.head;
      const int64_t traded = std::min(remaining, maker->remaining_milli);
      remaining -= traded;
      maker->remaining_milli -= traded;
      level.quantity_milli -= traded;
      const bool maker_done = maker->remaining_milli == 0;
      fills.push_back({order.order_id, maker->order_id, price, traded, maker_done});
      if (maker_done) {
        level.head = maker->next;
        if (level.head != nullptr) level.head->prev = nullptr;
        else level.tail = nullptr;
        --level.order_count;
        orders_.erase(maker->order_id);
        FreeOrder(maker);
      }
    }
    if (level.head == nullptr) opposite.erase(level_it);
  }
}

template <typename Book>
void OrderBook::Rest(const OrderRequest& order, int64_t remaining, Book& same) {
  Order* o = NewOrder();
  *o = Order{order.order_id, order.price_minor, remaining, order.side, nullptr, nullptr};
  PriceLevel& level = same[order.price_minor];
  o->prev = level.tail;
  if (level.tail != nullptr) level.tail->next = o;
  else level.head = o;
  level.tail = o;
  level.quantity_milli += remaining;
  ++level.order_count;
  orders_.emplace(order.order_id, o);
}

AddResult OrderBook::Add(const OrderRequest& order, std::vector<Fill>& fills) {
  int64_t remaining = order.quantity_milli;
  if (order.side == Side::kBuy) Match(order, remaining, asks_, fills);
  else Match(order, remaining, bids_, fills);
  AddResult result;
  result.filled_milli = order.quantity_milli - remaining;
  if (remaining > 0) {
    if (order.type == OrderType::kMarket) {
      result.cancelled_milli = remaining;
    } else {
      if (order.side == Side::kBuy) Rest(order, remaining, bids_);
      else Rest(order, remaining, asks_);
      result.resting_milli = remaining;
    }
  }
  return result;
}

std::optional<int64_t> OrderBook::Cancel(uint64_t order_id) {
  auto it = orders_.find(order_id);
  if (it == orders_.end()) return std::nullopt;
  Order* o = it->second;
  const int64_t remaining = o->remaining_milli;
  if (o->side == Side::kBuy) Unlink(o, bids_);
  else Unlink(o, asks_);
  orders_.erase(it);
  FreeOrder(o);
  return remaining;
}

std::optional<int64_t> OrderBook::Resting(uint64_t order_id) const {
  auto it = orders_.find(order_id);
  if (it == orders_.end()) return std::nullopt;
  return it->second->remaining_milli;
}

namespace {
template <typename Book>
std::optional<Level> Best(const Book& book) {
  if (book.empty()) return std::nullopt;
  const auto& [price, level] = *book.begin();
  return Level{price, level.quantity_milli, level.order_count};
}
template <typename Book>
std::vector<Level> Levels(const Book& book, int levels) {
  std::vector<Level> out;
  for (auto it = book.begin(); it != book.end() && static_cast<int>(out.size()) < levels; ++it) {
    out.push_back({it->first, it->second.quantity_milli, it->second.order_count});
  }
  return out;
}
}  // namespace

std::optional<Level> OrderBook::BestBid() const { return Best(bids_); }
std::optional<Level> OrderBook::BestAsk() const { return Best(asks_); }

std::vector<Level> OrderBook::Depth(Side side, int levels) const {
  return side == Side::kBuy ? Levels(bids_, levels) : Levels(asks_, levels);
}

}  // namespace ptd::trading::book
