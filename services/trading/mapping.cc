#include "services/trading/mapping.h"

#include "absl/strings/str_cat.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/time_util.h"
#include "libs/core/request.h"

namespace ptd::trading {

std::vector<LocalizedText> FromProto(const google::protobuf::RepeatedPtrField<common::v1::LocalizedText>& names) {
  std::vector<LocalizedText> out;
  for (const auto& n : names) out.push_back({n.lang(), n.text()});
  return out;
}

void ToProto(const std::vector<LocalizedText>& names,
             google::protobuf::RepeatedPtrField<common::v1::LocalizedText>* out) {
  for (const auto& n : names) {
    auto* t = out->Add();
    t->set_lang(n.lang);
    t->set_text(n.text);
  }
}

Money FromProto(const common::v1::Money& m) { return {m.currency(), m.amount_minor()}; }
Quantity FromProto(const common::v1::Quantity& q) { return {q.milli(), q.unit()}; }

void ToProto(const Money& m, common::v1::Money* out) {
  out->set_currency(m.currency);
  out->set_amount_minor(m.amount_minor);
}
void ToProto(const Quantity& q, common::v1::Quantity* out) {
  out->set_milli(q.milli);
  out->set_unit(q.unit);
}
void ToProto(absl::Time t, google::protobuf::Timestamp* out) {
  *out = google::protobuf::util::TimeUtil::MicrosecondsToTimestamp(absl::ToUnixMicros(t));
}

void ToProto(const Commodity& c, v1::Commodity* out) {
  out->set_commodity_id(c.commodity_id);
  out->set_vertical(c.vertical);
  out->set_code(c.code);
  ToProto(c.name, out->mutable_name());
  for (const auto& s : c.specs) {
    auto* a = out->add_specs();
    a->set_name(s.name);
    a->set_value(s.value);
    a->set_unit(s.unit);
  }
  out->set_unit(c.unit);
  out->set_packaging(c.packaging);
  out->set_standardised(c.standardised);
  ToProto(c.create_time, out->mutable_create_time());
}

void ToProto(const Listing& l, v1::Listing* out) {
  out->set_listing_id(l.listing_id);
  out->set_tenant_id(l.tenant_id);
  out->set_commodity_id(l.commodity_id);
  out->set_vertical(l.vertical);
  ToProto(l.title, out->mutable_title());
  ToProto(l.unit_price, out->mutable_unit_price());
  ToProto(l.available, out->mutable_available());
  if (l.min_order.milli > 0) ToProto(l.min_order, out->mutable_min_order());
  out->set_status(static_cast<v1::ListingStatus>(l.status));
  out->set_version(l.version);
  ToProto(l.create_time, out->mutable_create_time());
  ToProto(l.update_time, out->mutable_update_time());
  out->set_seller_kind(static_cast<v1::SellerKind>(l.terms.seller_kind));
  for (const PriceTierRule& t : l.terms.price_tiers) {
    auto* tier = out->add_price_tiers();
    ToProto(Quantity{t.min_quantity_milli, l.available.unit}, tier->mutable_min_quantity());
    ToProto(t.unit_price, tier->mutable_unit_price());
  }
  if (l.terms.valid_from) ToProto(*l.terms.valid_from, out->mutable_valid_from());
  if (l.terms.valid_until) ToProto(*l.terms.valid_until, out->mutable_valid_until());
  FromJson(l.terms.delivery_json, out->mutable_delivery());
  FromJson(l.terms.payment_json, out->mutable_payment());
}

std::optional<ListingStatus> StatusFromProto(v1::ListingStatus s, const char* field, FieldViolations& violations) {
  switch (s) {
    case v1::LISTING_STATUS_UNSPECIFIED:
      return std::nullopt;
    case v1::LISTING_STATUS_ACTIVE:
      return ListingStatus::kActive;
    case v1::LISTING_STATUS_PAUSED:
      return ListingStatus::kPaused;
    case v1::LISTING_STATUS_CLOSED:
      return ListingStatus::kClosed;
    default:
      violations.Add(field, absl::StrCat("unknown status ", static_cast<int>(s)));
  }
  return std::nullopt;
}

absl::Time FromProto(const google::protobuf::Timestamp& t) {
  return absl::FromUnixMicros(google::protobuf::util::TimeUtil::TimestampToMicroseconds(t));
}

std::string ToJson(const google::protobuf::Message& message) {
  std::string out;
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  (void)google::protobuf::util::MessageToJsonString(message, &out, options);
  return out;
}

void FromJson(const std::string& json, google::protobuf::Message* message) {
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = true;
  (void)google::protobuf::util::JsonStringToMessage(json, message, options);
}

ListingTerms TermsFromProto(const v1::CreateListingRequest& r, FieldViolations& violations) {
  ListingTerms terms;
  switch (r.seller_kind()) {
    case v1::SELLER_KIND_UNSPECIFIED:
    case v1::SELLER_KIND_THIRD_PARTY:
      terms.seller_kind = SellerKind::kThirdParty;
      break;
    case v1::SELLER_KIND_SELF_OPERATED:
      terms.seller_kind = SellerKind::kSelfOperated;
      break;
    default:
      violations.Add("seller_kind", "unknown seller kind");
  }
  for (int i = 0; i < r.price_tiers_size(); ++i) {
    const auto& tier = r.price_tiers(i);
    if (tier.min_quantity().unit() != r.available().unit()) {
      violations.Add(absl::StrCat("price_tiers[", i, "].min_quantity.unit"), "must be the unit of available");
    }
    terms.price_tiers.push_back({tier.min_quantity().milli(), FromProto(tier.unit_price())});
  }
  if (r.has_valid_from()) terms.valid_from = FromProto(r.valid_from());
  if (r.has_valid_until()) terms.valid_until = FromProto(r.valid_until());
  if (!v1::DeliveryTerms::Kind_IsValid(r.delivery().kind())) violations.Add("delivery.kind", "unknown delivery kind");
  if (!IsCleanText(r.delivery().warehouse()) || r.delivery().warehouse().size() > kMaxTextBytes) {
    violations.Add("delivery.warehouse", "must be valid UTF-8 of at most 512 bytes");
  }
  if (!IsCleanText(r.delivery().region()) || r.delivery().region().size() > 16) {
    violations.Add("delivery.region", "must be a region code of at most 16 characters");
  }
  if (!v1::PaymentTerms::Kind_IsValid(r.payment().kind())) violations.Add("payment.kind", "unknown payment kind");
  if (r.payment().kind() == v1::PaymentTerms::NET_DAYS &&
      (r.payment().net_days() < 1 || r.payment().net_days() > 180)) {
    violations.Add("payment.net_days", "must be between 1 and 180 with NET_DAYS");
  }
  terms.delivery_json = ToJson(r.delivery());
  terms.payment_json = ToJson(r.payment());
  return terms;
}

}  // namespace ptd::trading
