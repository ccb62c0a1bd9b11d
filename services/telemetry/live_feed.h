#ifndef PTD_SERVICES_TELEMETRY_LIVE_FEED_H_
#define PTD_SERVICES_TELEMETRY_LIVE_FEED_H_

#include <grpcpp/server_context.h>
#include <grpcpp/support/sync_stream.h>

#include <functional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "libs/redis/client.h"
#include "ptd/telemetry/v1/telemetry.pb.h"

namespace prometheus {
class Registry;
class Counter;
}  // namespace prometheus

// What Redis holds for telemetry — all of it rebuildable, none of it the record (DESIGN.md):
//  - the latest value of every point, hash "ptd.telemetry.latest.<tenant>", field point id, moved only forward
//    in time (a Lua script compares times, so two writers in any order leave the newest);
//  - the live feed, stream "ptd.telemetry.live.<tenant>" (capped), one entry per stored batch or alarm change,
//    which every replica's WatchLive reads.
namespace ptd::telemetry {

class LiveFeed {
 public:
  // `watch_redis` serves the blocking reads of WatchLive (one connection per watcher).
  LiveFeed(redis::Client& redis, redis::Client& watch_redis, prometheus::Registry* registry);

  // After a commit. Failures are logged and counted, never returned: the values are stored already.
  void Publish(const std::string& tenant, const std::vector<v1::LatestValue>& values,
               const std::vector<v1::Alarm>& alarms);

  // The cached latest values of these points (those Redis has).
  absl::StatusOr<std::vector<v1::LatestValue>> Latest(const std::string& tenant,
                                                      const std::vector<std::string>& point_ids);

  // Streams the tenant's updates (of `device_ids`, or all when empty) to `writer` until the call is cancelled
  // or its deadline passes.
  absl::Status Watch(const std::string& tenant, const absl::flat_hash_set<std::string>& device_ids,
                     grpc::ServerContext& context, grpc::ServerWriter<v1::LiveUpdate>& writer);

 private:
  redis::Client& redis_;
  redis::Client& watch_redis_;
  prometheus::Counter* publish_failures_ = nullptr;
};

}  // namespace ptd::telemetry

#endif  // PTD_SERVICES_TELEMETRY_LIVE_FEED_H_
