#include "services/gateway/domain/password.h"

#include <catch2/catch.hpp>

TEST_CASE("gateway: Argon2id hashes verify the right password only") {
  auto hash = ptd::gateway::HashPassword("correct horse battery staple");
  REQUIRE(hash.ok());
  CHECK(hash->rfind("$argon2id$v=19$m=19456,t=2,p=1$", 0) == 0);
  CHECK(ptd::gateway::VerifyPassword("correct horse battery staple", *hash));
  CHECK(!ptd::gateway::VerifyPassword("correct horse battery stapler", *hash));
  CHECK(!ptd::gateway::VerifyPassword("", *hash));
  CHECK(!ptd::gateway::VerifyPassword("x", "not a hash"));
  // Salted: the same password hashes differently each time.
  CHECK(*ptd::gateway::HashPassword("correct horse battery staple") != *hash);
  CHECK(!ptd::gateway::VerifyPassword("anything", ptd::gateway::DecoyPasswordHash()));
}
