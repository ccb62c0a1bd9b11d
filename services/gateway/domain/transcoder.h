#ifndef PTD_SERVICES_GATEWAY_DOMAIN_TRANSCODER_H_
#define PTD_SERVICES_GATEWAY_DOMAIN_TRANSCODER_H_

#include <google/protobuf/message.h>

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "services/gateway/domain/route_table.h"

// HTTP/JSON <-> Protobuf for one route, by the Protobuf JSON mapping: lowerCamelCase names printed, both
// lowerCamelCase and proto names accepted; enums as their names; 64-bit integers as strings; Timestamps as
// RFC 3339; unknown fields refused.
namespace ptd::gateway {

struct TranscodeOptions {
  int max_json_depth = 32;    // nesting of objects and arrays in a body
  bool emit_defaults = true;  // print fields at their default value (apps see a stable shape)
};

// Builds the request message of `match.route` from the path variables, the query string (raw, without '?')
// and the body. INVALID_ARGUMENT with a message for people (and a field violation when one field is at
// fault) for malformed or too deeply nested JSON, unknown fields or query parameters, wrong types, a body
// where the route takes none, or a query parameter naming a field that the path or the body carries.
// `request` must be an empty message of the route's input type.
absl::Status BuildRequest(const RouteTable::Match& match, std::string_view query, std::string_view body,
                          const TranscodeOptions& options, google::protobuf::Message* request);

// The JSON of a response (or of the route's response_body field).
absl::StatusOr<std::string> RenderResponse(const Route& route, const google::protobuf::Message& response,
                                           const TranscodeOptions& options);

// The deepest nesting of objects and arrays in `json` (strings skipped), stopping early past `limit`.
int JsonDepth(std::string_view json, int limit);

// The query string as (name, value) pairs, '+' and %XX decoded. INVALID_ARGUMENT for a malformed escape.
absl::StatusOr<std::vector<std::pair<std::string, std::string>>> ParseQuery(std::string_view query);

}  // namespace ptd::gateway

#endif  // PTD_SERVICES_GATEWAY_DOMAIN_TRANSCODER_H_
