#ifndef PTD_SERVICES_TRADING_DOMAIN_ORDERS_H_
#define PTD_SERVICES_TRADING_DOMAIN_ORDERS_H_

#include <cstdint>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "libs/core/money.h"

// Orders between two tenants: the life-cycle state machine (as a table), tier pricing. No I/O.
namespace ptd::trading {

// Same numbers as ptd.trading.v1.OrderState / OrderAction.
enum class OrderState { kPlaced = 1, kConfirmed, kPaid, kShipped, kDelivered, kCompleted, kCancelled, kDisputed, kRefunded };
enum class OrderAction { kConfirm = 1, kPay, kShip, kDeliver, kComplete, kCancel, kDispute, kResolveForSeller, kRefund };
enum class Party { kBuyer, kSeller };
enum class Actor { kBuyer, kSeller, kEither };

struct OrderTransitionRule {
  OrderAction action;
  Actor actor;
  std::vector<OrderState> from;
  OrderState to;
};

// The whole life cycle, one row per action.
const std::vector<OrderTransitionRule>& OrderTransitions();

// The state after `action` taken by `party` in state `from`: FAILED_PRECONDITION naming the rule when the
// action is not allowed from that state, PERMISSION_DENIED when the other party must take it.
absl::StatusOr<OrderState> NextOrderState(OrderState from, OrderAction action, Party party);

std::string_view OrderStateName(OrderState state);
std::string_view OrderActionName(OrderAction action);
// "ptd.trading.v1.OrderConfirmed" for the state an action leads to.
std::string_view OrderEventType(OrderState to);

// Cancelling returns the reserved quantity to the listing only before shipping; true for those states.
bool ReleasesQuantity(OrderState to);

struct PriceTierRule {
  int64_t min_quantity_milli;
  Money unit_price;
};

// The price per unit for `quantity_milli`: the highest tier whose minimum it reaches, else `base`.
// Tiers must be sorted by min_quantity ascending (validated at listing creation).
Money TierPrice(const Money& base, const std::vector<PriceTierRule>& tiers, int64_t quantity_milli);

}  // namespace ptd::trading

#endif  // PTD_SERVICES_TRADING_DOMAIN_ORDERS_H_
