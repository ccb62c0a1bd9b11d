#ifndef PTD_TESTS_GATEWAY_GATEWAY_FIXTURE_H_
#define PTD_TESTS_GATEWAY_GATEWAY_FIXTURE_H_

// The platform the gateway's end-to-end tests run against: the real ptd-gateway in front of the real
// ptd-trading and a small test backend (tests/gateway/mapping_test_server.cc, known to the gateway only from a
// descriptor set), on a fresh database of the test run's PostgreSQL and its Redis; and users registered
// through the gateway as an app would.
#include <catch2/catch.hpp>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "tests/gateway/http_client.h"
#include "tests/testing/testing.h"

namespace ptd::testing::gateway {

using nlohmann::json;

inline constexpr char kToken[] = "gateway-test-internal-token";
inline constexpr char kJwtSecret[] = "gateway-test-jwt-secret-0123456789abcdef";
inline constexpr char kIssuer[] = "ptd-gateway";
inline constexpr char kPvc[] = "01900000-0000-7000-8000-000000000001";  // seeded by trading's migration 0003
inline constexpr char kPassword[] = "correct horse battery staple";

// Sum of a Prometheus counter's samples whose labels contain `label_filter`.
inline double MetricSum(const std::string& metrics, const std::string& name, const std::string& label_filter) {
  double sum = 0;
  std::istringstream in(metrics);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(name + "{", 0) != 0 || line.find(label_filter) == std::string::npos) continue;
    sum += std::stod(line.substr(line.rfind(' ') + 1));
  }
  return sum;
}

// trading, the test backend and one gateway, with a database of their own.
class Platform {
 public:
  explicit Platform(std::vector<std::string> gateway_args = {}) : db_url_(ptd::testing::FreshDatabase("gw")) {
    trading_port_ = ptd::testing::FreePort();
    trading_metrics_port_ = ptd::testing::FreePort();
    trading_ = std::make_unique<Process>(
        "ptd-trading",
        std::vector<std::string>{ptd::testing::BuildPath("services/trading/ptd-trading"),
                                 "--grpc-address=127.0.0.1:" + std::to_string(trading_port_),
                                 "--metrics-address=127.0.0.1:" + std::to_string(trading_metrics_port_),
                                 "--pg-url=" + db_url_, "--redis-url=" + ptd::testing::GetInfra().redis_url,
                                 "--internal-token=" + std::string(kToken)});
    test_port_ = ptd::testing::FreePort();
    test_metrics_port_ = ptd::testing::FreePort();
    test_backend_ = std::make_unique<Process>(
        "gateway_mapping_test_server",
        std::vector<std::string>{PTD_GWTEST_SERVER, "--grpc-address=127.0.0.1:" + std::to_string(test_port_),
                                 "--metrics-address=127.0.0.1:" + std::to_string(test_metrics_port_),
                                 "--internal-token=" + std::string(kToken)});
    REQUIRE(ptd::testing::WaitForPort(trading_port_));
    REQUIRE(ptd::testing::WaitForPort(test_port_));
    gateway_ = StartGateway(gateway_args, &port_);
  }

  // Another gateway process on the same database and Redis.
  std::unique_ptr<Process> StartGateway(std::vector<std::string> extra, int* port, bool tls = false) {
    *port = ptd::testing::FreePort();
    std::vector<std::string> argv = {
        ptd::testing::BuildPath("services/gateway/ptd-gateway"),
        "--http-address=127.0.0.1:" + std::to_string(*port),
        "--grpc-address=127.0.0.1:0",
        "--pg-url=" + db_url_,
        "--redis-url=" + ptd::testing::GetInfra().redis_url,
        "--internal-token=" + std::string(kToken),
        "--jwt-secret=" + std::string(kJwtSecret),
        absl::StrCat("--backends=ptd.trading.v1=127.0.0.1:", trading_port_, ",ptd.gwtest.v1=127.0.0.1:", test_port_),
        "--descriptor-sets=" + std::string(PTD_GWTEST_DESCRIPTORS),
        "--tenant-rate-limit=0",
        "--api-key-rate-limit=0",
        "--anonymous-rate-limit=0",
        "--readiness-interval=100ms"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    auto process = std::make_unique<Process>("ptd-gateway", argv);
    HttpClient client(*port, tls);
    bool ready = ptd::testing::WaitFor([&] { return client.Get("/readyz").status == 200; });
    INFO(process->ReadLog());
    REQUIRE(ready);
    return process;
  }

  int port() const { return port_; }
  Process& gateway() { return *gateway_; }
  const std::string& db_url() const { return db_url_; }

  int trading_port() const { return trading_port_; }

  // A counter of trading's or the test backend's own /metrics, summed over the samples whose labels contain
  // `label_filter`.
  double TradingMetric(const std::string& name, const std::string& label_filter) {
    return MetricSum(Metrics(trading_metrics_port_), name, label_filter);
  }
  double TestBackendMetric(const std::string& name, const std::string& label_filter) {
    return MetricSum(Metrics(test_metrics_port_), name, label_filter);
  }
  // The gateway's own /metrics.
  std::string GatewayMetrics() { return Metrics(port_); }

  // Calls the backends received, from their own /metrics.
  double TradingCalls() {
    return MetricSum(Metrics(trading_metrics_port_), "grpc_server_started_total",
                     "grpc_service=\"ptd.trading.v1.TradingService\"");
  }
  double TestBackendCalls() {
    return MetricSum(Metrics(test_metrics_port_), "grpc_server_started_total",
                     "grpc_service=\"ptd.gwtest.v1.MappingTestService\"");
  }
  int64_t Listings() {
    pqxx::connection conn(db_url_);
    pqxx::work tx(conn);
    return tx.exec1("SELECT count(*) FROM trading.listings")[0].as<int64_t>();
  }

 private:
  static std::string Metrics(int port) {
    HttpClient client(port);
    return client.Get("/metrics").body;
  }

  std::string db_url_;
  int trading_port_ = 0, trading_metrics_port_ = 0, test_port_ = 0, test_metrics_port_ = 0, port_ = 0;
  std::unique_ptr<Process> trading_, test_backend_, gateway_;
};

struct Session {
  std::string tenant;
  std::string user_id;
  std::string access_token;
  std::string refresh_token;
  std::map<std::string, std::string> auth() const { return {{"Authorization", "Bearer " + access_token}}; }
};

inline Session RegisterAndLogin(HttpClient& http, const std::string& enterprise = "Lvye Agri",
                                const json& roles = {"ENTERPRISE_ROLE_SELLER"}) {
  std::string email = ptd::testing::UniqueName("user") + "@Example.com";
  HttpResult registered = http.Post("/v1/auth/register", {{"enterpriseName", enterprise},
                                                          {"enterpriseRoles", roles},
                                                          {"email", email},
                                                          {"password", kPassword},
                                                          {"displayName", "Boss"}});
  INFO(registered.body);
  REQUIRE(registered.status == 200);
  HttpResult login = http.Post("/v1/auth/login", {{"email", email}, {"password", kPassword}});
  INFO(login.body);
  REQUIRE(login.status == 200);
  json r = registered.json();
  json l = login.json();
  return {r["enterprise"]["enterpriseId"], r["admin"]["userId"], l["accessToken"], l["refreshToken"]};
}

// The fields named by the google.rpc.BadRequest details of an error body.
inline std::vector<std::string> ViolatedFields(const json& body) {
  std::vector<std::string> out;
  for (const auto& d : body["details"]) {
    if (d.contains("fieldViolations")) {
      for (const auto& v : d["fieldViolations"]) out.push_back(v["field"]);
    }
  }
  return out;
}

}  // namespace ptd::testing::gateway

#endif  // PTD_TESTS_GATEWAY_GATEWAY_FIXTURE_H_
