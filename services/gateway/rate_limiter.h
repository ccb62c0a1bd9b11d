#ifndef PTD_SERVICES_GATEWAY_RATE_LIMITER_H_
#define PTD_SERVICES_GATEWAY_RATE_LIMITER_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "libs/redis/client.h"

// Token buckets in Redis, shared by every gateway process: one Lua script (EVALSHA, EVAL when the script
// cache was flushed) refills and takes from all the buckets of a request atomically, on Redis's clock.
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
  explicit RateLimiter(redis::Client& redis) : redis_(redis) {}

  // A request passes when every bucket holds a token, and then takes one from each. Buckets that are not
  // enabled are skipped. Errors are Redis's (the caller decides whether to fail open).
  absl::StatusOr<RateDecision> Take(const std::vector<Bucket>& buckets);

  // The script, for tests.
  static const std::string& Script();

 private:
  redis::Client& redis_;
};

}  // namespace ptd::gateway

#endif  // PTD_SERVICES_GATEWAY_RATE_LIMITER_H_
