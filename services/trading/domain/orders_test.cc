#include "services/trading/domain/orders.h"

#include <catch2/catch.hpp>

using namespace ptd::trading;

TEST_CASE("orders: the happy path walks placed -> confirmed -> paid -> shipped -> delivered -> completed") {
  OrderState s = OrderState::kPlaced;
  const std::pair<OrderAction, Party> steps[] = {{OrderAction::kConfirm, Party::kSeller},
                                                 {OrderAction::kPay, Party::kBuyer},
                                                 {OrderAction::kShip, Party::kSeller},
                                                 {OrderAction::kDeliver, Party::kBuyer},
                                                 {OrderAction::kComplete, Party::kBuyer}};
  for (auto [action, party] : steps) {
    auto next = NextOrderState(s, action, party);
    REQUIRE(next.ok());
    s = *next;
  }
  CHECK(s == OrderState::kCompleted);
}

TEST_CASE("orders: every state x action x party is legal exactly when the table says so") {
  int legal = 0;
  for (int st = 1; st <= 9; ++st) {
    for (int ac = 1; ac <= 9; ++ac) {
      for (Party party : {Party::kBuyer, Party::kSeller}) {
        auto from = static_cast<OrderState>(st);
        auto action = static_cast<OrderAction>(ac);
        const OrderTransitionRule* rule = nullptr;
        for (const auto& r : OrderTransitions()) {
          if (r.action == action) rule = &r;
        }
        REQUIRE(rule != nullptr);
        bool from_ok = std::find(rule->from.begin(), rule->from.end(), from) != rule->from.end();
        bool party_ok = rule->actor == Actor::kEither || (rule->actor == Actor::kBuyer) == (party == Party::kBuyer);
        auto next = NextOrderState(from, action, party);
        INFO(OrderStateName(from) << " " << OrderActionName(action));
        if (!from_ok) {
          CHECK(next.status().code() == absl::StatusCode::kFailedPrecondition);
        } else if (!party_ok) {
          CHECK(next.status().code() == absl::StatusCode::kPermissionDenied);
        } else {
          REQUIRE(next.ok());
          CHECK(*next == rule->to);
          ++legal;
        }
      }
    }
  }
  // confirm, pay, ship, deliver, complete, resolve, refund: 1 each; cancel: 3 states x 2 parties; dispute: 2.
  CHECK(legal == 15);
}

TEST_CASE("orders: nothing leaves a final state") {
  for (OrderState final_state : {OrderState::kCompleted, OrderState::kCancelled, OrderState::kRefunded}) {
    for (int ac = 1; ac <= 9; ++ac) {
      for (Party party : {Party::kBuyer, Party::kSeller}) {
        CHECK_FALSE(NextOrderState(final_state, static_cast<OrderAction>(ac), party).ok());
      }
    }
  }
}

TEST_CASE("orders: shipping cannot be cancelled, and disputes come only after shipping") {
  CHECK(NextOrderState(OrderState::kShipped, OrderAction::kCancel, Party::kBuyer).status().code() ==
        absl::StatusCode::kFailedPrecondition);
  CHECK(NextOrderState(OrderState::kPaid, OrderAction::kDispute, Party::kBuyer).status().code() ==
        absl::StatusCode::kFailedPrecondition);
  CHECK(NextOrderState(OrderState::kPlaced, OrderAction::kConfirm, Party::kBuyer).status().code() ==
        absl::StatusCode::kPermissionDenied);
}

TEST_CASE("orders: tier price is the highest tier the quantity reaches") {
  ptd::Money base{"CNY", 1000};
  std::vector<PriceTierRule> tiers = {{10000, {"CNY", 950}}, {50000, {"CNY", 900}}};
  CHECK(TierPrice(base, tiers, 9999).amount_minor == 1000);
  CHECK(TierPrice(base, tiers, 10000).amount_minor == 950);
  CHECK(TierPrice(base, tiers, 49999).amount_minor == 950);
  CHECK(TierPrice(base, tiers, 50000).amount_minor == 900);
  CHECK(TierPrice(base, {}, 1).amount_minor == 1000);
}
