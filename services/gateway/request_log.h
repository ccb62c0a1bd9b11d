#ifndef PTD_SERVICES_GATEWAY_REQUEST_LOG_H_
#define PTD_SERVICES_GATEWAY_REQUEST_LOG_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

// The gateway's one log line per request, in the platform's log format (libs/core/log.h: one JSON object a
// line on stdout, "ts", "level", "service", "request_id", "msg", then the fields in name order), formatted
// directly and written in batches: a line is appended to a buffer, and a background thread writes the buffer
// every `flush_interval` (or the appending thread, once the buffer is large). Writing each line at once
// cost a system call and a JSON document per request.
namespace ptd::gateway {

class RequestLog {
 public:
  explicit RequestLog(absl::Duration flush_interval = absl::Milliseconds(100));
  // Writes what is buffered.
  ~RequestLog();
  RequestLog(const RequestLog&) = delete;
  RequestLog& operator=(const RequestLog&) = delete;

  struct Entry {
    bool warn = false;  // level "warn" (else "info")
    std::string_view request_id;
    std::string_view method;
    std::string_view path;
    std::string_view route;
    int status = 0;
    double duration_ms = 0;
    std::string_view remote;
    std::string_view grpc_code;           // omitted when empty
    int64_t messages = -1;                // of a stream; omitted when negative
    const std::string* tenant = nullptr;  // omitted when null
    const std::string* subject = nullptr;
  };
  void Add(const Entry& entry);

  // Writes what is buffered now.
  void Flush();

  // The line of an entry, without the newline (for tests).
  static std::string Format(const Entry& entry, absl::Time now);

 private:
  const absl::Duration flush_interval_;
  absl::Mutex mu_;
  std::string buffer_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  absl::Mutex write_mu_;  // keeps batches in order
  std::thread flusher_;
};

}  // namespace ptd::gateway

#endif  // PTD_SERVICES_GATEWAY_REQUEST_LOG_H_
