#ifndef PTD_SERVICES_GATEWAY_DOMAIN_OPENAPI_H_
#define PTD_SERVICES_GATEWAY_DOMAIN_OPENAPI_H_

#include <nlohmann/json.hpp>
#include <string>

#include "services/gateway/domain/route_table.h"

// An OpenAPI 3.0 document for every route, from the same descriptors the gateway serves: paths with their
// path and query parameters and request bodies, and one schema per message and enum (named by full proto
// name), in the Protobuf JSON mapping (lowerCamelCase, int64 as string, enums as strings, Timestamp as
// date-time). Operations take a bearer JWT or an X-API-Key, except the anonymous ones. A server-streaming
// operation answers application/x-ndjson: objects {"result": <message>}, or last {"error": <Error>}.
namespace ptd::gateway {

struct OpenApiInfo {
  std::string title = "PTDCloud API";
  std::string version = "v1";
};

nlohmann::json OpenApiDocument(const RouteTable& routes, const OpenApiInfo& info = {});

}  // namespace ptd::gateway

#endif  // PTD_SERVICES_GATEWAY_DOMAIN_OPENAPI_H_
