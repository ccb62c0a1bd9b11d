#ifndef PTD_SERVICES_TRADING_STORE_SPOT_STORE_H_
#define PTD_SERVICES_TRADING_STORE_SPOT_STORE_H_

#include <cstdint>
#include <optional>
#include <pqxx/pqxx>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "libs/outbox/outbox.h"
#include "services/trading/domain/order_book.h"

// SQL for the spot market (migrations/0005_spot.sql). Every method runs inside the caller's transaction;
// every query of orders and trades filters on the tenant, except the book's own (rebuild, tape),
// which serve the matching engine and public market data.
namespace ptd::trading {

enum class SpotStatus { kOpen = 1, kFilled = 2, kCancelled = 3 };
enum class SpotCancelReason { kNone = 0, kByOwner = 1, kNoLiquidity = 2 };

// The stored codes of book::Side and book::OrderType (as in the proto enums: 1 buy/limit, 2 sell/market).
int SideCode(book::Side side);
int TypeCode(book::OrderType type);

struct SpotOrderRow {
  std::string order_id;
  std::string tenant_id;
  std::string commodity_id;
  int64_t seq = 0;
  book::Side side = book::Side::kBuy;
  book::OrderType type = book::OrderType::kLimit;
  std::string currency;
  int64_t price_minor = 0;  // 0 for market orders
  std::string unit;
  int64_t quantity_milli = 0;
  int64_t filled_milli = 0;
  SpotStatus status = SpotStatus::kOpen;
  SpotCancelReason cancel_reason = SpotCancelReason::kNone;
  absl::Time create_time;
  absl::Time update_time;

  int64_t remaining_milli() const { return status == SpotStatus::kOpen ? quantity_milli - filled_milli : 0; }
};

struct SpotTradeRow {
  std::string trade_id;
  int64_t seq = 0;  // the trade's place on the commodity's tape, numbered by its book (next_trade_seq)
  std::string commodity_id;
  std::string currency;
  int64_t price_minor = 0;
  std::string unit;
  int64_t quantity_milli = 0;
  int64_t amount_minor = 0;
  std::string buy_order_id;
  std::string sell_order_id;
  std::string buyer_tenant_id;
  std::string seller_tenant_id;
  book::Side aggressor_side = book::Side::kBuy;
  std::string taker_order_id;
  absl::Time execute_time;
};

struct SpotBookRow {
  std::string commodity_id;
  std::string currency;
  std::string unit;
  int64_t version = 0;
  int64_t next_seq = 0;        // the next order's arrival sequence
  int64_t next_trade_seq = 0;  // the next trade's place on the tape
};

// An order placed earlier under an idempotency key, and the hash of that request.
struct EarlierOrder {
  std::string order_id;
  std::string request_hash;
};

// A book a write will change, and how many orders it may place in it.
struct BookToLock {
  std::string commodity_id;
  int64_t sequences = 0;  // arrival sequences to reserve: one per order the write may place
};

// What locking a book for a write returns.
struct LockedBook {
  int64_t version = 0;         // the book's version after this write (the one before it plus one)
  int64_t first_seq = 0;       // the first of the arrival sequences reserved for this write's orders
  int64_t next_trade_seq = 0;  // the tape place of the book's next trade
};

// A book written by WriteAlone: the state the process's memory of it reflects, and the numbers it reaches.
struct BookWrite {
  std::string commodity_id;
  int64_t version = 0;         // the version the memory reflects: the write fails unless the row still has it
  int64_t next_seq = 0;        // after the batch's orders
  int64_t next_trade_seq = 0;  // after the batch's trades
};

struct LockedBooks {
  absl::flat_hash_map<std::string, LockedBook> books;  // by commodity id; a book without a row is missing
  // Per (tenant, idempotency key) asked for, in that order: the order placed earlier under it, if any.
  std::vector<std::optional<EarlierOrder>> earlier;
};

// A new order row with what is stored beside it.
struct NewSpotOrder {
  SpotOrderRow row;
  std::string idempotency_key;
  std::string request_hash;
  std::string created_by;
};

struct SpotFill {
  std::string commodity_id;  // the maker's book
  int64_t maker_seq;
  int64_t quantity_milli;
};

// A resting order that a one-statement batch cancels (its owner asked): where it is, and when.
struct SpotCancelWrite {
  std::string commodity_id;
  int64_t seq = 0;
  absl::Time at;
};

struct SpotPage {
  int size = 50;
  std::string after_id;  // keyset: rows with a smaller id than this (newest first); "" = first page
};

struct SpotOrderFilter {
  std::string commodity_id;  // "" = all
  int side = 0;              // SideCode; 0 = all
  int status = 0;            // SpotStatus; 0 = all
};

// The catalogue facts a book needs (commodities table, migrations/0001).
struct SpotCommodity {
  std::string commodity_id;
  std::string code;
  std::string vertical;
  std::string unit;
  bool standardised = false;
};

class SpotStore {
 public:
  static std::optional<SpotCommodity> GetCommodity(pqxx::work& tx, const std::string& commodity_id);

  // ---- books ----
  static std::optional<SpotBookRow> GetBook(pqxx::work& tx, const std::string& commodity_id);
  // Creates the book row if missing (a no-op when another process did it first).
  static void EnsureBook(pqxx::work& tx, const std::string& commodity_id, const std::string& currency,
                         const std::string& unit);
  // Locks the books' rows until the transaction ends, in commodity id order (so that two writers cannot
  // deadlock), bumps each one's version once, reserves its arrival sequences, and looks up the orders placed
  // earlier under `tenant_keys` — one round trip. A book without a row is absent from the answer.
  // The lookup reads the snapshot taken when the statement began: when it had to wait for a lock, an
  // order another process committed meanwhile under one of the keys is missed, and inserting the new one
  // then fails on the unique (tenant_id, idempotency_key) key — the transaction fails, nothing is doubled.
  static LockedBooks LockBooks(pqxx::work& tx, const std::vector<BookToLock>& books,
                               const std::vector<std::pair<std::string, std::string>>& tenant_keys);
  // The book's open orders in arrival order: replaying them as limit orders rebuilds the book.
  static std::vector<SpotOrderRow> RestingOrders(pqxx::work& tx, const std::string& commodity_id);

  // ---- orders ----
  // Writes a batch in one round trip, whatever books it touches: inserts `orders`, adds each of `fills` to
  // its maker order (at most one fill per maker; FILLED when complete), inserts `trades` (their places on the
  // tape given) and moves each book's next_trade_seq past its trades. INTERNAL when a maker is not an open
  // order of its book (the in-memory book disagreed with the database).
  static absl::Status WriteBatch(pqxx::work& tx, const std::vector<NewSpotOrder>& orders,
                                 const std::vector<SpotFill>& fills, absl::Time now,
                                 const std::vector<SpotTradeRow>& trades);
  // The whole of a batch of placements as ONE statement that commits on its own (`tx` outside any
  // transaction block): locks `books` in commodity id order, checks that each still has the version the
  // process's memory reflects, bumps it and sets its numbers, and writes the orders, fills, trades and
  // outbox events as WriteBatch and WriteEvents do. Throws (and nothing is written) when a book has another
  // version (another process wrote to it: SQLSTATE PTD01), a maker is not open (PTD01), or on any other
  // error (an idempotency key used before: unique violation). A broken connection leaves the outcome unknown.
  // `notify`: whether the statement wakes the relay with a NOTIFY; when false, the caller wakes it after the
  // commit (outbox::WakeLocalRelays).
  // `cancels`: resting orders cancelled by their owners (status open in the database, else PTD01).
  static void WriteAlone(pqxx::nontransaction& tx, const std::vector<BookWrite>& books,
                         const std::vector<NewSpotOrder>& orders, const std::vector<SpotFill>& fills, absl::Time now,
                         const std::vector<SpotTradeRow>& trades, const std::vector<SpotCancelWrite>& cancels,
                         const std::vector<outbox::Event>& events, bool notify);
  // NOT_FOUND when absent or another tenant's.
  static absl::StatusOr<SpotOrderRow> GetOrder(pqxx::work& tx, const std::string& tenant_id,
                                               const std::string& order_id);
  static void CancelOrder(pqxx::work& tx, const std::string& order_id, SpotCancelReason reason, absl::Time now);
  // Newest first; one row more than the page size tells that there is a next page.
  static std::vector<SpotOrderRow> ListOrders(pqxx::work& tx, const std::string& tenant_id,
                                              const SpotOrderFilter& filter, const SpotPage& page);

  // ---- trades ----
  static std::vector<SpotTradeRow> TradesTakenBy(pqxx::work& tx, const std::string& order_id);
  // The tenant's trades as buyer or seller, newest first, one more than the page size.
  static std::vector<SpotTradeRow> ListTrades(pqxx::work& tx, const std::string& tenant_id,
                                              const std::string& commodity_id, const SpotPage& page);
  // The commodity's tape after `after_seq`, oldest first.
  static std::vector<SpotTradeRow> TapeAfter(pqxx::work& tx, const std::string& commodity_id, int64_t after_seq,
                                             int limit);
  static int64_t LastTradeSeq(pqxx::work& tx, const std::string& commodity_id);

  // ---- events ----
  // Inserts the events into the service's outbox in one statement, in order, and wakes the relay on commit:
  // what outbox::Write does for one event (same table, same wake), for many in one round trip.
  static void WriteEvents(pqxx::work& tx, const std::vector<outbox::Event>& events);
};

}  // namespace ptd::trading

#endif  // PTD_SERVICES_TRADING_STORE_SPOT_STORE_H_
