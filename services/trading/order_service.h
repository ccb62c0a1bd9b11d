#ifndef PTD_SERVICES_TRADING_ORDER_SERVICE_H_
#define PTD_SERVICES_TRADING_ORDER_SERVICE_H_

#include <string_view>

#include "libs/outbox/outbox.h"
#include "libs/pg/pool.h"
#include "libs/server/caller.h"
#include "ptd/trading/v1/orders.grpc.pb.h"
#include "services/trading/buy_now.h"

namespace ptd::trading {

// `order` as placed by `caller` at `now`: a new id, state PLACED, version 1, its times, and its first transition
// as its history; as OrderStore::Get reads it back once stored (`now` in whole microseconds).
v1::Order NewPlacedOrder(v1::Order order, const Caller& caller, absl::Time now);
// The OrderPlaced event of a placed order, for ptd.trading.events.
outbox::Event OrderPlacedEvent(const v1::Order& order, const std::string& request_id);
// Inserts a new order in state PLACED, with its first transition and its OrderPlaced event, in `tx`.
absl::StatusOr<v1::Order> InsertPlacedOrder(pqxx::work& tx, v1::Order order, const Caller& caller,
                                            const std::string& idempotency_key, const std::string& request_hash);
// Writes an event for ptd.trading.events to the outbox, in `tx`.
absl::Status PublishTradingEvent(pqxx::work& tx, std::string_view type, const std::string& aggregate_id,
                                 const std::string& tenant_id, const google::protobuf::Message& payload);

// ptd.trading.v1.OrderService: offers, buy-now orders and their life cycle, RFQs and quotes. Each write is one
// transaction with its outbox events, except buy-now placements, which go through a group commit
// (BuyNowCommitter) and take a transaction of their own only when it sends them back.
class OrderService final : public v1::OrderService::Service {
 public:
  explicit OrderService(pg::Pool& pool, BuyNowOptions buy_now = {}) : pool_(pool), buy_now_(pool, buy_now) {}

  grpc::Status ListOffers(grpc::ServerContext* context, const v1::ListOffersRequest* request,
                          v1::ListOffersResponse* response) override;
  grpc::Status PlaceOrder(grpc::ServerContext* context, const v1::PlaceOrderRequest* request,
                          v1::Order* response) override;
  grpc::Status GetOrder(grpc::ServerContext* context, const v1::GetOrderRequest* request, v1::Order* response) override;
  grpc::Status ListOrders(grpc::ServerContext* context, const v1::ListOrdersRequest* request,
                          v1::ListOrdersResponse* response) override;
  grpc::Status ActOnOrder(grpc::ServerContext* context, const v1::ActOnOrderRequest* request,
                          v1::Order* response) override;
  grpc::Status CreateRfq(grpc::ServerContext* context, const v1::CreateRfqRequest* request, v1::Rfq* response) override;
  grpc::Status GetRfq(grpc::ServerContext* context, const v1::GetRfqRequest* request, v1::Rfq* response) override;
  grpc::Status ListRfqs(grpc::ServerContext* context, const v1::ListRfqsRequest* request,
                        v1::ListRfqsResponse* response) override;
  grpc::Status SubmitQuote(grpc::ServerContext* context, const v1::SubmitQuoteRequest* request,
                           v1::Quote* response) override;
  grpc::Status ListQuotes(grpc::ServerContext* context, const v1::ListQuotesRequest* request,
                          v1::ListQuotesResponse* response) override;
  grpc::Status AcceptQuote(grpc::ServerContext* context, const v1::AcceptQuoteRequest* request,
                           v1::Order* response) override;
  // Group buying (group_buying.cc).
  grpc::Status OpenGroupOffer(grpc::ServerContext* context, const v1::OpenGroupOfferRequest* request,
                              v1::GroupOffer* response) override;
  grpc::Status GetGroupOffer(grpc::ServerContext* context, const v1::GetGroupOfferRequest* request,
                             v1::GroupOffer* response) override;
  grpc::Status JoinGroupOffer(grpc::ServerContext* context, const v1::JoinGroupOfferRequest* request,
                              v1::GroupMembership* response) override;

 private:
  // PlaceOrder in a transaction of its own.
  absl::StatusOr<v1::Order> PlaceInTransaction(const Caller& caller, const v1::PlaceOrderRequest& request,
                                               const std::string& request_hash);

  pg::Pool& pool_;
  BuyNowCommitter buy_now_;
};

}  // namespace ptd::trading

#endif  // PTD_SERVICES_TRADING_ORDER_SERVICE_H_
