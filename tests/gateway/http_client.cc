#include "tests/gateway/http_client.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <optional>

namespace ptd::testing {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

struct HttpClient::Impl {
  int port;
  bool tls;
  net::io_context ioc;
  net::ssl::context ssl_ctx{net::ssl::context::tls_client};
  std::optional<beast::tcp_stream> plain;
  std::optional<beast::ssl_stream<beast::tcp_stream>> secure;
  beast::flat_buffer buffer;

  bool open() const { return tls ? secure.has_value() : plain.has_value(); }
  void Close() {
    plain.reset();
    secure.reset();
    buffer.clear();
  }
  bool Connect() {
    Close();
    beast::error_code ec;
    tcp::endpoint endpoint(net::ip::make_address("127.0.0.1"), static_cast<uint16_t>(port));
    if (tls) {
      secure.emplace(ioc, ssl_ctx);
      beast::get_lowest_layer(*secure).expires_after(std::chrono::seconds(30));
      beast::get_lowest_layer(*secure).connect(endpoint, ec);
      if (!ec) secure->handshake(net::ssl::stream_base::client, ec);
    } else {
      plain.emplace(ioc);
      plain->expires_after(std::chrono::seconds(30));
      plain->connect(endpoint, ec);
    }
    if (ec) Close();
    return !ec;
  }
  template <class Fn>
  void WithStream(Fn fn) {
    if (tls) {
      beast::get_lowest_layer(*secure).expires_after(std::chrono::seconds(30));
      fn(*secure);
    } else {
      plain->expires_after(std::chrono::seconds(30));
      fn(*plain);
    }
  }
};

HttpClient::HttpClient(int port, bool tls) : impl_(std::make_unique<Impl>()) {
  impl_->port = port;
  impl_->tls = tls;
  impl_->ssl_ctx.set_verify_mode(net::ssl::verify_none);
}

HttpClient::~HttpClient() = default;

HttpResult HttpClient::Request(const std::string& method, const std::string& target, const std::string& body,
                               const std::map<std::string, std::string>& headers) {
  http::request<http::string_body> request{http::string_to_verb(method), target, 11};
  if (request.method() == http::verb::unknown) request.method_string(method);
  request.set(http::field::host, "127.0.0.1");
  bool has_type = false;
  for (const auto& [name, value] : headers) {
    request.set(name, value);
    if (beast::iequals(name, "content-type")) has_type = true;
  }
  if (!body.empty() && !has_type) request.set(http::field::content_type, "application/json");
  request.body() = body;
  request.prepare_payload();

  for (int attempt = 0; attempt < 2; ++attempt) {
    if (!impl_->open()) {
      if (!impl_->Connect()) return {};
      ++connections_;
    }
    beast::error_code ec;
    http::response_parser<http::string_body> parser;
    parser.body_limit(64 << 20);
    impl_->WithStream([&](auto& stream) {
      http::write(stream, request, ec);
      if (!ec) http::read(stream, impl_->buffer, parser, ec);
    });
    if (ec) {
      // A kept-alive connection the server closed: once more on a new one. Otherwise no answer.
      bool stale = attempt == 0 && (ec == http::error::end_of_stream || ec == net::error::connection_reset ||
                                    ec == net::error::broken_pipe || ec == net::error::eof);
      impl_->Close();
      if (stale) continue;
      // The server may have answered and closed before reading everything (413): keep what was parsed.
      if (parser.is_header_done()) {
        HttpResult partial;
        partial.status = parser.get().result_int();
        partial.body = parser.get().body();
        return partial;
      }
      return {};
    }
    auto& response = parser.get();
    HttpResult result;
    result.status = response.result_int();
    for (const auto& field : response) {
      std::string name(field.name_string());
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      result.headers[name] = std::string(field.value());
    }
    result.body = response.body();
    if (!response.keep_alive()) impl_->Close();
    return result;
  }
  return {};
}

}  // namespace ptd::testing
