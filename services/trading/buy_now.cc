#include "services/trading/buy_now.h"

#include <prometheus/counter.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "libs/core/log.h"
#include "libs/outbox/outbox.h"
#include "services/trading/domain/orders.h"
#include "services/trading/mapping.h"
#include "services/trading/order_service.h"
#include "services/trading/store/catalog_store.h"
#include "services/trading/store/order_store.h"

namespace ptd::trading {
namespace {

// How many recently placed keys the committer remembers (see BuyNowCommitter).
constexpr size_t kRecentKeys = 100'000;

}  // namespace

absl::Status CheckPurchase(const Listing& listing, const Caller& caller, const v1::PlaceOrderRequest& request,
                           absl::Time now, int64_t available_milli) {
  if (listing.tenant_id == caller.tenant_id) {
    return absl::FailedPreconditionError("a seller cannot buy from its own listing");
  }
  if (!IsOffered(listing, now)) {
    return absl::FailedPreconditionError("the listing is not on offer (paused, closed or outside its validity)");
  }
  const int64_t qty = request.quantity().milli();
  if (request.quantity().unit() != listing.available.unit) {
    return InvalidField("quantity.unit", absl::StrCat("must be the listing's unit '", listing.available.unit, "'"));
  }
  if (qty < listing.min_order.milli) {
    return InvalidField("quantity.milli", absl::StrCat("must be at least the listing's minimum order ",
                                                       FormatQuantity(listing.min_order)));
  }
  if (qty > available_milli) {
    return absl::FailedPreconditionError(absl::StrCat("not enough available: the listing has less than ",
                                                      FormatQuantity({qty, listing.available.unit})));
  }
  return absl::OkStatus();
}

absl::StatusOr<v1::Order> PurchaseOrder(const Listing& listing, const Caller& caller,
                                        const v1::PlaceOrderRequest& request) {
  const int64_t qty = request.quantity().milli();
  Money unit_price = TierPrice(listing.unit_price, listing.terms.price_tiers, qty);
  absl::StatusOr<Money> total = PriceOf(unit_price, qty);
  if (!total.ok()) return InvalidField("quantity.milli", "too large: the total does not fit");
  v1::Order order;
  order.set_buyer_tenant_id(caller.tenant_id);
  order.set_seller_tenant_id(listing.tenant_id);
  order.set_listing_id(listing.listing_id);
  order.set_commodity_id(listing.commodity_id);
  ToProto(listing.title, order.mutable_goods());
  *order.mutable_quantity() = request.quantity();
  ToProto(unit_price, order.mutable_unit_price());
  ToProto(*total, order.mutable_total());
  FromJson(listing.terms.delivery_json, order.mutable_delivery());
  FromJson(listing.terms.payment_json, order.mutable_payment());
  return order;
}

struct BuyNowCommitter::Pending {
  const Caller& caller;
  const v1::PlaceOrderRequest& request;
  const std::string& request_hash;
  std::string request_id;
  // Written by the committer thread; read by the caller once its batch was committed.
  std::optional<absl::StatusOr<v1::Order>> answer;
};

BuyNowCommitter::BuyNowCommitter(pg::Pool& pool, BuyNowOptions options)
    : pool_(pool), options_(options), recent_keys_(kRecentKeys) {
  prometheus::Registry* registry = options_.registry;
  if (registry == nullptr) {
    own_registry_ = std::make_shared<prometheus::Registry>();
    registry = own_registry_.get();
  }
  batches_ = &prometheus::BuildCounter()
                  .Name("ptd_trading_buy_now_batches_total")
                  .Help("Buy-now group-commit batches written in one statement")
                  .Register(*registry)
                  .Add({});
  auto& transactions = prometheus::BuildCounter()
                           .Name("ptd_trading_buy_now_transactions_total")
                           .Help("Buy-now orders sent to a transaction of their own instead of the group commit")
                           .Register(*registry);
  repeats_ = &transactions.Add({{"reason", "repeat"}});
  refusals_ = &transactions.Add({{"reason", "refusal"}});
  fallbacks_ = &transactions.Add({{"reason", "fallback"}});
  batch_requests_ = &prometheus::BuildHistogram()
                         .Name("ptd_trading_buy_now_batch_requests")
                         .Help("Buy-now orders per group-commit batch")
                         .Register(*registry)
                         .Add({}, prometheus::Histogram::BucketBoundaries{1, 2, 4, 8, 16, 32, 64, 128});
  queue_.emplace(options_.max_batch, [this](const std::vector<Pending*>& batch) { CommitBatch(batch); });
}

BuyNowCommitter::~BuyNowCommitter() { queue_->Stop(); }

std::optional<absl::StatusOr<v1::Order>> BuyNowCommitter::Place(const Caller& caller,
                                                                const v1::PlaceOrderRequest& request,
                                                                const std::string& request_hash) {
  Pending p{.caller = caller, .request = request, .request_hash = request_hash, .request_id = log::CurrentRequestId()};
  if (!queue_->Submit(p)) return std::nullopt;  // shutting down: its own transaction
  return std::move(p.answer);
}

void BuyNowCommitter::CommitBatch(const std::vector<Pending*>& batch) {
  batch_requests_->Observe(static_cast<double>(batch.size()));
  // A key placed recently, or twice in this batch, is most likely a retry: the transaction's look-up answers it.
  std::vector<Pending*> fresh;
  absl::flat_hash_set<std::pair<std::string, std::string>> keys;
  for (Pending* p : batch) {
    std::pair<std::string, std::string> key(p->caller.tenant_id, p->request.idempotency_key());
    if (recent_keys_.Contains(key.first, key.second) || !keys.insert(std::move(key)).second) {
      repeats_->Increment();
      continue;  // answer stays nullopt: its own transaction
    }
    fresh.push_back(p);
  }
  if (fresh.empty()) return;
  try {
    WriteBatch(fresh);
    batches_->Increment();
  } catch (const std::exception& e) {
    if (dynamic_cast<const pqxx::broken_connection*>(&e) != nullptr) connection_.reset();
    // Nothing was written, or (a broken connection) it is unknown whether it was: each request goes through
    // its own transaction, whose look-up of the key finds the order if it was written after all.
    for (Pending* p : fresh) p->answer.reset();
    fallbacks_->Increment(static_cast<double>(fresh.size()));
    log::Warn("buy-now batch not written in one statement, placing each order in a transaction",
              {{"requests", fresh.size()}, {"status", pg::ToStatus(e).ToString()}});
    return;
  }
  for (const Pending* p : fresh) {
    if (!p->answer.has_value() || !p->answer->ok()) continue;
    recent_keys_.Add(p->caller.tenant_id, p->request.idempotency_key());
  }
}

void BuyNowCommitter::WriteBatch(const std::vector<Pending*>& batch) {
  if (connection_ == nullptr) {
    absl::StatusOr<std::unique_ptr<pqxx::connection>> opened = pool_.OpenConnection();
    if (!opened.ok()) throw pqxx::broken_connection(std::string(opened.status().message()));
    // The statements' plans for any number of rows, planned once (planning anew costs more than running them).
    pqxx::nontransaction(**opened).exec("SET plan_cache_mode = force_generic_plan");
    connection_ = *std::move(opened);
  }
  pqxx::nontransaction tx(*connection_);

  struct Slot {
    Listing listing;
    int64_t left = 0;   // available after the requests decided so far
    int64_t taken = 0;  // by the accepted ones
  };
  absl::flat_hash_map<std::string, Slot> slots;
  std::vector<std::string> ids;
  for (const Pending* p : batch) {
    if (slots.try_emplace(p->request.listing_id()).second) ids.push_back(p->request.listing_id());
  }
  slots.clear();
  for (Listing& l : ListingStore::GetOffers(tx, ids)) {
    const int64_t available = l.available.milli;
    std::string id = l.listing_id;
    slots.emplace(std::move(id), Slot{.listing = std::move(l), .left = available});
  }

  // The database keeps microseconds: the answers carry the times as a later read returns them.
  const absl::Time now = absl::FromUnixMicros(absl::ToUnixMicros(absl::Now()));
  std::vector<Pending*> placed;
  std::vector<PlacedOrderRow> rows;
  std::vector<outbox::Event> events;
  for (Pending* p : batch) {
    // A refusal goes through a transaction of its own, which decides it as before: its look-up of the key
    // answers a retry of an order placed earlier (not the state of the listing now), and the refusal's
    // message and code are the transaction's.
    auto it = slots.find(p->request.listing_id());
    if (it == slots.end()) {
      refusals_->Increment();
      continue;
    }
    Slot& slot = it->second;
    if (!CheckPurchase(slot.listing, p->caller, p->request, now, slot.left).ok()) {
      refusals_->Increment();
      continue;
    }
    absl::StatusOr<v1::Order> order = PurchaseOrder(slot.listing, p->caller, p->request);
    if (!order.ok()) {
      refusals_->Increment();
      continue;
    }
    PlacedOrderRow& row = rows.emplace_back();
    row.order = NewPlacedOrder(*std::move(order), p->caller, now);
    row.idempotency_key = p->request.idempotency_key();
    row.request_hash = p->request_hash;
    events.push_back(OrderPlacedEvent(row.order, p->request_id));
    slot.left -= p->request.quantity().milli();
    slot.taken += p->request.quantity().milli();
    placed.push_back(p);
  }
  if (rows.empty()) return;  // every request goes to its own transaction

  std::vector<ListingTake> takes;
  for (const std::string& id : ids) {
    auto it = slots.find(id);
    if (it == slots.end() || it->second.taken == 0) continue;
    takes.push_back({.listing_id = id, .version = it->second.listing.version, .quantity_milli = it->second.taken});
  }
  // The relay of this process is woken after the commit rather than by a NOTIFY, which would hold a lock
  // that makes every writer's commit wait for this one's (libs/outbox/outbox.h).
  const bool notify = !outbox::LocalRelayRunning(pool_);
  OrderStore::WritePlacedAlone(tx, takes, rows, events, notify);
  if (!notify) outbox::WakeLocalRelays(pool_);
  for (size_t i = 0; i < placed.size(); ++i) placed[i]->answer = std::move(rows[i].order);
}

}  // namespace ptd::trading
