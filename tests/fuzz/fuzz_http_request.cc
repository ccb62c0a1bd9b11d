// What a client sends the gateway, from the first byte: Beast's HTTP/1.1 parser with the gateway's header and
// body limits (HttpServerOptions), then, for a request that parses, the route lookup, the query string and the
// transcoding of its body — the path of every request before authentication.
#include <google/protobuf/dynamic_message.h>

#include <boost/beast/http.hpp>
#include <cstdint>
#include <memory>
#include <string_view>

#include "services/gateway/domain/transcoder.h"
#include "services/gateway/http_server.h"
#include "tests/fuzz/routes.h"

namespace http = boost::beast::http;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const ptd::gateway::HttpServerOptions kLimits;
  http::request_parser<http::string_body> parser;
  parser.header_limit(kLimits.max_header_bytes);
  parser.body_limit(kLimits.max_body_bytes);
  parser.eager(true);
  boost::beast::error_code ec;
  size_t offset = 0;
  while (offset < size && !parser.is_done()) {
    const size_t used = parser.put(boost::asio::buffer(data + offset, size - offset), ec);
    if (ec == http::error::need_more) break;
    if (ec) return 0;
    if (used == 0) break;
    offset += used;
  }
  if (!parser.is_done()) {
    parser.put_eof(ec);
    if (ec || !parser.is_done()) return 0;
  }
  const ptd::gateway::HttpRequest& request = parser.get();
  const std::string_view target(request.target().data(), request.target().size());
  const size_t question = target.find('?');
  const std::string_view path = target.substr(0, question);
  const std::string_view query = question == std::string_view::npos ? "" : target.substr(question + 1);
  const std::string_view method(request.method_string().data(), request.method_string().size());
  ptd::gateway::RouteTable::Lookup lookup = ptd::fuzz::Routes().Find(method, path);
  if (!lookup.match) return 0;
  google::protobuf::DynamicMessageFactory factory;
  std::unique_ptr<google::protobuf::Message> message(
      factory.GetPrototype(lookup.match->route->method->input_type())->New());
  (void)ptd::gateway::BuildRequest(*lookup.match, query, request.body(), {}, message.get());
  return 0;
}
