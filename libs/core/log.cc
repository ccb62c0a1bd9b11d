#include "libs/core/log.h"

#include <cstdio>
#include <mutex>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace ptd::log {
namespace {

std::mutex& OutputMutex() {
  static std::mutex m;
  return m;
}
std::string& ServiceName() {
  static std::string name;
  return name;
}
Level& MinLevel() {
  static Level level = Level::kInfo;
  return level;
}
thread_local std::string current_request_id;

const char* LevelName(Level level) {
  switch (level) {
    case Level::kDebug: return "debug";
    case Level::kInfo: return "info";
    case Level::kWarn: return "warn";
    case Level::kError: return "error";
  }
  return "info";
}

}  // namespace

void SetService(std::string_view service) { ServiceName() = std::string(service); }
void SetMinLevel(Level level) { MinLevel() = level; }

bool ParseLevel(std::string_view text, Level* level) {
  for (Level l : {Level::kDebug, Level::kInfo, Level::kWarn, Level::kError}) {
    if (text == LevelName(l)) {
      *level = l;
      return true;
    }
  }
  return false;
}

std::string Format(Level level, std::string_view msg, const nlohmann::json& fields) {
  nlohmann::ordered_json line;
  line["ts"] = absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::Now(), absl::UTCTimeZone());
  line["level"] = LevelName(level);
  if (!ServiceName().empty()) line["service"] = ServiceName();
  if (!current_request_id.empty()) line["request_id"] = current_request_id;
  line["msg"] = std::string(msg);
  if (fields.is_object()) {
    for (const auto& [key, value] : fields.items()) line[key] = value;
  }
  // Invalid UTF-8 in a field is replaced, never thrown: a log line must not fail.
  return line.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

void Write(Level level, std::string_view msg, const nlohmann::json& fields) {
  if (level < MinLevel()) return;
  std::string line = Format(level, msg, fields);
  line.push_back('\n');
  std::lock_guard<std::mutex> lock(OutputMutex());
  std::fwrite(line.data(), 1, line.size(), stdout);
  std::fflush(stdout);
}

const std::string& CurrentRequestId() { return current_request_id; }

ScopedRequestId::ScopedRequestId(std::string request_id) : previous_(std::move(current_request_id)) {
  current_request_id = std::move(request_id);
}
ScopedRequestId::~ScopedRequestId() { current_request_id = std::move(previous_); }

}  // namespace ptd::log
