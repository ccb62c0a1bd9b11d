#include "services/trading/store/spot_store.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "libs/core/ids.h"
#include "libs/pg/array.h"
#include "services/trading/store/outbox_rows.h"

namespace ptd::trading {
namespace {

// Several rows go in one statement as array parameters (one round trip however many fills an order makes).
// pg::TextArray and pg::NumberArray render the array's text form; the array is still one bound parameter.
using pg::NumberArray;
using pg::TextArray;

// The statements run for every batch are prepared once per connection (parsed and planned once; libpqxx
// prepares a registered statement on its first use and keeps it for the connection's life).
template <typename... Args>
pqxx::result ExecPrepared(pqxx::transaction_base& tx, const char* name, const char* sql, Args&&... args) {
  tx.conn().prepare(name, sql);  // a no-op after the first time: the same definition
  return tx.exec_prepared(name, std::forward<Args>(args)...);
}

book::Side SideOf(int code) { return code == 1 ? book::Side::kBuy : book::Side::kSell; }
absl::Time TimeFromMicros(const pqxx::field& f) { return absl::FromUnixMicros(f.as<int64_t>()); }

constexpr char kOrderColumns[] =
    "order_id, tenant_id, commodity_id, seq, side, type, currency, price_minor, unit, quantity_milli, filled_milli, "
    "status, cancel_reason, (extract(epoch from created_at) * 1000000)::bigint, "
    "(extract(epoch from updated_at) * 1000000)::bigint";

SpotOrderRow OrderFromRow(const pqxx::row& r) {
  SpotOrderRow o;
  o.order_id = r[0].as<std::string>();
  o.tenant_id = r[1].as<std::string>();
  o.commodity_id = r[2].as<std::string>();
  o.seq = r[3].as<int64_t>();
  o.side = SideOf(r[4].as<int>());
  o.type = r[5].as<int>() == 1 ? book::OrderType::kLimit : book::OrderType::kMarket;
  o.currency = r[6].as<std::string>();
  o.price_minor = r[7].as<int64_t>();
  o.unit = r[8].as<std::string>();
  o.quantity_milli = r[9].as<int64_t>();
  o.filled_milli = r[10].as<int64_t>();
  o.status = static_cast<SpotStatus>(r[11].as<int>());
  o.cancel_reason = static_cast<SpotCancelReason>(r[12].as<int>());
  o.create_time = TimeFromMicros(r[13]);
  o.update_time = TimeFromMicros(r[14]);
  return o;
}

constexpr char kTradeColumns[] =
    "trade_id, seq, commodity_id, currency, price_minor, unit, quantity_milli, amount_minor, buy_order_id, "
    "sell_order_id, buyer_tenant_id, seller_tenant_id, aggressor_side, taker_order_id, "
    "(extract(epoch from executed_at) * 1000000)::bigint";

SpotTradeRow TradeFromRow(const pqxx::row& r) {
  SpotTradeRow t;
  t.trade_id = r[0].as<std::string>();
  t.seq = r[1].as<int64_t>();
  t.commodity_id = r[2].as<std::string>();
  t.currency = r[3].as<std::string>();
  t.price_minor = r[4].as<int64_t>();
  t.unit = r[5].as<std::string>();
  t.quantity_milli = r[6].as<int64_t>();
  t.amount_minor = r[7].as<int64_t>();
  t.buy_order_id = r[8].as<std::string>();
  t.sell_order_id = r[9].as<std::string>();
  t.buyer_tenant_id = r[10].as<std::string>();
  t.seller_tenant_id = r[11].as<std::string>();
  t.aggressor_side = SideOf(r[12].as<int>());
  t.taker_order_id = r[13].as<std::string>();
  t.execute_time = TimeFromMicros(r[14]);
  return t;
}

}  // namespace

int SideCode(book::Side side) { return side == book::Side::kBuy ? 1 : 2; }
int TypeCode(book::OrderType type) { return type == book::OrderType::kLimit ? 1 : 2; }

std::optional<SpotCommodity> SpotStore::GetCommodity(pqxx::work& tx, const std::string& commodity_id) {
  static constexpr char kSql[] = "SELECT code, vertical, unit, standardised FROM commodities WHERE commodity_id = $1";
  pqxx::result r = tx.exec_params(kSql, commodity_id);
  if (r.empty()) return std::nullopt;
  return SpotCommodity{commodity_id, r[0][0].as<std::string>(), r[0][1].as<std::string>(), r[0][2].as<std::string>(),
                       r[0][3].as<bool>()};
}

// ---- books ----

std::optional<SpotBookRow> SpotStore::GetBook(pqxx::work& tx, const std::string& commodity_id) {
  static constexpr char kSql[] =
      "SELECT currency, unit, version, next_seq, next_trade_seq FROM spot_books WHERE commodity_id = $1";
  pqxx::result r = tx.exec_params(kSql, commodity_id);
  if (r.empty()) return std::nullopt;
  return SpotBookRow{.commodity_id = commodity_id,
                     .currency = r[0][0].as<std::string>(),
                     .unit = r[0][1].as<std::string>(),
                     .version = r[0][2].as<int64_t>(),
                     .next_seq = r[0][3].as<int64_t>(),
                     .next_trade_seq = r[0][4].as<int64_t>()};
}

void SpotStore::EnsureBook(pqxx::work& tx, const std::string& commodity_id, const std::string& currency,
                           const std::string& unit) {
  static constexpr char kSql[] =
      "INSERT INTO spot_books (commodity_id, currency, unit) VALUES ($1, $2, $3) ON CONFLICT (commodity_id) DO NOTHING";
  tx.exec_params(kSql, commodity_id, currency, unit);
}

LockedBooks SpotStore::LockBooks(pqxx::work& tx, const std::vector<BookToLock>& books,
                                 const std::vector<std::pair<std::string, std::string>>& tenant_keys) {
  // `locked` takes the row locks in commodity id order; the UPDATE can reach a row only once `locked` has
  // returned it, so it never locks out of that order. The answer: (0, commodity, version, first seq) per
  // book, then (1, n, order id, request hash) per earlier order found, n counting tenant_keys from 1; the
  // book's next trade number in the last column.
  // `generic` makes the rest of the transaction use the prepared statements' generic plans: good for the
  // batch's statements whatever the array sizes, while planning them anew each time (as PostgreSQL would
  // choose here) costs more than running them.
  static constexpr char kSql[] =
      "WITH generic AS (SELECT set_config('plan_cache_mode', 'force_generic_plan', true)), "
      "wanted AS ("
      "  SELECT * FROM unnest($1::text[], $2::bigint[]) AS w (commodity_id, sequences)), "
      "locked AS ("
      "  SELECT b.commodity_id FROM spot_books b JOIN wanted w USING (commodity_id) "
      "  ORDER BY b.commodity_id FOR UPDATE OF b), "
      "bumped AS ("
      "  UPDATE spot_books b SET version = b.version + 1, next_seq = b.next_seq + w.sequences "
      "  FROM locked l JOIN wanted w USING (commodity_id) WHERE b.commodity_id = l.commodity_id "
      "  RETURNING b.commodity_id, b.version, b.next_seq - w.sequences AS first_seq, b.next_trade_seq) "
      "SELECT 0, commodity_id, version, first_seq, NULL, NULL, next_trade_seq FROM bumped, generic "
      "UNION ALL "
      "SELECT 1, NULL, k.n, NULL, o.order_id, o.request_hash, NULL "
      "FROM unnest($3::text[], $4::text[]) WITH ORDINALITY AS k (tenant_id, idempotency_key, n) "
      "JOIN spot_orders o ON o.tenant_id = k.tenant_id AND o.idempotency_key = k.idempotency_key";
  std::vector<std::string> ids, tenants, keys;
  std::vector<int64_t> sequences;
  for (const BookToLock& b : books) {
    ids.push_back(b.commodity_id);
    sequences.push_back(b.sequences);
  }
  for (const auto& [tenant, key] : tenant_keys) {
    tenants.push_back(tenant);
    keys.push_back(key);
  }
  pqxx::result r = ExecPrepared(tx, "spot_lock_books", kSql, TextArray(ids), NumberArray(sequences), TextArray(tenants),
                                TextArray(keys));
  LockedBooks out;
  out.earlier.resize(tenant_keys.size());
  for (const auto& row : r) {
    if (row[0].as<int>() == 0) {
      out.books[row[1].as<std::string>()] = {
          .version = row[2].as<int64_t>(), .first_seq = row[3].as<int64_t>(), .next_trade_seq = row[6].as<int64_t>()};
    } else {
      out.earlier[row[2].as<size_t>() - 1] = EarlierOrder{row[4].as<std::string>(), row[5].as<std::string>()};
    }
  }
  return out;
}

std::vector<SpotOrderRow> SpotStore::RestingOrders(pqxx::work& tx, const std::string& commodity_id) {
  static const std::string kSql =
      absl::StrCat("SELECT ", kOrderColumns, " FROM spot_orders WHERE commodity_id = $1 AND status = 1 ORDER BY seq");
  std::vector<SpotOrderRow> out;
  for (const auto& row : tx.exec_params(kSql, commodity_id)) out.push_back(OrderFromRow(row));
  return out;
}

// ---- orders ----

namespace {

// The rows of a batch as array parameters, in the order the write statements below number them.
struct BatchParams {
  std::vector<std::string> orders;  // 18 arrays: the new orders' columns
  std::vector<std::string> fills;   // 3 arrays: maker book, maker seq, quantity
  std::vector<std::string> trades;  // 15 arrays: the trades' columns, their place on the tape included
};

BatchParams ParamsOf(const std::vector<NewSpotOrder>& orders, const std::vector<SpotFill>& fills,
                     const std::vector<SpotTradeRow>& trades) {
  std::vector<std::string> ids, tenants, commodities, currencies, units, keys, hashes, creators;
  std::vector<int64_t> seqs, sides, types, prices, quantities, filled, statuses, reasons, created, updated;
  for (const NewSpotOrder& n : orders) {
    const SpotOrderRow& o = n.row;
    ids.push_back(o.order_id);
    tenants.push_back(o.tenant_id);
    commodities.push_back(o.commodity_id);
    seqs.push_back(o.seq);
    sides.push_back(SideCode(o.side));
    types.push_back(TypeCode(o.type));
    currencies.push_back(o.currency);
    prices.push_back(o.price_minor);
    units.push_back(o.unit);
    quantities.push_back(o.quantity_milli);
    filled.push_back(o.filled_milli);
    statuses.push_back(static_cast<int>(o.status));
    reasons.push_back(static_cast<int>(o.cancel_reason));
    keys.push_back(n.idempotency_key);
    hashes.push_back(n.request_hash);
    creators.push_back(n.created_by);
    created.push_back(absl::ToUnixMicros(o.create_time));
    updated.push_back(absl::ToUnixMicros(o.update_time));
  }
  std::vector<std::string> maker_books;
  std::vector<int64_t> maker_seqs, fill_quantities;
  for (const SpotFill& f : fills) {
    maker_books.push_back(f.commodity_id);
    maker_seqs.push_back(f.maker_seq);
    fill_quantities.push_back(f.quantity_milli);
  }
  std::vector<std::string> trade_ids, trade_books, trade_currencies, trade_units, buy_orders, sell_orders, buyers,
      sellers, takers;
  std::vector<int64_t> trade_seqs, trade_prices, trade_quantities, amounts, aggressors, executed;
  for (const SpotTradeRow& t : trades) {
    trade_ids.push_back(t.trade_id);
    trade_seqs.push_back(t.seq);
    trade_books.push_back(t.commodity_id);
    trade_currencies.push_back(t.currency);
    trade_prices.push_back(t.price_minor);
    trade_units.push_back(t.unit);
    trade_quantities.push_back(t.quantity_milli);
    amounts.push_back(t.amount_minor);
    buy_orders.push_back(t.buy_order_id);
    sell_orders.push_back(t.sell_order_id);
    buyers.push_back(t.buyer_tenant_id);
    sellers.push_back(t.seller_tenant_id);
    aggressors.push_back(SideCode(t.aggressor_side));
    takers.push_back(t.taker_order_id);
    executed.push_back(absl::ToUnixMicros(t.execute_time));
  }
  return {
      .orders = {TextArray(ids), TextArray(tenants), TextArray(commodities), NumberArray(seqs), NumberArray(sides),
                 NumberArray(types), TextArray(currencies), NumberArray(prices), TextArray(units),
                 NumberArray(quantities), NumberArray(filled), NumberArray(statuses), NumberArray(reasons),
                 TextArray(keys), TextArray(hashes), TextArray(creators), NumberArray(created), NumberArray(updated)},
      .fills = {TextArray(maker_books), NumberArray(maker_seqs), NumberArray(fill_quantities)},
      .trades = {TextArray(trade_ids), NumberArray(trade_seqs), TextArray(trade_books), TextArray(trade_currencies),
                 NumberArray(trade_prices), TextArray(trade_units), NumberArray(trade_quantities), NumberArray(amounts),
                 TextArray(buy_orders), TextArray(sell_orders), TextArray(buyers), TextArray(sellers),
                 NumberArray(aggressors), TextArray(takers), NumberArray(executed)},
  };
}

// The data-modifying parts that write a batch's rows, as CTEs of one statement, their parameters numbered
// from $`first` in BatchParams' order (orders, then `now` in microseconds, then fills, then trades). When
// `gate` is not empty, each part writes only if that condition holds (it is evaluated first, once). The
// new orders and the fills touch different rows; the trades' foreign keys to the new orders are checked at
// the end of the statement. `filled` returns one row per maker filled.
std::string WriteCtes(int first, const std::string& gate) {
  auto arg = [&](int i) { return absl::StrCat("$", first + i); };
  const std::string where_gate = gate.empty() ? "" : absl::StrCat(" WHERE ", gate);
  const std::string and_gate = gate.empty() ? "" : absl::StrCat(" AND ", gate);
  return absl::StrCat(
      "new_orders AS ("
      "  INSERT INTO spot_orders (order_id, tenant_id, commodity_id, seq, side, type, currency, price_minor, unit, "
      "    quantity_milli, filled_milli, status, cancel_reason, idempotency_key, request_hash, created_by, "
      "    created_at, updated_at) "
      "  SELECT o.order_id, o.tenant_id, o.commodity_id, o.seq, o.side, o.type, o.currency, o.price_minor, o.unit, "
      "    o.quantity_milli, o.filled_milli, o.status, o.cancel_reason, o.idempotency_key, o.request_hash, "
      "    o.created_by, to_timestamp(o.created_us::double precision / 1e6), "
      "    to_timestamp(o.updated_us::double precision / 1e6) "
      "  FROM unnest(",
      arg(0), "::text[], ", arg(1), "::text[], ", arg(2), "::text[], ", arg(3), "::bigint[], ", arg(4),
      "::smallint[], ", arg(5), "::smallint[], ", arg(6), "::text[], ", arg(7), "::bigint[], ", arg(8), "::text[], ",
      arg(9), "::bigint[], ", arg(10), "::bigint[], ", arg(11), "::smallint[], ", arg(12), "::smallint[], ", arg(13),
      "::text[], ", arg(14), "::text[], ", arg(15), "::text[], ", arg(16), "::bigint[], ", arg(17),
      "::bigint[]) "
      "    AS o (order_id, tenant_id, commodity_id, seq, side, type, currency, price_minor, unit, quantity_milli, "
      "    filled_milli, status, cancel_reason, idempotency_key, request_hash, created_by, created_us, "
      "    updated_us)",
      where_gate,
      "), "
      "filled AS ("
      "  UPDATE spot_orders o SET filled_milli = o.filled_milli + f.quantity_milli, "
      "    status = CASE WHEN o.filled_milli + f.quantity_milli = o.quantity_milli THEN 2 ELSE 1 END, "
      "    updated_at = to_timestamp(",
      arg(18),
      "::double precision / 1e6) "
      "  FROM unnest(",
      arg(19), "::text[], ", arg(20), "::bigint[], ", arg(21),
      "::bigint[]) "
      "    AS f (commodity_id, seq, quantity_milli) "
      "  WHERE o.commodity_id = f.commodity_id AND o.seq = f.seq AND o.status = 1",
      and_gate,
      "  RETURNING 1), "
      "trades_in AS ("
      "  SELECT * FROM unnest(",
      arg(22), "::text[], ", arg(23), "::bigint[], ", arg(24), "::text[], ", arg(25), "::text[], ", arg(26),
      "::bigint[], ", arg(27), "::text[], ", arg(28), "::bigint[], ", arg(29), "::bigint[], ", arg(30), "::text[], ",
      arg(31), "::text[], ", arg(32), "::text[], ", arg(33), "::text[], ", arg(34), "::smallint[], ", arg(35),
      "::text[], ", arg(36),
      "::bigint[]) "
      "    AS t (trade_id, seq, commodity_id, currency, price_minor, unit, quantity_milli, amount_minor, "
      "    buy_order_id, sell_order_id, buyer_tenant_id, seller_tenant_id, aggressor_side, taker_order_id, "
      "    executed_us)), "
      "new_trades AS ("
      "  INSERT INTO spot_trades (trade_id, seq, commodity_id, currency, price_minor, unit, quantity_milli, "
      "    amount_minor, buy_order_id, sell_order_id, buyer_tenant_id, seller_tenant_id, aggressor_side, "
      "    taker_order_id, executed_at) "
      "  SELECT t.trade_id, t.seq, t.commodity_id, t.currency, t.price_minor, t.unit, t.quantity_milli, "
      "    t.amount_minor, t.buy_order_id, t.sell_order_id, t.buyer_tenant_id, t.seller_tenant_id, "
      "    t.aggressor_side, t.taker_order_id, to_timestamp(t.executed_us::double precision / 1e6) "
      "  FROM trades_in t",
      where_gate, ")");
}
constexpr int kWriteParams = 18 + 1 + 3 + 15;

}  // namespace

absl::Status SpotStore::WriteBatch(pqxx::work& tx, const std::vector<NewSpotOrder>& orders,
                                   const std::vector<SpotFill>& fills, absl::Time now,
                                   const std::vector<SpotTradeRow>& trades) {
  if (orders.empty() && fills.empty() && trades.empty()) return absl::OkStatus();
  // The books' rows are locked by this transaction (LockBooks): their trade numbering moves on here.
  static const std::string kSql =
      absl::StrCat("WITH ", WriteCtes(1, ""),
                   ", "
                   "tape AS ("
                   "  UPDATE spot_books b SET next_trade_seq = m.next "
                   "  FROM (SELECT commodity_id, max(seq) + 1 AS next FROM trades_in GROUP BY commodity_id) m "
                   "  WHERE b.commodity_id = m.commodity_id AND b.next_trade_seq < m.next) "
                   "SELECT count(*) FROM filled");
  const BatchParams params = ParamsOf(orders, fills, trades);
  tx.conn().prepare("spot_write_batch", kSql);
  const std::vector<std::string>& o = params.orders;
  const std::vector<std::string>& f = params.fills;
  const std::vector<std::string>& t = params.trades;
  pqxx::result r =
      tx.exec_prepared("spot_write_batch", o[0], o[1], o[2], o[3], o[4], o[5], o[6], o[7], o[8], o[9], o[10], o[11],
                       o[12], o[13], o[14], o[15], o[16], o[17], absl::ToUnixMicros(now), f[0], f[1], f[2], t[0], t[1],
                       t[2], t[3], t[4], t[5], t[6], t[7], t[8], t[9], t[10], t[11], t[12], t[13], t[14]);
  const size_t makers_filled = r[0][0].as<size_t>();
  if (makers_filled != fills.size()) {
    return absl::InternalError(absl::StrCat("the in-memory books matched ", fills.size(),
                                            " resting orders, the database has ", makers_filled, " of them open"));
  }
  return absl::OkStatus();
}

void SpotStore::WriteAlone(pqxx::nontransaction& tx, const std::vector<BookWrite>& books,
                           const std::vector<NewSpotOrder>& orders, const std::vector<SpotFill>& fills, absl::Time now,
                           const std::vector<SpotTradeRow>& trades, const std::vector<SpotCancelWrite>& cancels,
                           const std::vector<outbox::Event>& events, bool notify) {
  // `locked` takes the row locks in commodity id order (as LockBooks does); `bumped` then moves only the books
  // still at the version the memory reflects. Every write below waits for that (the gate), and writes
  // nothing unless all books were bumped; the final SELECT then fails the statement, so that nothing of it
  // commits, when a book had moved, or a maker or an order to cancel was not open.
  constexpr int kBookParams = 4;
  constexpr int kFirstWrite = 1 + kBookParams;
  constexpr int kFirstEvent = kFirstWrite + kWriteParams;
  constexpr int kCounts = kFirstEvent + kOutboxRowsParams;
  static const std::string kGate = absl::StrCat("(SELECT count(*) FROM bumped) = $", kCounts);
  auto sql = [](bool notify) {
    return absl::StrCat(
        "WITH wanted AS ("
        "  SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[]) "
        "    AS w (commodity_id, version, next_seq, next_trade_seq)), "
        "locked AS ("
        "  SELECT b.commodity_id FROM spot_books b JOIN wanted w USING (commodity_id) "
        "  ORDER BY b.commodity_id FOR UPDATE OF b), "
        "bumped AS ("
        "  UPDATE spot_books b SET version = b.version + 1, next_seq = w.next_seq, next_trade_seq = w.next_trade_seq "
        "  FROM locked l JOIN wanted w USING (commodity_id) "
        "  WHERE b.commodity_id = l.commodity_id AND b.version = w.version "
        "  RETURNING 1), ",
        WriteCtes(kFirstWrite, kGate), ", ",
        // The batch never fills an order it cancels (the in-memory book no longer has it), nor cancels one it
        // fills (SpotMarketService::Batch::Cancel): a row is updated by one of `filled` and `cancelled` at most.
        "cancelled AS ("
        "  UPDATE spot_orders o SET status = 3, cancel_reason = ",
        static_cast<int>(SpotCancelReason::kByOwner),
        ",    updated_at = to_timestamp(c.at_us::double precision / 1e6) "
        "  FROM unnest($",
        kCounts + 2, "::text[], $", kCounts + 3, "::bigint[], $", kCounts + 4,
        "::bigint[]) AS c (commodity_id, seq, at_us) "
        "  WHERE o.commodity_id = c.commodity_id AND o.seq = c.seq AND o.status = 1 AND ",
        kGate, "  RETURNING 1), ", OutboxRowsCtes(kFirstEvent, kGate, notify), " ", "SELECT spot_check(", kGate,
        ", 'a spot book was written by another process since this one last did'), ",
        "  spot_check((SELECT count(*) FROM filled) = $", kCounts + 1,
        ", 'a resting order the in-memory book filled is not open in the database'), ",
        "  spot_check((SELECT count(*) FROM cancelled) = $", kCounts + 5,
        ", 'an order the in-memory book cancelled is not open in the database'), ",
        "  (SELECT count(*) FROM notified)");
  };
  static const std::string kSql[] = {sql(false), sql(true)};
  static constexpr const char* kName[] = {"spot_write_alone_quiet", "spot_write_alone"};
  std::vector<std::string> ids;
  std::vector<int64_t> versions, next_seqs, next_trade_seqs;
  for (const BookWrite& b : books) {
    ids.push_back(b.commodity_id);
    versions.push_back(b.version);
    next_seqs.push_back(b.next_seq);
    next_trade_seqs.push_back(b.next_trade_seq);
  }
  std::vector<std::string> cancel_books;
  std::vector<int64_t> cancel_seqs, cancel_times;
  for (const SpotCancelWrite& c : cancels) {
    cancel_books.push_back(c.commodity_id);
    cancel_seqs.push_back(c.seq);
    cancel_times.push_back(absl::ToUnixMicros(c.at));
  }
  const BatchParams params = ParamsOf(orders, fills, trades);
  const std::vector<std::string> e = OutboxRowsParams(events);
  const std::vector<std::string>& o = params.orders;
  const std::vector<std::string>& f = params.fills;
  const std::vector<std::string>& t = params.trades;
  tx.conn().prepare(kName[notify], kSql[notify]);
  tx.exec_prepared(kName[notify], TextArray(ids), NumberArray(versions), NumberArray(next_seqs),
                   NumberArray(next_trade_seqs), o[0], o[1], o[2], o[3], o[4], o[5], o[6], o[7], o[8], o[9], o[10],
                   o[11], o[12], o[13], o[14], o[15], o[16], o[17], absl::ToUnixMicros(now), f[0], f[1], f[2], t[0],
                   t[1], t[2], t[3], t[4], t[5], t[6], t[7], t[8], t[9], t[10], t[11], t[12], t[13], t[14], e[0], e[1],
                   e[2], e[3], e[4], e[5], e[6], static_cast<int64_t>(books.size()), static_cast<int64_t>(fills.size()),
                   TextArray(cancel_books), NumberArray(cancel_seqs), NumberArray(cancel_times),
                   static_cast<int64_t>(cancels.size()));
}

absl::StatusOr<SpotOrderRow> SpotStore::GetOrder(pqxx::work& tx, const std::string& tenant_id,
                                                 const std::string& order_id) {
  static const std::string kSql =
      absl::StrCat("SELECT ", kOrderColumns, " FROM spot_orders WHERE tenant_id = $1 AND order_id = $2");
  pqxx::result r = tx.exec_params(kSql, tenant_id, order_id);
  if (r.empty()) return absl::NotFoundError(absl::StrCat("spot order ", order_id, " not found"));
  return OrderFromRow(r[0]);
}

void SpotStore::CancelOrder(pqxx::work& tx, const std::string& order_id, SpotCancelReason reason, absl::Time now) {
  static constexpr char kSql[] =
      "UPDATE spot_orders SET status = 3, cancel_reason = $2, updated_at = to_timestamp($3::double precision / 1e6) "
      "WHERE order_id = $1";
  tx.exec_params(kSql, order_id, static_cast<int>(reason), absl::ToUnixMicros(now));
}

std::vector<SpotOrderRow> SpotStore::ListOrders(pqxx::work& tx, const std::string& tenant_id,
                                                const SpotOrderFilter& filter, const SpotPage& page) {
  static const std::string kSql =
      absl::StrCat("SELECT ", kOrderColumns, " FROM spot_orders WHERE tenant_id = $1 ",
                   "AND ($2 = '' OR commodity_id = $2) AND ($3 = 0 OR side = $3) AND ($4 = 0 OR status = $4) ",
                   "AND ($5 = '' OR order_id < $5) ORDER BY order_id DESC LIMIT $6");
  std::vector<SpotOrderRow> out;
  for (const auto& row :
       tx.exec_params(kSql, tenant_id, filter.commodity_id, filter.side, filter.status, page.after_id, page.size + 1)) {
    out.push_back(OrderFromRow(row));
  }
  return out;
}

// ---- trades ----

std::vector<SpotTradeRow> SpotStore::TradesTakenBy(pqxx::work& tx, const std::string& order_id) {
  static const std::string kSql =
      absl::StrCat("SELECT ", kTradeColumns, " FROM spot_trades WHERE taker_order_id = $1 ORDER BY seq");
  std::vector<SpotTradeRow> out;
  for (const auto& row : tx.exec_params(kSql, order_id)) out.push_back(TradeFromRow(row));
  return out;
}

std::vector<SpotTradeRow> SpotStore::ListTrades(pqxx::work& tx, const std::string& tenant_id,
                                                const std::string& commodity_id, const SpotPage& page) {
  // Two index scans (as buyer, as seller) merged; a tenant is never both sides of one trade.
  static const std::string kSql =
      absl::StrCat("SELECT ", kTradeColumns, " FROM spot_trades WHERE (buyer_tenant_id = $1 OR seller_tenant_id = $1) ",
                   "AND ($2 = '' OR commodity_id = $2) AND ($3 = '' OR trade_id < $3) ORDER BY trade_id DESC LIMIT $4");
  std::vector<SpotTradeRow> out;
  for (const auto& row : tx.exec_params(kSql, tenant_id, commodity_id, page.after_id, page.size + 1)) {
    out.push_back(TradeFromRow(row));
  }
  return out;
}

std::vector<SpotTradeRow> SpotStore::TapeAfter(pqxx::work& tx, const std::string& commodity_id, int64_t after_seq,
                                               int limit) {
  static const std::string kSql = absl::StrCat("SELECT ", kTradeColumns,
                                               " FROM spot_trades WHERE commodity_id = $1 AND seq > $2 ORDER BY seq "
                                               "LIMIT $3");
  std::vector<SpotTradeRow> out;
  for (const auto& row : tx.exec_params(kSql, commodity_id, after_seq, limit)) out.push_back(TradeFromRow(row));
  return out;
}

int64_t SpotStore::LastTradeSeq(pqxx::work& tx, const std::string& commodity_id) {
  static constexpr char kSql[] = "SELECT coalesce(max(seq), 0) FROM spot_trades WHERE commodity_id = $1";
  return tx.exec_params(kSql, commodity_id)[0][0].as<int64_t>();
}

// ---- events ----

void SpotStore::WriteEvents(pqxx::work& tx, const std::vector<outbox::Event>& events) {
  if (events.empty()) return;
  auto sql = [](bool notify) {
    return absl::StrCat("WITH ", OutboxRowsCtes(1, "", notify), " SELECT count(*) FROM notified");
  };
  static const std::string kSql[] = {sql(false), sql(true)};
  static constexpr const char* kName[] = {"spot_write_events_quiet", "spot_write_events"};
  const bool notify = !outbox::WakeLocalRelaysAfterCommit(tx);
  const std::vector<std::string> e = OutboxRowsParams(events);
  tx.conn().prepare(kName[notify], kSql[notify]);
  tx.exec_prepared(kName[notify], e[0], e[1], e[2], e[3], e[4], e[5], e[6]);
}

}  // namespace ptd::trading
