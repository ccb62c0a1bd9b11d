#include "services/trading/spot_service.h"

#include <prometheus/counter.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <algorithm>
#include <deque>
#include <map>
#include <set>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "google/protobuf/util/time_util.h"
#include "libs/core/ids.h"
#include "libs/core/log.h"
#include "libs/core/money.h"
#include "libs/core/request.h"
#include "libs/core/status.h"
#include "libs/outbox/outbox.h"
#include "libs/server/caller.h"
#include "services/trading/domain/catalog.h"
#include "services/trading/domain/order_book.h"
#include "services/trading/store/spot_store.h"

namespace ptd::trading {

// The in-memory state of one commodity's book. Everything but the catalogue facts is guarded by `mu`, which
// is held across match and persist (see the header).
// How many of the latest orders to leave a book it remembers, with how they left (Book::closed).
constexpr size_t kClosedMemory = 100'000;

struct SpotMarketService::Book {
  struct Resting {
    std::string order_id;
    std::string tenant_id;
    book::Side side;
    int64_t price_minor;
  };
  // A tenant's resting prices, for self-trade prevention.
  struct OwnPrices {
    std::multiset<int64_t> bids;
    std::multiset<int64_t> asks;
  };

  SpotCommodity commodity;

  std::mutex mu;
  bool row_exists = false;  // its spot_books row was created (RunBatch)
  bool valid = false;       // false: unknown or dirty, rebuild before use
  int64_t version = 0;      // the spot_books.version the memory reflects (when valid)
  // The book's numbers the memory reflects (when valid): the next order's arrival sequence and the next
  // trade's place on the tape (spot_books.next_seq and next_trade_seq).
  int64_t next_seq = 0;
  int64_t next_trade_seq = 0;
  std::unique_ptr<book::OrderBook> book;
  absl::flat_hash_map<uint64_t, Resting> resting;  // by arrival sequence (the core's order id)
  absl::flat_hash_map<std::string, OwnPrices> own;
  // The latest orders that left the book since it was last rebuilt (at most kClosedMemory), and how: filled
  // or cancelled. A cancel of one is refused from memory, with its state, in a one-statement batch.
  absl::flat_hash_map<uint64_t, SpotStatus> closed;
  std::deque<uint64_t> closed_order;  // oldest first

  void AddResting(uint64_t seq, Resting r) {
    OwnPrices& prices = own[r.tenant_id];
    (r.side == book::Side::kBuy ? prices.bids : prices.asks).insert(r.price_minor);
    resting.emplace(seq, std::move(r));
  }
  void RemoveResting(uint64_t seq) {
    auto it = resting.find(seq);
    if (it == resting.end()) return;
    OwnPrices& prices = own[it->second.tenant_id];
    std::multiset<int64_t>& side = it->second.side == book::Side::kBuy ? prices.bids : prices.asks;
    side.erase(side.find(it->second.price_minor));
    if (prices.bids.empty() && prices.asks.empty()) own.erase(it->second.tenant_id);
    resting.erase(it);
  }

  // A resting order left the book: filled, or cancelled.
  void Close(uint64_t seq, SpotStatus how) {
    RemoveResting(seq);
    if (!closed.emplace(seq, how).second) return;
    closed_order.push_back(seq);
    if (closed_order.size() > kClosedMemory) {
      closed.erase(closed_order.front());
      closed_order.pop_front();
    }
  }

  // True when an order of `tenant` could meet one of the tenant's own resting orders.
  bool CrossesOwn(const std::string& tenant, book::Side side, book::OrderType type, int64_t price_minor) const {
    auto it = own.find(tenant);
    if (it == own.end()) return false;
    const bool market = type == book::OrderType::kMarket;
    if (side == book::Side::kBuy) {
      return !it->second.asks.empty() && (market || *it->second.asks.begin() <= price_minor);
    }
    return !it->second.bids.empty() && (market || *it->second.bids.rbegin() >= price_minor);
  }

  // Replaces the memory with the database's open orders, replayed in arrival order; the book's row had
  // `db_version` and the numbers `next` (next_seq) and `next_trade` (next_trade_seq).
  absl::Status Rebuild(pqxx::work& tx, int64_t db_version, int64_t next, int64_t next_trade) {
    valid = false;
    book = std::make_unique<book::OrderBook>();
    resting.clear();
    own.clear();
    closed.clear();  // what the memory did before may not have been committed
    closed_order.clear();
    std::vector<book::Fill> fills;
    for (const SpotOrderRow& o : SpotStore::RestingOrders(tx, commodity.commodity_id)) {
      book->Add({.order_id = static_cast<uint64_t>(o.seq),
                 .side = o.side,
                 .type = book::OrderType::kLimit,
                 .price_minor = o.price_minor,
                 .quantity_milli = o.remaining_milli()},
                fills);
      if (!fills.empty()) {
        return absl::InternalError(
            absl::StrCat("the stored book of ", commodity.commodity_id, " is crossed at order ", o.order_id));
      }
      AddResting(o.seq, {o.order_id, o.tenant_id, o.side, o.price_minor});
    }
    version = db_version;
    next_seq = next;
    next_trade_seq = next_trade;
    valid = true;
    return absl::OkStatus();
  }
};

namespace {

constexpr char kEventStream[] = "ptd.trading.events";
constexpr char kCurrency[] = "CNY";
// Bounds that keep price x quantity (and a level's total) far inside int64.
constexpr int64_t kMaxPriceMinor = 10'000'000'000;     // 100 million yuan per unit
constexpr int64_t kMaxQuantityMilli = 10'000'000'000;  // 10 million units
constexpr int kDefaultDepth = 10;
constexpr int kMaxDepth = 100;
constexpr int kTapeBatch = 500;
// At most this many requests commit in one transaction (a bound on its size, not a wait: a batch is whatever
// queued while the previous one committed).
constexpr size_t kMaxBatch = 256;
// How many of the latest placements' idempotency keys the committer remembers (see CommitAlone).
constexpr size_t kRecentKeys = 100'000;

// ---- proto <-> domain ----

v1::SpotSide SideToProto(book::Side side) { return side == book::Side::kBuy ? v1::SPOT_SIDE_BUY : v1::SPOT_SIDE_SELL; }

void ToProto(absl::Time t, google::protobuf::Timestamp* out) {
  *out = google::protobuf::util::TimeUtil::MicrosecondsToTimestamp(absl::ToUnixMicros(t));
}
void SetMoney(const std::string& currency, int64_t minor, common::v1::Money* out) {
  out->set_currency(currency);
  out->set_amount_minor(minor);
}
void SetQuantity(int64_t milli, const std::string& unit, common::v1::Quantity* out) {
  out->set_milli(milli);
  out->set_unit(unit);
}

void ToProto(const SpotOrderRow& o, v1::SpotOrder* out) {
  out->set_order_id(o.order_id);
  out->set_tenant_id(o.tenant_id);
  out->set_commodity_id(o.commodity_id);
  out->set_side(SideToProto(o.side));
  out->set_type(o.type == book::OrderType::kLimit ? v1::SPOT_ORDER_TYPE_LIMIT : v1::SPOT_ORDER_TYPE_MARKET);
  if (o.type == book::OrderType::kLimit) SetMoney(o.currency, o.price_minor, out->mutable_limit_price());
  SetQuantity(o.quantity_milli, o.unit, out->mutable_quantity());
  SetQuantity(o.filled_milli, o.unit, out->mutable_filled());
  SetQuantity(o.remaining_milli(), o.unit, out->mutable_remaining());
  out->set_status(static_cast<v1::SpotOrderStatus>(o.status));
  out->set_cancel_reason(static_cast<v1::SpotCancelReason>(o.cancel_reason));
  out->set_sequence(o.seq);
  ToProto(o.create_time, out->mutable_create_time());
  ToProto(o.update_time, out->mutable_update_time());
}

// A trade as `tenant` (one of its parties) sees it.
void ToProto(const SpotTradeRow& t, const std::string& tenant, v1::SpotTrade* out) {
  const bool buyer = t.buyer_tenant_id == tenant;
  out->set_trade_id(t.trade_id);
  out->set_commodity_id(t.commodity_id);
  SetMoney(t.currency, t.price_minor, out->mutable_price());
  SetQuantity(t.quantity_milli, t.unit, out->mutable_quantity());
  SetMoney(t.currency, t.amount_minor, out->mutable_amount());
  out->set_side(buyer ? v1::SPOT_SIDE_BUY : v1::SPOT_SIDE_SELL);
  out->set_order_id(buyer ? t.buy_order_id : t.sell_order_id);
  out->set_counterparty_tenant_id(buyer ? t.seller_tenant_id : t.buyer_tenant_id);
  out->set_aggressor((t.aggressor_side == book::Side::kBuy) == buyer);
  out->set_sequence(t.seq);
  ToProto(t.execute_time, out->mutable_execute_time());
}

void ToProto(const SpotTradeRow& t, v1::PublicTrade* out) {
  out->set_commodity_id(t.commodity_id);
  out->set_sequence(t.seq);
  SetMoney(t.currency, t.price_minor, out->mutable_price());
  SetQuantity(t.quantity_milli, t.unit, out->mutable_quantity());
  out->set_aggressor_side(SideToProto(t.aggressor_side));
  ToProto(t.execute_time, out->mutable_execute_time());
}

v1::TradeExecuted TradeEvent(const SpotTradeRow& t, const SpotCommodity& c) {
  v1::TradeExecuted e;
  e.set_trade_id(t.trade_id);
  e.set_sequence(t.seq);
  e.set_commodity_id(t.commodity_id);
  e.set_commodity_code(c.code);
  e.set_vertical(c.vertical);
  SetMoney(t.currency, t.price_minor, e.mutable_price());
  SetQuantity(t.quantity_milli, t.unit, e.mutable_quantity());
  SetMoney(t.currency, t.amount_minor, e.mutable_amount());
  e.set_buyer_tenant_id(t.buyer_tenant_id);
  e.set_seller_tenant_id(t.seller_tenant_id);
  e.set_buy_order_id(t.buy_order_id);
  e.set_sell_order_id(t.sell_order_id);
  e.set_aggressor_side(SideToProto(t.aggressor_side));
  ToProto(t.execute_time, e.mutable_execute_time());
  return e;
}

// `request_id` is the caller's: a batch is written by whichever thread commits it.
outbox::Event Event(const char* type, const std::string& aggregate_id, const std::string& tenant_id,
                    const google::protobuf::Message& payload, const std::string& request_id) {
  return {.stream = kEventStream,
          .type = type,
          .aggregate_id = aggregate_id,
          .tenant_id = tenant_id,
          .payload = payload.SerializeAsString(),
          .request_id = request_id};
}

std::optional<book::Side> SideFromProto(v1::SpotSide side) {
  switch (side) {
    case v1::SPOT_SIDE_BUY:
      return book::Side::kBuy;
    case v1::SPOT_SIDE_SELL:
      return book::Side::kSell;
    default:
      return std::nullopt;
  }
}

const char* StatusName(SpotStatus s) {
  switch (s) {
    case SpotStatus::kOpen:
      return "open";
    case SpotStatus::kFilled:
      return "filled";
    case SpotStatus::kCancelled:
      return "cancelled";
  }
  return "unknown";
}

}  // namespace

// A PlaceSpotOrder or CancelSpotOrder waiting for its book's next commit, and then its answer.
struct SpotMarketService::Pending {
  enum class Kind { kPlace, kCancel };
  Kind kind = Kind::kPlace;
  Book* book = nullptr;
  std::string tenant;
  std::string subject;
  std::string request_id;
  // kPlace: the validated order.
  std::string idempotency_key;
  std::string request_hash;
  book::Side side = book::Side::kBuy;
  book::OrderType type = book::OrderType::kLimit;
  int64_t price_minor = 0;  // 0 for a market order
  int64_t quantity_milli = 0;
  // kCancel: the order's id, and the order as the handler read it before queueing (for its place in the book;
  // it may have changed since).
  std::string order_id;
  SpotOrderRow target;
  // kCancel: when a one-statement batch cancelled it. Kept through ClearAnswer: if that statement's outcome is
  // unknown (its connection broke) and the transaction that follows finds the order cancelled at exactly this
  // time, the cancel was this request's own.
  std::optional<absl::Time> alone_cancel_time;

  // The answer, written by the committer thread; read by the caller once its batch was committed.
  absl::Status status;
  SpotOrderRow order;                // as placed (right after its own match), or as cancelled
  std::vector<SpotTradeRow> trades;  // the placed order's trades as taker
  bool repeated = false;             // the idempotency key was used before: `order` is that order
  int64_t cancelled_milli = 0;

  void ClearAnswer() {
    status = absl::OkStatus();
    order = {};
    trades.clear();
    repeated = false;
    cancelled_milli = 0;
  }
};

// The requests of one batch transaction, applied to the in-memory books (each book's in arrival order),
// with the rows they write held back so that they go to PostgreSQL in one statement (Flush), whatever books
// they belong to, and the outbox events in one more (Finish). A cancel flushes first, because it reads its
// order from the database. A request refused by a rule (self-trade, a reused idempotency key, a cancel of an
// order that is not open) gets its own status and changes nothing; a database error fails the whole
// transaction (the caller then runs the requests one by one).
class SpotMarketService::Batch {
 public:
  // `tx` null: a batch (CommitAlone) of placements none of which was placed before and of cancels of resting
  // orders, decided from memory and written as a whole by the caller (TakeAll); otherwise each flush writes
  // in `tx`.
  explicit Batch(pqxx::work* tx) : tx_(tx) {}

  // Everything the batch writes, for SpotStore::WriteAlone.
  struct Writes {
    std::vector<NewSpotOrder> orders;
    std::vector<SpotFill> fills;
    std::vector<SpotTradeRow> trades;
    std::vector<SpotCancelWrite> cancels;
    std::vector<outbox::Event> events;
  };

  // `seq` is the arrival sequence reserved for the order in `b`; `earlier` the order committed before under
  // the same idempotency key, if any.
  absl::Status Place(Book& b, Pending& p, int64_t seq, const std::optional<EarlierOrder>& earlier);
  absl::Status Cancel(Book& b, Pending& p);
  // Writes what is pending and the events, and answers the repeats of an order placed in this batch.
  absl::Status Finish();
  // The same without writing: what is to be written, and the repeats answered.
  Writes TakeAll();
  // The commodities of the books that traded.
  const std::vector<std::string>& traded() const { return traded_; }

 private:
  using BookSeq = std::pair<const Book*, int64_t>;  // an order's place: arrival sequences are per book
  absl::Status Flush();
  // Moves what is not yet written into `out` and appends the placed orders' events to events_.
  void TakeRows(Writes& out);
  // Appends the events of the placements not yet evented to events_, in arrival order.
  void EventPlaced();
  // The cancel of a resting order in a batch written as one statement (tx_ null): from the in-memory book.
  absl::Status CancelInMemory(Book& b, Pending& p);
  // `p` cancelled its order: the answer's figures and the SpotOrderCancelled event.
  void Cancelled(Pending& p, SpotOrderRow order, int64_t rest_milli, absl::Time now);
  void AnswerRepeats();

  pqxx::work* tx_;
  // Not yet written:
  std::vector<NewSpotOrder> orders_;                      // as they must be stored (fills by later orders included)
  absl::flat_hash_map<BookSeq, size_t> order_index_;      // -> orders_ index, for fills of these orders
  std::vector<SpotFill> fills_;                           // of makers already in the database, one per maker
  absl::flat_hash_map<BookSeq, size_t> fill_index_;       // maker -> fills_ index
  std::vector<std::pair<const Book*, Pending*>> placed_;  // whose order, trades and events are to be written
  size_t evented_ = 0;                                    // placed_ whose events are in events_ already
  std::vector<SpotCancelWrite> cancels_;                  // one-statement batches only
  // For the whole transaction:
  std::vector<outbox::Event> events_;  // in order
  // The orders placed by (tenant, idempotency key), over all books: a key is the tenant's, whatever the book.
  absl::flat_hash_map<std::pair<std::string, std::string>, Pending*> by_key_;
  std::vector<std::pair<Pending*, const Pending*>> repeats_;  // (repeat, original)
  std::vector<std::string> traded_;
};

absl::Status SpotMarketService::Batch::Place(Book& b, Pending& p, int64_t seq,
                                             const std::optional<EarlierOrder>& earlier) {
  if (earlier) {
    if (earlier->request_hash != p.request_hash) {
      p.status = ReusedKeyError();
      return absl::OkStatus();
    }
    absl::StatusOr<SpotOrderRow> row = SpotStore::GetOrder(*tx_, p.tenant, earlier->order_id);
    if (!row.ok()) return row.status();
    p.order = *std::move(row);
    p.trades = SpotStore::TradesTakenBy(*tx_, p.order.order_id);
    p.repeated = true;
    return absl::OkStatus();
  }
  if (auto it = by_key_.find(std::make_pair(p.tenant, p.idempotency_key)); it != by_key_.end()) {
    if (it->second->request_hash != p.request_hash) {
      p.status = ReusedKeyError();
    } else {
      repeats_.emplace_back(&p, it->second);
    }
    return absl::OkStatus();
  }
  if (b.CrossesOwn(p.tenant, p.side, p.type, p.price_minor)) {
    p.status = absl::FailedPreconditionError(
        "the order would trade with an order of your own resting on the other side (self-trade): cancel that "
        "order first or change the price");
    return absl::OkStatus();
  }

  const absl::Time now = absl::FromUnixMicros(absl::ToUnixMicros(absl::Now()));  // as stored
  SpotOrderRow& o = p.order;
  o = {.order_id = NewId(),
       .tenant_id = p.tenant,
       .commodity_id = b.commodity.commodity_id,
       .seq = seq,
       .side = p.side,
       .type = p.type,
       .currency = kCurrency,
       .price_minor = p.price_minor,
       .unit = b.commodity.unit,
       .quantity_milli = p.quantity_milli,
       .create_time = now,
       .update_time = now};

  b.valid = false;  // the memory runs ahead of the database until the commit
  std::vector<book::Fill> fills;
  book::AddResult result = b.book->Add({.order_id = static_cast<uint64_t>(seq),
                                        .side = o.side,
                                        .type = o.type,
                                        .price_minor = o.price_minor,
                                        .quantity_milli = o.quantity_milli},
                                       fills);
  o.filled_milli = result.filled_milli;
  if (result.resting_milli > 0) {
    o.status = SpotStatus::kOpen;
    b.AddResting(seq, {o.order_id, p.tenant, o.side, o.price_minor});
  } else if (result.cancelled_milli > 0) {
    o.status = SpotStatus::kCancelled;
    o.cancel_reason = SpotCancelReason::kNoLiquidity;
  } else {
    o.status = SpotStatus::kFilled;
  }

  for (const book::Fill& f : fills) {
    auto maker = b.resting.find(f.maker_order_id);
    if (maker == b.resting.end()) {
      return absl::InternalError(absl::StrCat("no owner for resting order ", f.maker_order_id));
    }
    absl::StatusOr<Money> amount = PriceOf({kCurrency, f.price_minor}, f.quantity_milli);
    if (!amount.ok()) return amount.status();
    const bool buy = o.side == book::Side::kBuy;
    p.trades.push_back({.trade_id = NewId(),
                        .seq = b.next_trade_seq++,
                        .commodity_id = o.commodity_id,
                        .currency = kCurrency,
                        .price_minor = f.price_minor,
                        .unit = o.unit,
                        .quantity_milli = f.quantity_milli,
                        .amount_minor = amount->amount_minor,
                        .buy_order_id = buy ? o.order_id : maker->second.order_id,
                        .sell_order_id = buy ? maker->second.order_id : o.order_id,
                        .buyer_tenant_id = buy ? p.tenant : maker->second.tenant_id,
                        .seller_tenant_id = buy ? maker->second.tenant_id : p.tenant,
                        .aggressor_side = o.side,
                        .taker_order_id = o.order_id,
                        .execute_time = now});
    const BookSeq maker_seq{&b, static_cast<int64_t>(f.maker_order_id)};
    if (auto in_batch = order_index_.find(maker_seq); in_batch != order_index_.end()) {
      // The maker rested earlier in this batch: its row is still to be inserted, so the fill goes into it.
      SpotOrderRow& m = orders_[in_batch->second].row;
      m.filled_milli += f.quantity_milli;
      if (m.filled_milli == m.quantity_milli) m.status = SpotStatus::kFilled;
      m.update_time = now;
    } else if (auto known = fill_index_.find(maker_seq); known != fill_index_.end()) {
      fills_[known->second].quantity_milli += f.quantity_milli;
    } else {
      fill_index_.emplace(maker_seq, fills_.size());
      fills_.push_back({b.commodity.commodity_id, maker_seq.second, f.quantity_milli});
    }
    if (f.maker_done) b.Close(f.maker_order_id, SpotStatus::kFilled);
  }

  order_index_.emplace(BookSeq{&b, seq}, orders_.size());
  orders_.push_back(
      {.row = o, .idempotency_key = p.idempotency_key, .request_hash = p.request_hash, .created_by = p.subject});
  placed_.emplace_back(&b, &p);
  by_key_.emplace(std::make_pair(p.tenant, p.idempotency_key), &p);
  return absl::OkStatus();
}

absl::Status SpotMarketService::Batch::Cancel(Book& b, Pending& p) {
  if (tx_ == nullptr) return CancelInMemory(b, p);
  if (absl::Status s = Flush(); !s.ok()) return s;
  // Read under the lock, after this batch's writes: the order may have been filled since.
  absl::StatusOr<SpotOrderRow> order = SpotStore::GetOrder(*tx_, p.tenant, p.order_id);
  if (!order.ok()) {
    p.status = order.status();
    return absl::OkStatus();
  }
  if (p.alone_cancel_time && order->status == SpotStatus::kCancelled &&
      order->cancel_reason == SpotCancelReason::kByOwner && order->update_time == *p.alone_cancel_time) {
    // This request's own cancel, committed by the one-statement batch whose answer was lost with its
    // connection (with its event): answered as that batch would have.
    p.cancelled_milli = order->quantity_milli - order->filled_milli;
    p.order = *std::move(order);
    return absl::OkStatus();
  }
  if (order->status != SpotStatus::kOpen) {
    p.status = absl::FailedPreconditionError(absl::StrCat("only an open order can be cancelled; order ",
                                                          order->order_id, " is ", StatusName(order->status)));
    return absl::OkStatus();
  }
  b.valid = false;
  std::optional<int64_t> rest = b.book->Cancel(static_cast<uint64_t>(order->seq));
  if (!rest) return absl::InternalError(absl::StrCat("open order ", order->order_id, " is not in the book"));
  b.Close(static_cast<uint64_t>(order->seq), SpotStatus::kCancelled);
  const absl::Time now = absl::FromUnixMicros(absl::ToUnixMicros(absl::Now()));
  SpotStore::CancelOrder(*tx_, order->order_id, SpotCancelReason::kByOwner, now);
  Cancelled(p, *std::move(order), *rest, now);
  return absl::OkStatus();
}

absl::Status SpotMarketService::Batch::CancelInMemory(Book& b, Pending& p) {
  // CommitAlone saw the order resting or closed, with the book valid. A placement earlier in this batch may
  // have filled it since: in whole (closed now: refused) or in part (a fill of its row that this statement
  // writes too, and a row is updated once per statement: rare, the transaction's way answers it).
  const int64_t seq = p.target.seq;
  if (!b.resting.contains(static_cast<uint64_t>(seq))) {
    // Closed since the caller read it (the memory says how, also when this batch filled it), or already then.
    auto closed = b.closed.find(static_cast<uint64_t>(seq));
    const SpotStatus state = closed != b.closed.end() ? closed->second : p.target.status;
    if (state == SpotStatus::kOpen) {
      return absl::InternalError(absl::StrCat("order ", p.order_id, " to cancel is neither resting nor closed"));
    }
    p.status = absl::FailedPreconditionError(
        absl::StrCat("only an open order can be cancelled; order ", p.order_id, " is ", StatusName(state)));
    return absl::OkStatus();
  }
  if (fill_index_.contains(BookSeq{&b, seq})) {
    return absl::AbortedError(absl::StrCat("order ", p.order_id, " to cancel was filled earlier in the batch"));
  }
  b.valid = false;
  std::optional<int64_t> rest = b.book->Cancel(static_cast<uint64_t>(seq));
  if (!rest) return absl::InternalError(absl::StrCat("open order ", p.order_id, " is not in the book"));
  b.Close(static_cast<uint64_t>(seq), SpotStatus::kCancelled);
  const absl::Time now = absl::FromUnixMicros(absl::ToUnixMicros(absl::Now()));
  cancels_.push_back({.commodity_id = b.commodity.commodity_id, .seq = seq, .at = now});
  p.alone_cancel_time = now;
  EventPlaced();  // the events in arrival order: the placements before this cancel first
  SpotOrderRow order = p.target;
  order.filled_milli = order.quantity_milli - *rest;  // the memory is the database's state (its version)
  Cancelled(p, std::move(order), *rest, now);
  return absl::OkStatus();
}

void SpotMarketService::Batch::Cancelled(Pending& p, SpotOrderRow order, int64_t rest_milli, absl::Time now) {
  order.status = SpotStatus::kCancelled;
  order.cancel_reason = SpotCancelReason::kByOwner;
  order.update_time = now;
  p.cancelled_milli = rest_milli;
  p.order = std::move(order);
  v1::SpotOrderCancelled event;
  ToProto(p.order, event.mutable_order());
  SetQuantity(p.cancelled_milli, p.order.unit, event.mutable_cancelled());
  events_.push_back(Event("ptd.trading.v1.SpotOrderCancelled", p.order.order_id, p.tenant, event, p.request_id));
}

void SpotMarketService::Batch::TakeRows(Writes& out) {
  for (const auto& [b, p] : placed_) out.trades.insert(out.trades.end(), p->trades.begin(), p->trades.end());
  EventPlaced();
  out.orders = std::move(orders_);
  out.fills = std::move(fills_);
  orders_.clear();
  order_index_.clear();
  fills_.clear();
  fill_index_.clear();
  placed_.clear();
  evented_ = 0;
}

void SpotMarketService::Batch::EventPlaced() {
  // Events in arrival order: each order's acceptance, then its trades.
  for (size_t i = evented_; i < placed_.size(); ++i) {
    const auto& [b, p] = placed_[i];
    v1::SpotOrderAccepted accepted;
    ToProto(p->order, accepted.mutable_order());
    events_.push_back(Event("ptd.trading.v1.SpotOrderAccepted", p->order.order_id, p->tenant, accepted, p->request_id));
    for (const SpotTradeRow& t : p->trades) {
      events_.push_back(
          Event("ptd.trading.v1.TradeExecuted", t.trade_id, "", TradeEvent(t, b->commodity), p->request_id));
    }
    const std::string& id = b->commodity.commodity_id;
    if (!p->trades.empty() && std::find(traded_.begin(), traded_.end(), id) == traded_.end()) traded_.push_back(id);
  }
  evented_ = placed_.size();
}

absl::Status SpotMarketService::Batch::Flush() {
  Writes rows;
  TakeRows(rows);
  const absl::Time now = absl::FromUnixMicros(absl::ToUnixMicros(absl::Now()));
  return SpotStore::WriteBatch(*tx_, rows.orders, rows.fills, now, rows.trades);
}

void SpotMarketService::Batch::AnswerRepeats() {
  for (auto& [repeat, original] : repeats_) {
    repeat->order = original->order;
    repeat->trades = original->trades;
    repeat->repeated = true;
  }
}

absl::Status SpotMarketService::Batch::Finish() {
  if (absl::Status s = Flush(); !s.ok()) return s;
  SpotStore::WriteEvents(*tx_, events_);
  AnswerRepeats();
  return absl::OkStatus();
}

SpotMarketService::Batch::Writes SpotMarketService::Batch::TakeAll() {
  Writes out;
  TakeRows(out);
  out.cancels = std::move(cancels_);
  cancels_.clear();
  out.events = std::move(events_);
  events_.clear();
  AnswerRepeats();
  return out;
}

// ---- TradeSignal ----

uint64_t TradeSignal::Generation(const std::string& commodity_id) {
  std::lock_guard lock(mu_);
  auto it = generations_.find(commodity_id);
  return it == generations_.end() ? 0 : it->second;
}

void TradeSignal::Notify(const std::string& commodity_id) {
  {
    std::lock_guard lock(mu_);
    ++generations_[commodity_id];
  }
  changed_.notify_all();
}

void TradeSignal::WaitChange(const std::string& commodity_id, uint64_t seen, absl::Duration timeout) {
  std::unique_lock lock(mu_);
  changed_.wait_for(lock, absl::ToChronoMilliseconds(timeout), [&] {
    auto it = generations_.find(commodity_id);
    return it != generations_.end() && it->second != seen;
  });
}

// ---- SpotMarketService ----

SpotMarketService::SpotMarketService(pg::Pool& pool, SpotOptions options)
    : pool_(pool), options_(options), recent_keys_(kRecentKeys) {
  prometheus::Registry* registry = options_.registry;
  if (registry == nullptr) {
    own_registry_ = std::make_shared<prometheus::Registry>();
    registry = own_registry_.get();
  }
  auto& batches = prometheus::BuildCounter()
                      .Name("ptd_trading_spot_batches_total")
                      .Help("Spot group-commit batches committed: in one statement, or in a transaction")
                      .Register(*registry);
  statement_batches_ = &batches.Add({{"path", "statement"}});
  transaction_batches_ = &batches.Add({{"path", "transaction"}});
  statement_fallbacks_ = &prometheus::BuildCounter()
                              .Name("ptd_trading_spot_statement_fallbacks_total")
                              .Help("One-statement spot batches that failed and went through a transaction instead")
                              .Register(*registry)
                              .Add({});
  batch_requests_ = &prometheus::BuildHistogram()
                         .Name("ptd_trading_spot_batch_requests")
                         .Help("Placements and cancels per spot group-commit batch")
                         .Register(*registry)
                         .Add({}, prometheus::Histogram::BucketBoundaries{1, 2, 4, 8, 16, 32, 64, 128, 256});
  queue_.emplace(kMaxBatch, [this](const std::vector<Pending*>& batch) { CommitBatch(batch); });
}

SpotMarketService::~SpotMarketService() { queue_->Stop(); }

absl::StatusOr<SpotMarketService::Book*> SpotMarketService::BookFor(const std::string& commodity_id) {
  {
    std::lock_guard lock(books_mu_);
    if (auto it = books_.find(commodity_id); it != books_.end()) return it->second.get();
  }
  absl::StatusOr<SpotCommodity> commodity = pool_.InTransaction([&](pqxx::work& tx) -> absl::StatusOr<SpotCommodity> {
    std::optional<SpotCommodity> c = SpotStore::GetCommodity(tx, commodity_id);
    if (!c) return InvalidField("commodity_id", "no such commodity in the catalogue");
    if (!c->standardised) {
      return InvalidField("commodity_id",
                          absl::StrCat("commodity ", c->code, " is not standardised: it has no spot book"));
    }
    return *c;
  });
  if (!commodity.ok()) return commodity.status();
  std::lock_guard lock(books_mu_);
  std::unique_ptr<Book>& slot = books_[commodity_id];
  if (slot == nullptr) {
    slot = std::make_unique<Book>();
    slot->commodity = *commodity;
  }
  return slot.get();
}

// Group commit (GroupCommitQueue): the committer thread takes everything queued, commits it and answers every
// request in it, then takes what queued meanwhile.
void SpotMarketService::Submit(Pending& p) {
  if (!queue_->Submit(p)) p.status = absl::UnavailableError("the service is shutting down");
}

void SpotMarketService::CommitBatch(const std::vector<Pending*>& batch) {
  batch_requests_->Observe(static_cast<double>(batch.size()));
  if (CommitAlone(batch)) {
    statement_batches_->Increment();
  } else {
    transaction_batches_->Increment();
    CommitInTransaction(batch);
  }
  for (const Pending* p : batch) {
    if (p->kind != Pending::Kind::kPlace || !p->status.ok()) continue;
    recent_keys_.Add(p->tenant, p->idempotency_key);
  }
}

void SpotMarketService::CommitInTransaction(const std::vector<Pending*>& batch) {
  absl::Status status = RunBatch(batch);
  if (status.ok()) return;
  // The transaction rolled back as a whole, so nothing of it happened: each request alone gets its own
  // answer (one bad request must not fail the others). Not after a commit of unknown outcome (the batch may
  // have committed, and a cancel run again would then be refused), nor when no connection was free (each
  // would wait as long again).
  if (batch.size() > 1 && !absl::IsUnknown(status) && !absl::IsResourceExhausted(status)) {
    log::Warn("spot batch failed, committing its requests one by one",
              {{"requests", batch.size()}, {"status", status.ToString()}});
    for (Pending* p : batch) {
      if (absl::Status alone = RunBatch({p}); !alone.ok()) p->status = alone;
    }
    return;
  }
  for (Pending* p : batch) p->status = status;
}

// The books of `batch` in commodity id order (the order their rows are locked in), each with its requests in
// arrival order.
SpotMarketService::BatchBooks SpotMarketService::ByBook(const std::vector<Pending*>& batch) {
  BatchBooks books;
  for (Pending* p : batch) {
    auto& [book, requests] = books[p->book->commodity.commodity_id];
    book = p->book;
    requests.push_back(p);
  }
  return books;
}

absl::Status SpotMarketService::RunBatch(const std::vector<Pending*>& batch) {
  // The books in commodity id order (the order their rows are locked in), each with its requests in
  // arrival order; the books' mutexes are taken in the same order.
  BatchBooks books = ByBook(batch);
  std::vector<std::unique_lock<std::mutex>> held;
  std::vector<BookToLock> to_lock;
  std::vector<std::pair<std::string, std::string>> keys;  // (tenant, idempotency key) of each placement
  for (auto& [id, entry] : books) {
    held.emplace_back(entry.first->mu);
    BookToLock& lock = to_lock.emplace_back(BookToLock{.commodity_id = id});
    for (const Pending* p : entry.second) {
      if (p->kind != Pending::Kind::kPlace) continue;
      ++lock.sequences;
      keys.emplace_back(p->tenant, p->idempotency_key);
    }
  }

  // The rows of books this process has not seen in the database yet, created in a transaction of their own
  // before the batch's: created inside it, while it holds the lock of another book, a row could deadlock with
  // another process's batch locking both books.
  std::vector<Book*> unseen;
  for (auto& [id, entry] : books) {
    if (!entry.first->row_exists) unseen.push_back(entry.first);
  }
  if (!unseen.empty()) {
    absl::Status created = pool_.InTransaction([&](pqxx::work& tx) -> absl::Status {
      for (Book* b : unseen) SpotStore::EnsureBook(tx, b->commodity.commodity_id, kCurrency, b->commodity.unit);
      return absl::OkStatus();
    });
    if (!created.ok()) return created;
    for (Book* b : unseen) b->row_exists = true;
  }

  absl::flat_hash_map<std::string, int64_t> versions;
  absl::flat_hash_map<std::string, int64_t> next_seqs;
  std::vector<std::string> traded;
  absl::Status status = pool_.InTransaction([&](pqxx::work& tx) -> absl::Status {
    for (Pending* p : batch) p->ClearAnswer();
    versions.clear();
    next_seqs.clear();
    traded.clear();
    LockedBooks locked = SpotStore::LockBooks(tx, to_lock, keys);
    // Books without a row (created above, so only if it was deleted since): created, then locked.
    std::vector<BookToLock> missing;
    for (const BookToLock& b : to_lock) {
      if (locked.books.contains(b.commodity_id)) continue;
      SpotStore::EnsureBook(tx, b.commodity_id, kCurrency, books[b.commodity_id].first->commodity.unit);
      missing.push_back(b);
    }
    if (!missing.empty()) {
      for (auto& [id, book] : SpotStore::LockBooks(tx, missing, {}).books) locked.books[id] = book;
    }

    Batch writes(&tx);
    size_t placement = 0;  // index into keys and locked.earlier
    for (auto& [id, entry] : books) {
      auto it = locked.books.find(id);
      if (it == locked.books.end()) return absl::InternalError(absl::StrCat("spot book ", id, " could not be locked"));
      Book& b = *entry.first;
      const int64_t version = it->second.version;
      versions[id] = version;
      if (!b.valid || b.version != version - 1) {
        if (absl::Status s = b.Rebuild(tx, version - 1, it->second.first_seq, it->second.next_trade_seq); !s.ok()) {
          return s;
        }
      }
      b.next_trade_seq = it->second.next_trade_seq;
      int64_t seq = it->second.first_seq;
      for (Pending* p : entry.second) {
        absl::Status s = p->kind == Pending::Kind::kPlace ? writes.Place(b, *p, seq++, locked.earlier[placement++])
                                                          : writes.Cancel(b, *p);
        if (!s.ok()) return s;
      }
      next_seqs[id] = seq;
    }
    if (absl::Status s = writes.Finish(); !s.ok()) return s;
    traded = writes.traded();
    return absl::OkStatus();
  });
  if (!status.ok()) return status;
  // On failure a book's `valid` is false if its memory changed (rebuilt on next use), and otherwise it still
  // matches the database, which the rollback left at the version the memory has.
  for (auto& [id, entry] : books) {
    entry.first->version = versions[id];
    entry.first->next_seq = next_seqs[id];
    entry.first->valid = true;
  }
  for (const std::string& id : traded) trade_signal_.Notify(id);
  return absl::OkStatus();
}

bool SpotMarketService::CommitAlone(const std::vector<Pending*>& batch) {
  absl::flat_hash_set<std::string> to_cancel;
  for (const Pending* p : batch) {
    // A key placed recently is most likely a retry: the transaction's look-up answers it without the
    // failed statement and the rebuild of the book that this way would cost.
    if (p->kind == Pending::Kind::kPlace && recent_keys_.Contains(p->tenant, p->idempotency_key)) return false;
    // An order cancelled twice in a batch: the transaction's way refuses the second.
    if (p->kind == Pending::Kind::kCancel && !to_cancel.insert(p->order_id).second) return false;
  }
  BatchBooks books = ByBook(batch);
  std::vector<std::unique_lock<std::mutex>> held;
  for (auto& [id, entry] : books) {
    held.emplace_back(entry.first->mu);
    if (!entry.first->valid) return false;
    // A cancel is decided from memory when the order rests there, or is known closed (by this process since
    // the book was built, or when the caller read it). Else (closed by another process) the transaction's way
    // reads it and refuses it with its state.
    for (const Pending* p : entry.second) {
      if (p->kind != Pending::Kind::kCancel) continue;
      const auto seq = static_cast<uint64_t>(p->target.seq);
      if (!entry.first->resting.contains(seq) && !entry.first->closed.contains(seq) &&
          p->target.status == SpotStatus::kOpen) {
        return false;
      }
    }
  }

  for (Pending* p : batch) p->ClearAnswer();
  Batch batch_writes(nullptr);
  std::vector<BookWrite> book_writes;
  absl::Status status;
  for (auto& [id, entry] : books) {
    Book& b = *entry.first;
    book_writes.push_back({.commodity_id = id, .version = b.version});
    for (Pending* p : entry.second) {
      status = p->kind == Pending::Kind::kPlace ? batch_writes.Place(b, *p, b.next_seq++, std::nullopt)
                                                : batch_writes.Cancel(b, *p);
      if (!status.ok()) break;
    }
    book_writes.back().next_seq = b.next_seq;
    book_writes.back().next_trade_seq = b.next_trade_seq;
    if (!status.ok()) break;
  }
  const Batch::Writes writes = batch_writes.TakeAll();
  if (status.ok() && writes.orders.empty() && writes.cancels.empty()) {
    // Every request was refused or repeats one of this batch that was refused: nothing changed.
    for (auto& [id, entry] : books) entry.first->valid = true;
    return true;
  }
  if (status.ok()) {
    try {
      if (alone_connection_ == nullptr) {
        absl::StatusOr<std::unique_ptr<pqxx::connection>> opened = pool_.OpenConnection();
        if (!opened.ok()) throw pqxx::broken_connection(std::string(opened.status().message()));
        // The statement's plan for any number of rows, planned once (planning it anew costs more than running it).
        pqxx::nontransaction(**opened).exec("SET plan_cache_mode = force_generic_plan");
        alone_connection_ = *std::move(opened);
      }
      pqxx::nontransaction tx(*alone_connection_);
      const absl::Time now = absl::FromUnixMicros(absl::ToUnixMicros(absl::Now()));
      // The relay of this process is woken after the commit rather than by a NOTIFY, which would hold a lock
      // that makes every writer's commit wait for this one's (libs/outbox/outbox.h).
      const bool notify = !outbox::LocalRelayRunning(pool_);
      SpotStore::WriteAlone(tx, book_writes, writes.orders, writes.fills, now, writes.trades, writes.cancels,
                            writes.events, notify);
      if (!notify) outbox::WakeLocalRelays(pool_);
    } catch (const pqxx::broken_connection& e) {
      alone_connection_.reset();
      status = pg::ToStatus(e);
    } catch (const std::exception& e) {
      status = pg::ToStatus(e);
    }
  }
  if (!status.ok()) {
    // Nothing was written, or (a broken connection) it is unknown whether it was: the memory may be ahead of
    // the database. The books are rebuilt and the batch goes through RunBatch, whose look-up of the
    // idempotency keys finds the orders if they were written after all.
    for (auto& [id, entry] : books) entry.first->valid = false;
    for (Pending* p : batch) p->ClearAnswer();
    statement_fallbacks_->Increment();
    log::Warn("spot batch not written in one statement, writing it in a transaction",
              {{"requests", batch.size()}, {"status", status.ToString()}});
    return false;
  }
  for (auto& [id, entry] : books) {
    entry.first->version += 1;
    entry.first->valid = true;
  }
  held.clear();
  for (const std::string& id : batch_writes.traded()) trade_signal_.Notify(id);
  return true;
}

grpc::Status SpotMarketService::PlaceSpotOrder(grpc::ServerContext* context, const v1::PlaceSpotOrderRequest* request,
                                               v1::PlaceSpotOrderResponse* response) {
  auto caller = CallerOf(*context);
  if (!caller.ok()) return ToGrpcStatus(caller.status());

  // ---- validate ----
  FieldViolations violations;
  CheckIdempotencyKey(request->idempotency_key(), violations);
  CheckId("commodity_id", request->commodity_id(), violations);
  std::optional<book::Side> side = SideFromProto(request->side());
  if (!side) violations.Add("side", "must be SPOT_SIDE_BUY or SPOT_SIDE_SELL");
  book::OrderType type = book::OrderType::kLimit;
  int64_t price_minor = 0;
  if (request->type() == v1::SPOT_ORDER_TYPE_LIMIT) {
    const common::v1::Money& price = request->limit_price();
    if (!request->has_limit_price()) {
      violations.Add("limit_price", "is required for a limit order");
    } else if (price.currency() != kCurrency) {
      violations.Add("limit_price.currency",
                     absl::StrCat("must be CNY, the currency of every spot book, got '", price.currency(), "'"));
    } else if (price.amount_minor() <= 0 || price.amount_minor() > kMaxPriceMinor) {
      violations.Add("limit_price.amount_minor",
                     absl::StrCat("must be positive and at most ", kMaxPriceMinor, ", got ", price.amount_minor()));
    }
    price_minor = price.amount_minor();
  } else if (request->type() == v1::SPOT_ORDER_TYPE_MARKET) {
    type = book::OrderType::kMarket;
    if (request->has_limit_price()) violations.Add("limit_price", "must be absent for a market order");
  } else {
    violations.Add("type", "must be SPOT_ORDER_TYPE_LIMIT or SPOT_ORDER_TYPE_MARKET");
  }
  const common::v1::Quantity& quantity = request->quantity();
  if (!request->has_quantity()) {
    violations.Add("quantity", "is required");
  } else if (quantity.milli() <= 0 || quantity.milli() > kMaxQuantityMilli) {
    violations.Add("quantity.milli",
                   absl::StrCat("must be positive and at most ", kMaxQuantityMilli, ", got ", quantity.milli()));
  }
  if (!violations.empty()) return ToGrpcStatus(violations.ToStatus());

  absl::StatusOr<Book*> found = BookFor(request->commodity_id());
  if (!found.ok()) return Answer("PlaceSpotOrder", found.status());
  Book& b = **found;
  if (quantity.unit() != b.commodity.unit) {
    return ToGrpcStatus(InvalidField("quantity.unit", absl::StrCat("must be the commodity's unit '", b.commodity.unit,
                                                                   "', got '", quantity.unit(), "'")));
  }

  // ---- match and persist: queued for the book's next group commit ----
  Pending p{.kind = Pending::Kind::kPlace,
            .book = &b,
            .tenant = caller->tenant_id,
            .subject = caller->subject,
            .request_id = log::CurrentRequestId(),
            .idempotency_key = request->idempotency_key(),
            .request_hash = RequestHash(*request),
            .side = *side,
            .type = type,
            .price_minor = type == book::OrderType::kLimit ? price_minor : 0,
            .quantity_milli = quantity.milli()};
  Submit(p);
  if (!p.status.ok()) return Answer("PlaceSpotOrder", p.status);

  ToProto(p.order, response->mutable_order());
  for (const SpotTradeRow& t : p.trades) ToProto(t, p.tenant, response->add_trades());
  if (!p.repeated) {
    log::Info("spot order placed", {{"order_id", p.order.order_id},
                                    {"commodity_id", p.order.commodity_id},
                                    {"status", StatusName(p.order.status)},
                                    {"trades", p.trades.size()}});
  }
  return grpc::Status::OK;
}

grpc::Status SpotMarketService::CancelSpotOrder(grpc::ServerContext* context, const v1::CancelSpotOrderRequest* request,
                                                v1::SpotOrder* response) {
  auto caller = CallerOf(*context);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  FieldViolations violations;
  CheckId("order_id", request->order_id(), violations);
  if (!violations.empty()) return ToGrpcStatus(violations.ToStatus());

  // The order's commodity says which book to queue on; it never changes, so reading it first is safe.
  absl::StatusOr<SpotOrderRow> order = pool_.InTransaction(
      [&](pqxx::work& tx) { return SpotStore::GetOrder(tx, caller->tenant_id, request->order_id()); });
  if (!order.ok()) return Answer("CancelSpotOrder", order.status());
  absl::StatusOr<Book*> found = BookFor(order->commodity_id);
  if (!found.ok()) return Answer("CancelSpotOrder", found.status());

  Pending p{.kind = Pending::Kind::kCancel,
            .book = *found,
            .tenant = caller->tenant_id,
            .subject = caller->subject,
            .request_id = log::CurrentRequestId(),
            .order_id = request->order_id(),
            .target = *order};
  Submit(p);
  if (!p.status.ok()) return Answer("CancelSpotOrder", p.status);
  ToProto(p.order, response);
  log::Info("spot order cancelled", {{"order_id", p.order.order_id}, {"cancelled_milli", p.cancelled_milli}});
  return grpc::Status::OK;
}

grpc::Status SpotMarketService::GetSpotOrder(grpc::ServerContext* context, const v1::GetSpotOrderRequest* request,
                                             v1::SpotOrder* response) {
  auto caller = CallerOf(*context);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  FieldViolations violations;
  CheckId("order_id", request->order_id(), violations);
  if (!violations.empty()) return ToGrpcStatus(violations.ToStatus());
  absl::StatusOr<SpotOrderRow> order = pool_.InTransaction(
      [&](pqxx::work& tx) { return SpotStore::GetOrder(tx, caller->tenant_id, request->order_id()); });
  if (!order.ok()) return Answer("GetSpotOrder", order.status());
  ToProto(*order, response);
  return grpc::Status::OK;
}

grpc::Status SpotMarketService::ListSpotOrders(grpc::ServerContext* context, const v1::ListSpotOrdersRequest* request,
                                               v1::ListSpotOrdersResponse* response) {
  auto caller = CallerOf(*context);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  FieldViolations violations;
  SpotPage page{.size = PageSize(request->page_size(), violations)};
  page.after_id = AfterId(request->page_token(), violations);
  SpotOrderFilter filter{.commodity_id = request->commodity_id()};
  if (!filter.commodity_id.empty()) CheckId("commodity_id", filter.commodity_id, violations);
  if (request->side() != v1::SPOT_SIDE_UNSPECIFIED) {
    if (auto side = SideFromProto(request->side()))
      filter.side = SideCode(*side);
    else
      violations.Add("side", absl::StrCat("unknown side ", static_cast<int>(request->side())));
  }
  switch (request->status()) {
    case v1::SPOT_ORDER_STATUS_UNSPECIFIED:
      break;
    case v1::SPOT_ORDER_STATUS_OPEN:
    case v1::SPOT_ORDER_STATUS_FILLED:
    case v1::SPOT_ORDER_STATUS_CANCELLED:
      filter.status = static_cast<int>(request->status());
      break;
    default:
      violations.Add("status", absl::StrCat("unknown status ", static_cast<int>(request->status())));
  }
  if (!violations.empty()) return ToGrpcStatus(violations.ToStatus());
  absl::StatusOr<std::vector<SpotOrderRow>> rows =
      pool_.InTransaction([&](pqxx::work& tx) -> absl::StatusOr<std::vector<SpotOrderRow>> {
        return SpotStore::ListOrders(tx, caller->tenant_id, filter, page);
      });
  if (!rows.ok()) return Answer("ListSpotOrders", rows.status());
  for (int i = 0; i < static_cast<int>(rows->size()) && i < page.size; ++i) ToProto((*rows)[i], response->add_orders());
  if (static_cast<int>(rows->size()) > page.size) {
    response->set_next_page_token(PageToken((*rows)[page.size - 1].order_id));
  }
  return grpc::Status::OK;
}

grpc::Status SpotMarketService::GetBook(grpc::ServerContext* context, const v1::GetBookRequest* request,
                                        v1::SpotBook* response) {
  if (auto caller = CallerOf(*context); !caller.ok()) return ToGrpcStatus(caller.status());
  FieldViolations violations;
  CheckId("commodity_id", request->commodity_id(), violations);
  int depth = request->depth() == 0 ? kDefaultDepth : request->depth();
  if (depth < 0 || depth > kMaxDepth) {
    violations.Add("depth", absl::StrCat("must be between 0 and ", kMaxDepth, ", got ", request->depth()));
  }
  if (!violations.empty()) return ToGrpcStatus(violations.ToStatus());

  const std::string& id = request->commodity_id();
  absl::StatusOr<Book*> found = BookFor(id);
  if (absl::IsInvalidArgument(found.status())) {
    return ToGrpcStatus(absl::NotFoundError(absl::StrCat("no spot book for commodity ", id)));
  }
  if (!found.ok()) return Answer("GetBook", found.status());
  Book& b = **found;

  // The levels come from the in-memory book (what the next order will meet), once it is checked against the
  // database's version in one snapshot: another process may have moved the book on.
  struct Snapshot {
    int64_t version = 0;
    int64_t last_trade_seq = 0;
    std::vector<book::Level> bids, asks;
  };
  absl::StatusOr<Snapshot> snapshot;
  {
    std::lock_guard lock(b.mu);
    snapshot = pool_.InTransaction(
        [&](pqxx::work& tx) -> absl::StatusOr<Snapshot> {
          Snapshot s;
          std::optional<SpotBookRow> row = SpotStore::GetBook(tx, id);
          if (!row) return s;  // no order yet
          s.version = row->version;
          if (!b.valid || b.version != row->version) {
            absl::Status rebuilt = b.Rebuild(tx, row->version, row->next_seq, row->next_trade_seq);
            if (!rebuilt.ok()) return rebuilt;
          }
          s.bids = b.book->Depth(book::Side::kBuy, depth);
          s.asks = b.book->Depth(book::Side::kSell, depth);
          s.last_trade_seq = row->next_trade_seq - 1;
          return s;
        },
        pg::Isolation::kRepeatableRead);
  }
  if (!snapshot.ok()) return Answer("GetBook", snapshot.status());
  auto level = [&](const book::Level& l, v1::SpotBookLevel* out) {
    SetMoney(kCurrency, l.price_minor, out->mutable_price());
    SetQuantity(l.quantity_milli, b.commodity.unit, out->mutable_quantity());
    out->set_order_count(l.order_count);
  };
  response->set_commodity_id(id);
  for (const book::Level& l : snapshot->bids) level(l, response->add_bids());
  for (const book::Level& l : snapshot->asks) level(l, response->add_asks());
  if (!snapshot->bids.empty()) level(snapshot->bids.front(), response->mutable_best_bid());
  if (!snapshot->asks.empty()) level(snapshot->asks.front(), response->mutable_best_ask());
  response->set_version(snapshot->version);
  response->set_last_trade_sequence(snapshot->last_trade_seq);
  return grpc::Status::OK;
}

grpc::Status SpotMarketService::ListTrades(grpc::ServerContext* context, const v1::ListSpotTradesRequest* request,
                                           v1::ListSpotTradesResponse* response) {
  auto caller = CallerOf(*context);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  FieldViolations violations;
  SpotPage page{.size = PageSize(request->page_size(), violations)};
  page.after_id = AfterId(request->page_token(), violations);
  if (!request->commodity_id().empty()) CheckId("commodity_id", request->commodity_id(), violations);
  if (!violations.empty()) return ToGrpcStatus(violations.ToStatus());
  absl::StatusOr<std::vector<SpotTradeRow>> rows =
      pool_.InTransaction([&](pqxx::work& tx) -> absl::StatusOr<std::vector<SpotTradeRow>> {
        return SpotStore::ListTrades(tx, caller->tenant_id, request->commodity_id(), page);
      });
  if (!rows.ok()) return Answer("ListTrades", rows.status());
  for (int i = 0; i < static_cast<int>(rows->size()) && i < page.size; ++i) {
    ToProto((*rows)[i], caller->tenant_id, response->add_trades());
  }
  if (static_cast<int>(rows->size()) > page.size) {
    response->set_next_page_token(PageToken((*rows)[page.size - 1].trade_id));
  }
  return grpc::Status::OK;
}

grpc::Status SpotMarketService::StreamTrades(grpc::ServerContext* context, const v1::StreamTradesRequest* request,
                                             grpc::ServerWriter<v1::PublicTrade>* writer) {
  if (auto caller = CallerOf(*context); !caller.ok()) return ToGrpcStatus(caller.status());
  FieldViolations violations;
  CheckId("commodity_id", request->commodity_id(), violations);
  if (request->has_after_sequence() && request->after_sequence() < 0) {
    violations.Add("after_sequence", absl::StrCat("must not be negative, got ", request->after_sequence()));
  }
  if (!violations.empty()) return ToGrpcStatus(violations.ToStatus());
  const std::string& id = request->commodity_id();
  absl::StatusOr<int64_t> start = pool_.InTransaction([&](pqxx::work& tx) -> absl::StatusOr<int64_t> {
    std::optional<SpotCommodity> c = SpotStore::GetCommodity(tx, id);
    if (!c || !c->standardised) return absl::NotFoundError(absl::StrCat("no spot book for commodity ", id));
    return request->has_after_sequence() ? request->after_sequence() : SpotStore::LastTradeSeq(tx, id);
  });
  if (!start.ok()) return Answer("StreamTrades", start.status());

  int64_t last = *start;
  while (!context->IsCancelled()) {
    // Read the generation before the tape, so that a commit in between wakes the wait below at once.
    const uint64_t generation = trade_signal_.Generation(id);
    absl::StatusOr<std::vector<SpotTradeRow>> batch =
        pool_.InTransaction([&](pqxx::work& tx) -> absl::StatusOr<std::vector<SpotTradeRow>> {
          return SpotStore::TapeAfter(tx, id, last, kTapeBatch);
        });
    if (!batch.ok()) return Answer("StreamTrades", batch.status());
    for (const SpotTradeRow& t : *batch) {
      v1::PublicTrade out;
      ToProto(t, &out);
      if (!writer->Write(out)) return grpc::Status::OK;  // the client went away
      last = t.seq;
    }
    if (static_cast<int>(batch->size()) == kTapeBatch) continue;
    trade_signal_.WaitChange(id, generation, options_.stream_poll);
  }
  return grpc::Status::OK;
}

}  // namespace ptd::trading
