#include "libs/core/ids.h"

#include <array>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <random>

namespace ptd {
namespace {

// Monotonic UUIDv7 (RFC 9562 method 1): 48-bit ms timestamp, 12-bit counter in rand_a seeded randomly each
// millisecond, 62 random bits. A counter overflow borrows the next millisecond, so order holds in a process.
struct Generator {
  std::mutex mu;
  std::mt19937_64 rng{std::random_device{}()};
  uint64_t last_ms = 0;
  uint32_t counter = 0;
};

Generator& TheGenerator() {
  static Generator g;
  return g;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::string NewId() {
  Generator& g = TheGenerator();
  uint64_t ms, rand_b;
  uint32_t counter;
  {
    std::lock_guard<std::mutex> lock(g.mu);
    uint64_t now = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                             std::chrono::system_clock::now().time_since_epoch())
                                             .count());
    if (now > g.last_ms) {
      g.last_ms = now;
      g.counter = static_cast<uint32_t>(g.rng() & 0x7FF);  // leave headroom for increments
    } else if (++g.counter > 0xFFF) {
      ++g.last_ms;
      g.counter = 0;
    }
    ms = g.last_ms;
    counter = g.counter;
    rand_b = g.rng();
  }
  std::array<uint8_t, 16> b;
  for (int i = 0; i < 6; ++i) b[i] = static_cast<uint8_t>(ms >> (40 - 8 * i));
  b[6] = static_cast<uint8_t>(0x70 | ((counter >> 8) & 0x0F));
  b[7] = static_cast<uint8_t>(counter & 0xFF);
  for (int i = 8; i < 16; ++i) b[i] = static_cast<uint8_t>(rand_b >> (8 * (i - 8)));
  b[8] = static_cast<uint8_t>((b[8] & 0x3F) | 0x80);  // RFC 4122 variant
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(36);
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out.push_back('-');
    out.push_back(kHex[b[i] >> 4]);
    out.push_back(kHex[b[i] & 0xF]);
  }
  return out;
}

bool IsValidId(std::string_view id) {
  if (id.size() != 36) return false;
  for (size_t i = 0; i < id.size(); ++i) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (id[i] != '-') return false;
    } else if (HexValue(id[i]) < 0) {
      return false;
    }
  }
  return true;
}

absl::Time TimeOfId(std::string_view id) {
  if (!IsValidId(id) || id[14] != '7') return absl::InfinitePast();
  uint64_t ms = 0;
  for (char c : id.substr(0, 8)) ms = (ms << 4) | HexValue(c);
  for (char c : id.substr(9, 4)) ms = (ms << 4) | HexValue(c);
  return absl::FromUnixMillis(static_cast<int64_t>(ms));
}

}  // namespace ptd
