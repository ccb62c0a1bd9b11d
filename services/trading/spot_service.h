#ifndef PTD_SERVICES_TRADING_SPOT_SERVICE_H_
#define PTD_SERVICES_TRADING_SPOT_SERVICE_H_

#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "libs/pg/pool.h"
#include "services/trading/group_commit.h"
#include "ptd/trading/v1/spot.grpc.pb.h"

// The spot market: the gRPC handlers of ptd.trading.v1.SpotMarketService around one in-memory matching core
// (domain/order_book.h) per commodity, with PostgreSQL as the system of record.
//
// How an order becomes durable and why books never diverge:
//  - PostgreSQL holds the truth: every open order (with its arrival sequence) and every trade. The in-memory
//    OrderBook is a copy, used because matching in memory is fast and simple.
//  - Orders and cancels are committed in groups (group commit). A request joins the process's queue; one
//    committer thread takes everything queued and runs ONE transaction for the whole batch, whatever books
//    it touches:
//      1. lock the row in spot_books of each book the batch touches, in commodity id order (UPDATE ...
//         version = version + 1, reserving one arrival sequence per order), and look up the batch's
//         idempotency keys — one statement,
//      2. per book, holding the process's mutex of that book, apply its requests in arrival order to the
//         in-memory book exactly as if they came one by one, then write their orders, the makers' fills and
//         the trades in one statement (a cancel first writes what is pending, since it reads its order from
//         the database); then the outbox events of the whole batch in one statement,
//      3. commit — only then is any request of the batch answered. An acknowledged order is therefore
//         committed (synchronous commit), and its events leave through the outbox exactly when it does.
//    While one batch waits for its commit's fsync the next one queues, so under load one fsync carries
//    many orders, yet an order alone is committed at once (no waiting for company).
//  - One statement: when the memory of every book a batch touches is known to match the database (the usual
//    case), and each of its cancels is of an order resting there, the batch needs no look at the database
//    before matching. It is then matched in memory first and written as ONE statement that commits on its own
//    (SpotStore::WriteAlone: one round trip instead of five): the statement locks the books' rows in
//    commodity id order, writes only if each row still has the version the memory reflects, and fails as
//    a whole otherwise. The database still decides: an idempotency key used before fails the statement on
//    the unique key, another process's write fails the version check, a maker that is not open fails a
//    check — and then nothing of it is written, the books are rebuilt and the batch goes the way described
//    above, whose look-up answers a repeated request with its first order. A lost connection leaves the
//    outcome unknown; that way also settles it (the orders are found by their keys if they were written; a
//    cancel finds its order cancelled at the very time the statement would have written).
//    Each book numbers its orders and its trades (spot_books.next_seq, next_trade_seq), so a trade's place
//    on the tape — and the TradeExecuted event carrying it — is known before anything is written.
//  - A request refused by a rule (self-trade, an idempotency key reused for another request, a cancel of an
//    order that is not open) gets its own answer and changes nothing; the others of its batch go on. A
//    database error rolls the whole batch back; its requests are then committed one by one, so that each
//    caller gets its own answer (except after a commit of unknown outcome: then all get UNKNOWN).
//  - The row lock serialises writers of C across processes (two replicas of trading, or a restarted one
//    while the old one still finishes a call); the mutex alone would only serialise one process. The row
//    is locked before the book is read, so the match always sees the latest committed book.
//  - The version in the row says which book state the database holds. A process remembers the version its
//    memory reflects; when the locked row shows another (a different process wrote to C, or this process
//    just started), it rebuilds C's book from the open orders in arrival order, inside the same
//    transaction, before matching. Books are therefore built on first use after start.
//  - From the first change to the memory until the commit, the in-memory book counts as dirty. If the
//    transaction fails (a constraint, a lost connection, a commit of unknown outcome, a retry of the
//    transaction) the dirty book is thrown away and rebuilt from the database on the next use: memory is
//    never ahead of, or different from, what was committed.
//  - A transaction locks its book rows first, in commodity id order, and then only rows of those books, so
//    writers (threads or processes) cannot deadlock.
//
// Self-trade: prevented. An order that would cross one of its own tenant's resting orders on the other
// side (a buy at or above the tenant's own lowest offer, a sell at or below its own highest bid, or any
// market order against its own resting orders) is refused with FAILED_PRECONDITION, before anything changes.
// A trade of an enterprise with itself changes no ownership, and would feed the price indices a price
// nobody paid (wash trading). The rule is checked on the whole price range the order may reach, not only on
// the orders it would really meet: simpler to explain, and it never depends on the quantity ahead.
//
// Trade stream: StreamTrades reads the commodity's tape from PostgreSQL by sequence (seq > last sent). Trades
// of one commodity are inserted only under its book row lock, so along a commodity's tape the sequence grows
// in commit order and such a reader misses nothing — also of trades another process committed. After a
// commit the process wakes its own readers of that commodity at once (TradeSignal); trades of another process
// reach them at the next poll (at most `stream_poll` later). No second source of truth (such as Redis) to keep
// in step; the cost is one indexed query per idle reader per poll interval.
namespace prometheus {
class Counter;
class Histogram;
class Registry;
}  // namespace prometheus

namespace ptd::trading {

struct SpotOptions {
  absl::Duration stream_poll = absl::Milliseconds(200);  // how often an idle trade stream looks at the database
  // Receives the group commit's metrics (nullable; must outlive the service):
  //   ptd_trading_spot_batches_total{path="statement|transaction"}  batches committed, by the way they went
  //   ptd_trading_spot_batch_requests                                requests per batch (histogram)
  //   ptd_trading_spot_statement_fallbacks_total                     one-statement batches that failed and
  //                                                                   went through a transaction instead
  prometheus::Registry* registry = nullptr;
};

// Wakes trade-stream readers of a commodity when this process commits trades of it.
class TradeSignal {
 public:
  // The commodity's generation: it changes with every Notify.
  uint64_t Generation(const std::string& commodity_id);
  void Notify(const std::string& commodity_id);
  // Waits until the generation differs from `seen`, or `timeout` passes.
  void WaitChange(const std::string& commodity_id, uint64_t seen, absl::Duration timeout);

 private:
  std::mutex mu_;
  std::condition_variable changed_;
  absl::flat_hash_map<std::string, uint64_t> generations_;
};

class SpotMarketService final : public v1::SpotMarketService::Service {
 public:
  explicit SpotMarketService(pg::Pool& pool, SpotOptions options = {});
  ~SpotMarketService() override;

  grpc::Status PlaceSpotOrder(grpc::ServerContext* context, const v1::PlaceSpotOrderRequest* request,
                              v1::PlaceSpotOrderResponse* response) override;
  grpc::Status CancelSpotOrder(grpc::ServerContext* context, const v1::CancelSpotOrderRequest* request,
                               v1::SpotOrder* response) override;
  grpc::Status GetSpotOrder(grpc::ServerContext* context, const v1::GetSpotOrderRequest* request,
                            v1::SpotOrder* response) override;
  grpc::Status ListSpotOrders(grpc::ServerContext* context, const v1::ListSpotOrdersRequest* request,
                              v1::ListSpotOrdersResponse* response) override;
  grpc::Status GetBook(grpc::ServerContext* context, const v1::GetBookRequest* request,
                       v1::SpotBook* response) override;
  grpc::Status ListTrades(grpc::ServerContext* context, const v1::ListSpotTradesRequest* request,
                          v1::ListSpotTradesResponse* response) override;
  grpc::Status StreamTrades(grpc::ServerContext* context, const v1::StreamTradesRequest* request,
                            grpc::ServerWriter<v1::PublicTrade>* writer) override;

 private:
  struct Book;
  struct Pending;
  class Batch;
  // A batch's books by commodity id, each with its requests in arrival order.
  using BatchBooks = std::map<std::string, std::pair<Book*, std::vector<Pending*>>>;
  static BatchBooks ByBook(const std::vector<Pending*>& batch);

  // The in-memory book of a standardised commodity, created on first use (its spot_books row is created by
  // the first order). INVALID_ARGUMENT naming commodity_id for an unknown or non-standardised commodity.
  absl::StatusOr<Book*> BookFor(const std::string& commodity_id);
  // Queues `p` for the next group commit; returns once `p` is answered (its status and results), UNAVAILABLE
  // when the service is shutting down.
  void Submit(Pending& p);
  // Commits `batch`: in one statement (CommitAlone) when it can, else in one transaction, or, if that
  // transaction fails, each request in its own.
  void CommitBatch(const std::vector<Pending*>& batch);
  // In one transaction, or, if that transaction fails, each request in its own.
  void CommitInTransaction(const std::vector<Pending*>& batch);
  // Writes `batch` as one statement that commits on its own, when every book it touches is valid in memory
  // and every order it cancels rests there; true when it committed (each request answered). False (nothing
  // answered, the books left to be rebuilt) when it does not apply or the statement failed.
  bool CommitAlone(const std::vector<Pending*>& batch);
  // One transaction for `batch`: each request's answer in it, and the transaction's status.
  absl::Status RunBatch(const std::vector<Pending*>& batch);

  pg::Pool& pool_;
  SpotOptions options_;
  prometheus::Counter* statement_batches_ = nullptr;
  prometheus::Counter* transaction_batches_ = nullptr;
  prometheus::Counter* statement_fallbacks_ = nullptr;
  prometheus::Histogram* batch_requests_ = nullptr;
  std::shared_ptr<prometheus::Registry> own_registry_;  // when options_.registry is null
  TradeSignal trade_signal_;
  std::mutex books_mu_;
  absl::flat_hash_map<std::string, std::unique_ptr<Book>> books_;
  // CommitAlone's own connection (committer thread only), opened on first use and after it broke.
  std::unique_ptr<pqxx::connection> alone_connection_;
  // The (tenant, idempotency key) of the latest placements committed (committer thread only).
  RecentKeys recent_keys_;
  // Requests waiting for the next commit (see Submit); emplaced last in the constructor: starts the committer.
  std::optional<GroupCommitQueue<Pending>> queue_;
};

}  // namespace ptd::trading

#endif  // PTD_SERVICES_TRADING_SPOT_SERVICE_H_
