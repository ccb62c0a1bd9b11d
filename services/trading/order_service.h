#ifndef PTD_SERVICES_TRADING_ORDER_SERVICE_H_
#define PTD_SERVICES_TRADING_ORDER_SERVICE_H_

#include "libs/pg/pool.h"
#include "ptd/trading/v1/orders.grpc.pb.h"

namespace ptd::trading {

// ptd.trading.v1.OrderService: offers, buy-now orders and their life cycle, RFQs and quotes. Each write is one
// transaction with its outbox events.
class OrderService final : public v1::OrderService::Service {
 public:
  explicit OrderService(pg::Pool& pool) : pool_(pool) {}

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

 private:
  pg::Pool& pool_;
};

}  // namespace ptd::trading

#endif  // PTD_SERVICES_TRADING_ORDER_SERVICE_H_
