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
// 100-continue, limits on header and body size, an idle timeout, TLS when a certificate is configured, and
// responses streamed in chunks. A few threads run every connection; handlers answer asynchronously, so a slow
// backend holds no thread.
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

// The body of a streamed response, sent as it is produced. Every call may come from any thread; they take
// effect in order on the connection's own thread.
class HttpResponseStream {
 public:
  virtual ~HttpResponseStream() = default;
  // A whole response instead of a stream (an error before anything was streamed); nothing may follow.
  virtual void Respond(HttpResponse&& response) = 0;
  // Sends the status line and headers (the body of `head` is ignored). HTTP/1.1: Transfer-Encoding: chunked
  // (set here); HTTP/1.0: the body ends with the connection.
  virtual void Begin(HttpResponse&& head) = 0;
  // Sends `data` as one chunk. `written` runs on the connection's thread once the socket took all of it (true:
  // ask the source for more now, so a slow reader slows the source instead of filling memory), or when it
  // cannot be sent (false: the client is gone). One Write at a time: the next after `written`.
  virtual void Write(std::string data, std::function<void(bool ok)> written) = 0;
  // Ends the body (the last chunk); the connection goes on to its next request, or closes. The last call:
  // after Begin, or on its own when the client went away first.
  virtual void End() = 0;
};

// How a handler answers one request, exactly once: Respond, or OpenStream and then the stream's calls.
class HttpResponder {
 public:
  // Implemented by the server's connections.
  class Connection {
   public:
    virtual ~Connection() = default;
    virtual void Respond(HttpResponse&& response) = 0;
    virtual std::shared_ptr<HttpResponseStream> OpenStream(std::function<void()> on_client_gone) = 0;
  };

  HttpResponder() = default;
  explicit HttpResponder(std::shared_ptr<Connection> connection) : connection_(std::move(connection)) {}

  // The whole response; the server sets its keep-alive and Content-Length. Any thread.
  void Respond(HttpResponse&& response) const { connection_->Respond(std::move(response)); }
  // A response that will be streamed. From now on the connection watches for the client hanging up:
  // `on_client_gone` runs once, on the connection's thread, when it does (or a write fails) before the
  // stream's End. No time limit applies while the stream waits for its source; each write must complete
  // within the idle timeout. Any thread.
  std::shared_ptr<HttpResponseStream> OpenStream(std::function<void()> on_client_gone) const {
    return connection_->OpenStream(std::move(on_client_gone));
  }

 private:
  std::shared_ptr<Connection> connection_;
};

// Called on a server thread for each request; must answer through `responder`, from any thread.
using HttpHandler = std::function<void(HttpRequest&& request, const Peer& peer, HttpResponder responder)>;

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

  // Stops accepting, lets requests in flight (streams included: end them first) finish for up to `drain`, then
  // closes every connection and joins the threads. Idempotent.
  void Stop(absl::Duration drain = absl::Seconds(10));

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
  int port_ = 0;
};

}  // namespace ptd::gateway

#endif  // PTD_SERVICES_GATEWAY_HTTP_SERVER_H_
