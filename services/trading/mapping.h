#ifndef PTD_SERVICES_TRADING_MAPPING_H_
#define PTD_SERVICES_TRADING_MAPPING_H_

#include <grpcpp/support/status.h>

#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "libs/core/status.h"
#include "ptd/trading/v1/orders.pb.h"
#include "ptd/trading/v1/trading.pb.h"
#include "services/trading/domain/catalog.h"

// Proto <-> domain for trading's handlers. The request checks (paging, ids, idempotency) are libs/core/request.h.
namespace ptd::trading {

std::vector<LocalizedText> FromProto(const google::protobuf::RepeatedPtrField<common::v1::LocalizedText>& names);
void ToProto(const std::vector<LocalizedText>& names,
             google::protobuf::RepeatedPtrField<common::v1::LocalizedText>* out);
Money FromProto(const common::v1::Money& m);
Quantity FromProto(const common::v1::Quantity& q);
void ToProto(const Money& m, common::v1::Money* out);
void ToProto(const Quantity& q, common::v1::Quantity* out);
void ToProto(absl::Time t, google::protobuf::Timestamp* out);
absl::Time FromProto(const google::protobuf::Timestamp& t);
void ToProto(const Commodity& c, v1::Commodity* out);
void ToProto(const Listing& l, v1::Listing* out);
std::optional<ListingStatus> StatusFromProto(v1::ListingStatus s, const char* field, FieldViolations& violations);

// Reads the terms of a create-listing request; violations name the request's fields.
ListingTerms TermsFromProto(const v1::CreateListingRequest& request, FieldViolations& violations);
// Proto JSON of a message (for delivery/payment terms kept as text) and back.
std::string ToJson(const google::protobuf::Message& message);
void FromJson(const std::string& json, google::protobuf::Message* message);

}  // namespace ptd::trading

#endif  // PTD_SERVICES_TRADING_MAPPING_H_
