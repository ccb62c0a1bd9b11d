#ifndef PTD_SERVICES_TRADING_BUY_NOW_H_
#define PTD_SERVICES_TRADING_BUY_NOW_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "libs/pg/pool.h"
#include "libs/server/caller.h"
#include "ptd/trading/v1/orders.pb.h"
#include "services/trading/domain/catalog.h"
#include "services/trading/group_commit.h"

namespace prometheus {
class Counter;
class Histogram;
class Registry;
}  // namespace prometheus

// Buy-now orders: the rules of buying from a listing, and their group commit.
namespace ptd::trading {

// Whether `caller` may buy `request`'s quantity from `listing` at `now`, the listing having `available_milli`
// left: FAILED_PRECONDITION (a seller's own listing, a listing not on offer, not enough left) or
// INVALID_ARGUMENT naming the field (another unit, less than the minimum order).
absl::Status CheckPurchase(const Listing& listing, const Caller& caller, const v1::PlaceOrderRequest& request,
                           absl::Time now, int64_t available_milli);

// The order a purchase makes, not yet placed: parties, goods, quantity, the tier price for the quantity, the
// total, delivery and payment terms. INVALID_ARGUMENT naming quantity.milli when the total does not fit.
absl::StatusOr<v1::Order> PurchaseOrder(const Listing& listing, const Caller& caller,
                                        const v1::PlaceOrderRequest& request);

struct BuyNowOptions {
  // Receives the group commit's metrics (nullable; must outlive the committer):
  //   ptd_trading_buy_now_batches_total                       batches written in one statement
  //   ptd_trading_buy_now_batch_requests                      requests per batch (histogram)
  //   ptd_trading_buy_now_transactions_total{reason}          requests sent to their own transaction instead:
  //                                                            "repeat" (a key seen recently or twice in a batch),
  //                                                            "refusal" (the batch would refuse it),
  //                                                            "fallback" (their batch's statement failed)
  prometheus::Registry* registry = nullptr;
  size_t max_batch = 64;
};

// Group commit of buy-now orders. Callers queue validated requests; one committer thread takes everything
// queued, reads the listings of the batch (one statement), applies each request to them in arrival order —
// the quantity each takes counts for the requests after it — and writes the accepted orders, their first
// transitions, their OrderPlaced events and the quantities taken in one statement that commits on its own
// (OrderStore::WritePlacedAlone): two round trips and one commit for the whole batch, where an order in its
// own transaction costs seven round trips and a commit. While a batch is written, the next one queues.
//
// The statement takes only listings still at the version the batch read, so a change by anyone else in
// between (another replica, a seller's update, a cancelled order's quantity returned) fails it, and nothing of
// it is written. The batch answers only the orders it placed. Every other request is answered "go through
// your own transaction" (Place returns nullopt), which decides it as an unbatched call would: the requests of
// a failed statement; a request the batch would refuse (its transaction's look-up of the key answers a retry
// of an earlier order, and gives the refusal); a key placed recently (most likely a retry) or twice in a
// batch. Such a transaction starts only after the batch's statement has finished, and its lock on the listing
// decides any race with later batches as before.
class BuyNowCommitter {
 public:
  BuyNowCommitter(pg::Pool& pool, BuyNowOptions options = {});
  ~BuyNowCommitter();  // answers what is queued, then stops the committer
  BuyNowCommitter(const BuyNowCommitter&) = delete;
  BuyNowCommitter& operator=(const BuyNowCommitter&) = delete;

  // Places a validated `request` of `caller` in the next batch and waits for its answer: the order as stored
  // (as OrderStore::Get would read it), or nullopt when the caller must place it in its own transaction.
  std::optional<absl::StatusOr<v1::Order>> Place(const Caller& caller, const v1::PlaceOrderRequest& request,
                                                 const std::string& request_hash);

 private:
  struct Pending;
  void CommitBatch(const std::vector<Pending*>& batch);
  // Reads the batch's listings, applies the requests to them and writes the orders they accept; throws
  // (nothing written, or for a broken connection, not known) when a statement fails.
  void WriteBatch(const std::vector<Pending*>& batch);

  pg::Pool& pool_;
  BuyNowOptions options_;
  std::shared_ptr<prometheus::Registry> own_registry_;  // when options_.registry is null
  prometheus::Counter* batches_ = nullptr;
  prometheus::Counter* repeats_ = nullptr;
  prometheus::Counter* refusals_ = nullptr;
  prometheus::Counter* fallbacks_ = nullptr;
  prometheus::Histogram* batch_requests_ = nullptr;

  // Committer thread only: its connection (opened on first use and after it broke), and the keys of the latest
  // orders it placed.
  std::unique_ptr<pqxx::connection> connection_;
  RecentKeys recent_keys_;
  std::optional<GroupCommitQueue<Pending>> queue_;  // emplaced last in the constructor: starts the committer
};

}  // namespace ptd::trading

#endif  // PTD_SERVICES_TRADING_BUY_NOW_H_
