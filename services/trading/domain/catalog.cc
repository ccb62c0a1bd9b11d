#include "services/trading/domain/catalog.h"

#include <algorithm>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "libs/core/request.h"

namespace ptd::trading {
namespace {

std::string S(std::string_view v) { return std::string(v); }

}  // namespace

const std::vector<Vertical>& Verticals() {
  static const std::vector<Vertical> verticals = {
      {"coatings_chemicals", {{"zh", "涂料化工"}, {"en", "Coatings & chemicals"}}},
      {"hygiene", {{"zh", "卫生用品"}, {"en", "Hygiene products"}}},
      {"glass", {{"zh", "玻璃"}, {"en", "Glass"}}},
      {"paper", {{"zh", "纸业"}, {"en", "Paper"}}},
      {"fertilizer", {{"zh", "化肥"}, {"en", "Fertilizer"}}},
      {"grain_oil", {{"zh", "粮油"}, {"en", "Grain & oil"}}},
      {"titanium", {{"zh", "钛白粉"}, {"en", "Titanium dioxide & titanium ore"}}},
      {"port_commodities", {{"zh", "港口大宗"}, {"en", "Port commodities (ethanol, PVC)"}}},
  };
  return verticals;
}

bool IsVertical(std::string_view code) {
  const auto& v = Verticals();
  return std::any_of(v.begin(), v.end(), [&](const Vertical& x) { return x.code == code; });
}

bool IsUnit(std::string_view code) {
  static const std::set<std::string, std::less<>> units = {"t",  "kg",  "g",    "m",     "m2",    "m3",    "l",
                                                           "roll", "sheet", "bag", "drum", "piece", "box", "pallet",
                                                           "case"};
  return units.find(code) != units.end();
}

namespace {

void ValidateText(const std::string& field, std::string_view text, bool required, FieldViolations& violations) {
  if (!IsCleanText(text)) {
    violations.Add(field, "must be valid UTF-8 without control characters");
  } else if (required && absl::StripAsciiWhitespace(std::string(text)).empty()) {
    violations.Add(field, "must not be empty");
  } else if (text.size() > kMaxTextBytes) {
    violations.Add(field, absl::StrCat("must be at most ", kMaxTextBytes, " bytes, got ", text.size()));
  }
}

bool IsLanguageTag(std::string_view lang) {
  // A pragmatic BCP 47 check: 2-3 letter primary tag, then subtags of 2-8 letters or digits.
  if (lang.size() < 2 || lang.size() > 35) return false;
  size_t start = 0;
  bool first = true;
  while (start <= lang.size()) {
    size_t dash = lang.find('-', start);
    std::string_view part = lang.substr(start, dash == std::string_view::npos ? std::string_view::npos : dash - start);
    if (first ? (part.size() < 2 || part.size() > 3) : (part.size() < 2 || part.size() > 8)) return false;
    for (char c : part) {
      if (!absl::ascii_isalnum(c) || (first && !absl::ascii_isalpha(c))) return false;
    }
    if (dash == std::string_view::npos) break;
    start = dash + 1;
    first = false;
  }
  return true;
}

void ValidateMoney(const std::string& field, const Money& money, FieldViolations& violations) {
  if (!IsCurrencyCode(money.currency)) {
    violations.Add(field + ".currency", absl::StrCat("must be an ISO 4217 code like CNY, got '", money.currency, "'"));
  }
  if (money.amount_minor <= 0) {
    violations.Add(field + ".amount_minor", absl::StrCat("must be positive, got ", money.amount_minor));
  }
}

void ValidateQuantity(const std::string& field, const Quantity& q, bool allow_zero, FieldViolations& violations) {
  if (q.milli < 0 || (!allow_zero && q.milli == 0)) {
    violations.Add(field + ".milli", absl::StrCat(allow_zero ? "must not be negative" : "must be positive", ", got ",
                                                  q.milli));
  }
  if (!IsUnit(q.unit)) violations.Add(field + ".unit", absl::StrCat("unknown unit '", q.unit, "'"));
}

}  // namespace

void ValidateNames(std::string_view field, const std::vector<LocalizedText>& names, FieldViolations& violations) {
  if (names.empty()) {
    violations.Add(S(field), "must have at least one language");
    return;
  }
  if (names.size() > kMaxNames) {
    violations.Add(S(field), absl::StrCat("must have at most ", kMaxNames, " languages, got ", names.size()));
    return;
  }
  std::set<std::string> seen;
  for (size_t i = 0; i < names.size(); ++i) {
    std::string at = absl::StrCat(S(field), "[", i, "]");
    if (!IsLanguageTag(names[i].lang)) {
      violations.Add(at + ".lang", absl::StrCat("must be a language tag like zh or en, got '",
                                                IsCleanText(names[i].lang) ? names[i].lang : "?", "'"));
    } else if (!seen.insert(absl::AsciiStrToLower(names[i].lang)).second) {
      violations.Add(at + ".lang", absl::StrCat("language '", names[i].lang, "' appears twice"));
    }
    ValidateText(at + ".text", names[i].text, /*required=*/true, violations);
  }
}

void ValidateCommodity(const Commodity& c, std::string_view prefix, FieldViolations& violations) {
  std::string p = prefix.empty() ? "" : absl::StrCat(S(prefix), ".");
  if (!IsVertical(c.vertical)) {
    violations.Add(p + "vertical", absl::StrCat("unknown vertical '", IsCleanText(c.vertical) ? c.vertical : "?", "'"));
  }
  if (c.code.empty() || c.code.size() > 64 ||
      !std::all_of(c.code.begin(), c.code.end(),
                   [](char ch) { return absl::ascii_isalnum(ch) || ch == '-' || ch == '_' || ch == '.'; })) {
    violations.Add(p + "code", "must be 1-64 characters of letters, digits, '-', '_' or '.'");
  }
  ValidateNames(p + "name", c.name, violations);
  if (c.specs.size() > kMaxSpecs) {
    violations.Add(p + "specs", absl::StrCat("must have at most ", kMaxSpecs, " attributes"));
  }
  for (size_t i = 0; i < c.specs.size() && i < kMaxSpecs; ++i) {
    std::string at = absl::StrCat(p, "specs[", i, "]");
    ValidateText(at + ".name", c.specs[i].name, true, violations);
    ValidateText(at + ".value", c.specs[i].value, true, violations);
    ValidateText(at + ".unit", c.specs[i].unit, false, violations);
  }
  if (!IsUnit(c.unit)) violations.Add(p + "unit", absl::StrCat("unknown unit '", IsCleanText(c.unit) ? c.unit : "?", "'"));
  ValidateText(p + "packaging", c.packaging, false, violations);
}

void ValidateNewListing(const NewListing& l, FieldViolations& violations) {
  CheckIdempotencyKey(l.idempotency_key, violations);
  CheckId("commodity_id", l.commodity_id, violations);
  ValidateNames("title", l.title, violations);
  ValidateMoney("unit_price", l.unit_price, violations);
  ValidateQuantity("available", l.available, /*allow_zero=*/false, violations);
  if (l.min_order.has_value()) {
    ValidateQuantity("min_order", *l.min_order, /*allow_zero=*/false, violations);
    if (l.min_order->unit != l.available.unit) {
      violations.Add("min_order.unit", "must be the unit of available");
    } else if (l.min_order->milli > l.available.milli) {
      violations.Add("min_order.milli", "must not exceed available");
    }
  }
  ValidateTerms(l.terms, l.unit_price, violations);
}

void ValidateTerms(const ListingTerms& terms, const Money& base_price, FieldViolations& violations) {
  int64_t last_quantity = 0;
  int64_t last_price = base_price.amount_minor;
  for (size_t i = 0; i < terms.price_tiers.size(); ++i) {
    const PriceTierRule& tier = terms.price_tiers[i];
    std::string at = absl::StrCat("price_tiers[", i, "]");
    if (tier.min_quantity_milli <= last_quantity) {
      violations.Add(at + ".min_quantity.milli", "must be positive and above the previous tier's");
    }
    if (tier.unit_price.currency != base_price.currency) {
      violations.Add(at + ".unit_price.currency", "must be the currency of unit_price");
    } else if (tier.unit_price.amount_minor <= 0 || tier.unit_price.amount_minor >= last_price) {
      violations.Add(at + ".unit_price.amount_minor", "must be positive and below the previous price");
    }
    last_quantity = tier.min_quantity_milli;
    last_price = tier.unit_price.amount_minor;
  }
  if (terms.price_tiers.size() > 16) violations.Add("price_tiers", "must have at most 16 tiers");
  if (terms.valid_from && terms.valid_until && *terms.valid_until <= *terms.valid_from) {
    violations.Add("valid_until", "must be after valid_from");
  }
}

bool IsOffered(const Listing& listing, absl::Time now) {
  if (listing.status != ListingStatus::kActive) return false;
  if (listing.terms.valid_from && now < *listing.terms.valid_from) return false;
  if (listing.terms.valid_until && now >= *listing.terms.valid_until) return false;
  return true;
}

void ValidateListingChange(const ListingChange& c, FieldViolations& violations) {
  if (c.unit_price.has_value()) ValidateMoney("unit_price", *c.unit_price, violations);
  if (c.available.has_value()) ValidateQuantity("available", *c.available, /*allow_zero=*/true, violations);
  if (!c.title.empty()) ValidateNames("title", c.title, violations);
  if (c.expected_version < 0) violations.Add("expected_version", "must not be negative");
}

absl::Status ApplyChange(const ListingChange& change, Listing& listing) {
  if (change.expected_version != 0 && change.expected_version != listing.version) {
    return absl::AbortedError(absl::StrCat("listing is at version ", listing.version, ", not ",
                                           change.expected_version, ": read it again"));
  }
  if (listing.status == ListingStatus::kClosed) {
    return absl::FailedPreconditionError("a closed listing cannot change");
  }
  if (change.available.has_value() && change.available->unit != listing.available.unit) {
    return absl::FailedPreconditionError(
        absl::StrCat("available.unit must stay '", listing.available.unit, "', got '", change.available->unit, "'"));
  }
  if (change.unit_price.has_value() && change.unit_price->currency != listing.unit_price.currency) {
    return absl::FailedPreconditionError(absl::StrCat("unit_price.currency must stay ", listing.unit_price.currency));
  }
  if (change.unit_price.has_value()) listing.unit_price = *change.unit_price;
  if (change.available.has_value()) listing.available = *change.available;
  if (change.status.has_value()) listing.status = *change.status;
  if (!change.title.empty()) listing.title = change.title;
  ++listing.version;
  return absl::OkStatus();
}

std::string SearchText(const std::vector<LocalizedText>& names, std::string_view code) {
  std::string out(code);
  for (const LocalizedText& n : names) absl::StrAppend(&out, out.empty() ? "" : " ", n.text);
  return out;
}

}  // namespace ptd::trading
