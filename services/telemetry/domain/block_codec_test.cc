#include "services/telemetry/domain/block_codec.h"

#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <random>

namespace ptd::telemetry {
namespace {

TEST_CASE("block times round-trip, regular 1-second data in one byte a sample") {
  std::vector<int64_t> regular;
  for (int i = 0; i < 1000; ++i) regular.push_back(1'780'000'000'000'000 + int64_t{i} * 1'000'000);
  std::string bytes = EncodeTimes(regular);
  CHECK(bytes.size() < 1000 + 20);
  auto back = DecodeTimes(bytes);
  REQUIRE(back.ok());
  CHECK(*back == regular);
}

TEST_CASE("block times and values round-trip whatever they hold") {
  std::mt19937_64 rng(3);
  std::vector<int64_t> times = {0, -1, std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max(), 5};
  std::vector<double> values = {
      0.0, -0.0, 1e-310, std::numeric_limits<double>::max(), -123.456, std::numeric_limits<double>::infinity()};
  for (int i = 0; i < 10000; ++i) {
    times.push_back(static_cast<int64_t>(rng()));
    values.push_back(std::bit_cast<double>(rng() & 0x7fefffffffffffffULL));
  }
  auto t = DecodeTimes(EncodeTimes(times));
  auto v = DecodeValues(EncodeValues(values));
  REQUIRE(t.ok());
  REQUIRE(v.ok());
  CHECK(*t == times);
  REQUIRE(v->size() == values.size());
  for (size_t i = 0; i < values.size(); ++i)
    CHECK(std::bit_cast<uint64_t>((*v)[i]) == std::bit_cast<uint64_t>(values[i]));
  CHECK(DecodeTimes(EncodeTimes({}))->empty());
}

TEST_CASE("malformed blocks are data loss, not a crash") {
  CHECK(DecodeTimes("").status().code() == absl::StatusCode::kDataLoss);
  CHECK(DecodeTimes(std::string("\x02\x00", 2)).status().code() == absl::StatusCode::kDataLoss);
  CHECK(DecodeTimes(std::string("\x01\x80", 2)).status().code() == absl::StatusCode::kDataLoss);
  CHECK(DecodeTimes(std::string("\x01\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 12)).status().code() ==
        absl::StatusCode::kDataLoss);
  CHECK(DecodeValues(std::string("\x01\x00\x00", 3)).status().code() == absl::StatusCode::kDataLoss);
}

}  // namespace
}  // namespace ptd::telemetry
