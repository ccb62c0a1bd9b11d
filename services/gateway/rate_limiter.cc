#include "services/gateway/rate_limiter.h"

#include <openssl/sha.h>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace ptd::gateway {
namespace {

// KEYS: the buckets. ARGV: rate per second and burst of each, in order, then the most tokens the process may
// take ahead. Each bucket is a hash {tokens, ts (ms)}; it expires once it would be full again.
// When every bucket holds a token, takes 1 + ahead from each, where ahead = min(max_ahead, (fewest - 1) / 4):
// with plenty of tokens the process holds a few for its next requests (one round trip serves several);
// near the limit it takes exactly one. Tokens are only ever taken, so replicas together never exceed a limit.
// Returns {allowed 0|1, retry_after_ms, ahead}.
constexpr char kScript[] = R"lua(
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local n = #KEYS
local max_ahead = tonumber(ARGV[2 * n + 1])
local have = {}
local wait = 0
local fewest = nil
for i = 1, n do
  local rate = tonumber(ARGV[2 * i - 1])
  local burst = tonumber(ARGV[2 * i])
  local state = redis.call('HMGET', KEYS[i], 'tokens', 'ts')
  local tokens = tonumber(state[1])
  local ts = tonumber(state[2])
  if tokens == nil or ts == nil then
    tokens = burst
    ts = now
  end
  if now > ts then tokens = math.min(burst, tokens + (now - ts) * rate / 1000) end
  have[i] = tokens
  if fewest == nil or tokens < fewest then fewest = tokens end
  if tokens < 1 then
    local w = math.ceil((1 - tokens) * 1000 / rate)
    if w > wait then wait = w end
  end
end
local take = 0
local ahead = 0
if wait == 0 then
  ahead = math.min(max_ahead, math.floor((fewest - 1) / 4))
  take = 1 + ahead
end
for i = 1, n do
  local rate = tonumber(ARGV[2 * i - 1])
  local burst = tonumber(ARGV[2 * i])
  redis.call('HSET', KEYS[i], 'tokens', tostring(have[i] - take), 'ts', tostring(now))
  redis.call('PEXPIRE', KEYS[i], math.ceil(burst * 1000 / rate) + 1000)
end
if wait == 0 then return {1, 0, ahead} end
return {0, wait, 0}
)lua";

std::string ScriptSha1() {
  unsigned char digest[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(kScript), sizeof(kScript) - 1, digest);
  return absl::BytesToHexString(absl::string_view(reinterpret_cast<const char*>(digest), sizeof(digest)));
}

}  // namespace

const std::string& RateLimiter::Script() {
  static const std::string script(kScript);
  return script;
}

absl::StatusOr<RateLimit> ParseRateLimit(const std::string& text) {
  if (text.empty() || text == "0") return RateLimit{};
  size_t colon = text.find(':');
  RateLimit limit;
  if (colon == std::string::npos || !absl::SimpleAtod(text.substr(0, colon), &limit.per_second) ||
      !absl::SimpleAtoi(text.substr(colon + 1), &limit.burst) || limit.per_second < 0 || limit.burst < 0) {
    return absl::InvalidArgumentError(absl::StrCat("rate limit must be RATE:BURST (per second), got \"", text, "\""));
  }
  return limit;
}

RateLimiter::RateLimiter(redis::Client& redis, int max_ahead) : redis_(redis), max_ahead_(max_ahead) {
  if (max_ahead_ > 1) fetcher_ = std::thread([this] { FetchLoop(); });
}

RateLimiter::~RateLimiter() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (fetcher_.joinable()) fetcher_.join();
}

absl::StatusOr<redis::Value> RateLimiter::Run(const std::vector<std::string>& keys,
                                              const std::vector<std::string>& args) {
  static const std::string sha = ScriptSha1();
  auto command = [&](const std::string& verb, const std::string& script_or_sha) {
    std::vector<std::string> argv = {verb, script_or_sha, absl::StrCat(keys.size())};
    argv.insert(argv.end(), keys.begin(), keys.end());
    argv.insert(argv.end(), args.begin(), args.end());
    return redis_.Command(argv);
  };
  absl::StatusOr<redis::Value> reply = command("EVALSHA", sha);
  if (!reply.ok() && reply.status().code() == absl::StatusCode::kNotFound) reply = command("EVAL", kScript);
  if (!reply.ok()) return reply.status();
  if (reply->type != redis::Value::Type::kArray || reply->elements.size() != 3) {
    return absl::InternalError(absl::StrCat("rate-limit script answered ", reply->DebugString()));
  }
  return reply;
}

void RateLimiter::FetchLoop() {
  while (true) {
    std::vector<Fetch> batch;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(this, &RateLimiter::FetchDue));
      if (stopping_) return;
      batch.swap(fetches_);
    }
    for (Fetch& fetch : batch) {
      absl::StatusOr<redis::Value> reply = Run(fetch.keys, fetch.args);
      // A fetch ahead of need holds everything it is granted (the request that triggered it was served from
      // tokens already held). A refusal or an error grants nothing; the next requests ask themselves.
      absl::MutexLock lock(&mu_);
      Held& held = held_[fetch.held_key];
      held.fetching = false;
      if (reply.ok() && reply->elements[0].integer == 1) {
        int64_t ahead = reply->elements[2].integer;
        held.tokens += 1 + ahead;
        held.plenty = ahead >= max_ahead_;
      } else {
        held.plenty = false;
      }
    }
  }
}

absl::StatusOr<RateDecision> RateLimiter::Take(const std::vector<Bucket>& buckets) {
  std::vector<std::string> keys;
  std::vector<std::string> args;
  for (const Bucket& b : buckets) {
    if (!b.limit.enabled()) continue;
    keys.push_back(b.key);
    args.push_back(absl::StrCat(b.limit.per_second));
    args.push_back(absl::StrCat(b.limit.burst));
  }
  if (keys.empty()) return RateDecision{};
  args.push_back(absl::StrCat(max_ahead_));
  std::string held_key = absl::StrJoin(keys, "\n");
  {
    absl::MutexLock lock(&mu_);
    auto it = held_.find(held_key);
    if (it != held_.end() && it->second.tokens > 0) {
      Held& held = it->second;
      --held.tokens;
      if (held.plenty && !held.fetching && held.tokens <= max_ahead_ / 2 && fetcher_.joinable()) {
        held.fetching = true;
        fetches_.push_back({held_key, std::move(keys), std::move(args)});
      }
      return RateDecision{};
    }
  }
  absl::StatusOr<redis::Value> reply = Run(keys, args);
  if (!reply.ok()) return reply.status();
  RateDecision decision;
  decision.allowed = reply->elements[0].integer == 1;
  decision.retry_after = absl::Milliseconds(reply->elements[1].integer);
  int64_t ahead = reply->elements[2].integer;
  if (decision.allowed) {
    absl::MutexLock lock(&mu_);
    if (held_.size() > 100000) held_.clear();  // tokens of idle tenants: dropping them only under-admits
    Held& held = held_[std::move(held_key)];
    held.tokens += ahead;
    held.plenty = ahead >= max_ahead_;
  }
  return decision;
}

}  // namespace ptd::gateway
