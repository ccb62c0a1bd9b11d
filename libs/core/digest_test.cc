#include "libs/core/digest.h"

#include <catch2/catch.hpp>

#include "google/rpc/error_details.pb.h"

namespace ptd {
namespace {

TEST_CASE("SHA-256 of bytes is the standard digest") {
  CHECK(Sha256Hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(Sha256Hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST_CASE("equal messages hash equal, different ones differ") {
  google::rpc::BadRequest a, b;
  a.add_field_violations()->set_field("x");
  b.add_field_violations()->set_field("x");
  CHECK(Sha256OfMessage(a) == Sha256OfMessage(b));
  b.mutable_field_violations(0)->set_description("y");
  CHECK(Sha256OfMessage(a) != Sha256OfMessage(b));
}

}  // namespace
}  // namespace ptd
