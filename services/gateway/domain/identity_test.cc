#include "services/gateway/domain/identity.h"

#include <catch2/catch.hpp>

using namespace ptd::gateway;

TEST_CASE("gateway: identity rules") {
  CHECK(NormalizeEmail("  Boss@Lvye.CN ") == "boss@lvye.cn");
  ptd::FieldViolations v;
  CheckEmail("boss@lvye.cn", "email", v);
  CheckPassword("twelve chars", "password", v);
  CheckEnterpriseRoles({"seller", "buyer"}, "roles", v);
  CheckUserRoles({"clerk", "driver"}, false, true, "roles", v);
  CHECK(v.empty());

  auto bad = [](auto check) {
    ptd::FieldViolations violations;
    check(violations);
    return !violations.empty();
  };
  CHECK(bad([](auto& x) { CheckEmail("no-at", "e", x); }));
  CHECK(bad([](auto& x) { CheckEmail("a@b", "e", x); }));
  CHECK(bad([](auto& x) { CheckEmail("a b@c.d", "e", x); }));
  CHECK(bad([](auto& x) { CheckPassword("short", "p", x); }));
  CHECK(bad([](auto& x) { CheckPassword(std::string(257, 'x'), "p", x); }));
  CHECK(bad([](auto& x) { CheckName("", "n", true, x); }));
  CHECK(bad([](auto& x) { CheckName("tab\there", "n", true, x); }));
  CHECK(bad([](auto& x) { CheckEnterpriseRoles({}, "r", x); }));
  CHECK(bad([](auto& x) { CheckEnterpriseRoles({"pirate"}, "r", x); }));
  CHECK(bad([](auto& x) { CheckEnterpriseRoles({"buyer", "buyer"}, "r", x); }));
  CHECK(bad([](auto& x) { CheckUserRoles({"admin"}, false, true, "r", x); }));           // keys are no admins
  CHECK(bad([](auto& x) { CheckUserRoles({"catalog_admin"}, false, false, "r", x); }));  // platform staff only
  CHECK(!bad([](auto& x) { CheckUserRoles({"catalog_admin"}, true, false, "r", x); }));
  CHECK(ServiceRoles({"admin", "clerk"}, {"seller", "admin"}) == std::vector<std::string>{"admin", "clerk", "seller"});
}
