#include "libs/core/config.h"

#include <cstdlib>

#include <catch2/catch.hpp>

namespace {

ptd::Config MakeConfig() {
  return ptd::Config("prog", "A test program.",
                     {{"grpc-address", "127.0.0.1:0", "where to listen"},
                      {"pool-size", "8", "connections"},
                      {"timeout", "5s", "a duration"},
                      {"verbose", "false", "a flag"}});
}

}  // namespace

TEST_CASE("config: defaults, environment and flags, flags winning") {
  ::unsetenv("PTD_POOL_SIZE");
  ::setenv("PTD_GRPC_ADDRESS", "0.0.0.0:1", 1);
  ptd::Config config = MakeConfig();
  const char* argv[] = {"prog", "--pool-size=16", "--timeout", "250ms"};
  REQUIRE(config.Parse(4, argv).ok());
  CHECK(config.Get("grpc-address") == "0.0.0.0:1");
  CHECK(*config.GetInt("pool-size") == 16);
  CHECK(*config.GetDuration("timeout") == absl::Milliseconds(250));
  CHECK(*config.GetBool("verbose") == false);

  ptd::Config again = MakeConfig();
  const char* argv2[] = {"prog", "--grpc-address=1.2.3.4:5"};
  REQUIRE(again.Parse(2, argv2).ok());
  CHECK(again.Get("grpc-address") == "1.2.3.4:5");
  ::unsetenv("PTD_GRPC_ADDRESS");
}

TEST_CASE("config: unknown flags, missing values and bad numbers are errors") {
  ptd::Config config = MakeConfig();
  const char* unknown[] = {"prog", "--nope=1"};
  CHECK(config.Parse(2, unknown).code() == absl::StatusCode::kInvalidArgument);
  const char* missing[] = {"prog", "--pool-size"};
  CHECK(MakeConfig().Parse(2, missing).code() == absl::StatusCode::kInvalidArgument);
  ptd::Config bad = MakeConfig();
  const char* bad_int[] = {"prog", "--pool-size=lots", "--timeout=soon"};
  REQUIRE(bad.Parse(3, bad_int).ok());
  CHECK(bad.GetInt("pool-size").status().message().find("--pool-size") != std::string::npos);
  CHECK(!bad.GetDuration("timeout").ok());
}

TEST_CASE("config: --help is noticed and the usage names every option and its variable") {
  ptd::Config config = MakeConfig();
  const char* argv[] = {"prog", "--help"};
  REQUIRE(config.Parse(2, argv).ok());
  CHECK(config.help_requested());
  std::string usage = config.Usage();
  CHECK(usage.find("--grpc-address") != std::string::npos);
  CHECK(usage.find("PTD_GRPC_ADDRESS") != std::string::npos);
  CHECK(usage.find("A test program.") != std::string::npos);
}
