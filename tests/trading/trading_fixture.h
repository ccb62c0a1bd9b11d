#ifndef PTD_TESTS_TRADING_TRADING_FIXTURE_H_
#define PTD_TESTS_TRADING_TRADING_FIXTURE_H_

// A real ptd-trading process on a fresh database of the test run's PostgreSQL, and calls made as a tenant.
#include <grpcpp/grpcpp.h>

#include <csignal>

#include <catch2/catch.hpp>
#include <pqxx/pqxx>

#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "ptd/trading/v1/trading.grpc.pb.h"
#include "tests/testing/testing.h"

namespace ptd::testing::trading {

using ptd::testing::Process;
using ptd::trading::v1::TradingService;

inline constexpr char kToken[] = "test-internal-token";
inline constexpr char kPvc[] = "01900000-0000-7000-8000-000000000001";     // seeded by migration 0003
inline constexpr char kEthanol[] = "01900000-0000-7000-8000-000000000002";

// One trading process with its own database; Redis is shared, with the stream name fixed by the service.
class TradingServer {
 public:
  explicit TradingServer(std::vector<std::string> extra_args = {})
      : db_url_(ptd::testing::FreshDatabase("trading")), extra_args_(std::move(extra_args)) {
    Start();
  }

  // A new process on the same database (after Kill), on new ports; channel() and stubs change with it.
  void Start() {
    grpc_port_ = ptd::testing::FreePort();
    metrics_port_ = ptd::testing::FreePort();
    std::vector<std::string> argv = {ptd::testing::BuildPath("services/trading/ptd-trading"),
                                     "--grpc-address=127.0.0.1:" + std::to_string(grpc_port_),
                                     "--metrics-address=127.0.0.1:" + std::to_string(metrics_port_),
                                     "--pg-url=" + db_url_,
                                     "--redis-url=" + ptd::testing::GetInfra().redis_url,
                                     "--internal-token=" + std::string(kToken),
                                     "--relay-interval=20ms"};
    argv.insert(argv.end(), extra_args_.begin(), extra_args_.end());
    process_ = std::make_unique<Process>("ptd-trading", argv);
    REQUIRE(ptd::testing::WaitForPort(grpc_port_));
    channel_ = grpc::CreateChannel("127.0.0.1:" + std::to_string(grpc_port_), grpc::InsecureChannelCredentials());
    stub_ = TradingService::NewStub(channel_);
  }

  void Kill() {
    process_->Signal(SIGKILL);
    process_->Wait();
  }

  std::string Metrics() { return ptd::testing::HttpGet(metrics_port_, "/metrics"); }

  TradingService::Stub& stub() { return *stub_; }
  std::shared_ptr<grpc::Channel> channel() { return channel_; }
  Process& process() { return *process_; }
  int metrics_port() const { return metrics_port_; }
  const std::string& db_url() const { return db_url_; }

  int64_t Count(const std::string& table) {
    pqxx::connection conn(db_url_);
    pqxx::work tx(conn);
    return tx.exec1("SELECT count(*) FROM trading." + table)[0].as<int64_t>();
  }

 private:
  std::string db_url_;
  std::vector<std::string> extra_args_;
  int grpc_port_ = 0;
  int metrics_port_ = 0;
  std::unique_ptr<Process> process_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<TradingService::Stub> stub_;
};

struct Call {
  grpc::ClientContext context;
  Call(const std::string& tenant, const std::string& roles = "clerk", bool with_token = true) {
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    if (with_token) context.AddMetadata("x-ptd-internal-token", kToken);
    if (!tenant.empty()) context.AddMetadata("x-ptd-tenant", tenant);
    context.AddMetadata("x-ptd-subject", "user@" + tenant);
    context.AddMetadata("x-ptd-roles", roles);
  }
};


inline std::vector<std::string> ViolatedFields(const grpc::Status& status) {
  std::vector<std::string> out;
  google::rpc::Status rpc;
  if (!rpc.ParseFromString(status.error_details())) return out;
  for (const auto& any : rpc.details()) {
    google::rpc::BadRequest bad;
    if (any.UnpackTo(&bad)) {
      for (const auto& v : bad.field_violations()) out.push_back(v.field());
    }
  }
  return out;
}

}  // namespace ptd::testing::trading

#endif  // PTD_TESTS_TRADING_TRADING_FIXTURE_H_
