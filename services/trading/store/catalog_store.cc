#include "services/trading/store/catalog_store.h"

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "libs/pg/array.h"

namespace ptd::trading {
namespace {

std::string NamesJson(const std::vector<LocalizedText>& names) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& n : names) out.push_back({{"lang", n.lang}, {"text", n.text}});
  return out.dump();
}

std::vector<LocalizedText> NamesFromJson(const std::string& text) {
  std::vector<LocalizedText> out;
  for (const auto& n : nlohmann::json::parse(text)) out.push_back({n.at("lang"), n.at("text")});
  return out;
}

std::string SpecsJson(const std::vector<SpecAttribute>& specs) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& s : specs) out.push_back({{"name", s.name}, {"value", s.value}, {"unit", s.unit}});
  return out.dump();
}

std::vector<SpecAttribute> SpecsFromJson(const std::string& text) {
  std::vector<SpecAttribute> out;
  for (const auto& s : nlohmann::json::parse(text)) out.push_back({s.at("name"), s.at("value"), s.at("unit")});
  return out;
}

// A LIKE pattern matching `query` anywhere, with LIKE's own characters taken literally.
std::string ContainsPattern(const std::string& query) {
  std::string out = "%";
  for (char c : query) {
    if (c == '%' || c == '_' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  out.push_back('%');
  return out;
}

absl::Time TimeFromMicros(const pqxx::field& f) { return absl::FromUnixMicros(f.as<int64_t>()); }

constexpr char kCommodityColumns[] =
    "commodity_id, vertical, code, names::text, specs::text, unit, packaging, standardised, "
    "(extract(epoch from created_at) * 1000000)::bigint";

Commodity CommodityFromRow(const pqxx::row& r) {
  Commodity c;
  c.commodity_id = r[0].as<std::string>();
  c.vertical = r[1].as<std::string>();
  c.code = r[2].as<std::string>();
  c.name = NamesFromJson(r[3].as<std::string>());
  c.specs = SpecsFromJson(r[4].as<std::string>());
  c.unit = r[5].as<std::string>();
  c.packaging = r[6].as<std::string>();
  c.standardised = r[7].as<bool>();
  c.create_time = TimeFromMicros(r[8]);
  return c;
}

constexpr char kListingColumns[] =
    "listing_id, tenant_id, commodity_id, vertical, titles::text, currency, unit_price_minor, unit, available_milli, "
    "min_order_milli, status, version, (extract(epoch from created_at) * 1000000)::bigint, "
    "(extract(epoch from updated_at) * 1000000)::bigint, seller_kind, price_tiers::text, "
    "(extract(epoch from valid_from) * 1000000)::bigint, (extract(epoch from valid_until) * 1000000)::bigint, "
    "delivery::text, payment::text";
constexpr int kListingColumnCount = 20;

std::string TiersJson(const std::vector<PriceTierRule>& tiers) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& t : tiers) {
    out.push_back({{"min_milli", t.min_quantity_milli}, {"currency", t.unit_price.currency},
                   {"amount_minor", t.unit_price.amount_minor}});
  }
  return out.dump();
}

std::vector<PriceTierRule> TiersFromJson(const std::string& text) {
  std::vector<PriceTierRule> out;
  for (const auto& t : nlohmann::json::parse(text)) {
    out.push_back({t.at("min_milli").get<int64_t>(), {t.at("currency"), t.at("amount_minor").get<int64_t>()}});
  }
  return out;
}

std::optional<absl::Time> OptionalTime(const pqxx::field& f) {
  if (f.is_null()) return std::nullopt;
  return absl::FromUnixMicros(f.as<int64_t>());
}

// Microseconds since the epoch, or NULL.
std::optional<int64_t> OptionalMicros(const std::optional<absl::Time>& t) {
  if (!t) return std::nullopt;
  return absl::ToUnixMicros(*t);
}

Listing ListingFromRow(const pqxx::row& r) {
  Listing l;
  l.listing_id = r[0].as<std::string>();
  l.tenant_id = r[1].as<std::string>();
  l.commodity_id = r[2].as<std::string>();
  l.vertical = r[3].as<std::string>();
  l.title = NamesFromJson(r[4].as<std::string>());
  l.unit_price = {r[5].as<std::string>(), r[6].as<int64_t>()};
  std::string unit = r[7].as<std::string>();
  l.available = {r[8].as<int64_t>(), unit};
  l.min_order = {r[9].as<int64_t>(), unit};
  l.status = static_cast<ListingStatus>(r[10].as<int>());
  l.version = r[11].as<int64_t>();
  l.create_time = TimeFromMicros(r[12]);
  l.update_time = TimeFromMicros(r[13]);
  l.terms.seller_kind = static_cast<SellerKind>(r[14].as<int>());
  l.terms.price_tiers = TiersFromJson(r[15].as<std::string>());
  l.terms.valid_from = OptionalTime(r[16]);
  l.terms.valid_until = OptionalTime(r[17]);
  l.terms.delivery_json = r[18].as<std::string>();
  l.terms.payment_json = r[19].as<std::string>();
  return l;
}

}  // namespace

// ---- commodities ----

absl::StatusOr<Commodity> CommodityStore::Get(pqxx::work& tx, const std::string& commodity_id) {
  static const std::string kSql = absl::StrCat("SELECT ", kCommodityColumns, " FROM commodities WHERE commodity_id = $1");
  pqxx::result r = tx.exec_params(kSql, commodity_id);
  if (r.empty()) return absl::NotFoundError(absl::StrCat("commodity ", commodity_id, " not found"));
  return CommodityFromRow(r[0]);
}

std::optional<std::pair<Commodity, std::string>> CommodityStore::FindByIdempotencyKey(pqxx::work& tx,
                                                                                      const std::string& key) {
  static const std::string kSql =
      absl::StrCat("SELECT ", kCommodityColumns, ", request_hash FROM commodities WHERE idempotency_key = $1");
  pqxx::result r = tx.exec_params(kSql, key);
  if (r.empty()) return std::nullopt;
  return std::make_pair(CommodityFromRow(r[0]), r[0][9].as<std::string>());
}

absl::Status CommodityStore::Insert(pqxx::work& tx, const Commodity& c, const std::string& idempotency_key,
                                    const std::string& request_hash, const std::string& created_by) {
  static constexpr char kTaken[] = "SELECT 1 FROM commodities WHERE code = $1";
  if (!tx.exec_params(kTaken, c.code).empty()) {
    return absl::AlreadyExistsError(absl::StrCat("a commodity with code '", c.code, "' exists"));
  }
  static constexpr char kSql[] =
      "INSERT INTO commodities (commodity_id, vertical, code, names, specs, unit, packaging, standardised, "
      "search_text, idempotency_key, request_hash, created_by, created_at) "
      "VALUES ($1, $2, $3, $4::jsonb, $5::jsonb, $6, $7, $8, $9, $10, $11, $12, to_timestamp($13::double precision / 1e6))";
  tx.exec_params(kSql, c.commodity_id, c.vertical, c.code, NamesJson(c.name), SpecsJson(c.specs), c.unit, c.packaging,
                 c.standardised, SearchText(c.name, c.code), idempotency_key, request_hash, created_by,
                 absl::ToUnixMicros(c.create_time));
  return absl::OkStatus();
}

std::vector<Commodity> CommodityStore::List(pqxx::work& tx, const CommodityFilter& filter, const Page& page) {
  static const std::string kSql = absl::StrCat(
      "SELECT ", kCommodityColumns, " FROM commodities WHERE ($1 = '' OR vertical = $1) ",
      "AND ($2 = '' OR search_text ILIKE $3) AND code > $4 ORDER BY code LIMIT $5");
  pqxx::result r = tx.exec_params(kSql, filter.vertical, filter.query, ContainsPattern(filter.query), page.after_id,
                                  page.size + 1);
  std::vector<Commodity> out;
  for (const auto& row : r) out.push_back(CommodityFromRow(row));
  return out;
}

// ---- listings ----

absl::StatusOr<Listing> ListingStore::Get(pqxx::work& tx, const std::string& tenant_id, const std::string& listing_id,
                                          bool for_update) {
  static const std::string kSql =
      absl::StrCat("SELECT ", kListingColumns, " FROM listings WHERE tenant_id = $1 AND listing_id = $2");
  static const std::string kSqlForUpdate = kSql + " FOR UPDATE";
  pqxx::result r = tx.exec_params(for_update ? kSqlForUpdate : kSql, tenant_id, listing_id);
  if (r.empty()) return absl::NotFoundError(absl::StrCat("listing ", listing_id, " not found"));
  return ListingFromRow(r[0]);
}

std::optional<std::pair<Listing, std::string>> ListingStore::FindByIdempotencyKey(pqxx::work& tx,
                                                                                  const std::string& tenant_id,
                                                                                  const std::string& key) {
  static const std::string kSql = absl::StrCat("SELECT ", kListingColumns,
                                               ", request_hash FROM listings WHERE tenant_id = $1 AND idempotency_key = $2");
  pqxx::result r = tx.exec_params(kSql, tenant_id, key);
  if (r.empty()) return std::nullopt;
  return std::make_pair(ListingFromRow(r[0]), r[0][kListingColumnCount].as<std::string>());
}

void ListingStore::Insert(pqxx::work& tx, const Listing& l, const std::string& idempotency_key,
                          const std::string& request_hash, const std::string& created_by) {
  static constexpr char kSql[] =
      "INSERT INTO listings (listing_id, tenant_id, commodity_id, vertical, titles, currency, unit_price_minor, unit, "
      "available_milli, min_order_milli, status, version, search_text, idempotency_key, request_hash, created_by, "
      "created_at, updated_at, seller_kind, price_tiers, valid_from, valid_until, delivery, payment) "
      "VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, "
      "to_timestamp($17::double precision / 1e6), to_timestamp($17::double precision / 1e6), $18, $19::jsonb, "
      "to_timestamp($20::double precision / 1e6), to_timestamp($21::double precision / 1e6), $22::jsonb, $23::jsonb)";
  tx.exec_params(kSql, l.listing_id, l.tenant_id, l.commodity_id, l.vertical, NamesJson(l.title), l.unit_price.currency,
                 l.unit_price.amount_minor, l.available.unit, l.available.milli, l.min_order.milli,
                 static_cast<int>(l.status), l.version, SearchText(l.title), idempotency_key, request_hash, created_by,
                 absl::ToUnixMicros(l.create_time), static_cast<int>(l.terms.seller_kind), TiersJson(l.terms.price_tiers),
                 OptionalMicros(l.terms.valid_from), OptionalMicros(l.terms.valid_until), l.terms.delivery_json,
                 l.terms.payment_json);
}

void ListingStore::Update(pqxx::work& tx, const Listing& l) {
  static constexpr char kSql[] =
      "UPDATE listings SET titles = $3::jsonb, currency = $4, unit_price_minor = $5, available_milli = $6, status = $7, "
      "version = $8, search_text = $9, updated_at = to_timestamp($10::double precision / 1e6) "
      "WHERE tenant_id = $1 AND listing_id = $2";
  tx.exec_params(kSql, l.tenant_id, l.listing_id, NamesJson(l.title), l.unit_price.currency, l.unit_price.amount_minor,
                 l.available.milli, static_cast<int>(l.status), l.version, SearchText(l.title),
                 absl::ToUnixMicros(l.update_time));
}

std::vector<Listing> ListingStore::ListOffers(pqxx::work& tx, const ListingFilter& filter, const Page& page) {
  static const std::string kSql = absl::StrCat(
      "SELECT ", kListingColumns, " FROM listings WHERE status = 1 AND available_milli > 0 ",
      "AND (valid_from IS NULL OR valid_from <= now()) AND (valid_until IS NULL OR valid_until > now()) ",
      "AND ($1 = '' OR commodity_id = $1) AND ($2 = '' OR vertical = $2) ",
      "AND ($3 = '' OR search_text ILIKE $4) AND ($5 = '' OR listing_id < $5) ",
      "ORDER BY listing_id DESC LIMIT $6");
  pqxx::result r = tx.exec_params(kSql, filter.commodity_id, filter.vertical, filter.query,
                                  ContainsPattern(filter.query), page.after_id, page.size + 1);
  std::vector<Listing> out;
  for (const auto& row : r) out.push_back(ListingFromRow(row));
  return out;
}

absl::StatusOr<Listing> ListingStore::GetOffer(pqxx::work& tx, const std::string& listing_id) {
  // Prepared once per connection (run for every buy-now order; a no-op after the first time): parsed and
  // planned once, not for every order.
  static const std::string kSql = absl::StrCat("SELECT ", kListingColumns, " FROM listings WHERE listing_id = $1");
  tx.conn().prepare("listing_get_offer", kSql);
  pqxx::result r = tx.exec_prepared("listing_get_offer", listing_id);
  if (r.empty()) return absl::NotFoundError(absl::StrCat("listing ", listing_id, " not found"));
  return ListingFromRow(r[0]);
}

std::vector<Listing> ListingStore::GetOffers(pqxx::transaction_base& tx, const std::vector<std::string>& listing_ids) {
  static const std::string kSql =
      absl::StrCat("SELECT ", kListingColumns, " FROM listings WHERE listing_id = ANY($1::text[])");
  tx.conn().prepare("listing_get_offers", kSql);  // as GetOffer
  std::vector<Listing> out;
  for (const auto& row : tx.exec_prepared("listing_get_offers", pg::TextArray(listing_ids))) {
    out.push_back(ListingFromRow(row));
  }
  return out;
}

bool ListingStore::TakeQuantity(pqxx::work& tx, const std::string& listing_id, int64_t quantity_milli) {
  static constexpr char kSql[] =
      "UPDATE listings SET available_milli = available_milli - $2, version = version + 1, updated_at = now() "
      "WHERE listing_id = $1 AND available_milli >= $2";
  tx.conn().prepare("listing_take_quantity", kSql);  // as GetOffer
  return tx.exec_prepared("listing_take_quantity", listing_id, quantity_milli).affected_rows() == 1;
}

void ListingStore::ReturnQuantity(pqxx::work& tx, const std::string& listing_id, int64_t quantity_milli) {
  static constexpr char kSql[] =
      "UPDATE listings SET available_milli = available_milli + $2, version = version + 1, updated_at = now() "
      "WHERE listing_id = $1";
  tx.exec_params(kSql, listing_id, quantity_milli);
}

std::vector<Listing> ListingStore::List(pqxx::work& tx, const std::string& tenant_id, const ListingFilter& filter,
                                        const Page& page) {
  static const std::string kSql = absl::StrCat(
      "SELECT ", kListingColumns, " FROM listings WHERE tenant_id = $1 ",
      "AND ($2 = '' OR commodity_id = $2) AND ($3 = '' OR vertical = $3) AND ($4 = 0 OR status = $4) ",
      "AND ($5 = '' OR search_text ILIKE $6) AND ($7 = '' OR listing_id < $7) ",
      "ORDER BY listing_id DESC LIMIT $8");
  pqxx::result r = tx.exec_params(kSql, tenant_id, filter.commodity_id, filter.vertical,
                                  filter.status ? static_cast<int>(*filter.status) : 0, filter.query,
                                  ContainsPattern(filter.query), page.after_id, page.size + 1);
  std::vector<Listing> out;
  for (const auto& row : r) out.push_back(ListingFromRow(row));
  return out;
}

}  // namespace ptd::trading
