#ifndef PTD_SERVICES_TRADING_STORE_ORDER_STORE_H_
#define PTD_SERVICES_TRADING_STORE_ORDER_STORE_H_

#include <optional>
#include <pqxx/pqxx>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "libs/outbox/outbox.h"
#include "ptd/trading/v1/orders.pb.h"
#include "services/trading/store/catalog_store.h"

// SQL for orders, their audit trail, RFQs and quotes. Rows map straight to the API's messages: these are
// documents shared by two tenants, and the message is their canonical form. An order is found only by its
// buyer or its seller; an RFQ by its buyer, or by anyone while it is open; a quote by its RFQ's buyer or its
// seller.
namespace ptd::trading {

// The quantity a batch of buy-now orders takes from one listing, only if the listing is still at `version`.
struct ListingTake {
  std::string listing_id;
  int64_t version = 0;
  int64_t quantity_milli = 0;
};

// A buy-now order of a batch as placed (its first transition in its history), with its request's key and hash.
struct PlacedOrderRow {
  v1::Order order;
  std::string idempotency_key;
  std::string request_hash;
};

class OrderStore {
 public:
  // Writes a batch of buy-now orders as one statement that commits on its own: the quantities taken from their
  // listings (row locks in listing id order), the orders, their first transitions and `events`. Throws, and
  // nothing is written, when a listing is no longer at the version the batch read or has less than it takes
  // (a check fails the statement), or when the database refuses a row (a repeated idempotency key).
  // `notify`: whether the statement wakes the relay with a NOTIFY; when false, the caller wakes it after the
  // commit (outbox::WakeLocalRelays).
  static void WritePlacedAlone(pqxx::nontransaction& tx, const std::vector<ListingTake>& takes,
                               const std::vector<PlacedOrderRow>& orders, const std::vector<outbox::Event>& events,
                               bool notify);
  static absl::StatusOr<v1::Order> Get(pqxx::work& tx, const std::string& tenant_id, const std::string& order_id,
                                       bool for_update = false);
  // The order a buyer created under `idempotency_key`, with the hash of that request.
  static std::optional<std::pair<std::string, std::string>> FindByIdempotencyKey(pqxx::work& tx,
                                                                                 const std::string& buyer_tenant_id,
                                                                                 const std::string& key);
  // The order with its first transition, in one statement; returns it as stored, as Get would.
  static v1::Order Insert(pqxx::work& tx, const v1::Order& order, const v1::OrderTransition& first,
                          const std::string& idempotency_key, const std::string& request_hash);
  // State, version, payment reference, contract and update time.
  static void Update(pqxx::work& tx, const v1::Order& order);
  static void AddTransition(pqxx::work& tx, const std::string& order_id, const v1::OrderTransition& transition);
  static std::vector<v1::Order> List(pqxx::work& tx, const std::string& tenant_id, v1::ListOrdersRequest::Role role,
                                     v1::OrderState state, const Page& page);
};

class RfqStore {
 public:
  static absl::StatusOr<v1::Rfq> Get(pqxx::work& tx, const std::string& tenant_id, const std::string& rfq_id,
                                     bool for_update = false);
  static std::optional<std::pair<std::string, std::string>> FindByIdempotencyKey(pqxx::work& tx,
                                                                                 const std::string& buyer_tenant_id,
                                                                                 const std::string& key);
  static void Insert(pqxx::work& tx, const v1::Rfq& rfq, const std::string& idempotency_key,
                     const std::string& request_hash);
  static void Award(pqxx::work& tx, const std::string& rfq_id, const std::string& quote_id);
  // The caller's own RFQs (mine) or every open one still taking quotes; newest first.
  static std::vector<v1::Rfq> List(pqxx::work& tx, const std::string& tenant_id, bool mine,
                                   const std::string& commodity_id, const Page& page);
};

class QuoteStore {
 public:
  static std::optional<std::pair<std::string, std::string>> FindByIdempotencyKey(pqxx::work& tx,
                                                                                 const std::string& seller_tenant_id,
                                                                                 const std::string& key);
  static absl::StatusOr<v1::Quote> Get(pqxx::work& tx, const std::string& quote_id);
  static void Insert(pqxx::work& tx, const v1::Quote& quote, const std::string& idempotency_key,
                     const std::string& request_hash);
  static void SetState(pqxx::work& tx, const std::string& quote_id, v1::QuoteState state);
  // All quotes of an RFQ, or only one seller's when `seller_tenant_id` is set.
  static std::vector<v1::Quote> ListForRfq(pqxx::work& tx, const std::string& rfq_id,
                                           const std::string& seller_tenant_id);
};

}  // namespace ptd::trading

#endif  // PTD_SERVICES_TRADING_STORE_ORDER_STORE_H_
