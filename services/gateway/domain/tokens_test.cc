#include "services/gateway/domain/tokens.h"

#include <catch2/catch.hpp>

#include "absl/strings/escaping.h"
#include "absl/time/clock.h"

using ptd::gateway::AccessClaims;
using ptd::gateway::JwtCodec;

namespace {
AccessClaims Claims(absl::Time now) {
  return {.subject = "user-1",
          .tenant = "tenant-1",
          .roles = {"admin", "seller"},
          .token_id = "jti-1",
          .issued_at = now,
          .expires_at = now + absl::Minutes(15)};
}
}  // namespace

TEST_CASE("gateway: a signed access token verifies and carries its claims") {
  JwtCodec jwt("k0123456789abcdef0123456789abcdef", "ptd-gateway");
  absl::Time now = absl::FromUnixSeconds(1'800'000'000);
  auto claims = jwt.Verify(jwt.Sign(Claims(now)), now + absl::Minutes(1));
  REQUIRE(claims.ok());
  CHECK(claims->subject == "user-1");
  CHECK(claims->tenant == "tenant-1");
  CHECK(claims->roles == std::vector<std::string>{"admin", "seller"});
  CHECK(claims->expires_at == now + absl::Minutes(15));
}

TEST_CASE("gateway: access tokens that do not hold are refused") {
  JwtCodec jwt("k0123456789abcdef0123456789abcdef", "ptd-gateway", absl::Seconds(30));
  absl::Time now = absl::FromUnixSeconds(1'800'000'000);
  std::string good = jwt.Sign(Claims(now));
  std::string header_none = absl::WebSafeBase64Escape(R"({"alg":"none"})");
  std::string payload = good.substr(good.find('.') + 1, good.rfind('.') - good.find('.') - 1);
  auto [name, token, at] = GENERATE_COPY(table<std::string, std::string, absl::Time>({
      {"expired", good, now + absl::Minutes(16)},
      {"issued in the future", good, now - absl::Minutes(5)},
      {"wrong key", JwtCodec("another key 0123456789abcdef012345", "ptd-gateway").Sign(Claims(now)), now},
      {"wrong issuer", JwtCodec("k0123456789abcdef0123456789abcdef", "x").Sign(Claims(now)), now},
      {"alg none", header_none + "." + payload + ".", now},
      {"flipped signature byte",
       good.substr(0, good.size() - 2) + (good[good.size() - 2] == 'A' ? "B" : "A") + good.substr(good.size() - 1),
       now},
      {"two parts", good.substr(0, good.rfind('.')), now},
      {"padding", good + "=", now},
      {"empty", "", now},
  }));
  INFO(name);
  auto verified = jwt.Verify(token, at);
  CHECK(verified.status().code() == absl::StatusCode::kUnauthenticated);
}

TEST_CASE("gateway: secrets are prefixed, random and stored as SHA-256") {
  std::string a = ptd::gateway::NewSecret("ptdk_");
  std::string b = ptd::gateway::NewSecret("ptdk_");
  CHECK(a.rfind("ptdk_", 0) == 0);
  CHECK(a.size() == 5 + 43);
  CHECK(a != b);
  CHECK(absl::BytesToHexString(ptd::gateway::Sha256("abc")) ==
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(ptd::gateway::ConstantTimeEquals("abc", "abc"));
  CHECK(!ptd::gateway::ConstantTimeEquals("abc", "abd"));
  CHECK(!ptd::gateway::ConstantTimeEquals("abc", "abcd"));
}
