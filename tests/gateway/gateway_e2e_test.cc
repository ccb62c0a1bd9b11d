// End to end: the real ptd-gateway in front of the real ptd-trading and a small test backend (for the mapping
// rules trading does not use), against the test run's PostgreSQL and Redis, called over HTTP as an app would
// (the platform: gateway_fixture.h). Streams: gateway_streaming_test.cc.
#include <signal.h>
#include <sys/wait.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <fstream>
#include <pqxx/pqxx>
#include <regex>
#include <sstream>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "services/gateway/domain/tokens.h"
#include "tests/gateway/gateway_fixture.h"
#include "tests/gateway/http_client.h"
#include "tests/testing/testing.h"

namespace {

using nlohmann::json;
using ptd::testing::HttpClient;
using ptd::testing::HttpResult;
using ptd::testing::Process;
using namespace ptd::testing::gateway;

const std::regex kRfc3339(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z)");

json PvcListing(const std::string& key) {
  return {{"idempotencyKey", key},
          {"commodityId", kPvc},
          {"title", {{{"lang", "zh"}, {"text", "聚氯乙烯现货 " + key}}, {{"lang", "en"}, {"text", "PVC spot " + key}}}},
          {"unitPrice", {{"currency", "CNY"}, {"amountMinor", "580000"}}},
          {"available", {{"milli", "100000"}, {"unit", "t"}}}};
}

std::string B64(const std::string& s) { return absl::WebSafeBase64Escape(s); }

}  // namespace

TEST_CASE("gateway: register, log in, use trading's catalogue and listings, refresh, log out") {
  Platform platform;
  HttpClient http(platform.port());
  Session s = RegisterAndLogin(http);

  HttpResult verticals = http.Get("/v1/verticals", s.auth());
  REQUIRE(verticals.status == 200);
  CHECK(verticals.json()["verticals"].size() >= 6);

  HttpResult commodities = http.Get("/v1/commodities?vertical=port_commodities&pageSize=5", s.auth());
  REQUIRE(commodities.status == 200);
  REQUIRE(!commodities.json()["commodities"].empty());
  for (const auto& c : commodities.json()["commodities"]) CHECK(c["vertical"] == "port_commodities");

  HttpResult created = http.Post("/v1/listings", PvcListing("k1"), s.auth());
  INFO(created.body);
  REQUIRE(created.status == 200);
  json listing = created.json();
  CHECK(listing["tenantId"] == s.tenant);
  HttpResult fetched = http.Get("/v1/listings/" + listing["listingId"].get<std::string>(), s.auth());
  REQUIRE(fetched.status == 200);
  CHECK(fetched.json()["listingId"] == listing["listingId"]);
  HttpResult listed = http.Get("/v1/listings", s.auth());
  REQUIRE(listed.status == 200);
  CHECK(listed.json()["listings"].size() == 1);

  HttpResult whoami = http.Get("/v1/auth/whoami", s.auth());
  REQUIRE(whoami.status == 200);
  CHECK(whoami.json()["tenantId"] == s.tenant);
  CHECK(whoami.json()["subject"] == s.user_id);
  CHECK(whoami.json()["roles"] == json({"admin", "seller"}));

  // Refresh rotates: the new pair works, the old refresh token is spent.
  HttpResult refreshed = http.Post("/v1/auth/refresh", {{"refreshToken", s.refresh_token}});
  INFO(refreshed.body);
  REQUIRE(refreshed.status == 200);
  std::string access2 = refreshed.json()["accessToken"];
  std::string refresh2 = refreshed.json()["refreshToken"];
  CHECK(refresh2 != s.refresh_token);
  CHECK(http.Get("/v1/listings", {{"Authorization", "Bearer " + access2}}).status == 200);

  // Logging out revokes the refresh token (and its family).
  CHECK(http.Post("/v1/auth/logout", {{"refreshToken", refresh2}}).status == 200);
  CHECK(http.Post("/v1/auth/refresh", {{"refreshToken", refresh2}}).status == 401);
}

TEST_CASE("gateway: a spent refresh token used again revokes its whole family") {
  Platform platform;
  HttpClient http(platform.port());
  Session s = RegisterAndLogin(http);
  HttpResult first = http.Post("/v1/auth/refresh", {{"refreshToken", s.refresh_token}});
  REQUIRE(first.status == 200);
  std::string successor = first.json()["refreshToken"];
  // Someone replays the spent token: refused, and the legitimate successor dies with it.
  CHECK(http.Post("/v1/auth/refresh", {{"refreshToken", s.refresh_token}}).status == 401);
  CHECK(http.Post("/v1/auth/refresh", {{"refreshToken", successor}}).status == 401);
  // A new login still works.
  CHECK(http.Post("/v1/auth/refresh", {{"refreshToken", "ptdr_made_up"}}).status == 401);
}

TEST_CASE("gateway: wrong passwords, taken emails and bad registrations are refused") {
  Platform platform;
  HttpClient http(platform.port());
  std::string email = ptd::testing::UniqueName("u") + "@example.com";
  json good = {{"enterpriseName", "A"},
               {"enterpriseRoles", {"ENTERPRISE_ROLE_BUYER"}},
               {"email", email},
               {"password", kPassword}};
  REQUIRE(http.Post("/v1/auth/register", good).status == 200);
  CHECK(http.Post("/v1/auth/register", good).status == 409);
  CHECK(http.Post("/v1/auth/login", {{"email", email}, {"password", "wrong password!!"}}).status == 401);
  CHECK(http.Post("/v1/auth/login", {{"email", "nobody@example.com"}, {"password", kPassword}}).status == 401);
  HttpResult bad =
      http.Post("/v1/auth/register", {{"enterpriseName", ""}, {"email", "no-at-sign"}, {"password", "short"}});
  CHECK(bad.status == 400);
  std::vector<std::string> fields = ViolatedFields(bad.json());
  CHECK_THAT(fields, Catch::Matchers::VectorContains(std::string("email")));
  CHECK_THAT(fields, Catch::Matchers::VectorContains(std::string("password")));
  CHECK_THAT(fields, Catch::Matchers::VectorContains(std::string("enterprise_roles")));
  // The password is stored as an Argon2id hash.
  pqxx::connection conn(platform.db_url());
  pqxx::work tx(conn);
  std::string hash =
      tx.exec_params1("SELECT password_hash FROM gateway.users WHERE email = $1", email)[0].as<std::string>();
  CHECK(hash.rfind("$argon2id$", 0) == 0);
}

TEST_CASE("gateway: access tokens that do not hold are 401") {
  // GENERATE runs the test case again for each row: one platform for all of them.
  static Platform platform;
  HttpClient http(platform.port());
  static Session s = RegisterAndLogin(http);
  REQUIRE(http.Get("/v1/listings", s.auth()).status == 200);

  absl::Time now = absl::Now();
  ptd::gateway::AccessClaims claims{.subject = s.user_id,
                                    .tenant = s.tenant,
                                    .roles = {"admin"},
                                    .token_id = "t",
                                    .issued_at = now - absl::Hours(2),
                                    .expires_at = now - absl::Hours(1)};
  std::string expired = ptd::gateway::JwtCodec(kJwtSecret, kIssuer).Sign(claims);
  claims.issued_at = now;
  claims.expires_at = now + absl::Minutes(5);
  std::string wrong_key = ptd::gateway::JwtCodec("another-secret-0123456789abcdef0123456789", kIssuer).Sign(claims);
  std::string wrong_issuer = ptd::gateway::JwtCodec(kJwtSecret, "someone-else").Sign(claims);
  std::vector<std::string> parts = absl::StrSplit(s.access_token, '.');
  REQUIRE(parts.size() == 3);
  std::string payload;
  REQUIRE(absl::WebSafeBase64Unescape(parts[1], &payload));
  json p = json::parse(payload);
  p["tid"] = "another-tenant";
  std::string tampered = parts[0] + "." + B64(p.dump()) + "." + parts[2];
  std::string alg_none = B64(R"({"alg":"none","typ":"JWT"})") + "." + parts[1] + ".";
  std::string alg_none_signed = B64(R"({"alg":"none","typ":"JWT"})") + "." + parts[1] + "." + parts[2];
  std::string hs512 = B64(R"({"alg":"HS512","typ":"JWT"})") + "." + parts[1] + "." + parts[2];

  auto [name, header] = GENERATE_COPY(table<std::string, std::string>({
      {"expired", "Bearer " + expired},
      {"wrong key", "Bearer " + wrong_key},
      {"wrong issuer", "Bearer " + wrong_issuer},
      {"tampered payload", "Bearer " + tampered},
      {"alg none", "Bearer " + alg_none},
      {"alg none with a signature", "Bearer " + alg_none_signed},
      {"another algorithm", "Bearer " + hs512},
      {"garbage", "Bearer not.a.jwt"},
      {"not bearer", "Basic dXNlcjpwYXNz"},
      {"no header", ""},
  }));
  INFO(name);
  std::map<std::string, std::string> headers;
  if (!header.empty()) headers["Authorization"] = header;
  HttpResult r = http.Get("/v1/listings", headers);
  CHECK(r.status == 401);
  CHECK(r.json()["status"] == "UNAUTHENTICATED");
  CHECK(r.header("www-authenticate") == "Bearer");
}

TEST_CASE("gateway: API keys are shown once, work until revoked, then are 401") {
  Platform platform;
  HttpClient http(platform.port());
  Session s = RegisterAndLogin(http);
  HttpResult created =
      http.Post("/v1/enterprise/api-keys",
                {{"idempotencyKey", "k1"}, {"name", "weighbridge 2"}, {"roles", {"USER_ROLE_CLERK"}}}, s.auth());
  INFO(created.body);
  REQUIRE(created.status == 200);
  std::string secret = created.json()["secret"];
  std::string key_id = created.json()["apiKey"]["apiKeyId"];
  CHECK(secret.rfind("ptdk_", 0) == 0);
  // Machines cannot be admins.
  CHECK(http.Post("/v1/enterprise/api-keys", {{"idempotencyKey", "k2"}, {"name", "x"}, {"roles", {"USER_ROLE_ADMIN"}}},
                  s.auth())
            .status == 400);
  // A retry cannot reveal the secret again.
  CHECK(http.Post("/v1/enterprise/api-keys",
                  {{"idempotencyKey", "k1"}, {"name", "weighbridge 2"}, {"roles", {"USER_ROLE_CLERK"}}}, s.auth())
            .status == 409);

  std::map<std::string, std::string> key = {{"X-API-Key", secret}};
  HttpResult who = http.Get("/v1/auth/whoami", key);
  REQUIRE(who.status == 200);
  CHECK(who.json()["tenantId"] == s.tenant);
  CHECK(who.json()["subject"] == "apikey:" + key_id);
  CHECK(who.json()["roles"] == json({"clerk", "seller"}));
  CHECK(http.Get("/v1/listings", key).status == 200);
  // A clerk's key cannot manage keys.
  CHECK(http.Get("/v1/enterprise/api-keys", key).status == 403);
  // The secret is not stored.
  {
    pqxx::connection conn(platform.db_url());
    pqxx::work tx(conn);
    CHECK(tx.exec_params1("SELECT count(*) FROM gateway.api_keys WHERE secret_sha256 = $1", secret)[0].as<int>() == 0);
  }

  HttpResult revoked = http.Post("/v1/enterprise/api-keys/" + key_id + ":revoke", json::object(), s.auth());
  INFO(revoked.body);
  REQUIRE(revoked.status == 200);
  CHECK(std::regex_match(revoked.json()["revokeTime"].get<std::string>(), kRfc3339));
  CHECK(http.Get("/v1/listings", key).status == 401);
  CHECK(http.Get("/v1/listings", {{"X-API-Key", "ptdk_never_issued"}}).status == 401);

  HttpResult active = http.Get("/v1/enterprise/api-keys", s.auth());
  REQUIRE(active.status == 200);
  CHECK(active.json()["apiKeys"].empty());
  HttpResult all = http.Get("/v1/enterprise/api-keys?includeRevoked=true", s.auth());
  REQUIRE(all.status == 200);
  CHECK(all.json()["apiKeys"].size() == 1);
}

TEST_CASE("gateway: another tenant's listing is 404") {
  Platform platform;
  HttpClient http(platform.port());
  Session a = RegisterAndLogin(http, "A");
  Session b = RegisterAndLogin(http, "B");
  HttpResult created = http.Post("/v1/listings", PvcListing("a1"), a.auth());
  REQUIRE(created.status == 200);
  std::string id = created.json()["listingId"];
  CHECK(http.Get("/v1/listings/" + id, a.auth()).status == 200);
  HttpResult other = http.Get("/v1/listings/" + id, b.auth());
  CHECK(other.status == 404);
  CHECK(other.json()["status"] == "NOT_FOUND");
  CHECK(http.Request("PATCH", "/v1/listings/" + id, R"({"status":"LISTING_STATUS_PAUSED"})", b.auth()).status == 404);
  CHECK(http.Get("/v1/listings", b.auth()).json()["listings"].empty());
}

TEST_CASE("gateway: the JSON mapping on trading's RPCs") {
  Platform platform;
  HttpClient http(platform.port());
  Session s = RegisterAndLogin(http);

  SECTION("body \"*\", lowerCamelCase and proto names accepted, int64 as strings or numbers, repeated, timestamps") {
    json request = PvcListing("m1");
    request.erase("unitPrice");
    request["unit_price"] = {{"currency", "CNY"}, {"amount_minor", 123456789012}};  // proto name, a JSON number
    HttpResult r = http.Post("/v1/listings", request, s.auth());
    INFO(r.body);
    REQUIRE(r.status == 200);
    json l = r.json();
    CHECK(l["unitPrice"]["amountMinor"] == "123456789012");  // printed as a string
    CHECK(l["available"]["milli"] == "100000");
    CHECK(l["version"] == "1");
    CHECK(l["status"] == "LISTING_STATUS_ACTIVE");  // enums by name
    CHECK(l["title"].size() == 2);                  // repeated
    CHECK(l["title"][0]["text"] == "聚氯乙烯现货 m1");
    CHECK(std::regex_match(l["createTime"].get<std::string>(), kRfc3339));
    CHECK(!l.contains("unit_price"));  // printed in lowerCamelCase
  }
  SECTION("path variables, a patch body, enums given by name, query parameters with enums and integers") {
    std::string id = http.Post("/v1/listings", PvcListing("m2"), s.auth()).json()["listingId"];
    REQUIRE(http.Post("/v1/listings", PvcListing("m3"), s.auth()).status == 200);
    HttpResult paused = http.Request("PATCH", "/v1/listings/" + id,
                                     R"({"status":"LISTING_STATUS_PAUSED","expectedVersion":"1"})", s.auth());
    INFO(paused.body);
    REQUIRE(paused.status == 200);
    CHECK(paused.json()["status"] == "LISTING_STATUS_PAUSED");
    CHECK(paused.json()["version"] == "2");
    // Stale version: ABORTED -> 409.
    CHECK(http.Request("PATCH", "/v1/listings/" + id, R"({"status":"LISTING_STATUS_ACTIVE","expectedVersion":"1"})",
                       s.auth())
              .status == 409);
    HttpResult filtered = http.Get("/v1/listings?status=LISTING_STATUS_PAUSED&pageSize=10", s.auth());
    REQUIRE(filtered.status == 200);
    REQUIRE(filtered.json()["listings"].size() == 1);
    CHECK(filtered.json()["listings"][0]["listingId"] == id);
    HttpResult by_number = http.Get("/v1/listings?status=2", s.auth());  // an enum by number
    REQUIRE(by_number.status == 200);
    CHECK(by_number.json()["listings"].size() == 1);
    HttpResult paged = http.Get("/v1/listings?page_size=1", s.auth());  // proto name in the query
    REQUIRE(paged.status == 200);
    CHECK(paged.json()["listings"].size() == 1);
    std::string token = paged.json()["nextPageToken"];
    CHECK(!token.empty());
    HttpResult next = http.Get("/v1/listings?pageSize=1&pageToken=" + token, s.auth());
    REQUIRE(next.status == 200);
    CHECK(next.json()["listings"].size() == 1);
  }
  SECTION("trading's field violations come back as a google.rpc.BadRequest") {
    json bad = PvcListing("m4");
    bad["unitPrice"]["amountMinor"] = "-5";
    HttpResult r = http.Post("/v1/listings", bad, s.auth());
    CHECK(r.status == 400);
    CHECK(r.json()["code"] == 3);
    CHECK(r.json()["details"][0]["@type"] == "type.googleapis.com/google.rpc.BadRequest");
    CHECK_THAT(ViolatedFields(r.json()), Catch::Matchers::VectorContains(std::string("unit_price.amount_minor")));
  }
}

TEST_CASE("gateway: the mapping rules trading does not use, on a service known only from a descriptor set") {
  Platform platform;
  HttpClient http(platform.port());
  Session s = RegisterAndLogin(http);

  SECTION("{path=**} takes the rest of the path, %2F kept") {
    HttpResult r = http.Get("/v1/test/files/a/b%20c/d%2Fe.txt", s.auth());
    INFO(r.body);
    REQUIRE(r.status == 200);
    CHECK(r.json()["path"] == "a/b c/d%2Fe.txt");
  }
  SECTION("nested path variable; repeated, nested, timestamp, int64, enum, bool and double query parameters") {
    HttpResult r = http.Get(
        "/v1/test/shelves/s%201/books?tags=red&tags=blue&filter.minPriceMinor=5&filter.max_price_minor=9007199254740993"
        "&publishedAfter=2024-01-02T03:04:05Z&limit=42&kind=KIND_PAPERBACK&exact=true&kinds=KIND_HARDCOVER&kinds=2"
        "&rating=4.5",
        s.auth());
    INFO(r.body);
    REQUIRE(r.status == 200);
    json b = r.json();
    CHECK(b["shelf"]["shelfId"] == "s 1");
    CHECK(b["tags"] == json({"red", "blue"}));
    CHECK(b["filter"]["minPriceMinor"] == "5");
    CHECK(b["filter"]["maxPriceMinor"] == "9007199254740993");  // beyond a double's exact range
    CHECK(b["publishedAfter"] == "2024-01-02T03:04:05Z");
    CHECK(b["limit"] == "42");
    CHECK(b["kind"] == "KIND_PAPERBACK");
    CHECK(b["exact"] == true);
    CHECK(b["kinds"] == json({"KIND_HARDCOVER", "KIND_PAPERBACK"}));
    CHECK(b["rating"] == 4.5);
  }
  SECTION("bad query parameters are 400 naming the parameter") {
    for (const char* target :
         {"/v1/test/shelves/s/books?exact=maybe", "/v1/test/shelves/s/books?limit=ten",
          "/v1/test/shelves/s/books?publishedAfter=yesterday", "/v1/test/shelves/s/books?filter=1",
          "/v1/test/shelves/s/books?shelf.shelfId=other", "/v1/test/shelves/s/books?limit=1&limit=2"}) {
      INFO(target);
      HttpResult r = http.Get(target, s.auth());
      CHECK(r.status == 400);
    }
  }
  SECTION("body: \"field\" fills that field; the other fields come from the path and query") {
    HttpResult r = http.Request("PUT", "/v1/test/payloads/p1?note=hello",
                                R"({"title":"t","counts":["1","2",3],"at":"2024-05-06T07:08:09.5Z"})", s.auth());
    INFO(r.body);
    REQUIRE(r.status == 200);
    json b = r.json();
    CHECK(b["id"] == "p1");
    CHECK(b["note"] == "hello");
    CHECK(b["payload"]["title"] == "t");
    CHECK(b["payload"]["counts"] == json({"1", "2", "3"}));
    CHECK(b["payload"]["at"] == "2024-05-06T07:08:09.500Z");
    // The body field cannot also come from the query.
    CHECK(http.Request("PUT", "/v1/test/payloads/p1?payload.title=x", R"({"title":"t"})", s.auth()).status == 400);
  }
  SECTION("additional_bindings: a second route to the same method, with body \"*\" and a verb") {
    HttpResult r = http.Post("/v1/test/payloads:create", {{"id", "p2"}, {"payload", {{"title", "x"}}}}, s.auth());
    INFO(r.body);
    REQUIRE(r.status == 200);
    CHECK(r.json()["id"] == "p2");
    CHECK(http.Request("POST", "/v1/test/payloads:create?note=x", "{}", s.auth()).status == 400);
  }
  SECTION("the caller's identity, the request id and a deadline reach the service") {
    HttpResult r =
        http.Get("/v1/test/whocalls", {{"Authorization", "Bearer " + s.access_token}, {"X-Request-Id", "req-12345"}});
    REQUIRE(r.status == 200);
    json b = r.json();
    CHECK(b["tenant"] == s.tenant);
    CHECK(b["subject"] == s.user_id);
    CHECK(b["roles"] == "admin,seller");
    CHECK(b["requestId"] == "req-12345");
    CHECK(r.header("x-request-id") == "req-12345");
    int64_t deadline_ms = std::stoll(b["deadlineMs"].get<std::string>());
    CHECK(deadline_ms > 5000);
    CHECK(deadline_ms <= 10500);  // gRPC rounds a timeout up when it sends it
    // Without one, the gateway makes up a request id and returns it.
    HttpResult r2 = http.Get("/v1/test/whocalls", s.auth());
    CHECK(r2.header("x-request-id").size() == 36);
    CHECK(r2.json()["requestId"] == r2.header("x-request-id"));
    // A shorter client deadline wins; running out of it is 504.
    HttpResult r3 =
        http.Get("/v1/test/whocalls", {{"Authorization", "Bearer " + s.access_token}, {"Grpc-Timeout", "800m"}});
    CHECK(std::stoll(r3.json()["deadlineMs"].get<std::string>()) <= 800);
    HttpResult slow = http.Get("/v1/test/whocalls?sleepMs=1000",
                               {{"Authorization", "Bearer " + s.access_token}, {"Grpc-Timeout", "100m"}});
    CHECK(slow.status == 504);
    CHECK(slow.json()["status"] == "DEADLINE_EXCEEDED");
  }
}

TEST_CASE("gateway: every gRPC status maps to its HTTP status with {code, message, details}") {
  static Platform platform;
  HttpClient http(platform.port());
  static Session s = RegisterAndLogin(http);
  auto [code, http_status] = GENERATE(table<int, int>({{1, 499},
                                                       {2, 500},
                                                       {3, 400},
                                                       {4, 504},
                                                       {5, 404},
                                                       {6, 409},
                                                       {7, 403},
                                                       {8, 429},
                                                       {9, 400},
                                                       {10, 409},
                                                       {11, 400},
                                                       {12, 501},
                                                       {13, 500},
                                                       {14, 503},
                                                       {15, 500},
                                                       {16, 401}}));
  INFO("grpc code " << code);
  HttpResult r = http.Post("/v1/test/fail", {{"code", code}, {"message", "told to fail"}}, s.auth());
  CHECK(r.status == http_status);
  json b = r.json();
  CHECK(b["code"] == code);
  CHECK(b["message"] == "told to fail");
  CHECK(b["details"].is_array());
  if (code == 3) {
    HttpResult v =
        http.Post("/v1/test/fail", {{"code", 3}, {"message", "must be positive"}, {"field", "a.b"}}, s.auth());
    CHECK(v.status == 400);
    CHECK(ViolatedFields(v.json()) == std::vector<std::string>{"a.b"});
    CHECK(v.json()["details"][0]["fieldViolations"][0]["description"] == "must be positive");
  }
}

TEST_CASE("gateway: bad input is refused with the right 4xx and the service sees nothing") {
  static Platform platform({"--max-body-bytes=65536", "--max-json-depth=16"});
  HttpClient http(platform.port());
  static Session s = RegisterAndLogin(http);
  // Warm up, so that the counts below compare like with like.
  REQUIRE(http.Get("/v1/listings", s.auth()).status == 200);
  const double calls_before = platform.TradingCalls();
  const int64_t listings_before = platform.Listings();

  std::string deep = std::string(40, '[') + std::string(40, ']');
  std::string deep_object;
  for (int i = 0; i < 20; ++i) deep_object += "{\"title\":";
  deep_object += "1" + std::string(20, '}');
  std::string huge = PvcListing("h").dump();
  huge.insert(huge.size() - 1, ",\"x\":\"" + std::string(100000, 'a') + "\"");

  auto [name, method, target, body, content_type, expected] =
      GENERATE_COPY(table<std::string, std::string, std::string, std::string, std::string, int>({
          {"malformed JSON", "POST", "/v1/listings", "{\"idempotencyKey\": \"k\",", "", 400},
          {"not an object", "POST", "/v1/listings", "[1,2,3]", "", 400},
          {"wrong type", "POST", "/v1/listings", R"({"idempotencyKey": 5})", "", 400},
          {"wrong nested type", "POST", "/v1/listings", R"({"unitPrice": {"amountMinor": "lots"}})", "", 400},
          {"unknown field", "POST", "/v1/listings", R"({"idempotencyKey":"k","colour":"red"})", "", 400},
          {"unknown enum", "GET", "/v1/listings?status=LISTING_STATUS_SOLD", "", "", 400},
          {"unknown query parameter", "GET", "/v1/listings?colour=red", "", "", 400},
          {"body on a GET", "GET", "/v1/listings", R"({"pageSize":1})", "", 400},
          {"deep nesting", "POST", "/v1/listings", deep, "", 400},
          {"deep nesting in objects", "POST", "/v1/listings", deep_object, "", 400},
          {"not JSON", "POST", "/v1/listings", "a=b", "application/x-www-form-urlencoded", 415},
          {"invalid UTF-8", "POST", "/v1/listings", "{\"idempotencyKey\":\"\xff\xfe\"}", "", 400},
          {"unknown route", "GET", "/v1/nothing/here", "", "", 404},
          {"wrong method", "DELETE", "/v1/listings", "", "", 405},
          {"huge body", "POST", "/v1/listings", huge, "", 413},
      }));
  INFO(name);
  std::map<std::string, std::string> headers = s.auth();
  if (!content_type.empty()) headers["Content-Type"] = content_type;
  HttpClient fresh(platform.port());
  HttpResult r = fresh.Request(method, target, body, headers);
  INFO(r.body);
  CHECK(r.status == expected);
  if (expected != 413) {
    CHECK(r.json().is_object());
    CHECK(!r.json()["message"].get<std::string>().empty());
  }
  CHECK(platform.TradingCalls() == calls_before);
  CHECK(platform.Listings() == listings_before);
  // The gateway is still fine.
  CHECK(HttpClient(platform.port()).Get("/v1/listings", s.auth()).status == 200);
}

TEST_CASE("gateway: a burst over the tenant's limit gets 429 with Retry-After, the rest pass") {
  // 5 requests of burst, refilled at one per 10 s: the test runs well inside one refill.
  Platform platform({"--tenant-rate-limit=0.1:5"});
  HttpClient http(platform.port());
  Session s = RegisterAndLogin(http);
  int passed = 0, limited = 0;
  for (int i = 0; i < 12; ++i) {
    HttpResult r = http.Get("/v1/verticals", s.auth());
    if (r.status == 200) ++passed;
    if (r.status == 429) {
      ++limited;
      CHECK(std::stoi(r.header("retry-after")) >= 1);
      CHECK(r.json()["status"] == "RESOURCE_EXHAUSTED");
    }
  }
  CHECK(passed == 5);
  CHECK(limited == 7);
  // Another tenant has its own bucket.
  Session other = RegisterAndLogin(http, "Other");
  CHECK(http.Get("/v1/verticals", other.auth()).status == 200);
}

TEST_CASE("gateway: two gateway processes share the bucket") {
  Platform platform({"--tenant-rate-limit=0.1:6"});
  int second_port = 0;
  auto second = platform.StartGateway({"--tenant-rate-limit=0.1:6"}, &second_port);
  HttpClient a(platform.port());
  HttpClient b(second_port);
  Session s = RegisterAndLogin(a);
  int passed = 0;
  for (int i = 0; i < 10; ++i) {
    HttpClient& http = i % 2 == 0 ? a : b;
    if (http.Get("/v1/verticals", s.auth()).status == 200) ++passed;
  }
  CHECK(passed == 6);
}

TEST_CASE("gateway: tokens taken ahead from a full bucket never let two processes exceed the limit") {
  // With 40 tokens each process takes several at once; together they still pass exactly 40.
  Platform platform({"--tenant-rate-limit=0.01:40", "--rate-limit-take-ahead=16"});
  int second_port = 0;
  auto second = platform.StartGateway({"--tenant-rate-limit=0.01:40", "--rate-limit-take-ahead=16"}, &second_port);
  HttpClient a(platform.port());
  HttpClient b(second_port);
  Session s = RegisterAndLogin(a);
  int passed = 0;
  for (int i = 0; i < 70; ++i) {
    HttpClient& http = i % 2 == 0 ? a : b;
    if (http.Get("/v1/verticals", s.auth()).status == 200) ++passed;
  }
  CHECK(passed == 40);
}

TEST_CASE("gateway: tokens fetched in the background while a bucket is far from empty never exceed the limit") {
  // 300 tokens: each process takes 17 at a time and fetches the next 17 in the background once it holds 8;
  // near the end every request asks Redis again. Together they pass exactly 300.
  Platform platform({"--tenant-rate-limit=0.01:300", "--rate-limit-take-ahead=16"});
  int second_port = 0;
  auto second = platform.StartGateway({"--tenant-rate-limit=0.01:300", "--rate-limit-take-ahead=16"}, &second_port);
  HttpClient a(platform.port());
  HttpClient b(second_port);
  Session s = RegisterAndLogin(a);
  int passed = 0;
  for (int i = 0; i < 400; ++i) {
    HttpClient& http = i % 2 == 0 ? a : b;
    if (http.Get("/v1/verticals", s.auth()).status == 200) ++passed;
  }
  CHECK(passed == 300);
}

TEST_CASE("gateway: an API key has its own bucket besides its tenant's") {
  Platform platform({"--api-key-rate-limit=0.1:3"});
  HttpClient http(platform.port());
  Session s = RegisterAndLogin(http);
  HttpResult created = http.Post("/v1/enterprise/api-keys",
                                 {{"idempotencyKey", "k"}, {"name", "gate"}, {"roles", {"USER_ROLE_CLERK"}}}, s.auth());
  REQUIRE(created.status == 200);
  std::map<std::string, std::string> key = {{"X-API-Key", created.json()["secret"].get<std::string>()}};
  int passed = 0;
  for (int i = 0; i < 6; ++i) passed += http.Get("/v1/verticals", key).status == 200;
  CHECK(passed == 3);
  // The user's own calls are not limited by the key's bucket.
  CHECK(http.Get("/v1/verticals", s.auth()).status == 200);
}

TEST_CASE("gateway: /openapi.json describes every route from the same descriptors") {
  Platform platform;
  HttpClient http(platform.port());
  HttpResult r = http.Get("/openapi.json");
  REQUIRE(r.status == 200);
  json doc = r.json();
  CHECK(doc["openapi"] == "3.0.3");
  json get_listing = doc["paths"]["/v1/listings/{listing_id}"]["get"];
  CHECK(get_listing["operationId"] == "TradingService_GetListing");
  CHECK(get_listing["parameters"][0]["name"] == "listing_id");
  CHECK(get_listing["parameters"][0]["in"] == "path");
  CHECK(doc["paths"]["/v1/listings"]["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"] ==
        "#/components/schemas/ptd.trading.v1.CreateListingRequest");
  json listing = doc["components"]["schemas"]["ptd.trading.v1.Listing"]["properties"];
  CHECK(listing["version"]["type"] == "string");
  CHECK(listing["version"]["format"] == "int64");
  CHECK(listing["createTime"]["format"] == "date-time");
  CHECK(listing["status"]["$ref"] == "#/components/schemas/ptd.trading.v1.ListingStatus");
  CHECK(doc["components"]["schemas"]["ptd.trading.v1.ListingStatus"]["enum"][1] == "LISTING_STATUS_ACTIVE");
  bool has_status_query = false;
  for (const auto& p : doc["paths"]["/v1/listings"]["get"]["parameters"]) has_status_query |= p["name"] == "status";
  CHECK(has_status_query);
  CHECK(doc["paths"]["/v1/auth/login"]["post"]["security"].empty());
  CHECK(doc["paths"].contains("/v1/test/files/{path}"));
  CHECK(doc["paths"].contains("/v1/test/shelves/{shelf.shelf_id}/books"));
}

TEST_CASE("gateway: /healthz, /readyz and /metrics") {
  Platform platform;
  HttpClient http(platform.port());
  CHECK(http.Get("/healthz").status == 200);
  HttpResult ready = http.Get("/readyz");
  REQUIRE(ready.status == 200);
  CHECK(ready.json()["checks"]["postgres"] == "ok");
  CHECK(ready.json()["checks"]["redis"] == "ok");
  Session s = RegisterAndLogin(http);
  REQUIRE(http.Get("/v1/listings/01900000-0000-7000-8000-0000000000ff", s.auth()).status == 404);
  std::string metrics = http.Get("/metrics").body;
  CHECK(MetricSum(metrics, "http_requests_total", "route=\"/v1/listings/{listing_id}\"") == 1);
  CHECK(metrics.find("code=\"404\"") != std::string::npos);
  CHECK(MetricSum(metrics, "http_request_duration_seconds_count", "route=\"/v1/listings/{listing_id}\"") == 1);
  CHECK(metrics.find("process_resident_memory_bytes") != std::string::npos);
  CHECK(metrics.find("process_cpu_seconds_total") != std::string::npos);
  CHECK(metrics.find("ptd_db_pool_connections") != std::string::npos);
  CHECK(metrics.find("grpc_server_handled_total") != std::string::npos);  // the identity service's own
  // One structured log line per request, with its request id.
  HttpResult tagged = http.Get("/healthz", {{"X-Request-Id", "log-me-123"}});
  REQUIRE(tagged.status == 200);
  CHECK(ptd::testing::WaitFor(
      [&] { return platform.gateway().ReadLog().find(R"("request_id":"log-me-123")") != std::string::npos; }));
  // A whole line of the platform's format (libs/core/log), written in the same batches as the process's others.
  std::istringstream lines(platform.gateway().ReadLog());
  json line;
  for (std::string text; std::getline(lines, text);) {
    if (text.find(R"("request_id":"log-me-123")") != std::string::npos) line = json::parse(text);
  }
  CHECK(line["msg"] == "http request");
  CHECK(line["level"] == "info");
  CHECK(line["service"] == "gateway");
  CHECK(line["method"] == "GET");
  CHECK(line["path"] == "/healthz");
  CHECK(line["status"] == 200);
}

TEST_CASE("gateway: CORS for configured origins only") {
  Platform platform({"--cors-origins=https://app.example.com"});
  HttpClient http(platform.port());
  HttpResult preflight =
      http.Request("OPTIONS", "/v1/listings", "",
                   {{"Origin", "https://app.example.com"}, {"Access-Control-Request-Method", "POST"}});
  CHECK(preflight.status == 204);
  CHECK(preflight.header("access-control-allow-origin") == "https://app.example.com");
  CHECK(preflight.header("access-control-allow-headers").find("Authorization") != std::string::npos);
  HttpResult simple = http.Get("/healthz", {{"Origin", "https://app.example.com"}});
  CHECK(simple.header("access-control-allow-origin") == "https://app.example.com");
  HttpResult other = http.Request("OPTIONS", "/v1/listings", "",
                                  {{"Origin", "https://evil.example.com"}, {"Access-Control-Request-Method", "POST"}});
  CHECK(other.header("access-control-allow-origin").empty());
}

TEST_CASE("gateway: HTTPS when a certificate is configured") {
  std::string dir = ptd::testing::BuildPath("tests/gateway/tls-" + ptd::testing::UniqueName("c"));
  std::string command = "mkdir -p " + dir +
                        " && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
                        "-subj /CN=localhost -days 1 -keyout " +
                        dir + "/key.pem -out " + dir + "/cert.pem 2>/dev/null";
  REQUIRE(std::system(command.c_str()) == 0);
  Platform platform;
  int port = 0;
  auto tls = platform.StartGateway({"--tls-cert=" + dir + "/cert.pem", "--tls-key=" + dir + "/key.pem"}, &port, true);
  HttpClient https(port, /*tls=*/true);
  CHECK(https.Get("/healthz").status == 200);
  Session s = RegisterAndLogin(https);
  CHECK(https.Get("/v1/listings", s.auth()).status == 200);
  HttpClient plain(port);
  CHECK(plain.Get("/healthz").status == 0);
}

TEST_CASE("gateway: a response larger than the socket takes at once arrives whole, and the connection goes on") {
  // 3.5 MB of '<' in a title: within the backend's 4 MiB message limit, 21 MB of JSON (each one is \u003c).
  Platform platform({"--max-body-bytes=4000000"});
  HttpClient http(platform.port());
  Session s = RegisterAndLogin(http);
  const std::string title(3500000, '<');
  HttpResult r = http.Post("/v1/test/payloads:create", {{"id", "big"}, {"payload", {{"title", title}}}}, s.auth());
  REQUIRE(r.status == 200);
  CHECK(r.body.size() > 21000000);
  CHECK(r.json()["payload"]["title"] == title);
  CHECK(http.Get("/v1/test/files/after", s.auth()).status == 200);
  CHECK(http.connections() == 1);
}

TEST_CASE("gateway: keep-alive serves many requests on one connection") {
  Platform platform;
  HttpClient http(platform.port());
  Session s = RegisterAndLogin(http);
  for (int i = 0; i < 50; ++i) REQUIRE(http.Get("/v1/verticals", s.auth()).status == 200);
  // Errors do not close the connection either.
  CHECK(http.Get("/v1/nothing", s.auth()).status == 404);
  CHECK(http.Get("/v1/verticals", s.auth()).status == 200);
  CHECK(http.connections() == 1);
}

TEST_CASE("gateway: SIGTERM stops it cleanly") {
  Platform platform;
  HttpClient http(platform.port());
  REQUIRE(http.Get("/healthz").status == 200);
  platform.gateway().Signal(SIGTERM);
  int status = platform.gateway().Wait(std::chrono::seconds(30));
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  CHECK(platform.gateway().ReadLog().find("gateway stopped") != std::string::npos);
}
