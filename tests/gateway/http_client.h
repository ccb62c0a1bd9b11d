#ifndef PTD_TESTS_GATEWAY_HTTP_CLIENT_H_
#define PTD_TESTS_GATEWAY_HTTP_CLIENT_H_

#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

// A small blocking HTTP/1.1 client for tests: one keep-alive connection, reopened when the server closed it,
// optionally over TLS (the certificate is not verified).
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
  HttpResult Request(const std::string& method, const std::string& target, const std::string& body = "",
                     const std::map<std::string, std::string>& headers = {});
  HttpResult Get(const std::string& target, const std::map<std::string, std::string>& headers = {}) {
    return Request("GET", target, "", headers);
  }
  HttpResult Post(const std::string& target, const nlohmann::json& body,
                  const std::map<std::string, std::string>& headers = {}) {
    return Request("POST", target, body.dump(), headers);
  }

  // How many times a connection was opened.
  int connections() const { return connections_; }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  int connections_ = 0;
};

}  // namespace ptd::testing

#endif  // PTD_TESTS_GATEWAY_HTTP_CLIENT_H_
