#ifndef PTD_LIBS_CORE_LOG_H_
#define PTD_LIBS_CORE_LOG_H_

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

// Structured logs: one JSON object a line on stdout, e.g.
//   {"ts":"2026-11-25T13:46:13.123Z","level":"info","service":"trading","request_id":"…","msg":"listing created","listing_id":"…"}
// The request id is the calling thread's current one (set by the server's interceptor for each call).
//
// Lines are written in batches: debug and info lines are buffered and written by a background thread, at once
// when it is idle and then at most every 10 ms, so a busy service makes one write(2) for many lines instead of
// one each (a write per line under a process-wide lock cost a quarter of trading's order throughput). A warn or
// error line is written at once, with everything buffered before it, as is everything at exit and on Flush().
// A process killed outright (SIGKILL, a crash) loses at most its last 10 ms of info lines.
namespace ptd::log {

enum class Level { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };

void SetService(std::string_view service);
void SetMinLevel(Level level);
// "debug", "info", "warn", "error"; false for anything else.
bool ParseLevel(std::string_view text, Level* level);

// `fields` must be a JSON object (or null); its members are added to the line.
void Write(Level level, std::string_view msg, const nlohmann::json& fields = nullptr);
inline void Debug(std::string_view msg, const nlohmann::json& fields = nullptr) { Write(Level::kDebug, msg, fields); }
inline void Info(std::string_view msg, const nlohmann::json& fields = nullptr) { Write(Level::kInfo, msg, fields); }
inline void Warn(std::string_view msg, const nlohmann::json& fields = nullptr) { Write(Level::kWarn, msg, fields); }
inline void Error(std::string_view msg, const nlohmann::json& fields = nullptr) { Write(Level::kError, msg, fields); }

// Writes `line`, one JSON object in the format above that the caller formatted (without the newline), in the same
// batches as Write: for hot paths that format their lines directly (the gateway's request lines). Not filtered by
// SetMinLevel (the caller decides); `level` tells only whether it is written at once (warn and error).
void WriteFormatted(Level level, std::string_view line);

// Writes the buffered lines now (before an intentional abort, or in tests).
void Flush();

// Formats a line without writing it (for tests and for custom sinks).
std::string Format(Level level, std::string_view msg, const nlohmann::json& fields);

// The request id of the calling thread ("" when none).
const std::string& CurrentRequestId();

// Sets the calling thread's request id for its lifetime, restoring the previous one after.
class ScopedRequestId {
 public:
  explicit ScopedRequestId(std::string request_id);
  ~ScopedRequestId();
  ScopedRequestId(const ScopedRequestId&) = delete;
  ScopedRequestId& operator=(const ScopedRequestId&) = delete;

 private:
  std::string previous_;
};

}  // namespace ptd::log

#endif  // PTD_LIBS_CORE_LOG_H_
