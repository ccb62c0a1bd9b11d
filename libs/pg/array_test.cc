#include "libs/pg/array.h"

#include <catch2/catch.hpp>
#include <limits>
#include <pqxx/pqxx>

#include "tests/testing/testing.h"

namespace ptd::pg {
namespace {

TEST_CASE("array parameters reach PostgreSQL element for element") {
  pqxx::connection conn(ptd::testing::FreshDatabase("array"));
  pqxx::work tx(conn);
  std::vector<std::string> texts = {"plain", "with \"quotes\"", "back\\slash", "", "comma, {brace}", "NULL"};
  pqxx::result r =
      tx.exec_params("SELECT t FROM unnest($1::text[]) WITH ORDINALITY AS u (t, n) ORDER BY n", TextArray(texts));
  REQUIRE(r.size() == texts.size());
  for (size_t i = 0; i < texts.size(); ++i) {
    CHECK_FALSE(r[i][0].is_null());
    CHECK(r[i][0].as<std::string>() == texts[i]);
  }
  std::vector<double> doubles = {0.1, -2.5e-300, 1e300, 123456789.123456789, std::numeric_limits<double>::max()};
  r = tx.exec_params("SELECT d::text FROM unnest($1::float8[]) WITH ORDINALITY AS u (d, n) ORDER BY n",
                     NumberArray(doubles));
  REQUIRE(r.size() == doubles.size());
  for (size_t i = 0; i < doubles.size(); ++i) CHECK(std::stod(r[i][0].as<std::string>()) == doubles[i]);
  std::vector<int64_t> ints = {0, -1, std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max()};
  r = tx.exec_params("SELECT i FROM unnest($1::bigint[]) WITH ORDINALITY AS u (i, n) ORDER BY n", NumberArray(ints));
  REQUIRE(r.size() == ints.size());
  for (size_t i = 0; i < ints.size(); ++i) CHECK(r[i][0].as<int64_t>() == ints[i]);
  CHECK(tx.exec_params1("SELECT cardinality($1::text[])", TextArray({}))[0].as<int>() == 0);
  const std::string bytes("\x00\xff\\\"a\x7f", 6);
  CHECK(ByteaText(bytes) == "\\x00ff5c22617f");
  CHECK(tx.exec_params1("SELECT encode($1::bytea, 'hex')", ByteaText(bytes))[0].as<std::string>() == "00ff5c22617f");
  CHECK(tx.exec_params1("SELECT encode(($1::bytea[])[1], 'hex')", TextArray({ByteaText(bytes)}))[0].as<std::string>() ==
        "00ff5c22617f");
}

}  // namespace
}  // namespace ptd::pg
