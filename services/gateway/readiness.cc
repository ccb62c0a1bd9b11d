#include "services/gateway/readiness.h"

#include <nlohmann/json.hpp>
#include <string>

namespace ptd::gateway {
namespace {

constexpr char kPingPostgres[] = "SELECT 1";

}  // namespace

Readiness CheckReadiness(pg::Pool& pool, redis::Client& redis, const Backends& backends) {
  nlohmann::json checks = nlohmann::json::object();
  bool ready = true;
  auto record = [&](const std::string& name, const absl::Status& status) {
    checks[name] = status.ok() ? "ok" : std::string(status.message());
    ready = ready && status.ok();
  };
  record("postgres", pool.InTransaction([](pqxx::work& tx) {
    tx.exec(kPingPostgres);
    return absl::OkStatus();
  }));
  record("redis", redis.Command({"PING"}).status());
  for (const auto& [address, status] : backends.CheckHealth(absl::Seconds(1))) record(address, status);
  return {.ready = ready, .json = nlohmann::json{{"ready", ready}, {"checks", checks}}.dump()};
}

ReadinessChecker::ReadinessChecker(pg::Pool& pool, redis::Client& redis, const Backends& backends,
                                   absl::Duration interval, std::function<void(Readiness)> report)
    : thread_([this, &pool, &redis, &backends, interval, report = std::move(report)] {
        do {
          report(CheckReadiness(pool, redis, backends));
        } while (!stop_.WaitForNotificationWithTimeout(interval));
      }) {}

void ReadinessChecker::Stop() {
  if (!stop_.HasBeenNotified()) stop_.Notify();
  if (thread_.joinable()) thread_.join();
}

}  // namespace ptd::gateway
