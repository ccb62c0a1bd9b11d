#ifndef PTD_TESTS_GATEWAY_HTTP_CLIENT_H_
#define PTD_TESTS_GATEWAY_HTTP_CLIENT_H_

#include <chrono>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

// A small blocking HTTP/1.1 client for tests: one keep-alive connection, reopened when the server closed it,
// optionally over TLS (the certificate is not verified), and streamed (chunked) bodies read line by line.
namespace ptd::testing {

struct HttpResult {
  int status = 0;                              // 0: no answer (connection failed)
  std::map<std::string, std::string> headers;  // names in lower case
  std::string body;

  nlohmann::json json() const { return nlohmann::json::parse(body, nullptr, false); }
  std::string header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? "" : it->second;
  }
};

class HttpClient {
 public:
  explicit HttpClient(int port, bool tls = false);
  ~HttpClient();

  // `headers` are sent as given; a non-empty body gets Content-Type: application/json unless one is given.
  // A stream still open is hung up first.
  HttpResult Request(const std::string& method, const std::string& target, const std::string& body = "",
                     const std::map<std::string, std::string>& headers = {});
  HttpResult Get(const std::string& target, const std::map<std::string, std::string>& headers = {}) {
    return Request("GET", target, "", headers);
  }
  HttpResult Post(const std::string& target, const nlohmann::json& body,
                  const std::map<std::string, std::string>& headers = {}) {
    return Request("POST", target, body.dump(), headers);
  }

  // A request answered by a stream: sends it and reads the status and headers. A response that is not
  // chunked (an error) is read whole into `body`; a chunked one is then read line by line with ReadLine.
  HttpResult OpenStream(const std::string& target, const std::map<std::string, std::string>& headers = {});
  // The next line of the open stream's body, without its newline. nullopt when the body ended (the connection
  // then takes the next request), when nothing came within `timeout` (then timed_out() is true; the stream
  // stays open, except over TLS), or when the connection failed.
  std::optional<std::string> ReadLine(std::chrono::milliseconds timeout = std::chrono::seconds(20));
  bool timed_out() const { return timed_out_; }
  // Sends a GET and reads nothing: the answer is left waiting (Disconnect hangs up on it). False when the
  // request could not be sent.
  bool Send(const std::string& target, const std::map<std::string, std::string>& headers = {});
  // Hangs up: closes the connection (a stream's included).
  void Disconnect();

  // How many times a connection was opened.
  int connections() const { return connections_; }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  int connections_ = 0;
  bool timed_out_ = false;
};

}  // namespace ptd::testing

#endif  // PTD_TESTS_GATEWAY_HTTP_CLIENT_H_
