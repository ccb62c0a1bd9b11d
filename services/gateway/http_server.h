#ifndef PTD_SERVICES_GATEWAY_HTTP_SERVER_H_
#define PTD_SERVICES_GATEWAY_HTTP_SERVER_H_

#include <atomic>
#include <boost/beast/http.hpp>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"

// An HTTP/1.1 server (Boost.Beast on Asio): keep-alive, pipelined requests answered in order, Expect:
// 100-continue, limits on header and body size, an idle timeout, and TLS when a certificate is configured.
// A few threads run every connection; handlers answer asynchronously, so a slow backend holds no thread.
namespace ptd::gateway {

using HttpRequest = boost::beast::http::request<boost::beast::http::string_body>;
using HttpResponse = boost::beast::http::response<boost::beast::http::string_body>;

struct HttpServerOptions {
  std::string address = "127.0.0.1:8080";  // host:port; port 0 picks a free one (see port())
  int threads = 2;
  uint64_t max_body_bytes = 1 << 20;                // larger bodies: 413 and the connection closes
  uint32_t max_header_bytes = 16 << 10;             // larger headers: 431
  absl::Duration idle_timeout = absl::Seconds(60);  // waiting for (the rest of) a request
  std::string tls_cert_file;                        // PEM chain; with tls_key_file, the server speaks only HTTPS
  std::string tls_key_file;
};

struct Peer {
  std::string address;  // the client's IP
  bool tls = false;
};

// Called on a server thread for each request; must call `respond` exactly once, from any thread. The
// response's keep-alive and Content-Length are set by the server.
using HttpHandler =
    std::function<void(HttpRequest&& request, const Peer& peer, std::function<void(HttpResponse&&)> respond)>;

// For requests the parser refused (too large, malformed): status, message. The handler never sees them.
using HttpRejectHandler = std::function<HttpResponse(int status, const std::string& message)>;

class HttpServer {
 public:
  HttpServer(HttpServerOptions options, HttpHandler handler, HttpRejectHandler reject);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Loads the certificate (when configured), binds and starts the threads.
  absl::Status Start();
  int port() const { return port_; }

  // Stops accepting, lets requests in flight finish for up to `drain`, then closes every connection and
  // joins the threads. Idempotent.
  void Stop(absl::Duration drain = absl::Seconds(10));

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
  int port_ = 0;
};

}  // namespace ptd::gateway

#endif  // PTD_SERVICES_GATEWAY_HTTP_SERVER_H_
