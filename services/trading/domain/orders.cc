#include "services/trading/domain/orders.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace ptd::trading {

const std::vector<OrderTransitionRule>& OrderTransitions() {
  using S = OrderState;
  using A = OrderAction;
  static const std::vector<OrderTransitionRule> rules = {
      {A::kConfirm, Actor::kSeller, {S::kPlaced}, S::kConfirmed},
      {A::kPay, Actor::kBuyer, {S::kConfirmed}, S::kPaid},
      {A::kShip, Actor::kSeller, {S::kPaid}, S::kShipped},
      {A::kDeliver, Actor::kBuyer, {S::kShipped}, S::kDelivered},
      {A::kComplete, Actor::kBuyer, {S::kDelivered}, S::kCompleted},
      {A::kCancel, Actor::kEither, {S::kPlaced, S::kConfirmed, S::kPaid}, S::kCancelled},
      {A::kDispute, Actor::kBuyer, {S::kShipped, S::kDelivered}, S::kDisputed},
      {A::kResolveForSeller, Actor::kSeller, {S::kDisputed}, S::kCompleted},
      {A::kRefund, Actor::kSeller, {S::kDisputed}, S::kRefunded},
  };
  return rules;
}

std::string_view OrderStateName(OrderState state) {
  static constexpr std::string_view kNames[] = {"",        "PLACED",    "CONFIRMED", "PAID",    "SHIPPED",
                                                "DELIVERED", "COMPLETED", "CANCELLED", "DISPUTED", "REFUNDED"};
  int i = static_cast<int>(state);
  return i >= 1 && i <= 9 ? kNames[i] : "UNKNOWN";
}

std::string_view OrderActionName(OrderAction action) {
  static constexpr std::string_view kNames[] = {"",       "CONFIRM", "PAY",     "SHIP",
                                                "DELIVER", "COMPLETE", "CANCEL", "DISPUTE",
                                                "RESOLVE_FOR_SELLER", "REFUND"};
  int i = static_cast<int>(action);
  return i >= 1 && i <= 9 ? kNames[i] : "UNKNOWN";
}

std::string_view OrderEventType(OrderState to) {
  switch (to) {
    case OrderState::kPlaced: return "ptd.trading.v1.OrderPlaced";
    case OrderState::kConfirmed: return "ptd.trading.v1.OrderConfirmed";
    case OrderState::kPaid: return "ptd.trading.v1.OrderPaid";
    case OrderState::kShipped: return "ptd.trading.v1.OrderShipped";
    case OrderState::kDelivered: return "ptd.trading.v1.OrderDelivered";
    case OrderState::kCompleted: return "ptd.trading.v1.OrderCompleted";
    case OrderState::kCancelled: return "ptd.trading.v1.OrderCancelled";
    case OrderState::kDisputed: return "ptd.trading.v1.OrderDisputed";
    case OrderState::kRefunded: return "ptd.trading.v1.OrderRefunded";
  }
  return "";
}

absl::StatusOr<OrderState> NextOrderState(OrderState from, OrderAction action, Party party) {
  const auto& rules = OrderTransitions();
  auto rule = std::find_if(rules.begin(), rules.end(), [&](const OrderTransitionRule& r) { return r.action == action; });
  if (rule == rules.end()) return absl::InvalidArgumentError("action: unknown order action");
  if (std::find(rule->from.begin(), rule->from.end(), from) == rule->from.end()) {
    return absl::FailedPreconditionError(absl::StrCat(std::string(OrderActionName(action)),
                                                      " is not allowed for an order in state ",
                                                      std::string(OrderStateName(from))));
  }
  if (rule->actor != Actor::kEither && (rule->actor == Actor::kBuyer) != (party == Party::kBuyer)) {
    return absl::PermissionDeniedError(absl::StrCat(std::string(OrderActionName(action)), " is the ",
                                                    rule->actor == Actor::kBuyer ? "buyer" : "seller", "'s to take"));
  }
  return rule->to;
}

bool ReleasesQuantity(OrderState to) { return to == OrderState::kCancelled; }

Money TierPrice(const Money& base, const std::vector<PriceTierRule>& tiers, int64_t quantity_milli) {
  Money price = base;
  for (const PriceTierRule& tier : tiers) {
    if (quantity_milli >= tier.min_quantity_milli) price = tier.unit_price;
  }
  return price;
}

}  // namespace ptd::trading
