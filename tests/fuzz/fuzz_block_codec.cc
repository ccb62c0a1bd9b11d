// Telemetry's block codec: any bytes decode or are refused, and what decodes encodes back to what decodes the same.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string_view>

#include "services/telemetry/domain/block_codec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  if (auto times = ptd::telemetry::DecodeTimes(bytes); times.ok()) {
    auto again = ptd::telemetry::DecodeTimes(ptd::telemetry::EncodeTimes(*times));
    if (!again.ok() || *again != *times) __builtin_trap();
  }
  if (auto values = ptd::telemetry::DecodeValues(bytes); values.ok()) {
    auto again = ptd::telemetry::DecodeValues(ptd::telemetry::EncodeValues(*values));
    if (!again.ok() || again->size() != values->size()) __builtin_trap();
    // Bit for bit: NaN payloads and -0.0 included.
    if (!values->empty() && std::memcmp(again->data(), values->data(), values->size() * sizeof(double)) != 0) {
      __builtin_trap();
    }
  }
  // Arbitrary samples encode and decode exactly.
  std::vector<double> samples(size / sizeof(double));
  if (!samples.empty()) std::memcpy(samples.data(), data, samples.size() * sizeof(double));
  auto decoded = ptd::telemetry::DecodeValues(ptd::telemetry::EncodeValues(samples));
  if (!decoded.ok() || decoded->size() != samples.size()) __builtin_trap();
  if (!samples.empty() && std::memcmp(decoded->data(), samples.data(), samples.size() * sizeof(double)) != 0) {
    __builtin_trap();
  }
  return 0;
}
