#ifndef PTD_SERVICES_TELEMETRY_DOMAIN_BLOCK_CODEC_H_
#define PTD_SERVICES_TELEMETRY_DOMAIN_BLOCK_CODEC_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

// How a block of samples is stored: two byte strings, so that PostgreSQL stores them without parsing a
// number (parsing array text cost it more than everything else of an ingest).
//
//   times:  version byte 1, then per sample the zig-zag varint of its delta-of-delta in µs (the first sample's
//           delta is from 0, i.e. its time itself), so regular 1-second data takes one byte a sample;
//   values: version byte 1, then per sample the IEEE-754 double, 8 bytes little-endian (exact, any value).
//
// Both decode back to exactly what was encoded; a malformed string is DATA_LOSS, never a crash.
namespace ptd::telemetry {

std::string EncodeTimes(const std::vector<int64_t>& ts_us);
std::string EncodeValues(const std::vector<double>& values);

absl::StatusOr<std::vector<int64_t>> DecodeTimes(std::string_view bytes);
absl::StatusOr<std::vector<double>> DecodeValues(std::string_view bytes);

}  // namespace ptd::telemetry

#endif  // PTD_SERVICES_TELEMETRY_DOMAIN_BLOCK_CODEC_H_
