#include "services/trading/trading_service.h"

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "google/protobuf/util/time_util.h"
#include "libs/core/ids.h"
#include "libs/core/log.h"
#include "libs/core/request.h"
#include "libs/core/status.h"
#include "libs/server/caller.h"
#include "services/trading/domain/catalog.h"
#include "services/trading/mapping.h"
#include "services/trading/order_service.h"
#include "services/trading/store/catalog_store.h"

namespace ptd::trading {
namespace {

constexpr char kCatalogAdminRole[] = "catalog_admin";

}  // namespace

grpc::Status TradingService::ListVerticals(grpc::ServerContext* context, const v1::ListVerticalsRequest*,
                                           v1::ListVerticalsResponse* response) {
  if (auto caller = CallerOf(*context); !caller.ok()) return ToGrpcStatus(caller.status());
  for (const Vertical& v : Verticals()) {
    auto* out = response->add_verticals();
    out->set_code(v.code);
    ToProto(v.name, out->mutable_name());
  }
  return grpc::Status::OK;
}

grpc::Status TradingService::CreateCommodity(grpc::ServerContext* context, const v1::CreateCommodityRequest* request,
                                             v1::Commodity* response) {
  auto caller = CallerOf(*context);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  if (!caller->HasRole(kCatalogAdminRole)) {
    return ToGrpcStatus(absl::PermissionDeniedError("the catalogue is kept by the role catalog_admin"));
  }
  const v1::Commodity& in = request->commodity();
  Commodity c{.commodity_id = NewId(),
              .vertical = in.vertical(),
              .code = in.code(),
              .name = FromProto(in.name()),
              .unit = in.unit(),
              .packaging = in.packaging(),
              .standardised = in.standardised(),
              .create_time = absl::Now()};
  for (const auto& s : in.specs()) c.specs.push_back({s.name(), s.value(), s.unit()});
  FieldViolations violations;
  CheckIdempotencyKey(request->idempotency_key(), violations);
  if (!request->has_commodity()) violations.Add("commodity", "is required");
  else ValidateCommodity(c, "commodity", violations);
  if (!violations.empty()) return ToGrpcStatus(violations.ToStatus());

  std::string hash = RequestHash(*request);
  absl::StatusOr<Commodity> created = pool_.InTransaction([&](pqxx::work& tx) -> absl::StatusOr<Commodity> {
    if (auto earlier = CommodityStore::FindByIdempotencyKey(tx, request->idempotency_key())) {
      if (earlier->second != hash) return ReusedKeyError();
      return earlier->first;
    }
    if (absl::Status s = CommodityStore::Insert(tx, c, request->idempotency_key(), hash, caller->subject); !s.ok()) {
      return s;
    }
    return c;
  });
  if (!created.ok()) return Answer("CreateCommodity", created.status());
  ToProto(*created, response);
  log::Info("commodity created", {{"commodity_id", created->commodity_id}, {"code", created->code}});
  return grpc::Status::OK;
}

grpc::Status TradingService::GetCommodity(grpc::ServerContext* context, const v1::GetCommodityRequest* request,
                                          v1::Commodity* response) {
  if (auto caller = CallerOf(*context); !caller.ok()) return ToGrpcStatus(caller.status());
  FieldViolations violations;
  CheckId("commodity_id", request->commodity_id(), violations);
  if (!violations.empty()) return ToGrpcStatus(violations.ToStatus());
  absl::StatusOr<Commodity> c = pool_.InTransaction(
      [&](pqxx::work& tx) { return CommodityStore::Get(tx, request->commodity_id()); });
  if (!c.ok()) return Answer("GetCommodity", c.status());
  ToProto(*c, response);
  return grpc::Status::OK;
}

grpc::Status TradingService::ListCommodities(grpc::ServerContext* context, const v1::ListCommoditiesRequest* request,
                                             v1::ListCommoditiesResponse* response) {
  if (auto caller = CallerOf(*context); !caller.ok()) return ToGrpcStatus(caller.status());
  FieldViolations violations;
  Page page{.size = PageSize(request->page_size(), violations)};
  page.after_id = AfterKey(request->page_token(), violations);
  if (!request->vertical().empty() && !IsVertical(request->vertical())) {
    violations.Add("vertical", "unknown vertical");
  }
  if (!IsCleanText(request->query()) || request->query().size() > kMaxTextBytes) {
    violations.Add("query", "must be valid UTF-8 of at most 512 bytes");
  }
  if (!violations.empty()) return ToGrpcStatus(violations.ToStatus());
  CommodityFilter filter{request->vertical(), request->query()};
  absl::StatusOr<std::vector<Commodity>> rows =
      pool_.InTransaction([&](pqxx::work& tx) -> absl::StatusOr<std::vector<Commodity>> {
        return CommodityStore::List(tx, filter, page);
      });
  if (!rows.ok()) return Answer("ListCommodities", rows.status());
  for (int i = 0; i < static_cast<int>(rows->size()) && i < page.size; ++i) {
    ToProto((*rows)[i], response->add_commodities());
  }
  if (static_cast<int>(rows->size()) > page.size) response->set_next_page_token(PageToken((*rows)[page.size - 1].code));
  return grpc::Status::OK;
}

grpc::Status TradingService::CreateListing(grpc::ServerContext* context, const v1::CreateListingRequest* request,
                                           v1::Listing* response) {
  auto caller = CallerOf(*context);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  NewListing n{.idempotency_key = request->idempotency_key(),
               .commodity_id = request->commodity_id(),
               .title = FromProto(request->title()),
               .unit_price = FromProto(request->unit_price()),
               .available = FromProto(request->available())};
  if (request->has_min_order()) n.min_order = FromProto(request->min_order());
  FieldViolations violations;
  n.terms = TermsFromProto(*request, violations);
  ValidateNewListing(n, violations);
  if (n.terms.seller_kind == SellerKind::kSelfOperated && !caller->HasRole("platform_operator")) {
    violations.Add("seller_kind", "SELF_OPERATED listings are the platform's own: role platform_operator");
  }
  if (!violations.empty()) return ToGrpcStatus(violations.ToStatus());

  std::string hash = RequestHash(*request);
  absl::StatusOr<Listing> created = pool_.InTransaction([&](pqxx::work& tx) -> absl::StatusOr<Listing> {
    if (auto earlier = ListingStore::FindByIdempotencyKey(tx, caller->tenant_id, n.idempotency_key)) {
      if (earlier->second != hash) return ReusedKeyError();
      return earlier->first;
    }
    absl::StatusOr<Commodity> commodity = CommodityStore::Get(tx, n.commodity_id);
    if (!commodity.ok()) return InvalidField("commodity_id", "no such commodity in the catalogue");
    if (commodity->unit != n.available.unit) {
      return InvalidField("available.unit", absl::StrCat("must be the commodity's unit '", commodity->unit, "'"));
    }
    absl::Time now = absl::Now();
    Listing l{.listing_id = NewId(),
              .tenant_id = caller->tenant_id,
              .commodity_id = n.commodity_id,
              .vertical = commodity->vertical,
              .title = n.title,
              .unit_price = n.unit_price,
              .available = n.available,
              .min_order = n.min_order.value_or(Quantity{0, n.available.unit}),
              .status = ListingStatus::kActive,
              .version = 1,
              .create_time = now,
              .update_time = now,
              .terms = n.terms};
    ListingStore::Insert(tx, l, n.idempotency_key, hash, caller->subject);
    v1::ListingCreated event;
    ToProto(l, event.mutable_listing());
    if (absl::Status s = PublishTradingEvent(tx, "ptd.trading.v1.ListingCreated", l.listing_id, l.tenant_id, event); !s.ok()) return s;
    // Round-trip through the row so that the answer equals what a later Get returns (times in microseconds).
    return ListingStore::Get(tx, l.tenant_id, l.listing_id);
  });
  if (!created.ok()) return Answer("CreateListing", created.status());
  ToProto(*created, response);
  log::Info("listing created", {{"listing_id", created->listing_id}, {"tenant", created->tenant_id}});
  return grpc::Status::OK;
}

grpc::Status TradingService::GetListing(grpc::ServerContext* context, const v1::GetListingRequest* request,
                                        v1::Listing* response) {
  auto caller = CallerOf(*context);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  FieldViolations violations;
  CheckId("listing_id", request->listing_id(), violations);
  if (!violations.empty()) return ToGrpcStatus(violations.ToStatus());
  absl::StatusOr<Listing> l = pool_.InTransaction(
      [&](pqxx::work& tx) { return ListingStore::Get(tx, caller->tenant_id, request->listing_id()); });
  if (!l.ok()) return Answer("GetListing", l.status());
  ToProto(*l, response);
  return grpc::Status::OK;
}

grpc::Status TradingService::UpdateListing(grpc::ServerContext* context, const v1::UpdateListingRequest* request,
                                           v1::Listing* response) {
  auto caller = CallerOf(*context);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  FieldViolations violations;
  CheckId("listing_id", request->listing_id(), violations);
  ListingChange change{.title = FromProto(request->title()), .expected_version = request->expected_version()};
  if (request->has_unit_price()) change.unit_price = FromProto(request->unit_price());
  if (request->has_available()) change.available = FromProto(request->available());
  change.status = StatusFromProto(request->status(), "status", violations);
  ValidateListingChange(change, violations);
  if (!change.unit_price && !change.available && !change.status && change.title.empty()) {
    violations.Add("listing_id", "nothing to change: set unit_price, available, status or title");
  }
  if (!violations.empty()) return ToGrpcStatus(violations.ToStatus());

  absl::StatusOr<Listing> updated = pool_.InTransaction([&](pqxx::work& tx) -> absl::StatusOr<Listing> {
    absl::StatusOr<Listing> l = ListingStore::Get(tx, caller->tenant_id, request->listing_id(), /*for_update=*/true);
    if (!l.ok()) return l.status();
    if (absl::Status s = ApplyChange(change, *l); !s.ok()) return s;
    l->update_time = absl::Now();
    ListingStore::Update(tx, *l);
    l = ListingStore::Get(tx, caller->tenant_id, request->listing_id());
    v1::ListingUpdated event;
    ToProto(*l, event.mutable_listing());
    if (absl::Status s = PublishTradingEvent(tx, "ptd.trading.v1.ListingUpdated", l->listing_id, l->tenant_id, event); !s.ok()) return s;
    return l;
  });
  if (!updated.ok()) return Answer("UpdateListing", updated.status());
  ToProto(*updated, response);
  log::Info("listing updated", {{"listing_id", updated->listing_id}, {"version", updated->version}});
  return grpc::Status::OK;
}

grpc::Status TradingService::ListListings(grpc::ServerContext* context, const v1::ListListingsRequest* request,
                                          v1::ListListingsResponse* response) {
  auto caller = CallerOf(*context);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  FieldViolations violations;
  Page page{.size = PageSize(request->page_size(), violations)};
  page.after_id = AfterKey(request->page_token(), violations);
  if (!page.after_id.empty() && !IsValidId(page.after_id)) violations.Add("page_token", "is not a token this service returned");
  ListingFilter filter{.commodity_id = request->commodity_id(), .vertical = request->vertical(), .query = request->query()};
  filter.status = StatusFromProto(request->status(), "status", violations);
  if (!filter.commodity_id.empty()) CheckId("commodity_id", filter.commodity_id, violations);
  if (!filter.vertical.empty() && !IsVertical(filter.vertical)) violations.Add("vertical", "unknown vertical");
  if (!IsCleanText(filter.query) || filter.query.size() > kMaxTextBytes) {
    violations.Add("query", "must be valid UTF-8 of at most 512 bytes");
  }
  if (!violations.empty()) return ToGrpcStatus(violations.ToStatus());
  absl::StatusOr<std::vector<Listing>> rows =
      pool_.InTransaction([&](pqxx::work& tx) -> absl::StatusOr<std::vector<Listing>> {
        return ListingStore::List(tx, caller->tenant_id, filter, page);
      });
  if (!rows.ok()) return Answer("ListListings", rows.status());
  for (int i = 0; i < static_cast<int>(rows->size()) && i < page.size; ++i) ToProto((*rows)[i], response->add_listings());
  if (static_cast<int>(rows->size()) > page.size) {
    response->set_next_page_token(PageToken((*rows)[page.size - 1].listing_id));
  }
  return grpc::Status::OK;
}

}  // namespace ptd::trading
