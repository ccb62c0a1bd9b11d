#include "services/trading/store/group_store.h"

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "services/trading/mapping.h"

namespace ptd::trading {
namespace {

constexpr char kGroupColumns[] =
    "group_id, seller_tenant_id, commodity_id, titles::text, unit, currency, tiers::text, "
    "(extract(epoch from deadline) * 1000000)::bigint, state, joined_milli, reached_price_minor, delivery::text, "
    "payment::text, (extract(epoch from created_at) * 1000000)::bigint, "
    "(extract(epoch from closed_at) * 1000000)::bigint, "
    "(SELECT count(*) FROM group_members m WHERE m.group_id = group_offers.group_id)";

void Micros(const pqxx::field& f, google::protobuf::Timestamp* out) {
  if (!f.is_null()) ToProto(absl::FromUnixMicros(f.as<int64_t>()), out);
}

v1::GroupOffer GroupFromRow(const pqxx::row& r) {
  v1::GroupOffer g;
  g.set_group_id(r[0].as<std::string>());
  g.set_seller_tenant_id(r[1].as<std::string>());
  g.set_commodity_id(r[2].as<std::string>());
  for (const auto& n : nlohmann::json::parse(r[3].as<std::string>())) {
    auto* t = g.add_title();
    t->set_lang(n.at("lang").get<std::string>());
    t->set_text(n.at("text").get<std::string>());
  }
  std::string unit = r[4].as<std::string>(), currency = r[5].as<std::string>();
  for (const auto& t : nlohmann::json::parse(r[6].as<std::string>())) {
    auto* tier = g.add_tiers();
    tier->mutable_min_quantity()->set_milli(t.at("min_milli").get<int64_t>());
    tier->mutable_min_quantity()->set_unit(unit);
    tier->mutable_unit_price()->set_currency(currency);
    tier->mutable_unit_price()->set_amount_minor(t.at("amount_minor").get<int64_t>());
  }
  Micros(r[7], g.mutable_deadline());
  g.set_state(static_cast<v1::GroupOfferState>(r[8].as<int>()));
  g.mutable_joined()->set_milli(r[9].as<int64_t>());
  g.mutable_joined()->set_unit(unit);
  if (!r[10].is_null()) {
    g.mutable_reached_price()->set_currency(currency);
    g.mutable_reached_price()->set_amount_minor(r[10].as<int64_t>());
  }
  FromJson(r[11].as<std::string>(), g.mutable_delivery());
  FromJson(r[12].as<std::string>(), g.mutable_payment());
  Micros(r[13], g.mutable_create_time());
  Micros(r[14], g.mutable_close_time());
  g.set_member_count(r[15].as<int>());
  return g;
}

v1::GroupMembership MemberFromRow(const pqxx::row& r, const std::string& unit) {
  v1::GroupMembership m;
  m.set_group_id(r[0].as<std::string>());
  m.set_buyer_tenant_id(r[1].as<std::string>());
  m.mutable_quantity()->set_milli(r[2].as<int64_t>());
  m.mutable_quantity()->set_unit(unit);
  if (!r[3].is_null()) m.set_order_id(r[3].as<std::string>());
  Micros(r[4], m.mutable_join_time());
  return m;
}

constexpr char kMemberColumns[] =
    "m.group_id, m.buyer_tenant_id, m.quantity_milli, m.order_id, (extract(epoch from m.joined_at) * 1000000)::bigint, "
    "g.unit";

}  // namespace

absl::StatusOr<v1::GroupOffer> GroupStore::Get(pqxx::work& tx, const std::string& group_id, bool for_update) {
  static const std::string kSql = absl::StrCat("SELECT ", kGroupColumns, " FROM group_offers WHERE group_id = $1");
  static const std::string kSqlForUpdate = kSql + " FOR UPDATE";
  pqxx::result r = tx.exec_params(for_update ? kSqlForUpdate : kSql, group_id);
  if (r.empty()) return absl::NotFoundError(absl::StrCat("group offer ", group_id, " not found"));
  return GroupFromRow(r[0]);
}

std::optional<std::pair<std::string, std::string>> GroupStore::FindByIdempotencyKey(pqxx::work& tx,
                                                                                    const std::string& seller,
                                                                                    const std::string& key) {
  static constexpr char kSql[] =
      "SELECT group_id, request_hash FROM group_offers WHERE seller_tenant_id = $1 AND idempotency_key = $2";
  pqxx::result r = tx.exec_params(kSql, seller, key);
  if (r.empty()) return std::nullopt;
  return std::make_pair(r[0][0].as<std::string>(), r[0][1].as<std::string>());
}

void GroupStore::Insert(pqxx::work& tx, const v1::GroupOffer& g, const std::string& idempotency_key,
                        const std::string& request_hash) {
  static constexpr char kSql[] =
      "INSERT INTO group_offers (group_id, seller_tenant_id, commodity_id, titles, unit, currency, tiers, "
      "min_total_milli, top_total_milli, deadline, delivery, payment, idempotency_key, request_hash, created_at) "
      "VALUES ($1, $2, $3, $4::jsonb, $5, $6, $7::jsonb, $8, $9, to_timestamp($10::double precision / 1e6), "
      "$11::jsonb, $12::jsonb, $13, $14, to_timestamp($15::double precision / 1e6))";
  nlohmann::json titles = nlohmann::json::array(), tiers = nlohmann::json::array();
  for (const auto& t : g.title()) titles.push_back({{"lang", t.lang()}, {"text", t.text()}});
  for (const auto& t : g.tiers()) {
    tiers.push_back({{"min_milli", t.min_quantity().milli()}, {"amount_minor", t.unit_price().amount_minor()}});
  }
  tx.exec_params(kSql, g.group_id(), g.seller_tenant_id(), g.commodity_id(), titles.dump(),
                 g.tiers(0).min_quantity().unit(), g.tiers(0).unit_price().currency(), tiers.dump(),
                 g.tiers(0).min_quantity().milli(), g.tiers(g.tiers_size() - 1).min_quantity().milli(),
                 absl::ToUnixMicros(FromProto(g.deadline())), ToJson(g.delivery()), ToJson(g.payment()),
                 idempotency_key, request_hash, absl::ToUnixMicros(FromProto(g.create_time())));
}

std::optional<v1::GroupMembership> GroupStore::GetMember(pqxx::work& tx, const std::string& group_id,
                                                         const std::string& buyer) {
  static const std::string kSql =
      absl::StrCat("SELECT ", kMemberColumns, " FROM group_members m JOIN group_offers g USING (group_id) ",
                   "WHERE m.group_id = $1 AND m.buyer_tenant_id = $2");
  pqxx::result r = tx.exec_params(kSql, group_id, buyer);
  if (r.empty()) return std::nullopt;
  return MemberFromRow(r[0], r[0][5].as<std::string>());
}

std::string GroupStore::MemberKey(pqxx::work& tx, const std::string& group_id, const std::string& buyer) {
  static constexpr char kSql[] =
      "SELECT idempotency_key FROM group_members WHERE group_id = $1 AND buyer_tenant_id = $2";
  pqxx::result r = tx.exec_params(kSql, group_id, buyer);
  return r.empty() ? "" : r[0][0].as<std::string>();
}

void GroupStore::AddMember(pqxx::work& tx, const v1::GroupMembership& m, const std::string& idempotency_key) {
  static constexpr char kInsert[] =
      "INSERT INTO group_members (group_id, buyer_tenant_id, quantity_milli, idempotency_key, joined_at) "
      "VALUES ($1, $2, $3, $4, to_timestamp($5::double precision / 1e6))";
  static constexpr char kTotal[] = "UPDATE group_offers SET joined_milli = joined_milli + $2 WHERE group_id = $1";
  tx.exec_params(kInsert, m.group_id(), m.buyer_tenant_id(), m.quantity().milli(), idempotency_key,
                 absl::ToUnixMicros(FromProto(m.join_time())));
  tx.exec_params(kTotal, m.group_id(), m.quantity().milli());
}

std::vector<v1::GroupMembership> GroupStore::Members(pqxx::work& tx, const std::string& group_id) {
  static const std::string kSql =
      absl::StrCat("SELECT ", kMemberColumns, " FROM group_members m JOIN group_offers g USING (group_id) ",
                   "WHERE m.group_id = $1 ORDER BY m.joined_at, m.buyer_tenant_id");
  std::vector<v1::GroupMembership> out;
  for (const auto& r : tx.exec_params(kSql, group_id)) out.push_back(MemberFromRow(r, r[5].as<std::string>()));
  return out;
}

void GroupStore::SetMemberOrder(pqxx::work& tx, const std::string& group_id, const std::string& buyer,
                                const std::string& order_id) {
  static constexpr char kSql[] =
      "UPDATE group_members SET order_id = $3 WHERE group_id = $1 AND buyer_tenant_id = $2";
  tx.exec_params(kSql, group_id, buyer, order_id);
}

void GroupStore::Finish(pqxx::work& tx, const std::string& group_id, v1::GroupOfferState state,
                        std::optional<int64_t> reached_price_minor) {
  static constexpr char kSql[] =
      "UPDATE group_offers SET state = $2, reached_price_minor = $3, closed_at = now() WHERE group_id = $1";
  tx.exec_params(kSql, group_id, static_cast<int>(state), reached_price_minor);
}

std::vector<std::string> GroupStore::LockDue(pqxx::work& tx, int limit) {
  static constexpr char kSql[] =
      "SELECT group_id FROM group_offers WHERE state = 1 AND deadline <= now() ORDER BY deadline "
      "LIMIT $1 FOR UPDATE SKIP LOCKED";
  std::vector<std::string> out;
  for (const auto& r : tx.exec_params(kSql, limit)) out.push_back(r[0].as<std::string>());
  return out;
}

}  // namespace ptd::trading
