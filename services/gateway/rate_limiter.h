#ifndef PTD_SERVICES_GATEWAY_RATE_LIMITER_H_
#define PTD_SERVICES_GATEWAY_RATE_LIMITER_H_

#include <string>
#include <thread>
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
// While the script keeps handing out the most it may (the bucket is very far from empty), the next tokens are
// fetched in the background once half of the held ones are spent, so a steady stream of requests never waits
// for Redis on the serving thread; near the limit the round trip is made by the request itself, as before.
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
  explicit RateLimiter(redis::Client& redis, int max_ahead = 16);
  // Waits for a background fetch in progress.
  ~RateLimiter();
  RateLimiter(const RateLimiter&) = delete;
  RateLimiter& operator=(const RateLimiter&) = delete;

  // A request passes when every bucket holds a token, and then takes one from each (or one of the tokens this
  // process took ahead for the same buckets). Buckets that are not enabled are skipped. Errors are Redis's
  // (the caller decides whether to fail open).
  absl::StatusOr<RateDecision> Take(const std::vector<Bucket>& buckets);

  // The script, for tests.
  static const std::string& Script();

 private:
  struct Held {
    int64_t tokens = 0;     // taken ahead, not yet spent
    bool plenty = false;    // the last grant was the most the script gives: the bucket is very far from empty
    bool fetching = false;  // a background fetch for these buckets is queued or running
  };
  struct Fetch {
    std::string held_key;
    std::vector<std::string> keys;
    std::vector<std::string> args;
  };

  // One round trip: the script's answer {allowed, retry_after_ms, ahead}.
  absl::StatusOr<redis::Value> Run(const std::vector<std::string>& keys, const std::vector<std::string>& args);
  void FetchLoop();
  bool FetchDue() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_ || !fetches_.empty(); }

  redis::Client& redis_;
  const int max_ahead_;
  absl::Mutex mu_;
  std::unordered_map<std::string, Held> held_ ABSL_GUARDED_BY(mu_);  // bucket keys -> tokens taken ahead
  std::vector<Fetch> fetches_ ABSL_GUARDED_BY(mu_);                  // for the background thread
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread fetcher_;
};

}  // namespace ptd::gateway

#endif  // PTD_SERVICES_GATEWAY_RATE_LIMITER_H_
