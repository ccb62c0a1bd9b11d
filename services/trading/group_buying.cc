// Group buying: OrderService's group-offer RPCs, the closing rule and the deadline sweeper.
#include "services/trading/group_buying.h"

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "libs/core/ids.h"
#include "libs/core/log.h"
#include "libs/core/request.h"
#include "libs/core/status.h"
#include "services/trading/domain/orders.h"
#include "services/trading/mapping.h"
#include "services/trading/order_service.h"
#include "services/trading/store/catalog_store.h"
#include "services/trading/store/group_store.h"

namespace ptd::trading {
namespace {

constexpr absl::Duration kMaxGroupWindow = absl::Hours(24 * 90);

std::vector<PriceTierRule> TierRules(const v1::GroupOffer& g) {
  std::vector<PriceTierRule> tiers;
  for (const auto& t : g.tiers()) tiers.push_back({t.min_quantity().milli(), FromProto(t.unit_price())});
  return tiers;
}

}  // namespace

absl::Status CloseGroup(pqxx::work& tx, const std::string& group_id) {
  absl::StatusOr<v1::GroupOffer> group = GroupStore::Get(tx, group_id);
  if (!group.ok()) return group.status();
  if (group->state() != v1::GROUP_OPEN) return absl::OkStatus();
  std::vector<v1::GroupMembership> members = GroupStore::Members(tx, group_id);
  const int64_t total = group->joined().milli();
  if (total < group->tiers(0).min_quantity().milli()) {
    GroupStore::Finish(tx, group_id, v1::GROUP_CANCELLED, std::nullopt);
    v1::GroupOfferCancelled event;
    *event.mutable_group() = *GroupStore::Get(tx, group_id);
    for (auto& m : members) *event.add_members() = m;
    return PublishTradingEvent(tx, "ptd.trading.v1.GroupOfferCancelled", group_id, group->seller_tenant_id(), event);
  }
  std::vector<PriceTierRule> tiers = TierRules(*group);
  Money price = TierPrice(tiers.front().unit_price, tiers, total);
  Caller seller{.tenant_id = group->seller_tenant_id(), .subject = "group-offer:" + group_id};
  for (v1::GroupMembership& m : members) {
    absl::StatusOr<Money> line_total = PriceOf(price, m.quantity().milli());
    if (!line_total.ok()) return line_total.status();
    v1::Order order;
    order.set_buyer_tenant_id(m.buyer_tenant_id());
    order.set_seller_tenant_id(group->seller_tenant_id());
    order.set_commodity_id(group->commodity_id());
    *order.mutable_goods() = group->title();
    *order.mutable_quantity() = m.quantity();
    ToProto(price, order.mutable_unit_price());
    ToProto(*line_total, order.mutable_total());
    *order.mutable_delivery() = group->delivery();
    *order.mutable_payment() = group->payment();
    Caller buyer{.tenant_id = m.buyer_tenant_id(), .subject = seller.subject};
    absl::StatusOr<v1::Order> placed = InsertPlacedOrder(tx, std::move(order), buyer, "group:" + group_id, "group");
    if (!placed.ok()) return placed.status();
    GroupStore::SetMemberOrder(tx, group_id, m.buyer_tenant_id(), placed->order_id());
    m.set_order_id(placed->order_id());
  }
  GroupStore::Finish(tx, group_id, v1::GROUP_CLOSED, price.amount_minor);
  v1::GroupOfferClosed event;
  *event.mutable_group() = *GroupStore::Get(tx, group_id);
  for (auto& m : members) *event.add_members() = m;
  log::Info("group offer closed", {{"group_id", group_id}, {"members", members.size()}, {"price_minor", price.amount_minor}});
  return PublishTradingEvent(tx, "ptd.trading.v1.GroupOfferClosed", group_id, group->seller_tenant_id(), event);
}

void GroupDeadlineSweeper::Start() {
  thread_ = std::thread([this] {
    std::unique_lock<std::mutex> lock(mu_);
    while (!stopping_) {
      lock.unlock();
      if (absl::StatusOr<int> n = SweepOnce(); !n.ok()) {
        log::Warn("group sweep failed", {{"status", n.status().ToString()}});
      }
      lock.lock();
      wake_.wait_for(lock, absl::ToChronoMilliseconds(interval_), [this] { return stopping_; });
    }
  });
}

void GroupDeadlineSweeper::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

absl::StatusOr<int> GroupDeadlineSweeper::SweepOnce() {
  return pool_.InTransaction([&](pqxx::work& tx) -> absl::StatusOr<int> {
    std::vector<std::string> due = GroupStore::LockDue(tx, 20);
    for (const std::string& id : due) {
      if (absl::Status s = CloseGroup(tx, id); !s.ok()) return s;
    }
    return static_cast<int>(due.size());
  });
}

grpc::Status OrderService::OpenGroupOffer(grpc::ServerContext* context, const v1::OpenGroupOfferRequest* request,
                                          v1::GroupOffer* response) {
  auto caller = CallerOf(*context);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  FieldViolations violations;
  CheckIdempotencyKey(request->idempotency_key(), violations);
  CheckId("commodity_id", request->commodity_id(), violations);
  ValidateNames("title", FromProto(request->title()), violations);
  if (request->tiers_size() < 1 || request->tiers_size() > 16) {
    violations.Add("tiers", "must have between 1 and 16 tiers");
  } else {
    const auto& first = request->tiers(0);
    if (!IsCurrencyCode(first.unit_price().currency())) violations.Add("tiers[0].unit_price.currency", "must be an ISO 4217 code");
    if (first.min_quantity().milli() <= 0) violations.Add("tiers[0].min_quantity.milli", "must be positive");
    if (first.unit_price().amount_minor() <= 0) violations.Add("tiers[0].unit_price.amount_minor", "must be positive");
    for (int i = 1; i < request->tiers_size(); ++i) {
      const auto& t = request->tiers(i);
      const auto& prev = request->tiers(i - 1);
      std::string at = absl::StrCat("tiers[", i, "]");
      if (t.min_quantity().milli() <= prev.min_quantity().milli()) violations.Add(at + ".min_quantity.milli", "must be above the previous tier's");
      if (t.min_quantity().unit() != first.min_quantity().unit()) violations.Add(at + ".min_quantity.unit", "must be the first tier's unit");
      if (t.unit_price().currency() != first.unit_price().currency()) violations.Add(at + ".unit_price.currency", "must be the first tier's currency");
      if (t.unit_price().amount_minor() <= 0 || t.unit_price().amount_minor() >= prev.unit_price().amount_minor()) {
        violations.Add(at + ".unit_price.amount_minor", "must be positive and below the previous tier's");
      }
    }
  }
  absl::Time now = absl::Now();
  if (!request->has_deadline() || FromProto(request->deadline()) <= now ||
      FromProto(request->deadline()) > now + kMaxGroupWindow) {
    violations.Add("deadline", "must be in the next 90 days");
  }
  if (!v1::DeliveryTerms::Kind_IsValid(request->delivery().kind())) violations.Add("delivery.kind", "unknown delivery kind");
  if (!v1::PaymentTerms::Kind_IsValid(request->payment().kind())) violations.Add("payment.kind", "unknown payment kind");
  if (!violations.empty()) return ToGrpcStatus(violations.ToStatus());
  std::string hash = RequestHash(*request);
  auto opened = pool_.InTransaction([&](pqxx::work& tx) -> absl::StatusOr<v1::GroupOffer> {
    if (auto earlier = GroupStore::FindByIdempotencyKey(tx, caller->tenant_id, request->idempotency_key())) {
      if (earlier->second != hash) return ReusedKeyError();
      return GroupStore::Get(tx, earlier->first);
    }
    absl::StatusOr<Commodity> commodity = CommodityStore::Get(tx, request->commodity_id());
    if (!commodity.ok()) return InvalidField("commodity_id", "no such commodity in the catalogue");
    if (commodity->unit != request->tiers(0).min_quantity().unit()) {
      return InvalidField("tiers[0].min_quantity.unit", absl::StrCat("must be the commodity's unit '", commodity->unit, "'"));
    }
    v1::GroupOffer g;
    g.set_group_id(NewId());
    g.set_seller_tenant_id(caller->tenant_id);
    g.set_commodity_id(request->commodity_id());
    *g.mutable_title() = request->title();
    *g.mutable_tiers() = request->tiers();
    *g.mutable_deadline() = request->deadline();
    *g.mutable_delivery() = request->delivery();
    *g.mutable_payment() = request->payment();
    ToProto(now, g.mutable_create_time());
    GroupStore::Insert(tx, g, request->idempotency_key(), hash);
    absl::StatusOr<v1::GroupOffer> stored = GroupStore::Get(tx, g.group_id());
    v1::GroupOfferOpened event;
    *event.mutable_group() = *stored;
    if (absl::Status s = PublishTradingEvent(tx, "ptd.trading.v1.GroupOfferOpened", g.group_id(), caller->tenant_id, event);
        !s.ok()) {
      return s;
    }
    return stored;
  });
  if (!opened.ok()) return Answer("OpenGroupOffer", opened.status());
  *response = *opened;
  return grpc::Status::OK;
}

grpc::Status OrderService::GetGroupOffer(grpc::ServerContext* context, const v1::GetGroupOfferRequest* request,
                                         v1::GroupOffer* response) {
  auto caller = CallerOf(*context);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  FieldViolations violations;
  CheckId("group_id", request->group_id(), violations);
  if (!violations.empty()) return ToGrpcStatus(violations.ToStatus());
  auto group = pool_.InTransaction([&](pqxx::work& tx) -> absl::StatusOr<v1::GroupOffer> {
    absl::StatusOr<v1::GroupOffer> g = GroupStore::Get(tx, request->group_id());
    if (!g.ok()) return g.status();
    // Open groups are public; a finished one belongs to its seller and members.
    if (g->state() != v1::GROUP_OPEN && g->seller_tenant_id() != caller->tenant_id &&
        !GroupStore::GetMember(tx, g->group_id(), caller->tenant_id)) {
      return absl::NotFoundError(absl::StrCat("group offer ", request->group_id(), " not found"));
    }
    return g;
  });
  if (!group.ok()) return Answer("GetGroupOffer", group.status());
  *response = *group;
  return grpc::Status::OK;
}

grpc::Status OrderService::JoinGroupOffer(grpc::ServerContext* context, const v1::JoinGroupOfferRequest* request,
                                          v1::GroupMembership* response) {
  auto caller = CallerOf(*context);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  FieldViolations violations;
  CheckId("group_id", request->group_id(), violations);
  CheckIdempotencyKey(request->idempotency_key(), violations);
  if (request->quantity().milli() <= 0) violations.Add("quantity.milli", "must be positive");
  if (!IsUnit(request->quantity().unit())) violations.Add("quantity.unit", "unknown unit");
  if (!violations.empty()) return ToGrpcStatus(violations.ToStatus());
  auto joined = pool_.InTransaction([&](pqxx::work& tx) -> absl::StatusOr<v1::GroupMembership> {
    // The group's row lock orders this join against the deadline sweeper and other joins.
    absl::StatusOr<v1::GroupOffer> g = GroupStore::Get(tx, request->group_id(), /*for_update=*/true);
    if (!g.ok()) return g.status();
    if (auto member = GroupStore::GetMember(tx, g->group_id(), caller->tenant_id)) {
      if (GroupStore::MemberKey(tx, g->group_id(), caller->tenant_id) == request->idempotency_key()) return *member;
      return absl::AlreadyExistsError("already a member of this group offer");
    }
    if (g->seller_tenant_id() == caller->tenant_id) return absl::FailedPreconditionError("a seller cannot join its own group offer");
    absl::Time now = absl::Now();
    if (g->state() != v1::GROUP_OPEN || now >= FromProto(g->deadline())) {
      return absl::FailedPreconditionError("the group offer is closed");
    }
    if (request->quantity().unit() != g->joined().unit()) {
      return InvalidField("quantity.unit", absl::StrCat("must be the group's unit '", g->joined().unit(), "'"));
    }
    v1::GroupMembership m;
    m.set_group_id(g->group_id());
    m.set_buyer_tenant_id(caller->tenant_id);
    *m.mutable_quantity() = request->quantity();
    ToProto(now, m.mutable_join_time());
    GroupStore::AddMember(tx, m, request->idempotency_key());
    v1::GroupOfferJoined event;
    *event.mutable_group() = *GroupStore::Get(tx, g->group_id());
    *event.mutable_member() = m;
    if (absl::Status s = PublishTradingEvent(tx, "ptd.trading.v1.GroupOfferJoined", g->group_id(), caller->tenant_id, event);
        !s.ok()) {
      return s;
    }
    // Reaching the top tier closes the group at once.
    if (event.group().joined().milli() >= g->tiers(g->tiers_size() - 1).min_quantity().milli()) {
      if (absl::Status s = CloseGroup(tx, g->group_id()); !s.ok()) return s;
    }
    return *GroupStore::GetMember(tx, g->group_id(), caller->tenant_id);
  });
  if (!joined.ok()) return Answer("JoinGroupOffer", joined.status());
  *response = *joined;
  return grpc::Status::OK;
}

}  // namespace ptd::trading
