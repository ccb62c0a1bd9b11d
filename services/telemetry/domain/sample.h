#ifndef PTD_SERVICES_TELEMETRY_DOMAIN_SAMPLE_H_
#define PTD_SERVICES_TELEMETRY_DOMAIN_SAMPLE_H_

#include <cstdint>

namespace ptd::telemetry {

// One measured value of one data point: microseconds since the Unix epoch (UTC) and the value in the point's unit.
struct Sample {
  int64_t ts_us = 0;
  double value = 0;
  bool operator==(const Sample&) const = default;
};

inline constexpr int64_t kMicrosPerSecond = 1'000'000;
inline constexpr int64_t kMicrosPerMinute = 60 * kMicrosPerSecond;
inline constexpr int64_t kMicrosPerHour = 60 * kMicrosPerMinute;
inline constexpr int64_t kMicrosPerDay = 24 * kMicrosPerHour;

}  // namespace ptd::telemetry

#endif  // PTD_SERVICES_TELEMETRY_DOMAIN_SAMPLE_H_
