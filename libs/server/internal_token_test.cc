#include "libs/server/internal_token.h"

#include <catch2/catch.hpp>

namespace ptd::server_internal {
namespace {

TEST_CASE("server: tokens are equal only when their contents are") {
  CHECK(ConstantTimeEquals("s3cret", "s3cret"));
  CHECK(ConstantTimeEquals("", ""));
  CHECK_FALSE(ConstantTimeEquals("s3cret", "s3creT"));
  CHECK_FALSE(ConstantTimeEquals("s3cret", "s3cre"));
  CHECK_FALSE(ConstantTimeEquals("s3cre", "s3cret"));
  CHECK_FALSE(ConstantTimeEquals("", "s3cret"));
  CHECK_FALSE(ConstantTimeEquals("s3cret", ""));
  // A prefix padded with NULs is still a different token.
  CHECK_FALSE(ConstantTimeEquals(std::string_view("ab\0", 3), "ab"));
}

}  // namespace
}  // namespace ptd::server_internal
