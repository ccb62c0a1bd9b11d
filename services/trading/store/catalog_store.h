#ifndef PTD_SERVICES_TRADING_STORE_CATALOG_STORE_H_
#define PTD_SERVICES_TRADING_STORE_CATALOG_STORE_H_

#include <optional>
#include <string>
#include <vector>

#include <pqxx/pqxx>

#include "absl/status/statusor.h"
#include "libs/core/request.h"
#include "services/trading/domain/catalog.h"

// SQL for the catalogue and listings. Every method runs inside the caller's transaction; every listing query
// filters on the tenant, so another tenant's listing is simply not found.
namespace ptd::trading {

struct Page {
  int size = kDefaultPageSize;
  std::string after_id;  // keyset: rows strictly after this id in the listing's order ("" = first page)
};

struct CommodityFilter {
  std::string vertical;
  std::string query;
};

struct ListingFilter {
  std::string commodity_id;
  std::string vertical;
  std::optional<ListingStatus> status;
  std::string query;
};

class CommodityStore {
 public:
  // NOT_FOUND when absent.
  static absl::StatusOr<Commodity> Get(pqxx::work& tx, const std::string& commodity_id);
  // The commodity created earlier under `idempotency_key`, if any, and the hash of that request.
  static std::optional<std::pair<Commodity, std::string>> FindByIdempotencyKey(pqxx::work& tx,
                                                                               const std::string& key);
  // ALREADY_EXISTS when the code is taken.
  static absl::Status Insert(pqxx::work& tx, const Commodity& commodity, const std::string& idempotency_key,
                             const std::string& request_hash, const std::string& created_by);
  // Ordered by code; page.after_id is the last code of the previous page. One row more than asked tells
  // whether there is a next page.
  static std::vector<Commodity> List(pqxx::work& tx, const CommodityFilter& filter, const Page& page);
};

class ListingStore {
 public:
  static absl::StatusOr<Listing> Get(pqxx::work& tx, const std::string& tenant_id, const std::string& listing_id,
                                     bool for_update = false);
  static std::optional<std::pair<Listing, std::string>> FindByIdempotencyKey(pqxx::work& tx,
                                                                             const std::string& tenant_id,
                                                                             const std::string& key);
  static void Insert(pqxx::work& tx, const Listing& listing, const std::string& idempotency_key,
                     const std::string& request_hash, const std::string& created_by);
  static void Update(pqxx::work& tx, const Listing& listing);
  // The marketplace's public offers: active, in stock and inside their validity window, of every seller.
  static std::vector<Listing> ListOffers(pqxx::work& tx, const ListingFilter& filter, const Page& page);
  // Any tenant's listing, for placing an order on it (the caller checks IsOffered).
  static absl::StatusOr<Listing> GetOffer(pqxx::work& tx, const std::string& listing_id);
  // The listings among `listing_ids` that exist (in no particular order), as GetOffer reads one; for the
  // buy-now group commit, which reads them outside a transaction.
  static std::vector<Listing> GetOffers(pqxx::transaction_base& tx, const std::vector<std::string>& listing_ids);
  // Takes `quantity_milli` from the listing if that much is available, atomically; false if not.
  static bool TakeQuantity(pqxx::work& tx, const std::string& listing_id, int64_t quantity_milli);
  static void ReturnQuantity(pqxx::work& tx, const std::string& listing_id, int64_t quantity_milli);
  // Newest first; page.after_id is the last id of the previous page.
  static std::vector<Listing> List(pqxx::work& tx, const std::string& tenant_id, const ListingFilter& filter,
                                   const Page& page);
};

}  // namespace ptd::trading

#endif  // PTD_SERVICES_TRADING_STORE_CATALOG_STORE_H_
