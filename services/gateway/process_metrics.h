#ifndef PTD_SERVICES_GATEWAY_PROCESS_METRICS_H_
#define PTD_SERVICES_GATEWAY_PROCESS_METRICS_H_

#include <prometheus/gauge.h>
#include <prometheus/registry.h>

// The usual process_* metrics of Prometheus client libraries, read from /proc/self: CPU seconds, resident
// and virtual memory, open file descriptors, threads, start time. Update() refreshes them.
namespace ptd::gateway {

class ProcessMetrics {
 public:
  explicit ProcessMetrics(prometheus::Registry& registry);
  void Update();

 private:
  prometheus::Gauge& cpu_seconds_;
  prometheus::Gauge& resident_bytes_;
  prometheus::Gauge& virtual_bytes_;
  prometheus::Gauge& open_fds_;
  prometheus::Gauge& threads_;
  prometheus::Gauge& start_time_;
};

}  // namespace ptd::gateway

#endif  // PTD_SERVICES_GATEWAY_PROCESS_METRICS_H_
