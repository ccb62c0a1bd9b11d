#include "tools/load/mix.h"

#include <catch2/catch.hpp>

using ptd::load::Mix;
using ptd::load::OverrideMix;
using ptd::load::ParseMix;

namespace {
const std::vector<std::string> kKnown = {"buy_now", "spot", "listing_read"};
}

TEST_CASE("a mix file gives each named operation its weight and the others 0") {
  auto mix = ParseMix("# the mix\nbuy_now 3\n\n  spot\t1   # resting and crossing\n", kKnown);
  REQUIRE(mix.ok());
  CHECK(mix->weight("buy_now") == 3);
  CHECK(mix->weight("spot") == 1);
  CHECK(mix->weight("listing_read") == 0);
  CHECK(mix->total() == 4);
}

TEST_CASE("a mix file with an unknown name, a repeated name or a bad weight is refused naming the line") {
  const auto [text, expected] = GENERATE(table<const char*, const char*>({
      {"buy_now 1\nsell_now 2\n",
       "mix line 2: unknown operation 'sell_now'; the operations are: buy_now, spot, "
       "listing_read"},
      {"spot 1\nspot 2\n", "mix line 2: spot is named twice"},
      {"spot -1\n", "mix line 1: the weight of spot must be a number >= 0, got '-1'"},
      {"spot lots\n", "mix line 1: the weight of spot must be a number >= 0, got 'lots'"},
      {"spot 1 2\n", "mix line 1: expected `name weight`, got 'spot 1 2'"},
  }));
  auto mix = ParseMix(text, kKnown);
  REQUIRE_FALSE(mix.ok());
  CHECK(std::string(mix.status().message()) == expected);
}

TEST_CASE("overrides replace weights and refuse unknown names") {
  auto mix = ParseMix("buy_now 3\nspot 1\n", kKnown);
  REQUIRE(mix.ok());
  auto changed = OverrideMix(*mix, "spot=0, listing_read=2");
  REQUIRE(changed.ok());
  CHECK(changed->weight("buy_now") == 3);
  CHECK(changed->weight("spot") == 0);
  CHECK(changed->weight("listing_read") == 2);
  auto unknown = OverrideMix(*mix, "rfqs=1");
  REQUIRE_FALSE(unknown.ok());
  CHECK(std::string(unknown.status().message()) ==
        "--mix: unknown operation 'rfqs'; the operations are: buy_now, spot, listing_read");
  CHECK_FALSE(OverrideMix(*mix, "buy_now=0,spot=0").ok());
  CHECK_FALSE(OverrideMix(*mix, "spot").ok());
}

TEST_CASE("picking follows the weights and never picks a weight of 0") {
  auto mix = ParseMix("buy_now 3\nlisting_read 1\n", kKnown);
  REQUIRE(mix.ok());
  CHECK(mix->Pick(0.0) == 0);
  CHECK(mix->Pick(0.74) == 0);
  CHECK(mix->Pick(0.76) == 2);
  CHECK(mix->Pick(0.999999) == 2);
  CHECK(mix->Pick(1.0) == 2);
}
