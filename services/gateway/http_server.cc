#include "services/gateway/http_server.h"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/ssl.hpp>
#include <chrono>
#include <deque>
#include <optional>
#include <type_traits>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "libs/core/log.h"

namespace ptd::gateway {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;

struct HttpServer::Impl {
  explicit Impl(HttpServerOptions o) : options(std::move(o)) {
    // One event loop per thread, each connection on one of them: a request is read, handled and answered
    // without handing it between threads (a thread wake-up costs more than most of the work).
    for (int i = 0; i < std::max(1, options.threads); ++i) contexts.push_back(std::make_unique<net::io_context>(1));
    acceptor.emplace(*contexts[0]);
  }

  HttpServerOptions options;
  HttpHandler handler;
  HttpRejectHandler reject;
  std::vector<std::unique_ptr<net::io_context>> contexts;
  size_t next_context = 0;  // of the next connection; used by the accepting thread only
  std::optional<ssl::context> tls;
  std::optional<tcp::acceptor> acceptor;
  std::vector<std::thread> threads;
  std::atomic<int> in_flight{0};
  std::atomic<bool> stopping{false};
  bool stopped = false;

  void Accept();
};

namespace {

using PlainStream = beast::tcp_stream;
using TlsStream = beast::ssl_stream<beast::tcp_stream>;

template <class Stream>
class Session : public std::enable_shared_from_this<Session<Stream>>, public HttpResponder::Connection {
 public:
  Session(HttpServer::Impl& server, Stream stream, Peer peer)
      : server_(server), stream_(std::move(stream)), peer_(std::move(peer)), idle_timer_(stream_.get_executor()) {}

  void Run() {
    if constexpr (std::is_same_v<Stream, TlsStream>) {
      beast::get_lowest_layer(stream_).expires_after(ToChrono(server_.options.idle_timeout));
      stream_.async_handshake(ssl::stream_base::server, [self = this->shared_from_this()](beast::error_code ec) {
        if (ec) return;  // a client that cannot speak TLS to us: nothing to answer
        self->ReadHeader();
      });
    } else {
      ReadHeader();
    }
  }

 private:
  static std::chrono::steady_clock::duration ToChrono(absl::Duration d) {
    return std::chrono::duration_cast<std::chrono::steady_clock::duration>(absl::ToChronoNanoseconds(d));
  }

  void ReadHeader() {
    parser_.emplace();
    parser_->body_limit(server_.options.max_body_bytes);
    parser_->header_limit(server_.options.max_header_bytes);
    beast::get_lowest_layer(stream_).expires_after(ToChrono(server_.options.idle_timeout));
    http::async_read_header(stream_, buffer_, *parser_,
                            [self = this->shared_from_this()](beast::error_code ec, size_t) { self->OnHeader(ec); });
  }

  void OnHeader(beast::error_code ec) {
    if (ec) return OnReadError(ec);
    if (beast::iequals(parser_->get()[http::field::expect], "100-continue")) {
      auto cont = std::make_shared<http::response<http::empty_body>>(http::status::continue_, parser_->get().version());
      http::async_write(stream_, *cont, [self = this->shared_from_this(), cont](beast::error_code ec, size_t) {
        if (ec) return self->Close();
        self->ReadBody();
      });
      return;
    }
    ReadBody();
  }

  void ReadBody() {
    http::async_read(stream_, buffer_, *parser_,
                     [self = this->shared_from_this()](beast::error_code ec, size_t) { self->OnBody(ec); });
  }

  void OnReadError(beast::error_code ec) {
    if (ec == http::error::end_of_stream || ec == net::error::eof || ec == beast::error::timeout ||
        ec == net::error::operation_aborted || ec == net::error::connection_reset ||
        (ec == http::error::partial_message && buffer_.size() == 0)) {
      return Close();
    }
    int status = 400;
    std::string message = absl::StrCat("malformed HTTP request: ", ec.message());
    if (ec == http::error::body_limit) {
      status = 413;
      message = absl::StrCat("the body is larger than the limit of ", server_.options.max_body_bytes, " bytes");
    } else if (ec == http::error::header_limit) {
      status = 431;
      message = absl::StrCat("the headers are larger than the limit of ", server_.options.max_header_bytes, " bytes");
    }
    HttpResponse res = server_.reject(status, message);
    unsigned version = parser_ && parser_->is_header_done() ? parser_->get().version() : 11;
    // After a refused request the rest of the stream cannot be trusted: close.
    Write(std::move(res), /*keep_alive=*/false, version, /*counted=*/false);
  }

  void OnBody(beast::error_code ec) {
    if (ec) return OnReadError(ec);
    HttpRequest request = parser_->release();
    // Read by Respond, possibly on another thread: the hand-off to it orders these writes before.
    request_keep_alive_ = request.keep_alive();
    request_version_ = request.version();
    server_.in_flight.fetch_add(1);
    server_.handler(std::move(request), peer_, HttpResponder(this->shared_from_this()));
  }

 public:
  // HttpResponder::Connection
  void Respond(HttpResponse&& res) override {
    const bool keep_alive = request_keep_alive_ && !server_.stopping.load();
    if constexpr (std::is_same_v<Stream, PlainStream>) {
      Answer(std::move(res), keep_alive, request_version_);
    } else {
      net::post(stream_.get_executor(), [self = this->shared_from_this(), res = std::move(res), keep_alive,
                                         version = request_version_]() mutable {
        self->Write(std::move(res), keep_alive, version, /*counted=*/true);
      });
    }
  }

  std::shared_ptr<HttpResponseStream> OpenStream(std::function<void()> on_client_gone) override {
    // On the connection's own thread (the handler usually runs there) the stream opens at once. Posted from
    // there, it would wait in that thread's private queue until the handler returns, while the backend's first
    // message, posted from a gRPC thread, could already be in the shared queue ahead of it: the head went out,
    // and the opening then reset the stream's state, so that its end was taken for a client gone and the
    // connection closed (seen under load in the keep-alive test).
    auto& context = static_cast<net::io_context&>(net::query(stream_.get_executor(), net::execution::context));
    if (context.get_executor().running_in_this_thread()) {
      StreamOpened(std::move(on_client_gone));
    } else {
      net::post(stream_.get_executor(), [self = this->shared_from_this(), f = std::move(on_client_gone)]() mutable {
        self->StreamOpened(std::move(f));
      });
    }
    return std::make_shared<StreamHandle>(this->shared_from_this());
  }

 private:
  // A streamed response: what is to be sent, in order, written one piece at a time on the connection's thread.
  struct Outgoing {
    enum Kind { kWhole, kHead, kChunk, kLast } kind;
    HttpResponse response;  // kWhole, kHead
    std::string data;       // kChunk
    std::function<void(bool ok)> written;
  };

  // Any thread.
  void Enqueue(Outgoing&& out) {
    net::post(stream_.get_executor(), [self = this->shared_from_this(), out = std::move(out)]() mutable {
      self->outgoing_.push_back(std::move(out));
      self->Pump();
    });
  }

  class StreamHandle final : public HttpResponseStream {
   public:
    explicit StreamHandle(std::shared_ptr<Session> session) : session_(std::move(session)) {}
    void Respond(HttpResponse&& response) override {
      session_->Enqueue({.kind = Outgoing::kWhole, .response = std::move(response)});
    }
    void Begin(HttpResponse&& head) override {
      session_->Enqueue({.kind = Outgoing::kHead, .response = std::move(head)});
    }
    void Write(std::string data, std::function<void(bool)> written) override {
      session_->Enqueue({.kind = Outgoing::kChunk, .data = std::move(data), .written = std::move(written)});
    }
    void End() override { session_->Enqueue({.kind = Outgoing::kLast}); }

   private:
    std::shared_ptr<Session> session_;
  };

  // On the connection's thread from here on.
  void StreamOpened(std::function<void()> on_client_gone) {
    streaming_ = true;
    began_ = false;
    gone_ = false;
    on_client_gone_ = std::move(on_client_gone);
    Watch();
  }

  // Keeps a read pending while a stream is open, to notice the client hanging up (and to keep what it sends
  // meanwhile, pipelined requests, for after the stream), up to a limit.
  void Watch() {
    if (watching_ || gone_ || buffer_.size() >= kMaxBufferedWhileStreaming + server_.options.max_header_bytes) return;
    watching_ = true;
    // No time limit while waiting for the client: a stream may be quiet for long. (Only the read's timer
    // changes when a write is pending.)
    beast::get_lowest_layer(stream_).expires_at(std::chrono::steady_clock::time_point::max());
    stream_.async_read_some(
        buffer_.prepare(kWatchBytes),
        [self = this->shared_from_this()](beast::error_code ec, size_t n) { self->OnWatched(ec, n); });
  }

  void OnWatched(beast::error_code ec, size_t n) {
    watching_ = false;
    if (!ec) buffer_.commit(n);
    if (streaming_) {
      if (ec) return ClientGone();
      return Watch();
    }
    // The stream ended while this read waited: it goes on into the next request.
    idle_timer_.cancel();
    if (ec) return Close();
    ReadHeader();
  }

  void ClientGone() {
    if (gone_) return;
    gone_ = true;
    std::function<void()> f = std::move(on_client_gone_);
    on_client_gone_ = nullptr;
    if (f) f();
  }

  void Pump() {
    while (!writing_ && !outgoing_.empty()) {
      Outgoing& out = outgoing_.front();
      // Nothing more reaches a client that is gone; an End without a head cannot be sent as a response.
      if (gone_ || (out.kind == Outgoing::kLast && !began_)) {
        if (!gone_) ClientGone();
        Outgoing done = std::move(out);
        outgoing_.pop_front();
        Completed(done, false);
        continue;
      }
      writing_ = true;
      beast::get_lowest_layer(stream_).expires_after(ToChrono(server_.options.idle_timeout));
      auto on_written = [self = this->shared_from_this()](beast::error_code ec, size_t) { self->OnWritten(ec); };
      switch (out.kind) {
        case Outgoing::kWhole: {
          out.response.version(request_version_);
          out.response.keep_alive(request_keep_alive_ && !server_.stopping.load());
          out.response.prepare_payload();
          http::async_write(stream_, out.response, std::move(on_written));
          break;
        }
        case Outgoing::kHead: {
          began_ = true;
          chunked_ = request_version_ >= 11;
          keep_alive_ = chunked_ && request_keep_alive_ && !server_.stopping.load();
          out.response.version(request_version_);
          out.response.keep_alive(keep_alive_);
          out.response.body().clear();
          if (chunked_) out.response.chunked(true);
          head_serializer_.emplace(out.response);
          head_serializer_->split(true);
          http::async_write_header(stream_, *head_serializer_, std::move(on_written));
          break;
        }
        case Outgoing::kChunk:
          if (chunked_) {
            net::async_write(stream_, http::make_chunk(net::buffer(out.data)), std::move(on_written));
          } else {
            net::async_write(stream_, net::buffer(out.data), std::move(on_written));
          }
          break;
        case Outgoing::kLast:
          if (chunked_) {
            net::async_write(stream_, http::make_chunk_last(), std::move(on_written));
          } else {
            writing_ = false;  // HTTP/1.0: closing the connection ends the body
            Outgoing done = std::move(out);
            outgoing_.pop_front();
            Completed(done, true);
          }
          break;
      }
    }
  }

  void OnWritten(beast::error_code ec) {
    writing_ = false;
    head_serializer_.reset();
    if (ec) ClientGone();
    Outgoing done = std::move(outgoing_.front());
    outgoing_.pop_front();
    Completed(done, !ec);
    Pump();
  }

  void Completed(Outgoing& out, bool ok) {
    if (out.written) out.written(ok);
    if (out.kind == Outgoing::kWhole || out.kind == Outgoing::kLast) AfterStream(out.kind == Outgoing::kWhole);
  }

  // The streamed response is complete (or abandoned): on to the next request, or close.
  void AfterStream(bool whole) {
    streaming_ = false;
    on_client_gone_ = nullptr;
    server_.in_flight.fetch_sub(1);
    const bool keep_alive = whole ? request_keep_alive_ && !server_.stopping.load() : keep_alive_;
    if (gone_ || !keep_alive) {
      // A TLS close_notify would need a read of its own, and one may be pending: just close.
      if (watching_) return beast::get_lowest_layer(stream_).close();
      return Close();
    }
    if (!watching_) return ReadHeader();
    // The pending read goes on into the next request; it must come within the idle timeout.
    idle_timer_.expires_after(ToChrono(server_.options.idle_timeout));
    idle_timer_.async_wait([self = this->shared_from_this()](beast::error_code ec) {
      if (!ec && self->watching_) beast::get_lowest_layer(self->stream_).close();
    });
  }

  // Plain HTTP: the response is written right away on the answering thread (often gRPC's), and the next
  // request's read is started there too. No operation is pending on the connection while its request is being
  // handled, so this is safe, and the connection's own thread is woken only when the next request arrives
  // (instead of once more for the write's completion). Only what the socket does not take at once is left to
  // an asynchronous write.
  void Answer(HttpResponse&& res, bool keep_alive, unsigned version) {
    auto response = std::make_shared<HttpResponse>(std::move(res));
    response->version(version);
    response->keep_alive(keep_alive);
    response->prepare_payload();
    auto serializer = std::make_shared<http::response_serializer<http::string_body>>(*response);
    beast::error_code ec;
    stream_.socket().non_blocking(true, ec);
    if (!ec) http::write(stream_.socket(), *serializer, ec);
    if (ec == net::error::would_block || ec == net::error::try_again) {
      beast::get_lowest_layer(stream_).expires_after(ToChrono(server_.options.idle_timeout));
      http::async_write(stream_, *serializer,
                        [self = this->shared_from_this(), response, serializer, keep_alive](
                            beast::error_code ec, size_t) { self->AfterAnswer(ec, keep_alive); });
      return;
    }
    AfterAnswer(ec, keep_alive);
  }

  void AfterAnswer(beast::error_code ec, bool keep_alive) {
    server_.in_flight.fetch_sub(1);
    if (ec || !keep_alive) return Close();
    ReadHeader();
  }

  void Write(HttpResponse&& res, bool keep_alive, unsigned version, bool counted) {
    auto response = std::make_shared<HttpResponse>(std::move(res));
    response->version(version);
    response->keep_alive(keep_alive);
    response->prepare_payload();
    beast::get_lowest_layer(stream_).expires_after(ToChrono(server_.options.idle_timeout));
    http::async_write(stream_, *response,
                      [self = this->shared_from_this(), response, keep_alive, counted](beast::error_code ec, size_t) {
                        if (counted) self->server_.in_flight.fetch_sub(1);
                        if (!ec && !counted) return self->LingerThenClose();
                        if (ec || !keep_alive) return self->Close();
                        self->ReadHeader();
                      });
  }

  // After refusing a request whose body may still be arriving: stop sending, read and drop what comes for a
  // moment, then close. Closing at once with unread data makes the kernel send a reset, which can destroy
  // the refusal before the client reads it.
  void LingerThenClose() {
    if constexpr (std::is_same_v<Stream, TlsStream>) {
      Close();
    } else {
      beast::error_code ignored;
      stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
      stream_.expires_after(std::chrono::seconds(2));
      Drain();
    }
  }

  void Drain() {
    drain_buffer_.resize(64 << 10);
    stream_.async_read_some(net::buffer(drain_buffer_),
                            [self = this->shared_from_this()](beast::error_code ec, size_t n) {
                              self->drained_ += n;
                              if (ec || self->drained_ > (64u << 20)) return self->Close();
                              self->Drain();
                            });
  }

  void Close() {
    if constexpr (std::is_same_v<Stream, TlsStream>) {
      beast::get_lowest_layer(stream_).expires_after(std::chrono::seconds(5));
      stream_.async_shutdown([self = this->shared_from_this()](beast::error_code) {
        beast::error_code ignored;
        beast::get_lowest_layer(self->stream_).socket().close(ignored);
      });
    } else {
      beast::error_code ignored;
      stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
      stream_.socket().close(ignored);
    }
  }

  static constexpr size_t kWatchBytes = 4096;
  static constexpr size_t kMaxBufferedWhileStreaming = 64 << 10;

  HttpServer::Impl& server_;
  Stream stream_;
  Peer peer_;
  net::steady_timer idle_timer_;  // after a stream, while its watching read goes on into the next request
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::vector<char> drain_buffer_;
  size_t drained_ = 0;

  // Of the request being answered.
  bool request_keep_alive_ = false;
  unsigned request_version_ = 11;

  // Of a streamed response; on the connection's thread only.
  bool streaming_ = false;  // from OpenStream until the response is complete
  bool began_ = false;      // the head is sent
  bool chunked_ = true;     // HTTP/1.1; an HTTP/1.0 body ends with the connection
  bool keep_alive_ = false;
  bool gone_ = false;  // the client hung up, or a write failed
  bool watching_ = false;
  bool writing_ = false;
  std::function<void()> on_client_gone_;
  std::deque<Outgoing> outgoing_;
  std::optional<http::response_serializer<http::string_body>> head_serializer_;
};

}  // namespace

void HttpServer::Impl::Accept() {
  net::io_context& context = *contexts[next_context++ % contexts.size()];
  acceptor->async_accept(context, [this](beast::error_code ec, tcp::socket socket) {
    if (ec) {
      if (!acceptor->is_open()) return;  // stopping
      log::Warn("http accept failed", {{"error", ec.message()}});
      return Accept();
    }
    Peer peer;
    beast::error_code addr_ec;
    auto remote = socket.remote_endpoint(addr_ec);
    if (!addr_ec) peer.address = remote.address().to_string();
    socket.set_option(tcp::no_delay(true), addr_ec);
    if (tls) {
      peer.tls = true;
      std::make_shared<Session<TlsStream>>(*this, TlsStream(std::move(socket), *tls), std::move(peer))->Run();
    } else {
      std::make_shared<Session<PlainStream>>(*this, PlainStream(std::move(socket)), std::move(peer))->Run();
    }
    Accept();
  });
}

HttpServer::HttpServer(HttpServerOptions options, HttpHandler handler, HttpRejectHandler reject)
    : impl_(std::make_unique<Impl>(std::move(options))) {
  impl_->handler = std::move(handler);
  impl_->reject = std::move(reject);
}

HttpServer::~HttpServer() { Stop(absl::ZeroDuration()); }

absl::Status HttpServer::Start() {
  const HttpServerOptions& o = impl_->options;
  if (!o.tls_cert_file.empty() || !o.tls_key_file.empty()) {
    if (o.tls_cert_file.empty() || o.tls_key_file.empty()) {
      return absl::InvalidArgumentError("TLS needs both a certificate and a key");
    }
    impl_->tls.emplace(ssl::context::tls_server);
    impl_->tls->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                            ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 | ssl::context::single_dh_use);
    beast::error_code ec;
    impl_->tls->use_certificate_chain_file(o.tls_cert_file, ec);
    if (ec) return absl::InvalidArgumentError(absl::StrCat("TLS certificate ", o.tls_cert_file, ": ", ec.message()));
    impl_->tls->use_private_key_file(o.tls_key_file, ssl::context::pem, ec);
    if (ec) return absl::InvalidArgumentError(absl::StrCat("TLS key ", o.tls_key_file, ": ", ec.message()));
  }
  size_t colon = o.address.rfind(':');
  int port = 0;
  if (colon == std::string::npos || !absl::SimpleAtoi(o.address.substr(colon + 1), &port)) {
    return absl::InvalidArgumentError(absl::StrCat("HTTP address must be host:port, got \"", o.address, "\""));
  }
  std::string host = o.address.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  beast::error_code ec;
  auto address = net::ip::make_address(host.empty() ? "0.0.0.0" : host, ec);
  if (ec) return absl::InvalidArgumentError(absl::StrCat("HTTP address: bad host \"", host, "\""));
  tcp::endpoint endpoint(address, static_cast<uint16_t>(port));
  auto& acceptor = *impl_->acceptor;
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(net::socket_base::max_listen_connections, ec);
  if (ec) return absl::UnavailableError(absl::StrCat("cannot listen on ", o.address, ": ", ec.message()));
  port_ = acceptor.local_endpoint().port();
  impl_->Accept();
  for (auto& context : impl_->contexts) {
    // Kept running while idle: connections come and go.
    impl_->threads.emplace_back([context = context.get()] {
      auto work = net::make_work_guard(*context);
      context->run();
    });
  }
  return absl::OkStatus();
}

void HttpServer::Stop(absl::Duration drain) {
  if (impl_->stopped) return;
  impl_->stopped = true;
  impl_->stopping.store(true);
  net::post(*impl_->contexts[0], [this] {
    beast::error_code ignored;
    impl_->acceptor->close(ignored);
  });
  absl::Time deadline = absl::Now() + drain;
  while (impl_->in_flight.load() > 0 && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(10));
  for (auto& context : impl_->contexts) context->stop();
  for (std::thread& t : impl_->threads) {
    if (t.joinable()) t.join();
  }
}

}  // namespace ptd::gateway
