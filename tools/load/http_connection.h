#ifndef PTD_TOOLS_LOAD_HTTP_CONNECTION_H_
#define PTD_TOOLS_LOAD_HTTP_CONNECTION_H_

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <optional>
#include <string>

namespace ptd::load {

struct HttpAnswer {
  int status = 0;  // 0: no answer (the connection failed or timed out)
  std::string body;
};

// One blocking keep-alive HTTP/1.1 connection to the gateway, opened on first use and reopened after an error.
// A request on a reused connection that fails is sent once more on a new one (the server may have closed it
// while idle); every POST of the load carries an idempotency key, so a repeat changes nothing.
class HttpConnection {
 public:
  HttpConnection(std::string host, int port, std::chrono::milliseconds timeout);

  // `bearer`: an access token for "Authorization: Bearer", or empty. A non-empty body is sent as JSON.
  HttpAnswer Send(boost::beast::http::verb verb, const std::string& target, const std::string& body,
                  const std::string& bearer);

 private:
  bool Connect();
  HttpAnswer SendOnce(const boost::beast::http::request<boost::beast::http::string_body>& request);

  std::string host_;
  int port_;
  std::chrono::milliseconds timeout_;
  boost::asio::io_context ioc_;
  std::optional<boost::beast::tcp_stream> stream_;
  boost::beast::flat_buffer buffer_;
};

}  // namespace ptd::load

#endif  // PTD_TOOLS_LOAD_HTTP_CONNECTION_H_
