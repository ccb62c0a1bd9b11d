#include "libs/core/log.h"

#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <thread>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace ptd::log {
namespace {

// Lines are written to stdout in batches (see log.h): appended to a buffer, which a background thread writes
// out, each write no sooner than kFlushGap after the one before, so that under load a write carries many lines.
// A warn or error line, a full buffer, Flush() and the process's exit write everything buffered at once.
constexpr auto kFlushGap = std::chrono::milliseconds(10);
constexpr size_t kFlushBytes = 256 << 10;

class Sink {
 public:
  // Appends `line` and its newline.
  void Append(std::string_view line, bool now) {
    std::unique_lock lock(mu_);
    buffer_.append(line);
    buffer_.push_back('\n');
    if (now || stopped_ || buffer_.size() >= kFlushBytes) {
      lock.unlock();
      Flush();
      return;
    }
    if (!started_) {
      started_ = true;
      flusher_ = std::thread([this] { Run(); });
      std::atexit([] { TheSink().Stop(); });
    }
    if (buffer_.size() == line.size() + 1) wake_.notify_one();
  }

  // Writes what is buffered, in order with every other batch.
  void Flush() {
    std::lock_guard write_lock(write_mu_);
    std::string batch;
    {
      std::lock_guard lock(mu_);
      batch.swap(buffer_);
    }
    WriteAll(batch);
  }

  // At exit: stops the background thread and writes what is left; later lines are written at once.
  void Stop() {
    {
      std::lock_guard lock(mu_);
      stopped_ = true;
    }
    wake_.notify_one();
    if (flusher_.joinable()) flusher_.join();
    Flush();
  }

  static Sink& TheSink() {
    static Sink* sink = new Sink();  // never destroyed: static destructors may still log
    return *sink;
  }

 private:
  void Run() {
    std::unique_lock lock(mu_);
    while (!stopped_) {
      wake_.wait(lock, [&] { return stopped_ || !buffer_.empty(); });
      lock.unlock();
      Flush();
      std::this_thread::sleep_for(kFlushGap);
      lock.lock();
    }
  }

  static void WriteAll(std::string_view bytes) {
    while (!bytes.empty()) {
      ssize_t n = ::write(STDOUT_FILENO, bytes.data(), bytes.size());
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return;  // stdout is gone: nothing else to do with a log line
      bytes.remove_prefix(static_cast<size_t>(n));
    }
  }

  std::mutex mu_;
  std::condition_variable wake_;
  std::string buffer_;
  bool started_ = false;
  bool stopped_ = false;
  std::mutex write_mu_;  // keeps batches in order
  std::thread flusher_;
};

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
  Sink::TheSink().Append(Format(level, msg, fields), /*now=*/level >= Level::kWarn);
}

void WriteFormatted(Level level, std::string_view line) {
  Sink::TheSink().Append(line, /*now=*/level >= Level::kWarn);
}

void Flush() { Sink::TheSink().Flush(); }

const std::string& CurrentRequestId() { return current_request_id; }

ScopedRequestId::ScopedRequestId(std::string request_id) : previous_(std::move(current_request_id)) {
  current_request_id = std::move(request_id);
}
ScopedRequestId::~ScopedRequestId() { current_request_id = std::move(previous_); }

}  // namespace ptd::log
