#include "services/gateway/rate_limiter.h"

#include <openssl/sha.h>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace ptd::gateway {
namespace {

// KEYS: the buckets. ARGV: rate per second and burst of each, in order. Each bucket is a hash
// {tokens, ts (ms)}; it expires once it would be full again. Returns {allowed 0|1, retry_after_ms}.
constexpr char kScript[] = R"lua(
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local have = {}
local wait = 0
for i = 1, #KEYS do
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
  if tokens < 1 then
    local w = math.ceil((1 - tokens) * 1000 / rate)
    if w > wait then wait = w end
  end
end
for i = 1, #KEYS do
  local rate = tonumber(ARGV[2 * i - 1])
  local burst = tonumber(ARGV[2 * i])
  local tokens = have[i]
  if wait == 0 then tokens = tokens - 1 end
  redis.call('HSET', KEYS[i], 'tokens', tostring(tokens), 'ts', tostring(now))
  redis.call('PEXPIRE', KEYS[i], math.ceil(burst * 1000 / rate) + 1000)
end
if wait == 0 then return {1, 0} end
return {0, wait}
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

absl::StatusOr<RateDecision> RateLimiter::Take(const std::vector<Bucket>& buckets) {
  static const std::string sha = ScriptSha1();
  std::vector<std::string> keys;
  std::vector<std::string> args;
  for (const Bucket& b : buckets) {
    if (!b.limit.enabled()) continue;
    keys.push_back(b.key);
    args.push_back(absl::StrCat(b.limit.per_second));
    args.push_back(absl::StrCat(b.limit.burst));
  }
  if (keys.empty()) return RateDecision{};
  auto command = [&](const std::string& verb, const std::string& script_or_sha) {
    std::vector<std::string> argv = {verb, script_or_sha, absl::StrCat(keys.size())};
    argv.insert(argv.end(), keys.begin(), keys.end());
    argv.insert(argv.end(), args.begin(), args.end());
    return redis_.Command(argv);
  };
  absl::StatusOr<redis::Value> reply = command("EVALSHA", sha);
  if (!reply.ok() && reply.status().code() == absl::StatusCode::kNotFound) reply = command("EVAL", kScript);
  if (!reply.ok()) return reply.status();
  if (reply->type != redis::Value::Type::kArray || reply->elements.size() != 2) {
    return absl::InternalError(absl::StrCat("rate-limit script answered ", reply->DebugString()));
  }
  RateDecision decision;
  decision.allowed = reply->elements[0].integer == 1;
  decision.retry_after = absl::Milliseconds(reply->elements[1].integer);
  return decision;
}

}  // namespace ptd::gateway
