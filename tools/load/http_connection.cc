#include "tools/load/http_connection.h"

namespace ptd::load {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

HttpConnection::HttpConnection(std::string host, int port, std::chrono::milliseconds timeout)
    : host_(std::move(host)), port_(port), timeout_(timeout) {}

bool HttpConnection::Connect() {
  stream_.emplace(ioc_);
  buffer_.clear();
  beast::error_code ec;
  stream_->expires_after(timeout_);
  stream_->connect(tcp::endpoint(net::ip::make_address(host_, ec), static_cast<uint16_t>(port_)), ec);
  if (ec) {
    stream_.reset();
    return false;
  }
  stream_->socket().set_option(tcp::no_delay(true), ec);
  return true;
}

HttpAnswer HttpConnection::SendOnce(const http::request<http::string_body>& request) {
  beast::error_code ec;
  stream_->expires_after(timeout_);
  http::write(*stream_, request, ec);
  http::response<http::string_body> response;
  if (!ec) http::read(*stream_, buffer_, response, ec);
  if (ec) {
    stream_.reset();
    return {};
  }
  if (response.need_eof()) stream_.reset();
  return {static_cast<int>(response.result_int()), std::move(response.body())};
}

HttpAnswer HttpConnection::Send(http::verb verb, const std::string& target, const std::string& body,
                                const std::string& bearer) {
  http::request<http::string_body> request{verb, target, 11};
  request.set(http::field::host, host_);
  if (!bearer.empty()) request.set(http::field::authorization, "Bearer " + bearer);
  if (!body.empty()) request.set(http::field::content_type, "application/json");
  request.body() = body;
  request.prepare_payload();
  const bool reused = stream_.has_value();
  if (!reused && !Connect()) return {};
  HttpAnswer answer = SendOnce(request);
  if (answer.status == 0 && reused && Connect()) answer = SendOnce(request);
  return answer;
}

}  // namespace ptd::load
