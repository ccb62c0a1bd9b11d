#include "tests/gateway/http_client.h"

#include <poll.h>

#include <algorithm>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <limits>
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
  // The open stream's parser, and how much of its body was handed out as lines.
  std::optional<http::response_parser<http::string_body>> stream;
  size_t consumed = 0;

  bool open() const { return tls ? secure.has_value() : plain.has_value(); }
  void Close() {
    plain.reset();
    secure.reset();
    buffer.clear();
    stream.reset();
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

namespace {

HttpResult ResultOf(const http::response<http::string_body>& response) {
  HttpResult result;
  result.status = response.result_int();
  for (const auto& field : response) {
    std::string name(field.name_string());
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    result.headers[name] = std::string(field.value());
  }
  result.body = response.body();
  return result;
}

}  // namespace

bool HttpClient::Send(const std::string& target, const std::map<std::string, std::string>& headers) {
  impl_->stream.reset();
  if (!impl_->open()) {
    if (!impl_->Connect()) return false;
    ++connections_;
  }
  http::request<http::string_body> request{http::verb::get, target, 11};
  request.set(http::field::host, "127.0.0.1");
  for (const auto& [name, value] : headers) request.set(name, value);
  beast::error_code ec;
  impl_->WithStream([&](auto& stream) { http::write(stream, request, ec); });
  if (ec) impl_->Close();
  return !ec;
}

HttpResult HttpClient::OpenStream(const std::string& target, const std::map<std::string, std::string>& headers) {
  if (!Send(target, headers)) return {};
  beast::error_code ec;
  auto& parser = impl_->stream.emplace();
  parser.body_limit(std::numeric_limits<std::uint64_t>::max());  // (boost::none fails in Boost 1.74)
  impl_->WithStream([&](auto& stream) { http::read_header(stream, impl_->buffer, parser, ec); });
  if (ec) {
    impl_->Close();
    return {};
  }
  impl_->consumed = 0;
  if (!parser.chunked()) {
    // An ordinary response: read it whole.
    impl_->WithStream([&](auto& stream) { http::read(stream, impl_->buffer, parser, ec); });
    HttpResult result = ResultOf(parser.get());
    bool keep_alive = parser.get().keep_alive();
    impl_->stream.reset();
    if (ec || !keep_alive) impl_->Close();
    return result;
  }
  return ResultOf(parser.get());
}

std::optional<std::string> HttpClient::ReadLine(std::chrono::milliseconds timeout) {
  timed_out_ = false;
  if (!impl_->stream) return std::nullopt;
  auto& parser = *impl_->stream;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    std::string& body = parser.get().body();
    size_t newline = body.find('\n', impl_->consumed);
    if (newline != std::string::npos) {
      std::string line = body.substr(impl_->consumed, newline - impl_->consumed);
      impl_->consumed = newline + 1;
      if (impl_->consumed > (1 << 20)) {  // a long stream does not pile up here either
        body.erase(0, impl_->consumed);
        impl_->consumed = 0;
      }
      return line;
    }
    if (parser.is_done()) {
      bool keep_alive = parser.get().keep_alive();
      impl_->stream.reset();
      if (!keep_alive) impl_->Close();
      return std::nullopt;
    }
    // Parse what has arrived; read more only when that is not enough.
    beast::error_code ec;
    if (impl_->buffer.size() > 0) {
      size_t used = parser.put(impl_->buffer.data(), ec);
      impl_->buffer.consume(used);
      if (ec && ec != http::error::need_more) {
        impl_->Close();
        return std::nullopt;
      }
      if (used > 0) continue;
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (!impl_->tls) {
      // A synchronous read has no timeout: wait for bytes first. (Over TLS, bytes the TLS layer holds already
      // would not show here, so it just reads.)
      pollfd fd{.fd = impl_->plain->socket().native_handle(), .events = POLLIN};
      if (left.count() <= 0 || ::poll(&fd, 1, static_cast<int>(left.count())) == 0) {
        timed_out_ = true;
        return std::nullopt;
      }
    }
    size_t n = 0;
    impl_->WithStream([&](auto& stream) { n = stream.read_some(impl_->buffer.prepare(64 << 10), ec); });
    impl_->buffer.commit(n);
    if (ec) {
      if (ec == net::error::eof) parser.put_eof(ec);
      if (!parser.is_done()) {
        impl_->Close();
        return std::nullopt;
      }
    }
  }
}

void HttpClient::Disconnect() { impl_->Close(); }

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
  if (impl_->stream) impl_->Close();  // a stream still open is hung up

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
    HttpResult result = ResultOf(parser.get());
    if (!parser.get().keep_alive()) impl_->Close();
    return result;
  }
  return {};
}

}  // namespace ptd::testing
