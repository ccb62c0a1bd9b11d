#include "services/telemetry/domain/block_codec.h"

#include <bit>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace ptd::telemetry {
namespace {

constexpr char kVersion = 1;

void PutVarint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

uint64_t ZigZag(int64_t v) { return (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63); }
int64_t UnZigZag(uint64_t v) { return static_cast<int64_t>(v >> 1) ^ -static_cast<int64_t>(v & 1); }

absl::Status Corrupt(const char* what) { return absl::DataLossError(absl::StrCat("sample block: ", what)); }

}  // namespace

std::string EncodeTimes(const std::vector<int64_t>& ts_us) {
  std::string out;
  out.reserve(1 + ts_us.size() + 10);
  out.push_back(kVersion);
  int64_t previous = 0, previous_delta = 0;
  for (int64_t t : ts_us) {
    // Wrapping arithmetic: any int64 sequence round-trips.
    int64_t delta = static_cast<int64_t>(static_cast<uint64_t>(t) - static_cast<uint64_t>(previous));
    PutVarint(out, ZigZag(static_cast<int64_t>(static_cast<uint64_t>(delta) - static_cast<uint64_t>(previous_delta))));
    previous = t;
    previous_delta = delta;
  }
  return out;
}

std::string EncodeValues(const std::vector<double>& values) {
  std::string out(1 + values.size() * 8, '\0');
  out[0] = kVersion;
  for (size_t i = 0; i < values.size(); ++i) {
    uint64_t bits = std::bit_cast<uint64_t>(values[i]);
    if constexpr (std::endian::native == std::endian::big) bits = __builtin_bswap64(bits);
    std::memcpy(out.data() + 1 + i * 8, &bits, 8);
  }
  return out;
}

absl::StatusOr<std::vector<int64_t>> DecodeTimes(std::string_view bytes) {
  if (bytes.empty() || bytes[0] != kVersion) return Corrupt("unknown times version");
  std::vector<int64_t> out;
  out.reserve(bytes.size() - 1);
  uint64_t previous = 0, previous_delta = 0;
  size_t i = 1;
  while (i < bytes.size()) {
    uint64_t v = 0;
    int shift = 0;
    while (true) {
      if (i >= bytes.size() || shift > 63) return Corrupt("truncated varint");
      uint8_t b = static_cast<uint8_t>(bytes[i++]);
      v |= static_cast<uint64_t>(b & 0x7f) << shift;
      if ((b & 0x80) == 0) break;
      shift += 7;
    }
    uint64_t delta = previous_delta + static_cast<uint64_t>(UnZigZag(v));
    previous += delta;
    previous_delta = delta;
    out.push_back(static_cast<int64_t>(previous));
  }
  return out;
}

absl::StatusOr<std::vector<double>> DecodeValues(std::string_view bytes) {
  if (bytes.empty() || bytes[0] != kVersion) return Corrupt("unknown values version");
  if ((bytes.size() - 1) % 8 != 0) return Corrupt("values not a whole number of doubles");
  std::vector<double> out((bytes.size() - 1) / 8);
  for (size_t i = 0; i < out.size(); ++i) {
    uint64_t bits;
    std::memcpy(&bits, bytes.data() + 1 + i * 8, 8);
    if constexpr (std::endian::native == std::endian::big) bits = __builtin_bswap64(bits);
    out[i] = std::bit_cast<double>(bits);
  }
  return out;
}

}  // namespace ptd::telemetry
