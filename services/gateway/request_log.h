#ifndef PTD_SERVICES_GATEWAY_REQUEST_LOG_H_
#define PTD_SERVICES_GATEWAY_REQUEST_LOG_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/time/time.h"

// The gateway's one log line per request, in the platform's log format (libs/core/log.h: one JSON object a
// line on stdout, "ts", "level", "service", "request_id", "msg", then the fields in name order), formatted
// directly (building a JSON document per request cost more than the rest of the line's work) and written in
// the batches of libs/core/log (log::WriteFormatted), in order with the process's other lines.
namespace ptd::gateway {

class RequestLog {
 public:
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
  // A warn entry is written at once, an info entry with the next batch (libs/core/log.h).
  static void Add(const Entry& entry);

  // The line of an entry, without the newline (for tests).
  static std::string Format(const Entry& entry, absl::Time now);
};

}  // namespace ptd::gateway

#endif  // PTD_SERVICES_GATEWAY_REQUEST_LOG_H_
