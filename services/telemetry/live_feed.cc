#include "services/telemetry/live_feed.h"

#include <prometheus/counter.h>
#include <prometheus/registry.h>

#include <charconv>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "libs/core/log.h"
#include "services/telemetry/store/registry_store.h"

namespace ptd::telemetry {
namespace {

std::string LatestKey(const std::string& tenant) { return absl::StrCat("ptd.telemetry.latest.", tenant); }
std::string LiveKey(const std::string& tenant) { return absl::StrCat("ptd.telemetry.live.", tenant); }

// ARGV: point id, time (µs), encoded value — repeated. A field is set only when its time is newer.
constexpr char kSetNewerScript[] = R"lua(
for i = 1, #ARGV, 3 do
  local current = redis.call('HGET', KEYS[1], ARGV[i])
  local newer = true
  if current then
    local t = tonumber(string.match(current, '^(-?%d+)'))
    if t and t >= tonumber(ARGV[i + 1]) then newer = false end
  end
  if newer then redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 2]) end
end
return 0
)lua";

// "time value quality device_id point"
std::string Encode(const v1::LatestValue& v) {
  return absl::StrCat(v.time_unix_us(), " ", DoubleText(v.value()), " ", static_cast<int>(v.quality()), " ",
                      v.device_id(), " ", v.point());
}

bool Decode(const std::string& point_id, const std::string& text, v1::LatestValue* out) {
  std::vector<std::string> parts = absl::StrSplit(text, ' ');
  int64_t t = 0;
  double value = 0;
  int quality = 0;
  if (parts.size() != 5 || !absl::SimpleAtoi(parts[0], &t) || !absl::SimpleAtoi(parts[2], &quality)) return false;
  auto [end, ec] = std::from_chars(parts[1].data(), parts[1].data() + parts[1].size(), value);
  if (ec != std::errc()) return false;
  out->set_point_id(point_id);
  out->set_time_unix_us(t);
  out->set_value(value);
  out->set_quality(static_cast<v1::Quality>(quality));
  out->set_device_id(parts[3]);
  out->set_point(parts[4]);
  return true;
}

}  // namespace

LiveFeed::LiveFeed(redis::Client& redis, redis::Client& watch_redis, prometheus::Registry* registry)
    : redis_(redis), watch_redis_(watch_redis) {
  if (registry == nullptr) return;
  publish_failures_ = &prometheus::BuildCounter()
                           .Name("ptd_telemetry_live_publish_failures_total")
                           .Help("Latest values or live updates not written to Redis (the samples are stored)")
                           .Register(*registry)
                           .Add({});
}

void LiveFeed::Publish(const std::string& tenant, const std::vector<v1::LatestValue>& values,
                       const std::vector<v1::Alarm>& alarms) {
  if (values.empty() && alarms.empty()) return;
  auto failed = [&](const absl::Status& s, const char* what) {
    if (publish_failures_ != nullptr) publish_failures_->Increment();
    log::Warn("live feed not updated", {{"what", what}, {"status", s.ToString()}});
  };
  if (!values.empty()) {
    std::vector<std::string> args = {"EVAL", kSetNewerScript, "1", LatestKey(tenant)};
    args.reserve(4 + values.size() * 3);
    for (const v1::LatestValue& v : values) {
      args.push_back(v.point_id());
      args.push_back(std::to_string(v.time_unix_us()));
      args.push_back(Encode(v));
    }
    if (auto r = redis_.Command(args); !r.ok()) failed(r.status(), "latest");
  }
  v1::LiveUpdate update;
  for (const auto& v : values) *update.add_values() = v;
  for (const auto& a : alarms) *update.add_alarms() = a;
  if (auto r = redis_.Command({"XADD", LiveKey(tenant), "MAXLEN", "~", "10000", "*", "u", update.SerializeAsString()});
      !r.ok()) {
    failed(r.status(), "live");
  }
}

absl::StatusOr<std::vector<v1::LatestValue>> LiveFeed::Latest(const std::string& tenant,
                                                              const std::vector<std::string>& point_ids) {
  std::vector<v1::LatestValue> out;
  if (point_ids.empty()) return out;
  std::vector<std::string> args = {"HMGET", LatestKey(tenant)};
  args.insert(args.end(), point_ids.begin(), point_ids.end());
  absl::StatusOr<redis::Value> reply = redis_.Command(args, {.retry_if_broken = true});
  if (!reply.ok()) return reply.status();
  for (size_t i = 0; i < reply->elements.size() && i < point_ids.size(); ++i) {
    const redis::Value& e = reply->elements[i];
    if (e.is_nil()) continue;
    v1::LatestValue v;
    if (Decode(point_ids[i], e.str, &v)) out.push_back(std::move(v));
  }
  return out;
}

absl::Status LiveFeed::Watch(const std::string& tenant, const absl::flat_hash_set<std::string>& device_ids,
                             grpc::ServerContext& context, grpc::ServerWriter<v1::LiveUpdate>& writer) {
  const std::string key = LiveKey(tenant);
  // From the stream's newest entry on (not "$", which would miss entries added between two reads).
  std::string last_id = "0-0";
  absl::StatusOr<redis::Value> newest = watch_redis_.Command({"XREVRANGE", key, "+", "-", "COUNT", "1"});
  if (!newest.ok()) return newest.status();
  if (!newest->elements.empty() && !newest->elements[0].elements.empty()) last_id = newest->elements[0].elements[0].str;
  while (!context.IsCancelled()) {
    if (context.deadline() < std::chrono::system_clock::now()) break;
    absl::StatusOr<redis::Value> reply = watch_redis_.Command(
        {"XREAD", "COUNT", "100", "BLOCK", "500", "STREAMS", key, last_id}, {.server_wait = absl::Milliseconds(500)});
    if (!reply.ok()) return reply.status();
    if (reply->is_nil()) continue;
    // [[key, [[id, [field, value, ...]], ...]]]
    for (const redis::Value& stream : reply->elements) {
      if (stream.elements.size() < 2) continue;
      for (const redis::Value& entry : stream.elements[1].elements) {
        if (entry.elements.size() < 2) continue;
        last_id = entry.elements[0].str;
        const redis::Value& fields = entry.elements[1];
        if (fields.elements.size() < 2) continue;
        v1::LiveUpdate update;
        if (!update.ParseFromString(fields.elements[1].str)) continue;
        if (!device_ids.empty()) {
          v1::LiveUpdate mine;
          for (const auto& v : update.values()) {
            if (device_ids.contains(v.device_id())) *mine.add_values() = v;
          }
          for (const auto& a : update.alarms()) {
            if (device_ids.contains(a.device_id())) *mine.add_alarms() = a;
          }
          update = std::move(mine);
        }
        if (update.values_size() == 0 && update.alarms_size() == 0) continue;
        if (!writer.Write(update)) return absl::OkStatus();  // the client went away
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace ptd::telemetry
