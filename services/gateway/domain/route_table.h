#ifndef PTD_SERVICES_GATEWAY_DOMAIN_ROUTE_TABLE_H_
#define PTD_SERVICES_GATEWAY_DOMAIN_ROUTE_TABLE_H_

#include <google/protobuf/descriptor.h>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "services/gateway/domain/path_template.h"

// The HTTP routes of every unary or server-streaming gRPC method that carries a google.api.http rule, read
// from descriptors: nothing here knows any particular service. Client-streaming and bidirectional methods have
// no route.
namespace ptd::gateway {

// A chain of fields from a request message down to a leaf: "listing.listing_id" -> [listing, listing_id].
using FieldPath = std::vector<const google::protobuf::FieldDescriptor*>;

// Resolves "a.b.c" in `message`, each name either the proto name ("listing_id") or the JSON name
// ("listingId"). INVALID_ARGUMENT naming the first unknown part, or a repeated or map field before the last part.
absl::StatusOr<FieldPath> ResolveFieldPath(const google::protobuf::Descriptor* message, std::string_view dotted);

// "listing.listing_id" (proto names).
std::string FieldPathName(const FieldPath& path);

struct Route {
  std::string http_method;  // "GET", "POST", "PUT", "PATCH", "DELETE" or a custom verb
  PathTemplate path;
  const google::protobuf::MethodDescriptor* method = nullptr;
  std::string grpc_path;             // "/ptd.trading.v1.TradingService/GetListing"
  std::string package;               // "ptd.trading.v1": which backend serves it
  std::vector<FieldPath> variables;  // one per path.variables()
  // body: "*" -> whole request; "field" -> that field; "" -> no body (query parameters instead).
  bool body_is_whole = false;
  FieldPath body_field;
  FieldPath response_field;      // empty: the whole response
  bool allow_anonymous = false;  // ptd.gateway.v1.allow_anonymous
  // The method answers with a stream of messages: served as chunked NDJSON, one {"result": ...} a line.
  bool server_streaming = false;

  bool has_body() const { return body_is_whole || !body_field.empty(); }
  // The metrics label: "GET /v1/listings/{listing_id}".
  std::string label() const { return http_method + " " + path.text(); }
};

class RouteTable {
 public:
  struct Match {
    const Route* route = nullptr;
    std::vector<std::string> values;  // of route->path.variables(), decoded
  };
  struct Lookup {
    std::optional<Match> match;
    bool path_known = false;  // some route has this path with another HTTP method (-> 405)
    std::vector<std::string> allowed_methods;
  };

  // Reads every service whose full name starts with one of `service_prefixes` ("ptd.") in the files of
  // `pool` named `files`, and all their google.api.http rules (with additional_bindings). A rule that
  // names a missing field, a repeated field as a variable or a body that is not a field is an error, as is
  // the same method and template on two RPCs: the error lists them all.
  static absl::StatusOr<RouteTable> Build(const google::protobuf::DescriptorPool& pool,
                                          const std::vector<std::string>& files,
                                          const std::vector<std::string>& service_prefixes);

  // The most specific route for `method` and `path` (no query string; percent-encoded).
  Lookup Find(std::string_view method, std::string_view path) const;

  const std::vector<std::unique_ptr<Route>>& routes() const { return routes_; }

 private:
  std::vector<std::unique_ptr<Route>> routes_;
  std::map<std::string, std::vector<const Route*>, std::less<>> by_method_;
};

// Every file name the generated descriptor pool of this binary knows.
std::vector<std::string> GeneratedFileNames();

}  // namespace ptd::gateway

#endif  // PTD_SERVICES_GATEWAY_DOMAIN_ROUTE_TABLE_H_
