#ifndef PTD_SERVICES_GATEWAY_RATE_LIMITER_H_
#define PTD_SERVICES_GATEWAY_RATE_LIMITER_H_

#include <string>
#include <unordered_map>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "libs/redis/client.h"

// Token buckets in Redis, shared by every gateway process: one Lua script (EVALSHA, EVAL when the script
// cache was flushed) refills and takes from all the buckets of a request atomically, on Redis's clock. While a
// bucket is far from empty the script hands out a few tokens ahead, which this process spends without asking
// again; near the limit every request asks. Tokens are only taken, never invented, so all replicas together
// stay within each limit (a process may leave some of its tokens unused: it under-admits, never over-admits).
namespace ptd::gateway {

struct RateLimit {
  double per_second = 0;  // refill rate; 0 = unlimited
  int burst = 0;          // bucket size
  bool enabled() const { return per_second > 0 && burst > 0; }
};

// "RATE:BURST" ("100:200"); "0" or "" for unlimited. INVALID_ARGUMENT otherwise.
absl::StatusOr<RateLimit> ParseRateLimit(const std::string& text);

struct Bucket {
  std::string key;  // Redis key
  RateLimit limit;
};

struct RateDecision {
  bool allowed = true;
  absl::Duration retry_after;  // when refused: until a token is back in every bucket
};

class RateLimiter {
 public:
  // `max_ahead`: tokens the process may take ahead of need when a bucket is far from empty (0: one round trip
  // per request).
  explicit RateLimiter(redis::Client& redis, int max_ahead = 16) : redis_(redis), max_ahead_(max_ahead) {}

  // A request passes when every bucket holds a token, and then takes one from each (or one of the tokens this
  // process took ahead for the same buckets). Buckets that are not enabled are skipped. Errors are Redis's
  // (the caller decides whether to fail open).
  absl::StatusOr<RateDecision> Take(const std::vector<Bucket>& buckets);

  // The script, for tests.
  static const std::string& Script();

 private:
  redis::Client& redis_;
  const int max_ahead_;
  absl::Mutex mu_;
  std::unordered_map<std::string, int64_t> held_ ABSL_GUARDED_BY(mu_);  // bucket keys -> tokens taken ahead
};

}  // namespace ptd::gateway

#endif  // PTD_SERVICES_GATEWAY_RATE_LIMITER_H_
