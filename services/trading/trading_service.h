#ifndef PTD_SERVICES_TRADING_TRADING_SERVICE_H_
#define PTD_SERVICES_TRADING_TRADING_SERVICE_H_

#include "libs/pg/pool.h"
#include "ptd/trading/v1/trading.grpc.pb.h"

namespace ptd::trading {

// The gRPC handlers of ptd.trading.v1.TradingService: validate, map proto <-> domain, run one transaction
// (the change and its outbox event together), map errors.
class TradingService final : public ptd::trading::v1::TradingService::Service {
 public:
  explicit TradingService(pg::Pool& pool) : pool_(pool) {}

  grpc::Status ListVerticals(grpc::ServerContext* context, const v1::ListVerticalsRequest* request,
                             v1::ListVerticalsResponse* response) override;
  grpc::Status CreateCommodity(grpc::ServerContext* context, const v1::CreateCommodityRequest* request,
                               v1::Commodity* response) override;
  grpc::Status GetCommodity(grpc::ServerContext* context, const v1::GetCommodityRequest* request,
                            v1::Commodity* response) override;
  grpc::Status ListCommodities(grpc::ServerContext* context, const v1::ListCommoditiesRequest* request,
                               v1::ListCommoditiesResponse* response) override;
  grpc::Status CreateListing(grpc::ServerContext* context, const v1::CreateListingRequest* request,
                             v1::Listing* response) override;
  grpc::Status GetListing(grpc::ServerContext* context, const v1::GetListingRequest* request,
                          v1::Listing* response) override;
  grpc::Status UpdateListing(grpc::ServerContext* context, const v1::UpdateListingRequest* request,
                             v1::Listing* response) override;
  grpc::Status ListListings(grpc::ServerContext* context, const v1::ListListingsRequest* request,
                            v1::ListListingsResponse* response) override;

 private:
  pg::Pool& pool_;
};

}  // namespace ptd::trading

#endif  // PTD_SERVICES_TRADING_TRADING_SERVICE_H_
