#include "services/trading/order_service.h"

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "libs/core/digest.h"
#include "libs/core/ids.h"
#include "libs/core/log.h"
#include "libs/core/request.h"
#include "libs/core/status.h"
#include "libs/outbox/outbox.h"
#include "libs/server/caller.h"
#include "services/trading/domain/orders.h"
#include "services/trading/mapping.h"
#include "services/trading/store/catalog_store.h"
#include "services/trading/store/order_store.h"

namespace ptd::trading {
namespace {

constexpr char kEventStream[] = "ptd.trading.events";
constexpr absl::Duration kMaxRfqWindow = absl::Hours(24 * 90);

}  // namespace

absl::Status PublishTradingEvent(pqxx::work& tx, std::string_view type, const std::string& aggregate_id,
                     const std::string& tenant_id, const google::protobuf::Message& payload) {
  outbox::Event e;
  e.stream = kEventStream;
  e.type = std::string(type);
  e.aggregate_id = aggregate_id;
  e.tenant_id = tenant_id;
  e.payload = payload.SerializeAsString();
  e.request_id = log::CurrentRequestId();
  return outbox::Write(tx, e);
}

namespace {

absl::Status Publish(pqxx::work& tx, std::string_view type, const std::string& aggregate_id,
                     const std::string& tenant_id, const google::protobuf::Message& payload) {
  return PublishTradingEvent(tx, type, aggregate_id, tenant_id, payload);
}

template <typename Event>
absl::Status PublishOrder(pqxx::work& tx, std::string_view type, const v1::Order& order) {
  Event event;
  *event.mutable_order() = order;
  return Publish(tx, type, order.order_id(), order.buyer_tenant_id(), event);
}

absl::Status PublishOrderEvent(pqxx::work& tx, const v1::Order& order) {
  std::string_view type = OrderEventType(static_cast<OrderState>(order.state()));
  switch (order.state()) {
    case v1::PLACED: return PublishOrder<v1::OrderPlaced>(tx, type, order);
    case v1::CONFIRMED: return PublishOrder<v1::OrderConfirmed>(tx, type, order);
    case v1::PAID: return PublishOrder<v1::OrderPaid>(tx, type, order);
    case v1::SHIPPED: return PublishOrder<v1::OrderShipped>(tx, type, order);
    case v1::DELIVERED: return PublishOrder<v1::OrderDelivered>(tx, type, order);
    case v1::COMPLETED: return PublishOrder<v1::OrderCompleted>(tx, type, order);
    case v1::CANCELLED: return PublishOrder<v1::OrderCancelled>(tx, type, order);
    case v1::DISPUTED: return PublishOrder<v1::OrderDisputed>(tx, type, order);
    case v1::REFUNDED: return PublishOrder<v1::OrderRefunded>(tx, type, order);
    default: return absl::InternalError("order in no state");
  }
}

v1::OrderTransition Transition(v1::OrderState from, v1::OrderState to, v1::OrderAction action, const Caller& caller,
                               const std::string& note, absl::Time at) {
  v1::OrderTransition t;
  t.set_from(from);
  t.set_to(to);
  t.set_action(action);
  t.set_tenant_id(caller.tenant_id);
  t.set_subject(caller.subject);
  t.set_note(note);
  ToProto(at, t.mutable_time());
  return t;
}

}  // namespace

v1::Order NewPlacedOrder(v1::Order order, const Caller& caller, absl::Time now) {
  order.set_order_id(NewId());
  order.set_state(v1::PLACED);
  order.set_version(1);
  ToProto(now, order.mutable_create_time());
  ToProto(now, order.mutable_update_time());
  *order.add_history() =
      Transition(v1::ORDER_STATE_UNSPECIFIED, v1::PLACED, v1::ORDER_ACTION_UNSPECIFIED, caller, "", now);
  return order;
}

outbox::Event OrderPlacedEvent(const v1::Order& order, const std::string& request_id) {
  v1::OrderPlaced placed;
  *placed.mutable_order() = order;
  outbox::Event e;
  e.stream = kEventStream;
  e.type = std::string(OrderEventType(OrderState::kPlaced));
  e.aggregate_id = order.order_id();
  e.tenant_id = order.buyer_tenant_id();
  e.payload = placed.SerializeAsString();
  e.request_id = request_id;
  return e;
}

absl::StatusOr<v1::Order> InsertPlacedOrder(pqxx::work& tx, v1::Order order, const Caller& caller,
                                            const std::string& idempotency_key, const std::string& hash) {
  v1::Order placed = NewPlacedOrder(std::move(order), caller, absl::Now());
  v1::OrderTransition first = placed.history(0);
  placed.clear_history();
  v1::Order stored = OrderStore::Insert(tx, placed, first, idempotency_key, hash);
  if (absl::Status s = PublishOrderEvent(tx, stored); !s.ok()) return s;
  return stored;
}

namespace {

// The contract as signed at confirmation: the order's parties, goods, price, quantity and terms, and the
// SHA-256 of its canonical bytes.
v1::Contract MakeContract(const v1::Order& order, absl::Time signed_at) {
  v1::Contract c;
  c.set_contract_id(NewId());
  c.set_buyer_tenant_id(order.buyer_tenant_id());
  c.set_seller_tenant_id(order.seller_tenant_id());
  c.set_commodity_id(order.commodity_id());
  *c.mutable_goods() = order.goods();
  *c.mutable_quantity() = order.quantity();
  *c.mutable_unit_price() = order.unit_price();
  *c.mutable_total() = order.total();
  *c.mutable_delivery() = order.delivery();
  *c.mutable_payment() = order.payment();
  ToProto(signed_at, c.mutable_signed_time());
  c.set_sha256(Sha256OfMessage(c));
  return c;
}

void ValidateQuantityField(const char* field, const common::v1::Quantity& q, FieldViolations& violations) {
  if (q.milli() <= 0) violations.Add(absl::StrCat(field, ".milli"), absl::StrCat("must be positive, got ", q.milli()));
  if (!IsUnit(q.unit())) violations.Add(absl::StrCat(field, ".unit"), absl::StrCat("unknown unit '", IsCleanText(q.unit()) ? q.unit() : "?", "'"));
}

void ValidateText(const char* field, const std::string& text, size_t max, bool required, FieldViolations& violations) {
  if (!IsCleanText(text) || text.size() > max) {
    violations.Add(field, absl::StrCat("must be valid UTF-8 of at most ", max, " bytes"));
  } else if (required && text.empty()) {
    violations.Add(field, "must not be empty");
  }
}

}  // namespace

grpc::Status OrderService::ListOffers(grpc::ServerContext* context, const v1::ListOffersRequest* request,
                                      v1::ListOffersResponse* response) {
  if (auto caller = CallerOf(*context); !caller.ok()) return ToGrpcStatus(caller.status());
  FieldViolations violations;
  Page page{.size = PageSize(request->page_size(), violations)};
  page.after_id = AfterKey(request->page_token(), violations);
  if (!request->commodity_id().empty()) CheckId("commodity_id", request->commodity_id(), violations);
  if (!request->vertical().empty() && !IsVertical(request->vertical())) violations.Add("vertical", "unknown vertical");
  ValidateText("query", request->query(), kMaxTextBytes, false, violations);
  if (!violations.empty()) return ToGrpcStatus(violations.ToStatus());
  ListingFilter filter{.commodity_id = request->commodity_id(), .vertical = request->vertical(), .query = request->query()};
  auto rows = pool_.InTransaction([&](pqxx::work& tx) -> absl::StatusOr<std::vector<Listing>> {
    return ListingStore::ListOffers(tx, filter, page);
  });
  if (!rows.ok()) return Answer("ListOffers", rows.status());
  for (int i = 0; i < static_cast<int>(rows->size()) && i < page.size; ++i) ToProto((*rows)[i], response->add_offers());
  if (static_cast<int>(rows->size()) > page.size) response->set_next_page_token(PageToken((*rows)[page.size - 1].listing_id));
  return grpc::Status::OK;
}

grpc::Status OrderService::PlaceOrder(grpc::ServerContext* context, const v1::PlaceOrderRequest* request,
                                      v1::Order* response) {
  auto caller = CallerOf(*context);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  FieldViolations violations;
  CheckIdempotencyKey(request->idempotency_key(), violations);
  CheckId("listing_id", request->listing_id(), violations);
  ValidateQuantityField("quantity", request->quantity(), violations);
  if (!violations.empty()) return ToGrpcStatus(violations.ToStatus());

  std::string hash = RequestHash(*request);
  std::optional<absl::StatusOr<v1::Order>> answer = buy_now_.Place(*caller, *request, hash);
  absl::StatusOr<v1::Order> placed =
      answer.has_value() ? *std::move(answer) : PlaceInTransaction(*caller, *request, hash);
  if (!placed.ok()) return Answer("PlaceOrder", placed.status());
  *response = *placed;
  log::Info("order placed", {{"order_id", placed->order_id()}, {"listing_id", placed->listing_id()}});
  return grpc::Status::OK;
}

absl::StatusOr<v1::Order> OrderService::PlaceInTransaction(const Caller& caller, const v1::PlaceOrderRequest& request,
                                                           const std::string& hash) {
  return pool_.InTransaction([&](pqxx::work& tx) -> absl::StatusOr<v1::Order> {
    if (auto earlier = OrderStore::FindByIdempotencyKey(tx, caller.tenant_id, request.idempotency_key())) {
      if (earlier->second != hash) return ReusedKeyError();
      return OrderStore::Get(tx, caller.tenant_id, earlier->first);
    }
    absl::StatusOr<Listing> listing = ListingStore::GetOffer(tx, request.listing_id());
    if (!listing.ok()) return listing.status();
    const absl::Time now = absl::Now();
    if (absl::Status s = CheckPurchase(*listing, caller, request, now, listing->available.milli); !s.ok()) return s;
    absl::StatusOr<v1::Order> order = PurchaseOrder(*listing, caller, request);
    if (!order.ok()) return order.status();
    // The atomic step: two buyers can never take the last tonne twice.
    const int64_t qty = request.quantity().milli();
    if (!ListingStore::TakeQuantity(tx, listing->listing_id, qty)) {
      return absl::FailedPreconditionError(absl::StrCat("not enough available: the listing has less than ",
                                                        FormatQuantity({qty, listing->available.unit})));
    }
    return InsertPlacedOrder(tx, *std::move(order), caller, request.idempotency_key(), hash);
  });
}

grpc::Status OrderService::GetOrder(grpc::ServerContext* context, const v1::GetOrderRequest* request,
                                    v1::Order* response) {
  auto caller = CallerOf(*context);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  FieldViolations violations;
  CheckId("order_id", request->order_id(), violations);
  if (!violations.empty()) return ToGrpcStatus(violations.ToStatus());
  auto order = pool_.InTransaction([&](pqxx::work& tx) { return OrderStore::Get(tx, caller->tenant_id, request->order_id()); });
  if (!order.ok()) return Answer("GetOrder", order.status());
  *response = *order;
  return grpc::Status::OK;
}

grpc::Status OrderService::ListOrders(grpc::ServerContext* context, const v1::ListOrdersRequest* request,
                                      v1::ListOrdersResponse* response) {
  auto caller = CallerOf(*context);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  FieldViolations violations;
  Page page{.size = PageSize(request->page_size(), violations)};
  page.after_id = AfterKey(request->page_token(), violations);
  if (!v1::ListOrdersRequest::Role_IsValid(request->role())) violations.Add("role", "unknown role");
  if (!v1::OrderState_IsValid(request->state())) violations.Add("state", "unknown state");
  if (!violations.empty()) return ToGrpcStatus(violations.ToStatus());
  auto rows = pool_.InTransaction([&](pqxx::work& tx) -> absl::StatusOr<std::vector<v1::Order>> {
    return OrderStore::List(tx, caller->tenant_id, request->role(), request->state(), page);
  });
  if (!rows.ok()) return Answer("ListOrders", rows.status());
  for (int i = 0; i < static_cast<int>(rows->size()) && i < page.size; ++i) *response->add_orders() = (*rows)[i];
  if (static_cast<int>(rows->size()) > page.size) response->set_next_page_token(PageToken((*rows)[page.size - 1].order_id()));
  return grpc::Status::OK;
}

grpc::Status OrderService::ActOnOrder(grpc::ServerContext* context, const v1::ActOnOrderRequest* request,
                                      v1::Order* response) {
  auto caller = CallerOf(*context);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  FieldViolations violations;
  CheckId("order_id", request->order_id(), violations);
  if (request->action() == v1::ORDER_ACTION_UNSPECIFIED || !v1::OrderAction_IsValid(request->action())) {
    violations.Add("action", "must be one of CONFIRM, PAY, SHIP, DELIVER, COMPLETE, CANCEL, DISPUTE, RESOLVE_FOR_SELLER, REFUND");
  }
  if (request->expected_version() < 0) violations.Add("expected_version", "must not be negative");
  ValidateText("note", request->note(), 2000, false, violations);
  ValidateText("payment_reference", request->payment_reference(), 128, request->action() == v1::PAY, violations);
  if (!violations.empty()) return ToGrpcStatus(violations.ToStatus());

  auto acted = pool_.InTransaction([&](pqxx::work& tx) -> absl::StatusOr<v1::Order> {
    absl::StatusOr<v1::Order> order = OrderStore::Get(tx, caller->tenant_id, request->order_id(), /*for_update=*/true);
    if (!order.ok()) return order.status();
    if (request->expected_version() != 0 && request->expected_version() != order->version()) {
      return absl::AbortedError(absl::StrCat("order is at version ", order->version(), ", not ",
                                             request->expected_version(), ": read it again"));
    }
    Party party = order->buyer_tenant_id() == caller->tenant_id ? Party::kBuyer : Party::kSeller;
    absl::StatusOr<OrderState> next = NextOrderState(static_cast<OrderState>(order->state()),
                                                     static_cast<OrderAction>(request->action()), party);
    if (!next.ok()) return next.status();
    absl::Time now = absl::Now();
    v1::OrderState from = order->state();
    order->set_state(static_cast<v1::OrderState>(*next));
    order->set_version(order->version() + 1);
    ToProto(now, order->mutable_update_time());
    if (request->action() == v1::CONFIRM) *order->mutable_contract() = MakeContract(*order, now);
    if (request->action() == v1::PAY) order->set_payment_reference(request->payment_reference());
    if (ReleasesQuantity(*next) && !order->listing_id().empty()) {
      ListingStore::ReturnQuantity(tx, order->listing_id(), order->quantity().milli());
    }
    OrderStore::Update(tx, *order);
    OrderStore::AddTransition(tx, order->order_id(),
                              Transition(from, order->state(), request->action(), *caller, request->note(), now));
    absl::StatusOr<v1::Order> stored = OrderStore::Get(tx, caller->tenant_id, order->order_id());
    if (!stored.ok()) return stored.status();
    if (absl::Status s = PublishOrderEvent(tx, *stored); !s.ok()) return s;
    return stored;
  });
  if (!acted.ok()) return Answer("ActOnOrder", acted.status());
  *response = *acted;
  log::Info("order transition", {{"order_id", acted->order_id()}, {"state", v1::OrderState_Name(acted->state())}});
  return grpc::Status::OK;
}

grpc::Status OrderService::CreateRfq(grpc::ServerContext* context, const v1::CreateRfqRequest* request,
                                     v1::Rfq* response) {
  auto caller = CallerOf(*context);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  FieldViolations violations;
  CheckIdempotencyKey(request->idempotency_key(), violations);
  CheckId("commodity_id", request->commodity_id(), violations);
  ValidateText("spec", request->spec(), 2000, false, violations);
  ValidateQuantityField("quantity", request->quantity(), violations);
  ValidateText("delivery_place", request->delivery_place(), kMaxTextBytes, true, violations);
  absl::Time now = absl::Now();
  if (!request->has_closes_at()) {
    violations.Add("closes_at", "is required");
  } else {
    absl::Time closes = FromProto(request->closes_at());
    if (closes <= now || closes > now + kMaxRfqWindow) violations.Add("closes_at", "must be in the next 90 days");
  }
  if (!violations.empty()) return ToGrpcStatus(violations.ToStatus());
  std::string hash = RequestHash(*request);
  auto created = pool_.InTransaction([&](pqxx::work& tx) -> absl::StatusOr<v1::Rfq> {
    if (auto earlier = RfqStore::FindByIdempotencyKey(tx, caller->tenant_id, request->idempotency_key())) {
      if (earlier->second != hash) return ReusedKeyError();
      return RfqStore::Get(tx, caller->tenant_id, earlier->first);
    }
    absl::StatusOr<Commodity> commodity = CommodityStore::Get(tx, request->commodity_id());
    if (!commodity.ok()) return InvalidField("commodity_id", "no such commodity in the catalogue");
    if (commodity->unit != request->quantity().unit()) {
      return InvalidField("quantity.unit", absl::StrCat("must be the commodity's unit '", commodity->unit, "'"));
    }
    v1::Rfq rfq;
    rfq.set_rfq_id(NewId());
    rfq.set_buyer_tenant_id(caller->tenant_id);
    rfq.set_commodity_id(request->commodity_id());
    rfq.set_spec(request->spec());
    *rfq.mutable_quantity() = request->quantity();
    rfq.set_delivery_place(request->delivery_place());
    if (request->has_delivery_date()) *rfq.mutable_delivery_date() = request->delivery_date();
    *rfq.mutable_closes_at() = request->closes_at();
    ToProto(now, rfq.mutable_create_time());
    RfqStore::Insert(tx, rfq, request->idempotency_key(), hash);
    absl::StatusOr<v1::Rfq> stored = RfqStore::Get(tx, caller->tenant_id, rfq.rfq_id());
    if (!stored.ok()) return stored.status();
    v1::RfqCreated event;
    *event.mutable_rfq() = *stored;
    if (absl::Status s = Publish(tx, "ptd.trading.v1.RfqCreated", rfq.rfq_id(), caller->tenant_id, event); !s.ok()) return s;
    return stored;
  });
  if (!created.ok()) return Answer("CreateRfq", created.status());
  *response = *created;
  return grpc::Status::OK;
}

grpc::Status OrderService::GetRfq(grpc::ServerContext* context, const v1::GetRfqRequest* request, v1::Rfq* response) {
  auto caller = CallerOf(*context);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  FieldViolations violations;
  CheckId("rfq_id", request->rfq_id(), violations);
  if (!violations.empty()) return ToGrpcStatus(violations.ToStatus());
  auto rfq = pool_.InTransaction([&](pqxx::work& tx) { return RfqStore::Get(tx, caller->tenant_id, request->rfq_id()); });
  if (!rfq.ok()) return Answer("GetRfq", rfq.status());
  *response = *rfq;
  return grpc::Status::OK;
}

grpc::Status OrderService::ListRfqs(grpc::ServerContext* context, const v1::ListRfqsRequest* request,
                                    v1::ListRfqsResponse* response) {
  auto caller = CallerOf(*context);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  FieldViolations violations;
  Page page{.size = PageSize(request->page_size(), violations)};
  page.after_id = AfterKey(request->page_token(), violations);
  if (!request->commodity_id().empty()) CheckId("commodity_id", request->commodity_id(), violations);
  if (!violations.empty()) return ToGrpcStatus(violations.ToStatus());
  auto rows = pool_.InTransaction([&](pqxx::work& tx) -> absl::StatusOr<std::vector<v1::Rfq>> {
    return RfqStore::List(tx, caller->tenant_id, request->mine(), request->commodity_id(), page);
  });
  if (!rows.ok()) return Answer("ListRfqs", rows.status());
  for (int i = 0; i < static_cast<int>(rows->size()) && i < page.size; ++i) *response->add_rfqs() = (*rows)[i];
  if (static_cast<int>(rows->size()) > page.size) response->set_next_page_token(PageToken((*rows)[page.size - 1].rfq_id()));
  return grpc::Status::OK;
}

grpc::Status OrderService::SubmitQuote(grpc::ServerContext* context, const v1::SubmitQuoteRequest* request,
                                       v1::Quote* response) {
  auto caller = CallerOf(*context);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  FieldViolations violations;
  CheckIdempotencyKey(request->idempotency_key(), violations);
  CheckId("rfq_id", request->rfq_id(), violations);
  if (!IsCurrencyCode(request->unit_price().currency())) violations.Add("unit_price.currency", "must be an ISO 4217 code like CNY");
  if (request->unit_price().amount_minor() <= 0) {
    violations.Add("unit_price.amount_minor", absl::StrCat("must be positive, got ", request->unit_price().amount_minor()));
  }
  ValidateQuantityField("quantity", request->quantity(), violations);
  ValidateText("note", request->note(), 2000, false, violations);
  if (!v1::DeliveryTerms::Kind_IsValid(request->delivery().kind())) violations.Add("delivery.kind", "unknown delivery kind");
  if (!v1::PaymentTerms::Kind_IsValid(request->payment().kind())) violations.Add("payment.kind", "unknown payment kind");
  if (!violations.empty()) return ToGrpcStatus(violations.ToStatus());
  std::string hash = RequestHash(*request);
  auto submitted = pool_.InTransaction([&](pqxx::work& tx) -> absl::StatusOr<v1::Quote> {
    if (auto earlier = QuoteStore::FindByIdempotencyKey(tx, caller->tenant_id, request->idempotency_key())) {
      if (earlier->second != hash) return ReusedKeyError();
      return QuoteStore::Get(tx, earlier->first);
    }
    // The RFQ row is locked so that a quote and the acceptance of another never interleave.
    absl::StatusOr<v1::Rfq> rfq = RfqStore::Get(tx, caller->tenant_id, request->rfq_id(), /*for_update=*/true);
    if (!rfq.ok()) return rfq.status();
    if (rfq->buyer_tenant_id() == caller->tenant_id) return absl::FailedPreconditionError("a buyer cannot quote on its own RFQ");
    if (rfq->state() != v1::RFQ_OPEN) return absl::FailedPreconditionError("the RFQ is no longer open");
    absl::Time now = absl::Now();
    if (now >= FromProto(rfq->closes_at())) return absl::FailedPreconditionError("the RFQ closed: it takes no more quotes");
    if (request->quantity().unit() != rfq->quantity().unit()) {
      return InvalidField("quantity.unit", absl::StrCat("must be the RFQ's unit '", rfq->quantity().unit(), "'"));
    }
    if (request->quantity().milli() > rfq->quantity().milli()) return InvalidField("quantity.milli", "must not exceed the RFQ's quantity");
    v1::Quote quote;
    quote.set_quote_id(NewId());
    quote.set_rfq_id(rfq->rfq_id());
    quote.set_seller_tenant_id(caller->tenant_id);
    *quote.mutable_unit_price() = request->unit_price();
    *quote.mutable_quantity() = request->quantity();
    *quote.mutable_delivery() = request->delivery();
    *quote.mutable_payment() = request->payment();
    quote.set_note(request->note());
    quote.set_state(v1::QUOTE_SUBMITTED);
    ToProto(now, quote.mutable_create_time());
    QuoteStore::Insert(tx, quote, request->idempotency_key(), hash);
    absl::StatusOr<v1::Quote> stored = QuoteStore::Get(tx, quote.quote_id());
    v1::QuoteSubmitted event;
    *event.mutable_quote() = *stored;
    if (absl::Status s = Publish(tx, "ptd.trading.v1.QuoteSubmitted", rfq->rfq_id(), rfq->buyer_tenant_id(), event); !s.ok()) {
      return s;
    }
    return stored;
  });
  if (!submitted.ok()) return Answer("SubmitQuote", submitted.status());
  *response = *submitted;
  return grpc::Status::OK;
}

grpc::Status OrderService::ListQuotes(grpc::ServerContext* context, const v1::ListQuotesRequest* request,
                                      v1::ListQuotesResponse* response) {
  auto caller = CallerOf(*context);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  FieldViolations violations;
  CheckId("rfq_id", request->rfq_id(), violations);
  if (!violations.empty()) return ToGrpcStatus(violations.ToStatus());
  auto quotes = pool_.InTransaction([&](pqxx::work& tx) -> absl::StatusOr<std::vector<v1::Quote>> {
    absl::StatusOr<v1::Rfq> rfq = RfqStore::Get(tx, caller->tenant_id, request->rfq_id());
    if (rfq.ok() && rfq->buyer_tenant_id() == caller->tenant_id) return QuoteStore::ListForRfq(tx, request->rfq_id(), "");
    // A seller sees its own quotes, also after the RFQ closed; with none, the RFQ is not its business.
    std::vector<v1::Quote> own = QuoteStore::ListForRfq(tx, request->rfq_id(), caller->tenant_id);
    if (own.empty() && !rfq.ok()) return rfq.status();
    return own;
  });
  if (!quotes.ok()) return Answer("ListQuotes", quotes.status());
  for (auto& q : *quotes) *response->add_quotes() = std::move(q);
  return grpc::Status::OK;
}

grpc::Status OrderService::AcceptQuote(grpc::ServerContext* context, const v1::AcceptQuoteRequest* request,
                                       v1::Order* response) {
  auto caller = CallerOf(*context);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  FieldViolations violations;
  CheckId("rfq_id", request->rfq_id(), violations);
  CheckId("quote_id", request->quote_id(), violations);
  CheckIdempotencyKey(request->idempotency_key(), violations);
  if (!violations.empty()) return ToGrpcStatus(violations.ToStatus());
  std::string hash = RequestHash(*request);
  auto accepted = pool_.InTransaction([&](pqxx::work& tx) -> absl::StatusOr<v1::Order> {
    if (auto earlier = OrderStore::FindByIdempotencyKey(tx, caller->tenant_id, request->idempotency_key())) {
      if (earlier->second != hash) return ReusedKeyError();
      return OrderStore::Get(tx, caller->tenant_id, earlier->first);
    }
    absl::StatusOr<v1::Rfq> rfq = RfqStore::Get(tx, caller->tenant_id, request->rfq_id(), /*for_update=*/true);
    if (!rfq.ok() || rfq->buyer_tenant_id() != caller->tenant_id) {
      return absl::NotFoundError(absl::StrCat("rfq ", request->rfq_id(), " not found"));
    }
    if (rfq->state() != v1::RFQ_OPEN) return absl::FailedPreconditionError("the RFQ was already awarded or cancelled");
    std::vector<v1::Quote> quotes = QuoteStore::ListForRfq(tx, rfq->rfq_id(), "");
    auto chosen = std::find_if(quotes.begin(), quotes.end(),
                               [&](const v1::Quote& q) { return q.quote_id() == request->quote_id(); });
    if (chosen == quotes.end()) return absl::NotFoundError(absl::StrCat("quote ", request->quote_id(), " not found"));
    absl::StatusOr<Commodity> commodity = CommodityStore::Get(tx, rfq->commodity_id());
    if (!commodity.ok()) return commodity.status();
    absl::StatusOr<Money> total = PriceOf(FromProto(chosen->unit_price()), chosen->quantity().milli());
    if (!total.ok()) return absl::FailedPreconditionError("the quote's total does not fit");
    v1::Order order;
    order.set_buyer_tenant_id(caller->tenant_id);
    order.set_seller_tenant_id(chosen->seller_tenant_id());
    order.set_quote_id(chosen->quote_id());
    order.set_commodity_id(rfq->commodity_id());
    ToProto(commodity->name, order.mutable_goods());
    *order.mutable_quantity() = chosen->quantity();
    *order.mutable_unit_price() = chosen->unit_price();
    ToProto(*total, order.mutable_total());
    *order.mutable_delivery() = chosen->delivery();
    *order.mutable_payment() = chosen->payment();
    absl::StatusOr<v1::Order> placed = InsertPlacedOrder(tx, std::move(order), *caller, request->idempotency_key(), hash);
    if (!placed.ok()) return placed.status();
    RfqStore::Award(tx, rfq->rfq_id(), chosen->quote_id());
    for (v1::Quote& q : quotes) {
      bool winner = q.quote_id() == chosen->quote_id();
      q.set_state(winner ? v1::QUOTE_ACCEPTED : v1::QUOTE_REJECTED);
      QuoteStore::SetState(tx, q.quote_id(), q.state());
      absl::Status s;
      if (winner) {
        v1::QuoteAccepted event;
        *event.mutable_quote() = q;
        event.set_order_id(placed->order_id());
        s = Publish(tx, "ptd.trading.v1.QuoteAccepted", q.quote_id(), q.seller_tenant_id(), event);
      } else {
        v1::QuoteRejected event;
        *event.mutable_quote() = q;
        s = Publish(tx, "ptd.trading.v1.QuoteRejected", q.quote_id(), q.seller_tenant_id(), event);
      }
      if (!s.ok()) return s;
    }
    return placed;
  });
  if (!accepted.ok()) return Answer("AcceptQuote", accepted.status());
  *response = *accepted;
  log::Info("quote accepted", {{"rfq_id", request->rfq_id()}, {"order_id", accepted->order_id()}});
  return grpc::Status::OK;
}

}  // namespace ptd::trading
