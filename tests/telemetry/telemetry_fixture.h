#ifndef PTD_TESTS_TELEMETRY_TELEMETRY_FIXTURE_H_
#define PTD_TESTS_TELEMETRY_TELEMETRY_FIXTURE_H_

// A real ptd-telemetry process on a fresh database of the test run's PostgreSQL, and calls made as a tenant's
// user or edge gateway.
#include <grpcpp/grpcpp.h>
#include <signal.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <pqxx/pqxx>

#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "ptd/telemetry/v1/telemetry.grpc.pb.h"
#include "tests/testing/testing.h"

namespace ptd::testing::telemetry {

using ptd::telemetry::v1::TelemetryService;
inline constexpr char kToken[] = "test-internal-token";

class TelemetryServer {
 public:
  explicit TelemetryServer(std::vector<std::string> extra_args = {}, std::string db_url = "")
      : db_url_(db_url.empty() ? FreshDatabase("telemetry") : std::move(db_url)), extra_args_(std::move(extra_args)) {
    Start();
  }

  void Start() {
    grpc_port_ = FreePort();
    std::vector<std::string> argv = {BuildPath("services/telemetry/ptd-telemetry"),
                                     "--grpc-address=127.0.0.1:" + std::to_string(grpc_port_),
                                     "--metrics-address=",
                                     "--pg-url=" + db_url_,
                                     "--redis-url=" + GetInfra().redis_url,
                                     "--internal-token=" + std::string(kToken),
                                     "--relay-interval=20ms",
                                     "--no-data-sweep-interval=100ms"};
    argv.insert(argv.end(), extra_args_.begin(), extra_args_.end());
    process_ = std::make_unique<Process>("ptd-telemetry", argv);
    REQUIRE(WaitForPort(grpc_port_));
    channel_ = grpc::CreateChannel("127.0.0.1:" + std::to_string(grpc_port_), grpc::InsecureChannelCredentials());
    stub_ = TelemetryService::NewStub(channel_);
  }

  void Kill() {
    process_->Signal(SIGKILL);
    process_->Wait();
  }

  TelemetryService::Stub& stub() { return *stub_; }
  const std::string& db_url() const { return db_url_; }
  int grpc_port() const { return grpc_port_; }
  Process& process() { return *process_; }

  int64_t Query(const std::string& sql) {
    pqxx::connection conn(db_url_);
    pqxx::work tx(conn);
    return tx.exec1(sql)[0].as<int64_t>();
  }

 private:
  std::string db_url_;
  std::vector<std::string> extra_args_;
  int grpc_port_ = 0;
  std::unique_ptr<Process> process_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<TelemetryService::Stub> stub_;
};

// A call as a user of `tenant` with `roles`, or (subject "apikey:<id>") as an edge gateway.
struct Call {
  grpc::ClientContext context;
  explicit Call(const std::string& tenant, const std::string& roles = "admin", const std::string& subject = "",
                std::chrono::seconds deadline = std::chrono::seconds(20)) {
    context.set_deadline(std::chrono::system_clock::now() + deadline);
    context.AddMetadata("x-ptd-internal-token", kToken);
    context.AddMetadata("x-ptd-tenant", tenant);
    context.AddMetadata("x-ptd-subject", subject.empty() ? "user@" + tenant : subject);
    if (!roles.empty()) context.AddMetadata("x-ptd-roles", roles);
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

inline int64_t NowMicros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

inline std::string NextKey() {
  static std::atomic<int> n{0};
  return "key-" + std::to_string(n++);
}

}  // namespace ptd::testing::telemetry

#endif  // PTD_TESTS_TELEMETRY_TELEMETRY_FIXTURE_H_
