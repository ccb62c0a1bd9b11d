#include "services/trading/store/order_store.h"

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "libs/pg/array.h"
#include "services/trading/mapping.h"
#include "services/trading/store/outbox_rows.h"

namespace ptd::trading {
namespace {

std::string NamesJson(const google::protobuf::RepeatedPtrField<common::v1::LocalizedText>& names) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& n : names) out.push_back({{"lang", n.lang()}, {"text", n.text()}});
  return out.dump();
}

void NamesFromJson(const std::string& text, google::protobuf::RepeatedPtrField<common::v1::LocalizedText>* out) {
  for (const auto& n : nlohmann::json::parse(text)) {
    auto* t = out->Add();
    t->set_lang(n.at("lang").get<std::string>());
    t->set_text(n.at("text").get<std::string>());
  }
}

void MicrosToProto(const pqxx::field& f, google::protobuf::Timestamp* out) {
  if (!f.is_null()) ToProto(absl::FromUnixMicros(f.as<int64_t>()), out);
}

int64_t Micros(const google::protobuf::Timestamp& t) { return absl::ToUnixMicros(FromProto(t)); }

// The statements every new order runs (FindByIdempotencyKey, Insert) are prepared once per connection: parsed,
// analysed and planned once, not for every order (libpqxx prepares a registered statement on its first use).
template <typename... Args>
pqxx::result ExecPrepared(pqxx::work& tx, const char* name, const std::string& sql, Args&&... args) {
  tx.conn().prepare(name, sql);  // a no-op after the first time: the same definition
  return tx.exec_prepared(name, std::forward<Args>(args)...);
}

// ---- orders ----

constexpr char kOrderColumns[] =
    "order_id, buyer_tenant_id, seller_tenant_id, coalesce(listing_id, ''), coalesce(quote_id, ''), commodity_id, "
    "goods::text, unit, quantity_milli, currency, unit_price_minor, total_minor, state, version, delivery::text, "
    "payment::text, payment_reference, contract::text, (extract(epoch from created_at) * 1000000)::bigint, "
    "(extract(epoch from updated_at) * 1000000)::bigint";
constexpr int kOrderColumnCount = 20;

v1::Order OrderFromRow(const pqxx::row& r) {
  v1::Order o;
  o.set_order_id(r[0].as<std::string>());
  o.set_buyer_tenant_id(r[1].as<std::string>());
  o.set_seller_tenant_id(r[2].as<std::string>());
  o.set_listing_id(r[3].as<std::string>());
  o.set_quote_id(r[4].as<std::string>());
  o.set_commodity_id(r[5].as<std::string>());
  NamesFromJson(r[6].as<std::string>(), o.mutable_goods());
  o.mutable_quantity()->set_unit(r[7].as<std::string>());
  o.mutable_quantity()->set_milli(r[8].as<int64_t>());
  o.mutable_unit_price()->set_currency(r[9].as<std::string>());
  o.mutable_unit_price()->set_amount_minor(r[10].as<int64_t>());
  o.mutable_total()->set_currency(r[9].as<std::string>());
  o.mutable_total()->set_amount_minor(r[11].as<int64_t>());
  o.set_state(static_cast<v1::OrderState>(r[12].as<int>()));
  o.set_version(r[13].as<int64_t>());
  FromJson(r[14].as<std::string>(), o.mutable_delivery());
  FromJson(r[15].as<std::string>(), o.mutable_payment());
  o.set_payment_reference(r[16].as<std::string>());
  if (!r[17].is_null()) FromJson(r[17].as<std::string>(), o.mutable_contract());
  MicrosToProto(r[18], o.mutable_create_time());
  MicrosToProto(r[19], o.mutable_update_time());
  return o;
}

constexpr char kTransitionColumns[] =
    "coalesce(from_state, 0), to_state, coalesce(action, 0), tenant_id, subject, note, "
    "(extract(epoch from at) * 1000000)::bigint";

// The transition in the columns of kTransitionColumns, from column `first` of `r` on.
void AddTransitionFromRow(const pqxx::row& r, int first, v1::Order& order) {
  auto* t = order.add_history();
  t->set_from(static_cast<v1::OrderState>(r[first].as<int>()));
  t->set_to(static_cast<v1::OrderState>(r[first + 1].as<int>()));
  t->set_action(static_cast<v1::OrderAction>(r[first + 2].as<int>()));
  t->set_tenant_id(r[first + 3].as<std::string>());
  t->set_subject(r[first + 4].as<std::string>());
  t->set_note(r[first + 5].as<std::string>());
  MicrosToProto(r[first + 6], t->mutable_time());
}

void LoadHistory(pqxx::work& tx, v1::Order& order) {
  static const std::string kSql =
      absl::StrCat("SELECT ", kTransitionColumns, " FROM order_transitions WHERE order_id = $1 ORDER BY seq");
  for (const auto& r : tx.exec_params(kSql, order.order_id())) AddTransitionFromRow(r, 0, order);
}

}  // namespace

absl::StatusOr<v1::Order> OrderStore::Get(pqxx::work& tx, const std::string& tenant_id, const std::string& order_id,
                                          bool for_update) {
  static const std::string kSql = absl::StrCat(
      "SELECT ", kOrderColumns, " FROM orders WHERE order_id = $1 AND $2 IN (buyer_tenant_id, seller_tenant_id)");
  static const std::string kSqlForUpdate = kSql + " FOR UPDATE";
  pqxx::result r = tx.exec_params(for_update ? kSqlForUpdate : kSql, order_id, tenant_id);
  if (r.empty()) return absl::NotFoundError(absl::StrCat("order ", order_id, " not found"));
  v1::Order order = OrderFromRow(r[0]);
  LoadHistory(tx, order);
  return order;
}

std::optional<std::pair<std::string, std::string>> OrderStore::FindByIdempotencyKey(pqxx::work& tx,
                                                                                    const std::string& buyer,
                                                                                    const std::string& key) {
  static constexpr char kSql[] =
      "SELECT order_id, request_hash FROM orders WHERE buyer_tenant_id = $1 AND idempotency_key = $2";
  pqxx::result r = ExecPrepared(tx, "order_find_by_key", kSql, buyer, key);
  if (r.empty()) return std::nullopt;
  return std::make_pair(r[0][0].as<std::string>(), r[0][1].as<std::string>());
}

v1::Order OrderStore::Insert(pqxx::work& tx, const v1::Order& o, const v1::OrderTransition& first,
                             const std::string& idempotency_key, const std::string& request_hash) {
  // One round trip: both rows, and both read back as stored (times in microseconds), as Get would.
  static const std::string kSql = absl::StrCat(
      "WITH o AS (INSERT INTO orders (order_id, buyer_tenant_id, seller_tenant_id, listing_id, quote_id, commodity_id, "
      "goods, unit, quantity_milli, currency, unit_price_minor, total_minor, state, version, delivery, payment, "
      "idempotency_key, request_hash, created_at, updated_at) VALUES ($1, $2, $3, nullif($4, ''), nullif($5, ''), $6, "
      "$7::jsonb, $8, $9, $10, $11, $12, $13, $14, $15::jsonb, $16::jsonb, $17, $18, "
      "to_timestamp($19::double precision / 1e6), to_timestamp($19::double precision / 1e6)) RETURNING ",
      kOrderColumns,
      "), t AS (INSERT INTO order_transitions (order_id, seq, from_state, to_state, action, tenant_id, subject, note, "
      "at) VALUES ($1, 1, nullif($20, 0), $21, nullif($22, 0), $23, $24, $25, "
      "to_timestamp($26::double precision / 1e6)) RETURNING ",
      kTransitionColumns, ") SELECT o.*, t.* FROM o, t");
  pqxx::result rows = ExecPrepared(
      tx, "order_insert", kSql, o.order_id(), o.buyer_tenant_id(), o.seller_tenant_id(), o.listing_id(), o.quote_id(),
      o.commodity_id(), NamesJson(o.goods()), o.quantity().unit(), o.quantity().milli(), o.unit_price().currency(),
      o.unit_price().amount_minor(), o.total().amount_minor(), static_cast<int>(o.state()), o.version(),
      ToJson(o.delivery()), ToJson(o.payment()), idempotency_key, request_hash, Micros(o.create_time()),
      static_cast<int>(first.from()), static_cast<int>(first.to()), static_cast<int>(first.action()), first.tenant_id(),
      first.subject(), first.note(), Micros(first.time()));
  v1::Order stored = OrderFromRow(rows[0]);
  AddTransitionFromRow(rows[0], kOrderColumnCount, stored);
  return stored;
}

void OrderStore::WritePlacedAlone(pqxx::nontransaction& tx, const std::vector<ListingTake>& takes,
                                  const std::vector<PlacedOrderRow>& orders, const std::vector<outbox::Event>& events,
                                  bool notify) {
  // `locked` takes the listings' row locks in id order (two batches never wait for each other in a cycle);
  // `taken` then moves only the listings still at the version the batch read. Every insert waits for that
  // (the gate) and writes nothing unless all were taken; the final SELECT then fails the statement, so that
  // nothing of it commits.
  constexpr int kFirstOrder = 4;
  constexpr int kOrderParams = 17;
  constexpr int kFirstEvent = kFirstOrder + kOrderParams;
  constexpr int kCount = kFirstEvent + kOutboxRowsParams;
  static const std::string kGate = absl::StrCat("(SELECT count(*) FROM taken) = $", kCount);
  auto sql = [](bool notify) {
    return absl::StrCat(
        "WITH wanted AS ("
        "  SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[]) AS w (listing_id, version, take_milli)), "
        "locked AS ("
        "  SELECT l.listing_id FROM listings l JOIN wanted w USING (listing_id) ORDER BY l.listing_id FOR UPDATE OF "
        "l), "
        "taken AS ("
        "  UPDATE listings l SET available_milli = l.available_milli - w.take_milli, version = l.version + 1, "
        "    updated_at = now() "
        "  FROM locked k JOIN wanted w USING (listing_id) "
        "  WHERE l.listing_id = k.listing_id AND l.version = w.version AND l.available_milli >= w.take_milli "
        "  RETURNING 1), "
        "o AS ("
        "  SELECT * FROM unnest($4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], "
        "    $11::bigint[], $12::text[], $13::bigint[], $14::bigint[], $15::text[], $16::text[], $17::text[], "
        "    $18::text[], $19::text[], $20::bigint[]) "
        "    AS o (order_id, buyer_tenant_id, seller_tenant_id, listing_id, commodity_id, goods, unit, quantity_milli, "
        "    currency, unit_price_minor, total_minor, delivery, payment, idempotency_key, request_hash, subject, "
        "    created_us)), "
        "new_orders AS ("
        "  INSERT INTO orders (order_id, buyer_tenant_id, seller_tenant_id, listing_id, commodity_id, goods, unit, "
        "    quantity_milli, currency, unit_price_minor, total_minor, state, version, delivery, payment, "
        "    idempotency_key, request_hash, created_at, updated_at) "
        "  SELECT order_id, buyer_tenant_id, seller_tenant_id, listing_id, commodity_id, goods::jsonb, unit, "
        "    quantity_milli, currency, unit_price_minor, total_minor, ",
        static_cast<int>(v1::PLACED),
        ", 1, "
        "    delivery::jsonb, payment::jsonb, idempotency_key, request_hash, "
        "    to_timestamp(created_us::double precision / 1e6), to_timestamp(created_us::double precision / 1e6) "
        "  FROM o WHERE ",
        kGate,
        " RETURNING 1), "
        "new_transitions AS ("
        "  INSERT INTO order_transitions (order_id, seq, from_state, to_state, action, tenant_id, subject, note, at) "
        "  SELECT order_id, 1, NULL, ",
        static_cast<int>(v1::PLACED),
        ", NULL, buyer_tenant_id, subject, '', "
        "    to_timestamp(created_us::double precision / 1e6) "
        "  FROM o WHERE ",
        kGate, " RETURNING 1), ", OutboxRowsCtes(kFirstEvent, kGate, notify), " ", "SELECT spot_check(", kGate,
        ", 'a listing changed since the batch read it'), "
        "  (SELECT count(*) FROM new_orders), (SELECT count(*) FROM new_transitions), (SELECT count(*) FROM notified)");
  };
  static const std::string kSql[] = {sql(false), sql(true)};
  static constexpr const char* kName[] = {"order_write_placed_alone_quiet", "order_write_placed_alone"};
  std::vector<std::string> listing_ids, order_ids, buyers, sellers, order_listings, commodities, goods, units,
      currencies, deliveries, payments, keys, hashes, subjects;
  std::vector<int64_t> versions, take_millis, quantities, unit_prices, totals, created;
  for (const ListingTake& t : takes) {
    listing_ids.push_back(t.listing_id);
    versions.push_back(t.version);
    take_millis.push_back(t.quantity_milli);
  }
  for (const PlacedOrderRow& row : orders) {
    const v1::Order& o = row.order;
    order_ids.push_back(o.order_id());
    buyers.push_back(o.buyer_tenant_id());
    sellers.push_back(o.seller_tenant_id());
    order_listings.push_back(o.listing_id());
    commodities.push_back(o.commodity_id());
    goods.push_back(NamesJson(o.goods()));
    units.push_back(o.quantity().unit());
    quantities.push_back(o.quantity().milli());
    currencies.push_back(o.unit_price().currency());
    unit_prices.push_back(o.unit_price().amount_minor());
    totals.push_back(o.total().amount_minor());
    deliveries.push_back(ToJson(o.delivery()));
    payments.push_back(ToJson(o.payment()));
    keys.push_back(row.idempotency_key);
    hashes.push_back(row.request_hash);
    subjects.push_back(o.history_size() > 0 ? o.history(0).subject() : std::string());
    created.push_back(Micros(o.create_time()));
  }
  const std::vector<std::string> e = OutboxRowsParams(events);
  using pg::NumberArray;
  using pg::TextArray;
  tx.conn().prepare(kName[notify], kSql[notify]);
  tx.exec_prepared(kName[notify], TextArray(listing_ids), NumberArray(versions), NumberArray(take_millis),
                   TextArray(order_ids), TextArray(buyers), TextArray(sellers), TextArray(order_listings),
                   TextArray(commodities), TextArray(goods), TextArray(units), NumberArray(quantities),
                   TextArray(currencies), NumberArray(unit_prices), NumberArray(totals), TextArray(deliveries),
                   TextArray(payments), TextArray(keys), TextArray(hashes), TextArray(subjects), NumberArray(created),
                   e[0], e[1], e[2], e[3], e[4], e[5], e[6], static_cast<int64_t>(takes.size()));
}

void OrderStore::Update(pqxx::work& tx, const v1::Order& o) {
  static constexpr char kSql[] =
      "UPDATE orders SET state = $2, version = $3, payment_reference = $4, "
      "contract = CASE WHEN $5 = '' THEN contract ELSE $5::jsonb END, "
      "updated_at = to_timestamp($6::double precision / 1e6) WHERE order_id = $1";
  tx.exec_params(kSql, o.order_id(), static_cast<int>(o.state()), o.version(), o.payment_reference(),
                 o.has_contract() ? ToJson(o.contract()) : std::string(), Micros(o.update_time()));
}

void OrderStore::AddTransition(pqxx::work& tx, const std::string& order_id, const v1::OrderTransition& t) {
  static constexpr char kSql[] =
      "INSERT INTO order_transitions (order_id, seq, from_state, to_state, action, tenant_id, subject, note, at) "
      "SELECT $1, coalesce(max(seq), 0) + 1, nullif($2, 0), $3, nullif($4, 0), $5, $6, $7, "
      "to_timestamp($8::double precision / 1e6) FROM order_transitions WHERE order_id = $1";
  tx.exec_params(kSql, order_id, static_cast<int>(t.from()), static_cast<int>(t.to()), static_cast<int>(t.action()),
                 t.tenant_id(), t.subject(), t.note(), Micros(t.time()));
}

std::vector<v1::Order> OrderStore::List(pqxx::work& tx, const std::string& tenant_id, v1::ListOrdersRequest::Role role,
                                        v1::OrderState state, const Page& page) {
  static const std::string kSql =
      absl::StrCat("SELECT ", kOrderColumns, " FROM orders WHERE ",
                   "(($2 IN (0, 1) AND buyer_tenant_id = $1) OR ($2 IN (0, 2) AND seller_tenant_id = $1)) ",
                   "AND ($3 = 0 OR state = $3) AND ($4 = '' OR order_id < $4) ORDER BY order_id DESC LIMIT $5");
  std::vector<v1::Order> out;
  for (const auto& r :
       tx.exec_params(kSql, tenant_id, static_cast<int>(role), static_cast<int>(state), page.after_id, page.size + 1)) {
    out.push_back(OrderFromRow(r));
  }
  return out;
}

// ---- RFQs ----

namespace {

constexpr char kRfqColumns[] =
    "rfq_id, buyer_tenant_id, commodity_id, spec, unit, quantity_milli, delivery_place, "
    "(extract(epoch from delivery_date) * 1000000)::bigint, (extract(epoch from closes_at) * 1000000)::bigint, "
    "state, coalesce(accepted_quote_id, ''), (extract(epoch from created_at) * 1000000)::bigint, "
    "(SELECT count(*) FROM quotes q WHERE q.rfq_id = rfqs.rfq_id)";

v1::Rfq RfqFromRow(const pqxx::row& r) {
  v1::Rfq q;
  q.set_rfq_id(r[0].as<std::string>());
  q.set_buyer_tenant_id(r[1].as<std::string>());
  q.set_commodity_id(r[2].as<std::string>());
  q.set_spec(r[3].as<std::string>());
  q.mutable_quantity()->set_unit(r[4].as<std::string>());
  q.mutable_quantity()->set_milli(r[5].as<int64_t>());
  q.set_delivery_place(r[6].as<std::string>());
  MicrosToProto(r[7], q.mutable_delivery_date());
  MicrosToProto(r[8], q.mutable_closes_at());
  q.set_state(static_cast<v1::RfqState>(r[9].as<int>()));
  q.set_accepted_quote_id(r[10].as<std::string>());
  MicrosToProto(r[11], q.mutable_create_time());
  q.set_quote_count(r[12].as<int>());
  return q;
}

constexpr char kQuoteColumns[] =
    "quote_id, rfq_id, seller_tenant_id, currency, unit_price_minor, unit, quantity_milli, delivery::text, "
    "payment::text, note, state, (extract(epoch from created_at) * 1000000)::bigint";

v1::Quote QuoteFromRow(const pqxx::row& r) {
  v1::Quote q;
  q.set_quote_id(r[0].as<std::string>());
  q.set_rfq_id(r[1].as<std::string>());
  q.set_seller_tenant_id(r[2].as<std::string>());
  q.mutable_unit_price()->set_currency(r[3].as<std::string>());
  q.mutable_unit_price()->set_amount_minor(r[4].as<int64_t>());
  q.mutable_quantity()->set_unit(r[5].as<std::string>());
  q.mutable_quantity()->set_milli(r[6].as<int64_t>());
  FromJson(r[7].as<std::string>(), q.mutable_delivery());
  FromJson(r[8].as<std::string>(), q.mutable_payment());
  q.set_note(r[9].as<std::string>());
  q.set_state(static_cast<v1::QuoteState>(r[10].as<int>()));
  MicrosToProto(r[11], q.mutable_create_time());
  return q;
}

}  // namespace

absl::StatusOr<v1::Rfq> RfqStore::Get(pqxx::work& tx, const std::string& tenant_id, const std::string& rfq_id,
                                      bool for_update) {
  // Open RFQs are public (sellers quote on them); a closed or awarded one is its buyer's.
  static const std::string kSql =
      absl::StrCat("SELECT ", kRfqColumns, " FROM rfqs WHERE rfq_id = $1 AND ", "(buyer_tenant_id = $2 OR state = 1)");
  static const std::string kSqlForUpdate = kSql + " FOR UPDATE";
  pqxx::result r = tx.exec_params(for_update ? kSqlForUpdate : kSql, rfq_id, tenant_id);
  if (r.empty()) return absl::NotFoundError(absl::StrCat("rfq ", rfq_id, " not found"));
  return RfqFromRow(r[0]);
}

std::optional<std::pair<std::string, std::string>> RfqStore::FindByIdempotencyKey(pqxx::work& tx,
                                                                                  const std::string& buyer,
                                                                                  const std::string& key) {
  static constexpr char kSql[] =
      "SELECT rfq_id, request_hash FROM rfqs WHERE buyer_tenant_id = $1 AND idempotency_key = $2";
  pqxx::result r = tx.exec_params(kSql, buyer, key);
  if (r.empty()) return std::nullopt;
  return std::make_pair(r[0][0].as<std::string>(), r[0][1].as<std::string>());
}

void RfqStore::Insert(pqxx::work& tx, const v1::Rfq& q, const std::string& idempotency_key,
                      const std::string& request_hash) {
  static constexpr char kSql[] =
      "INSERT INTO rfqs (rfq_id, buyer_tenant_id, commodity_id, spec, unit, quantity_milli, delivery_place, "
      "delivery_date, closes_at, state, idempotency_key, request_hash, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, "
      "to_timestamp($8::double precision / 1e6), to_timestamp($9::double precision / 1e6), 1, $10, $11, "
      "to_timestamp($12::double precision / 1e6))";
  std::optional<int64_t> delivery;
  if (q.has_delivery_date()) delivery = Micros(q.delivery_date());
  tx.exec_params(kSql, q.rfq_id(), q.buyer_tenant_id(), q.commodity_id(), q.spec(), q.quantity().unit(),
                 q.quantity().milli(), q.delivery_place(), delivery, Micros(q.closes_at()), idempotency_key,
                 request_hash, Micros(q.create_time()));
}

void RfqStore::Award(pqxx::work& tx, const std::string& rfq_id, const std::string& quote_id) {
  static constexpr char kSql[] = "UPDATE rfqs SET state = 2, accepted_quote_id = $2 WHERE rfq_id = $1";
  tx.exec_params(kSql, rfq_id, quote_id);
}

std::vector<v1::Rfq> RfqStore::List(pqxx::work& tx, const std::string& tenant_id, bool mine,
                                    const std::string& commodity_id, const Page& page) {
  static const std::string kSql =
      absl::StrCat("SELECT ", kRfqColumns, " FROM rfqs WHERE ",
                   "(($2 AND buyer_tenant_id = $1) OR (NOT $2 AND state = 1 AND closes_at > now())) ",
                   "AND ($3 = '' OR commodity_id = $3) AND ($4 = '' OR rfq_id < $4) ORDER BY rfq_id DESC LIMIT $5");
  std::vector<v1::Rfq> out;
  for (const auto& r : tx.exec_params(kSql, tenant_id, mine, commodity_id, page.after_id, page.size + 1)) {
    out.push_back(RfqFromRow(r));
  }
  return out;
}

std::optional<std::pair<std::string, std::string>> QuoteStore::FindByIdempotencyKey(pqxx::work& tx,
                                                                                    const std::string& seller,
                                                                                    const std::string& key) {
  static constexpr char kSql[] =
      "SELECT quote_id, request_hash FROM quotes WHERE seller_tenant_id = $1 AND idempotency_key = $2";
  pqxx::result r = tx.exec_params(kSql, seller, key);
  if (r.empty()) return std::nullopt;
  return std::make_pair(r[0][0].as<std::string>(), r[0][1].as<std::string>());
}

absl::StatusOr<v1::Quote> QuoteStore::Get(pqxx::work& tx, const std::string& quote_id) {
  static const std::string kSql = absl::StrCat("SELECT ", kQuoteColumns, " FROM quotes WHERE quote_id = $1");
  pqxx::result r = tx.exec_params(kSql, quote_id);
  if (r.empty()) return absl::NotFoundError(absl::StrCat("quote ", quote_id, " not found"));
  return QuoteFromRow(r[0]);
}

void QuoteStore::Insert(pqxx::work& tx, const v1::Quote& q, const std::string& idempotency_key,
                        const std::string& request_hash) {
  static constexpr char kSql[] =
      "INSERT INTO quotes (quote_id, rfq_id, seller_tenant_id, currency, unit_price_minor, unit, quantity_milli, "
      "delivery, payment, note, state, idempotency_key, request_hash, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, "
      "$8::jsonb, $9::jsonb, $10, 1, $11, $12, to_timestamp($13::double precision / 1e6))";
  tx.exec_params(kSql, q.quote_id(), q.rfq_id(), q.seller_tenant_id(), q.unit_price().currency(),
                 q.unit_price().amount_minor(), q.quantity().unit(), q.quantity().milli(), ToJson(q.delivery()),
                 ToJson(q.payment()), q.note(), idempotency_key, request_hash, Micros(q.create_time()));
}

void QuoteStore::SetState(pqxx::work& tx, const std::string& quote_id, v1::QuoteState state) {
  static constexpr char kSql[] = "UPDATE quotes SET state = $2 WHERE quote_id = $1";
  tx.exec_params(kSql, quote_id, static_cast<int>(state));
}

std::vector<v1::Quote> QuoteStore::ListForRfq(pqxx::work& tx, const std::string& rfq_id,
                                              const std::string& seller_tenant_id) {
  static const std::string kSql =
      absl::StrCat("SELECT ", kQuoteColumns, " FROM quotes WHERE rfq_id = $1 AND ($2 = '' OR seller_tenant_id = $2) ",
                   "ORDER BY quote_id");
  std::vector<v1::Quote> out;
  for (const auto& r : tx.exec_params(kSql, rfq_id, seller_tenant_id)) out.push_back(QuoteFromRow(r));
  return out;
}

}  // namespace ptd::trading
