#include "services/gateway/domain/path_template.h"

#include <catch2/catch.hpp>

using ptd::gateway::PathTemplate;

namespace {
std::optional<std::vector<std::string>> MatchOf(const std::string& t, const std::string& path) {
  auto parsed = PathTemplate::Parse(t);
  REQUIRE(parsed.ok());
  return parsed->Match(path);
}
}  // namespace

TEST_CASE("gateway: path templates parse by the google.api.http grammar") {
  auto t = PathTemplate::Parse("/v1/{name=shelves/*/books/*}:publish");
  REQUIRE(t.ok());
  CHECK(t->verb() == "publish");
  REQUIRE(t->variables().size() == 1);
  CHECK(t->variables()[0].field_path == "name");
  CHECK(t->variables()[0].first_segment == 1);
  CHECK(t->variables()[0].end_segment == 5);
  CHECK(t->OpenApiPath() == "/v1/{name}:publish");

  const char* bad =
      GENERATE("", "v1/x", "/v1//x", "/v1/{x", "/v1/{a.}", "/v1/{a}/{a}", "/v1/**/x", "/v1/{a}b", "/v1/x:");
  INFO(bad);
  CHECK(!PathTemplate::Parse(bad).ok());
}

TEST_CASE("gateway: path templates match and decode their variables") {
  CHECK(MatchOf("/v1/listings/{listing_id}", "/v1/listings/abc") == std::vector<std::string>{"abc"});
  CHECK(MatchOf("/v1/listings/{listing_id}", "/v1/listings/a%20b") == std::vector<std::string>{"a b"});
  CHECK(!MatchOf("/v1/listings/{listing_id}", "/v1/listings/"));
  CHECK(!MatchOf("/v1/listings/{listing_id}", "/v1/listings/a/b"));
  CHECK(!MatchOf("/v1/listings/{listing_id}", "/v1/listings/%zz"));
  CHECK(MatchOf("/v1/{shelf.id}/books", "/v1/s1/books") == std::vector<std::string>{"s1"});
  CHECK(MatchOf("/v1/files/{path=**}", "/v1/files/a/b%2Fc/d") == std::vector<std::string>{"a/b%2Fc/d"});
  CHECK(MatchOf("/v1/files/{path=**}", "/v1/files") == std::vector<std::string>{""});
  CHECK(MatchOf("/v1/{name=shelves/*}", "/v1/shelves/7") == std::vector<std::string>{"shelves/7"});
  CHECK(!MatchOf("/v1/{name=shelves/*}", "/v1/racks/7"));
  CHECK(MatchOf("/v1/keys/{id}:revoke", "/v1/keys/k1:revoke") == std::vector<std::string>{"k1"});
  CHECK(!MatchOf("/v1/keys/{id}:revoke", "/v1/keys/k1"));
  CHECK(MatchOf("/v1/keys/{id}", "/v1/keys/k1:x") == std::vector<std::string>{"k1:x"});
}

TEST_CASE("gateway: literal segments are more specific than variables, which are more specific than **") {
  auto literal = *PathTemplate::Parse("/v1/listings/mine");
  auto single = *PathTemplate::Parse("/v1/listings/{id}");
  auto multi = *PathTemplate::Parse("/v1/{rest=**}");
  CHECK(literal.CompareSpecificity(single) < 0);
  CHECK(single.CompareSpecificity(multi) < 0);
  CHECK(multi.CompareSpecificity(literal) > 0);
}
