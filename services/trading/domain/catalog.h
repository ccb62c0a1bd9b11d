#ifndef PTD_SERVICES_TRADING_DOMAIN_CATALOG_H_
#define PTD_SERVICES_TRADING_DOMAIN_CATALOG_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "libs/core/money.h"
#include "libs/core/status.h"
#include "services/trading/domain/orders.h"

// The commodity catalogue and sellers' listings: plain data and the rules that keep it valid. No I/O.
namespace ptd::trading {

struct LocalizedText {
  std::string lang;  // BCP 47: "zh", "en", "ar", "ko", "hi", "ja", "zh-Hant", ...
  std::string text;
  bool operator==(const LocalizedText&) const = default;
};

struct SpecAttribute {
  std::string name;
  std::string value;
  std::string unit;
  bool operator==(const SpecAttribute&) const = default;
};

struct Vertical {
  std::string code;
  std::vector<LocalizedText> name;
};

// The verticals the platform trades in (DOMAIN.md): six industries plus titanium and port commodities.
const std::vector<Vertical>& Verticals();
bool IsVertical(std::string_view code);

// Units a commodity may be traded in: "t", "kg", "g", "m", "m2", "m3", "l", "roll", "sheet", "bag", "drum",
// "piece", "box", "pallet", "case".
bool IsUnit(std::string_view code);

struct Commodity {
  std::string commodity_id;
  std::string vertical;
  std::string code;
  std::vector<LocalizedText> name;
  std::vector<SpecAttribute> specs;
  std::string unit;
  std::string packaging;
  bool standardised = false;
  absl::Time create_time;
};

enum class ListingStatus { kActive = 1, kPaused = 2, kClosed = 3 };
enum class SellerKind { kThirdParty = 1, kSelfOperated = 2 };

// The commercial terms of a listing. Delivery and payment terms are kept as the contract's own text
// (Protobuf JSON of ptd.trading.v1.DeliveryTerms / PaymentTerms): the domain only checks them.
struct ListingTerms {
  SellerKind seller_kind = SellerKind::kThirdParty;
  std::vector<PriceTierRule> price_tiers;
  std::optional<absl::Time> valid_from;
  std::optional<absl::Time> valid_until;
  std::string delivery_json = "{}";
  std::string payment_json = "{}";
};

struct Listing {
  std::string listing_id;
  std::string tenant_id;
  std::string commodity_id;
  std::string vertical;
  std::vector<LocalizedText> title;
  Money unit_price;
  Quantity available;
  Quantity min_order;
  ListingStatus status = ListingStatus::kActive;
  int64_t version = 1;
  absl::Time create_time;
  absl::Time update_time;
  ListingTerms terms;
};

// What a seller asks for; ids, vertical and times are assigned by the service.
struct NewListing {
  std::string idempotency_key;
  std::string commodity_id;
  std::vector<LocalizedText> title;
  Money unit_price;
  Quantity available;
  std::optional<Quantity> min_order;
  ListingTerms terms;
};

struct ListingChange {
  std::optional<Money> unit_price;
  std::optional<Quantity> available;
  std::optional<ListingStatus> status;
  std::vector<LocalizedText> title;  // empty = unchanged
  int64_t expected_version = 0;      // 0 = any
};

// Limits that keep one request from becoming a denial of service.
inline constexpr size_t kMaxTextBytes = 512;
inline constexpr size_t kMaxNames = 16;
inline constexpr size_t kMaxSpecs = 64;

// Each Validate* adds one violation per bad field to `violations`, named by its request path
// (e.g. "unit_price.amount_minor", "title[1].text").
void ValidateNames(std::string_view field, const std::vector<LocalizedText>& names, FieldViolations& violations);
void ValidateCommodity(const Commodity& commodity, std::string_view prefix, FieldViolations& violations);
void ValidateNewListing(const NewListing& listing, FieldViolations& violations);
// Tiers ascend in quantity and descend in price below the base price, in its currency; the window is not empty.
void ValidateTerms(const ListingTerms& terms, const Money& base_price, FieldViolations& violations);
// A listing buyers can order from at `now`: active and inside its validity window.
bool IsOffered(const Listing& listing, absl::Time now);
void ValidateListingChange(const ListingChange& change, FieldViolations& violations);

// Applies a change to a listing (after validation). FAILED_PRECONDITION for a closed listing or a unit change;
// ABORTED when expected_version does not match.
absl::Status ApplyChange(const ListingChange& change, Listing& listing);

// The text a search matches against: every name in every language and the code, lower-cased.
std::string SearchText(const std::vector<LocalizedText>& names, std::string_view code = "");

}  // namespace ptd::trading

#endif  // PTD_SERVICES_TRADING_DOMAIN_CATALOG_H_
